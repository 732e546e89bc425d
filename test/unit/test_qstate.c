/*
 * test_qstate.c - state records, the retry schedule, the failure policy
 * and the worker result protocol: the daemon's pure functions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <bsd/string.h>

#include "deliver/sched.h"
#include "deliver/trouble.h"
#include "deliver/worker.h"
#include "spool/qstate.h"

/* A record survives format and parse unchanged. */
static void
state_round_trip(void **unused)
{
	struct qstate s, t;
	struct buf b = BUF_INIT;
	char err[128];

	qstate_init(&s, 3);
	s.attempts = 2;
	s.last = 1763740325.5;
	qstate_set(&s, 0, RS_SENT, "2.0.0", "250 2.0.0 Ok: queued as X");
	qstate_set(&s, 2, RS_FAILED, "5.1.1", "host said: 550\nno such user");
	qstate_format(&s, &b);
	assert_int_equal(qstate_parse(b.data, b.len, 3, &t, err, sizeof(err)), 0);
	assert_int_equal(t.attempts, 2);
	assert_true(t.last > 1763740325.4 && t.last < 1763740325.6);
	assert_int_equal(t.r[0].st, RS_SENT);
	assert_int_equal(t.r[1].st, RS_PENDING);
	assert_int_equal(t.r[2].st, RS_FAILED);
	assert_string_equal(t.r[2].dsn, "5.1.1");
	/* A newline in a reason must not break the record. */
	assert_string_equal(t.r[2].text, "host said: 550 no such user");
	assert_int_equal(qstate_count(&t, RS_PENDING), 1);
	qstate_free(&s);
	qstate_free(&t);
	buf_free(&b);
}

