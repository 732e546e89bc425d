/*
 * test_addrlist.c - the RFC 5322 address-list parser, rewriting addresses
 * in place, and rewriting the address fields of a header block.
 *
 * Rewriting tests compare whole outputs byte for byte: the promise is
 * that nothing but the addr-spec changes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mail/addrlist.h"

/* What a value must parse to: the addr-spec as written, canonical. */
struct want {
	const char	*span;
	const char	*canon;
};

/* Parse value and compare its items with want (ended by a NULL span). */
static void
parses(const char *value, const struct want *want)
{
	struct addrlist l = { NULL, 0 };
	char err[128] = "";
	size_t n = 0;

	if (addrlist_parse(value, strlen(value), &l, err, sizeof(err)) < 0)
		fail_msg("\"%s\": %s", value, err);
	for (; want[n].span != NULL; n++) {
		if (n >= l.n)
			fail_msg("\"%s\": only %zu addresses", value, l.n);
		if (l.v[n].off + l.v[n].len > strlen(value) ||
		    strlen(want[n].span) != l.v[n].len ||
		    memcmp(value + l.v[n].off, want[n].span, l.v[n].len) != 0)
			fail_msg("\"%s\": address %zu spans \"%.*s\", want "
			    "\"%s\"", value, n, (int)l.v[n].len,
			    value + l.v[n].off, want[n].span);
		assert_string_equal(l.v[n].addr, want[n].canon);
	}
	if (l.n != n)
		fail_msg("\"%s\": %zu addresses, want %zu", value, l.n, n);
	addrlist_free(&l);
}

#define W(...)	((const struct want[]){ __VA_ARGS__, { NULL, NULL } })
#define NONE	((const struct want[]){ { NULL, NULL } })

static void
test_forms(void **state)
{
	parses("john@example.com", W({ "john@example.com", "john@example.com" }));
	parses("\"Doe, John\" <john@host.localdomain> (work)",
	    W({ "john@host.localdomain", "john@host.localdomain" }));
	parses("John Q. Public <jqp@x.example>, Bob <bob@x.example>",
	    W({ "jqp@x.example", "jqp@x.example" },
	    { "bob@x.example", "bob@x.example" }));
	parses("bob@x.example (Bob (the \"builder\") B.)",
	    W({ "bob@x.example", "bob@x.example" }));
	/* Comments with '@' and '<' are not addresses. */
	parses("(x@y.example <z@w.example>) a@b.example (c@d.example)",
	    W({ "a@b.example", "a@b.example" }));
	parses("\"a@b <c>\" <d@e.example>", W({ "d@e.example", "d@e.example" }));
	/* Quoted local parts: quotes dropped only when not needed. */
	parses("\"john\"@x", W({ "\"john\"@x", "john@x" }));
	parses("\"john doe\"@x", W({ "\"john doe\"@x", "\"john doe\"@x" }));
	parses("\"jo\\hn\"@x", W({ "\"jo\\hn\"@x", "john@x" }));
	parses("\"a\\\"b\"@x", W({ "\"a\\\"b\"@x", "\"a\\\"b\"@x" }));
	parses("john.\"doe\"@x", W({ "john.\"doe\"@x", "john.doe@x" }));
	parses("\"\"@x", W({ "\"\"@x", "\"\"@x" }));
	parses("john..doe@x", W({ "john..doe@x", "\"john..doe\"@x" }));
	parses("\"john\r\n doe\"@x", W({ "\"john\r\n doe\"@x",
	    "\"john doe\"@x" }));
	/* Obsolete: CFWS between the parts of an addr-spec. */
	parses("john . doe @ example . com",
	    W({ "john . doe @ example . com", "john.doe@example.com" }));
	parses("john(c)@(d)x.example", W({ "john(c)@(d)x.example",
	    "john@x.example" }));
	/* Domain literals, bare local parts, UTF-8. */
	parses("user@[192.0.2.1]", W({ "user@[192.0.2.1]", "user@[192.0.2.1]" }));
	parses("user@[ 192.0.2.1 ]", W({ "user@[ 192.0.2.1 ]",
	    "user@[192.0.2.1]" }));
	parses("root", W({ "root", "root" }));
	parses("Admin <root>", W({ "root", "root" }));
	parses("J\xc3\xbcrgen <j\xc3\xbc@m\xc3\xbcller.de>",
	    W({ "j\xc3\xbc@m\xc3\xbcller.de", "j\xc3\xbc@m\xc3\xbcller.de" }));
	/* An unquoted comma splits: "Doe" is then a bare local part. */
	parses("Doe, John <john@x>", W({ "Doe", "Doe" }, { "john@x", "john@x" }));
	/* Obsolete routes stay; only the addr-spec is the address. */
	parses("<@a.example,@b.example:x@y.example>",
	    W({ "x@y.example", "x@y.example" }));
	parses("Name <,@a.example, ,@b.example : x@y.example>",
	    W({ "x@y.example", "x@y.example" }));
	/* Empty elements, an empty list, "<>". */
	parses("a@x,, ,b@x,", W({ "a@x", "a@x" }, { "b@x", "b@x" }));
	parses(",a@x", W({ "a@x", "a@x" }));
	parses("", NONE);
	parses("  (just a comment) ", NONE);
	parses("Mailer <>", NONE);
	/* Folded with LF or CRLF followed by white space. */
	parses("a@x,\n\tb@x,\r\n c@x",
	    W({ "a@x", "a@x" }, { "b@x", "b@x" }, { "c@x", "c@x" }));
	parses("\"Doe,\n John\" (a\r\n comment) <j@x>", W({ "j@x", "j@x" }));
}

