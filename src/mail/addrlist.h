/*
 * addrlist.h - RFC 5322 address lists (To:, Cc:, From: ... values) parsed
 * into addresses with their positions, so that a rewriting step can
 * replace the addresses and nothing else; and the header fields whose
 * addresses Postfix's smtp_generic_maps rewrite.
 *
 * Pure functions over memory: no I/O, nothing global.
 */
#ifndef POSTERN_ADDRLIST_H
#define POSTERN_ADDRLIST_H

#include <stddef.h>

#include "lib/buf.h"

/* One address of an address list. */
struct addrlist_item {
	size_t	 off;		/* where its addr-spec starts in the value */
	size_t	 len;		/* how many bytes the addr-spec takes */
	char	*addr;		/* the addr-spec in canonical form */
};

/* The addresses of one value, in the order they appear. */
struct addrlist {
	struct addrlist_item	*v;
	size_t			 n;
};

/*
 * A rewriting step: given an address in canonical form, return a new
 * malloc'd address, or NULL to leave it as it is. The result may be in
 * canonical form ("\"john doe\"@x") or unquoted ("john doe@x"); either
 * is written into the header quoted as RFC 5322 requires.
 */
typedef char *(*addr_map_fn)(void *arg, const char *addr);

/*
 * Parse an address-list header value value[0..len) (RFC 5322 3.4 with the
 * obsolete forms of 4.4): comments (nested), quoted strings, domain
 * literals, display names, "Doe, John" <john@x> (work), bare addr-specs,
 * a bare local part "root", route-addrs with an obsolete route
 * "<@a,@b:x@y>", groups "team: a@x, b@y;" and "undisclosed-recipients:;",
 * empty elements ",,", and lines folded with CRLF or LF followed by white
 * space. "<>" is allowed and gives no address. An address may follow a
 * group's ';' without a comma.
 *
 * Appends one item per address to l. The canonical form of an addr-spec
 * drops comments and folding white space, and quotes the local part only
 * when it needs quotes ("\"john\"@x" gives john@x, "\"john doe\"@x"
 * stays). Returns 0, or -1 with the reason in err ("unterminated comment
 * at byte 12") leaving l as it was: the caller then leaves the value
 * alone.
 */
int addrlist_parse(const char *value, size_t len, struct addrlist *l,
    char *err, size_t errlen);

/* Free the items of l and zero it. */
void addrlist_free(struct addrlist *l);

/*
 * Append to out the value value[0..len) with each address replaced by
 * what map returns for it: only the bytes of the addr-spec change;
 * display names, comments, groups, white space and line folding stay
 * byte for byte. A result that equals the address (in canonical form), or
 * that is not a usable address (control characters or line breaks, an
 * empty local part with no quotes, a malformed domain), leaves that
 * address alone. *changed (may be NULL) gets the number of addresses
 * replaced. Returns 0, or -1 with the reason in err when the value does
 * not parse; then nothing is appended.
 */
int addrlist_rewrite(const char *value, size_t len, addr_map_fn map,
    void *arg, struct buf *out, size_t *changed, char *err, size_t errlen);

/*
 * Append to out the header block hdr[0..len) (LF line ends, as split by
 * hdr_split) with the addresses of these fields rewritten by map, as
 * Postfix's smtp_generic_maps do: From, Sender, Reply-To, To, Cc, Bcc,
 * Resent-From, Resent-Sender, Resent-Reply-To, Resent-To, Resent-Cc,
 * Resent-Bcc, Return-Receipt-To, Disposition-Notification-To, Errors-To,
 * Mail-Followup-To, Mail-Reply-To, Apparently-To, Return-Path (names in
 * any case). Every other byte,
 * other fields and folding included, is copied as it is; a field whose
 * value does not parse is copied unchanged. Returns the number of
 * addresses replaced.
 */
size_t hdr_rewrite_addrs(const char *hdr, size_t len, addr_map_fn map,
    void *arg, struct buf *out);

/*
 * Split one address into its local part without quotes (*local) and its
 * domain (*domain, NULL when there is no '@'). addr is read as an
 * addr-spec ("\"john doe\"@x", comments allowed); when it is not one, as
 * an unquoted address split at its last '@' ("john doe@x"). Returns 0, or
 * -1 (nothing allocated) when addr holds a control character or a line
 * break, or is empty.
 */
int addr_split(const char *addr, char **local, char **domain);

/*
 * The canonical form of local part local (unquoted) and domain (NULL for
 * none): local is quoted when it is not a dot-atom, with '"' and '\'
 * escaped. Returns a new string.
 */
char *addr_join(const char *local, const char *domain);

/*
 * The canonical form of an address given in either form addr_split
 * reads, or NULL when it is unusable in a header: a control character or
 * line break, an empty unquoted local part, or a domain that is neither
 * dot-separated atoms nor a domain literal.
 */
char *addr_canon(const char *addr);

#endif
