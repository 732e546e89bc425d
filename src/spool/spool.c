/*
 * spool.c - the queue directory tree, queue IDs, and sendmail's commit.
 *
 * sendmail writes a message into incoming/tmp under a private name, then
 * makes it visible with one rename into incoming/new/QID. The rename is
 * the commit: the daemon only ever looks at incoming/new, so it never sees
 * a partial file. The file is fsync'd before the rename and the directory
 * after it, so once spool_new_commit() returns 0 a power cut cannot lose
 * the message. A rename never replaces an existing file: two messages
 * with one ID would mean one is lost.
 *
 * The queue ID comes from the file itself (microseconds + inode), so the
 * file system, not a counter we would have to lock, makes it unique.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "spool/spool.h"

/* Directory names and modes, in enum qdir order. */
static const struct {
	const char	*name;
	mode_t		 mode;
} qdirs[QD_COUNT] = {
	[QD_TMP]	= { "incoming/tmp", 01730 },
	/* Group read: sendmail must open it to fsync it after the rename. */
	[QD_NEW]	= { "incoming/new", 01770 },
	[QD_ACTIVE]	= { "active", 0700 },
	[QD_DEFERRED]	= { "deferred", 0700 },
	[QD_HOLD]	= { "hold", 0700 },
	[QD_CORRUPT]	= { "corrupt", 0700 },
	[QD_STATE]	= { "state", 0700 },
	[QD_PUBLIC]	= { "public", 0755 },
	[QD_PID]	= { "pid", 0700 },
};

static void seterr(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Format an error message for the caller (err may be NULL). */
static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	errno = saved;
}

/* Sub-directory name of a queue. */
const char *
spool_dirname(enum qdir d)
{
	if ((int)d < 0 || d >= QD_COUNT)
		return NULL;
	return qdirs[d].name;
}

/* Full path of a queue directory. */
int
spool_path(const char *queue_dir, enum qdir d, char *out, size_t outlen)
{
	int n;

	if ((int)d < 0 || d >= QD_COUNT)
		return -1;
	n = snprintf(out, outlen, "%s/%s", queue_dir, qdirs[d].name);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return 0;
}

/* A queue ID: 6 to 24 upper-case hex digits. */
int
qid_valid(const char *name)
{
	size_t n = strspn(name, "0123456789ABCDEF");

	return name[n] == '\0' && n >= 6 && n <= 24;
}

/*
 * mkdir one directory; set its mode (and owner, unless -1) only when we
 * created it.
 */
static int
mkdir_mode(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	if (mkdir(path, 0700) < 0)
		return errno == EEXIST ? 0 : -1;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0)
		return -1;
	/* chmod, not the mkdir mode: the umask must not take bits away;
	   and after chown, which clears the sticky and set-id bits. */
	return chmod(path, mode);
}

/* Create every missing spool directory. */
int
spool_create(const char *queue_dir, char *err, size_t errlen)
{
	return spool_create_owned(queue_dir, (uid_t)-1, (gid_t)-1, err,
	    errlen);
}

/* Create every missing spool directory, owned by uid:gid. */
int
spool_create_owned(const char *queue_dir, uid_t uid, gid_t gid, char *err,
    size_t errlen)
{
	char path[PATH_BUF];
	struct stat sb;
	int had = stat(queue_dir, &sb) == 0;

	if (fs_mkdirs(queue_dir, 0755) < 0) {
		seterr(err, errlen, "cannot create %s: %s", queue_dir,
		    strerror(errno));
		return -1;
	}
	/* Everyone must reach incoming/ and public/control: 0755 whatever
	   the umask, when we made it. */
	if (!had && chmod(queue_dir, 0755) < 0) {
		seterr(err, errlen, "cannot set the mode of %s: %s", queue_dir,
		    strerror(errno));
		return -1;
	}
	/* incoming/ itself only needs to be searchable to reach tmp and new. */
	if ((size_t)snprintf(path, sizeof(path), "%s/incoming", queue_dir) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		seterr(err, errlen, "queue directory name too long");
		return -1;
	}
	if (mkdir_mode(path, 0755, (uid_t)-1, (gid_t)-1) < 0)
		goto fail;
	for (int d = 0; d < QD_COUNT; d++) {
		if (spool_path(queue_dir, d, path, sizeof(path)) < 0) {
			errno = ENAMETOOLONG;
			seterr(err, errlen, "queue directory name too long");
			return -1;
		}
		if (mkdir_mode(path, qdirs[d].mode, uid, gid) < 0)
			goto fail;
	}
	return 0;
fail:
	seterr(err, errlen, "cannot create %s: %s", path, strerror(errno));
	return -1;
}

