/*
 * fuzz_maincf.c - libFuzzer target for the main.cf parser and the
 * $name expander.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "lib/xalloc.h"

/* Count settings; touch every byte of name and value. */
static void
count(void *arg, int lineno, const char *name, const char *value)
{
	*(size_t *)arg += strlen(name) + strlen(value) + (size_t)lineno;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct config *cf;
	char err[256], *s, *x;
	size_t n = 0;

	if (cf == NULL)
		cf = config_defaults();
	(void)maincf_parse((const char *)data, len, count, &n, err, sizeof(err));
	/* The same bytes as a value to expand. */
	s = xstrndup((const char *)data, len);
	x = conf_expand(cf, s, err, sizeof(err));
	free(x);
	free(s);
	return 0;
}
