/*
 * test_tls.c - the pure parts of tls.c: levels, policy table entries,
 * protocol lists; and a context built from bad settings says why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "deliver/tls.h"

/* Every level name round-trips; "" is none; others are refused. */
static void
test_levels(void **state)
{
	static const char *names[] = { "none", "may", "encrypt",
	    "fingerprint", "verify", "secure" };
	enum tls_level lev;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(tls_level_parse(names[i], &lev), 0);
		assert_string_equal(tls_level_name(lev), names[i]);
	}
	assert_int_equal(tls_level_parse("VERIFY", &lev), 0);
	assert_int_equal(lev, TLS_LEV_VERIFY);
	assert_int_equal(tls_level_parse("", &lev), 0);
	assert_int_equal(lev, TLS_LEV_NONE);
	assert_int_equal(tls_level_parse("dane", &lev), -1);
	assert_int_equal(tls_level_parse("verify ", &lev), -1);
	assert_false(tls_level_mandatory(TLS_LEV_MAY));
	assert_true(tls_level_mandatory(TLS_LEV_ENCRYPT));
	assert_true(tls_level_mandatory(TLS_LEV_FINGERPRINT));
}

/* Policy entries as Postfix writes them. */
static void
test_policy(void **state)
{
	struct tls_policy p;
	char err[256];

	(void)state;
	assert_int_equal(tls_policy_parse("encrypt", &p, err, sizeof(err)), 0);
	assert_int_equal(p.level, TLS_LEV_ENCRYPT);
	assert_null(p.match);
	assert_null(p.protocols);
	tls_policy_free(&p);

	assert_int_equal(tls_policy_parse("  verify  match=a.example:.b.example"
	    "\tprotocols=>=TLSv1.3 ciphers=high exclude=aNULL:MD5 "
	    "servername=sni.example", &p, err, sizeof(err)), 0);
	assert_int_equal(p.level, TLS_LEV_VERIFY);
	assert_string_equal(p.match, "a.example:.b.example");
	assert_string_equal(p.protocols, ">=TLSv1.3");
	assert_string_equal(p.ciphers, "high");
	assert_string_equal(p.exclude, "aNULL:MD5");
	assert_string_equal(p.servername, "sni.example");
	tls_policy_free(&p);

	assert_int_equal(tls_policy_parse("fingerprint match=AB:CD|EF:01",
	    &p, err, sizeof(err)), 0);
	assert_int_equal(p.level, TLS_LEV_FINGERPRINT);
	assert_string_equal(p.match, "AB:CD|EF:01");
	tls_policy_free(&p);
}

