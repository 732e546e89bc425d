/*
 * dns.h - MX lookups for relays written without brackets (RFC 5321 5.1).
 *
 * relayhost = example.com means "the mail exchangers of example.com";
 * [example.com] means the host itself. dns_mx() asks the libc resolver
 * (res_nquery, /etc/resolv.conf) for the MX records and returns the hosts
 * to try, best first. The answer parser is a pure function of the reply
 * bytes (dns_mx_parse), so it is unit-tested and fuzzed without a network.
 *
 * Outcomes, with Postfix's wording in err:
 *   MX records      the hosts, by preference; equal preferences in random
 *                   order (RFC 5321 5.1 load spreading)
 *   no MX (NODATA)  the domain itself, as the only host (implicit MX)
 *   NXDOMAIN        permanent, 5.4.4 "Host or domain name not found. Name
 *                   service error for name=x type=MX: Host not found"
 *   null MX         permanent, 5.1.10 (RFC 7505: "MX 0 .", the domain
 *                   accepts no mail)
 *   anything else   temporary, 4.4.3: SERVFAIL, timeouts, no resolver,
 *                   truncated or malformed replies
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>

/* At most this many mail exchangers are kept, the best ones. */
#define DNS_MX_MAX	8

/* What a lookup came to. */
enum dns_rc {
	DNS_OK = 0,		/* hosts in the list */
	DNS_TEMP = 4,		/* try again later */
	DNS_PERM = 5,		/* the domain takes no mail: bounce */
};

/* One mail exchanger. */
struct dns_mx {
	char		*host;		/* without the trailing dot */
	unsigned	 pref;
};

/* The hosts to try, best first. */
struct dns_mx_list {
	struct dns_mx	*mx;
	size_t		 n;
	int		 implicit;	/* no MX records: the domain itself */
	char		 dsn[8];	/* of a failure: "5.4.4", "4.4.3"... */
};

/*
 * Look up the MX records of domain. Returns DNS_OK with out filled (free
 * it with dns_mx_free), or DNS_TEMP / DNS_PERM with the reason in err and
 * the enhanced status code in out->dsn (out holds no hosts then).
 */
enum dns_rc dns_mx(const char *domain, struct dns_mx_list *out, char *err,
    size_t errlen);

/*
 * Parse a complete DNS reply (header, question, answers) to an MX query
 * for domain (pure, but for the random order of equal preferences).
 * The reply's RCODE counts: NXDOMAIN is permanent, other errors are
 * temporary; CNAMEs in the answer are followed. Same results as dns_mx.
 */
enum dns_rc dns_mx_parse(const char *domain, const unsigned char *msg,
    size_t len, struct dns_mx_list *out, char *err, size_t errlen);

/* Free the hosts; out is empty afterwards. */
void dns_mx_free(struct dns_mx_list *out);

#endif
