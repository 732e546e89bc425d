/*
 * loop.c - posternd's event loop: pickup, scheduling, workers, control.
 *
 * Scheduling is deliberately simple: every due message is handed to a
 * worker in batches, at most smtp_destination_concurrency_limit workers
 * (bounded by default_process_limit) at a time, all for the one relay.
 * A worker that dies costs a retry, never the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/ctl.h"
#include "conf/config.h"
#include "conf/maps.h"
#include "deliver/loop.h"
#include "deliver/qmgr.h"
#include "deliver/worker.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define RESCAN_SECS	60	/* safety net behind inotify */
#define BATCH_MAX	100	/* messages per worker */
#define STOP_GRACE_MS	10000	/* SIGTERM: let transactions finish */
#define FORK_RETRY_SECS	10	/* no pipe or process: try the batch again */

struct wproc {
	pid_t		pid;
	int		fd;
	struct buf	in;
};

struct daemon {
	struct config	*cf;
	struct qmgr	 q;
	struct worker_cfg wc;
	struct wproc	*w;
	size_t		 nw;
	size_t		 maxw;
	int		 ino_fd;
	int		 ctl_fd;
	int		 sig_fd[2];
	double		 next_rescan;
};

static int sig_write_fd = -1;

/* Signal handler: hand the signal number to the loop. */
static void
on_signal(int sig)
{
	unsigned char c = (unsigned char)sig;
	int saved = errno;

	(void)!write(sig_write_fd, &c, 1);
	errno = saved;
}

