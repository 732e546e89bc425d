/*
 * qmgr.c - the daemon's table of queued messages and the spool state
 * changes it makes (see qmgr.h and postern-spool(5)).
 *
 * Order of writes, so that a crash at any point is safe:
 *   finish: write state/QID first, then rename the message; a crash in
 *           between leaves the message in active/ with the new state, and
 *           recovery delivers only what the state still lists as pending.
 *   done:   commit the notice to the sender first (bounce.h), then unlink
 *           the message, then its state; an orphan state record is
 *           removed at the next start, and a message with nothing left
 *           to try is returned (again) and removed.
 * The table is an array (q->m, each entry knowing its slot, so removal is
 * constant time) with a hash index by queue ID (qindex.h). Start-up reads
 * only the envelope block of each queue file (a bounded head), so a queue
 * of 100,000 messages loads in seconds; the whole file is read at
 * delivery. Per message the daemon keeps the envelope's addresses and the
 * recipients' state: a few hundred bytes.
 *
 * A delivered message is removed without a directory fsync: if a crash
 * undoes the unlink, the message comes back and is delivered once more,
 * which at-least-once delivery allows; the fsync would cost the
 * single-threaded daemon one disk flush per message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pwd.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "deliver/bounce.h"
#include "deliver/qmgr.h"
#include "deliver/sched.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/mutant.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "spool/qfile.h"

/*
 * A sendmail has its whole message in memory before it creates its
 * temporary file, and renames it right after one write and one fsync:
 * one that has not within an hour was killed. Should it only have been
 * stopped, its rename fails and it exits 75 (EX_TEMPFAIL): nothing lost.
 */
#define TMP_MAX_AGE	3600
#define HEAD_READ	4096		/* first read of a queue file's head */
#define ENV_MAX		(16 << 20)	/* the largest envelope block read */

/* Set up paths. */
int
qmgr_init(struct qmgr *q, const char *queue_dir, long long min_backoff,
    long long max_backoff)
{
	memset(q, 0, sizeof(*q));
	for (int d = 0; d < QD_COUNT; d++)
		if (spool_path(queue_dir, (enum qdir)d, q->dir[d],
		    sizeof(q->dir[d])) < 0)
			return -1;
	q->min_backoff = min_backoff;
	q->max_backoff = max_backoff;
	return 0;
}

/* Free one table entry. */
static void
qmsg_free(struct qmsg *m)
{
	for (size_t i = 0; m->rcpt != NULL && i < m->st.n; i++) {
		free(m->rcpt[i]);
		free(m->orig[i]);
	}
	free(m->rcpt);
	free(m->orig);
	free(m->tried);
	free(m->relayed);
	qstate_free(&m->st);
	free(m->sender);
	free(m);
}

void
qmgr_free(struct qmgr *q)
{
	for (size_t i = 0; i < q->n; i++)
		qmsg_free(q->m[i]);
	free(q->m);
	q->m = NULL;
	q->n = q->cap = 0;
	qindex_free(&q->ix);
}

/* Find a message by queue ID. */
static struct qmsg *
qmgr_find(const struct qmgr *q, const char *qid)
{
	return qindex_get(&q->ix, qid);
}

/* Drop a message from the table: the last entry takes its slot. */
static void
qmgr_drop(struct qmgr *q, struct qmsg *m)
{
	size_t i = m->slot;

	if (i >= q->n || q->m[i] != m)
		return;
	q->m[i] = q->m[--q->n];
	q->m[i]->slot = i;
	(void)qindex_del(&q->ix, m->qid);
	qmsg_free(m);
}

/* A message became due at t (0: now): the loop must look again by t. */
static void
wake_by(struct qmgr *q, double t)
{
	if (q->next_wake == 0 || t < q->next_wake)
		q->next_wake = t > 1 ? t : 1;
}

/*
 * Read the head of a queue file, enough for its envelope: HEAD_READ
 * bytes first, more while the envelope goes on (a long recipient list),
 * up to ENV_MAX. Fills env, *flen (the file's size) and *off. Returns 0,
 * -1 with errno for a file that cannot be read, or -2 with err for a
 * corrupt one.
 */
static int
read_envelope(const char *path, struct qenv *env, size_t *flen, size_t *off,
    char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	struct stat sb;
	size_t want = HEAD_READ;
	ssize_t got;
	int fd, rc = -1, saved;

	/* A FIFO would hang the daemon; a link would make another file
	   (or a name someone else still holds) a message. */
	if ((fd = fs_openat_plain(AT_FDCWD, path, O_RDONLY, 0, &sb)) < 0) {
		if (!fs_plain_refused(errno))
			return -1;
		snprintf(err, errlen, "the queue file is %s",
		    fs_plain_why(errno));
		return -2;
	}
	*flen = (size_t)sb.st_size;
	for (;;) {
		if (want > *flen)
			want = *flen;
		while (b.len < want) {
			buf_reserve(&b, want - b.len);
			got = read(fd, b.data + b.len, want - b.len);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				goto out;
			if (got == 0)
				break;
			b.len += (size_t)got;
		}
		rc = qfile_parse_head(b.data, b.len, *flen, env, off, err,
		    errlen);
		if (rc == 1 && b.len == want && want < ENV_MAX) {
			want *= 4;
			continue;
		}
		if (rc == 1) {
			/* Shorter than stat said, or an endless envelope. */
			snprintf(err, errlen, "no end-of-envelope marker in the "
			    "first %zu bytes", b.len);
			rc = -2;
		} else if (rc < 0)
			rc = -2;
		break;
	}
out:
	saved = errno;
	close(fd);
	buf_free(&b);
	errno = saved;
	return rc;
}

/*
 * Move m to directory to. fs_move can fail after its rename took effect
 * (a directory fsync failed): the file is then already in to, and the
 * table must say so, or every later move looks for it where it is not.
 * Returns 0, or -1 with errno.
 */
