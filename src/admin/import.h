/*
 * import.h - `postern conf --import DIR`: a Postfix null client's main.cf
 * and tables, turned into postern's.
 */
#ifndef POSTERN_IMPORT_H
#define POSTERN_IMPORT_H

/*
 * Read from/main.cf, report each setting as used, ignored or
 * unsupported on stdout, copy the tables of used parameters that live in
 * from into confdir (compiling hash: and btree:), and write
 * confdir/main.cf (replacing an existing one only with force, which is
 * kept as main.cf.bak). Returns 0 or a sysexits code: EX_NOINPUT (from
 * or a table unreadable), EX_DATAERR (a syntax error or a value postern
 * cannot take), EX_CANTCREAT (main.cf exists without force, or cannot
 * be written).
 */
int conf_import(const char *from, const char *confdir, int force);

#endif