/* Install the handlers that feed the self-pipe. */
static void
signals_setup(struct daemon *d)
{
	struct sigaction sa;

	if (pipe2(d->sig_fd, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("pipe");
	sig_write_fd = d->sig_fd[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Build what workers need from the configuration. Returns 0, or -1 with
 * err when the configuration cannot work (the running one is kept).
 */
static int
daemon_cfg(struct daemon *d, struct config *cf, char *err, size_t errlen)
{
	struct worker_cfg wc;

	if (worker_cfg_build(&wc, cf, d->q.dir[QD_ACTIVE], err, errlen) < 0)
		return -1;
	worker_cfg_free(&d->wc);
	d->wc = wc;
	d->maxw = (size_t)conf_int(cf, "smtp_destination_concurrency_limit");
	if (d->maxw > (size_t)conf_int(cf, "default_process_limit"))
		d->maxw = (size_t)conf_int(cf, "default_process_limit");
	return 0;
}

/* Open the control socket at public/control. */
static int
ctl_listen(struct daemon *d)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control",
	    d->q.dir[QD_PUBLIC]) >= sizeof(sun.sun_path)) {
		log_warnx("queue_directory path too long for a control socket; "
		    "postern flush will not work");
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		fatal("socket");
	(void)unlink(sun.sun_path);	/* stale: we hold the queue lock */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(sun.sun_path, 0666) < 0 || listen(fd, 16) < 0) {
		log_warn("cannot listen on %s; postern flush will not work",
		    sun.sun_path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Serve one control request. */
static void
ctl_serve(struct daemon *d)
{
	char line[256];
	const char *reply;
	struct timeval tv = { 2, 0 };
	ssize_t n;
	int fd;

	fd = accept4(d->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* A silent client may hold the daemon for at most two seconds. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = read(fd, line, sizeof(line) - 1);
	if (n <= 0)
		goto out;
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strcmp(line, "flush") == 0) {
		qmgr_pickup(&d->q);
		qmgr_scan_deferred(&d->q);
		qmgr_flush(&d->q);
		log_info("flush requested: retrying deferred mail now");
		reply = "ok\n";
	} else {
		reply = "error unknown request\n";
	}
	(void)!write(fd, reply, strlen(reply));
out:
	close(fd);
}

/*
 * A batch that got no worker stays due; without a later time the loop
 * would retry the fork at once, forever, burning the CPU of a machine
 * that is already short of processes or descriptors.
 */
static void
batch_postpone(struct qmsg **batch, size_t n)
{
	double later = now_real() + FORK_RETRY_SECS;

	for (size_t i = 0; i < n; i++)
		batch[i]->next_try = later;
}

/* Fork a worker for a batch. */
static void
start_worker(struct daemon *d, struct qmsg **batch, size_t n)
{
	struct job_msg *jobs;
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_warn("cannot create a pipe for a delivery process");
		batch_postpone(batch, n);
		return;
	}
	jobs = xcalloc(n, sizeof(*jobs));
	for (size_t i = 0; i < n; i++) {
		strlcpy(jobs[i].qid, batch[i]->qid, sizeof(jobs[i].qid));
		jobs[i].active_time = batch[i]->active_time;
		jobs[i].st = &batch[i]->st;
		/* The daemon reads the password table; workers inherit. */
		if (worker_cfg_creds(&d->wc, batch[i]->sender, &jobs[i]) < 0)
			log_warnx("%s: %s", jobs[i].qid, jobs[i].why);
	}
	/* The relay's TLS policy, from a table that may have changed. */
	if (worker_cfg_policy(&d->wc) < 0)
		log_warnx("%s", d->wc.why_now);
	pid = fork();
	if (pid < 0) {
		log_warn("cannot fork a delivery process");
		close(pfd[0]);
		close(pfd[1]);
		for (size_t i = 0; i < n; i++)
			job_msg_clear(&jobs[i]);
		free(jobs);
		batch_postpone(batch, n);
		return;
	}
	if (pid == 0) {
		/* The worker keeps only its result pipe and the log. */
		fds_close_except(pfd[1], log_fd());
		worker_run(&d->wc, jobs, n, pfd[1]);
	}
	close(pfd[1]);
	for (size_t i = 0; i < n; i++)
		job_msg_clear(&jobs[i]);
	free(jobs);
	set_nonblock(pfd[0]);
	for (size_t i = 0; i < n; i++)
		batch[i]->worker = pid;
	d->w = xreallocarray(d->w, d->nw + 1, sizeof(*d->w));
	memset(&d->w[d->nw], 0, sizeof(d->w[d->nw]));
	d->w[d->nw].pid = pid;
	d->w[d->nw].fd = pfd[0];
	d->nw++;
}

/* Hand due messages to workers, within the concurrency limit. */
static void
schedule(struct daemon *d)
{
	struct qmsg **due, **act;
	size_t n, slots, per, na;
	double now = now_real();

	if (d->nw >= d->maxw)
		return;
	slots = d->maxw - d->nw;
	due = xcalloc(slots * BATCH_MAX, sizeof(*due));
	act = xcalloc(slots * BATCH_MAX, sizeof(*act));
	n = qmgr_due(&d->q, now, due, slots * BATCH_MAX);
	na = 0;
	for (size_t i = 0; i < n; i++)
		if (qmgr_activate(&d->q, due[i]) == 0)
			act[na++] = due[i];
	per = (na + slots - 1) / (slots ? slots : 1);
	if (per == 0)
		per = 1;
	for (size_t i = 0; i < na; i += per)
		start_worker(d, act + i, na - i < per ? na - i : per);
	free(due);
	free(act);
}

/* Read a worker's result lines; returns 1 at end of file. */
static int
worker_input(struct daemon *d, struct wproc *w)
{
	char chunk[4096], *nl;
	struct wresult r;
	ssize_t n;
	int eof = 0;

	for (;;) {
		n = read(w->fd, chunk, sizeof(chunk));
		if (n > 0) {
			buf_add(&w->in, chunk, (size_t)n);
			continue;
		}
		if (n == 0)
			eof = 1;
		else if (errno == EINTR)
			continue;
		else if (errno != EAGAIN)
			eof = 1;
		break;
	}
	while (w->in.len && (nl = memchr(w->in.data, '\n', w->in.len)) != NULL) {
		*nl = '\0';
		if (w->in.data[0] == 'T' && w->in.data[1] == ' ') {
			/* A TLS session for the next worker to resume. */
			if (tls_cache_import(d->wc.tls, w->in.data + 2) < 0)
				log_warnx("delivery process %ld sent a bad TLS "
				    "session; ignored", (long)w->pid);
			explicit_bzero(w->in.data, (size_t)(nl - w->in.data));
		} else if (w->in.data[0] == 'A' && w->in.data[1] == ' ') {
			/* A refused login: ask exec: tables afresh. */
			if (d->wc.sasl_maps != NULL)
				maps_forget(d->wc.sasl_maps, w->in.data + 2);
		} else if (worker_result_parse(w->in.data, &r) == 0)
			qmgr_result(&d->q, &r, w->pid);
		else
			log_warnx("delivery process %ld sent a malformed "
			    "result; ignored", (long)w->pid);
		buf_consume(&w->in, (size_t)(nl - w->in.data) + 1);
	}
	return eof;
}

/* Forget a worker whose pipe closed. */
static void
worker_close(struct daemon *d, size_t i)
{
	qmgr_worker_gone(&d->q, d->w[i].pid);
	close(d->w[i].fd);
	buf_free(&d->w[i].in);
	d->w[i] = d->w[--d->nw];
}

/* Reap exited children. */
static void
reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (WIFSIGNALED(status))
			log_warnx("delivery process %ld killed by signal %d",
			    (long)pid, WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warnx("delivery process %ld exited with status %d",
			    (long)pid, WEXITSTATUS(status));
	}
}

/* Re-read main.cf on SIGHUP; keep the old one when the new one is bad. */
static void
reload(struct daemon *d)
{
	char err[512];
	struct config *cf = config_load(config_dir(d->cf), err, sizeof(err));

	if (cf == NULL || daemon_cfg(d, cf, err, sizeof(err)) < 0) {
		log_warnx("SIGHUP: keeping the running configuration: %s", err);
		config_free(cf);
		return;
	}
	config_free(d->cf);
	d->cf = cf;
	d->q.min_backoff = conf_time(cf, "minimal_backoff_time");
	d->q.max_backoff = conf_time(cf, "maximal_backoff_time");
	log_info("reloaded configuration from %s/main.cf", config_dir(cf));
}

/* Drain the signal self-pipe; returns 1 when asked to stop. */
static int
signals_drain(struct daemon *d)
{
	unsigned char c;
	int stop = 0;

	while (read(d->sig_fd[0], &c, 1) == 1) {
		if (c == SIGTERM || c == SIGINT)
			stop = 1;
		else if (c == SIGHUP)
			reload(d);
		else if (c == SIGCHLD)
			reap();
	}
	return stop;
}

/* Milliseconds until the next timed event. */
static int
next_timeout(struct daemon *d)
{
	double now = now_real(), t = d->next_rescan, due;

	due = qmgr_next_due(&d->q);
	if (due > 0 && due < t && d->nw < d->maxw)
		t = due;
	if (t <= now)
		return 0;
	if (t - now > 3600)
		return 3600 * 1000;
	return (int)((t - now) * 1000) + 1;
}

/* One poll round; returns 1 when asked to stop. */
static int
poll_once(struct daemon *d, int timeout)
{
	struct pollfd *pfd = xcalloc(d->nw + 3, sizeof(*pfd));
	size_t np = 0;
	int stop = 0;

	pfd[np++] = (struct pollfd){ .fd = d->sig_fd[0], .events = POLLIN };
	pfd[np++] = (struct pollfd){ .fd = d->ino_fd, .events = POLLIN };
	pfd[np++] = (struct pollfd){ .fd = d->ctl_fd, .events = POLLIN };
	for (size_t i = 0; i < d->nw; i++)
		pfd[np++] = (struct pollfd){ .fd = d->w[i].fd, .events = POLLIN };
	if (poll(pfd, np, timeout) < 0 && errno != EINTR)
		fatal("poll");
	if (pfd[0].revents)
		stop = signals_drain(d);
	if (pfd[1].revents) {
		char ev[4096];
		while (read(d->ino_fd, ev, sizeof(ev)) > 0)
			;
		qmgr_pickup(&d->q);
	}
	if (pfd[2].revents)
		ctl_serve(d);
	/* Workers from the end, since worker_close reorders the array. */
	for (size_t i = np; i-- > 3;) {
		if (pfd[i].revents && worker_input(d, &d->w[i - 3]))
			worker_close(d, i - 3);
	}
	free(pfd);
	return stop;
}

/* SIGTERM: let running transactions finish, within a bound. */
static void
shutdown_workers(struct daemon *d)
{
	int64_t deadline = now_mono_ms() + STOP_GRACE_MS;

	while (d->nw > 0 && now_mono_ms() < deadline)
		(void)poll_once(d, 200);
	for (size_t i = 0; i < d->nw; i++)
		kill(d->w[i].pid, SIGKILL);
	while (d->nw > 0)
		(void)poll_once(d, 200);
	reap();
}

/* The daemon's main loop. */
int
loop_run(struct config *cf)
{
	struct daemon d;
	char err[600];

	memset(&d, 0, sizeof(d));
	d.cf = cf;
	d.ctl_fd = -1;
	if (qmgr_init(&d.q, conf_str(cf, "queue_directory"),
	    conf_time(cf, "minimal_backoff_time"),
	    conf_time(cf, "maximal_backoff_time")) < 0)
		fatalx("queue_directory path too long");
	if (daemon_cfg(&d, cf, err, sizeof(err)) < 0)
		fatalx_status(EX_CONFIG, "%s", err);
	signals_setup(&d);
	d.ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d.ino_fd < 0 || inotify_add_watch(d.ino_fd, d.q.dir[QD_NEW],
	    IN_MOVED_TO | IN_CREATE | IN_ONLYDIR) < 0)
		log_warn("inotify on %s failed; new mail waits for the "
		    "periodic scan (%d s)", d.q.dir[QD_NEW], RESCAN_SECS);
	d.ctl_fd = ctl_listen(&d);
	qmgr_recover(&d.q);
	log_info("daemon started -- postern, queue directory %s",
	    conf_str(cf, "queue_directory"));
	d.next_rescan = now_real() + RESCAN_SECS;
	for (;;) {
		schedule(&d);
		if (poll_once(&d, next_timeout(&d)))
			break;
		if (now_real() >= d.next_rescan) {
			qmgr_pickup(&d.q);
			qmgr_scan_deferred(&d.q);
			d.next_rescan = now_real() + RESCAN_SECS;
		}
	}
	log_info("terminating on signal; waiting for delivery processes");
	shutdown_workers(&d);
	qmgr_free(&d.q);
	worker_cfg_free(&d.wc);
	free(d.w);
	if (d.ctl_fd >= 0)
		close(d.ctl_fd);
	close(d.ino_fd);
	config_free(d.cf);
	return 0;
}
