/*
 * map_regexp.c - regexp: lookup tables, Postfix's regexp_table(5) with
 * POSIX regular expressions.
 *
 * A table is a list of rules tried in file order; the first pattern that
 * matches the key (or, negated, does not) gives the result, with $n
 * replaced by what the nth ( ) group matched. if/endif blocks skip the
 * rules inside them for keys that fail the if's pattern. Keys arrive as
 * given (maps.c does not fold them for pattern tables): the patterns
 * decide about case with their i flag, on by default as in Postfix.
 *
 * Where Postfix warns and skips a bad rule, postern refuses the table
 * with the line and the reason: a header check that silently lost a rule
 * would let through what it was written to remove. The file is read
 * again when it changes, as texthash is (map_text.c), and a re-read that
 * fails makes lookups errors until the file is fixed.
 *
 * Results could hold secrets (a table may answer with a login), so they
 * are wiped on free, messages never show them, and the buffer a lookup
 * answers in is wiped before it is reused.
 */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <bsd/string.h>

#include "conf/map_regexp.h"
#include "conf/map_text.h"
#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define MAX_REF		99999	/* a $n read stops growing past this */

enum rx_op { RX_MATCH, RX_IF, RX_ENDIF };

/* A pattern as written, before regcomp. */
struct rx_src {
	const char	*text;		/* NUL-terminated inside the line */
	int		 cflags;	/* REG_*: the defaults and the flags */
	int		 match;		/* 1: the key must match; 0: must not */
};

/*
 * A compiled pattern. The regex_t has a place of its own: POSIX does not
 * say that it may be copied, and the rule array moves when it grows.
 */
struct rx_pat {
	regex_t		*re;		/* NULL: none */
	int		 match;
};

/* One logical line of the table. */
struct rx_rule {
	enum rx_op	 op;
	int		 lineno;
	struct rx_pat	 pat;		/* RX_MATCH and RX_IF */
	struct rx_pat	 pat2;		/* RX_MATCH: /p1/!/p2/ (else unused) */
	char		*result;	/* RX_MATCH: as written, $ refs kept */
	size_t		 max_sub;	/* RX_MATCH: largest $n in result */
	size_t		 endif;		/* RX_IF: index of its endif */
};

struct map_regexp {
	struct rx_rule	*rule;
	size_t		 n;
	size_t		 cap;
	regmatch_t	*pm;		/* max_sub + 1 slots for regexec */
	size_t		 max_sub;
};

/* Parser state for one text. */
struct rx_ctx {
	struct map_regexp *t;
	size_t		  *open;	/* rule indexes of the open ifs */
	size_t		   depth;
	size_t		   open_cap;
	char		  *err;
	size_t		   errlen;
};

/* The loaded file behind a regexp: table. */
struct regexp_map {
	struct map_watch   w;		/* the file and its rules */
	struct buf	   value;	/* the last result */
};

/* White space as Postfix's ISSPACE sees it, whatever the locale. */
static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

/* ASCII letter or digit, whatever the locale. */
static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* A character for a message: itself when printable, else \xNN. */
static const char *
show_char(char c, char *buf, size_t size)
{
	unsigned char u = (unsigned char)c;

	if (u > 32 && u < 127)
		snprintf(buf, size, "%c", c);
	else
		snprintf(buf, size, "\\x%02x", u);
	return buf;
}

/* Set err to "line N: ..." and return -1. */
static int __attribute__((format(printf, 3, 4)))
rx_fail(struct rx_ctx *c, int lineno, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->err, c->errlen, "line %d: ", lineno);
	if (n >= 0 && (size_t)n < c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Free what a rule holds, wiping its result. */
static void
rule_clear(struct rx_rule *r)
{
	struct rx_pat *pats[2] = { &r->pat, &r->pat2 };

	for (size_t i = 0; i < 2; i++)
		if (pats[i]->re != NULL) {
			regfree(pats[i]->re);
			free(pats[i]->re);
		}
	free_secret(r->result);
	memset(r, 0, sizeof(*r));
}

/* Append a rule to the table, which takes what it holds. */
static void
rule_add(struct map_regexp *t, struct rx_rule *r)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->rule = xreallocarray(t->rule, t->cap, sizeof(*t->rule));
	}
	t->rule[t->n++] = *r;
	if (r->op == RX_MATCH && r->max_sub > t->max_sub)
		t->max_sub = r->max_sub;
}

