/*
 * bounce.c - queue delivery status notifications to the sender (see
 * bounce.h; the notice itself is built by mail/dsn.c).
 *
 * A notice is written the way sendmail writes a message: a file in
 * incoming/tmp, fsync, rename into incoming/new, directory fsync
 * (spool_new_open and spool_new_commit). The daemon then picks it up
 * like any other message (inotify wakes it), routes it to the sender
 * and logs its own from=<> lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "conf/config.h"
#include "deliver/bounce.h"
#include "deliver/qmgr.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mail/dsn.h"
#include "spool/qfile.h"

/* The words of -N and the log lines, per kind of notice. */
static const struct {
	const char	*notify;	/* the -N word that asks for it */
	const char	*what;		/* Postfix's log wording */
} notice_kind[] = {
	[DSN_FAILED] = { "FAILURE", "sender non-delivery notification" },
	[DSN_DELAYED] = { "DELAY", "sender delay notification" },
	[DSN_RELAYED] = { "SUCCESS", "sender delivery status notification" },
};

/* Fill bc from cf. */
void
bounce_cfg_load(struct bounce_cfg *bc, const struct config *cf)
{
	memset(bc, 0, sizeof(*bc));
	strlcpy(bc->queue_dir, conf_str(cf, "queue_directory"),
	    sizeof(bc->queue_dir));
	strlcpy(bc->myhostname, conf_str(cf, "myhostname"),
	    sizeof(bc->myhostname));
	bc->size_limit = (size_t)conf_int(cf, "bounce_size_limit");
	bc->delay_warning = conf_time(cf, "delay_warning_time");
	bc->max_lifetime = conf_time(cf, "maximal_queue_lifetime");
}

/* A queue file read for a notice. */
struct original {
	struct buf	data;
	struct qenv	env;
	size_t		off;		/* the message starts here */
};

/* Read dir/qid; 0, or -1 (logged). */
static int
original_read(const char *dir, const char *qid, struct original *o)
{
	char path[PATH_BUF + QID_MAX + 2], err[256];

	memset(o, 0, sizeof(*o));
	snprintf(path, sizeof(path), "%s/%s", dir, qid);
	if (fs_read_plain(path, &o->data, QFILE_MAX) < 0) {
		log_warn("%s: cannot read the queue file for a notice to the "
		    "sender", qid);
		return -1;
	}
	if (qfile_parse(o->data.data, o->data.len, &o->env, &o->off, err,
	    sizeof(err)) < 0) {
		log_warnx("%s: cannot parse the queue file for a notice to the "
		    "sender: %s", qid, err);
		buf_free(&o->data);
		return -1;
	}
	return 0;
}

static void
original_free(struct original *o)
{
	qenv_free(&o->env);
	buf_free(&o->data);
}

/*
 * Build and commit one notice about the recipients i of o with sel[i]
 * set. Returns 0 with the notice's queue ID in nqid, or -1 (logged).
 */
static int
queue_notice(const struct bounce_cfg *bc, const struct qmsg *m,
    const struct original *o, const unsigned char *sel,
    enum dsn_action action, double now, char nqid[QID_MAX])
{
	struct spool_new sn;
	struct dsn_report r;
	struct dsn_rcpt *rc;
	struct qenv ne;
	struct buf text = BUF_INIT, file = BUF_INIT;
	char err[600];
	size_t n = 0;
	int flags, rc_ = -1;

	memset(&r, 0, sizeof(r));
	memset(&ne, 0, sizeof(ne));
	rc = xcalloc(m->st.n + 1, sizeof(*rc));
	for (size_t i = 0; i < m->st.n && i < o->env.nrcpt; i++) {
		if (!sel[i])
			continue;
		rc[n].addr = o->env.rcpt[i].addr;
		rc[n].orig = o->env.rcpt[i].orig;
		rc[n].status = m->st.r[i].dsn;
		rc[n].text = m->st.r[i].text;
		n++;
	}
	if (spool_new_open(bc->queue_dir, &sn, err, sizeof(err)) < 0) {
		log_warnx("%s: cannot queue a %s: %s", m->qid,
		    notice_kind[action].what, err);
		goto out;
	}
	r.action = action;
	r.myhostname = bc->myhostname;
	r.qid = m->qid;
	r.notice_qid = sn.qid;
	r.sender = o->env.sender;
	r.envid = o->env.envid;
	r.arrival = (time_t)o->env.arrival;
	r.now = (time_t)now;
	if (action == DSN_DELAYED)
		r.retry_until = (time_t)(o->env.arrival + (double)bc->max_lifetime);
	r.ret_hdrs = o->env.ret != NULL && strcmp(o->env.ret, "HDRS") == 0;
	r.size_limit = bc->size_limit;
	r.msg = o->data.data + o->off;
	r.msglen = o->env.size;
	r.rcpt = rc;
	r.nrcpt = n;
	flags = dsn_build(&r, &text);

