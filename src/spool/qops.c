/*
 * qops.c - delete, hold, release and requeue one queued message (see
 * qops.h). Used by posternd on behalf of postern, and by postern itself
 * when no daemon runs (it then holds the queue lock).
 *
 * Crash safety, change by change:
 *   delete   unlink the queue file (the commit), sync, then the state
 *            record; an orphan record is removed at the next start.
 *   hold     one durable rename into hold/; the state record stays with
 *            the message.
 *   release  the state record is rewritten first (last attempt cleared:
 *            due at once), then one durable rename into deferred/. A
 *            crash in between leaves a held message that is due at once
 *            when released: harmless.
 *   requeue  as alias expansion in the daemon: the old state record goes
 *            first (its indexes mean the old recipient list), then the
 *            queue file is replaced, then the new record is written. A
 *            crash in between leaves a message without a record: every
 *            recipient pending, so at worst one is sent twice, never
 *            lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/string.h>

#include "lib/buf.h"
#include "lib/fsio.h"
#include "lib/mutant.h"
#include "lib/xalloc.h"
#include "mail/addr.h"
#include "spool/qops.h"

/* The queues an administrative command looks at, in search order. */
static const struct {
	const char	*name;
	enum qdir	 dir;
	unsigned	 bit;
} queues[] = {
	/* incoming/new last: a member of the postern group can put any
	   name there, a decoy of a queued message's ID among them. */
	{ "active", QD_ACTIVE, QM_ACTIVE },
	{ "deferred", QD_DEFERRED, QM_DEFERRED },
	{ "hold", QD_HOLD, QM_HOLD },
	{ "incoming", QD_NEW, QM_INCOMING },
};
#define NQUEUES	(sizeof(queues) / sizeof(queues[0]))

/* Words for each operation: request, summary, log line. */
static const struct {
	const char	*name;
	const char	*done;
	const char	*log;
} opnames[] = {
	[QOP_DELETE] = { "delete", "deleted", "removed" },
	[QOP_HOLD] = { "hold", "placed on hold", "placed on hold" },
	[QOP_RELEASE] = { "release", "released from hold",
	    "released from hold" },
	[QOP_REQUEUE] = { "requeue", "requeued", "requeued" },
};

/* Fill the directory paths. */
int
qops_dirs(const char *queue_dir, qops_dirs_t dirs)
{
	for (int d = 0; d < QD_COUNT; d++)
		if (spool_path(queue_dir, (enum qdir)d, dirs[d],
		    sizeof(dirs[d])) < 0)
			return -1;
	return 0;
}

/* The bit of a queue name. */
unsigned
qops_queue_bit(const char *name)
{
	for (size_t i = 0; i < NQUEUES; i++)
		if (strcmp(name, queues[i].name) == 0)
			return queues[i].bit;
	return 0;
}

/* The bit of a directory. */
unsigned
qops_dir_bit(enum qdir d)
{
	for (size_t i = 0; i < NQUEUES; i++)
		if (queues[i].dir == d)
			return queues[i].bit;
	return 0;
}

const char *
qops_done_text(enum qop op)
{
	return opnames[op].done;
}

const char *
qops_log_text(enum qop op)
{
	return opnames[op].log;
}

const char *
qops_name(enum qop op)
{
	return opnames[op].name;
}

/* The op a request word names. */
int
qops_from_name(const char *word)
{
	for (size_t i = 0; i < sizeof(opnames) / sizeof(opnames[0]); i++)
		if (strcmp(word, opnames[i].name) == 0)
			return (int)i;
	return -1;
}

/* Find a message. */
int
qops_locate(qops_dirs_t dirs, const char *qid, unsigned mask, enum qdir *where)
{
	char path[PATH_BUF + QID_MAX + 2];
	int failed = 0;

	for (size_t i = 0; i < NQUEUES; i++) {
		if (!(mask & queues[i].bit))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dirs[queues[i].dir], qid);
		if (access(path, F_OK) == 0) {
			*where = queues[i].dir;
			return 0;
		}
		if (errno != ENOENT && !failed)
			failed = errno;
	}
	errno = failed ? failed : ENOENT;
	return -1;
}

/* Delete a message and its state record. */
int
qops_delete(qops_dirs_t dirs, const char *qid, enum qdir where)
{
	char path[PATH_BUF + QID_MAX + 2];

	snprintf(path, sizeof(path), "%s/%s", dirs[where], qid);
	if (unlink(path) < 0)
		return -1;	/* ENOENT: someone was faster */
	if (!MUTANT(delete_dir_fsync) && fs_fsync_dir(dirs[where]) < 0)
		return -1;
	/* A message in incoming/new has no record of its own: one under
	   its ID is another message's (see pickup). */
	if (where == QD_NEW)
		return 0;
	/* The message is gone; an orphan record is only litter, removed
	   at the daemon's next start. */
	if (fs_remove(dirs[QD_STATE], qid) < 0)
		return 0;
	return 0;
}

