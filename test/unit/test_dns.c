/*
 * test_dns.c - dns_mx_parse: DNS replies to MX queries, made byte by
 * byte here, to the hosts to try (or why there are none).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/dns.h"

#define QR	0x8000
#define TC	0x0200
#define RD	0x0100
#define RA	0x0080
#define T_A	1
#define T_CNAME	5
#define T_MX	15
#define OWNER_Q	NULL	/* owner name: a pointer to the question's name */

/* A DNS message being built. */
struct msg {
	unsigned char	b[8192];
	size_t		n;
};

static void
put8(struct msg *m, unsigned v)
{
	assert_true(m->n < sizeof(m->b));
	m->b[m->n++] = (unsigned char)v;
}

static void
put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

/* A name as labels ("." is the root), or a pointer to the question. */
static void
put_name(struct msg *m, const char *name)
{
	const char *p = name, *dot;
	size_t len;

	if (name == OWNER_Q) {
		put16(m, 0xc00c);
		return;
	}
	while (*p != '\0' && strcmp(p, ".") != 0) {
		dot = strchr(p, '.');
		len = dot ? (size_t)(dot - p) : strlen(p);
		put8(m, (unsigned)len);
		memcpy(m->b + m->n, p, len);
		m->n += len;
		p += len + (dot != NULL);
	}
	put8(m, 0);
}

/* Header and question (name, type MX, class IN). */
static void
start(struct msg *m, const char *qname, unsigned flags, unsigned an)
{
	m->n = 0;
	put16(m, 0x1234);
	put16(m, flags);
	put16(m, 1);
	put16(m, an);
	put16(m, 0);
	put16(m, 0);
	put_name(m, qname);
	put16(m, T_MX);
	put16(m, 1);
}

/* A record's owner, type, class IN, TTL; returns where RDLENGTH goes. */
static size_t
rr_head(struct msg *m, const char *owner, unsigned type)
{
	size_t at;

	put_name(m, owner);
	put16(m, type);
	put16(m, 1);
	put16(m, 0);
	put16(m, 3600);
	at = m->n;
	put16(m, 0);
	return at;
}

/* Fill in the RDLENGTH at at. */
static void
rr_end(struct msg *m, size_t at)
{
	size_t len = m->n - at - 2;

	m->b[at] = (unsigned char)(len >> 8);
	m->b[at + 1] = (unsigned char)(len & 0xff);
}

static void
rr_mx(struct msg *m, const char *owner, unsigned pref, const char *target)
{
	size_t at = rr_head(m, owner, T_MX);

	put16(m, pref);
	put_name(m, target);
	rr_end(m, at);
}

static void
rr_cname(struct msg *m, const char *owner, const char *target)
{
	size_t at = rr_head(m, owner, T_CNAME);

	put_name(m, target);
	rr_end(m, at);
}

static void
rr_a(struct msg *m, const char *owner)
{
	size_t at = rr_head(m, owner, T_A);

	put8(m, 192);
	put8(m, 0);
	put8(m, 2);
	put8(m, 1);
	rr_end(m, at);
}

/* Parse m as the reply for domain; the result code. */
static enum dns_rc
parse(const char *domain, const struct msg *m, struct dns_mx_list *l,
    char *err, size_t errlen)
{
	err[0] = '\0';
	return dns_mx_parse(domain, m->b, m->n, l, err, errlen);
}

/* Expect a temporary failure with 4.4.3 and no hosts. */
static void
expect_temp(const char *domain, const struct msg *m, const char *word)
{
	struct dns_mx_list l;
	char err[512];

	assert_int_equal(parse(domain, m, &l, err, sizeof(err)), DNS_TEMP);
	assert_string_equal(l.dsn, "4.4.3");
	assert_int_equal(l.n, 0);
	assert_null(l.mx);
	if (word != NULL && strstr(err, word) == NULL)
		fail_msg("\"%s\" not in \"%s\"", word, err);
	dns_mx_free(&l);
}