static void
test_groups(void **state)
{
	parses("undisclosed-recipients:;", NONE);
	parses("undisclosed-recipients: ;", NONE);
	parses("team: a@x, \"B b\" <b@x>;, c@y",
	    W({ "a@x", "a@x" }, { "b@x", "b@x" }, { "c@y", "c@y" }));
	parses("team: a@x,,b@x,;", W({ "a@x", "a@x" }, { "b@x", "b@x" }));
	parses("\"The Team\" (x): (empty) ;", NONE);
	parses("a: b@x; , c: d@x;", W({ "b@x", "b@x" }, { "d@x", "d@x" }));
	/* After a group's ';', the next address needs no comma. */
	parses("a: b@x; c@x, d: e@x; f@x", W({ "b@x", "b@x" },
	    { "c@x", "c@x" }, { "e@x", "e@x" }, { "f@x", "f@x" }));
}

/* Parsing value must fail with an error containing why. */
static void
fails(const char *value, size_t len, const char *why)
{
	struct addrlist l = { NULL, 0 };
	char err[128] = "";

	if (addrlist_parse(value, len, &l, err, sizeof(err)) == 0)
		fail_msg("\"%s\" parsed (%zu addresses)", value, l.n);
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", value, err, why);
	assert_int_equal(l.n, 0);
	assert_null(l.v);
}

#define FAILS(v, why)	fails(v, sizeof(v) - 1, why)

