/*
 * test_qadmin.c - the pure parts of postern's queue tools: command-line
 * parsing of delete/hold/release/requeue and flush, queue ID and domain
 * validation, and requeue's undoing of alias expansion (qops_unexpand).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/qadmin_cmd.h"
#include "mail/addr.h"
#include "spool/qops.h"
#include "spool/spool.h"

#define ARGV(...)	((char *[]){ __VA_ARGS__, NULL })
#define ARGC(...)	((int)(sizeof((char *[]){ __VA_ARGS__ }) / \
			    sizeof(char *)))
#define PARSE(a, ...)	qadmin_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), \
			    (a), err, sizeof(err))

/* Queue IDs: upper-case hex, 6 to 24 digits, nothing else. */
static void
queue_ids(void **unused)
{
	assert_true(qid_valid("A1B2C3"));
	assert_true(qid_valid("4F2A9C01B3"));
	assert_true(qid_valid("0123456789ABCDEF01234567"));
	assert_false(qid_valid("0123456789ABCDEF012345678"));	/* 25 */
	assert_false(qid_valid("A1B2C"));
	assert_false(qid_valid("a1b2c3"));
	assert_false(qid_valid("A1B2C3 "));
	assert_false(qid_valid("../A1B2C3"));
	assert_false(qid_valid(""));
}

/* The accepted forms of a change command. */
static void
parse_good(void **unused)
{
	struct qadmin_args a;
	char err[200];

	assert_int_equal(PARSE(&a, "delete", "A1B2C3"), 0);
	assert_int_equal(a.op, QOP_DELETE);
	assert_int_equal(a.nids, 1);
	assert_string_equal(a.ids[0], "A1B2C3");
	assert_int_equal(a.mask, QM_ALL);
	assert_false(a.all || a.from_stdin);

	assert_int_equal(PARSE(&a, "hold", "A1B2C3", "4F2A9C01B3",
	    "deferred", "incoming"), 0);
	assert_int_equal(a.op, QOP_HOLD);
	assert_int_equal(a.nids, 2);
	assert_int_equal(a.mask, QM_DEFERRED | QM_INCOMING);

	assert_int_equal(PARSE(&a, "requeue", "ALL", "hold"), 0);
	assert_true(a.all);
	assert_int_equal(a.mask, QM_HOLD);

	assert_int_equal(PARSE(&a, "release", "-"), 0);
	assert_true(a.from_stdin);
	assert_int_equal(a.mask, QM_HOLD);	/* release: hold only */
	assert_int_equal(PARSE(&a, "release", "ALL", "hold"), 0);
}

/* Everything else is a usage error, with a reason. */
static void
parse_bad(void **unused)
{
	struct qadmin_args a;
	char err[200];

	assert_int_equal(qadmin_parse(1, ARGV("delete"), &a, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "no queue ID"));
	assert_int_equal(PARSE(&a, "delete", "all"), -1);
	assert_non_null(strstr(err, "upper case"));
	assert_int_equal(PARSE(&a, "delete", "a1b2c3"), -1);
	assert_non_null(strstr(err, "neither a queue ID"));
	assert_int_equal(PARSE(&a, "delete", "A1B2C3", "corrupt"), -1);
	assert_int_equal(PARSE(&a, "delete", "ALL", "A1B2C3"), -1);
	assert_int_equal(PARSE(&a, "delete", "ALL", "-"), -1);
	assert_int_equal(PARSE(&a, "release", "ALL", "deferred"), -1);
	assert_non_null(strstr(err, "hold queue only"));
	assert_int_equal(PARSE(&a, "remove", "A1B2C3"), -1);
	assert_int_equal(PARSE(&a, "hold", "deferred"), -1);
}

