/*
 * test_map_db.c - unit tests for compiled tables (hash:, btree:): the
 * aliases(5) parser, map_db_compile in a temporary directory, lookups
 * through maps_open/maps_find, a missing or foreign .db, opening again
 * after a compile, stale .db detection (log and maps_stale), the dump,
 * and what a failed compile leaves behind (nothing).
 *
 * File cases use maps_recheck() instead of sleeping past the
 * once-a-second stat limit, and utimensat() to make a source newer than
 * its .db. Log lines go to stderr, captured where a test checks them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <bsd/string.h>

#include "conf/map_db.h"
#include "conf/map_text.h"
#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/log.h"

/* Warnings or reports, one per line. */
static void
collect(void *arg, const char *msg)
{
	buf_addf(arg, "%s\n", msg);
}

/* s contains want. */
static void
expect_in(const char *s, const char *want)
{
	if (strstr(s, want) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", s, want);
}

/* Assert that key maps to want (NULL: absent). */
static void
expect_get(const struct map_table *t, const char *key, const char *want)
{
	const char *got = map_table_get(t, key);

	if (want == NULL) {
		if (got != NULL)
			fail_msg("%s: expected no value, got \"%s\"", key, got);
		return;
	}
	if (got == NULL)
		fail_msg("%s: expected \"%s\", got nothing", key, want);
	assert_string_equal(got, want);
}

/* Parse text as an alias file; 0 or -1 with err, warnings in *warned. */
static int
parse_alias(const char *text, struct map_table **t, struct buf *warned,
    char *err, size_t errlen)
{
	*t = map_table_new();
	buf_adds(warned, "");
	err[0] = '\0';
	return map_alias_parse(text, strlen(text), *t, collect, warned, err,
	    errlen);
}

/* ---- the aliases(5) parser ------------------------------------------ */

/* Names, values, comments, folding, quotes and continuation lines. */
static void
test_alias_parse(void **state)
{
	struct buf warned = BUF_INIT;
	struct map_table *t;
	char err[256];

	assert_int_equal(parse_alias(
	    "# comment\n"
	    "Root: you@example.com\n"
	    "\n"
	    "postmaster :root\n"
	    "staff: alice,\n"
	    "  bob,\n"
	    "# a comment inside the entry does not end it\n"
	    "\tcarol  \n"
	    "\"Mail Admin\": root\n"
	    "\"a:b\" : x\n"
	    "\"q\\\"uote\\\\\": y\n"
	    "pipe: \"|/usr/bin/prog arg\"\r\n"
	    "inc: :include:/etc/mail/list\n", &t, &warned, err, sizeof(err)),
	    0);
	assert_int_equal(map_table_count(t), 8);
	expect_get(t, "root", "you@example.com");
	expect_get(t, "Root", NULL);
	expect_get(t, "postmaster", "root");
	/* The continuation text is appended as is; the lead splits it. */
	expect_get(t, "staff", "alice,  bob,\tcarol");
	expect_get(t, "mail admin", "root");
	expect_get(t, "a:b", "x");
	expect_get(t, "q\"uote\\", "y");
	expect_get(t, "pipe", "\"|/usr/bin/prog arg\"");
	expect_get(t, "inc", ":include:/etc/mail/list");
	assert_string_equal(warned.data, "");
	map_table_free(t);
	buf_free(&warned);
}

/* Every error names its line and never the content. */
static void
test_alias_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "a: b\nnocolon s3cret\n", "line 2: white space in the alias "
		    "name" },
		{ "a: b\n\nnocolons3cret\n", "line 3: missing ':' after the "
		    "alias name" },
		{ ": s3cret\n", "line 1: empty alias name before ':'" },
		{ "\"\": s3cret\n", "line 1: empty alias name" },
		{ "a: b\n\"open: s3cret\n", "line 2: missing '\"' at the end of "
		    "the quoted alias name" },
		{ "\"a\" b: s3cret\n", "line 1: text between the quoted alias "
		    "name and ':'" },
		{ "a:\n", "line 1: nothing after ':'" },
		{ "a:   \n  \n", "line 1: nothing after ':'" },
		{ "  s3cret: x\n", "line 1: continuation line without a key" },
		{ "a: b\nc: s3\0cret\n", "line 2: NUL byte" },
	};
	struct buf warned = BUF_INIT;
	struct map_table *t;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *text = cases[i].text;
		size_t len = strlen(text);

		/* The NUL case: the text goes on after the NUL. */
		if (strstr(cases[i].want, "NUL") != NULL)
			len += 1 + strlen(text + len + 1);
		t = map_table_new();
		err[0] = '\0';
		if (map_alias_parse(text, len, t, collect, &warned, err,
		    sizeof(err)) != -1)
			fail_msg("case %zu parsed; expected \"%s\"", i,
			    cases[i].want);
		expect_in(err, cases[i].want);
		assert_null(strstr(err, "s3"));
		map_table_free(t);
	}
	buf_free(&warned);
}

