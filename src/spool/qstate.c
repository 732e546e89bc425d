/*
 * qstate.c - the per-message delivery state record (state/QID).
 *
 * Only posternd writes it, through fs_replace, so it is always either the
 * previous complete record or the new one. The parser is strict: a record
 * that does not parse is treated by the caller as damaged (the message is
 * then delivered again to every recipient not known to be done, which is
 * the at-least-once side of the trade).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "lib/xalloc.h"
#include "spool/qstate.h"

static const char *const status_names[] = {
	[RS_PENDING] = "pending",
	[RS_SENT] = "sent",
	[RS_DEFERRED] = "deferred",
	[RS_FAILED] = "failed",
};

/* A state with n pending recipients. */
void
qstate_init(struct qstate *s, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->r = xcalloc(n ? n : 1, sizeof(*s->r));
}

/* Free a state. */
void
qstate_free(struct qstate *s)
{
	for (size_t i = 0; s->r && i < s->n; i++)
		free(s->r[i].text);
	free(s->r);
	memset(s, 0, sizeof(*s));
}

/* Set one recipient's outcome; newlines in text become spaces. */
void
qstate_set(struct qstate *s, size_t i, enum rcpt_status st, const char *dsn,
    const char *text)
{
	if (i >= s->n)
		return;
	s->r[i].st = st;
	strlcpy(s->r[i].dsn, dsn ? dsn : "", sizeof(s->r[i].dsn));
	free(s->r[i].text);
	s->r[i].text = NULL;
	if (text) {
		s->r[i].text = xstrdup(text);
		for (char *p = s->r[i].text; *p; p++)
			if (*p == '\n' || *p == '\r' || *p == '\0')
				*p = ' ';
	}
}

/* Count recipients with a status. */
size_t
qstate_count(const struct qstate *s, enum rcpt_status st)
{
	size_t c = 0;

	for (size_t i = 0; i < s->n; i++)
		if (s->r[i].st == st)
			c++;
	return c;
}

/* Status name. */
const char *
rcpt_status_name(enum rcpt_status st)
{
	if ((unsigned)st >= sizeof(status_names) / sizeof(status_names[0]))
		return "unknown";
	return status_names[st];
}

/* Serialize a state record. */
void
qstate_format(const struct qstate *s, struct buf *out)
{
	buf_addf(out, "%s\nattempts %d\nlast %.6f\n", QSTATE_MAGIC,
	    s->attempts, s->last);
	/* Only when set: a record without a warning reads as before. */
	if (s->warned)
		buf_adds(out, "warned 1\n");
	if (s->held > 0)
		buf_addf(out, "held %.6f\n", s->held);
	for (size_t i = 0; i < s->n; i++) {
		if (s->r[i].st == RS_PENDING)
			continue;
		buf_addf(out, "rcpt %zu %s %s %s\n", i,
		    rcpt_status_name(s->r[i].st),
		    s->r[i].dsn[0] ? s->r[i].dsn : "-",
		    s->r[i].text ? s->r[i].text : "");
	}
	buf_addf(out, "%s\n", QSTATE_END);
}

/*
 * Parse a non-negative decimal "digits[.digits]" strictly: strtol and
 * strtod would also take "", " 1", "+1", "1e999", "inf" and "nan", and an
 * infinite "last" would put the next retry at infinity. 0 or -1.
 */
static int
parse_decimal(const char *v, int fraction, double max, double *out)
{
	size_t n = strspn(v, "0123456789"), f = 0;

	if (n == 0 || n > 15)
		return -1;
	if (fraction && v[n] == '.') {
		f = strspn(v + n + 1, "0123456789");
		if (f == 0 || f > 9)
			return -1;
		f++;
	}
	if (v[n + f] != '\0')
		return -1;
	*out = strtod(v, NULL);
	return *out <= max ? 0 : -1;
}

