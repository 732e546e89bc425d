/*
 * ctlsrv.h - posternd's answers to the control requests of postern's
 * queue commands: delete, hold, release, requeue, flush -i / -s, and the
 * listing for callers who may not read the spool (see admin/ctl.h for
 * the protocol). loop.c accepts the connection and answers "flush"
 * itself; everything else comes here.
 */
#ifndef POSTERN_CTLSRV_H
#define POSTERN_CTLSRV_H

#include <stddef.h>

struct addr_rewrite;
struct config;
struct qmgr;

/* What a request may use of the daemon. */
struct ctlsrv {
	struct qmgr			*q;
	const struct addr_rewrite	*rw;	/* to qualify for requeue */
	const struct config		*cf;	/* queue_directory, mail_owner */
};

/*
 * Serve request line on the accepted connection fd. Returns 1 with the
 * answer line (newline included) in reply, or 0 when the connection was
 * handed to a child process that writes the answer (the caller then only
 * closes its copy of fd).
 */
int ctlsrv_request(const struct ctlsrv *c, int fd, char *line, char *reply,
    size_t replylen);

#endif
