/*
 * header.c - find, read and remove header fields of a message.
 *
 * sendmail needs to know which of From/Date/Message-ID a message already
 * has, read To/Cc/Bcc for -t, and drop Bcc. Messages arrive from any
 * program, so the rules are those of RFC 5322 applied without surprises:
 * a header field is "name:" where name is printable ASCII without ':'
 * (obsolete white space before the colon is allowed); a line starting
 * with a space or a tab continues the field above it; the header block
 * ends at an empty line or at the first line that is neither. Everything
 * works on LF-terminated lines in memory and copies nothing it need not.
 */
#include <string.h>
#include <strings.h>

#include "lib/xalloc.h"
#include "mail/header.h"

/* Length of the line at p (up to and including its LF, or to end). */
static size_t
line_len(const char *p, size_t left)
{
	const char *nl = memchr(p, '\n', left);

	return nl ? (size_t)(nl - p) + 1 : left;
}

/*
 * Length of the field name when the line is a header field start, else 0.
 * *colon gets the offset just after the ':'.
 */
static size_t
field_name(const char *p, size_t n, size_t *colon)
{
	size_t i = 0, name;

	while (i < n && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 &&
	    p[i] != ':')
		i++;
	name = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (name == 0 || i >= n || p[i] != ':')
		return 0;
	*colon = i + 1;
	return name;
}

/* 1 when the line continues the field above it. */
static int
is_continuation(const char *p, size_t n)
{
	return n > 0 && (p[0] == ' ' || p[0] == '\t');
}

/* Split a message into header block and body. */
void
hdr_split(const char *msg, size_t len, size_t *hdr_len, size_t *body_off)
{
	size_t pos = 0, n, colon;

	while (pos < len) {
		n = line_len(msg + pos, len - pos);
		if (msg[pos] == '\n') {
			/* The empty line: part of neither block. */
			*hdr_len = pos;
			*body_off = pos + 1;
			return;
		}
		if (field_name(msg + pos, n, &colon) == 0 &&
		    (pos == 0 || !is_continuation(msg + pos, n)))
			break;
		pos += n;
	}
	*hdr_len = pos;
	*body_off = pos;
}

/*
 * Length of the whole field starting at p (with its continuation lines).
 */
static size_t
field_len(const char *p, size_t left)
{
	size_t n = line_len(p, left), m;

	while (n < left) {
		m = line_len(p + n, left - n);
		if (!is_continuation(p + n, m))
			break;
		n += m;
	}
	return n;
}

/* 1 when the field at p is called name. */
static int
field_is(const char *p, size_t n, const char *name)
{
	size_t colon, nl = field_name(p, n, &colon);

	return nl != 0 && nl == strlen(name) && strncasecmp(p, name, nl) == 0;
}

/* Unfold and trim a field value. */
static char *
unfold(const char *v, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++)
		if (v[i] != '\n' && v[i] != '\r')
			*o++ = v[i];
	*o = '\0';
	while (o > out && (o[-1] == ' ' || o[-1] == '\t'))
		*--o = '\0';
	o = out + strspn(out, " \t");
	memmove(out, o, strlen(o) + 1);
	return out;
}

/* The nth field called name, unfolded. */
char *
hdr_get(const char *hdr, size_t len, const char *name, size_t nth)
{
	size_t pos = 0, n, colon;

	while (pos < len) {
		n = field_len(hdr + pos, len - pos);
		if (field_is(hdr + pos, n, name) && nth-- == 0) {
			(void)field_name(hdr + pos, n, &colon);
			return unfold(hdr + pos + colon, n - colon);
		}
		pos += n;
	}
	return NULL;
}

/* Copy msg without the fields called name. */
size_t
hdr_remove(const char *msg, size_t len, const char *name, struct buf *out)
{
	size_t hlen, body, pos = 0, n, removed = 0;

	hdr_split(msg, len, &hlen, &body);
	while (pos < hlen) {
		n = field_len(msg + pos, hlen - pos);
		if (field_is(msg + pos, n, name))
			removed++;
		else
			buf_add(out, msg + pos, n);
		pos += n;
	}
	buf_add(out, msg + hlen, len - hlen);
	return removed;
}

/* Which of From/Date/Message-ID are present. */
unsigned
hdr_have(const char *hdr, size_t len)
{
	size_t pos = 0, n;
	unsigned have = 0;

	while (pos < len) {
		n = field_len(hdr + pos, len - pos);
		if (field_is(hdr + pos, n, "From"))
			have |= HDR_FROM;
		else if (field_is(hdr + pos, n, "Date"))
			have |= HDR_DATE;
		else if (field_is(hdr + pos, n, "Message-ID"))
			have |= HDR_MSGID;
		pos += n;
	}
	return have;
}
