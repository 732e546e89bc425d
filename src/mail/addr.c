/*
 * addr.c - envelope addresses: checking, qualifying, and finding them in
 * address-list headers.
 *
 * sendmail feeds these functions untrusted text (its arguments and the
 * message's To/Cc/Bcc headers), and what they return goes into a queue
 * file whose records are one line each. So addr_check() is deliberately
 * narrow about bytes that could break a record or an SMTP command (CR,
 * LF, control characters), and permissive about syntax that the relay is
 * better placed to judge. addr_mailbox_check() then holds sendmail's
 * arguments to RFC 5321 Mailbox syntax, so that nothing after a space
 * can pass for an ESMTP parameter (issue 15), and addr_wire_ok() is the
 * SMTP client's last word on what goes inside <...>. addr_phrase()
 * makes a -F full name into header text that cannot start a new field.
 * Address-list headers are parsed by addrlist.c
 * (the RFC 5322 grammar: display names, quoted strings, comments, domain
 * literals and groups; never regular expressions).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mail/addr.h"
#include "mail/addrlist.h"

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

/* What is wrong with the bytes of s (NULL when nothing). */
static const char *
bad_bytes(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\n')
			return "contains a newline";
		if (*p == '\r')
			return "contains a carriage return";
		if (*p < 0x20 || *p == 0x7f)
			return "contains a control character";
	}
	return NULL;
}

/* 1 when s[0..n) has a '<' or '>' outside double quotes. */
static int
stray_angle(const char *s, size_t n)
{
	int quoted = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && (s[i] == '<' || s[i] == '>'))
			return 1;
	}
	return 0;
}

/* Check one address and strip its <>. */
int
addr_check(const char *in, int allow_empty, char **out, char *err,
    size_t errlen)
{
	const char *why, *s = in;
	size_t n;

	*out = NULL;
	if ((why = bad_bytes(in)) != NULL) {
		seterr(err, errlen, "%s", why);
		return -1;
	}
	/* The limit is on what was given, <> included: it bounds our work. */
	n = strlen(s);
	if (n > ADDR_MAX) {
		seterr(err, errlen, "longer than %d bytes", ADDR_MAX);
		return -1;
	}
	/* Surrounding blanks are a shell-quoting accident, not syntax. */
	while (*s == ' ' || *s == '\t')
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n > 0 && s[0] == '<') {
		if (n < 2 || s[n - 1] != '>') {
			seterr(err, errlen, "unbalanced <>");
			return -1;
		}
		s++;
		n -= 2;
	}
	/* "Bob <bob@x>" is a header form, not an envelope address. */
	if (stray_angle(s, n)) {
		seterr(err, errlen, "unbalanced <>");
		return -1;
	}
	if (n == 0 && !allow_empty) {
		seterr(err, errlen, "empty address");
		return -1;
	}
	*out = xstrndup(s, n);
	return 0;
}

/*
 * The '@' that ends the local part, or NULL: not the last one, since an
 * address literal may hold one ([tag:a@b]), and not one inside a quoted
 * local part ("a@b"@example.com).
 */
static const char *
domain_at(const char *addr)
{
	const char *p = addr;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++)
			if (*p == '\\' && p[1] != '\0')
				p++;
		if (*p == '\0')
			return strrchr(addr, '@');
	}
	return strchr(p, '@');
}

/* 1 when domain gets ".$mydomain" (append_dot_mydomain): no dot in it. */
static int
wants_dot(const char *domain, const struct addr_rewrite *rw)
{
	/* Never touch an address literal such as user@[192.0.2.1]. */
	return rw->append_dot_mydomain && domain[0] != '\0' &&
	    domain[0] != '[' && strchr(domain, '.') == NULL &&
	    rw->mydomain != NULL && *rw->mydomain != '\0';
}

