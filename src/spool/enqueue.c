/*
 * enqueue.c - from sendmail's standard input to a committed queue file.
 *
 * Programs feed sendmail anything: CRLF or LF line ends, NUL bytes, no
 * final newline, no headers at all. We store one canonical form (LF line
 * ends, no NUL, a final LF) so the daemon and its SMTP client deal with a
 * single case. Headers are added the way Postfix's cleanup adds them, so
 * messages look the same as they would from a Postfix null client.
 *
 * The whole queue file is assembled in memory and handed to the spool in
 * one write: the cost of an enqueue is then one write, one fsync, one
 * rename and one directory fsync.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/header.h"
#include "spool/enqueue.h"

#define READ_CHUNK	65536

/* Start converting input. */
void
enq_input_init(struct enq_input *in, int ignore_dots)
{
	memset(in, 0, sizeof(*in));
	in->ignore_dots = ignore_dots;
}

/* A line just ended: was it the lone dot that ends the message? */
static int
end_of_line(struct enq_input *in, struct buf *out)
{
	if (!in->ignore_dots && out->len - in->line_start == 2 &&
	    out->data[in->line_start] == '.') {
		out->len = in->line_start;
		out->data[out->len] = '\0';
		in->done = 1;
		return 1;
	}
	in->line_start = out->len;
	return 0;
}

/* Convert one chunk of input. */
int
enq_input_feed(struct enq_input *in, const char *p, size_t n,
    struct buf *out)
{
	char *o;

	if (in->done)
		return 1;
	/* At most one byte more than the input: a held-back CR. */
	buf_reserve(out, n + 2);
	for (size_t i = 0; i < n; i++) {
		/* NUL cannot travel in SMTP DATA and breaks C strings. */
		if (p[i] == '\0')
			continue;
		o = out->data + out->len;
		if (in->cr && p[i] != '\n')
			*o++ = '\r';	/* a bare CR is kept as it is */
		in->cr = p[i] == '\r';
		if (!in->cr)
			*o++ = p[i];
		out->len = (size_t)(o - out->data);
		out->data[out->len] = '\0';
		if (p[i] == '\n' && end_of_line(in, out))
			return 1;
	}
	return 0;
}

/* End of input. */
void
enq_input_finish(struct enq_input *in, struct buf *out)
{
	if (in->done)
		return;
	if (in->cr)
		buf_addc(out, '\r');
	in->cr = 0;
	/* A last line without LF still counts: "." there ends the input. */
	if (out->len > in->line_start) {
		buf_addc(out, '\n');
		(void)end_of_line(in, out);
	}
}

/* Read the whole message from fd. */
int
enq_read(int fd, int ignore_dots, size_t limit, struct buf *out)
{
	struct enq_input in;
	char chunk[READ_CHUNK];
	ssize_t n;

	enq_input_init(&in, ignore_dots);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		if (enq_input_feed(&in, chunk, (size_t)n, out))
			break;
		/* Stop early: there is no point in reading a refused message. */
		if (limit > 0 && out->len > limit)
			return -2;
	}
	enq_input_finish(&in, out);
	if (limit > 0 && out->len > limit)
		return -2;
	return 0;
}

/* Collect the recipients of To/Cc/Bcc. */
int
enq_header_rcpts(const char *msg, size_t len, struct addr_list *l,
    char *err, size_t errlen)
{
	static const char *const names[] = { "To", "Cc", "Bcc" };
	char why[128], *v;
	size_t hlen, body;
	int rc = 0;

	/* Every instance counts: a message may have two To: fields. */
	hdr_split(msg, len, &hlen, &body);
	for (size_t i = 0; i < 3 && rc == 0; i++) {
		for (size_t nth = 0; rc == 0 &&
		    (v = hdr_get(msg, hlen, names[i], nth)) != NULL; nth++) {
			if (addr_list_parse(v, l, why, sizeof(why)) < 0) {
				snprintf(err, errlen, "%s: header: %s",
				    names[i], why);
				rc = -1;
			}
			free(v);
		}
	}
	return rc;
}

