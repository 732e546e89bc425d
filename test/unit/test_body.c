/*
 * test_body.c - body_encode: the DATA stream of a stored message.
 *
 * Every output is first checked for what SMTP requires of any DATA
 * stream (CRLF lines only, within the limit, ending ".\r\n"), then
 * un-stuffed and compared; long text lines are decoded back from
 * quoted-printable by a small decoder here and compared byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/body.h"
#include "lib/buf.h"

/*
 * Check the wire rules of the DATA stream in w and return the message
 * as the server stores it (dots removed, CRLF kept), in out.
 */
static void
unstuff(const struct buf *w, size_t limit, struct buf *out)
{
	const char *p = w->data, *end, *crlf;
	size_t n;

	assert_true(w->len >= 3);
	assert_memory_equal(w->data + w->len - 3, ".\r\n", 3);
	end = w->data + w->len - 3;
	while (p < end) {
		crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
		assert_non_null(crlf);
		n = (size_t)(crlf - p);
		/* No bare CR, LF or NUL inside a line. */
		assert_null(memchr(p, '\r', n));
		assert_null(memchr(p, '\n', n));
		assert_null(memchr(p, '\0', n));
		if (n > 0 && p[0] == '.') {
			/* A line starting with a dot was stuffed. */
			assert_true(n >= 2 && p[1] == '.');
			p++;
			n--;
		}
		assert_true(n <= limit);
		buf_add(out, p, n);
		buf_add(out, "\r\n", 2);
		p = crlf + 2;
	}
}

/* Encode msg and return what the server stores. */
static char *
roundtrip(const char *msg, size_t len, int limit)
{
	struct buf w = BUF_INIT, out = BUF_INIT;

	body_encode(msg, len, limit, &w);
	unstuff(&w, (size_t)limit, &out);
	buf_free(&w);
	return buf_steal(&out);
}

/* Compare encode(in, len) with the expected stored text. */
static void
same_n(const char *in, size_t len, const char *want)
{
	char *got = roundtrip(in, len, 998);

	assert_string_equal(got, want);
	free(got);
}

/* Compare encode(in) with the expected stored text. */
static void
same(const char *in, const char *want)
{
	char *got = roundtrip(in, strlen(in), 998);

	assert_string_equal(got, want);
	free(got);
}

/* Value of a hex digit, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode quoted-printable text with CRLF lines (RFC 2045 6.7). */
static void
qp_decode(const char *p, size_t n, struct buf *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] != '=') {
			buf_addc(out, p[i]);
			continue;
		}
		if (i + 2 < n + 1 && p[i + 1] == '\r' && p[i + 2] == '\n') {
			i += 2;		/* soft line break */
			continue;
		}
		assert_true(i + 2 < n);
		assert_true(hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0);
		buf_addc(out, (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2])));
		i += 2;
	}
}

/* Line ends, dot lines, NUL and a missing final newline. */
static void
test_basic(void **state)
{
	(void)state;
	same("", "");
	same("Subject: x\n\nhello\n", "Subject: x\r\n\r\nhello\r\n");
	same("Subject: x\n\nhello", "Subject: x\r\n\r\nhello\r\n");
	same("a\r\nb\r\n", "a\r\nb\r\n");
	same("a\rb\n", "a\r\nb\r\n");
	same("a\r\rb", "a\r\n\r\nb\r\n");
	same_n("a\0b\n", 4, "ab\r\n");
	same_n("\0\0", 2, "");
	same("\n", "\r\n");
}

/* Dot-stuffing, including the piece after a bare CR. */
static void
test_dots(void **state)
{
	struct buf w = BUF_INIT;
	const char *msg = "S: x\n\n.\n..\n.a\nb.\nx\r.y\n";

	(void)state;
	body_encode(msg, strlen(msg), 998, &w);
	assert_string_equal(w.data, "S: x\r\n\r\n..\r\n...\r\n..a\r\nb.\r\n"
	    "x\r\n..y\r\n.\r\n");
	buf_free(&w);
	same(msg, "S: x\r\n\r\n.\r\n..\r\n.a\r\nb.\r\nx\r\n.y\r\n");
}

/* A 2,000-character text line comes back exactly through QP. */
static void
test_long_text_qp(void **state)
{
	struct buf msg = BUF_INIT, dec = BUF_INIT;
	char line[2001], *got, *body;
	size_t i;

	(void)state;
	/* Printables, '=', '.', blanks and 8-bit bytes, ending in a blank. */
	for (i = 0; i < 2000; i++)
		line[i] = "ab=. \t\xe9x"[i % 8];
	line[1999] = ' ';
	line[2000] = '\0';
	buf_adds(&msg, "Subject: long\nContent-Transfer-Encoding: 8bit\n\n");
	buf_adds(&msg, ".first\n");
	buf_adds(&msg, line);
	buf_adds(&msg, "\nshort\n");
	got = roundtrip(msg.data, msg.len, 998);
	assert_non_null(strstr(got, "Content-Transfer-Encoding: "
	    "quoted-printable\r\n"));
	assert_null(strstr(got, "8bit"));
	assert_non_null(strstr(got, "MIME-Version: 1.0\r\n"));
	body = strstr(got, "\r\n\r\n") + 4;
	/* QP lines are at most 76 octets. */
	for (char *p = body, *e; (e = strstr(p, "\r\n")) != NULL; p = e + 2)
		assert_true(e - p <= 76);
	qp_decode(body, strlen(body), &dec);
	buf_free(&msg);
	buf_adds(&msg, ".first\r\n");
	buf_adds(&msg, line);
	buf_adds(&msg, "\r\nshort\r\n");
	assert_int_equal(dec.len, msg.len);
	assert_memory_equal(dec.data, msg.data, msg.len);
	free(got);
	buf_free(&msg);
	buf_free(&dec);
}

