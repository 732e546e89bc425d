/*
 * test_addrmap.c - Postfix's search order for address tables
 * (smtp_generic_maps): which keys are tried, when partial keys apply,
 * address extensions and their propagation, how a value becomes an
 * address, and errors that stop the search.
 *
 * Tables are inline: (no files) except where a table must fail: a
 * texthash file removed after the table was opened.
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
#include "lib/xalloc.h"
#include "mail/addrmap.h"

static const char *const locals[] = { "host.localdomain", "localhost" };

/* A context like a null client's: myorigin, two more local domains. */
static struct addr_map_ctx
ctx_default(void)
{
	return (struct addr_map_ctx){
		.delims = "+",
		.myorigin = "localdomain.local",
		.local_domains = locals,
		.nlocal = 2,
		.append_at_myorigin = 1,
		.mydomain = "localdomain.local",
	};
}

/* Open the tables of smtp_generic_maps = value. */
static struct maps *
open_maps(const char *value)
{
	char err[512] = "";
	struct maps *m = maps_open("smtp_generic_maps", value, err, sizeof(err));

	if (m == NULL)
		fail_msg("%s: %s", value, err);
	return m;
}

/*
 * Look addr up; want the result want (NULL: not found), or with rc
 * MAP_ERROR an error containing want.
 */