/* Qualify a bare name with $myorigin and a dotless domain with $mydomain. */
char *
addr_qualify(const char *addr, const struct addr_rewrite *rw)
{
	const char *at;

	if (*addr == '\0')
		return xstrdup("");
	at = domain_at(addr);
	if (at == NULL) {
		if (!rw->append_at_myorigin || rw->myorigin == NULL ||
		    *rw->myorigin == '\0')
			return xstrdup(addr);
		/* The origin itself may lack a dot: qualify it in turn. */
		char *tmp = xasprintf("%s@%s", addr, rw->myorigin);
		char *res = addr_qualify(tmp, &(struct addr_rewrite){
		    .mydomain = rw->mydomain,
		    .append_dot_mydomain = rw->append_dot_mydomain });
		free(tmp);
		return res;
	}
	if (wants_dot(at + 1, rw))
		return xasprintf("%s.%s", addr, rw->mydomain);
	return xstrdup(addr);
}

/*
 * Qualify a header address in canonical form; split first, so that a
 * quoted local part holding '@' ("\"a@b\"") still counts as bare.
 */
char *
addr_qualify_canon(const char *addr, const struct addr_rewrite *rw)
{
	char *local = NULL, *domain = NULL, *tmp, *res = NULL;

	if (*addr == '\0' || addr_split(addr, &local, &domain) < 0)
		return NULL;
	if (domain == NULL) {
		if (!rw->append_at_myorigin || rw->myorigin == NULL ||
		    *rw->myorigin == '\0')
			goto out;
		domain = xstrdup(rw->myorigin);
	} else if (!wants_dot(domain, rw))
		goto out;
	if (wants_dot(domain, rw)) {
		tmp = xasprintf("%s.%s", domain, rw->mydomain);
		free(domain);
		domain = tmp;
	}
	res = addr_join(local, domain);
out:
	free(local);
	free(domain);
	return res;
}

/* Append an address to a list. */
void
addr_list_add(struct addr_list *l, const char *addr)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(addr);
}

