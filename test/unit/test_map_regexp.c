/*
 * test_map_regexp.c - unit tests for regexp: tables: the parser (flags,
 * negation, if/endif, $ substitution, continuation lines, delimiters and
 * every error with its line), lookups through maps_open (keys as given,
 * skipped by maps_find_fixed), and a file read again when it changes.
 *
 * File cases use maps_recheck() instead of sleeping past the
 * once-a-second stat limit.
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

#include "conf/map_regexp.h"
#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/log.h"

/* Parse text (a C string), failing the test when it does not parse. */
static struct map_regexp *
parse_ok(const char *text)
{
	struct map_regexp *t = NULL;
	char err[512] = "";

	if (map_regexp_parse(text, strlen(text), &t, err, sizeof(err)) != 0)
		fail_msg("parse failed: %s\n--- text:\n%s", err, text);
	assert_non_null(t);
	return t;
}

/* Assert that key gives want (NULL: not found). */
static void
expect_match(struct map_regexp *t, const char *key, const char *want)
{
	struct buf v = BUF_INIT;
	char err[512] = "";
	int rc = map_regexp_match(t, key, &v, err, sizeof(err));

	if (want == NULL) {
		if (rc != MAP_NOTFOUND)
			fail_msg("\"%s\": expected not found, got %d \"%s\" %s",
			    key, rc, v.data ? v.data : "", err);
	} else {
		if (rc != MAP_FOUND)
			fail_msg("\"%s\": expected \"%s\", got %d %s", key,
			    want, rc, err);
		assert_string_equal(v.data, want);
		assert_int_equal(v.len, strlen(want));
	}
	buf_free(&v);
}

/* Assert that text (len bytes) fails to parse with exactly want. */
static void
expect_error_n(const char *text, size_t len, const char *want)
{
	struct map_regexp *t = (struct map_regexp *)1;
	char err[512] = "";

	if (map_regexp_parse(text, len, &t, err, sizeof(err)) == 0)
		fail_msg("parse succeeded; expected \"%s\"\n--- text:\n%s",
		    want, text);
	assert_null(t);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, want);
	/* Results are never shown: every result in these tests says so. */
	assert_null(strstr(err, "s3cret"));
}

static void
expect_error(const char *text, const char *want)
{
	expect_error_n(text, strlen(text), want);
}

/* Patterns match case-insensitively by default; i makes them strict. */
static void
test_flag_i(void **state)
{
	struct map_regexp *t = parse_ok(
	    "/^abc$/i strict\n"
	    "/^Received:/ IGNORE\n");

	expect_match(t, "abc", "strict");
	expect_match(t, "ABC", NULL);
	expect_match(t, "received: from x", "IGNORE");
	expect_match(t, "RECEIVED: from x", "IGNORE");
	expect_match(t, "X-Received: from x", NULL);
	map_regexp_free(t);

	/* i twice toggles back. */
	t = parse_ok("/^abc$/ii any\n");
	expect_match(t, "ABC", "any");
	map_regexp_free(t);
}

/* x turns extended syntax off: basic regular expressions. */
static void
test_flag_x(void **state)
{
	struct map_regexp *t = parse_ok(
	    "/^a+$/x basic\n"
	    "/^(b)$/x basicparen\n"
	    "/^c\\(d\\)$/x ${1}-bre\n"
	    "/^a+$/ extended\n");

	expect_match(t, "a+", "basic");
	expect_match(t, "aaa", "extended");
	expect_match(t, "(b)", "basicparen");
	expect_match(t, "b", NULL);
	expect_match(t, "cd", "d-bre");
	map_regexp_free(t);
}

