/*
 * smtp.h - a small opaque SMTP client (RFC 5321).
 *
 * One session is one connection to one relay. The delivery worker opens
 * a session, runs one transaction per message over it (RSET between), and
 * closes it. Protocol code only reports what happened: each recipient gets
 * an smtp_result; deciding to defer or bounce is trouble.c's job.
 *
 * Every read and write has a deadline (poll on a non-blocking socket, the
 * Postfix smtp_*_timeout parameters), and by default every request has
 * a total one (smtp_per_request_deadline), so a server that answers one
 * byte at a time cannot hold a worker for longer than the timeout. Output is buffered: with PIPELINING
 * the whole MAIL/RCPT.../DATA group goes out in one write, and the socket
 * has TCP_NODELAY.
 *
 * TLS (tls.c): with smtp_tls_wrappermode the handshake comes first;
 * otherwise STARTTLS follows EHLO when the level asks for it, and EHLO is
 * sent again over TLS. A level that requires TLS and does not get it
 * (no STARTTLS offered, a refused handshake, a certificate that fails
 * the policy) ends the session before MAIL or AUTH, with a 4.7.5 result.
 * AUTH (sasl.c) follows, when o->auth names a user and the server offers
 * AUTH: the strongest mechanism the policy allows, the secret never in a
 * log line; a failed login ends the session with a kind 4 result.
 */
#ifndef POSTERN_SMTP_H
#define POSTERN_SMTP_H

#include <stddef.h>

#include "deliver/tls.h"

/* A relay as written in relayhost: "[host]:port", "host:port", "host". */
struct smtp_relay {
	char	*host;		/* without brackets */
	char	*port;		/* numeric or a service name; default "25" */
	int	 mx;		/* 1 when written without brackets */
	char	*text;		/* the original text, for logs and lookups */
};

/*
 * Parse a relay specification. Service names smtp (25), submission
 * (587), smtps and submissions (465) are known without /etc/services.
 * Returns 0 or -1 with a message in err.
 */
int smtp_relay_parse(const char *spec, struct smtp_relay *r, char *err,
    size_t errlen);
void smtp_relay_free(struct smtp_relay *r);

/* SMTP AUTH settings for a session (user NULL: no AUTH). */
struct smtp_auth {
	const char	*user;
	const char	*secret;	/* password or OAuth token */
	const char	*mech_filter;	/* smtp_sasl_mechanism_filter */
	unsigned	 secflags;	/* smtp_sasl_security_options */
	unsigned	 tls_secflags;	/* smtp_sasl_tls_security_options */
	int		 allow_unencrypted;	/* smtp_sasl_allow_unencrypted */
	int		 allow_unverified;	/* smtp_sasl_allow_unverified_tls */
};

struct smtp_opts {
	const char	*helo_name;
	struct tls_ctx	*tls;		/* NULL: no TLS context (level none) */
	const struct tls_policy *tls_policy;	/* the relay's level and more */
	int		 tls_wrapper;	/* smtp_tls_wrappermode */
	int		 tls_loglevel;	/* smtp_tls_loglevel */
	const struct smtp_auth *auth;	/* NULL: no AUTH */
	struct smtp_report *report;	/* filled for postern check, or NULL */
	int		 line_limit;	/* smtp_line_length_limit */
	/* Timeouts in seconds (Postfix's parameters of the same names). */
	int		 connect_timeout;
	int		 helo_timeout;
	int		 mail_timeout;
	int		 rcpt_timeout;
	int		 data_init_timeout;
	int		 data_xfer_timeout;
	int		 data_done_timeout;
	int		 quit_timeout;
	int		 starttls_timeout;
	/*
	 * smtp_per_request_deadline: each timeout above is the total for a
	 * command and its whole reply (the message content: data_xfer plus
	 * its size at min_data_rate bytes a second), not an idle limit that
	 * every byte restarts. The TLS handshake always has one total limit.
	 */
	int		 per_request_deadline;
	int		 min_data_rate;		/* smtp_min_data_rate; 0: 500 */
	/* Called as each step of the set-up starts (postern check), or NULL. */
	void		(*progress)(void *arg, const char *step);
	void		*progress_arg;
};

/*
 * What a session saw while it was set up, for `postern check` (and the
 * worker's relay= when the set-up failed). With MX hosts tried in turn,
 * it describes the last one tried.
 */
struct smtp_report {
	int		 connected;
	char		 host[256];		/* the server's name (MX host) */
	char		 addr[64];		/* the peer's address */
	char		 greeting[512];
	char		 ehlo[1024];		/* keywords of the last EHLO */
	int		 starttls_offered;	/* in the first EHLO reply */
	int		 tls_tried;
	struct tls_info	 tls;
	char		 auth_offered[256];	/* the AUTH parameter */
	char		 auth_mech[32];		/* the mechanism chosen */
	int		 auth_tried;
	int		 auth_ok;
};