/* A duplicate name: warned about with its line, the first kept. */
static void
test_alias_duplicate(void **state)
{
	struct buf warned = BUF_INIT;
	struct map_table *t;
	char err[256];

	assert_int_equal(parse_alias("root: a\nx: y\nROOT: s3cret\n", &t,
	    &warned, err, sizeof(err)), 0);
	expect_get(t, "root", "a");
	expect_in(warned.data, "line 3: duplicate alias name ignored; the "
	    "first one is used");
	assert_null(strstr(warned.data, "s3cret"));
	map_table_free(t);
	buf_free(&warned);
}

/* Entries come back in the order first stored. */
static void
test_table_entry_order(void **state)
{
	struct map_table *t = map_table_new();
	const char *k, *v;
	char key[16];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", (i * 37) % 100);
		map_table_put(t, key, key + 1, 0);
	}
	assert_int_equal(map_table_count(t), 100);
	for (size_t i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", (int)(i * 37) % 100);
		map_table_entry(t, i, &k, &v);
		assert_string_equal(k, key);
		assert_string_equal(v, key + 1);
	}
	map_table_free(t);
}

/* ---- files ----------------------------------------------------------- */

/* dir/name, malloc'd. */
static char *
path_of(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* Write s to path (created 0600 or truncated). */
static void
write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	assert_int_equal(close(fd), 0);
}

/* Set a file's mtime to sec seconds after the epoch. */
static void
set_mtime(const char *path, time_t sec)
{
	struct timespec ts[2] = { { sec, 0 }, { sec, 0 } };

	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* The names in dir, sorted, joined by spaces. */
static void
list_dir(const char *dir, char *out, size_t len)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);

	assert_true(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			if (out[0] != '\0')
				strlcat(out, " ", len);
			strlcat(out, names[i]->d_name, len);
		}
		free(names[i]);
	}
	free(names);
}

/* Remove every file in dir, then dir. */
static void
remove_dir(char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	char *p;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		p = path_of(dir, e->d_name);
		assert_int_equal(unlink(p), 0);
		free(p);
	}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

/* Compile path (postmap format unless alias); the status. */
static int
compile(const char *path, int alias, struct buf *warned, char *err,
    size_t errlen)
{
	if (warned != NULL)
		buf_adds(warned, "");
	err[0] = '\0';
	return map_db_compile("hash", path, alias, collect, warned, err,
	    errlen);
}

/* maps_open(param, "type:path") that must succeed, stderr in logged. */
static struct maps *
open_table(const char *param, const char *type, const char *path,
    struct buf *logged)
{
	struct unit_stderr cap;
	struct maps *m;
	char value[512], err[512];

	snprintf(value, sizeof(value), "%s:%s", type, path);
	unit_stderr_begin(&cap);
	m = maps_open(param, value, err, sizeof(err));
	unit_stderr_end(&cap, logged);
	if (m == NULL)
		fail_msg("maps_open(%s): %s", value, err);
	return m;
}

/* maps_find with stderr captured into logged; the result. */
static int
find_logged(struct maps *m, const char *key, const char **v, char *err,
    size_t errlen, struct buf *logged)
{
	struct unit_stderr cap;
	int rc;

	unit_stderr_begin(&cap);
	rc = maps_find(m, key, v, err, errlen);
	unit_stderr_end(&cap, logged);
	return rc;
}

/* Assert a lookup result and value. */
static void
expect_find(struct maps *m, const char *key, int want, const char *wantv)
{
	struct buf logged = BUF_INIT;
	const char *v;
	char err[512];
	int rc = find_logged(m, key, &v, err, sizeof(err), &logged);

	if (rc != want)
		fail_msg("%s: result %d, expected %d (%s)", key, rc, want,
		    rc == MAP_ERROR ? err : "");
	if (wantv != NULL)
		assert_string_equal(v, wantv);
	buf_free(&logged);
}

