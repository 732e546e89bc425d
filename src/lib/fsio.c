/*
 * fsio.c - durable file operations (write-temp, fsync, rename, fsync dir).
 *
 * Every spool state change in postern is one of these calls, so the
 * crash-safety argument is made once, here: rename(2) is atomic, and the
 * directory fsync makes the rename itself survive a power cut.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/string.h>

#include "lib/fsio.h"
#include "lib/mutant.h"

/* Write everything, retrying short writes. */
int
fs_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len > 0) {
		n = write(fd, c, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync a directory. */
int
fs_fsync_dir(const char *path)
{
	int fd, rc, saved;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = MUTANT(dir_fsync) ? 0 : fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/*
 * Rename without ever replacing an existing file: renameat2 with
 * RENAME_NOREPLACE where the kernel and file system have it, otherwise
 * link() (which fails with EEXIST) and unlink of the old name.
 */
static int
rename_noreplace(const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -1;
#endif
	if (link(from, to) < 0)
		return -1;
	/* The file is safe under its new name; the old one is litter. */
	(void)unlink(from);
	return 0;
}

/* The step names for error messages. */
const char *
fs_step_name(enum fs_step step)
{
	static const char *const names[] = { "write", "sync", "close",
	    "rename", "sync directory of" };

	return (unsigned)step < sizeof(names) / sizeof(names[0]) ?
	    names[step] : "commit";
}

/*
 * Give the unnamed file fd (O_TMPFILE) the name dst. Through /proc: the
 * AT_EMPTY_PATH way needs a capability that sendmail does not have.
 * Like a no-replace rename, it fails with EEXIST when dst exists.
 */
static int
link_unnamed(int fd, const char *dst)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW);
}

/* Write, fsync, close, rename (or link), fsync the directory. */
int
fs_commit(int fd, const void *data, size_t len, const char *tmppath,
    const char *dir, const char *name, int noreplace, enum fs_step *step)
{
	char dst[4096];
	int rc = -1, saved, named = 0;

	*step = FS_RENAME;
	if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst)) {
		errno = ENAMETOOLONG;
		goto out;
	}
	*step = FS_WRITE;
	if (fs_write_all(fd, data, len) < 0)
		goto out;
	*step = FS_SYNC;
	if (!MUTANT(commit_fsync) && fsync(fd) < 0)
		goto out;
	/* An unnamed file is linked while it is open; it had no name to
	   leave behind before, and has only its final one after. */
	*step = FS_RENAME;
	if (tmppath == NULL) {
		if (link_unnamed(fd, dst) < 0)
			goto out;
		named = 1;
	}
	/* Some file systems report a delayed write error only at close. */
	*step = FS_CLOSE;
	saved = close(fd);
	fd = -1;
	if (saved < 0)
		goto out;
	*step = FS_RENAME;
	if (tmppath != NULL && (noreplace ? rename_noreplace(tmppath, dst) :
	    rename(tmppath, dst)) < 0)
		goto out;
	/* A file that replaced another is not a new name: see below. */
	if (tmppath != NULL)
		named = noreplace;
	*step = FS_SYNC_DIR;
	if (!MUTANT(commit_dir_fsync) && fs_fsync_dir(dir) < 0)
		goto out;
	rc = 0;
out:
	saved = errno;
	if (fd >= 0)
		close(fd);
	/*
	 * Not durable, so not committed: take a new name back. A reader that
	 * already took it delivers it; a duplicate beats a loss. A replaced
	 * file stays: the old version is gone already, and a missing table or
	 * state record is worse than a new one that a crash may still undo.
	 */
	if (rc < 0 && named && !MUTANT(commit_takeback))
		(void)unlink(dst);
	if (rc < 0 && tmppath != NULL && !MUTANT(commit_cleanup))
		(void)unlink(tmppath);
	errno = saved;
	return rc;
}