/* Free a list. */
void
addr_list_free(struct addr_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/*
 * Extract the addresses of an address-list value: addrlist.c parses it
 * (the same parser that rewrites header addresses), this keeps only the
 * canonical addresses.
 */
int
addr_list_parse(const char *value, struct addr_list *l, char *err,
    size_t errlen)
{
	struct addrlist found = { NULL, 0 };

	if (addrlist_parse(value, strlen(value), &found, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < found.n; i++)
		addr_list_add(l, found.v[i].addr);
	addrlist_free(&found);
	return 0;
}

/* ---- RFC 5321 Mailbox syntax, the wire check, display names ---------- */

/*
 * Length of the UTF-8 character at p when it is well formed (no overlong
 * form, no surrogate, at most U+10FFFF) and not a C1 control; else 0.
 */
static size_t
utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* The second byte's range rules out overlongs and surrogates. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	/* U+0080..U+009F are control characters too. */
	if (c == 0xc2 && p[1] <= 0x9f)
		return 0;
	return n;
}

/* 1 for an RFC 5322 atext byte (ASCII). */
static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Say what is wrong with the byte at s[i], which may not be there. */
static void
bad_char(const char *s, size_t i, const char *where, char *err,
    size_t errlen)
{
	unsigned char c = (unsigned char)s[i];

	if (c == ' ' || c == '\t')
		seterr(err, errlen, "a space outside quotes at byte %zu "
		    "(RFC 5321 allows spaces only in a quoted local part, "
		    "as in \"a b\"@example.com)", i + 1);
	else if (c < 0x20 || c == 0x7f)
		seterr(err, errlen, "a control character at byte %zu", i + 1);
	else if (c >= 0x80)
		seterr(err, errlen, "malformed UTF-8 at byte %zu", i + 1);
	else
		seterr(err, errlen, "'%c' at byte %zu is not allowed %s", c,
		    i + 1, where);
}

/* A quoted-string local part at s; its length, or 0 with err. */
static size_t
quoted_local(const char *s, char *err, size_t errlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, n;

	for (i = 1; u[i] != '"'; i++) {
		if (u[i] == '\0') {
			seterr(err, errlen, "unterminated quoted string");
			return 0;
		}
		/* quoted-pairSMTP: a backslash and one printable ASCII. */
		if (u[i] == '\\' && u[i + 1] >= 0x20 && u[i + 1] <= 0x7e)
			i++;
		else if (u[i] >= 0x80 && (n = utf8_len(u + i)) > 0)
			i += n - 1;
		else if (u[i] < 0x20 || u[i] >= 0x7f || u[i] == '\\') {
			bad_char(s, i + (u[i] == '\\'), "in a quoted string",
			    err, errlen);
			return 0;
		}
	}
	return i + 1;
}

/* A Dot-string local part at s; its length, or 0 with err. */
static size_t
dot_local(const char *s, char *err, size_t errlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, start, n;

	for (;;) {
		for (start = i; u[i] != '\0'; i += n)
			if ((n = is_atext(u[i]) ? 1 : u[i] >= 0x80 ?
			    utf8_len(u + i) : 0) == 0)
				break;
		if (i == start) {
			if (u[i] == '.' || u[i] == '@' || u[i] == '\0')
				seterr(err, errlen, start == 0 ? (u[i] == '.' ?
				    "a dot at the start of the local part" :
				    "empty local part") : u[i] == '.' ?
				    "two dots in a row in the local part "
				    "(quote it: \"a..b\"@example.com)" :
				    "a dot at the end of the local part");
			else
				bad_char(s, i, "in a local part without "
				    "quotes", err, errlen);
			return 0;
		}
		if (u[i] != '.')
			return i;
		i++;
	}
}

/* An address literal "[...]" (RFC 5321 4.1.3); 0, or -1 with err. */
static int
literal_check(const char *d, char *err, size_t errlen)
{
	unsigned char a[16];
	size_t n = strlen(d), i, tag;
	char *in;
	int ok = 0;

	if (n < 3 || d[n - 1] != ']') {
		seterr(err, errlen, "an address literal must end with ']'");
		return -1;
	}
	in = xstrndup(d + 1, n - 2);
	tag = strcspn(in, ":");
	if (in[tag] == '\0')
		ok = inet_pton(AF_INET, in, a) == 1;
	else if (tag == 4 && strncasecmp(in, "IPv6", 4) == 0)
		ok = inet_pton(AF_INET6, in + 5, a) == 1;
	else {
		/* General-address-literal: Ldh-str ":" 1*dcontent, less
		   '<', '>' and '"', which a lenient server may take for the
		   end of the path or a quote (RFC 5321 allows them; nobody
		   needs them). */
		ok = tag > 0 && in[tag - 1] != '-' && in[tag + 1] != '\0';
		for (i = 0; ok && i < tag; i++)
			ok = isalnum((unsigned char)in[i]) || in[i] == '-';
		for (i = tag + 1; ok && in[i] != '\0'; i++)
			ok = in[i] >= 33 && in[i] <= 126 &&
			    strchr("[\\]<>\"", in[i]) == NULL;
	}
	free(in);
	if (!ok)
		seterr(err, errlen, "bad address literal %.60s", d);
	return ok ? 0 : -1;
}

/* The domain after '@' (off: its byte offset); 0, or -1 with err. */
static int
domain_check(const char *d, size_t off, char *err, size_t errlen)
{
	const unsigned char *u = (const unsigned char *)d;
	size_t i = 0, start, n;

	if (*d == '[')
		return literal_check(d, err, errlen);
	if (*d == '\0') {
		seterr(err, errlen, "no domain after '@'");
		return -1;
	}
	if (strlen(d) > 255) {
		seterr(err, errlen, "domain longer than 255 bytes");
		return -1;
	}
	for (;;) {
		for (start = i; u[i] != '\0' && u[i] != '.'; i += n)
			if ((n = isalnum(u[i]) || u[i] == '-' ? 1 : u[i] >= 0x80 ?
			    utf8_len(u + i) : 0) == 0) {
				bad_char(d - off, off + i, "in a domain", err,
				    errlen);
				return -1;
			}
		if (i == start || i - start > 63 || u[start] == '-' ||
		    u[i - 1] == '-') {
			seterr(err, errlen, i == start ? "an empty label in "
			    "the domain at byte %zu" : i - start > 63 ?
			    "a domain label longer than 63 bytes at byte %zu" :
			    "a hyphen at the start or end of a domain label at "
			    "byte %zu", off + start + 1);
			return -1;
		}
		if (u[i] == '\0')
			return 0;
		i++;
	}
}

/* RFC 5321 Mailbox syntax (see addr.h). */
int
addr_mailbox_check(const char *addr, int allow_bare, char *err,
    size_t errlen)
{
	size_t n;

	n = addr[0] == '"' ? quoted_local(addr, err, errlen) :
	    dot_local(addr, err, errlen);
	if (n == 0)
		return -1;
	if (addr[n] == '\0') {
		if (allow_bare)
			return 0;
		seterr(err, errlen, "no '@domain'");
		return -1;
	}
	if (addr[n] != '@') {
		bad_char(addr, n, addr[0] == '"' ? "after a quoted local part" :
		    "in a local part without quotes", err, errlen);
		return -1;
	}
	return domain_check(addr + n + 1, n + 1, err, errlen);
}

/* The SMTP client's last check of an address (see addr.h). */
int
addr_wire_ok(const char *addr)
{
	const unsigned char *p;
	int quoted = 0;

	for (p = (const unsigned char *)addr; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		if (quoted && *p == '\\' && p[1] != '\0') {
			if (p[1] < 0x20 || p[1] == 0x7f)
				return 0;
			p++;
		} else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == ' ' || *p == '<' || *p == '>'))
			return 0;
	}
	return !quoted;
}

