/*
 * worker.c - deliver a batch of messages over one SMTP session.
 *
 * Runs in a forked child. For every recipient attempt it logs exactly one
 * line in Postfix's format and writes one result record to the parent.
 * It never touches the spool except to read the queue files.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>

#include <bsd/string.h>

#include "deliver/worker.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/dsn.h"
#include "spool/qfile.h"

/* Session state carried from one message of the batch to the next. */
struct wsess {
	struct smtp_session	*s;
	size_t			 ri;		/* the relay it is open to */
	int			 fd;		/* the result pipe */
	const char		*user;		/* the session's SASL login */
	const char		*secret;
	int			 down;		/* connecting failed once */
	struct smtp_result	 down_res;	/* ...and why */
	char			 down_relay[330]; /* "none", or the peer met */
};

/* Report one recipient to the parent (relayed: see worker.h). */
static void
report(int fd, const char *qid, size_t idx, enum verdict v,
    const struct smtp_result *r, int relayed)
{
	char line[800];
	int n;

	n = snprintf(line, sizeof(line), "R %s %zu %c %s %s\n", qid, idx,
	    v == V_SENT ? (relayed ? 'L' : 'S') : v == V_BOUNCE ? 'B' : 'D',
	    r->dsn[0] ? r->dsn : "4.0.0", r->text);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)strlen(line);
	for (char *p = line; p < line + n - 1; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	line[n - 1] = '\n';
	if (fs_write_all(fd, line, (size_t)n) < 0)
		fatal("cannot report to the queue manager");
}

/* Log one Postfix-format delivery line and report it. */
static void
finish_rcpt(const struct worker_cfg *wc, int fd, const struct job_msg *jm,
    const struct qenv *env, size_t idx, const struct smtp_result *r,
    const char *relay, double conn_s, double xfer_s)
{
	double now = now_real();
	struct smtp_result rr = *r;
	enum verdict v;
	char orig[1100] = "";
	double a, b;

	/* The relay's refusals become deferrals that name the fix. */
	trouble_explain(&wc->pol, &rr);
	r = &rr;
	v = trouble_decide(&wc->pol, r, env->arrival, now, env->sender[0] == '\0');
	if (env->rcpt[idx].orig)
		snprintf(orig, sizeof(orig), ", orig_to=<%s>", env->rcpt[idx].orig);
	a = jm->active_time - env->arrival;
	b = now - jm->active_time - conn_s - xfer_s;
	log_info("%s: to=<%s>%s, relay=%s, delay=%.2f, delays=%.2f/%.2f/%.2f/%.2f, "
	    "dsn=%s, status=%s (%s)", jm->qid, env->rcpt[idx].addr, orig,
	    relay, now - env->arrival, a < 0 ? 0 : a, b < 0 ? 0 : b, conn_s,
	    xfer_s, r->dsn, verdict_status(v), r->text);
	/* -N SUCCESS and a relay that will not report: we do (bounce.h). */
	report(fd, jm->qid, idx, v, r, v == V_SENT && r->relayed &&
	    env->notify != NULL && dsn_notify_wants(env->notify, "SUCCESS"));
}

/* Fill a result that applies to a whole message without a session. */
static void
local_result(struct smtp_result *r, const char *dsn, const char *text)
{
	memset(r, 0, sizeof(*r));
	r->kind = 4;
	strlcpy(r->dsn, dsn, sizeof(r->dsn));
	strlcpy(r->text, text, sizeof(r->text));
}

/*
 * 1 when the open (or failed) session can serve jm: the same SASL login
 * for the relay it is open to (the first relay when it failed).
 */
static int
same_login(const struct wsess *ws, const struct job_msg *jm)
{
	const struct job_login *lg = &jm->login[ws->s != NULL ? ws->ri : 0];

	if ((ws->user == NULL) != (lg->user == NULL))
		return 0;
	if (ws->user == NULL)
		return 1;
	return strcmp(ws->user, lg->user) == 0 &&
	    strcmp(ws->secret, lg->secret) == 0;
}

/* Tell the parent the relay refused the login found under key. */
static void
forget_login(int fd, const char *key)
{
	struct buf b = BUF_INIT;

	buf_addf(&b, "A %s\n", key);
	if (fs_write_all(fd, b.data, b.len) < 0)
		fatal("cannot report to the queue manager");
	buf_free(&b);
}

/* Hand TLS sessions made since the last call to the parent. */
static void
send_sessions(const struct worker_cfg *wc, int fd)
{
	struct buf b = BUF_INIT;

	if (wc->tls == NULL || tls_cache_export(wc->tls, &b) == 0)
		goto out;
	if (fs_write_all(fd, b.data, b.len) < 0)
		fatal("cannot report to the queue manager");
out:
	buf_free(&b);
}

