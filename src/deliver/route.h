/*
 * route.h - where each recipient goes, and what local names stand for.
 *
 * The daemon asks the router, for every recipient it is about to try,
 * which relay to use (Postfix's order, first match wins): transport_maps
 * on the recipient, sender_dependent_relayhost_maps on the envelope
 * sender, relayhost; smtp_fallback_relay is tried by the worker when the
 * chosen relay cannot be reached. transport_maps may also say error:
 * (return the recipient with a text), discard: (drop it, logged as sent)
 * or retry: (keep it waiting).
 *
 * Before the first delivery attempt the daemon expands local recipients
 * through alias_maps (aliases(5) format), recursively, with loop
 * detection; the expanded list replaces the queue file's recipients once
 * (qfile "flags expanded"), each new address remembering the local one it
 * came from for orig_to= in the log.
 *
 * `postern route` prints the same decisions.
 */
#ifndef POSTERN_ROUTE_H
#define POSTERN_ROUTE_H

#include <stddef.h>

#include "mail/addr.h"

struct config;
struct maps;
struct qenv;

/* The routing and local-name settings of main.cf, with their tables. */
struct router {
	struct maps	*transport;	/* transport_maps */
	struct maps	*sender_relay;	/* sender_dependent_relayhost_maps */
	struct maps	*aliases;	/* alias_maps */
	int		 have_aliases;	/* alias_maps is not empty */
	char		*relayhost;
	char		**fallback;	/* smtp_fallback_relay */
	size_t		 nfallback;
	char		*myhostname;
	char		*mydomain;
	char		**mydest;	/* mydestination's names */
	size_t		 nmydest;
	char		*delims;	/* recipient_delimiter */
	int		 alias_ext;	/* propagate_unmatched_extensions: alias */
	int		 generic_ext;	/* ...: generic */
	struct addr_rewrite rw;		/* to qualify alias results */
	char		*myorigin;
};

enum route_kind {
	RT_RELAY,	/* deliver over SMTP to nexthop */
	RT_ERROR,	/* return to the sender: dsn and text */
	RT_DISCARD,	/* drop, logged as delivered */
	RT_RETRY,	/* keep it waiting: dsn and text */
};

struct route {
	enum route_kind	 kind;
	char		 nexthop[300];	/* RT_RELAY: the relay as written */
	const char	*source;	/* which setting decided */
	char		 key[300];	/* ...and the table key that matched */
	char		 dsn[16];
	char		 text[512];	/* RT_ERROR, RT_RETRY, RT_DISCARD */
};

/*
 * Open the tables and read the settings. Returns 0, or -1 with err
 * (a table that cannot be opened: the caller refuses the configuration).
 */
int router_init(struct router *r, const struct config *cf, char *err,
    size_t errlen);
void router_free(struct router *r);

/*
 * Decide for one recipient. Returns 0 with *out filled, or -1 when a
 * table lookup failed (err says which; the recipient must wait).
 */
int route_resolve(struct router *r, const char *sender, const char *rcpt,
    struct route *out, char *err, size_t errlen);

/*
 * 1 when addr is local for alias_maps: its domain is $myhostname,
 * localhost, localhost.$mydomain or listed in mydestination, or orig
 * (the address as submitted, may be NULL) had no domain.
 */
int router_is_local(const struct router *r, const char *addr,
    const char *orig);

/* One step of an expansion, for `postern route`. */
typedef void (*route_trace_fn)(void *arg, int depth, const char *from,
    const char *to);

/*
 * Expand the local recipients of in through alias_maps into out (a
 * new recipient list; the other fields are not touched). Duplicates are
 * dropped; each address an alias produced has as orig the recipient's
 * orig (or address) it came from. An alias that names itself, directly
 * or through others, stops there and the name is kept. Entries that
 * deliver to a command, a file or an :include: file cannot be followed
 * by an outbound-only MTA: they are skipped with a warning, and a name
 * whose entries are all skipped is kept. Returns 1 when the list changed,
 * 0 when it did not (out then holds a copy), -1 with err on a lookup
 * error or a runaway expansion.
 */
int route_expand(struct router *r, const struct qenv *in, struct qenv *out,
    route_trace_fn trace, void *arg, char *err, size_t errlen);

#endif
