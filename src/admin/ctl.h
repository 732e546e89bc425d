/*
 * ctl.h - the daemon's control socket, queue_directory/public/control.
 *
 * A Unix stream socket. The client writes one request line, the daemon
 * answers with one line and closes:
 *
 *   "flush"              -> "ok"     deliver every deferred message now
 *   "flush -i QID"       -> "ok"     deliver that message now
 *   "flush -s DOMAIN"    -> "ok N"   ...those with a recipient there
 *   "queue" | "queue -j" -> "ok", then the listing until the daemon
 *                           closes (written by a child process)
 *   "OP QID MASK"        -> "ok" | "ok later"   OP: delete, hold,
 *                           release, requeue; MASK: the queues (QM_*
 *                           bits, decimal) where QID may be
 *   anything else, or a refusal -> "error KIND TEXT"
 *
 * KIND says what went wrong, for the exit status: perm (the caller may
 * not change the queue), nomsg (no such message), noop (nothing to do:
 * already on hold...), busy (try again), usage, fail.
 *
 * OP requests need a caller (SO_PEERCRED) that is root, the daemon's own
 * user, or mail_owner; queue and flush are open to every user.
  *
 * The daemon side lives in deliver/loop.c; this is the client side.
 */
#ifndef POSTERN_CTL_H
#define POSTERN_CTL_H

#include <stddef.h>
#include <stdio.h>

#define CTL_SOCKET	"public/control"

/*
 * Send request (without the newline) to the daemon of queue_dir and read
 * its one-line answer into reply (newline removed). Returns 0 when the
 * daemon answered "ok ...", 1 when it answered an error, -1 with errno
 * when no daemon could be reached (not running: ECONNREFUSED / ENOENT).
 */
int ctl_request(const char *queue_dir, const char *request, char *reply,
    size_t replylen);
/*
 * ctl_request for requests whose "ok" is followed by data (queue): the
 * data is copied to out until the daemon closes. Returns as ctl_request
 * (-1 also when the data stops for 10 seconds).
 */
int ctl_stream(const char *queue_dir, const char *request, char *reply,
    size_t replylen, FILE *out);

#endif