/* What spool_check found: each problem, and the commands that fix them. */
struct spool_fix {
	struct buf	why;		/* "P is owned by ...; P has mode ..." */
	struct buf	chown;		/* paths for chown -R owner */
	struct buf	chown_root;	/* paths for chown root */
	struct buf	chmod[QD_COUNT + 1];	/* paths per wanted mode */
	mode_t		mode[QD_COUNT + 1];
	size_t		nmode, n;
	const char	*owner;
};

/* Add one problem to f, and its path to the fix that covers it. */
static void
fix_add(struct spool_fix *f, const char *why, struct buf *paths,
    const char *path)
{
	if (f->n++ > 0)
		buf_adds(&f->why, "; ");
	buf_adds(&f->why, why);
	buf_addc(paths, ' ');
	buf_adds(paths, path);
}

/* The chmod list for mode want. */
static struct buf *
fix_chmod(struct spool_fix *f, mode_t want)
{
	size_t i;

	for (i = 0; i < f->nmode; i++)
		if (f->mode[i] == want)
			return &f->chmod[i];
	f->mode[f->nmode] = want;
	return &f->chmod[f->nmode++];
}

/* Check one directory's owner and mode against uid and want. */
static void
check_one(struct spool_fix *f, const char *path, const struct stat *sb,
    uid_t uid, mode_t want, int root_dir)
{
	char why[PATH_BUF + 300];
	mode_t m = sb->st_mode & 07777;

	if (sb->st_uid != uid && root_dir) {
		snprintf(why, sizeof(why), "%s is owned by uid %lu, not by "
		    "root: the user who owns it could make root, which starts "
		    "posternd, use files of its choosing", path,
		    (unsigned long)sb->st_uid);
		fix_add(f, why, &f->chown_root, path);
	} else if (sb->st_uid != uid) {
		snprintf(why, sizeof(why), "%s is owned by uid %lu, not by %s "
		    "(uid %lu), which runs posternd: mail there could be read "
		    "or changed by another user", path,
		    (unsigned long)sb->st_uid, f->owner, (unsigned long)uid);
		fix_add(f, why, &f->chown, path);
	}
	/* Group and others: never more than the intended mode gives, and
	   group write only under the sticky bit. */
	if ((m & 0077 & ~want) || ((m & 0020) && !(m & 01000))) {
		snprintf(why, sizeof(why), "%s has mode %04o; its contents "
		    "must not be open to %s", path, (unsigned)m,
		    (m & 0007 & ~want) ? "other users" : "the group");
		fix_add(f, why, fix_chmod(f, want), path);
	}
}

/* The one command that fixes everything f found, appended to out. */
static void
fix_command(struct spool_fix *f, struct buf *out)
{
	const char *sep = "";

	if (f->chown.len > 0) {
		buf_addf(out, "chown -R %s%s", f->owner, f->chown.data);
		sep = " && ";
	}
	if (f->chown_root.len > 0) {
		buf_addf(out, "%schown root%s", sep, f->chown_root.data);
		sep = " && ";
	}
	for (size_t i = 0; i < f->nmode; i++) {
		buf_addf(out, "%schmod %04o%s", sep, (unsigned)f->mode[i],
		    f->chmod[i].data);
		sep = " && ";
	}
}

/* Free what f holds. */
static void
fix_free(struct spool_fix *f)
{
	buf_free(&f->why);
	buf_free(&f->chown);
	buf_free(&f->chown_root);
	for (size_t i = 0; i < QD_COUNT + 1; i++)
		buf_free(&f->chmod[i]);
}

/*
 * lstat one spool directory into sb; -1 with err when it is missing or
 * not a directory (nothing chown or chmod could fix).
 */
