/*
 * route_cmd.c - `postern route`: the daemon's decisions for a sender and
 * some recipients, step by step (DESIGN.md "Routing and rewriting"):
 * qualification as sendmail does it, alias expansion, the relay and why,
 * the fallback relays, the TLS level, the SASL user (never the password),
 * and the addresses the relay would see: the envelope after
 * smtp_generic_maps, the header addresses as written qualified with
 * $myorigin first, as the daemon does for local mail.
 *
 * It uses the daemon's own code (router, wconf, rewrite) on the same
 * main.cf and tables, so what it prints is what posternd would do.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/conf_cmd.h"
#include "admin/route_cmd.h"
#include "conf/config.h"
#include "deliver/route.h"
#include "deliver/worker.h"
#include "lib/xalloc.h"
#include "mail/addr.h"
#include "mail/addrlist.h"
#include "spool/qfile.h"

#define ROUTE_USAGE	"usage: postern route [-f sender] recipient ..."

/* One labelled line. */
static void
line(int indent, const char *label, const char *text)
{
	printf("%*s%-17s%s\n", indent, "", label, text);
}

/* An alias step, for route_expand's trace. */
static void
trace(void *arg, int depth, const char *from, const char *to)
{
	(void)arg;
	printf("  %-17s%*s%s -> %s\n", "alias_maps:", 2 * depth, "", from, to);
}

/*
 * Append to buf what smtp_generic_maps makes of addr: " -> new
 * (smtp_generic_maps)", or nothing. 0, or -1 with the failure appended.
 */
static int
add_generic(const struct worker_cfg *wc, const char *addr, char *buf,
    size_t len)
{
	char *out = NULL, err[600];
	size_t n = strlen(buf);
	int rc = 0;

	if (worker_generic(wc, addr, &out, err, sizeof(err)) < 0) {
		snprintf(buf + n, len - n, ": LOOKUP FAILED: %s", err);
		rc = -1;
	} else if (out != NULL && strcmp(out, addr) != 0)
		snprintf(buf + n, len - n, " -> %s (smtp_generic_maps)", out);
	free(out);
	return rc;
}

/* An envelope address as the relay sees it, printed; 0 or -1. */
static int
show_generic(const struct worker_cfg *wc, int indent, const char *label,
    const char *addr)
{
	char buf[1400];
	int rc;

	if (*addr == '\0') {
		line(indent, label, "<> (the null sender is never rewritten)");
		return 0;
	}
	strlcpy(buf, addr, sizeof(buf));
	rc = add_generic(wc, addr, buf, sizeof(buf));
	if (rc == 0 && strcmp(buf, addr) == 0)
		strlcat(buf, " (unchanged)", sizeof(buf));
	line(indent, label, buf);
	return rc;
}

/*
 * A header address written as given (cron's "From: root", mailx's "To:
 * root") as the relay sees it: qualified as the daemon qualifies the
 * headers of local mail, then smtp_generic_maps. Aliases never change
 * headers. 0 or -1.
 */
static int
show_header(const struct worker_cfg *wc, int indent, const char *label,
    const char *given)
{
	char buf[1400], *canon, *q;
	const char *addr;
	int rc;

	if (*given == '\0')
		return 0;
	if ((canon = addr_canon(given)) == NULL) {
		snprintf(buf, sizeof(buf), "%s (not an address a header can "
		    "hold; left as it is)", given);
		line(indent, label, buf);
		return 0;
	}
	q = addr_qualify_canon(canon, &wc->rt.rw);
	addr = q != NULL ? q : canon;
	strlcpy(buf, canon, sizeof(buf));
	if (q != NULL) {
		size_t n = strlen(buf);
		snprintf(buf + n, sizeof(buf) - n, " -> %s (%s)", q,
		    strchr(given, '@') == NULL ? "append_at_myorigin" :
		    "append_dot_mydomain");
	}
	rc = add_generic(wc, addr, buf, sizeof(buf));
	if (rc == 0 && strcmp(buf, canon) == 0)
		strlcat(buf, " (unchanged)", sizeof(buf));
	line(indent, label, buf);
	free(q);
	free(canon);
	return rc;
}

/* The login and TLS level for relay ri. */
static int
show_relay(struct worker_cfg *wc, size_t ri, const char *sender)
{
	struct wdest *d = &wc->dest[ri];
	struct job_login lg;
	char buf[1200];
	int rc = 0, found;

	if (d->why[0]) {
		snprintf(buf, sizeof(buf), "CANNOT BE USED: %s", d->why);
		line(4, "", buf);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s%s", tls_level_name(d->tlsp.level),
	    d->tlsp.from_map ? " (smtp_tls_policy_maps)" :
	    " (smtp_tls_security_level)");
	line(4, "TLS level:", buf);
	memset(&lg, 0, sizeof(lg));
	if (!wc->sasl) {
		line(4, "SASL login:", "none (smtp_sasl_auth_enable = no)");
		return 0;
	}
	found = worker_cfg_creds(wc, sender, ri, &lg);
	if (found < 0) {
		snprintf(buf, sizeof(buf), "LOOKUP FAILED: %s", lg.why);
		rc = -1;
	} else if (found == 0)
		snprintf(buf, sizeof(buf), "none: no entry in "
		    "smtp_sasl_password_maps (mail goes without AUTH)");
	else
		snprintf(buf, sizeof(buf), "user \"%s\" (smtp_sasl_password_maps,"
		    " key %s)", lg.user, lg.key);
	line(4, "SASL login:", buf);
	job_login_clear(&lg);
	return rc;
}

