/*
 * addrlist.c - RFC 5322 address lists, parsed with the position of each
 * address so that rewriting replaces those bytes and nothing else.
 *
 * smtp_generic_maps must turn "Doe, John" <john@host.localdomain> (work)
 * into the same header with only the address changed, and leave folded
 * 50-address To: fields folded. So the value is never rebuilt from its
 * parts: it is tokenized (comments and folding white space skipped, each
 * token keeping its byte range), the tokens are parsed by the grammar of
 * RFC 5322 section 3.4 with the obsolete forms of section 4.4, and each
 * addr-spec is reported as a byte range plus its canonical form. A value
 * that does not follow the grammar is reported as such; callers leave it
 * alone rather than guess. The obsolete grammar is followed where it is
 * unambiguous (CFWS between the parts of an address, routes, empty list
 * elements); local parts are accepted with stray dots ("john..doe"), as
 * mail systems produce them, and come out quoted.
 *
 * Everything here is a pure function of its input; the fuzz target
 * fuzz_addrlist checks that parsing never fails badly and that rewriting
 * keeps every byte it does not replace.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mail/addrlist.h"

/* What a token is. Comments and white space are not tokens. */
enum tok_type {
	T_ATOM,			/* 1*atext */
	T_QSTR,			/* "quoted string", quotes included */
	T_DLIT,			/* [domain literal], brackets included */
	T_DOT,			/* . */
	T_SPECIAL,		/* one of < > @ , : ; */
	T_END			/* end of the value */
};

struct tok {
	enum tok_type	 type;
	char		 c;		/* the character of a T_SPECIAL */
	size_t		 start, end;	/* value[start..end) */
};

/* The state of one parse. */
struct ap {
	const char	*s;
	size_t		 len;
	struct tok	*t;		/* the tokens, T_END last */
	size_t		 nt, cap;
	size_t		 i;		/* the parser's current token */
	struct addrlist	*out;
	const char	*why;		/* the first error */
	size_t		 at;		/* and its byte offset */
};

