/*
 * body.c - the stored message as an SMTP DATA stream (RFC 5321 4.5.2).
 *
 * Three passes over the message, all in memory:
 *   1. normalise: drop NUL bytes, turn CRLF and bare CR into LF, and
 *      supply a final newline, so the rest deals with LF lines only;
 *   2. look at the top-level header: where it ends, its Content-Type and
 *      Content-Transfer-Encoding, and whether any body line is too long;
 *   3. write every line with CRLF and dot-stuffing, folding long header
 *      lines and either quoted-printable encoding the body (single text
 *      part: the reader gets the exact text back) or breaking long body
 *      lines (multipart or already encoded, as Postfix does).
 * A message without long lines passes through unchanged apart from the
 * line ends and the stuffing.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>

#include "deliver/body.h"

#define QP_MAX	75	/* encoded chars a line, before the soft-break '=' */

/* What pass 2 learnt about the message. */
struct msginfo {
	size_t	hdr_len;	/* bytes of header lines */
	size_t	body_off;	/* where the body starts */
	int	has_blank;	/* a blank line separates header and body */
	int	mime_version;	/* MIME-Version: present */
	int	single_text;	/* text (or no) Content-Type, 7bit/8bit */
	int	long_body;	/* some body line exceeds the limit */
};

/* Copy msg to nb with LF line ends only, no NUL, and a final LF. */
static void
normalise(const char *msg, size_t len, struct buf *nb)
{
	size_t i;

	buf_reserve(nb, len + 1);
	for (i = 0; i < len; i++) {
		if (msg[i] == '\0')
			continue;
		if (msg[i] == '\r') {
			/* CRLF is one line end; a bare CR is a line end too. */
			if (i + 1 < len && msg[i + 1] == '\n')
				continue;
			buf_addc(nb, '\n');
			continue;
		}
		buf_addc(nb, msg[i]);
	}
	if (nb->len > 0 && nb->data[nb->len - 1] != '\n')
		buf_addc(nb, '\n');
}

/* Length of the line at p (up to, not including, its LF). */
static size_t
line_len(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl ? (size_t)(nl - p) : (size_t)(end - p);
}

/* Length of the field name when the line starts a header field, else 0. */
static size_t
header_name_len(const char *p, size_t n)
{
	size_t i = 0, name;

	while (i < n && p[i] > ' ' && p[i] < 127 && p[i] != ':')
		i++;
	name = i;
	/* RFC 5322's obsolete syntax allows white space before the colon. */
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return (name > 0 && i < n && p[i] == ':') ? name : 0;
}

/* 1 when the header line's field name is name (any case). */
static int
header_is(const char *p, size_t n, const char *name)
{
	size_t nl = header_name_len(p, n);

	return nl == strlen(name) && strncasecmp(p, name, nl) == 0;
}

/*
 * The first token of the unfolded value of header name in hdr, lower
 * case, in tok; "" when the header is absent.
 */
static void
header_token(const char *hdr, size_t hlen, const char *name, char *tok,
    size_t toklen)
{
	const char *p = hdr, *end = hdr + hlen, *v;
	size_t n, i = 0;

	tok[0] = '\0';
	for (; p < end; p += n + 1) {
		n = line_len(p, end);
		if (!header_is(p, n, name))
			continue;
		v = memchr(p, ':', n) + 1;
		/* Skip white space, folding included, to the token. */
		while (v < end && (*v == ' ' || *v == '\t' ||
		    (*v == '\n' && v + 1 < end && (v[1] == ' ' || v[1] == '\t'))))
			v++;
		while (v < end && i + 1 < toklen && *v != ';' && *v != '(' &&
		    !isspace((unsigned char)*v))
			tok[i++] = (char)tolower((unsigned char)*v++);
		tok[i] = '\0';
		return;
	}
}

/* Pass 2: find the header's end and decide how long lines are handled. */
static void
scan(const char *m, size_t len, size_t limit, struct msginfo *mi)
{
	const char *p = m, *end = m + len;
	char ct[64], cte[64];
	size_t n;
	int seen = 0;

	memset(mi, 0, sizeof(*mi));
	mi->hdr_len = mi->body_off = len;
	for (; p < end; p += n + 1) {
		n = line_len(p, end);
		if (n == 0) {
			mi->has_blank = 1;
			mi->hdr_len = (size_t)(p - m);
			mi->body_off = mi->hdr_len + 1;
			break;
		}
		if (seen && (p[0] == ' ' || p[0] == '\t'))
			continue;
		if (header_name_len(p, n) == 0) {
			/* Not a header: the body starts here, unseparated. */
			mi->hdr_len = mi->body_off = (size_t)(p - m);
			break;
		}
		seen = 1;
		if (header_is(p, n, "MIME-Version"))
			mi->mime_version = 1;
	}
	for (p = m + mi->body_off; p < end; p += n + 1)
		if ((n = line_len(p, end)) > limit)
			mi->long_body = 1;
	header_token(m, mi->hdr_len, "Content-Type", ct, sizeof(ct));
	header_token(m, mi->hdr_len, "Content-Transfer-Encoding", cte,
	    sizeof(cte));
	mi->single_text = (ct[0] == '\0' || strncmp(ct, "text/", 5) == 0) &&
	    (cte[0] == '\0' || strcmp(cte, "7bit") == 0 ||
	    strcmp(cte, "8bit") == 0);
}

