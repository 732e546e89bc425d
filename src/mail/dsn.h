/*
 * dsn.h - delivery status notifications (RFC 3464, RFC 6522) and the
 * xtext encoding of DSN parameters (RFC 3461).
 *
 * A notice is a multipart/report; report-type=delivery-status message:
 * a text/plain part for people, a message/delivery-status part for
 * programs (per-message fields, then one block per recipient), and the
 * original message (message/rfc822) or its headers (text/rfc822-headers).
 * Building one is a pure function of its input, so it is unit-tested
 * without a spool; the daemon side (which message, which recipients,
 * queueing the notice) is deliver/bounce.c.
 */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H

#include <stddef.h>
#include <time.h>

#include "lib/buf.h"

/* What happened to the recipients a notice reports (its Action:). */
enum dsn_action {
	DSN_FAILED,	/* undeliverable: the bounce */
	DSN_DELAYED,	/* still being retried: the delay warning */
	DSN_RELAYED,	/* handed to a relay that offers no DSN */
};

/* One recipient of a notice. */
struct dsn_rcpt {
	const char	*addr;		/* the envelope recipient */
	const char	*orig;		/* as submitted; NULL when the same */
	const char	*status;	/* enhanced status "5.1.1"; NULL: guess */
	const char	*text;		/* the reason as logged, or NULL */
};

/* Everything a notice says. */
struct dsn_report {
	enum dsn_action	 action;
	const char	*myhostname;
	const char	*qid;		/* the original message's queue ID */
	const char	*notice_qid;	/* the notice's own (Message-ID) */
	const char	*sender;	/* the original sender: the notice's To: */
	const char	*envid;		/* sendmail -V, or NULL */
	time_t		 arrival;	/* of the original message */
	time_t		 now;
	time_t		 retry_until;	/* DSN_DELAYED: Will-Retry-Until; 0 none */
	int		 ret_hdrs;	/* return the headers only (-R HDRS) */
	size_t		 size_limit;	/* bounce_size_limit */
	const char	*msg;		/* the original message, LF line ends */
	size_t		 msglen;
	const struct dsn_rcpt *rcpt;
	size_t		 nrcpt;
};

/* Flags dsn_build returns. */
#define DSN_8BIT	0x01	/* the notice holds 8-bit bytes */
#define DSN_TRUNCATED	0x02	/* only the headers were returned */

/*
 * Append the notice (headers, empty line, body; LF line ends) to out.
 * What is returned of the original: for DSN_FAILED the whole message
 * (message/rfc822) unless ret_hdrs or the message is larger than
 * size_limit; otherwise, and for the other actions (RFC 3461 4.3), its
 * headers (text/rfc822-headers), cut at a line within size_limit.
 * Returns DSN_* flags.
 */
int dsn_build(const struct dsn_report *r, struct buf *out);

/*
 * The parts of a reason as postern logs it: for "host H[A] said: TEXT
 * (in reply to X command)" the server name H (into mta) and TEXT (into
 * diag); else mta is "" and diag the whole reason. Pure.
 */
void dsn_split_reason(const char *reason, char *mta, size_t mtalen,
    char *diag, size_t diaglen);

/* Append s as xtext (RFC 3461 4): "+" and "=", controls, space and
 * 8-bit bytes become "+XX". */
void dsn_xtext(const char *s, struct buf *out);

/*
 * 1 when a sendmail -N value (NULL: none given) asks for the notice
 * kind word ("SUCCESS", "FAILURE", "DELAY"). Without -N, FAILURE and
 * DELAY notices are sent (Postfix's default), SUCCESS ones are not;
 * NEVER asks for none.
 */
int dsn_notify_wants(const char *notify, const char *word);

/*
 * 1 when v is a NOTIFY value RFC 3461 allows: NEVER alone, or a comma
 * list of SUCCESS, FAILURE, DELAY (any case, each at most once); else 0.
 * It goes into RCPT TO as is, so nothing else may pass.
 */
int dsn_notify_valid(const char *v);

#endif
