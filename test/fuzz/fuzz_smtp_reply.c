/*
 * fuzz_smtp_reply.c - libFuzzer target for smtp_reply_parse.
 *
 * Checks more than "no crash": a complete reply never claims more bytes
 * than it was given, its code is a valid SMTP code, its text fits, and
 * parsing the consumed prefix alone gives the same answer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[256], text2[256], dsn[16];
	int code = 0, code2 = 0;
	long n, n2;

	n = smtp_reply_parse((const char *)data, size, &code, text,
	    sizeof(text));
	if (n <= 0)
		return 0;
	if ((size_t)n > size || code < 200 || code > 559 ||
	    strlen(text) >= sizeof(text))
		abort();
	n2 = smtp_reply_parse((const char *)data, (size_t)n, &code2, text2,
	    sizeof(text2));
	if (n2 != n || code2 != code || strcmp(text, text2) != 0)
		abort();
	smtp_reply_dsn(code, text, dsn, sizeof(dsn));
	if (dsn[0] != '0' + code / 100)
		abort();
	return 0;
}
