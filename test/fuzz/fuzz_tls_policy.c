/*
 * fuzz_tls_policy.c - libFuzzer target for TLS policy table entries and
 * protocol lists (tls_policy_parse, tls_protocols_parse).
 *
 * Beyond "no crash": an accepted entry has a known level, and a protocol
 * range is never empty or reversed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input, as a NUL-terminated string. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_policy p;
	char *s = malloc(size + 1), err[256];
	int lo, hi;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (tls_policy_parse(s, &p, err, sizeof(err)) == 0) {
		if (p.level > TLS_LEV_SECURE)
			abort();
		tls_policy_free(&p);
	}
	if (tls_protocols_parse(s, &lo, &hi, err, sizeof(err)) == 0 &&
	    (lo == 0 || hi < lo))
		abort();
	free(s);
	return 0;
}
