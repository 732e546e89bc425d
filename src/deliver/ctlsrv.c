/*
 * ctlsrv.c - posternd's side of postern delete, hold, release, requeue,
 * flush -i / -s and the listing for unprivileged callers (see ctlsrv.h
 * and admin/ctl.h).
 *
 * Changes need a privileged caller, checked with SO_PEERCRED (the
 * kernel's word, not the client's): root, the daemon's own user, or
 * mail_owner. The listing and flush are open to the users that
 * authorized_mailq_users and authorized_flush_users name (by default
 * everyone, as Postfix's postqueue). The listing is written by a forked
 * child, so a slow reader (a pager) never stalls the daemon: the child
 * only reads the spool and writes to the connection, then _exits.
 *
 * The connections themselves (ctlsrv_accept ... ctlsrv_input) are read
 * inside the daemon's poll loop, never with a blocking read: any local
 * user may connect, and none may stall delivery or root's commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/queue_cmd.h"
#include "conf/config.h"
#include "conf/maps.h"
#include "deliver/ctlsrv.h"
#include "deliver/qmgr.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define LIST_SEND_SECS	60	/* a listing reader may pause this long */
#define LIST_LOG_MS	60000	/* one "refused" line a minute at most */
#define MAX_WORDS	4

/* Format the one-line answer; line breaks in texts become spaces. */
static void __attribute__((format(printf, 3, 4)))
answer(char *reply, size_t replylen, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(reply, replylen > 1 ? replylen - 1 : replylen, fmt, ap);
	va_end(ap);
	for (char *p = reply; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	n = strlen(reply);
	reply[n] = '\n';
	reply[n + 1] = '\0';
}

/* The uid of fd's peer (SO_PEERCRED: the kernel's word), or -1. */
static long
peer_uid(int fd)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 ||
	    len != sizeof(uc))
		return -1;
	return (long)uc.uid;
}

/* mail_owner's uid, or -1 when there is no such user. */
static long
owner_uid(const struct config *cf)
{
	struct passwd *pw = getpwnam(conf_str(cf, "mail_owner"));

	return pw != NULL ? (long)pw->pw_uid : -1;
}

/* Whether uid may change the queue: root, our own user, mail_owner. */
static int
uid_privileged(long uid, long owner)
{
	return uid == 0 || (uid >= 0 && ((uid_t)uid == geteuid() ||
	    uid == owner));
}

/*
 * 1 when the peer of fd may change the queue: root, our own user, or
 * mail_owner. *uid is the peer's (or -1 when the kernel did not say).
 */
static int
peer_privileged(const struct ctlsrv *c, int fd, long *uid)
{
	*uid = peer_uid(fd);
	return *uid >= 0 && uid_privileged(*uid, owner_uid(c->cf));
}

/*
 * Does one pattern of an authorized_*_users list match the login name?
 * A name; static:anyone (everyone); static:empty (no one); a type:table
 * whose keys are names (the value is ignored). 1, 0, or -1 (logged):
 * a table that fails, which denies, as a lookup error must.
 */
