/*
 * qadmin_cmd.c - postern delete, hold, release, requeue and cat.
 *
 * The four changes mean what Postfix's postsuper -d, -h, -H and -r mean.
 * When posternd runs, each message is changed by the daemon, through its
 * control socket, so that its table and the spool agree and a worker
 * cannot bring a deleted message back (see qmgr_admin). When no daemon
 * runs, the command changes the spool itself (spool/qops.c), holding the
 * queue lock so that a daemon cannot start meanwhile, and says so.
 *
 * Only root, the owner of the queue and mail_owner may change the
 * queue: the command refuses others at once with EX_NOPERM, and the
 * daemon checks again with the kernel's SO_PEERCRED.
 *
 * Output is Postfix's: one line per message ("QID: removed"), then a
 * summary ("3 messages deleted"), on standard error.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/conf_cmd.h"
#include "admin/ctl.h"
#include "admin/qadmin_cmd.h"
#include "conf/config.h"
#include "lib/buf.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mail/addr.h"
#include "spool/qfile.h"
#include "spool/qstate.h"

static const char *const usages[] = {
	[QOP_DELETE] = "usage: postern delete ID ... | ALL | - [queue ...]",
	[QOP_HOLD] = "usage: postern hold ID ... | ALL | - [queue ...]",
	[QOP_RELEASE] = "usage: postern release ID ... | ALL | -",
	[QOP_REQUEUE] = "usage: postern requeue ID ... | ALL | - [queue ...]",
};
#define CAT_USAGE	"usage: postern cat [-b] [-e] [-h] ID"

/* How the changes are made: not yet known, by posternd, by ourselves. */
enum qmode { MODE_UNKNOWN, MODE_DAEMON, MODE_DIRECT };

/* One run of a change command. */
struct qrun {
	const char		*cmd;		/* "delete", ... */
	const struct qadmin_args *a;
	const char		*queue_dir;
	qops_dirs_t		 dirs;
	struct addr_rewrite	 rw;
	enum qmode		 mode;
	int			 lock_fd;
	size_t			 done;
	size_t			 missing;	/* named IDs not found */
	size_t			 failed;
	int			 status;	/* a reason to stop, or 0 */
};

static void say(const char *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* "postern CMD: text" on standard error. */
static void
say(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "postern %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Parse a change command line (see qadmin_cmd.h). */
int
qadmin_parse(int argc, char **argv, struct qadmin_args *a, char *err,
    size_t errlen)
{
	int op;
	unsigned bit;

	memset(a, 0, sizeof(*a));
	if (argc < 1 || (op = qops_from_name(argv[0])) < 0) {
		snprintf(err, errlen, "unknown command");
		return -1;
	}
	a->op = (enum qop)op;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if ((bit = qops_queue_bit(s)) != 0) {
			if (a->op == QOP_RELEASE && bit != QM_HOLD) {
				snprintf(err, errlen, "release takes messages "
				    "from the hold queue only, not %s", s);
				return -1;
			}
			a->mask |= bit;
		} else if (strcmp(s, "ALL") == 0) {
			a->all = 1;
		} else if (strcmp(s, "-") == 0) {
			a->from_stdin = 1;
		} else if (qid_valid(s)) {
			if (a->nids == QADMIN_MAX_IDS) {
				snprintf(err, errlen, "more than %d queue IDs; "
				    "give them on standard input with -",
				    QADMIN_MAX_IDS);
				return -1;
			}
			a->ids[a->nids++] = s;
		} else if (strcasecmp(s, "all") == 0) {
			snprintf(err, errlen, "\"%s\": write ALL in upper case "
			    "to mean every message", s);
			return -1;
		} else {
			snprintf(err, errlen, "\"%.40s\" is neither a queue ID "
			    "(6 to 24 upper-case hex digits, as postern queue "
			    "shows them) nor a queue name (incoming, active, "
			    "deferred, hold)", s);
			return -1;
		}
	}
	if (a->nids + (size_t)a->all + (size_t)a->from_stdin == 0) {
		snprintf(err, errlen, "no queue ID given");
		return -1;
	}
	if ((a->nids > 0) + a->all + a->from_stdin > 1) {
		snprintf(err, errlen, "give queue IDs, ALL or -, not several "
		    "of them");
		return -1;
	}
	if (a->mask == 0)
		a->mask = a->op == QOP_RELEASE ? QM_HOLD : QM_ALL;
	return 0;
}

/* A mail domain for flush -s. */
int
flush_domain_valid(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return 0;
	if (s[0] == '[')
		return n > 2 && s[n - 1] == ']' &&
		    strspn(s + 1, "0123456789abcdefABCDEF.:IPv") == n - 2;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-') {
			label++;
		} else
			return 0;
	}
	return label > 0;
}

