/*
 * loop.c - posternd's event loop: pickup, scheduling, workers, control.
 *
 * Scheduling is deliberately simple: due messages are handed to workers
 * in batches, one relay per worker, at most
 * smtp_destination_concurrency_limit workers (bounded by
 * default_process_limit) at a time. A worker that dies costs a retry,
 * never the daemon.
 *
 * Few workers, large batches: one pipelined session delivers thousands
 * of messages a second, while every forked worker costs the memory of a
 * process (its page tables map the daemon's whole table). A relay gets
 * one worker; another one only for each WORKER_BACKLOG messages still
 * waiting for it. A batch is at most BATCH_MAX messages, so a backlog
 * of thousands uses a handful of connections.
 *
 * The table is looked at only when something may have changed: a worker
 * ended (its slot is free), a message became due (new mail, a flush, a
 * retry time reached: qmgr's next_wake), or the configuration changed.
 * Results streaming in from workers cost no pass over the table.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#include "deliver/bounce.h"
#include "deliver/ctlsrv.h"
#include "deliver/loop.h"
#include "deliver/qmgr.h"
#include "deliver/route.h"
#include "spool/qfile.h"
#include "spool/spool.h"
#include "deliver/worker.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define BATCH_MAX	5000	/* messages per worker */
#define WORKER_BACKLOG	20000	/* waiting messages per extra worker */
#define COLLECT_MAX	20000	/* due messages routed per round */
#define STOP_GRACE_MS	10000	/* SIGTERM: let transactions finish */
#define FORK_RETRY_SECS	10	/* no pipe or process: try the batch again */

struct wproc {
	pid_t		pid;
	int		fd;
	struct buf	in;
	char		*hop;		/* the relay it delivers to */
};

struct daemon {
	struct config	*cf;
	struct qmgr	 q;
	struct worker_cfg wc;
	struct bounce_cfg bc;
	struct wproc	*w;
	size_t		 nw;
	size_t		 maxw;
	int		 ino_fd;
	int		 ctl_fd;
	struct ctlconns	 cc;		/* open control connections */
	int		 sig_fd[2];
	double		 next_rescan;
	int		 kick;		/* look at the table again */
	double		 rescan_secs;	/* queue_run_delay */
	const struct loop_hooks *h;
	char		 restart_why[700];	/* set: end, for a fresh daemon */
};

/* Install the handlers that feed the self-pipe. */
static void
signals_setup(struct daemon *d)
{
	if (signals_to_pipe(d->sig_fd) < 0)
		fatal("pipe");
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
	bounce_cfg_load(&d->bc, cf);
	d->q.bounce = &d->bc;
	d->maxw = (size_t)conf_int(cf, "smtp_destination_concurrency_limit");
	if (d->maxw > (size_t)conf_int(cf, "default_process_limit"))
		d->maxw = (size_t)conf_int(cf, "default_process_limit");
	/* The safety net behind inotify; retries have their own times. */
	d->rescan_secs = (double)conf_time(cf, "queue_run_delay");
	return 0;
}

/* Whether cf would start a daemon (see loop.h). */
int
loop_config_check(struct config *cf, char *err, size_t errlen)
{
	struct worker_cfg wc;
	char active[PATH_BUF];

	if (spool_path(conf_str(cf, "queue_directory"), QD_ACTIVE, active,
	    sizeof(active)) < 0) {
		snprintf(err, errlen, "queue_directory path too long");
		return -1;
	}
	if (worker_cfg_build(&wc, cf, active, err, errlen) < 0)
		return -1;
	worker_cfg_free(&wc);
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
	    chmod(sun.sun_path, 0666) < 0 || listen(fd, 64) < 0) {
		log_warn("cannot listen on %s; postern flush will not work",
		    sun.sun_path);
		close(fd);
		return -1;
	}
	return fd;
}

