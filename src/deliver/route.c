/*
 * route.c - relay choice per recipient, and alias expansion.
 *
 * Lookup orders are Postfix's. transport(5): "user+ext@domain",
 * "user@domain", "domain", then each parent ".domain", then "*"; the
 * partial keys skip pattern tables (maps_find_fixed), which Postfix asks
 * with the whole address only. sender_dependent_relayhost_maps: the
 * sender, then "@domain"; the null sender is looked up as "<>"
 * (empty_address_relayhost_maps_lookup_key). aliases(5): the local part,
 * then without its extension.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "conf/config.h"
#include "conf/map_text.h"
#include "conf/maps.h"
#include "deliver/route.h"
#include "deliver/smtp.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mail/addrmap.h"
#include "spool/qfile.h"

#define ALIAS_DEPTH	20	/* nesting of aliases */
#define ALIAS_MAX	1000	/* addresses one message may expand to */

/* Split a list value ("a, b c") into lower-case words. */
static void
words(const char *value, char ***v, size_t *n, int fold)
{
	char *copy = xstrdup(value), *p = copy, *w;

	while ((w = map_text_token(&p)) != NULL) {
		*v = xreallocarray(*v, *n + 1, sizeof(**v));
		(*v)[*n] = xstrdup(w);
		if (fold)
			map_fold((*v)[*n]);
		(*n)++;
	}
	free(copy);
}

/* Open one table parameter; 0 or -1 with err. */
static int
open_maps(struct maps **m, const struct config *cf, const char *param,
    char *err, size_t errlen)
{
	*m = maps_open(param, conf_str(cf, param), err, errlen);
	return *m == NULL ? -1 : 0;
}

/* Read the settings (see route.h). */
int
router_init(struct router *r, const struct config *cf, char *err,
    size_t errlen)
{
	const char *prop;

	memset(r, 0, sizeof(*r));
	if (open_maps(&r->transport, cf, "transport_maps", err, errlen) < 0 ||
	    open_maps(&r->sender_relay, cf, "sender_dependent_relayhost_maps",
	    err, errlen) < 0 ||
	    open_maps(&r->aliases, cf, "alias_maps", err, errlen) < 0) {
		router_free(r);
		return -1;
	}
	r->have_aliases = *conf_str(cf, "alias_maps") != '\0';
	r->relayhost = xstrdup(conf_str(cf, "relayhost"));
	words(conf_str(cf, "smtp_fallback_relay"), &r->fallback, &r->nfallback,
	    0);
	r->myhostname = xstrdup(conf_str(cf, "myhostname"));
	map_fold(r->myhostname);
	r->mydomain = xstrdup(conf_str(cf, "mydomain"));
	map_fold(r->mydomain);
	r->myorigin = xstrdup(conf_str(cf, "myorigin"));
	words(conf_str(cf, "mydestination"), &r->mydest, &r->nmydest, 1);
	r->delims = xstrdup(conf_str(cf, "recipient_delimiter"));
	prop = conf_str(cf, "propagate_unmatched_extensions");
	r->alias_ext = strstr(prop, "alias") != NULL;
	r->generic_ext = strstr(prop, "generic") != NULL;
	r->rw.myorigin = r->myorigin;
	r->rw.mydomain = r->mydomain;
	r->rw.append_at_myorigin = conf_bool(cf, "append_at_myorigin");
	r->rw.append_dot_mydomain = conf_bool(cf, "append_dot_mydomain");
	return 0;
}

/* Free the settings and close the tables. */
void
router_free(struct router *r)
{
	maps_free(r->transport);
	maps_free(r->sender_relay);
	maps_free(r->aliases);
	free(r->relayhost);
	for (size_t i = 0; i < r->nfallback; i++)
		free(r->fallback[i]);
	free(r->fallback);
	for (size_t i = 0; i < r->nmydest; i++)
		free(r->mydest[i]);
	free(r->mydest);
	free(r->myhostname);
	free(r->mydomain);
	free(r->myorigin);
	free(r->delims);
	memset(r, 0, sizeof(*r));
}