static int
move_msg(struct qmgr *q, struct qmsg *m, enum qdir to)
{
	char path[PATH_BUF + QID_MAX + 2];
	int saved;

	if (fs_move(q->dir[m->where], m->qid, q->dir[to], m->qid) == 0) {
		m->where = to;
		return 0;
	}
	saved = errno;
	snprintf(path, sizeof(path), "%s/%s", q->dir[to], m->qid);
	if (access(path, F_OK) == 0)
		m->where = to;
	errno = saved;
	return -1;
}

/* 1 when the queue file of m is no longer where the table says. */
static int
msg_gone(const struct qmgr *q, const struct qmsg *m)
{
	char path[PATH_BUF + QID_MAX + 2];

	snprintf(path, sizeof(path), "%s/%s", q->dir[m->where], m->qid);
	return access(path, F_OK) < 0 && errno == ENOENT;
}

/*
 * Quarantine a file that is not a message; one log line, no death. A
 * file already in corrupt/ under that name is never replaced: the next
 * free NAME.N is taken. What cannot be moved at all (ten names taken,
 * or the move fails) stays where it is, to be tried again at the next
 * scan, when it may hold mail (a regular file); a FIFO, socket or
 * symbolic link holds none and is removed.
 */
static void
quarantine(struct qmgr *q, enum qdir from, const char *name, const char *why)
{
	char to[2 * PATH_BUF];
	struct stat sb;
	int rc = -1;

	for (int i = 0; i < 10 && rc < 0; i++) {
		if ((i == 0 ? strlcpy(to, name, sizeof(to)) :
		    (size_t)snprintf(to, sizeof(to), "%s.%d", name, i)) >=
		    sizeof(to))
			break;
		rc = fs_move(q->dir[from], name, q->dir[QD_CORRUPT], to);
		if (rc < 0 && errno != EEXIST)
			break;
	}
	if (rc == 0) {
		log_warnx("%s: moved to corrupt/%s: %s", name, to, why);
		return;
	}
	log_warn("%s: cannot move %s/%s to corrupt/", name,
	    spool_dirname(from), name);
	/* Only a file still there: a move whose directory sync failed
	   has already happened. */
	snprintf(to, sizeof(to), "%s/%s", q->dir[from], name);
	if (lstat(to, &sb) < 0)
		return;
	if (S_ISREG(sb.st_mode)) {
		log_warnx("%s: left in %s/ (%s); tried again at the next scan",
		    name, spool_dirname(from), why);
		return;
	}
	if (fs_remove(q->dir[from], name) == 0)
		log_warnx("%s: removed %s/%s instead: %s", name,
		    spool_dirname(from), name, why);
}

/* Read the state record of qid into st (all pending when absent). */
static void
load_state(struct qmgr *q, const char *qid, size_t nrcpt, struct qstate *st)
{
	struct buf b = BUF_INIT;
	char path[PATH_BUF + QID_MAX + 2], err[256];

	snprintf(path, sizeof(path), "%s/%s", q->dir[QD_STATE], qid);
	if (fs_read_plain(path, &b, 1 << 24) < 0) {
		if (errno != ENOENT)
			log_warn("%s: cannot read state record", qid);
		qstate_init(st, nrcpt);
		goto out;
	}
	if (qstate_parse(b.data, b.len, nrcpt, st, err, sizeof(err)) < 0) {
		/* At-least-once: a damaged record means try everyone again. */
		log_warnx("%s: damaged state record (%s); every recipient not "
		    "known to be done will be tried", qid, err);
		qstate_init(st, nrcpt);
	}
out:
	buf_free(&b);
}

/* True when some recipient still has a delivery to try. */
static int
has_work(const struct qstate *st)
{
	return qstate_count(st, RS_PENDING) + qstate_count(st, RS_DEFERRED) > 0;
}

/* Remember env's recipients in m (m->st.n of them). */
static void
keep_rcpts(struct qmsg *m, const struct qenv *env)
{
	m->tried = xcalloc(env->nrcpt + 1, 1);
	m->rcpt = xcalloc(env->nrcpt + 1, sizeof(*m->rcpt));
	m->orig = xcalloc(env->nrcpt + 1, sizeof(*m->orig));
	for (size_t i = 0; i < env->nrcpt; i++) {
		m->rcpt[i] = xstrdup(env->rcpt[i].addr);
		m->orig[i] = env->rcpt[i].orig ? xstrdup(env->rcpt[i].orig) :
		    NULL;
	}
}

/*
 * Load dir/qid into the table. Returns the entry, or NULL when the file
 * is gone or was quarantined. pickup logs the qmgr "from=" line.
 */
static struct qmsg *
load_msg(struct qmgr *q, enum qdir d, const char *qid, int pickup)
{
	struct qenv env;
	struct qmsg *m = NULL;
	char path[PATH_BUF + QID_MAX + 2], err[256];
	size_t off, flen = 0;
	int rc;

	memset(&env, 0, sizeof(env));
	snprintf(path, sizeof(path), "%s/%s", q->dir[d], qid);
	if ((rc = read_envelope(path, &env, &flen, &off, err,
	    sizeof(err))) == -1) {
		if (errno != ENOENT)
			log_warn("%s: cannot read queue file", qid);
		goto out;
	}
	if (rc < 0) {
		quarantine(q, d, qid, err);
		goto out;
	}
	m = xcalloc(1, sizeof(*m));
	strlcpy(m->qid, qid, sizeof(m->qid));
	m->where = d;
	m->arrival = env.arrival;
	m->null_sender = env.sender[0] == '\0';
	m->sender = xstrdup(env.sender);
	m->active_time = now_real();
	load_state(q, qid, env.nrcpt, &m->st);
	keep_rcpts(m, &env);
	m->expanded = (env.flags & QF_EXPANDED) || q->alias.local == NULL ||
	    !q->alias.local(q->alias.arg, &env);
	/* Nothing left to try (a crash came before its bounce, or before
	   its removal): due now, qmgr_finish returns and removes it. */
	m->final = 0;
	if (d == QD_DEFERRED && m->st.last > 0 && has_work(&m->st))
		m->next_try = sched_next_retry(m->arrival, m->st.last,
		    q->min_backoff, q->max_backoff);
	if (pickup) {
		log_set_ident("postern/pickup");
		log_info("%s: uid=%lu from=<%s>", qid, (unsigned long)env.uid,
		    env.sender);
		log_set_ident("postern/qmgr");
		log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)",
		    qid, env.sender, flen, env.nrcpt);
	}
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 64;
		q->m = xreallocarray(q->m, q->cap, sizeof(*q->m));
	}
	m->slot = q->n;
	q->m[q->n++] = m;
	qindex_put(&q->ix, m->qid, m);
	if (!m->final)
		wake_by(q, m->next_try);
