/*
 * maps.c - a parameter's list of lookup tables, searched in order.
 *
 * The value of a "*_maps" parameter is split into "type:name" items (by
 * commas and white space, { } kept together), and each type is found in
 * one table of Postfix's type names. A type postern can read has an open
 * function; the others are listed without one, so a main.cf written for
 * Postfix gets "not supported yet" and a way out, never "unknown". A new
 * type is one row here and one map_*.c file.
 *
 * Lookups are tri-state and stop at the first error, like Postfix's
 * maps_find(): a table that cannot answer must not let a later table, or
 * "not found", decide instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "conf/map_db.h"
#include "conf/map_exec.h"
#include "conf/map_regexp.h"
#include "conf/map_text.h"
#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

#define MT_POSTMAP	0x01	/* postmap(1) builds it from a texthash source */
#define MT_HIDE		0x02	/* the name is content: show "type:{...}" */
#define MT_PATTERN	0x04	/* matches patterns (regexp:): gets the key
				   as given, and no partial-key lookups */

/* Every Postfix table type (postconf -m, DATABASE_README), by name. */
static const struct map_type {
	const char	*name;
	map_open_fn	 open;		/* NULL: not supported yet */
	unsigned	 flags;
} map_types[] = {
	{ "btree",	map_btree_open,		MT_POSTMAP },
	{ "cdb",	NULL,			MT_POSTMAP },
	{ "cidr",	NULL,			0 },
	{ "dbm",	NULL,			MT_POSTMAP },
	{ "environ",	NULL,			0 },
	{ "exec",	map_exec_open,		0 },
	{ "fail",	NULL,			0 },
	{ "hash",	map_hash_open,		MT_POSTMAP },
	{ "inline",	map_inline_open,	MT_HIDE },
	{ "internal",	NULL,			0 },
	{ "ldap",	NULL,			0 },
	{ "lmdb",	NULL,			MT_POSTMAP },
	{ "memcache",	NULL,			0 },
	{ "mongodb",	NULL,			0 },
	{ "mysql",	NULL,			0 },
	{ "netinfo",	NULL,			0 },
	{ "nis",	NULL,			0 },
	{ "nisplus",	NULL,			0 },
	{ "pcre",	NULL,			0 },
	{ "pgsql",	NULL,			0 },
	{ "pipemap",	NULL,			0 },
	{ "proxy",	NULL,			0 },
	{ "randmap",	NULL,			MT_HIDE },
	{ "regexp",	map_regexp_open,	MT_PATTERN },
	{ "sdbm",	NULL,			MT_POSTMAP },
	{ "socketmap",	NULL,			0 },
	{ "sqlite",	NULL,			0 },
	{ "static",	map_static_open,	MT_HIDE },
	{ "tcp",	NULL,			0 },
	{ "texthash",	map_texthash_open,	0 },
	{ "unionmap",	NULL,			0 },
	{ "unix",	NULL,			0 },
};

/* One opened "type:name". */
struct map {
	char			*show;	/* for messages: "texthash:/etc/x" */
	const struct map_ops	*ops;
	void			*state;
	int			 pattern;	/* MT_PATTERN */
};

struct maps {
	char		*param;
	char		*title;		/* the shows, joined by ", " */
	struct map	*map;
	size_t		 n;
	struct buf	 key;		/* the folded lookup key */
};

/* The type named name (len bytes), or NULL. */
static const struct map_type *
type_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(map_types) / sizeof(map_types[0]); i++)
		if (strlen(map_types[i].name) == len &&
		    memcmp(map_types[i].name, name, len) == 0)
			return &map_types[i];
	return NULL;
}

/*
 * The way out for a type not supported yet: the source of a postmap(1)
 * file can be read as texthash, also behind proxy:.
 */
static void
unsupported(const char *param, const struct map_type *mt, const char *name,
    char *err, size_t errlen)
{
	const struct map_type *inner = NULL;
	const char *colon;

	if (strcmp(mt->name, "proxy") == 0 &&
	    (colon = strchr(name, ':')) != NULL &&
	    (inner = type_find(name, (size_t)(colon - name))) != NULL) {
		name = colon + 1;
		mt = inner;
	}
	if ((mt->flags & MT_POSTMAP) && *name != '\0')
		snprintf(err, errlen, "%s: table type \"%s\" is not supported "
		    "yet; use texthash:%s (the same file, read as text without "
		    "postmap)", param, inner ? "proxy" : mt->name, name);
	else if (inner != NULL)
		snprintf(err, errlen, "%s: table type \"proxy\" is not "
		    "supported yet; name the table without proxy:", param);
	else
		snprintf(err, errlen, "%s: table type \"%s\" is not supported "
		    "yet", param, mt->name);
}

/* Open one "type:name" item (the idx'th) and add it to m; 0 or -1. */
static int
maps_add(struct maps *m, char *item, int idx, char *err, size_t errlen)
{
	const struct map_type *mt;
	struct map *mp;
	char *colon = strchr(item, ':'), *title, e[512];
	int rc;

	/* Not echoed: an item without a type may be a stray password. */
	if (colon == NULL || colon == item || colon[1] == '\0') {
		snprintf(err, errlen, "%s: table %d of the list: expected "
		    "type:name", m->param, idx);
		return -1;
	}
	if ((mt = type_find(item, (size_t)(colon - item))) == NULL) {
		snprintf(err, errlen, "%s: unknown table type \"%.*s\"",
		    m->param, (int)(colon - item < 40 ? colon - item : 40),
		    item);
		return -1;
	}
	if (mt->open == NULL) {
		unsupported(m->param, mt, colon + 1, err, errlen);
		return -1;
	}
	m->map = xreallocarray(m->map, m->n + 1, sizeof(*m->map));
	mp = &m->map[m->n];
	mp->pattern = (mt->flags & MT_PATTERN) != 0;
	mp->show = (mt->flags & MT_HIDE) ? xasprintf("%s:{...}", mt->name) :
	    xstrdup(item);
	title = xasprintf("%s: %s", m->param, mp->show);
	rc = mt->open(title, colon + 1, &mp->ops, &mp->state, e, sizeof(e));
	free(title);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s: %s", m->param, mp->show, e);
		free(mp->show);
		return -1;
	}
	m->n++;
	return 0;
}

