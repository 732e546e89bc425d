/*
 * addr.h - envelope address checks, qualification, and address-list
 * headers (RFC 5322 To/Cc/Bcc values). Pure functions: no I/O.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stddef.h>

/* Longest address we accept (RFC 5322 line length). */
#define ADDR_MAX	998

/* The parameters that qualify a bare address (Postfix's names). */
struct addr_rewrite {
	const char	*myorigin;
	const char	*mydomain;
	int		 append_at_myorigin;
	int		 append_dot_mydomain;
};

/* A list of addresses found in headers. */
struct addr_list {
	char	**v;
	size_t	  n;
};

/*
 * Check one envelope address as given on a command line or in a header,
 * and return it without surrounding <> in *out (caller frees). Rejects
 * empty (unless allow_empty: then "" and "<>" give ""), CR, LF, other
 * control characters, more than ADDR_MAX bytes, unbalanced <>. Returns 0,
 * or -1 with what is wrong in err ("contains a newline").
 */
int addr_check(const char *in, int allow_empty, char **out, char *err,
    size_t errlen);

/*
 * Qualify addr as Postfix's trivial-rewrite does for local submissions:
 * without '@', "@$myorigin" is appended when append_at_myorigin is on;
 * a domain without a dot gets ".$mydomain" when append_dot_mydomain is
 * on. The null address "" stays as it is. Returns a new string.
 */
char *addr_qualify(const char *addr, const struct addr_rewrite *rw);

/*
 * The same for an address in canonical form as addrlist_parse gives it
 * (a header address: "root", "\"john doe\"", "root@host"): the local
 * part is found by parsing, not at the last '@'. Returns the qualified
 * address in canonical form (a new string), or NULL when it stays as it
 * is (already qualified, qualification off, empty or unusable).
 */
char *addr_qualify_canon(const char *addr, const struct addr_rewrite *rw);

/*
 * Extract the addresses of an address-list header value (folded lines
 * allowed) and append them to l: "Bob <bob@x>", "bob@x (Bob)",
 * "\"Smith, J\" <j@x>", groups "team: a@x, b@x;" and
 * "undisclosed-recipients:;" (no address). Addresses are returned in
 * canonical form (addrlist_parse): without the display name, comments,
 * <> or quotes that are not needed. Returns 0, or -1 with err
 * ("unterminated quoted string at byte 3") leaving l as it was.
 */
int addr_list_parse(const char *value, struct addr_list *l, char *err,
    size_t errlen);
/* Append a copy of addr to l. */
void addr_list_add(struct addr_list *l, const char *addr);
/* Free the list's strings and zero it. */
void addr_list_free(struct addr_list *l);

/*
 * RFC 5321 Mailbox syntax of an envelope address given without <> (as
 * addr_check returns it): a Dot-string or Quoted-string local part, "@",
 * then a domain (letters, digits, hyphens; UTF-8 labels for SMTPUTF8) or
 * an address literal ([192.0.2.1], [IPv6:...], [tag:text]). With
 * allow_bare, a local part alone ("root") is accepted too: it is
 * qualified later. The empty (null) address is the caller's business.
 * Nothing that could end an SMTP command argument survives: whitespace
 * and control characters only inside quotes, and no control characters
 * there. Returns 0, or -1 with what is wrong in err ("a space outside
 * quotes at byte 4").
 */
int addr_mailbox_check(const char *addr, int allow_bare, char *err,
    size_t errlen);

/*
 * 1 when addr may go between the brackets of MAIL FROM:<...> or
 * RCPT TO:<...> as it is: no control character anywhere, no whitespace,
 * '<' or '>' outside a quoted string, quotes balanced. Addresses from
 * the queue, alias_maps and smtp_generic_maps pass this before they are
 * sent; it is the SMTP client's last check, narrower than the syntax.
 */
int addr_wire_ok(const char *addr);

/* Longest display name (sendmail -F) in bytes. */
#define ADDR_PHRASE_MAX	256

/*
 * A display name (sendmail -F) as header text for "From: NAME <addr>":
 * plain ASCII words as they are, a name with RFC 5322 specials as a
 * quoted string, a name with non-ASCII UTF-8 as RFC 2047 encoded-words
 * ("=?UTF-8?B?...?=", each within 75 characters, folded onto
 * continuation lines "\n "). Refuses control characters (line breaks
 * above all: they would start new header fields), malformed UTF-8 and
 * names over ADDR_PHRASE_MAX bytes. Returns a new string, or NULL with
 * err.
 */
char *addr_phrase(const char *name, char *err, size_t errlen);

#endif
