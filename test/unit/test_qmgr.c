/*
 * test_qmgr.c - the queue manager's spool transitions, on a scratch spool
 * in a temporary directory: pickup with a stale state record under a
 * reused queue ID, a message that vanishes under delivery, and the next
 * due time of a message that is due at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit_util.h"

#include "deliver/qmgr.h"
#include "deliver/worker.h"
#include "lib/fsio.h"
#include "spool/qfile.h"
#include "spool/spool.h"

#define QID	"12345ABC"

/* A scratch spool with every directory. */
static char *
scratch_spool(void)
{
	char err[256], *dir = unit_tmpdir("qmgr");

	assert_int_equal(spool_create(dir, err, sizeof(err)), 0);
	return dir;
}

/* Remove the scratch spool. */
static void
scratch_remove(const char *dir)
{
	char cmd[PATH_BUF + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Write a valid two-recipient message as incoming/new/QID. */
static void
put_message(const char *spool)
{
	static const char body[] = "Subject: t\n\nhello\n";
	struct qenv e;
	struct buf b = BUF_INIT;
	char dir[PATH_BUF];

	memset(&e, 0, sizeof(e));
	e.arrival = 1763740025.5;
	e.uid = 1000;
	e.sender = strdup("alice@example.com");
	qenv_add_rcpt(&e, "bob@example.com", NULL);
	qenv_add_rcpt(&e, "carol@example.com", NULL);
	e.size = sizeof(body) - 1;
	assert_int_equal(qfile_format_env(&e, &b), 0);
	buf_add(&b, body, sizeof(body) - 1);
	assert_int_equal(spool_path(spool, QD_NEW, dir, sizeof(dir)), 0);
	assert_int_equal(fs_replace(dir, QID, b.data, b.len, 0600), 0);
	qenv_free(&e);
	buf_free(&b);
}

/* 1 when spool/<d>/QID exists. */
static int
exists(const char *spool, enum qdir d)
{
	char dir[PATH_BUF], path[PATH_BUF + 32];

	assert_int_equal(spool_path(spool, d, dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, QID);
	return access(path, F_OK) == 0;
}

/* A state record left by an earlier message with the same ID is not
   this message's history: every recipient is still pending. */
static void
pickup_ignores_stale_state(void **unused)
{
	static const char rec[] = "POSTERN-STATE 1\nattempts 1\nlast 1.0\n"
	    "rcpt 0 sent 2.0.0 250 ok\nrcpt 1 sent 2.0.0 250 ok\nend-of-state\n";
	char *spool = scratch_spool(), dir[PATH_BUF];
	struct qmgr q;

	put_message(spool);
	assert_int_equal(spool_path(spool, QD_STATE, dir, sizeof(dir)), 0);
	assert_int_equal(fs_replace(dir, QID, rec, sizeof(rec) - 1, 0600), 0);
	assert_int_equal(qmgr_init(&q, spool, 300, 4000), 0);
	qmgr_pickup(&q);
	assert_int_equal(q.n, 1);
	assert_true(exists(spool, QD_ACTIVE));
	assert_false(exists(spool, QD_STATE));
	assert_false(q.m[0]->final);
	assert_int_equal(qstate_count(&q.m[0]->st, RS_PENDING), 2);
	qmgr_free(&q);
	scratch_remove(spool);
	free(spool);
}

/* A message removed by hand while a worker has it is forgotten: no
   orphan state record, no table entry retried for ever. */
static void
vanished_under_delivery(void **unused)
{
	char *spool = scratch_spool(), dir[PATH_BUF];
	struct wresult r;
	struct qmgr q;

	put_message(spool);
	assert_int_equal(qmgr_init(&q, spool, 300, 4000), 0);
	qmgr_pickup(&q);
	assert_int_equal(q.n, 1);
	q.m[0]->worker = 4242;
	assert_int_equal(spool_path(spool, QD_ACTIVE, dir, sizeof(dir)), 0);
	assert_int_equal(fs_remove(dir, QID), 0);
	assert_int_equal(worker_result_parse("R " QID " 0 D 4.4.1 refused",
	    &r), 0);
	qmgr_result(&q, &r, 4242);
	assert_int_equal(worker_result_parse("M " QID, &r), 0);
	qmgr_result(&q, &r, 4242);
	assert_int_equal(q.n, 0);
	assert_false(exists(spool, QD_STATE));
	assert_false(exists(spool, QD_DEFERRED));
	qmgr_free(&q);
	scratch_remove(spool);
	free(spool);
}

/* A message due at once (next_try 0) is a due time, not "nothing due". */
static void
next_due_now(void **unused)
{
	char *spool = scratch_spool();
	struct qmgr q;

	put_message(spool);
	assert_int_equal(qmgr_init(&q, spool, 300, 4000), 0);
	qmgr_pickup(&q);
	assert_int_equal(q.n, 1);
	assert_true(q.m[0]->next_try == 0);
	assert_true(qmgr_next_due(&q) > 0);
	assert_true(qmgr_next_due(&q) <= 1);
	q.m[0]->worker = 1;
	assert_true(qmgr_next_due(&q) == 0);
	q.m[0]->worker = 0;
	qmgr_free(&q);
	scratch_remove(spool);
	free(spool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pickup_ignores_stale_state),
		cmocka_unit_test(vanished_under_delivery),
		cmocka_unit_test(next_due_now),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
