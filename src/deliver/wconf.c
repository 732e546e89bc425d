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
#include <sys/stat.h>

#include <bsd/string.h>

#include "lib/xalloc.h"

#include "conf/config.h"
#include "conf/map_db.h"
#include "conf/map_text.h"
#include "conf/maps.h"
#include "deliver/sasl.h"
#include "deliver/worker.h"
#include "lib/log.h"

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

/* Build wc from main.cf (see worker.h). */
int
worker_cfg_build(struct worker_cfg *wc, const struct config *cf,
    const char *active_dir, char *err, size_t errlen)
{
	const char *relay = conf_str(cf, "relayhost");
	char why[256];

	memset(wc, 0, sizeof(*wc));
	smtp_opts_fill(&wc->opts, cf);
	wc->pol.soft_bounce = conf_bool(cf, "soft_bounce");
	wc->pol.max_lifetime = conf_time(cf, "maximal_queue_lifetime");
	wc->pol.bounce_lifetime = conf_time(cf, "bounce_queue_lifetime");
	if (active_dir != NULL)
		strlcpy(wc->active_dir, active_dir, sizeof(wc->active_dir));
	if (tls_build(wc, cf, err, errlen) < 0 ||
	    sasl_build(wc, cf, err, errlen) < 0) {
		worker_cfg_free(wc);
		return -1;
	}
	if (relay[0] == '\0') {
		snprintf(wc->why_not, sizeof(wc->why_not), "no relayhost is "
		    "configured: postern sends all mail through a smarthost; "
		    "set relayhost = [smtp.example.com]:587 in main.cf");
	} else if (smtp_relay_parse(relay, &wc->relay, why, sizeof(why)) < 0) {
		snprintf(wc->why_not, sizeof(wc->why_not), "bad relayhost "
		    "\"%s\" in main.cf: %s", relay, why);
	} else {
		wc->relay_ok = 1;
	}
	return 0;
}

/*
 * Look the relay up in smtp_tls_policy_maps: as written in relayhost,
 * then as "[host]:port" (or "host:port") with a numeric port. Returns
 * MAP_FOUND with *value, MAP_NOTFOUND, or MAP_ERROR with err.
 */
static int
policy_lookup(struct worker_cfg *wc, const char **value, char *err,
    size_t errlen)
{
	const struct smtp_relay *r = &wc->relay;
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

/* The relay's TLS policy (see worker.h). */
int
worker_cfg_policy(struct worker_cfg *wc)
{
	const char *value;
	char err[400];
	int rc;

	wc->why_now[0] = '\0';
	tls_policy_free(&wc->tlsp);
	wc->tlsp.level = wc->tls_level;
	wc->opts.tls = wc->tls;
	wc->opts.tls_policy = &wc->tlsp;
	if (!wc->relay_ok)
		return 0;
	rc = policy_lookup(wc, &value, err, sizeof(err));
	if (rc < 0) {
		snprintf(wc->why_now, sizeof(wc->why_now), "cannot look up "
		    "the TLS policy for %s: %s", wc->relay.text, err);
		return -1;
	}
	if (rc == MAP_FOUND && tls_policy_parse(value, &wc->tlsp, err,
	    sizeof(err)) < 0)
		goto bad;
	wc->tlsp.from_map = rc == MAP_FOUND;
	if (tls_policy_check(wc->tls, &wc->tlsp, err, sizeof(err)) < 0)
		goto bad;
	return 0;
bad:
	tls_policy_free(&wc->tlsp);
	wc->tlsp.level = wc->tls_level;
	if (rc == MAP_FOUND)
		snprintf(wc->why_now, sizeof(wc->why_now), "bad entry for %s in "
		    "smtp_tls_policy_maps (%s): %s", wc->relay.text,
		    maps_title(wc->tls_maps), err);
	else
		snprintf(wc->why_now, sizeof(wc->why_now), "main.cf's TLS "
		    "settings for %s cannot work: %s", wc->relay.text, err);
	return -1;
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

/* The SASL login for sender (see worker.h). */
int
worker_cfg_creds(struct worker_cfg *wc, const char *sender,
    struct job_msg *jm)
{
	const struct smtp_relay *r = &wc->relay;
	const char *value = NULL, *at, *colon, *key = NULL;
	char err[400];
	int rc = MAP_NOTFOUND;

	if (!wc->sasl || !wc->relay_ok || wc->sasl_maps == NULL)
		return 0;
	if (wc->sender_auth && sender != NULL && *sender != '\0') {
		rc = creds_find(wc, key = sender, &value, err, sizeof(err));
		at = strrchr(sender, '@');
		if (rc == MAP_NOTFOUND && at != NULL)
			rc = creds_find(wc, key = at, &value, err, sizeof(err));
	}
	if (rc == MAP_NOTFOUND)
		rc = creds_find(wc, key = r->text, &value, err, sizeof(err));
	if (rc == MAP_NOTFOUND)
		rc = creds_find(wc, key = r->host, &value, err, sizeof(err));
	if (rc == MAP_ERROR) {
		jm->why = xstrdup(err);
		return -1;
	}
	if (rc == MAP_NOTFOUND)
		return 0;
	/* "user:password"; the password may hold colons, the user not. */
	colon = strchr(value, ':');
	if (colon == NULL || colon == value) {
		snprintf(err, sizeof(err), "%s: the entry for %s must be "
		    "username:password", maps_title(wc->sasl_maps), key);
		jm->why = xstrdup(err);
		return -1;
	}
	jm->user = xstrndup(value, (size_t)(colon - value));
	jm->secret = xstrdup(colon + 1);
	jm->key = xstrdup(key);
	return 1;
}

/* Wipe and free a job's credentials. */
void
job_msg_clear(struct job_msg *jm)
{
	free(jm->user);
	free_secret(jm->secret);
	free(jm->why);
	free(jm->key);
	jm->user = jm->secret = jm->why = jm->key = NULL;
}

/* Free what worker_cfg_build made. */
void
worker_cfg_free(struct worker_cfg *wc)
{
	maps_free(wc->sasl_maps);
	wc->sasl_maps = NULL;
	smtp_relay_free(&wc->relay);
	tls_policy_free(&wc->tlsp);
	tls_ctx_free(wc->tls);
	wc->tls = NULL;
	maps_free(wc->tls_maps);
	wc->tls_maps = NULL;
}
