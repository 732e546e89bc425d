/*
 * worker.h - a delivery process and its tiny result protocol.
 *
 * The daemon forks a worker with a batch of messages for one relay. The
 * worker opens one SMTP session, delivers the batch over it, logs one
 * Postfix-format line per recipient attempt, and reports each result on a
 * pipe. Workers report; only the parent changes the spool.
 *
 * Protocol, one line each (only this worker writes its pipe):
 *   R QID IDX VERDICT DSN TEXT    recipient IDX: S(ent), D(eferred), B(ounced)
 *   M QID                         every recipient of QID has been reported
 *   T KEY HEX                     a TLS session to resume (tls.h)
 *   A KEY                         the relay refused the login that
 *                                 smtp_sasl_password_maps gave for KEY:
 *                                 forget any cached answer
 */
#ifndef POSTERN_WORKER_H
#define POSTERN_WORKER_H

#include <stddef.h>

#include "deliver/smtp.h"
#include "deliver/trouble.h"
#include "spool/qstate.h"
#include "spool/spool.h"

struct config;
struct job_msg;
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
	int			 sasl;		/* smtp_sasl_auth_enable */
	int			 sender_auth;	/* ..._sender_dependent_authentication */
	struct maps		*sasl_maps;	/* smtp_sasl_password_maps */
	struct smtp_auth	 auth;		/* filter and security options */
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
/*
 * The SASL login for a message from sender to the relay, looked up in
 * smtp_sasl_password_maps in Postfix's order: with
 * smtp_sender_dependent_authentication the sender, then its "@domain";
 * then the relay as written, then its bare host. Fills jm->user and
 * jm->secret (the value "user:password", split at the first colon), or
 * jm->why on a lookup error or a bad entry. Returns 1 found, 0 not found
 * (no AUTH), -1 error.
 */
int worker_cfg_creds(struct worker_cfg *wc, const char *sender,
    struct job_msg *jm);
/* Wipe and free what worker_cfg_creds put in jm. */
void job_msg_clear(struct job_msg *jm);
/* Free what worker_cfg_build made. */
void worker_cfg_free(struct worker_cfg *wc);

/* One message of a batch. */
struct job_msg {
	char			 qid[QID_MAX];
	double			 active_time;	/* entered active/ */
	const struct qstate	*st;		/* who still needs it */
	char			*user;		/* SASL login, or NULL */
	char			*secret;	/* ...its password (wiped) */
	char			*why;		/* reason to defer it, or NULL */
	char			*key;		/* the table key that gave them */
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
