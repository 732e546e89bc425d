/*
 * fuzz_regexp.c - libFuzzer target for the regexp: table parser
 * (map_regexp_parse) and its lookups.
 *
 * Any text either parses or fails with a "line N: " or "end of file: "
 * message; a table it accepts answers lookups of a few header-like keys
 * and of the input's own lines without crashing, and an answer is a
 * string as long as the length it reports.
 *
 * Inputs with counted repetitions ("{n}"), more than a few '+' or runs
 * of repetition operators are left out: glibc's regcomp copies the
 * operand of each '+' and '{n}' ("a+" is "aa*"), and "a*****..." grows
 * its automaton too, so "(a{99}){99}", "a+++...+" or eighty stars in a
 * row cost seconds and hundreds of megabytes in libc, not in the code
 * under test (Postfix shares this with every program that compiles an
 * administrator's POSIX patterns).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/map_regexp.h"
#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/xalloc.h"

/* Look key up; abort on an answer that is not what it says it is. */
static void
lookup(struct map_regexp *t, const char *key, struct buf *v)
{
	char err[512];
	int rc = map_regexp_match(t, key, v, err, sizeof(err));

	if (rc == MAP_FOUND && (v->data == NULL || strlen(v->data) != v->len))
		abort();
	if (rc != MAP_FOUND && rc != MAP_NOTFOUND && rc != MAP_ERROR)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const keys[] = {
		"Subject: hello",
		"Received: from a.example (a.example [192.0.2.1])\n\tby b",
		"RECEIVED: X\n",
		"x",
		"$1 ${1} $$",
	};
	struct map_regexp *t = NULL;
	struct buf v = BUF_INIT;
	char err[512], *s, *line, *p;
	size_t plus = 0;

	if (len > 4096 || memchr(data, '{', len) != NULL)
		return 0;
	for (size_t i = 0; i < len; i++) {
		plus += data[i] == '+';
		/* memchr, not strchr: a NUL byte is no operator. */
		if (i > 0 && memchr("*+?", data[i], 3) != NULL &&
		    memchr("*+?", data[i - 1], 3) != NULL)
			return 0;
	}
	if (plus > 8)
		return 0;
	err[0] = '\0';
	if (map_regexp_parse((const char *)data, len, &t, err,
	    sizeof(err)) != 0) {
		if (t != NULL || (strncmp(err, "line ", 5) != 0 &&
		    strncmp(err, "end of file: ", 13) != 0))
			abort();
		return 0;
	}
	if (t == NULL)
		abort();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		lookup(t, keys[i], &v);
	/* The input's own lines as keys: they tend to match its patterns. */
	s = xstrndup((const char *)data, len);
	for (p = s; (line = strsep(&p, "\n")) != NULL;)
		lookup(t, line, &v);
	free(s);
	buf_free(&v);
	map_regexp_free(t);
	return 0;
}
