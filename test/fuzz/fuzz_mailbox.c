/*
 * fuzz_mailbox.c - libFuzzer target for the envelope address checks and
 * the display-name encoder that sendmail applies to its arguments.
 *
 * The input is what a local user passes to sendmail (-f, recipients,
 * -F). For any input: nothing crashes; an address addr_mailbox_check
 * accepts is also one the SMTP client would send (addr_wire_ok), so the
 * two checks can never disagree in the user's favour; qualifying a bare
 * accepted name keeps it acceptable; addr_phrase's result, when there is
 * one, holds no control character but the "\n " of a fold, so it can
 * never start a new header field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mail/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A valid mailbox must pass the wire check and survive qualification. */
static void
check_mailbox(const char *s)
{
	struct addr_rewrite rw = { "origin.example", "example", 1, 1 };
	char err[256], *q;

	if (addr_mailbox_check(s, 0, err, sizeof(err)) == 0 &&
	    !addr_wire_ok(s))
		abort();
	if (addr_mailbox_check(s, 1, err, sizeof(err)) == 0) {
		if (!addr_wire_ok(s))
			abort();
		q = addr_qualify(s, &rw);
		if (addr_mailbox_check(q, 0, err, sizeof(err)) != 0)
			abort();
		free(q);
	}
}

/* A display name must come back as header text with no line breaks
   but folds. */
static void
check_phrase(const char *s)
{
	char err[256], *p = addr_phrase(s, err, sizeof(err));

	if (p == NULL)
		return;
	for (const unsigned char *c = (const unsigned char *)p; *c; c++) {
		if (*c == '\n' && c[1] == ' ' && c[2] != ' ' && c[2] != '\0')
			continue;
		if (*c < 0x20 || *c == 0x7f)
			abort();
	}
	free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);

	check_mailbox(s);
	check_phrase(s);
	free(s);
	return 0;
}