/* Compile, then look up folded keys; missing keys; btree is the same. */
static void
test_compile_find(void **state)
{
	char *dir = unit_tmpdir("mapdb"), *src = path_of(dir, "generic");
	struct buf warned = BUF_INIT, logged = BUF_INIT;
	struct maps *m;
	char err[512], names[256];

	write_str(src, "# generic\n"
	    "Alice@Example.COM   alice@isp.example\n"
	    "@example.com        user:pass:word with spaces\n"
	    "long   first\n"
	    "  second\n");
	assert_int_equal(compile(src, 0, &warned, err, sizeof(err)), 0);
	assert_string_equal(warned.data, "");
	list_dir(dir, names, sizeof(names));
	assert_string_equal(names, "generic generic.db");

	m = open_table("smtp_generic_maps", "hash", src, &logged);
	assert_string_equal(logged.data, "");
	expect_find(m, "alice@example.com", MAP_FOUND, "alice@isp.example");
	expect_find(m, "ALICE@EXAMPLE.COM", MAP_FOUND, "alice@isp.example");
	expect_find(m, "@Example.com", MAP_FOUND, "user:pass:word with spaces");
	expect_find(m, "long", MAP_FOUND, "first  second");
	expect_find(m, "bob@example.com", MAP_NOTFOUND, NULL);
	expect_find(m, "alice", MAP_NOTFOUND, NULL);
	expect_find(m, "", MAP_NOTFOUND, NULL);
	maps_free(m);

	m = open_table("p", "btree", src, &logged);
	expect_find(m, "Alice@example.com", MAP_FOUND, "alice@isp.example");
	maps_free(m);
	buf_free(&warned);
	buf_free(&logged);
	free(src);
	remove_dir(dir);
}

/* A .db that is missing: open succeeds, lookups fail with the fix. */
static void
test_missing_db(void **state)
{
	char *dir = unit_tmpdir("mapdb"), *src = path_of(dir, "sasl_passwd");
	struct buf logged = BUF_INIT, want = BUF_INIT;
	struct maps *m;
	const char *v;
	char err[1024];

	/* Nor a source to read instead: logged once, at the first lookup
	   (an open that is never looked in says nothing). */
	m = open_table("smtp_sasl_password_maps", "hash", src, &logged);
	assert_string_equal(logged.data, "");
	assert_int_equal(find_logged(m, "[mail.isp.example]:587", &v, err,
	    sizeof(err), &logged), MAP_ERROR);
	assert_null(v);
	expect_in(logged.data, "its lookups fail until it is fixed");
	buf_reset(&logged);
	assert_int_equal(find_logged(m, "[mail.isp.example]:587", &v, err,
	    sizeof(err), &logged), MAP_ERROR);
	assert_string_equal(logged.data, "");
	buf_addf(&want, "smtp_sasl_password_maps: hash:%s: cannot open %s.db: "
	    "No such file or directory; compile it with: postern map hash:%s; "
	    "and the source %s cannot be read as text either: cannot open the "
	    "file: No such file or directory", src, src, src, src);
	assert_string_equal(err, want.data);
	maps_free(m);

	/* An alias table: the advice names newaliases. */
	m = open_table("alias_maps", "btree", src, &logged);
	assert_int_equal(find_logged(m, "root", &v, err, sizeof(err),
	    &logged), MAP_ERROR);
	expect_in(err, "cannot open ");
	expect_in(err, "; compile it with: newaliases, or postern map -a "
	    "btree:");
	maps_free(m);

	/* A relative name is refused at once. */
	assert_null(maps_open("p", "hash:etc/x", err, sizeof(err)));
	assert_string_equal(err, "p: hash:etc/x: the file name must be "
	    "absolute");
	buf_free(&logged);
	buf_free(&want);
	free(src);
	remove_dir(dir);
}

