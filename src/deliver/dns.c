/*
 * dns.c - MX lookups with the libc resolver (see dns.h).
 *
 * dns_mx() is the only part that talks to the network: res_ninit reads
 * /etc/resolv.conf afresh for every lookup (a daemon that runs for months
 * sees a changed resolver), res_nquery sends the query (with the TCP
 * retry on truncation that libresolv does itself), and the reply goes to
 * dns_mx_parse(). res_nquery hides replies whose RCODE is an error, or
 * that have no answer: for those its h_errno says what happened.
 *
 * Failure policy, as Postfix's: only a name that does not exist
 * (NXDOMAIN) and a null MX are permanent; every other trouble, including
 * a reply we cannot make sense of, is temporary, so that a broken local
 * resolver defers mail instead of returning it.
 */
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>

#include "deliver/dns.h"
#include "lib/xalloc.h"

#define CNAME_HOPS	8	/* CNAMEs followed in one answer */
#define NAME_BUF	NS_MAXDNAME

/* Postfix's words for the resolver's errors. */
#define NOT_FOUND	"Host not found"
#define TRY_AGAIN_TEXT	"Host not found, try again"
#define NO_RECOVERY_TEXT "Non-recoverable error"
#define MALFORMED	"Malformed or unexpected name server reply"

/* Set out to a failure: kind, dsn and the sentence in err. */
static enum dns_rc
fail(struct dns_mx_list *out, enum dns_rc rc, const char *dsn,
    const char *domain, const char *why, char *err, size_t errlen)
{
	dns_mx_free(out);
	strlcpy(out->dsn, dsn, sizeof(out->dsn));
	if (strcmp(dsn, "5.1.10") == 0)
		snprintf(err, errlen, "Domain %s does not accept mail "
		    "(nullMX)", domain);
	else
		snprintf(err, errlen, "Host or domain name not found. Name "
		    "service error for name=%s type=MX: %s", domain, why);
	return rc;
}

/* The temporary failure every unusable reply becomes. */
static enum dns_rc
temp(struct dns_mx_list *out, const char *domain, const char *why,
    char *err, size_t errlen)
{
	return fail(out, DNS_TEMP, "4.4.3", domain, why, err, errlen);
}

/* 1 when two domain names are the same, ignoring case and a final dot. */
static int
same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/*
 * 1 when name may be used as a host name: letters, digits, '-', '_'
 * and dots. ns_name_ntop escapes anything else with a backslash; such a
 * name from DNS is not something to connect to or to put in a log.
 */
static int
host_ok(const char *name)
{
	const char *p;

	if (*name == '\0' || strlen(name) > 253)
		return 0;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		    *p == '.'))
			return 0;
	return 1;
}

/* The list holding only the domain itself (RFC 5321 5.1 implicit MX). */
static enum dns_rc
implicit(const char *domain, struct dns_mx_list *out)
{
	size_t n = strlen(domain);

	dns_mx_free(out);
	out->mx = xcalloc(1, sizeof(*out->mx));
	if (n > 0 && domain[n - 1] == '.')
		n--;
	out->mx[0].host = xstrndup(domain, n);
	out->n = 1;
	out->implicit = 1;
	return DNS_OK;
}

/*
 * The name in a record's data at p, uncompressed into name. Returns the
 * octets it takes in the data, or -1 when it is malformed or runs past
 * the record's end.
 */
static int
rdata_name(ns_msg *h, const ns_rr *rr, const unsigned char *p, char *name,
    size_t namelen)
{
	const unsigned char *end = ns_rr_rdata(*rr) + ns_rr_rdlen(*rr);
	int n;

	if (p >= end)
		return -1;
	n = ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), p, name,
	    namelen);
	if (n < 0 || p + n > end)
		return -1;
	return n;
}

