/*
 * hchecks.c - smtp_header_checks: header_checks(5) on the way out.
 *
 * Postfix's SMTP client runs these tables on each logical header field
 * as it sends a message, with the actions that make sense there: a field
 * can be dropped, replaced, preceded by another one, or logged. Actions
 * that change where or whether the message goes (REJECT, DISCARD, HOLD,
 * REDIRECT, FILTER, BCC) belong to Postfix's cleanup server, which
 * postern does not have; here they keep the field and say so in the log,
 * once per match, rather than fail the delivery or be ignored silently.
 *
 * Text that REPLACE or PREPEND would put in the header block must be a
 * header field: anything else would end the header block early and push
 * the fields after it into the body.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "mail/hchecks.h"

#define PARAM		"smtp_header_checks"
#define SHOW_FIELD	60	/* bytes of a field shown in the log */

enum hchk_action {
	HA_KEEP,		/* DUNNO, OK */
	HA_IGNORE,
	HA_REPLACE,
	HA_PREPEND,
	HA_WARN,
	HA_INFO,
	HA_OTHER,		/* an action that needs Postfix's cleanup */
	HA_UNKNOWN,
};

/* header_checks(5)'s action names, by what they do here. */
static const struct {
	const char		*name;
	enum hchk_action	 action;
} actions[] = {
	{ "BCC",	HA_OTHER },
	{ "DISCARD",	HA_OTHER },
	{ "DUNNO",	HA_KEEP },
	{ "FILTER",	HA_OTHER },
	{ "HOLD",	HA_OTHER },
	{ "IGNORE",	HA_IGNORE },
	{ "INFO",	HA_INFO },
	{ "OK",		HA_KEEP },
	{ "PREPEND",	HA_PREPEND },
	{ "REDIRECT",	HA_OTHER },
	{ "REJECT",	HA_OTHER },
	{ "REPLACE",	HA_REPLACE },
	{ "STRIP",	HA_OTHER },
	{ "WARN",	HA_WARN },
};

/* Length of the field at p: its first line, its continuation lines. */
static size_t
field_len(const char *p, size_t left)
{
	const char *nl;
	size_t n = 0;

	do {
		nl = memchr(p + n, '\n', left - n);
		n = nl ? (size_t)(nl - p) + 1 : left;
	} while (n < left && (p[n] == ' ' || p[n] == '\t'));
	return n;
}

/* The action named by the word w (wlen bytes, any case). */
static enum hchk_action
action_find(const char *w, size_t wlen)
{
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strlen(actions[i].name) == wlen &&
		    strncasecmp(actions[i].name, w, wlen) == 0)
			return actions[i].action;
	return HA_UNKNOWN;
}

/*
 * Whether s can stand in the header block as one field: a name of
 * printable ASCII without ':' (white space may precede the colon, as
 * RFC 5322's obsolete syntax allows), then ':'; every line break
 * followed by white space and more than white space; no CR.
 */
static int
is_field(const char *s)
{
	const char *p = s, *q;

	while ((unsigned char)*p > 32 && (unsigned char)*p < 127 && *p != ':')
		p++;
	if (p == s)
		return 0;
	p += strspn(p, " \t");
	if (*p != ':')
		return 0;
	for (; *p != '\0'; p++) {
		if (*p == '\r')
			return 0;
		if (*p != '\n')
			continue;
		if (p[1] != ' ' && p[1] != '\t')
			return 0;
		q = p + 1 + strspn(p + 1, " \t");
		if (*q == '\n' || *q == '\0')
			return 0;
	}
	return 1;
}

/* s for a log line: at most max bytes, control characters as spaces. */
static void
show(char *dst, size_t size, const char *s, size_t max)
{
	size_t i;

	for (i = 0; i + 1 < size && i < max && s[i] != '\0'; i++)
		dst[i] = (unsigned char)s[i] < 32 || s[i] == 127 ? ' ' : s[i];
	dst[i] = '\0';
}

