/*
 * queue_cmd.c - `postern queue` (alias mailq) and `postern flush`.
 *
 * The listing reads the spool directly: each queue file's envelope
 * (qfile_parse) and its state record (qstate_parse), so it works whether
 * or not posternd is running. The layout is Postfix's postqueue -p, which
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
#define FLUSH_USAGE	"usage: postern flush"
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
	if (fs_read_file(path, &data, STATE_LIMIT) < 0) {
		if (errno != ENOENT)
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
	if (fs_read_file(path, &data, QFILE_LIMIT) < 0) {
		if (errno != ENOENT)	/* ENOENT: the daemon moved it */
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
		printf("-Queue ID-  --Size-- ----Arrival Time---- "
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
	printf("%s\n", line.data);
	buf_free(&line);
}

/* Print one message as a postqueue -j JSON line. */
static void
print_json(const struct qmsg *m)
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
	printf("%s\n", j.data);
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

/* List one spool directory; an unreadable one ends the program. */
static void
list_qdir(struct qlist *ql, enum qdir d)
{
	char path[PATH_BUF];
	char **names;
	size_t n;
	int failed;

	if (spool_path(ql->queue_dir, d, path, sizeof(path)) < 0)
		fatalx_status(EX_UNAVAILABLE, "queue directory name too long: "
		    "%s", ql->queue_dir);
	names = list_dir(path, &n, &failed);
	if (failed)
		fatalx_status(errno == EACCES || errno == EPERM ? EX_NOPERM :
		    EX_UNAVAILABLE, "cannot list the mail queue: %s: %s", path,
		    strerror(errno));
	for (size_t i = 0; i < n; i++) {
		struct qmsg m;
		memset(&m, 0, sizeof(m));
		m.qid = names[i];
		m.dir = d;
		if (load_msg(path, &m) == 0) {
			load_state(ql->queue_dir, &m);
			if (ql->json)
				print_json(&m);
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
}

/* postern queue / mailq. */
int
queue_cmd(int argc, char **argv, const char *confdir)
{
	static const enum qdir order[] = { QD_NEW, QD_ACTIVE, QD_DEFERRED,
	    QD_HOLD };
	struct config *cf;
	struct qlist ql;
	int ch, status = 0;

	memset(&ql, 0, sizeof(ql));
	optind = 0;
	opterr = 0;
	while ((ch = getopt(argc, argv, "+j")) != -1) {
		if (ch != 'j') {
			fprintf(stderr, "postern: %s: invalid option -- '%c'\n",
			    argv[0], optopt);
			goto usage;
		}
		ql.json = 1;
	}
	if (optind != argc) {
		fprintf(stderr, "postern: unexpected argument \"%s\"\n",
		    argv[optind]);
		goto usage;
	}
	cf = admin_config(confdir);
	ql.queue_dir = conf_str(cf, "queue_directory");
	/* The spool itself must be there; its sub-directories may not be. */
	if (access(ql.queue_dir, R_OK | X_OK) < 0)
		fatalx_status(errno == EACCES || errno == EPERM ? EX_NOPERM :
		    EX_UNAVAILABLE, "cannot list the mail queue: %s: %s",
		    ql.queue_dir, strerror(errno));
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		list_qdir(&ql, order[i]);
	if (!ql.json && ql.count == 0)
		printf("Mail queue is empty\n");
	else if (!ql.json)
		printf("-- %llu Kbytes in %zu Request%s.\n",
		    (ql.bytes + 1023) / 1024, ql.count, ql.count == 1 ? "" : "s");
	config_free(cf);
	if (fflush(stdout) == EOF && status == 0)
		status = EX_IOERR;
	return status;
usage:
	fprintf(stderr, "%s\n", QUEUE_USAGE);
	return EX_USAGE;
}

/* postern flush. */
int
flush_cmd(int argc, char **argv, const char *confdir)
{
	struct config *cf;
	const char *qdir;
	struct buf b = BUF_INIT;
	char reply[512];
	int rc;

	if (argc != 1) {
		fprintf(stderr, "postern: flush takes no arguments\n%s\n",
		    FLUSH_USAGE);
		return EX_USAGE;
	}
	cf = admin_config(confdir);
	qdir = conf_str(cf, "queue_directory");
	rc = ctl_request(qdir, "flush", reply, sizeof(reply));
	/* A stale socket file with no listener is ECONNREFUSED. */
	if (rc < 0 && (errno == ENOENT || errno == ECONNREFUSED))
		fatalx_status(EX_UNAVAILABLE, "cannot flush the mail queue: "
		    "posternd is not running (no control socket at %s/%s)",
		    qdir, CTL_SOCKET);
	if (rc < 0)
		fatalx_status(errno == EACCES ? EX_NOPERM : EX_UNAVAILABLE,
		    "cannot flush the mail queue: %s/%s: %s", qdir,
		    CTL_SOCKET, strerror(errno));
	if (rc > 0) {
		/* "error TEXT": show TEXT, sanitised like any remote text. */
		add_printable(&b, strncmp(reply, "error ", 6) == 0 ?
		    reply + 6 : reply);
		fatalx_status(EX_SOFTWARE, "cannot flush the mail queue: "
		    "posternd said: %s", b.data ? b.data : "");
	}
	config_free(cf);
	return 0;
}
