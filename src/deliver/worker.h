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

struct config;
struct maps;

/* What a worker needs to know, built by the parent from main.cf. */
struct worker_cfg {
	struct smtp_opts	 opts;
	struct smtp_relay	 relay;
	int			 relay_ok;	/* relay parsed */
	char			 why_not[300];	/* reason to defer everything */
	char			 why_now[600];	/* ...for this batch only */
	struct policy		 pol;
	char			 active_dir[PATH_BUF];
	struct tls_ctx		*tls;		/* from main.cf, or NULL */
	struct maps		*tls_maps;	/* smtp_tls_policy_maps */
	enum tls_level		 tls_level;	/* smtp_tls_security_level */
	struct tls_policy	 tlsp;		/* the relay's, by worker_cfg_policy */
};

/*
 * Build wc from main.cf (wconf.c). Problems that only concern delivery
 * (no relayhost) go to wc->why_not and mail waits; settings that cannot
 * work at all (a bad TLS level, an unreadable CA file or policy table)
 * make it return -1 with the reason in err. active_dir may be NULL.
 */
int worker_cfg_build(struct worker_cfg *wc, const struct config *cf,
    const char *active_dir, char *err, size_t errlen);
/*
 * Settle the relay's TLS policy (smtp_tls_policy_maps, else main.cf's
 * level) into wc->tlsp and wc->opts. Called before each batch so that an
 * edited table counts at once. Returns 0, or -1 with the reason in
 * wc->why_now (a lookup error or a bad entry: the batch waits).
 */
int worker_cfg_policy(struct worker_cfg *wc);
/* Free what worker_cfg_build made. */
void worker_cfg_free(struct worker_cfg *wc);

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
