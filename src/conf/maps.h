/*
 * maps.h - Postfix lookup tables: a parameter's list of "type:name"
 * tables, searched in order.
 *
 * A lookup says found, not found or error. On error the caller defers
 * the mail; it never treats an error as "not found" (a table that cannot
 * be read must not turn "use TLS" or "authenticate" into "do not").
 *
 * Types so far: texthash (a postmap(1) source file read as text, and
 * read again when it changes), hash and btree (GDBM files NAME.db that
 * `postern map` compiles from NAME, opened again when they change; NAME
 * read as text while NAME.db is missing, foreign or stale),
 * inline:{ key=value, ... }, static, and postern's own exec:/path (a
 * program asked for each key, e.g. an OAuth token helper; answers
 * cached).
 * Every other Postfix type is recognised and refused by name.
 */
#ifndef POSTERN_MAPS_H
#define POSTERN_MAPS_H

#include <stddef.h>

#define MAP_FOUND	1
#define MAP_NOTFOUND	0
#define MAP_ERROR	(-1)

/* One configuration parameter's list of tables, searched in order. */
struct maps;

/*
 * Open the tables of a parameter value such as "texthash:/etc/postern/
 * tls_policy, inline:{ a=b, { c = d e } }". Tables are separated by
 * commas and/or white space; the { } of inline: and static: keep their
 * inside together. param names the parameter for messages. Returns NULL
 * with a message in err naming the parameter and the table on a syntax
 * error, an unknown or unsupported type, or a file that cannot be read.
 * An empty value gives an empty list (every lookup: not found).
 */
struct maps *maps_open(const char *param, const char *value, char *err,
    size_t errlen);

/*
 * Look key up in each table in turn. Returns MAP_FOUND with *value
 * (owned by the maps, valid until the next maps_* call on m),
 * MAP_NOTFOUND, or MAP_ERROR with a message in err naming the parameter
 * and the table; the search stops at the first error, as in Postfix.
 * Keys are folded to lower case (ASCII), as Postfix does for these
 * table types, except for pattern tables (regexp:), which get the key as
 * given and decide about case themselves; an empty key is not found. A texthash file is checked
 * for changes (stat) at most once a second and read again when its
 * inode, size, mtime or ctime differ; a re-read that fails makes every
 * lookup in it an error until the file is fixed.
 */
int maps_find(struct maps *m, const char *key, const char **value,
    char *err, size_t errlen);

/*
 * maps_find for a partial key ("user", "@domain", "domain"): pattern
 * tables (regexp:) are skipped, as Postfix queries them with the whole
 * key only. Same results and ownership as maps_find.
 */
int maps_find_fixed(struct maps *m, const char *key, const char **value,
    char *err, size_t errlen);

/*
 * Make the next maps_find stat every file table at once, without waiting
 * for the once-a-second limit (a daemon told to reload; tests).
 */
void maps_recheck(struct maps *m);

/*
 * Check every file table for a changed file now, as a lookup would (at
 * most once a second, at once after maps_recheck), without looking
 * anything up: a daemon that gave up root calls it before it hands out
 * work, so that a table it may no longer read is noticed first.
 */
void maps_refresh(struct maps *m);

/*
 * Who hears of a table file that exists but cannot be opened for lack
 * of permission (EACCES), once per version of the file: posternd's
 * daemon process, which runs as mail_owner, restarts so that root reads
 * the table again. title is "param: type:/path". NULL: nobody (the
 * lookups fail, as for any unreadable table).
 */
typedef void (*maps_denied_fn)(void *arg, const char *title);
void maps_on_denied(maps_denied_fn fn, void *arg);

/*
 * Forget what the tables remember about key (exec: caches answers; the
 * daemon calls this after the relay refused the login it gave).
 */
void maps_forget(struct maps *m, const char *key);

/* A report about a table, for a person (postern check). */
typedef void (*maps_report_fn)(void *arg, const char *msg);

/*
 * Report, through cb, each compiled table (hash:, btree:) of m that is
 * missing or older than its source file, with the command that fixes
 * it: "param: hash:/etc/x: /etc/x.db is older than its source /etc/x;
 * run: postern map hash:/etc/x". Looks at the files now (stat), not at
 * what the tables remember. Other table types report nothing.
 */
void maps_stale(struct maps *m, maps_report_fn cb, void *arg);

/* How long exec: tables may reuse an answer, in seconds (0: never). */
void maps_set_cache_time(struct maps *m, int seconds);

/*
 * The list for messages, e.g. "texthash:/etc/x, inline:{...}". The
 * inside of inline: and static: is never shown: it may hold a password
 * (smtp_sasl_password_maps = static:user:password).
 */
const char *maps_title(const struct maps *m);

/* Close, wiping every key and value (tables may hold passwords). */
void maps_free(struct maps *m);

/*
 * For table drivers (map_text.c, later map_regexp.c ...). maps_open
 * calls a type's open function with the text after "type:"; it returns 0
 * with its operations and private state, or -1 with a message in err
 * that does not repeat the table's content. title ("param: type:name")
 * prefixes the driver's own log lines.
 */
struct map_ops {
	/* Look up a key, folded to lower case unless the type is a
	   pattern type (MT_PATTERN in maps.c); MAP_* result. */
	int	(*find)(void *state, const char *key, const char **value,
		    char *err, size_t errlen);
	/* Check for changes at the next find (NULL: nothing to check). */
	void	(*recheck)(void *state);
	/* Free the state, wiping keys and values. */
	void	(*close)(void *state);
	/* Forget a cached answer for a folded key (NULL: caches nothing). */
	void	(*forget)(void *state, const char *key);
	/* Set the cache time in seconds (NULL: caches nothing). */
	void	(*set_ttl)(void *state, int seconds);
	/* Report a compiled file that is missing or older than its
	   source, through cb (NULL: nothing is compiled). */
	void	(*stale)(void *state, maps_report_fn cb, void *arg);
	/* Check the file for changes as find would, without a lookup
	   (NULL: no file). */
	void	(*refresh)(void *state);
};

/*
 * For table drivers: a version of the table's file exists but could not
 * be opened for lack of permission; tells the maps_on_denied hook. The
 * driver calls it once per version of the file.
 */
void map_note_denied(const char *title);

typedef int (*map_open_fn)(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen);

#endif
