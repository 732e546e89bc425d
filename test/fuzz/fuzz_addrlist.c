/*
 * fuzz_addrlist.c - libFuzzer target for the address-list parser and
 * the rewriting built on it.
 *
 * Header values come from any local program. For any input: parsing
 * never crashes and its spans lie inside the value, in order, without
 * overlap; rewriting with a callback that returns each address unchanged
 * gives the input back byte for byte, and so does rewriting the input as
 * a header block; rewriting every address to x@y gives a value that
 * parses again with the same number of addresses. addr_canon's result,
 * when there is one, parses as exactly that one address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mail/addrlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Return the address as it is. */
static char *
identity(void *arg, const char *addr)
{
	return xstrdup(addr);
}

/* Return the same fixed address for every address. */
static char *
to_xy(void *arg, const char *addr)
{
	return xstrdup("x@y");
}

/* The spans must be inside the value, in order, not overlapping. */
static void
check_spans(const struct addrlist *l, size_t size)
{
	size_t end = 0;

	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].off < end || l->v[i].len == 0 ||
		    l->v[i].off + l->v[i].len > size)
			abort();
		end = l->v[i].off + l->v[i].len;
	}
}

/* The value again after rewriting with identity, then with to_xy. */
static void
check_rewrites(const char *v, size_t size, size_t n)
{
	struct addrlist again = { NULL, 0 };
	struct buf out = BUF_INIT;
	size_t changed;

	if (addrlist_rewrite(v, size, identity, NULL, &out, &changed, NULL,
	    0) < 0 || changed != 0 || out.len != size ||
	    (size > 0 && memcmp(out.data, v, size) != 0))
		abort();
	buf_reset(&out);
	if (addrlist_rewrite(v, size, to_xy, NULL, &out, &changed, NULL,
	    0) < 0 || changed > n)
		abort();
	if (addrlist_parse(out.data ? out.data : "", out.len, &again, NULL,
	    0) < 0 || again.n != n)
		abort();
	for (size_t i = 0; i < again.n; i++)
		if (strcmp(again.v[i].addr, "x@y") != 0)
			abort();
	addrlist_free(&again);
	buf_free(&out);
}

/* addr_canon's result is one address whose canonical form is itself. */
static void
check_canon(const char *v, size_t size)
{
	struct addrlist l = { NULL, 0 };
	char *s = xstrndup(v, size), *c = addr_canon(s);

	if (c != NULL) {
		if (addrlist_parse(c, strlen(c), &l, NULL, 0) < 0 ||
		    l.n != 1 || strcmp(l.v[0].addr, c) != 0 ||
		    l.v[0].off != 0 || l.v[0].len != strlen(c))
			abort();
		addrlist_free(&l);
	}
	free(c);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v = (const char *)data;
	struct addrlist l = { NULL, 0 };
	struct buf out = BUF_INIT;
	char err[128];

	if (addrlist_parse(v, size, &l, err, sizeof(err)) == 0) {
		check_spans(&l, size);
		check_rewrites(v, size, l.n);
	} else if (l.n != 0 || err[0] == '\0')
		abort();
	addrlist_free(&l);

	/* As a header block, with identity: every byte as it was. */
	(void)hdr_rewrite_addrs(v, size, identity, NULL, &out);
	if (out.len != size || (size > 0 && memcmp(out.data, v, size) != 0))
		abort();
	buf_free(&out);

	check_canon(v, size);
	return 0;
}