/* Bad entries: the message names what is wrong. */
static void
test_policy_errors(void **state)
{
	struct tls_policy p;
	char err[256];

	(void)state;
	assert_int_equal(tls_policy_parse("", &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(tls_policy_parse("strict", &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown TLS security level \"strict\""));
	assert_int_equal(tls_policy_parse("verify tafile=/x", &p, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "attribute \"tafile\""));
	assert_int_equal(tls_policy_parse("verify match", &p, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "attribute=value"));
	assert_int_equal(tls_policy_parse("verify =x", &p, err, sizeof(err)),
	    -1);
	assert_null(p.match);
}

/* Expect spec to give the range lo..hi. */
static void
proto_ok(const char *spec, int lo, int hi)
{
	char err[256];
	int min = 0, max = 0;

	assert_int_equal(tls_protocols_parse(spec, &min, &max, err,
	    sizeof(err)), 0);
	assert_int_equal(min, lo);
	assert_int_equal(max, hi);
}

/* Expect spec to be refused with word in the message. */
static void
proto_bad(const char *spec, const char *word)
{
	char err[256] = "";
	int min, max;

	assert_int_equal(tls_protocols_parse(spec, &min, &max, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, word));
}

/* Postfix's protocol syntaxes. */
static void
test_protocols(void **state)
{
	(void)state;
	proto_ok(">=TLSv1.2", TLS1_2_VERSION, TLS1_3_VERSION);
	proto_ok("", SSL3_VERSION, TLS1_3_VERSION);
	proto_ok("!SSLv2, !SSLv3", TLS1_VERSION, TLS1_3_VERSION);
	proto_ok("!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", TLS1_2_VERSION,
	    TLS1_3_VERSION);
	proto_ok("TLSv1.2 TLSv1.3", TLS1_2_VERSION, TLS1_3_VERSION);
	proto_ok(">=TLSv1.2 <=TLSv1.2", TLS1_2_VERSION, TLS1_2_VERSION);
	proto_ok("tlsv1.3", TLS1_3_VERSION, TLS1_3_VERSION);
	proto_bad("TLSv9", "unknown TLS protocol \"TLSv9\"");
	proto_bad(">=TLSv1.3 <=TLSv1.2", "allows no protocol");
	proto_bad("TLSv1 TLSv1.3", "gap");
	proto_bad("!TLSv1.2", "gap");
	proto_bad("SSLv2", "SSLv2");
}

/* A context from bad settings is refused with the parameter named. */
static void
test_ctx_errors(void **state)
{
	struct tls_conf tc;
	struct tls_ctx *ctx;
	char err[512];

	(void)state;
	memset(&tc, 0, sizeof(tc));
	tc.mand_protocols = ">=TLSv1.2";
	ctx = tls_ctx_new(&tc, err, sizeof(err));
	assert_non_null(ctx);
	tls_ctx_free(ctx);

	tc.cafile = "/nonexistent/ca.pem";
	assert_null(tls_ctx_new(&tc, err, sizeof(err)));
	assert_non_null(strstr(err, "smtp_tls_CAfile /nonexistent/ca.pem"));
	tc.cafile = NULL;

	tc.mand_protocols = ">=TLSv2";
	assert_null(tls_ctx_new(&tc, err, sizeof(err)));
	assert_non_null(strstr(err, "smtp_tls_mandatory_protocols"));
	tc.mand_protocols = NULL;

	tc.mand_ciphers = "null";
	assert_null(tls_ctx_new(&tc, err, sizeof(err)));
	assert_non_null(strstr(err, "smtp_tls_mandatory_ciphers"));
	tc.mand_ciphers = NULL;

	tc.fp_digest = "sha9";
	assert_null(tls_ctx_new(&tc, err, sizeof(err)));
	assert_non_null(strstr(err, "smtp_tls_fingerprint_digest"));
	tc.fp_digest = NULL;

	tc.cert_file = "/nonexistent/client.pem";
	assert_null(tls_ctx_new(&tc, err, sizeof(err)));
	assert_non_null(strstr(err, "smtp_tls_cert_file"));
}

/* Imported session lines must be well formed. */
static void
test_cache_import(void **state)
{
	struct tls_conf tc;
	struct tls_ctx *ctx;
	struct buf b = BUF_INIT;
	char err[256];

	(void)state;
	memset(&tc, 0, sizeof(tc));
	ctx = tls_ctx_new(&tc, err, sizeof(err));
	assert_non_null(ctx);
	/* Malformed lines. */
	assert_int_equal(tls_cache_import(ctx, "key"), -1);
	assert_int_equal(tls_cache_import(ctx, " 00"), -1);
	assert_int_equal(tls_cache_import(ctx, "key "), -1);
	/* A key from another context (before a reload): ignored. */
	assert_int_equal(tls_cache_import(ctx, "0000000000000000/h:25/verify/0 "
	    "3000"), 0);
	assert_int_equal(tls_cache_import(ctx, "key -"), 0);
	/* Nothing fresh: nothing to export. */
	assert_int_equal(tls_cache_export(ctx, &b), 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	tls_ctx_free(ctx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_policy_errors),
		cmocka_unit_test(test_protocols),
		cmocka_unit_test(test_ctx_errors),
		cmocka_unit_test(test_cache_import),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