/* A .db that GDBM cannot read (a Berkeley DB file left by Postfix). */
static void
test_foreign_db(void **state)
{
	char *dir = unit_tmpdir("mapdb"), *src = path_of(dir, "t");
	char *db = path_of(dir, "t.db"), err[1024], big[8192];
	struct buf logged = BUF_INIT;
	struct maps *m;
	const char *v;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_str(db, big);
	m = open_table("p", "hash", src, &logged);
	assert_int_equal(find_logged(m, "k", &v, err, sizeof(err), &logged),
	    MAP_ERROR);
	expect_in(err, "not a table made by postern map");
	expect_in(err, "compile it with: postern map hash:");
	maps_free(m);

	/* A directory in the .db's place. */
	assert_int_equal(unlink(db), 0);
	assert_int_equal(mkdir(db, 0700), 0);
	m = open_table("p", "hash", src, &logged);
	assert_int_equal(find_logged(m, "k", &v, err, sizeof(err), &logged),
	    MAP_ERROR);
	expect_in(err, ".db: not a regular file");
	maps_free(m);
	assert_int_equal(rmdir(db), 0);
	buf_free(&logged);
	free(src);
	free(db);
	remove_dir(dir);
}

/* A compile while the table is open: the next check opens the new one. */
static void
test_reopen(void **state)
{
	char *dir = unit_tmpdir("mapdb"), *src = path_of(dir, "t");
	char *db = path_of(dir, "t.db"), err[512];
	struct buf logged = BUF_INIT;
	struct maps *m;
	const char *v;

	write_str(src, "key one\n");
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	m = open_table("p", "hash", src, &logged);
	expect_find(m, "key", MAP_FOUND, "one");

	write_str(src, "key two\nnew three\n");
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	/* Within the second: the old file is still in use. */
	expect_find(m, "key", MAP_FOUND, "one");
	maps_recheck(m);
	assert_int_equal(find_logged(m, "KEY", &v, err, sizeof(err),
	    &logged), MAP_FOUND);
	assert_string_equal(v, "two");
	expect_in(logged.data, "p: hash:");
	expect_in(logged.data, "t.db changed, opened again");
	expect_find(m, "new", MAP_FOUND, "three");

	/* Removed: the source is read as text (logged once) until it is
	   compiled again. */
	assert_int_equal(unlink(db), 0);
	maps_recheck(m);
	buf_reset(&logged);
	assert_int_equal(find_logged(m, "key", &v, err, sizeof(err),
	    &logged), MAP_FOUND);
	assert_string_equal(v, "two");
	expect_in(logged.data, "No such file or directory; compile it with: "
	    "postern map hash:");
	expect_in(logged.data, "; until then the lookups read ");
	maps_recheck(m);
	buf_reset(&logged);
	assert_int_equal(find_logged(m, "new", &v, err, sizeof(err),
	    &logged), MAP_FOUND);
	assert_string_equal(logged.data, "");
	/* Without the source too: the lookups fail, logged once. */
	write_str(db, "");
	assert_int_equal(unlink(db), 0);
	assert_int_equal(rename(src, db), 0);
	maps_recheck(m);
	buf_reset(&logged);
	assert_int_equal(find_logged(m, "key", &v, err, sizeof(err),
	    &logged), MAP_ERROR);
	expect_in(err, "not a table made by postern map");
	expect_in(logged.data, "its lookups fail until it is fixed");
	assert_int_equal(rename(db, src), 0);
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	maps_recheck(m);
	buf_reset(&logged);
	assert_int_equal(find_logged(m, "key", &v, err, sizeof(err),
	    &logged), MAP_FOUND);
	assert_string_equal(v, "two");
	expect_in(logged.data, "is up to date; the lookups use it again");
	maps_free(m);
	buf_free(&logged);
	free(src);
	free(db);
	remove_dir(dir);
}

