/*
 * test_qfile.c - queue-file format round trip and corruption cases, and
 * the spool's create / open / commit path in a scratch directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsio.h"
#include "mail/dsn.h"
#include "spool/qfile.h"
#include "spool/spool.h"

#define MSG "Subject: t\n\nhello\n"

/* A typical envelope with every optional record. */
static void
sample_env(struct qenv *e)
{
	memset(e, 0, sizeof(*e));
	e->arrival = 1763740025.123456;
	e->uid = 1000;
	e->sender = strdup("alice@host.example");
	e->notify = strdup("FAILURE,DELAY");
	e->ret = strdup("HDRS");
	e->envid = strdup("abc123");
	e->flags = QF_8BIT;
	qenv_add_rcpt(e, "bob@example.com", "bob");
	qenv_add_rcpt(e, "carol@example.com", NULL);
	e->size = strlen(MSG);
}

/* A whole queue file for sample_env. */
static void
sample_file(struct buf *b)
{
	struct qenv e;

	sample_env(&e);
	assert_int_equal(qfile_format_env(&e, b), 0);
	buf_adds(b, MSG);
	qenv_free(&e);
}

static void
test_round_trip(void **state)
{
	struct buf b = BUF_INIT;
	struct qenv e;
	size_t off;
	char err[256];

	sample_file(&b);
	assert_int_equal(qfile_parse(b.data, b.len, &e, &off, err, sizeof(err)), 0);
	assert_float_equal(e.arrival, 1763740025.123456, 1e-6);
	assert_int_equal(e.uid, 1000);
	assert_string_equal(e.sender, "alice@host.example");
	assert_string_equal(e.notify, "FAILURE,DELAY");
	assert_string_equal(e.ret, "HDRS");
	assert_string_equal(e.envid, "abc123");
	assert_int_equal(e.flags, QF_8BIT);
	assert_int_equal(e.nrcpt, 2);
	assert_string_equal(e.rcpt[0].addr, "bob@example.com");
	assert_string_equal(e.rcpt[0].orig, "bob");
	assert_null(e.rcpt[1].orig);
	assert_int_equal(e.size, strlen(MSG));
	assert_memory_equal(b.data + off, MSG, strlen(MSG));
	qenv_free(&e);

	/* Every flag word survives the trip. */
	sample_env(&e);
	e.flags = QF_8BIT | QF_EXPANDED | QF_REMOTE;
	buf_reset(&b);
	assert_int_equal(qfile_format_env(&e, &b), 0);
	qenv_free(&e);
	assert_non_null(strstr(b.data, "\nflags 8bit expanded remote\n"));
	buf_adds(&b, MSG);
	assert_int_equal(qfile_parse(b.data, b.len, &e, &off, err, sizeof(err)), 0);
	assert_int_equal(e.flags, QF_8BIT | QF_EXPANDED | QF_REMOTE);
	qenv_free(&e);
	buf_free(&b);
}

static void
test_null_sender(void **state)
{
	const char *f[] = {
		"POSTERN-QUEUE 1\narrival 1\nuid 0\nsender \nrecipient a@b\n"
		    "size 0\nend-of-envelope\n",
		"POSTERN-QUEUE 1\narrival 1\nuid 0\nsender\nrecipient a@b\n"
		    "size 0\nend-of-envelope\n",
	};
	struct qenv e = { 0 };
	size_t off;
	char err[256];

	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(qfile_parse(f[i], strlen(f[i]), &e, &off, err,
		    sizeof(err)), 0);
		assert_string_equal(e.sender, "");
		assert_int_equal(off, strlen(f[i]));
		qenv_free(&e);
	}
	/* Formatting the null sender gives the "sender " line. */
	struct buf b = BUF_INIT;
	e.sender = strdup("");
	qenv_add_rcpt(&e, "a@b", NULL);
	assert_int_equal(qfile_format_env(&e, &b), 0);
	assert_non_null(strstr(b.data, "\nsender \n"));
	qenv_free(&e);
	buf_free(&b);
}