/* Parse a flush command line (see qadmin_cmd.h). */
int
flush_parse(int argc, char **argv, struct flush_args *f, char *err,
    size_t errlen)
{
	memset(f, 0, sizeof(*f));
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "-i") != 0 && strcmp(o, "-s") != 0) {
			snprintf(err, errlen, "unexpected argument \"%.40s\"",
			    o);
			return -1;
		}
		if (f->qid != NULL || f->domain != NULL) {
			snprintf(err, errlen, "give one -i or -s option");
			return -1;
		}
		if (i + 1 == argc) {
			snprintf(err, errlen, "option %s needs %s", o,
			    o[1] == 'i' ? "a queue ID" : "a domain");
			return -1;
		}
		if (o[1] == 'i') {
			if (!qid_valid(argv[i + 1])) {
				snprintf(err, errlen, "\"%.40s\" is not a "
				    "queue ID", argv[i + 1]);
				return -1;
			}
			f->qid = argv[++i];
		} else {
			if (!flush_domain_valid(argv[i + 1])) {
				snprintf(err, errlen, "\"%.40s\" is not a "
				    "domain", argv[i + 1]);
				return -1;
			}
			f->domain = argv[++i];
		}
	}
	return 0;
}

/* Trim a queue ID given on standard input. */
char *
qadmin_clean_id(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && strchr(" \t\r\n*!", s[n - 1]) != NULL)
		s[--n] = '\0';
	return s;
}

/*
 * 1 when the caller may change the queue: root, the owner of the queue
 * (or of active/, the daemon's user), or mail_owner.
 */
static int
caller_privileged(const struct config *cf, const struct qrun *r)
{
	uid_t u = geteuid();
	struct stat sb;
	struct passwd *pw;

	if (u == 0)
		return 1;
	if ((stat(r->queue_dir, &sb) == 0 && sb.st_uid == u) ||
	    (stat(r->dirs[QD_ACTIVE], &sb) == 0 && sb.st_uid == u))
		return 1;
	pw = getpwnam(conf_str(cf, "mail_owner"));
	return pw != NULL && pw->pw_uid == u;
}

/* qsort comparison of strings. */
static int
str_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/*
 * The IDs in the queues of mask (for ALL), sorted. Returns the count,
 * *out set; a queue that cannot be read sets *err_errno.
 */
static size_t
all_ids(struct qrun *r, unsigned mask, char ***out, int *err_errno)
{
	static const enum qdir order[] = { QD_NEW, QD_ACTIVE, QD_DEFERRED,
	    QD_HOLD };
	char **v = NULL;
	size_t n = 0, cap = 0;

	*err_errno = 0;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		DIR *d;
		struct dirent *de;
		if (!(mask & qops_dir_bit(order[i])))
			continue;
		if ((d = opendir(r->dirs[order[i]])) == NULL) {
			if (errno != ENOENT)
				*err_errno = errno;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (!qid_valid(de->d_name))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = xreallocarray(v, cap, sizeof(*v));
			}
			v[n++] = xstrdup(de->d_name);
		}
		closedir(d);
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), str_cmp);
	*out = v;
	return n;
}

/*
 * No daemon answers: take the queue lock (a daemon starting now waits
 * for none: it refuses to start while we hold it) and work directly.
 * Returns 0, or an exit status.
 */
static int
go_direct(struct qrun *r)
{
	char path[PATH_BUF + 32];
	struct stat st;

	snprintf(path, sizeof(path), "%s/master.lock", r->dirs[QD_PID]);
	/* Run by root in a directory mail_owner owns: not through a link
	   (nor onto a FIFO) that user may have put there. */
	r->lock_fd = fs_openat_plain(AT_FDCWD, path, O_RDWR | O_CREAT, 0600,
	    &st);
	if (r->lock_fd < 0) {
		say(r->cmd, "cannot open the queue lock %s: %s", path,
		    fs_plain_why(errno));
		return errno == EACCES ? EX_NOPERM : EX_UNAVAILABLE;
	}
	/* As posternd's open_lock: a lock file neither we nor root made
	   may be one the postern user means root to write into later. */
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		say(r->cmd, "%s belongs to uid %lu, not to uid %lu: another "
		    "user may have put it there. Remove it (rm %s) and try "
		    "again", path, (unsigned long)st.st_uid,
		    (unsigned long)geteuid(), path);
		return EX_CONFIG;
	}
	if (flock(r->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		say(r->cmd, "posternd holds the queue lock but does not answer "
		    "on %s/%s; try again in a moment", r->queue_dir,
		    CTL_SOCKET);
		return EX_TEMPFAIL;
	}
	say(r->cmd, "posternd is not running; changing the queue directly");
	r->mode = MODE_DIRECT;
	return 0;
}