/* Open the tables of a parameter value. */
struct maps *
maps_open(const char *param, const char *value, char *err, size_t errlen)
{
	struct maps *m = xcalloc(1, sizeof(*m));
	struct buf title = BUF_INIT;
	char *copy = xstrdup(value), *p = copy, *item;
	int idx = 0, rc = 0;

	m->param = xstrdup(param);
	while (rc == 0 && (item = map_text_token(&p)) != NULL)
		rc = maps_add(m, item, ++idx, err, errlen);
	/* The value may hold an inline: or static: password. */
	explicit_bzero(copy, strlen(value));
	free(copy);
	if (rc < 0) {
		maps_free(m);
		return NULL;
	}
	buf_adds(&title, "");
	for (size_t i = 0; i < m->n; i++)
		buf_addf(&title, "%s%s", i ? ", " : "", m->map[i].show);
	m->title = buf_steal(&title);
	return m;
}

/* Search the tables in order; fixed: skip pattern tables. */
static int
find(struct maps *m, const char *key, int fixed, const char **value,
    char *err, size_t errlen)
{
	char e[512];
	int rc;

	*value = NULL;
	/* Postfix's maps_find: an empty key finds nothing. */
	if (*key == '\0')
		return MAP_NOTFOUND;
	buf_reset(&m->key);
	buf_adds(&m->key, key);
	map_fold(m->key.data);
	for (size_t i = 0; i < m->n; i++) {
		if (fixed && m->map[i].pattern)
			continue;
		/* Patterns decide about case themselves (regexp's "i"). */
		rc = m->map[i].ops->find(m->map[i].state, m->map[i].pattern ?
		    key : m->key.data, value, e, sizeof(e));
		if (rc == MAP_ERROR) {
			*value = NULL;
			snprintf(err, errlen, "%s: %s: %s", m->param,
			    m->map[i].show, e);
			return MAP_ERROR;
		}
		if (rc == MAP_FOUND)
			return MAP_FOUND;
	}
	*value = NULL;
	return MAP_NOTFOUND;
}

/* Search every table in order. */
int
maps_find(struct maps *m, const char *key, const char **value, char *err,
    size_t errlen)
{
	return find(m, key, 0, value, err, errlen);
}

/* Search the tables that take fixed keys. */
int
maps_find_fixed(struct maps *m, const char *key, const char **value,
    char *err, size_t errlen)
{
	return find(m, key, 1, value, err, errlen);
}

/* Let every file table stat at the next lookup. */
void
maps_recheck(struct maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->map[i].ops->recheck != NULL)
			m->map[i].ops->recheck(m->map[i].state);
}

/* Check the file tables for changes now. */
void
maps_refresh(struct maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->map[i].ops->refresh != NULL)
			m->map[i].ops->refresh(m->map[i].state);
}

/*
 * The hook for tables that became unreadable: one per process (the
 * daemon sets it once it gave up root), like the log's destination.
 */
static struct {
	maps_denied_fn	 fn;
	void		*arg;
} denied_hook;

/* Set the hook. */
void
maps_on_denied(maps_denied_fn fn, void *arg)
{
	denied_hook.fn = fn;
	denied_hook.arg = arg;
}

/* A driver met a table file it may not read. */
void
map_note_denied(const char *title)
{
	if (denied_hook.fn != NULL)
		denied_hook.fn(denied_hook.arg, title);
}

/* Forget cached answers for key. */
void
maps_forget(struct maps *m, const char *key)
{
	buf_reset(&m->key);
	buf_adds(&m->key, key);
	map_fold(m->key.data);
	for (size_t i = 0; i < m->n; i++)
		if (m->map[i].ops->forget != NULL)
			m->map[i].ops->forget(m->map[i].state, m->key.data);
}

/* Context of maps_stale: the prefix for one table's reports. */
struct stale_ctx {
	const struct maps	*m;
	const struct map	*map;
	maps_report_fn		 cb;
	void			*arg;
};

/* Prefix a driver's report with the parameter and the table. */
static void
stale_report(void *arg, const char *msg)
{
	struct stale_ctx *c = arg;
	char *line = xasprintf("%s: %s: %s", c->m->param, c->map->show, msg);

	c->cb(c->arg, line);
	free(line);
}

/* Report compiled tables that are missing or older than their source. */
void
maps_stale(struct maps *m, maps_report_fn cb, void *arg)
{
	struct stale_ctx c = { m, NULL, cb, arg };

	for (size_t i = 0; i < m->n; i++) {
		if (m->map[i].ops->stale == NULL)
			continue;
		c.map = &m->map[i];
		m->map[i].ops->stale(m->map[i].state, stale_report, &c);
	}
}

/* Set the cache time of tables that cache. */
void
maps_set_cache_time(struct maps *m, int seconds)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->map[i].ops->set_ttl != NULL)
			m->map[i].ops->set_ttl(m->map[i].state, seconds);
}

/* The list for messages. */
const char *
maps_title(const struct maps *m)
{
	return m->title;
}

/* Close every table; the drivers wipe their content. */
void
maps_free(struct maps *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		m->map[i].ops->close(m->map[i].state);
		free(m->map[i].show);
	}
	free(m->map);
	buf_free(&m->key);
	free(m->param);
	free(m->title);
	free(m);
}