/* flush [-i QID | -s DOMAIN]. */
static void
flush_args(void **unused)
{
	struct flush_args f;
	char err[200];

	assert_int_equal(flush_parse(1, ARGV("flush"), &f, err, sizeof(err)),
	    0);
	assert_null(f.qid);
	assert_null(f.domain);
	assert_int_equal(flush_parse(3, ARGV("flush", "-i", "A1B2C3"), &f,
	    err, sizeof(err)), 0);
	assert_string_equal(f.qid, "A1B2C3");
	assert_int_equal(flush_parse(3, ARGV("flush", "-s", "example.com"),
	    &f, err, sizeof(err)), 0);
	assert_string_equal(f.domain, "example.com");
	assert_int_equal(flush_parse(2, ARGV("flush", "-i"), &f, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "needs a queue ID"));
	assert_int_equal(flush_parse(3, ARGV("flush", "-i", "x"), &f, err,
	    sizeof(err)), -1);
	assert_int_equal(flush_parse(5, ARGV("flush", "-i", "A1B2C3", "-s",
	    "a.example"), &f, err, sizeof(err)), -1);
	assert_int_equal(flush_parse(2, ARGV("flush", "now"), &f, err,
	    sizeof(err)), -1);
	assert_int_equal(flush_parse(3, ARGV("flush", "-s", "a b"), &f, err,
	    sizeof(err)), -1);
}

/* Domains for flush -s. */
static void
domains(void **unused)
{
	assert_true(flush_domain_valid("example.com"));
	assert_true(flush_domain_valid("Mail-1.Example.COM"));
	assert_true(flush_domain_valid("localhost"));
	assert_true(flush_domain_valid("[192.0.2.1]"));
	assert_true(flush_domain_valid("[IPv6:2001:db8::1]"));
	assert_false(flush_domain_valid(""));
	assert_false(flush_domain_valid(".example.com"));
	assert_false(flush_domain_valid("example..com"));
	assert_false(flush_domain_valid("example.com."));
	assert_false(flush_domain_valid("a b"));
	assert_false(flush_domain_valid("user@example.com"));
	assert_false(flush_domain_valid("exa\nmple"));
	assert_false(flush_domain_valid("[]"));
}

/* IDs as mailq prints them, pasted or piped. */
static void
clean_ids(void **unused)
{
	char a[] = "  4F2A9C01B3*\n", b[] = "A1B2C3!\r\n", c[] = "\t\n";

	assert_string_equal(qadmin_clean_id(a), "4F2A9C01B3");
	assert_string_equal(qadmin_clean_id(b), "A1B2C3");
	assert_string_equal(qadmin_clean_id(c), "");
}

/* Queue names and the words of each operation. */
static void
names(void **unused)
{
	assert_int_equal(qops_queue_bit("incoming"), QM_INCOMING);
	assert_int_equal(qops_queue_bit("hold"), QM_HOLD);
	assert_int_equal(qops_queue_bit("corrupt"), 0);
	assert_int_equal(qops_dir_bit(QD_DEFERRED), QM_DEFERRED);
	assert_int_equal(qops_dir_bit(QD_STATE), 0);
	assert_int_equal(qops_from_name("requeue"), QOP_REQUEUE);
	assert_int_equal(qops_from_name("flush"), -1);
	assert_string_equal(qops_log_text(QOP_DELETE), "removed");
	assert_string_equal(qops_done_text(QOP_RELEASE), "released from hold");
}

static const struct addr_rewrite rw = {
	.myorigin = "client.example", .mydomain = "example",
	.append_at_myorigin = 1, .append_dot_mydomain = 0,
};

/*
 * root (given as "root") was expanded to a@x and b@y; bob@z was given
 * as is. a@x was delivered, b@y and bob@z deferred.
 */