/* Log what a WARN, INFO or refused action says about a field. */
static void
log_action(enum hchk_action a, const char *qid, const char *key,
    const char *word, size_t wlen, const char *text, const char *tables)
{
	char field[SHOW_FIELD + 1], txt[512], w[32];

	show(field, sizeof(field), key, SHOW_FIELD);
	show(txt, sizeof(txt), text, sizeof(txt) - 1);
	show(w, sizeof(w), word, wlen);
	switch (a) {
	case HA_WARN:
	case HA_INFO:
		/* Postfix's smtp: "qid: warning: header <field>: text". */
		log_info("%s: %s: header %s%s%s", qid,
		    a == HA_WARN ? "warning" : "info", field,
		    *txt ? ": " : "", txt);
		break;
	case HA_REPLACE:
	case HA_PREPEND:
		log_warnx("%s: %s (%s): %s text is not a header field "
		    "(\"Name: value\"); header %s kept", qid, PARAM, tables,
		    a == HA_REPLACE ? "REPLACE" : "PREPEND", field);
		break;
	case HA_OTHER:
		log_warnx("%s: %s (%s): action %s does not apply to mail on "
		    "its way out; header %s kept (use IGNORE to remove a "
		    "field, REPLACE or PREPEND to change one, WARN to log it)",
		    qid, PARAM, tables, w, field);
		break;
	default:
		log_warnx("%s: %s (%s): unknown action \"%s\"; header %s kept "
		    "(use IGNORE, REPLACE, PREPEND, WARN, INFO or DUNNO)", qid,
		    PARAM, tables, w, field);
		break;
	}
}

/*
 * Act on the result value for the field f (n bytes; key is its lookup
 * key) and append what the header block keeps to out. Returns 1 when
 * the field was dropped, replaced or prepended to, else 0.
 */
static int
act(const char *value, const char *f, size_t n, const char *key,
    struct buf *out, const char *qid, const char *tables)
{
	size_t wlen = strcspn(value, " \t");
	const char *text = value + wlen + strspn(value + wlen, " \t");
	enum hchk_action a = action_find(value, wlen);

	switch (a) {
	case HA_IGNORE:
		return 1;
	case HA_REPLACE:
	case HA_PREPEND:
		if (!is_field(text))
			break;
		buf_adds(out, text);
		/* The field keeps its own line end, or lack of one. */
		if (a == HA_PREPEND || f[n - 1] == '\n')
			buf_addc(out, '\n');
		if (a == HA_PREPEND)
			buf_add(out, f, n);
		return 1;
	case HA_KEEP:
		buf_add(out, f, n);
		return 0;
	default:
		break;
	}
	log_action(a, qid, key, value, wlen, text, tables);
	buf_add(out, f, n);
	return 0;
}

/* Apply smtp_header_checks to a header block. */
int
hchk_apply(struct maps *m, const char *hdr, size_t hdrlen, struct buf *out,
    const char *qid, char *err, size_t errlen)
{
	struct buf key = BUF_INIT;
	const char *value;
	size_t pos, n, klen, start = out->len;
	int changed = 0;

	for (pos = 0; pos < hdrlen; pos += n) {
		n = field_len(hdr + pos, hdrlen - pos);
		klen = hdr[pos + n - 1] == '\n' ? n - 1 : n;
		buf_reset(&key);
		buf_add(&key, hdr + pos, klen);
		/* A NUL must not hide the rest of the field from patterns. */
		for (size_t i = 0; i < klen; i++)
			if (key.data[i] == '\0')
				key.data[i] = ' ';
		switch (maps_find(m, key.data, &value, err, errlen)) {
		case MAP_ERROR:
			out->len = start;
			if (out->data != NULL)
				out->data[start] = '\0';
			changed = -1;
			goto out;
		case MAP_FOUND:
			changed += act(value, hdr + pos, n, key.data, out, qid,
			    maps_title(m));
			break;
		default:
			buf_add(out, hdr + pos, n);
			break;
		}
	}
out:
	buf_free(&key);
	return changed;
}