/* Is addr local (see route.h)? */
int
router_is_local(const struct router *r, const char *addr, const char *orig)
{
	const char *at = strrchr(addr, '@');
	char dom[256];

	if (orig != NULL && strchr(orig, '@') == NULL)
		return 1;
	if (at == NULL)
		return 1;
	if (strlcpy(dom, at + 1, sizeof(dom)) >= sizeof(dom))
		return 0;
	map_fold(dom);
	if (strcmp(dom, r->myhostname) == 0 || strcmp(dom, "localhost") == 0)
		return 1;
	if (strncmp(dom, "localhost.", 10) == 0 &&
	    strcmp(dom + 10, r->mydomain) == 0)
		return 1;
	for (size_t i = 0; i < r->nmydest; i++)
		if (strcmp(dom, r->mydest[i]) == 0)
			return 1;
	return 0;
}

/* One transport_maps lookup; remembers the key that answered. */
static int
tfind(struct router *r, const char *key, int fixed, const char **val,
    struct route *out, char *err, size_t errlen)
{
	int rc = fixed ? maps_find_fixed(r->transport, key, val, err, errlen) :
	    maps_find(r->transport, key, val, err, errlen);

	if (rc == MAP_FOUND)
		strlcpy(out->key, key, sizeof(out->key));
	return rc;
}

/* transport(5)'s search order for rcpt. */
static int
transport_find(struct router *r, const char *rcpt, const char **val,
    struct route *out, char *err, size_t errlen)
{
	const char *at = strrchr(rcpt, '@'), *d;
	char key[600], local[300];
	size_t x;
	int rc;

	if ((rc = tfind(r, rcpt, 0, val, out, err, errlen)) != MAP_NOTFOUND)
		return rc;
	if (at != NULL && (size_t)(at - rcpt) < sizeof(local)) {
		memcpy(local, rcpt, (size_t)(at - rcpt));
		local[at - rcpt] = '\0';
		x = addr_ext_start(local, r->delims);
		if (local[x] != '\0') {
			snprintf(key, sizeof(key), "%.*s%s", (int)x, local, at);
			rc = tfind(r, key, 1, val, out, err, errlen);
			if (rc != MAP_NOTFOUND)
				return rc;
		}
	}
	if (at == NULL || at[1] == '\0')
		return tfind(r, "*", 1, val, out, err, errlen);
	d = at + 1;
	if ((rc = tfind(r, d, 1, val, out, err, errlen)) != MAP_NOTFOUND)
		return rc;
	for (d = strchr(d, '.'); d != NULL; d = strchr(d + 1, '.'))
		if ((rc = tfind(r, d, 1, val, out, err, errlen)) != MAP_NOTFOUND)
			return rc;
	return tfind(r, "*", 1, val, out, err, errlen);
}

/* "5.1.1 text": the status code a text starts with, else def. */
static void
dsn_text(const char *text, const char *def, struct route *out)
{
	const char *p = text;
	size_t n = 0;

	if ((*p == '4' || *p == '5') && p[1] == '.') {
		n = strspn(p, "0123456789.");
		if (n >= 5 && n < sizeof(out->dsn) &&
		    (p[n] == ' ' || p[n] == '\0')) {
			memcpy(out->dsn, p, n);
			out->dsn[n] = '\0';
			p += n;
			while (*p == ' ')
				p++;
			strlcpy(out->text, p, sizeof(out->text));
			return;
		}
	}
	strlcpy(out->dsn, def, sizeof(out->dsn));
	strlcpy(out->text, text, sizeof(out->text));
}

/*
 * Act on a transport_maps result. Returns 1 when it decided, 0 when the
 * result names SMTP without a next hop (the next rules decide).
 */
