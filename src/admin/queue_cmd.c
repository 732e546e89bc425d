/*
 * queue_cmd.c - `postern queue` (alias mailq) and `postern flush`
 * [-i QID | -s DOMAIN].
 *
 * The listing reads the spool directly: each queue file's envelope
 * (qfile_parse) and its state record (qstate_parse), so it works whether
 * or not posternd is running. A caller who may not read the spool asks
 * posternd, which runs the same code (queue_list) in a child writing to
 * the control socket. The layout is Postfix's postqueue -p, which
 * people and scripts already read; -j is postqueue -j's JSON lines.
 *
 * Order: incoming/new, active, deferred, hold (Postfix's showq order),
 * names sorted within each directory so the output is stable. A file
 * that vanishes while we look was just moved by the daemon and is
 * skipped; one that does not parse is reported and skipped (the daemon
 * quarantines it). Text that came from remote servers is printed with
 * control characters replaced, so a reply cannot drive the terminal.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/conf_cmd.h"
#include "admin/ctl.h"
#include "admin/qadmin_cmd.h"
#include "admin/queue_cmd.h"
#include "conf/config.h"
#include "lib/buf.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "spool/qfile.h"
#include "spool/qstate.h"
#include "spool/spool.h"

#define QUEUE_USAGE	"usage: postern queue [-j]"
#define FLUSH_USAGE	"usage: postern flush [-i queue_id | -s domain]"
#define QFILE_LIMIT	((size_t)1 << 31)	/* larger is not a queue file */
#define STATE_LIMIT	((size_t)1 << 24)

/* One message as listed. */
struct qmsg {
	const char	*qid;
	enum qdir	 dir;
	struct qenv	 env;
	struct qstate	 st;
};

/* Running totals and the output mode. */
struct qlist {
	const char	*queue_dir;
	int		 json;
	FILE		*out;
	size_t		 count;
	unsigned long long bytes;
};

/* The Postfix queue name of a spool directory, for -j. */
static const char *
queue_name(enum qdir d)
{
	switch (d) {
	case QD_NEW: return "incoming";
	case QD_ACTIVE: return "active";
	case QD_HOLD: return "hold";
	default: return "deferred";
	}
}

/* Append s with control characters replaced, for a terminal. */
static void
add_printable(struct buf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_addc(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;	/* also stops at the NUL */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are invalid. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* Append s as a JSON string. */
void
json_add_string(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	buf_addc(out, '"');
	while (*p) {
		if (*p == '"' || *p == '\\') {
			buf_addc(out, '\\');
			buf_addc(out, (char)*p++);
		} else if (*p == '\n') {
			buf_adds(out, "\\n"), p++;
		} else if (*p == '\t') {
			buf_adds(out, "\\t"), p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_addf(out, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) == 0) {
			buf_adds(out, "\\ufffd"), p++;
		} else {
			buf_add(out, p, n);
			p += n;
		}
	}
	buf_addc(out, '"');
}

/*
 * Read the state record of qid; a missing one means all pending, a bad
 * one is reported and treated the same (the listing is still useful).
 */
static void
load_state(const char *queue_dir, struct qmsg *m)
{
	struct buf data = BUF_INIT;
	char dir[PATH_BUF], path[PATH_BUF], err[256];

	qstate_init(&m->st, m->env.nrcpt);
	if (spool_path(queue_dir, QD_STATE, dir, sizeof(dir)) < 0 ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, m->qid) >=
	    sizeof(path))
		goto out;
	if (fs_read_plain(path, &data, STATE_LIMIT) < 0) {
		if (fs_plain_refused(errno))
			log_warnx("%s: state record %s skipped: it is %s",
			    m->qid, path, fs_plain_why(errno));
		else if (errno != ENOENT)
			log_warn("%s: cannot read the state record", m->qid);
		goto out;
	}
	qstate_free(&m->st);
	if (qstate_parse(data.data ? data.data : "", data.len, m->env.nrcpt,
	    &m->st, err, sizeof(err)) < 0) {
		log_warnx("%s: bad state record: %s", m->qid, err);
		qstate_init(&m->st, m->env.nrcpt);
	}
out:
	buf_free(&data);
}

/*
 * Read and parse one queue file. Returns 0, or -1 when it is gone or
 * unusable (a warning said why, unless it merely moved away).
 */
static int
load_msg(const char *dirpath, struct qmsg *m)
{
	struct buf data = BUF_INIT;
	char path[PATH_BUF], err[256];
	size_t off;
	int rc = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dirpath, m->qid) >=
	    sizeof(path))
		goto out;
	if (fs_read_plain(path, &data, QFILE_LIMIT) < 0) {
		/* A FIFO or a link the postern user put there: refused
		   before root opens or waits on what it points to. */
		if (fs_plain_refused(errno))
			log_warnx("%s: skipped, %s is %s", m->qid, path,
			    fs_plain_why(errno));
		else if (errno != ENOENT)	/* ENOENT: the daemon moved it */
			log_warn("%s: cannot read %s", m->qid, path);
		goto out;
	}
	if (qfile_parse(data.data ? data.data : "", data.len, &m->env, &off,
	    err, sizeof(err)) < 0) {
		log_warnx("%s: skipped, not a valid queue file: %s", m->qid,
		    err);
		goto out;
	}
	rc = 0;