/* m: ^ and $ at line breaks inside the key, '.' stops at them. */
static void
test_flag_m(void **state)
{
	static const char key[] = "Received: from a\n\tby b";
	struct map_regexp *t;

	t = parse_ok("/^\tby/ plain\n");
	expect_match(t, key, NULL);
	map_regexp_free(t);
	t = parse_ok("/^\tby/m multi\n");
	expect_match(t, key, "multi");
	map_regexp_free(t);

	/* Without m '.' crosses the line break; with m it does not. */
	t = parse_ok("/^Received:.*by b$/ across\n");
	expect_match(t, key, "across");
	map_regexp_free(t);
	t = parse_ok("/^Received:.*by b$/m across\n");
	expect_match(t, key, NULL);
	map_regexp_free(t);

	/* Flags combine in any order. */
	t = parse_ok("/^A$/mi multi-strict\n");
	expect_match(t, "x\nA", "multi-strict");
	expect_match(t, "x\na", NULL);
	map_regexp_free(t);
}

/* !/pattern/: the result when the key does not match. */
static void
test_negation(void **state)
{
	struct map_regexp *t = parse_ok(
	    "!/^(X|Subject)-?/ not-x $$1\n"
	    "! /^X-Keep/ spaced\n"
	    "!!/^X-Double/ double\n");

	expect_match(t, "From: a", "not-x $1");
	expect_match(t, "X-Other: 1", "spaced");
	expect_match(t, "X-Keep: 1", NULL);
	map_regexp_free(t);

	/* Two '!' cancel: a positive pattern. */
	t = parse_ok("!!/^X-Double/ double\n");
	expect_match(t, "X-Double: 1", "double");
	expect_match(t, "X-Single: 1", NULL);
	map_regexp_free(t);

	/* Postfix's /p1/!/p2/: matches the first and not the second. */
	t = parse_ok("/^From:/!/example\\.com/ outside\n");
	expect_match(t, "From: a@example.org", "outside");
	expect_match(t, "From: a@example.com", NULL);
	expect_match(t, "To: a@example.org", NULL);
	map_regexp_free(t);
}

/* if/endif blocks, nested, in any case; rules after them still apply. */
static void
test_if_endif(void **state)
{
	struct map_regexp *t = parse_ok(
	    "if /^From:/\n"
	    "if !/example\\.com/\n"
	    "/./ external\n"
	    "endif\n"
	    "/./ internal\n"
	    "endif\n"
	    "IF /^To:/\n"
	    "If /never/\n"
	    "/./ unreachable\n"
	    "EndIf\n"
	    "ENDIF\n"
	    "/./ other\n");

	expect_match(t, "From: a@example.org", "external");
	expect_match(t, "From: a@example.com", "internal");
	expect_match(t, "To: b", "other");
	expect_match(t, "Subject: never", "other");
	assert_int_equal(map_regexp_count(t), 12);
	map_regexp_free(t);

	/* An if block with nothing inside, and one that ends the table. */
	t = parse_ok("if /a/\nendif\n/a/ after\nif /b/\n/b/ inside\nendif");
	expect_match(t, "a", "after");
	expect_match(t, "b", "inside");
	expect_match(t, "c", NULL);
	map_regexp_free(t);
}

/* $n, ${n}, $(n), $$; groups that matched nothing give nothing. */
static void
test_substitution(void **state)
{
	struct map_regexp *t = parse_ok(
	    "/^([^@]+)@([^.]+)\\.(.*)$/ $1 at ${2}dot$(3) $$ $$2 $3$1\n"
	    "/^opt(ional)?:(.*)$/ [$1][$2]\n"
	    "/^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)$/ $9${10}$1\n");

	expect_match(t, "user@example.com", "user at exampledotcom $ $2 "
	    "comuser");
	expect_match(t, "opt:x", "[][x]");
	expect_match(t, "optional:y", "[ional][y]");
	expect_match(t, "abcdefghij", "ija");
	map_regexp_free(t);

	/* "$$${1" is a "$" and then a ${ left open: refused at parse. */
	expect_error("/^(lit)$/ $$${1\n", "line 1: bad result: \"${\" without "
	    "its \"}\"");

	/* A result without references comes back as written. */
	t = parse_ok("/x/ REPLACE X-Y: 100%\n");
	expect_match(t, "x", "REPLACE X-Y: 100%");
	map_regexp_free(t);
}

