/*
 * qfile.c - write and read the queue file's envelope block.
 *
 * The envelope is text, one "key value" record per line, so that a person
 * with less(1) can read a queued message. The parser is strict because it
 * guards the daemon: anything it does not fully understand is reported as
 * corrupt (the caller moves the file to corrupt/), never half-delivered.
 * Both directions are pure functions of memory; see qfile.h for the layout
 * and postern-spool(5) for what happens to a file that does not parse.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>

#include "lib/xalloc.h"
#include "mail/dsn.h"
#include "spool/qfile.h"

/* Largest uid we accept: (uid_t)-1 means "no uid" to the kernel. */
#define UID_LIMIT	4294967294LL
/* Arrival times beyond the year 5000 are not plausible. */
#define ARRIVAL_LIMIT	100000000000LL

/* Parser state for one file: what has been seen so far. */
struct qparse {
	struct qenv	*e;
	int		 have_arrival, have_uid, have_sender, have_size;
	int		 seen_flags;
	int		 orig_ok;	/* an orig-recipient may follow */
	char		*err;
	size_t		 errlen;
};

/* Copy every field of from into to (which must be empty). */
void
qenv_copy(struct qenv *to, const struct qenv *from)
{
	*to = *from;
	to->sender = xstrdup(from->sender);
	to->notify = from->notify ? xstrdup(from->notify) : NULL;
	to->ret = from->ret ? xstrdup(from->ret) : NULL;
	to->envid = from->envid ? xstrdup(from->envid) : NULL;
	to->rcpt = NULL;
	to->nrcpt = 0;
	for (size_t i = 0; i < from->nrcpt; i++)
		qenv_add_rcpt(to, from->rcpt[i].addr, from->rcpt[i].orig);
}

/* Append one recipient. */
void
qenv_add_rcpt(struct qenv *e, const char *addr, const char *orig)
{
	e->rcpt = xreallocarray(e->rcpt, e->nrcpt + 1, sizeof(*e->rcpt));
	e->rcpt[e->nrcpt].addr = xstrdup(addr);
	e->rcpt[e->nrcpt].orig = orig ? xstrdup(orig) : NULL;
	e->nrcpt++;
}

/* Free an envelope's strings and zero it. */
void
qenv_free(struct qenv *e)
{
	for (size_t i = 0; i < e->nrcpt; i++) {
		free(e->rcpt[i].addr);
		free(e->rcpt[i].orig);
	}
	free(e->rcpt);
	free(e->sender);
	free(e->notify);
	free(e->ret);
	free(e->envid);
	memset(e, 0, sizeof(*e));
}

/* 1 when s is safe as a one-line record value. */
static int
value_ok(const char *s)
{
	return s == NULL || strpbrk(s, "\r\n") == NULL;
}

/* Format the envelope block. */
int
qfile_format_env(const struct qenv *e, struct buf *out)
{
	/* A line break in a value would forge a record: refuse to write. */
	if (e->sender == NULL || !value_ok(e->sender) || !value_ok(e->notify) ||
	    !value_ok(e->ret) || !value_ok(e->envid))
		return -1;
	for (size_t i = 0; i < e->nrcpt; i++)
		if (!value_ok(e->rcpt[i].addr) || !value_ok(e->rcpt[i].orig))
			return -1;

	/* Microseconds: enough to order messages, short enough to read. */
	buf_addf(out, "%s\narrival %.6f\nuid %lu\nsender %s\n", QFILE_MAGIC,
	    e->arrival, (unsigned long)e->uid, e->sender);
	if (e->notify)
		buf_addf(out, "notify %s\n", e->notify);
	if (e->ret)
		buf_addf(out, "ret %s\n", e->ret);
	if (e->envid)
		buf_addf(out, "envid %s\n", e->envid);
	if (e->flags & (QF_8BIT | QF_EXPANDED | QF_REMOTE))
		buf_addf(out, "flags%s%s%s\n", (e->flags & QF_8BIT) ? " 8bit" :
		    "", (e->flags & QF_EXPANDED) ? " expanded" : "",
		    (e->flags & QF_REMOTE) ? " remote" : "");
	for (size_t i = 0; i < e->nrcpt; i++) {
		buf_addf(out, "recipient %s\n", e->rcpt[i].addr);
		if (e->rcpt[i].orig)
			buf_addf(out, "orig-recipient %s\n", e->rcpt[i].orig);
	}
	/* size last: the parser knows the envelope must end right after. */
	buf_addf(out, "size %zu\n%s\n", e->size, QFILE_END);
	return 0;
}

