/*
 * fuzz_dns.c - libFuzzer target for dns_mx_parse (DNS replies to an MX
 * query for a fixed name).
 *
 * Checks more than "no crash": a failure leaves no hosts and a status
 * of its own class; a success has 1 to DNS_MX_MAX hosts that are plain
 * host names (nothing a log line or getaddrinfo should not see), in
 * order of preference, each once; an implicit MX is the name itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 when s holds only host name characters. */
static int
plain(const char *s)
{
	return *s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == strlen(s);
}

/* One input. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_mx_list l;
	char err[512];
	enum dns_rc rc;
	size_t i, j;

	rc = dns_mx_parse("example.com", data, size, &l, err, sizeof(err));
	if (strlen(err) >= sizeof(err))
		abort();
	if (rc != DNS_OK) {
		if ((rc != DNS_TEMP && rc != DNS_PERM) || l.n != 0 ||
		    l.mx != NULL || l.dsn[0] != (rc == DNS_TEMP ? '4' : '5'))
			abort();
		return 0;
	}
	if (l.n == 0 || l.n > DNS_MX_MAX)
		abort();
	if (l.implicit && (l.n != 1 || strcmp(l.mx[0].host, "example.com")))
		abort();
	for (i = 0; i < l.n; i++) {
		if (!plain(l.mx[i].host) || l.mx[i].pref > 65535 ||
		    (i > 0 && l.mx[i].pref < l.mx[i - 1].pref))
			abort();
		for (j = 0; j < i; j++)
			if (strcasecmp(l.mx[i].host, l.mx[j].host) == 0)
				abort();
	}
	dns_mx_free(&l);
	return 0;
}