out:
	qenv_free(&env);
	return m;
}

/* Call fn for every plain entry name of a spool directory. */
static void
each_entry(const char *dir, void (*fn)(struct qmgr *, const char *, void *),
    struct qmgr *q, void *arg)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (dp == NULL) {
		log_warn("cannot open directory %s", dir);
		return;
	}
	/* Collect first: fn may rename entries out of this directory. */
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dp);
	for (size_t i = 0; i < n; i++) {
		fn(q, names[i], arg);
		free(names[i]);
	}
	free(names);
}

/* Recovery: remove a stale sendmail temporary file. */
static void
clean_tmp(struct qmgr *q, const char *name, void *arg)
{
	char path[2 * PATH_BUF];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", q->dir[QD_TMP], name);
	if (lstat(path, &sb) == 0 && sb.st_mtime < time(NULL) - TMP_MAX_AGE) {
		if (unlink(path) == 0)
			log_info("removed stale temporary file incoming/tmp/%s",
			    name);
	}
}

/* Recovery: take a message from active/ or deferred/ into the table. */
static void
take(struct qmgr *q, const char *name, void *arg)
{
	enum qdir d = *(enum qdir *)arg;

	if (!qid_valid(name)) {
		quarantine(q, d, name, "file name is not a queue ID");
		return;
	}
	if (qmgr_find(q, name) == NULL)
		(void)load_msg(q, d, name, 0);
}