	/* The notice's envelope: from <> to the original sender. */
	ne.arrival = now;
	ne.uid = getuid();
	ne.sender = xstrdup("");
	qenv_add_rcpt(&ne, o->env.sender, NULL);
	ne.flags = (flags & DSN_8BIT) ? QF_8BIT : 0;
	ne.size = text.len;
	if (qfile_format_env(&ne, &file) < 0) {
		log_warnx("%s: cannot queue a %s: the sender address holds a "
		    "line break", m->qid, notice_kind[action].what);
		spool_new_abort(&sn);
		goto out;
	}
	buf_add(&file, text.data, text.len);
	if (spool_new_commit(&sn, file.data, file.len, err, sizeof(err)) < 0) {
		log_warnx("%s: cannot queue a %s: %s", m->qid,
		    notice_kind[action].what, err);
		goto out;
	}
	memcpy(nqid, sn.qid, QID_MAX);
	log_set_ident("postern/bounce");
	log_info("%s: %s: %s", m->qid, notice_kind[action].what, nqid);
	log_set_ident("postern/qmgr");
	rc_ = 0;
out:
	qenv_free(&ne);
	buf_free(&text);
	buf_free(&file);
	free(rc);
	return rc_;
}

/*
 * One notice of kind action about the recipients with sel[i] set, when
 * the sender wants it. Returns 0 (queued, or not wanted) or -1.
 */
static int
notice(const struct bounce_cfg *bc, const char *dir, const struct qmsg *m,
    const unsigned char *sel, enum dsn_action action, double now)
{
	struct original o;
	char nqid[QID_MAX];
	int rc;

	/* Never a notice about a notice: no loops between two hosts. A
	   notice that failed goes to hold/ instead (qmgr.c). */
	if (m->null_sender)
		return 0;
	if (original_read(dir, m->qid, &o) < 0)
		return -1;
	if (!dsn_notify_wants(o.env.notify, notice_kind[action].notify)) {
		if (action == DSN_FAILED) {
			log_set_ident("postern/bounce");
			log_info("%s: %s not sent: the sender asked for "
			    "NOTIFY=%s", m->qid, notice_kind[action].what,
			    o.env.notify);
			log_set_ident("postern/qmgr");
		}
		rc = 0;
	} else
		rc = queue_notice(bc, m, &o, sel, action, now, nqid);
	original_free(&o);
	return rc;
}

/* Queue the notices m's last attempt calls for (see bounce.h). */
int
bounce_notify(const struct bounce_cfg *bc, const char *dir, struct qmsg *m,
    double now)
{
	unsigned char *sel = xcalloc(m->st.n + 1, 1);
	size_t nsel = 0, open_ = 0;
	int rc = 0;

	/* Relayed to a server that cannot report deliveries itself. */
	if (m->relayed != NULL) {
		for (size_t i = 0; i < m->st.n; i++)
			if (m->relayed[i] && m->st.r[i].st == RS_SENT)
				sel[i] = 1, nsel++;
		/* A lost "relayed" report is not lost mail: no retry. */
		if (nsel > 0)
			(void)notice(bc, dir, m, sel, DSN_RELAYED, now);
		free(m->relayed);
		m->relayed = NULL;
	}
	/* Still waiting, for longer than delay_warning_time: warn once. */
	memset(sel, 0, m->st.n + 1);
	nsel = 0;
	for (size_t i = 0; i < m->st.n; i++) {
		if (m->st.r[i].st == RS_DEFERRED)
			sel[i] = 1, nsel++;
		if (m->st.r[i].st == RS_DEFERRED || m->st.r[i].st == RS_PENDING)
			open_++;
	}
	if (bc->delay_warning > 0 && !m->st.warned && nsel > 0 &&
	    now - m->arrival >= (double)bc->delay_warning) {
		if (m->null_sender ||
		    notice(bc, dir, m, sel, DSN_DELAYED, now) == 0)
			m->st.warned = 1;
	}
	/* Nothing left to try: return the failed recipients. */
	if (open_ == 0) {
		memset(sel, 0, m->st.n + 1);
		nsel = 0;
		for (size_t i = 0; i < m->st.n; i++)
			if (m->st.r[i].st == RS_FAILED)
				sel[i] = 1, nsel++;
		if (nsel > 0)
			rc = notice(bc, dir, m, sel, DSN_FAILED, now);
	}
	free(sel);
	return rc;
}
