/*
 * tls.h - TLS for the SMTP client (OpenSSL): policy, handshake, checks.
 *
 * The daemon builds one tls_ctx from main.cf (trust store, client
 * certificate, fingerprint digest) before it forks workers; a worker
 * uses it for every connection. tls_start() turns a connected conn into
 * a TLS one under a tls_policy (the level and its attributes, from
 * main.cf or smtp_tls_policy_maps) and decides, after the handshake and
 * before a single SMTP command is sent over it, whether the peer meets
 * the policy. Certificate checks never abort the handshake by themselves:
 * everything is recorded in a tls_info, so that `postern check` can show
 * what the server presented even when the policy refuses it.
 *
 * Session reuse: sessions of connections that met their policy are kept
 * in the tls_ctx per relay and level. Workers are short-lived, so they
 * hand new sessions to the daemon as text lines (tls_cache_export) and
 * the daemon adds them to its own tls_ctx (tls_cache_import), which the
 * next worker inherits.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>

#include "deliver/conn.h"
#include "lib/buf.h"

/* smtp_tls_security_level, weakest first. */
enum tls_level {
	TLS_LEV_NONE,
	TLS_LEV_MAY,		/* opportunistic, unverified */
	TLS_LEV_ENCRYPT,	/* mandatory, unverified */
	TLS_LEV_FINGERPRINT,	/* mandatory, pinned certificate or key */
	TLS_LEV_VERIFY,		/* mandatory, chain and name verified */
	TLS_LEV_SECURE,		/* the same, for a relay without MX lookup */
};

/* Parse a level name ("" is none, as in Postfix); 0 or -1. */
int tls_level_parse(const char *s, enum tls_level *lev);
/* The level's name. */
const char *tls_level_name(enum tls_level lev);
/* 1 when the level refuses clear text. */
int tls_level_mandatory(enum tls_level lev);

/*
 * A relay's TLS policy: the level, and attributes that replace main.cf's
 * for this relay (NULL: main.cf's). In a policy table entry they are
 * written as Postfix does: "verify match=a.example:.b.example
 * protocols=>=TLSv1.3 ciphers=high exclude=aNULL servername=x.example";
 * fingerprints in match= are separated by "|".
 */
struct tls_policy {
	enum tls_level	 level;
	char		*match;		/* names, or fingerprints */
	char		*protocols;
	char		*ciphers;
	char		*exclude;
	char		*servername;
	int		 from_map;	/* from smtp_tls_policy_maps */
};

/* Parse a policy table value (pure); 0, or -1 with a message in err. */
int tls_policy_parse(const char *text, struct tls_policy *p, char *err,
    size_t errlen);
void tls_policy_free(struct tls_policy *p);

/*
 * Parse a Postfix protocol list (">=TLSv1.2", "!SSLv2, !SSLv3",
 * "TLSv1.2 TLSv1.3") into OpenSSL version numbers (pure). 0, or -1 with a
 * message (an unknown name, a list that allows nothing or has a gap).
 */
int tls_protocols_parse(const char *spec, int *min, int *max, char *err,
    size_t errlen);

/* main.cf's TLS settings; strings are copied by tls_ctx_new. */
struct tls_conf {
	const char	*cafile;		/* smtp_tls_CAfile */
	const char	*capath;		/* smtp_tls_CApath */
	const char	*cert_file;		/* smtp_tls_cert_file */
	const char	*key_file;		/* smtp_tls_key_file */
	const char	*protocols;		/* smtp_tls_protocols (may) */
	const char	*mand_protocols;	/* ..._mandatory_protocols */
	const char	*ciphers;		/* smtp_tls_ciphers (may) */
	const char	*mand_ciphers;		/* ..._mandatory_ciphers */
	const char	*exclude;		/* smtp_tls_exclude_ciphers */
	const char	*mand_exclude;		/* ..._mandatory_exclude_ciphers */
	const char	*fp_digest;		/* smtp_tls_fingerprint_digest */
	const char	*fp_match;		/* ..._fingerprint_cert_match */
	const char	*verify_match;		/* smtp_tls_verify_cert_match */
	const char	*secure_match;		/* smtp_tls_secure_cert_match */
	const char	*servername;		/* smtp_tls_servername */
	int		 loglevel;		/* smtp_tls_loglevel */
	int		 cache_timeout;		/* ..._session_cache_timeout, s */
};

