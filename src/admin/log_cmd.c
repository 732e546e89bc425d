/*
 * log_cmd.c - `postern log`: the mail log's lines about one message or
 * one address, or the most recent lines.
 *
 *   postern log [-n count] [-f file] [queue_id | address]
 *
 * The log is -f FILE, else maillog_file, else the first of the usual
 * syslog files that exists (/var/log/mail.log, /var/log/maillog,
 * /var/log/mail), else the journal (journalctl, facility mail). Only
 * postern's lines count: program "$syslog_name/..." (postern/qmgr,
 * postern/smtp, ...).
 *
 * A queue ID shows every line of that message, and of the notifications
 * it caused ("sender non-delivery notification: ID"). An address shows
 * every line of every message whose log mentions <address> (as from=<>,
 * to=<> or orig_to=<>), so one command tells a message's whole story:
 * pickup, each try, the result, the bounce.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/log_cmd.h"
#include "conf/config.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "spool/spool.h"

#define LOG_USAGE	"usage: postern log [-n count] [-f file] " \
			    "[queue_id | address]"
#define TAIL_DEFAULT	30

static const char *const syslog_files[] = {
	"/var/log/mail.log", "/var/log/maillog", "/var/log/mail",
};
static const char *const journalctl_paths[] = {
	"/usr/bin/journalctl", "/bin/journalctl",
};

/* The lines kept, in order. */
struct lines {
	char	**v;
	size_t	  n;
	size_t	  cap;
};

static void
lines_add(struct lines *l, const char *s, size_t len)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n] = xmalloc(len + 1);
	memcpy(l->v[l->n], s, len);
	l->v[l->n][len] = '\0';
	l->n++;
}

static void
lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/*
 * Where the message text of a log line starts: after "name/prog[pid]: "
 * with name = syslog_name; NULL when the line is not postern's.
 */
static const char *
line_text(const char *line, const char *name)
{
	size_t nl = strlen(name);
	const char *p = line, *close;

	while ((p = strstr(p, name)) != NULL) {
		/* The program field follows a space (after the host). */
		if ((p == line || p[-1] == ' ') && p[nl] == '/') {
			close = strstr(p + nl, "]: ");
			if (close != NULL && memchr(p, ' ', (size_t)(close -
			    p)) == NULL)
				return close + 3;
		}
		p += nl;
	}
	return NULL;
}

/* The queue ID a line's text starts with ("QID: ..."), into qid. */
static int
text_qid(const char *text, char *qid, size_t qidlen)
{
	size_t n = strspn(text, "0123456789ABCDEF");

	if (n < 6 || n >= qidlen || text[n] != ':')
		return -1;
	memcpy(qid, text, n);
	qid[n] = '\0';
	return qid_valid(qid) ? 0 : -1;
}

/* A set of queue IDs: few, so a list. */
struct idset {
	char	(*v)[QID_MAX];
	size_t	  n;
};

static int
idset_has(const struct idset *s, const char *qid)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], qid) == 0)
			return 1;
	return 0;
}

static void
idset_add(struct idset *s, const char *qid)
{
	if (idset_has(s, qid))
		return;
	s->v = xreallocarray(s->v, s->n + 1, sizeof(*s->v));
	strlcpy(s->v[s->n++], qid, QID_MAX);
}

/* Read postern's lines from f into l. */
static void
read_lines(FILE *f, const char *name, struct lines *l)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (line_text(line, name) != NULL)
			lines_add(l, line, (size_t)len);
	}
	free(line);
}

/* 1 when text mentions <addr> (case-insensitive). */
static int
mentions(const char *text, const char *addr)
{
	size_t al = strlen(addr);

	for (const char *p = strchr(text, '<'); p != NULL;
	    p = strchr(p + 1, '<'))
		if (strncasecmp(p + 1, addr, al) == 0 && p[1 + al] == '>')
			return 1;
	return 0;
}

/* Open the log: -f, maillog_file, the syslog files, or the journal. */
static FILE *
open_log(const char *file, const struct config *cf, int *is_pipe,
    char *what, size_t whatlen)
{
	const char *mf = cf != NULL ? conf_str(cf, "maillog_file") : "";
	FILE *f;

	*is_pipe = 0;
	if (file == NULL && mf[0] != '\0' && strcmp(mf, "/dev/stdout") != 0 &&
	    strcmp(mf, "/dev/stderr") != 0)
		file = mf;
	if (file != NULL) {
		strlcpy(what, file, whatlen);
		return fopen(file, "re");
	}
	for (size_t i = 0; i < sizeof(syslog_files) / sizeof(syslog_files[0]);
	    i++) {
		if ((f = fopen(syslog_files[i], "re")) != NULL) {
			strlcpy(what, syslog_files[i], whatlen);
			return f;
		}
		if (errno == EACCES) {
			strlcpy(what, syslog_files[i], whatlen);
			return NULL;
		}
	}
	for (size_t i = 0; i < sizeof(journalctl_paths) /
	    sizeof(journalctl_paths[0]); i++) {
		char cmd[128];
		if (access(journalctl_paths[i], X_OK) < 0)
			continue;
		/* A fixed command line: nothing of the caller's in it. */
		snprintf(cmd, sizeof(cmd), "%s -q --no-pager -o short "
		    "SYSLOG_FACILITY=2", journalctl_paths[i]);
		strlcpy(what, "the journal", whatlen);
		*is_pipe = 1;
		return popen(cmd, "re");
	}
	strlcpy(what, "", whatlen);
	errno = ENOENT;
	return NULL;
}

