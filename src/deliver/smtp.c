/*
 * smtp.c - the SMTP client: relay syntax, reply parsing, one session.
 *
 * A session is: connect (conn.c), 220 greeting, EHLO (HELO fallback),
 * the TLS gate, then transactions. A transaction writes MAIL, every RCPT
 * and DATA as one pipelined group when the server offers PIPELINING (one
 * write, then the replies in order), else one command at a time, then
 * the DATA stream from body.c. Each recipient gets one smtp_result whose
 * text reads like Postfix's, so the log lines and bounces look familiar.
 *
 * A relay written without brackets is a domain: its MX hosts (dns.c) are
 * tried in order, each with all its addresses, until one of them gives a
 * usable session; the log names the host actually used. A refused login
 * ends the search (the same account at the next host would be refused
 * too, and repeated failures can lock it).
 *
 * Nothing here decides to defer or bounce: results are reported, and
 * trouble.c applies the policy. The session is marked broken at the
 * first network or protocol error; it then carries no more commands.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>

#include "deliver/body.h"
#include "deliver/conn.h"
#include "deliver/dns.h"
#include "deliver/sasl.h"
#include "deliver/smtp.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/addr.h"
#include "mail/dsn.h"

#define REPLY_LINE_MAX	512	/* octets a reply line, CRLF included */
#define REPLY_LINES_MAX	100
#define AUTH_STEPS_MAX	10	/* challenges in one AUTH exchange */

/* An EHLO keyword and its parameters. */
struct smtp_ext {
	char	*kw;		/* upper case */
	char	*param;		/* "" when none */
};

struct smtp_session {
	struct conn	*c;
	struct smtp_opts o;
	char		*helo_name;
	const struct smtp_relay *relay;	/* valid during smtp_open only */
	const char	*host;		/* the server tried (MX host), likewise */
	int		 wrap_upgraded;	/* wrapper mode turned may into encrypt */
	struct tls_policy tlsp;		/* the level and its attributes */
	int		 tls_active;
	char		 hostaddr[320];	/* "host[addr]" */
	char		 peer[330];	/* "host[addr]:port" */
	struct smtp_ext	*ext;
	size_t		 next;
	long long	 size_max;	/* SIZE parameter; 0: no limit */
	int		 broken;
	int64_t		 deadline;	/* the request's total limit; 0: none */
	int		 deadline_hit;	/* that limit, not an idle one, ran out */
	int		 login;		/* SMTP_LOGIN_*, for results */
};

/* One reply as read from the server. */
struct reply {
	int	code;
	char	text[1024];
};

/* Service names known without /etc/services. */
static const struct {
	const char	*name;
	const char	*port;
} services[] = {
	{ "smtp", "25" },
	{ "submission", "587" },
	{ "smtps", "465" },
	{ "submissions", "465" },
};

/* 1 when every byte of s (n bytes) may appear in a relay host name. */
static int
host_chars_ok(const char *s, size_t n, int bracket)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '.' || s[i] == '-' || s[i] == '_')
			continue;
		/* Address literals may be IPv6 with a zone. */
		if (bracket && (s[i] == ':' || s[i] == '%'))
			continue;
		return 0;
	}
	return 1;
}