/*
 * Read "!/pattern/flags" at *pp: any number of '!' (each one flips the
 * sense) and white space, the delimiter, the pattern up to the same
 * delimiter not escaped by a backslash, then flags up to white space or
 * '!'. The closing delimiter is overwritten with a NUL.
 */
static int
pat_scan(struct rx_ctx *c, int lineno, char **pp, struct rx_src *src)
{
	char *p = *pp, delim, ch[8];

	src->match = 1;
	for (;; p++) {
		if (*p == '!')
			src->match = !src->match;
		else if (!is_space((unsigned char)*p))
			break;
	}
	if (*p == '\0')
		return rx_fail(c, lineno, "missing pattern after \"!\"");
	delim = *p;
	if (is_alnum((unsigned char)delim) || delim == '\\')
		return rx_fail(c, lineno, "expected a pattern between "
		    "delimiters such as /regexp/, found \"%s\" (the delimiter "
		    "cannot be a letter, a digit or a backslash)",
		    show_char(delim, ch, sizeof(ch)));
	src->text = ++p;
	while (*p != '\0' && *p != delim)
		p += (*p == '\\' && p[1] != '\0') ? 2 : 1;
	if (*p == '\0')
		return rx_fail(c, lineno, "missing closing delimiter \"%s\" "
		    "(write it as \\%s inside the pattern)",
		    show_char(delim, ch, sizeof(ch)), ch);
	*p++ = '\0';
	src->cflags = REG_EXTENDED | REG_ICASE;
	for (; *p != '\0' && !is_space((unsigned char)*p) && *p != '!'; p++) {
		switch (*p) {
		case 'i':
			src->cflags ^= REG_ICASE;
			break;
		case 'm':
			src->cflags ^= REG_NEWLINE;
			break;
		case 'x':
			src->cflags ^= REG_EXTENDED;
			break;
		default:
			return rx_fail(c, lineno, "unknown flag \"%s\" after "
			    "the pattern (the flags are i, m and x)",
			    show_char(*p, ch, sizeof(ch)));
		}
	}
	*pp = p;
	return 0;
}

/* regcomp a scanned pattern into pat. */
static int
pat_compile(struct rx_ctx *c, int lineno, const struct rx_src *src,
    int nosub, struct rx_pat *pat)
{
	char msg[256];
	int rc;

	pat->re = xmalloc(sizeof(*pat->re));
	rc = regcomp(pat->re, src->text, src->cflags | (nosub ? REG_NOSUB : 0));
	if (rc != 0) {
		/* regcomp freed what it built; regerror needs only the code. */
		regerror(rc, pat->re, msg, sizeof(msg));
		free(pat->re);
		pat->re = NULL;
		return rx_fail(c, lineno, "bad regular expression: %s", msg);
	}
	pat->match = src->match;
	return 0;
}

/*
 * The $ reference at p (p[0] == '$') as Postfix's mac_parse reads it for
 * regexp tables: "$$", or a group number written $n, ${n} or $(n) (a
 * plain $ takes the letters, digits and '_' after it, so "$1a" is the
 * name "1a", not a number). Returns its length with the number in *n (0
 * for "$$"), or 0 with *why.
 */
static size_t
ref_parse(const char *p, size_t *n, const char **why)
{
	const char *q = p + 1;
	size_t i, v = 0;
	char close = '\0';

	if (*q == '$') {
		*n = 0;
		return 2;
	}
	if (*q == '{' || *q == '(') {
		close = *q == '{' ? '}' : ')';
		q++;
	}
	for (i = 0; is_alnum((unsigned char)q[i]) || q[i] == '_'; i++) {
		if (q[i] < '0' || q[i] > '9') {
			*why = "\"$\" followed by a name, not a group "
			    "number (write ${n} when letters follow the "
			    "number, $$ for a dollar sign)";
			return 0;
		}
		v = v > MAX_REF ? v : v * 10 + (size_t)(q[i] - '0');
	}
	if (i == 0) {
		*why = close ? "\"${\" or \"$(\" without a group number" :
		    "\"$\" without a group number (write $1 to $9, ${n} or "
		    "$(n), and $$ for a dollar sign)";
		return 0;
	}
	q += i;
	if (close != '\0' && *q++ != close) {
		*why = close == '}' ? "\"${\" without its \"}\"" :
		    "\"$(\" without its \")\"";
		return 0;
	}
	if (v == 0) {
		*why = "$0 is not a group (the first ( ) group is $1)";
		return 0;
	}
	*n = v;
	return (size_t)(q - p);
}

