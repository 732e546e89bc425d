/*
 * map_cmd.h - `postern map` (Postfix's postmap and postalias) and
 * `newaliases`: compile, query and list lookup tables.
 */
#ifndef POSTERN_MAP_CMD_H
#define POSTERN_MAP_CMD_H

/*
 * postern map [-a] [type:]name ...      compile each table
 * postern map [-a] -q key type:name ... print the value for key
 * postern map [-a] -s type:name ...     print every "key value"
 * argv[0] is "map". A name without a type is hash:. -a: aliases(5)
 * format. Returns 0; 1 when -q found nothing; EX_USAGE, EX_NOINPUT
 * (a source or .db missing), EX_DATAERR (a syntax error, with file and
 * line), EX_CANTCREAT or EX_IOERR (writing), EX_UNAVAILABLE (a lookup
 * failed).
 */
int map_cmd(int argc, char **argv, const char *confdir);

/*
 * newaliases (or postern newaliases): compile every hash: and btree:
 * table of alias_database from confdir/main.cf in aliases(5) format.
 * argv[0] is the command name; no arguments. Returns 0 or a status as
 * map_cmd's.
 */
int newaliases_cmd(int argc, char **argv, const char *confdir);

#endif