/* Put a message on hold. */
int
qops_hold(qops_dirs_t dirs, const char *qid, enum qdir where)
{
	if (where == QD_HOLD)
		return 0;
	/*
	 * A record under a new message's ID is not its own (see pickup),
	 * but it may be a queued message's that a decoy in incoming/new
	 * names: never removed here. Held with it, the message would take
	 * it as its own on release, so it is left for pickup to sort out.
	 */
	if (where == QD_NEW) {
		char path[PATH_BUF + QID_MAX + 2];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dirs[QD_STATE], qid);
		if (lstat(path, &st) == 0 || errno != ENOENT) {
			errno = EEXIST;
			return -1;
		}
	}
	return fs_move(dirs[where], qid, dirs[QD_HOLD], qid);
}

/*
 * Read and parse qid's queue file in dir into env (*off: the message),
 * its data kept in b, and its state record into st (all pending when
 * there is none or it is damaged). 0, or -1 with err.
 */
static int
read_msg(qops_dirs_t dirs, const char *qid, enum qdir where, struct buf *b,
    struct qenv *env, size_t *off, struct qstate *st, int *have_state,
    char *err, size_t errlen)
{
	struct buf sb = BUF_INIT;
	char path[PATH_BUF + QID_MAX + 2], perr[256];
	int rc = -1;

	*have_state = 0;
	snprintf(path, sizeof(path), "%s/%s", dirs[where], qid);
	if (fs_read_plain(path, b, QFILE_MAX) < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    fs_plain_refused(errno) ? fs_plain_why(errno) :
		    strerror(errno));
		goto out;
	}
	if (qfile_parse(b->data ? b->data : "", b->len, env, off, perr,
	    sizeof(perr)) < 0) {
		snprintf(err, errlen, "%s is not a valid queue file: %s", path,
		    perr);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", dirs[QD_STATE], qid);
	if (fs_read_plain(path, &sb, 1 << 24) < 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "cannot read %s: %s", path,
			    fs_plain_refused(errno) ? fs_plain_why(errno) :
			    strerror(errno));
			goto out;
		}
		qstate_init(st, env->nrcpt);
	} else if (qstate_parse(sb.data ? sb.data : "", sb.len, env->nrcpt,
	    st, perr, sizeof(perr)) < 0) {
		/* As the daemon does: a damaged record means all pending. */
		qstate_init(st, env->nrcpt);
	} else
		*have_state = 1;
	rc = 0;
out:
	buf_free(&sb);
	return rc;
}

/* Write st as qid's state record. */
static int
write_state(qops_dirs_t dirs, const char *qid, const struct qstate *st)
{
	struct buf b = BUF_INIT;
	int rc;

	qstate_format(st, &b);
	rc = fs_replace(dirs[QD_STATE], qid, b.data, b.len, 0600);
	buf_free(&b);
	return rc;
}

/* The last step of release and requeue: hold/QID back to deferred/. */
static int
unhold(qops_dirs_t dirs, const char *qid, char *err, size_t errlen)
{
	if (fs_move(dirs[QD_HOLD], qid, dirs[QD_DEFERRED], qid) == 0)
		return 0;
	snprintf(err, errlen, "cannot move hold/%s to deferred/: %s", qid,
	    strerror(errno));
	return -1;
}

