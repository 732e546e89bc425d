/*
 * ctlsrv.c - posternd's side of postern delete, hold, release, requeue,
 * flush -i / -s and the listing for unprivileged callers (see ctlsrv.h
 * and admin/ctl.h).
 *
 * Changes need a privileged caller, checked with SO_PEERCRED (the
 * kernel's word, not the client's): root, the daemon's own user, or
 * mail_owner. The listing is open to everyone, as postqueue's is, and
 * is written by a forked child, so a slow reader (a pager) never stalls
 * the daemon: the child only reads the spool and writes to the
 * connection, then _exits.
 */
#include <errno.h>
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
#include "deliver/ctlsrv.h"
#include "deliver/qmgr.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/util.h"

#define LIST_SEND_SECS	60	/* a listing reader may pause this long */
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

/*
 * 1 when the peer of fd may change the queue: root, our own user, or
 * mail_owner. *uid is the peer's (or -1 when the kernel did not say).
 */
static int
peer_privileged(const struct ctlsrv *c, int fd, long *uid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	struct passwd *pw;

	*uid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0 ||
	    len != sizeof(uc))
		return 0;
	*uid = (long)uc.uid;
	if (uc.uid == 0 || uc.uid == geteuid())
		return 1;
	pw = getpwnam(conf_str(c->cf, "mail_owner"));
	return pw != NULL && pw->pw_uid == uc.uid;
}

/*
 * Hand the listing to a child that writes "ok" and the queue to fd.
 * Returns 0 (handed over), or 1 with an error answer.
 */
static int
list_child(const struct ctlsrv *c, int fd, int json, char *reply,
    size_t replylen)
{
	struct timeval tv = { LIST_SEND_SECS, 0 };
	FILE *f;
	pid_t pid;
	int rc;

	pid = fork();
	if (pid < 0) {
		log_warn("cannot fork a process for a queue listing");
		answer(reply, replylen, "error fail cannot start a listing "
		    "process: %s", strerror(errno));
		return 1;
	}
	if (pid > 0)
		return 0;
	/* The child: it must not outlive the daemon, nor act for it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	log_child();
	fds_close_except(fd, log_fd());
	log_set_ident("postern/showq");
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
ctlsrv_request(const struct ctlsrv *c, int fd, char *line, char *reply,
    size_t replylen)
{
	char *w[MAX_WORDS + 1], *p = line, *tok;
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
	if (strcmp(w[0], "queue") == 0) {
		if (nw == 1 || (nw == 2 && strcmp(w[1], "-j") == 0))
			return list_child(c, fd, nw == 2, reply, replylen);
		answer(reply, replylen, "error usage queue [-j]");
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