static int
user_pattern(const char *param, const char *pat, const char *name)
{
	struct maps *m;
	const char *v;
	char err[512];
	int rc;

	if (strcmp(pat, "static:anyone") == 0)
		return 1;
	if (strcmp(pat, "static:empty") == 0)
		return 0;
	if (pat[0] == '/') {
		log_warnx("%s: %s: a file of names is not supported; write "
		    "texthash:%s", param, pat, pat);
		return -1;
	}
	if (strchr(pat, ':') == NULL)
		return strcmp(pat, name) == 0;
	if ((m = maps_open(param, pat, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	if ((rc = maps_find(m, name, &v, err, sizeof(err))) == MAP_ERROR)
		log_warnx("%s", err);
	maps_free(m);
	return rc == MAP_FOUND ? 1 : rc == MAP_NOTFOUND ? 0 : -1;
}

/*
 * May the peer of fd do what param (authorized_mailq_users or
 * authorized_flush_users) governs? Root, our user and mail_owner always
 * may; anyone else when their login name ("unknown" for a uid without
 * one) matches the list, Postfix's way: patterns separated by commas
 * or spaces, left to right, the first match decides, "!pattern" denies.
 * Without a match: no.
 */
static int
peer_authorized(const struct ctlsrv *c, int fd, const char *param)
{
	char *copy, *p, *tok, name[256];
	struct passwd *pw;
	long uid;
	int rc = 0, m, neg;

	if (peer_privileged(c, fd, &uid))
		return 1;
	pw = uid >= 0 ? getpwuid((uid_t)uid) : NULL;
	if (pw == NULL || strlcpy(name, pw->pw_name, sizeof(name)) >=
	    sizeof(name))
		strlcpy(name, "unknown", sizeof(name));
	copy = p = xstrdup(conf_str(c->cf, param));
	while ((tok = strsep(&p, ", \t\n")) != NULL) {
		if (*tok == '\0')
			continue;
		if ((neg = *tok == '!'))
			tok++;
		if ((m = user_pattern(param, tok, name)) != 0) {
			rc = m > 0 && !neg;
			break;
		}
	}
	free(copy);
	if (!rc)
		log_warnx("request of user %s (uid %ld) refused: not in %s",
		    name, uid, param);
	return rc;
}

/*
 * May uid start one more listing child? Root, our user and mail_owner
 * always may (priv); anyone else within CTL_LIST_PER_UID and
 * CTL_LIST_MAX (ctlsrv.h): a client that never reads keeps its child
 * alive, and children piling up would starve the delivery processes
 * of our user's process limit.
 */
static int
list_allowed(const struct ctlconns *cc, long uid, int priv)
{
	size_t mine = 0;

	if (priv)
		return 1;
	for (size_t i = 0; i < cc->nl; i++)
		mine += cc->l[i].uid == uid;
	return mine < CTL_LIST_PER_UID && cc->nl < CTL_LIST_MAX;
}

/*
 * Hand the listing to a child that writes "ok" and the queue to fd.
 * Returns 0 (handed over), or 1 with an error answer.
 */
static int
list_child(const struct ctlsrv *c, struct ctlconns *cc, int fd, int json,
    char *reply, size_t replylen)
{
	struct timeval tv = { LIST_SEND_SECS, 0 };
	sigset_t alrm;
	FILE *f;
	pid_t pid;
	long uid;
	int rc, priv;

	priv = peer_privileged(c, fd, &uid);
	if (!list_allowed(cc, uid, priv)) {
		/* A refusal costs the caller nothing: bound the log too. */
		if (cc->list_logged == 0 ||
		    now_mono_ms() - cc->list_logged >= LIST_LOG_MS) {
			log_warnx("queue listing for uid %ld refused: too "
			    "many listings running", uid);
			cc->list_logged = now_mono_ms();
		}
		answer(reply, replylen, "error busy too many queue listings "
		    "running; try again later");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("cannot fork a process for a queue listing");
		answer(reply, replylen, "error fail cannot start a listing "
		    "process: %s", strerror(errno));
		return 1;
	}
	if (pid > 0) {
		if (!priv)
			cc->l[cc->nl++] = (struct ctllist){ pid, uid };
		return 0;
	}
	/* The child: it must not outlive the daemon, nor act for it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	/* A total deadline: SO_SNDTIMEO bounds each write only. The child
	   only writes the listing, so SIGALRM's default (end) is right. */
	signal(SIGALRM, SIG_DFL);
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &alrm, NULL);
	alarm(CTL_LIST_SECS);
	log_child();
	fds_close_except(fd, log_fd());
	log_set_ident("postern/showq");
	/* The daemon reads its connections without blocking; the child
	   writes with a bound per write instead. */
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (fs_write_all(fd, "ok\n", 3) < 0 || (f = fdopen(fd, "w")) == NULL)
		_exit(1);
	rc = queue_list(conf_str(c->cf, "queue_directory"), json, f);
	if (fclose(f) == EOF && rc == 0)
		rc = 1;
	/* _exit: the daemon's memory is not ours to check or free. */
	_exit(rc);
}

/* "OP QID MASK": a change of one message. */
static void
change(const struct ctlsrv *c, enum qop op, char **w, size_t nw,
    char *reply, size_t replylen)
{
	char err[700];
	long long mask;
	const char *why;
	int rc;

	if (nw != 3 || !qid_valid(w[1]) ||
	    parse_ll(w[2], 1, QM_ALL, &mask, &why) < 0) {
		answer(reply, replylen, "error usage %s QID MASK", w[0]);
		return;
	}
	rc = qmgr_admin(c->q, op, w[1], (unsigned)mask, c->rw, err,
	    sizeof(err));
	if (rc == 0)
		answer(reply, replylen, "ok");
	else if (rc == 1)
		answer(reply, replylen, "ok later");
	else if (rc == 2)
		answer(reply, replylen, "error noop %s", err);
	else if (errno == ENOENT)
		answer(reply, replylen, "error nomsg no such message in the "
		    "queue");
	else if (errno == EBUSY)
		answer(reply, replylen, "error busy %s", err);
	else {
		log_warnx("%s: %s failed: %s", w[1], qops_name(op), err);
		answer(reply, replylen, "error fail %s", err);
	}
}

/* "flush -i QID" and "flush -s DOMAIN". */
static void
flush_some(const struct ctlsrv *c, char **w, size_t nw, char *reply,
    size_t replylen)
{
	char err[300];
	int rc;

	if (nw == 3 && strcmp(w[1], "-i") == 0 && qid_valid(w[2])) {
		rc = qmgr_flush_id(c->q, w[2], err, sizeof(err));
		if (rc == 0)
			answer(reply, replylen, "ok");
		else if (rc == 2)
			answer(reply, replylen, "error noop %s", err);
		else
			answer(reply, replylen, "error nomsg no such message "
			    "in the queue");
	} else if (nw == 3 && strcmp(w[1], "-s") == 0 && w[2][0] != '\0') {
		qmgr_pickup(c->q);
		qmgr_scan_deferred(c->q);
		answer(reply, replylen, "ok %zu", qmgr_flush_domain(c->q,
		    w[2]));
	} else
		answer(reply, replylen, "error usage flush [-i QID | -s "
		    "DOMAIN]");
}

/* Serve one request (see ctlsrv.h). */
int
ctlsrv_request(const struct ctlsrv *c, struct ctlconns *cc, int fd,
    char *line, char *reply, size_t replylen)
{
	char *w[MAX_WORDS + 1], *p = line, *tok;
	const char *param;
	size_t nw = 0;
	long uid;
	int op;

	while (nw <= MAX_WORDS && (tok = strsep(&p, " ")) != NULL)
		if (*tok != '\0')
			w[nw++] = tok;
	if (nw == 0 || nw > MAX_WORDS) {
		answer(reply, replylen, "error usage unknown request");
		return 1;
	}
	if (strcmp(w[0], "queue") == 0 || strcmp(w[0], "flush") == 0) {
		param = w[0][0] == 'q' ? "authorized_mailq_users" :
		    "authorized_flush_users";
		if (!peer_authorized(c, fd, param)) {
			answer(reply, replylen, "error perm %s does not allow "
			    "you this (postern.conf(5))", param);
			return 1;
		}
	}
	if (strcmp(w[0], "queue") == 0) {
		if (nw == 1 || (nw == 2 && strcmp(w[1], "-j") == 0))
			return list_child(c, cc, fd, nw == 2, reply,
			    replylen);
		answer(reply, replylen, "error usage queue [-j]");
		return 1;
	}
	if (strcmp(w[0], "flush") == 0 && nw == 1) {
		c->flush_all(c->arg);
		answer(reply, replylen, "ok");
		return 1;
	}
	if (strcmp(w[0], "flush") == 0) {
		flush_some(c, w, nw, reply, replylen);
		return 1;
	}
	if ((op = qops_from_name(w[0])) < 0) {
		answer(reply, replylen, "error usage unknown request");
		return 1;
	}
	if (!peer_privileged(c, fd, &uid)) {
		log_warnx("%s request from uid %ld refused: only root, the "
		    "daemon's user or mail_owner may change the queue", w[0],
		    uid);
		answer(reply, replylen, "error perm only root, the posternd "
		    "user or the mail_owner user (%s) may change the queue",
		    conf_str(c->cf, "mail_owner"));
		return 1;
	}
	change(c, (enum qop)op, w, nw, reply, replylen);
	return 1;
}

/* Close connection i; the last takes its place. */
static void
conn_drop(struct ctlconns *cc, size_t i)
{
	close(cc->c[i].fd);
	cc->c[i] = cc->c[--cc->n];
}

/* Refuse a connection over the limits, with a line that says so. */
static void
conn_refuse(int fd)
{
	static const char busy[] = "error busy too many control connections "
	    "open; try again\n";

	(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* Forget mail_owner's uid (see ctlsrv.h). */
void
ctlsrv_reconfigured(struct ctlconns *cc)
{
	cc->owner_known = 0;
}

/* Forget a reaped listing child (see ctlsrv.h). */
int
ctlsrv_reaped(struct ctlconns *cc, pid_t pid)
{
	for (size_t i = 0; i < cc->nl; i++)
		if (cc->l[i].pid == pid) {
			cc->l[i] = cc->l[--cc->nl];
			return 1;
		}
	return 0;
}

/* Accept waiting connections within the limits (see ctlsrv.h). */
void
ctlsrv_accept(struct ctlconns *cc, int lfd, const struct config *cf)
{
	long owner, uid;
	size_t mine;
	int fd, priv;

	/* getpwnam once per configuration, not once per connect. */
	if (!cc->owner_known) {
		cc->owner = owner_uid(cf);
		cc->owner_known = 1;
	}
	owner = cc->owner;

	/* Bounded: a storm of connects cannot keep the loop here. */
	for (int k = 0; k < CTL_MAX_CONNS; k++) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		uid = peer_uid(fd);
		priv = uid_privileged(uid, owner);
		mine = 0;
		for (size_t i = 0; i < cc->n; i++)
			mine += cc->c[i].uid == uid;
		if (cc->n == CTL_MAX_CONNS || (!priv && (mine >= CTL_PER_UID ||
		    cc->n >= CTL_MAX_CONNS - CTL_RESERVED))) {
			conn_refuse(fd);
			continue;
		}
		cc->c[cc->n] = (struct ctlconn){ .fd = fd, .uid = uid,
		    .priv = priv, .deadline = now_mono_ms() + CTL_DEADLINE_MS };
		cc->n++;
	}
}

/* Close connections past their deadline. */
void
ctlsrv_expire(struct ctlconns *cc, int64_t now)
{
	for (size_t i = cc->n; i-- > 0;)
		if (cc->c[i].deadline <= now)
			conn_drop(cc, i);
}

/* The earliest deadline, or -1. */
int64_t
ctlsrv_next_deadline(const struct ctlconns *cc)
{
	int64_t t = -1;

	for (size_t i = 0; i < cc->n; i++)
		if (t < 0 || cc->c[i].deadline < t)
			t = cc->c[i].deadline;
	return t;
}

/* Read from connection i; answer a whole request (see ctlsrv.h). */
int
ctlsrv_input(struct ctlconns *cc, size_t i, const struct ctlsrv *c)
{
	struct ctlconn *k = &cc->c[i];
	char reply[768];
	ssize_t n;
	size_t end;

	n = read(k->fd, k->line + k->len, sizeof(k->line) - 1 - k->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0 || (n == 0 && k->len == 0)) {
		conn_drop(cc, i);
		return 0;
	}
	k->len += (size_t)n;
	k->line[k->len] = '\0';
	end = strcspn(k->line, "\r\n");
	/* A line, or all the peer will send: the request is complete. */
	if (k->line[end] == '\0' && n > 0 && k->len < sizeof(k->line) - 1)
		return 0;
	if (k->line[end] == '\0' && k->len == sizeof(k->line) - 1) {
		answer(reply, sizeof(reply), "error usage request too long");
		goto send;
	}
	k->line[end] = '\0';
	if (!ctlsrv_request(c, cc, k->fd, k->line, reply, sizeof(reply))) {
		conn_drop(cc, i);	/* a child answers */
		return 1;
	}
send:
	/* A short line into an empty socket buffer: it fits at once. */
	(void)!send(k->fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
	conn_drop(cc, i);
	return 1;
}

/* Close them all. */
void
ctlsrv_close_all(struct ctlconns *cc)
{
	while (cc->n > 0)
		conn_drop(cc, cc->n - 1);
}
