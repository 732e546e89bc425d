/*
 * test_addr.c - address checks, qualification, and address-list headers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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
	qual("a@[tag:b@c]", &rw, "a@[tag:b@c]");
	qual("\"a@b\"@box", &rw, "\"a@b\"@box.example.org");
	qual("\"a@b\"", &rw, "\"a@b\"@host.example.org");
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


/* addr_mailbox_check must accept in. */
static void
mb_ok(const char *in, int allow_bare)
{
	char err[256] = "";

	if (addr_mailbox_check(in, allow_bare, err, sizeof(err)) < 0)
		fail_msg("\"%s\" rejected: %s", in, err);
}

/* addr_mailbox_check must reject in with an err containing why. */
static void
mb_bad(const char *in, int allow_bare, const char *why)
{
	char err[256] = "";

	if (addr_mailbox_check(in, allow_bare, err, sizeof(err)) == 0)
		fail_msg("\"%s\" accepted", in);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", in, err, why);
}

static void
test_mailbox(void **state)
{
	char label[80], dom[400];

	mb_ok("bob@example.com", 0);
	mb_ok("first.last+tag@sub.example.co.uk", 0);
	mb_ok("!#$%&'*+-/=?^_`{|}~@x-y.example", 0);
	mb_ok("\"a b\"@example.com", 0);
	mb_ok("\"a\\\"b\\\\c\"@example.com", 0);
	mb_ok("\"a..b\"@example.com", 0);
	mb_ok("\"\"@example.com", 0);
	mb_ok("user@[192.0.2.1]", 0);
	mb_ok("user@[IPv6:2001:db8::1]", 0);
	mb_ok("user@[x-tag:anything]", 0);
	mb_ok("root", 1);
	mb_ok("\"odd user\"", 1);
	mb_ok("j\xc3\xb6rg@b\xc3\xbc" "cher.example", 0);	/* SMTPUTF8 */
	mb_ok("a@b", 0);
	/* The ESMTP parameter smugglers of issue 15. */
	mb_bad("bob@example.com NOTIFY=NEVER", 0, "space outside quotes at byte 16");
	mb_bad("x@y BODY=8BITMIME", 0, "space outside quotes at byte 4");
	mb_bad("bad address@@x", 1, "space outside quotes at byte 4");
	mb_bad("bob@example.com\tNOTIFY=NEVER", 0, "space");
	mb_bad("bob>@example.com", 0, "'>' at byte 4");
	mb_bad("bob@example.com>", 0, "'>' at byte 16 is not allowed in a domain");
	mb_bad("a@@x", 0, "'@' at byte 3");
	mb_bad("a@b@c", 0, "'@' at byte 4");
	mb_bad("root", 0, "no '@domain'");
	mb_bad("@example.com", 0, "empty local part");
	mb_bad("", 1, "empty local part");
	mb_bad(".bob@x", 0, "dot at the start");
	mb_bad("bob.@x", 0, "dot at the end");
	mb_bad("a..b@x", 0, "two dots");
	mb_bad("bob@", 0, "no domain");
	mb_bad("bob@.x", 0, "empty label");
	mb_bad("bob@x..y", 0, "empty label");
	mb_bad("bob@x.", 0, "empty label");
	mb_bad("bob@-x.y", 0, "hyphen");
	mb_bad("bob@x-.y", 0, "hyphen");
	mb_bad("bob@x_y", 0, "'_'");
	mb_bad("\"a b@x", 0, "unterminated");
	mb_bad("\"a\"b@x", 0, "after a quoted local part");
	mb_bad("\"a\nb\"@x", 0, "control character");
	mb_bad("\"a\\\nb\"@x", 0, "control character");
	mb_bad("a\x01@x", 0, "control character");
	mb_bad("a@x\x7f", 0, "control character");
	mb_bad("\xc3@x", 0, "UTF-8");
	mb_bad("a\xc0\xaf@x", 0, "UTF-8");		/* overlong '/' */
	mb_bad("a\xc2\x85@x", 0, "UTF-8");		/* NEL, a C1 control */
	mb_bad("a\xed\xa0\x80@x", 0, "UTF-8");		/* a surrogate */
	mb_bad("a@[192.0.2.1", 0, "end with ']'");
	mb_bad("a@[300.1.1.1]", 0, "bad address literal");
	mb_bad("a@[IPv6:zz]", 0, "bad address literal");
	mb_bad("a@[1.2.3.4] x", 0, "end with ']'");
	mb_bad("a@[tag:a b]", 0, "bad address literal");
	mb_bad("a@[tag:a>b]", 0, "bad address literal");
	mb_bad("a@[tag:a\"b]", 0, "bad address literal");
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(dom, sizeof(dom), "u@%s.example", label);
	mb_bad(dom, 0, "longer than 63");
	label[63] = '\0';
	snprintf(dom, sizeof(dom), "u@%s.example", label);
	mb_ok(dom, 0);
	snprintf(dom, sizeof(dom), "u@%s.%s.%s.%s.x", label, label, label, label);
	mb_bad(dom, 0, "longer than 255");
}

