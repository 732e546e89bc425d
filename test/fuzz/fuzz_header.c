/*
 * fuzz_header.c - libFuzzer target for the header and address parsers.
 *
 * Both read whatever a program pipes into sendmail. The input is split
 * into a message; every To/Cc/Bcc value found goes through the
 * address-list parser and each address through addr_check().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mail/addr.h"
#include "mail/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse one header's address list and check each address. */
static void
addresses(const char *hdr, size_t len, const char *name)
{
	struct addr_list l = { NULL, 0 };
	char err[128], *v, *clean;

	for (size_t nth = 0; (v = hdr_get(hdr, len, name, nth)) != NULL; nth++) {
		(void)addr_list_parse(v, &l, err, sizeof(err));
		free(v);
	}
	for (size_t i = 0; i < l.n; i++)
		if (addr_check(l.v[i], 0, &clean, err, sizeof(err)) == 0)
			free(clean);
	addr_list_free(&l);
}

/* Split, query, remove: the operations sendmail performs. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct buf out = BUF_INIT;
	size_t hlen, body;

	hdr_split(msg, size, &hlen, &body);
	if (hlen > body || body > size)
		abort();
	(void)hdr_have(msg, hlen);
	addresses(msg, hlen, "To");
	addresses(msg, hlen, "Bcc");
	(void)hdr_remove(msg, size, "Bcc", &out);
	if (out.len > size)
		abort();
	buf_free(&out);
	return 0;
}