/* The control request "flush": everything deferred is due now. */
static void
flush_all(void *arg)
{
	struct daemon *d = arg;

	/* A table just compiled counts for this flush. */
	worker_cfg_recheck(&d->wc);
	qmgr_pickup(&d->q);
	qmgr_scan_deferred(&d->q);
	qmgr_flush(&d->q);
	log_info("flush requested: retrying deferred mail now");
}

/*
 * The control socket's part of a poll round: pfd holds the listening
 * socket, then the nc connections open when the round began. Requests
 * are read and answered without blocking (ctlsrv.h).
 */
static void
ctl_round(struct daemon *d, const struct pollfd *lpfd,
    const struct pollfd *pfd, size_t nc)
{
	struct ctlsrv c = { &d->q, &d->wc.rt.rw, d->cf, flush_all, d };

	/* From the end: a closed connection's slot takes the last one. */
	for (size_t i = nc; i-- > 0;)
		/* A request served may have made mail due (flush...);
		   bytes dribbled in have not. */
		if (pfd[i].revents && ctlsrv_input(&d->cc, i, &c))
			d->kick = 1;
	if (lpfd->revents)
		ctlsrv_accept(&d->cc, d->ctl_fd, d->cf);
	ctlsrv_expire(&d->cc, now_mono_ms());
}

/* One message of a scheduling round: the recipients for one relay. */
struct pick {
	struct qmsg	*m;
	const char	*hop;		/* the relay, as route_resolve gave it */
	size_t		*idx;		/* the recipients to try there */
	size_t		 nidx;
	int		 more_due;	/* m->more_due when it was picked */
};

/*
 * A batch that got no worker stays due; without a later time the loop
 * would retry the fork at once, forever, burning the CPU of a machine
 * that is already short of processes or descriptors.
 */
static void
batch_postpone(struct pick *pk, size_t n)
{
	double later = now_real() + FORK_RETRY_SECS;

	for (size_t i = 0; i < n; i++)
		pk[i].m->next_try = later;
}

/* Fork a worker for a batch of messages for one relay. */
static void
start_worker(struct daemon *d, struct pick *pk, size_t n)
{
	struct job_msg *jobs;
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		log_warn("cannot create a pipe for a delivery process");
		batch_postpone(pk, n);
		return;
	}
	/* The relay and its fallbacks, with policies from tables that
	   may have changed. */
	if (worker_cfg_dest(&d->wc, pk[0].hop) < 0)
		log_warnx("%s", d->wc.dest[0].why);
	jobs = xcalloc(n, sizeof(*jobs));
	for (size_t i = 0; i < n; i++) {
		strlcpy(jobs[i].qid, pk[i].m->qid, sizeof(jobs[i].qid));
		jobs[i].active_time = pk[i].m->active_time;
		jobs[i].st = &pk[i].m->st;
		jobs[i].idx = pk[i].idx;
		jobs[i].nidx = pk[i].nidx;
		pk[i].idx = NULL;
		/* The daemon reads the password table; workers inherit. */
		for (size_t ri = 0; ri < d->wc.ndest; ri++)
			if (worker_cfg_creds(&d->wc, pk[i].m->sender, ri,
			    &jobs[i].login[ri]) < 0)
				log_warnx("%s: %s", jobs[i].qid,
				    jobs[i].login[ri].why);
	}
	pid = fork();
	if (pid < 0) {
		log_warn("cannot fork a delivery process");
		close(pfd[0]);
		close(pfd[1]);
		for (size_t i = 0; i < n; i++)
			job_msg_clear(&jobs[i]);
		free(jobs);
		batch_postpone(pk, n);
		return;
	}
	if (pid == 0) {
		/* The worker keeps only its result pipe and the log. */
		log_child();
		fds_close_except(pfd[1], log_fd());
		worker_run(&d->wc, jobs, n, pfd[1]);
	}
	close(pfd[1]);
	for (size_t i = 0; i < n; i++)
		job_msg_clear(&jobs[i]);
	free(jobs);
	set_nonblock(pfd[0]);
	for (size_t i = 0; i < n; i++)
		pk[i].m->worker = pid;
	d->w = xreallocarray(d->w, d->nw + 1, sizeof(*d->w));
	memset(&d->w[d->nw], 0, sizeof(d->w[d->nw]));
	d->w[d->nw].pid = pid;
	d->w[d->nw].fd = pfd[0];
	d->w[d->nw].hop = xstrdup(pk[0].hop);
	d->nw++;
}