static void seterr(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Format an error message for the caller. */
static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Record an error at byte offset at; returns -1 for the caller. */
static int
fail(struct ap *p, size_t at, const char *why)
{
	if (p->why == NULL) {
		p->why = why;
		p->at = at;
	}
	return -1;
}

/* 1 for RFC 5322 atext; bytes >= 0x80 count (UTF-8, RFC 6532). */
static int
is_atext(unsigned char c)
{
	if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * Length of the line break at s[i] when it folds the line (CRLF or LF
 * followed by a space or tab), else 0.
 */
static size_t
fold_len(const char *s, size_t len, size_t i)
{
	size_t n;

	if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
		n = 2;
	else if (s[i] == '\n')
		n = 1;
	else
		return 0;
	return i + n < len && (s[i + n] == ' ' || s[i + n] == '\t') ? n : 0;
}

/*
 * Check a byte inside a comment, quoted string or literal at s[*i] that
 * is neither a delimiter nor a backslash, and step over it. Line breaks
 * must fold the line; NUL is never allowed.
 */
static int
inner_byte(struct ap *p, size_t *i)
{
	size_t n;

	if (p->s[*i] == '\r' || p->s[*i] == '\n') {
		if ((n = fold_len(p->s, p->len, *i)) == 0)
			return fail(p, *i, "line break not followed by white space");
		*i += n;
		return 0;
	}
	if (p->s[*i] == '\0')
		return fail(p, *i, "NUL byte");
	(*i)++;
	return 0;
}

/* Step over a quoted pair at s[*i] == '\\'. */
static int
quoted_pair(struct ap *p, size_t *i, const char *unterminated, size_t start)
{
	if (*i + 1 >= p->len)
		return fail(p, start, unterminated);
	if (p->s[*i + 1] == '\0' || p->s[*i + 1] == '\r' ||
	    p->s[*i + 1] == '\n')
		return fail(p, *i, "backslash before a line break or NUL");
	*i += 2;
	return 0;
}

/* Skip a comment starting at s[*i] == '(' (comments nest). */
static int
skip_comment(struct ap *p, size_t *i)
{
	size_t start = *i, depth = 0;

	while (*i < p->len) {
		switch (p->s[*i]) {
		case '\\':
			if (quoted_pair(p, i, "unterminated comment", start) < 0)
				return -1;
			continue;
		case '(':
			depth++;
			break;
		case ')':
			if (--depth == 0) {
				(*i)++;
				return 0;
			}
			break;
		default:
			if (inner_byte(p, i) < 0)
				return -1;
			continue;
		}
		(*i)++;
	}
	return fail(p, start, "unterminated comment");
}

/* Find the end of a quoted string or domain literal starting at s[*i]. */
static int
scan_delimited(struct ap *p, size_t *i, char close)
{
	const char *what = close == '"' ? "unterminated quoted string" :
	    "unterminated domain literal";
	size_t start = (*i)++;

	while (*i < p->len) {
		if (p->s[*i] == '\\') {
			if (quoted_pair(p, i, what, start) < 0)
				return -1;
		} else if (p->s[*i] == close) {
			(*i)++;
			return 0;
		} else if (close == ']' && p->s[*i] == '[') {
			return fail(p, *i, "[ inside a domain literal");
		} else if (inner_byte(p, i) < 0)
			return -1;
	}
	return fail(p, start, what);
}

/* Append a token. */
static void
push(struct ap *p, enum tok_type type, char c, size_t start, size_t end)
{
	if (p->nt == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->t = xreallocarray(p->t, p->cap, sizeof(*p->t));
	}
	p->t[p->nt++] = (struct tok){ type, c, start, end };
}

/* The error for a byte that cannot start a token. */
static int
bad_byte(struct ap *p, size_t i)
{
	switch (p->s[i]) {
	case ')':
		return fail(p, i, "unbalanced )");
	case ']':
		return fail(p, i, "unbalanced ]");
	case '\\':
		return fail(p, i, "backslash outside a quoted string");
	case '\0':
		return fail(p, i, "NUL byte");
	}
	return fail(p, i, "control character");
}

/* Split the value into tokens, dropping comments and white space. */
static int
tokenize(struct ap *p)
{
	size_t i = 0, start, n;
	char c;

	while (i < p->len) {
		c = p->s[i];
		start = i;
		if (c == ' ' || c == '\t') {
			i++;
		} else if (c == '\r' || c == '\n') {
			if ((n = fold_len(p->s, p->len, i)) == 0)
				return fail(p, i,
				    "line break not followed by white space");
			i += n;
		} else if (c == '(') {
			if (skip_comment(p, &i) < 0)
				return -1;
		} else if (c == '"' || c == '[') {
			if (scan_delimited(p, &i, c == '"' ? '"' : ']') < 0)
				return -1;
			push(p, c == '"' ? T_QSTR : T_DLIT, 0, start, i);
		} else if (c == '.') {
			push(p, T_DOT, c, start, ++i);
		} else if (c != '\0' && strchr("<>@,:;", c) != NULL) {
			push(p, T_SPECIAL, c, start, ++i);
		} else if (is_atext((unsigned char)c)) {
			while (i < p->len && is_atext((unsigned char)p->s[i]))
				i++;
			push(p, T_ATOM, 0, start, i);
		} else
			return bad_byte(p, i);
	}
	push(p, T_END, 0, p->len, p->len);
	return 0;
}

/* The current token. */
static const struct tok *
cur(const struct ap *p)
{
	return &p->t[p->i];
}

/* 1 when t is the special character c. */
static int
is_sp(const struct tok *t, char c)
{
	return t->type == T_SPECIAL && t->c == c;
}

/* 1 for the tokens of a phrase or local part: words and dots. */
static int
is_wordish(const struct tok *t)
{
	return t->type == T_ATOM || t->type == T_QSTR || t->type == T_DOT;
}

/* Index of the first token from i on that is not a word or a dot. */
static size_t
skip_words(const struct ap *p, size_t i)
{
	while (is_wordish(&p->t[i]))
		i++;
	return i;
}

/* The error for a token the grammar does not allow here. */
static int
unexpected(struct ap *p, const char *at_end)
{
	const struct tok *t = cur(p);
	const char *why = "unexpected word";

	if (t->type == T_END)
		why = at_end;
	else if (t->type == T_DLIT)
		why = "unexpected domain literal";
	else if (t->type == T_SPECIAL) {
		switch (t->c) {
		case '>':
			why = "unbalanced >";
			break;
		case '<':
			why = "unexpected <";
			break;
		case '@':
			why = "unexpected @";
			break;
		case ',':
			why = "unexpected comma";
			break;
		case ':':
			why = "unexpected colon";
			break;
		case ';':
			why = "unexpected ; outside a group";
			break;
		}
	}
	return fail(p, t->start, why);
}

/*
 * Append the content of the quoted string s[start..end) without its
 * quotes and backslashes. The line break of a fold goes; its white space
 * stays (RFC 5322 3.2.4: FWS inside quotes is unfolded, not removed).
 */
static void
unquote(struct buf *b, const char *s, size_t start, size_t end)
{
	for (size_t i = start + 1; i + 1 < end; i++) {
		if (s[i] == '\\')
			buf_addc(b, s[++i]);
		else if (s[i] != '\r' && s[i] != '\n')
			buf_addc(b, s[i]);
	}
}

/* The local part of tokens [first, end), unquoted. */
static char *
local_text(const struct ap *p, size_t first, size_t end)
{
	struct buf b = BUF_INIT;
	const struct tok *t;

	for (size_t i = first; i < end; i++) {
		t = &p->t[i];
		if (t->type == T_QSTR)
			unquote(&b, p->s, t->start, t->end);
		else
			buf_add(&b, p->s + t->start, t->end - t->start);
	}
	return buf_steal(&b);
}

/*
 * The domain of tokens [first, end): atoms and dots as they are; a
 * domain literal without its folding white space, which carries no
 * meaning there.
 */
static char *
domain_text(const struct ap *p, size_t first, size_t end)
{
	struct buf b = BUF_INIT;
	const struct tok *t;

	for (size_t i = first; i < end; i++) {
		t = &p->t[i];
		for (size_t j = t->start; j < t->end; j++) {
			if (t->type == T_DLIT && (p->s[j] == ' ' ||
			    p->s[j] == '\t' || p->s[j] == '\r' ||
			    p->s[j] == '\n'))
				continue;
			buf_addc(&b, p->s[j]);
		}
	}
	return buf_steal(&b);
}

/*
 * 1 when tokens [first, end) make a local part: words separated by
 * dots. Stray dots ("john..doe", "john.") are tolerated, as most mail
 * systems do; two words in a row ("John Doe") are a phrase, not a local
 * part.
 */
static int
local_ok(const struct ap *p, size_t first, size_t end)
{
	int words = 0, prev_word = 0;

	for (size_t i = first; i < end; i++) {
		if (p->t[i].type == T_DOT) {
			prev_word = 0;
			continue;
		}
		if (prev_word)
			return 0;
		prev_word = 1;
		words++;
	}
	return words > 0;
}

/*
 * Parse a domain at the current token: a domain literal, or atoms
 * separated by dots (RFC 5322 dot-atom and obs-domain, which allows CFWS
 * around the dots).
 */
static int
parse_domain(struct ap *p)
{
	if (cur(p)->type == T_DLIT) {
		p->i++;
		return 0;
	}
	if (cur(p)->type != T_ATOM)
		return fail(p, cur(p)->start, "no domain after @");
	p->i++;
	while (cur(p)->type == T_DOT) {
		p->i++;
		if (cur(p)->type != T_ATOM)
			return fail(p, cur(p)->start, "malformed domain");
		p->i++;
	}
	return 0;
}

/*
 * Record the address whose local part is tokens [first, lend) and whose
 * domain is tokens [dfirst, dend) (dfirst == dend: no domain).
 */
static void
add_item(struct ap *p, size_t first, size_t lend, size_t dfirst,
    size_t dend)
{
	struct addrlist *l = p->out;
	size_t last = dfirst < dend ? dend - 1 : lend - 1;
	char *local = local_text(p, first, lend), *domain = NULL;

	if (dfirst < dend)
		domain = domain_text(p, dfirst, dend);
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n].off = p->t[first].start;
	l->v[l->n].len = p->t[last].end - p->t[first].start;
	l->v[l->n].addr = addr_join(local, domain);
	l->n++;
	free(local);
	free(domain);
}

/*
 * Parse an addr-spec whose local part is tokens [first, at) and whose
 * '@' is token at; or, when token at is not '@', a bare local part
 * ("root", which Postfix qualifies with $myorigin).
 */
static int
parse_addr_spec(struct ap *p, size_t first, size_t at)
{
	size_t dfirst;

	if (first == at) {
		p->i = at;
		if (is_sp(&p->t[at], '@'))
			return fail(p, p->t[at].start, "no local part before @");
		return unexpected(p, "no address");
	}
	if (!local_ok(p, first, at))
		return fail(p, p->t[first].start,
		    "a phrase where an address should be");
	if (!is_sp(&p->t[at], '@')) {
		p->i = at;
		add_item(p, first, at, at, at);
		return 0;
	}
	p->i = dfirst = at + 1;
	if (parse_domain(p) < 0)
		return -1;
	add_item(p, first, at, dfirst, p->i);
	return 0;
}

/*
 * Parse an obsolete source route "@a,@b:" (RFC 5322 obs-route) at the
 * current token. It stays in the value; only the address after it is
 * reported.
 */
static int
parse_route(struct ap *p)
{
	for (;;) {
		if (is_sp(cur(p), ',')) {
			p->i++;
			continue;
		}
		if (!is_sp(cur(p), '@'))
			return fail(p, cur(p)->start, "malformed source route");
		p->i++;
		if (parse_domain(p) < 0)
			return -1;
		if (is_sp(cur(p), ':')) {
			p->i++;
			return 0;
		}
		if (!is_sp(cur(p), ','))
			return fail(p, cur(p)->start, "malformed source route");
	}
}

/* Parse "<addr-spec>" at the current token ('<'). "<>" gives nothing. */
static int
parse_angle(struct ap *p)
{
	size_t first, stop;

	p->i++;
	if (is_sp(cur(p), '>')) {
		p->i++;
		return 0;
	}
	if ((is_sp(cur(p), '@') || is_sp(cur(p), ',')) && parse_route(p) < 0)
		return -1;
	first = p->i;
	stop = skip_words(p, first);
	if (p->t[stop].type == T_END)
		return fail(p, p->t[stop].start, "unbalanced <");
	if (is_sp(&p->t[stop], '<'))
		return fail(p, p->t[stop].start, "nested <");
	if (stop == first && !is_sp(&p->t[stop], '@'))
		return fail(p, p->t[stop].start, "no address in <>");
	if (parse_addr_spec(p, first, stop) < 0)
		return -1;
	if (is_sp(cur(p), '<'))
		return fail(p, cur(p)->start, "nested <");
	if (!is_sp(cur(p), '>'))
		return unexpected(p, "unbalanced <");
	p->i++;
	return 0;
}

static int parse_address(struct ap *, int);

/* Parse the members of a group after its ':', up to and with its ';'. */
static int
parse_group(struct ap *p)
{
	for (;;) {
		if (cur(p)->type == T_END)
			return fail(p, cur(p)->start, "group not ended with ;");
		if (is_sp(cur(p), ';')) {
			p->i++;
			return 0;
		}
		if (is_sp(cur(p), ',')) {
			p->i++;
			continue;
		}
		if (parse_address(p, 1) < 0)
			return -1;
		if (!is_sp(cur(p), ',') && !is_sp(cur(p), ';'))
			return unexpected(p, "group not ended with ;");
	}
}

/*
 * Parse one address at the current token: a mailbox (name-addr or
 * addr-spec) or, outside a group, a group. Words and dots come first in
 * all of them; the token after them says which it is. Returns 0 for a
 * mailbox, 1 for a group, -1 on error.
 */
static int
parse_address(struct ap *p, int in_group)
{
	size_t first = p->i, stop = skip_words(p, first);

	if (is_sp(&p->t[stop], '<')) {
		/* Any words before are the display name. */
		p->i = stop;
		return parse_angle(p);
	}
	if (is_sp(&p->t[stop], ':')) {
		if (in_group)
			return fail(p, p->t[stop].start, "a group inside a group");
		if (stop == first)
			return fail(p, p->t[stop].start, "a group without a name");
		p->i = stop + 1;
		return parse_group(p) < 0 ? -1 : 1;
	}
	return parse_addr_spec(p, first, stop);
}

/*
 * Parse a whole address list. The ';' that ends a group ends it clearly
 * enough that an address may follow without a comma, as some programs
 * write it ("team: a@x; b@y").
 */
static int
parse_list(struct ap *p)
{
	int r;

	while (cur(p)->type != T_END) {
		if (is_sp(cur(p), ',')) {
			p->i++;
			continue;
		}
		if ((r = parse_address(p, 0)) < 0)
			return -1;
		if (r == 0 && !is_sp(cur(p), ',') && cur(p)->type != T_END)
			return unexpected(p, "no comma after an address");
	}
	return 0;
}

/* Parse an address-list value. */
int
addrlist_parse(const char *value, size_t len, struct addrlist *l,
    char *err, size_t errlen)
{
	struct addrlist found = { NULL, 0 };
	struct ap p = { .s = value, .len = len, .out = &found };
	int rc = -1;

	if (tokenize(&p) < 0 || parse_list(&p) < 0) {
		if (p.at >= len)
			seterr(err, errlen, "%s at the end", p.why);
		else
			seterr(err, errlen, "%s at byte %zu", p.why, p.at + 1);
		addrlist_free(&found);
		goto out;
	}
	/* Hand the items over only when the whole value parsed. */
	if (found.n > 0) {
		l->v = xreallocarray(l->v, l->n + found.n, sizeof(*l->v));
		memcpy(l->v + l->n, found.v, found.n * sizeof(*found.v));
		l->n += found.n;
	}
	free(found.v);
	rc = 0;
out:
	free(p.t);
	return rc;
}

/* Free a list. */
void
addrlist_free(struct addrlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].addr);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* 1 when local can go into an addr-spec without quotes (a dot-atom). */
static int
is_dot_atom(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0' || *p == '.')
		return 0;
	for (; *p; p++) {
		if (*p == '.') {
			if (p[1] == '.' || p[1] == '\0')
				return 0;
		} else if (!is_atext(*p))
			return 0;
	}
	return 1;
}

