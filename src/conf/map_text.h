/*
 * map_text.h - the table types whose content is text: texthash, inline
 * and static; and the parsers of the source files that postern map
 * compiles (postmap(1) and aliases(5) format). Private to the table
 * drivers, postern map, the unit tests and the fuzz targets.
 *
 * The parsers are pure functions of their input (no files, no logging)
 * and fill a map_table: an in-memory hash table of lower-case keys to
 * values, wiped when freed.
 */
#ifndef POSTERN_MAP_TEXT_H
#define POSTERN_MAP_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "conf/maps.h"

/* A texthash file larger than this is refused. */
#define MAP_TEXT_MAX	(16 * 1024 * 1024)

struct map_table;

/* An empty table. */
struct map_table *map_table_new(void);
/*
 * Store value under key (taken as given: callers fold). When key is
 * already there, keep the old value (replace 0) or replace it
 * (replace 1). Returns 0 for a new key, 1 for an existing one.
 */
int map_table_put(struct map_table *t, const char *key, const char *value,
    int replace);
/* The value stored under key, or NULL. */
const char *map_table_get(const struct map_table *t, const char *key);
/* How many keys the table holds. */
size_t map_table_count(const struct map_table *t);
/*
 * The i'th entry (0 <= i < map_table_count), in the order the keys were
 * first stored (a source file's order). Pointers owned by the table.
 */
void map_table_entry(const struct map_table *t, size_t i, const char **key,
    const char **value);
/* Free the table, wiping every key and value; NULL is fine. */
void map_table_free(struct map_table *t);

/* Fold ASCII upper case to lower case in place, as lookups do. */
void map_fold(char *s);
/*
 * The next item of a list separated by commas and/or white space, where
 * the inside of { } stays together (Postfix's mystrtokq): cuts the text
 * at *src in place and advances *src. NULL at the end.
 */
char *map_text_token(char **src);

/* A parser's warning (msg starts with "line N: "). */
typedef void (*map_warn_fn)(void *arg, const char *msg);

/*
 * Parse postmap(1) source text into t, the way Postfix's texthash reads
 * it: "key whitespace value" lines, key and value trimmed; blank lines
 * and lines whose first non-blank is '#' ignored; a line starting with
 * white space continues the logical line (its text appended as is, the
 * line end dropped); a CR before a line end ignored; keys folded to lower
 * case. A duplicate key keeps the first value and is reported through
 * warn, like postmap's "duplicate entry" warning, as is a "key:" that
 * looks like an alias file. Returns 0, or -1 with "line N: ..." in err
 * for a key without a value, a continuation line with nothing to
 * continue, or a NUL byte. Messages never contain a value.
 */
int map_text_parse(const char *data, size_t len, struct map_table *t,
    map_warn_fn warn, void *arg, char *err, size_t errlen);

/*
 * Parse aliases(5) source text into t, the way postalias(1) reads it:
 * "name: value" logical lines (blank lines, '#' comment lines and
 * continuation lines as in map_text_parse); the name ends at ':' (white
 * space before the ':' is allowed), or is in double quotes when it holds
 * white space or ':' ("a b": x; a backslash in the quotes takes the next
 * character as is); names are folded to lower case; the value is the
 * text after ':' with white space trimmed at both ends (continuation
 * lines included, the line ends dropped), not split into addresses. A
 * duplicate name keeps the first value and is reported through warn.
 * Returns 0, or -1 with "line N: ..." in err for a line without ':', an
 * empty name, white space in an unquoted name, an unclosed quote, an
 * empty value, a continuation line with nothing to continue, or a NUL
 * byte. Messages never contain a name or a value.
 */
int map_alias_parse(const char *data, size_t len, struct map_table *t,
    map_warn_fn warn, void *arg, char *err, size_t errlen);

/*
 * Read the regular file at path whole into a fresh buffer (*data, *len;
 * the caller wipes and frees it), refusing one larger than limit bytes.
 * *st is the fstat of the file read (taken before reading). Opens with
 * O_NONBLOCK, so a FIFO in its place cannot hang the caller. Returns 0,
 * or -1 with errno set (ENOENT, EACCES, EINVAL for not a regular file,
 * EFBIG, ...) and a message in err that does not name the file.
 */