/* Check a result's $ references; the largest group number in *max. */
static int
result_scan(const char *r, size_t *max, const char **why)
{
	size_t k, n;

	*max = 0;
	while ((r = strchr(r, '$')) != NULL) {
		if ((k = ref_parse(r, &n, why)) == 0)
			return -1;
		if (n > *max)
			*max = n;
		r += k;
	}
	return 0;
}

/*
 * A rule's result with its references replaced, matched against key with
 * groups pm: the length, and the text at dst (room for the length) when
 * dst is not NULL. The result was checked when the table was parsed.
 */
static size_t
expand(const struct rx_rule *r, const char *key, const regmatch_t *pm,
    char *dst)
{
	const char *p = r->result, *src, *why;
	size_t len = 0, k, n, part;

	while (*p != '\0') {
		if (*p != '$') {
			src = p;
			k = part = strcspn(p, "$");
		} else {
			k = ref_parse(p, &n, &why);
			if (k == 0)
				fatalx("regexp table: result not checked");
			if (n == 0) {
				src = "$";
				part = 1;
			} else if (pm[n].rm_so < 0 ||
			    pm[n].rm_eo < pm[n].rm_so) {
				src = "";	/* the group matched nothing */
				part = 0;
			} else {
				src = key + pm[n].rm_so;
				part = (size_t)(pm[n].rm_eo - pm[n].rm_so);
			}
		}
		if (dst != NULL)
			memcpy(dst + len, src, part);
		len += part;
		p += k;
	}
	return len;
}

/* "/pattern/flags result", "!/pattern/flags result", "/p1/!/p2/ result". */
static int
line_match(struct rx_ctx *c, char *p, int lineno)
{
	struct rx_rule r;
	struct rx_src s1, s2;
	const char *why;
	int two = 0;

	memset(&r, 0, sizeof(r));
	if (pat_scan(c, lineno, &p, &s1) < 0)
		return -1;
	if (*p == '!') {
		two = 1;
		if (pat_scan(c, lineno, &p, &s2) < 0)
			return -1;
		if (*p == '!')
			return rx_fail(c, lineno, "more than two patterns (use "
			    "if /pattern/ ... endif)");
	}
	while (is_space((unsigned char)*p))
		p++;
	if (*p == '\0')
		return rx_fail(c, lineno, "missing result after the pattern "
		    "(write /pattern/ result)");
	if (result_scan(p, &r.max_sub, &why) < 0)
		return rx_fail(c, lineno, "bad result: %s", why);
	if (r.max_sub > 0 && !s1.match)
		return rx_fail(c, lineno, "$%zu in the result of a negated "
		    "pattern (!/.../): a key that does not match has no groups "
		    "to use", r.max_sub);
	/* Groups are only worth recording when the result uses them. */
	if (pat_compile(c, lineno, &s1, r.max_sub == 0, &r.pat) < 0)
		goto fail;
	if (r.max_sub > r.pat.re->re_nsub) {
		rx_fail(c, lineno, "the result uses $%zu but the pattern has "
		    "%zu ( ) group%s", r.max_sub, r.pat.re->re_nsub,
		    r.pat.re->re_nsub == 1 ? "" : "s");
		goto fail;
	}
	if (two && pat_compile(c, lineno, &s2, 1, &r.pat2) < 0)
		goto fail;
	r.op = RX_MATCH;
	r.lineno = lineno;
	r.result = xstrdup(p);
	rule_add(c->t, &r);
	return 0;
fail:
	rule_clear(&r);
	return -1;
}

/* "if /pattern/flags" (p is after "if"): opens a block. */
static int
line_if(struct rx_ctx *c, char *p, int lineno)
{
	struct rx_rule r;
	struct rx_src s;

	memset(&r, 0, sizeof(r));
	while (is_space((unsigned char)*p))
		p++;
	if (*p == '\0')
		return rx_fail(c, lineno, "if without a pattern (write "
		    "if /pattern/)");
	if (pat_scan(c, lineno, &p, &s) < 0)
		return -1;
	while (is_space((unsigned char)*p))
		p++;
	/* Postfix warns and goes on; an indented rule would be lost. */
	if (*p != '\0')
		return rx_fail(c, lineno, "text after the if pattern (a rule "
		    "inside if ... endif must start in the first column: a "
		    "line that starts with white space continues the line "
		    "before it)");
	if (pat_compile(c, lineno, &s, 1, &r.pat) < 0)
		return -1;
	r.op = RX_IF;
	r.lineno = lineno;
	if (c->depth == c->open_cap) {
		c->open_cap = c->open_cap ? c->open_cap * 2 : 8;
		c->open = xreallocarray(c->open, c->open_cap,
		    sizeof(*c->open));
	}
	c->open[c->depth++] = c->t->n;
	rule_add(c->t, &r);
	return 0;
}