/* Hosts come back by preference, whatever the order in the reply. */
static void
test_sorted(void **state)
{
	struct dns_mx_list l;
	struct msg m;
	char err[512];

	(void)state;
	start(&m, "example.com", QR | RD | RA, 3);
	rr_mx(&m, OWNER_Q, 20, "mx2.example.com");
	rr_mx(&m, OWNER_Q, 10, "mx1.example.com");
	rr_mx(&m, OWNER_Q, 30, "backup.example.net");
	assert_int_equal(parse("example.com", &m, &l, err, sizeof(err)),
	    DNS_OK);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.implicit, 0);
	assert_string_equal(l.mx[0].host, "mx1.example.com");
	assert_int_equal(l.mx[0].pref, 10);
	assert_string_equal(l.mx[1].host, "mx2.example.com");
	assert_int_equal(l.mx[1].pref, 20);
	assert_string_equal(l.mx[2].host, "backup.example.net");
	assert_int_equal(l.mx[2].pref, 30);
	dns_mx_free(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.mx);
}

/*
 * Equal preferences: every host is there every time, in an order that
 * changes (300 tries: each of three hosts comes first at least once,
 * or the shuffle is broken; chance of a false alarm about 3 * (2/3)^300).
 */
static void
test_equal_shuffled(void **state)
{
	const char *names[] = { "a.example", "b.example", "c.example" };
	int first[3] = { 0, 0, 0 }, seen, i, k, j;
	struct dns_mx_list l;
	struct msg m;
	char err[512];

	(void)state;
	start(&m, "example.com", QR | RA, 5);
	rr_mx(&m, OWNER_Q, 10, "a.example");
	rr_mx(&m, OWNER_Q, 50, "last.example");
	rr_mx(&m, OWNER_Q, 10, "b.example");
	rr_mx(&m, OWNER_Q, 5, "best.example");
	rr_mx(&m, OWNER_Q, 10, "c.example");
	for (i = 0; i < 300; i++) {
		assert_int_equal(parse("example.com", &m, &l, err,
		    sizeof(err)), DNS_OK);
		assert_int_equal(l.n, 5);
		assert_string_equal(l.mx[0].host, "best.example");
		assert_string_equal(l.mx[4].host, "last.example");
		seen = 0;
		for (k = 1; k <= 3; k++) {
			assert_int_equal(l.mx[k].pref, 10);
			for (j = 0; j < 3; j++)
				if (strcmp(l.mx[k].host, names[j]) == 0) {
					seen |= 1 << j;
					if (k == 1)
						first[j]++;
				}
		}
		assert_int_equal(seen, 7);
		dns_mx_free(&l);
	}
	for (j = 0; j < 3; j++)
		if (first[j] == 0)
			fail_msg("%s never came first in 300 tries", names[j]);
}

/* NOERROR without MX records: the domain itself (implicit MX). */
static void
test_nodata(void **state)
{
	struct dns_mx_list l;
	struct msg m;
	char err[512];

	(void)state;
	start(&m, "mail.example", QR | RA, 0);
	assert_int_equal(parse("mail.example", &m, &l, err, sizeof(err)),
	    DNS_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.implicit, 1);
	assert_string_equal(l.mx[0].host, "mail.example");
	dns_mx_free(&l);
	/* Records of other types, or other owners, are not MX records. */
	start(&m, "mail.example.", QR | RA, 2);
	rr_a(&m, OWNER_Q);
	rr_mx(&m, "other.example", 10, "mx.other.example");
	assert_int_equal(parse("mail.example.", &m, &l, err, sizeof(err)),
	    DNS_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.implicit, 1);
	assert_string_equal(l.mx[0].host, "mail.example");
	dns_mx_free(&l);
}

/* NXDOMAIN is permanent, with Postfix's words and 5.4.4. */
static void
test_nxdomain(void **state)
{
	struct dns_mx_list l;
	struct msg m;
	char err[512];

	(void)state;
	start(&m, "nowhere.example", QR | RA | 3, 0);
	assert_int_equal(parse("nowhere.example", &m, &l, err, sizeof(err)),
	    DNS_PERM);
	assert_string_equal(l.dsn, "5.4.4");
	assert_int_equal(l.n, 0);
	assert_string_equal(err, "Host or domain name not found. Name service "
	    "error for name=nowhere.example type=MX: Host not found");
}

