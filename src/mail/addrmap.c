/*
 * addrmap.c - Postfix's search order for address tables.
 *
 * A null client's generic table maps what local programs write
 * (his@localdomain.local, root, www-data+cron@box) to addresses that work
 * on the Internet. Postfix defines which keys are tried for an address
 * (mail_addr_find: the whole address, without its extension, the bare
 * user when the domain is local, then @domain) and how the value becomes
 * an address (mail_addr_map: "@otherdomain", qualification, extension
 * propagation). Configurations written for Postfix must mean the same
 * here, so this module follows those rules and nothing else: partial
 * keys never reach pattern tables (maps_find_fixed), and an error in any
 * table stops the search, so the caller defers instead of sending mail
 * with an address the table would have changed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/maps.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mail/addrlist.h"
#include "mail/addrmap.h"

static void seterr(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Format an error message for the caller. */
static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Where the extension of local part local starts (at its delimiter), or
 * strlen(local) when it has none. Postfix's split_addr rules: reserved
 * names are never split, nor owner-x and x-request when '-' delimits,
 * nor a local part that would become empty.
 */
size_t
addr_ext_start(const char *local, const char *delims)
{
	size_t n = strlen(local), k;

	if (delims == NULL || *delims == '\0')
		return n;
	if (strcasecmp(local, "postmaster") == 0 ||
	    strcasecmp(local, "mailer-daemon") == 0 ||
	    strcasecmp(local, "double-bounce") == 0)
		return n;
	if (strchr(delims, '-') != NULL &&
	    (strncasecmp(local, "owner-", 6) == 0 ||
	    (n > 8 && strcasecmp(local + n - 8, "-request") == 0)))
		return n;
	k = strcspn(local, delims);
	return k == 0 ? n : k;
}

/* 1 when domain equals $myorigin or one of the local domains. */
static int
is_local(const char *domain, const struct addr_map_ctx *ctx)
{
	size_t n = strlen(domain);

	/* "host." is the host: DNS names may end in a dot. */
	if (n > 1 && domain[n - 1] == '.')
		n--;
	if (ctx->myorigin != NULL && strlen(ctx->myorigin) == n &&
	    strncasecmp(domain, ctx->myorigin, n) == 0)
		return 1;
	for (size_t i = 0; i < ctx->nlocal; i++)
		if (strlen(ctx->local_domains[i]) == n &&
		    strncasecmp(domain, ctx->local_domains[i], n) == 0)
			return 1;
	return 0;
}

/*
 * Warn about a result with several addresses once per table and address
 * in a process: one message is looked up for its envelope and each of
 * its headers, and `postern route` asks for the same address several
 * times; the same warning over and over hides the others.
 */
static void
warn_several(const struct maps *m, const char *addr, size_t n)
{
	static char *seen[32];
	static size_t next;
	char *msg = xasprintf("%s: lookup of %s: the result has %zu "
	    "addresses; using the first", maps_title(m), addr, n);

	for (size_t i = 0; i < sizeof(seen) / sizeof(*seen); i++)
		if (seen[i] != NULL && strcmp(seen[i], msg) == 0) {
			free(msg);
			return;
		}
	log_warnx("%s", msg);
	free(seen[next]);
	seen[next] = msg;
	next = (next + 1) % (sizeof(seen) / sizeof(*seen));
}

/* One maps search; partial keys skip pattern tables. */
static int
find(struct maps *m, const char *key, int partial, const char **value,
    char *err, size_t errlen)
{
	return partial ? maps_find_fixed(m, key, value, err, errlen) :
	    maps_find(m, key, value, err, errlen);
}

/*
 * Look up the key for local@domain (domain NULL: the local part alone),
 * or "@domain" when local is NULL. Like Postfix, the quoted (canonical)
 * form first, then the unquoted form when it differs: tables written
 * for either ("a..b@x" or "\"a..b\"@x") work.
 */
static int
lookup(struct maps *m, const char *local, const char *domain, int partial,
    const char **value, char *err, size_t errlen)
{
	char *key, *raw;
	int r;

	key = local ? addr_join(local, domain) : xasprintf("@%s", domain);
	r = find(m, key, partial, value, err, errlen);
	if (r == MAP_NOTFOUND && local != NULL) {
		raw = domain ? xasprintf("%s@%s", local, domain) :
		    xstrdup(local);
		if (strcmp(raw, key) != 0)
			r = find(m, raw, partial, value, err, errlen);
		free(raw);
	}
	free(key);
	return r;
}

