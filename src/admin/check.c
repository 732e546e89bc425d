/*
 * check.c - `postern check`: the configuration, then a live test of the
 * relay, told the way a person debugging "my mail does not leave" needs.
 *
 * It builds the delivery settings exactly as posternd does (wconf.c),
 * connects to the relay with the daemon's SMTP and TLS code, stops before
 * MAIL FROM (nothing is ever sent; only when a login is configured and
 * none went out does it try MAIL FROM and RSET, to see whether the relay
 * takes mail without one), and prints what it met: the address
 * reached, the greeting, STARTTLS, the TLS protocol and cipher, the
 * server certificate (subject, issuer, expiry, fingerprints), the
 * verification result, and whether the configured TLS level accepts it.
 * A refusal ends with what to change. Before the relay, a "tables:" line
 * for each compiled table (hash:, btree:) of a *_maps parameter that is
 * missing or older than its source, with the command that fixes it
 * (a warning: the exit status does not change). Each step of the set-up
 * is printed as it starts, with short timeouts (-t, 10 s), so that a hang
 * shows where it is. The exit status is 0 when mail would go,
 * EX_UNAVAILABLE when the relay cannot be used (also when it offers AUTH
 * and no login will be sent: the relay would refuse the mail), EX_CONFIG
 * when the configuration itself is wrong.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <bsd/stdlib.h>

#include "admin/check.h"
#include "admin/conf_cmd.h"
#include "conf/config.h"
#include "conf/maps.h"
#include "conf/params.h"
#include "deliver/route.h"
#include "deliver/smtp.h"
#include "deliver/trouble.h"
#include "deliver/worker.h"
#include "lib/log.h"

#define CHECK_USAGE	"usage: postern check [-f sender] [-t seconds]"
#define CHECK_TIMEOUT	10	/* seconds a step may take, by default */