/* Parse the value of an "rcpt" line; 0 or -1. */
static int
parse_rcpt(char *v, struct qstate *s, char *err, size_t errlen)
{
	char *idx, *st, *dsn, *text, *end;
	unsigned long i;
	int k;

	idx = strsep(&v, " ");
	st = v ? strsep(&v, " ") : NULL;
	dsn = v ? strsep(&v, " ") : NULL;
	text = v ? v : (char *)"";
	if (idx == NULL || st == NULL || dsn == NULL || !isdigit((unsigned char)*idx)) {
		snprintf(err, errlen, "malformed rcpt line");
		return -1;
	}
	errno = 0;
	i = strtoul(idx, &end, 10);
	if (errno || *end || i >= s->n) {
		snprintf(err, errlen, "recipient index %s out of range", idx);
		return -1;
	}
	for (k = RS_SENT; k <= RS_FAILED; k++)
		if (strcmp(st, status_names[k]) == 0)
			break;
	if (k > RS_FAILED) {
		snprintf(err, errlen, "unknown recipient status \"%.20s\"", st);
		return -1;
	}
	qstate_set(s, i, (enum rcpt_status)k, strcmp(dsn, "-") ? dsn : "",
	    *text ? text : NULL);
	return 0;
}

/* Parse a state record. */
int
qstate_parse(const char *data, size_t len, size_t nrcpt, struct qstate *s,
    char *err, size_t errlen)
{
	char *copy, *p, *line, *v;
	int lineno = 0, ended = 0, rc = -1;

	qstate_init(s, nrcpt);
	/* An empty file may come as data == NULL: memchr(NULL, ...) is UB. */
	if (data == NULL)
		data = "";
	if (memchr(data, '\0', len) != NULL) {
		snprintf(err, errlen, "NUL byte in state record");
		goto fail;
	}
	copy = xstrndup(data, len);
	p = copy;
	while ((line = strsep(&p, "\n")) != NULL) {
		lineno++;
		if (lineno == 1) {
			if (strcmp(line, QSTATE_MAGIC) != 0) {
				snprintf(err, errlen, "not a state record "
				    "(first line is not \"%s\")", QSTATE_MAGIC);
				goto out;
			}
			continue;
		}
		if (ended) {
			if (*line == '\0' && p == NULL)
				break;
			snprintf(err, errlen, "data after the end marker");
			goto out;
		}
		if (strcmp(line, QSTATE_END) == 0) {
			ended = 1;
			continue;
		}
		v = strchr(line, ' ');
		if (v == NULL) {
			snprintf(err, errlen, "line %d: no value", lineno);
			goto out;
		}
		*v++ = '\0';
		if (strcmp(line, "attempts") == 0) {
			double a;
			if (parse_decimal(v, 0, 1000000, &a) < 0) {
				snprintf(err, errlen, "line %d: bad attempts", lineno);
				goto out;
			}
			s->attempts = (int)a;
		} else if (strcmp(line, "last") == 0) {
			/* Beyond the year 5000 is not a time we wrote. */
			if (parse_decimal(v, 1, 1e11, &s->last) < 0) {
				snprintf(err, errlen, "line %d: bad time", lineno);
				goto out;
			}
		} else if (strcmp(line, "warned") == 0) {
			if (strcmp(v, "1") != 0 && strcmp(v, "0") != 0) {
				snprintf(err, errlen, "line %d: bad warned", lineno);
				goto out;
			}
			s->warned = v[0] == '1';
		} else if (strcmp(line, "held") == 0) {
			if (parse_decimal(v, 1, 1e11, &s->held) < 0) {
				snprintf(err, errlen, "line %d: bad time", lineno);
				goto out;
			}
		} else if (strcmp(line, "rcpt") == 0) {
			char e[128];
			if (parse_rcpt(v, s, e, sizeof(e)) < 0) {
				snprintf(err, errlen, "line %d: %s", lineno, e);
				goto out;
			}
		} else {
			snprintf(err, errlen, "line %d: unknown record \"%.20s\"",
			    lineno, line);
			goto out;
		}
	}
	if (!ended) {
		snprintf(err, errlen, "truncated: no \"%s\" line", QSTATE_END);
		goto out;
	}
	rc = 0;
out:
	free(copy);
	if (rc == 0)
		return 0;
fail:
	qstate_free(s);
	return -1;
}
