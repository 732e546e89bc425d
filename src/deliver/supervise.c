/*
 * supervise.c - posternd's root supervisor, as Postfix's master(8).
 *
 * The process that stays root does as little as it can: it forks the
 * daemon process, passes SIGTERM, SIGINT and SIGHUP on to it, and reaps
 * it. After the fork it reads nothing from the daemon but its exit
 * status and one byte on a pipe that says "ready"; it opens no table,
 * speaks no TLS and does not touch the spool (a SIGHUP's check of the new
 * configuration runs in a child of its own, see reload_ok). The daemon process opens
 * what needs root (loop_run's start-up), then becomes mail_owner for
 * good (child_drop) before it creates anything in the spool.
 *
 * The daemon process cannot read root's files again, so whatever needs
 * them is a fresh daemon process: SIGHUP, and a table that changed into
 * one only root may read, end it with LOOP_EXIT_RESTART after running
 * transactions finish, and the supervisor starts the next one at once.
 * Each daemon process after the first reads main.cf again, as root.
 *
 * A daemon process that ends otherwise after it was ready (a crash, a
 * fatal error) is replaced after RESTART_DELAY seconds; while the new
 * ones keep failing before they are ready, the wait doubles, up to
 * RESTART_MAX. The very first one failing before it is ready ends the
 * supervisor with its exit status: a broken configuration fails the
 * start of posternd as loudly as before, with the same message.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf/config.h"
#include "deliver/loop.h"
#include "deliver/supervise.h"
#include "lib/log.h"
#include "lib/privsep.h"
#include "lib/util.h"

#define RESTART_DELAY	10	/* s: after a daemon process that was ready */
#define RESTART_MAX	300	/* s: the longest wait between failures */

/* The daemon process being supervised. */
struct child {
	pid_t	pid;
	int	ready_fd;	/* the pipe's read end; -1 once read */
	int	ready;		/* it said it was ready */
};

static int sup_sig[2] = { -1, -1 };	/* the supervisor's self-pipe */
static pid_t supervisor_pid;

/* The signals the supervisor acts on, as a set. */
static void
sup_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGCHLD);
}

/* Install the handlers that feed the self-pipe. */
static void
signals_setup(void)
{
	if (signals_to_pipe(sup_sig) < 0)
		fatal("pipe");
}

/*
 * In the daemon process, right after fork: the signal handling of a new
 * process (loop_run installs its own). SIGHUP is ignored until then: the
 * supervisor holds a reload back until the daemon is ready.
 */
static void
child_signals(const sigset_t *mask)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	close(sup_sig[0]);
	close(sup_sig[1]);
	sigprocmask(SIG_SETMASK, mask, NULL);
}

/*
 * loop_run's drop hook: become mail_owner for good, once the root-only
 * files are open. Failing that, the daemon must not run at all.
 */
static void
child_drop(void *arg)
{
	const struct privsep_user *u = arg;
	char err[600];

	if (privsep_drop(u, err, sizeof(err)) < 0)
		fatalx_status(EX_OSERR, "%s", err);
	/*
	 * Changing ids cleared the parent-death signal. Set it again: a
	 * daemon process whose supervisor died stops (letting transactions
	 * finish) rather than run on unsupervised.
	 */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != supervisor_pid)
		fatalx("the supervisor (pid %ld) is gone", (long)supervisor_pid);
}

/*
 * A daemon process after the first reads main.cf again: a reload. The
 * queue directory and the user stay the supervisor's, which holds the
 * queue lock and made the spool theirs; they change with a restart.
 */
static struct config *
fresh_config(struct config *old)
{
	static const char *const fixed[] = { "queue_directory", "mail_owner" };
	struct config *cf;
	char err[1024];

	cf = config_load(config_dir(old), err, sizeof(err));
	if (cf == NULL)
		fatalx_status(EX_CONFIG, "%s", err);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(conf_str(cf, fixed[i]), conf_str(old, fixed[i])) == 0)
			continue;
		log_warnx("%s changed in %s/main.cf; it takes effect when "
		    "posternd is restarted (still %s)", fixed[i],
		    config_dir(old), conf_str(old, fixed[i]));
		if (config_set(cf, fixed[i], conf_str(old, fixed[i]), err,
		    sizeof(err)) < 0)
			fatalx_status(EX_CONFIG, "%s", err);
	}
	config_free(old);
	return cf;
}

/* The daemon process: never returns. */
static void __attribute__((noreturn))
child_main(struct config *cf, const struct privsep_user *u, int ready_fd,
    int fresh, const sigset_t *mask)
{
	struct loop_hooks h;

	child_signals(mask);
	log_set_ident("postern/qmgr");
	if (fresh)
		cf = fresh_config(cf);
	memset(&h, 0, sizeof(h));
	h.user = u->name;
	h.drop = child_drop;
	h.arg = (void *)u;
	h.ready_fd = ready_fd;
	h.restart = 1;
	exit(loop_run(cf, &h));
}

/* Fork a daemon process; 0, or -1 when it could not be (logged). */
static int
child_start(struct child *c, struct config *cf, const struct privsep_user *u,
    int fresh)
{
	sigset_t block, old;
	int p[2];

	memset(c, 0, sizeof(*c));
	c->ready_fd = -1;
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_warn("cannot create a pipe for the daemon process");
		return -1;
	}
	/* No handler of ours may run in the child before it resets them. */
	sup_sigset(&block);
	sigprocmask(SIG_BLOCK, &block, &old);
	c->pid = fork();
	if (c->pid == 0) {
		close(p[0]);
		child_main(cf, u, p[1], fresh, &old);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(p[1]);
	if (c->pid < 0) {
		log_warn("cannot fork the daemon process");
		close(p[0]);
		return -1;
	}
	c->ready_fd = p[0];
	return 0;
}