/* Check the question: one, for domain, type MX, class IN. 0 or -1. */
static int
check_question(ns_msg *h, const char *domain)
{
	ns_rr q;

	if (ns_msg_count(*h, ns_s_qd) != 1 ||
	    ns_parserr(h, ns_s_qd, 0, &q) < 0)
		return -1;
	if (ns_rr_type(q) != ns_t_mx || ns_rr_class(q) != ns_c_in ||
	    !same_name(ns_rr_name(q), domain))
		return -1;
	return 0;
}

/*
 * Follow the CNAMEs of the answer from domain; cur gets the name the MX
 * records must be owned by. 0, or -1 for a malformed record.
 */
static int
follow_cnames(ns_msg *h, const char *domain, char *cur, size_t curlen)
{
	char target[NAME_BUF];
	int hop, i, n = ns_msg_count(*h, ns_s_an), moved;
	ns_rr rr;

	strlcpy(cur, domain, curlen);
	for (hop = 0; hop < CNAME_HOPS; hop++) {
		moved = 0;
		for (i = 0; i < n && !moved; i++) {
			if (ns_parserr(h, ns_s_an, i, &rr) < 0)
				return -1;
			if (ns_rr_type(rr) != ns_t_cname ||
			    ns_rr_class(rr) != ns_c_in ||
			    !same_name(ns_rr_name(rr), cur))
				continue;
			if (rdata_name(h, &rr, ns_rr_rdata(rr), target,
			    sizeof(target)) < 0)
				return -1;
			strlcpy(cur, target, curlen);
			moved = 1;
		}
		if (!moved)
			break;
	}
	return 0;
}

/* Add one exchanger, or lower the preference of one already there. */
static void
add_mx(struct dns_mx_list *out, const char *host, unsigned pref)
{
	size_t i, n = strlen(host);

	if (n > 0 && host[n - 1] == '.')
		n--;
	for (i = 0; i < out->n; i++)
		if (same_name(out->mx[i].host, host)) {
			if (pref < out->mx[i].pref)
				out->mx[i].pref = pref;
			return;
		}
	out->mx = xreallocarray(out->mx, out->n + 1, sizeof(*out->mx));
	out->mx[out->n].host = xstrndup(host, n);
	out->mx[out->n].pref = pref;
	out->n++;
}

/* qsort order: lower preference first. */
static int
by_pref(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* Sort by preference, shuffle equal ones, keep the best DNS_MX_MAX. */
static void
order(struct dns_mx_list *out)
{
	struct dns_mx t;
	size_t i, j, k, r;

	qsort(out->mx, out->n, sizeof(*out->mx), by_pref);
	for (i = 0; i < out->n; i = j) {
		for (j = i + 1; j < out->n && out->mx[j].pref ==
		    out->mx[i].pref; j++)
			;
		/* Fisher-Yates over the run [i, j). */
		for (k = j - 1; k > i; k--) {
			r = i + arc4random_uniform((uint32_t)(k - i + 1));
			t = out->mx[k];
			out->mx[k] = out->mx[r];
			out->mx[r] = t;
		}
	}
	for (i = DNS_MX_MAX; i < out->n; i++)
		free(out->mx[i].host);
	if (out->n > DNS_MX_MAX)
		out->n = DNS_MX_MAX;
}

/*
 * Collect the MX records owned by owner. *nullmx counts records whose
 * target is the root ("."), *bad those with an unusable host name.
 * 0, or -1 for a malformed record.
 */
static int
collect(ns_msg *h, const char *owner, struct dns_mx_list *out, int *nullmx,
    int *bad)
{
	char host[NAME_BUF];
	int i, n = ns_msg_count(*h, ns_s_an);
	ns_rr rr;

	*nullmx = *bad = 0;
	for (i = 0; i < n; i++) {
		if (ns_parserr(h, ns_s_an, i, &rr) < 0)
			return -1;
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in ||
		    !same_name(ns_rr_name(rr), owner))
			continue;
		if (ns_rr_rdlen(rr) < 3 || rdata_name(h, &rr,
		    ns_rr_rdata(rr) + 2, host, sizeof(host)) < 0)
			return -1;
		if (strcmp(host, ".") == 0 || host[0] == '\0')
			(*nullmx)++;
		else if (!host_ok(host))
			(*bad)++;
		else
			add_mx(out, host, ns_get16(ns_rr_rdata(rr)));
	}
	return 0;
}