/*
 * A recipient the daemon settles itself (transport_maps error:,
 * discard:, retry:, a failed lookup), logged as Postfix's error,
 * discard and retry services log.
 */
static void
settle_rcpt(struct daemon *d, struct qmsg *m, size_t i, const char *service,
    int kind, const char *dsn, const char *text)
{
	struct smtp_result r;
	enum verdict v;
	double now = now_real();
	char orig[1100] = "";

	memset(&r, 0, sizeof(r));
	r.kind = kind;
	strlcpy(r.dsn, dsn, sizeof(r.dsn));
	strlcpy(r.text, text, sizeof(r.text));
	v = kind == 2 ? V_SENT : trouble_decide(&d->wc.pol, &r, m->arrival,
	    now, m->null_sender);
	if (m->orig[i] != NULL)
		snprintf(orig, sizeof(orig), ", orig_to=<%s>", m->orig[i]);
	log_set_ident(service);
	log_info("%s: to=<%s>%s, relay=none, delay=%.2f, delays=%.2f/0/0/0, "
	    "dsn=%s, status=%s (%s)", m->qid, m->rcpt[i], orig,
	    now - m->arrival, now - m->arrival, dsn, verdict_status(v), text);
	log_set_ident("postern/qmgr");
	qmgr_rcpt_local(&d->q, m, i, v, dsn, text);
}

/*
 * Route m's recipients that need a try: those for the first relay met
 * go into pk (*hop names it); transport error:/discard:/retry: and
 * failed lookups are settled here; recipients for other relays wait for
 * the next round (m->more), which takes only the recipients not routed
 * in this cycle (m->tried), so a deferred recipient keeps its backoff
 * and every relay gets its turn. Returns 1 when pk holds work, 0 when m
 * was settled (and may be gone).
 */
static int
route_msg(struct daemon *d, struct qmsg *m, struct pick *pk, char **hop)
{
	struct route rt;
	char err[600];

	memset(pk, 0, sizeof(*pk));
	pk->m = m;
	pk->more_due = m->more_due;
	/* Due from its backoff, a flush or new: a new cycle. */
	if (!m->more_due)
		memset(m->tried, 0, m->st.n);
	m->more_due = 0;
	*hop = NULL;
	if (!m->expanded && qmgr_expand(&d->q, m, err, sizeof(err)) < 0) {
		log_warnx("%s: cannot expand aliases: %s", m->qid, err);
		for (size_t i = 0; i < m->st.n; i++)
			if (m->st.r[i].st == RS_PENDING ||
			    m->st.r[i].st == RS_DEFERRED)
				settle_rcpt(d, m, i, "postern/qmgr", 4, "4.3.0",
				    err);
		qmgr_settle(&d->q, m);
		return 0;
	}
	pk->idx = xcalloc(m->st.n + 1, sizeof(*pk->idx));
	for (size_t i = 0; i < m->st.n; i++) {
		if ((m->st.r[i].st != RS_PENDING &&
		    m->st.r[i].st != RS_DEFERRED) || m->tried[i])
			continue;
		if (route_resolve(&d->wc.rt, m->sender, m->rcpt[i], &rt, err,
		    sizeof(err)) < 0) {
			m->tried[i] = 1;
			settle_rcpt(d, m, i, "postern/qmgr", 4, "4.3.0", err);
			continue;
		}
		if (rt.kind != RT_RELAY)
			m->tried[i] = 1;
		switch (rt.kind) {
		case RT_ERROR:
			settle_rcpt(d, m, i, "postern/error", 5, rt.dsn, rt.text);
			break;
		case RT_RETRY:
			settle_rcpt(d, m, i, strcmp(rt.source, "transport_maps") ?
			    "postern/qmgr" : "postern/retry", 4, rt.dsn, rt.text);
			break;
		case RT_DISCARD:
			settle_rcpt(d, m, i, "postern/discard", 2, rt.dsn,
			    rt.text);
			break;
		case RT_RELAY:
			if (*hop == NULL)
				*hop = xstrdup(rt.nexthop);
			if (strcasecmp(*hop, rt.nexthop) == 0) {
				m->tried[i] = 1;
				pk->idx[pk->nidx++] = i;
			} else
				m->more = 1;
			break;
		}
	}
	if (pk->nidx > 0)
		return 1;
	free(pk->idx);
	pk->idx = NULL;
	free(*hop);
	*hop = NULL;
	m->more = 0;
	qmgr_settle(&d->q, m);
	return 0;
}

