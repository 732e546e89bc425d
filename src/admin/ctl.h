/*
 * ctl.h - the daemon's control socket, queue_directory/public/control.
 *
 * A Unix stream socket. The client writes one request line, the daemon
 * answers with one line and closes:
 *
 *   "flush\n"  -> "ok\n"       deliver every deferred message now
 *   anything   -> "error TEXT\n"
 *
 * The daemon side lives in deliver/loop.c; this is the client side.
 */
#ifndef POSTERN_CTL_H
#define POSTERN_CTL_H

#include <stddef.h>

#define CTL_SOCKET	"public/control"

/*
 * Send request (without the newline) to the daemon of queue_dir and read
 * its one-line answer into reply (newline removed). Returns 0 when the
 * daemon answered "ok ...", 1 when it answered an error, -1 with errno
 * when no daemon could be reached (not running: ECONNREFUSED / ENOENT).
 */
int ctl_request(const char *queue_dir, const char *request, char *reply,
    size_t replylen);

#endif
