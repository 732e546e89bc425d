/*
 * test_relay.c - smtp_relay_parse: relayhost syntax.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/smtp.h"

/* Parse spec and compare host, port and mx. */
static void
ok(const char *spec, const char *host, const char *port, int mx)
{
	struct smtp_relay r;
	char err[256];

	assert_int_equal(smtp_relay_parse(spec, &r, err, sizeof(err)), 0);
	assert_string_equal(r.host, host);
	assert_string_equal(r.port, port);
	assert_int_equal(r.mx, mx);
	assert_string_equal(r.text, spec);
	smtp_relay_free(&r);
}

/* Parse spec, expect an error mentioning word. */
static void
bad(const char *spec, const char *word)
{
	struct smtp_relay r;
	char err[256] = "";

	assert_int_equal(smtp_relay_parse(spec, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, word));
	assert_null(r.host);
}

/* Every accepted form. */
static void
test_forms(void **state)
{
	(void)state;
	ok("[mail.isp.example]:587", "mail.isp.example", "587", 0);
	ok("[mail.isp.example]", "mail.isp.example", "25", 0);
	ok("mail.isp.example:2525", "mail.isp.example", "2525", 1);
	ok("mail.isp.example", "mail.isp.example", "25", 1);
	ok("[::1]:2525", "::1", "2525", 0);
	ok("[127.0.0.1]", "127.0.0.1", "25", 0);
	ok("[fe80::1%eth0]:25", "fe80::1%eth0", "25", 0);
}

/* Service names without /etc/services. */
static void
test_services(void **state)
{
	(void)state;
	ok("[h]:smtp", "h", "25", 0);
	ok("[h]:submission", "h", "587", 0);
	ok("[h]:smtps", "h", "465", 0);
	ok("h:submissions", "h", "465", 1);
	ok("h:65535", "h", "65535", 1);
	ok("h:1", "h", "1", 1);
}

/* Errors say what is wrong. */
static void
test_errors(void **state)
{
	struct smtp_relay r;
	char err[256];

	(void)state;
	bad("", "empty");
	bad("[host", "missing");
	bad("[host]x", "after");
	bad("[]:25", "empty host");
	bad(":25", "empty host");
	bad("::1", "brackets");
	bad("h:0", "port");
	bad("h:65536", "port");
	bad("h:-1", "port");
	bad("h:+25", "port");
	bad("h:", "port");
	bad("h:imap", "port");
	bad("[h]:", "port");
	bad("h st", "invalid");
	bad("h\r\n", "invalid");
	assert_int_equal(smtp_relay_parse(NULL, &r, err, sizeof(err)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