static void
test_bad(void **state)
{
	FAILS("\"unterminated <a@x>", "unterminated quoted string at byte 1");
	FAILS("a@x (unterminated (nested)", "unterminated comment at byte 5");
	FAILS("a@[192.0.2.1", "unterminated domain literal");
	FAILS("a@[192.[0].2.1]", "[ inside a domain literal");
	FAILS("Bob <bob@x", "unbalanced < at the end");
	FAILS("bob@x>", "unbalanced > at byte 6");
	FAILS("<a<b@x>>", "nested <");
	FAILS("a@x)", "unbalanced )");
	FAILS("a]@x", "unbalanced ]");
	FAILS("a\\b@x", "backslash outside a quoted string");
	FAILS("\"a\\", "unterminated quoted string");
	FAILS("a@x\nb@x", "line break not followed by white space at byte 4");
	FAILS("a@x,\r\nb@x", "line break not followed by white space");
	FAILS("\"a\nb\"@x", "line break not followed by white space");
	FAILS("a@x\r", "line break not followed by white space");
	FAILS("a\x01@x", "control character at byte 2");
	FAILS("a\x7f@x", "control character");
	FAILS("a\0@x", "NUL byte at byte 2");
	FAILS("\"a\0\"@x", "NUL byte");
	FAILS("\"a\\\0\"@x", "backslash before a line break or NUL");
	FAILS("John Doe", "a phrase where an address should be at byte 1");
	FAILS("John Doe@x", "a phrase where an address should be");
	FAILS("@x", "no local part before @");
	FAILS("a@", "no domain after @ at the end");
	FAILS("a@x.", "malformed domain at the end");
	FAILS("a@x..y", "malformed domain");
	FAILS("a@x y@z", "unexpected word at byte 5");
	FAILS("a@x <b@y>", "unexpected < at byte 5");
	FAILS("a@x;", "unexpected ; outside a group");
	FAILS("team: a@x", "group not ended with ;");
	FAILS("a: b: c@x;;", "a group inside a group");
	FAILS(": a@x;", "a group without a name");
	FAILS("<>x@y", "unexpected word");
	FAILS("<@a.example x@y>", "malformed source route");
	FAILS("<@a.example:>", "no address in <>");
	FAILS("<@:x@y>", "no domain after @");
	FAILS("Name <>>", "unbalanced >");
	FAILS("a@[1.2.3.4]x", "unexpected word");
	FAILS("[1.2.3.4]", "unexpected domain literal");
	FAILS("<a@b<c>>", "nested < at byte 5");
	FAILS("<a b>", "a phrase where an address should be");
}

/* Replace every address by map_to (a string) unless it is "skip@x". */
static char *
to_fixed(void *arg, const char *addr)
{
	return strcmp(addr, "skip@x") == 0 ? NULL : xstrdup(arg);
}

/* Return the address itself: nothing may change. */
static char *
identity(void *arg, const char *addr)
{
	(*(size_t *)arg)++;
	return xstrdup(addr);
}

/* Replace the domain host.localdomain by example.com. */
static char *
to_isp(void *arg, const char *addr)
{
	const char *at = strrchr(addr, '@');

	if (at == NULL || strcmp(at, "@host.localdomain") != 0)
		return NULL;
	return xasprintf("%.*s@example.com", (int)(at - addr), addr);
}

/* Rewrite value with map and compare with want (changes: want_n). */
static void
rewrites(const char *value, addr_map_fn map, void *arg, const char *want,
    size_t want_n)
{
	struct buf out = BUF_INIT;
	char err[128] = "";
	size_t n = 99;

	buf_adds(&out, "<");
	if (addrlist_rewrite(value, strlen(value), map, arg, &out, &n, err,
	    sizeof(err)) < 0)
		fail_msg("\"%s\": %s", value, err);
	buf_adds(&out, ">");
	if (strncmp(out.data + 1, want, out.len - 2) != 0 ||
	    strlen(want) != out.len - 2)
		fail_msg("\"%s\" gave \"%.*s\", want \"%s\"", value,
		    (int)out.len - 2, out.data + 1, want);
	assert_int_equal(n, want_n);
	buf_free(&out);
}