static void
test_format_refuses_newline(void **state)
{
	struct qenv e = { 0 };
	struct buf b = BUF_INIT;

	e.sender = strdup("a@b");
	qenv_add_rcpt(&e, "x@y\nrecipient evil@z", NULL);
	assert_int_equal(qfile_format_env(&e, &b), -1);
	qenv_free(&e);
	e.sender = strdup("a@b\r");
	qenv_add_rcpt(&e, "x@y", NULL);
	assert_int_equal(qfile_format_env(&e, &b), -1);
	qenv_free(&e);
	/* Every other value that reaches the file: a line break in any of
	   them would forge a record (issue 15: "recipient evil@z"). */
	for (int field = 0; field < 4; field++) {
		char **slot[] = { &e.notify, &e.ret, &e.envid, NULL };

		e.sender = strdup("a@b");
		qenv_add_rcpt(&e, "x@y", field == 3 ?
		    "x\nrecipient evil@z" : NULL);
		if (field < 3)
			*slot[field] = strdup("FULL\nrecipient evil@z");
		assert_int_equal(qfile_format_env(&e, &b), -1);
		assert_int_equal(b.len, 0);
		qenv_free(&e);
	}
	buf_free(&b);
}

/* Parse text that must fail, with err containing want. */
static void
expect_bad(const char *text, size_t len, const char *want)
{
	struct qenv e;
	size_t off;
	char err[256] = "";

	assert_int_equal(qfile_parse(text, len, &e, &off, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	/* A failed parse leaves nothing to free. */
	assert_null(e.rcpt);
	assert_null(e.sender);
}

/* Replace the first occurrence of from by to in the sample file. */
static void
expect_bad_edit(const char *from, const char *to, const char *want)
{
	struct buf b = BUF_INIT, o = BUF_INIT;
	char *p;

	sample_file(&b);
	p = strstr(b.data, from);
	assert_non_null(p);
	buf_add(&o, b.data, (size_t)(p - b.data));
	buf_adds(&o, to);
	buf_adds(&o, p + strlen(from));
	expect_bad(o.data, o.len, want);
	buf_free(&b);
	buf_free(&o);
}

static void
test_corrupt(void **state)
{
	struct buf b = BUF_INIT;

	sample_file(&b);
	/* Truncated in the message, in the envelope, and empty. */
	expect_bad(b.data, b.len - 3, "truncated");
	expect_bad(b.data, 40, "truncated");
	expect_bad("", 0, "truncated");
	expect_bad(NULL, 0, "truncated");
	/* Too long: bytes after the message. */
	buf_adds(&b, "x");
	expect_bad(b.data, b.len, "size mismatch");
	buf_free(&b);

	expect_bad_edit("end-of-envelope\n", "", "missing end-of-envelope");
	expect_bad_edit("POSTERN-QUEUE 1", "POSTERN-QUEUE 2", "bad version");
	expect_bad_edit("POSTERN-QUEUE 1\n", "", "bad version");
	expect_bad_edit("uid 1000", "colour blue", "unknown record");
	expect_bad_edit("size 18", "size 17", "size mismatch");
	expect_bad_edit("size 18", "size 19", "truncated");
	expect_bad_edit("size 18\n", "", "no size");
	expect_bad_edit("size 18", "size -1", "bad or duplicate size");
	expect_bad_edit("size 18", "size 18x", "bad or duplicate size");
	expect_bad_edit("recipient bob@example.com\norig-recipient bob\n"
	    "recipient carol@example.com\n", "", "no recipient");
	expect_bad_edit("arrival 1763740025.123456", "arrival -5", "arrival");
	expect_bad_edit("arrival 1763740025.123456", "arrival 1e9", "arrival");
	expect_bad_edit("arrival 1763740025.123456\n", "", "no arrival");
	expect_bad_edit("uid 1000", "uid 4294967295", "uid");
	expect_bad_edit("uid 1000", "uid ten", "uid");
	expect_bad_edit("uid 1000\n", "", "no uid");
	expect_bad_edit("sender alice@host.example\n", "", "no sender");
	expect_bad_edit("sender alice", "sender al\rice", "carriage return");
	expect_bad_edit("ret HDRS", "ret SOME", "bad ret");
	expect_bad_edit("flags 8bit", "flags 9bit", "flags");
	expect_bad_edit("notify FAILURE,DELAY\n", "notify NEVER\nnotify "
	    "DELAY\n", "duplicate notify");
	expect_bad_edit("recipient bob@example.com\n", "", "orig-recipient not");
	expect_bad_edit("recipient bob", "recipient", "malformed");
	expect_bad_edit("size 18\n", "size 18\nuid 3\n", "missing end-of-envelope");
}

/*
 * NOTIFY goes into RCPT TO as is: only NEVER or a list of SUCCESS,
 * FAILURE, DELAY parses; anything else (ESMTP parameters smuggled after
 * a space, another keyword, a repeat, an empty item) is a corrupt file.
 */
static void
test_notify_values(void **state)
{
	static const char *const good[] = { "NEVER", "never", "SUCCESS",
	    "FAILURE,DELAY", "delay,Success,FAILURE" };
	static const char *const bad[] = { "NEVER ORCPT=x X=y",
	    "FAILURE X=y", "NEVER,DELAY", "DELAY,DELAY", "FAILURE,",
	    ",FAILURE", "FAILURE,,DELAY", "SOMETIMES", "FAILURE\tX=y",
	    "NEVER=", "FAILURE,DELAY ORCPT=rfc822;x" };
	struct buf b = BUF_INIT, o = BUF_INIT;
	struct qenv e;
	char err[256], *p;
	size_t off;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		sample_file(&b);
		p = strstr(b.data, "notify FAILURE,DELAY\n");
		assert_non_null(p);
		buf_add(&o, b.data, (size_t)(p - b.data));
		buf_addf(&o, "notify %s\n", good[i]);
		buf_adds(&o, p + strlen("notify FAILURE,DELAY\n"));
		assert_int_equal(qfile_parse(o.data, o.len, &e, &off, err,
		    sizeof(err)), 0);
		assert_string_equal(e.notify, good[i]);
		qenv_free(&e);
		buf_free(&b);
		buf_free(&o);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char to[80];

		snprintf(to, sizeof(to), "notify %s\n", bad[i]);
		expect_bad_edit("notify FAILURE,DELAY\n", to, "bad notify");
		assert_int_equal(dsn_notify_valid(bad[i]), 0);
	}
	/* A bare CR: the envelope refuses it before the record is read. */
	expect_bad_edit("notify FAILURE,DELAY\n", "notify NEVER\r\n",
	    "carriage return");
}

static void
test_nul_in_envelope(void **state)
{
	const char f[] = "POSTERN-QUEUE 1\narrival 1\nuid 0\nsender a\0b\n"
	    "recipient a@b\nsize 0\nend-of-envelope\n";

	expect_bad(f, sizeof(f) - 1, "NUL");
}

/*
 * The envelope-only parse from a file's head: every prefix that holds the
 * whole envelope parses like the whole file, a shorter one asks for more,
 * and the length check uses the file's size, not the bytes read.
 */
static void
test_parse_head(void **state)
{
	struct buf b = BUF_INIT;
	struct qenv e;
	size_t off, envlen;
	char err[256];
	const char *end;

	sample_file(&b);
	end = strstr(b.data, "end-of-envelope\n");
	assert_non_null(end);
	envlen = (size_t)(end - b.data) + strlen("end-of-envelope\n");
	for (size_t len = 0; len <= b.len; len++) {
		int rc = qfile_parse_head(b.data, len, b.len, &e, &off, err,
		    sizeof(err));
		if (len < envlen) {
			assert_int_equal(rc, 1);
			assert_null(e.sender);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(off, envlen);
		assert_string_equal(e.sender, "alice@host.example");
		assert_int_equal(e.nrcpt, 2);
		assert_string_equal(e.rcpt[0].orig, "bob");
		assert_int_equal(e.size, strlen(MSG));
		qenv_free(&e);
	}
	/* The file's length must match size, whatever was read. */
	assert_int_equal(qfile_parse_head(b.data, envlen, b.len - 1, &e, &off,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));
	assert_int_equal(qfile_parse_head(b.data, envlen, b.len + 1, &e, &off,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "size mismatch"));
	/* A head that holds no marker and is the whole file is corrupt. */
	assert_int_equal(qfile_parse_head(b.data, 40, 40, &e, &off, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));
	/* A bad record in the head is found without the rest. */
	b.data[1] = 'X';
	assert_int_equal(qfile_parse_head(b.data, 30, b.len, &e, &off, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "bad version"));
	/* More bytes than the file holds is a caller error, not a parse. */
	assert_int_equal(qfile_parse_head(b.data, b.len, b.len - 1, &e, &off,
	    err, sizeof(err)), -1);
	buf_free(&b);
}

static void
test_qid_valid(void **state)
{
	assert_true(qid_valid("4F2A9C01B3"));
	assert_true(qid_valid("ABCDEF"));
	assert_false(qid_valid("ABCDE"));
	assert_false(qid_valid("4f2a9c01b3"));
	assert_false(qid_valid("4F2A9C01B3G"));
	assert_false(qid_valid(""));
	assert_false(qid_valid("../../etc"));
	assert_false(qid_valid("0123456789ABCDEF012345678"));	/* 25 */
	assert_true(qid_valid("0123456789ABCDEF01234567"));	/* 24 */
}

/* Number of entries (without . and ..) in a directory. */
static int
count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_spool_commit(void **state)
{
	char path[PATH_BUF + 64], err[256], *dir = unit_tmpdir("qfile");
	struct spool_new sn;
	struct stat st;
	struct buf got = BUF_INIT;
	mode_t old = umask(077);

	assert_int_equal(spool_create(dir, err, sizeof(err)), 0);
	umask(old);
	/* Modes are exact despite the umask, and a second run is harmless. */
	assert_int_equal(spool_path(dir, QD_NEW, path, sizeof(path)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 01770);
	assert_int_equal(spool_path(dir, QD_PUBLIC, path, sizeof(path)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(spool_create(dir, err, sizeof(err)), 0);

	assert_int_equal(spool_new_open(dir, &sn, err, sizeof(err)), 0);
	assert_true(qid_valid(sn.qid));
	assert_int_equal(spool_new_commit(&sn, "data\n", 5, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/incoming/new/%s", dir, sn.qid);
	assert_int_equal(fs_read_file(path, &got, 100), 0);
	assert_string_equal(got.data, "data\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	snprintf(path, sizeof(path), "%s/incoming/tmp", dir);
	assert_int_equal(count_entries(path), 0);

	/* An abandoned message leaves nothing behind. */
	assert_int_equal(spool_new_open(dir, &sn, err, sizeof(err)), 0);
	spool_new_abort(&sn);
	assert_int_equal(count_entries(path), 0);
	buf_free(&got);
	(void)!system((snprintf(path, sizeof(path), "rm -rf %s", dir), path));
	free(dir);
}

static void
test_spool_missing(void **state)
{
	struct spool_new sn;
	char err[256];

	assert_int_equal(spool_new_open("/nonexistent/postern", &sn, err,
	    sizeof(err)), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "No such file"));
}

/* Never replace: a commit onto an existing QID fails, tmp removed. */
static void
test_spool_noreplace(void **state)
{
	char path[PATH_BUF + 64], err[256], *dir = unit_tmpdir("qfile");
	struct spool_new sn;
	FILE *f;

	assert_int_equal(spool_create(dir, err, sizeof(err)), 0);
	assert_int_equal(spool_new_open(dir, &sn, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/%s", sn.newdir, sn.qid);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(spool_new_commit(&sn, "x\n", 2, err, sizeof(err)), -1);
	assert_int_equal(errno, EEXIST);
	snprintf(path, sizeof(path), "%s/incoming/tmp", dir);
	assert_int_equal(count_entries(path), 0);
	(void)!system((snprintf(path, sizeof(path), "rm -rf %s", dir), path));
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_null_sender),
		cmocka_unit_test(test_format_refuses_newline),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_notify_values),
		cmocka_unit_test(test_nul_in_envelope),
		cmocka_unit_test(test_parse_head),
		cmocka_unit_test(test_qid_valid),
		cmocka_unit_test(test_spool_commit),
		cmocka_unit_test(test_spool_missing),
		cmocka_unit_test(test_spool_noreplace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
