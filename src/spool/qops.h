/*
 * qops.h - administrative changes of one queued message: delete, hold,
 * release, requeue. The spool half of postern delete/hold/release/
 * requeue, shared by posternd (which also updates its table, see
 * qmgr_admin) and by the postern command when no daemon runs.
 *
 * Every change is a durable rename, removal or fs_replace, in an order
 * that leaves the message in exactly one queue after a crash at any
 * instant (see postern-spool(5), "Administrative changes").
 */
#ifndef POSTERN_QOPS_H
#define POSTERN_QOPS_H

#include <stddef.h>

#include "spool/qfile.h"
#include "spool/qstate.h"
#include "spool/spool.h"

struct addr_rewrite;

/* Queue selection bits (postsuper's queue names). */
#define QM_INCOMING	0x01
#define QM_ACTIVE	0x02
#define QM_DEFERRED	0x04
#define QM_HOLD		0x08
#define QM_ALL		0x0f

/* The administrative operations. */
enum qop {
	QOP_DELETE,
	QOP_HOLD,
	QOP_RELEASE,
	QOP_REQUEUE,
};

/* The spool directories, as qmgr_init and qops_dirs fill them. */
typedef char qops_dirs_t[QD_COUNT][PATH_BUF];

/* Fill dirs for queue_dir; -1 when a path does not fit. */
int qops_dirs(const char *queue_dir, qops_dirs_t dirs);
/*
 * The QM_* bit of a queue name ("incoming", "active", "deferred",
 * "hold"); 0 for anything else.
 */
unsigned qops_queue_bit(const char *name);
/* The QM_* bit of a spool directory (0 for the others). */
unsigned qops_dir_bit(enum qdir d);
/* "deleted", "placed on hold", ...: the summary verb of op. */
const char *qops_done_text(enum qop op);
/* "removed", "placed on hold", ...: the per-message log text of op. */
const char *qops_log_text(enum qop op);
/* "delete", "hold", "release", "requeue" (the control request word). */
const char *qops_name(enum qop op);
/* The op named by word, or -1. */
int qops_from_name(const char *word);

/*
 * Find qid in the queues of mask, in the order active, deferred, hold,
 * incoming (last: anyone in the postern group can name a file there). Returns 0 with *where, or -1 (errno ENOENT when it is
 * in none of them, another errno when a directory cannot be searched).
 */
int qops_locate(qops_dirs_t dirs, const char *qid, unsigned mask,
    enum qdir *where);
/*
 * Delete qid from where: the queue file first (the removal is the
 * commit), then its state record, except from incoming/new, where a
 * record under the same ID is never the message's own. 0 or -1 with
 * errno.
 */
int qops_delete(qops_dirs_t dirs, const char *qid, enum qdir where);
/*
 * Move qid from where to hold/. From incoming/new a state record under
 * the same ID is not the message's own and is never removed here: the
 * hold fails with EEXIST and pickup sorts the two out. 0 or -1 with
 * errno.
 */
int qops_hold(qops_dirs_t dirs, const char *qid, enum qdir where);
/*
 * Move qid from hold/ to deferred/, due at once: the state record's
 * last-attempt time is cleared first (the retry schedule starts from
 * it). 0, or -1 with the reason in err.
 */
int qops_release(qops_dirs_t dirs, const char *qid, char *err,
    size_t errlen);
/*
 * Requeue qid in where (postsuper -r): qops_unexpand on the queue file
 * and the state record, written back (old state record removed, queue
 * file replaced, new state record written when some recipient is done);
 * from hold/ it then moves to deferred/. The message is due at once
 * everywhere. 0, or -1 with the reason in err.
 */
int qops_requeue(qops_dirs_t dirs, const char *qid, enum qdir where,
    const struct addr_rewrite *rw, char *err, size_t errlen);
/*
 * The pure part of requeue. From the envelope in and its state st, make
 * out and ost:
 *  - a recipient that is done (sent or failed) stays, with its status;
 *  - a recipient still to deliver that an alias produced (in is
 *    flagged expanded, and its orig-recipient qualified with rw is not
 *    its address) is replaced by that original address, once per
 *    original address;
 *  - every recipient still to deliver is pending again, without the
 *    reason of its last attempt; attempts and last are cleared;
 *  - the expanded flag is cleared, so that alias_maps apply again.
 * Returns 1 when the recipient list changed, 0 when it did not.
 */
int qops_unexpand(const struct qenv *in, const struct qstate *st,
    const struct addr_rewrite *rw, struct qenv *out, struct qstate *ost);

#endif