static int
transport_apply(const char *val, const char *rcpt, struct route *out)
{
	const char *colon = strchr(val, ':');
	size_t tlen = colon ? (size_t)(colon - val) : strlen(val);
	const char *hop = colon ? colon + 1 : "";
	char tr[32];

	snprintf(tr, sizeof(tr), "%.*s", (int)(tlen < 31 ? tlen : 31), val);
	map_fold(tr);
	while (*hop == ' ' || *hop == '\t')
		hop++;
	out->source = "transport_maps";
	if (*tr == '\0' || strcmp(tr, "smtp") == 0 || strcmp(tr, "relay") == 0) {
		if (*hop == '\0')
			return 0;
		out->kind = RT_RELAY;
		strlcpy(out->nexthop, hop, sizeof(out->nexthop));
	} else if (strcmp(tr, "error") == 0) {
		out->kind = RT_ERROR;
		dsn_text(*hop ? hop : "mail for this address is refused by "
		    "transport_maps", "5.0.0", out);
	} else if (strcmp(tr, "retry") == 0) {
		out->kind = RT_RETRY;
		dsn_text(*hop ? hop : "mail for this address is held by "
		    "transport_maps", "4.0.0", out);
	} else if (strcmp(tr, "discard") == 0) {
		out->kind = RT_DISCARD;
		strlcpy(out->dsn, "2.0.0", sizeof(out->dsn));
		strlcpy(out->text, *hop ? hop : "discarded", sizeof(out->text));
	} else {
		out->kind = RT_RETRY;
		strlcpy(out->dsn, "4.3.5", sizeof(out->dsn));
		snprintf(out->text, sizeof(out->text), "transport_maps sends "
		    "<%.200s> to the \"%s\" transport, which postern does not "
		    "have (it only relays mail); use smtp:[host]:port, error:, "
		    "retry: or discard: there", rcpt, tr);
	}
	return 1;
}

/* sender_dependent_relayhost_maps: the sender, then "@domain". */
static int
sender_find(struct router *r, const char *sender, const char **val,
    struct route *out, char *err, size_t errlen)
{
	const char *key = *sender ? sender : "<>", *at;
	int rc;

	rc = maps_find(r->sender_relay, key, val, err, errlen);
	if (rc == MAP_NOTFOUND && *sender && (at = strrchr(sender, '@')))
		rc = maps_find_fixed(r->sender_relay, key = at, val, err,
		    errlen);
	if (rc == MAP_FOUND)
		strlcpy(out->key, key, sizeof(out->key));
	return rc;
}

/* A relay that will not parse waits with the reason. */
static void
relay_check(struct route *out)
{
	struct smtp_relay rl;
	char why[256];

	if (smtp_relay_parse(out->nexthop, &rl, why, sizeof(why)) == 0) {
		smtp_relay_free(&rl);
		return;
	}
	out->kind = RT_RETRY;
	strlcpy(out->dsn, "4.3.5", sizeof(out->dsn));
	snprintf(out->text, sizeof(out->text), "bad relay \"%.100s\" from "
	    "%s%s%.100s: %s", out->nexthop, out->source, out->key[0] ?
	    " for " : "", out->key, why);
}

/* Decide for one recipient (see route.h). */
int
route_resolve(struct router *r, const char *sender, const char *rcpt,
    struct route *out, char *err, size_t errlen)
{
	const char *val;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = transport_find(r, rcpt, &val, out, err, errlen);
	if (rc == MAP_ERROR)
		return -1;
	if (rc == MAP_FOUND && transport_apply(val, rcpt, out)) {
		if (out->kind == RT_RELAY)
			relay_check(out);
		return 0;
	}
	out->key[0] = '\0';
	rc = sender_find(r, sender, &val, out, err, errlen);
	if (rc == MAP_ERROR)
		return -1;
	if (rc == MAP_FOUND && strcasecmp(val, "DUNNO") != 0) {
		out->kind = RT_RELAY;
		out->source = "sender_dependent_relayhost_maps";
		strlcpy(out->nexthop, val, sizeof(out->nexthop));
		relay_check(out);
		return 0;
	}
	out->key[0] = '\0';
	if (*r->relayhost != '\0') {
		out->kind = RT_RELAY;
		out->source = "relayhost";
		strlcpy(out->nexthop, r->relayhost, sizeof(out->nexthop));
		relay_check(out);
		return 0;
	}
	out->kind = RT_RETRY;
	out->source = "relayhost";
	strlcpy(out->dsn, "4.3.5", sizeof(out->dsn));
	strlcpy(out->text, "no relayhost is configured: postern sends all "
	    "mail through a smarthost; set relayhost = [smtp.example.com]:587 "
	    "in main.cf", sizeof(out->text));
	return 0;
}

