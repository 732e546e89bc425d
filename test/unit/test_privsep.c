/*
 * test_privsep.c - what posternd does as root before it gives root up:
 * the user lookup (a missing mail_owner is an error, never root), the
 * refusal to "drop" to uid or group 0, and spool_adopt, which gives the
 * daemon's user the files root left in the spool and nothing else: not
 * what a symbolic link points at, not a file with another link outside.
 * The drop itself is tested for real in test/integ/test_privdrop.py.
 */
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

#include "unit_util.h"

#include "lib/privsep.h"
#include "spool/spool.h"

#define OTHER_UID	4242
#define OTHER_GID	4343

/* Look up root and a user that cannot exist. */
static void
test_lookup(void **state)
{
	struct privsep_user u;
	char err[256];

	(void)state;
	assert_int_equal(privsep_lookup("root", &u, err, sizeof(err)), 0);
	assert_int_equal(u.uid, 0);
	assert_string_equal(u.name, "root");
	assert_int_equal(privsep_lookup("no-such-user-pstn", &u, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "no such user: no-such-user-pstn");
}

/* Dropping "to" root, or to a user whose group is root, is refused. */
static void
test_drop_refuses_root(void **state)
{
	struct privsep_user u;
	char err[256];

	(void)state;
	memset(&u, 0, sizeof(u));
	strcpy(u.name, "root");
	assert_int_equal(privsep_drop(&u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "uid or group id 0"));
	u.uid = OTHER_UID;
	assert_int_equal(privsep_drop(&u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "uid or group id 0"));
	/* Still who we were. */
	assert_int_equal(getuid(), geteuid());
}

/* Create path with content, owned by root (we are root). */
static void
put_file(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs("x\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
}

/* uid of path, not following a symbolic link. */
static uid_t
owner(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_uid;
}

/* Root's leftovers become the user's; links lead nowhere. */
static void
test_adopt(void **state)
{
	char *dir, *outside, p[PATH_BUF + 64], o[PATH_BUF + 64], err[512];
	char cmd[2 * PATH_BUF + 32];

	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	dir = unit_tmpdir("adopt");
	outside = unit_tmpdir("adopt-outside");
	assert_int_equal(spool_create(dir, err, sizeof(err)), 0);

	/* A state record and a deferred message left by root. */
	snprintf(p, sizeof(p), "%s/state/AAAAAA1", dir);
	put_file(p);
	snprintf(p, sizeof(p), "%s/deferred/AAAAAA1", dir);
	put_file(p);
	/* A file outside, reached by a symbolic link and a hard link. */
	snprintf(o, sizeof(o), "%s/secret", outside);
	put_file(o);
	snprintf(p, sizeof(p), "%s/active/BBBBBB2", dir);
	assert_int_equal(symlink(o, p), 0);
	snprintf(p, sizeof(p), "%s/hold/CCCCCC3", dir);
	assert_int_equal(link(o, p), 0);
	/* Another user's message stays that user's. */
	snprintf(p, sizeof(p), "%s/incoming/new/DDDDDD4", dir);
	put_file(p);
	assert_int_equal(chown(p, 1234, OTHER_GID), 0);

	assert_int_equal(spool_adopt(dir, OTHER_UID, OTHER_GID, err,
	    sizeof(err)), 2);
	snprintf(p, sizeof(p), "%s/state/AAAAAA1", dir);
	assert_int_equal(owner(p), OTHER_UID);
	snprintf(p, sizeof(p), "%s/deferred/AAAAAA1", dir);
	assert_int_equal(owner(p), OTHER_UID);
	assert_int_equal(owner(o), 0);
	snprintf(p, sizeof(p), "%s/active/BBBBBB2", dir);
	assert_int_equal(owner(p), 0);
	snprintf(p, sizeof(p), "%s/incoming/new/DDDDDD4", dir);
	assert_int_equal(owner(p), 1234);
	/* Done once: a second start changes nothing. */
	assert_int_equal(spool_adopt(dir, OTHER_UID, OTHER_GID, err,
	    sizeof(err)), 0);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, outside);
	assert_int_equal(system(cmd), 0);
	free(dir);
	free(outside);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_drop_refuses_root),
		cmocka_unit_test(test_adopt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
