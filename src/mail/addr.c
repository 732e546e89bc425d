/*
 * addr.c - envelope addresses: checking, qualifying, and finding them in
 * address-list headers.
 *
 * sendmail feeds these functions untrusted text (its arguments and the
 * message's To/Cc/Bcc headers), and what they return goes into a queue
 * file whose records are one line each. So addr_check() is deliberately
 * narrow about bytes that could break a record or an SMTP command (CR,
 * LF, control characters), and permissive about syntax that the relay is
 * better placed to judge. Address-list headers are parsed by addrlist.c
 * (the RFC 5322 grammar: display names, quoted strings, comments, domain
 * literals and groups; never regular expressions).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	/* The last '@': a quoted local part may contain one. */
	at = strrchr(addr, '@');
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
