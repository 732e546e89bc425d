/*
 * fuzz_qfile.c - libFuzzer target for the queue-file parser.
 *
 * qfile_parse() reads files any local user could have influenced, so it
 * must never crash, leak or read out of bounds. A file that parses must
 * also survive a format/parse round trip unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool/qfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse the input; re-format what parsed and parse it again. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qenv e, e2;
	struct buf b = BUF_INIT;
	size_t off, off2;
	char err[256];

	if (qfile_parse((const char *)data, size, &e, &off, err, sizeof(err)) < 0)
		return 0;
	if (qfile_format_env(&e, &b) < 0)
		abort();
	buf_add(&b, data + off, size - off);
	if (qfile_parse(b.data, b.len, &e2, &off2, err, sizeof(err)) < 0 ||
	    e2.nrcpt != e.nrcpt || e2.size != e.size ||
	    strcmp(e2.sender, e.sender) != 0)
		abort();
	qenv_free(&e2);
	qenv_free(&e);
	buf_free(&b);
	return 0;
}
