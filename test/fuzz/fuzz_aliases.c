/*
 * fuzz_aliases.c - libFuzzer target for the aliases(5) source parser
 * (map_alias_parse), what `postern map -a` and newaliases compile.
 *
 * Whatever the input, a successful parse stores only non-empty keys
 * already folded to lower case, each with a non-empty value without
 * white space at either end, and every key it stores comes back from a
 * lookup with its own value. A failed parse names a line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/map_text.h"
#include "lib/xalloc.h"

/* White space as the parser sees it. */
static int
space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

/* Check every stored entry of t. */
static void
check_table(const struct map_table *t)
{
	const char *k, *v, *p;
	size_t n = map_table_count(t), vl;
	char *copy;

	for (size_t i = 0; i < n; i++) {
		map_table_entry(t, i, &k, &v);
		if (*k == '\0' || *v == '\0')
			abort();
		for (p = k; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
		vl = strlen(v);
		if (space(v[0]) || space(v[vl - 1]))
			abort();
		/* A copy, so the lookup cannot succeed by pointer identity. */
		copy = xstrdup(k);
		if (map_table_get(t, copy) != v)
			abort();
		/* Folding the key again finds the same entry. */
		map_fold(copy);
		if (map_table_get(t, copy) != v)
			abort();
		free(copy);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct map_table *t;
	char err[512];

	if (len > 65536)
		return 0;
	t = map_table_new();
	err[0] = '\0';
	if (map_alias_parse((const char *)data, len, t, NULL, NULL, err,
	    sizeof(err)) == 0)
		check_table(t);
	else if (strncmp(err, "line ", 5) != 0)
		abort();
	map_table_free(t);
	return 0;
}
