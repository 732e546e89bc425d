/*
 * worker.h - a delivery process and its tiny result protocol.
 *
 * The daemon forks a worker with a batch of messages for one relay (and
 * its fallback relays), each with the recipients to try there. The
 * worker opens one SMTP session, delivers the batch over it, logs one
 * Postfix-format line per recipient attempt, and reports each result on a
 * pipe. Workers report; only the parent changes the spool.
 *
 * Protocol, one line each (only this worker writes its pipe):
 *   R QID IDX VERDICT DSN TEXT    recipient IDX: S(ent), D(eferred), B(ounced),
 *                                 or L: sent to a relay without DSN when
 *                                 the sender asked for SUCCESS notices
 *   M QID                         every recipient of QID has been reported
 *   T KEY HEX                     a TLS session to resume (tls.h)
 *   A KEY                         the relay refused the login that
 *                                 smtp_sasl_password_maps gave for KEY:
 *                                 forget any cached answer
 */
#ifndef POSTERN_WORKER_H
#define POSTERN_WORKER_H

#include <stddef.h>

#include "deliver/route.h"
#include "lib/buf.h"
#include "deliver/smtp.h"
#include "deliver/trouble.h"
#include "spool/qstate.h"
#include "spool/spool.h"

struct config;
struct job_msg;
struct maps;

/* A relay and up to seven smtp_fallback_relay hosts per batch. */
#define WC_RELAYS	8

/* One relay of a batch, settled by the parent before the fork. */
struct wdest {
	struct smtp_relay	 relay;
	int			 ok;		/* relay parsed */
	struct tls_policy	 tlsp;		/* its TLS policy */
	char			 why[600];	/* why it cannot be used now */
};

/* What a worker needs to know, built by the parent from main.cf. */
struct worker_cfg {
	struct smtp_opts	 opts;
	struct policy		 pol;
	char			 active_dir[PATH_BUF];
	struct tls_ctx		*tls;		/* from main.cf, or NULL */
	struct maps		*tls_maps;	/* smtp_tls_policy_maps */
	enum tls_level		 tls_level;	/* smtp_tls_security_level */
	int			 sasl;		/* smtp_sasl_auth_enable */
	int			 sender_auth;	/* ..._sender_dependent_authentication */
	struct maps		*sasl_maps;	/* smtp_sasl_password_maps */
	struct smtp_auth	 auth;		/* filter and security options */
	struct router		 rt;		/* routing and aliases */
	struct maps		*generic;	/* smtp_generic_maps */
	struct maps		*hchecks;	/* smtp_header_checks */
	/* The batch's relay, then the fallback relays (worker_cfg_dest). */
	struct wdest		 dest[WC_RELAYS];
	size_t			 ndest;
	size_t			 rcpt_limit;	/* ..._destination_recipient_limit */
};

/* A SASL login for one relay of a batch. */
struct job_login {
	char		*user;		/* NULL: no AUTH */
	char		*secret;	/* the password or token (wiped) */
	char		*why;		/* why the lookup failed, or NULL */
	char		*key;		/* the table key that gave them */
	char		*tried;		/* not found: the keys looked up */
};

/*
 * Build wc from main.cf (wconf.c). Settings that cannot work at all (a
 * bad TLS level, an unreadable CA file, a table that cannot be opened)
 * make it return -1 with the reason in err. active_dir may be NULL.
 */
int worker_cfg_build(struct worker_cfg *wc, const struct config *cf,
    const char *active_dir, char *err, size_t errlen);
/*
 * Settle a batch's relays: nexthop (as route_resolve gave it), then each
 * smtp_fallback_relay that differs from it, each with its TLS policy
 * (smtp_tls_policy_maps, else main.cf's level), so that an edited table
 * counts at once. A relay that cannot be used gets the reason in its
 * why. Returns 0, or -1 when the first relay cannot be used.
 */
int worker_cfg_dest(struct worker_cfg *wc, const char *nexthop);
/*
 * The SASL login for a message from sender to relay ri of the batch,
 * looked up in smtp_sasl_password_maps in Postfix's order: with
 * smtp_sender_dependent_authentication the sender, then its "@domain";
 * then the relay as written, then its bare host. Fills lg->user and
 * lg->secret (the value "user:password", split at the first colon), or
 * lg->why on a lookup error or a bad entry. Returns 1 found, 0 not found
 * (no AUTH), -1 error.
 */
int worker_cfg_creds(struct worker_cfg *wc, const char *sender, size_t ri,
    struct job_login *lg);
/* Wipe and free a login. */
void job_login_clear(struct job_login *lg);
/* Let every table look for changes at its next lookup (postern flush). */
void worker_cfg_recheck(struct worker_cfg *wc);
/*
 * Let every table look at its file now (maps_refresh), without a lookup:
 * a daemon that gave up root does it before it hands out work.
 */
void worker_cfg_refresh(struct worker_cfg *wc);
/* Free what worker_cfg_build made. */
void worker_cfg_free(struct worker_cfg *wc);

/* One message of a batch. */
struct job_msg {
	char			 qid[QID_MAX];
	double			 active_time;	/* entered active/ */
	const struct qstate	*st;		/* who still needs it */
	size_t			*idx;		/* the recipients to try */
	size_t			 nidx;
	struct job_login	 login[WC_RELAYS];	/* per relay */
};

/* Wipe and free the logins and recipient list of jm. */
void job_msg_clear(struct job_msg *jm);

/*
 * Rewrite a message on its way out (rewrite.c): the address headers of a
 * message not flagged remote qualified (append_at_myorigin,
 * append_dot_mydomain), smtp_generic_maps on the sender, the recipients
 * and the address headers, then smtp_header_checks. env's sender and recipients are replaced in place;
 * the new message goes to out. Returns 1 (out holds the message to
 * send), 0 (nothing to change: send msg as it is), or -1 with err on a
 * lookup error (the message waits).
 */
struct qenv;
int worker_rewrite(const struct worker_cfg *wc, const char *qid,
    struct qenv *env, const char *msg, size_t len, struct buf *out,
    char *err, size_t errlen);

/* One parsed result line. */
struct wresult {
	char		type;		/* 'R' or 'M' */
	char		qid[QID_MAX];
	size_t		idx;
	enum verdict	verdict;
	int		relayed;	/* 'L': sent, the sender gets a notice */
	char		dsn[16];
	char		text[600];
};

/* Run the batch in the child and exit; never returns. */
_Noreturn void worker_run(const struct worker_cfg *wc,
    const struct job_msg *msgs, size_t n, int fd);
/* Parse one result line (without its newline); 0 or -1 (pure). */
int worker_result_parse(const char *line, struct wresult *out);

/*
 * smtp_generic_maps for one address (rewrite.c): MAP_FOUND with *out (a
 * new string), MAP_NOTFOUND (*out NULL), MAP_ERROR with err.
 */
int worker_generic(const struct worker_cfg *wc, const char *addr,
    char **out, char *err, size_t errlen);

#endif