/* Try one relay of the batch; the session, or NULL with *res. */
static struct smtp_session *
try_relay(const struct worker_cfg *wc, struct wsess *ws,
    const struct job_msg *jm, size_t ri, struct smtp_result *res,
    int *connected)
{
	const struct wdest *d = &wc->dest[ri];
	const struct job_login *lg = &jm->login[ri];
	struct smtp_report rep;
	struct smtp_opts o = wc->opts;
	struct smtp_auth a = wc->auth;
	struct smtp_session *s;

	memset(&rep, 0, sizeof(rep));
	*connected = 0;
	o.report = &rep;
	o.tls_policy = &d->tlsp;
	a.user = lg->user;
	a.secret = lg->secret;
	o.auth = lg->user != NULL ? &a : NULL;
	ws->user = lg->user;
	ws->secret = lg->secret;
	if ((s = smtp_open(&d->relay, &o, res)) != NULL) {
		ws->ri = ri;
		return s;
	}
	*connected = rep.connected;
	/* The host met: for an MX relay, the mail exchanger, not the
	   domain. */
	if (rep.connected)
		snprintf(ws->down_relay, sizeof(ws->down_relay), "%s[%s]:%s",
		    rep.host[0] ? rep.host : d->relay.host, rep.addr,
		    d->relay.port);
	else
		strlcpy(ws->down_relay, "none", sizeof(ws->down_relay));
	if (lg->key != NULL && res->auth)
		forget_login(ws->fd, lg->key);
	return NULL;
}

/*
 * Why relay ri cannot be tried for jm, in *res: 1 for the relay itself
 * (its TLS policy: the same for the whole batch), 2 for jm's own login
 * entry (only this message), 0 when it can be tried.
 */
static int
relay_unusable(const struct worker_cfg *wc, const struct job_msg *jm,
    size_t ri, struct smtp_result *res)
{
	if (wc->dest[ri].why[0]) {
		local_result(res, "4.3.5", wc->dest[ri].why);
		return 1;
	}
	if (jm->login[ri].why != NULL) {
		local_result(res, "4.3.5", jm->login[ri].why);
		return 2;
	}
	return 0;
}

/*
 * Open the batch's session: the route's relay, then each fallback relay
 * while none could be reached at all (smtp_fallback_relay: a relay that
 * answered and refused is not passed over). On failure remember why, and
 * the peer when one was reached (a TLS refusal logs relay=host[addr]:port,
 * as Postfix does; no connection at all logs relay=none).
 */
static struct smtp_session *
session_open(const struct worker_cfg *wc, struct wsess *ws,
    const struct job_msg *jm, struct smtp_result *res)
{
	struct smtp_session *s = NULL;
	int connected = 0;

	strlcpy(ws->down_relay, "none", sizeof(ws->down_relay));
	for (size_t ri = 0; ri < wc->ndest; ri++) {
		int why = relay_unusable(wc, jm, ri, res);
		/* A bad login entry of this sender is not the relay's fault:
		   the next message tries afresh. */
		if (why == 2 && ri == 0)
			return NULL;
		if (why != 0) {
			if (ri == 0)
				break;
			log_warnx("%s: smtp_fallback_relay %s skipped: %s",
			    jm->qid, wc->dest[ri].relay.text, res->text);
			continue;
		}
		if (ri > 0)
			log_info("%s: %s cannot be reached; trying "
			    "smtp_fallback_relay %s", jm->qid,
			    wc->dest[0].relay.text, wc->dest[ri].relay.text);
		if ((s = try_relay(wc, ws, jm, ri, res, &connected)) != NULL)
			return s;
		if (connected)
			break;
	}
	ws->down = 1;
	ws->down_res = *res;
	return NULL;
}

/*
 * The DSN parameters for recipients idx[0..n) of env: what the submitter
 * gave, and each recipient as submitted for ORCPT (before alias
 * expansion and smtp_generic_maps). dsn->orcpt is allocated.
 */
static void
worker_dsn(const struct qenv *env, const size_t *idx, size_t n,
    struct smtp_dsn *dsn)
{
	const char **orcpt = xcalloc(n + 1, sizeof(*orcpt));

	for (size_t i = 0; i < n; i++)
		orcpt[i] = env->rcpt[idx[i]].orig ? env->rcpt[idx[i]].orig :
		    env->rcpt[idx[i]].addr;
	dsn->notify = env->notify;
	dsn->ret = env->ret;
	dsn->envid = env->envid;
	dsn->orcpt = orcpt;
}