int map_text_read(const char *path, size_t limit, char **data, size_t *len,
    struct stat *st, char *err, size_t errlen);

/*
 * Parse the name of an inline: table, "{ key=value, { key = value } }",
 * into t (Postfix 3.0 syntax, DATABASE_README "inline"): the name is one
 * balanced { } group; inside, entries are separated by commas and/or
 * white space; an entry is key=value without white space, or { key =
 * value } where white space is ignored after "{", around "=" and before
 * "}" so the value may hold spaces and commas. Keys are folded to lower
 * case; a later duplicate replaces an earlier one, as in Postfix.
 * Returns 0, or -1 with a message that names the entry by position,
 * never by content. An empty table or an empty value is an error.
 */
int map_inline_parse(const char *name, struct map_table *t, char *err,
    size_t errlen);

/*
 * The value of a static: table: name itself, or the inside of "{ text }"
 * with the white space after "{" and before "}" removed. Returns a new
 * string (the caller wipes and frees it), or NULL with a message in err.
 */
char *map_static_parse(const char *name, char *err, size_t errlen);

/*
 * Files of tables read as text (texthash:, regexp:): what identifies one
 * version of a file; a change in any field means read it again.
 */
struct map_file_id {
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec	mtime;
	struct timespec	ctime;		/* chmod, chown: readable no more? */
};

/* The identity of a file version from its stat. */
void map_file_id_set(struct map_file_id *id, const struct stat *st);
/* Whether two file versions are the same. */
int map_file_id_eq(const struct map_file_id *a, const struct map_file_id *b);
/*
 * Read the regular file at path whole (at most MAP_TEXT_MAX bytes) into a
 * fresh buffer that the caller wipes and frees; *id describes the version
 * read. Returns 0, or -1 with a message in err (without the path).
 */
int map_file_read(const char *path, char **data, size_t *len,
    struct map_file_id *id, char *err, size_t errlen);

/* Open functions for maps.c's type table (see map_open_fn). */
int map_texthash_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen);
int map_inline_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen);
int map_static_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen);

/*
 * A table file that is read again when it changes (texthash, regexp):
 * stat at most once a second (or at the next lookup after recheck), and
 * a new version parsed into a fresh table. A file that cannot be read
 * or parsed makes lookups fail, with its reason, until it is fixed; the
 * change to broken is logged once.
 */
struct map_watch;
typedef int (*map_watch_parse_fn)(struct map_watch *w, const char *data,
    size_t len, void **table, char *err, size_t errlen);
struct map_watch {
	char			*title;		/* "param: type:/path" for logs */
	char			*path;
	void			*table;		/* NULL while unusable */
	struct map_file_id	 id;		/* of the content in table */
	int64_t			 checked;	/* now_mono_ms() of the last stat */
	int			 force;		/* stat at the next lookup */
	char			 error[512];	/* why table is NULL */
	map_watch_parse_fn	 parse;		/* text -> table, or -1 */
	void			(*drop)(void *table);	/* wipe and free */
	struct map_file_id	 denied;	/* the last version we could */
	int			 denied_set;	/* not open: EACCES (maps.h) */
};

/*
 * Read and parse path (absolute) now. Returns 0, or -1 with err (and w
 * holds nothing).
 */
int map_watch_init(struct map_watch *w, const char *title, const char *path,
    map_watch_parse_fn parse, void (*drop)(void *), char *err, size_t errlen);
/* The table to look in, up to date; NULL with the reason in err. */
void *map_watch_table(struct map_watch *w, char *err, size_t errlen);
/*
 * A file that cannot be opened for lack of permission is reported to
 * map_note_denied, once per version of the file.
 */
/* Stat at the next map_watch_table, whatever the time. */
void map_watch_recheck(struct map_watch *w);
/* Drop the table and forget the file. */
void map_watch_free(struct map_watch *w);

#endif
