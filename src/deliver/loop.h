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

/* loop_run's exit status when it asks its supervisor for a fresh daemon. */
#define LOOP_EXIT_RESTART	99

/* What the daemon's start-up and its supervisor (if any) ask of the loop. */
struct loop_hooks {
	const char	*user;		/* the user it runs as, for the log */
	/*
	 * Called once the files that need root are open (tables, TLS keys
	 * and certificates) and before anything is created in the spool:
	 * gives up root for good, or does not return. NULL: nothing.
	 */
	void		(*drop)(void *arg);
	void		*arg;
	int		 ready_fd;	/* -1, or a pipe: one byte once ready */
	/*
	 * Under a supervisor: SIGHUP, and a table that changed into one this
	 * user may not read, end the loop (running transactions finish)
	 * with LOOP_EXIT_RESTART, so that root opens everything again.
	 * 0: SIGHUP reloads in this process.
	 */
	int		 restart;
};

/*
 * Whether cf would start a daemon: every table, the TLS files and the
 * delivery settings load. 0, or -1 with err. For the supervisor's check
 * before a reload (in a child of its own, as root); opens and closes.
 */
int loop_config_check(struct config *cf, char *err, size_t errlen);

/*
 * Run the daemon for cf until SIGTERM or SIGINT (or a restart, see
 * struct loop_hooks). The spool must exist and the caller must hold the
 * queue lock. Takes cf (frees it). Returns the exit status.
 */
int loop_run(struct config *cf, const struct loop_hooks *h);

#endif