/*
 * Send one message over the open session in transactions of at most
 * smtp_destination_recipient_limit recipients each, and settle every
 * recipient. When the session breaks (a lost connection, a 421), it is
 * closed: the recipients of the later transactions are deferred, and
 * the next message of the batch opens a new session.
 */
static void
send_chunks(const struct worker_cfg *wc, struct wsess *ws,
    const struct job_msg *jm, const struct qenv *env, const size_t *idx,
    const char **rcpts, size_t n, const char *msg, size_t msglen,
    struct smtp_result *res, double conn_s)
{
	struct smtp_result lost;
	struct smtp_dsn dsn;
	char peer[330] = "none";

	memset(&dsn, 0, sizeof(dsn));
	memset(&lost, 0, sizeof(lost));
	size_t lim = wc->rcpt_limit > 0 ? wc->rcpt_limit : n;
	double t0, xfer_s;
	int rc;

	for (size_t c = 0; c < n; c += lim) {
		size_t k = n - c < lim ? n - c : lim;
		if (ws->s == NULL) {
			for (size_t i = c; i < c + k; i++)
				finish_rcpt(wc, ws->fd, jm, env, idx[i], &lost,
				    peer, conn_s, 0);
			continue;
		}
		t0 = now_real();
		worker_dsn(env, idx + c, k, &dsn);
		rc = smtp_send(ws->s, env->sender, rcpts + c, k, msg, msglen,
		    (env->flags & QF_8BIT) != 0, &dsn, res + c);
		free((void *)dsn.orcpt);
		dsn.orcpt = NULL;
		xfer_s = now_real() - t0;
		strlcpy(peer, smtp_peer(ws->s), sizeof(peer));
		for (size_t i = c; i < c + k; i++)
			finish_rcpt(wc, ws->fd, jm, env, idx[i], &res[i], peer,
			    conn_s, xfer_s);
		if (rc < 0) {
			smtp_close(ws->s);
			ws->s = NULL;
			local_result(&lost, "4.4.2", "");
			snprintf(lost.text, sizeof(lost.text), "not sent: the "
			    "session with %s ended in an earlier transaction "
			    "of this message", peer);
		}
		conn_s = 0;
	}
}

/* Deliver one message of the batch. */
static void
deliver_one(const struct worker_cfg *wc, struct wsess *ws,
    const struct job_msg *jm, int fd)
{
	struct buf data = BUF_INIT, out = BUF_INIT;
	struct qenv env;
	struct smtp_result one, *res = NULL;
	const char **rcpts = NULL;
	size_t *idx = NULL, n = 0, off;
	char path[PATH_BUF + QID_MAX + 2], err[600];
	double t0, conn_s = 0;
	int rw = 0;

	memset(&env, 0, sizeof(env));
	snprintf(path, sizeof(path), "%s/%s", wc->active_dir, jm->qid);
	if (fs_read_plain(path, &data, QFILE_MAX) < 0) {
		if (errno == ENOENT)	/* postern delete or hold meanwhile */
			log_info("%s: no longer in active/; not sent", jm->qid);
		else
			log_warn("%s: cannot read queue file %s", jm->qid,
			    path);
		goto out;
	}
	if (qfile_parse(data.data, data.len, &env, &off, err, sizeof(err)) < 0) {
		log_warnx("%s: queue file changed under delivery: %s", jm->qid, err);
		goto out;
	}
	rcpts = xcalloc(env.nrcpt + 1, sizeof(*rcpts));
	idx = xcalloc(env.nrcpt + 1, sizeof(*idx));
	for (size_t k = 0; k < jm->nidx; k++) {
		size_t i = jm->idx[k];
		if (i >= env.nrcpt || i >= jm->st->n)
			continue;
		idx[n++] = i;
	}
	if (n == 0)
		goto out;
	res = xcalloc(n, sizeof(*res));

	/* Another SASL login needs another session. */
	if (!same_login(ws, jm)) {
		if (ws->s != NULL)
			smtp_close(ws->s);
		ws->s = NULL;
		ws->down = 0;
	}
	/* This sender's login could not be looked up: never "no login". */
	if (jm->login[ws->s != NULL ? ws->ri : 0].why != NULL) {
		local_result(&one, "4.3.5", jm->login[ws->s != NULL ? ws->ri :
		    0].why);
		for (size_t i = 0; i < n; i++)
			finish_rcpt(wc, fd, jm, &env, idx[i], &one, "none", 0, 0);
		goto out;
	}
	/* Reasons to send nothing at all: the same for every recipient. */
	if (ws->down) {
		for (size_t i = 0; i < n; i++)
			finish_rcpt(wc, fd, jm, &env, idx[i], &ws->down_res,
			    ws->down_relay, 0, 0);
		goto out;
	}
	/* smtp_generic_maps and smtp_header_checks: what the relay sees. */
	{
		struct qenv sent;
		memset(&sent, 0, sizeof(sent));
		qenv_copy(&sent, &env);
		rw = worker_rewrite(wc, jm->qid, &sent, data.data + off,
		    env.size, &out, err, sizeof(err));
		if (rw < 0) {
			local_result(&one, "4.3.0", err);
			for (size_t i = 0; i < n; i++)
				finish_rcpt(wc, fd, jm, &env, idx[i], &one,
				    "none", 0, 0);
			qenv_free(&sent);
			goto out;
		}
		free(env.sender);
		env.sender = sent.sender;
		sent.sender = NULL;
		for (size_t i = 0; i < n; i++) {
			/* kept until the end: env owns the log's addresses */
			rcpts[i] = xstrdup(sent.rcpt[idx[i]].addr);
		}
		qenv_free(&sent);
	}
	/* smtp_send leaves a reused session clean (it resets an unfinished
	   transaction itself), so no RSET round trip between messages. */
	t0 = now_real();
	if (ws->s == NULL) {
		ws->s = session_open(wc, ws, jm, &one);
		if (ws->s == NULL) {
			conn_s = now_real() - t0;
			for (size_t i = 0; i < n; i++)
				finish_rcpt(wc, fd, jm, &env, idx[i], &one,
				    ws->down_relay, conn_s, 0);
			goto out;
		}
	}
	conn_s = now_real() - t0;
	send_chunks(wc, ws, jm, &env, idx, rcpts, n, rw ? out.data :
	    data.data + off, rw ? out.len : env.size, res, conn_s);
out:
	send_sessions(wc, fd);
	{
		char line[QID_MAX + 4];
		int len = snprintf(line, sizeof(line), "M %s\n", jm->qid);
		if (fs_write_all(fd, line, (size_t)len) < 0)
			fatal("cannot report to the queue manager");
	}
	free(res);
	if (rcpts != NULL)
		for (size_t i = 0; i < n; i++)
			free((char *)rcpts[i]);
	free(rcpts);
	free(idx);
	qenv_free(&env);
	buf_free(&data);
	buf_free(&out);
}