/* Multipart: long body lines are broken, nothing lost. */
static void
test_long_multipart(void **state)
{
	struct buf msg = BUF_INIT;
	char line[2001], *got, *p, *joined;
	size_t i, j;

	(void)state;
	for (i = 0; i < 2000; i++)
		line[i] = (char)('A' + i % 26);
	line[2000] = '\0';
	line[998] = '.';	/* a piece that starts with a dot */
	buf_adds(&msg, "Content-Type: multipart/mixed; boundary=b\n\n--b\n");
	buf_adds(&msg, line);
	buf_adds(&msg, "\n--b--\n");
	got = roundtrip(msg.data, msg.len, 998);
	assert_null(strstr(got, "quoted-printable"));
	/* Removing the inserted line breaks gives the line back. */
	p = strstr(got, "--b\r\n") + 5;
	joined = malloc(strlen(p) + 1);
	for (i = j = 0; p[i] && strncmp(p + i, "\r\n--b--", 7) != 0; i++)
		if (p[i] != '\r' && p[i] != '\n')
			joined[j++] = p[i];
	joined[j] = '\0';
	assert_string_equal(joined, line);
	free(joined);
	free(got);
	buf_free(&msg);
}

/* A 2,000-character header line is folded at white space. */
static void
test_long_header(void **state)
{
	struct buf msg = BUF_INIT, unf = BUF_INIT;
	char *got;
	size_t i;

	(void)state;
	buf_adds(&msg, "To: ");
	for (i = 0; i < 200; i++)
		buf_adds(&msg, "u123@ex.com, ");	/* 13 chars */
	buf_adds(&msg, "last@ex.com\nX-Long: ");
	for (i = 0; i < 2000; i++)
		buf_addc(&msg, 'z');
	buf_adds(&msg, "\n\nbody\n");
	got = roundtrip(msg.data, msg.len, 998);
	/* Unfolding (drop CRLF before white space) restores To: exactly. */
	for (i = 0; got[i]; i++)
		if (!(got[i] == '\r' && got[i + 1] == '\n' &&
		    (got[i + 2] == ' ' || got[i + 2] == '\t')))
			buf_addc(&unf, got[i]);
		else
			i++;
	assert_memory_equal(unf.data, msg.data, 4 + 2600 + 11);
	assert_memory_equal(unf.data + 2615, "\r\nX-Long", 8);
	/* X-Long had no blanks: folded with CRLF SPACE, no z lost. */
	{
		const char *x = strstr(got, "X-Long:");
		size_t z = 0;

		for (; *x && strncmp(x, "\r\n\r\n", 4) != 0; x++)
			z += *x == 'z';
		assert_int_equal(z, 2000);
	}
	assert_non_null(strstr(got, "\r\n\r\nbody\r\n"));
	free(got);
	buf_free(&msg);
	buf_free(&unf);
}

/* No long lines: the message is not re-encoded; small limits work. */
static void
test_untouched_and_limits(void **state)
{
	struct buf msg = BUF_INIT;
	char *got;
	size_t i;

	(void)state;
	same("Content-Transfer-Encoding: 8bit\n\n\xe9t\xe9\n",
	    "Content-Transfer-Encoding: 8bit\r\n\r\n\xe9t\xe9\r\n");
	/* Headers only, no body: no blank line is invented. */
	same("Subject: x\n", "Subject: x\r\n");
	/* Base64 (already encoded) long line: broken, not QP'd. */
	buf_adds(&msg, "Content-Transfer-Encoding: base64\n\n");
	for (i = 0; i < 100; i++)
		buf_adds(&msg, "QUJD");
	got = roundtrip(msg.data, msg.len, 40);
	assert_null(strstr(got, "quoted-printable"));
	free(got);
	/* A body with no header at all and a long line: QP, separated. */
	buf_reset(&msg);
	for (i = 0; i < 100; i++)
		buf_adds(&msg, "word ");
	got = roundtrip(msg.data, msg.len, 40);
	assert_non_null(strstr(got, "Content-Transfer-Encoding:\r\n "
	    "quoted-printable\r\n\r\nword"));
	free(got);
	buf_free(&msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_dots),
		cmocka_unit_test(test_long_text_qp),
		cmocka_unit_test(test_long_multipart),
		cmocka_unit_test(test_long_header),
		cmocka_unit_test(test_untouched_and_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