/* Recovery: remove a state record whose message is gone. */
static void
clean_state(struct qmgr *q, const char *name, void *arg)
{
	static const enum qdir homes[] = { QD_NEW, QD_ACTIVE, QD_DEFERRED,
	    QD_HOLD, QD_CORRUPT };
	char path[2 * PATH_BUF];

	for (size_t i = 0; i < sizeof(homes) / sizeof(homes[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", q->dir[homes[i]], name);
		if (access(path, F_OK) == 0)
			return;
	}
	if (fs_remove(q->dir[QD_STATE], name) < 0)
		log_warn("cannot remove orphan state record state/%s", name);
}

/* Start-up recovery. */
void
qmgr_recover(struct qmgr *q)
{
	enum qdir d;
	char path[2 * PATH_BUF];
	DIR *dp;
	struct dirent *de;

	each_entry(q->dir[QD_TMP], clean_tmp, q, NULL);
	/* Half-written state records and rewritten queue files: only the
	   daemon writes them, and it holds the lock, so every leftover is
	   stale. */
	for (size_t k = 0; k < 3; k++) {
		static const enum qdir tmpdirs[] = { QD_STATE, QD_ACTIVE,
		    QD_DEFERRED };
		if ((dp = opendir(q->dir[tmpdirs[k]])) == NULL)
			continue;
		while ((de = readdir(dp)) != NULL) {
			size_t l = strlen(de->d_name);
			if (de->d_name[0] == '.' && l > 4 &&
			    strcmp(de->d_name + l - 4, ".tmp") == 0) {
				snprintf(path, sizeof(path), "%s/%s",
				    q->dir[tmpdirs[k]], de->d_name);
				(void)unlink(path);
			}
		}
		closedir(dp);
	}
	each_entry(q->dir[QD_STATE], clean_state, q, NULL);
	d = QD_ACTIVE;
	each_entry(q->dir[QD_ACTIVE], take, q, &d);
	d = QD_DEFERRED;
	each_entry(q->dir[QD_DEFERRED], take, q, &d);
	qmgr_expire_held(q);
	qmgr_pickup(q);
}

/*
 * 1 when a message holds qid or may: in the table, or any file under
 * that name in active/, deferred/, hold/ or corrupt/.
 */
static int
qid_live(const struct qmgr *q, const char *qid)
{
	static const enum qdir homes[] = { QD_ACTIVE, QD_DEFERRED, QD_HOLD,
	    QD_CORRUPT };
	char path[2 * PATH_BUF];
	struct stat sb;

	if (qmgr_find(q, qid) != NULL)
		return 1;
	for (size_t i = 0; i < sizeof(homes) / sizeof(homes[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", q->dir[homes[i]], qid);
		if (lstat(path, &sb) == 0 || errno != ENOENT)
			return 1;
	}
	return 0;
}

/*
 * A message in incoming/new has no delivery history. A state record
 * under its ID (and no message: qid_live said so) belongs to an earlier
 * message that had the same ID; applied to this one it would mark
 * recipients sent that never were. Remove it durably before the claim,
 * so that a crash cannot pair the two either. 0, or -1 (logged).
 */
static int
drop_stale_state(struct qmgr *q, const char *qid)
{
	char path[2 * PATH_BUF];

	snprintf(path, sizeof(path), "%s/%s", q->dir[QD_STATE], qid);
	if (unlink(path) == 0) {
		log_warnx("%s: removed the stale state record of an earlier "
		    "message with the same queue ID", qid);
		if (!MUTANT(pickup_stale_dir_fsync) &&
		    fs_fsync_dir(q->dir[QD_STATE]) < 0) {
			log_warn("%s: cannot sync state/; pickup postponed",
			    qid);
			return -1;
		}
	} else if (errno != ENOENT) {
		log_warn("%s: cannot remove a stale state record; pickup "
		    "postponed", qid);
		return -1;
	}
	return 0;
}

/*
 * Move incoming/new/name into active/ under a queue ID that no other
 * message has: its own name, unless a message already holds that ID (a
 * file named after another user's message, or a natural collision),
 * then a new one made as sendmail makes them, from the clock and the
 * inode. The move never replaces a file. Fills qid; 0, or -1 (logged,
 * or the file is gone).
 */
static int
claim(struct qmgr *q, const char *name, const struct stat *st,
    char qid[QID_MAX])
{
	struct timeval tv;

	strlcpy(qid, name, QID_MAX);
	for (int tries = 0; tries < 20; tries++) {
		if (tries > 0 || qid_live(q, qid)) {
			gettimeofday(&tv, NULL);
			snprintf(qid, QID_MAX, "%05lX%lX", ((unsigned long)
			    tv.tv_usec + (unsigned long)tries) % 1000000,
			    (unsigned long)st->st_ino);
			if (qid_live(q, qid))
				continue;
		}
		if (drop_stale_state(q, qid) < 0)
			return -1;
		/* Undoing this move in a crash only means a second pickup. */
		if (fs_move_fast(q->dir[QD_NEW], name, q->dir[QD_ACTIVE],
		    qid) == 0) {
			if (strcmp(qid, name) != 0)
				log_warnx("%s: queue ID in use by another "
				    "message; incoming/new/%s picked up as %s",
				    name, name, qid);
			return 0;
		}
		if (errno == ENOENT)
			return -1;
		if (errno != EEXIST) {
			log_warn("%s: cannot move incoming/new/%s to active/",
			    name, name);
			return -1;
		}
	}
	log_warnx("%s: no free queue ID for incoming/new/%s; pickup "
	    "postponed", name, name);
	return -1;
}

/*
 * A file the daemon may not read: root's sendmail, run without the
 * set-group-ID group, made it root's own. In active/ it would fail
 * forever; it waits in hold/ with the fix in the log (posternd started
 * as root also gives such files to mail_owner at its next start).
 */
static void
hold_unreadable(struct qmgr *q, const char *name)
{
	char path[2 * PATH_BUF];
	struct stat sb;
	struct passwd *pw = getpwuid(geteuid());
	const char *me = pw != NULL ? pw->pw_name : "the daemon's user";

	snprintf(path, sizeof(path), "%s/%s", q->dir[QD_NEW], name);
	if (lstat(path, &sb) < 0)
		return;
	if (qid_live(q, name) || fs_move(q->dir[QD_NEW], name,
	    q->dir[QD_HOLD], name) < 0) {
		log_warnx("%s: user %s may not read incoming/new/%s (owner uid "
		    "%lu, mode %04o) and cannot hold it; to send it: chown %s "
		    "%s", name, me, name, (unsigned long)sb.st_uid,
		    (unsigned)(sb.st_mode & 07777), me, path);
		return;
	}
	log_warnx("%s: user %s may not read this message (owner uid %lu, "
	    "mode %04o): moved to hold/; to send it: chown %s %s/%s && "
	    "postern release %s (a restart of posternd as root also gives "
	    "root's queue files to %s)", name, me, (unsigned long)sb.st_uid,
	    (unsigned)(sb.st_mode & 07777), me, q->dir[QD_HOLD], name, name,
	    me);
}

/* Pickup: move one committed message to active/ and load it. */
static void
pick(struct qmgr *q, const char *name, void *arg)
{
	char path[2 * PATH_BUF], qid[QID_MAX];
	struct stat st;
	int fd;

	if (!qid_valid(name)) {
		quarantine(q, QD_NEW, name, "file name is not a queue ID");
		return;
	}
	/* Anyone in the postern group may put anything here: look before
	   the claim (load_msg looks again, after it). */
	snprintf(path, sizeof(path), "%s/%s", q->dir[QD_NEW], name);
	if ((fd = fs_openat_plain(AT_FDCWD, path, O_RDONLY, 0, &st)) < 0) {
		if (fs_plain_refused(errno))
			quarantine(q, QD_NEW, name, fs_plain_why(errno));
		else if (errno == EACCES)
			hold_unreadable(q, name);
		else if (errno != ENOENT)
			log_warn("%s: cannot open incoming/new/%s", name, name);
		return;
	}
	close(fd);
	if (claim(q, name, &st, qid) == 0)
		(void)load_msg(q, QD_ACTIVE, qid, 1);
}

/* Claim everything in incoming/new. */
void
qmgr_pickup(struct qmgr *q)
{
	each_entry(q->dir[QD_NEW], pick, q, NULL);
}

/* Take in unknown deferred files. */
void
qmgr_scan_deferred(struct qmgr *q)
{
	enum qdir d = QD_DEFERRED;

	/* Every queue run, not only at start: a killed sendmail's file. */
	each_entry(q->dir[QD_TMP], clean_tmp, q, NULL);
	each_entry(q->dir[QD_DEFERRED], take, q, &d);
}

/* Remove one held notice older than maximal_queue_lifetime. */
static void
expire_one(struct qmgr *q, const char *name, void *arg)
{
	const double *now = arg;
	char path[PATH_BUF + QID_MAX + 2], err[256];
	struct buf b = BUF_INIT;
	struct qenv env;
	struct qstate st;
	size_t off;

	memset(&env, 0, sizeof(env));
	memset(&st, 0, sizeof(st));
	if (!qid_valid(name))
		return;
	snprintf(path, sizeof(path), "%s/%s", q->dir[QD_HOLD], name);
	if (fs_read_plain(path, &b, QFILE_MAX) < 0 ||
	    qfile_parse(b.data, b.len, &env, &off, err, sizeof(err)) < 0 ||
	    env.sender[0] != '\0')
		goto out;
	/* Only notices that hold_notice placed here expire, counted from
	   then: mail held by the administrator stays, <> or not. */
	load_state(q, name, env.nrcpt, &st);
	if (st.held <= 0 ||
	    *now - st.held < (double)q->bounce->max_lifetime)
		goto out;
	if (qops_delete(q->dir, name, QD_HOLD) < 0)
		log_warn("%s: cannot remove the expired notice from hold/",
		    name);
	else
		log_info("%s: removed: undeliverable notice held for "
		    "maximal_queue_lifetime", name);
out:
	qstate_free(&st);
	qenv_free(&env);
	buf_free(&b);
}

/* Remove held notices past maximal_queue_lifetime (see qmgr.h). */
void
qmgr_expire_held(struct qmgr *q)
{
	double now = now_real();

	if (q->bounce != NULL)
		each_entry(q->dir[QD_HOLD], expire_one, q, &now);
}

/* Everything deferred with work left is due now. */
void
qmgr_flush(struct qmgr *q)
{
	for (size_t i = 0; i < q->n; i++)
		if (!q->m[i]->final && q->m[i]->worker == 0)
			q->m[i]->next_try = 0;
	wake_by(q, 0);
}

/* Order for due messages: oldest first. */
static int
by_arrival(const void *a, const void *b)
{
	const struct qmsg *x = *(struct qmsg *const *)a;
	const struct qmsg *y = *(struct qmsg *const *)b;

	return (x->arrival > y->arrival) - (x->arrival < y->arrival);
}

/* Collect idle due messages. */
size_t
qmgr_due(struct qmgr *q, double now, struct qmsg **out, size_t max)
{
	size_t n = 0;
	double wake = 0;

	for (size_t i = 0; i < q->n; i++) {
		struct qmsg *m = q->m[i];
		double t = m->next_try > 1 ? m->next_try : 1;
		if (m->worker != 0 || m->final)
			continue;
		if (m->next_try <= now && n < max) {
			out[n++] = m;
			continue;
		}
		if (wake == 0 || t < wake)
			wake = t;
	}
	q->next_wake = wake;
	qsort(out, n, sizeof(*out), by_arrival);
	return n;
}

/* deferred/ -> active/ before delivery. */
int
qmgr_activate(struct qmgr *q, struct qmsg *m)
{
	if (m->where == QD_ACTIVE)
		return 0;
	/* Undoing this move in a crash only means an earlier retry. */
	if (fs_move_fast(q->dir[m->where], m->qid, q->dir[QD_ACTIVE], m->qid) < 0) {
		if (errno == ENOENT) {
			/* Deleted by the administrator meanwhile. */
			qmgr_drop(q, m);
			return -1;
		}
		log_warn("%s: cannot move to active/", m->qid);
		m->next_try = now_real() + (double)q->min_backoff;
		wake_by(q, m->next_try);
		return -1;
	}
	m->where = QD_ACTIVE;
	m->active_time = now_real();
	return 0;
}

/* Map a worker verdict to a recipient status. */
static enum rcpt_status
verdict_to_status(enum verdict v)
{
	return v == V_SENT ? RS_SENT : v == V_BOUNCE ? RS_FAILED : RS_DEFERRED;
}

static void admin_finish(struct qmgr *, struct qmsg *);

/*
 * A notice (bounce, delay warning, relayed notice) that could not be
 * delivered is never discarded and never answered with another notice:
 * it goes to hold/, its failed recipients deferred again so that
 * postern release tries them afresh, and qmgr_expire_held removes it
 * after maximal_queue_lifetime. Returns 0 (held, m dropped) or -1.
 */
static int
hold_notice(struct qmgr *q, struct qmsg *m, struct buf *b)
{
	const char *why = "";
	double until;
	char stamp[40];
	time_t t;
	struct tm tm;

	for (size_t i = 0; i < m->st.n; i++)
		if (m->st.r[i].st == RS_FAILED) {
			if (*why == '\0' && m->st.r[i].text != NULL)
				why = m->st.r[i].text;
			m->st.r[i].st = RS_DEFERRED;
		}
	/* Its lifetime in hold/ counts from now: a notice held because it
	   outlived bounce_queue_lifetime is old already. */
	m->st.held = now_real();
	until = m->st.held + (q->bounce ? (double)q->bounce->max_lifetime : 0);
	t = (time_t)until;
	qstate_format(&m->st, b);
	if (fs_replace(q->dir[QD_STATE], m->qid, b->data, b->len, 0600) < 0 ||
	    move_msg(q, m, QD_HOLD) < 0) {
		log_warn("%s: cannot place the undeliverable notice on hold",
		    m->qid);
		return -1;
	}
	localtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M", &tm);
	log_set_ident("postern/qmgr");
	log_warnx("%s: undeliverable notice placed on hold, kept until %s "
	    "(maximal_queue_lifetime): %s; fix the relay, then run "
	    "\"postern release %s\", or \"postern delete %s\" to drop it",
	    m->qid, stamp, why, m->qid, m->qid);
	qmgr_drop(q, m);
	return 0;
}

/* A worker is done with m: record the outcome in the spool. */
static void
qmgr_finish(struct qmgr *q, struct qmsg *m)
{
	struct buf b = BUF_INIT;
	double now = now_real();
	int done;

	m->worker = 0;
	m->st.attempts++;
	m->st.last = now;
	/* postern delete or hold acted while it was being delivered. */
	if (m->admin_gone) {
		admin_finish(q, m);
		goto out;
	}
	/*
	 * The file went away under delivery (removed or moved to hold/ by
	 * hand): nothing is left to retry here. Writing a state record now
	 * would make an orphan (or overwrite a held message's history), and
	 * the table entry would be retried for as long as the daemon runs.
	 * A state record already there is left to start-up recovery, which
	 * knows whether hold/ still has the message.
	 */
	if (msg_gone(q, m)) {
		log_warnx("%s: queue file vanished from %s/; forgotten",
		    m->qid, spool_dirname(m->where));
		qmgr_drop(q, m);
		goto out;
	}
	/* Notices first: the state written below says they went out. */
	done = !has_work(&m->st);
	if (q->bounce != NULL && bounce_notify(q->bounce, q->dir[m->where], m,
	    now) < 0)
		done = 0;
	if (done && m->null_sender && qstate_count(&m->st, RS_FAILED) > 0) {
		if (hold_notice(q, m, &b) == 0)
			goto out;
		/* Not held: kept in deferred/ and tried again, never lost. */
		done = 0;
		buf_reset(&b);
	}
	if (done) {
		/* No directory fsync: see the top of this file. */
		if (fs_remove_fast(q->dir[m->where], m->qid) < 0) {
			log_warn("%s: cannot remove delivered message", m->qid);
			m->final = 1;
			goto out;
		}
		if (fs_remove_fast(q->dir[QD_STATE], m->qid) < 0)
			log_warn("%s: cannot remove state record", m->qid);
		log_set_ident("postern/qmgr");
		log_info("%s: removed", m->qid);
		qmgr_drop(q, m);
		goto out;
	}
	qstate_format(&m->st, &b);
	if (fs_replace(q->dir[QD_STATE], m->qid, b.data, b.len, 0600) < 0) {
		/* Keep the old state: some recipients may get it twice. */
		log_warn("%s: cannot write state record", m->qid);
	}
	/* No work left here means the bounce could not be queued: it is
	   tried again after minimal_backoff_time. */
	m->final = 0;
	/* Recipients routed to another relay are due at once. */
	m->next_try = m->more ? 0 : !has_work(&m->st) ? now +
	    (double)q->min_backoff : sched_next_retry(m->arrival, now,
	    q->min_backoff, q->max_backoff);
	m->more_due = m->more;
	m->more = 0;
	if (!m->final)
		wake_by(q, m->next_try);
	if (m->where != QD_DEFERRED && move_msg(q, m, QD_DEFERRED) < 0)
		log_warn("%s: cannot move to deferred/", m->qid);
	if (!has_work(&m->st))
		log_warnx("%s: kept in the deferred queue until the notice to "
		    "the sender can be queued; next try in %llds", m->qid,
		    q->min_backoff);
out:
	buf_free(&b);
}

/* Record an outcome the daemon decided (see qmgr.h). */
void
qmgr_rcpt_local(struct qmgr *q, struct qmsg *m, size_t idx, enum verdict v,
    const char *dsn, const char *text)
{
	(void)q;
	if (idx < m->st.n)
		qstate_set(&m->st, idx, verdict_to_status(v), dsn, text);
}

/* Done without a worker (see qmgr.h). */
void
qmgr_settle(struct qmgr *q, struct qmsg *m)
{
	qmgr_finish(q, m);
}

/* Alias expansion before delivery (see qmgr.h). */
int
qmgr_expand(struct qmgr *q, struct qmsg *m, char *err, size_t errlen)
{
	struct buf b = BUF_INIT, nb = BUF_INIT;
	struct qenv env, open_rcpts, out, done;
	struct qstate st;
	char path[PATH_BUF + QID_MAX + 2];
	size_t off, nkept;
	int rc = -1, changed;

	memset(&env, 0, sizeof(env));
	memset(&open_rcpts, 0, sizeof(open_rcpts));
	memset(&out, 0, sizeof(out));
	memset(&done, 0, sizeof(done));
	memset(&st, 0, sizeof(st));
	snprintf(path, sizeof(path), "%s/%s", q->dir[m->where], m->qid);
	if (fs_read_plain(path, &b, QFILE_MAX) < 0) {
		snprintf(err, errlen, "cannot read the queue file: %s",
		    strerror(errno));
		goto out;
	}
	if (qfile_parse(b.data, b.len, &env, &off, err, errlen) < 0)
		goto out;
	if (env.nrcpt != m->st.n) {
		snprintf(err, errlen, "the queue file changed under the daemon");
		goto out;
	}
	/* Recipients already done keep their place and their status; only
	   the others are expanded. */
	for (size_t i = 0; i < env.nrcpt; i++) {
		enum rcpt_status rs = m->st.r[i].st;
		qenv_add_rcpt(rs == RS_SENT || rs == RS_FAILED ? &done : &open_rcpts,
		    env.rcpt[i].addr, env.rcpt[i].orig);
	}
	changed = q->alias.expand(q->alias.arg, &open_rcpts, &out, err, errlen);
	if (changed < 0)
		goto out;
	rc = 0;
	if (changed == 0) {
		m->expanded = 1;
		goto out;
	}
	nkept = done.nrcpt;
	for (size_t i = 0; i < out.nrcpt; i++) {
		/* After postern requeue an alias may give again an address
		   that is already done: it is never sent twice. */
		size_t k;
		for (k = 0; k < nkept; k++)
			if (strcasecmp(done.rcpt[k].addr, out.rcpt[i].addr) == 0)
				break;
		if (k == nkept)
			qenv_add_rcpt(&done, out.rcpt[i].addr,
			    out.rcpt[i].orig);
	}
	qstate_init(&st, done.nrcpt);
	st.attempts = m->st.attempts;
	st.last = m->st.last;
	st.warned = m->st.warned;
	for (size_t i = 0, k = 0; i < env.nrcpt; i++) {
		const struct qstate_rcpt *r = &m->st.r[i];
		if (r->st == RS_SENT || r->st == RS_FAILED)
			qstate_set(&st, k++, r->st, r->dsn, r->text);
	}
	{
		struct qrcpt *tmp = env.rcpt;
		size_t tn = env.nrcpt;
		env.rcpt = done.rcpt;
		env.nrcpt = done.nrcpt;
		done.rcpt = tmp;
		done.nrcpt = tn;
	}
	env.flags |= QF_EXPANDED;
	if (qfile_format_env(&env, &nb) < 0) {
		snprintf(err, errlen, "an expanded address holds a line break");
		rc = -1;
		goto out;
	}
	buf_add(&nb, b.data + off, env.size);
	/*
	 * The old state record goes first: its indexes mean the old list.
	 * A crash after that leaves the old or the new file without a
	 * record, and at worst sends to someone twice; never less.
	 */
	if (fs_remove(q->dir[QD_STATE], m->qid) < 0) {
		snprintf(err, errlen, "cannot remove the old state record: %s",
		    strerror(errno));
		rc = -1;
		goto out;
	}
	if (fs_replace(q->dir[m->where], m->qid, nb.data, nb.len, 0600) < 0) {
		snprintf(err, errlen, "cannot rewrite the queue file with the "
		    "expanded recipients: %s", strerror(errno));
		rc = -1;
		goto out;
	}
	log_info("%s: alias_maps: %zu recipient(s) expanded to %zu", m->qid,
	    open_rcpts.nrcpt, out.nrcpt);
	for (size_t i = 0; i < m->st.n; i++) {
		free(m->rcpt[i]);
		free(m->orig[i]);
	}
	free(m->rcpt);
	free(m->orig);
	free(m->tried);
	keep_rcpts(m, &env);	/* a new tried[] too */
	qstate_free(&m->st);
	m->st = st;
	memset(&st, 0, sizeof(st));
	free(m->relayed);
	m->relayed = NULL;
	if (nkept > 0) {
		buf_reset(&nb);
		qstate_format(&m->st, &nb);
		if (fs_replace(q->dir[QD_STATE], m->qid, nb.data, nb.len,
		    0600) < 0)
			log_warn("%s: cannot write state record", m->qid);
	}
	m->expanded = 1;
out:
	qstate_free(&st);
	qenv_free(&env);
	qenv_free(&open_rcpts);
	qenv_free(&out);
	qenv_free(&done);
	buf_free(&b);
	buf_free(&nb);
	return rc;
}

/* Apply one worker result. */
void
qmgr_result(struct qmgr *q, const struct wresult *r, pid_t pid)
{
	struct qmsg *m = qmgr_find(q, r->qid);

	if (m == NULL || m->worker != pid) {
		log_warnx("%s: result from worker %ld for a message it does "
		    "not hold; ignored", r->qid, (long)pid);
		return;
	}
	if (r->type == 'M') {
		qmgr_finish(q, m);
		return;
	}
	if (r->idx >= m->st.n) {
		log_warnx("%s: worker %ld reported recipient %zu of %zu; "
		    "ignored", r->qid, (long)pid, r->idx, m->st.n);
		return;
	}
	qstate_set(&m->st, r->idx, verdict_to_status(r->verdict), r->dsn,
	    r->text);
	/* The sender asked to hear of it: bounce_notify, at the finish. */
	if (r->relayed) {
		if (m->relayed == NULL)
			m->relayed = xcalloc(m->st.n + 1, 1);
		m->relayed[r->idx] = 1;
	}
}

/* A worker exited: finish whatever it had not reported. */
void
qmgr_worker_gone(struct qmgr *q, pid_t pid)
{
	for (size_t i = 0; i < q->n; i++) {
		if (q->m[i]->worker != pid)
			continue;
		log_warnx("%s: delivery process %ld ended before reporting "
		    "every recipient; the rest will be tried again",
		    q->m[i]->qid, (long)pid);
		qmgr_finish(q, q->m[i]);
		i = (size_t)-1;		/* the table may have changed */
	}
}

/* Earliest next try of an idle message with work left. */
double
qmgr_next_due(const struct qmgr *q)
{
	double t = 0;

	for (size_t i = 0; i < q->n; i++) {
		const struct qmsg *m = q->m[i];
		/* next_try 0 means "due now", not "none": report it as 1. */
		double nt = m->next_try > 1 ? m->next_try : 1;
		if (m->worker || m->final)
			continue;
		if (t == 0 || nt < t)
			t = nt;
	}
	return t;
}

/*
 * Administrative changes (postern delete, hold, release, requeue, flush
 * -i/-s), on behalf of the control socket. The spool half is qops.c.
 */

/* Log one Postfix-style line for an administrative change. */
static void
admin_log(const char *qid, enum qop op)
{
	log_set_ident("postern/postsuper");
	log_info("%s: %s", qid, qops_log_text(op));
	log_set_ident("postern/qmgr");
}

/*
 * The worker that held a deleted or held message is done: a held
 * message keeps what this attempt achieved (recipients sent are not sent
 * again after release); then the entry goes.
 */
static void
admin_finish(struct qmgr *q, struct qmsg *m)
{
	struct buf b = BUF_INIT;

	if (m->where == QD_HOLD && !msg_gone(q, m) &&
	    qstate_count(&m->st, RS_SENT) == m->st.n) {
		/* Held too late: every recipient got it meanwhile. */
		if (fs_remove(q->dir[QD_HOLD], m->qid) < 0 ||
		    fs_remove(q->dir[QD_STATE], m->qid) < 0)
			log_warn("%s: cannot remove the delivered message from "
			    "hold/", m->qid);
		else
			log_info("%s: removed", m->qid);
	} else if (m->where == QD_HOLD && !msg_gone(q, m)) {
		qstate_format(&m->st, &b);
		if (fs_replace(q->dir[QD_STATE], m->qid, b.data, b.len,
		    0600) < 0)
			log_warn("%s: cannot write the state record of the held "
			    "message", m->qid);
	}
	buf_free(&b);
	qmgr_drop(q, m);
}

/* Take a file just moved to deferred/ into the table, due now. */
static void
admin_load(struct qmgr *q, const char *qid, enum qdir where)
{
	struct qmsg *m = load_msg(q, where, qid, 0);

	if (m != NULL) {
		m->next_try = 0;
		wake_by(q, 0);
	}
	/* Nothing left to try: settled as after a delivery attempt. */
	if (m != NULL && m->final)
		qmgr_settle(q, m);
}

/* Requeue an idle table entry: rewrite, then load it afresh. */
static int
admin_requeue(struct qmgr *q, struct qmsg *m, const struct addr_rewrite *rw,
    char *err, size_t errlen)
{
	char qid[QID_MAX];
	enum qdir where = m->where;

	if (qops_requeue(q->dir, m->qid, where, rw, err, errlen) < 0)
		return -1;
	strlcpy(qid, m->qid, sizeof(qid));
	qmgr_drop(q, m);
	admin_load(q, qid, where);
	admin_log(qid, QOP_REQUEUE);
	return 0;
}

/* An operation on a message the table holds. */
static int
admin_known(struct qmgr *q, struct qmsg *m, enum qop op,
    const struct addr_rewrite *rw, char *err, size_t errlen)
{
	char qid[QID_MAX];
	int rc = 0;

	strlcpy(qid, m->qid, sizeof(qid));
	switch (op) {
	case QOP_DELETE:
		rc = qops_delete(q->dir, qid, m->where);
		break;
	case QOP_HOLD:
		if ((rc = qops_hold(q->dir, qid, m->where)) == 0)
			m->where = QD_HOLD;
		break;
	case QOP_RELEASE:
		snprintf(err, errlen, "%s is not on hold", qid);
		return 2;
	case QOP_REQUEUE:
		if (m->worker == 0)
			return admin_requeue(q, m, rw, err, errlen);
		if (!m->admin_requeue) {
			m->admin_requeue = 1;
			q->admin_pending++;
		}
		return 1;
	}
	if (rc < 0) {
		snprintf(err, errlen, "cannot %s %s/%s: %s", qops_name(op),
		    spool_dirname(m->where), qid, strerror(errno));
		return -1;
	}
	/* A worker may still report on it: its results are not written. */
	if (m->worker != 0)
		m->admin_gone = 1;
	else
		qmgr_drop(q, m);
	admin_log(qid, op);
	return 0;
}

/* An operation on a message outside the table (incoming/new, hold/). */
static int
admin_unknown(struct qmgr *q, const char *qid, enum qdir where, enum qop op,
    const struct addr_rewrite *rw, char *err, size_t errlen)
{
	int rc = 0;

	switch (op) {
	case QOP_DELETE:
		rc = qops_delete(q->dir, qid, where);
		break;
	case QOP_HOLD:
		if (where == QD_HOLD) {
			snprintf(err, errlen, "%s is already on hold", qid);
			return 2;
		}
		rc = qops_hold(q->dir, qid, where);
		break;
	case QOP_RELEASE:
		if (where != QD_HOLD) {
			snprintf(err, errlen, "%s is not on hold", qid);
			return 2;
		}
		if (qops_release(q->dir, qid, err, errlen) < 0)
			return -1;
		admin_load(q, qid, QD_DEFERRED);
		break;
	case QOP_REQUEUE:
		/* From incoming/new: new mail is routed afresh anyway. */
		if (qops_requeue(q->dir, qid, where, rw, err, errlen) < 0)
			return -1;
		if (where != QD_NEW)
			admin_load(q, qid, where == QD_HOLD ? QD_DEFERRED :
			    where);
		break;
	}
	if (rc < 0) {
		snprintf(err, errlen, "cannot %s %s/%s: %s", qops_name(op),
		    spool_dirname(where), qid, strerror(errno));
		return -1;
	}
	admin_log(qid, op);
	return 0;
}

/* postern delete/hold/release/requeue (see qmgr.h). */
int
qmgr_admin(struct qmgr *q, enum qop op, const char *qid, unsigned mask,
    const struct addr_rewrite *rw, char *err, size_t errlen)
{
	struct qmsg *m = qmgr_find(q, qid);
	enum qdir where;

	err[0] = '\0';
	if (m != NULL && m->admin_gone) {
		snprintf(err, errlen, "%s is still being delivered after an "
		    "earlier change; try again in a moment", qid);
		errno = EBUSY;
		return -1;
	}
	if (m != NULL) {
		if (op != QOP_RELEASE && !(mask & qops_dir_bit(m->where))) {
			errno = ENOENT;
			return -1;
		}
		return admin_known(q, m, op, rw, err, errlen);
	}
	if (qops_locate(q->dir, qid, mask, &where) < 0) {
		if (errno != ENOENT)
			snprintf(err, errlen, "cannot look for %s: %s", qid,
			    strerror(errno));
		else if (op == QOP_RELEASE &&
		    qops_locate(q->dir, qid, QM_ALL, &where) == 0) {
			snprintf(err, errlen, "%s is not on hold", qid);
			return 2;
		}
		return -1;
	}
	return admin_unknown(q, qid, where, op, rw, err, errlen);
}

/* Requeues that waited for their worker. */
void
qmgr_admin_idle(struct qmgr *q, const struct addr_rewrite *rw)
{
	char err[600];
	size_t waiting = 0;

	if (q->admin_pending == 0)
		return;
	for (size_t i = 0; i < q->n; i++) {
		struct qmsg *m = q->m[i];
		if (!m->admin_requeue || m->admin_gone)
			continue;
		if (m->worker != 0) {
			waiting++;
			continue;
		}
		m->admin_requeue = 0;
		if (admin_requeue(q, m, rw, err, sizeof(err)) < 0)
			log_warnx("%s: cannot requeue: %s", m->qid, err);
		i = (size_t)-1;		/* the table changed */
		waiting = 0;
	}
	q->admin_pending = waiting;
}

/* postern flush -i. */
int
qmgr_flush_id(struct qmgr *q, const char *qid, char *err, size_t errlen)
{
	struct qmsg *m = qmgr_find(q, qid);
	enum qdir where;

	if (m == NULL && qops_locate(q->dir, qid, QM_INCOMING, &where) == 0) {
		qmgr_pickup(q);
		m = qmgr_find(q, qid);
	}
	if (m == NULL || m->admin_gone) {
		if (qops_locate(q->dir, qid, QM_HOLD, &where) == 0) {
			snprintf(err, errlen, "%s is on hold (postern release "
			    "%s)", qid, qid);
			return 2;
		}
		errno = ENOENT;
		return -1;
	}
	if (m->final) {
		snprintf(err, errlen, "%s has no recipient left to deliver",
		    qid);
		return 2;
	}
	if (m->worker == 0) {
		m->next_try = 0;
		wake_by(q, 0);
	}
	log_info("%s: flush requested", qid);
	return 0;
}

/* postern flush -s. */
size_t
qmgr_flush_domain(struct qmgr *q, const char *domain)
{
	size_t n = 0;

	for (size_t i = 0; i < q->n; i++) {
		struct qmsg *m = q->m[i];
		if (m->final || m->worker != 0 || m->admin_gone)
			continue;
		for (size_t k = 0; k < m->st.n; k++) {
			const char *at = strrchr(m->rcpt[k], '@');
			enum rcpt_status rs = m->st.r[k].st;
			if ((rs == RS_PENDING || rs == RS_DEFERRED) &&
			    at != NULL && strcasecmp(at + 1, domain) == 0) {
				m->next_try = 0;
				wake_by(q, 0);
				n++;
				break;
			}
		}
	}
	log_info("flush requested for domain %s: %zu message(s) due now",
	    domain, n);
	return n;
}
