/*
 * spool.h - the queue directory tree, queue IDs, and the enqueue commit.
 *
 *   incoming/tmp   sendmail writes here          (1730 postern:postern)
 *   incoming/new   committed, waiting for pickup (1770 postern:postern)
 *   active/        being delivered               (0700 postern)
 *   deferred/      waiting for a retry           (0700 postern)
 *   hold/          held by the administrator     (0700 postern)
 *   corrupt/       unparsable files, kept        (0700 postern)
 *   state/         per-message delivery state records, named QID
 *   public/        the daemon's control socket   (0755 postern)
 *   pid/           the daemon's lock file        (0700 postern)
 *
 * A message file is named by its queue ID everywhere except incoming/tmp.
 * Queue IDs are upper-case hex: 5 digits of the microsecond of creation,
 * then the file's inode number; the inode is unique among live files of
 * one file system, so a live ID is unique. See postern-spool(5).
 */
#ifndef POSTERN_SPOOL_H
#define POSTERN_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/fsio.h"

#define QID_MAX		32
#define PATH_BUF	4096

enum qdir {
	QD_TMP,		/* incoming/tmp */
	QD_NEW,		/* incoming/new */
	QD_ACTIVE,
	QD_DEFERRED,
	QD_HOLD,
	QD_CORRUPT,
	QD_STATE,
	QD_PUBLIC,
	QD_PID,
	QD_COUNT
};

/* The sub-directory name of d ("incoming/new", "deferred", ...). */
const char *spool_dirname(enum qdir d);
/* Write queue_dir/<subdir of d> into out; -1 if it does not fit. */
int spool_path(const char *queue_dir, enum qdir d, char *out, size_t outlen);
/* 1 when name looks like a queue ID (upper-case hex, sane length). */
int qid_valid(const char *name);
/*
 * Create every missing spool directory with its mode (owner and group
 * are the caller's). Returns 0 or -1 with errno; err names the directory.
 */
int spool_create(const char *queue_dir, char *err, size_t errlen) WUR;
/*
 * The same, and the directories it creates get owner uid and group gid
 * ((uid_t)-1 / (gid_t)-1: the caller's); existing ones are left alone.
 */
int spool_create_owned(const char *queue_dir, uid_t uid, gid_t gid,
    char *err, size_t errlen) WUR;
/*
 * Check that every spool directory is a directory (not a symbolic link)
 * owned by uid (whose name is owner, for the message), that the private
 * ones (active, deferred, hold, corrupt, state, pid) are closed to
 * others and not writable by the group, that incoming/tmp and
 * incoming/new are closed to others and sticky when the group may
 * write, and that public/ is writable by uid alone. Run by root for
 * another uid, also that the queue directory and incoming/ are root's
 * and closed to writes by others (root reaches the daemon's directories
 * only through them). Returns 0, or -1 with every problem and one
 * command that fixes them all in err (a missing directory, or one that
 * is not a directory, is reported alone).
 */
int spool_check(const char *queue_dir, uid_t uid, const char *owner,
    char *err, size_t errlen) WUR;
/*
 * Give uid:gid the queue files that root owns in the daemon's
 * directories (incoming/new, active, deferred, hold, corrupt, state):
 * those an earlier posternd left while it ran as root, which the daemon
 * could not read once it runs as uid. Only regular files with one link
 * are changed, through a descriptor opened without following symbolic
 * links, so nothing outside the spool can be made the daemon's. Returns
 * the number of files changed, or -1 with err naming the file.
 */
int spool_adopt(const char *queue_dir, uid_t uid, gid_t gid, char *err,
    size_t errlen) WUR;

/* A message being written by sendmail. */
struct spool_new {
	int	fd;
	int	unnamed;	/* O_TMPFILE: no tmppath to clean up */
	char	qid[QID_MAX];
	char	tmppath[PATH_BUF];
	char	newdir[PATH_BUF];
};

/*
 * Create a temporary file in incoming/tmp and derive the queue ID from
 * it: an unnamed one (O_TMPFILE) where the file system and /proc allow,
 * which a killed sendmail cannot leave behind; else a named one, which
 * the daemon removes once it is an hour old. Returns 0, or -1 with errno
 * and a message in err.
 */
/*
 * Refuse to queue need bytes when the file system of the spool would
 * keep less than minfree bytes free (queue_minfree; 0: no reserve).
 * Returns 0, or -1 with errno ENOSPC and a message in err.
 */
int spool_space_check(const char *queue_dir, unsigned long long need,
    long long minfree, char *err, size_t errlen) WUR;
int spool_new_open(const char *queue_dir, struct spool_new *sn, char *err,
    size_t errlen) WUR;
/*
 * Write data, fsync, rename into incoming/new/QID, fsync the directory.
 * Only a 0 return means the message is safe. On failure the temporary
 * file is removed and nothing is visible in incoming/new.
 */
int spool_new_commit(struct spool_new *sn, const void *data, size_t len,
    char *err, size_t errlen) WUR;
/* Remove the temporary file (after an error before commit). */
void spool_new_abort(struct spool_new *sn);

#endif