/* The outcome of one step, or of one recipient. */
struct smtp_result {
	int	code;		/* SMTP reply code; 0 when none (network) */
	char	dsn[16];	/* enhanced status "4.4.1", always filled */
	int	kind;		/* 2 done, 4 temporary, 5 permanent */
	int	dup;		/* 1: connection lost after the final dot */
	int	auth;		/* 1: the server refused the SASL login */
	int	relayed;	/* 1: accepted by a server that offers no DSN
				   (it will not report the delivery) */
	char	text[512];	/* "host ... said: 550 5.1.1 no such user (in
				   reply to RCPT TO command)" or "connect to
				   host[1.2.3.4]:25: Connection refused" */
	/* Facts for trouble.c, set with a server's refusal: */
	int	pre_rcpt;	/* 1: to the greeting, EHLO or MAIL FROM */
	int	login;		/* SMTP_LOGIN_*: what AUTH did */
	int	tls;		/* 1: the refusal came over TLS */
};

/* What happened about AUTH in a session (smtp_result.login). */
enum {
	SMTP_LOGIN_NONE,	/* no login configured for this relay */
	SMTP_LOGIN_UNOFFERED,	/* one configured; the server offered no AUTH */
	SMTP_LOGIN_DONE,	/* logged in */
};

struct smtp_session;

/*
 * Connect, read the greeting, EHLO (HELO when EHLO is refused), TLS and
 * AUTH as configured. A relay with r->mx set is a domain: its MX hosts
 * are looked up (dns.h; no MX records: the domain itself) and tried in
 * order of preference, each with all its addresses, until one gives a
 * usable session; a refused login stops the search. Otherwise r->host's
 * addresses are tried in turn. Returns the session, or NULL with the
 * reason in *res: the last server's failure (kind 4 for network trouble
 * and 4xx, kind 5 for a 5xx greeting or HELO refusal), or the DNS
 * failure (kind 5 with dsn 5.4.4 for a domain that does not exist,
 * 5.1.10 for a null MX; kind 4 with 4.4.3 for resolver trouble).
 */
struct smtp_session *smtp_open(const struct smtp_relay *r,
    const struct smtp_opts *o, struct smtp_result *res);
/*
 * "host[addr]:port" of the connected peer, for relay= in log lines; host
 * is the MX host used for a relay looked up in DNS.
 */
const char *smtp_peer(const struct smtp_session *s);
/* 1 when the server announced the EHLO keyword (e.g. "PIPELINING"). */
int smtp_has_ext(const struct smtp_session *s, const char *keyword);
/*
 * The parameters announced with an EHLO keyword ("PLAIN LOGIN" for AUTH,
 * "" when none), or NULL when the keyword was not announced.
 */
const char *smtp_ext_param(const struct smtp_session *s,
    const char *keyword);

/*
 * The DSN parameters of a transaction (RFC 3461), as the submitter gave
 * them (sendmail -N, -R, -V); sent only to a server that offers DSN.
 */
struct smtp_dsn {
	const char		*notify;	/* NOTIFY=, e.g. "FAILURE,DELAY" */
	const char		*ret;		/* RET=: "FULL" or "HDRS" */
	const char		*envid;		/* ENVID= (xtext-encoded here) */
	const char *const	*orcpt;		/* per recipient: ORCPT=rfc822;
						   the address as submitted */
};

/*
 * One mail transaction. msg holds the message with LF line ends (it is
 * sent with CRLF, dot-stuffed; bare CR becomes a line break; lines over
 * line_limit are folded without losing content). eightbit requests
 * BODY=8BITMIME when offered; SIZE= is sent when offered. dsn (NULL, or
 * any member NULL: none) adds RET=, ENVID=, NOTIFY= and ORCPT= when the
 * server offers DSN; without DSN, accepted recipients get res.relayed.
 * Fills res[0..n-1], one per recipient (all with the same result when
 * MAIL FROM, DATA or the final dot fails).
 * Returns 0 when the session can carry another transaction, -1 when it
 * is broken (then every recipient without a result got a kind 4 one).
 */
int smtp_send(struct smtp_session *s, const char *sender,
    const char *const *rcpts, size_t n, const char *msg, size_t msglen,
    int eightbit, const struct smtp_dsn *dsn, struct smtp_result *res);
/*
 * MAIL FROM:<sender>, then RSET, sending no mail (postern check: does
 * the relay take mail from this session, e.g. without a login?).
 * Returns 0 when MAIL FROM was accepted, or -1 with the reply in *res.
 */
int smtp_probe_mail(struct smtp_session *s, const char *sender,
    struct smtp_result *res);
/* RSET between transactions; 0, or -1 when the session is broken. */
int smtp_rset(struct smtp_session *s);
/* QUIT (best effort), close and free. */
void smtp_close(struct smtp_session *s);

/*
 * Parse one or more reply lines (pure, strict: three digits, '-' or ' ',
 * text, CRLF; at most 512 octets a line and 100 lines). On a complete
 * reply returns the number of bytes consumed and sets *code and text
 * (lines joined by a space, without codes; truncated to textlen).
 * Returns 0 when more input is needed, -1 on a protocol error.
 */
long smtp_reply_parse(const char *in, size_t len, int *code, char *text,
    size_t textlen);
/*
 * The enhanced status code (RFC 3463) of a reply (pure): the "X.Y.Z" its
 * text starts with when X is the class of code, else "X.0.0". Returns 1
 * when the text supplied it, 0 for the default.
 */
int smtp_reply_dsn(int code, const char *text, char *dsn, size_t dsnlen);

#endif