struct tls_ctx;

/*
 * Build the client context: trust store (CAfile/CApath, else the
 * system's), client certificate, and a check of every setting, so that a
 * bad value is reported once at start rather than per message. Returns
 * NULL with the reason in err ("smtp_tls_CAfile /x: No such file").
 */
struct tls_ctx *tls_ctx_new(const struct tls_conf *tc, char *err,
    size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);
/*
 * Check everything a policy will need (protocols, ciphers, pins) with
 * ctx's defaults filled in, so that a bad policy table entry defers the
 * mail before any connection rather than failing a handshake (which at
 * level may would mean clear text). 0, or -1 with err.
 */
int tls_policy_check(const struct tls_ctx *ctx, const struct tls_policy *p,
    char *err, size_t errlen);

/* What one TLS connection turned out to be (filled by tls_start). */
struct tls_info {
	int	 active;		/* the handshake completed */
	int	 reused;		/* a cached session was resumed */
	char	 proto[16];		/* "TLSv1.3" */
	char	 cipher[80];
	int	 bits, alg_bits;
	int	 chain_ok;		/* chain verified to a trusted CA */
	int	 name_checked;		/* the level checks names */
	int	 name_ok;		/* ...and one matched */
	int	 fp_checked;		/* the level checks fingerprints */
	int	 fp_ok;			/* ...and one matched */
	char	 chain_err[128];	/* why the chain did not verify */
	char	 names[256];		/* the names or pins checked */
	char	 trust[12];		/* "Verified", "Trusted", "Untrusted" */
	char	 subject[256];
	char	 issuer[256];
	char	 not_after[32];		/* "2027-11-21 10:00:00 UTC" */
	long	 days_left;		/* negative: expired */
	char	 cert_fp[200];		/* certificate fingerprint */
	char	 pkey_fp[200];		/* public key fingerprint */
	char	 fp_digest[16];		/* which digest those are */
};

/*
 * Handshake as a client on c (nothing may be waiting in its input
 * buffer) with the server host:port, within timeout seconds. host is the
 * server's name: the MX host for a relay looked up in DNS, else the relay
 * as configured; nexthop is the relay's domain as configured (the same
 * name without an MX lookup). Certificate names and SNI use them as
 * Postfix does: "hostname" is host, "nexthop" and "dot-nexthop" are
 * nexthop and the names below it. Both must live until tls_start returns.
 * On success the conn carries TLS from now on, the TLS line is logged
 * (smtp_tls_loglevel >= 1) and 0 is returned. Returns -1 when the
 * handshake failed or the peer does not meet p (err says why in words:
 * "certificate verify failed: hostname mismatch"); the conn must then be
 * closed without sending anything more. info is filled as far as known.
 */
int tls_start(struct tls_ctx *ctx, struct conn *c, const char *host,
    const char *nexthop, const char *port, const char *peer,
    const struct tls_policy *p, int timeout, struct tls_info *info,
    char *err, size_t errlen);

/*
 * The TLS channel binding of an established connection, for SCRAM-*-PLUS:
 * "tls-exporter" (RFC 9266) on TLS 1.3, "tls-unique" (RFC 5929) before.
 * Returns the type and fills data (len bytes), or NULL when c carries no
 * TLS or the data cannot be had.
 */
const char *tls_channel_binding(const struct conn *c, unsigned char *data,
    size_t datalen, size_t *len);

/*
 * Append "T key hex\n" for every session cached since the last call
 * (a worker sends these to the daemon). The text is secret: the caller
 * wipes it. Returns the number of lines.
 */
int tls_cache_export(struct tls_ctx *ctx, struct buf *out);
/*
 * Add one exported session ("key hex", or "key -" to forget one; without
 * "T "). A line from another context (before a reload) is ignored.
 * Returns 0, or -1 for a malformed line.
 */
int tls_cache_import(struct tls_ctx *ctx, const char *line);

#endif
