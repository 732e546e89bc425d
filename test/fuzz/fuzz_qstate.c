/*
 * fuzz_qstate.c - libFuzzer target for the state record parser, and
 * for the worker result-line parser that feeds it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/worker.h"
#include "lib/xalloc.h"
#include "spool/qstate.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct qstate st;
	struct wresult r;
	struct buf b = BUF_INIT;
	char err[256], *line;

	/* A record that parses must format and parse back the same. */
	if (qstate_parse((const char *)data, len, 4, &st, err, sizeof(err)) == 0) {
		struct qstate again;
		qstate_format(&st, &b);
		if (qstate_parse(b.data, b.len, 4, &again, err, sizeof(err)) != 0)
			abort();
		for (size_t i = 0; i < 4; i++)
			if (again.r[i].st != st.r[i].st)
				abort();
		if (again.warned != st.warned)
			abort();
		qstate_free(&again);
		qstate_free(&st);
		buf_free(&b);
	}
	line = xstrndup((const char *)data, len);
	(void)worker_result_parse(line, &r);
	free(line);
	return 0;
}