static void
test_rewrite(void **state)
{
	size_t calls = 0;

	/* The issue's case: only the address changes. */
	rewrites("\"Doe, John\" <john@host.localdomain> (work)", to_isp, NULL,
	    "\"Doe, John\" <john@example.com> (work)", 1);
	rewrites("john@host.localdomain (John), <@relay:jane@host.localdomain>",
	    to_isp, NULL, "john@example.com (John), <@relay:jane@example.com>",
	    2);
	rewrites("team: a@host.localdomain,\n\t(c) b@other;, "
	    "undisclosed-recipients:;", to_isp, NULL,
	    "team: a@example.com,\n\t(c) b@other;, undisclosed-recipients:;",
	    1);
	/* Comments holding addresses stay as they were. */
	rewrites("(old@host.localdomain <x@host.localdomain>) "
	    "a@host.localdomain", to_isp, NULL,
	    "(old@host.localdomain <x@host.localdomain>) a@example.com", 1);
	/* The whole obsolete addr-spec is the span. */
	rewrites("a . b @ host . localdomain (x)", to_fixed, "n@y",
	    "n@y (x)", 1);
	rewrites("root, skip@x", to_fixed, "n@y", "n@y, skip@x", 1);
	/* Replacements are quoted as they need. */
	rewrites("a@x", to_fixed, "john doe@y", "\"john doe\"@y", 1);
	rewrites("a@x", to_fixed, "\"john doe\"@y", "\"john doe\"@y", 1);
	rewrites("a@x", to_fixed, "a\"b\\c@y", "\"a\\\"b\\\\c\"@y", 1);
	rewrites("a@x", to_fixed, "\"plain\"@y", "plain@y", 1);
	rewrites("a@x", to_fixed, "x.@y", "\"x.\"@y", 1);
	rewrites("a@x", to_fixed, "j\xc3\xbc@y", "j\xc3\xbc@y", 1);
	rewrites("a@x", to_fixed, "n@[192.0.2.1]", "n@[192.0.2.1]", 1);
	rewrites("a@x", to_fixed, "nobody", "nobody", 1);
	/* Unusable replacements leave the address alone. */
	rewrites("a@x", to_fixed, "n@y\r\nBcc: evil@z", "a@x", 0);
	rewrites("a@x", to_fixed, "n\t@y\x01", "a@x", 0);
	rewrites("a@x", to_fixed, "@y", "a@x", 0);
	rewrites("a@x", to_fixed, "", "a@x", 0);
	rewrites("a@x", to_fixed, "n@y z", "a@x", 0);
	rewrites("a@x", to_fixed, "n@", "a@x", 0);
	rewrites("a@x", to_fixed, "n@[1[2]", "a@x", 0);
	rewrites("a@x", to_fixed, "n@y..z", "a@x", 0);
	/* The same address in another spelling is no change. */
	rewrites("\"a\"@x", to_fixed, "a@x", "\"a\"@x", 0);
	/* Identity keeps every byte. */
	rewrites("\"Doe,\r\n John\" <\"j\"@x>,\n (c) j..d@x, g: r;", identity,
	    &calls, "\"Doe,\r\n John\" <\"j\"@x>,\n (c) j..d@x, g: r;", 0);
	assert_int_equal(calls, 3);
}

/* A value that does not parse is not rewritten and nothing is added. */
static void
test_rewrite_bad(void **state)
{
	struct buf out = BUF_INIT;
	char err[128] = "";
	size_t n = 99;

	buf_adds(&out, "kept");
	assert_int_equal(addrlist_rewrite("a@x, (b", 7, to_fixed, "n@y", &out,
	    &n, err, sizeof(err)), -1);
	assert_string_equal(out.data, "kept");
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, "unterminated comment"));
	buf_free(&out);
}

/*
 * A folded To: of 50 addresses in assorted forms: every address replaced,
 * every other byte kept, the result still folded and parsable.
 */
