/*
 * wconf.c - what a delivery worker needs, from main.cf.
 *
 * The daemon builds this once per configuration (at start and on
 * SIGHUP) and before forking each worker settles the relay's TLS policy,
 * so the workers inherit a ready TLS context and never read main.cf or
 * a certificate file themselves. `postern check` builds the same thing,
 * so what it tests is what the daemon would do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <bsd/string.h>

#include "conf/config.h"
#include "conf/map_db.h"
#include "conf/map_text.h"
#include "conf/maps.h"
#include "deliver/sasl.h"
#include "deliver/worker.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* The TLS settings of main.cf. */
static void
tls_conf_fill(struct tls_conf *tc, const struct config *cf)
{
	memset(tc, 0, sizeof(*tc));
	tc->cafile = conf_str(cf, "smtp_tls_CAfile");
	tc->capath = conf_str(cf, "smtp_tls_CApath");
	tc->cert_file = conf_str(cf, "smtp_tls_cert_file");
	tc->key_file = conf_str(cf, "smtp_tls_key_file");
	tc->protocols = conf_str(cf, "smtp_tls_protocols");
	tc->mand_protocols = conf_str(cf, "smtp_tls_mandatory_protocols");
	tc->ciphers = conf_str(cf, "smtp_tls_ciphers");
	tc->mand_ciphers = conf_str(cf, "smtp_tls_mandatory_ciphers");
	tc->exclude = conf_str(cf, "smtp_tls_exclude_ciphers");
	tc->mand_exclude = conf_str(cf, "smtp_tls_mandatory_exclude_ciphers");
	tc->fp_digest = conf_str(cf, "smtp_tls_fingerprint_digest");
	tc->fp_match = conf_str(cf, "smtp_tls_fingerprint_cert_match");
	tc->verify_match = conf_str(cf, "smtp_tls_verify_cert_match");
	tc->secure_match = conf_str(cf, "smtp_tls_secure_cert_match");
	tc->servername = conf_str(cf, "smtp_tls_servername");
	tc->loglevel = (int)conf_int(cf, "smtp_tls_loglevel");
	tc->cache_timeout = (int)conf_time(cf,
	    "smtp_tls_session_cache_timeout");
}

/* The SMTP options of main.cf. */
static void
smtp_opts_fill(struct smtp_opts *o, const struct config *cf)
{
	o->helo_name = conf_str(cf, "smtp_helo_name");
	o->line_limit = (int)conf_int(cf, "smtp_line_length_limit");
	o->connect_timeout = (int)conf_time(cf, "smtp_connect_timeout");
	o->helo_timeout = (int)conf_time(cf, "smtp_helo_timeout");
	o->mail_timeout = (int)conf_time(cf, "smtp_mail_timeout");
	o->rcpt_timeout = (int)conf_time(cf, "smtp_rcpt_timeout");
	o->data_init_timeout = (int)conf_time(cf, "smtp_data_init_timeout");
	o->data_xfer_timeout = (int)conf_time(cf, "smtp_data_xfer_timeout");
	o->data_done_timeout = (int)conf_time(cf, "smtp_data_done_timeout");
	o->quit_timeout = (int)conf_time(cf, "smtp_quit_timeout");
	o->starttls_timeout = (int)conf_time(cf, "smtp_starttls_timeout");
	o->per_request_deadline = conf_bool(cf, "smtp_per_request_deadline");
	o->min_data_rate = (int)conf_int(cf, "smtp_min_data_rate");
	o->tls_wrapper = conf_bool(cf, "smtp_tls_wrappermode");
	o->tls_loglevel = (int)conf_int(cf, "smtp_tls_loglevel");
}

/* The TLS context and policy table; 0 or -1 with err. */
static int
tls_build(struct worker_cfg *wc, const struct config *cf, char *err,
    size_t errlen)
{
	const char *lev = conf_str(cf, "smtp_tls_security_level");
	struct tls_conf tc;
	char why[512];

	if (tls_level_parse(lev, &wc->tls_level) < 0) {
		snprintf(err, errlen, "smtp_tls_security_level = %s: expected "
		    "none, may, encrypt, fingerprint, verify or secure", lev);
		return -1;
	}
	wc->tls_maps = maps_open("smtp_tls_policy_maps",
	    conf_str(cf, "smtp_tls_policy_maps"), why, sizeof(why));
	if (wc->tls_maps == NULL) {
		strlcpy(err, why, errlen);
		return -1;
	}
	tls_conf_fill(&tc, cf);
	wc->tls = tls_ctx_new(&tc, why, sizeof(why));
	if (wc->tls == NULL) {
		snprintf(err, errlen, "TLS: %s", why);
		return -1;
	}
	return 0;
}

