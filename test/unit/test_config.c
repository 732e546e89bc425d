/*
 * test_config.c - unit tests for main.cf parsing, $name expansion, time
 * units, the parameter table and config_load on a temporary directory.
 *
 * The parser and the expander are pure functions, so most cases feed
 * them text directly; config_load gets a real directory under /tmp.
 * Warnings go to stderr, which the tests capture in a file to check that
 * an unknown parameter is reported with its file and line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "conf/params.h"
#include "lib/buf.h"
#include "lib/log.h"

/* Settings seen by the maincf_parse callback, as "line:name=value;". */
struct seen {
	struct buf	text;
	int		calls;
};

/* maincf_parse callback: record the setting. */
static void
record(void *arg, int lineno, const char *name, const char *value)
{
	struct seen *s = arg;

	buf_addf(&s->text, "%d:%s=%s;", lineno, name, value);
	s->calls++;
}

/* Parse text; returns maincf_parse's result, settings in *s. */
static int
parse(const char *text, struct seen *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	buf_adds(&s->text, "");
	return maincf_parse(text, strlen(text), record, s, err, errlen);
}

/* Comments and blank lines are skipped, values are trimmed. */
static void
test_parse_comments(void **state)
{
	struct seen s;
	char err[256];

	assert_int_equal(parse("# a comment\n\nrelayhost =  [a]:587  \n"
	    "   # indented comment\nmyorigin=example.com", &s, err,
	    sizeof(err)), 0);
	assert_string_equal(s.text.data,
	    "3:relayhost=[a]:587;5:myorigin=example.com;");
	buf_free(&s.text);
}

/* Lines starting with white space continue the previous setting. */
static void
test_parse_continuation(void **state)
{
	struct seen s;
	char err[256];

	assert_int_equal(parse("mydestination = a,\n  b,\n\n# c\n\tc\n"
	    "relayhost = x\r\n", &s, err, sizeof(err)), 0);
	assert_string_equal(s.text.data,
	    "1:mydestination=a, b, c;6:relayhost=x;");
	buf_free(&s.text);

	assert_int_equal(parse("  relayhost = x\n", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "line 1"));
	buf_free(&s.text);
}

/* Every setting reaches the callback; the loader keeps the last. */
static void
test_parse_later_wins(void **state)
{
	struct seen s;
	char err[256];

	assert_int_equal(parse("relayhost = a\nrelayhost = b\n", &s, err,
	    sizeof(err)), 0);
	assert_int_equal(s.calls, 2);
	assert_string_equal(s.text.data, "1:relayhost=a;2:relayhost=b;");
	buf_free(&s.text);
}

