/*
 * qstate.h - the delivery state record of one message: state/QID.
 *
 *   POSTERN-STATE 1
 *   attempts 3                         delivery attempts so far
 *   last 1763740325.5                  time of the last attempt
 *   warned 1                           optional: the delay warning went
 *                                      out (delay_warning_time)
 *   held 1763740400.0                  optional: when an undeliverable
 *                                      notice was placed on hold (it
 *                                      expires maximal_queue_lifetime
 *                                      later; other held mail never does)
 *   rcpt 0 sent 2.0.0 250 2.0.0 Ok     index, status, dsn, text
 *   rcpt 1 deferred 4.4.1 connect to ... refused
 *   rcpt 2 failed 5.1.1 host said: 550 5.1.1 unknown user
 *   end-of-state
 *
 * Status is pending, sent, deferred (temporary failure; retried) or failed
 * (permanent; returned to the sender once nothing is left to try). A recipient without an rcpt line
 * is pending. The record is written only by posternd, with fs_replace, so
 * a crash leaves the old record or the new one. A missing record means
 * every recipient is pending. Next retry times are not stored: they are a
 * pure function of the arrival time (see sched.h).
 */
#ifndef POSTERN_QSTATE_H
#define POSTERN_QSTATE_H

#include <stddef.h>

#include "lib/buf.h"

#define QSTATE_MAGIC	"POSTERN-STATE 1"
#define QSTATE_END	"end-of-state"

enum rcpt_status {
	RS_PENDING = 0,
	RS_SENT,
	RS_DEFERRED,
	RS_FAILED,
};

struct qstate_rcpt {
	enum rcpt_status st;
	char		 dsn[16];
	char		*text;		/* NULL or the last reason */
};

struct qstate {
	int			 attempts;
	double			 last;
	int			 warned;	/* delay warning sent */
	double			 held;	/* notice placed on hold at; 0: none */
	size_t			 n;	/* number of recipients */
	struct qstate_rcpt	*r;
};

/* A state with n pending recipients. */
void qstate_init(struct qstate *s, size_t n);
void qstate_free(struct qstate *s);
/* Set one recipient's status, dsn and text (copied; text may be NULL). */
void qstate_set(struct qstate *s, size_t i, enum rcpt_status st,
    const char *dsn, const char *text);
/* Number of recipients with status st. */
size_t qstate_count(const struct qstate *s, enum rcpt_status st);
/* The record's text. */
void qstate_format(const struct qstate *s, struct buf *out);
/*
 * Parse a record for a message with nrcpt recipients (pure). Returns 0,
 * or -1 with the reason in err.
 */
int qstate_parse(const char *data, size_t len, size_t nrcpt,
    struct qstate *s, char *err, size_t errlen);
/* "pending", "sent", "deferred", "failed". */
const char *rcpt_status_name(enum rcpt_status st);

#endif
