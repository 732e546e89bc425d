/*
 * qmgr.h - the queue manager: the daemon's picture of the spool.
 *
 * It knows every message in active/ and deferred/ (id, arrival, recipient
 * state, next try, which worker has it) and makes every spool state change
 * the daemon makes: pickup from incoming/new, active <-> deferred, state
 * records, corrupt/, removal. The transitions are the ones postern-spool(5)
 * lists; each is a durable rename or fs_replace.
 */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stddef.h>
#include <sys/types.h>

#include "deliver/qindex.h"
#include "deliver/worker.h"
#include "spool/qops.h"
#include "spool/qstate.h"
#include "spool/spool.h"

struct qmsg {
	char		qid[QID_MAX];
	enum qdir	where;		/* QD_ACTIVE or QD_DEFERRED */
	double		arrival;
	double		active_time;	/* when it last entered active/ */
	double		next_try;	/* due when <= now */
	int		null_sender;
	char		*sender;	/* envelope sender, for credentials */
	int		final;		/* nothing left to try (failed kept) */
	char		**rcpt;		/* recipient addresses, for routing */
	char		**orig;		/* ...as submitted (NULL: the same) */
	int		expanded;	/* alias_maps applied, or not needed */
	int		more;		/* recipients left for another relay */
	int		more_due;	/* due now for those only */
	unsigned char	*tried;		/* per recipient: routed this cycle */
	unsigned char	*relayed;	/* per recipient, or NULL: accepted by a
					   relay without DSN (bounce.h) */
	pid_t		worker;		/* 0 when idle */
	int		admin_gone;	/* deleted or held while delivered */
	int		admin_requeue;	/* requeue when the worker is done */
	size_t		slot;		/* its place in qmgr.m */
	struct qstate	st;
};

struct qenv;
struct bounce_cfg;

/*
 * Alias expansion, supplied by the daemon: local(arg, env) says whether
 * env has recipients to expand at all; expand(arg, in, out, err) is
 * route_expand (1 changed, 0 not, -1 error).
 */
struct qmgr_alias {
	int	(*local)(void *arg, const struct qenv *env);
	int	(*expand)(void *arg, const struct qenv *in, struct qenv *out,
		    char *err, size_t errlen);
	void	*arg;
};

struct qmgr {
	char		  dir[QD_COUNT][PATH_BUF];
	struct qmgr_alias alias;
	const struct bounce_cfg *bounce;	/* notices to senders, or NULL */
	struct qmsg	**m;
	size_t		  n;
	size_t		  cap;
	long long	  min_backoff;
	long long	  max_backoff;
	size_t		  admin_pending;	/* requeues waiting for a worker */
	struct qindex	  ix;		/* queue ID -> entry */
	/*
	 * A lower bound of the next time an idle message that is not due
	 * yet becomes due (0: none known). qmgr_due computes it exactly;
	 * every change that makes a message due lowers it, so the daemon
	 * need not look at the whole table while nothing new is due.
	 */
	double		  next_wake;
};

/* Set up paths and the backoff bounds; no I/O. */
int qmgr_init(struct qmgr *q, const char *queue_dir, long long min_backoff,
    long long max_backoff);
void qmgr_free(struct qmgr *q);
/*
 * Start-up recovery: remove stale temporary files and orphan state
 * records, take active/ and deferred/ into the table (active/ is due at
 * once: delivery is at-least-once), then pick up incoming/new.
 */
void qmgr_recover(struct qmgr *q);
/* Claim everything in incoming/new: move to active/ and load it. */
void qmgr_pickup(struct qmgr *q);
/* Take in deferred/ files the table does not know (e.g. after a restore). */
void qmgr_scan_deferred(struct qmgr *q);
/*
 * Remove the notices in hold/ (null sender) older than
 * maximal_queue_lifetime; mail held by the administrator stays.
 */
void qmgr_expire_held(struct qmgr *q);
/* Make every deferred message that has something left to try due now. */
void qmgr_flush(struct qmgr *q);
/*
 * Collect up to max idle messages due at now into out, oldest first;
 * returns how many. One pass over the table, which also sets next_wake
 * to the earliest next try after now of the idle messages left out
 * (those due now but beyond max count as "now").
 */
size_t qmgr_due(struct qmgr *q, double now, struct qmsg **out, size_t max);
/* Move a due deferred message to active/ before delivery; 0 or -1. */
int qmgr_activate(struct qmgr *q, struct qmsg *m);
/*
 * Expand m's local recipients that still need a delivery through the
 * alias hooks, once: a changed list replaces the queue file's (flags
 * expanded; write-temp and rename), recipients already done keep their
 * status, and the state record follows. Returns 0, or -1 with err when
 * a table could not be read or the expansion cannot work; the caller
 * then settles the recipients (m is untouched).
 */
int qmgr_expand(struct qmgr *q, struct qmsg *m, char *err, size_t errlen);
/*
 * Record the outcome of recipient idx that the daemon decided itself
 * (transport_maps error:, discard:, retry:, a failed lookup).
 */
void qmgr_rcpt_local(struct qmgr *q, struct qmsg *m, size_t idx,
    enum verdict v, const char *dsn, const char *text);
/*
 * The daemon is done with m without a worker: record the attempt as
 * after a delivery (state record, deferred/, removal when all are done).
 * m may be freed.
 */
void qmgr_settle(struct qmgr *q, struct qmsg *m);
/* Apply one worker result line from worker pid. */
void qmgr_result(struct qmgr *q, const struct wresult *r, pid_t pid);
/* Every message still held by worker pid is finished (worker exited). */
void qmgr_worker_gone(struct qmgr *q, pid_t pid);
/* The earliest next_try of an idle message with work left, or 0 if none. */
double qmgr_next_due(const struct qmgr *q);

struct addr_rewrite;

/*
 * postern delete, hold, release or requeue (op) of qid in the queues of
 * mask, for the control socket: the spool change (qops.h), then the
 * table. A message a worker holds is deleted or held at once (the worker
 * can no longer read it, so nothing more reaches the relay; a
 * transaction already under way may complete) and its results are then
 * discarded, except that a held message keeps the statuses of that
 * attempt; its requeue waits until the worker is done. One log line per
 * message ("QID: removed", ...). Returns 0 when done, 1 when the requeue
 * waits for a worker, 2 when there was nothing to do (err: why), -1
 * with errno ENOENT when qid is in none of those queues, EBUSY when it
 * is still being delivered after a delete or hold, or another errno with
 * err.
 */
int qmgr_admin(struct qmgr *q, enum qop op, const char *qid, unsigned mask,
    const struct addr_rewrite *rw, char *err, size_t errlen);
/* Carry out requeues that waited for their worker (call when one ends). */
void qmgr_admin_idle(struct qmgr *q, const struct addr_rewrite *rw);
/*
 * postern flush -i: make qid due now. Returns 0, 2 when there is nothing
 * to deliver now (err: why), or -1 with errno ENOENT.
 */
int qmgr_flush_id(struct qmgr *q, const char *qid, char *err, size_t errlen);
/*
 * postern flush -s: make due now every idle message with a recipient
 * still to deliver in domain; returns how many.
 */
size_t qmgr_flush_domain(struct qmgr *q, const char *domain);

#endif