/* Route one final recipient. */
static int
show_rcpt(struct worker_cfg *wc, const char *sender, const char *rcpt)
{
	struct route rt;
	char err[600], buf[1200];
	int rc = 0;

	printf("  to %s\n", rcpt);
	if (route_resolve(&wc->rt, sender, rcpt, &rt, err, sizeof(err)) < 0) {
		line(4, "relay:", err);
		return -1;
	}
	switch (rt.kind) {
	case RT_ERROR:
		snprintf(buf, sizeof(buf), "none: returned to the sender, %s "
		    "%s (transport_maps, key %s)", rt.dsn, rt.text, rt.key);
		line(4, "relay:", buf);
		return 0;
	case RT_DISCARD:
		snprintf(buf, sizeof(buf), "none: discarded (transport_maps, "
		    "key %s)", rt.key);
		line(4, "relay:", buf);
		return 0;
	case RT_RETRY:
		snprintf(buf, sizeof(buf), "none: the mail waits, %s %s",
		    rt.dsn, rt.text);
		line(4, "relay:", buf);
		return 0;
	case RT_RELAY:
		break;
	}
	if (rt.key[0])
		snprintf(buf, sizeof(buf), "%s (%s, key %s)", rt.nexthop,
		    rt.source, rt.key);
	else
		snprintf(buf, sizeof(buf), "%s (%s)", rt.nexthop, rt.source);
	line(4, "relay:", buf);
	(void)worker_cfg_dest(wc, rt.nexthop);
	if (show_relay(wc, 0, sender) < 0)
		rc = -1;
	for (size_t ri = 1; ri < wc->ndest; ri++) {
		line(4, "fallback:", wc->dest[ri].relay.text);
		if (show_relay(wc, ri, sender) < 0)
			rc = -1;
	}
	if (show_generic(wc, 4, "RCPT TO:", rcpt) < 0)
		rc = -1;
	return rc;
}

/* The invoking user's name, as sendmail would use it. */
static const char *
login_name(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw != NULL ? pw->pw_name : "nobody";
}

/* postern route. */
int
route_cmd(int argc, char **argv, const char *confdir)
{
	struct worker_cfg wc;
	struct config *cf;
	const struct addr_rewrite *rw = &wc.rt.rw;
	struct qenv in, out;
	const char *given = NULL;
	char *sender = NULL, *from = NULL, *a, why[300], err[1024];
	int ch, rc = 0, bad = 0;

	optind = 1;
	while ((ch = getopt(argc, argv, "f:")) != -1) {
		if (ch != 'f') {
			fprintf(stderr, "%s\n", ROUTE_USAGE);
			return EX_USAGE;
		}
		given = optarg;
	}
	if (optind == argc) {
		fprintf(stderr, "%s\n", ROUTE_USAGE);
		return EX_USAGE;
	}
	cf = admin_config(confdir);
	if (worker_cfg_build(&wc, cf, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern route: %s\n", err);
		config_free(cf);
		return EX_CONFIG;
	}
	if (addr_check(given ? given : login_name(), 1, &from, why,
	    sizeof(why)) < 0) {
		fprintf(stderr, "postern route: sender %s\n", why);
		rc = EX_DATAERR;
		goto out;
	}
	sender = addr_qualify(from, rw);
	printf("sender %s\n", *sender ? sender : "<>");
	if (show_generic(&wc, 2, "MAIL FROM:", sender) < 0)
		bad = 1;
	if (show_header(&wc, 2, "From: header:", from) < 0)
		bad = 1;
	for (int i = optind; i < argc; i++) {
		char *q;
		memset(&in, 0, sizeof(in));
		memset(&out, 0, sizeof(out));
		if (addr_check(argv[i], 0, &a, why, sizeof(why)) < 0) {
			fprintf(stderr, "postern route: recipient \"%s\": %s\n",
			    argv[i], why);
			rc = EX_DATAERR;
			continue;
		}
		q = addr_qualify(a, rw);
		printf("recipient %s\n", argv[i]);
		if (strcmp(q, a) != 0)
			line(2, "qualified:", q);
		qenv_add_rcpt(&in, q, strcmp(q, a) ? a : NULL);
		if (!router_is_local(&wc.rt, q, strcmp(q, a) ? a : NULL))
			line(2, "local:", "no (alias_maps not used)");
		else
			line(2, "local:", "yes (looked up in alias_maps)");
		if (show_header(&wc, 2, "To/Cc header:", a) < 0)
			bad = 1;
		if (route_expand(&wc.rt, &in, &out, trace, NULL, err,
		    sizeof(err)) < 0) {
			line(2, "alias_maps:", err);
			bad = 1;
		} else {
			for (size_t k = 0; k < out.nrcpt; k++)
				if (show_rcpt(&wc, sender, out.rcpt[k].addr) < 0)
					bad = 1;
		}
		qenv_free(&in);
		qenv_free(&out);
		free(q);
		free(a);
	}
	if (rc == 0 && bad)
		rc = EX_TEMPFAIL;
out:
	free(from);
	free(sender);
	worker_cfg_free(&wc);
	config_free(cf);
	return rc;
}