/* postern log */
int
log_cmd(int argc, char **argv, const char *confdir)
{
	struct config *cf;
	struct lines all = { 0 }, out = { 0 };
	struct idset ids = { 0 };
	const char *file = NULL, *name, *want = NULL, *errstr;
	char what[512], err[512], qid[QID_MAX];
	long long count = -1;
	int ch, is_pipe, by_qid = 0;
	size_t first;
	FILE *f;

	optind = 1;
	opterr = 0;
	while ((ch = getopt(argc, argv, "f:n:")) != -1) {
		switch (ch) {
		case 'f':
			file = optarg;
			break;
		case 'n':
			if (parse_ll(optarg, 1, 10000000, &count, &errstr) < 0) {
				fprintf(stderr, "postern log: -n %s: %s\n",
				    optarg, errstr);
				return EX_USAGE;
			}
			break;
		default:
			fprintf(stderr, "postern log: invalid option -- '%c'\n%s\n",
			    optopt, LOG_USAGE);
			return EX_USAGE;
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "%s\n", LOG_USAGE);
		return EX_USAGE;
	}
	if (optind < argc) {
		want = argv[optind];
		by_qid = qid_valid(want);
		if (!by_qid && (want[0] == '\0' || strpbrk(want, "<> \t") !=
		    NULL)) {
			fprintf(stderr, "postern log: \"%s\" is neither a queue "
			    "ID (like 4F2A9C01B3) nor an address (like "
			    "you@example.com)\n", want);
			return EX_USAGE;
		}
		if (by_qid)
			idset_add(&ids, want);
	}
	cf = config_load(confdir, err, sizeof(err));
	if (cf == NULL && file == NULL) {
		fprintf(stderr, "postern log: %s\n", err);
		return EX_CONFIG;
	}
	name = cf != NULL ? conf_str(cf, "syslog_name") : "postern";
	f = open_log(file, cf, &is_pipe, what, sizeof(what));
	if (f == NULL) {
		int saved = errno;
		if (what[0] == '\0')
			fprintf(stderr, "postern log: no mail log found: set "
			    "maillog_file in main.cf, or name the file with "
			    "-f\n");
		else
			fprintf(stderr, "postern log: cannot read %s: %s%s\n",
			    what, strerror(saved), saved == EACCES ?
			    " (run as root, or in group adm)" : "");
		config_free(cf);
		return saved == EACCES ? EX_NOPERM : EX_NOINPUT;
	}
	read_lines(f, name, &all);
	if (is_pipe)
		pclose(f);
	else
		fclose(f);

	/* Addresses: the messages whose lines mention it. */
	if (want != NULL && !by_qid)
		for (size_t i = 0; i < all.n; i++) {
			const char *t = line_text(all.v[i], name);
			if (mentions(t, want) && text_qid(t, qid,
			    sizeof(qid)) == 0)
				idset_add(&ids, qid);
		}
	for (size_t i = 0; i < all.n; i++) {
		const char *t = line_text(all.v[i], name), *nb;
		if (want != NULL && (text_qid(t, qid, sizeof(qid)) < 0 ||
		    !idset_has(&ids, qid)))
			continue;
		out.v = xreallocarray(out.v, out.n + 1, sizeof(*out.v));
		out.v[out.n++] = all.v[i];
		/* Follow the message's notifications (bounce, delay). */
		if (want != NULL && (nb = strstr(t, " notification: ")) !=
		    NULL) {
			size_t n = strspn(nb + 15, "0123456789ABCDEF");
			if (n < sizeof(qid)) {
				memcpy(qid, nb + 15, n);
				qid[n] = '\0';
				if (qid_valid(qid))
					idset_add(&ids, qid);
			}
		}
	}
	if (count < 0)
		count = want == NULL ? TAIL_DEFAULT : (long long)out.n;
	first = out.n > (size_t)count ? out.n - (size_t)count : 0;
	for (size_t i = first; i < out.n; i++)
		printf("%s\n", out.v[i]);
	if (out.n == 0)
		fprintf(stderr, "postern log: no lines%s%s in %s\n",
		    want ? " about " : "", want ? want : "", what);
	free(out.v);
	free(ids.v);
	lines_free(&all);
	config_free(cf);
	return out.n == 0 && want != NULL ? EX_UNAVAILABLE : 0;
}
