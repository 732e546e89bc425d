/*
 * posternd.c - the postern delivery daemon: option parsing and start-up.
 *
 * Everything after start-up is in deliver/loop.c. Here: read main.cf,
 * open the log, create missing spool directories, take the queue lock
 * (one daemon per spool), detach unless -f, and run the loop. Started
 * as root with mail_owner an ordinary user, posternd stays root only in
 * a small supervisor (deliver/supervise.c) whose daemon process gives up
 * root once it has opened root's files; started as any other user, or
 * with mail_owner = root, it runs the loop itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf/config.h"
#include "deliver/loop.h"
#include "deliver/supervise.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/privsep.h"
#include "lib/util.h"
#include "spool/spool.h"

#define POSTERND_USAGE	"usage: posternd [-fsv] [-C config_dir]\n"
/* --help. */
#define POSTERND_HELP	POSTERND_USAGE \
	"The postern mail daemon: delivers the queued mail to the relay.\n" \
	"  -f            stay in the foreground, log to standard error\n" \
	"  -s            with -f: log to maillog_file or syslog instead\n" \
	"  -v            verbose logging\n" \
	"  -C dir        configuration directory (default " \
	POSTERN_SYSCONFDIR ")\n" \
	"  --version     print the version\n" \
	"See posternd(8).\n"

/* Print usage and exit. */
static void __attribute__((noreturn))
usage(void)
{
	fputs(POSTERND_USAGE, stderr);
	exit(EX_USAGE);
}

/*
 * Who owns the spool and runs the daemon: mail_owner when posternd
 * starts as root, else the user running it (a sandbox, or a daemon
 * started by the postern user itself). As root, a mail_owner that does
 * not exist is fatal: running on as root is what mail_owner is there to
 * prevent.
 */
static void
spool_owner(const struct config *cf, struct privsep_user *u)
{
	char err[512];

	if (geteuid() != 0) {
		privsep_self(u);
		return;
	}
	if (privsep_lookup(conf_str(cf, "mail_owner"), u, err,
	    sizeof(err)) < 0)
		fatalx_status(EX_NOUSER, "mail_owner: %s; posternd gives up "
		    "root for this user after start-up. Create it: "
		    "scripts/postern-user.sh or `make install` as root; or set "
		    "mail_owner in %s/main.cf to an existing user", err,
		    config_dir(cf));
}

static void say(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Format a message for the caller (a long path may cut it short). */
static void
say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Open pid/master.lock as only root's own file: pid/ belongs to
 * mail_owner, who could have put a symbolic link, a hard link or a FIFO
 * there for root to truncate or hang on. Opened relative to the
 * directory, without following links, and checked: a regular file with
 * one link, owned by us. Anything else is refused with the fix.
 * Returns the descriptor, or -1 with err and the exit status.
 */
static int
open_lock(const char *dir, char *err, size_t errlen, int *status)
{
	struct stat st;
	int dfd, fd = -1;

	*status = EX_CONFIG;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		say(err, errlen, "cannot open the lock directory %s: %s",
		    dir, strerror(errno));
		return -1;
	}
	fd = fs_openat_plain(dfd, "master.lock", O_RDWR | O_CREAT, 0600, &st);
	if (fd < 0 && fs_plain_refused(errno))
		say(err, errlen, "%s/master.lock is %s, which posternd "
		    "does not open: another user may have put it there. Remove "
		    "it (rm %s/master.lock) and start posternd again", dir,
		    fs_plain_why(errno), dir);
	else if (fd < 0) {
		*status = EX_CANTCREAT;
		say(err, errlen, "cannot open lock file %s/master.lock: "
		    "%s", dir, strerror(errno));
	} else if (st.st_uid != geteuid()) {
		say(err, errlen, "%s/master.lock belongs to uid %lu, not "
		    "to uid %lu, which runs posternd: another user may have "
		    "put it there. Remove it (rm %s/master.lock) and start "
		    "posternd again", dir, (unsigned long)st.st_uid,
		    (unsigned long)geteuid(), dir);
		close(fd);
		fd = -1;
	}
	close(dfd);
	return fd;
}

/*
 * Take the queue lock; returns the descriptor (kept open for life), or
 * -1 with err and the exit status.
 */
static int
take_lock(const char *queue_dir, char *err, size_t errlen, int *status)
{
	char dir[PATH_BUF], pid[32];
	int fd;
	ssize_t n;

	*status = EX_CONFIG;
	if (spool_path(queue_dir, QD_PID, dir, sizeof(dir)) < 0) {
		say(err, errlen, "queue_directory path too long");
		return -1;
	}
	if ((fd = open_lock(dir, err, errlen, status)) < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		*status = EX_TEMPFAIL;
		say(err, errlen, "another posternd (pid %s) is already "
		    "running for queue directory %s", pid[0] ? pid : "?",
		    queue_dir);
		close(fd);
		return -1;
	}
	return fd;
}