/* "endif" (p is after "endif"): closes the innermost open block. */
static int
line_endif(struct rx_ctx *c, char *p, int lineno)
{
	struct rx_rule r;

	if (c->depth == 0)
		return rx_fail(c, lineno, "endif without if");
	while (is_space((unsigned char)*p))
		p++;
	if (*p != '\0')
		return rx_fail(c, lineno, "text after endif");
	memset(&r, 0, sizeof(r));
	r.op = RX_ENDIF;
	r.lineno = lineno;
	c->t->rule[c->open[--c->depth]].endif = c->t->n;
	rule_add(c->t, &r);
	return 0;
}

/* Whether p starts with the word w (any case) and no letter or digit. */
static int
word_is(const char *p, const char *w)
{
	size_t n = strlen(w);

	return strncasecmp(p, w, n) == 0 && !is_alnum((unsigned char)p[n]);
}

/* One logical line (line[len] writable), trailing white space dropped. */
static int
rx_line(struct rx_ctx *c, char *line, size_t len, int lineno)
{
	while (len > 0 && is_space((unsigned char)line[len - 1]))
		len--;
	line[len] = '\0';
	if (!is_alnum((unsigned char)line[0]))
		return line_match(c, line, lineno);
	if (word_is(line, "if"))
		return line_if(c, line + 2, lineno);
	if (word_is(line, "endif"))
		return line_endif(c, line + 5, lineno);
	return rx_fail(c, lineno, "expected \"/pattern/ result\", \"if "
	    "/pattern/\" or \"endif\"");
}

/* Split the text into logical lines and parse each into c->t. */
static int
rx_lines(struct rx_ctx *c, const char *data, size_t len)
{
	const char *p = data, *end = data + len, *nl, *eol, *q;
	char *line;
	size_t used = 0;
	int lineno = 0, start = 0, rc = -1;

	/* A logical line is never longer than the text: no growing copies. */
	if (len == SIZE_MAX)
		fatalx("regexp table text too large");
	line = xmalloc(len + 1);
	for (; p < end; p = nl ? nl + 1 : end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		eol = nl ? nl : end;
		lineno++;
		if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
			rx_fail(c, lineno, "NUL byte");
			goto out;
		}
		if (eol > p && eol[-1] == '\r')
			eol--;
		for (q = p; q < eol && is_space((unsigned char)*q); q++)
			;
		if (q == eol || *q == '#')
			continue;	/* does not end a logical line */
		if (q != p) {
			if (used == 0) {
				rx_fail(c, lineno, "continuation line "
				    "without a rule before it (remove the "
				    "leading white space)");
				goto out;
			}
			memcpy(line + used, p, (size_t)(eol - p));
			used += (size_t)(eol - p);
			continue;
		}
		if (used > 0 && rx_line(c, line, used, start) < 0)
			goto out;
		memcpy(line, p, (size_t)(eol - p));
		used = (size_t)(eol - p);
		start = lineno;
	}
	if (used > 0 && rx_line(c, line, used, start) < 0)
		goto out;
	rc = 0;
out:
	explicit_bzero(line, len + 1);
	free(line);
	return rc;
}

/* Parse regexp_table(5) text. */
int
map_regexp_parse(const char *data, size_t len, struct map_regexp **out,
    char *err, size_t errlen)
{
	struct rx_ctx c;
	struct map_regexp *t = xcalloc(1, sizeof(*t));
	int rc;

	memset(&c, 0, sizeof(c));
	c.t = t;
	c.err = err;
	c.errlen = errlen;
	rc = rx_lines(&c, data, len);
	if (rc == 0 && c.depth > 0) {
		snprintf(err, errlen, "end of file: if without endif "
		    "(line %d)%s", t->rule[c.open[c.depth - 1]].lineno,
		    c.depth > 1 ? ", and more open ifs before it" : "");
		rc = -1;
	}
	free(c.open);
	if (rc < 0) {
		map_regexp_free(t);
		*out = NULL;
		return -1;
	}
	t->pm = xcalloc(t->max_sub + 1, sizeof(*t->pm));
	*out = t;
	return 0;
}

