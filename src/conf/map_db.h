/*
 * map_db.h - the hash: and btree: table types: a GDBM file NAME.db that
 * `postern map` compiles from the source file NAME (postmap(1) format,
 * or aliases(5) format for alias tables), and the compiler itself.
 *
 * Stored format: one GDBM record per key; the record's key is the folded
 * key without a terminating NUL, its content the value without a NUL.
 * hash: and btree: name the same format: both exist so that a main.cf
 * written for Postfix works unchanged (Postfix's files are Berkeley DB
 * and must be compiled again with postern map).
 */
#ifndef POSTERN_MAP_DB_H
#define POSTERN_MAP_DB_H

#include <stddef.h>

#include "conf/map_text.h"
#include "conf/maps.h"

/* A source file larger than this is refused by the compiler. */
#define MAP_DB_SOURCE_MAX	(64 * 1024 * 1024)

/*
 * Open functions for maps.c's type table (see map_open_fn). The name
 * must be absolute. NAME.db is opened read-only at once; when it cannot
 * be (missing, not made by postern map) or is older than its source,
 * the open still succeeds and the lookups read the source file as text
 * (aliases(5) format for an alias table), logged once with the command
 * that compiles it; when the source cannot be read either, or the .db
 * may not be read, every lookup fails with the reason and the fix, so a
 * daemon keeps the mail instead of refusing to start, and goes on once
 * the table is compiled. The files are checked (stat) at most once a
 * second; a .db that changed is opened again, and used again once it is
 * not older than its source. A title that starts with "alias"
 * (alias_maps, alias_database) marks an alias table and makes the advice
 * name newaliases.
 */
int map_hash_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen);
int map_btree_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen);

/*
 * Whether tables opened from now on in this process may read the source
 * as text when the .db cannot be used (default 1). `postern map -q`
 * turns it off: like postmap -q, it answers from the .db only.
 */
void map_db_text_fallback(int on);

/* 1 when type ("hash", "btree") is a type that postern map compiles. */
int map_db_type(const char *type);

/* The compiled file of the table name: name + ".db", a fresh string. */
char *map_db_path(const char *name);

/*
 * The message for a .db that cannot be used, with the fix: "cannot open
 * /etc/x.db: WHY; compile it with: postern map hash:/etc/x" (for an
 * alias table: "newaliases, or postern map -a hash:/etc/x").
 */
void map_db_open_msg(char *err, size_t errlen, const char *type,
    const char *name, int alias, const char *why);

/*
 * Compile the source file name (aliases(5) format when alias, else
 * postmap(1) format) into name.db, durably: the whole source is parsed
 * first; then a temporary name.db.tmp-* file (mkstemp) is written,
 * given the owner, group and permission bits of the source (when not root and the group cannot be
 * copied, the group bits are dropped, with a warning), synced, renamed
 * over name.db and the directory synced. type ("hash" or "btree") is for
 * messages. Warnings (duplicate keys: the first is kept) go to warn as
 * "NAME: line N: ...". Returns 0, or a sysexits code with a message in
 * err that names the file (and the line): EX_NOINPUT (source missing or
 * unreadable), EX_DATAERR (syntax error, source too large), EX_CANTCREAT
 * or EX_IOERR (writing). On failure name.db is untouched and no
 * temporary file is left.
 */
int map_db_compile(const char *type, const char *name, int alias,
    map_warn_fn warn, void *arg, char *err, size_t errlen);

/* One record of a compiled table (NUL-terminated copies, wiped after). */
typedef void (*map_db_entry_fn)(void *arg, const char *key,
    const char *value);

/*
 * Call fn for every record of name.db, in GDBM's order. Returns 0, or a
 * sysexits code with a message in err: EX_NOINPUT (the .db cannot be
 * opened; the message has the fix), EX_IOERR (a read error).
 */
int map_db_dump(const char *type, const char *name, int alias,
    map_db_entry_fn fn, void *arg, char *err, size_t errlen);

#endif