/* The first rule that matches wins; later ones are not consulted. */
static void
test_first_match(void **state)
{
	struct map_regexp *t = parse_ok(
	    "/^Subject:/ first\n"
	    "/^Subject: x/ second\n"
	    "/^Sub/ third\n");

	expect_match(t, "Subject: x", "first");
	expect_match(t, "Subway", "third");
	map_regexp_free(t);
}

/* Comments, blank lines, continuation lines, CRLF, other delimiters. */
static void
test_layout(void **state)
{
	struct map_regexp *t = parse_ok(
	    "# a comment\n"
	    "\n"
	    "   \t\n"
	    "/^Subject:\n"
	    "  # a comment inside a logical line\n"
	    " spam/ REPLACE Subject:\n"
	    "\tham   \n"
	    "/^crlf$/ windows\r\n"
	    "|^a/b|  pipe\n"
	    "~^c\\~d~ tilde\n"
	    "/^e\\/f$/ escaped\n"
	    "!@^g@ not-g\n");

	/* Continuation text is appended as is, white space included. */
	expect_match(t, "Subject: spam", "REPLACE Subject:\tham");
	expect_match(t, "crlf", "windows");
	expect_match(t, "a/b", "pipe");
	expect_match(t, "c~d", "tilde");
	expect_match(t, "e/f", "escaped");
	expect_match(t, "g", NULL);
	expect_match(t, "h", "not-g");
	map_regexp_free(t);

	/* The pattern may hold white space; an empty table finds nothing. */
	t = parse_ok("/^two words$/ spaced\n");
	expect_match(t, "two words", "spaced");
	map_regexp_free(t);
	t = parse_ok("# only comments\n\n");
	expect_match(t, "x", NULL);
	assert_int_equal(map_regexp_count(t), 0);
	map_regexp_free(t);
	t = parse_ok("");
	expect_match(t, "x", NULL);
	map_regexp_free(t);
}

/* Every error names its line (the first line of a logical line). */
static void
test_errors(void **state)
{
	static const char nul[] = "/a/ 1\n/b/ s3\0cret\n";

	expect_error("# c\n\n/^a/ x\n/^b s3cret\n", "line 4: missing closing "
	    "delimiter \"/\" (write it as \\/ inside the pattern)");
	expect_error("/a\\/ s3cret\n", "line 1: missing closing delimiter");
	expect_error("/ok/ 1\n/a(/ s3cret\n", "line 2: bad regular "
	    "expression: ");
	expect_error("/ok/ 1\n\n/a[/ s3cret\n", "line 3: bad regular "
	    "expression: ");
	expect_error("if /a/\nendif\nendif\n", "line 3: endif without if");
	expect_error("/a/ 1\n\n\nif /a/\n/b/ s3cret\n",
	    "end of file: if without endif (line 4)");
	expect_error("if /a/\nif /b/\nendif\n", "end of file: if without "
	    "endif (line 1)");
	expect_error("if /a/\nif /b/\n", "end of file: if without endif "
	    "(line 2), and more open ifs before it");
	expect_error("/a/q s3cret\n", "line 1: unknown flag \"q\" after the "
	    "pattern (the flags are i, m and x)");
	expect_error("/a/i\x01 s3cret\n", "line 1: unknown flag \"\\x01\"");
	expect_error("/a/\n", "line 1: missing result after the pattern");
	expect_error("/a/i   \n", "line 1: missing result");
	expect_error("/a/ $x s3cret\n", "line 1: bad result: \"$\" followed "
	    "by a name, not a group number");
	expect_error("/(a)/ $1a s3cret\n", "line 1: bad result: \"$\" followed "
	    "by a name");
	expect_error("/a/ s3cret $\n", "line 1: bad result: \"$\" without a "
	    "group number");
	expect_error("/a/ s3cret $ x\n", "line 1: bad result: \"$\" without");
	expect_error("/a/ ${} s3cret\n", "line 1: bad result: \"${\" or \"$(\" "
	    "without a group number");
	expect_error("/(a)/ $(1 s3cret\n", "line 1: bad result: \"$(\" without "
	    "its \")\"");
	expect_error("/(a)/ ${1 s3cret\n", "line 1: bad result: \"${\" without "
	    "its \"}\"");
	expect_error("/(a)/ $0 s3cret\n", "line 1: bad result: $0 is not a "
	    "group");
	expect_error("/(a)/ $2 s3cret\n", "line 1: the result uses $2 but the "
	    "pattern has 1 ( ) group");
	expect_error("/a/ $1 s3cret\n", "line 1: the result uses $1 but the "
	    "pattern has 0 ( ) groups");
	expect_error("/(a)/ ${99999999999999999999} s3cret\n", "line 1: the "
	    "result uses $");
	expect_error("!/(a)/ $1 s3cret\n", "line 1: $1 in the result of a "
	    "negated pattern");
	expect_error("if /a/ s3cret\n", "line 1: text after the if pattern "
	    "(a rule inside if ... endif must start in the first column");
	expect_error("if /a/\n /b/ s3cret\nendif\n", "line 1: text after the "
	    "if pattern");
	expect_error("if /a/\nendif s3cret\n", "line 2: text after endif");
	expect_error("if\n", "line 1: if without a pattern");
	expect_error("if /a/q\nendif\n", "line 1: unknown flag \"q\"");
	expect_error("if /a(/\nendif\n", "line 1: bad regular expression");
	expect_error("foo s3cret\n", "line 1: expected \"/pattern/ result\", "
	    "\"if /pattern/\" or \"endif\"");
	expect_error("ifx /a/ s3cret\n", "line 1: expected \"/pattern/ "
	    "result\"");
	expect_error("!a! s3cret\n", "line 1: expected a pattern between "
	    "delimiters such as /regexp/, found \"a\"");
	expect_error("\\a\\ s3cret\n", "line 1: expected a pattern between "
	    "delimiters");
	expect_error("!\n", "line 1: missing pattern after \"!\"");
	expect_error("/a/!/b/!/c/ s3cret\n", "line 1: more than two patterns");
	expect_error("/a/!/b(/ s3cret\n", "line 1: bad regular expression");
	expect_error(" /a/ s3cret\n", "line 1: continuation line without a "
	    "rule before it");
	expect_error_n(nul, sizeof(nul) - 1, "line 2: NUL byte");
}

