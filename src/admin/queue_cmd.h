/*
 * queue_cmd.h - `postern queue` (mailq) and `postern flush`.
 */
#ifndef POSTERN_QUEUE_CMD_H
#define POSTERN_QUEUE_CMD_H

#include <stddef.h>
#include <stdio.h>

struct buf;

/*
 * postern queue [-j]; argv[0] is "queue" or "mailq". Lists the queue in
 * postqueue -p layout, or one JSON object per message with -j; a caller
 * who may not read the spool gets the listing from posternd. Returns
 * the exit status (0, EX_USAGE, EX_NOPERM, EX_UNAVAILABLE).
 */
int queue_cmd(int argc, char **argv, const char *confdir);

/*
 * Write the listing of the queue at queue_dir to out (postqueue -p
 * layout, or JSON lines with json). Returns 0, or an exit status
 * (EX_NOPERM, EX_UNAVAILABLE, EX_IOERR) after a warning. posternd runs
 * it in a child for callers who may not read the spool.
 */
int queue_list(const char *queue_dir, int json, FILE *out);

/*
 * postern flush [-i QID | -s DOMAIN]; argv[0] is "flush". Asks posternd
 * to retry every deferred message now (or that message, or those with a
 * recipient in DOMAIN). Returns 0, EX_USAGE, EX_NOINPUT (no such
 * message), EX_UNAVAILABLE or EX_SOFTWARE when the daemon refused.
 */
int flush_cmd(int argc, char **argv, const char *confdir);

/*
 * Append s as a JSON string (quotes included) to out: '"', '\' and
 * control characters escaped, invalid UTF-8 bytes replaced by U+FFFD.
 */
void json_add_string(struct buf *out, const char *s);

#endif
