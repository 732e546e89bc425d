/*
 * test_maps.c - unit tests for lookup tables: the texthash, inline and
 * static parsers, the type dispatch and its messages, and texthash
 * files in a temporary directory, read again when they change.
 *
 * The parsers are pure, so most cases feed them text. File cases use
 * maps_recheck() instead of sleeping past the once-a-second stat limit,
 * and utimensat() to give an edited file a different mtime even when
 * the edit keeps its size. Warnings go to stderr, captured in a file
 * where a test checks them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/map_text.h"
#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

/* Warnings from a parser, one per line. */
static void
collect(void *arg, const char *msg)
{
	buf_addf(arg, "%s\n", msg);
}

/* Parse text as texthash; the table in *t, warnings in *warned. */
static int
parse_text(const char *text, size_t len, struct map_table **t,
    struct buf *warned, char *err, size_t errlen)
{
	*t = map_table_new();
	buf_adds(warned, "");
	err[0] = '\0';
	return map_text_parse(text, len, *t, collect, warned, err, errlen);
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

/* Assert that s contains want. */
static void
expect_in(const char *s, const char *want)
{
	if (strstr(s, want) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", s, want);
}

/* Comments, blank lines, trimming, case folding of keys only. */
static void
test_text_basic(void **state)
{
	static const char text[] =
	    "# tls policy\n"
	    "\n"
	    "   \t\n"
	    "   # indented comment\n"
	    "Example.COM   secure  match=.example.com  \n"
	    "[smtp.example]:587\tuser:Pass#word\n"
	    "plain\tValue With  Spaces\n"
	    "last  no-newline";
	struct buf warned = BUF_INIT;
	struct map_table *t;
	char err[256];

	assert_int_equal(parse_text(text, sizeof(text) - 1, &t, &warned, err,
	    sizeof(err)), 0);
	assert_int_equal(map_table_count(t), 4);
	expect_get(t, "example.com", "secure  match=.example.com");
	expect_get(t, "Example.COM", NULL);
	expect_get(t, "[smtp.example]:587", "user:Pass#word");
	expect_get(t, "plain", "Value With  Spaces");
	expect_get(t, "last", "no-newline");
	expect_get(t, "#", NULL);
	assert_string_equal(warned.data, "");
	map_table_free(t);
	buf_free(&warned);

	/* Nothing at all, or only comments: an empty table. */
	assert_int_equal(parse_text("", 0, &t, &warned, err, sizeof(err)), 0);
	assert_int_equal(map_table_count(t), 0);
	map_table_free(t);
	assert_int_equal(parse_text("#x\n\n", 4, &t, &warned, err,
	    sizeof(err)), 0);
	assert_int_equal(map_table_count(t), 0);
	map_table_free(t);
	buf_free(&warned);
}

/* A line that starts with white space continues the logical line. */
static void
test_text_continuation(void **state)
{
	static const char text[] =
	    "a first\n"
	    "  second\n"
	    "# a comment does not end it\n"
	    "\n"
	    "\tthird\n"
	    "b\n"
	    " value-of-b\n"
	    "c 3\n";
	struct buf warned = BUF_INIT;
	struct map_table *t;
	char err[256];

	assert_int_equal(parse_text(text, sizeof(text) - 1, &t, &warned, err,
	    sizeof(err)), 0);
	/* Postfix appends the continuation as is: its blanks stay. */
	expect_get(t, "a", "first  second\tthird");
	expect_get(t, "b", "value-of-b");
	expect_get(t, "c", "3");
	map_table_free(t);

	/* Nothing to continue: an error naming the line. */
	assert_int_equal(parse_text("# c\n  a b\n", 10, &t, &warned, err,
	    sizeof(err)), -1);
	expect_in(err, "line 2");
	expect_in(err, "continuation");
	map_table_free(t);
	buf_free(&warned);
}

/* CRLF line ends read like LF ones. */
static void
test_text_crlf(void **state)
{
	static const char text[] =
	    "a 1\r\n"
	    "b two words\r\n"
	    "c\r\n"
	    " continued\r\n"
	    "\r\n"
	    "# c\r\n"
	    "d 4\r\n";
	struct buf warned = BUF_INIT;
	struct map_table *t;
	char err[256];

	assert_int_equal(parse_text(text, sizeof(text) - 1, &t, &warned, err,
	    sizeof(err)), 0);
	assert_int_equal(map_table_count(t), 4);
	expect_get(t, "a", "1");
	expect_get(t, "b", "two words");
	expect_get(t, "c", "continued");
	expect_get(t, "d", "4");
	map_table_free(t);

	/* A key alone on a CRLF line has no value. */
	assert_int_equal(parse_text("a 1\r\nb\r\n", 8, &t, &warned, err,
	    sizeof(err)), -1);
	expect_in(err, "line 2");
	map_table_free(t);
	buf_free(&warned);
}

/* Errors name the line; they never show the text of the line. */
static void
test_text_errors(void **state)
{
	static const char nul[] = "a 1\nb x\0y\nc 3\n";
	struct buf warned = BUF_INIT;
	struct map_table *t;
	char err[256];

	/* A lone "user:password" is a key without a value: not echoed. */
	assert_int_equal(parse_text("a 1\n\n# x\nuser:s3cret\nb 2\n", 24, &t,
	    &warned, err, sizeof(err)), -1);
	expect_in(err, "line 4");
	expect_in(err, "missing value");
	assert_null(strstr(err, "s3cret"));
	map_table_free(t);

	assert_int_equal(parse_text("k   \t \n", 7, &t, &warned, err,
	    sizeof(err)), -1);
	expect_in(err, "line 1");
	map_table_free(t);

	assert_int_equal(parse_text(nul, sizeof(nul) - 1, &t, &warned, err,
	    sizeof(err)), -1);
	expect_in(err, "line 2");
	expect_in(err, "NUL");
	map_table_free(t);
	buf_free(&warned);
}

/* A duplicate keeps the first value and warns, as postmap does. */
static void
test_text_duplicate(void **state)
{
	static const char text[] =
	    "a first\n"
	    "b 2\n"
	    "A second\n"
	    "aliasish: x\n";
	struct buf warned = BUF_INIT;
	struct map_table *t;
	char err[256];

	assert_int_equal(parse_text(text, sizeof(text) - 1, &t, &warned, err,
	    sizeof(err)), 0);
	expect_get(t, "a", "first");
	assert_int_equal(map_table_count(t), 3);
	expect_in(warned.data, "line 3: duplicate entry \"a\"");
	expect_in(warned.data, "line 4: record is in \"key: value\" format");
	assert_null(strstr(warned.data, "second"));
	map_table_free(t);
	buf_free(&warned);
}

/* The hash table: many keys, growth, keep-first and replace. */
static void
test_table(void **state)
{
	struct map_table *t = map_table_new();
	char key[32], val[32];

	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key%d.example", i);
		snprintf(val, sizeof(val), "value %d", i);
		assert_int_equal(map_table_put(t, key, val, 0), 0);
	}
	assert_int_equal(map_table_count(t), 5000);
	for (int i = 0; i < 5000; i += 7) {
		snprintf(key, sizeof(key), "key%d.example", i);
		snprintf(val, sizeof(val), "value %d", i);
		expect_get(t, key, val);
	}
	expect_get(t, "key5000.example", NULL);
	expect_get(t, "", NULL);
	assert_int_equal(map_table_put(t, "key1.example", "other", 0), 1);
	expect_get(t, "key1.example", "value 1");
	assert_int_equal(map_table_put(t, "key1.example", "other", 1), 1);
	expect_get(t, "key1.example", "other");
	assert_int_equal(map_table_count(t), 5000);
	map_table_free(t);
	map_table_free(NULL);
}

/* Parse an inline: name; NULL on error (message in err). */
static struct map_table *
parse_inline(const char *name, char *err, size_t errlen)
{
	struct map_table *t = map_table_new();

	err[0] = '\0';
	if (map_inline_parse(name, t, err, errlen) < 0) {
		map_table_free(t);
		return NULL;
	}
	return t;
}

/* inline:{ ... } with commas, white space and { } entries. */
static void
test_inline_parse(void **state)
{
	struct map_table *t;
	char err[256];

	t = parse_inline("{ a=b, C=D\te=f,,g=h=i { j = k l, m } , {n=o},"
	    "{ p = {q r} } }", err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(map_table_count(t), 7);
	expect_get(t, "a", "b");
	expect_get(t, "c", "D");
	expect_get(t, "e", "f");
	expect_get(t, "g", "h=i");
	expect_get(t, "j", "k l, m");
	expect_get(t, "n", "o");
	expect_get(t, "p", "{q r}");
	map_table_free(t);

	t = parse_inline("{a=b}", err, sizeof(err));
	assert_non_null(t);
	expect_get(t, "a", "b");
	map_table_free(t);

	/* No duplicate check in Postfix's inline: the later one wins. */
	t = parse_inline("{ a=1, A=2 }", err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(map_table_count(t), 1);
	expect_get(t, "a", "2");
	map_table_free(t);
}

/* Parse an inline: name that must fail with want in the message. */
static void
expect_inline_error(const char *name, const char *want)
{
	char err[256];

	assert_null(parse_inline(name, err, sizeof(err)));
	expect_in(err, want);
	assert_null(strstr(err, "s3cret"));
}

/* inline: syntax errors name the entry by number, never its text. */
static void
test_inline_errors(void **state)
{
	/* Postfix: outside { }, "=" takes no spaces around it. */
	expect_inline_error("{ a = s3cret }", "entry 1: missing '=' after");
	expect_inline_error("{ a=1, b = s3cret }", "entry 2: missing '='");
	expect_inline_error("{ a=1 s3cret }", "entry 2: missing '='");
	expect_inline_error("{ =s3cret }", "entry 1: missing key");
	expect_inline_error("{ a= }", "entry 1: empty value");
	expect_inline_error("{ { a = } }", "entry 1: empty value");
	expect_inline_error("{ {a=s3cret}x }", "entry 1: text after '}'");
	expect_inline_error("{ { a b = s3cret } }", "entry 1: missing '='");
	expect_inline_error("{}", "empty table");
	expect_inline_error("{ , }", "empty table");
	expect_inline_error("a=s3cret", "bad syntax");
	expect_inline_error("{a=s3cret", "bad syntax");
	expect_inline_error("{a=s3cret}}", "bad syntax");
	expect_inline_error("{a=s3cret} ", "bad syntax");
	expect_inline_error("", "bad syntax");
}

/* static:value and static:{ value }. */
static void
test_static_parse(void **state)
{
	char err[256], *v;

	v = map_static_parse("user:pass", err, sizeof(err));
	assert_string_equal(v, "user:pass");
	free(v);
	v = map_static_parse("{  two words, and a comma\t}", err, sizeof(err));
	assert_string_equal(v, "two words, and a comma");
	free(v);
	v = map_static_parse("{{x}}", err, sizeof(err));
	assert_string_equal(v, "{x}");
	free(v);

	assert_null(map_static_parse("{ }", err, sizeof(err)));
	expect_in(err, "empty value");
	assert_null(map_static_parse("{ s3cret", err, sizeof(err)));
	expect_in(err, "missing '}'");
	assert_null(strstr(err, "s3cret"));
	assert_null(map_static_parse("{a}s3cret", err, sizeof(err)));
	expect_in(err, "text after '}'");
	assert_null(strstr(err, "s3cret"));
}

/* Open value as param that must fail with the exact message want. */
static void
expect_open_error(const char *param, const char *value, const char *want)
{
	char err[512];

	err[0] = '\0';
	assert_null(maps_open(param, value, err, sizeof(err)));
	if (strstr(err, want) == NULL)
		fail_msg("maps_open(\"%s\"): \"%s\" lacks \"%s\"", value, err,
		    want);
	assert_null(strstr(err, "s3cret"));
}

/* Unsupported, unknown and malformed types: what the message says. */
static void
test_open_errors(void **state)
{
	char err[512];

	assert_null(maps_open("smtp_tls_policy_maps",
	    "lmdb:/etc/postern/tls_policy", err, sizeof(err)));
	assert_string_equal(err, "smtp_tls_policy_maps: table type \"lmdb\" "
	    "is not supported yet; use texthash:/etc/postern/tls_policy (the "
	    "same file, read as text without postmap)");
	expect_open_error("p", "sdbm:/etc/x", "table type \"sdbm\" is not "
	    "supported yet; use texthash:/etc/x (the same file");
	expect_open_error("p", "lmdb:/etc/x", "use texthash:/etc/x");
	expect_open_error("p", "cdb:/etc/x", "use texthash:/etc/x");
	expect_open_error("p", "proxy:hash:/etc/x", "p: table type \"proxy\" "
	    "is not supported yet; use texthash:/etc/x");
	expect_open_error("p", "proxy:ldap:/etc/x.cf", "p: table type "
	    "\"proxy\" is not supported yet; name the table without proxy:");
	expect_open_error("p", "cidr:/etc/x", "p: table type \"cidr\" is "
	    "not supported yet");
	expect_open_error("p", "pcre:/etc/x", "table type \"pcre\" is not "
	    "supported yet");
	expect_open_error("p", "ldap:/etc/x.cf", "table type \"ldap\"");
	expect_open_error("p", "unionmap:{a:b}", "table type \"unionmap\"");
	expect_open_error("p", "bogus:/etc/x", "p: unknown table type "
	    "\"bogus\"");
	expect_open_error("p", "/etc/postern/x", "p: table 1 of the list: "
	    "expected type:name");
	expect_open_error("p", "static:x, s3cret", "p: table 2 of the list: "
	    "expected type:name");
	expect_open_error("p", "texthash:", "expected type:name");
	expect_open_error("p", ":/etc/x", "expected type:name");
	expect_open_error("p", "texthash:etc/x", "p: texthash:etc/x: the file "
	    "name must be absolute");
	expect_open_error("p", "texthash:/nonexistent/postern/x",
	    "p: texthash:/nonexistent/postern/x: cannot open the file: No such "
	    "file or directory");
	expect_open_error("p", "texthash:/", "p: texthash:/: not a regular "
	    "file");
	expect_open_error("p", "inline:{ a = s3cret }", "p: inline:{...}: "
	    "entry 1: missing '='");
	expect_open_error("p", "static:{}", "p: static:{...}: empty value");
	expect_open_error("p", "static:{ s3cret", "p: static:{...}: bad syntax");
	/* The second table fails: the first is closed again (ASan). */
	expect_open_error("p", "inline:{a=1} lmdb:/etc/x", "lmdb");
}

/* An empty value opens no tables; every lookup is not found. */
static void
test_open_empty(void **state)
{
	const char *v = "x";
	char err[256];
	struct maps *m;

	m = maps_open("p", "", err, sizeof(err));
	assert_non_null(m);
	assert_string_equal(maps_title(m), "");
	assert_int_equal(maps_find(m, "a", &v, err, sizeof(err)), MAP_NOTFOUND);
	assert_null(v);
	maps_free(m);

	m = maps_open("p", " ,\t, \n", err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(maps_find(m, "a", &v, err, sizeof(err)), MAP_NOTFOUND);
	maps_free(m);
	maps_free(NULL);
}

/* inline: and static: lookups; titles hide their content. */
static void
test_inline_static_find(void **state)
{
	const char *v;
	char err[256];
	struct maps *m;

	m = maps_open("smtp_sasl_password_maps", "inline:{ [relay]:587=u:p, "
	    "{ Other = two words } },static:{ user:s3cret word }", err,
	    sizeof(err));
	assert_non_null(m);
	assert_string_equal(maps_title(m), "inline:{...}, static:{...}");
	assert_int_equal(maps_find(m, "[RELAY]:587", &v, err, sizeof(err)),
	    MAP_FOUND);
	assert_string_equal(v, "u:p");
	assert_int_equal(maps_find(m, "other", &v, err, sizeof(err)),
	    MAP_FOUND);
	assert_string_equal(v, "two words");
	assert_int_equal(maps_find(m, "anything", &v, err, sizeof(err)),
	    MAP_FOUND);
	assert_string_equal(v, "user:s3cret word");
	/* Postfix's maps_find: an empty key is never found. */
	assert_int_equal(maps_find(m, "", &v, err, sizeof(err)), MAP_NOTFOUND);
	maps_free(m);
}

/* A fresh directory for table files. */
static char *
make_dir(void)
{
	return unit_tmpdir("maps");
}

/* dir/name as a fresh string. */
static char *
path_of(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* Write len bytes to path in place (same inode when it exists). */
static void
write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Write a string to path in place. */
static void
write_str(const char *path, const char *s)
{
	write_file(path, s, strlen(s));
}

/* Set path's mtime to sec (a time no real write has). */
static void
set_mtime(const char *path, time_t sec)
{
	struct timespec ts[2] = { { sec, 0 }, { sec, 0 } };

	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Remove what a test put in dir, and dir. */
static void
remove_dir(char *dir, const char *name1, const char *name2)
{
	char *p;

	p = path_of(dir, name1);
	(void)unlink(p);
	(void)rmdir(p);
	free(p);
	if (name2 != NULL) {
		p = path_of(dir, name2);
		(void)unlink(p);
		free(p);
	}
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

/* Look key up and assert the result (and value when found). */
static void
expect_find(struct maps *m, const char *key, int want, const char *wantv)
{
	const char *v = NULL;
	char err[512];
	int rc;

	err[0] = '\0';
	rc = maps_find(m, key, &v, err, sizeof(err));
	if (rc != want)
		fail_msg("%s: got %d (%s), want %d", key, rc, err, want);
	if (want == MAP_FOUND)
		assert_string_equal(v, wantv);
	else
		assert_null(v);
	if (want == MAP_ERROR && wantv != NULL)
		expect_in(err, wantv);
}

/* Open a value formatted from fmt, e.g. with the test directory. */
static struct maps *open_in(const char *param, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static struct maps *
open_in(const char *param, const char *fmt, ...)
{
	char value[512], err[512];
	struct maps *m;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	m = maps_open(param, value, err, sizeof(err));
	if (m == NULL)
		fail_msg("maps_open(\"%s\"): %s", value, err);
	return m;
}

/* A texthash file: open, lookups folded, title. */
static void
test_file_find(void **state)
{
	char *dir = make_dir(), *f = path_of(dir, "tls_policy"), want[300];
	struct maps *m;

	write_str(f, "# policy\nExample.com secure\n[Relay.example]:587 "
	    "encrypt\n");
	m = open_in("smtp_tls_policy_maps", "texthash:%s/tls_policy", dir);
	snprintf(want, sizeof(want), "texthash:%s", f);
	assert_string_equal(maps_title(m), want);
	expect_find(m, "example.com", MAP_FOUND, "secure");
	expect_find(m, "EXAMPLE.COM", MAP_FOUND, "secure");
	expect_find(m, "[relay.example]:587", MAP_FOUND, "encrypt");
	expect_find(m, "other.example", MAP_NOTFOUND, NULL);
	maps_free(m);
	free(f);
	remove_dir(dir, "tls_policy", NULL);
}

/* Tables are searched in order; the first that has the key wins. */
static void
test_search_order(void **state)
{
	char *dir = make_dir(), *f1 = path_of(dir, "one"),
	    *f2 = path_of(dir, "two");
	struct maps *m;

	write_str(f1, "a from-one\nb from-one\n");
	write_str(f2, "b from-two\nc from-two\n");
	m = open_in("p", "inline:{a=from-inline} texthash:%s/one,"
	    "texthash:%s/two", dir, dir);
	expect_find(m, "a", MAP_FOUND, "from-inline");
	expect_find(m, "b", MAP_FOUND, "from-one");
	expect_find(m, "c", MAP_FOUND, "from-two");
	expect_find(m, "d", MAP_NOTFOUND, NULL);
	maps_free(m);

	m = open_in("p", "texthash:%s/two, static:{ default value }", dir);
	expect_find(m, "b", MAP_FOUND, "from-two");
	expect_find(m, "zzz", MAP_FOUND, "default value");
	maps_free(m);
	free(f1);
	free(f2);
	remove_dir(dir, "one", "two");
}

/* An edited file is read again at the next check, without sleeping. */
static void
test_file_reload(void **state)
{
	char *dir = make_dir(), *f = path_of(dir, "t");
	struct maps *m;
	int64_t t0;

	write_str(f, "a 1\nb 2\n");
	set_mtime(f, 1000000000);
	t0 = now_mono_ms();
	m = open_in("p", "texthash:%s/t", dir);
	expect_find(m, "a", MAP_FOUND, "1");

	/* Same size, same inode: the mtime tells (set apart on purpose). */
	write_str(f, "a 3\nb 4\n");
	set_mtime(f, 1000000001);
	/* Within the second after open, no stat: the old content stays. */
	if (now_mono_ms() - t0 < 800)
		expect_find(m, "a", MAP_FOUND, "1");
	maps_recheck(m);
	expect_find(m, "a", MAP_FOUND, "3");
	expect_find(m, "b", MAP_FOUND, "4");

	/* A different size. */
	write_str(f, "a 5\n");
	maps_recheck(m);
	expect_find(m, "a", MAP_FOUND, "5");
	expect_find(m, "b", MAP_NOTFOUND, NULL);

	/* Replaced by rename, as editors and the durable-write path do. */
	char *tmp = path_of(dir, "t.tmp");
	write_str(tmp, "a 6\n");
	set_mtime(tmp, 1000000002);
	assert_int_equal(rename(tmp, f), 0);
	maps_recheck(m);
	expect_find(m, "a", MAP_FOUND, "6");
	free(tmp);
	maps_free(m);
	free(f);
	remove_dir(dir, "t", NULL);
}

/* A re-read that fails is an error, never the old data; a fix heals. */
static void
test_file_reload_fails(void **state)
{
	char *dir = make_dir(), *f = path_of(dir, "t");
	struct maps *m;

	write_str(f, "a 1\n");
	m = open_in("smtp_tls_policy_maps", "texthash:%s/t, static:fallback",
	    dir);
	expect_find(m, "a", MAP_FOUND, "1");

	/* A broken edit: the search stops there, no fallback to static. */
	write_str(f, "a 1\nb\n");
	maps_recheck(m);
	expect_find(m, "a", MAP_ERROR, "smtp_tls_policy_maps: texthash:");
	expect_find(m, "zzz", MAP_ERROR, "/t: line 2: missing value");
	write_str(f, "a 2\nb 3\n");
	maps_recheck(m);
	expect_find(m, "b", MAP_FOUND, "3");

	/* The file vanished. */
	assert_int_equal(unlink(f), 0);
	maps_recheck(m);
	expect_find(m, "a", MAP_ERROR, "cannot stat the file: No such file");
	write_str(f, "a 4\n");
	maps_recheck(m);
	expect_find(m, "a", MAP_FOUND, "4");

	/* Not readable as a file any more: a directory in its place. */
	assert_int_equal(unlink(f), 0);
	assert_int_equal(mkdir(f, 0700), 0);
	maps_recheck(m);
	expect_find(m, "a", MAP_ERROR, "not a regular file");
	assert_int_equal(rmdir(f), 0);

	/* A NUL byte in the new content. */
	write_file(f, "a 5\nb \0\n", 8);
	maps_recheck(m);
	expect_find(m, "a", MAP_ERROR, "line 2: NUL byte");

	write_str(f, "a 6\n");
	maps_recheck(m);
	expect_find(m, "a", MAP_FOUND, "6");
	maps_free(m);
	free(f);
	remove_dir(dir, "t", NULL);
}

/*
 * Read permission taken away: chmod changes only the ctime, which is
 * part of the identity checked. Root reads anyway, so as root the test
 * runs with the effective uid of nobody (65534), owning the file.
 */
static void
test_file_unreadable(void **state)
{
	char *dir = make_dir(), *f = path_of(dir, "t");
	uid_t uid = geteuid();
	struct maps *m;

	write_str(f, "a 1\n");
	if (uid == 0) {
		assert_int_equal(chmod(dir, 0755), 0);
		assert_int_equal(chown(f, 65534, 65534), 0);
		assert_int_equal(seteuid(65534), 0);
	}
	m = open_in("p", "texthash:%s/t", dir);
	expect_find(m, "a", MAP_FOUND, "1");
	assert_int_equal(chmod(f, 0), 0);
	maps_recheck(m);
	expect_find(m, "a", MAP_ERROR, "cannot open the file: Permission "
	    "denied");
	assert_int_equal(chmod(f, 0600), 0);
	maps_recheck(m);
	expect_find(m, "a", MAP_FOUND, "1");
	if (uid == 0)
		assert_int_equal(seteuid(0), 0);
	maps_free(m);
	free(f);
	remove_dir(dir, "t", NULL);
}

/* A file over the size limit is refused (sparse: no disk used). */
static void
test_file_too_large(void **state)
{
	char *dir = make_dir(), *f = path_of(dir, "big"), value[300];
	char err[512];

	write_str(f, "a 1\n");
	assert_int_equal(truncate(f, MAP_TEXT_MAX + 1), 0);
	snprintf(value, sizeof(value), "texthash:%s", f);
	assert_null(maps_open("p", value, err, sizeof(err)));
	expect_in(err, "file larger than 16 MB");
	assert_int_equal(truncate(f, MAP_TEXT_MAX), 0);
	assert_null(maps_open("p", value, err, sizeof(err)));
	expect_in(err, "NUL byte");
	free(f);
	remove_dir(dir, "big", NULL);
}

/* Run open on value with stderr captured into logged. */
static struct maps *
open_logged(const char *value, struct buf *logged, char *err, size_t errlen)
{
	struct unit_stderr cap;
	struct maps *m;

	unit_stderr_begin(&cap);
	m = maps_open("p", value, err, errlen);
	unit_stderr_end(&cap, logged);
	return m;
}

/* A duplicate in a file is logged with the table and the line. */
static void
test_file_duplicate_logged(void **state)
{
	char *dir = make_dir(), *f = path_of(dir, "t"), value[300], err[512];
	struct buf logged = BUF_INIT;
	struct maps *m;

	write_str(f, "a first\nb 2\nA second\n");
	snprintf(value, sizeof(value), "texthash:%s", f);
	m = open_logged(value, &logged, err, sizeof(err));
	assert_non_null(m);
	expect_in(logged.data, "p: texthash:");
	expect_in(logged.data, "/t: line 3: duplicate entry \"a\"");
	expect_find(m, "a", MAP_FOUND, "first");
	maps_free(m);
	buf_free(&logged);

	/* A NUL byte in the file at open is an error naming the line. */
	write_file(f, "a 1\nb\0 2\n", 9);
	assert_null(maps_open("p", value, err, sizeof(err)));
	expect_in(err, "line 2: NUL byte");
	free(f);
	remove_dir(dir, "t", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_basic),
		cmocka_unit_test(test_text_continuation),
		cmocka_unit_test(test_text_crlf),
		cmocka_unit_test(test_text_errors),
		cmocka_unit_test(test_text_duplicate),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_inline_parse),
		cmocka_unit_test(test_inline_errors),
		cmocka_unit_test(test_static_parse),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_open_empty),
		cmocka_unit_test(test_inline_static_find),
		cmocka_unit_test(test_file_find),
		cmocka_unit_test(test_search_order),
		cmocka_unit_test(test_file_reload),
		cmocka_unit_test(test_file_reload_fails),
		cmocka_unit_test(test_file_unreadable),
		cmocka_unit_test(test_file_too_large),
		cmocka_unit_test(test_file_duplicate_logged),
	};

	log_open("test_maps", LOG_DEST_CLI, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
