/*
 * unit_util.h - helpers the unit tests share: a scratch directory, and
 * what a function under test writes to stderr (its log lines).
 */
#ifndef POSTERN_UNIT_UTIL_H
#define POSTERN_UNIT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/buf.h"

/* A new empty directory /tmp/postern-NAME.??????, as a malloc'd path. */
static inline char *
unit_tmpdir(const char *name)
{
	char tmpl[256], *dir;
	size_t n;

	n = (size_t)snprintf(tmpl, sizeof(tmpl), "/tmp/postern-%s.", name);
	assert_true(n + 7 <= sizeof(tmpl));
	/* mkdtemp(3) wants the name to end in six X's, which it replaces. */
	memset(tmpl + n, 'X', 6);
	tmpl[n + 6] = '\0';
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	dir = strdup(dir);
	assert_non_null(dir);
	return dir;
}

/* stderr while it is captured. */
struct unit_stderr {
	FILE	*f;
	int	 saved;
};

/* Send stderr to an anonymous file until unit_stderr_end(). */
static inline void
unit_stderr_begin(struct unit_stderr *c)
{
	c->f = tmpfile();
	c->saved = dup(2);
	assert_true(c->f != NULL && c->saved >= 0);
	assert_int_equal(dup2(fileno(c->f), 2), 2);
}

/* Restore stderr; append what was written to out (NUL-terminated). */
static inline void
unit_stderr_end(struct unit_stderr *c, struct buf *out)
{
	char chunk[512];
	size_t n;

	assert_int_equal(dup2(c->saved, 2), 2);
	close(c->saved);
	rewind(c->f);
	while ((n = fread(chunk, 1, sizeof(chunk), c->f)) > 0)
		buf_add(out, chunk, n);
	buf_adds(out, "");
	fclose(c->f);
}

#endif
