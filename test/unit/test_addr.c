/*
 * test_addr.c - address checks, qualification, and address-list headers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"

/* addr_check must accept in and give want. */
static void
ok(const char *in, int allow_empty, const char *want)
{
	char err[128] = "", *out;

	if (addr_check(in, allow_empty, &out, err, sizeof(err)) < 0)
		fail_msg("\"%s\" rejected: %s", in, err);
	assert_string_equal(out, want);
	free(out);
}

/* addr_check must reject in with an err containing why. */
static void
bad(const char *in, int allow_empty, const char *why)
{
	char err[128] = "", *out;

	assert_int_equal(addr_check(in, allow_empty, &out, err, sizeof(err)), -1);
	assert_null(out);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", in, err, why);
}

static void
test_check(void **state)
{
	char long_addr[1200];

	ok("bob@example.com", 0, "bob@example.com");
	ok("<bob@example.com>", 0, "bob@example.com");
	ok("  bob@example.com ", 0, "bob@example.com");
	ok("bob", 0, "bob");
	ok("\"a<b\"@example.com", 0, "\"a<b\"@example.com");
	ok("<>", 1, "");
	ok("", 1, "");
	bad("", 0, "empty");
	bad("<>", 0, "empty");
	bad("bob@example.com\nrecipient evil@x", 0, "newline");
	bad("bob\r@x", 0, "carriage return");
	bad("bob\t\x01@x", 0, "control");
	bad("bob\x7f@x", 0, "control");
	bad("<bob@x", 0, "unbalanced");
	bad("bob@x>", 0, "unbalanced");
	bad("<<bob@x>>", 0, "unbalanced");
	bad("Bob <bob@x>", 0, "unbalanced");
	memset(long_addr, 'a', sizeof(long_addr) - 1);
	long_addr[sizeof(long_addr) - 1] = '\0';
	bad(long_addr, 0, "longer than 998");
	long_addr[998] = '\0';
	ok(long_addr, 0, long_addr);
}

/* Qualify in with rw and compare. */
static void
qual(const char *in, const struct addr_rewrite *rw, const char *want)
{
	char *out = addr_qualify(in, rw);

	assert_string_equal(out, want);
	free(out);
}

static void
test_qualify(void **state)
{
	struct addr_rewrite rw = { "host.example.org", "example.org", 1, 0 };

	qual("alice", &rw, "alice@host.example.org");
	qual("alice@other.net", &rw, "alice@other.net");
	qual("alice@box", &rw, "alice@box");
	qual("", &rw, "");
	rw.append_dot_mydomain = 1;
	qual("alice@box", &rw, "alice@box.example.org");
	qual("alice@[192.0.2.1]", &rw, "alice@[192.0.2.1]");
	qual("alice@other.net", &rw, "alice@other.net");
	/* A dotless myorigin is itself completed with $mydomain. */
	rw.myorigin = "box";
	qual("alice", &rw, "alice@box.example.org");
	rw.append_dot_mydomain = 0;
	qual("alice", &rw, "alice@box");
	rw.append_at_myorigin = 0;
	qual("alice", &rw, "alice");
}

/* addr_qualify_canon(in) is want (NULL: left as it is). */
static void
qcanon(const char *in, const struct addr_rewrite *rw, const char *want)
{
	char *out = addr_qualify_canon(in, rw);

	if (want == NULL && out != NULL)
		fail_msg("\"%s\" gave \"%s\", want unchanged", in, out);
	if (want != NULL && (out == NULL || strcmp(out, want) != 0))
		fail_msg("\"%s\" gave \"%s\", want \"%s\"", in,
		    out ? out : "(unchanged)", want);
	free(out);
}

/* Header addresses in canonical form: the local part found by parsing. */
static void
test_qualify_canon(void **state)
{
	struct addr_rewrite rw = { "host.example.org", "example.org", 1, 0 };

	qcanon("root", &rw, "root@host.example.org");
	qcanon("\"john doe\"", &rw, "\"john doe\"@host.example.org");
	/* A quoted '@' is part of the local part: still no domain. */
	qcanon("\"a@b\"", &rw, "\"a@b\"@host.example.org");
	qcanon("root@other.net", &rw, NULL);
	qcanon("root@box", &rw, NULL);
	qcanon("", &rw, NULL);
	rw.append_dot_mydomain = 1;
	qcanon("root@box", &rw, "root@box.example.org");
	qcanon("root@[192.0.2.1]", &rw, NULL);
	rw.myorigin = "box";
	qcanon("root", &rw, "root@box.example.org");
	rw.append_at_myorigin = 0;
	qcanon("root", &rw, NULL);
}

/* Parse an address-list value and compare with want (NULL-terminated). */
static void
list(const char *value, const char *const *want)
{
	struct addr_list l = { NULL, 0 };
	char err[128] = "";
	size_t n = 0;

	if (addr_list_parse(value, &l, err, sizeof(err)) < 0)
		fail_msg("\"%s\": %s", value, err);
	for (; want[n]; n++) {
		if (n >= l.n)
			fail_msg("\"%s\": only %zu addresses", value, l.n);
		assert_string_equal(l.v[n], want[n]);
	}
	assert_int_equal(l.n, n);
	addr_list_free(&l);
}

static void
test_list(void **state)
{
	list("bob@example.com", (const char *[]){ "bob@example.com", NULL });
	list("Bob <bob@example.com>, carol@example.com (Carol C)",
	    (const char *[]){ "bob@example.com", "carol@example.com", NULL });
	list("\"Smith, John\" <john@example.com>",
	    (const char *[]){ "john@example.com", NULL });
	list("\"odd name\"@example.com",
	    (const char *[]){ "\"odd name\"@example.com", NULL });
	list("undisclosed-recipients:;", (const char *[]){ NULL });
	list("team: a@x.org, B <b@x.org>; c@y.org",
	    (const char *[]){ "a@x.org", "b@x.org", "c@y.org", NULL });
	list("a@x.org,\n\tb@x.org,\n c@x.org",
	    (const char *[]){ "a@x.org", "b@x.org", "c@x.org", NULL });
	list("(comment (nested) here) a@x.org (another, with comma)",
	    (const char *[]){ "a@x.org", NULL });
	list("a@x.org,, ,b@x.org", (const char *[]){ "a@x.org", "b@x.org", NULL });
	list("<@relay.example:a@x.org>", (const char *[]){ "a@x.org", NULL });
	list("user@[192.0.2.1]", (const char *[]){ "user@[192.0.2.1]", NULL });
	list("root", (const char *[]){ "root", NULL });
	list("Empty <>", (const char *[]){ NULL });
	list("", (const char *[]){ NULL });
	list("\"q\\\"uote\" <a@x.org>", (const char *[]){ "a@x.org", NULL });
}

/* Parsing must fail with err containing why. */
static void
list_bad(const char *value, const char *why)
{
	struct addr_list l = { NULL, 0 };
	char err[128] = "";

	assert_int_equal(addr_list_parse(value, &l, err, sizeof(err)), -1);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", value, err, why);
	addr_list_free(&l);
}

static void
test_list_bad(void **state)
{
	list_bad("\"unterminated <a@x.org>", "quoted string");
	list_bad("a@x.org (unterminated", "comment");
	list_bad("Bob <bob@x.org", "unbalanced <");
	list_bad("bob@x.org>", "unbalanced >");
	list_bad("<a<b@x.org>>", "nested");
	list_bad("a@[1.2.3.4", "domain literal");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_qualify),
		cmocka_unit_test(test_qualify_canon),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