/* RFC 7505 null MX: permanent, 5.1.10; ignored next to real hosts. */
static void
test_null_mx(void **state)
{
	struct dns_mx_list l;
	struct msg m;
	char err[512];

	(void)state;
	start(&m, "nomail.example", QR | RA, 1);
	rr_mx(&m, OWNER_Q, 0, ".");
	assert_int_equal(parse("nomail.example", &m, &l, err, sizeof(err)),
	    DNS_PERM);
	assert_string_equal(l.dsn, "5.1.10");
	assert_int_equal(l.n, 0);
	assert_string_equal(err, "Domain nomail.example does not accept mail "
	    "(nullMX)");
	/* A misconfigured domain with a null MX and a real one. */
	start(&m, "half.example", QR | RA, 2);
	rr_mx(&m, OWNER_Q, 0, ".");
	rr_mx(&m, OWNER_Q, 10, "mx.half.example");
	assert_int_equal(parse("half.example", &m, &l, err, sizeof(err)),
	    DNS_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.mx[0].host, "mx.half.example");
	dns_mx_free(&l);
}

/* Server trouble is temporary (4.4.3), never a bounce. */
static void
test_rcodes(void **state)
{
	struct msg m;

	(void)state;
	start(&m, "example.com", QR | RA | 2, 0);	/* SERVFAIL */
	expect_temp("example.com", &m, "type=MX: Host not found, try again");
	start(&m, "example.com", QR | RA | 5, 0);	/* REFUSED */
	expect_temp("example.com", &m, "Non-recoverable error");
	start(&m, "example.com", QR | RA | 1, 0);	/* FORMERR */
	expect_temp("example.com", &m, "Non-recoverable error");
}

/* Every prefix of a good reply, and a reply marked truncated. */
static void
test_truncated(void **state)
{
	struct dns_mx_list l;
	struct msg m, cut;
	char err[512];
	size_t i;

	(void)state;
	start(&m, "example.com", QR | RA, 2);
	rr_mx(&m, OWNER_Q, 10, "mx1.example.com");
	rr_mx(&m, OWNER_Q, 20, "mx2.example.com");
	assert_int_equal(parse("example.com", &m, &l, err, sizeof(err)),
	    DNS_OK);
	dns_mx_free(&l);
	for (i = 0; i < m.n; i++) {
		memcpy(cut.b, m.b, i);
		cut.n = i;
		expect_temp("example.com", &cut, "Malformed");
	}
	start(&m, "example.com", QR | RA | TC, 1);
	rr_mx(&m, OWNER_Q, 10, "mx1.example.com");
	expect_temp("example.com", &m, "truncated");
}

/* Replies that are not answers to this question, and plain garbage. */
static void
test_garbage(void **state)
{
	struct msg m;
	size_t at;

	(void)state;
	memset(m.b, 0xff, 200);
	m.n = 200;
	expect_temp("example.com", &m, "Malformed");
	/* A query, not a reply. */
	start(&m, "example.com", RD, 1);
	rr_mx(&m, OWNER_Q, 10, "mx.example.com");
	expect_temp("example.com", &m, "Malformed");
	/* The answer to another question. */
	start(&m, "evil.example", QR | RA, 1);
	rr_mx(&m, OWNER_Q, 10, "mx.evil.example");
	expect_temp("example.com", &m, "Malformed");
	/* An MX whose data is too short for a preference and a name. */
	start(&m, "example.com", QR | RA, 1);
	at = rr_head(&m, OWNER_Q, T_MX);
	put16(&m, 10);
	rr_end(&m, at);
	expect_temp("example.com", &m, "Malformed");
	/* An MX target that runs past the record's data. */
	start(&m, "example.com", QR | RA, 1);
	at = rr_head(&m, OWNER_Q, T_MX);
	put16(&m, 10);
	put_name(&m, "mx.example.com");
	m.b[at + 1] = 5;
	expect_temp("example.com", &m, "Malformed");
	/* A compression pointer to itself. */
	start(&m, "example.com", QR | RA, 1);
	at = rr_head(&m, OWNER_Q, T_MX);
	put16(&m, 10);
	put16(&m, 0xc000 | (unsigned)m.n);
	rr_end(&m, at);
	expect_temp("example.com", &m, "Malformed");
	/* A host name no one should connect to, or see in a log line. */
	start(&m, "example.com", QR | RA, 1);
	rr_mx(&m, OWNER_Q, 10, "bad host\n.example.com");
	expect_temp("example.com", &m, "malformed host name");
}

