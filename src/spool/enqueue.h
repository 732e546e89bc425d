/*
 * enqueue.h - turn what a program handed to sendmail into a queue file.
 *
 * Reading the input (line ends, NUL bytes, the lone-dot end), finding -t
 * recipients, adding the headers a message must have, and the durable
 * commit into the spool. sendmail.c parses options and calls these.
 */
#ifndef POSTERN_ENQUEUE_H
#define POSTERN_ENQUEUE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "lib/buf.h"
#include "mail/addr.h"
#include "spool/qfile.h"
#include "spool/spool.h"

/* Input conversion state (see enq_input_feed). */
struct enq_input {
	int	ignore_dots;	/* -i: a lone "." is just a line */
	int	cr;		/* a CR was seen, its LF may follow */
	int	done;		/* a lone "." ended the message */
	size_t	line_start;	/* offset in out of the current line */
};

/* Start converting input; ignore_dots is sendmail -i / -oi. */
void enq_input_init(struct enq_input *in, int ignore_dots);
/*
 * Convert a chunk of input, appending to out (pure): CRLF becomes LF, NUL
 * bytes are dropped, and without ignore_dots a line holding a single "."
 * ends the message (it is not kept). Returns 1 once the message has
 * ended (later input is ignored), else 0.
 */
int enq_input_feed(struct enq_input *in, const char *p, size_t n,
    struct buf *out);
/* End of input: a last line without LF gets one (a lone "." is dropped). */
void enq_input_finish(struct enq_input *in, struct buf *out);
/*
 * Read the message from fd into out through enq_input_*. limit is
 * message_size_limit (0: none). Returns 0; -1 with errno on a read
 * error; -2 when the message is larger than limit.
 */
int enq_read(int fd, int ignore_dots, size_t limit, struct buf *out);

/*
 * Append the addresses of every To:, Cc: and Bcc: field of msg to l
 * (sendmail -t). Returns 0, or -1 with err naming the bad header.
 */
int enq_header_rcpts(const char *msg, size_t len, struct addr_list *l,
    char *err, size_t errlen);

/* What enq_build needs to know besides the message itself. */
struct enq_msg {
	const char	*qid;
	const char	*myhostname;
	const char	*from;		/* address for an added From: */
	const char	*full_name;	/* sendmail -F, or NULL (addr_phrase
					   makes it header text) */
	uid_t		 uid;
	time_t		 now;
	int		 remove_bcc;	/* sendmail -t */
	long long	 minfree;	/* queue_minfree: bytes kept free */
};

/*
 * The message as queued (pure but for the time zone): a Received: line
 * first, the submitted headers (without Bcc: when remove_bcc), the
 * missing From:, Date:, Message-ID: fields, an empty line, the body.
 */
void enq_build(const struct enq_msg *m, const char *msg, size_t len,
    struct buf *out);

/*
 * Queue the message: open a spool file (the queue ID names the message
 * in its headers), build the message with enq_build (m->qid is set here),
 * fill env's arrival, size and 8-bit flag, and commit. Nothing is
 * written when the spool's file system would keep less than m->minfree
 * bytes free (errno ENOSPC). Returns 0 with the ID in qid, or -1 with
 * errno and err when nothing was queued.
 */
int enq_queue(const char *queue_dir, struct enq_msg *m, struct qenv *env,
    const char *msg, size_t len, char qid[QID_MAX], char *err,
    size_t errlen);

#endif