out:
	buf_free(&data);
	return rc;
}

/* Print one message in postqueue -p layout. */
static void
print_text(struct qlist *ql, const struct qmsg *m)
{
	struct buf line = BUF_INIT;
	const char *prev = NULL;
	char when[32];
	struct tm tm;
	time_t t = (time_t)m->env.arrival;
	char mark = m->dir == QD_HOLD ? '!' : m->dir == QD_DEFERRED ? ' ' : '*';

	if (ql->count == 0)
		fprintf(ql->out, "-Queue ID-  --Size-- ----Arrival Time---- "
		    "-Sender/Recipient-------\n");
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
		strlcpy(when, "?", sizeof(when));
	buf_addf(&line, "%-10s%c %8zu %-19s  ", m->qid, mark, m->env.size,
	    when);
	add_printable(&line, m->env.sender[0] ? m->env.sender :
	    "MAILER-DAEMON");
	buf_addc(&line, '\n');
	for (size_t i = 0; i < m->env.nrcpt; i++) {
		const struct qstate_rcpt *r = &m->st.r[i];
		if (r->st == RS_SENT)
			continue;
		/* A reason shared by consecutive recipients is shown once. */
		if (r->text && (prev == NULL || strcmp(prev, r->text) != 0)) {
			buf_addf(&line, "%49s(", "");
			add_printable(&line, r->text);
			buf_adds(&line, ")\n");
		}
		prev = r->text;
		buf_addf(&line, "%41s", "");
		add_printable(&line, m->env.rcpt[i].addr);
		buf_addc(&line, '\n');
	}
	fprintf(ql->out, "%s\n", line.data);
	buf_free(&line);
}

/* Print one message as a postqueue -j JSON line. */
static void
print_json(FILE *out, const struct qmsg *m)
{
	struct buf j = BUF_INIT;
	int first = 1;

	buf_adds(&j, "{\"queue_name\": ");
	json_add_string(&j, queue_name(m->dir));
	buf_adds(&j, ", \"queue_id\": ");
	json_add_string(&j, m->qid);
	buf_addf(&j, ", \"arrival_time\": %lld, \"message_size\": %zu, "
	    "\"sender\": ", (long long)m->env.arrival, m->env.size);
	json_add_string(&j, m->env.sender);
	buf_adds(&j, ", \"recipients\": [");
	for (size_t i = 0; i < m->env.nrcpt; i++) {
		if (m->st.r[i].st == RS_SENT)
			continue;
		buf_adds(&j, first ? "{\"address\": " : ", {\"address\": ");
		first = 0;
		json_add_string(&j, m->env.rcpt[i].addr);
		if (m->st.r[i].text) {
			buf_adds(&j, ", \"delay_reason\": ");
			json_add_string(&j, m->st.r[i].text);
		}
		buf_addc(&j, '}');
	}
	buf_adds(&j, "]}");
	fprintf(out, "%s\n", j.data);
	buf_free(&j);
}

/* qsort comparison of directory entry names. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The queue IDs in dir, sorted; *n set. Returns NULL (errno set) when the
 * directory cannot be read; a missing sub-directory is an empty list.
 */
static char **
list_dir(const char *path, size_t *n, int *failed)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t cap = 0;

	*n = 0;
	*failed = 0;
	if ((d = opendir(path)) == NULL) {
		*failed = errno != ENOENT;
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (!qid_valid(de->d_name))
			continue;	/* ".", "..", temp files */
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		names[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n > 0)
		qsort(names, *n, sizeof(*names), name_cmp);
	return names;
}