static void
test_fifty(void **state)
{
	struct buf in = BUF_INIT, want = BUF_INIT, out = BUF_INIT;
	struct addrlist l = { NULL, 0 };
	char err[128];
	size_t n, lines_in = 0, lines_out = 0;

	for (int i = 0; i < 50; i++) {
		const char *sep = i == 49 ? "" : ",\n\t";

		switch (i % 5) {
		case 0:
			buf_addf(&in, "u%d@host.localdomain%s", i, sep);
			buf_addf(&want, "u%d@example.com%s", i, sep);
			break;
		case 1:
			buf_addf(&in, "\"User, %d\" <u%d@host.localdomain>%s",
			    i, i, sep);
			buf_addf(&want, "\"User, %d\" <u%d@example.com>%s", i,
			    i, sep);
			break;
		case 2:
			buf_addf(&in, "u%d@host.localdomain (U %d)%s", i, i,
			    sep);
			buf_addf(&want, "u%d@example.com (U %d)%s", i, i, sep);
			break;
		case 3:
			buf_addf(&in, "User\n  %d <\"u%d\"@host.localdomain>%s",
			    i, i, sep);
			buf_addf(&want, "User\n  %d <u%d@example.com>%s", i, i,
			    sep);
			break;
		default:
			buf_addf(&in, "\"u %d\"@host.localdomain%s", i, sep);
			buf_addf(&want, "\"u %d\"@example.com%s", i, sep);
		}
	}
	buf_adds(&out, "To: ");
	assert_int_equal(addrlist_rewrite(in.data, in.len, to_isp, NULL, &out,
	    &n, err, sizeof(err)), 0);
	assert_int_equal(n, 50);
	assert_string_equal(out.data + 4, want.data);
	/* Still folded the same way: same lines, continuations indented. */
	for (size_t i = 0; i < in.len; i++)
		lines_in += in.data[i] == '\n';
	for (size_t i = 0; i < out.len; i++) {
		if (out.data[i] != '\n')
			continue;
		lines_out++;
		assert_true(out.data[i + 1] == ' ' || out.data[i + 1] == '\t');
	}
	assert_int_equal(lines_in, 59);
	assert_int_equal(lines_out, lines_in);
	assert_int_equal(addrlist_parse(out.data + 4, out.len - 4, &l, err,
	    sizeof(err)), 0);
	assert_int_equal(l.n, 50);
	for (size_t i = 0; i < l.n; i++)
		assert_non_null(strstr(l.v[i].addr, "@example.com"));
	addrlist_free(&l);
	buf_free(&in);
	buf_free(&want);
	buf_free(&out);
}

/* hdr_rewrite_addrs over hdr must give want and count changes. */
static void
hdr_rewrites(const char *hdr, const char *want, size_t want_n)
{
	struct buf out = BUF_INIT;
	size_t n;

	n = hdr_rewrite_addrs(hdr, strlen(hdr), to_isp, NULL, &out);
	if (out.len != strlen(want) ||
	    (out.len > 0 && memcmp(out.data, want, out.len) != 0))
		fail_msg("gave:\n%.*s\nwant:\n%s", (int)out.len, out.data, want);
	assert_int_equal(n, want_n);
	buf_free(&out);
}

