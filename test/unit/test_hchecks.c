/*
 * test_hchecks.c - unit tests for smtp_header_checks (hchk_apply): each
 * action on header blocks with continuation lines, the actions that
 * cannot apply on the way out, texthash tables of exact header lines,
 * and a lookup error. Log lines go to stderr, captured where a test
 * checks them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "mail/hchecks.h"

/* The scratch directory and the table file of the current test. */
struct fixture {
	char	*dir;
	char	 path[512];
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->dir = unit_tmpdir("hchecks");
	snprintf(fx->path, sizeof(fx->path), "%s/header_checks", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	unlink(fx->path);
	rmdir(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

/* Write the table and open it as type:path for smtp_header_checks. */
static struct maps *
open_table(struct fixture *fx, const char *type, const char *text)
{
	char value[600], err[512];
	struct maps *m;
	FILE *f = fopen(fx->path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	snprintf(value, sizeof(value), "%s:%s", type, fx->path);
	m = maps_open("smtp_header_checks", value, err, sizeof(err));
	if (m == NULL)
		fail_msg("%s", err);
	return m;
}

/*
 * Apply m to hdr; assert the new block is want and changed is nchanged.
 * What was logged is appended to logged (when not NULL).
 */
static void
expect_apply(struct maps *m, const char *hdr, const char *want,
    int nchanged, struct buf *logged)
{
	struct unit_stderr cap;
	struct buf out = BUF_INIT, log = BUF_INIT;
	char err[512] = "";
	int rc;

	buf_adds(&out, "");
	unit_stderr_begin(&cap);
	rc = hchk_apply(m, hdr, strlen(hdr), &out, "4F2A1B", err, sizeof(err));
	unit_stderr_end(&cap, &log);
	if (rc != nchanged)
		fail_msg("expected %d changed, got %d (%s); log: %s", nchanged,
		    rc, err, log.data);
	assert_string_equal(out.data, want);
	if (logged != NULL)
		buf_adds(logged, log.data);
	else if (log.len > 0)
		fail_msg("unexpected log: %s", log.data);
	buf_free(&out);
	buf_free(&log);
}

/* Assert that s contains want. */
static void
expect_in(const char *s, const char *want)
{
	if (strstr(s, want) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", s, want);
}

/* IGNORE drops a Received: field with all its continuation lines. */
static void
test_ignore(void **state)
{
	struct maps *m = open_table(*state, "regexp",
	    "/^Received:/ IGNORE\n"
	    "/^User-Agent:/ ignore\n");

	expect_apply(m,
	    "Received: from a\n"
	    "\tby b\n"
	    "  with ESMTP; Mon, 1 Jan 2024\n"
	    "From: a@example.com\n"
	    "Received: from c\n"
	    " by d\n"
	    "User-Agent: Mutt/2.2\n"
	    "Subject: Received: not a field name\n"
	    "X-Received: kept\n",
	    "From: a@example.com\n"
	    "Subject: Received: not a field name\n"
	    "X-Received: kept\n", 3, NULL);
	/* Nothing to do: the block comes back as it was. */
	expect_apply(m, "From: a\nTo: b\n", "From: a\nTo: b\n", 0, NULL);
	expect_apply(m, "", "", 0, NULL);
	/* The last field without its line end. */
	expect_apply(m, "From: a\nReceived: x\n y", "From: a\n", 1, NULL);
	maps_free(m);
}

/*
 * The key is the whole field with "\n" between its lines: two control
 * characters (the line break and the tab) between "a" and "by".
 */
static void
test_key_is_logical_field(void **state)
{
	struct maps *m = open_table(*state, "regexp",
	    "/^Received: from a[[:cntrl:]]{2}by b$/ IGNORE\n"
	    "/^X-Two: 1$/m IGNORE\n");

	expect_apply(m,
	    "Received: from a\n\tby b\n"
	    "Received: from a\n\tby c\n",
	    "Received: from a\n\tby c\n", 1, NULL);
	/* m: ^ and $ at the line breaks inside the field. */
	expect_apply(m, "X-Two: 1\n 2\nX-Two: 2\n", "X-Two: 2\n", 1, NULL);
	maps_free(m);
}

/* REPLACE and PREPEND, with $n substitution; the text must be a field. */
static void
test_replace_prepend(void **state)
{
	struct buf logged = BUF_INIT;
	struct maps *m = open_table(*state, "regexp",
	    "/^Subject: (.*)$/ REPLACE Subject: [ext] $1\n"
	    "/^X-Mailer:/ PREPEND X-Note: mailer seen\n"
	    "/^X-Fold: (.*)/ REPLACE X-Folded: $1\n"
	    "/^X-Bad:/ REPLACE not a header\n"
	    "/^X-Empty:/ REPLACE\n"
	    "/^X-Prep-Bad:/ PREPEND : no name\n");

	expect_apply(m,
	    "Subject: hello\n"
	    "X-Mailer: thing\n"
	    "X-Fold: a\n\tb\n"
	    "To: x\n",
	    "Subject: [ext] hello\n"
	    "X-Note: mailer seen\n"
	    "X-Mailer: thing\n"
	    "X-Folded: a\n\tb\n"
	    "To: x\n", 3, NULL);
	/* The replaced field keeps its lack of a line end. */
	expect_apply(m, "To: x\nSubject: y", "To: x\nSubject: [ext] y", 1,
	    NULL);

	/* Text that is not a field would end the header block: kept. */
	expect_apply(m,
	    "X-Bad: 1\n"
	    "X-Empty: 2\n"
	    "X-Prep-Bad: 3\n",
	    "X-Bad: 1\n"
	    "X-Empty: 2\n"
	    "X-Prep-Bad: 3\n", 0, &logged);
	expect_in(logged.data, "warning: 4F2A1B: smtp_header_checks (regexp:");
	expect_in(logged.data, "REPLACE text is not a header field (\"Name: "
	    "value\"); header X-Bad: 1 kept");
	expect_in(logged.data, "header X-Empty: 2 kept");
	expect_in(logged.data, "PREPEND text is not a header field");
	assert_null(strstr(logged.data, "not a header\n"));
	buf_free(&logged);
	maps_free(m);
}

/* A $n that spans a line break with no white space after it: refused. */
static void
test_replace_broken_fold(void **state)
{
	struct buf logged = BUF_INIT;
	struct maps *m = open_table(*state, "regexp",
	    "/^X-A: (.*)$/ REPLACE X-B: $1\n");

	/* "\n\n" inside: an empty line would end the header block. */
	expect_apply(m, "X-A: a\n \n b\n", "X-A: a\n \n b\n", 0, &logged);
	expect_in(logged.data, "REPLACE text is not a header field");
	buf_free(&logged);
	maps_free(m);
}

/* WARN and INFO log the field (60 bytes, one line) and keep it. */
static void
test_warn_info(void **state)
{
	struct buf logged = BUF_INIT;
	struct maps *m = open_table(*state, "regexp",
	    "/^Subject:/ WARN subject seen\n"
	    "/^X-Info:/ INFO\tnoted\n"
	    "/^X-Quiet:/ warn\n"
	    "/^X-Ok:/ OK\n"
	    "/^X-Dunno:/ DUNNO\n");

	expect_apply(m,
	    "Subject: a very long subject line that goes on and on and on "
	    "past sixty bytes\n\tand a second line\n"
	    "X-Info: 1\n"
	    "X-Quiet: 2\n"
	    "X-Ok: 3\n"
	    "X-Dunno: 4\n",
	    "Subject: a very long subject line that goes on and on and on "
	    "past sixty bytes\n\tand a second line\n"
	    "X-Info: 1\n"
	    "X-Quiet: 2\n"
	    "X-Ok: 3\n"
	    "X-Dunno: 4\n", 0, &logged);
	expect_in(logged.data, "test_hchecks: 4F2A1B: warning: header Subject: "
	    "a very long subject line that goes on and on and on: subject "
	    "seen\n");
	expect_in(logged.data, "test_hchecks: 4F2A1B: info: header X-Info: 1: "
	    "noted\n");
	expect_in(logged.data, "test_hchecks: 4F2A1B: warning: header X-Quiet: "
	    "2\n");
	assert_null(strstr(logged.data, "X-Ok"));
	assert_null(strstr(logged.data, "X-Dunno"));
	buf_free(&logged);

	/* A folded field is shown on one line. */
	expect_apply(m, "Subject: a\n\tb\n", "Subject: a\n\tb\n", 0, &logged);
	expect_in(logged.data, "header Subject: a  b: subject seen\n");
	buf_free(&logged);
	maps_free(m);
}

/* Actions for Postfix's cleanup keep the field, with a warning each. */
static void
test_unsupported(void **state)
{
	static const char *const other[] = { "REJECT no thanks", "DISCARD",
	    "HOLD", "REDIRECT a@b", "FILTER smtp:[x]", "BCC a@b", "STRIP x",
	    "reject lower case" };
	struct buf logged = BUF_INIT, want = BUF_INIT;
	struct maps *m;
	char text[200], action[32];

	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		snprintf(text, sizeof(text), "/^Subject:/ %s\n", other[i]);
		m = open_table(*state, "regexp", text);
		expect_apply(m, "Subject: x\nSubject: y\n",
		    "Subject: x\nSubject: y\n", 0, &logged);
		snprintf(action, sizeof(action), "%.*s",
		    (int)strcspn(other[i], " "), other[i]);
		buf_reset(&want);
		buf_addf(&want, "test_hchecks: warning: 4F2A1B: "
		    "smtp_header_checks (regexp:%s): action %s does not apply "
		    "to mail on its way out; header Subject: x kept (use "
		    "IGNORE to remove a field, REPLACE or PREPEND to change "
		    "one, WARN to log it)\n", ((struct fixture *)*state)->path,
		    action);
		expect_in(logged.data, want.data);
		/* One warning per match. */
		expect_in(logged.data, "header Subject: y kept");
		buf_reset(&logged);
		maps_free(m);
	}

	/* A word that is no action at all. */
	m = open_table(*state, "regexp", "/^Subject:/ DROP it\n");
	expect_apply(m, "Subject: x\n", "Subject: x\n", 0, &logged);
	expect_in(logged.data, "unknown action \"DROP\"; header Subject: x "
	    "kept (use IGNORE, REPLACE, PREPEND, WARN, INFO or DUNNO)");
	buf_free(&logged);
	buf_free(&want);
	maps_free(m);
}

/* texthash holds exact header lines (folded keys, no white space). */
static void
test_texthash(void **state)
{
	struct maps *m = open_table(*state, "texthash",
	    "x-debug:1 IGNORE\n"
	    "mime-version:1.0 REPLACE MIME-Version: 1.0\n");

	expect_apply(m,
	    "X-Debug:1\n"
	    "X-Debug:2\n"
	    "MIME-Version:1.0\n",
	    "X-Debug:2\n"
	    "MIME-Version: 1.0\n", 2, NULL);
	maps_free(m);
}

/* A table that fails: -1, the error names table and line, out as it was. */
static void
test_lookup_error(void **state)
{
	struct fixture *fx = *state;
	struct buf out = BUF_INIT;
	struct maps *m = open_table(fx, "regexp", "/^Received:/ IGNORE\n");
	struct unit_stderr cap;
	struct buf logged = BUF_INIT;
	char err[512] = "";
	FILE *f;
	int rc;

	f = fopen(fx->path, "w");
	assert_non_null(f);
	fputs("/^Received:/ IGNORE\n/^X-Other: IGNORE\n", f);
	fclose(f);
	maps_recheck(m);
	buf_adds(&out, "before\n");
	unit_stderr_begin(&cap);
	rc = hchk_apply(m, "Received: x\nTo: y\n", 18, &out, "4F2A1B", err,
	    sizeof(err));
	unit_stderr_end(&cap, &logged);
	assert_int_equal(rc, -1);
	expect_in(err, "smtp_header_checks: regexp:");
	expect_in(err, "/header_checks: line 2: missing closing delimiter");
	assert_string_equal(out.data, "before\n");
	assert_int_equal(out.len, 7);
	buf_free(&out);
	buf_free(&logged);
	maps_free(m);
}

/* An empty parameter: nothing found, nothing changed. */
static void
test_empty(void **state)
{
	struct buf out = BUF_INIT;
	char err[512];
	struct maps *m = maps_open("smtp_header_checks", "", err, sizeof(err));

	assert_non_null(m);
	assert_int_equal(hchk_apply(m, "A: 1\nB: 2\n", 10, &out, "Q", err,
	    sizeof(err)), 0);
	assert_string_equal(out.data, "A: 1\nB: 2\n");
	buf_free(&out);
	maps_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ignore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_is_logical_field,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_prepend, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_replace_broken_fold,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_warn_info, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unsupported, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_texthash, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lookup_error, setup,
		    teardown),
		cmocka_unit_test(test_empty),
	};

	log_open("test_hchecks", LOG_DEST_CLI, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