/* Report one message's outcome: rc as qmgr_admin returns it. */
static void
outcome(struct qrun *r, const char *qid, int rc, int err_no,
    const char *text)
{
	if (rc == 0) {
		say(r->cmd, "%s: %s", qid, qops_log_text(r->a->op));
		r->done++;
	} else if (rc == 1) {
		say(r->cmd, "%s: being delivered; it will be requeued when "
		    "this delivery attempt ends", qid);
		r->done++;
	} else if (rc == 2) {
		say(r->cmd, "%s", text);
	} else if (err_no == ENOENT) {
		/* ALL: a message delivered since the listing is no error. */
		if (!r->a->all) {
			say(r->cmd, "%s: no such message in the queue", qid);
			r->missing++;
		}
	} else if (err_no == EACCES || err_no == EPERM) {
		say(r->cmd, "permission denied: %s", text);
		r->status = EX_NOPERM;
	} else {
		say(r->cmd, "%s: %s", qid, text);
		r->failed++;
	}
}

/* Change one message ourselves (no daemon). */
static void
one_direct(struct qrun *r, const char *qid)
{
	char err[700] = "";
	enum qdir where;
	int rc = 0;

	if (qops_locate(r->dirs, qid, r->a->mask, &where) < 0) {
		int e = errno;
		if (e == ENOENT && r->a->op == QOP_RELEASE &&
		    qops_locate(r->dirs, qid, QM_ALL, &where) == 0) {
			snprintf(err, sizeof(err), "%s is not on hold", qid);
			outcome(r, qid, 2, 0, err);
			return;
		}
		snprintf(err, sizeof(err), "cannot look for %s: %s", qid,
		    strerror(e));
		outcome(r, qid, -1, e, err);
		return;
	}
	switch (r->a->op) {
	case QOP_DELETE:
		rc = qops_delete(r->dirs, qid, where);
		break;
	case QOP_HOLD:
		if (where == QD_HOLD) {
			snprintf(err, sizeof(err), "%s is already on hold",
			    qid);
			outcome(r, qid, 2, 0, err);
			return;
		}
		rc = qops_hold(r->dirs, qid, where);
		break;
	case QOP_RELEASE:
		if (qops_release(r->dirs, qid, err, sizeof(err)) < 0) {
			outcome(r, qid, -1, EIO, err);
			return;
		}
		break;
	case QOP_REQUEUE:
		if (qops_requeue(r->dirs, qid, where, &r->rw, err,
		    sizeof(err)) < 0) {
			outcome(r, qid, -1, EIO, err);
			return;
		}
		break;
	}
	if (rc < 0)
		snprintf(err, sizeof(err), "cannot %s %s/%s: %s",
		    qops_name(r->a->op), spool_dirname(where), qid,
		    strerror(errno));
	outcome(r, qid, rc, errno, err);
}

/* Change one message through posternd; falls back to direct. */
static void
one(struct qrun *r, const char *qid)
{
	char req[128], reply[800];
	const char *text;
	int rc;

	if (r->mode == MODE_DIRECT) {
		one_direct(r, qid);
		return;
	}
	snprintf(req, sizeof(req), "%s %s %u", qops_name(r->a->op), qid,
	    r->a->mask);
	rc = ctl_request(r->queue_dir, req, reply, sizeof(reply));
	if (rc < 0 && r->mode == MODE_UNKNOWN &&
	    (errno == ENOENT || errno == ECONNREFUSED)) {
		if ((r->status = go_direct(r)) == 0)
			one_direct(r, qid);
		return;
	}
	if (rc < 0) {
		say(r->cmd, "cannot reach posternd at %s/%s: %s", r->queue_dir,
		    CTL_SOCKET, strerror(errno));
		r->status = errno == EACCES ? EX_NOPERM : EX_UNAVAILABLE;
		return;
	}
	r->mode = MODE_DAEMON;
	if (rc == 0) {
		outcome(r, qid, strcmp(reply, "ok later") == 0 ? 1 : 0, 0, "");
		return;
	}
	/* "error KIND TEXT" */
	text = strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply;
	if (strncmp(text, "perm ", 5) == 0)
		outcome(r, qid, -1, EPERM, text + 5);
	else if (strncmp(text, "nomsg", 5) == 0)
		outcome(r, qid, -1, ENOENT, text);
	else if (strncmp(text, "noop ", 5) == 0)
		outcome(r, qid, 2, 0, text + 5);
	else
		outcome(r, qid, -1, EIO, strchr(text, ' ') ?
		    strchr(text, ' ') + 1 : text);
}

