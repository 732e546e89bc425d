/*
 * trouble.c - map delivery results to verdicts (see trouble.h).
 */
#include "deliver/trouble.h"

/* Decide one recipient's fate. */
enum verdict
trouble_decide(const struct policy *p, const struct smtp_result *r,
    double arrival, double now, int null_sender)
{
	long long life = null_sender ? p->bounce_lifetime : p->max_lifetime;

	if (r->kind == 2)
		return V_SENT;
	if (r->kind == 5)
		return p->soft_bounce ? V_DEFER : V_BOUNCE;
	/* Temporary: give up only when the message outlived its lifetime. */
	if (now - arrival >= (double)life && !p->soft_bounce)
		return V_BOUNCE;
	return V_DEFER;
}

/* Log word of a verdict. */
const char *
verdict_status(enum verdict v)
{
	switch (v) {
	case V_SENT:
		return "sent";
	case V_BOUNCE:
		return "bounced";
	default:
		return "deferred";
	}
}