/* Release a held message. */
int
qops_release(qops_dirs_t dirs, const char *qid, char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	struct qenv env;
	struct qstate st;
	size_t off;
	int have, rc = -1;

	memset(&env, 0, sizeof(env));
	memset(&st, 0, sizeof(st));
	if (read_msg(dirs, qid, QD_HOLD, &b, &env, &off, &st, &have, err,
	    errlen) < 0)
		goto out;
	if (have && st.last > 0) {
		st.last = 0;
		if (write_state(dirs, qid, &st) < 0) {
			snprintf(err, errlen, "cannot write the state record: "
			    "%s", strerror(errno));
			goto out;
		}
	}
	if (unhold(dirs, qid, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	qstate_free(&st);
	qenv_free(&env);
	buf_free(&b);
	return rc;
}

/* The address an expanded recipient came from, or NULL (see qops.h). */
static char *
original_of(const struct qenv *in, size_t i, const struct addr_rewrite *rw)
{
	const struct qrcpt *r = &in->rcpt[i];
	char *q;

	if (!(in->flags & QF_EXPANDED) || r->orig == NULL)
		return NULL;
	q = addr_qualify(r->orig, rw);
	if (strcasecmp(q, r->addr) == 0) {
		free(q);
		return NULL;
	}
	return q;
}

/* Requeue's pure part (see qops.h). */
int
qops_unexpand(const struct qenv *in, const struct qstate *st,
    const struct addr_rewrite *rw, struct qenv *out, struct qstate *ost)
{
	struct qenv tmp;
	size_t *src, none = (size_t)-1;
	int changed = 0;

	memset(&tmp, 0, sizeof(tmp));
	/* src[k]: the index in st whose status output k keeps, or none. */
	src = xcalloc(in->nrcpt + 1, sizeof(*src));
	for (size_t i = 0; i < in->nrcpt; i++) {
		enum rcpt_status rs = i < st->n ? st->r[i].st : RS_PENDING;
		const struct qrcpt *r = &in->rcpt[i];
		char *orig;
		int dup = 0;

		if (rs == RS_SENT || rs == RS_FAILED) {
			src[tmp.nrcpt] = i;
			qenv_add_rcpt(&tmp, r->addr, r->orig);
			continue;
		}
		if ((orig = original_of(in, i, rw)) == NULL) {
			src[tmp.nrcpt] = none;
			qenv_add_rcpt(&tmp, r->addr, r->orig);
			continue;
		}
		/* One entry per original address, however many aliases it
		   gave; as sendmail queued it, with orig-recipient only when
		   qualification changed the address. */
		changed = 1;
		for (size_t k = 0; k < tmp.nrcpt; k++)
			if (src[k] == none &&
			    strcasecmp(tmp.rcpt[k].addr, orig) == 0)
				dup = 1;
		if (!dup) {
			src[tmp.nrcpt] = none;
			qenv_add_rcpt(&tmp, orig, strcmp(orig, r->orig) != 0 ?
			    r->orig : NULL);
		}
		free(orig);
	}
	qenv_copy(out, in);
	for (size_t i = 0; i < out->nrcpt; i++) {
		free(out->rcpt[i].addr);
		free(out->rcpt[i].orig);
	}
	free(out->rcpt);
	out->rcpt = tmp.rcpt;
	out->nrcpt = tmp.nrcpt;
	out->flags &= ~(unsigned)QF_EXPANDED;
	qstate_init(ost, out->nrcpt);
	for (size_t k = 0; k < out->nrcpt; k++)
		if (src[k] != none)
			qstate_set(ost, k, st->r[src[k]].st, st->r[src[k]].dsn,
			    st->r[src[k]].text);
	free(src);
	return changed;
}

/* Requeue one message. */
int
qops_requeue(qops_dirs_t dirs, const char *qid, enum qdir where,
    const struct addr_rewrite *rw, char *err, size_t errlen)
{
	struct buf b = BUF_INIT, nb = BUF_INIT;
	struct qenv env, nenv;
	struct qstate st, nst;
	size_t off;
	int have, rc = -1;

	memset(&env, 0, sizeof(env));
	memset(&nenv, 0, sizeof(nenv));
	memset(&st, 0, sizeof(st));
	memset(&nst, 0, sizeof(nst));
	/* A message not yet picked up has no history to reset, and a
	   state record under its ID is not its own. */
	if (where == QD_NEW)
		return 0;
	if (read_msg(dirs, qid, where, &b, &env, &off, &st, &have, err,
	    errlen) < 0)
		goto out;
	(void)qops_unexpand(&env, &st, rw, &nenv, &nst);
	if (qfile_format_env(&nenv, &nb) < 0) {
		snprintf(err, errlen, "an original recipient holds a line "
		    "break");
		goto out;
	}
	buf_add(&nb, b.data + off, env.size);
	if (fs_remove(dirs[QD_STATE], qid) < 0) {
		snprintf(err, errlen, "cannot remove the old state record: %s",
		    strerror(errno));
		goto out;
	}
	if (fs_replace(dirs[where], qid, nb.data, nb.len, 0600) < 0) {
		snprintf(err, errlen, "cannot rewrite %s/%s: %s",
		    spool_dirname(where), qid, strerror(errno));
		goto out;
	}
	if (qstate_count(&nst, RS_PENDING) != nst.n &&
	    write_state(dirs, qid, &nst) < 0) {
		snprintf(err, errlen, "cannot write the state record: %s",
		    strerror(errno));
		goto out;
	}
	if (where == QD_HOLD && unhold(dirs, qid, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	qstate_free(&st);
	qstate_free(&nst);
	qenv_free(&env);
	qenv_free(&nenv);
	buf_free(&b);
	buf_free(&nb);
	return rc;
}