/* Lookups through maps_open: keys as given; fixed lookups skip it. */
static void
test_maps(void **state)
{
	char *dir = unit_tmpdir("regexp"), path[512], value[600], err[512];
	const char *v;
	struct maps *m;
	FILE *f;

	snprintf(path, sizeof(path), "%s/checks", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("/^ABC$/i exact\n/^From: (.*)$/ from=$1\n", f);
	fclose(f);
	snprintf(value, sizeof(value), "regexp:%s, static:fallback", path);
	m = maps_open("smtp_header_checks", value, err, sizeof(err));
	if (m == NULL)
		fail_msg("%s", err);
	assert_int_equal(maps_find(m, "ABC", &v, err, sizeof(err)), MAP_FOUND);
	assert_string_equal(v, "exact");
	/* Not folded: the i flag made the pattern case-sensitive. */
	assert_int_equal(maps_find(m, "abc", &v, err, sizeof(err)), MAP_FOUND);
	assert_string_equal(v, "fallback");
	assert_int_equal(maps_find(m, "From: Some One <A@B>", &v, err,
	    sizeof(err)), MAP_FOUND);
	assert_string_equal(v, "from=Some One <A@B>");
	/* A shorter answer after a longer one, from the same buffer. */
	assert_int_equal(maps_find(m, "ABC", &v, err, sizeof(err)), MAP_FOUND);
	assert_string_equal(v, "exact");
	assert_int_equal(maps_find_fixed(m, "ABC", &v, err, sizeof(err)),
	    MAP_FOUND);
	assert_string_equal(v, "fallback");
	maps_free(m);

	/* Open errors name the parameter, the table and the line. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("/a/ 1\n\n/b s3cret\n", f);
	fclose(f);
	snprintf(value, sizeof(value), "regexp:%s", path);
	assert_null(maps_open("smtp_header_checks", value, err, sizeof(err)));
	snprintf(value, sizeof(value), "smtp_header_checks: regexp:%s: line 3: "
	    "missing closing delimiter \"/\"", path);
	if (strncmp(err, value, strlen(value)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", err, value);
	assert_null(maps_open("p", "regexp:etc/x", err, sizeof(err)));
	assert_string_equal(err, "p: regexp:etc/x: the file name must be "
	    "absolute");
	assert_null(maps_open("p", "regexp:/nonexistent/postern/x", err,
	    sizeof(err)));
	assert_string_equal(err, "p: regexp:/nonexistent/postern/x: cannot "
	    "open the file: No such file or directory");
	assert_null(maps_open("p", "regexp:/", err, sizeof(err)));
	assert_string_equal(err, "p: regexp:/: not a regular file");
	unlink(path);
	rmdir(dir);
	free(dir);
}

/* Write text to path through a rename, with a distinct mtime. */
static void
replace_file(const char *path, const char *text, long mtime)
{
	char tmp[600];
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(utimensat(AT_FDCWD, tmp, ts, 0), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* Assert a maps_find result; want is the value or a part of the error. */
static void
expect_find(struct maps *m, const char *key, int rc, const char *want)
{
	char err[512] = "";
	const char *v = NULL;
	int got = maps_find(m, key, &v, err, sizeof(err));

	if (got != rc)
		fail_msg("%s: expected %d, got %d (%s)", key, rc, got, err);
	if (rc == MAP_FOUND)
		assert_string_equal(v, want);
	else if (rc == MAP_ERROR && strstr(err, want) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", err, want);
}

/* An edited file is read again; a broken one fails lookups until fixed. */
static void
test_reload(void **state)
{
	char *dir = unit_tmpdir("regexp"), path[512], value[600], err[512];
	struct unit_stderr cap;
	struct buf logged = BUF_INIT;
	struct maps *m;

	snprintf(path, sizeof(path), "%s/checks", dir);
	replace_file(path, "/^a/ one\n", 1000000000);
	snprintf(value, sizeof(value), "regexp:%s, static:fallback", path);
	m = maps_open("smtp_header_checks", value, err, sizeof(err));
	if (m == NULL)
		fail_msg("%s", err);
	expect_find(m, "a", MAP_FOUND, "one");

	unit_stderr_begin(&cap);
	/* Changed: read again at the next lookup after a recheck. */
	replace_file(path, "/^a/ two\n/^b/ three\n", 1000000001);
	maps_recheck(m);
	expect_find(m, "a", MAP_FOUND, "two");
	expect_find(m, "b", MAP_FOUND, "three");

	/* Broken: an error with the line, never the old rules or static. */
	replace_file(path, "/^a/ two\nif /b/\n", 1000000002);
	maps_recheck(m);
	expect_find(m, "a", MAP_ERROR, "smtp_header_checks: regexp:");
	expect_find(m, "zzz", MAP_ERROR, "end of file: if without endif "
	    "(line 2)");

	/* Removed: still an error; restored: answers again. */
	assert_int_equal(unlink(path), 0);
	maps_recheck(m);
	expect_find(m, "a", MAP_ERROR, "cannot stat the file");
	replace_file(path, "/^a/ four\n", 1000000003);
	maps_recheck(m);
	expect_find(m, "a", MAP_FOUND, "four");
	expect_find(m, "b", MAP_FOUND, "fallback");
	unit_stderr_end(&cap, &logged);
	if (strstr(logged.data, "file changed, read again") == NULL ||
	    strstr(logged.data, "its lookups fail until it is fixed") == NULL)
		fail_msg("log: %s", logged.data);
	buf_free(&logged);
	maps_free(m);
	unlink(path);
	rmdir(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flag_i),
		cmocka_unit_test(test_flag_x),
		cmocka_unit_test(test_flag_m),
		cmocka_unit_test(test_negation),
		cmocka_unit_test(test_if_endif),
		cmocka_unit_test(test_substitution),
		cmocka_unit_test(test_first_match),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_maps),
		cmocka_unit_test(test_reload),
	};

	log_open("test_map_regexp", LOG_DEST_CLI, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