static void
test_wire(void **state)
{
	assert_true(addr_wire_ok("bob@example.com"));
	assert_true(addr_wire_ok("\"a b\"@example.com"));
	assert_true(addr_wire_ok("\"a\\\"> b\"@example.com"));
	assert_true(addr_wire_ok("root"));
	assert_true(addr_wire_ok(""));
	assert_false(addr_wire_ok("bob@example.com NOTIFY=NEVER"));
	assert_false(addr_wire_ok("bob@example.com\tX"));
	assert_false(addr_wire_ok("bob@example.com> NOTIFY=NEVER"));
	assert_false(addr_wire_ok("bob@example.com>"));
	assert_false(addr_wire_ok("<bob@example.com"));
	assert_false(addr_wire_ok("bob@x\r\nRCPT TO:<eve@x>"));
	assert_false(addr_wire_ok("\"a\nb\"@x"));
	assert_false(addr_wire_ok("\"a\\\nb\"@x"));
	assert_false(addr_wire_ok("\"unterminated@x"));
	assert_false(addr_wire_ok("a\x7f@x"));
}

/* addr_phrase(in) must give want. */
static void
ph_ok(const char *in, const char *want)
{
	char err[160] = "", *out = addr_phrase(in, err, sizeof(err));

	if (out == NULL)
		fail_msg("\"%s\" refused: %s", in, err);
	assert_string_equal(out, want);
	free(out);
}

/* addr_phrase(in) must refuse with why. */
static void
ph_bad(const char *in, const char *why)
{
	char err[160] = "";

	assert_null(addr_phrase(in, err, sizeof(err)));
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", in, err, why);
}

static void
test_phrase(void **state)
{
	char big[300], *out, *line, *save = NULL;

	ph_ok("Alice Example", "Alice Example");
	ph_ok("Smith, John", "\"Smith, John\"");
	ph_ok("J. R. \"Bob\" Dobbs", "\"J. R. \\\"Bob\\\" Dobbs\"");
	ph_ok("back\\slash", "\"back\\\\slash\"");
	ph_ok("a <b@c>", "\"a <b@c>\"");
	ph_ok("   ", "");
	ph_ok("", "");
	/* RFC 2047: "Jörg" and "Zoë Ünal". */
	ph_ok("J\xc3\xb6rg", "=?UTF-8?B?SsO2cmc=?=");
	ph_ok("Zo\xc3\xab \xc3\x9cnal", "=?UTF-8?B?Wm/DqyDDnG5hbA==?=");
	/* The injections of issue 15, and other control characters. */
	ph_bad("Eve\nBcc: victim@example.com", "line break");
	ph_bad("Eve\r\nX-Injected: yes", "line break");
	ph_bad("Eve\rX", "line break");
	ph_bad("Eve\tTab", "control character at byte 4");
	ph_bad("Eve\x1b[31m", "control character");
	ph_bad("Eve\xc2\x85" "Bcc: x", "UTF-8");	/* NEL */
	ph_bad("Eve\xff", "UTF-8");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ph_bad(big, "longer than 256");
	/* A long UTF-8 name: several words, each line within 76, and no
	   character cut in two (each word decodes on its own). */
	for (size_t i = 0; i + 2 < 200; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[200] = '\0';
	out = addr_phrase(big, NULL, 0);
	assert_non_null(out);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		assert_true(strlen(line) <= 76 - strlen("From: "));
		assert_true(strncmp(line + (line[0] == ' '), "=?UTF-8?B?", 10)
		    == 0);
		/* 30 bytes a word: 15 whole "é", 40 base64 characters. */
		assert_true(strlen(line + (line[0] == ' ')) <= 52);
	}
	free(out);
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
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_wire),
		cmocka_unit_test(test_phrase),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