static void
unexpand_partial(void **unused)
{
	struct qenv in, out;
	struct qstate st, ost;

	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.sender = strdup("cron@client.example");
	in.flags = QF_EXPANDED | QF_8BIT;
	qenv_add_rcpt(&in, "a@x.example", "root");
	qenv_add_rcpt(&in, "b@y.example", "root");
	qenv_add_rcpt(&in, "bob@z.example", NULL);
	qstate_init(&st, 3);
	st.attempts = 4;
	st.last = 1763740325;
	qstate_set(&st, 0, RS_SENT, "2.0.0", "250 ok");
	qstate_set(&st, 1, RS_DEFERRED, "4.2.1", "try later");
	qstate_set(&st, 2, RS_DEFERRED, "4.4.1", "refused");

	assert_int_equal(qops_unexpand(&in, &st, &rw, &out, &ost), 1);
	assert_int_equal(out.flags, QF_8BIT);	/* expanded cleared */
	assert_string_equal(out.sender, "cron@client.example");
	assert_int_equal(out.nrcpt, 3);
	/* The delivered one stays, with its status. */
	assert_string_equal(out.rcpt[0].addr, "a@x.example");
	assert_int_equal(ost.r[0].st, RS_SENT);
	assert_string_equal(ost.r[0].text, "250 ok");
	/* The other alias target goes back to the name it came from. */
	assert_string_equal(out.rcpt[1].addr, "root@client.example");
	assert_string_equal(out.rcpt[1].orig, "root");
	assert_int_equal(ost.r[1].st, RS_PENDING);
	assert_null(ost.r[1].text);
	/* Not from an alias: kept, its reason and backoff reset. */
	assert_string_equal(out.rcpt[2].addr, "bob@z.example");
	assert_null(out.rcpt[2].orig);
	assert_int_equal(ost.r[2].st, RS_PENDING);
	assert_int_equal(ost.attempts, 0);
	assert_true(ost.last == 0);
	qenv_free(&in);
	qenv_free(&out);
	qstate_free(&st);
	qstate_free(&ost);
}

/*
 * Three targets of one alias, none done, and a recipient qualified by
 * sendmail (orig-recipient "carol"), not expanded: one "root" comes
 * back, carol stays.
 */
static void
unexpand_whole(void **unused)
{
	struct qenv in, out;
	struct qstate st, ost;

	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	in.sender = strdup("");
	in.flags = QF_EXPANDED;
	qenv_add_rcpt(&in, "a@x.example", "root@client.example");
	qenv_add_rcpt(&in, "carol@client.example", "carol");
	qenv_add_rcpt(&in, "b@y.example", "root@client.example");
	qenv_add_rcpt(&in, "c@y.example", "root@client.example");
	qstate_init(&st, 4);
	assert_int_equal(qops_unexpand(&in, &st, &rw, &out, &ost), 1);
	assert_int_equal(out.nrcpt, 2);
	assert_string_equal(out.rcpt[0].addr, "root@client.example");
	assert_null(out.rcpt[0].orig);
	assert_string_equal(out.rcpt[1].addr, "carol@client.example");
	assert_string_equal(out.rcpt[1].orig, "carol");
	assert_int_equal(qstate_count(&ost, RS_PENDING), 2);
	qenv_free(&in);
	qenv_free(&out);
	qstate_free(&st);
	qstate_free(&ost);

	/* A message never expanded is left as it is. */
	memset(&in, 0, sizeof(in));
	in.sender = strdup("x@client.example");
	qenv_add_rcpt(&in, "a@x.example", "a@x.example.");
	qstate_init(&st, 1);
	assert_int_equal(qops_unexpand(&in, &st, &rw, &out, &ost), 0);
	assert_int_equal(out.nrcpt, 1);
	assert_string_equal(out.rcpt[0].addr, "a@x.example");
	qenv_free(&in);
	qenv_free(&out);
	qstate_free(&st);
	qstate_free(&ost);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(queue_ids),
		cmocka_unit_test(parse_good),
		cmocka_unit_test(parse_bad),
		cmocka_unit_test(flush_args),
		cmocka_unit_test(domains),
		cmocka_unit_test(clean_ids),
		cmocka_unit_test(names),
		cmocka_unit_test(unexpand_partial),
		cmocka_unit_test(unexpand_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