/* Append the base64 form of n bytes at p (RFC 2045). */
static void
base64_add(struct buf *b, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned long v;
	size_t i;

	for (i = 0; i < n; i += 3) {
		v = (unsigned long)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned long)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf_addc(b, tab[(v >> 18) & 63]);
		buf_addc(b, tab[(v >> 12) & 63]);
		buf_addc(b, i + 1 < n ? tab[(v >> 6) & 63] : '=');
		buf_addc(b, i + 2 < n ? tab[v & 63] : '=');
	}
}

/*
 * A UTF-8 name as RFC 2047 encoded-words, B encoding: at most
 * PHRASE_CHUNK bytes each (40 base64 characters, a 52-character word),
 * never splitting a character, one word a line so that every line of
 * "From:" stays within 76 characters.
 */
#define PHRASE_CHUNK	30
static char *
phrase_encode(const char *name)
{
	const unsigned char *u = (const unsigned char *)name;
	struct buf b = BUF_INIT;
	size_t i = 0, start, n;

	while (u[i] != '\0') {
		for (start = i; u[i] != '\0'; i += n) {
			n = u[i] < 0x80 ? 1 : utf8_len(u + i);
			if (i - start + n > PHRASE_CHUNK)
				break;
		}
		if (start > 0)
			buf_adds(&b, "\n ");
		buf_adds(&b, "=?UTF-8?B?");
		base64_add(&b, u + start, i - start);
		buf_adds(&b, "?=");
	}
	return buf_steal(&b);
}

/* A display name as header text (see addr.h). */
char *
addr_phrase(const char *name, char *err, size_t errlen)
{
	const unsigned char *u = (const unsigned char *)name;
	struct buf b = BUF_INIT;
	int eight = 0;
	size_t i, n;

	if (strlen(name) > ADDR_PHRASE_MAX) {
		seterr(err, errlen, "longer than %d bytes", ADDR_PHRASE_MAX);
		return NULL;
	}
	for (i = 0; u[i] != '\0'; i += n) {
		n = 1;
		if (u[i] == '\n' || u[i] == '\r') {
			seterr(err, errlen, "contains a line break, which "
			    "would start a new header field");
			return NULL;
		}
		if (u[i] < 0x20 || u[i] == 0x7f || (u[i] >= 0x80 &&
		    (n = utf8_len(u + i)) == 0)) {
			seterr(err, errlen, "%s at byte %zu", u[i] >= 0x80 ?
			    "malformed UTF-8 or a control character" :
			    "a control character", i + 1);
			return NULL;
		}
		eight |= u[i] >= 0x80;
	}
	if (eight)
		return phrase_encode(name);
	/* Blanks alone are no name at all. */
	if (name[strspn(name, " ")] == '\0')
		return xstrdup("");
	if (strpbrk(name, "()<>[]:;@\\,.\"") == NULL)
		return xstrdup(name);
	/* A quoted-string: only '"' and '\\' need a backslash. */
	buf_addc(&b, '"');
	for (i = 0; name[i] != '\0'; i++) {
		if (name[i] == '"' || name[i] == '\\')
			buf_addc(&b, '\\');
		buf_addc(&b, name[i]);
	}
	buf_addc(&b, '"');
	return buf_steal(&b);
}
