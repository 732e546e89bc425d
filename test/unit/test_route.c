/*
 * test_route.c - unit tests for the router: transport(5)'s lookup order
 * and results, sender_dependent_relayhost_maps' order, relayhost, and
 * alias expansion (recursion, loops, duplicates, extensions, entries
 * that cannot be followed). Tables are inline: and regexp-free, so no
 * files are needed.
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

#include "conf/config.h"
#include "deliver/route.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "spool/qfile.h"

/* A router from name=value pairs on top of the defaults. */
static void
router_with(struct router *r, const char *const *kv)
{
	struct config *cf = config_defaults();
	char err[512];

	assert_int_equal(config_set(cf, "myhostname", "host.example", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(cf, "mydomain", "example", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(cf, "alias_maps", "", err, sizeof(err)), 0);
	for (; kv[0] != NULL; kv += 2)
		if (config_set(cf, kv[0], kv[1], err, sizeof(err)) < 0)
			fail_msg("%s: %s", kv[0], err);
	if (router_init(r, cf, err, sizeof(err)) < 0)
		fail_msg("router_init: %s", err);
	config_free(cf);
}

/* Route rcpt from sender; the route. */
static struct route
resolve(struct router *r, const char *sender, const char *rcpt)
{
	struct route rt;
	char err[512];

	if (route_resolve(r, sender, rcpt, &rt, err, sizeof(err)) < 0)
		fail_msg("route_resolve(%s): %s", rcpt, err);
	return rt;
}

static void
test_transport_order(void **state)
{
	static const char *const kv[] = {
		"relayhost", "[relay.example]:587",
		"recipient_delimiter", "+",
		"transport_maps", "inline:{ "
		    "{boss+x@example.com = smtp:[full-ext]}, "
		    "{boss@example.com = smtp:[full]}, "
		    "{example.com = smtp:[domain]}, "
		    "{.example.org = smtp:[parent]}, "
		    "{* = smtp:[star]} }",
		NULL };
	struct router r;
	struct route rt;

	(void)state;
	router_with(&r, kv);
	rt = resolve(&r, "a@b", "boss+x@example.com");
	assert_string_equal(rt.nexthop, "[full-ext]");
	assert_string_equal(rt.key, "boss+x@example.com");
	rt = resolve(&r, "a@b", "boss+y@example.com");
	assert_string_equal(rt.nexthop, "[full]");
	assert_string_equal(rt.key, "boss@example.com");
	rt = resolve(&r, "a@b", "other@example.com");
	assert_string_equal(rt.nexthop, "[domain]");
	rt = resolve(&r, "a@b", "x@deep.sub.example.org");
	assert_string_equal(rt.nexthop, "[parent]");
	assert_string_equal(rt.key, ".example.org");
	/* The bare parent domain does not match ".example.org". */
	rt = resolve(&r, "a@b", "x@example.org");
	assert_string_equal(rt.nexthop, "[star]");
	assert_string_equal(rt.source, "transport_maps");
	router_free(&r);
}

static void
test_transport_results(void **state)
{
	static const char *const kv[] = {
		"relayhost", "[relay.example]",
		"transport_maps", "inline:{ "
		    "{e.example = error:5.1.2 no such domain}, "
		    "{e2.example = error:}, "
		    "{r.example = retry:4.4.1 later}, "
		    "{d.example = discard:}, "
		    "{l.example = local:}, "
		    "{s.example = smtp:}, "
		    "{n.example = :[nexthop.example]:25}, "
		    "{bad.example = smtp:[unclosed} }",
		NULL };
	struct router r;
	struct route rt;

	(void)state;
	router_with(&r, kv);
	rt = resolve(&r, "a@b", "x@e.example");
	assert_int_equal(rt.kind, RT_ERROR);
	assert_string_equal(rt.dsn, "5.1.2");
	assert_string_equal(rt.text, "no such domain");
	rt = resolve(&r, "a@b", "x@e2.example");
	assert_int_equal(rt.kind, RT_ERROR);
	assert_string_equal(rt.dsn, "5.0.0");
	rt = resolve(&r, "a@b", "x@r.example");
	assert_int_equal(rt.kind, RT_RETRY);
	assert_string_equal(rt.dsn, "4.4.1");
	rt = resolve(&r, "a@b", "x@d.example");
	assert_int_equal(rt.kind, RT_DISCARD);
	rt = resolve(&r, "a@b", "x@l.example");
	assert_int_equal(rt.kind, RT_RETRY);
	assert_non_null(strstr(rt.text, "\"local\" transport"));
	/* smtp: without a next hop falls through to relayhost. */
	rt = resolve(&r, "a@b", "x@s.example");
	assert_int_equal(rt.kind, RT_RELAY);
	assert_string_equal(rt.nexthop, "[relay.example]");
	assert_string_equal(rt.source, "relayhost");
	rt = resolve(&r, "a@b", "x@n.example");
	assert_string_equal(rt.nexthop, "[nexthop.example]:25");
	rt = resolve(&r, "a@b", "x@bad.example");
	assert_int_equal(rt.kind, RT_RETRY);
	assert_non_null(strstr(rt.text, "bad relay \"[unclosed\" from "
	    "transport_maps"));
	router_free(&r);
}

static void
test_sender_dependent_order(void **state)
{
	static const char *const kv[] = {
		"relayhost", "[default.example]",
		"sender_dependent_relayhost_maps", "inline:{ "
		    "{alice@work.example = [alice.relay]}, "
		    "{@work.example = [work.relay]}, "
		    "{dunno@work.example = DUNNO}, "
		    "{<> = [bounce.relay]} }",
		NULL };
	struct router r;
	struct route rt;

	(void)state;
	router_with(&r, kv);
	rt = resolve(&r, "Alice@Work.Example", "x@y");
	assert_string_equal(rt.nexthop, "[alice.relay]");
	rt = resolve(&r, "bob@work.example", "x@y");
	assert_string_equal(rt.nexthop, "[work.relay]");
	assert_string_equal(rt.key, "@work.example");
	rt = resolve(&r, "dunno@work.example", "x@y");
	assert_string_equal(rt.nexthop, "[default.example]");
	rt = resolve(&r, "", "x@y");
	assert_string_equal(rt.nexthop, "[bounce.relay]");
	rt = resolve(&r, "carol@home.example", "x@y");
	assert_string_equal(rt.nexthop, "[default.example]");
	assert_string_equal(rt.source, "relayhost");
	router_free(&r);
}

static void
test_no_relayhost(void **state)
{
	static const char *const kv[] = { NULL };
	struct router r;
	struct route rt;

	(void)state;
	router_with(&r, kv);
	rt = resolve(&r, "a@b", "x@y");
	assert_int_equal(rt.kind, RT_RETRY);
	assert_non_null(strstr(rt.text, "no relayhost is configured"));
	router_free(&r);
}

/* Expand rcpts (NULL-terminated addr, orig pairs); the result list. */
static int
expand(struct router *r, const char *const *rcpts, struct qenv *out)
{
	struct qenv in;
	char err[512];
	int rc;

	memset(&in, 0, sizeof(in));
	memset(out, 0, sizeof(*out));
	for (; rcpts[0] != NULL; rcpts += 2)
		qenv_add_rcpt(&in, rcpts[0], rcpts[1]);
	rc = route_expand(r, &in, out, NULL, NULL, err, sizeof(err));
	qenv_free(&in);
	return rc;
}

static void
test_alias_expansion(void **state)
{
	static const char *const kv[] = {
		"recipient_delimiter", "+",
		"mydestination", "other.local",
		"alias_maps", "inline:{ "
		    "{root = admin, ops}, "
		    "{admin = a@x.example, root}, "
		    "{ops = a@x.example, \"b c\"@y.example}, "
		    "{cmd = |/bin/true}, "
		    "{list = joe} }",
		NULL };
	static const char *const r1[] = { "root@host.example", "root", NULL };
	static const char *const r2[] = { "ops+tag@other.local", NULL,
	    "remote@elsewhere.example", NULL, "cmd@localhost", NULL,
	    "list@host.example", NULL, NULL };
	struct router r;
	struct qenv out;

	(void)state;
	router_with(&r, kv);
	assert_int_equal(expand(&r, r1, &out), 1);
	assert_int_equal(out.nrcpt, 3);
	assert_string_equal(out.rcpt[0].addr, "a@x.example");
	assert_string_equal(out.rcpt[0].orig, "root");
	/* root, met again under admin, stays root. */
	assert_string_equal(out.rcpt[1].addr, "root@host.example");
	assert_string_equal(out.rcpt[2].addr, "\"b c\"@y.example");
	qenv_free(&out);

	{
		struct unit_stderr cap;
		struct buf log = BUF_INIT;
		unit_stderr_begin(&cap);
		assert_int_equal(expand(&r, r2, &out), 1);
		unit_stderr_end(&cap, &log);
		assert_non_null(strstr(log.data, "delivers to a command"));
		buf_free(&log);
	}
	assert_int_equal(out.nrcpt, 5);
	/* ops+tag found as ops; no extension carried over by default. */
	assert_string_equal(out.rcpt[0].addr, "a@x.example");
	assert_string_equal(out.rcpt[0].orig, "ops+tag@other.local");
	assert_string_equal(out.rcpt[2].addr, "remote@elsewhere.example");
	assert_null(out.rcpt[2].orig);
	/* An alias with nothing to follow keeps the name. */
	assert_string_equal(out.rcpt[3].addr, "cmd@localhost");
	/* A bare name in an alias gets @$myorigin and is local again. */
	assert_string_equal(out.rcpt[4].addr, "joe@host.example");
	qenv_free(&out);
	router_free(&r);
}

static void
test_alias_too_deep(void **state)
{
	char big[4096] = "inline:{ ";
	const char *kv[] = { "alias_maps", big, NULL };
	static const char *const r1[] = { "a0@host.example", NULL, NULL };
	struct router r;
	struct qenv in, out;
	char err[512];

	(void)state;
	for (int i = 0; i < 30; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big),
		    "{a%d = a%d}, ", i, i + 1);
	strcat(big, "}");
	router_with(&r, kv);
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	qenv_add_rcpt(&in, r1[0], NULL);
	assert_int_equal(route_expand(&r, &in, &out, NULL, NULL, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "nested more than"));
	qenv_free(&in);
	qenv_free(&out);
	router_free(&r);
}

/* Shared aliases are expanded once per message, not once per path. */
static void
test_alias_shared_once(void **state)
{
	char big[8192] = "inline:{ ";
	const char *kv[] = { "alias_maps", big, NULL };
	static const char *const r1[] = { "l0@host.example", NULL, NULL };
	struct router r;
	struct qenv out;

	(void)state;
	/* l0 -> l1, l1, l1 ... l14 -> l15 (three ways); l15 -> you: 3^15 paths. */
	for (int i = 0; i < 15; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big),
		    "{l%d = l%d, l%d@host.example, l%d@localhost}, ", i, i + 1,
		    i + 1, i + 1);
	strcat(big, "{l15 = you@example.com} }");
	router_with(&r, kv);
	assert_int_equal(expand(&r, r1, &out), 1);
	assert_int_equal(out.nrcpt, 1);
	assert_string_equal(out.rcpt[0].addr, "you@example.com");
	qenv_free(&out);
	router_free(&r);
}

static void
test_is_local(void **state)
{
	static const char *const kv[] = { "mydestination", "Other.Local", NULL };
	struct router r;

	(void)state;
	router_with(&r, kv);
	assert_true(router_is_local(&r, "x@HOST.example", NULL));
	assert_true(router_is_local(&r, "x@localhost", NULL));
	assert_true(router_is_local(&r, "x@localhost.example", NULL));
	assert_true(router_is_local(&r, "x@other.local", NULL));
	assert_true(router_is_local(&r, "x@remote.example", "x"));
	assert_false(router_is_local(&r, "x@remote.example", NULL));
	assert_false(router_is_local(&r, "x@remote.example", "x@remote.example"));
	router_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transport_order),
		cmocka_unit_test(test_transport_results),
		cmocka_unit_test(test_sender_dependent_order),
		cmocka_unit_test(test_no_relayhost),
		cmocka_unit_test(test_alias_expansion),
		cmocka_unit_test(test_alias_too_deep),
		cmocka_unit_test(test_alias_shared_once),
		cmocka_unit_test(test_is_local),
	};

	log_open("test_route", LOG_DEST_STDERR, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
