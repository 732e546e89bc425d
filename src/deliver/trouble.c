/*
 * trouble.c - map delivery results to verdicts (see trouble.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>

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

/* 1 when s contains word, in any case. */
static int
contains(const char *s, const char *word)
{
	size_t n = strlen(s), k = strlen(word);

	for (size_t i = 0; i + k <= n; i++)
		if (strncasecmp(s + i, word, k) == 0)
			return 1;
	return 0;
}

/* 1 when s names authentication or TLS. */
static int
names_auth_or_tls(const char *s)
{
	static const char *const words[] = { "auth", "login", "tls",
	    "encrypt", "credential" };

	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
		if (contains(s, words[w]))
			return 1;
	return 0;
}

/* The fix for a relay that wants a login or TLS we did not give it. */
static const char *
refusal_fix(const struct smtp_result *r)
{
	if (contains(r->text, "starttls") && !r->tls)
		return "the relay requires TLS and the connection had none: "
		    "set smtp_tls_security_level = verify (or encrypt), or "
		    "use its TLS port";
	switch (r->login) {
	case SMTP_LOGIN_NONE:
		return "the relay requires a login and none was sent: set "
		    "smtp_sasl_auth_enable = yes, and the "
		    "smtp_sasl_password_maps key must match relayhost "
		    "exactly, e.g. [host]:port (see postern check)";
	case SMTP_LOGIN_UNOFFERED:
		return "the relay requires a login but offered no AUTH on this "
		    "connection (many offer it only over TLS: set "
		    "smtp_tls_security_level = verify)";
	default:
		return "the relay refused mail after a successful login: the "
		    "account may not send from this sender address, or needs "
		    "another one (smtp_sender_dependent_authentication)";
	}
}

/* Make r a deferral (see trouble.h). */
void
trouble_explain(const struct policy *p, struct smtp_result *r)
{
	char old[sizeof(r->text)];
	int relay_wide;

	if (r->kind != 5 || !p->auth_soft_bounce)
		return;
	/* 530 means "authentication required" (RFC 4954) at any command. */
	relay_wide = r->code == 530 || (r->pre_rcpt && (r->code == 538 ||
	    (strncmp(r->dsn, "5.7.", 4) == 0 && names_auth_or_tls(r->text))));
	if (!r->auth && !relay_wide)
		return;
	r->kind = 4;
	r->dsn[0] = '4';
	if (strncmp(r->dsn, "4.7.", 4) != 0)
		strlcpy(r->dsn, "4.7.0", sizeof(r->dsn));
	if (r->auth)
		return;		/* the server's words say it: bad login */
	/* The fix first: the server's words are cut to fit, on purpose. */
	strlcpy(old, r->text, sizeof(old));
	strlcpy(r->text, refusal_fix(r), sizeof(r->text));
	strlcat(r->text, "; ", sizeof(r->text));
	strlcat(r->text, old, sizeof(r->text));
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
