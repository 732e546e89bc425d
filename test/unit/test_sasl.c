/*
 * test_sasl.c - mechanism choice and security options (sasl.c), and the
 * responses of the mechanisms postern implements itself (XOAUTH2,
 * OAUTHBEARER) and of libgsasl's PLAIN, byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <gsasl.h>

#include "deliver/sasl.h"

#define ALL	"PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 " \
		"SCRAM-SHA-256-PLUS XOAUTH2 OAUTHBEARER"

/* Expect the choice want (NULL: none, with word in the reason). */
static void
choose(const char *offered, const char *filter, const char *opts, int cb,
    const char *want, const char *word)
{
	unsigned flags;
	char mech[32] = "", why[512] = "", err[128];

	assert_int_equal(sasl_secopts_parse(opts, &flags, err, sizeof(err)), 0);
	if (want != NULL) {
		assert_int_equal(sasl_choose(offered, filter, flags, cb, mech,
		    sizeof(mech), why, sizeof(why)), 0);
		assert_string_equal(mech, want);
	} else {
		assert_int_equal(sasl_choose(offered, filter, flags, cb, mech,
		    sizeof(mech), why, sizeof(why)), -1);
		assert_non_null(strstr(why, word));
	}
}

/* The strongest allowed mechanism wins. */
static void
test_order(void **state)
{
	(void)state;
	choose(ALL, "", "noanonymous", 1, "SCRAM-SHA-256-PLUS", NULL);
	choose(ALL, "", "noanonymous", 0, "SCRAM-SHA-256", NULL);
	choose("PLAIN LOGIN CRAM-MD5", "", "noanonymous", 0, "CRAM-MD5", NULL);
	choose("login plain", "", "noanonymous", 0, "PLAIN", NULL);
	choose("LOGIN", "", "noanonymous", 0, "LOGIN", NULL);
	choose("SCRAM-SHA-1 SCRAM-SHA-1-PLUS", "", "", 1, "SCRAM-SHA-1-PLUS",
	    NULL);
}

/* Postfix's security options. */
static void
test_security_options(void **state)
{
	(void)state;
	/* The Postfix default refuses plain-text mechanisms. */
	choose("PLAIN LOGIN", "", "noplaintext, noanonymous", 0, NULL,
	    "security options");
	choose("PLAIN LOGIN CRAM-MD5", "", "noplaintext, noanonymous", 0,
	    "CRAM-MD5", NULL);
	choose("CRAM-MD5 SCRAM-SHA-1", "", "noactive", 0, "SCRAM-SHA-1",
	    NULL);
	choose("CRAM-MD5", "", "noactive", 0, NULL, "security options");
	choose("CRAM-MD5 SCRAM-SHA-256", "", "nodictionary", 0, NULL,
	    "security options");
	choose("PLAIN CRAM-MD5 SCRAM-SHA-256", "", "mutual_auth", 0,
	    "SCRAM-SHA-256", NULL);
	choose("XOAUTH2", "xoauth2", "noplaintext", 0, NULL,
	    "security options");
}

/* smtp_sasl_mechanism_filter. */
static void
test_filter(void **state)
{
	(void)state;
	choose(ALL, "cram-md5", "", 1, "CRAM-MD5", NULL);
	choose(ALL, "plain, login", "", 1, "PLAIN", NULL);
	choose(ALL, "!scram-sha-256-plus !scram-sha-256", "", 1,
	    "SCRAM-SHA-1", NULL);
	/* Token mechanisms only when named. */
	choose("XOAUTH2 PLAIN", "", "", 0, "PLAIN", NULL);
	choose("XOAUTH2 OAUTHBEARER", "", "", 0, NULL, "filter");
	choose("XOAUTH2 OAUTHBEARER PLAIN", "xoauth2", "", 0, "XOAUTH2", NULL);
	choose("XOAUTH2 OAUTHBEARER", "oauthbearer xoauth2", "", 0,
	    "OAUTHBEARER", NULL);
	choose("PLAIN", "cram-md5", "", 0, NULL, "smtp_sasl_mechanism_filter");
	choose("GSSAPI NTLM", "", "", 0, NULL, "offers no mechanism");
	choose("", "", "", 0, NULL, "none");
	choose(NULL, "", "", 0, NULL, "none");
}

