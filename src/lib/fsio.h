/*
 * fsio.h - the one durable-write path every spool change goes through.
 *
 * The rule: write a temporary file, fsync it, rename it over its final
 * name, fsync the directory, and only then report success. A crash at any
 * instant leaves either the old or the new file, never a partial one.
 * All functions return 0 on success and -1 with errno set on failure.
 */
#ifndef POSTERN_FSIO_H
#define POSTERN_FSIO_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/buf.h"

#define WUR __attribute__((warn_unused_result))

/* Write all len bytes to fd, retrying short writes and EINTR. */
int fs_write_all(int fd, const void *p, size_t len) WUR;
/* fsync the directory at path. */
int fs_fsync_dir(const char *path) WUR;
/* Which step of fs_commit failed, for the caller's error message. */
enum fs_step { FS_WRITE, FS_SYNC, FS_CLOSE, FS_RENAME, FS_SYNC_DIR };

/*
 * The durable-write sequence every spool file goes through: write data to
 * the open temporary file fd (at tmppath), fsync, close, rename to
 * dir/name (refusing to replace an existing file when noreplace), fsync
 * dir. fd is always closed. On failure *step says where, the temporary
 * file is removed, and with noreplace a name renamed but not made durable
 * is taken back, so nothing half-committed stays visible. A file that
 * replaced another (not noreplace) stays when only the directory fsync
 * failed: the old one is gone already, and none would be worse. With
 * tmppath NULL, fd is an unnamed file (O_TMPFILE): it is linked as
 * dir/name (never replacing a file, whatever noreplace says) after the
 * fsync and before the close.
 */
int fs_commit(int fd, const void *data, size_t len, const char *tmppath,
    const char *dir, const char *name, int noreplace, enum fs_step *step) WUR;
/* "write", "sync", "close", "rename" or "sync directory of". */
const char *fs_step_name(enum fs_step step);
/*
 * Durably replace dir/name with data: dir/.name.tmp (made anew, O_EXCL
 * and O_NOFOLLOW, after removing a leftover) is written, fsync'd,
 * renamed to dir/name and dir is fsync'd (fs_commit). On failure the
 * temp file is removed.
 */
int fs_replace(const char *dir, const char *name, const void *data,
    size_t len, mode_t mode) WUR;
/*
 * Move from_dir/from to to_dir/to and fsync both directories (one when
 * they are the same).
 */
int fs_move(const char *from_dir, const char *from, const char *to_dir,
    const char *to) WUR;
/*
 * Neither fs_move nor fs_move_fast ever replaces a file: when to_dir/to
 * exists they fail with EEXIST (renameat2 RENAME_NOREPLACE, or link and
 * unlink where the file system lacks it). Two messages under one name
 * would mean one of them is lost.
 */
/*
 * Move like fs_move but without the directory fsyncs, for transitions a
 * crash may undo harmlessly: after a power cut the file is under its old
 * name or its new one (never neither: its data were made durable when it
 * was written), and the worst outcome is one more delivery attempt.
 */
int fs_move_fast(const char *from_dir, const char *from, const char *to_dir,
    const char *to) WUR;
/* Remove dir/name and fsync dir; a missing file is success. */
int fs_remove(const char *dir, const char *name) WUR;
/*
 * Remove dir/name without the directory fsync, for a removal a crash may
 * undo harmlessly (a delivered message that comes back is delivered once
 * more: at-least-once). A missing file is success.
 */
int fs_remove_fast(const char *dir, const char *name) WUR;
/*
 * Read a whole file into out (appended), refusing files larger than
 * limit bytes (errno EFBIG).
 */
int fs_read_file(const char *path, struct buf *out, size_t limit) WUR;
/*
 * fs_read_file for a spool file, which the postern user or group may
 * have replaced: opened with fs_openat_plain, so a symbolic link, a FIFO,
 * a device or a file with other links fails (fs_plain_refused(errno))
 * without following it or waiting for a writer. Configuration files,
 * which may be links, are read with fs_read_file.
 */
int fs_read_plain(const char *path, struct buf *out, size_t limit) WUR;
/*
 * openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode)
 * and fstat into *st, accepting only a regular file with one link: what
 * a spool file must be before root or the daemon trusts it. Returns the
 * descriptor (blocking again), or -1 with errno ELOOP (a symbolic link),
 * ENXIO (a socket), EINVAL (not a regular file: a FIFO, a directory, a
 * device), EMLINK (more than one link) or open's own.
 */
int fs_openat_plain(int dirfd, const char *name, int flags, mode_t mode,
    struct stat *st) WUR;
/* 1 when fs_openat_plain's errno err means it refused the file found. */
int fs_plain_refused(int err);
/* Words for fs_openat_plain's errno: "a symbolic link", ... */
const char *fs_plain_why(int err);
/* Create a directory and its parents that are missing, with mode. */
int fs_mkdirs(const char *path, mode_t mode) WUR;

#endif
