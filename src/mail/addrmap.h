/*
 * addrmap.h - look an address up in a list of tables the way Postfix
 * does for address mappings (smtp_generic_maps; generic(5) "TABLE SEARCH
 * ORDER", "RESULT ADDRESS REWRITING" and "ADDRESS EXTENSION").
 */
#ifndef POSTERN_ADDRMAP_H
#define POSTERN_ADDRMAP_H

#include <stddef.h>

#include "conf/maps.h"

/* What the search depends on besides the tables: main.cf settings. */
struct addr_map_ctx {
	/* recipient_delimiter: any of these characters starts an address
	   extension; NULL or "" for none. */
	const char		*delims;
	/* $myorigin: a local domain, and what a result without a domain
	   gets when append_at_myorigin is on. */
	const char		*myorigin;
	/* The other domains that count as local ($myhostname, localhost,
	   $mydestination ...), compared without regard to case. */
	const char *const	*local_domains;
	size_t			 nlocal;
	/* Append an extension stripped to find the key to the result
	   (propagate_unmatched_extensions lists "generic", or "alias"). */
	int			 propagate;
	/* Qualifying a result: append_at_myorigin, and append_dot_mydomain
	   with $mydomain. */
	int			 append_at_myorigin;
	int			 append_dot_mydomain;
	const char		*mydomain;
};

/*
 * Look addr (an address in canonical or unquoted form) up in m, keys
 * tried in Postfix's order, the first one found wins:
 *
 *   user+ext@domain    the whole address (pattern tables see only this)
 *   user@domain        without the extension
 *   user+ext, user     only when domain is $myorigin or a local domain
 *   @domain            any user in domain
 *
 * Each key is tried in canonical form (local part quoted where needed),
 * then, when that differs, unquoted, as Postfix does; the tables fold
 * case. An address without '@' is looked up as "user+ext"
 * then "user". The extension starts at the first delimiter character,
 * except in postmaster, mailer-daemon and double-bounce, and (when '-' is
 * a delimiter) owner-* and *-request; an extension that would leave the
 * local part empty is none. The null address "" is never looked up.
 *
 * The result as stored in the table becomes an address as in Postfix:
 * "@otherdomain" means the same user (without an extension that was
 * stripped to find the key) in otherdomain; a result without a domain is
 * qualified (append_at_myorigin, append_dot_mydomain); with propagate, an
 * extension stripped to find the key (not "@domain") is appended to the
 * result's local part; the result is returned in canonical form. A
 * result with several addresses gives its first, with a warning in the
 * log, as Postfix's SMTP client does.
 *
 * Returns MAP_FOUND with *result (caller frees), MAP_NOTFOUND, or
 * MAP_ERROR with a message in err: a table failed (the search stops
 * there: the caller defers the mail), addr has a control character, or
 * the result is not an address. Messages never contain a table's value.
 */
/*
 * Where the recipient_delimiter extension of local part local starts
 * (the offset of its delimiter), or strlen(local) when it has none.
 * Postfix's rules: postmaster, mailer-daemon and double-bounce are never
 * split, nor owner-x and x-request when '-' is a delimiter, nor a local
 * part that would become empty.
 */
size_t addr_ext_start(const char *local, const char *delims);

int addr_map_find(struct maps *m, const char *addr,
    const struct addr_map_ctx *ctx, char **result, char *err, size_t errlen);

#endif