/* ---- alias expansion ---------------------------------------------------- */

struct expand {
	struct router	*r;
	struct qenv	*out;
	route_trace_fn	 trace;
	void		*arg;
	const char	*stack[ALIAS_DEPTH + 1];
	int		 depth;
	char		**done;		/* names expanded for this message */
	size_t		 ndone;
	char		*err;
	size_t		 errlen;
	int		 changed;
};

/* Add addr to the result unless it is there already. */
static int
expand_add(struct expand *x, const char *addr, const char *orig)
{
	for (size_t i = 0; i < x->out->nrcpt; i++)
		if (strcasecmp(x->out->rcpt[i].addr, addr) == 0) {
			x->changed = 1;		/* a duplicate dropped */
			return 0;
		}
	if (x->out->nrcpt >= ALIAS_MAX) {
		snprintf(x->err, x->errlen, "alias_maps: the recipients expand "
		    "to more than %d addresses", ALIAS_MAX);
		return -1;
	}
	qenv_add_rcpt(x->out, addr, orig);
	return 0;
}

/*
 * The next entry of an alias value: commas separate, except inside
 * double quotes. Trims white space; NULL at the end.
 */
static char *
alias_entry(char **src)
{
	char *p = *src, *start, *end;
	int q = 0;

	while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n')
		p++;
	if (*p == '\0')
		return NULL;
	start = p;
	for (; *p != '\0' && (q || *p != ','); p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			q = !q;
	}
	end = p;
	if (*p != '\0')
		p++;
	*src = p;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\n'))
		end--;
	*end = '\0';
	return start;
}

static int expand_one(struct expand *x, const char *addr, const char *orig,
    const char *given_orig);

/* Follow the entries of one alias value. */
static int
expand_value(struct expand *x, const char *name, const char *addr,
    const char *orig, const char *value, const char *ext)
{
	char *copy = xstrdup(value), *p = copy, *e, *q, why[256];
	int used = 0, rc = 0;

	while (rc == 0 && (e = alias_entry(&p)) != NULL) {
		int literal = 0;
		size_t el = strlen(e);
		/* "|command", "/file" and ":include:" may be quoted. */
		if (el >= 2 && e[0] == '"' && e[el - 1] == '"' &&
		    (e[1] == '|' || e[1] == '/' || e[1] == ':')) {
			e[el - 1] = '\0';
			e++;
		}
		/* \name: that local name itself, not aliased again. */
		if (*e == '\\') {
			literal = 1;
			e++;
		}
		if (*e == '|' || *e == '/' || strncasecmp(e, ":include:", 9) == 0) {
			log_warnx("alias_maps: %s: \"%.60s\" delivers to a %s, "
			    "which postern cannot do (it only relays mail); "
			    "entry skipped: alias %s to a mail address instead",
			    name, e, *e == '|' ? "command" : *e == '/' ? "file" :
			    "list file", name);
			continue;
		}
		if (addr_check(e, 0, &q, why, sizeof(why)) < 0) {
			log_warnx("alias_maps: %s: an entry %s; skipped", name,
			    why);
			continue;
		}
		if (ext != NULL) {
			/* propagate_unmatched_extensions = alias */
			char *at = strrchr(q, '@'), *w;
			w = xasprintf("%.*s%s%s", (int)(at ? at - q :
			    (ptrdiff_t)strlen(q)), q, ext, at ? at : "");
			free(q);
			q = w;
		}
		{
			char *full = addr_qualify(q, &x->r->rw);
			if (x->trace != NULL)
				x->trace(x->arg, x->depth, addr, full);
			x->depth++;
			rc = literal ? expand_add(x, full, orig) :
			    expand_one(x, full, orig, NULL);
			x->depth--;
			free(full);
		}
		free(q);
		used++;
	}
	free(copy);
	if (rc == 0 && used == 0)
		rc = expand_add(x, addr, orig);
	return rc;
}