/* A source newer than its .db: warned once per change; maps_stale. */
static void
test_stale(void **state)
{
	char *dir = unit_tmpdir("mapdb"), *src = path_of(dir, "generic");
	char *db = path_of(dir, "generic.db"), err[512];
	struct buf logged = BUF_INIT, reports = BUF_INIT, want = BUF_INIT;
	struct maps *m;
	const char *v;

	write_str(src, "a b\n");
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	set_mtime(db, 1000000000);
	set_mtime(src, 1000000000);
	m = open_table("smtp_generic_maps", "hash", src, &logged);
	assert_string_equal(logged.data, "");
	maps_stale(m, collect, &reports);
	assert_string_equal(reports.data ? reports.data : "", "");
	maps_free(m);

	/* Edited after compiling. */
	set_mtime(src, 1000000100);
	buf_addf(&want, "smtp_generic_maps: hash:%s: %s is older than its "
	    "source %s; run: postern map hash:%s", src, db, src, src);
	m = open_table("smtp_generic_maps", "hash", src, &logged);
	assert_string_equal(logged.data, "");
	buf_reset(&reports);
	maps_stale(m, collect, &reports);
	expect_in(reports.data, want.data);
	expect_in(reports.data, "; until then the lookups read ");
	assert_int_equal(find_logged(m, "a", &v, err, sizeof(err), &logged),
	    MAP_FOUND);
	expect_in(logged.data, want.data);
	expect_in(logged.data, "; until then the lookups read ");

	/* The same state again: no second warning; a new edit is read. */
	buf_reset(&logged);
	maps_recheck(m);
	assert_int_equal(find_logged(m, "a", &v, err, sizeof(err), &logged),
	    MAP_FOUND);
	assert_string_equal(v, "b");
	assert_string_equal(logged.data, "");
	write_str(src, "a c\n");
	set_mtime(src, 1000000200);
	maps_recheck(m);
	assert_int_equal(find_logged(m, "a", &v, err, sizeof(err), &logged),
	    MAP_FOUND);
	assert_string_equal(v, "c");
	expect_in(logged.data, "file changed, read again");

	/* Compiled again: nothing to report; the .db answers. */
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	buf_reset(&reports);
	maps_stale(m, collect, &reports);
	assert_string_equal(reports.data, "");
	buf_reset(&logged);
	maps_recheck(m);
	assert_int_equal(find_logged(m, "a", &v, err, sizeof(err), &logged),
	    MAP_FOUND);
	assert_string_equal(v, "c");
	expect_in(logged.data, "is up to date; the lookups use it again");
	maps_free(m);

	/* A missing .db is reported too, for an alias table with newaliases. */
	assert_int_equal(unlink(db), 0);
	m = open_table("alias_maps", "hash", src, &logged);
	buf_reset(&reports);
	maps_stale(m, collect, &reports);
	expect_in(reports.data, "alias_maps: hash:");
	expect_in(reports.data, "generic.db: No such file or directory; "
	    "compile it with: newaliases, or postern map -a hash:");
	maps_free(m);

	/* Other types report nothing. */
	m = open_table("p", "inline", "{a=b}", &logged);
	buf_reset(&reports);
	maps_stale(m, collect, &reports);
	assert_string_equal(reports.data, "");
	maps_free(m);
	buf_free(&logged);
	buf_free(&reports);
	buf_free(&want);
	free(src);
	free(db);
	remove_dir(dir);
}

/* A failed compile: the message names file and line, the old .db stays
   as it was, and no temporary file is left. */
static void
test_compile_errors(void **state)
{
	char *dir = unit_tmpdir("mapdb"), *src = path_of(dir, "t");
	char *db = path_of(dir, "t.db"), err[512], names[256];
	struct buf warned = BUF_INIT, logged = BUF_INIT, want = BUF_INIT;
	struct stat before, after;
	struct maps *m;

	write_str(src, "good value\n");
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(stat(db, &before), 0);

	write_str(src, "good other\n# c\nbad\n");
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), EX_DATAERR);
	buf_addf(&want, "%s: line 3: missing value after the key", src);
	expect_in(err, want.data);
	assert_int_equal(stat(db, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
	list_dir(dir, names, sizeof(names));
	assert_string_equal(names, "t t.db");
	m = open_table("p", "hash", src, &logged);
	expect_find(m, "good", MAP_FOUND, "value");
	maps_free(m);

	/* The same file is not an alias file, and the reverse. */
	write_str(src, "root: you\nuser other\n");
	assert_int_equal(compile(src, 1, NULL, err, sizeof(err)), EX_DATAERR);
	expect_in(err, ": line 2: white space in the alias name");

	/* Duplicates: a warning naming file and line; the first is kept. */
	write_str(src, "k first\nK second\n");
	assert_int_equal(compile(src, 0, &warned, err, sizeof(err)), 0);
	buf_reset(&want);
	buf_addf(&want, "%s: line 2: duplicate entry", src);
	expect_in(warned.data, want.data);
	m = open_table("p", "hash", src, &logged);
	expect_find(m, "k", MAP_FOUND, "first");
	maps_free(m);

	/* No source: EX_NOINPUT, nothing created. */
	assert_int_equal(unlink(src), 0);
	assert_int_equal(unlink(db), 0);
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), EX_NOINPUT);
	expect_in(err, ": cannot open the file: No such file or directory");
	list_dir(dir, names, sizeof(names));
	assert_string_equal(names, "");

	/* A directory that cannot be written: EX_CANTCREAT (not as root). */
	if (geteuid() != 0) {
		write_str(src, "a b\n");
		assert_int_equal(chmod(dir, 0500), 0);
		assert_int_equal(compile(src, 0, NULL, err, sizeof(err)),
		    EX_CANTCREAT);
		expect_in(err, "cannot create a temporary file in ");
		assert_int_equal(chmod(dir, 0700), 0);
	}
	buf_free(&warned);
	buf_free(&logged);
	buf_free(&want);
	free(src);
	free(db);
	remove_dir(dir);
}