/* Unknown option words are refused by name. */
static void
test_secopts_errors(void **state)
{
	unsigned flags;
	char err[256];

	(void)state;
	assert_int_equal(sasl_secopts_parse("", &flags, err, sizeof(err)), 0);
	assert_int_equal(flags, 0);
	assert_int_equal(sasl_secopts_parse("noplaintext,noanonymous", &flags,
	    err, sizeof(err)), 0);
	assert_int_equal(flags, SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS);
	assert_int_equal(sasl_secopts_parse("noplaintext forward_secrecy",
	    &flags, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"forward_secrecy\""));
}

/* Decode a base64 response from sasl_step. */
static char *
unb64(const char *in, size_t *len)
{
	char *out = NULL, *copy;

	assert_int_equal(gsasl_base64_from(in, strlen(in), &out, len),
	    GSASL_OK);
	copy = malloc(*len + 1);
	assert_non_null(copy);
	memcpy(copy, out, *len);
	copy[*len] = '\0';
	gsasl_free(out);
	return copy;
}

/* Run the first step of mech and compare the decoded response. */
static void
first(const char *mech, const char *user, const char *want, size_t wantlen)
{
	struct sasl_client *sc;
	char err[256], *out = NULL, *raw;
	size_t len;

	sc = sasl_client_new(mech, user, "t0k:en", "smtp.example.com", "587",
	    NULL, err, sizeof(err));
	assert_non_null(sc);
	assert_true(sasl_client_first(sc));
	assert_int_not_equal(sasl_step(sc, NULL, &out, err, sizeof(err)),
	    SASL_STEP_ERROR);
	raw = unb64(out, &len);
	assert_int_equal(len, wantlen);
	assert_memory_equal(raw, want, wantlen);
	free(raw);
	sasl_free_out(out);
	sasl_client_free(sc);
}

/* The initial responses, byte for byte. */
static void
test_initial_responses(void **state)
{
	static const char plain[] = "\0a,b=c\0t0k:en";
	static const char xo[] = "user=a,b=c\001auth=Bearer t0k:en\001\001";
	static const char ob[] = "n,a=a=2Cb=3Dc,\001host=smtp.example.com"
	    "\001port=587\001auth=Bearer t0k:en\001\001";

	(void)state;
	first("PLAIN", "a,b=c", plain, sizeof(plain) - 1);
	first("XOAUTH2", "a,b=c", xo, sizeof(xo) - 1);
	first("OAUTHBEARER", "a,b=c", ob, sizeof(ob) - 1);
}

/* An OAuth error challenge is answered so the server can send 535. */
static void
test_oauth_error_reply(void **state)
{
	struct sasl_client *sc;
	char err[256], *out = NULL;

	(void)state;
	sc = sasl_client_new("OAUTHBEARER", "u", "t", "h", "25", NULL, err,
	    sizeof(err));
	assert_non_null(sc);
	assert_int_equal(sasl_step(sc, NULL, &out, err, sizeof(err)),
	    SASL_STEP_MORE);
	sasl_free_out(out);
	assert_int_equal(sasl_step(sc, "eyJzdGF0dXMiOiI0MDEifQ==", &out, err,
	    sizeof(err)), SASL_STEP_DONE);
	assert_string_equal(out, "AQ==");
	sasl_free_out(out);
	sasl_client_free(sc);

	sc = sasl_client_new("XOAUTH2", "u", "t", "h", "25", NULL, err,
	    sizeof(err));
	assert_non_null(sc);
	assert_int_equal(sasl_step(sc, NULL, &out, err, sizeof(err)),
	    SASL_STEP_MORE);
	sasl_free_out(out);
	assert_int_equal(sasl_step(sc, "e30=", &out, err, sizeof(err)),
	    SASL_STEP_DONE);
	assert_string_equal(out, "");
	sasl_free_out(out);
	sasl_client_free(sc);
}

/* -PLUS without channel binding data is refused, never downgraded. */
static void
test_plus_needs_binding(void **state)
{
	char err[256] = "";

	(void)state;
	assert_null(sasl_client_new("SCRAM-SHA-256-PLUS", "u", "p", "h", "25",
	    NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "channel binding"));
	assert_null(sasl_client_new("DIGEST-MD5", "u", "p", "h", "25", NULL,
	    err, sizeof(err)));
	assert_non_null(strstr(err, "unknown SASL mechanism"));
	/* Errors never carry the secret. */
	assert_null(strstr(err, "p\""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_security_options),
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_secopts_errors),
		cmocka_unit_test(test_initial_responses),
		cmocka_unit_test(test_oauth_error_reply),
		cmocka_unit_test(test_plus_needs_binding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