/* Record our pid in the lock file. */
static void
write_pid(int fd)
{
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("cannot write the pid to the lock file");
}

/* Detach from the terminal; keep_stderr when it is the log. */
static void
detach(int keep_stderr)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		fatal("setsid");
	if (chdir("/") < 0)
		fatal("chdir /");
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (!keep_stderr)
			dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

int
main(int argc, char **argv)
{
	const char *dir = getenv("POSTERN_CONFIG_DIR");
	struct config *cf;
	struct privsep_user u;
	struct loop_hooks h;
	char err[4096];
	int ch, foreground = 0, to_syslog = 0, verbose = 0, lock, drop, n;
	int no_syslog;
	const char *logfile;
	char why[300];

	fds_sanitize();
	log_open("posternd", LOG_DEST_CLI, NULL);
	if ((n = std_long_option(argc, argv, "posternd", POSTERND_HELP)) >= 0)
		return n;
	while ((ch = getopt(argc, argv, "C:fsv")) != -1) {
		switch (ch) {
		case 'C': dir = optarg; break;
		case 'f': foreground = 1; break;
		case 's': to_syslog = 1; break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (dir == NULL || *dir == '\0')
		dir = POSTERN_SYSCONFDIR;
	cf = config_load(dir, err, sizeof(err));
	if (cf == NULL)
		fatalx_status(EX_CONFIG, "%s", err);
	umask(077);
	spool_owner(cf, &u);
	/* Root with mail_owner = root (or a uid-0 alias) has none to drop. */
	drop = geteuid() == 0 && u.uid != 0;
	if (spool_create_owned(conf_str(cf, "queue_directory"), u.uid, u.gid,
	    err, sizeof(err)) < 0)
		fatalx_status(EX_CANTCREAT, "%s", err);
	/* A spool others can read or change is refused, with the fix. */
	if (spool_check(conf_str(cf, "queue_directory"), u.uid, u.name, err,
	    sizeof(err)) < 0)
		fatalx_status(EX_CONFIG, "%s", err);
	lock = take_lock(conf_str(cf, "queue_directory"), err, sizeof(err), &n);
	if (lock < 0) {
		config_free(cf);
		fatalx_status(n, "%s", err);
	}

	/*
	 * Logging: stderr under -f, else maillog_file or syslog. -s keeps
	 * the background daemon's logging in the foreground: a service
	 * manager (systemd, OpenRC's supervise-daemon) runs posternd -f -s,
	 * and the log still reaches syslog as postern/<program>.
	 */
	logfile = conf_str(cf, "maillog_file");
	/* No syslog to log to: standard error, said at start. */
	no_syslog = (!foreground || to_syslog) && !logfile[0] &&
	    !log_syslog_available(why, sizeof(why));
	if (!foreground)
		detach(no_syslog);
	if ((foreground && !to_syslog) || no_syslog)
		log_open("postern/qmgr", LOG_DEST_STDERR, NULL);
	else if (logfile[0] && log_open("postern/qmgr", LOG_DEST_FILE,
	    logfile) < 0)
		fatal("cannot open maillog_file %s", logfile);
	else if (!logfile[0])
		log_open("postern/qmgr", LOG_DEST_SYSLOG, NULL);
	log_set_hostname(conf_str(cf, "myhostname"));
	log_set_verbose(verbose);
	if (no_syslog)
		log_warnx("no syslog (%s): logging to standard error instead; "
		    "set maillog_file (e.g. /var/log/postern.log) to log to a "
		    "file", why);
	write_pid(lock);
	if (drop) {
		/* The supervisor logs as Postfix's master does. */
		log_set_ident("postern/master");
		/* Files an earlier posternd made as root: the daemon's now. */
		n = spool_adopt(conf_str(cf, "queue_directory"), u.uid, u.gid,
		    err, sizeof(err));
		if (n < 0)
			fatalx_status(EX_CONFIG, "%s", err);
		if (n > 0)
			log_info("gave %d queue files that root owned to user "
			    "%s", n, u.name);
		/* The pid in the lock file is the supervisor's: the one to
		   signal. The lock itself is inherited and stays held. */
		return supervise_run(cf, &u);
	}
	memset(&h, 0, sizeof(h));
	h.user = u.name;
	h.ready_fd = -1;
	return loop_run(cf, &h);
}
