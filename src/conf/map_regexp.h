/*
 * map_regexp.h - regexp: tables, Postfix's regexp_table(5) format with
 * POSIX regular expressions (regcomp(3)). Private to maps.c, the unit
 * tests and the fuzz target.
 *
 * The parser is a pure function of its input (no files, no logging) and
 * gives a map_regexp: the rules in file order, each pattern compiled.
 * Results are wiped when the table is freed.
 */
#ifndef POSTERN_MAP_REGEXP_H
#define POSTERN_MAP_REGEXP_H

#include <stddef.h>

#include "conf/maps.h"
#include "lib/buf.h"

/* A parsed regexp: table. */
struct map_regexp;

/*
 * Parse regexp_table(5) text into *out. A logical line starts with text
 * in the first column; a line that starts with white space continues it
 * (its text appended as is, the line end dropped); blank lines and lines
 * whose first non-blank is '#' are ignored and do not end a logical
 * line; a CR before a line end is ignored; trailing white space is
 * dropped. A logical line is one of:
 *
 *   /pattern/flags result	the result when the key matches
 *   !/pattern/flags result	the result when the key does not match
 *   /pattern/flags!/pattern2/flags result
 *				matches the first and not the second
 *   if /pattern/flags		the rules up to the matching endif apply
 *   if !/pattern/flags		only to keys that match (do not match)
 *   endif
 *
 * The delimiter may be any character but a letter, a digit, white space
 * or a backslash; inside the pattern it is written with a backslash
 * before it (passed on to regcomp as it is, as Postfix does). Flags
 * toggle REG_ICASE (i, default on), REG_EXTENDED (x, default on) and
 * REG_NEWLINE (m, default off). In a result, $n, ${n} and $(n) stand for
 * the text the nth ( ) group matched (empty when it matched nothing),
 * and $$ for a dollar sign; a negated pattern has no groups to use.
 * "if" and "endif" may be in any case, and nest.
 *
 * Returns 0, or -1 with "line N: ..." (or "end of file: ...") in err for
 * a missing closing delimiter, an unknown flag, a bad regular expression
 * (regerror's text), a bad or out-of-range $ reference, a missing result,
 * text after "if /pattern/" or "endif", an endif without if, an if
 * without endif, a line that is none of the above, or a NUL byte.
 * Messages never contain a result.
 */
int map_regexp_parse(const char *data, size_t len, struct map_regexp **out,
    char *err, size_t errlen);

/*
 * Look key up: the first rule (in file order, within the if blocks that
 * apply) whose pattern matches, or does not match for a negated one,
 * gives its result with the $ references replaced, in value (wiped and
 * overwritten; without growing after being wiped, so no copy of an
 * earlier result is left behind in freed memory). Returns MAP_FOUND,
 * MAP_NOTFOUND, or MAP_ERROR with "line N: ..." in err when regexec
 * fails (out of memory).
 */
int map_regexp_match(struct map_regexp *t, const char *key, struct buf *value,
    char *err, size_t errlen);

/* The number of rules (if and endif lines included). */
size_t map_regexp_count(const struct map_regexp *t);

/* Free the table, wiping every result; NULL is fine. */
void map_regexp_free(struct map_regexp *t);

/*
 * Open regexp:/path for maps.c's type table (see map_open_fn): the file
 * is read now, checked (stat) at most once a second at lookups, and read
 * again when it changes; a re-read that fails makes every lookup an
 * error until the file is fixed.
 */
int map_regexp_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen);

#endif