/* The canonical form of local@domain. */
char *
addr_join(const char *local, const char *domain)
{
	struct buf b = BUF_INIT;

	if (is_dot_atom(local))
		buf_adds(&b, local);
	else {
		buf_addc(&b, '"');
		for (const char *c = local; *c; c++) {
			if (*c == '"' || *c == '\\')
				buf_addc(&b, '\\');
			buf_addc(&b, *c);
		}
		buf_addc(&b, '"');
	}
	if (domain != NULL) {
		buf_addc(&b, '@');
		buf_adds(&b, domain);
	}
	return buf_steal(&b);
}

/*
 * Read addr as one addr-spec (or bare local part) in RFC 5322 syntax.
 * Returns 0 with its parts, or -1 when it is not one.
 */
static int
split_spec(const char *addr, char **local, char **domain)
{
	struct addrlist none = { NULL, 0 };
	struct ap p = { .s = addr, .len = strlen(addr), .out = &none };
	size_t stop, dfirst;
	int rc = -1;

	if (tokenize(&p) < 0)
		goto out;
	stop = skip_words(&p, 0);
	if (!local_ok(&p, 0, stop))
		goto out;
	*domain = NULL;
	if (is_sp(&p.t[stop], '@')) {
		p.i = dfirst = stop + 1;
		if (parse_domain(&p) < 0 || cur(&p)->type != T_END)
			goto out;
		*domain = domain_text(&p, dfirst, p.i);
	} else if (p.t[stop].type != T_END)
		goto out;
	*local = local_text(&p, 0, stop);
	rc = 0;
out:
	free(p.t);
	return rc;
}

