/*
 * test_fsio.c - the file operations root and the daemon trust in a
 * directory another user may write: fs_openat_plain refuses links and
 * FIFOs, moves never replace a file, fs_commit of an unnamed file links
 * it only when it is whole, and fs_replace never writes through a link
 * planted under its temporary name. On a scratch directory of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/fsio.h"

static char dir[64];

/* Make dir/name hold text. */
static void
put(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

/* The text of dir/name ("" when it cannot be read). */
static const char *
get(const char *name)
{
	static char text[256];
	char path[128];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	text[0] = '\0';
	if ((f = fopen(path, "r")) != NULL) {
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
	}
	text[n] = '\0';
	return text;
}

/* Set-up: a fresh scratch directory. */
static int
scratch(void **unused)
{
	snprintf(dir, sizeof(dir), "/tmp/test_fsio.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

/* Tear-down. */
static int
scratch_gone(void **unused)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Only a regular file with one link is opened; the rest is named. */
static void
plain_only(void **unused)
{
	char a[128], b[128];
	struct stat st;
	int fd, dfd;

	put("file", "x");
	snprintf(a, sizeof(a), "%s/file", dir);
	snprintf(b, sizeof(b), "%s/link", dir);
	assert_int_equal(symlink(a, b), 0);
	snprintf(b, sizeof(b), "%s/fifo", dir);
	assert_int_equal(mkfifo(b, 0600), 0);
	assert_true((dfd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0);
	fd = fs_openat_plain(dfd, "file", O_RDONLY, 0, &st);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fs_openat_plain(dfd, "link", O_RDONLY, 0, &st), -1);
	assert_int_equal(errno, ELOOP);
	assert_string_equal(fs_plain_why(errno), "a symbolic link");
	/* A FIFO without a writer: refused at once, not waited on. */
	assert_int_equal(fs_openat_plain(dfd, "fifo", O_RDONLY, 0, &st), -1);
	assert_true(fs_plain_refused(errno));
	snprintf(b, sizeof(b), "%s/hard", dir);
	assert_int_equal(link(a, b), 0);
	assert_int_equal(fs_openat_plain(dfd, "file", O_RDONLY, 0, &st), -1);
	assert_int_equal(errno, EMLINK);
	/* O_CREAT through a dangling link creates nothing. */
	snprintf(a, sizeof(a), "%s/nowhere", dir);
	snprintf(b, sizeof(b), "%s/dangling", dir);
	assert_int_equal(symlink(a, b), 0);
	assert_int_equal(fs_openat_plain(dfd, "dangling", O_RDWR | O_CREAT,
	    0600, &st), -1);
	assert_int_equal(access(a, F_OK), -1);
	close(dfd);
}

/* A move never replaces a file that is there. */
static void
move_noreplace(void **unused)
{
	put("a", "mine");
	put("b", "theirs");
	assert_int_equal(fs_move(dir, "a", dir, "b"), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(fs_move_fast(dir, "a", dir, "b"), -1);
	assert_string_equal(get("b"), "theirs");
	assert_string_equal(get("a"), "mine");
	assert_int_equal(fs_move(dir, "a", dir, "c"), 0);
	assert_string_equal(get("c"), "mine");
}

/* An unnamed file gets its name only once it is whole and synced. */
static void
commit_unnamed(void **unused)
{
	enum fs_step step;
	int fd;

	fd = open(dir, O_TMPFILE | O_WRONLY, 0600);
	if (fd < 0)
		skip();		/* no O_TMPFILE here: the named path is used */
	assert_int_equal(fs_commit(fd, "data\n", 5, NULL, dir, "q", 1, &step),
	    0);
	assert_string_equal(get("q"), "data\n");
	/* A taken name is not replaced, and nothing is left. */
	fd = open(dir, O_TMPFILE | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_commit(fd, "other\n", 6, NULL, dir, "q", 1, &step),
	    -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(step, FS_RENAME);
	assert_string_equal(get("q"), "data\n");
}

/* A link planted under fs_replace's temporary name is not written. */
static void
replace_planted_link(void **unused)
{
	char a[128], b[128];

	put("target", "precious");
	snprintf(a, sizeof(a), "%s/target", dir);
	snprintf(b, sizeof(b), "%s/.rec.tmp", dir);
	assert_int_equal(link(a, b), 0);
	assert_int_equal(fs_replace(dir, "rec", "new", 3, 0600), 0);
	assert_string_equal(get("rec"), "new");
	assert_string_equal(get("target"), "precious");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(plain_only, scratch,
		    scratch_gone),
		cmocka_unit_test_setup_teardown(move_noreplace, scratch,
		    scratch_gone),
		cmocka_unit_test_setup_teardown(commit_unnamed, scratch,
		    scratch_gone),
		cmocka_unit_test_setup_teardown(replace_planted_link, scratch,
		    scratch_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
