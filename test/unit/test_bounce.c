/*
 * test_bounce.c - the delivery status notification builder (mail/dsn.c):
 * the report's structure, folding of long replies, 8-bit originals,
 * bounce_size_limit and -R HDRS, xtext, reasons and -N.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/dsn.h"

static const char original[] =
    "Subject: hello\n"
    "From: alice@example.org\n"
    "\n"
    "the body\n";

/* A report about one recipient with reason text. */
static void
setup_report(struct dsn_report *r, struct dsn_rcpt *rc, const char *text)
{
	memset(r, 0, sizeof(*r));
	memset(rc, 0, sizeof(*rc));
	rc->addr = "bob@example.net";
	rc->orig = "bob";
	rc->status = "5.1.1";
	rc->text = text;
	r->action = DSN_FAILED;
	r->myhostname = "client.example";
	r->qid = "ABC123";
	r->notice_qid = "DEF456";
	r->sender = "alice@example.org";
	r->envid = "env-1";
	r->arrival = 1763740000;
	r->now = 1763740100;
	r->size_limit = 50000;
	r->msg = original;
	r->msglen = strlen(original);
	r->rcpt = rc;
	r->nrcpt = 1;
}

/* The line of text that starts with prefix, or NULL. */
static const char *
line_with(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	for (;;) {
		if (strncmp(p, prefix, n) == 0)
			return p;
		if ((p = strchr(p, '\n')) == NULL)
			return NULL;
		p++;
	}
}

/* Every line at most max octets; returns the longest. */
static size_t
longest_line(const char *text)
{
	size_t best = 0, n;

	for (const char *p = text; *p; p += n + (p[n] == '\n')) {
		n = strcspn(p, "\n");
		if (n > best)
			best = n;
	}
	return best;
}

/* A plain bounce: headers, the three parts, the RFC 3464 fields. */
static void
failed_report(void **unused)
{
	struct dsn_report r;
	struct dsn_rcpt rc;
	struct buf b = BUF_INIT;
	int flags;

	setup_report(&r, &rc, "host relay.example[192.0.2.1] said: 550 5.1.1 "
	    "no such user (in reply to RCPT TO command)");
	flags = dsn_build(&r, &b);
	assert_int_equal(flags, 0);
	assert_non_null(line_with(b.data, "From: Mail Delivery System "
	    "<MAILER-DAEMON@client.example>\n"));
	assert_non_null(line_with(b.data, "To: alice@example.org\n"));
	assert_non_null(line_with(b.data, "Subject: Undelivered Mail Returned "
	    "to Sender\n"));
	assert_non_null(line_with(b.data, "Auto-Submitted: auto-replied\n"));
	assert_non_null(line_with(b.data, "MIME-Version: 1.0\n"));
	assert_non_null(line_with(b.data, "Message-ID: <1763740100.DEF456@"
	    "client.example>\n"));
	assert_non_null(line_with(b.data, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\n\tboundary=\"ABC123.1763740100/"
	    "client.example\"\n"));
	assert_non_null(line_with(b.data, "Reporting-MTA: dns; "
	    "client.example\n"));
	assert_non_null(line_with(b.data, "Original-Envelope-Id: env-1\n"));
	assert_non_null(line_with(b.data, "Arrival-Date: "));
	assert_non_null(line_with(b.data, "Final-Recipient: rfc822; "
	    "bob@example.net\n"));
	assert_non_null(line_with(b.data, "Original-Recipient: rfc822; bob\n"));
	assert_non_null(line_with(b.data, "Action: failed\n"));
	assert_non_null(line_with(b.data, "Status: 5.1.1\n"));
	assert_non_null(line_with(b.data, "Remote-MTA: dns; relay.example\n"));
	assert_non_null(line_with(b.data, "Diagnostic-Code: smtp; 550 5.1.1 "
	    "no such user\n"));
	assert_non_null(line_with(b.data, "Content-Type: message/rfc822\n"));
	assert_non_null(line_with(b.data, "Content-Transfer-Encoding: 7bit\n"));
	/* The readable part names the recipient and the reason. */
	assert_non_null(strstr(b.data, "\n<bob@example.net> (expanded from "
	    "<bob>): host"));
	assert_non_null(strstr(b.data, "\n    "));
	assert_non_null(strstr(b.data, "no such user (in reply to RCPT TO"));
	/* The whole original, then the closing boundary. */
	assert_non_null(strstr(b.data, "\n\nSubject: hello\nFrom: "
	    "alice@example.org\n\nthe body\n\n--ABC123.1763740100/"
	    "client.example--\n"));
	if (getenv("DSN_DUMP") != NULL)
		fputs(b.data, stderr);
	buf_free(&b);
}