/*
 * List one spool directory. Returns 0, or an exit status when it cannot
 * be read (a message said why).
 */
static int
list_qdir(struct qlist *ql, enum qdir d)
{
	char path[PATH_BUF];
	char **names;
	size_t n;
	int failed;

	if (spool_path(ql->queue_dir, d, path, sizeof(path)) < 0) {
		log_warnx("queue directory name too long: %s", ql->queue_dir);
		return EX_UNAVAILABLE;
	}
	names = list_dir(path, &n, &failed);
	if (failed) {
		int e = errno;
		log_warnx("cannot list the mail queue: %s: %s", path,
		    strerror(e));
		return e == EACCES || e == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
	}
	for (size_t i = 0; i < n; i++) {
		struct qmsg m;
		memset(&m, 0, sizeof(m));
		m.qid = names[i];
		m.dir = d;
		if (load_msg(path, &m) == 0) {
			load_state(ql->queue_dir, &m);
			if (ql->json)
				print_json(ql->out, &m);
			else
				print_text(ql, &m);
			ql->count++;
			ql->bytes += m.env.size;
			qstate_free(&m.st);
		}
		qenv_free(&m.env);
		free(names[i]);
	}
	free(names);
	return 0;
}

/* The listing (see queue_cmd.h). */
int
queue_list(const char *queue_dir, int json, FILE *out)
{
	static const enum qdir order[] = { QD_NEW, QD_ACTIVE, QD_DEFERRED,
	    QD_HOLD };
	struct qlist ql;
	int status = 0;

	memset(&ql, 0, sizeof(ql));
	ql.queue_dir = queue_dir;
	ql.json = json;
	ql.out = out;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) &&
	    status == 0; i++)
		status = list_qdir(&ql, order[i]);
	if (status == 0 && !ql.json && ql.count == 0)
		fprintf(out, "Mail queue is empty\n");
	else if (status == 0 && !ql.json)
		fprintf(out, "-- %llu Kbytes in %zu Request%s.\n",
		    (ql.bytes + 1023) / 1024, ql.count, ql.count == 1 ? "" :
		    "s");
	if (fflush(out) == EOF && status == 0)
		status = EX_IOERR;
	return status;
}

/*
 * 1 when the caller may read the queue directories itself; otherwise
 * the listing comes from posternd.
 */
static int
spool_readable(const char *queue_dir)
{
	static const enum qdir dirs[] = { QD_NEW, QD_ACTIVE, QD_DEFERRED,
	    QD_HOLD, QD_STATE };
	char path[PATH_BUF];

	if (access(queue_dir, R_OK | X_OK) < 0)
		return errno != EACCES && errno != EPERM;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (spool_path(queue_dir, dirs[i], path, sizeof(path)) < 0)
			return 1;	/* list_qdir reports it */
		if (access(path, R_OK | X_OK) < 0 &&
		    (errno == EACCES || errno == EPERM))
			return 0;
	}
	return 1;
}

/*
 * The listing through posternd's control socket, for a caller who may
 * not read the spool (postqueue's way: the daemon, which can, lists).
 */
static int
queue_via_daemon(const char *queue_dir, int json)
{
	char reply[512];
	struct buf b = BUF_INIT;
	int rc;

	rc = ctl_stream(queue_dir, json ? "queue -j" : "queue", reply,
	    sizeof(reply), stdout);
	if (rc < 0 && (errno == ENOENT || errno == ECONNREFUSED)) {
		log_warnx("cannot list the mail queue: permission denied, and "
		    "posternd, which would list it, is not running (no "
		    "control socket at %s/%s); run postern queue as root or "
		    "the mail_owner user", queue_dir, CTL_SOCKET);
		return EX_NOPERM;
	}
	if (rc < 0) {
		log_warnx("cannot list the mail queue through posternd: "
		    "%s/%s: %s", queue_dir, CTL_SOCKET, strerror(errno));
		return errno == EACCES ? EX_NOPERM : EX_UNAVAILABLE;
	}
	if (rc > 0) {
		add_printable(&b, reply);
		log_warnx("cannot list the mail queue: posternd said: %s",
		    b.data ? b.data : "");
		buf_free(&b);
		/* authorized_mailq_users does not name the caller. */
		return strncmp(reply, "error perm ", 11) == 0 ? EX_NOPERM :
		    EX_UNAVAILABLE;
	}
	return fflush(stdout) == EOF ? EX_IOERR : 0;
}