/* Read the ready pipe: one byte means ready; end of file, not (yet). */
static void
child_ready_input(struct child *c)
{
	char b;
	ssize_t n = read(c->ready_fd, &b, 1);

	if (n < 0 && errno == EINTR)
		return;
	if (n == 1)
		c->ready = 1;
	close(c->ready_fd);
	c->ready_fd = -1;
}

/*
 * SIGHUP: would the new main.cf and its tables start a daemon? A child
 * of the supervisor loads them as root, as the next daemon process
 * would, and says only by its exit status; the supervisor itself opens
 * nothing. A configuration that would not start keeps the running
 * daemon, as a reload in place does.
 */
static int
reload_ok(const struct config *cf)
{
	struct config *ncf;
	char err[1024];
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		log_warn("SIGHUP: cannot fork to check the configuration; "
		    "reloading unchecked");
		return 1;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_IGN);
		signal(SIGCHLD, SIG_DFL);
		ncf = config_load(config_dir(cf), err, sizeof(err));
		if (ncf == NULL || loop_config_check(ncf, err,
		    sizeof(err)) < 0) {
			log_warnx("SIGHUP: keeping the running configuration: "
			    "%s", err);
			_exit(EX_CONFIG);
		}
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * Wait for the daemon process to end, passing signals on; returns its
 * wait status. *stopping is set when SIGTERM or SIGINT came. A SIGHUP
 * before the daemon is ready is held back until it is.
 */
static int
child_watch(struct child *c, const struct config *cf, int *stopping)
{
	struct pollfd pfd[2];
	unsigned char sig;
	int status, hup_held = 0;
	nfds_t n;

	for (;;) {
		pfd[0] = (struct pollfd){ .fd = sup_sig[0], .events = POLLIN };
		n = 1;
		if (c->ready_fd >= 0)
			pfd[n++] = (struct pollfd){ .fd = c->ready_fd,
			    .events = POLLIN };
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			fatal("poll");
		if (n > 1 && pfd[1].revents)
			child_ready_input(c);
		while (read(sup_sig[0], &sig, 1) == 1) {
			if (sig == SIGTERM || sig == SIGINT) {
				*stopping = 1;
				(void)kill(c->pid, sig);
			} else if (sig == SIGHUP)
				hup_held = 1;
		}
		if (hup_held && c->ready) {
			if (reload_ok(cf))
				(void)kill(c->pid, SIGHUP);
			hup_held = 0;
		}
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			if (c->ready_fd >= 0)
				close(c->ready_fd);
			c->ready_fd = -1;
			return status;
		}
	}
}

/*
 * Wait secs seconds before the next daemon process. Returns 0 when
 * SIGTERM or SIGINT came (stop), else 1 (SIGHUP cuts the wait short).
 */
static int
restart_wait(int secs)
{
	int64_t deadline = now_mono_ms() + (int64_t)secs * 1000, left;
	struct pollfd pfd;
	unsigned char sig;

	while ((left = deadline - now_mono_ms()) > 0) {
		pfd = (struct pollfd){ .fd = sup_sig[0], .events = POLLIN };
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			fatal("poll");
		while (read(sup_sig[0], &sig, 1) == 1) {
			if (sig == SIGTERM || sig == SIGINT)
				return 0;
			if (sig == SIGHUP)
				return 1;
		}
	}
	return 1;
}

/* "exited with status 75", "killed by signal 9", for the log. */
static void
status_text(int status, char *out, size_t outlen)
{
	if (WIFSIGNALED(status))
		snprintf(out, outlen, "killed by signal %d", WTERMSIG(status));
	else if (WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d",
		    WEXITSTATUS(status));
	else
		snprintf(out, outlen, "ended (wait status %d)", status);
}

/* Supervise daemon processes (see supervise.h). */
int
supervise_run(struct config *cf, const struct privsep_user *u)
{
	struct child c;
	char what[64];
	int status = 0, stopping = 0, ever_ready = 0, fresh = 0, wait_secs = 0;
	int rc;

	supervisor_pid = getpid();
	signals_setup();
	for (;;) {
		if (child_start(&c, cf, u, fresh) == 0)
			status = child_watch(&c, cf, &stopping);
		else
			status = -1;
		fresh = 1;
		if (stopping) {
			rc = 0;
			break;
		}
		ever_ready |= c.ready;
		if (status != -1 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == LOOP_EXIT_RESTART) {
			/* It said why; the next one reads everything anew. */
			wait_secs = 0;
			continue;
		}
		if (status == -1)
			snprintf(what, sizeof(what), "could not be started");
		else
			status_text(status, what, sizeof(what));
		if (!ever_ready) {
			/* At start-up: fail as an unsupervised daemon would. */
			if (status != -1 && WIFEXITED(status)) {
				rc = WEXITSTATUS(status);
				break;
			}
			log_warnx("the daemon process %s before it was ready",
			    what);
			rc = status == -1 ? EX_OSERR : EX_SOFTWARE;
			break;
		}
		if (c.ready || wait_secs == 0)
			wait_secs = RESTART_DELAY;
		else if ((wait_secs *= 2) > RESTART_MAX)
			wait_secs = RESTART_MAX;
		if (status == -1)
			log_warnx("the daemon process could not be started; "
			    "trying again in %d s", wait_secs);
		else
			log_warnx("daemon process %ld %s%s; starting a new one "
			    "in %d s", (long)c.pid, what, c.ready ? "" :
			    " before it was ready", wait_secs);
		if (!restart_wait(wait_secs)) {
			rc = 0;
			break;
		}
	}
	config_free(cf);
	return rc;
}
