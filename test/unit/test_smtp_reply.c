/*
 * test_smtp_reply.c - smtp_reply_parse and smtp_reply_dsn, pure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/smtp.h"

/* Parse s; returns what smtp_reply_parse returns. */
static long
parse(const char *s, int *code, char *text, size_t tl)
{
	return smtp_reply_parse(s, strlen(s), code, text, tl);
}

/* A one-line reply, and trailing bytes left for the next. */
static void
test_single(void **state)
{
	char text[128];
	int code = 0;

	(void)state;
	assert_int_equal(parse("250 2.1.0 Ok\r\n354 x\r\n", &code, text,
	    sizeof(text)), 14);
	assert_int_equal(code, 250);
	assert_string_equal(text, "2.1.0 Ok");
	assert_int_equal(parse("220\r\n", &code, text, sizeof(text)), 5);
	assert_int_equal(code, 220);
	assert_string_equal(text, "");
}

/* Multi-line replies join their texts with a space. */
static void
test_multi(void **state)
{
	const char *r = "250-mx.example\r\n250-PIPELINING\r\n250-\r\n"
	    "250 SIZE 1000\r\n";
	char text[128];
	int code = 0;

	(void)state;
	assert_int_equal(parse(r, &code, text, sizeof(text)),
	    (long)strlen(r));
	assert_int_equal(code, 250);
	assert_string_equal(text, "mx.example PIPELINING SIZE 1000");
}

/* Incomplete input asks for more. */
static void
test_partial(void **state)
{
	char text[64];
	int code = 0;

	(void)state;
	assert_int_equal(parse("", &code, text, sizeof(text)), 0);
	assert_int_equal(parse("25", &code, text, sizeof(text)), 0);
	assert_int_equal(parse("250 ok\r", &code, text, sizeof(text)), 0);
	assert_int_equal(parse("250-a\r\n250 b", &code, text, sizeof(text)),
	    0);
}

/* Everything the grammar does not allow is an error. */
static void
test_errors(void **state)
{
	static const char *bad[] = {
		"250 ok\n",			/* bare LF */
		"25 ok\r\n",
		"2500 ok\r\n",
		"abc ok\r\n",
		"150 ok\r\n",			/* no 1xx in SMTP */
		"260 ok\r\n",
		"250_ok\r\n",
		"250-a\r\n251 b\r\n",		/* code changes */
		"250 a\rb\r\n",			/* bare CR in text */
		"\r\n",
	};
	char text[64];
	size_t i;
	int code;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &code, text, sizeof(text)), -1);
	/* A NUL inside the text. */
	assert_int_equal(smtp_reply_parse("250 a\0b\r\n", 9, &code, text,
	    sizeof(text)), -1);
}

/* Limits: 512 octets a line, 100 lines. */
static void
test_limits(void **state)
{
	char line[600], big[100 * 8 + 16], text[64];
	size_t i;
	int code;

	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	memcpy(line + 510, "\r\n", 3);		/* 512 octets: fine */
	assert_int_equal(parse(line, &code, text, sizeof(text)), 512);
	assert_int_equal(strlen(text), sizeof(text) - 1);	/* truncated */
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	memcpy(line + 511, "\r\n", 3);		/* 513 octets */
	assert_int_equal(parse(line, &code, text, sizeof(text)), -1);
	line[520] = '\0';			/* no CRLF yet, too long */
	memset(line + 500, 'x', 20);
	assert_int_equal(parse(line, &code, text, sizeof(text)), -1);
	big[0] = '\0';
	for (i = 0; i < 100; i++)
		strcat(big, "250-a\r\n");
	strcat(big, "250 a\r\n");		/* 101 lines */
	assert_int_equal(parse(big, &code, text, sizeof(text)), -1);
	memcpy(big + 99 * 7, "250 a\r\n", 8);	/* 100 lines */
	assert_int_equal(parse(big, &code, text, sizeof(text)), 700);
}

/* Enhanced status codes: taken when the class matches, else X.0.0. */
static void
test_dsn(void **state)
{
	char dsn[16];

	(void)state;
	assert_int_equal(smtp_reply_dsn(550, "5.1.1 <x>: user unknown", dsn,
	    sizeof(dsn)), 1);
	assert_string_equal(dsn, "5.1.1");
	assert_int_equal(smtp_reply_dsn(250, "2.0.0", dsn, sizeof(dsn)), 1);
	assert_string_equal(dsn, "2.0.0");
	assert_int_equal(smtp_reply_dsn(452, "4.123.456 x", dsn,
	    sizeof(dsn)), 1);
	assert_string_equal(dsn, "4.123.456");
	assert_int_equal(smtp_reply_dsn(550, "4.1.1 wrong class", dsn,
	    sizeof(dsn)), 0);
	assert_string_equal(dsn, "5.0.0");
	assert_int_equal(smtp_reply_dsn(421, "Service closing", dsn,
	    sizeof(dsn)), 0);
	assert_string_equal(dsn, "4.0.0");
	assert_int_equal(smtp_reply_dsn(250, "2.0.0Ok", dsn, sizeof(dsn)), 0);
	assert_int_equal(smtp_reply_dsn(550, "5.1234.1 x", dsn,
	    sizeof(dsn)), 0);
	assert_int_equal(smtp_reply_dsn(550, "5..1 x", dsn, sizeof(dsn)), 0);
	assert_int_equal(smtp_reply_dsn(250, "", dsn, sizeof(dsn)), 0);
	assert_string_equal(dsn, "2.0.0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_multi),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_dsn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
