/*
 * fuzz_maps.c - libFuzzer target for the lookup table parsers: texthash
 * text, inline:{ } and static: names, and a parameter value split into
 * type:name items by maps_open.
 *
 * Every key a parse stores must come back from a lookup, folded and
 * without white space. maps_open is fed only values without "texthash"
 * or "regexp", so the fuzzer never reads files.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/map_text.h"
#include "conf/maps.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* Check the first key of a texthash text when the parse succeeded. */
static void
check_first_key(const struct map_table *t, const char *s)
{
	char key[64];
	size_t n;

	/* The first line, when it starts the text, has the first key. */
	n = strcspn(s, " \t\r\n\v\f#");
	if (n == 0 || n >= sizeof(key) || s[n] == '\0' || s[n] == '#')
		return;
	memcpy(key, s, n);
	key[n] = '\0';
	map_fold(key);
	if (map_table_count(t) == 0 || map_table_get(t, key) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct map_table *t;
	struct maps *m;
	const char *v;
	char err[512], *s, *sv;

	if (len > 65536)
		return 0;
	/* texthash text: the raw bytes, NULs included. */
	t = map_table_new();
	if (map_text_parse((const char *)data, len, t, NULL, NULL, err,
	    sizeof(err)) == 0 && memchr(data, '\0', len) == NULL) {
		s = xstrndup((const char *)data, len);
		check_first_key(t, s);
		free(s);
	}
	map_table_free(t);

	/* The same bytes up to a NUL as inline: and static: names. */
	s = xstrndup((const char *)data, len);
	t = map_table_new();
	if (map_inline_parse(s, t, err, sizeof(err)) == 0 &&
	    map_table_count(t) == 0)
		abort();
	map_table_free(t);
	sv = map_static_parse(s, err, sizeof(err));
	if (sv != NULL && *sv == '\0')
		abort();
	free(sv);

	/* And as a parameter value, but never one that names a file. */
	if (strstr(s, "texthash") == NULL && strstr(s, "regexp") == NULL &&
	    (m = maps_open("p", s, err, sizeof(err))) != NULL) {
		(void)maps_find(m, "Key", &v, err, sizeof(err));
		(void)maps_title(m);
		maps_free(m);
	}
	free(s);
	return 0;
}