/* A reply longer than a line is folded at spaces, never cut. */
static void
long_reply_folded(void **unused)
{
	struct dsn_report r;
	struct dsn_rcpt rc;
	struct buf b = BUF_INIT, text = BUF_INIT, unfolded = BUF_INIT;
	const char *p, *e;

	buf_adds(&text, "host relay.example[192.0.2.1] said: 550 5.7.1");
	for (int i = 0; i < 60; i++)
		buf_addf(&text, " word%02d", i);
	buf_adds(&text, " (in reply to end of DATA command)");
	setup_report(&r, &rc, text.data);
	dsn_build(&r, &b);
	assert_true(longest_line(b.data) <= 78);
	/* Unfold Diagnostic-Code: every word is there, in order. */
	p = line_with(b.data, "Diagnostic-Code: ");
	assert_non_null(p);
	for (;;) {
		e = strchr(p, '\n');
		buf_add(&unfolded, p, (size_t)(e - p));
		if (e[1] != ' ')
			break;
		p = e + 1;
	}
	assert_non_null(strstr(unfolded.data, "smtp; 550 5.7.1 word00 word01"));
	assert_non_null(strstr(unfolded.data, "word58 word59"));
	assert_null(strstr(unfolded.data, "in reply to"));
	/* A word longer than a line stays whole. */
	buf_reset(&b);
	buf_reset(&text);
	buf_adds(&text, "550 ");
	for (int i = 0; i < 120; i++)
		buf_addc(&text, 'x');
	rc.text = text.data;
	dsn_build(&r, &b);
	assert_non_null(strstr(b.data, text.data + 4));
	buf_free(&b);
	buf_free(&text);
	buf_free(&unfolded);
}

/* An 8-bit original makes the notice 8bit, and says so. */
static void
eight_bit_original(void **unused)
{
	static const char msg8[] = "Subject: gr\xc3\xbc\xc3\x9f" "e\n\n"
	    "K\xc3\xa4se\n";
	struct dsn_report r;
	struct dsn_rcpt rc;
	struct buf b = BUF_INIT;
	int flags;

	setup_report(&r, &rc, "550 no");
	r.msg = msg8;
	r.msglen = strlen(msg8);
	flags = dsn_build(&r, &b);
	assert_true(flags & DSN_8BIT);
	assert_false(flags & DSN_TRUNCATED);
	/* Top level and the returned part are 8bit; the text part is not. */
	assert_non_null(strstr(b.data, "\nContent-Transfer-Encoding: 8bit\n\n"
	    "This is a MIME"));
	assert_non_null(strstr(b.data, "Content-Type: message/rfc822\n"
	    "Content-Transfer-Encoding: 8bit\n"));
	assert_non_null(strstr(b.data, "charset=us-ascii\n"
	    "Content-Transfer-Encoding: 7bit\n"));
	assert_non_null(strstr(b.data, "K\xc3\xa4se\n"));
	buf_free(&b);
	/* An 8-bit address makes the readable part utf-8. */
	setup_report(&r, &rc, "550 no");
	rc.addr = "j\xc3\xb6rg@example.net";
	flags = dsn_build(&r, &b);
	assert_true(flags & DSN_8BIT);
	assert_non_null(strstr(b.data, "charset=utf-8\n"
	    "Content-Transfer-Encoding: 8bit\n"));
	buf_free(&b);
}

/* -R HDRS, bounce_size_limit, and delay or relayed notices: headers. */
static void
headers_only(void **unused)
{
	struct dsn_report r;
	struct dsn_rcpt rc;
	struct buf b = BUF_INIT;
	int flags;

	setup_report(&r, &rc, "550 no");
	r.ret_hdrs = 1;
	flags = dsn_build(&r, &b);
	assert_true(flags & DSN_TRUNCATED);
	assert_non_null(strstr(b.data, "Content-Type: text/rfc822-headers\n"));
	assert_non_null(strstr(b.data, "Subject: hello\n"));
	assert_null(strstr(b.data, "the body"));
	buf_free(&b);

	setup_report(&r, &rc, "550 no");
	r.size_limit = 20;	/* smaller than the message */
	flags = dsn_build(&r, &b);
	assert_true(flags & DSN_TRUNCATED);
	assert_null(strstr(b.data, "the body"));
	/* Cut at a whole line within the limit: only the Subject fits. */
	assert_non_null(strstr(b.data, "Subject: hello\n"));
	assert_null(strstr(b.data, "From: alice@example.org\n"));
	buf_free(&b);

	setup_report(&r, &rc, "451 later");
	rc.status = "4.3.0";
	r.action = DSN_DELAYED;
	r.retry_until = 1764000000;
	dsn_build(&r, &b);
	assert_non_null(line_with(b.data, "Subject: Delayed Mail (still being "
	    "retried)\n"));
	assert_non_null(line_with(b.data, "Action: delayed\n"));
	assert_non_null(line_with(b.data, "Status: 4.3.0\n"));
	assert_non_null(line_with(b.data, "Will-Retry-Until: "));
	assert_non_null(line_with(b.data, "Diagnostic-Code: smtp; 451 later\n"));
	assert_null(strstr(b.data, "the body"));
	buf_free(&b);

	setup_report(&r, &rc, "250 2.0.0 Ok: queued as X");
	rc.status = "2.0.0";
	r.action = DSN_RELAYED;
	dsn_build(&r, &b);
	assert_non_null(line_with(b.data, "Action: relayed\n"));
	assert_null(strstr(b.data, "the body"));
	buf_free(&b);
}