/* Order picks by relay, then by arrival. */
static int
pick_cmp(const void *a, const void *b)
{
	const struct pick *x = a, *y = b;
	int c = strcasecmp(x->hop, y->hop);

	if (c != 0)
		return c;
	return (x->m->arrival > y->m->arrival) - (x->m->arrival < y->m->arrival);
}

/* Workers running for relay hop. */
static size_t
workers_for(const struct daemon *d, const char *hop)
{
	size_t k = 0;

	for (size_t i = 0; i < d->nw; i++)
		if (d->w[i].hop != NULL && strcasecmp(d->w[i].hop, hop) == 0)
			k++;
	return k;
}

/*
 * How many new workers a relay with backlog waiting messages gets: one
 * when it has none, and one more for each full WORKER_BACKLOG messages
 * that would still wait after the batches given out; at most share.
 */
static size_t
workers_wanted(const struct daemon *d, const char *hop, size_t backlog,
    size_t share)
{
	size_t w;

	if (workers_for(d, hop) == 0)
		w = 1 + (backlog > BATCH_MAX ?
		    (backlog - BATCH_MAX) / WORKER_BACKLOG : 0);
	else
		w = backlog / WORKER_BACKLOG;
	return w < share ? w : share;
}

/*
 * Hand due messages to workers, within the concurrency limit: each
 * worker gets messages for one relay; a relay's share of the free
 * workers follows its share of the due mail, at least one each, and
 * workers_wanted() keeps their number low.
 */