/* The .db gets the source's permission bits (and owner, as root). */
static void
test_compile_mode(void **state)
{
	char *dir = unit_tmpdir("mapdb"), *src = path_of(dir, "sasl_passwd");
	char *db = path_of(dir, "sasl_passwd.db"), err[512];
	struct stat st;

	write_str(src, "[relay]:587 user:s3cret\n");
	assert_int_equal(chmod(src, 0600), 0);
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(stat(db, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(chmod(src, 0644), 0);
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(stat(db, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);

	assert_int_equal(chmod(src, 0640), 0);
	if (geteuid() == 0)
		assert_int_equal(chown(src, 4321, 8765), 0);
	assert_int_equal(compile(src, 0, NULL, err, sizeof(err)), 0);
	assert_int_equal(stat(db, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	if (geteuid() == 0) {
		assert_int_equal(st.st_uid, 4321);
		assert_int_equal(st.st_gid, 8765);
	}
	free(src);
	free(db);
	remove_dir(dir);
}

/* Records handed to a dump, as "key=value;" text. */
static void
dump_add(void *arg, const char *key, const char *value)
{
	buf_addf(arg, "%s=%s;", key, value);
}

/* An alias file compiled and dumped; aliases looked up. */
static void
test_alias_compile_dump(void **state)
{
	char *dir = unit_tmpdir("mapdb"), *src = path_of(dir, "aliases");
	struct buf logged = BUF_INIT, out = BUF_INIT;
	struct maps *m;
	char err[512];

	write_str(src, "Root: you@example.com\n\"a b\": c,\n  d\n");
	assert_int_equal(compile(src, 1, NULL, err, sizeof(err)), 0);
	m = open_table("alias_maps", "hash", src, &logged);
	expect_find(m, "ROOT", MAP_FOUND, "you@example.com");
	expect_find(m, "a b", MAP_FOUND, "c,  d");
	expect_find(m, "a", MAP_NOTFOUND, NULL);
	maps_free(m);
	buf_adds(&out, "");
	assert_int_equal(map_db_dump("hash", src, 1, dump_add, &out, err,
	    sizeof(err)), 0);
	/* GDBM's order: look for each record. */
	expect_in(out.data, "root=you@example.com;");
	expect_in(out.data, "a b=c,  d;");
	assert_int_equal(strlen(out.data), strlen("root=you@example.com;"
	    "a b=c,  d;"));
	free(src);

	src = path_of(dir, "none");
	assert_int_equal(map_db_dump("btree", src, 0, dump_add, &out, err,
	    sizeof(err)), EX_NOINPUT);
	expect_in(err, "none.db: No such file or directory; compile it with: "
	    "postern map btree:");
	buf_free(&logged);
	buf_free(&out);
	free(src);
	remove_dir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alias_parse),
		cmocka_unit_test(test_alias_errors),
		cmocka_unit_test(test_alias_duplicate),
		cmocka_unit_test(test_table_entry_order),
		cmocka_unit_test(test_compile_find),
		cmocka_unit_test(test_missing_db),
		cmocka_unit_test(test_foreign_db),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_compile_mode),
		cmocka_unit_test(test_alias_compile_dump),
	};

	log_open("test_map_db", LOG_DEST_CLI, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