/* Append the missing From:, Date: and Message-ID: fields. */
static void
add_missing(const struct enq_msg *m, unsigned have, const char *date,
    struct buf *out)
{
	char stamp[32], *q = NULL;
	struct tm tm;

	/* sendmail refused a bad -F already; a name that still cannot be
	   header text (a line break would start a new field) is left out. */
	if (m->full_name != NULL && *m->full_name != '\0')
		q = addr_phrase(m->full_name, NULL, 0);
	if (!(have & HDR_FROM)) {
		if (q != NULL && *q != '\0')
			buf_addf(out, "From: %s <%s>\n", q, m->from);
		else
			buf_addf(out, "From: %s\n", m->from);
	}
	free(q);
	if (!(have & HDR_DATE))
		buf_addf(out, "Date: %s\n", date);
	/* The queue ID makes the Message-ID unique on this host. */
	if (!(have & HDR_MSGID)) {
		localtime_r(&m->now, &tm);
		if (strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
			stamp[0] = '\0';
		buf_addf(out, "Message-ID: <%s.%s@%s>\n", stamp, m->qid,
		    m->myhostname);
	}
}

/* Assemble the message as it will be queued. */
void
enq_build(const struct enq_msg *m, const char *msg, size_t len,
    struct buf *out)
{
	struct buf nobcc = BUF_INIT;
	size_t hlen, body;
	char date[64];

	if (m->remove_bcc) {
		(void)hdr_remove(msg, len, "Bcc", &nobcc);
		msg = nobcc.data ? nobcc.data : "";
		len = nobcc.len;
	}
	/* Added fields go after the submitted ones, as Postfix puts them. */
	hdr_split(msg, len, &hlen, &body);
	date_rfc5322(m->now, date, sizeof(date));
	buf_reserve(out, len + 512);
	buf_addf(out, "Received: by %s (postern, from userid %lu)\n\tid %s; %s\n",
	    m->myhostname, (unsigned long)m->uid, m->qid, date);
	buf_add(out, msg, hlen);
	add_missing(m, hdr_have(msg, hlen), date, out);
	/* The empty line: always one, even when the input had none. */
	buf_addc(out, '\n');
	buf_add(out, msg + body, len - body);
	buf_free(&nobcc);
}

/* Build the queue file and commit it to incoming/new. */
int
enq_queue(const char *queue_dir, struct enq_msg *m, struct qenv *env,
    const char *msg, size_t len, char qid[QID_MAX], char *err,
    size_t errlen)
{
	struct spool_new sn;
	struct buf text = BUF_INIT, file = BUF_INIT;
	struct timeval tv;
	int rc = -1, saved;

	/* The message, its envelope and added headers: a page more. */
	if (spool_space_check(queue_dir, (unsigned long long)len + 4096,
	    m->minfree, err, errlen) < 0)
		return -1;
	/* Open first: the Received and Message-ID fields need the ID. */
	if (spool_new_open(queue_dir, &sn, err, errlen) < 0)
		return -1;
	gettimeofday(&tv, NULL);
	m->qid = sn.qid;
	m->now = tv.tv_sec;
	enq_build(m, msg, len, &text);
	env->arrival = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
	env->size = text.len;
	if (mem_has_8bit(text.data, text.len))
		env->flags |= QF_8BIT;
	buf_reserve(&file, text.len + 512);
	if (qfile_format_env(env, &file) < 0) {
		errno = EINVAL;
		snprintf(err, errlen, "envelope value with a line break");
		spool_new_abort(&sn);
		goto out;
	}
	/* One buffer, so the spool does one write. */
	buf_add(&file, text.data, text.len);
	if (file.len > QFILE_MAX) {
		errno = EFBIG;
		snprintf(err, errlen, "queue file of %zu bytes is larger than "
		    "the daemon reads (%zu)", file.len, QFILE_MAX);
		spool_new_abort(&sn);
		goto out;
	}
	if (spool_new_commit(&sn, file.data, file.len, err, errlen) < 0)
		goto out;
	memcpy(qid, sn.qid, QID_MAX);
	rc = 0;
out:
	saved = errno;
	buf_free(&text);
	buf_free(&file);
	errno = saved;
	return rc;
}