static void
schedule(struct daemon *d)
{
	struct qmsg **due;
	struct pick *pk;
	char **hops;
	size_t n, np = 0, slots, start, end, left, w, per, settled = 0;
	size_t started = 0;
	double now = now_real();

	if (d->nw >= d->maxw)
		return;
	/* A table only root may read now: restart before any lookup fails. */
	if (d->h->restart)
		worker_cfg_refresh(&d->wc);
	if (d->restart_why[0])
		return;
	slots = d->maxw - d->nw;
	due = xcalloc(COLLECT_MAX, sizeof(*due));
	n = qmgr_due(&d->q, now, due, COLLECT_MAX);
	pk = xcalloc(n + 1, sizeof(*pk));
	hops = xcalloc(n + 1, sizeof(*hops));
	for (size_t i = 0; i < n; i++) {
		struct qmsg *m = due[i];
		if (qmgr_activate(&d->q, m) < 0)
			continue;
		if (route_msg(d, m, &pk[np], &hops[np])) {
			pk[np].hop = hops[np];
			np++;
		} else
			settled++;
	}
	qsort(pk, np, sizeof(*pk), pick_cmp);
	left = slots;
	for (start = 0; start < np && left > 0; start = end) {
		for (end = start + 1; end < np &&
		    strcasecmp(pk[end].hop, pk[start].hop) == 0; end++)
			;
		w = (end - start) * slots / np;
		if (w == 0)
			w = 1;
		if (w > left)
			w = left;
		w = workers_wanted(d, pk[start].hop, end - start, w);
		if (w == 0)
			continue;
		per = (end - start + w - 1) / w;
		if (per > BATCH_MAX)
			per = BATCH_MAX;
		for (size_t i = start, k = 0; i < end && k < w; i += per, k++) {
			start_worker(d, pk + i, end - i < per ? end - i : per);
			left--;
			started++;
		}
	}
	/* More was due than one round takes: go on while it gets done. */
	if (n == COLLECT_MAX && (started > 0 || settled > 0))
		d->kick = 1;
	/* Picks without a worker stay due for the next round, as they
	   were: their recipients are not tried in this cycle. */
	for (size_t i = 0; i < np; i++) {
		struct qmsg *m = pk[i].m;
		if (m->worker == 0) {
			for (size_t k = 0; pk[i].idx != NULL && k < pk[i].nidx;
			    k++)
				m->tried[pk[i].idx[k]] = 0;
			m->more = 0;
			m->more_due = pk[i].more_due;
		}
		free(pk[i].idx);
	}
	for (size_t i = 0; i < n; i++)
		free(hops[i]);
	free(hops);
	free(pk);
	free(due);
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
	qmgr_admin_idle(&d->q, &d->wc.rt.rw);	/* requeues that waited */
	close(d->w[i].fd);
	buf_free(&d->w[i].in);
	free(d->w[i].hop);
	d->w[i] = d->w[--d->nw];
	/* A free slot, and its relay's waiting mail may now get it. */
	d->kick = 1;
}

/* Reap exited children; a queue listing's leaves the count of them. */
static void
reap(struct daemon *d)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (ctlsrv_reaped(&d->cc, pid))
			continue;	/* its reader may have gone: no news */
		if (WIFSIGNALED(status))
			log_warnx("delivery process %ld killed by signal %d",
			    (long)pid, WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warnx("delivery process %ld exited with status %d",
			    (long)pid, WEXITSTATUS(status));
	}
}

/*
 * SIGHUP under a supervisor: this process may no longer read what root
 * opened (the password table, TLS keys), so a fresh daemon started by
 * the supervisor, as root, reads everything. A main.cf that does not
 * parse keeps this one running, as a reload does.
 */
static void
reload_restart(struct daemon *d)
{
	char err[512];
	struct config *cf;

	if (d->restart_why[0])
		return;
	cf = config_load(config_dir(d->cf), err, sizeof(err));
	if (cf == NULL) {
		log_warnx("SIGHUP: keeping the running configuration: %s", err);
		return;
	}
	config_free(cf);
	(void)svc_notify("RELOADING=1");
	snprintf(d->restart_why, sizeof(d->restart_why), "SIGHUP: restarting "
	    "the daemon to read %s/main.cf and the tables as root",
	    config_dir(d->cf));
	log_info("%s", d->restart_why);
}

/*
 * The maps layer's hook: a table file changed into one this user may
 * not read (root's 0600 sasl_passwd, edited or compiled again). Only
 * root can read it: end for a fresh daemon.
 */
static void
table_denied(void *arg, const char *title)
{
	struct daemon *d = arg;

	if (d->restart_why[0])
		return;
	(void)svc_notify("RELOADING=1");
	snprintf(d->restart_why, sizeof(d->restart_why), "%s: changed, and "
	    "user %s may not read it; restarting the daemon so that root "
	    "reads it", title, d->h->user);
	log_info("%s", d->restart_why);
}