/* postern queue / mailq. */
int
queue_cmd(int argc, char **argv, const char *confdir)
{
	struct config *cf;
	const char *queue_dir;
	int ch, json = 0, status;

	optind = 0;
	opterr = 0;
	while ((ch = getopt(argc, argv, "+j")) != -1) {
		if (ch != 'j') {
			fprintf(stderr, "postern: %s: invalid option -- '%c'\n",
			    argv[0], optopt);
			goto usage;
		}
		json = 1;
	}
	if (optind != argc) {
		fprintf(stderr, "postern: unexpected argument \"%s\"\n",
		    argv[optind]);
		goto usage;
	}
	cf = admin_config(confdir);
	queue_dir = conf_str(cf, "queue_directory");
	if (!spool_readable(queue_dir)) {
		status = queue_via_daemon(queue_dir, json);
		config_free(cf);
		return status;
	}
	/* The spool itself must be there; its sub-directories may not be. */
	if (access(queue_dir, R_OK | X_OK) < 0)
		fatalx_status(EX_UNAVAILABLE, "cannot list the mail queue: "
		    "%s: %s", queue_dir, strerror(errno));
	status = queue_list(queue_dir, json, stdout);
	config_free(cf);
	return status;
usage:
	fprintf(stderr, "%s\n", QUEUE_USAGE);
	return EX_USAGE;
}

/* postern flush [-i QID | -s DOMAIN]. */
int
flush_cmd(int argc, char **argv, const char *confdir)
{
	struct config *cf;
	struct flush_args fa;
	const char *qdir;
	struct buf b = BUF_INIT;
	char reply[512], req[300], err[200];
	int rc;

	if (flush_parse(argc, argv, &fa, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern flush: %s\n%s\n", err, FLUSH_USAGE);
		return EX_USAGE;
	}
	if (fa.qid != NULL)
		snprintf(req, sizeof(req), "flush -i %s", fa.qid);
	else if (fa.domain != NULL)
		snprintf(req, sizeof(req), "flush -s %s", fa.domain);
	else
		strlcpy(req, "flush", sizeof(req));
	cf = admin_config(confdir);
	qdir = conf_str(cf, "queue_directory");
	rc = ctl_request(qdir, req, reply, sizeof(reply));
	/* A stale socket file with no listener is ECONNREFUSED. */
	if (rc < 0 && (errno == ENOENT || errno == ECONNREFUSED))
		fatalx_status(EX_UNAVAILABLE, "cannot flush the mail queue: "
		    "posternd is not running (no control socket at %s/%s)",
		    qdir, CTL_SOCKET);
	if (rc < 0)
		fatalx_status(errno == EACCES ? EX_NOPERM : EX_UNAVAILABLE,
		    "cannot flush the mail queue: %s/%s: %s", qdir,
		    CTL_SOCKET, strerror(errno));
	if (rc > 0 && strncmp(reply, "error nomsg", 11) == 0) {
		fprintf(stderr, "postern flush: %s: no such message in the "
		    "queue\n", fa.qid ? fa.qid : "?");
		config_free(cf);
		return EX_NOINPUT;
	}
	if (rc > 0 && strncmp(reply, "error noop ", 11) == 0) {
		/* Nothing to deliver now (on hold...): say why; no error. */
		add_printable(&b, reply + 11);
		fprintf(stderr, "postern flush: %s\n", b.data ? b.data : "");
		buf_free(&b);
	} else if (rc > 0) {
		/* "error TEXT": show TEXT, sanitised like any remote text. */
		add_printable(&b, strncmp(reply, "error ", 6) == 0 ?
		    reply + 6 : reply);
		fatalx_status(strncmp(reply, "error perm ", 11) == 0 ?
		    EX_NOPERM : EX_SOFTWARE, "cannot flush the mail queue: "
		    "posternd said: %s", b.data ? b.data : "");
	} else if (fa.domain != NULL)
		fprintf(stderr, "postern flush: %s message%s with mail for %s "
		    "to deliver now\n", reply[2] ? reply + 3 : "0",
		    strcmp(reply, "ok 1") == 0 ? "" : "s", fa.domain);
	config_free(cf);
	return 0;
}
