/*
 * sasl.c - SMTP AUTH mechanisms: choice by strength and policy, and the
 * challenge/response steps (libgsasl, plus XOAUTH2 and OAUTHBEARER).
 *
 * The table below is the whole policy: each mechanism's rank and which
 * of Postfix's security options it satisfies (as Cyrus SASL, which
 * Postfix uses, classifies them). A mechanism is allowed when it
 * satisfies every option set; the strongest allowed one the server
 * offers wins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/string.h>
#include <gsasl.h>

#include "deliver/sasl.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#define SCRAM_SAT	(SASL_SEC_NOPLAINTEXT | SASL_SEC_NOACTIVE | \
			 SASL_SEC_NOANONYMOUS | SASL_SEC_MUTUAL_AUTH)

/* One mechanism postern can use. */
static const struct mech {
	const char	*name;
	unsigned	 sat;		/* security options it satisfies */
	int		 plus;		/* needs channel binding */
	int		 token;		/* the secret is an OAuth token */
	int		 first;		/* sends an initial response */
	int		 own;		/* implemented here, not by libgsasl */
} mechs[] = {		/* strongest first */
	{ "SCRAM-SHA-256-PLUS", SCRAM_SAT, 1, 0, 1, 0 },
	{ "SCRAM-SHA-256", SCRAM_SAT, 0, 0, 1, 0 },
	{ "SCRAM-SHA-1-PLUS", SCRAM_SAT, 1, 0, 1, 0 },
	{ "SCRAM-SHA-1", SCRAM_SAT, 0, 0, 1, 0 },
	{ "CRAM-MD5", SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS, 0, 0, 0,
	    0 },
	{ "OAUTHBEARER", SASL_SEC_NOANONYMOUS, 0, 1, 1, 1 },
	{ "XOAUTH2", SASL_SEC_NOANONYMOUS, 0, 1, 1, 1 },
	{ "PLAIN", SASL_SEC_NOANONYMOUS, 0, 0, 1, 0 },
	{ "LOGIN", SASL_SEC_NOANONYMOUS, 0, 0, 0, 0 },
};
#define NMECHS	(sizeof(mechs) / sizeof(mechs[0]))

struct sasl_client {
	const struct mech	*m;
	Gsasl_session		*gs;
	char			*user;
	char			*secret;
	char			*host;
	char			*port;
	int			 steps;
};

static Gsasl *lib;	/* libgsasl's handle, made at first use */

/* Security option words. */
static const struct {
	const char	*word;
	unsigned	 flag;
} secwords[] = {
	{ "noplaintext", SASL_SEC_NOPLAINTEXT },
	{ "noactive", SASL_SEC_NOACTIVE },
	{ "nodictionary", SASL_SEC_NODICTIONARY },
	{ "noanonymous", SASL_SEC_NOANONYMOUS },
	{ "mutual_auth", SASL_SEC_MUTUAL_AUTH },
};

/* Parse security options. */
int
sasl_secopts_parse(const char *s, unsigned *flags, char *err, size_t errlen)
{
	char *copy = xstrdup(s ? s : ""), *tok, *save = NULL;
	size_t i;
	int rc = 0;

	*flags = 0;
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		for (i = 0; i < sizeof(secwords) / sizeof(secwords[0]); i++)
			if (strcasecmp(tok, secwords[i].word) == 0)
				break;
		if (i == sizeof(secwords) / sizeof(secwords[0])) {
			snprintf(err, errlen, "unknown SASL security option "
			    "\"%s\" (expected noplaintext, noactive, "
			    "nodictionary, noanonymous or mutual_auth)", tok);
			rc = -1;
			break;
		}
		*flags |= secwords[i].flag;
	}
	free(copy);
	return rc;
}

/* 1 when the space/comma separated list has word (case-insensitive). */
static int
list_has(const char *list, const char *word)
{
	size_t n = strlen(word), k;
	const char *p = list;

	while (*p) {
		p += strspn(p, " \t,");
		k = strcspn(p, " \t,");
		if (k == n && strncasecmp(p, word, n) == 0)
			return 1;
		p += k;
	}
	return 0;
}

/*
 * 1 when the filter lets m through: named in it, or (the filter lists
 * only exclusions "!name", or is empty) not excluded and not a token
 * mechanism.
 */