/* A CNAME is followed to the MX records of its target. */
static void
test_cname(void **state)
{
	struct dns_mx_list l;
	struct msg m;
	char err[512];

	(void)state;
	start(&m, "alias.example", QR | RA, 3);
	rr_cname(&m, OWNER_Q, "real.example");
	rr_mx(&m, "REAL.example", 10, "mx.real.example");
	rr_mx(&m, "stale.example", 5, "mx.stale.example");
	assert_int_equal(parse("alias.example", &m, &l, err, sizeof(err)),
	    DNS_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.mx[0].host, "mx.real.example");
	dns_mx_free(&l);
	/* A CNAME loop ends: no MX found, the name itself is used. */
	start(&m, "a.example", QR | RA, 2);
	rr_cname(&m, OWNER_Q, "b.example");
	rr_cname(&m, "b.example", "a.example");
	assert_int_equal(parse("a.example", &m, &l, err, sizeof(err)),
	    DNS_OK);
	assert_int_equal(l.implicit, 1);
	assert_string_equal(l.mx[0].host, "a.example");
	dns_mx_free(&l);
}

/* A host listed twice is tried once, at its best preference. */
static void
test_duplicates_and_limit(void **state)
{
	struct dns_mx_list l;
	struct msg m;
	char err[512], name[64];
	unsigned i;

	(void)state;
	start(&m, "example.com", QR | RA, 3);
	rr_mx(&m, OWNER_Q, 30, "mx.example.com");
	rr_mx(&m, OWNER_Q, 20, "other.example.com");
	rr_mx(&m, OWNER_Q, 10, "MX.example.com.");
	assert_int_equal(parse("example.com", &m, &l, err, sizeof(err)),
	    DNS_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.mx[0].host, "mx.example.com");
	assert_int_equal(l.mx[0].pref, 10);
	assert_string_equal(l.mx[1].host, "other.example.com");
	dns_mx_free(&l);
	/* Only the best DNS_MX_MAX are kept. */
	start(&m, "example.com", QR | RA, DNS_MX_MAX + 4);
	for (i = DNS_MX_MAX + 4; i > 0; i--) {
		snprintf(name, sizeof(name), "mx%u.example.com", i);
		rr_mx(&m, OWNER_Q, i, name);
	}
	assert_int_equal(parse("example.com", &m, &l, err, sizeof(err)),
	    DNS_OK);
	assert_int_equal(l.n, DNS_MX_MAX);
	for (i = 0; i < DNS_MX_MAX; i++)
		assert_int_equal(l.mx[i].pref, i + 1);
	dns_mx_free(&l);
}

/* dns_mx refuses a name longer than DNS allows, before any query. */
static void
test_lookup_too_long(void **state)
{
	struct dns_mx_list l;
	char name[1100], err[2048];

	(void)state;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(dns_mx(name, &l, err, sizeof(err)), DNS_TEMP);
	assert_string_equal(l.dsn, "4.4.3");
	assert_int_equal(l.n, 0);
	assert_non_null(strstr(err, "name too long"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sorted),
		cmocka_unit_test(test_equal_shuffled),
		cmocka_unit_test(test_nodata),
		cmocka_unit_test(test_nxdomain),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_rcodes),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_cname),
		cmocka_unit_test(test_duplicates_and_limit),
		cmocka_unit_test(test_lookup_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