/* Write one output line: optional prefix, stuffing, text, CRLF. */
static void
emit(struct buf *out, const char *prefix, const char *p, size_t n)
{
	const char *first = (prefix && *prefix) ? prefix : p;

	if ((prefix && *prefix) || n > 0)
		if (*first == '.')
			buf_addc(out, '.');
	if (prefix)
		buf_adds(out, prefix);
	buf_add(out, p, n);
	buf_add(out, "\r\n", 2);
}

/*
 * Fold a header line to at most limit octets a line: break before white
 * space (unfolding restores the text), or, in a run without any, insert
 * CRLF SPACE at the limit.
 */
static void
fold_header(struct buf *out, const char *p, size_t n, size_t limit)
{
	const char *prefix = "";
	size_t max, pos, first;

	while (strlen(prefix) + n > limit) {
		max = limit - strlen(prefix);
		/* The segment must hold some text, not white space alone. */
		for (first = 0; first < n && (p[first] == ' ' ||
		    p[first] == '\t'); first++)
			;
		for (pos = max; pos > first; pos--)
			if (p[pos] == ' ' || p[pos] == '\t')
				break;
		if (pos > first) {
			emit(out, prefix, p, pos);
			prefix = "";
		} else {
			pos = max;
			emit(out, prefix, p, pos);
			prefix = " ";
		}
		p += pos;
		n -= pos;
	}
	emit(out, prefix, p, n);
}

/* Break a body line into pieces of at most limit octets (stuffing counted). */
static void
break_line(struct buf *out, const char *p, size_t n, size_t limit)
{
	size_t max;

	do {
		max = (n > 0 && p[0] == '.') ? limit - 1 : limit;
		if (max > n)
			max = n;
		emit(out, NULL, p, max);
		p += max;
		n -= max;
	} while (n > 0);
}

/*
 * Quoted-printable encode one line (RFC 2045 6.7) with soft breaks, at
 * most max encoded octets before each soft break's '='.
 */
static void
qp_line(struct buf *out, const char *p, size_t n, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	char cur[QP_MAX + 2], tok[4];
	size_t i, cl = 0, tl;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		/* Literal: printable but '=', and blanks not at line end. */
		if ((c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && i + 1 < n)) {
			tok[0] = (char)c;
			tl = 1;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			tl = 3;
		}
		if (cl + tl > max) {
			cur[cl++] = '=';
			emit(out, NULL, cur, cl);
			cl = 0;
		}
		memcpy(cur + cl, tok, tl);
		cl += tl;
	}
	emit(out, NULL, cur, cl);
}

/* Pass 3 for the header: fold, and in QP mode say what the body is. */
static void
put_header(struct buf *out, const char *m, const struct msginfo *mi,
    size_t limit, int qp)
{
	const char *p = m, *end = m + mi->hdr_len;
	size_t n;
	int skip = 0;

	for (; p < end; p += n + 1) {
		n = line_len(p, end);
		/* In QP mode the old encoding header goes, folds and all. */
		if (p[0] != ' ' && p[0] != '\t')
			skip = qp && header_is(p, n,
			    "Content-Transfer-Encoding");
		if (!skip)
			fold_header(out, p, n, limit);
	}
	if (qp) {
		if (!mi->mime_version)
			fold_header(out, "MIME-Version: 1.0", 17, limit);
		fold_header(out, "Content-Transfer-Encoding: "
		    "quoted-printable", 43, limit);
	}
	if (mi->has_blank || qp)
		emit(out, NULL, "", 0);
}

/* The whole DATA stream. */
void
body_encode(const char *msg, size_t len, int line_limit, struct buf *out)
{
	struct buf nb = BUF_INIT;
	struct msginfo mi;
	const char *p, *end;
	size_t n, limit;
	int qp;

	/* Below a few octets no folding could make progress. */
	limit = line_limit < 16 ? 16 : (size_t)line_limit;
	normalise(msg, len, &nb);
	if (nb.len == 0)
		goto out;
	scan(nb.data, nb.len, limit, &mi);
	qp = mi.long_body && mi.single_text;
	put_header(out, nb.data, &mi, limit, qp);
	end = nb.data + nb.len;
	for (p = nb.data + mi.body_off; p < end; p += n + 1) {
		n = line_len(p, end);
		if (qp)
			qp_line(out, p, n, limit - 1 < QP_MAX ? limit - 1 :
			    QP_MAX);
		else
			break_line(out, p, n, limit);
	}
out:
	buf_add(out, ".\r\n", 3);
	buf_free(&nb);
}
