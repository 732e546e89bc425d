/*
 * trouble.h - failure policy, in one place.
 *
 * Protocol code reports what happened (struct smtp_result); this module
 * decides what it means for the message: done, try again later, or give
 * up. Nothing else in postern makes that decision.
 */
#ifndef POSTERN_TROUBLE_H
#define POSTERN_TROUBLE_H

#include "deliver/smtp.h"

enum verdict {
	V_SENT,		/* the relay took responsibility */
	V_DEFER,	/* try again later */
	V_BOUNCE,	/* permanent failure: return to sender */
};

struct policy {
	int		soft_bounce;		/* soft_bounce = yes */
	long long	max_lifetime;		/* maximal_queue_lifetime, s */
	long long	bounce_lifetime;	/* bounce_queue_lifetime, s */
	int		auth_soft_bounce;	/* smtp_sasl_auth_soft_bounce */
};

/*
 * What a recipient's result means for a message that arrived at arrival
 * (null_sender: it is itself a bounce), at time now. A temporary failure
 * of a message older than its lifetime is permanent; soft_bounce turns
 * permanent failures into deferrals.
 */
enum verdict trouble_decide(const struct policy *p, const struct smtp_result *r,
    double arrival, double now, int null_sender);
/*
 * Before trouble_decide: a refusal that is the relay's and not the
 * recipient's is made a 4.7.x deferral whose text names the fix (with
 * smtp_sasl_auth_soft_bounce = yes, the default): a refused login, a 530
 * to any command, and a 5.7.x to the greeting, EHLO or MAIL FROM that
 * names authentication or TLS ("authentication required", "must issue
 * STARTTLS").
 * Bouncing such mail would send the notice into the same refusal.
 */
void trouble_explain(const struct policy *p, struct smtp_result *r);
/* The Postfix log word for a verdict: "sent", "deferred", "bounced". */
const char *verdict_status(enum verdict v);

#endif