/* Every kind of damage is refused with a reason. */
static void
state_damaged(void **unused)
{
	static const char *bad[] = {
		"",
		"POSTERN-STATE 2\nend-of-state\n",
		"POSTERN-STATE 1\nattempts 1\n",			/* truncated */
		"POSTERN-STATE 1\nrcpt 5 sent 2.0.0 x\nend-of-state\n",	/* index */
		"POSTERN-STATE 1\nrcpt 0 gone 2.0.0 x\nend-of-state\n",	/* status */
		"POSTERN-STATE 1\nrcpt x sent 2.0.0 x\nend-of-state\n",
		"POSTERN-STATE 1\nattempts -1\nend-of-state\n",
		"POSTERN-STATE 1\nwhat 1\nend-of-state\n",
		"POSTERN-STATE 1\nend-of-state\nrcpt 0 sent 2.0.0 x\n",
		/* Numbers strtod/strtol take but a record never holds. */
		"POSTERN-STATE 1\nlast inf\nend-of-state\n",
		"POSTERN-STATE 1\nlast nan\nend-of-state\n",
		"POSTERN-STATE 1\nlast 1e300\nend-of-state\n",
		"POSTERN-STATE 1\nlast 99999999999999\nend-of-state\n",
		"POSTERN-STATE 1\nlast  1.5\nend-of-state\n",
		"POSTERN-STATE 1\nlast 1.\nend-of-state\n",
		"POSTERN-STATE 1\nattempts \nend-of-state\n",
		"POSTERN-STATE 1\nattempts +1\nend-of-state\n",
		"POSTERN-STATE 1\nattempts 1.5\nend-of-state\n",
		"POSTERN-STATE 1\nwarned yes\nend-of-state\n",
		"POSTERN-STATE 1\nwarned\nend-of-state\n",
	};
	struct qstate s;
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(qstate_parse(bad[i], strlen(bad[i]), 2, &s,
		    err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
	/* An empty file read into an empty buffer arrives as NULL. */
	err[0] = '\0';
	assert_int_equal(qstate_parse(NULL, 0, 2, &s, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	/* What qstate_format writes still parses. */
	assert_int_equal(qstate_parse("POSTERN-STATE 1\nattempts 0\n"
	    "last 0.000000\nend-of-state\n", 54, 2, &s, err, sizeof(err)), 0);
	qstate_free(&s);
}

/* Schedule: min, then doubling, then max steps; always after `after`. */
static void
schedule_points(void **unused)
{
	double a = 1000;

	assert_true(sched_next_retry(a, a, 300, 4000) == a + 300);
	assert_true(sched_next_retry(a, a + 300, 300, 4000) == a + 900);
	assert_true(sched_next_retry(a, a + 900, 300, 4000) == a + 2100);
	assert_true(sched_next_retry(a, a + 2100, 300, 4000) == a + 4500);
	/* 300+600+1200+2400 = 4500, then the step is capped at 4000. */
	assert_true(sched_next_retry(a, a + 4500, 300, 4000) == a + 8500);
	assert_true(sched_next_retry(a, a + 8500, 300, 4000) == a + 12500);
	/* Far in the future: still on the grid, strictly after. */
	double t = sched_next_retry(a, a + 86400 * 30, 1, 1);
	assert_true(t > a + 86400 * 30 && t <= a + 86400 * 30 + 1);
	/* A min larger than max is clamped. */
	assert_true(sched_next_retry(a, a, 10, 5) == a + 10);
}

/* Policy: 2xx sent, 5xx bounced (or deferred with soft_bounce), 4xx
   deferred until the lifetime is over. */
static void
policy(void **unused)
{
	struct policy p = { 0, 100, 50, 1 };
	struct smtp_result r;

	memset(&r, 0, sizeof(r));
	r.kind = 2;
	assert_int_equal(trouble_decide(&p, &r, 0, 10, 0), V_SENT);
	r.kind = 5;
	assert_int_equal(trouble_decide(&p, &r, 0, 10, 0), V_BOUNCE);
	p.soft_bounce = 1;
	assert_int_equal(trouble_decide(&p, &r, 0, 10, 0), V_DEFER);
	p.soft_bounce = 0;
	r.kind = 4;
	assert_int_equal(trouble_decide(&p, &r, 0, 10, 0), V_DEFER);
	assert_int_equal(trouble_decide(&p, &r, 0, 100, 0), V_BOUNCE);
	/* A bounce message has its own, usually shorter, lifetime. */
	assert_int_equal(trouble_decide(&p, &r, 0, 60, 1), V_BOUNCE);
	assert_int_equal(trouble_decide(&p, &r, 0, 60, 0), V_DEFER);
	assert_string_equal(verdict_status(V_DEFER), "deferred");
}

/* A result with code, dsn and text, refused before or after RCPT. */
static void
result_set(struct smtp_result *r, int code, const char *dsn, int pre_rcpt,
    int login, const char *text)
{
	memset(r, 0, sizeof(*r));
	r->code = code;
	r->kind = code / 100 == 5 ? 5 : 4;
	r->pre_rcpt = pre_rcpt;
	r->login = login;
	strlcpy(r->dsn, dsn, sizeof(r->dsn));
	strlcpy(r->text, text, sizeof(r->text));
}

/* The relay's refusals (a login or TLS it wants) defer with the fix; a
   recipient's refusal, or any with smtp_sasl_auth_soft_bounce = no,
   stays permanent. */
static void
relay_refusals(void **unused)
{
	struct policy p = { 0, 100, 50, 1 };
	struct smtp_result r;

	result_set(&r, 530, "5.7.0", 1, SMTP_LOGIN_NONE, "host h said: 530 "
	    "5.7.0 Authentication required (in reply to MAIL FROM command)");
	trouble_explain(&p, &r);
	assert_int_equal(r.kind, 4);
	assert_string_equal(r.dsn, "4.7.0");
	assert_non_null(strstr(r.text, "requires a login and none was sent"));
	assert_non_null(strstr(r.text, "[host]:port"));
	assert_non_null(strstr(r.text, "530 5.7.0 Authentication required"));
	assert_int_equal(trouble_decide(&p, &r, 0, 10, 0), V_DEFER);
	/* Exchange's wording, and Postfix's STARTTLS demand. */
	result_set(&r, 550, "5.7.57", 1, SMTP_LOGIN_NONE, "host h said: 550 "
	    "5.7.57 Client not authenticated to send mail");
	trouble_explain(&p, &r);
	assert_string_equal(r.dsn, "4.7.57");
	result_set(&r, 530, "5.7.0", 1, SMTP_LOGIN_NONE, "host h said: 530 "
	    "5.7.0 Must issue a STARTTLS command first");
	trouble_explain(&p, &r);
	assert_int_equal(r.kind, 4);
	assert_non_null(strstr(r.text, "requires TLS"));
	/* 530 is "authentication required" whatever it answers. */
	result_set(&r, 530, "5.7.1", 0, SMTP_LOGIN_NONE, "host h said: 530 "
	    "5.7.1 Client was not authenticated (in reply to RCPT TO "
	    "command)");
	trouble_explain(&p, &r);
	assert_int_equal(r.kind, 4);
	assert_string_equal(r.dsn, "4.7.1");
	/* A recipient's refusal is the recipient's. */
	result_set(&r, 550, "5.7.1", 0, SMTP_LOGIN_DONE, "host h said: 550 "
	    "5.7.1 relaying denied, authenticate first");
	trouble_explain(&p, &r);
	assert_int_equal(r.kind, 5);
	/* A sender refused for another reason bounces. */
	result_set(&r, 553, "5.1.8", 1, SMTP_LOGIN_NONE, "host h said: 553 "
	    "5.1.8 sender domain does not exist");
	trouble_explain(&p, &r);
	assert_int_equal(r.kind, 5);
	/* A refused login defers; with the parameter off it bounces. */
	result_set(&r, 535, "5.7.8", 0, SMTP_LOGIN_NONE, "SASL "
	    "authentication failed; server h said: 535 5.7.8 bad");
	r.auth = 1;
	trouble_explain(&p, &r);
	assert_int_equal(r.kind, 4);
	assert_string_equal(r.dsn, "4.7.8");
	p.auth_soft_bounce = 0;
	result_set(&r, 530, "5.7.0", 1, SMTP_LOGIN_NONE, "530 5.7.0 "
	    "Authentication required");
	trouble_explain(&p, &r);
	assert_int_equal(r.kind, 5);
}

/* Worker result lines: good ones parse, broken ones are refused. */
static void
result_lines(void **unused)
{
	struct wresult r;

	assert_int_equal(worker_result_parse("R 3F2A9C01B3 2 D 4.4.1 connect "
	    "to x: refused", &r), 0);
	assert_int_equal(r.type, 'R');
	assert_string_equal(r.qid, "3F2A9C01B3");
	assert_int_equal(r.idx, 2);
	assert_int_equal(r.verdict, V_DEFER);
	assert_string_equal(r.dsn, "4.4.1");
	assert_string_equal(r.text, "connect to x: refused");
	assert_int_equal(r.relayed, 0);
	/* Sent to a relay without DSN, and the sender asked for SUCCESS. */
	assert_int_equal(worker_result_parse("R 3F2A9C01B3 0 L 2.0.0 250 ok",
	    &r), 0);
	assert_int_equal(r.verdict, V_SENT);
	assert_int_equal(r.relayed, 1);
	assert_string_equal(r.text, "250 ok");
	assert_int_equal(worker_result_parse("M 3F2A9C01B3", &r), 0);
	assert_int_equal(r.type, 'M');
	assert_int_equal(worker_result_parse("M 3F2A9C01B3 x", &r), -1);
	assert_int_equal(worker_result_parse("R 3F2A9C01B3 x S 2.0.0 ok", &r), -1);
	assert_int_equal(worker_result_parse("R 3F2A9C01B3 1 Q 2.0.0 ok", &r), -1);
	assert_int_equal(worker_result_parse("R ../etc 1 S 2.0.0 ok", &r), -1);
	assert_int_equal(worker_result_parse("X 3F2A9C01B3", &r), -1);
	assert_int_equal(worker_result_parse("", &r), -1);
}

/* The hold time of a notice survives a round trip; absent means none. */
static void
state_held(void **unused)
{
	static const char bad[] = "POSTERN-STATE 1\nheld soon\nend-of-state\n";
	struct qstate s, t;
	struct buf b = BUF_INIT;
	char err[128];

	qstate_init(&s, 1);
	qstate_format(&s, &b);
	assert_null(strstr(b.data, "held"));
	s.held = 1763740400.5;
	buf_reset(&b);
	qstate_format(&s, &b);
	assert_non_null(strstr(b.data, "\nheld 1763740400.500000\n"));
	assert_int_equal(qstate_parse(b.data, b.len, 1, &t, err, sizeof(err)),
	    0);
	assert_true(t.held == 1763740400.5);
	qstate_free(&t);
	assert_int_equal(qstate_parse(bad, strlen(bad), 1, &t, err,
	    sizeof(err)), -1);
	qstate_free(&s);
	qstate_free(&t);
	buf_free(&b);
}

/* The delay warning mark survives a round trip; absent means not sent. */
static void
state_warned(void **unused)
{
	static const char old[] = "POSTERN-STATE 1\nattempts 1\nlast 5\n"
	    "rcpt 0 deferred 4.4.1 refused\nend-of-state\n";
	struct qstate s, t;
	struct buf b = BUF_INIT;
	char err[128];

	assert_int_equal(qstate_parse(old, strlen(old), 1, &s, err,
	    sizeof(err)), 0);
	assert_int_equal(s.warned, 0);
	qstate_format(&s, &b);
	/* Without a warning the record is what it always was. */
	assert_null(strstr(b.data, "warned"));
	s.warned = 1;
	buf_reset(&b);
	qstate_format(&s, &b);
	assert_non_null(strstr(b.data, "\nwarned 1\n"));
	assert_int_equal(qstate_parse(b.data, b.len, 1, &t, err, sizeof(err)),
	    0);
	assert_int_equal(t.warned, 1);
	assert_int_equal(t.r[0].st, RS_DEFERRED);
	qstate_free(&s);
	qstate_free(&t);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(state_round_trip),
		cmocka_unit_test(state_damaged),
		cmocka_unit_test(state_warned),
		cmocka_unit_test(state_held),
		cmocka_unit_test(schedule_points),
		cmocka_unit_test(policy),
		cmocka_unit_test(relay_refusals),
		cmocka_unit_test(result_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