/* One labelled line of the report. */
static void __attribute__((format(printf, 2, 3)))
line(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("  %-14s", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* The certificate and its verification. */
static void
show_cert(const struct tls_info *t)
{
	char buf[300];

	if (t->subject[0] == '\0') {
		line("certificate:", "%s", "none presented");
		return;
	}
	line("certificate:", "subject %s", t->subject);
	line("", "issuer  %s", t->issuer);
	if (t->days_left < 0)
		snprintf(buf, sizeof(buf), "%s (EXPIRED %ld days ago)",
		    t->not_after, -t->days_left);
	else
		snprintf(buf, sizeof(buf), "%s (in %ld days)", t->not_after,
		    t->days_left);
	line("", "expires %s", buf);
	line("", "%s", "fingerprints (for smtp_tls_fingerprint_cert_match):");
	snprintf(buf, sizeof(buf), "%s %s", t->fp_digest, t->cert_fp);
	line("", "  certificate %s", buf);
	snprintf(buf, sizeof(buf), "%s %s", t->fp_digest, t->pkey_fp);
	line("", "  public key  %s", buf);
	if (t->chain_ok)
		line("verification:", "%s", "chain OK (signed by a trusted CA)");
	else
		line("verification:", "chain FAILED: %s", t->chain_err);
	if (t->name_checked)
		snprintf(buf, sizeof(buf), "%s %s", t->name_ok ? "OK, matches" :
		    "MISMATCH, expected", t->names);
	else
		snprintf(buf, sizeof(buf), "not checked at this level");
	line("", "host name %s", buf);
	if (t->fp_checked)
		line("", "fingerprint %s", t->fp_ok ? "OK (pinned)" :
		    "MISMATCH (matches no configured pin)");
}

/* 1 when the EHLO keywords of the report include AUTH. */
static int
auth_in_ehlo(const struct smtp_report *rep)
{
	const char *p = rep->ehlo;
	size_t k;

	while (*p) {
		p += strspn(p, " ");
		k = strcspn(p, " ");
		if (k == 4 && strncmp(p, "AUTH", 4) == 0)
			return 1;
		p += k;
	}
	return 0;
}

/*
 * The server offers AUTH and no login will be sent: with
 * smtp_sasl_auth_enable = yes that is a key that does not match the
 * relay (the "localhost:2587" for "[localhost]:2587"), and the
 * relay will most likely refuse the mail: a failure. Without SASL it
 * is a warning. Returns 1 when check must fail.
 */
static int
auth_unused(const struct worker_cfg *wc, const struct wdest *d,
    const struct job_login *jm)
{
	if (!wc->sasl) {
		line("AUTH:", "%s", "the server offers AUTH, but "
		    "smtp_sasl_auth_enable = no: mail goes without a login "
		    "(a relay that requires one refuses it; set "
		    "smtp_sasl_auth_enable = yes and smtp_sasl_password_maps)");
		return 0;
	}
	line("AUTH:", "the server offers AUTH, but no login will be sent: "
	    "smtp_sasl_password_maps has no entry for %s", d->relay.text);
	line("", "keys tried: %s", jm->tried ? jm->tried : d->relay.text);
	return 1;
}

/*
 * A login is configured and none was sent (no entry, or no AUTH offered
 * on this connection): try MAIL FROM and RSET, which sends no mail, to
 * see whether the relay takes mail without one. Returns 1 when it
 * refuses (check fails, with the daemon's own reason and fix).
 */
static int
refused_without_login(struct smtp_session *s, const struct worker_cfg *wc,
    const char *sender)
{
	struct smtp_result res;

	if (smtp_probe_mail(s, sender ? sender : "", &res) == 0) {
		line("AUTH:", "%s", "no login sent, and the relay takes mail "
		    "without one (MAIL FROM accepted)");
		return 0;
	}
	trouble_explain(&wc->pol, &res);
	line("result:", "REFUSED: %s", res.text);
	return 1;
}

/* What happened about SMTP AUTH. */
static void
show_auth(const struct worker_cfg *wc, const struct wdest *d,
    const struct smtp_report *rep, const struct job_login *jm, int found)
{
	if (!wc->sasl)
		return;
	if (!found) {
		if (!auth_in_ehlo(rep))
			line("AUTH:", "no login for %s in "
			    "smtp_sasl_password_maps: mail goes without AUTH",
			    d->relay.text);
		return;
	}
	if (rep->auth_offered[0] == '\0') {
		if (rep->ehlo[0])
			line("AUTH:", "%s", "the server offers no AUTH: mail "
			    "goes without it");
		return;
	}
	line("AUTH:", "offered %s", rep->auth_offered);
	if (!rep->auth_tried)
		line("", "%s", "no login attempted (the result below says why)");
	else
		line("", "used %s as user \"%s\": %s", rep->auth_mech,
		    jm->user, rep->auth_ok ? "login OK" : "login FAILED");
}

/* Advice for a refusal, from what was seen. */
static void
advise(const struct smtp_report *rep, const struct smtp_result *res)
{
	const struct tls_info *t = &rep->tls;
	const char *h = NULL;

	if (!rep->connected)
		h = "check the host name and port in relayhost, and that a "
		    "firewall lets this machine connect to it";
	else if (strstr(res->text, "speaks STARTTLS") != NULL)
		h = "remove smtp_tls_wrappermode = yes (ports 587 and 25 use "
		    "STARTTLS; only 465 takes TLS at once)";
	else if (strstr(res->text, "needs smtp_tls_wrappermode") != NULL)
		h = "set smtp_tls_wrappermode = yes for this port (465 takes "
		    "TLS at once), or use port 587 with STARTTLS";
	else if (strncmp(res->text, "SASL login not sent", 19) == 0)
		h = "a password goes only over TLS with a verified "
		    "certificate: set smtp_tls_security_level = verify (with "
		    "smtp_tls_CAfile if the relay's CA is not in the system "
		    "store)";
	else if (strstr(res->text, "offered no STARTTLS") != NULL)
		h = "this port offers no TLS; providers use port 465 with "
		    "smtp_tls_wrappermode = yes, or port 587 with STARTTLS";
	else if (t->active && t->fp_checked && !t->fp_ok)
		h = "if this is the server you expect, pin the fingerprint "
		    "shown above in smtp_tls_fingerprint_cert_match";
	else if (t->active && t->days_left < 0 && t->name_checked)
		h = "the server's certificate has expired: its operator must "
		    "renew it; until then mail waits in the queue (or lower "
		    "the level for this relay in smtp_tls_policy_maps, at "
		    "your own risk)";
	else if (t->active && !t->chain_ok)
		h = "the certificate is not signed by a CA this machine trusts:"
		    " fix the server's chain, name the CA in smtp_tls_CAfile, "
		    "or pin it (smtp_tls_security_level = fingerprint)";
	else if (t->active && t->name_checked && !t->name_ok)
		h = "write the name the certificate is for in relayhost, or "
		    "list it with match= in smtp_tls_policy_maps";
	else if (res->auth)
		h = "the server refused the login: check the user name and "
		    "password in smtp_sasl_password_maps (for a token, that "
		    "it has not expired)";
	else if (rep->auth_offered[0] != '\0' && !rep->auth_tried)
		h = "adjust smtp_sasl_mechanism_filter or the SASL security "
		    "options (plain-text logins over TLS need "
		    "smtp_sasl_tls_security_options = noanonymous)";
	else if (rep->tls_tried && !t->active)
		h = "the TLS handshake failed: compare the server's protocols "
		    "and ciphers with smtp_tls_mandatory_protocols and "
		    "smtp_tls_mandatory_ciphers";
	if (h != NULL)
		line("what to do:", "%s", h);
}

/* Print a step of the set-up as it starts, before it can hang. */
static void
progress(void *arg, const char *step)
{
	(void)arg;
	printf("  ... %s\n", step);
	fflush(stdout);
}

/* Print one table report, the first under the "tables:" label. */
static void
table_line(void *arg, const char *msg)
{
	int *n = arg;

	line((*n)++ ? "" : "tables:", "%s", msg);
}

/*
 * The tables of every *_maps parameter with a value: compiled ones that
 * are missing or stale, and lists that cannot be opened at all.
 */
static void
check_tables(const struct config *cf)
{
	const struct param_def *t;
	size_t n, len;
	struct maps *m;
	char err[1024];
	int shown = 0;

	t = param_table(&n);
	for (size_t i = 0; i < n; i++) {
		len = strlen(t[i].name);
		if (((len < 5 || strcmp(t[i].name + len - 5, "_maps") != 0) &&
		    (len < 7 || strcmp(t[i].name + len - 7, "_checks") != 0)) ||
		    *conf_str(cf, t[i].name) == '\0')
			continue;
		m = maps_open(t[i].name, conf_str(cf, t[i].name), err,
		    sizeof(err));
		if (m == NULL) {
			table_line(&shown, err);
			continue;
		}
		maps_stale(m, table_line, &shown);
		maps_free(m);
	}
}

/* Test relay ri of wc's list; 0 when mail would go, else an exit status. */
static int
check_relay(struct worker_cfg *wc, size_t ri, const char *source,
    const char *sender, int timeout)
{
	struct wdest *d = &wc->dest[ri];
	struct smtp_report rep;
	struct smtp_result res;
	struct smtp_session *s;
	struct smtp_opts o;
	struct smtp_auth auth;
	struct job_login jm;
	int found = 0, rc;
	const struct tls_info *t = &rep.tls;
	char buf[400];

	printf("relay %s (%s)\n", d->relay.text, source);
	if (d->why[0]) {
		line("result:", "FAILED: %s", d->why);
		return EX_CONFIG;
	}
	snprintf(buf, sizeof(buf), "%s%s", tls_level_name(d->tlsp.level),
	    wc->opts.tls_wrapper ? " (implicit TLS, smtp_tls_wrappermode = yes)" :
	    d->tlsp.level == TLS_LEV_NONE ? " (no TLS)" :
	    tls_level_mandatory(d->tlsp.level) ? " (STARTTLS required)" :
	    " (STARTTLS when offered)");
	line("TLS level:", "%s", buf);
	memset(&rep, 0, sizeof(rep));
	memset(&jm, 0, sizeof(jm));
	o = wc->opts;
	o.tls_policy = &d->tlsp;
	o.report = &rep;
	o.tls_loglevel = 0;
	o.progress = progress;
	/* Short timeouts: a person is waiting (-t). */
	o.connect_timeout = o.helo_timeout = o.starttls_timeout =
	    o.quit_timeout = timeout;
	if (wc->sasl) {
		found = worker_cfg_creds(wc, sender, ri, &jm);
		if (found < 0) {
			line("result:", "FAILED: %s", jm.why);
			job_login_clear(&jm);
			return EX_CONFIG;
		}
		auth = wc->auth;
		auth.user = jm.user;
		auth.secret = jm.secret;
		o.auth = found ? &auth : NULL;
	}
	s = smtp_open(&d->relay, &o, &res);
	if (rep.connected) {
		snprintf(buf, sizeof(buf), "%s%s%s%s port %s",
		    d->relay.mx && rep.host[0] ? rep.host : "",
		    d->relay.mx && rep.host[0] ? " [" : "", rep.addr,
		    d->relay.mx && rep.host[0] ? "]" : "", d->relay.port);
		line("connected:", "%s", buf);
	}
	if (rep.greeting[0])
		line("greeting:", "%s", rep.greeting);
	if (rep.connected && !o.tls_wrapper && rep.greeting[0])
		line("STARTTLS:", "%s", rep.starttls_offered ? "offered" :
		    "NOT offered");
	if (t->active) {
		snprintf(buf, sizeof(buf), "%s with cipher %s (%d/%d bits)%s",
		    t->proto, t->cipher, t->bits, t->alg_bits,
		    t->reused ? ", session reused" : "");
		line("TLS:", "%s", buf);
		show_cert(t);
	} else if (rep.connected && rep.greeting[0] && s != NULL)
		line("TLS:", "%s", "none: the connection is in clear text");
	if (rep.ehlo[0])
		line("extensions:", "%s", rep.ehlo);
	show_auth(wc, d, &rep, &jm, found);
	if (s != NULL && !found && auth_in_ehlo(&rep) &&
	    auth_unused(wc, d, &jm)) {
		line("result:", "FAILED: the relay offers AUTH and no login "
		    "will be sent, so it will most likely refuse the mail");
		line("what to do:", "the smtp_sasl_password_maps key must match "
		    "relayhost exactly, brackets and port included: write "
		    "\"%s user:password\" (then postern map if it is a "
		    "hash: table)", d->relay.text);
		smtp_close(s);
		rc = EX_UNAVAILABLE;
	} else if (s != NULL && wc->sasl && !rep.auth_ok &&
	    refused_without_login(s, wc, sender)) {
		smtp_close(s);
		rc = EX_UNAVAILABLE;
	} else if (s != NULL) {
		snprintf(buf, sizeof(buf), "level %s accepts this relay%s%s%s",
		    tls_level_name(d->tlsp.level), t->active ? " (" : "",
		    t->active ? t->trust : "", t->active ? " TLS)" : "");
		line("result:", "OK: %s%s", buf, rep.auth_ok ?
		    ", and the login succeeded" : "");
		smtp_close(s);
		rc = 0;
	} else {
		rc = EX_UNAVAILABLE;
		line("result:", "REFUSED: %s", res.text);
		advise(&rep, &res);
	}
	job_login_clear(&jm);
	return rc;
}

/* postern check [-f sender] [-t seconds]. */
int
check_cmd(int argc, char **argv, const char *confdir)
{
	struct worker_cfg wc;
	struct route rt;
	struct config *cf;
	const char *sender = NULL, *errstr;
	char err[1024];
	int rc = 0, one, timeout = CHECK_TIMEOUT;

	for (int i = 1; i < argc; i += 2) {
		if (i + 1 < argc && strcmp(argv[i], "-f") == 0)
			sender = argv[i + 1];
		else if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
			timeout = (int)strtonum(argv[i + 1], 1, 3600, &errstr);
			if (errstr != NULL) {
				fprintf(stderr, "postern check: -t %s: %s (seconds, "
				    "1 to 3600)\n", argv[i + 1], errstr);
				return EX_USAGE;
			}
		} else {
			fprintf(stderr, "%s\n", CHECK_USAGE);
			return EX_USAGE;
		}
	}
	/* A relay that hangs up must not kill us in the middle of a TLS
	   write (OpenSSL writes with write(2), not send(MSG_NOSIGNAL)). */
	signal(SIGPIPE, SIG_IGN);
	cf = admin_config(confdir);
	/* The report says it all; no TLS log lines on stderr as well. */
	(void)config_set(cf, "smtp_tls_loglevel", "0", err, sizeof(err));
	printf("configuration %s/main.cf\n", config_dir(cf));
	check_tables(cf);
	if (worker_cfg_build(&wc, cf, NULL, err, sizeof(err)) < 0) {
		printf("  %-14sFAILED: %s\n", "settings:", err);
		config_free(cf);
		return EX_CONFIG;
	}
	/* The relay mail from sender would take (transport_maps aside). */
	if (route_resolve(&wc.rt, sender ? sender : "", "", &rt, err,
	    sizeof(err)) < 0) {
		printf("  %-14sFAILED: %s\n", "route:", err);
		rc = EX_CONFIG;
		goto out;
	}
	if (rt.kind != RT_RELAY) {
		printf("  %-14sFAILED: %s\n", "relayhost:", rt.text);
		rc = EX_CONFIG;
		goto out;
	}
	(void)worker_cfg_dest(&wc, rt.nexthop);
	for (size_t ri = 0; ri < wc.ndest; ri++) {
		one = check_relay(&wc, ri, ri ? "smtp_fallback_relay" :
		    rt.source, sender, timeout);
		/* A working fallback does not excuse the main relay. */
		if (rc == 0)
			rc = one;
	}
out:
	fflush(stdout);
	worker_cfg_free(&wc);
	config_free(cf);
	return rc;
}
