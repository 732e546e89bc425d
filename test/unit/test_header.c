/*
 * test_header.c - splitting a message, reading and removing fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mail/header.h"

/* Split s and compare the header length and body offset. */
static void
split(const char *s, size_t want_hdr, size_t want_body)
{
	size_t h = 99, b = 99;

	hdr_split(s, strlen(s), &h, &b);
	assert_int_equal(h, want_hdr);
	assert_int_equal(b, want_body);
}

static void
test_split(void **state)
{
	/* Headers, empty line, body. */
	split("A: 1\nB: 2\n\nbody\n", 10, 11);
	/* Folded header. */
	split("Subject: a\n b\n\tc\n\nx\n", 17, 18);
	/* No body at all; headers ending without a final LF. */
	split("A: 1\nB: 2\n", 10, 10);
	split("A: 1", 4, 4);
	/* Headers then the empty line as the last line. */
	split("A: 1\n\n", 5, 6);
	/* A first line that is not a header: no headers. */
	split("hello world\nA: 1\n", 0, 0);
	split("From alice Mon Jan 1\nA: 1\n", 0, 0);
	split(" continued: no\n", 0, 0);
	split("\nbody\n", 0, 1);
	split("", 0, 0);
	/* A non-header line ends the block without an empty line. */
	split("A: 1\nnot a header\n", 5, 5);
	/* Obsolete white space before the colon. */
	split("Subject : x\n\nb", 12, 13);
}

/* hdr_get on a whole message's header block. */
static void
get(const char *msg, const char *name, size_t nth, const char *want)
{
	size_t h, b;
	char *v;

	hdr_split(msg, strlen(msg), &h, &b);
	v = hdr_get(msg, h, name, nth);
	if (want == NULL) {
		assert_null(v);
		return;
	}
	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
}

static void
test_get(void **state)
{
	const char *m = "To: a@x,\n\tb@x\nSUBJECT:   hi there  \ncc: c@x\n"
	    "To: d@x\n\nTo: not-a-header@x\n";

	get(m, "to", 0, "a@x,\tb@x");
	get(m, "To", 1, "d@x");
	get(m, "To", 2, NULL);
	get(m, "Subject", 0, "hi there");
	get(m, "Cc", 0, "c@x");
	get(m, "Bcc", 0, NULL);
	get(m, "T", 0, NULL);
	get("Empty:\n\n", "Empty", 0, "");
	get("body only\nTo: x\n", "To", 0, NULL);
}

/* hdr_remove and compare the result. */
static void
removes(const char *msg, const char *name, size_t want_n, const char *want)
{
	struct buf out = BUF_INIT;

	assert_int_equal(hdr_remove(msg, strlen(msg), name, &out), want_n);
	assert_string_equal(out.data ? out.data : "", want);
	buf_free(&out);
}

static void
test_remove(void **state)
{
	removes("To: a\nBcc: secret@x,\n  other@x\nSubject: s\nbcc: s2\n\n"
	    "Bcc: body line stays\n", "Bcc", 2,
	    "To: a\nSubject: s\n\nBcc: body line stays\n");
	removes("To: a\n\nbody\n", "Bcc", 0, "To: a\n\nbody\n");
	removes("Bcc: x\n", "Bcc", 1, "");
	removes("", "Bcc", 0, "");
	removes("body\nBcc: x\n", "Bcc", 0, "body\nBcc: x\n");
}

static void
test_have(void **state)
{
	const char *m = "from: a\nDATE: b\nMessage-Id: <c>\n";

	assert_int_equal(hdr_have(m, strlen(m)), HDR_FROM | HDR_DATE | HDR_MSGID);
	m = "Fromage: x\nResent-Date: y\n";
	assert_int_equal(hdr_have(m, strlen(m)), 0);
	m = "Date: x\n";
	assert_int_equal(hdr_have(m, strlen(m)), HDR_DATE);
	assert_int_equal(hdr_have("", 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_have),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
