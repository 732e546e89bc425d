/*
 * supervise.h - posternd's root supervisor.
 *
 * posternd started as root stays root in one small process, the
 * supervisor, which only forks the daemon process, passes signals on to
 * it and starts a new one when it ends; the daemon process opens what
 * needs root and then runs as mail_owner for good (see supervise.c).
 */
#ifndef POSTERN_SUPERVISE_H
#define POSTERN_SUPERVISE_H

struct config;
struct privsep_user;

/*
 * Supervise daemon processes for cf, each running as u (not root) after
 * start-up, until SIGTERM or SIGINT (returns 0), or until the first one
 * fails before it is ready (returns its exit status). The caller holds
 * the queue lock and has set up logging (the supervisor's ident is
 * postern/master; daemon processes log as postern/qmgr). Takes cf (frees
 * it).
 */
int supervise_run(struct config *cf, const struct privsep_user *u);

#endif
