/*
 * loop.h - posternd's event loop.
 *
 * One process, one poll(): inotify on incoming/new (new mail is picked up
 * at once), the control socket, one pipe per delivery worker, a self-pipe
 * for signals, and a timer for retries and the periodic safety rescan.
 */
#ifndef POSTERN_LOOP_H
#define POSTERN_LOOP_H

struct config;

/*
 * Run the daemon for cf until SIGTERM or SIGINT. The spool must exist and
 * the caller must hold the queue lock. Returns the exit status.
 */
int loop_run(struct config *cf);

#endif