/* The worker's main: deliver the batch, then exit. */
void
worker_run(const struct worker_cfg *wc, const struct job_msg *msgs, size_t n,
    int fd)
{
	struct wsess ws;

	/* A worker must not outlive a killed daemon and deliver unseen. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	signal(SIGPIPE, SIG_IGN);
	/* A TERM or ^C for the whole process group (systemd, a terminal)
	   must not cut a transaction short: the daemon lets it finish and
	   kills what is still running after its grace period. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	log_set_ident("postern/smtp");
	memset(&ws, 0, sizeof(ws));
	ws.fd = fd;
	for (size_t i = 0; i < n; i++)
		deliver_one(wc, &ws, &msgs[i], fd);
	if (ws.s != NULL)
		smtp_close(ws.s);
	_exit(0);
}

/* Parse a result line. */
int
worker_result_parse(const char *line, struct wresult *out)
{
	const char *p = line, *sp;
	char *end;
	unsigned long v;
	size_t len;

	memset(out, 0, sizeof(*out));
	if ((line[0] != 'R' && line[0] != 'M') || line[1] != ' ')
		return -1;
	out->type = line[0];
	p = line + 2;
	sp = strchr(p, ' ');
	len = sp ? (size_t)(sp - p) : strlen(p);
	if (len == 0 || len >= sizeof(out->qid))
		return -1;
	memcpy(out->qid, p, len);
	out->qid[len] = '\0';
	if (!qid_valid(out->qid))
		return -1;
	if (out->type == 'M')
		return sp == NULL ? 0 : -1;
	if (sp == NULL)
		return -1;
	p = sp + 1;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || end == p || *end != ' ' || v > 1000000)
		return -1;
	out->idx = v;
	p = end + 1;
	switch (*p) {
	case 'S': out->verdict = V_SENT; break;
	case 'L': out->verdict = V_SENT; out->relayed = 1; break;
	case 'D': out->verdict = V_DEFER; break;
	case 'B': out->verdict = V_BOUNCE; break;
	default: return -1;
	}
	if (p[1] != ' ')
		return -1;
	p += 2;
	sp = strchr(p, ' ');
	len = sp ? (size_t)(sp - p) : strlen(p);
	if (len == 0 || len >= sizeof(out->dsn))
		return -1;
	memcpy(out->dsn, p, len);
	out->dsn[len] = '\0';
	strlcpy(out->text, sp ? sp + 1 : "", sizeof(out->text));
	return 0;
}
