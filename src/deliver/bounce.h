/*
 * bounce.h - notices to the sender: bounces, delay warnings and
 * "relayed" reports (Postfix's bounce, defer and trace services).
 *
 * When a message has nothing left to try and some recipients failed, the
 * sender gets one delivery status notification naming them (dsn.h), from
 * the null sender, queued like any message in incoming/new. The order
 * keeps the promise that mail is not lost: the notice is committed
 * (fsync, rename, directory fsync) before the original is removed, so a
 * crash in between sends a second notice, never none. A message from the
 * null sender (a notice itself) is never returned: it is logged and
 * dropped. sendmail -N decides which notices a sender wants.
 */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include <stddef.h>

#include "spool/spool.h"

struct config;
struct qmsg;

/* What the notices need from main.cf. */
struct bounce_cfg {
	char		queue_dir[PATH_BUF];
	char		myhostname[256];
	size_t		size_limit;	/* bounce_size_limit */
	long long	delay_warning;	/* delay_warning_time, s; 0: off */
	long long	max_lifetime;	/* maximal_queue_lifetime, s */
};

/* Fill bc from cf. */
void bounce_cfg_load(struct bounce_cfg *bc, const struct config *cf);

/*
 * Queue the notices that m's last attempt calls for, before the caller
 * writes the state that says they went out (a crash in between repeats
 * a notice, it never loses one). dir holds m's queue file. In order:
 *   - recipients a relay without DSN accepted (m->relayed) for a sender
 *     who asked for SUCCESS notices: a "relayed" report (flags cleared);
 *   - deferred recipients of a message older than delay_warning_time: one
 *     delay warning per message (m->st.warned is set);
 *   - when no recipient has work left and some failed: the bounce.
 * Returns 0, or -1 when the bounce was due and could not be queued (it
 * is logged; the message must stay and the bounce be tried again).
 */
int bounce_notify(const struct bounce_cfg *bc, const char *dir,
    struct qmsg *m, double now);

#endif