/*
 * addr_split, saying in *quoted_form whether addr was read as an
 * addr-spec (1) or as an unquoted address (0).
 */
static int
split_either(const char *addr, char **local, char **domain,
    int *quoted_form)
{
	const char *at;

	*local = *domain = NULL;
	if (*addr == '\0')
		return -1;
	for (const unsigned char *c = (const unsigned char *)addr; *c; c++)
		if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
			return -1;
	if (split_spec(addr, local, domain) == 0) {
		*quoted_form = 1;
		return 0;
	}
	*quoted_form = 0;
	if ((at = strrchr(addr, '@')) == NULL) {
		*local = xstrdup(addr);
		return 0;
	}
	*local = xstrndup(addr, (size_t)(at - addr));
	*domain = xstrdup(at + 1);
	return 0;
}

/* Split an address into unquoted local part and domain. */
int
addr_split(const char *addr, char **local, char **domain)
{
	int quoted_form;

	return split_either(addr, local, domain, &quoted_form);
}

/* 1 for a domain fit for a header: dot-atom or [literal]. */
static int
domain_ok(const char *d)
{
	size_t n = strlen(d);

	if (n >= 2 && d[0] == '[' && d[n - 1] == ']') {
		for (size_t i = 1; i + 1 < n; i++)
			if ((unsigned char)d[i] <= ' ' || d[i] == 0x7f ||
			    strchr("[]\\", d[i]) != NULL)
				return 0;
		return 1;
	}
	return is_dot_atom(d);
}

