/*
 * worker.h - a delivery process and its tiny result protocol.
 *
 * The daemon forks a worker with a batch of messages for one relay. The
 * worker opens one SMTP session, delivers the batch over it, logs one
 * Postfix-format line per recipient attempt, and reports each result on a
 * pipe. Workers report; only the parent changes the spool.
 *
 * Protocol, one line each (lines are shorter than PIPE_BUF, so each write
 * is atomic):
 *   R QID IDX VERDICT DSN TEXT    recipient IDX: S(ent), D(eferred), B(ounced)
 *   M QID                         every recipient of QID has been reported
 */
#ifndef POSTERN_WORKER_H
#define POSTERN_WORKER_H

#include <stddef.h>

#include "deliver/smtp.h"
#include "deliver/trouble.h"
#include "spool/qstate.h"
#include "spool/spool.h"

/* What a worker needs to know, built by the parent from main.cf. */
struct worker_cfg {
	struct smtp_opts	 opts;
	struct smtp_relay	 relay;
	int			 relay_ok;	/* relay parsed */
	char			 why_not[300];	/* reason to defer everything */
	struct policy		 pol;
	char			 active_dir[PATH_BUF];
};

/* One message of a batch. */
struct job_msg {
	char			 qid[QID_MAX];
	double			 active_time;	/* entered active/ */
	const struct qstate	*st;		/* who still needs it */
};

/* One parsed result line. */
struct wresult {
	char		type;		/* 'R' or 'M' */
	char		qid[QID_MAX];
	size_t		idx;
	enum verdict	verdict;
	char		dsn[16];
	char		text[600];
};

/* Run the batch in the child and exit; never returns. */
_Noreturn void worker_run(const struct worker_cfg *wc,
    const struct job_msg *msgs, size_t n, int fd);
/* Parse one result line (without its newline); 0 or -1 (pure). */
int worker_result_parse(const char *line, struct wresult *out);

#endif