/*
 * Turn the table's value into the result address (Postfix's
 * mail_addr_map and mail_addr_crunch). user is the local part the
 * "@otherdomain" form keeps; ext, when not NULL, the extension to
 * propagate.
 */
static int
make_result(struct maps *m, const char *addr, const char *value,
    const char *user, const char *ext, const struct addr_map_ctx *ctx,
    char **result, char *err, size_t errlen)
{
	struct addrlist l = { NULL, 0 };
	char *text, *local = NULL, *domain = NULL, *tmp;
	int rc = MAP_ERROR;

	if (value[0] == '@') {
		tmp = addr_join(user, NULL);
		text = xasprintf("%s%s", tmp, value);
		free(tmp);
	} else
		text = xstrdup(value);
	/* The value's own words stay out of messages: tables hold secrets. */
	if (addrlist_parse(text, strlen(text), &l, NULL, 0) < 0 || l.n == 0) {
		seterr(err, errlen, "%s: lookup of %s: the result is not an "
		    "address; fix the table", maps_title(m), addr);
		goto out;
	}
	if (l.n > 1)
		warn_several(m, addr, l.n);
	/* A canonical addr-spec always splits. */
	if (addr_split(l.v[0].addr, &local, &domain) < 0)
		goto out;
	if (domain == NULL && ctx->append_at_myorigin &&
	    ctx->myorigin != NULL && *ctx->myorigin != '\0')
		domain = xstrdup(ctx->myorigin);
	if (domain != NULL && ctx->append_dot_mydomain && domain[0] != '[' &&
	    strchr(domain, '.') == NULL && ctx->mydomain != NULL &&
	    *ctx->mydomain != '\0') {
		tmp = xasprintf("%s.%s", domain, ctx->mydomain);
		free(domain);
		domain = tmp;
	}
	if (ext != NULL) {
		tmp = xasprintf("%s%s", local, ext);
		free(local);
		local = tmp;
	}
	*result = addr_join(local, domain);
	rc = MAP_FOUND;
out:
	/* Everything made from the value is wiped, as the value is. */
	for (size_t i = 0; i < l.n; i++)
		explicit_bzero(l.v[i].addr, strlen(l.v[i].addr));
	addrlist_free(&l);
	free_secret(text);
	free_secret(local);
	free_secret(domain);
	return rc;
}

/* Look an address up in Postfix's order. */
int
addr_map_find(struct maps *m, const char *addr,
    const struct addr_map_ctx *ctx, char **result, char *err, size_t errlen)
{
	char *local = NULL, *domain = NULL, *bare = NULL, *value = NULL;
	const char *found = NULL, *ext = NULL;
	int r, stripped = 0;
	size_t x;

	*result = NULL;
	if (*addr == '\0')
		return MAP_NOTFOUND;
	if (addr_split(addr, &local, &domain) < 0) {
		seterr(err, errlen, "%s: cannot look up an address with a "
		    "control character or a line break", maps_title(m));
		return MAP_ERROR;
	}
	x = addr_ext_start(local, ctx->delims);
	if (local[x] != '\0') {
		bare = xstrndup(local, x);
		ext = local + x;
	}

	/* user+ext@domain, then user@domain. */
	r = lookup(m, local, domain, 0, &found, err, errlen);
	if (r == MAP_NOTFOUND && bare != NULL &&
	    (r = lookup(m, bare, domain, 1, &found, err, errlen)) == MAP_FOUND)
		stripped = 1;
	/* user+ext, then user, when the domain is this host's. */
	if (r == MAP_NOTFOUND && domain != NULL && is_local(domain, ctx)) {
		r = lookup(m, local, NULL, 1, &found, err, errlen);
		if (r == MAP_NOTFOUND && bare != NULL && (r = lookup(m, bare,
		    NULL, 1, &found, err, errlen)) == MAP_FOUND)
			stripped = 1;
	}
	/* @domain. */
	if (r == MAP_NOTFOUND && domain != NULL)
		r = lookup(m, NULL, domain, 1, &found, err, errlen);
	if (r != MAP_FOUND)
		goto out;

	/* The value belongs to the maps: copy it before anything else. */
	value = xstrdup(found);
	r = make_result(m, addr, value, stripped ? bare : local,
	    stripped && ctx->propagate ? ext : NULL, ctx, result, err, errlen);
out:
	free_secret(value);
	free(local);
	free(domain);
	free(bare);
	return r;
}