/* Re-read main.cf on SIGHUP; keep the old one when the new one is bad. */
static void
reload(struct daemon *d)
{
	char err[512];
	struct config *cf;

	if (d->h->restart) {
		reload_restart(d);
		return;
	}
	(void)svc_notify("RELOADING=1");
	cf = config_load(config_dir(d->cf), err, sizeof(err));
	if (cf == NULL || daemon_cfg(d, cf, err, sizeof(err)) < 0) {
		log_warnx("SIGHUP: keeping the running configuration: %s", err);
		config_free(cf);
		(void)svc_notify("READY=1");
		return;
	}
	config_free(d->cf);
	d->cf = cf;
	ctlsrv_reconfigured(&d->cc);
	d->q.min_backoff = conf_time(cf, "minimal_backoff_time");
	d->q.max_backoff = conf_time(cf, "maximal_backoff_time");
	d->kick = 1;
	log_info("reload configuration %s", config_dir(cf));
	(void)svc_notify("READY=1");
}

/* Drain the signal self-pipe; returns the signal that asks us to stop,
   or 0. */
static int
signals_drain(struct daemon *d)
{
	unsigned char c;
	int stop = 0;

	while (read(d->sig_fd[0], &c, 1) == 1) {
		if (c == SIGTERM || c == SIGINT)
			stop = c;
		else if (c == SIGHUP)
			reload(d);
		else if (c == SIGCHLD)
			reap(d);
	}
	return stop;
}

/* Milliseconds until the next timed event. */
static int
next_timeout(struct daemon *d)
{
	double now = now_real(), t = d->next_rescan, due;
	int64_t ms, ctl;

	due = d->q.next_wake;
	if (d->kick)
		return 0;
	if (due > 0 && due < t && d->nw < d->maxw)
		t = due;
	if (t <= now)
		return 0;
	if (t - now > 3600)
		t = now + 3600;
	ms = (int64_t)((t - now) * 1000) + 1;
	/* A control connection's deadline, when it comes first. */
	if ((ctl = ctlsrv_next_deadline(&d->cc)) >= 0 &&
	    ctl - now_mono_ms() < ms)
		ms = ctl > now_mono_ms() ? ctl - now_mono_ms() : 0;
	return (int)ms;
}