static int
filter_allows(const char *filter, const struct mech *m)
{
	char neg[40];
	const char *p;
	int positive = 0;

	snprintf(neg, sizeof(neg), "!%s", m->name);
	if (filter == NULL)
		filter = "";
	if (list_has(filter, neg))
		return 0;
	if (list_has(filter, m->name))
		return 1;
	for (p = filter; *p; p += strcspn(p, " \t,")) {
		p += strspn(p, " \t,");
		if (*p != '\0' && *p != '!')
			positive = 1;
	}
	return !positive && !m->token;
}

/* Choose the mechanism (see sasl.h). */
int
sasl_choose(const char *offered, const char *filter, unsigned flags,
    int cb, char *mech, size_t mechlen, char *why, size_t whylen)
{
	const struct mech *m;
	size_t i;
	int any_offered = 0, any_filtered = 0;

	for (i = 0; i < NMECHS; i++) {
		m = &mechs[i];
		if (offered == NULL || !list_has(offered, m->name))
			continue;
		any_offered = 1;
		if (!filter_allows(filter, m))
			continue;
		any_filtered = 1;
		if ((flags & ~m->sat) != 0 || (m->plus && !cb))
			continue;
		strlcpy(mech, m->name, mechlen);
		return 0;
	}
	if (!any_offered)
		snprintf(why, whylen, "the server offers no mechanism postern "
		    "supports (offered: %s)", offered && *offered ? offered :
		    "none");
	else if (!any_filtered)
		snprintf(why, whylen, "no offered mechanism (%s) passes "
		    "smtp_sasl_mechanism_filter = %s", offered, filter);
	else
		snprintf(why, whylen, "no offered mechanism (%s) is allowed by "
		    "the SASL security options in force for this connection "
		    "(plain-text mechanisms such as PLAIN and LOGIN need "
		    "\"noanonymous\" alone, usually in "
		    "smtp_sasl_tls_security_options)", offered);
	return -1;
}

/* The table entry for name. */
static const struct mech *
mech_find(const char *name)
{
	size_t i;

	for (i = 0; i < NMECHS; i++)
		if (strcasecmp(mechs[i].name, name) == 0)
			return &mechs[i];
	return NULL;
}

/* Set the channel binding property libgsasl asks for; 0 or -1. */
static int
set_cb(Gsasl_session *gs, const struct sasl_cb *cb)
{
	char *b64 = NULL;
	size_t n;
	int rc;

	if (cb == NULL || cb->type == NULL || cb->len == 0)
		return -1;
	if (gsasl_base64_to((const char *)cb->data, cb->len, &b64, &n) !=
	    GSASL_OK)
		return -1;
	rc = gsasl_property_set(gs, strcmp(cb->type, "tls-exporter") == 0 ?
	    GSASL_CB_TLS_EXPORTER : GSASL_CB_TLS_UNIQUE, b64);
	gsasl_free(b64);
	return rc == GSASL_OK ? 0 : -1;
}

/* Start a libgsasl client session. */
static int
gs_start(struct sasl_client *sc, const struct sasl_cb *cb, char *err,
    size_t errlen)
{
	int rc;

	if (lib == NULL && (rc = gsasl_init(&lib)) != GSASL_OK) {
		lib = NULL;
		snprintf(err, errlen, "cannot start libgsasl: %s",
		    gsasl_strerror(rc));
		return -1;
	}
	if ((rc = gsasl_client_start(lib, sc->m->name, &sc->gs)) != GSASL_OK) {
		snprintf(err, errlen, "libgsasl cannot do %s: %s",
		    sc->m->name, gsasl_strerror(rc));
		return -1;
	}
	if (gsasl_property_set(sc->gs, GSASL_AUTHID, sc->user) != GSASL_OK ||
	    gsasl_property_set(sc->gs, GSASL_PASSWORD, sc->secret) !=
	    GSASL_OK || gsasl_property_set(sc->gs, GSASL_SERVICE, "smtp") !=
	    GSASL_OK || gsasl_property_set(sc->gs, GSASL_HOSTNAME,
	    sc->host) != GSASL_OK) {
		snprintf(err, errlen, "cannot set SASL properties");
		return -1;
	}
	/*
	 * Only -PLUS gets the binding: libgsasl 2.2 fails plain SCRAM when a
	 * binding is set, so it cannot send RFC 5802's "y" flag. A stripped
	 * -PLUS is therefore not detected by SCRAM itself; at levels verify
	 * and secure the EHLO that lists -PLUS comes over the verified TLS
	 * connection, so nobody in between can strip it.
	 */
	if (sc->m->plus && set_cb(sc->gs, cb) < 0) {
		snprintf(err, errlen, "%s needs TLS channel binding, which is "
		    "not available on this connection", sc->m->name);
		return -1;
	}
	return 0;
}

