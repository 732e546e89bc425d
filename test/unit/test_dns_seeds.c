/*
 * test_dns_seeds.c - what each seed of the fuzz_dns corpus
 * (test/fuzz/corpus/fuzz_dns, written by test/fuzz/make-seeds.py) is to
 * dns_mx_parse: the seeds are there to start the fuzzer inside postern's
 * parsing (several MX records, a CNAME chain, truncation, NXDOMAIN,
 * compression pointers and a pointer loop...), so each must reach the
 * outcome its name promises, and every seed in the directory must be
 * listed here. Run from the top of the source tree (`make unit` does).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/dns.h"

#define SEEDS	"test/fuzz/corpus/fuzz_dns"

/* One seed and what dns_mx_parse must make of it. */
struct seed {
	const char	*file;
	enum dns_rc	 rc;
	const char	*dsn;		/* of a failure */
	size_t		 n;		/* hosts of a success */
	int		 implicit;
	const char	*best;		/* host with the lowest preference */
};

static const struct seed seeds[] = {
	{ "bad-hostname", DNS_TEMP, "4.4.3", 0, 0, NULL },
	{ "cname-chain", DNS_OK, "", 2, 0, "mail.example.org" },
	{ "cname-loop", DNS_OK, "", 1, 1, "example.com" },
	{ "duplicate-mx", DNS_OK, "", 1, 0, "MX1.Example.COM" },
	{ "many-mx", DNS_OK, "", DNS_MX_MAX, 0, NULL },
	{ "mixed-types", DNS_OK, "", 1, 0, "mx.example.com" },
	{ "mx-pointer-to-rdata", DNS_OK, "", 2, 0, "mail.example.net" },
	{ "mx-several", DNS_OK, "", 3, 0, NULL },
	{ "nodata", DNS_OK, "", 1, 1, "example.com" },
	{ "null-mx", DNS_PERM, "5.1.10", 0, 0, NULL },
	{ "nxdomain", DNS_PERM, "5.4.4", 0, 0, NULL },
	{ "pointer-loop", DNS_TEMP, "4.4.3", 0, 0, NULL },
	{ "pointer-past-end", DNS_TEMP, "4.4.3", 0, 0, NULL },
	{ "query-not-reply", DNS_TEMP, "4.4.3", 0, 0, NULL },
	{ "refused", DNS_TEMP, "4.4.3", 0, 0, NULL },
	{ "servfail", DNS_TEMP, "4.4.3", 0, 0, NULL },
	{ "truncated", DNS_TEMP, "4.4.3", 0, 0, NULL },
	{ "truncated-midrecord", DNS_TEMP, "4.4.3", 0, 0, NULL },
	{ "upper-case-owner", DNS_OK, "", 1, 0, "mx.example.com" },
	{ "wrong-question", DNS_TEMP, "4.4.3", 0, 0, NULL },
};

/* The seed's expectation, or NULL when it has none. */
static const struct seed *
expected(const char *file)
{
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		if (strcmp(seeds[i].file, file) == 0)
			return &seeds[i];
	return NULL;
}

/* Parse one seed file and compare with its expectation. */
static void
check_seed(const struct seed *s)
{
	unsigned char buf[65536];
	struct dns_mx_list l;
	char path[512], err[512];
	size_t len;
	FILE *f;

	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", SEEDS,
	    s->file) < sizeof(path));
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("%s: cannot open (run from the source tree)", path);
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	err[0] = '\0';
	if (dns_mx_parse("example.com", buf, len, &l, err, sizeof(err)) !=
	    s->rc)
		fail_msg("%s: not the expected outcome (%s)", s->file, err);
	assert_string_equal(l.dsn, s->dsn);
	assert_int_equal(l.n, s->n);
	assert_int_equal(l.implicit, s->implicit);
	if (s->best != NULL)
		assert_string_equal(l.mx[0].host, s->best);
	dns_mx_free(&l);
}

/* Every listed seed parses as promised. */
static void
test_each_seed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		check_seed(&seeds[i]);
}

/* Every seed in the directory is listed, and every listed one is there. */
static void
test_all_listed(void **state)
{
	struct dirent *de;
	size_t found = 0;
	DIR *d;

	(void)state;
	d = opendir(SEEDS);
	if (d == NULL)
		fail_msg("%s: cannot open (run from the source tree)", SEEDS);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (expected(de->d_name) == NULL)
			fail_msg("%s/%s has no expectation in test_dns_seeds.c",
			    SEEDS, de->d_name);
		found++;
	}
	closedir(d);
	assert_int_equal(found, sizeof(seeds) / sizeof(seeds[0]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_seed),
		cmocka_unit_test(test_all_listed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