/* One poll round; returns the stop signal, or 0. */
static int
poll_once(struct daemon *d, int timeout)
{
	struct pollfd *pfd = xcalloc(d->nw + d->cc.n + 3, sizeof(*pfd));
	size_t np = 0, nw = d->nw, nc = d->cc.n;
	int stop = 0;

	pfd[np++] = (struct pollfd){ .fd = d->sig_fd[0], .events = POLLIN };
	pfd[np++] = (struct pollfd){ .fd = d->ino_fd, .events = POLLIN };
	pfd[np++] = (struct pollfd){ .fd = d->ctl_fd, .events = POLLIN };
	for (size_t i = 0; i < nw; i++)
		pfd[np++] = (struct pollfd){ .fd = d->w[i].fd, .events = POLLIN };
	for (size_t i = 0; i < nc; i++)
		pfd[np++] = (struct pollfd){ .fd = d->cc.c[i].fd,
		    .events = POLLIN };
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
	ctl_round(d, &pfd[2], pfd + 3 + nw, nc);
	/* Workers from the end, since worker_close reorders the array. */
	for (size_t i = 3 + nw; i-- > 3;) {
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
	reap(d);
}

/* qmgr's alias hook: does env have a local recipient? */
static int
alias_local(void *arg, const struct qenv *env)
{
	struct daemon *d = arg;

	if (!d->wc.rt.have_aliases)
		return 0;
	for (size_t i = 0; i < env->nrcpt; i++)
		if (router_is_local(&d->wc.rt, env->rcpt[i].addr,
		    env->rcpt[i].orig))
			return 1;
	return 0;
}

/* qmgr's alias hook: expand. */
static int
alias_expand(void *arg, const struct qenv *in, struct qenv *out, char *err,
    size_t errlen)
{
	struct daemon *d = arg;

	return route_expand(&d->wc.rt, in, out, NULL, NULL, err, errlen);
}

/*
 * Once the queue is empty and no worker runs, give the heap a large
 * drain grew back to the system: an idle daemon stays small, and so do
 * the next workers, whose page tables start as copies of the daemon's.
 */
static void
trim_when_idle(struct daemon *d, int *trimmed)
{
	if (d->q.n > 0 || d->nw > 0) {
		*trimmed = 0;
		return;
	}
	if (!*trimmed)
		(void)malloc_trim(0);
	*trimmed = 1;
}

/* Tell the supervisor (if any) that the daemon is ready. */
static void
tell_ready(const struct loop_hooks *h)
{
	char c = 'R';

	if (h->ready_fd < 0)
		return;
	(void)!write(h->ready_fd, &c, 1);
	close(h->ready_fd);
}

/* The daemon's main loop. */
int
loop_run(struct config *cf, const struct loop_hooks *h)
{
	struct daemon d;
	char err[600];
	int trimmed = 0, status = 0, sig = 0;

	memset(&d, 0, sizeof(d));
	d.cf = cf;
	d.ctl_fd = -1;
	d.h = h;
	if (qmgr_init(&d.q, conf_str(cf, "queue_directory"),
	    conf_time(cf, "minimal_backoff_time"),
	    conf_time(cf, "maximal_backoff_time")) < 0)
		fatalx("queue_directory path too long");
	if (daemon_cfg(&d, cf, err, sizeof(err)) < 0)
		fatalx_status(EX_CONFIG, "%s", err);
	/* Root's files are open: give up root before the spool is touched. */
	if (h->drop != NULL)
		h->drop(h->arg);
	if (h->restart)
		maps_on_denied(table_denied, &d);
	d.q.alias.local = alias_local;
	d.q.alias.expand = alias_expand;
	d.q.alias.arg = &d;
	signals_setup(&d);
	d.ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d.ino_fd < 0 || inotify_add_watch(d.ino_fd, d.q.dir[QD_NEW],
	    IN_MOVED_TO | IN_CREATE | IN_ONLYDIR) < 0)
		log_warn("inotify on %s failed; new mail waits for the "
		    "periodic scan (queue_run_delay, %.0f s)", d.q.dir[QD_NEW],
		    d.rescan_secs);
	d.ctl_fd = ctl_listen(&d);
	qmgr_recover(&d.q);
	log_info("daemon started -- postern, queue directory %s, running as "
	    "user %s", conf_str(cf, "queue_directory"), h->user);
	(void)svc_notify("READY=1");
	tell_ready(h);
	d.next_rescan = now_real() + d.rescan_secs;
	d.kick = 1;
	for (;;) {
		if (d.kick || (d.q.next_wake > 0 &&
		    d.q.next_wake <= now_real())) {
			d.kick = 0;
			schedule(&d);
		}
		trim_when_idle(&d, &trimmed);
		if (d.restart_why[0] ||
		    (sig = poll_once(&d, next_timeout(&d))) != 0)
			break;
		if (now_real() >= d.next_rescan) {
			qmgr_pickup(&d.q);
			qmgr_scan_deferred(&d.q);
			qmgr_expire_held(&d.q);
			d.next_rescan = now_real() + d.rescan_secs;
		}
	}
	if (d.restart_why[0]) {
		/* Logged when set. RELOADING=1 was sent: the fresh daemon
		   says READY=1. */
		status = LOOP_EXIT_RESTART;
	} else {
		/* Postfix's master words, which log readers know. */
		log_info("terminating on signal %d", sig);
		(void)svc_notify("STOPPING=1");
	}
	if (d.nw > 0)
		log_info("waiting up to %d s for %zu delivery processes",
		    STOP_GRACE_MS / 1000, d.nw);
	shutdown_workers(&d);
	maps_on_denied(NULL, NULL);
	qmgr_free(&d.q);
	worker_cfg_free(&d.wc);
	free(d.w);
	ctlsrv_close_all(&d.cc);
	if (d.ctl_fd >= 0)
		close(d.ctl_fd);
	close(d.ino_fd);
	config_free(d.cf);
	return status;
}
