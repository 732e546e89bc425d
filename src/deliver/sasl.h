/*
 * sasl.h - the SMTP AUTH client's mechanisms (RFC 4954).
 *
 * Choosing a mechanism is a pure function of what the server offers,
 * smtp_sasl_mechanism_filter and the security options; running one is a
 * step function that turns the server's base64 challenges into base64
 * responses. PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-1/256 (and -PLUS, with
 * TLS channel binding) come from libgsasl; XOAUTH2 and OAUTHBEARER
 * (RFC 7628), which libgsasl lacks, are implemented here behind the same
 * step function. The SMTP dialogue itself lives in smtp.c.
 *
 * Secrets: the password or token is copied only into memory this module
 * wipes before freeing it, and never into a log line or an error text.
 */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <stddef.h>

/* Postfix's smtp_sasl_security_options words. */
#define SASL_SEC_NOPLAINTEXT	0x01
#define SASL_SEC_NOACTIVE	0x02
#define SASL_SEC_NODICTIONARY	0x04
#define SASL_SEC_NOANONYMOUS	0x08
#define SASL_SEC_MUTUAL_AUTH	0x10

/*
 * Parse a security option list ("noplaintext, noanonymous"; empty
 * allows everything). Returns 0, or -1 with the unknown word in err.
 */
int sasl_secopts_parse(const char *s, unsigned *flags, char *err,
    size_t errlen);

/*
 * Choose the strongest mechanism (pure): from offered (the AUTH EHLO
 * parameter), keeping only those named in filter (smtp_sasl_mechanism_
 * filter; empty keeps all but the token mechanisms, which must be named
 * because their secret is not a password) and those the security flags
 * allow; a -PLUS mechanism only when channel binding is available (cb).
 * Order: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS,
 * SCRAM-SHA-1, CRAM-MD5, OAUTHBEARER, XOAUTH2, PLAIN, LOGIN. Returns 0
 * with the name in mech, or -1 with a sentence in why.
 */
int sasl_choose(const char *offered, const char *filter, unsigned flags,
    int cb, char *mech, size_t mechlen, char *why, size_t whylen);

/* TLS channel binding data for -PLUS mechanisms. */
struct sasl_cb {
	const char	*type;		/* "tls-exporter", "tls-unique", NULL */
	unsigned char	 data[64];
	size_t		 len;
};

/* What sasl_step says. */
enum sasl_rc {
	SASL_STEP_MORE,		/* send *out, expect another 334 */
	SASL_STEP_DONE,		/* send *out; the client side is finished */
	SASL_STEP_ERROR,	/* cancel the exchange ("*"); err says why */
};

struct sasl_client;

/*
 * Start mech for user with secret (a password, or an OAuth token for
 * XOAUTH2 and OAUTHBEARER); host and port name the server for
 * OAUTHBEARER. Returns NULL with err (never containing the secret).
 */
struct sasl_client *sasl_client_new(const char *mech, const char *user,
    const char *secret, const char *host, const char *port,
    const struct sasl_cb *cb, char *err, size_t errlen);
/* 1 when the mechanism sends an initial response with AUTH. */
int sasl_client_first(const struct sasl_client *sc);
/*
 * One step: in is the server's base64 challenge (NULL for the initial
 * response). *out is a base64 string to send ("" for an empty line),
 * allocated: wipe and free it with sasl_free_out().
 */
enum sasl_rc sasl_step(struct sasl_client *sc, const char *in, char **out,
    char *err, size_t errlen);
/* Wipe and free a response from sasl_step. */
void sasl_free_out(char *out);
/* Wipe and free the client. */
void sasl_client_free(struct sasl_client *sc);

#endif