/* 0 when path is missing or private, else -1 with the chmod in err. */
static int
file_private(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & S_IROTH)) {
		snprintf(err, errlen, "smtp_sasl_password_maps: %s is readable "
		    "by every user (mode %04o) and holds passwords; fix it "
		    "with: chmod o-rwx %s", path,
		    (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

/*
 * Refuse password tables that other users can read: each file named in
 * the parameter (texthash:, and for hash: and btree: both the source and
 * the compiled .db). Returns 0, or -1 with err saying which chmod fixes
 * it.
 */
static int
secret_files_private(const char *value, char *err, size_t errlen)
{
	char *copy = xstrdup(value), *p = copy, *item, *db;
	int rc = 0;

	while (rc == 0 && (item = map_text_token(&p)) != NULL) {
		if (strncmp(item, "texthash:", 9) == 0) {
			rc = file_private(item + 9, err, errlen);
		} else if (strncmp(item, "hash:", 5) == 0 ||
		    strncmp(item, "btree:", 6) == 0) {
			item = strchr(item, ':') + 1;
			db = map_db_path(item);
			rc = file_private(item, err, errlen);
			if (rc == 0)
				rc = file_private(db, err, errlen);
			free(db);
		}
	}
	explicit_bzero(copy, strlen(value));
	free(copy);
	return rc;
}

/* The SASL settings and password table; 0 or -1 with err. */
static int
sasl_build(struct worker_cfg *wc, const struct config *cf, char *err,
    size_t errlen)
{
	char why[512];

	wc->sasl = conf_bool(cf, "smtp_sasl_auth_enable");
	wc->sender_auth = conf_bool(cf, "smtp_sender_dependent_authentication");
	wc->auth.mech_filter = conf_str(cf, "smtp_sasl_mechanism_filter");
	wc->auth.allow_unencrypted = conf_bool(cf, "smtp_sasl_allow_unencrypted");
	wc->auth.allow_unverified = conf_bool(cf,
	    "smtp_sasl_allow_unverified_tls");
	if (sasl_secopts_parse(conf_str(cf, "smtp_sasl_security_options"),
	    &wc->auth.secflags, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "smtp_sasl_security_options: %s", why);
		return -1;
	}
	if (sasl_secopts_parse(conf_str(cf, "smtp_sasl_tls_security_options"),
	    &wc->auth.tls_secflags, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "smtp_sasl_tls_security_options: %s", why);
		return -1;
	}
	if (!wc->sasl)
		return 0;
	if (secret_files_private(conf_str(cf, "smtp_sasl_password_maps"),
	    err, errlen) < 0)
		return -1;
	wc->sasl_maps = maps_open("smtp_sasl_password_maps",
	    conf_str(cf, "smtp_sasl_password_maps"), why, sizeof(why));
	if (wc->sasl_maps == NULL) {
		strlcpy(err, why, errlen);
		return -1;
	}
	maps_set_cache_time(wc->sasl_maps,
	    (int)conf_time(cf, "smtp_sasl_password_cache_time"));
	return 0;
}

/* A table parameter; 0 or -1 with err. */
static int
open_maps(struct maps **m, const struct config *cf, const char *param,
    char *err, size_t errlen)
{
	*m = maps_open(param, conf_str(cf, param), err, errlen);
	return *m == NULL ? -1 : 0;
}

/* Build wc from main.cf (see worker.h). */
int
worker_cfg_build(struct worker_cfg *wc, const struct config *cf,
    const char *active_dir, char *err, size_t errlen)
{
	memset(wc, 0, sizeof(*wc));
	smtp_opts_fill(&wc->opts, cf);
	wc->pol.soft_bounce = conf_bool(cf, "soft_bounce");
	wc->pol.auth_soft_bounce = conf_bool(cf, "smtp_sasl_auth_soft_bounce");
	wc->pol.max_lifetime = conf_time(cf, "maximal_queue_lifetime");
	wc->pol.bounce_lifetime = conf_time(cf, "bounce_queue_lifetime");
	wc->rcpt_limit = (size_t)conf_int(cf, "smtp_destination_recipient_limit");
	if (active_dir != NULL)
		strlcpy(wc->active_dir, active_dir, sizeof(wc->active_dir));
	if (tls_build(wc, cf, err, errlen) < 0 ||
	    sasl_build(wc, cf, err, errlen) < 0 ||
	    router_init(&wc->rt, cf, err, errlen) < 0 ||
	    open_maps(&wc->generic, cf, "smtp_generic_maps", err, errlen) < 0 ||
	    open_maps(&wc->hchecks, cf, "smtp_header_checks", err, errlen) < 0) {
		worker_cfg_free(wc);
		return -1;
	}
	return 0;
}

/*
 * Look a relay up in smtp_tls_policy_maps: as written, then as
 * "[host]:port" (or "host:port") with a numeric port. Returns MAP_FOUND
 * with *value, MAP_NOTFOUND, or MAP_ERROR with err.
 */
static int
policy_lookup(struct worker_cfg *wc, const struct smtp_relay *r,
    const char **value, char *err, size_t errlen)
{
	char key[300];
	int rc;

	if ((rc = maps_find(wc->tls_maps, r->text, value, err, errlen)) != 0)
		return rc;
	/* The same destination with a numeric port; never the bare host,
	   which in Postfix means the MX-routed domain of that name. */
	snprintf(key, sizeof(key), r->mx ? "%s:%s" : "[%s]:%s", r->host,
	    r->port);
	if (strcmp(key, r->text) == 0)
		return MAP_NOTFOUND;
	return maps_find(wc->tls_maps, key, value, err, errlen);
}

/* One relay's TLS policy into d; 0 or -1 with d->why. */
static int
dest_policy(struct worker_cfg *wc, struct wdest *d)
{
	const char *value;
	char err[400];
	int rc;

	d->tlsp.level = wc->tls_level;
	rc = policy_lookup(wc, &d->relay, &value, err, sizeof(err));
	if (rc < 0) {
		snprintf(d->why, sizeof(d->why), "cannot look up the TLS "
		    "policy for %s: %s", d->relay.text, err);
		return -1;
	}
	if (rc == MAP_FOUND && tls_policy_parse(value, &d->tlsp, err,
	    sizeof(err)) < 0)
		goto bad;
	d->tlsp.from_map = rc == MAP_FOUND;
	if (tls_policy_check(wc->tls, &d->tlsp, err, sizeof(err)) < 0)
		goto bad;
	return 0;
bad:
	tls_policy_free(&d->tlsp);
	d->tlsp.level = wc->tls_level;
	if (rc == MAP_FOUND)
		snprintf(d->why, sizeof(d->why), "bad entry for %s in "
		    "smtp_tls_policy_maps (%s): %s", d->relay.text,
		    maps_title(wc->tls_maps), err);
	else
		snprintf(d->why, sizeof(d->why), "main.cf's TLS settings for "
		    "%s cannot work: %s", d->relay.text, err);
	return -1;
}

/* Forget the batch's relays. */
static void
dest_clear(struct worker_cfg *wc)
{
	for (size_t i = 0; i < wc->ndest; i++) {
		smtp_relay_free(&wc->dest[i].relay);
		tls_policy_free(&wc->dest[i].tlsp);
		memset(&wc->dest[i], 0, sizeof(wc->dest[i]));
	}
	wc->ndest = 0;
}

/* Add one relay to the batch's list. */
static void
dest_add(struct worker_cfg *wc, const char *spec, const char *source)
{
	struct wdest *d = &wc->dest[wc->ndest++];
	char why[256];

	if (smtp_relay_parse(spec, &d->relay, why, sizeof(why)) < 0) {
		snprintf(d->why, sizeof(d->why), "bad relay \"%s\" in %s: %s",
		    spec, source, why);
		d->relay.text = xstrdup(spec);
		return;
	}
	d->ok = 1;
	(void)dest_policy(wc, d);
}

/* Settle a batch's relays (see worker.h). */
int
worker_cfg_dest(struct worker_cfg *wc, const char *nexthop)
{
	dest_clear(wc);
	wc->opts.tls = wc->tls;
	dest_add(wc, nexthop, "the route");
	for (size_t i = 0; i < wc->rt.nfallback && wc->ndest < WC_RELAYS;
	    i++) {
		if (strcasecmp(wc->rt.fallback[i], nexthop) != 0)
			dest_add(wc, wc->rt.fallback[i], "smtp_fallback_relay");
	}
	return wc->dest[0].why[0] ? -1 : 0;
}

/* One lookup key; MAP_* result, err filled on MAP_ERROR. */
static int
creds_find(struct worker_cfg *wc, const char *key, const char **value,
    char *err, size_t errlen)
{
	if (key == NULL || *key == '\0')
		return MAP_NOTFOUND;
	return maps_find(wc->sasl_maps, key, value, err, errlen);
}

/* The SASL login for sender at relay ri (see worker.h). */
int
worker_cfg_creds(struct worker_cfg *wc, const char *sender, size_t ri,
    struct job_login *lg)
{
	const struct smtp_relay *r;
	const char *value = NULL, *at, *colon, *key = NULL, *keys[4];
	struct buf tried = BUF_INIT;
	char err[400];
	size_t nk = 0;
	int rc = MAP_NOTFOUND;

	if (!wc->sasl || ri >= wc->ndest || !wc->dest[ri].ok ||
	    wc->sasl_maps == NULL)
		return 0;
	r = &wc->dest[ri].relay;
	/* Postfix's order: the sender, its @domain, the relay as written,
	   the bare host. */
	if (wc->sender_auth && sender != NULL && *sender != '\0') {
		keys[nk++] = sender;
		if ((at = strrchr(sender, '@')) != NULL)
			keys[nk++] = at;
	}
	keys[nk++] = r->text;
	keys[nk++] = r->host;
	for (size_t i = 0; i < nk && rc == MAP_NOTFOUND; i++)
		rc = creds_find(wc, key = keys[i], &value, err, sizeof(err));
	if (rc == MAP_ERROR) {
		lg->why = xstrdup(err);
		return -1;
	}
	if (rc == MAP_NOTFOUND) {
		/* The keys looked up, for postern check's advice. */
		for (size_t i = 0; i < nk; i++)
			buf_addf(&tried, "%s%s", i ? ", " : "", keys[i]);
		lg->tried = xstrdup(tried.data);
		buf_free(&tried);
	}
	if (rc == MAP_NOTFOUND)
		return 0;
	/* "user:password"; the password may hold colons, the user not. */
	colon = strchr(value, ':');
	if (colon == NULL || colon == value) {
		snprintf(err, sizeof(err), "%s: the entry for %s must be "
		    "username:password", maps_title(wc->sasl_maps), key);
		lg->why = xstrdup(err);
		return -1;
	}
	lg->user = xstrndup(value, (size_t)(colon - value));
	lg->secret = xstrdup(colon + 1);
	lg->key = xstrdup(key);
	return 1;
}

/* Wipe and free a login. */
void
job_login_clear(struct job_login *lg)
{
	free(lg->user);
	free_secret(lg->secret);
	free(lg->why);
	free(lg->key);
	free(lg->tried);
	memset(lg, 0, sizeof(*lg));
}

/* Wipe and free a job's logins and recipients. */
void
job_msg_clear(struct job_msg *jm)
{
	for (size_t i = 0; i < WC_RELAYS; i++)
		job_login_clear(&jm->login[i]);
	free(jm->idx);
	jm->idx = NULL;
	jm->nidx = 0;
}

/* Free what worker_cfg_build made. */
void
worker_cfg_free(struct worker_cfg *wc)
{
	dest_clear(wc);
	maps_free(wc->sasl_maps);
	wc->sasl_maps = NULL;
	tls_ctx_free(wc->tls);
	wc->tls = NULL;
	maps_free(wc->tls_maps);
	wc->tls_maps = NULL;
	router_free(&wc->rt);
	maps_free(wc->generic);
	wc->generic = NULL;
	maps_free(wc->hchecks);
	wc->hchecks = NULL;
}

/* Let every table look for changes at its next lookup. */
void
worker_cfg_recheck(struct worker_cfg *wc)
{
	struct maps *all[] = { wc->tls_maps, wc->sasl_maps, wc->rt.transport,
	    wc->rt.sender_relay, wc->rt.aliases, wc->generic, wc->hchecks };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i] != NULL)
			maps_recheck(all[i]);
}

/* Let every table look at its file now. */
void
worker_cfg_refresh(struct worker_cfg *wc)
{
	struct maps *all[] = { wc->tls_maps, wc->sasl_maps, wc->rt.transport,
	    wc->rt.sender_relay, wc->rt.aliases, wc->generic, wc->hchecks };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i] != NULL)
			maps_refresh(all[i]);
}