/* Run the change over the IDs from standard input. */
static size_t
run_stdin(struct qrun *r)
{
	char *line = NULL, *id;
	size_t cap = 0, bad = 0;

	while (r->status == 0 && getline(&line, &cap, stdin) > 0) {
		id = qadmin_clean_id(line);
		if (*id == '\0')
			continue;
		if (!qid_valid(id)) {
			say(r->cmd, "\"%.40s\" is not a queue ID; skipped", id);
			bad++;
			continue;
		}
		one(r, id);
	}
	free(line);
	return bad;
}

/* postern delete | hold | release | requeue. */
int
qadmin_cmd(int argc, char **argv, const char *confdir)
{
	struct qadmin_args a;
	struct qrun r;
	struct config *cf;
	char err[300], **ids = NULL;
	size_t n = 0, bad = 0;
	int e;

	if (qadmin_parse(argc, argv, &a, err, sizeof(err)) < 0) {
		say(argv[0], "%s", err);
		fprintf(stderr, "%s\n", usages[qops_from_name(argv[0])]);
		return EX_USAGE;
	}
	memset(&r, 0, sizeof(r));
	r.cmd = argv[0];
	r.a = &a;
	r.lock_fd = -1;
	cf = admin_config(confdir);
	r.queue_dir = conf_str(cf, "queue_directory");
	if (qops_dirs(r.queue_dir, r.dirs) < 0)
		fatalx_status(EX_CONFIG, "queue_directory path too long");
	r.rw = (struct addr_rewrite){
		.myorigin = conf_str(cf, "myorigin"),
		.mydomain = conf_str(cf, "mydomain"),
		.append_at_myorigin = conf_bool(cf, "append_at_myorigin"),
		.append_dot_mydomain = conf_bool(cf, "append_dot_mydomain"),
	};
	if (!caller_privileged(cf, &r)) {
		say(r.cmd, "permission denied: only root, the owner of %s or "
		    "the mail_owner user (%s) may change the queue; postern "
		    "queue and postern flush are open to everyone",
		    r.queue_dir, conf_str(cf, "mail_owner"));
		config_free(cf);
		return EX_NOPERM;
	}
	if (a.all) {
		n = all_ids(&r, a.mask, &ids, &e);
		if (e != 0) {
			say(r.cmd, "cannot list the queue %s: %s", r.queue_dir,
			    strerror(e));
			r.status = e == EACCES ? EX_NOPERM : EX_UNAVAILABLE;
		}
		for (size_t i = 0; i < n && r.status == 0; i++)
			one(&r, ids[i]);
	} else if (a.from_stdin)
		bad = run_stdin(&r);
	else
		for (size_t i = 0; i < a.nids && r.status == 0; i++)
			one(&r, a.ids[i]);
	say(r.cmd, "%zu message%s %s", r.done, r.done == 1 ? "" : "s",
	    qops_done_text(a.op));
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	if (r.lock_fd >= 0)
		close(r.lock_fd);
	config_free(cf);
	if (r.status != 0)
		return r.status;
	if (r.failed > 0)
		return EX_IOERR;
	if (r.missing > 0)
		return EX_NOINPUT;
	return bad > 0 ? EX_DATAERR : 0;
}

/* Print a header line of postcat's layout. */
static void
section(const char *what, enum qdir where, const char *qid)
{
	printf("*** %s %s/%s ***\n", what, spool_dirname(where), qid);
}

/* The envelope records, with each recipient's delivery status. */
static void
print_envelope(const struct qenv *env, const struct qstate *st)
{
	time_t t = (time_t)env->arrival;
	char when[64];
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm) == 0)
		strlcpy(when, "?", sizeof(when));
	printf("message_size: %zu\n", env->size);
	printf("message_arrival_time: %s\n", when);
	printf("uid: %lu\n", (unsigned long)env->uid);
	printf("sender: %s\n", env->sender);
	if (env->notify)
		printf("notify: %s\n", env->notify);
	if (env->ret)
		printf("ret: %s\n", env->ret);
	if (env->envid)
		printf("envid: %s\n", env->envid);
	printf("delivery_attempts: %d\n", st->attempts);
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct qstate_rcpt *r = &st->r[i];
		if (env->rcpt[i].orig)
			printf("original_recipient: %s\n", env->rcpt[i].orig);
		printf("recipient: %s\n", env->rcpt[i].addr);
		printf("status: %s", rcpt_status_name(r->st));
		if (r->st != RS_PENDING)
			printf(" %s%s%s", r->dsn, r->text ? " " : "",
			    r->text ? r->text : "");
		printf("\n");
	}
}