static void
find(struct maps *m, const struct addr_map_ctx *ctx, const char *addr,
    int want_rc, const char *want)
{
	char err[512] = "", *res = (char *)"unset";
	int rc = addr_map_find(m, addr, ctx, &res, err, sizeof(err));

	if (rc != want_rc)
		fail_msg("%s: got %d (%s), want %d", addr, rc,
		    rc == MAP_FOUND ? res : err, want_rc);
	if (rc == MAP_FOUND) {
		if (strcmp(res, want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", addr, res, want);
		free(res);
		return;
	}
	assert_null(res);
	if (rc == MAP_ERROR && strstr(err, want) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", addr, err, want);
}

#define FOUND(a, w)	find(m, &ctx, a, MAP_FOUND, w)
#define NOTFOUND(a)	find(m, &ctx, a, MAP_NOTFOUND, NULL)
#define ERROR(a, w)	find(m, &ctx, a, MAP_ERROR, w)

/* generic(5)'s EXAMPLE, word for word. */
static void
test_generic_example(void **state)
{
	struct addr_map_ctx ctx = ctx_default();
	struct maps *m = open_maps("inline:{ "
	    "{his@localdomain.local = hisaccount@hisisp.example}, "
	    "{her@localdomain.local = heraccount@herisp.example}, "
	    "{@localdomain.local = hisaccount+local@hisisp.example} }");

	FOUND("his@localdomain.local", "hisaccount@hisisp.example");
	FOUND("her@localdomain.local", "heraccount@herisp.example");
	FOUND("root@localdomain.local", "hisaccount+local@hisisp.example");
	/* Keys fold case; results come back as stored. */
	FOUND("HIS@LocalDomain.Local", "hisaccount@hisisp.example");
	NOTFOUND("his@elsewhere.example");
	NOTFOUND("his");
	maps_free(m);
}

/* Each key wins over the ones after it. */
static void
test_order(void **state)
{
	struct addr_map_ctx ctx = ctx_default();
	struct maps *m;

	m = open_maps("inline:{ u+e@localhost=full@r, u@localhost=bare@r, "
	    "u+e=localext@r, u=local@r, @localhost=domain@r }");
	FOUND("u+e@localhost", "full@r");
	maps_free(m);
	m = open_maps("inline:{ u@localhost=bare@r, u+e=localext@r, "
	    "u=local@r, @localhost=domain@r }");
	FOUND("u+e@localhost", "bare@r");
	maps_free(m);
	m = open_maps("inline:{ u+e=localext@r, u=local@r, "
	    "@localhost=domain@r }");
	FOUND("u+e@localhost", "localext@r");
	maps_free(m);
	m = open_maps("inline:{ u=local@r, @localhost=domain@r }");
	FOUND("u+e@localhost", "local@r");
	maps_free(m);
	m = open_maps("inline:{ @localhost=domain@r, other@localhost=x@r }");
	FOUND("u+e@localhost", "domain@r");
	NOTFOUND("u+e@elsewhere");
	maps_free(m);
	/* Each key is tried in every table before the next key: a later
	   table's user@domain beats an earlier table's @domain. */
	m = open_maps("inline:{ @localhost=first@r }, "
	    "inline:{ u@localhost=second@r }");
	FOUND("u@localhost", "second@r");
	FOUND("v@localhost", "first@r");
	maps_free(m);
}

/* "user" keys apply only when the domain is this host's. */
static void
test_local_only(void **state)
{
	struct addr_map_ctx ctx = ctx_default();
	struct maps *m = open_maps("inline:{ root=admin@isp.example, "
	    "@remote.example=catch@isp.example }");

	FOUND("root@localdomain.local", "admin@isp.example");
	FOUND("root@LOCALHOST", "admin@isp.example");
	FOUND("root@host.localdomain.", "admin@isp.example");
	FOUND("root@host.localdomain", "admin@isp.example");
	FOUND("root", "admin@isp.example");
	FOUND("root@remote.example", "catch@isp.example");
	NOTFOUND("root@other.example");
	NOTFOUND("root@sub.localhost");
	/* With no local domains at all, only $myorigin is local. */
	ctx.nlocal = 0;
	NOTFOUND("root@localhost");
	FOUND("root@localdomain.local", "admin@isp.example");
	ctx.myorigin = NULL;
	NOTFOUND("root@localdomain.local");
	maps_free(m);
}

/* Extensions: found through a key without them, propagated on request. */
static void
test_extensions(void **state)
{
	struct addr_map_ctx ctx = ctx_default();
	struct maps *m = open_maps("inline:{ "
	    "{u@localhost = acct@isp.example}, "
	    "{v+special@localhost = special@isp.example}, "
	    "{w = w-acct@isp.example}, "
	    "{@other.example = catch+x@isp.example}, "
	    "{d@localhost = @isp.example}, "
	    "{@moved.example = @new.example} }");

	FOUND("u+foo@localhost", "acct@isp.example");
	FOUND("v+special@localhost", "special@isp.example");
	FOUND("w+foo@localhost", "w-acct@isp.example");
	FOUND("d+foo@localhost", "d@isp.example");
	FOUND("any+foo@other.example", "catch+x@isp.example");
	/* "@otherdomain" keeps the user, extension and all, when the
	   extension was not stripped to find the key. */
	FOUND("a+foo@moved.example", "a+foo@new.example");
	ctx.propagate = 1;
	FOUND("u+foo@localhost", "acct+foo@isp.example");
	FOUND("u@localhost", "acct@isp.example");
	FOUND("v+special@localhost", "special@isp.example");
	FOUND("w+foo@localhost", "w-acct+foo@isp.example");
	FOUND("d+foo@localhost", "d+foo@isp.example");
	FOUND("u+@localhost", "acct+@isp.example");
	/* @domain replaces the whole address: nothing to propagate. */
	FOUND("any+foo@other.example", "catch+x@isp.example");
	FOUND("a+foo@moved.example", "a+foo@new.example");
	/* Without a delimiter, "u+foo" is just a user. */
	ctx.delims = "";
	NOTFOUND("u+foo@localhost");
	ctx.delims = NULL;
	NOTFOUND("u+foo@localhost");
	maps_free(m);
}

/* Several delimiter characters: the first one found splits. */
static void
test_delimiters(void **state)
{
	struct addr_map_ctx ctx = ctx_default();
	struct maps *m = open_maps("inline:{ u@localhost=acct@isp.example, "
	    "owner-list@localhost=o@isp.example, "
	    "list-request@localhost=r@isp.example, "
	    "{mailer@localhost = wrong@isp.example}, "
	    "{double@localhost = wrong@isp.example}, "
	    "{@localhost = other@isp.example} }");

	ctx.delims = "+-";
	ctx.propagate = 1;
	FOUND("u-foo@localhost", "acct-foo@isp.example");
	FOUND("u+foo@localhost", "acct+foo@isp.example");
	FOUND("u+a-b@localhost", "acct+a-b@isp.example");
	FOUND("u-a+b@localhost", "acct-a+b@isp.example");
	/* Not split: owner-x and x-request when '-' delimits, reserved
	   names, and a leading delimiter. */
	FOUND("owner-list@localhost", "o@isp.example");
	FOUND("list-request@localhost", "r@isp.example");
	FOUND("owner-u@localhost", "other@isp.example");
	FOUND("mailer-daemon@localhost", "other@isp.example");
	FOUND("MAILER-DAEMON@localhost", "other@isp.example");
	FOUND("double-bounce@localhost", "other@isp.example");
	FOUND("mailer-x@localhost", "wrong-x@isp.example");
	FOUND("+u@localhost", "other@isp.example");
	FOUND("-u@localhost", "other@isp.example");
	/* With only '+', owner-x and x-request are plain names. */
	ctx.delims = "+";
	FOUND("owner-list+x@localhost", "o+x@isp.example");
	maps_free(m);
}

/* The value becomes an address as in Postfix. */
static void
test_results(void **state)
{
	struct addr_map_ctx ctx = ctx_default();
	struct maps *m = open_maps("inline:{ a@x=admin, "
	    "b@x=admin@box, "
	    "{c@x = \"John Doe\"@isp.example}, "
	    "{d@x = \"plain\"@isp.example}, "
	    "{e@x = John <john@isp.example> (J)}, "
	    "{f@x = <>}, "
	    "{g@x = not an address}, "
	    "{h@x = \"secret, \"unterminated}, "
	    "{\"q..r\"@x = quoted@isp.example}, "
	    "{q..s@x = unquoted@isp.example}, "
	    "{i@x = MixedCase@ISP.Example} }");
	struct unit_stderr cap;
	struct buf logged = BUF_INIT;

	FOUND("a@x", "admin@localdomain.local");
	FOUND("b@x", "admin@box");
	ctx.append_dot_mydomain = 1;
	FOUND("b@x", "admin@box.localdomain.local");
	ctx.append_at_myorigin = 0;
	FOUND("a@x", "admin");
	FOUND("c@x", "\"John Doe\"@isp.example");
	FOUND("d@x", "plain@isp.example");
	FOUND("e@x", "john@isp.example");
	FOUND("i@x", "MixedCase@ISP.Example");
	/* Quoted local parts are looked up in canonical form. */
	FOUND("\"q..r\"@x", "quoted@isp.example");
	FOUND("q..r@x", "quoted@isp.example");
	FOUND("q..s@x", "unquoted@isp.example");
	FOUND("\"q..s\"@x", "unquoted@isp.example");
	FOUND("\"q.\".r@x", "quoted@isp.example");
	/* A value that is not an address is an error, never shown. */
	ERROR("f@x", "inline:{...}: lookup of f@x: the "
	    "result is not an address; fix the table");
	ERROR("g@x", "not an address");
	ERROR("h@x", "not an address");
	/* Several addresses: the first, with a warning. */
	maps_free(m);
	m = open_maps("inline:{ {m@x = one@isp.example, two@isp.example} }");
	log_open("test_addrmap", LOG_DEST_CLI, NULL);
	unit_stderr_begin(&cap);
	FOUND("m@x", "one@isp.example");
	unit_stderr_end(&cap, &logged);
	if (strstr(logged.data, "lookup of m@x: the result has 2 addresses; "
	    "using the first") == NULL)
		fail_msg("logged: %s", logged.data);
	buf_free(&logged);
	maps_free(m);
}

/* The null address and unusable ones are never looked up. */
static void
test_null_and_bad(void **state)
{
	struct addr_map_ctx ctx = ctx_default();
	struct maps *m = open_maps("static:{ any@isp.example }");

	NOTFOUND("");
	FOUND("someone@anywhere", "any@isp.example");
	ERROR("a\r\nb@x", "static:{...}: cannot look up an "
	    "address with a control character or a line break");
	ERROR("a\x01@x", "control character");
	maps_free(m);

	/* No tables: nothing is found. */
	m = open_maps("");
	NOTFOUND("u+e@localhost");
	maps_free(m);
}

/* Write text to path. */
static void
write_str(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* A table that fails stops the search at the key that reached it. */
static void
test_errors_stop(void **state)
{
	struct addr_map_ctx ctx = ctx_default();
	char *dir = unit_tmpdir("addrmap"), *f, *spec;
	struct maps *m;

	f = xasprintf("%s/generic", dir);
	write_str(f, "nobody@nowhere x@y\n");
	/* u+e@localhost is in the first table; later keys in the second. */
	spec = xasprintf("inline:{ u+e@localhost=full@r, w@x=w@r }, "
	    "texthash:%s, inline:{ u@localhost=bare@r, u=local@r, "
	    "@localhost=domain@r }", f);
	m = open_maps(spec);
	FOUND("u+e@localhost", "full@r");
	FOUND("u+f@localhost", "bare@r");
	assert_int_equal(unlink(f), 0);
	maps_recheck(m);
	/* Found before the broken table is reached: fine. */
	FOUND("u+e@localhost", "full@r");
	FOUND("w@x", "w@r");
	/* Each later key would be found after it: an error instead. */
	ERROR("u+f@localhost", "smtp_generic_maps: texthash:");
	ERROR("u@localhost", "cannot stat the file");
	ERROR("z@localhost", "cannot stat the file");
	ERROR("z@other", "cannot stat the file");
	maps_free(m);
	free(spec);
	free(f);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generic_example),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_local_only),
		cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_delimiters),
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_null_and_bad),
		cmocka_unit_test(test_errors_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