static int
check_is_dir(const char *path, struct stat *sb, char *err, size_t errlen)
{
	if (lstat(path, sb) < 0) {
		seterr(err, errlen, "cannot use %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb->st_mode)) {
		seterr(err, errlen, "%s is not a directory%s; move it away and "
		    "start posternd again, which creates the directory", path,
		    S_ISLNK(sb->st_mode) ? " but a symbolic link" : "");
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* Check the owners and modes of the spool tree (see spool.h). */
int
spool_check(const char *queue_dir, uid_t uid, const char *owner, char *err,
    size_t errlen)
{
	struct spool_fix f;
	struct buf cmd = BUF_INIT;
	char path[PATH_BUF];
	struct stat sb;
	int rc = -1;

	memset(&f, 0, sizeof(f));
	f.owner = owner;
	/* Root walks into the daemon's directories only through its own:
	   the queue directory and incoming/ must be root's. */
	if (geteuid() == 0 && uid != 0) {
		for (int i = 0; i < 2; i++) {
			if ((size_t)snprintf(path, sizeof(path), "%s%s",
			    queue_dir, i ? "/incoming" : "") >= sizeof(path))
				goto toolong;
			if (check_is_dir(path, &sb, err, errlen) < 0)
				goto out;
			check_one(&f, path, &sb, 0, 0755, 1);
		}
	}
	for (int d = 0; d < QD_COUNT; d++) {
		if (spool_path(queue_dir, d, path, sizeof(path)) < 0)
			goto toolong;
		if (check_is_dir(path, &sb, err, errlen) < 0)
			goto out;
		check_one(&f, path, &sb, uid, qdirs[d].mode, 0);
	}
	if (f.n == 0) {
		rc = 0;
		goto out;
	}
	/* Every problem at once, with one command that fixes them all. */
	fix_command(&f, &cmd);
	seterr(err, errlen, "%s: fix %s: %s", f.why.data, f.n > 1 ?
	    "them all with" : "with", cmd.data);
	errno = EPERM;
	goto out;
toolong:
	errno = ENAMETOOLONG;
	seterr(err, errlen, "queue directory name too long");
out:
	buf_free(&cmd);
	fix_free(&f);
	return rc;
}

/* spool_adopt for one directory; the count, or -1 with err. */
static int
adopt_dir(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct dirent *de;
	struct stat st;
	DIR *dp;
	int fd, n = 0;

	/* Not through a symbolic link: root changes owners in here. */
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0 || (dp = fdopendir(fd)) == NULL) {
		seterr(err, errlen, "cannot open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(dp), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0 || st.st_uid != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		/* O_NOFOLLOW and the fstat: the file we change is the
		   regular file in this directory, not what it points at. */
		fd = openat(dirfd(dp), de->d_name, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid == 0 && st.st_nlink == 1) {
			if (fchown(fd, uid, gid) < 0) {
				seterr(err, errlen, "cannot give %s/%s to uid "
				    "%lu: %s", path, de->d_name,
				    (unsigned long)uid, strerror(errno));
				close(fd);
				closedir(dp);
				return -1;
			}
			n++;
		}
		close(fd);
	}
	closedir(dp);
	return n;
}

/* Give root's leftovers in the daemon's directories to uid:gid. */
int
spool_adopt(const char *queue_dir, uid_t uid, gid_t gid, char *err,
    size_t errlen)
{
	static const enum qdir dirs[] = { QD_NEW, QD_ACTIVE, QD_DEFERRED,
	    QD_HOLD, QD_CORRUPT, QD_STATE };
	char path[PATH_BUF];
	int n, total = 0;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (spool_path(queue_dir, dirs[i], path, sizeof(path)) < 0) {
			seterr(err, errlen, "queue directory name too long");
			return -1;
		}
		if ((n = adopt_dir(path, uid, gid, err, errlen)) < 0)
			return -1;
		total += n;
	}
	return total;
}

/* Open a uniquely named file in incoming/tmp and derive the queue ID. */
int
spool_new_open(const char *queue_dir, struct spool_new *sn, char *err,
    size_t errlen)
{
	static unsigned counter;
	char tmpdir[PATH_BUF];
	struct timeval tv;
	struct stat st;
	int n;

	memset(sn, 0, sizeof(*sn));
	sn->fd = -1;
	if (spool_path(queue_dir, QD_TMP, tmpdir, sizeof(tmpdir)) < 0 ||
	    spool_path(queue_dir, QD_NEW, sn->newdir, sizeof(sn->newdir)) < 0) {
		errno = ENAMETOOLONG;
		seterr(err, errlen, "queue directory name too long");
		return -1;
	}
	gettimeofday(&tv, NULL);
	n = snprintf(sn->tmppath, sizeof(sn->tmppath), "%s/%ld.%lld.%06ld.%u",
	    tmpdir, (long)getpid(), (long long)tv.tv_sec, (long)tv.tv_usec,
	    counter++);
	if (n < 0 || (size_t)n >= sizeof(sn->tmppath)) {
		errno = ENAMETOOLONG;
		seterr(err, errlen, "queue directory name too long");
		return -1;
	}
	/* Unnamed where we can: a killed sendmail then leaves nothing. It
	   is linked through /proc, so /proc must be there. */
	if (access("/proc/self/fd", X_OK) == 0 &&
	    (sn->fd = open(tmpdir, O_TMPFILE | O_WRONLY | O_CLOEXEC,
	    0640)) >= 0) {
		sn->unnamed = 1;
		sn->tmppath[0] = '\0';
	} else
		sn->fd = open(sn->tmppath, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC | O_NOFOLLOW, 0640);
	if (sn->fd < 0) {
		seterr(err, errlen, "cannot create queue file in %s: %s",
		    tmpdir, strerror(errno));
		sn->tmppath[0] = '\0';
		return -1;
	}
	if (fstat(sn->fd, &st) < 0) {
		seterr(err, errlen, "cannot stat queue file: %s",
		    strerror(errno));
		spool_new_abort(sn);
		return -1;
	}
	/* %05X of a value below 1000000 is exactly five digits. */
	snprintf(sn->qid, sizeof(sn->qid), "%05lX%lX", (unsigned long)tv.tv_usec,
	    (unsigned long)st.st_ino);
	return 0;
}

/* Write, fsync, rename into incoming/new, fsync the directory. */
int
spool_new_commit(struct spool_new *sn, const void *data, size_t len,
    char *err, size_t errlen)
{
	enum fs_step step;
	int fd = sn->fd;

	sn->fd = -1;
	if (fs_commit(fd, data, len, sn->unnamed ? NULL : sn->tmppath,
	    sn->newdir, sn->qid, 1, &step) < 0) {
		/* Name the file the failing step worked on. */
		if (step < FS_RENAME)
			seterr(err, errlen, "%s of queue file %s failed: %s",
			    fs_step_name(step), sn->unnamed ? "(unnamed, in "
			    "incoming/tmp)" : sn->tmppath, strerror(errno));
		else if (step == FS_SYNC_DIR)
			seterr(err, errlen, "sync of directory %s failed after "
			    "the rename of queue file %s: %s", sn->newdir,
			    sn->qid, strerror(errno));
		else
			seterr(err, errlen, "%s of queue file %s/%s failed: %s",
			    fs_step_name(step), sn->newdir, sn->qid,
			    strerror(errno));
		sn->tmppath[0] = '\0';	/* fs_commit removed it */
		return -1;
	}
	sn->tmppath[0] = '\0';
	return 0;
}

/* Remove the temporary file of an abandoned message. */
void
spool_new_abort(struct spool_new *sn)
{
	int saved = errno;

	if (sn->fd >= 0)
		close(sn->fd);
	sn->fd = -1;
	if (sn->tmppath[0] != '\0')
		(void)unlink(sn->tmppath);
	sn->tmppath[0] = '\0';
	errno = saved;
}

/* Is there room for need bytes above the reserve? (see spool.h) */
int
spool_space_check(const char *queue_dir, unsigned long long need,
    long long minfree, char *err, size_t errlen)
{
	struct statvfs vfs;
	unsigned long long avail;

	if (minfree <= 0)
		return 0;
	if (statvfs(queue_dir, &vfs) < 0) {
		seterr(err, errlen, "cannot see the free space of %s: %s",
		    queue_dir, strerror(errno));
		return -1;
	}
	avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	if (avail >= need && avail - need >= (unsigned long long)minfree)
		return 0;
	errno = ENOSPC;
	seterr(err, errlen, "the file system of %s has %llu bytes free; this "
	    "message (%llu bytes) would leave less than queue_minfree (%lld "
	    "bytes) for mail already queued; try again later, or free some "
	    "space", queue_dir, avail, need, minfree);
	return -1;
}