/* Parse a reply to an MX query (see dns.h). */
enum dns_rc
dns_mx_parse(const char *domain, const unsigned char *msg, size_t len,
    struct dns_mx_list *out, char *err, size_t errlen)
{
	char owner[NAME_BUF];
	int nullmx, bad;
	ns_msg h;

	memset(out, 0, sizeof(*out));
	if (len > NS_MAXMSG || ns_initparse(msg, (int)len, &h) < 0 ||
	    !ns_msg_getflag(h, ns_f_qr) || check_question(&h, domain) < 0)
		return temp(out, domain, MALFORMED, err, errlen);
	/* A truncated reply may hold only some of the exchangers. */
	if (ns_msg_getflag(h, ns_f_tc))
		return temp(out, domain, MALFORMED " (truncated)", err,
		    errlen);
	switch (ns_msg_getflag(h, ns_f_rcode)) {
	case ns_r_noerror:
		break;
	case ns_r_nxdomain:
		return fail(out, DNS_PERM, "5.4.4", domain, NOT_FOUND, err,
		    errlen);
	case ns_r_servfail:
		return temp(out, domain, TRY_AGAIN_TEXT, err, errlen);
	default:
		return temp(out, domain, NO_RECOVERY_TEXT, err, errlen);
	}
	if (follow_cnames(&h, domain, owner, sizeof(owner)) < 0 ||
	    collect(&h, owner, out, &nullmx, &bad) < 0)
		return temp(out, domain, MALFORMED, err, errlen);
	if (out->n == 0 && nullmx > 0 && bad == 0)
		return fail(out, DNS_PERM, "5.1.10", domain, NULL, err,
		    errlen);
	if (out->n == 0 && bad > 0)
		return temp(out, domain, "malformed host name in the data of "
		    "an MX record", err, errlen);
	if (out->n == 0)
		return implicit(domain, out);
	order(out);
	return DNS_OK;
}

/* Look up domain's MX hosts (see dns.h). */
enum dns_rc
dns_mx(const char *domain, struct dns_mx_list *out, char *err,
    size_t errlen)
{
	struct __res_state rs;
	unsigned char *ans = NULL;
	enum dns_rc rc;
	int n;

	memset(out, 0, sizeof(*out));
	memset(&rs, 0, sizeof(rs));
	if (strlen(domain) >= NAME_BUF - 1)
		return temp(out, domain, "name too long", err, errlen);
	if (res_ninit(&rs) < 0)
		return temp(out, domain, "cannot initialize the resolver",
		    err, errlen);
	ans = xmalloc(NS_MAXMSG);
	n = res_nquery(&rs, domain, ns_c_in, ns_t_mx, ans, NS_MAXMSG);
	if (n > NS_MAXMSG)
		rc = temp(out, domain, MALFORMED " (too long)", err, errlen);
	else if (n >= 0)
		rc = dns_mx_parse(domain, ans, (size_t)n, out, err, errlen);
	else if (rs.res_h_errno == HOST_NOT_FOUND)
		rc = fail(out, DNS_PERM, "5.4.4", domain, NOT_FOUND, err,
		    errlen);
	else if (rs.res_h_errno == NO_DATA)
		rc = implicit(domain, out);
	else if (rs.res_h_errno == NO_RECOVERY)
		rc = temp(out, domain, NO_RECOVERY_TEXT, err, errlen);
	else
		rc = temp(out, domain, TRY_AGAIN_TEXT, err, errlen);
	free(ans);
	res_nclose(&rs);
	return rc;
}

/* Free the list. */
void
dns_mx_free(struct dns_mx_list *out)
{
	size_t i;

	for (i = 0; i < out->n; i++)
		free(out->mx[i].host);
	free(out->mx);
	out->mx = NULL;
	out->n = 0;
	out->implicit = 0;
}