static int perr(struct qparse *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* Record a parse error; always returns -1 so callers can return it. */
static int
perr(struct qparse *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Parse "seconds[.fraction]" strictly (no sign, no exponent, no spaces). */
static int
parse_arrival(const char *v, double *out)
{
	const char *errstr = NULL;
	char ipart[16];
	size_t n = strspn(v, "0123456789"), f;

	/* strtod alone would accept " 1", "+1", "1e9", "inf" and "0x1p3". */
	if (n == 0 || n >= sizeof(ipart))
		return -1;
	memcpy(ipart, v, n);
	ipart[n] = '\0';
	if (v[n] == '.') {
		f = strspn(v + n + 1, "0123456789");
		if (f == 0 || f > 9 || v[n + 1 + f] != '\0')
			return -1;
	} else if (v[n] != '\0')
		return -1;
	(void)strtonum(ipart, 0, ARRIVAL_LIMIT, &errstr);
	if (errstr != NULL)
		return -1;
	*out = strtod(v, NULL);
	return 0;
}

/* Store a value that may be given once: a second one is corrupt. */
static int
set_once(struct qparse *p, char **slot, const char *key, const char *v)
{
	if (*slot != NULL)
		return perr(p, "duplicate %s record", key);
	*slot = xstrdup(v);
	return 0;
}

/* Handle the records that carry numbers: arrival, uid, size. */
static int
record_number(struct qparse *p, const char *key, const char *v)
{
	const char *errstr = NULL;
	long long n;

	if (strcmp(key, "arrival") == 0) {
		if (p->have_arrival++ || parse_arrival(v, &p->e->arrival) < 0)
			return perr(p, "bad or duplicate arrival record \"%.40s\"", v);
		return 0;
	}
	if (strcmp(key, "uid") == 0) {
		n = strtonum(v, 0, UID_LIMIT, &errstr);
		if (p->have_uid++ || errstr != NULL)
			return perr(p, "bad or duplicate uid record \"%.40s\"", v);
		p->e->uid = (uid_t)n;
		return 0;
	}
	/* Only size is left; the caller dispatched on the key. */
	n = strtonum(v, 0, LLONG_MAX, &errstr);
	if (p->have_size++ || errstr != NULL)
		return perr(p, "bad or duplicate size record \"%.40s\"", v);
	p->e->size = (size_t)n;
	return 0;
}

/* "flags 8bit expanded remote": known words, each once, one record. */
static int
flags_record(struct qparse *p, struct qenv *e, const char *v)
{
	static const struct { const char *word; unsigned bit; } fw[] = {
		{ "8bit", QF_8BIT },
		{ "expanded", QF_EXPANDED },
		{ "remote", QF_REMOTE },
	};
	const char *w = v;
	size_t len, i;

	if (p->seen_flags++ || *v == '\0')
		return perr(p, "bad or duplicate flags record \"%.40s\"", v);
	while (*w != '\0') {
		len = strcspn(w, " ");
		for (i = 0; i < sizeof(fw) / sizeof(fw[0]); i++)
			if (strlen(fw[i].word) == len &&
			    memcmp(fw[i].word, w, len) == 0)
				break;
		if (i == sizeof(fw) / sizeof(fw[0]) || (e->flags & fw[i].bit))
			return perr(p, "bad or duplicate flags record "
			    "\"%.40s\"", v);
		e->flags |= fw[i].bit;
		w += len;
		if (*w == ' ' && *++w == '\0')
			return perr(p, "bad flags record \"%.40s\"", v);
	}
	return 0;
}

/* Handle one "key value" record of the envelope. */
static int
record(struct qparse *p, const char *key, const char *v)
{
	struct qenv *e = p->e;
	int after_rcpt = p->orig_ok;

	/* orig-recipient is legal only on the line right after recipient. */
	p->orig_ok = 0;
	if (p->have_size)
		return perr(p, "missing end-of-envelope marker after size");
	if (strcmp(key, "arrival") == 0 || strcmp(key, "uid") == 0 ||
	    strcmp(key, "size") == 0)
		return record_number(p, key, v);
	if (strcmp(key, "sender") == 0) {
		p->have_sender = 1;
		return set_once(p, &e->sender, key, v);
	}
	/* Only the sender may be empty (the null sender). */
	if (*v == '\0')
		return perr(p, "empty %s record", key);
	if (strcmp(key, "recipient") == 0) {
		qenv_add_rcpt(e, v, NULL);
		p->orig_ok = 1;
		return 0;
	}
	if (strcmp(key, "orig-recipient") == 0) {
		if (!after_rcpt)
			return perr(p, "orig-recipient not after a recipient");
		e->rcpt[e->nrcpt - 1].orig = xstrdup(v);
		return 0;
	}
	/* NOTIFY= goes to the relay as is: sendmail -N writes nothing
	   else, so anything else is a forged or damaged file. */
	if (strcmp(key, "notify") == 0) {
		if (!dsn_notify_valid(v))
			return perr(p, "bad notify record \"%.40s\"", v);
		return set_once(p, &e->notify, key, v);
	}
	if (strcmp(key, "envid") == 0)
		return set_once(p, &e->envid, key, v);
	if (strcmp(key, "ret") == 0) {
		if (strcmp(v, "FULL") != 0 && strcmp(v, "HDRS") != 0)
			return perr(p, "bad ret record \"%.40s\"", v);
		return set_once(p, &e->ret, key, v);
	}
	if (strcmp(key, "flags") == 0)
		return flags_record(p, e, v);
	return perr(p, "unknown record \"%.40s\"", key);
}

/* Split one envelope line into key and value and hand it to record(). */
static int
envelope_line(struct qparse *p, char *line)
{
	char *sp;

	if (strchr(line, '\r') != NULL)
		return perr(p, "carriage return in envelope");
	sp = strchr(line, ' ');
	if (sp == NULL) {
		/* "sender" with nothing after it is the null sender too. */
		if (strcmp(line, "sender") == 0)
			return record(p, line, "");
		return perr(p, "malformed envelope line \"%.40s\"", line);
	}
	*sp = '\0';
	return record(p, line, sp + 1);
}

/* Check that the required records were all present. */
static int
envelope_complete(struct qparse *p)
{
	if (!p->have_arrival)
		return perr(p, "no arrival record");
	if (!p->have_uid)
		return perr(p, "no uid record");
	if (!p->have_sender)
		return perr(p, "no sender record");
	if (!p->have_size)
		return perr(p, "no size record");
	if (p->e->nrcpt == 0)
		return perr(p, "no recipient");
	return 0;
}

/*
 * Parse the envelope at the start of data (len bytes of a file of flen
 * bytes). Returns 0, -1 with err, or 1 when the end marker is not within
 * len bytes but the file goes on (read more and call again).
 */
static int
parse_env(const char *data, size_t len, size_t flen, struct qenv *e,
    size_t *msg_off, char *err, size_t errlen)
{
	struct qparse p = { .e = e, .err = err, .errlen = errlen };
	const char *nl;
	char *line = NULL;
	size_t pos = 0, n;
	int rc = -1, first = 1;

	memset(e, 0, sizeof(*e));
	for (;;) {
		/* An empty file may come with data == NULL: no memchr then. */
		nl = pos < len ? memchr(data + pos, '\n', len - pos) : NULL;
		if (nl == NULL) {
			if (len < flen) {
				rc = 1;
				goto out;
			}
			perr(&p, "truncated: no end-of-envelope marker");
			goto out;
		}
		n = (size_t)(nl - (data + pos));
		/* A NUL would make the C string shorter than the line. */
		if (memchr(data + pos, '\0', n) != NULL) {
			perr(&p, "NUL byte in envelope");
			goto out;
		}
		free(line);
		line = xstrndup(data + pos, n);
		pos += n + 1;
		if (first) {
			if (strcmp(line, QFILE_MAGIC) != 0) {
				perr(&p, "not a postern queue file (bad version line)");
				goto out;
			}
			first = 0;
			continue;
		}
		if (strcmp(line, QFILE_END) == 0)
			break;
		if (envelope_line(&p, line) < 0)
			goto out;
	}
	if (envelope_complete(&p) < 0)
		goto out;
	/* The length check is what catches a partial write. */
	if (flen - pos != e->size) {
		perr(&p, "%s: message is %zu bytes, envelope says %zu",
		    flen - pos < e->size ? "truncated" : "size mismatch",
		    flen - pos, e->size);
		goto out;
	}
	*msg_off = pos;
	rc = 0;
out:
	free(line);
	if (rc != 0)
		qenv_free(e);
	return rc;
}

/* Parse a whole queue file. */
int
qfile_parse(const char *data, size_t len, struct qenv *e, size_t *msg_off,
    char *err, size_t errlen)
{
	return parse_env(data, len, len, e, msg_off, err, errlen);
}

/* Parse the envelope from the head of a file (see qfile.h). */
int
qfile_parse_head(const char *data, size_t len, size_t flen, struct qenv *e,
    size_t *msg_off, char *err, size_t errlen)
{
	if (len > flen) {
		memset(e, 0, sizeof(*e));
		snprintf(err, errlen, "size mismatch: read %zu bytes of a "
		    "%zu-byte file", len, flen);
		return -1;
	}
	return parse_env(data, len, flen, e, msg_off, err, errlen);
}