/* Durably replace dir/name with data. */
int
fs_replace(const char *dir, const char *name, const void *data, size_t len,
    mode_t mode)
{
	char tmp[4096];
	enum fs_step step;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* A fresh file, never one that was there: a link planted under
	   the temporary name (root runs this too, in directories another
	   user owns) must not be written through. */
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd < 0)
		return -1;
	return fs_commit(fd, data, len, tmp, dir, name, 0, &step);
}

/* Move a file between directories and make the move durable. */
int
fs_move(const char *from_dir, const char *from, const char *to_dir,
    const char *to)
{
	if (fs_move_fast(from_dir, from, to_dir, to) < 0)
		return -1;
	if (!MUTANT(move_dir_fsync_to) && fs_fsync_dir(to_dir) < 0)
		return -1;
	if (strcmp(from_dir, to_dir) != 0 && !MUTANT(move_dir_fsync_from) &&
	    fs_fsync_dir(from_dir) < 0)
		return -1;
	return 0;
}

/* Move a file; the caller accepts that a crash may undo it. */
int
fs_move_fast(const char *from_dir, const char *from, const char *to_dir,
    const char *to)
{
	char src[4096], dst[4096];

	if ((size_t)snprintf(src, sizeof(src), "%s/%s", from_dir, from) >= sizeof(src) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", to_dir, to) >= sizeof(dst)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return rename_noreplace(src, dst);
}

/* Remove a file durably. */
int
fs_remove(const char *dir, const char *name)
{
	if (fs_remove_fast(dir, name) < 0)
		return -1;
	return MUTANT(remove_dir_fsync) ? 0 : fs_fsync_dir(dir);
}

/* Remove a file; the caller accepts that a crash may undo it. */
int
fs_remove_fast(const char *dir, const char *name)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* Open a plain file: no symbolic link, no FIFO, one link (fsio.h). */
int
fs_openat_plain(int dirfd, const char *name, int flags, mode_t mode,
    struct stat *st)
{
	int fd, saved;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0)
		goto fail;
	if (!S_ISREG(st->st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if (st->st_nlink != 1) {
		errno = EMLINK;
		goto fail;
	}
	/* Back to blocking reads and writes, which plain files ignore. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Did fs_openat_plain refuse what it found (rather than fail to open)? */
int
fs_plain_refused(int err)
{
	return err == ELOOP || err == EINVAL || err == ENXIO || err == EMLINK;
}

/* Why fs_openat_plain refused a file, from its errno. */
const char *
fs_plain_why(int err)
{
	switch (err) {
	case ELOOP:	return "a symbolic link";
	case EINVAL:	return "not a regular file";
	case ENXIO:	return "a socket or a FIFO";
	case EMLINK:	return "a file with more than one hard link";
	default:	return strerror(err);
	}
}

/* Read fd to its end into out, with a size limit; fd is closed. */
static int
read_fd(int fd, struct buf *out, size_t limit)
{
	char chunk[65536];
	size_t total = 0;
	ssize_t n;
	int saved;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (total > limit) {
			errno = EFBIG;
			goto fail;
		}
		buf_add(out, chunk, (size_t)n);
	}
	close(fd);
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Read a whole file with a size limit. */
int
fs_read_file(const char *path, struct buf *out, size_t limit)
{
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	return read_fd(fd, out, limit);
}

/* Read a whole spool file, refusing anything but a plain file (fsio.h). */
int
fs_read_plain(const char *path, struct buf *out, size_t limit)
{
	struct stat st;
	int fd;

	fd = fs_openat_plain(AT_FDCWD, path, O_RDONLY, 0, &st);
	if (fd < 0)
		return -1;
	return read_fd(fd, out, limit);
}

/* mkdir -p with a mode for the directories it creates. */
int
fs_mkdirs(const char *path, mode_t mode)
{
	char tmp[4096];
	size_t len;

	if (strlcpy(tmp, path, sizeof(tmp)) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	len = strlen(tmp);
	for (size_t i = 1; i <= len; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		char c = tmp[i];
		tmp[i] = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		tmp[i] = c;
	}
	return 0;
}