static void
test_header_block(void **state)
{
	static const char *const fields[] = {
		"From", "Sender", "Reply-To", "To", "Cc", "Bcc",
		"Resent-From", "Resent-Sender", "Resent-Reply-To",
		"Resent-To", "Resent-Cc", "Resent-Bcc", "Return-Receipt-To",
		"Disposition-Notification-To", "Errors-To",
		"Mail-Followup-To", "Mail-Reply-To", "Apparently-To",
		"Return-Path",
	};
	struct buf in = BUF_INIT, want = BUF_INIT;

	/* Every address field, in any case; no other field. */
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
		buf_addf(&in, "%s: a@host.localdomain\n", fields[i]);
		buf_addf(&want, "%s: a@example.com\n", fields[i]);
	}
	buf_adds(&in, "rEsEnT-cC: A <b@host.localdomain>\n"
	    "Subject: c@host.localdomain\n"
	    "Message-ID: <d@host.localdomain>\n"
	    "X-To: e@host.localdomain\n"
	    "In-Reply-To: <f@host.localdomain>\n"
	    "Received: from x by y for <g@host.localdomain>;\n"
	    "\tMon, 1 Jan 2024 00:00:00 +0000\n"
	    "Tos: h@host.localdomain\n");
	buf_adds(&want, "rEsEnT-cC: A <b@example.com>\n"
	    "Subject: c@host.localdomain\n"
	    "Message-ID: <d@host.localdomain>\n"
	    "X-To: e@host.localdomain\n"
	    "In-Reply-To: <f@host.localdomain>\n"
	    "Received: from x by y for <g@host.localdomain>;\n"
	    "\tMon, 1 Jan 2024 00:00:00 +0000\n"
	    "Tos: h@host.localdomain\n");
	hdr_rewrites(in.data, want.data, 20);
	buf_free(&in);
	buf_free(&want);

	/* Folding kept; a field that does not parse is left alone. */
	hdr_rewrites("Subject: hi\n"
	    "To: \"Doe, John\" <john@host.localdomain> (work),\n"
	    "\tjane@host.localdomain\n"
	    "Cc: broken (a@host.localdomain\n"
	    "Cc: Bob Smith bob@host.localdomain\n"
	    "From : me@host.localdomain\n",
	    "Subject: hi\n"
	    "To: \"Doe, John\" <john@example.com> (work),\n"
	    "\tjane@example.com\n"
	    "Cc: broken (a@host.localdomain\n"
	    "Cc: Bob Smith bob@host.localdomain\n"
	    "From : me@example.com\n", 3);
	/* CRLF line ends, a last line without a line end, empty values. */
	hdr_rewrites("To: a@host.localdomain,\r\n b@host.localdomain\r\n"
	    "Cc:\r\nBcc:", "To: a@example.com,\r\n b@example.com\r\n"
	    "Cc:\r\nBcc:", 2);
	hdr_rewrites("To:a@host.localdomain", "To:a@example.com", 1);
	/* Not a header field: copied. */
	hdr_rewrites(" To: a@host.localdomain\nno colon a@host.localdomain\n",
	    " To: a@host.localdomain\nno colon a@host.localdomain\n", 0);
	hdr_rewrites("", "", 0);
}

/* addr_split, addr_join and addr_canon. */
static void
test_helpers(void **state)
{
	char *local, *domain, *c;

	assert_int_equal(addr_split("\"john doe\"@x", &local, &domain), 0);
	assert_string_equal(local, "john doe");
	assert_string_equal(domain, "x");
	free(local);
	free(domain);
	assert_int_equal(addr_split("john doe@x@y", &local, &domain), 0);
	assert_string_equal(local, "john doe@x");
	assert_string_equal(domain, "y");
	free(local);
	free(domain);
	assert_int_equal(addr_split("root", &local, &domain), 0);
	assert_string_equal(local, "root");
	assert_null(domain);
	free(local);
	assert_int_equal(addr_split("", &local, &domain), -1);
	assert_int_equal(addr_split("a\n@x", &local, &domain), -1);
	assert_null(local);
	assert_null(domain);

	c = addr_join("a b", "x");
	assert_string_equal(c, "\"a b\"@x");
	free(c);
	c = addr_join(".a", NULL);
	assert_string_equal(c, "\".a\"");
	free(c);
	c = addr_join("", "x");
	assert_string_equal(c, "\"\"@x");
	free(c);
	c = addr_canon("a . b @ x (c)");
	assert_string_equal(c, "a.b@x");
	free(c);
	c = addr_canon("\"\"@x");
	assert_string_equal(c, "\"\"@x");
	free(c);
	assert_null(addr_canon("@x"));
	assert_null(addr_canon("a@b c"));
	assert_null(addr_canon("a@x\x7f"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_rewrite_bad),
		cmocka_unit_test(test_fifty),
		cmocka_unit_test(test_header_block),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
