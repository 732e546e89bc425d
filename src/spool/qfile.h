/*
 * qfile.h - the queue file: a readable envelope block, then the message.
 *
 * Layout (one record per line, "key value", value = rest of the line):
 *
 *   POSTERN-QUEUE 1                     version line, always first
 *   arrival 1763740025.123456           seconds since the epoch
 *   uid 1000                            submitting user
 *   sender alice@host.example           "sender " alone: null sender <>
 *   notify FAILURE,DELAY                optional: sendmail -N
 *   ret HDRS                            optional: sendmail -R (FULL|HDRS)
 *   envid abc123                        optional: sendmail -V
 *   flags 8bit expanded                 optional words: 8bit: the message
 *                                       has 8-bit bytes; expanded: the
 *                                       daemon applied alias_maps; remote:
 *                                       came over the network
 *   recipient bob@example.com           one per recipient, in order
 *   orig-recipient bob                  optional: the address as given,
 *                                       applies to the recipient above
 *   size 2048                           bytes of message after the marker
 *   end-of-envelope                     end marker
 *   <message, LF line ends, exactly size bytes>
 *
 * A file without the version line, the end marker, or with a message of
 * another length than "size" is corrupt, never a message.
 * See postern-spool(5).
 */
#ifndef POSTERN_QFILE_H
#define POSTERN_QFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/buf.h"

#define QFILE_MAGIC	"POSTERN-QUEUE 1"
#define QFILE_END	"end-of-envelope"

#define QF_8BIT		0x01	/* message has bytes >= 0x80 */
#define QF_EXPANDED	0x02	/* alias_maps applied to the recipients */
/*
 * Submitted over the network (the LAN listener), not by a local program:
 * its header addresses are not qualified with $myorigin (Postfix's
 * local_header_rewrite_clients). sendmail never sets it.
 */
#define QF_REMOTE	0x04
/*
 * The largest queue file the daemon reads. sendmail refuses to commit a
 * larger one: a file it cannot read would sit in the queue for ever,
 * neither delivered nor returned.
 */
#define QFILE_MAX	((size_t)2100000000)

struct qrcpt {
	char	*addr;		/* envelope recipient, qualified */
	char	*orig;		/* as given by the submitter; NULL if same */
};

struct qenv {
	double		 arrival;
	uid_t		 uid;
	char		*sender;	/* "" for the null sender */
	char		*notify;	/* NULL or sendmail -N value */
	char		*ret;		/* NULL, "FULL" or "HDRS" */
	char		*envid;		/* NULL or sendmail -V value */
	unsigned	 flags;		/* QF_* */
	size_t		 nrcpt;
	struct qrcpt	*rcpt;
	size_t		 size;		/* message bytes after the envelope */
};

/* Append one recipient (copies the strings; orig may be NULL). */
void qenv_add_rcpt(struct qenv *e, const char *addr, const char *orig);
/* Copy every field of from into to (which must be empty). */
void qenv_copy(struct qenv *to, const struct qenv *from);
/* Free everything e owns and zero it. */
void qenv_free(struct qenv *e);
/*
 * Append the envelope block for e (through the end marker line) to out.
 * e->size must already be the message length. Values must not contain
 * LF, CR or NUL (the caller has validated addresses); returns -1 if one
 * does, 0 otherwise.
 */
int qfile_format_env(const struct qenv *e, struct buf *out);
/*
 * Parse a whole queue file (pure). On success fills e (caller frees with
 * qenv_free), sets *msg_off to the offset of the message and returns 0.
 * On failure returns -1 with the reason in err ("truncated: message is
 * 100 bytes, envelope says 2048").
 */
int qfile_parse(const char *data, size_t len, struct qenv *e,
    size_t *msg_off, char *err, size_t errlen);
/*
 * Parse only the envelope, from the first len bytes (data) of a queue
 * file that is flen bytes long in all (pure): the daemon reads a bounded
 * head at start-up instead of every message. The same checks as
 * qfile_parse, the message length included (against flen). Returns 0
 * (as qfile_parse), -1 with err, or 1 when the envelope goes on past
 * len bytes: read a longer head and call again.
 */
int qfile_parse_head(const char *data, size_t len, size_t flen,
    struct qenv *e, size_t *msg_off, char *err, size_t errlen);

#endif