/* Syntax errors name the line. */
static void
test_parse_errors(void **state)
{
	struct seen s;
	char err[256];

	assert_int_equal(parse("relayhost = a\nfoo\n", &s, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "missing '='"));
	buf_free(&s.text);

	assert_int_equal(parse("bad-name = 1\n", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad parameter name"));
	buf_free(&s.text);

	assert_int_equal(parse(" = 1\n", &s, err, sizeof(err)), -1);
	buf_free(&s.text);

	assert_int_equal(parse("= 1\n", &s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing parameter name"));
	buf_free(&s.text);

	/* An embedded NUL is refused, not treated as the end. */
	static const char nul[] = "relayhost = a\nmyorigin = b\0c\n";
	memset(&s, 0, sizeof(s));
	assert_int_equal(maincf_parse(nul, sizeof(nul) - 1, record, &s, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "NUL"));
	buf_free(&s.text);
}

/* Expand text with cf and compare; NULL want means an error. */
static void
expect_expand(const struct config *cf, const char *text, const char *want)
{
	char err[256];
	char *got = conf_expand(cf, text, err, sizeof(err));

	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* $name, ${name}, $(name), $$ and unknown names. */
static void
test_expand_forms(void **state)
{
	struct config *cf = config_defaults();
	char err[256];

	assert_int_equal(config_set(cf, "relayhost", "[smtp.example]:587",
	    err, sizeof(err)), 0);
	expect_expand(cf, "$relayhost", "[smtp.example]:587");
	expect_expand(cf, "<${relayhost}>", "<[smtp.example]:587>");
	expect_expand(cf, "<$(relayhost)>", "<[smtp.example]:587>");
	expect_expand(cf, "$relayhost.x", "[smtp.example]:587.x");
	expect_expand(cf, "cost $$5", "cost $5");
	expect_expand(cf, "$no_such_parameter!", "!");
	expect_expand(cf, "trailing $", "trailing $");
	expect_expand(cf, "${relayhost", NULL);
	/* Defaults refer to other parameters: myorigin is $myhostname. */
	expect_expand(cf, "$myorigin", conf_str(cf, "myhostname"));
	config_free(cf);
}

/* ${name?text} and ${name:text}. */
static void
test_expand_conditional(void **state)
{
	struct config *cf = config_defaults();
	char err[256];

	/* relayhost is empty by default. */
	expect_expand(cf, "[${relayhost?set}]", "[]");
	expect_expand(cf, "[${relayhost:unset}]", "[unset]");
	expect_expand(cf, "[$(relayhost:unset)]", "[unset]");
	assert_int_equal(config_set(cf, "relayhost", "r", err, sizeof(err)), 0);
	expect_expand(cf, "[${relayhost?set $relayhost}]", "[set r]");
	expect_expand(cf, "[${relayhost:unset}]", "[]");
	expect_expand(cf, "${relayhost?{$relayhost}}", "{r}");
	config_free(cf);
}

/* A reference loop is an error, not a hang or a crash. */
static void
test_expand_loop(void **state)
{
	struct config *cf = config_defaults();
	char err[256];

	assert_int_equal(config_set(cf, "myorigin", "$smtp_helo_name", err,
	    sizeof(err)), 0);
	assert_int_equal(config_set(cf, "smtp_helo_name", "x$myorigin", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "loop"));
	expect_expand(cf, "$myorigin", NULL);
	config_free(cf);
}

/* Times: bare numbers in the parameter's unit, and every suffix. */
static void
test_parse_time(void **state)
{
	long long v = -1;

	assert_int_equal(conf_parse_time("10", 's', &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(conf_parse_time("5", 'd', &v), 0);
	assert_int_equal(v, 5 * 86400);
	assert_int_equal(conf_parse_time("30s", 'd', &v), 0);
	assert_int_equal(v, 30);
	assert_int_equal(conf_parse_time("5m", 's', &v), 0);
	assert_int_equal(v, 300);
	assert_int_equal(conf_parse_time("2h", 's', &v), 0);
	assert_int_equal(v, 7200);
	assert_int_equal(conf_parse_time("1w", 's', &v), 0);
	assert_int_equal(v, 604800);
	assert_int_equal(conf_parse_time("0", 's', &v), 0);
	assert_int_equal(v, 0);

	assert_int_equal(conf_parse_time("", 's', &v), -1);
	assert_int_equal(conf_parse_time("s", 's', &v), -1);
	assert_int_equal(conf_parse_time("-5", 's', &v), -1);
	assert_int_equal(conf_parse_time(" 5", 's', &v), -1);
	assert_int_equal(conf_parse_time("5x", 's', &v), -1);
	assert_int_equal(conf_parse_time("5mm", 's', &v), -1);
	assert_int_equal(conf_parse_time("5 m", 's', &v), -1);
	assert_int_equal(conf_parse_time("99999999999999999999", 's', &v), -1);
	assert_int_equal(conf_parse_time("9223372036854775807w", 's', &v), -1);
}

/* The table is sorted (param_find is a bsearch) and self-consistent. */
static void
test_table(void **state)
{
	const struct param_def *t;
	size_t n;

	t = param_table(&n);
	assert_true(n > 10);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			assert_true(strcmp(t[i - 1].name, t[i].name) < 0);
		assert_ptr_equal(param_find(t[i].name), &t[i]);
		/* Only computed defaults lack a default text. */
		assert_true((t[i].def == NULL) == !!(t[i].flags & PF_COMPUTED));
		if (t[i].type == PT_INT || t[i].type == PT_TIME)
			assert_true(t[i].min <= t[i].max);
	}
	assert_null(param_find("no_such_parameter"));
	assert_null(param_find(""));
	assert_string_equal(param_find("smtp_tls_security_level")->def,
	    "verify");
}

/* Every default loads and types check; computed ones are filled in. */
static void
test_defaults_load(void **state)
{
	struct config *cf = config_defaults();
	const struct param_def *t;
	size_t n;

	t = param_table(&n);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(conf_raw(cf, t[i].name));
		assert_non_null(conf_str(cf, t[i].name));
		assert_int_equal(conf_is_set(cf, t[i].name), 0);
	}
	assert_true(strchr(conf_str(cf, "myhostname"), '.') != NULL);
	assert_int_equal(conf_time(cf, "maximal_queue_lifetime"), 5 * 86400);
	assert_int_equal(conf_time(cf, "minimal_backoff_time"), 300);
	assert_int_equal(conf_int(cf, "smtp_destination_concurrency_limit"),
	    conf_int(cf, "default_destination_concurrency_limit"));
	assert_int_equal(conf_bool(cf, "append_at_myorigin"), 1);
	assert_string_equal(conf_raw(cf, "myorigin"), "$myhostname");
	config_free(cf);
}

/* A fresh directory holding main.cf with text; returns its path. */
static char *
make_confdir(const char *text)
{
	char path[300], *dir = unit_tmpdir("config");
	FILE *f;

	if (text != NULL) {
		snprintf(path, sizeof(path), "%s/main.cf", dir);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(text, f);
		assert_int_equal(fclose(f), 0);
	}
	return dir;
}

/* Remove what make_confdir made. */
static void
remove_confdir(char *dir)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/main.cf", dir);
	unlink(path);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

/* Load text as main.cf; stderr goes to a buffer. Returns the config. */
static struct config *
load_text(const char *text, char *err, size_t errlen, struct buf *logged)
{
	char *dir = make_confdir(text);
	struct unit_stderr cap;
	struct config *cf;

	unit_stderr_begin(&cap);
	cf = config_load(dir, err, errlen);
	unit_stderr_end(&cap, logged);
	remove_confdir(dir);
	return cf;
}

/* An unknown parameter is a warning naming file and line, not a failure. */
static void
test_load_unknown_warns(void **state)
{
	struct buf logged = BUF_INIT;
	char err[512];
	struct config *cf;

	cf = load_text("relayhost = a\n# x\nno_such_thing = 1\nrelayhost = b\n",
	    err, sizeof(err), &logged);
	assert_non_null(cf);
	assert_non_null(strstr(logged.data, "main.cf, line 3"));
	assert_non_null(strstr(logged.data, "no_such_thing"));
	assert_string_equal(conf_str(cf, "relayhost"), "b");
	assert_int_equal(conf_is_set(cf, "relayhost"), 1);
	assert_int_equal(conf_is_set(cf, "myorigin"), 0);
	config_free(cf);
	buf_free(&logged);
}

/* Load text that must fail; err must contain every string in want. */
static void
expect_load_error(const char *text, const char *want1, const char *want2)
{
	struct buf logged = BUF_INIT;
	char err[512];
	struct config *cf;

	err[0] = '\0';
	cf = load_text(text, err, sizeof(err), &logged);
	assert_null(cf);
	if (strstr(err, want1) == NULL || strstr(err, want2) == NULL)
		fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, want1,
		    want2);
	buf_free(&logged);
}

/* Bad typed values name the file, the line and the parameter. */
static void
test_load_bad_values(void **state)
{
	expect_load_error("relayhost = a\n\nsoft_bounce = maybe\n",
	    "main.cf line 3", "soft_bounce");
	expect_load_error("default_process_limit = 12x\n",
	    "main.cf line 1", "default_process_limit");
	expect_load_error("default_process_limit = 0\n",
	    "main.cf line 1", "from 1 to 1000");
	expect_load_error("# c\nmaximal_queue_lifetime = 5y\n",
	    "main.cf line 2", "maximal_queue_lifetime");
	expect_load_error("relayhost\n", "main.cf", "line 1");
	expect_load_error("myorigin = $mydomain\nmydomain = $myorigin\n",
	    "main.cf line", "loop");
	/* Names: a path is a file to read; what is left must be a domain. */
	expect_load_error("myorigin = /nonexistent/mailname\n",
	    "main.cf line 1: myorigin = /nonexistent/mailname", "cannot read");
	expect_load_error("myhostname = a..b\n", "main.cf line 1",
	    "myhostname = a..b is not a domain name");
	expect_load_error("mydomain = -\n", "main.cf line 1",
	    "mydomain = - is not a domain name");
	expect_load_error("myorigin =\n", "main.cf line 1",
	    "not a domain name");
}

/* myorigin = /etc/mailname: the first line, trimmed, is the name. */
static void
test_name_from_file(void **state)
{
	char err[512], path[300], text[400], *dir = make_confdir(NULL);
	struct buf logged = BUF_INIT;
	struct config *cf;
	FILE *f;

	snprintf(path, sizeof(path), "%s/mailname", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(" Mail.Example.ORG \nnext line\n", f);
	assert_int_equal(fclose(f), 0);
	snprintf(text, sizeof(text), "myhostname = %s\n", path);
	cf = load_text(text, err, sizeof(err), &logged);
	assert_non_null(cf);
	buf_free(&logged);
	assert_string_equal(conf_str(cf, "myhostname"), "Mail.Example.ORG");
	assert_string_equal(conf_str(cf, "mydomain"), "Example.ORG");
	assert_string_equal(conf_str(cf, "myorigin"), "Mail.Example.ORG");
	assert_string_equal(conf_raw(cf, "myhostname"), path);
	/* config_set settles the names again. */
	assert_int_equal(config_set(cf, "myorigin", path, err,
	    sizeof(err)), 0);
	assert_string_equal(conf_str(cf, "myorigin"), "Mail.Example.ORG");
	assert_int_equal(config_set(cf, "myorigin", "a b", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "is not a domain name"));
	config_free(cf);
	unlink(path);
	remove_confdir(dir);
}

/* A missing main.cf means all defaults; continuation works in a file. */
static void
test_load_missing_and_continued(void **state)
{
	char err[512], *dir = make_confdir(NULL);
	struct config *cf;
	struct buf logged = BUF_INIT;

	cf = config_load(dir, err, sizeof(err));
	assert_non_null(cf);
	assert_string_equal(conf_str(cf, "config_directory"), dir);
	assert_string_equal(conf_str(cf, "smtp_tls_security_level"), "verify");
	config_free(cf);
	remove_confdir(dir);

	/* A directory that is not there is a typo in -C, not "defaults". */
	err[0] = '\0';
	assert_null(config_load("/nonexistent/postern-test", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/postern-test"));
	assert_null(config_load("/dev/null", err, sizeof(err)));
	assert_non_null(strstr(err, "/dev/null"));

	cf = load_text("smtp_sasl_auth_enable =\n yes\nminimal_backoff_time = "
	    "10m\nmaximal_backoff_time = 1\n", err, sizeof(err), &logged);
	assert_non_null(cf);
	assert_int_equal(conf_bool(cf, "smtp_sasl_auth_enable"), 1);
	assert_int_equal(conf_time(cf, "minimal_backoff_time"), 600);
	assert_int_equal(conf_time(cf, "maximal_backoff_time"), 1);
	config_free(cf);
	buf_free(&logged);
}

/* Like Postfix, mydomain follows a myhostname set in main.cf. */
static void
test_load_mydomain_follows(void **state)
{
	struct buf logged = BUF_INIT;
	char err[512];
	struct config *cf;

	cf = load_text("myhostname = mx.example.org\n", err, sizeof(err),
	    &logged);
	assert_non_null(cf);
	assert_string_equal(conf_str(cf, "mydomain"), "example.org");
	config_free(cf);
	buf_free(&logged);

	cf = load_text("myhostname = a.b.example\nmydomain = other.example\n",
	    err, sizeof(err), &logged);
	assert_non_null(cf);
	assert_string_equal(conf_str(cf, "mydomain"), "other.example");
	config_free(cf);
	buf_free(&logged);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_comments),
		cmocka_unit_test(test_parse_continuation),
		cmocka_unit_test(test_parse_later_wins),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_expand_forms),
		cmocka_unit_test(test_expand_conditional),
		cmocka_unit_test(test_expand_loop),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_defaults_load),
		cmocka_unit_test(test_load_unknown_warns),
		cmocka_unit_test(test_load_bad_values),
		cmocka_unit_test(test_name_from_file),
		cmocka_unit_test(test_load_missing_and_continued),
		cmocka_unit_test(test_load_mydomain_follows),
	};

	log_open("test_config", LOG_DEST_CLI, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