/* Whether key passes pat: 1, 0, or -1 with err when regexec fails. */
static int
pat_test(const struct rx_pat *pat, int lineno, const char *key,
    size_t nmatch, regmatch_t *pm, char *err, size_t errlen)
{
	char msg[256];
	int rc;

	rc = regexec(pat->re, key, nmatch, nmatch ? pm : NULL, 0);
	if (rc == 0)
		return pat->match;
	if (rc == REG_NOMATCH)
		return !pat->match;
	regerror(rc, pat->re, msg, sizeof(msg));
	snprintf(err, errlen, "line %d: cannot match the pattern: %s", lineno,
	    msg);
	return -1;
}

/* Look key up: the first rule that applies gives the result. */
int
map_regexp_match(struct map_regexp *t, const char *key, struct buf *value,
    char *err, size_t errlen)
{
	struct rx_rule *r;
	size_t i, len;
	int rc;

	for (i = 0; i < t->n; i++) {
		r = &t->rule[i];
		if (r->op == RX_ENDIF)
			continue;
		rc = pat_test(&r->pat, r->lineno, key, r->op == RX_MATCH ?
		    r->max_sub + (r->max_sub > 0) : 0, t->pm, err, errlen);
		if (rc < 0)
			return MAP_ERROR;
		if (r->op == RX_IF) {
			if (rc == 0)
				i = r->endif;	/* the loop steps past it */
			continue;
		}
		if (rc == 0)
			continue;
		if (r->pat2.re != NULL) {
			rc = pat_test(&r->pat2, r->lineno, key, 0, NULL, err,
			    errlen);
			if (rc < 0)
				return MAP_ERROR;
			if (rc == 0)
				continue;
		}
		/* Wipe, then size once: growing would copy the old text. */
		len = expand(r, key, t->pm, NULL);
		buf_wipe(value);
		buf_reserve(value, len);
		expand(r, key, t->pm, value->data);
		value->len = len;
		value->data[len] = '\0';
		return MAP_FOUND;
	}
	return MAP_NOTFOUND;
}

/* Number of rules. */
size_t
map_regexp_count(const struct map_regexp *t)
{
	return t->n;
}

/* Free the table, wiping the results. */
void
map_regexp_free(struct map_regexp *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		rule_clear(&t->rule[i]);
	free(t->rule);
	free(t->pm);
	free(t);
}

/* ---- the file behind regexp:/path ----------------------------------- */

/* map_watch's parser for regexp:. */
static int
rm_parse(struct map_watch *w, const char *data, size_t len, void **table,
    char *err, size_t errlen)
{
	struct map_regexp *t = NULL;

	(void)w;
	if (map_regexp_parse(data, len, &t, err, errlen) < 0)
		return -1;
	*table = t;
	return 0;
}

static void
rm_drop(void *table)
{
	map_regexp_free(table);
}

/* regexp: lookup (key as given). */
static int
rm_find(void *state, const char *key, const char **value, char *err,
    size_t errlen)
{
	struct regexp_map *rm = state;
	struct map_regexp *t = map_watch_table(&rm->w, err, errlen);
	int rc;

	if (t == NULL)
		return MAP_ERROR;
	rc = map_regexp_match(t, key, &rm->value, err, errlen);
	*value = rc == MAP_FOUND ? rm->value.data : NULL;
	return rc;
}

/* Stat at the next lookup. */
static void
rm_recheck(void *state)
{
	struct regexp_map *rm = state;

	map_watch_recheck(&rm->w);
}

/* Look at the file now, as a lookup would. */
static void
rm_refresh(void *state)
{
	struct regexp_map *rm = state;
	char err[512];

	(void)map_watch_table(&rm->w, err, sizeof(err));
}

/* Free a regexp: table and its last answer. */
static void
rm_close(void *state)
{
	struct regexp_map *rm = state;

	map_watch_free(&rm->w);
	buf_free(&rm->value);
	free(rm);
}

static const struct map_ops regexp_ops = {
	.find = rm_find, .recheck = rm_recheck, .close = rm_close,
	.refresh = rm_refresh,
};

/* Open regexp:/path, reading the file now. */
int
map_regexp_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen)
{
	struct regexp_map *rm = xcalloc(1, sizeof(*rm));

	if (map_watch_init(&rm->w, title, name, rm_parse, rm_drop, err,
	    errlen) < 0) {
		free(rm);
		return -1;
	}
	*ops = &regexp_ops;
	*state = rm;
	return 0;
}