/* postern cat. */
int
cat_cmd(int argc, char **argv, const char *confdir)
{
	struct config *cf;
	qops_dirs_t dirs;
	struct buf data = BUF_INIT, sb = BUF_INIT;
	struct qenv env;
	struct qstate st;
	char path[PATH_BUF + QID_MAX + 2], err[256];
	const char *qid, *msg;
	enum qdir where;
	size_t off, hlen;
	int ch, hdr = 0, body = 0, envl = 0, status = 0, rc = -1;

	optind = 0;
	opterr = 0;
	while ((ch = getopt(argc, argv, "+beh")) != -1) {
		switch (ch) {
		case 'b': body = 1; break;
		case 'e': envl = 1; break;
		case 'h': hdr = 1; break;
		default:
			say("cat", "invalid option -- '%c'", optopt);
			fprintf(stderr, "%s\n", CAT_USAGE);
			return EX_USAGE;
		}
	}
	if (optind + 1 != argc || !qid_valid(argv[optind])) {
		say("cat", optind == argc ? "no queue ID given" :
		    optind + 1 != argc ? "one queue ID only" :
		    "that is not a queue ID (6 to 24 upper-case hex digits)");
		fprintf(stderr, "%s\n", CAT_USAGE);
		return EX_USAGE;
	}
	if (!hdr && !body && !envl)
		hdr = body = envl = 1;
	qid = argv[optind];
	memset(&env, 0, sizeof(env));
	memset(&st, 0, sizeof(st));
	cf = admin_config(confdir);
	if (qops_dirs(conf_str(cf, "queue_directory"), dirs) < 0)
		fatalx_status(EX_CONFIG, "queue_directory path too long");
	if (qops_locate(dirs, qid, QM_ALL, &where) == 0) {
		snprintf(path, sizeof(path), "%s/%s", dirs[where], qid);
		rc = fs_read_plain(path, &data, QFILE_MAX);
	}
	if (rc < 0) {
		if (errno == ENOENT) {
			say("cat", "%s: no such message in the queue", qid);
			status = EX_NOINPUT;
		} else if (errno == EACCES || errno == EPERM) {
			say("cat", "permission denied: reading queue files "
			    "needs root or the mail_owner user (%s)",
			    conf_str(cf, "mail_owner"));
			status = EX_NOPERM;
		} else {
			say("cat", "%s: cannot read it: %s", qid,
			    fs_plain_refused(errno) ? fs_plain_why(errno) :
			    strerror(errno));
			status = EX_UNAVAILABLE;
		}
		goto out;
	}
	if (qfile_parse(data.data ? data.data : "", data.len, &env, &off, err,
	    sizeof(err)) < 0) {
		say("cat", "%s: not a valid queue file: %s", qid, err);
		status = EX_DATAERR;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", dirs[QD_STATE], qid);
	if (where == QD_NEW || fs_read_plain(path, &sb, 1 << 24) < 0 ||
	    qstate_parse(sb.data ? sb.data : "", sb.len, env.nrcpt, &st, err,
	    sizeof(err)) < 0)
		qstate_init(&st, env.nrcpt);
	msg = data.data + off;
	/* The header ends at the first empty line. */
	for (hlen = 0; hlen < env.size; ) {
		const char *nl = memchr(msg + hlen, '\n', env.size - hlen);
		size_t l = nl ? (size_t)(nl - (msg + hlen)) + 1 :
		    env.size - hlen;
		hlen += l;
		if (l == 1)
			break;
	}
	if (envl) {
		section("ENVELOPE RECORDS", where, qid);
		print_envelope(&env, &st);
	}
	if (hdr && body)
		section("MESSAGE CONTENTS", where, qid);
	else if (hdr)
		section("HEADER RECORDS", where, qid);
	else if (body)
		section("BODY RECORDS", where, qid);
	fflush(stdout);
	if (hdr)
		fwrite(msg, 1, hlen, stdout);
	if (body)
		fwrite(msg + hlen, 1, env.size - hlen, stdout);
	if (env.size > 0 && msg[env.size - 1] != '\n')
		putchar('\n');
	section("MESSAGE FILE END", where, qid);
	if (fflush(stdout) == EOF)
		status = EX_IOERR;
out:
	qstate_free(&st);
	qenv_free(&env);
	buf_free(&data);
	buf_free(&sb);
	config_free(cf);
	return status;
}
