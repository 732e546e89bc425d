/*
 * test_map_exec.c - exec: tables: the program's answer, not found,
 * failures and timeouts as errors, the cache and forgetting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "unit_util.h"

#include "conf/map_exec.h"
#include "conf/maps.h"

static char *dir;	/* the scratch directory */

/* Write an executable shell script; returns its path (static). */
static const char *
script(const char *name, const char *body)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(path, 0700), 0);
	return path;
}

/* Open exec:path as smtp_sasl_password_maps. */
static struct maps *
open_exec(const char *path)
{
	char spec[300], err[512];
	struct maps *m;

	snprintf(spec, sizeof(spec), "exec:%s", path);
	m = maps_open("smtp_sasl_password_maps", spec, err, sizeof(err));
	if (m == NULL)
		fail_msg("%s", err);
	return m;
}

static int
setup(void **state)
{
	(void)state;
	dir = unit_tmpdir("exec");
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	free(dir);
	return system(cmd);
}

/* The key is the argument; the first line is the answer. */
static void
test_found(void **state)
{
	struct maps *m = open_exec(script("ok", "echo \"user:tok:$1\"; "
	    "echo second line"));
	const char *v;
	char err[256];

	(void)state;
	assert_int_equal(maps_find(m, "[Mail.Example]:587", &v, err,
	    sizeof(err)), MAP_FOUND);
	/* Keys are folded, as for every table. */
	assert_string_equal(v, "user:tok:[mail.example]:587");
	maps_free(m);
}

/* Exit 0 without output: not found; other statuses: errors. */
static void
test_not_found_and_errors(void **state)
{
	struct maps *m;
	const char *v;
	char err[256];

	(void)state;
	m = open_exec(script("none", "exit 0"));
	assert_int_equal(maps_find(m, "k", &v, err, sizeof(err)),
	    MAP_NOTFOUND);
	maps_free(m);

	m = open_exec(script("fail", "echo 'token expired' >&2; exit 3"));
	assert_int_equal(maps_find(m, "k", &v, err, sizeof(err)), MAP_ERROR);
	assert_non_null(strstr(err, "exited with status 3: token expired"));
	maps_free(m);

	m = open_exec(script("killed", "kill -9 $$"));
	assert_int_equal(maps_find(m, "k", &v, err, sizeof(err)), MAP_ERROR);
	assert_non_null(strstr(err, "killed by signal 9"));
	maps_free(m);
}

/* A program that hangs is killed at the time limit. */
static void
test_timeout(void **state)
{
	char out[64], msg[256];
	char *argv[] = { "/bin/sleep", "5", NULL };
	size_t len;

	(void)state;
	assert_int_equal(map_exec_run(argv, 1, out, sizeof(out), &len, msg,
	    sizeof(msg)), -1);
	assert_non_null(strstr(msg, "did not answer within 1 seconds"));
}

/* Answers are cached for the cache time, and forgotten on request. */
static void
test_cache(void **state)
{
	char body[1024], count[300], err[256];
	struct maps *m;
	const char *v;

	(void)state;
	snprintf(count, sizeof(count), "%s/calls", dir);
	snprintf(body, sizeof(body), "echo x >> %s; echo \"u:$(wc -l < %s)\"",
	    count, count);
	m = open_exec(script("count", body));
	if (maps_find(m, "k", &v, err, sizeof(err)) != MAP_FOUND)
		fail_msg("%s", err);
	assert_string_equal(v, "u:1");
	/* No cache time: asked every time. */
	assert_int_equal(maps_find(m, "k", &v, err, sizeof(err)), MAP_FOUND);
	assert_string_equal(v, "u:2");
	maps_set_cache_time(m, 300);
	assert_int_equal(maps_find(m, "k", &v, err, sizeof(err)), MAP_FOUND);
	assert_string_equal(v, "u:3");
	assert_int_equal(maps_find(m, "K", &v, err, sizeof(err)), MAP_FOUND);
	assert_string_equal(v, "u:3");
	/* The relay refused that login: ask again. */
	maps_forget(m, "K");
	assert_int_equal(maps_find(m, "k", &v, err, sizeof(err)), MAP_FOUND);
	assert_string_equal(v, "u:4");
	maps_free(m);
}

/* Opening checks the path. */
static void
test_open_errors(void **state)
{
	char err[512];

	(void)state;
	assert_null(maps_open("p", "exec:relative/prog", err, sizeof(err)));
	assert_non_null(strstr(err, "absolute path"));
	assert_null(maps_open("p", "exec:/nonexistent/prog", err,
	    sizeof(err)));
	assert_non_null(strstr(err, "cannot run /nonexistent/prog"));
	assert_null(maps_open("p", "exec:/tmp", err, sizeof(err)));
	assert_non_null(strstr(err, "not a file"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found),
		cmocka_unit_test(test_not_found_and_errors),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_open_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