/* A local reason (no server) is an X-Postern diagnostic; the boundary
   never occurs in the returned message. */
static void
local_reason_and_boundary(void **unused)
{
	static const char tricky[] = "Subject: x\n\n--ABC123.1763740100/"
	    "client.example--\n";
	struct dsn_report r;
	struct dsn_rcpt rc;
	struct buf b = BUF_INIT;

	setup_report(&r, &rc, "connect to relay[192.0.2.1]:25: Connection "
	    "refused");
	rc.status = NULL;
	r.msg = tricky;
	r.msglen = strlen(tricky);
	dsn_build(&r, &b);
	assert_non_null(line_with(b.data, "Diagnostic-Code: X-Postern; "
	    "connect to relay[192.0.2.1]:25: Connection refused\n"));
	assert_null(line_with(b.data, "Remote-MTA:"));
	assert_non_null(line_with(b.data, "Status: 5.0.0\n"));
	assert_non_null(strstr(b.data, "boundary=\"ABC123.1763740100.1/"
	    "client.example\""));
	buf_free(&b);
}

/* xtext: "+", "=", space, controls and 8-bit bytes are hex-escaped. */
static void
xtext(void **unused)
{
	struct buf b = BUF_INIT;

	dsn_xtext("a+b=c d\x01\xc3\xa9~!", &b);
	assert_string_equal(b.data, "a+2Bb+3Dc+20d+01+C3+A9~!");
	buf_reset(&b);
	dsn_xtext("bob@example.com", &b);
	assert_string_equal(b.data, "bob@example.com");
	buf_free(&b);
}

/* The server and its reply out of a logged reason. */
static void
split_reason(void **unused)
{
	char mta[64], diag[256];

	dsn_split_reason("host mx.example[192.0.2.1] said: 550 5.1.1 <b>: "
	    "no (in reply to RCPT TO command)", mta, sizeof(mta), diag,
	    sizeof(diag));
	assert_string_equal(mta, "mx.example");
	assert_string_equal(diag, "550 5.1.1 <b>: no");
	dsn_split_reason("lost connection with x[1.2.3.4] while sending "
	    "DATA", mta, sizeof(mta), diag, sizeof(diag));
	assert_string_equal(mta, "");
	assert_string_equal(diag, "lost connection with x[1.2.3.4] while "
	    "sending DATA");
	dsn_split_reason(NULL, mta, sizeof(mta), diag, sizeof(diag));
	assert_string_equal(mta, "");
	assert_string_equal(diag, "");
}

/* Which notices -N asks for. */
static void
notify_words(void **unused)
{
	assert_true(dsn_notify_wants(NULL, "FAILURE"));
	assert_true(dsn_notify_wants(NULL, "DELAY"));
	assert_false(dsn_notify_wants(NULL, "SUCCESS"));
	assert_false(dsn_notify_wants("NEVER", "FAILURE"));
	assert_false(dsn_notify_wants("NEVER", "DELAY"));
	assert_true(dsn_notify_wants("SUCCESS,FAILURE", "FAILURE"));
	assert_false(dsn_notify_wants("SUCCESS,FAILURE", "DELAY"));
	assert_true(dsn_notify_wants("SUCCESS", "SUCCESS"));
	assert_false(dsn_notify_wants("DELAY", "FAILURE"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(failed_report),
		cmocka_unit_test(long_reply_folded),
		cmocka_unit_test(eight_bit_original),
		cmocka_unit_test(headers_only),
		cmocka_unit_test(local_reason_and_boundary),
		cmocka_unit_test(xtext),
		cmocka_unit_test(split_reason),
		cmocka_unit_test(notify_words),
	};

	setenv("TZ", "UTC", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