/* Start a client (see sasl.h). */
struct sasl_client *
sasl_client_new(const char *mech, const char *user, const char *secret,
    const char *host, const char *port, const struct sasl_cb *cb, char *err,
    size_t errlen)
{
	struct sasl_client *sc = xcalloc(1, sizeof(*sc));

	if ((sc->m = mech_find(mech)) == NULL) {
		snprintf(err, errlen, "unknown SASL mechanism %s", mech);
		goto fail;
	}
	sc->user = xstrdup(user);
	sc->secret = xstrdup(secret);
	sc->host = xstrdup(host ? host : "localhost");
	sc->port = xstrdup(port ? port : "25");
	if (!sc->m->own && gs_start(sc, cb, err, errlen) < 0)
		goto fail;
	return sc;
fail:
	sasl_client_free(sc);
	return NULL;
}

/* 1 for mechanisms with an initial response. */
int
sasl_client_first(const struct sasl_client *sc)
{
	return sc->m->first;
}

/* Base64 of a buffer, as a string; wiping the buffer is the caller's. */
static char *
b64(const struct buf *b)
{
	char *out = NULL, *copy;
	size_t n;

	if (gsasl_base64_to(b->data ? b->data : "", b->len, &out, &n) !=
	    GSASL_OK)
		return NULL;
	copy = xstrdup(out);
	explicit_bzero(out, n);
	gsasl_free(out);
	return copy;
}

/* Append an RFC 7628 saslname: "," and "=" escaped. */
static void
add_saslname(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == ',')
			buf_adds(b, "=2C");
		else if (*s == '=')
			buf_adds(b, "=3D");
		else
			buf_addc(b, *s);
	}
}

/*
 * XOAUTH2 and OAUTHBEARER: the initial response carries the token; an
 * error arrives as a 334 challenge with a JSON document, to which the
 * client answers with an empty line (XOAUTH2) or a single ^A
 * (OAUTHBEARER), after which the server sends its 535.
 */
static enum sasl_rc
oauth_step(struct sasl_client *sc, const char *in, char **out, char *err,
    size_t errlen)
{
	struct buf b = BUF_INIT;
	int bearer = strcmp(sc->m->name, "OAUTHBEARER") == 0;

	if (in != NULL) {
		/* The server's error report; finish so it can say 535. */
		*out = xstrdup(bearer ? "AQ==" : "");
		return SASL_STEP_DONE;
	}
	if (bearer) {
		buf_adds(&b, "n,a=");
		add_saslname(&b, sc->user);
		buf_addf(&b, ",\001host=%s\001port=%s\001auth=Bearer ",
		    sc->host, sc->port);
	} else {
		buf_addf(&b, "user=%s\001auth=Bearer ", sc->user);
	}
	buf_adds(&b, sc->secret);
	buf_adds(&b, "\001\001");
	*out = b64(&b);
	buf_free(&b);
	if (*out == NULL) {
		snprintf(err, errlen, "cannot encode the %s response",
		    sc->m->name);
		return SASL_STEP_ERROR;
	}
	return SASL_STEP_MORE;
}

/* One step (see sasl.h). */
enum sasl_rc
sasl_step(struct sasl_client *sc, const char *in, char **out, char *err,
    size_t errlen)
{
	char *o = NULL;
	int rc;

	*out = NULL;
	sc->steps++;
	if (sc->m->own)
		return oauth_step(sc, in, out, err, errlen);
	rc = gsasl_step64(sc->gs, in ? in : "", &o);
	if (rc != GSASL_OK && rc != GSASL_NEEDS_MORE) {
		/* libgsasl's texts name the problem, never the secret. */
		snprintf(err, errlen, "%s: %s", sc->m->name,
		    gsasl_strerror(rc));
		if (o != NULL) {
			explicit_bzero(o, strlen(o));
			gsasl_free(o);
		}
		return SASL_STEP_ERROR;
	}
	*out = xstrdup(o ? o : "");
	if (o != NULL) {
		explicit_bzero(o, strlen(o));
		gsasl_free(o);
	}
	return rc == GSASL_OK ? SASL_STEP_DONE : SASL_STEP_MORE;
}

/* Wipe and free a response. */
void
sasl_free_out(char *out)
{
	free_secret(out);
}

/* Wipe and free the client. */
void
sasl_client_free(struct sasl_client *sc)
{
	if (sc == NULL)
		return;
	if (sc->gs != NULL)
		gsasl_finish(sc->gs);
	free_secret(sc->secret);
	free(sc->user);
	free(sc->host);
	free(sc->port);
	free(sc);
}