/* The canonical form of an address, or NULL when it is unusable. */
char *
addr_canon(const char *addr)
{
	char *local, *domain, *res = NULL;
	int quoted_form;

	if (split_either(addr, &local, &domain, &quoted_form) < 0)
		return NULL;
	/* "@x" unquoted has no local part; "\"\"@x" has an empty one. */
	if ((quoted_form || *local != '\0') &&
	    (domain == NULL || domain_ok(domain)))
		res = addr_join(local, domain);
	free(local);
	free(domain);
	return res;
}

/* Rewrite the addresses of a value. */
int
addrlist_rewrite(const char *value, size_t len, addr_map_fn map,
    void *arg, struct buf *out, size_t *changed, char *err, size_t errlen)
{
	struct addrlist l = { NULL, 0 };
	struct addrlist_item *it;
	size_t pos = 0, n = 0;
	char *r, *c;

	if (changed != NULL)
		*changed = 0;
	if (addrlist_parse(value, len, &l, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		it = &l.v[i];
		if ((r = map(arg, it->addr)) == NULL)
			continue;
		c = addr_canon(r);
		free(r);
		if (c != NULL && strcmp(c, it->addr) != 0) {
			buf_add(out, value + pos, it->off - pos);
			buf_adds(out, c);
			pos = it->off + it->len;
			n++;
		}
		free(c);
	}
	buf_add(out, value + pos, len - pos);
	addrlist_free(&l);
	if (changed != NULL)
		*changed = n;
	return 0;
}

/*
 * The fields whose addresses smtp_generic_maps rewrite: Postfix's sender
 * and recipient fields (header_opts.c), and Mail-Reply-To.
 */
static const char *const addr_fields[] = {
	"From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"Resent-From", "Resent-Sender", "Resent-Reply-To", "Resent-To",
	"Resent-Cc", "Resent-Bcc", "Return-Receipt-To",
	"Disposition-Notification-To", "Errors-To", "Mail-Followup-To",
	"Mail-Reply-To", "Apparently-To", "Return-Path",
};

/*
 * When the field at p (n bytes, continuation lines included) is one of
 * addr_fields, the offset of its value (just after the colon), else 0.
 * A field name is printable ASCII without ':', optionally followed by
 * white space (obsolete syntax), as in header.c.
 */
static size_t
addr_field_value(const char *p, size_t n)
{
	size_t name = 0, i;

	while (name < n && (unsigned char)p[name] > ' ' &&
	    (unsigned char)p[name] < 127 && p[name] != ':')
		name++;
	for (i = name; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
		;
	if (name == 0 || i >= n || p[i] != ':')
		return 0;
	for (size_t f = 0; f < sizeof(addr_fields) / sizeof(*addr_fields); f++)
		if (strlen(addr_fields[f]) == name &&
		    strncasecmp(p, addr_fields[f], name) == 0)
			return i + 1;
	return 0;
}

/* Length of the field at p: its first line and its continuation lines. */
static size_t
field_len(const char *p, size_t left)
{
	const char *nl;
	size_t n = 0;

	do {
		nl = memchr(p + n, '\n', left - n);
		n = nl ? (size_t)(nl - p) + 1 : left;
	} while (n < left && (p[n] == ' ' || p[n] == '\t'));
	return n;
}

/* Rewrite the address fields of a header block. */
size_t
hdr_rewrite_addrs(const char *hdr, size_t len, addr_map_fn map, void *arg,
    struct buf *out)
{
	size_t pos = 0, n, voff, vlen, changed, total = 0;
	const char *v;

	while (pos < len) {
		n = field_len(hdr + pos, len - pos);
		voff = addr_field_value(hdr + pos, n);
		if (voff == 0) {
			buf_add(out, hdr + pos, n);
			pos += n;
			continue;
		}
		/* The value ends before the field's line end. */
		v = hdr + pos + voff;
		vlen = n - voff;
		if (vlen > 0 && v[vlen - 1] == '\n')
			vlen--;
		if (vlen > 0 && v[vlen - 1] == '\r')
			vlen--;
		buf_add(out, hdr + pos, voff);
		if (addrlist_rewrite(v, vlen, map, arg, out, &changed, NULL,
		    0) < 0)
			buf_add(out, v, vlen);
		buf_add(out, v + vlen, n - voff - vlen);
		total += changed;
		pos += n;
	}
	return total;
}