/* Expand one address (see route_expand). */
static int
expand_one(struct expand *x, const char *addr, const char *orig,
    const char *given_orig)
{
	const char *at = strrchr(addr, '@'), *val, *ext = NULL, *prop = NULL;
	size_t llen = at ? (size_t)(at - addr) : strlen(addr);
	char name[300], base[300], err[512];
	size_t xs;
	int rc;

	if (!router_is_local(x->r, addr, given_orig) || llen == 0 ||
	    llen >= sizeof(name) || x->r->aliases == NULL)
		return expand_add(x, addr, x->depth ? orig : given_orig);
	memcpy(name, addr, llen);
	name[llen] = '\0';
	map_fold(name);
	/* A name met again on the way down stays as it is. */
	for (int i = 0; i < x->depth; i++)
		if (strcmp(x->stack[i], name) == 0)
			return expand_add(x, addr, orig);
	/* A name already expanded for this message added its addresses
	   then; again they would only be dropped as duplicates. */
	for (size_t i = 0; i < x->ndone; i++)
		if (strcmp(x->done[i], name) == 0) {
			x->changed = 1;
			return 0;
		}
	if (x->depth >= ALIAS_DEPTH) {
		snprintf(x->err, x->errlen, "alias_maps: aliases nested more "
		    "than %d deep at %s", ALIAS_DEPTH, name);
		return -1;
	}
	rc = maps_find(x->r->aliases, name, &val, err, sizeof(err));
	xs = addr_ext_start(name, x->r->delims);
	if (rc == MAP_NOTFOUND && name[xs] != '\0') {
		ext = name + xs;
		snprintf(base, sizeof(base), "%.*s", (int)xs, name);
		rc = maps_find_fixed(x->r->aliases, base, &val, err,
		    sizeof(err));
		/* Extensions are carried over only when asked for. */
		if (x->r->alias_ext)
			prop = ext;
	}
	if (rc == MAP_ERROR) {
		strlcpy(x->err, err, x->errlen);
		return -1;
	}
	if (rc == MAP_NOTFOUND)
		return expand_add(x, addr, x->depth ? orig : given_orig);
	x->changed = 1;
	x->stack[x->depth] = name;
	{
		char *v = xstrdup(val);	/* the next lookup reuses val */
		rc = expand_value(x, name, addr, orig, v, prop);
		free(v);
	}
	x->done = xreallocarray(x->done, x->ndone + 1, sizeof(*x->done));
	x->done[x->ndone++] = xstrdup(name);
	return rc;
}

/* Expand a message's local recipients (see route.h). */
int
route_expand(struct router *r, const struct qenv *in, struct qenv *out,
    route_trace_fn trace, void *arg, char *err, size_t errlen)
{
	struct expand x;
	int ret = 0;

	memset(&x, 0, sizeof(x));
	x.r = r;
	x.out = out;
	x.trace = trace;
	x.arg = arg;
	x.err = err;
	x.errlen = errlen;
	for (size_t i = 0; i < in->nrcpt && ret == 0; i++) {
		const struct qrcpt *rc = &in->rcpt[i];
		if (expand_one(&x, rc->addr, rc->orig ? rc->orig : rc->addr,
		    rc->orig) < 0)
			ret = -1;
	}
	for (size_t i = 0; i < x.ndone; i++)
		free(x.done[i]);
	free(x.done);
	return ret < 0 ? -1 : x.changed;
}