/* The numeric port for ps (a number or known service name), or NULL. */
static const char *
relay_port(const char *ps, char *num, size_t numlen)
{
	const char *errstr;
	size_t i;
	long long v;

	for (i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (strcasecmp(ps, services[i].name) == 0)
			return services[i].port;
	if (strspn(ps, "0123456789") != strlen(ps))
		return NULL;
	v = strtonum(ps, 1, 65535, &errstr);
	if (errstr != NULL)
		return NULL;
	snprintf(num, numlen, "%lld", v);
	return num;
}

/* Parse "[host]:port", "[host]", "host:port" or "host". */
int
smtp_relay_parse(const char *spec, struct smtp_relay *r, char *err,
    size_t errlen)
{
	const char *hs, *he, *ps = NULL, *port;
	char num[8];
	int bracket;

	memset(r, 0, sizeof(*r));
	if (spec == NULL || *spec == '\0') {
		snprintf(err, errlen, "empty relay host");
		return -1;
	}
	bracket = spec[0] == '[';
	if (bracket) {
		hs = spec + 1;
		if ((he = strchr(hs, ']')) == NULL) {
			snprintf(err, errlen, "relay \"%s\": missing \"]\"",
			    spec);
			return -1;
		}
		if (he[1] == ':')
			ps = he + 2;
		else if (he[1] != '\0') {
			snprintf(err, errlen, "relay \"%s\": unexpected text "
			    "after \"]\"", spec);
			return -1;
		}
	} else {
		hs = spec;
		he = strchr(hs, ':');
		if (he != NULL && strchr(he + 1, ':') != NULL) {
			snprintf(err, errlen, "relay \"%s\": an IPv6 address "
			    "must be written in brackets, as [::1]:25", spec);
			return -1;
		}
		if (he != NULL)
			ps = he + 1;
		else
			he = hs + strlen(hs);
	}
	if (he == hs || !host_chars_ok(hs, (size_t)(he - hs), bracket)) {
		snprintf(err, errlen, "relay \"%s\": %s host name", spec,
		    he == hs ? "empty" : "invalid");
		return -1;
	}
	port = ps == NULL ? "25" : relay_port(ps, num, sizeof(num));
	if (port == NULL) {
		snprintf(err, errlen, "relay \"%s\": port \"%s\" is neither "
		    "a number from 1 to 65535 nor one of smtp, submission, "
		    "smtps, submissions", spec, ps);
		return -1;
	}
	r->host = xstrndup(hs, (size_t)(he - hs));
	r->port = xstrdup(port);
	r->mx = !bracket;
	r->text = xstrdup(spec);
	return 0;
}

/* Free what smtp_relay_parse allocated. */
void
smtp_relay_free(struct smtp_relay *r)
{
	if (r == NULL)
		return;
	free(r->host);
	free(r->port);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

/*
 * Check one complete reply line of n octets (CRLF included) against the
 * grammar; returns its code, or -1. *last is set for a final line.
 */
static int
reply_line(const char *p, size_t n, int *last)
{
	size_t i;

	if (n < 5 || p[n - 2] != '\r')
		return -1;
	if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' ||
	    p[2] < '0' || p[2] > '9')
		return -1;
	/* "250\r\n" is a final line with no text. */
	if (n == 5) {
		*last = 1;
		return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	}
	if (p[3] != ' ' && p[3] != '-')
		return -1;
	for (i = 4; i < n - 2; i++)
		if (p[i] == '\r' || p[i] == '\0')
			return -1;
	*last = p[3] == ' ';
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* Append a line's text to text, joined by a space, truncated. */
static void
reply_text(char *text, size_t textlen, size_t *tl, const char *p, size_t n)
{
	size_t i;

	if (n == 0 || textlen == 0)
		return;
	if (*tl > 0 && *tl + 1 < textlen)
		text[(*tl)++] = ' ';
	for (i = 0; i < n && *tl + 1 < textlen; i++)
		text[(*tl)++] = p[i];
	text[*tl] = '\0';
}

/* Parse one complete reply (see smtp.h). */
long
smtp_reply_parse(const char *in, size_t len, int *code, char *text,
    size_t textlen)
{
	const char *p, *lf;
	size_t off = 0, avail, n, tl = 0, lines = 0;
	int c, first = -1, last = 0;

	if (textlen > 0)
		text[0] = '\0';
	while (!last) {
		p = in + off;
		avail = len - off;
		lf = memchr(p, '\n', avail < REPLY_LINE_MAX ? avail :
		    REPLY_LINE_MAX);
		if (lf == NULL)
			return avail >= REPLY_LINE_MAX ? -1 : 0;
		n = (size_t)(lf - p) + 1;
		if ((c = reply_line(p, n, &last)) == -1)
			return -1;
		/* Every line of one reply carries the same code. */
		if (first != -1 && c != first)
			return -1;
		if (++lines > REPLY_LINES_MAX)
			return -1;
		first = c;
		reply_text(text, textlen, &tl, p + 4, n > 5 ? n - 6 : 0);
		off += n;
	}
	*code = first;
	return (long)off;
}

/* The number of decimal digits p starts with. */
static size_t
digits(const char *p)
{
	size_t n = 0;

	while (p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

/* The enhanced status code of a reply; see smtp.h. */
int
smtp_reply_dsn(int code, const char *text, char *dsn, size_t dsnlen)
{
	size_t i = 2, d;

	/* "X.Y.Z" then space or end, X the class, Y and Z 1-3 digits. */
	if (text[0] == '0' + code / 100 && text[1] == '.') {
		d = digits(text + i);
		if (d >= 1 && d <= 3 && text[i + d] == '.') {
			i += d + 1;
			d = digits(text + i);
			i += d;
			if (d >= 1 && d <= 3 && (text[i] == ' ' ||
			    text[i] == '\0') && i < dsnlen) {
				memcpy(dsn, text, i);
				dsn[i] = '\0';
				return 1;
			}
		}
	}
	snprintf(dsn, dsnlen, "%d.0.0", code / 100);
	return 0;
}

/* Format a result's text; long server text is cut to fit, on purpose. */
static void __attribute__((format(printf, 2, 3)))
set_text(struct smtp_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

/* The kind of result a reply code means: 2, 4 or 5. */
static int
reply_kind(int code)
{
	if (code / 100 == 2)
		return 2;
	return code / 100 == 5 ? 5 : 4;
}

/* Fill res from a server reply: "host H[a] said: 550 ... (in reply to X)". */
static void
res_reply(const struct smtp_session *s, const struct reply *rp,
    const char *cmd, struct smtp_result *res)
{
	res->code = rp->code;
	res->kind = reply_kind(rp->code);
	res->dup = 0;
	res->auth = 0;
	res->relayed = 0;
	/* What trouble.c needs to tell a relay-wide refusal from a
	   recipient's. */
	res->pre_rcpt = cmd == NULL || strcmp(cmd, "MAIL FROM command") == 0 ||
	    strcmp(cmd, "EHLO command") == 0 || strcmp(cmd, "HELO command") == 0;
	res->login = s->login;
	res->tls = s->tls_active;
	smtp_reply_dsn(rp->code, rp->text, res->dsn, sizeof(res->dsn));
	if (cmd == NULL)
		set_text(res, "%d%s%s", rp->code,
		    rp->text[0] ? " " : "", rp->text);
	else
		set_text(res, "host %s said: %d%s%s "
		    "(in reply to %s)", s->hostaddr, rp->code,
		    rp->text[0] ? " " : "", rp->text, cmd);
}

/* Fill res for a network or protocol failure while doing phase (errno). */
static void
res_net(const struct smtp_session *s, const char *phase, int err,
    struct smtp_result *res)
{
	res->code = 0;
	res->kind = 4;
	res->dup = 0;
	res->auth = 0;
	res->relayed = 0;
	res->pre_rcpt = res->login = res->tls = 0;
	strlcpy(res->dsn, "4.4.2", sizeof(res->dsn));
	if (err == ETIMEDOUT)
		snprintf(res->text, sizeof(res->text), "conversation with %s "
		    "timed out while %s%s", s->hostaddr, phase,
		    s->deadline_hit ? " (the total time allowed ran out: "
		    "smtp_per_request_deadline)" : "");
	else if (err == EPROTO) {
		strlcpy(res->dsn, "4.5.0", sizeof(res->dsn));
		snprintf(res->text, sizeof(res->text), "malformed reply from "
		    "%s while %s", s->hostaddr, phase);
	} else
		snprintf(res->text, sizeof(res->text), "lost connection with "
		    "%s while %s", s->hostaddr, phase);
}

/* Fill res with a locally made result. */
static void __attribute__((format(printf, 4, 5)))
res_local(struct smtp_result *res, int kind, const char *dsn,
    const char *fmt, ...)
{
	va_list ap;

	res->code = 0;
	res->kind = kind;
	res->dup = 0;
	res->auth = 0;
	res->relayed = 0;
	res->pre_rcpt = res->login = res->tls = 0;
	strlcpy(res->dsn, dsn, sizeof(res->dsn));
	va_start(ap, fmt);
	vsnprintf(res->text, sizeof(res->text), fmt, ap);
	va_end(ap);
}

/* Put a hint that names the fix in front of res's text. */
static void __attribute__((format(printf, 2, 3)))
res_hint(struct smtp_result *res, const char *fmt, ...)
{
	char hint[300], old[sizeof(res->text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hint, sizeof(hint), fmt, ap);
	va_end(ap);
	strlcpy(old, res->text, sizeof(old));
	/* The server's words are cut before the fix, on purpose. */
	strlcpy(res->text, hint, sizeof(res->text));
	strlcat(res->text, "; ", sizeof(res->text));
	strlcat(res->text, old, sizeof(res->text));
}

/* Tell the caller (postern check) that a step of the set-up starts. */
static void __attribute__((format(printf, 2, 3)))
step(const struct smtp_session *s, const char *fmt, ...)
{
	char what[400];
	va_list ap;

	if (s->o.progress == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	s->o.progress(s->o.progress_arg, what);
}

/* Queue one command line (CRLF added); text is never a secret here. */
static void
put_cmd(struct smtp_session *s, const char *a, const char *b,
    const char *c)
{
	struct buf *out = conn_out(s->c);

	buf_adds(out, a);
	if (b != NULL)
		buf_adds(out, b);
	if (c != NULL)
		buf_adds(out, c);
	log_debug("> %s%s%s", a, b ? b : "", c ? c : "");
	buf_add(out, "\r\n", 2);
}

/*
 * smtp_per_request_deadline: a request (a command and its reply, or the
 * message content) gets ms in total from its first byte, however the
 * peer trickles bytes. Already armed (the command was flushed, now its
 * reply is read): the deadline stands.
 */
static void
deadline_arm(struct smtp_session *s, int64_t ms)
{
	if (!s->o.per_request_deadline || s->deadline != 0)
		return;
	s->deadline = now_mono_ms() + ms;
	s->deadline_hit = 0;
	conn_set_deadline(s->c, s->deadline);
}

/* The request is over (or failed): no total limit until the next. */
static void
deadline_end(struct smtp_session *s, int failed)
{
	if (s->deadline == 0)
		return;
	if (failed && errno == ETIMEDOUT && now_mono_ms() >= s->deadline)
		s->deadline_hit = 1;
	s->deadline = 0;
	conn_set_deadline(s->c, 0);
}

/* Write the queued commands; 0, or -1 with errno and the session broken. */
static int
flush(struct smtp_session *s, int timeout)
{
	deadline_arm(s, (int64_t)timeout * 1000);
	if (conn_flush(s->c, timeout) == 0)
		return 0;
	deadline_end(s, 1);
	s->broken = 1;
	return -1;
}

/*
 * Read one reply (raw bytes appended to raw when not NULL). Returns 0,
 * or -1 with errno (ETIMEDOUT, EPROTO, else lost) and the session broken.
 */
static int
read_reply(struct smtp_session *s, int timeout, struct reply *rp,
    struct buf *raw)
{
	struct buf *in = conn_in(s->c);
	ssize_t got;
	long n;

	deadline_arm(s, (int64_t)timeout * 1000);
	for (;;) {
		n = smtp_reply_parse(in->data ? in->data : "", in->len,
		    &rp->code, rp->text, sizeof(rp->text));
		if (n > 0) {
			if (raw != NULL)
				buf_add(raw, in->data, (size_t)n);
			buf_consume(in, (size_t)n);
			log_debug("< %d %s", rp->code, rp->text);
			/* RFC 5321 3.8: 421 means the server is closing the
			   channel, whatever command it answers: no QUIT, no
			   further command, no other reply to wait for. */
			if (rp->code == 421)
				s->broken = 1;
			deadline_end(s, 0);
			return 0;
		}
		if (n < 0) {
			errno = EPROTO;
			break;
		}
		if ((got = conn_fill(s->c, timeout)) <= 0) {
			if (got == 0)
				errno = ECONNRESET;
			break;
		}
	}
	deadline_end(s, 1);
	s->broken = 1;
	return -1;
}

/* Write queued commands and read one reply. */
static int
command(struct smtp_session *s, int timeout, struct reply *rp)
{
	if (flush(s, timeout) == -1)
		return -1;
	return read_reply(s, timeout, rp, NULL);
}

/* Remember one EHLO line "KEYWORD params" (or the old "AUTH=..."). */
static void
ehlo_line(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_ext *e;
	const char *errstr;
	size_t k, i;

	k = strcspn(p, " =");
	if (k > n)
		k = n;
	if (k == 0)
		return;
	s->ext = xreallocarray(s->ext, s->next + 1, sizeof(*s->ext));
	e = &s->ext[s->next++];
	e->kw = xstrndup(p, k);
	for (i = 0; i < k; i++)
		if (e->kw[i] >= 'a' && e->kw[i] <= 'z')
			e->kw[i] = (char)(e->kw[i] - 'a' + 'A');
	e->param = xstrndup(p + (k < n ? k + 1 : k), k < n ? n - k - 1 : 0);
	if (strcmp(e->kw, "SIZE") == 0 && e->param[0] != '\0') {
		s->size_max = strtonum(e->param, 0, LLONG_MAX, &errstr);
		if (errstr != NULL)
			s->size_max = 0;
	}
}

/* Record the keywords of a raw EHLO reply (every line but the first). */
static void
ehlo_parse(struct smtp_session *s, const char *raw, size_t len)
{
	const char *p = raw, *end = raw + len, *lf;
	char line[REPLY_LINE_MAX];
	size_t n;

	/* The reply was validated: each line is "250[- ]text\r\n". */
	while (p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n = (size_t)(lf - p) + 1;
		if (p != raw && n > 6) {
			memcpy(line, p + 4, n - 6);
			line[n - 6] = '\0';
			ehlo_line(s, line, n - 6);
		}
		p += n;
	}
}

/* Read the 220 greeting. */
static int
greeting(struct smtp_session *s, struct smtp_result *res)
{
	struct reply rp;

	step(s, "waiting for the server's greeting (up to %ds)",
	    s->o.helo_timeout);
	if (read_reply(s, s->o.helo_timeout, &rp, NULL) == -1) {
		res_net(s, "receiving the initial server greeting", errno,
		    res);
		/* Silence from a port that waits for a TLS ClientHello. */
		if (!s->o.tls_wrapper && conn_in(s->c)->len == 0)
			res_hint(res, "%s", strcmp(s->relay->port, "465") == 0 ?
			    "port 465 needs smtp_tls_wrappermode = yes" :
			    "no greeting: a port that expects TLS at once "
			    "(465, smtps) needs smtp_tls_wrappermode = yes");
		return -1;
	}
	if (s->o.report != NULL) {
		/* A long greeting is cut to fit the report, on purpose. */
		snprintf(s->o.report->greeting, sizeof(s->o.report->greeting),
		    "%d ", rp.code);
		strlcat(s->o.report->greeting, rp.text,
		    sizeof(s->o.report->greeting));
	}
	if (rp.code / 100 == 2)
		return 0;
	res_reply(s, &rp, NULL, res);
	res->kind = reply_kind(rp.code) == 5 ? 5 : 4;
	set_text(res, "host %s refused to talk to "
	    "me: %d %s", s->hostaddr, rp.code, rp.text);
	return -1;
}

/* EHLO, or HELO when EHLO gets a 5xx. */
static int
hello(struct smtp_session *s, struct smtp_result *res)
{
	struct buf raw = BUF_INIT;
	struct reply rp;
	const char *phase = "performing the EHLO handshake";
	int rc = -1, t = s->o.helo_timeout;

	step(s, "EHLO %s", s->helo_name);
	put_cmd(s, "EHLO ", s->helo_name, NULL);
	if (flush(s, t) == -1 || read_reply(s, t, &rp, &raw) == -1)
		goto net;
	if (rp.code / 100 == 2) {
		/* The keywords are read from the raw reply, line by line. */
		ehlo_parse(s, raw.data, raw.len);
		rc = 0;
		goto out;
	}
	if (rp.code / 100 != 5) {
		res_reply(s, &rp, "EHLO command", res);
		goto out;
	}
	/* An old server: say HELO and use no extensions. */
	phase = "performing the HELO handshake";
	put_cmd(s, "HELO ", s->helo_name, NULL);
	if (command(s, t, &rp) == -1)
		goto net;
	if (rp.code / 100 == 2)
		rc = 0;
	else
		res_reply(s, &rp, "HELO command", res);
	goto out;
net:
	res_net(s, phase, errno, res);
out:
	buf_free(&raw);
	return rc;
}

/* A timeout option, or Postfix's usual 300 s when unset. */
static int
tmo(int t)
{
	return t > 0 ? t : 300;
}

/* Forget the EHLO keywords (before EHLO is sent again over TLS). */
static void
ehlo_forget(struct smtp_session *s)
{
	size_t i;

	for (i = 0; i < s->next; i++) {
		free(s->ext[i].kw);
		free(s->ext[i].param);
	}
	free(s->ext);
	s->ext = NULL;
	s->next = 0;
	s->size_max = 0;
}

/* A 4.7.5 result: TLS was required and is not there. Nothing was sent. */
static void __attribute__((format(printf, 3, 4)))
res_tls(const struct smtp_session *s, struct smtp_result *res,
    const char *fmt, ...)
{
	char why[400];
	va_list ap;

	char src[80];

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Say where the level came from: that is what one would change. */
	if (s->wrap_upgraded)
		strlcpy(src, "smtp_tls_wrappermode = yes", sizeof(src));
	else
		snprintf(src, sizeof(src), s->tlsp.from_map ?
		    "smtp_tls_policy_maps (%s)" : "smtp_tls_security_level = %s",
		    tls_level_name(s->tlsp.level));
	if (tls_level_mandatory(s->tlsp.level))
		res_local(res, 4, "4.7.5", "TLS is required by %s, but %s; no "
		    "mail was sent", src, why);
	else
		res_local(res, 4, "4.7.5", "TLS failed (%s): %s; no mail was "
		    "sent", src, why);
}

/*
 * The TLS handshake on the connection, then the policy check. Returns 0,
 * or -1 with res set; *hs_failed tells a failed handshake (a "may"
 * session may then try again in clear text) from a refused peer.
 */
static int
tls_begin(struct smtp_session *s, struct smtp_result *res, int *hs_failed)
{
	struct tls_info scratch, *info = s->o.report ? &s->o.report->tls :
	    &scratch;
	char err[400];

	*hs_failed = 0;
	if (s->o.report)
		s->o.report->tls_tried = 1;
	if (s->o.tls == NULL) {
		res_tls(s, res, "TLS is not set up in this process");
		return -1;
	}
	if (tls_start(s->o.tls, s->c, s->host, s->relay->host, s->relay->port,
	    s->peer, &s->tlsp, s->o.starttls_timeout, info, err,
	    sizeof(err)) < 0) {
		*hs_failed = !info->active;
		res_tls(s, res, "TLS with %s failed: %s", s->peer, err);
		return -1;
	}
	s->tls_active = 1;
	return 0;
}

/*
 * STARTTLS when the level asks for it (after the first EHLO), then EHLO
 * again over TLS. Clear text goes on only at level may, and is logged.
 */
static int
starttls(struct smtp_session *s, struct smtp_result *res, int *hs_failed)
{
	struct reply rp;
	int t = s->o.helo_timeout, mand = tls_level_mandatory(s->tlsp.level);

	*hs_failed = 0;
	if (s->tlsp.level == TLS_LEV_NONE)
		return 0;
	if (!smtp_has_ext(s, "STARTTLS")) {
		if (mand) {
			res_tls(s, res, "host %s offered no STARTTLS "
			    "(a server without TLS, or something in between "
			    "that removed it)", s->hostaddr);
			return -1;
		}
		if (s->o.tls_loglevel >= 1)
			log_info("Cleartext SMTP connection to %s: the server "
			    "offered no STARTTLS (smtp_tls_security_level = "
			    "may)", s->peer);
		return 0;
	}
	step(s, "STARTTLS and the TLS handshake");
	put_cmd(s, "STARTTLS", NULL, NULL);
	if (command(s, t, &rp) == -1) {
		res_net(s, "sending STARTTLS", errno, res);
		return -1;
	}
	if (rp.code / 100 != 2) {
		if (mand) {
			res_tls(s, res, "host %s refused STARTTLS: %d %s",
			    s->hostaddr, rp.code, rp.text);
			return -1;
		}
		if (s->o.tls_loglevel >= 1)
			log_info("Cleartext SMTP connection to %s: STARTTLS "
			    "refused (%d %s)", s->peer, rp.code, rp.text);
		return 0;
	}
	/* Bytes that came with the 220 were sent before TLS: an attack. */
	if (conn_in(s->c)->len > 0) {
		res_tls(s, res, "host %s sent data after its reply to "
		    "STARTTLS (a command injection attempt?)", s->hostaddr);
		s->broken = 1;
		return -1;
	}
	if (tls_begin(s, res, hs_failed) < 0) {
		s->broken = 1;
		return -1;
	}
	ehlo_forget(s);
	return hello(s, res);
}

/* Queue a line holding a secret: logged without it. */
static void
put_secret(struct smtp_session *s, const char *visible, const char *secret)
{
	struct buf *out = conn_out(s->c);

	buf_adds(out, visible);
	buf_adds(out, secret);
	log_debug("> %s(not shown)", visible);
	buf_add(out, "\r\n", 2);
}

/* Write the queued lines, then wipe the output buffer's memory. */
static int
flush_secret(struct smtp_session *s, int timeout)
{
	int rc = flush(s, timeout);

	buf_wipe(conn_out(s->c));
	return rc;
}

/* A failed login, with the server's words; trouble.c defers it
   (smtp_sasl_auth_soft_bounce). */
static void
res_auth(struct smtp_session *s, const struct reply *rp,
    struct smtp_result *res)
{
	res_reply(s, rp, NULL, res);
	res->auth = 1;
	res->pre_rcpt = 0;
	set_text(res, "SASL authentication failed; server %s said: %d %s",
	    s->hostaddr, rp->code, rp->text);
}

/* The mechanism for this connection, or -1 with res set. */
static int
auth_choose(struct smtp_session *s, const char *offered, struct sasl_cb *cb,
    char *mech, size_t mechlen, struct smtp_result *res)
{
	const struct smtp_auth *a = s->o.auth;
	char why[400];

	memset(cb, 0, sizeof(*cb));
	if (s->tls_active)
		cb->type = tls_channel_binding(s->c, cb->data,
		    sizeof(cb->data), &cb->len);
	if (sasl_choose(offered, a->mech_filter, s->tls_active ?
	    a->tls_secflags : a->secflags, cb->type != NULL, mech, mechlen,
	    why, sizeof(why)) == 0)
		return 0;
	res_local(res, 4, "4.7.0", "SASL authentication failed; cannot "
	    "authenticate to server %s: %s", s->hostaddr, why);
	return -1;
}

/*
 * Run the AUTH exchange with sc: the first command (with its initial
 * response), then one response per 334 challenge, until 235 or a
 * refusal. Returns 0, or -1 with res set.
 */
static int
auth_dialogue(struct smtp_session *s, struct sasl_client *sc,
    const char *mech, struct smtp_result *res)
{
	char cmd[48], why[300], *out = NULL;
	enum sasl_rc st = SASL_STEP_MORE;
	struct reply rp;
	int t = s->o.helo_timeout, steps = 0, rc = -1;

	snprintf(cmd, sizeof(cmd), "AUTH %s", mech);
	if (sasl_client_first(sc)) {
		if ((st = sasl_step(sc, NULL, &out, why, sizeof(why))) ==
		    SASL_STEP_ERROR)
			goto local;
		strlcat(cmd, " ", sizeof(cmd));
		put_secret(s, cmd, out[0] ? out : "=");
	} else
		put_cmd(s, cmd, NULL, NULL);
	for (;;) {
		sasl_free_out(out);
		out = NULL;
		if (flush_secret(s, t) == -1 || read_reply(s, t, &rp, NULL) ==
		    -1) {
			res_net(s, "performing the AUTH handshake", errno, res);
			goto done;
		}
		if (rp.code == 235) {
			rc = 0;
			goto done;
		}
		if (rp.code != 334) {
			res_auth(s, &rp, res);
			goto done;
		}
		if (++steps > AUTH_STEPS_MAX || (st == SASL_STEP_DONE &&
		    strcmp(mech, "XOAUTH2") != 0 &&
		    strcmp(mech, "OAUTHBEARER") != 0)) {
			strlcpy(why, "the server asked for more after the "
			    "exchange was complete", sizeof(why));
			goto cancel;
		}
		if ((st = sasl_step(sc, rp.text, &out, why, sizeof(why))) ==
		    SASL_STEP_ERROR)
			goto cancel;
		put_secret(s, "", out);
	}
cancel:
	/* RFC 4954: "*" cancels; the server answers 501. */
	put_cmd(s, "*", NULL, NULL);
	if (flush(s, t) == 0)
		(void)read_reply(s, t, &rp, NULL);
local:
	res_local(res, 4, "4.7.0", "SASL authentication failed; cannot "
	    "authenticate to server %s: %s", s->hostaddr, why);
done:
	sasl_free_out(out);
	return rc;
}

/*
 * The password (or token) goes only over TLS whose peer was verified
 * (levels fingerprint, verify, secure), whatever the mechanism: a
 * challenge-response exchange still hands a passive listener material
 * for an offline guess, and an unverified peer may be anyone. The two
 * parameters that lower this say so in their names. 0, or -1 with res.
 */
static int
auth_channel_ok(struct smtp_session *s, struct smtp_result *res)
{
	const struct smtp_auth *a = s->o.auth;
	const char *lev = tls_level_name(s->tlsp.level);

	if (a->allow_unencrypted || (s->tls_active &&
	    (a->allow_unverified || s->tlsp.level >= TLS_LEV_FINGERPRINT)))
		return 0;
	if (!s->tls_active)
		res_local(res, 4, "4.7.0", "SASL login not sent: the connection "
		    "to %s is not encrypted (smtp_tls_security_level = %s); set "
		    "smtp_tls_security_level = verify, or "
		    "smtp_sasl_allow_unencrypted = yes to send the password "
		    "in clear text anyway", s->hostaddr, lev);
	else
		res_local(res, 4, "4.7.0", "SASL login not sent: the TLS "
		    "connection to %s is not verified (level %s), so the "
		    "password could go to an impostor; set "
		    "smtp_tls_security_level = verify, or "
		    "smtp_sasl_allow_unverified_tls = yes", s->hostaddr, lev);
	return -1;
}

/*
 * SMTP AUTH when configured and offered (a server that does not offer
 * AUTH gets the mail without it, as with Postfix). Returns 0, or -1
 * with res set: a failed login defers, it never bounces.
 */
static int
auth(struct smtp_session *s, struct smtp_result *res)
{
	const struct smtp_auth *a = s->o.auth;
	struct smtp_report *rep = s->o.report;
	const char *offered = smtp_ext_param(s, "AUTH");
	struct sasl_client *sc;
	struct sasl_cb cb;
	char mech[32], why[300];
	int rc;

	if (a == NULL || a->user == NULL)
		return 0;
	if (offered == NULL) {
		log_debug("%s offers no AUTH; sending without it", s->peer);
		s->login = SMTP_LOGIN_UNOFFERED;
		return 0;
	}
	if (rep != NULL)
		strlcpy(rep->auth_offered, offered, sizeof(rep->auth_offered));
	if (auth_channel_ok(s, res) < 0 ||
	    auth_choose(s, offered, &cb, mech, sizeof(mech), res) < 0)
		return -1;
	step(s, "logging in as \"%s\" with %s", a->user, mech);
	if (rep != NULL) {
		strlcpy(rep->auth_mech, mech, sizeof(rep->auth_mech));
		rep->auth_tried = 1;
	}
	sc = sasl_client_new(mech, a->user, a->secret, s->host,
	    s->relay->port, &cb, why, sizeof(why));
	explicit_bzero(&cb, sizeof(cb));
	if (sc == NULL) {
		res_local(res, 4, "4.7.0", "SASL authentication failed; "
		    "cannot authenticate to server %s: %s", s->hostaddr, why);
		return -1;
	}
	rc = auth_dialogue(s, sc, mech, res);
	sasl_client_free(sc);
	if (rc == 0)
		s->login = SMTP_LOGIN_DONE;
	if (rc == 0 && rep != NULL)
		rep->auth_ok = 1;
	return rc;
}

/*
 * Wrapper mode and a failed handshake: a server that greets in clear
 * text ("220 ", what OpenSSL calls "wrong version number") speaks
 * STARTTLS on this port. A second connection, read for a few seconds,
 * tells; only this failure pays for it.
 */
static void
probe_plain(struct smtp_session *s, struct smtp_result *res)
{
	struct conn *c;
	struct buf *in;
	enum conn_err why;
	char err[300];
	int t = s->o.helo_timeout < 5 ? s->o.helo_timeout : 5;

	c = conn_open(s->host, s->relay->port, s->o.connect_timeout, &why,
	    err, sizeof(err));
	if (c == NULL)
		return;
	in = conn_in(c);
	while (in->len < 4 && conn_fill(c, t) > 0)
		;
	if (in->len >= 4 && memcmp(in->data, "220", 3) == 0 &&
	    (in->data[3] == ' ' || in->data[3] == '-'))
		res_hint(res, "port %s speaks STARTTLS: remove "
		    "smtp_tls_wrappermode (the server greeted in clear text)",
		    s->relay->port);
	conn_close(c);
}

/* One attempt at connect, TLS, greeting and EHLO. */
static int
session_setup(struct smtp_session *s, struct smtp_result *res,
    int *hs_failed)
{
	const struct smtp_relay *r = s->relay;
	struct smtp_report *rep = s->o.report;
	enum conn_err why;

	*hs_failed = 0;
	s->login = SMTP_LOGIN_NONE;
	step(s, "connecting to %s port %s (up to %ds)", s->host, r->port,
	    s->o.connect_timeout);
	s->c = conn_open(s->host, r->port, s->o.connect_timeout, &why,
	    res->text, sizeof(res->text));
	if (s->c == NULL) {
		res->kind = 4;
		strlcpy(res->dsn, why == CONN_ERR_DNS ? "4.4.4" : "4.4.1",
		    sizeof(res->dsn));
		return -1;
	}
	s->deadline = 0;
	snprintf(s->hostaddr, sizeof(s->hostaddr), "%s[%s]", s->host,
	    conn_addr(s->c));
	snprintf(s->peer, sizeof(s->peer), "%s:%s", s->hostaddr, r->port);
	if (rep) {
		rep->connected = 1;
		strlcpy(rep->host, s->host, sizeof(rep->host));
		strlcpy(rep->addr, conn_addr(s->c), sizeof(rep->addr));
	}
	if (s->o.tls_wrapper) {
		step(s, "TLS handshake at once (smtp_tls_wrappermode = yes)");
		if (tls_begin(s, res, hs_failed) < 0) {
			s->broken = 1;
			if (*hs_failed)
				probe_plain(s, res);
			return -1;
		}
	}
	if (greeting(s, res) == -1 || hello(s, res) == -1)
		return -1;
	if (rep)
		rep->starttls_offered = smtp_has_ext(s, "STARTTLS");
	if (!s->o.tls_wrapper && starttls(s, res, hs_failed) == -1)
		return -1;
	return auth(s, res);
}

/* Text of the EHLO keywords, for the report. */
static void
report_ehlo(struct smtp_session *s)
{
	struct smtp_report *rep = s->o.report;
	size_t i;

	rep->ehlo[0] = '\0';
	for (i = 0; i < s->next; i++) {
		if (i > 0)
			strlcat(rep->ehlo, " ", sizeof(rep->ehlo));
		strlcat(rep->ehlo, s->ext[i].kw, sizeof(rep->ehlo));
	}
}

/* QUIT (best effort) and close the connection, if there is one. */
static void
hang_up(struct smtp_session *s)
{
	struct reply rp;

	if (s->c != NULL && !s->broken) {
		put_cmd(s, "QUIT", NULL, NULL);
		if (flush(s, s->o.quit_timeout) == 0)
			(void)read_reply(s, s->o.quit_timeout, &rp, NULL);
	}
	conn_close(s->c);
	s->c = NULL;
	s->broken = 0;
	s->tls_active = 0;
	ehlo_forget(s);
}

/* 1 when host is an IPv4 or IPv6 address literal. */
static int
is_addr(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

/*
 * 1 for localhost and names below it (RFC 6761 6.3): the loopback host,
 * never to be looked up in DNS, where "no such domain" would bounce mail.
 */
static int
is_localhost(const char *host)
{
	size_t n = strlen(host), k = strlen("localhost");

	if (n > 0 && host[n - 1] == '.')
		n--;
	return n >= k && strncasecmp(host + n - k, "localhost", k) == 0 &&
	    (n == k || host[n - k - 1] == '.');
}

/*
 * The servers to try for relay r: the MX hosts of its domain, or the
 * host itself when it was written in brackets (or is an address or
 * localhost, which have no MX records). 0, or -1 with res set from the
 * DNS failure: kind 5 for a domain that does not exist or takes no mail,
 * else kind 4.
 */
static int
relay_servers(const struct smtp_relay *r, struct dns_mx_list *l,
    struct smtp_result *res)
{
	struct buf b = BUF_INIT;
	char err[sizeof(res->text)];
	enum dns_rc rc;
	size_t i;

	memset(l, 0, sizeof(*l));
	if (!r->mx || is_addr(r->host) || is_localhost(r->host)) {
		l->mx = xcalloc(1, sizeof(*l->mx));
		l->mx[0].host = xstrdup(r->host);
		l->n = 1;
		return 0;
	}
	if ((rc = dns_mx(r->host, l, err, sizeof(err))) != DNS_OK) {
		res_local(res, rc == DNS_PERM ? 5 : 4, l->dsn, "%s", err);
		return -1;
	}
	for (i = 0; i < l->n; i++)
		buf_addf(&b, "%s%s (%u)", i ? ", " : "", l->mx[i].host,
		    l->mx[i].pref);
	log_debug("%s: %s", r->host, l->implicit ? "no MX records; using "
	    "the host itself" : b.data);
	buf_free(&b);
	return 0;
}

/*
 * Set a session up with the server s->host under policy pol. An
 * opportunistic TLS handshake that fails is tried again in clear text.
 */
static int
server_open(struct smtp_session *s, const struct tls_policy *pol,
    struct smtp_result *res)
{
	int hs_failed = 0, rc;

	s->tlsp = *pol;
	memset(res, 0, sizeof(*res));
	if (s->o.report != NULL)
		memset(s->o.report, 0, sizeof(*s->o.report));
	rc = session_setup(s, res, &hs_failed);
	if (rc == -1 && hs_failed && s->tlsp.level == TLS_LEV_MAY) {
		log_info("%s: TLS handshake failed (%s); trying again in "
		    "clear text (smtp_tls_security_level = may)", s->peer,
		    res->text);
		conn_close(s->c);
		s->c = NULL;
		s->broken = 0;
		ehlo_forget(s);
		s->tlsp.level = TLS_LEV_NONE;
		rc = session_setup(s, res, &hs_failed);
	}
	if (s->o.report && s->c != NULL)
		report_ehlo(s);
	return rc;
}

/* Connect, greet, EHLO, TLS, AUTH; see smtp.h. */
struct smtp_session *
smtp_open(const struct smtp_relay *r, const struct smtp_opts *o,
    struct smtp_result *res)
{
	struct smtp_session *s;
	struct tls_policy pol;
	struct dns_mx_list servers = { 0 };
	size_t i;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	s = xcalloc(1, sizeof(*s));
	s->o = *o;
	s->o.connect_timeout = tmo(o->connect_timeout);
	s->o.helo_timeout = tmo(o->helo_timeout);
	s->o.mail_timeout = tmo(o->mail_timeout);
	s->o.rcpt_timeout = tmo(o->rcpt_timeout);
	s->o.data_init_timeout = tmo(o->data_init_timeout);
	s->o.data_xfer_timeout = tmo(o->data_xfer_timeout);
	s->o.data_done_timeout = tmo(o->data_done_timeout);
	s->o.quit_timeout = tmo(o->quit_timeout);
	s->o.starttls_timeout = tmo(o->starttls_timeout);
	if (s->o.line_limit <= 0)
		s->o.line_limit = 998;
	if (s->o.min_data_rate <= 0)
		s->o.min_data_rate = 500;
	s->helo_name = xstrdup(o->helo_name ? o->helo_name : "localhost");
	s->relay = r;
	/* No policy given: the secure default, never clear text. */
	memset(&pol, 0, sizeof(pol));
	if (o->tls_policy != NULL)
		pol = *o->tls_policy;
	else
		pol.level = TLS_LEV_VERIFY;
	/* Wrapper mode is TLS or nothing: "may" means "encrypt" there. */
	if (o->tls_wrapper && pol.level == TLS_LEV_MAY) {
		pol.level = TLS_LEV_ENCRYPT;
		s->wrap_upgraded = 1;
	}
	s->tlsp = pol;
	if (o->tls_wrapper && pol.level == TLS_LEV_NONE) {
		res_local(res, 4, "4.7.5", "smtp_tls_wrappermode = yes needs "
		    "TLS, but smtp_tls_security_level = none; set it to "
		    "encrypt or verify");
		goto out;
	}
	if (relay_servers(r, &servers, res) < 0)
		goto out;
	/* Each server in turn; the last failure is the one reported. */
	for (i = 0; i < servers.n; i++) {
		if (i > 0)
			hang_up(s);
		s->host = servers.mx[i].host;
		if ((rc = server_open(s, &pol, res)) == 0 || res->auth)
			break;
		if (i + 1 < servers.n)
			log_info("%s (trying the next mail exchanger, %s)",
			    res->text, servers.mx[i + 1].host);
	}
out:
	s->host = NULL;
	dns_mx_free(&servers);
	if (rc == -1) {
		smtp_close(s);
		return NULL;
	}
	/* The caller's relay and report are only borrowed for the set-up. */
	memset(res, 0, sizeof(*res));
	s->relay = NULL;
	s->o.report = NULL;
	s->o.auth = NULL;
	return s;
}

/* "host[addr]:port". */
const char *
smtp_peer(const struct smtp_session *s)
{
	return s->peer;
}

/* The EHLO entry for keyword, or NULL. */
static const struct smtp_ext *
find_ext(const struct smtp_session *s, const char *keyword)
{
	size_t i;

	for (i = 0; i < s->next; i++)
		if (strcasecmp(s->ext[i].kw, keyword) == 0)
			return &s->ext[i];
	return NULL;
}

/* 1 when keyword was announced. */
int
smtp_has_ext(const struct smtp_session *s, const char *keyword)
{
	return find_ext(s, keyword) != NULL;
}

/* The parameters announced with keyword, or NULL. */
const char *
smtp_ext_param(const struct smtp_session *s, const char *keyword)
{
	const struct smtp_ext *e = find_ext(s, keyword);

	return e ? e->param : NULL;
}

/* RSET; see smtp.h. */
int
smtp_rset(struct smtp_session *s)
{
	struct reply rp;

	if (s->broken)
		return -1;
	put_cmd(s, "RSET", NULL, NULL);
	if (command(s, s->o.mail_timeout, &rp) == -1)
		return -1;
	/* A server that refuses RSET is in an unknown state: stop. */
	if (rp.code / 100 != 2) {
		s->broken = 1;
		return -1;
	}
	return 0;
}

/* QUIT, close, free. */
void
smtp_close(struct smtp_session *s)
{
	if (s == NULL)
		return;
	hang_up(s);
	free(s->helo_name);
	free(s);
}

/* Recipient states during a transaction. */
enum { RS_DONE, RS_SENT, RS_ACCEPTED };

/* One mail transaction in progress. */
struct txn {
	struct smtp_session	*s;
	const char *const	*rcpts;
	size_t			 n;
	struct smtp_result	*res;
	unsigned char		*st;	/* RS_* per recipient */
	size_t			 nsent;	/* RCPT commands sent */
	size_t			 nacc;	/* recipients accepted */
	const struct smtp_dsn	*dsn;	/* NULL unless the server offers DSN */
	struct buf		 rtail;	/* the RCPT line's end (rcpt_tail) */
};

/* Give r to every accepted (or also every pending) recipient. */
static void
txn_all(struct txn *t, int accepted_only, const struct smtp_result *r)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (t->st[i] == RS_ACCEPTED ||
		    (!accepted_only && t->st[i] == RS_SENT)) {
			t->res[i] = *r;
			t->st[i] = RS_DONE;
		}
}

/* The session broke during phase (errno): all open recipients defer. */
static int
txn_abort(struct txn *t, const char *phase, int dup)
{
	struct smtp_result r;

	res_net(t->s, phase, errno, &r);
	if (dup) {
		/* The server may have taken the message: say so. */
		r.dup = 1;
		strlcat(r.text, " (possible duplicate: lost connection after "
		    "end of data)", sizeof(r.text));
	}
	txn_all(t, 0, &r);
	return -1;
}

/* What follows the address of recipient i's RCPT TO: ">" and NOTIFY= and
   ORCPT= when the server takes DSN parameters. */
static const char *
rcpt_tail(struct txn *t, size_t i)
{
	buf_reset(&t->rtail);
	buf_addc(&t->rtail, '>');
	/* The queue file parser refuses a bad value already; this copy
	   goes on the wire as is, so it is checked again here. */
	if (t->dsn != NULL && t->dsn->notify != NULL) {
		if (dsn_notify_valid(t->dsn->notify))
			buf_addf(&t->rtail, " NOTIFY=%s", t->dsn->notify);
		else
			log_warnx("NOTIFY value not sent: not NEVER nor a "
			    "list of SUCCESS, FAILURE, DELAY");
	}
	if (t->dsn != NULL && t->dsn->orcpt != NULL &&
	    t->dsn->orcpt[i] != NULL) {
		buf_adds(&t->rtail, " ORCPT=rfc822;");
		dsn_xtext(t->dsn->orcpt[i], &t->rtail);
	}
	return t->rtail.data;
}

/*
 * The server answered cmd with 421 and closes the channel: every
 * recipient without a result (accepted ones too: no DATA follows) gets
 * the reply, a deferral. Returns -1 (the session is broken).
 */
static int
txn_closing(struct txn *t, const struct reply *rp, const char *cmd)
{
	struct smtp_result r;

	res_reply(t->s, rp, cmd, &r);
	txn_all(t, 0, &r);
	return -1;
}

/* A RCPT TO reply for recipient i. */
static void
txn_rcpt(struct txn *t, size_t i, const struct reply *rp)
{
	if (rp->code / 100 == 2) {
		t->st[i] = RS_ACCEPTED;
		t->nacc++;
		return;
	}
	res_reply(t->s, rp, "RCPT TO command", &t->res[i]);
	t->st[i] = RS_DONE;
}

/*
 * 1 when an address may go into a command; *utf8 set for 8-bit bytes.
 * A CR or LF would inject a command, a space or '>' an ESMTP parameter
 * (NOTIFY=NEVER after a recipient): addresses from alias_maps and
 * smtp_generic_maps come here without sendmail's syntax check.
 */
static int
addr_ok(const char *a, int *utf8)
{
	const unsigned char *p;

	if (strlen(a) > ADDR_MAX || !addr_wire_ok(a))
		return 0;
	for (p = (const unsigned char *)a; *p; p++)
		if (*p >= 128)
			*utf8 = 1;
	return 1;
}

/*
 * Results that need no server: bad addresses, SMTPUTF8 needed but not
 * offered, a message over the SIZE limit. Returns how many recipients
 * are left to send.
 */
static size_t
txn_check(struct txn *t, const char *sender, size_t size, int *utf8)
{
	struct smtp_session *s = t->s;
	struct smtp_result r;
	size_t i;

	*utf8 = 0;
	if (!addr_ok(sender, utf8)) {
		res_local(&r, 5, "5.1.7", "invalid sender address (a control "
		    "character, whitespace or <> outside quotes, or too "
		    "long): not sent");
		txn_all(t, 0, &r);
		return 0;
	}
	for (i = 0; i < t->n; i++) {
		if (addr_ok(t->rcpts[i], utf8)) {
			t->nsent++;
			continue;
		}
		res_local(&t->res[i], 5, "5.1.3", "invalid recipient address "
		    "(a control character, whitespace or <> outside quotes, "
		    "or too long): not sent");
		t->st[i] = RS_DONE;
	}
	if (t->nsent == 0)
		return 0;
	if (*utf8 && !smtp_has_ext(s, "SMTPUTF8"))
		res_local(&r, 5, "5.6.7", "SMTPUTF8 is required, but was not "
		    "offered by host %s", s->hostaddr);
	else if (s->size_max > 0 && (long long)size > s->size_max)
		res_local(&r, 5, "5.3.4", "message size %zu exceeds size "
		    "limit %lld of server %s", size, s->size_max, s->hostaddr);
	else
		return t->nsent;
	txn_all(t, 0, &r);
	t->nsent = 0;
	return 0;
}

/* Send the DATA stream and read the reply to the final dot. */
static int
txn_body(struct txn *t, const struct buf *body, struct reply *rp)
{
	struct smtp_session *s = t->s;
	struct smtp_result r;

	buf_add(conn_out(s->c), body->data, body->len);
	/* The content's total: the timeout plus the time the minimum rate
	   allows for its size (Postfix's smtp_min_data_rate). */
	deadline_arm(s, (int64_t)s->o.data_xfer_timeout * 1000 +
	    (int64_t)(body->len / (size_t)s->o.min_data_rate) * 1000);
	if (flush(s, s->o.data_xfer_timeout) == -1)
		return txn_abort(t, "sending message body", 0);
	/* The final reply has a limit of its own. */
	deadline_end(s, 0);
	/* From here until the reply, the server may hold the message. */
	if (read_reply(s, s->o.data_done_timeout, rp, NULL) == -1)
		return txn_abort(t, "sending end of data", 1);
	res_reply(s, rp, rp->code / 100 == 2 ? NULL : "end of DATA command",
	    &r);
	txn_all(t, 1, &r);
	return 0;
}

/* After the reply to DATA: send the body, or RSET when there is none. */
static int
txn_after_data(struct txn *t, const struct buf *body, struct reply *rp)
{
	struct smtp_session *s = t->s;
	struct smtp_result r;

	if (t->nacc == 0) {
		/* A pipelined DATA that got 354 anyway: end it empty. */
		if (rp->code / 100 == 3) {
			put_cmd(s, ".", NULL, NULL);
			if (command(s, s->o.data_done_timeout, rp) == -1)
				return -1;
		}
		return smtp_rset(s);
	}
	if (rp->code / 100 != 3) {
		res_reply(s, rp, "DATA command", &r);
		txn_all(t, 1, &r);
		return smtp_rset(s);
	}
	return txn_body(t, body, rp);
}

/* MAIL, RCPT... and DATA in one write, then the replies in order. */
static int
txn_pipelined(struct txn *t, const char *sender, const char *tail,
    const struct buf *body, struct reply *rp)
{
	struct smtp_session *s = t->s;
	struct smtp_result r;
	size_t i, k;
	int mail_ok;

	put_cmd(s, "MAIL FROM:<", sender, tail);
	for (i = 0; i < t->n; i++)
		if (t->st[i] == RS_SENT)
			put_cmd(s, "RCPT TO:<", t->rcpts[i], rcpt_tail(t, i));
	put_cmd(s, "DATA", NULL, NULL);
	if (flush(s, s->o.mail_timeout) == -1 ||
	    read_reply(s, s->o.mail_timeout, rp, NULL) == -1)
		return txn_abort(t, "sending MAIL FROM", 0);
	if (s->broken)
		return txn_closing(t, rp, "MAIL FROM command");
	mail_ok = rp->code / 100 == 2;
	if (!mail_ok) {
		res_reply(s, rp, "MAIL FROM command", &r);
		txn_all(t, 0, &r);
	}
	/* One reply per RCPT sent, even when MAIL failed (they say 503). */
	for (i = 0, k = 0; k < t->nsent; i++) {
		if (mail_ok && t->st[i] != RS_SENT)
			continue;
		if (read_reply(s, s->o.rcpt_timeout, rp, NULL) == -1)
			return txn_abort(t, "sending RCPT TO", 0);
		k++;
		if (mail_ok)
			txn_rcpt(t, i, rp);
		if (s->broken)
			return txn_closing(t, rp, "RCPT TO command");
	}
	if (read_reply(s, s->o.data_init_timeout, rp, NULL) == -1)
		return txn_abort(t, "sending DATA command", 0);
	if (s->broken)
		return txn_closing(t, rp, "DATA command");
	return txn_after_data(t, body, rp);
}

/* MAIL, each RCPT and DATA, waiting for each reply. */
static int
txn_stepwise(struct txn *t, const char *sender, const char *tail,
    const struct buf *body, struct reply *rp)
{
	struct smtp_session *s = t->s;
	struct smtp_result r;
	size_t i;

	put_cmd(s, "MAIL FROM:<", sender, tail);
	if (command(s, s->o.mail_timeout, rp) == -1)
		return txn_abort(t, "sending MAIL FROM", 0);
	if (s->broken)
		return txn_closing(t, rp, "MAIL FROM command");
	if (rp->code / 100 != 2) {
		res_reply(s, rp, "MAIL FROM command", &r);
		txn_all(t, 0, &r);
		return smtp_rset(s);
	}
	for (i = 0; i < t->n; i++) {
		if (t->st[i] != RS_SENT)
			continue;
		put_cmd(s, "RCPT TO:<", t->rcpts[i], rcpt_tail(t, i));
		if (command(s, s->o.rcpt_timeout, rp) == -1)
			return txn_abort(t, "sending RCPT TO", 0);
		txn_rcpt(t, i, rp);
		if (s->broken)
			return txn_closing(t, rp, "RCPT TO command");
	}
	if (t->nacc == 0)
		return smtp_rset(s);
	put_cmd(s, "DATA", NULL, NULL);
	if (command(s, s->o.data_init_timeout, rp) == -1)
		return txn_abort(t, "sending DATA command", 0);
	if (s->broken)
		return txn_closing(t, rp, "DATA command");
	return txn_after_data(t, body, rp);
}

/* One mail transaction; see smtp.h. */
int
smtp_send(struct smtp_session *s, const char *sender,
    const char *const *rcpts, size_t n, const char *msg, size_t msglen,
    int eightbit, const struct smtp_dsn *dsn, struct smtp_result *res)
{
	struct txn t = { s, rcpts, n, res, NULL, 0, 0, NULL, BUF_INIT };
	struct buf body = BUF_INIT, tail = BUF_INIT;
	struct reply rp;
	char size[32] = "";
	size_t i;
	int utf8, rc = 0;

	memset(res, 0, n * sizeof(*res));
	t.st = xcalloc(n ? n : 1, 1);
	memset(t.st, RS_SENT, n);
	if (s->broken) {
		errno = ECONNRESET;
		rc = txn_abort(&t, "sending MAIL FROM", 0);
		goto out;
	}
	body_encode(msg, msglen, s->o.line_limit, &body);
	if (txn_check(&t, sender, body.len, &utf8) == 0)
		goto out;
	if (smtp_has_ext(s, "SIZE"))
		snprintf(size, sizeof(size), " SIZE=%zu", body.len);
	buf_addf(&tail, ">%s%s%s", size,
	    eightbit && smtp_has_ext(s, "8BITMIME") ? " BODY=8BITMIME" : "",
	    utf8 ? " SMTPUTF8" : "");
	/* RFC 3461 parameters only for a server that said it takes them. */
	if (smtp_has_ext(s, "DSN")) {
		t.dsn = dsn;
		if (dsn != NULL && dsn->ret != NULL &&
		    (strcmp(dsn->ret, "FULL") == 0 ||
		    strcmp(dsn->ret, "HDRS") == 0))
			buf_addf(&tail, " RET=%s", dsn->ret);
		if (dsn != NULL && dsn->envid != NULL) {
			buf_adds(&tail, " ENVID=");
			dsn_xtext(dsn->envid, &tail);
		}
	}
	if (smtp_has_ext(s, "PIPELINING"))
		rc = txn_pipelined(&t, sender, tail.data, &body, &rp);
	else
		rc = txn_stepwise(&t, sender, tail.data, &body, &rp);
	/* Accepted by a server that will not report the delivery. */
	if (!smtp_has_ext(s, "DSN"))
		for (i = 0; i < n; i++)
			if (t.st[i] == RS_DONE && res[i].kind == 2)
				res[i].relayed = 1;
out:
	/* Every recipient leaves with a result, whatever happened. */
	for (i = 0; i < n; i++)
		if (t.st[i] != RS_DONE)
			res_local(&res[i], 4, "4.3.0", "no result from %s",
			    s->hostaddr);
	free(t.st);
	buf_free(&body);
	buf_free(&tail);
	buf_free(&t.rtail);
	return (rc == -1 || s->broken) ? -1 : 0;
}

/* MAIL FROM, then RSET: would the server take mail? See smtp.h. */
int
smtp_probe_mail(struct smtp_session *s, const char *sender,
    struct smtp_result *res)
{
	struct reply rp;
	int utf8 = 0;

	memset(res, 0, sizeof(*res));
	if (s->broken || !addr_ok(sender, &utf8)) {
		res_local(res, 4, "4.3.0", "cannot try MAIL FROM on this "
		    "session");
		return -1;
	}
	put_cmd(s, "MAIL FROM:<", sender, ">");
	if (command(s, s->o.mail_timeout, &rp) == -1) {
		res_net(s, "sending MAIL FROM", errno, res);
		return -1;
	}
	if (rp.code / 100 == 2)
		return smtp_rset(s) == 0 ? 0 : -1;
	res_reply(s, &rp, "MAIL FROM command", res);
	(void)smtp_rset(s);
	return -1;
}
