/*
 * dsn.c - build delivery status notifications (see dsn.h).
 *
 * The layout follows what Postfix's bounce daemon sends, so that people
 * and the programs that read bounces (mailing list managers, ticket
 * systems) find the fields where they expect them: a readable
 * explanation first, then the RFC 3464 report, then what is returned of
 * the original message. Long values are folded at spaces so that no
 * line of the notice grows past what SMTP carries; nothing is cut.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <bsd/string.h>

#include "mail/dsn.h"
#include "mail/header.h"
#include "lib/util.h"

#define FOLD_AT		78	/* fold header-like lines longer than this */

/* What differs between the three kinds of notice. */
static const struct {
	const char	*subject;
	const char	*action;	/* the Action: value */
	const char	*status;	/* Status: when none is known */
	const char	*intro;		/* the explanation for people */
} kinds[] = {
	[DSN_FAILED] = {
		"Undelivered Mail Returned to Sender", "failed", "5.0.0",
		"Your message could not be delivered to one or more of its\n"
		"recipients: the mail system has given up on them. The reasons\n"
		"are listed below; what is returned of the message is attached.\n"
		"\n"
		"For help, please write to the postmaster of this host and\n"
		"include this report.\n",
	},
	[DSN_DELAYED] = {
		"Delayed Mail (still being retried)", "delayed", "4.0.0",
		"This is a warning only: you do not need to send your message\n"
		"again.\n"
		"\n"
		"Your message has not been delivered yet to the recipients\n"
		"listed below. The mail system keeps trying; you will get\n"
		"another notice only if it has to give up.\n",
	},
	[DSN_RELAYED] = {
		"Successful Mail Delivery Report", "relayed", "2.0.0",
		"Your message was handed on to the mail servers of the\n"
		"recipients listed below, as you asked to be told. Those\n"
		"servers do not report deliveries back, so this is the last\n"
		"notice about them from this mail system; systems further on\n"
		"may still report errors.\n",
	},
};

/*
 * Append "name: value" folded at spaces near FOLD_AT columns, each
 * continuation line starting with the indent (a space or tab for header
 * fields). A word longer than a line stays whole: folding may never cut.
 */
static void
put_folded(struct buf *out, const char *name, const char *value,
    const char *indent)
{
	size_t col, w;
	const char *p = value;

	buf_adds(out, name);
	col = strlen(name);
	while (*p) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		w = strcspn(p, " ");
		if (col > strlen(indent) && col + 1 + w > FOLD_AT) {
			buf_addc(out, '\n');
			buf_adds(out, indent);
			col = strlen(indent);
		} else if (col > 0) {
			buf_addc(out, ' ');
			col++;
		}
		buf_add(out, p, w);
		col += w;
		p += w;
	}
	buf_addc(out, '\n');
}

/* Append "Name: value" as a header-like field line (values from logs
   never hold line breaks; a stray one becomes a space). */
static void
put_field(struct buf *out, const char *name, const char *fmt_value)
{
	char head[64];
	char val[2048];

	strlcpy(val, fmt_value, sizeof(val));
	for (char *p = val; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	snprintf(head, sizeof(head), "%s:", name);
	put_folded(out, head, val, " ");
}

/* Does "DDD" followed by a space, a dash or the end start s? */
static int
starts_with_code(const char *s)
{
	return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
	    s[2] >= '0' && s[2] <= '9' && (s[3] == ' ' || s[3] == '-' ||
	    s[3] == '\0');
}

/* Split a logged reason into server and reply (see dsn.h). */
void
dsn_split_reason(const char *reason, char *mta, size_t mtalen,
    char *diag, size_t diaglen)
{
	static const char said[] = " said: ", tail[] = " (in reply to ";
	const char *p, *s, *t;
	size_t n;

	mta[0] = '\0';
	strlcpy(diag, reason ? reason : "", diaglen);
	if (reason == NULL || strncmp(reason, "host ", 5) != 0 ||
	    (s = strstr(reason, said)) == NULL)
		return;
	/* "host NAME[ADDR] said: ..."; the name ends at the bracket. */
	p = reason + 5;
	n = strcspn(p, "[ ");
	if (n == 0 || p + n > s)
		return;
	if (n >= mtalen)
		n = mtalen - 1;
	memcpy(mta, p, n);
	mta[n] = '\0';
	s += sizeof(said) - 1;
	strlcpy(diag, s, diaglen);
	/* The last " (in reply to X command)" is ours, not the server's. */
	for (t = NULL, p = diag; (p = strstr(p, tail)) != NULL; p++)
		t = p;
	if (t != NULL && diag[strlen(diag) - 1] == ')')
		diag[t - diag] = '\0';
}

/* Append s as xtext. */
void
dsn_xtext(const char *s, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p > ' ' && *p < 127 && *p != '+' && *p != '=')
			buf_addc(out, (char)*p);
		else {
			buf_addc(out, '+');
			buf_addc(out, hex[*p >> 4]);
			buf_addc(out, hex[*p & 15]);
		}
	}
}

/* Does a -N value ask for this kind of notice? */
int
dsn_notify_wants(const char *notify, const char *word)
{
	char copy[64], *tok, *save = NULL;

	if (notify == NULL || *notify == '\0')
		return strcmp(word, "SUCCESS") != 0;
	strlcpy(copy, notify, sizeof(copy));
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save))
		if (strcasecmp(tok, word) == 0)
			return 1;
	return 0;
}

/* Is v a NOTIFY value of RFC 3461 (see dsn.h)? */
int
dsn_notify_valid(const char *v)
{
	static const char *const kw[] = { "SUCCESS", "FAILURE", "DELAY" };
	unsigned seen = 0;
	size_t len, i;

	if (strcasecmp(v, "NEVER") == 0)
		return 1;
	for (;;) {
		len = strcspn(v, ",");
		for (i = 0; i < 3; i++)
			if (strlen(kw[i]) == len && strncasecmp(v, kw[i],
			    len) == 0)
				break;
		if (i == 3 || (seen & (1u << i)))
			return 0;
		seen |= 1u << i;
		if (v[len] == '\0')
			return 1;
		v += len + 1;
	}
}

/* The readable part: the explanation, then one paragraph a recipient. */
static void
put_text_part(const struct dsn_report *r, struct buf *out)
{
	struct buf line = BUF_INIT;

	buf_addf(out, "This is the mail system at host %s.\n\n", r->myhostname);
	buf_adds(out, kinds[r->action].intro);
	buf_adds(out, "\n                   The mail system\n");
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *rc = &r->rcpt[i];
		buf_reset(&line);
		buf_addf(&line, "<%s>", rc->addr);
		if (rc->orig != NULL && strcmp(rc->orig, rc->addr) != 0)
			buf_addf(&line, " (expanded from <%s>)", rc->orig);
		buf_addc(&line, ':');
		buf_addc(out, '\n');
		put_folded(out, line.data, rc->text && *rc->text ? rc->text :
		    kinds[r->action].action, "    ");
	}
	buf_free(&line);
}

/* The per-recipient block of the delivery-status part. */
static void
put_rcpt_fields(const struct dsn_report *r, const struct dsn_rcpt *rc,
    struct buf *out)
{
	char mta[256], diag[1024], v[1200], date[64];

	buf_addc(out, '\n');
	snprintf(v, sizeof(v), "rfc822; %s", rc->addr);
	put_field(out, "Final-Recipient", v);
	if (rc->orig != NULL && strcmp(rc->orig, rc->addr) != 0) {
		snprintf(v, sizeof(v), "rfc822; %s", rc->orig);
		put_field(out, "Original-Recipient", v);
	}
	put_field(out, "Action", kinds[r->action].action);
	put_field(out, "Status", rc->status && *rc->status ? rc->status :
	    kinds[r->action].status);
	dsn_split_reason(rc->text, mta, sizeof(mta), diag, sizeof(diag));
	if (mta[0] != '\0') {
		snprintf(v, sizeof(v), "dns; %s", mta);
		put_field(out, "Remote-MTA", v);
	}
	if (diag[0] != '\0') {
		snprintf(v, sizeof(v), "%s; %s", starts_with_code(diag) ?
		    "smtp" : "X-Postern", diag);
		put_field(out, "Diagnostic-Code", v);
	}
	if (r->action == DSN_DELAYED && r->retry_until > 0) {
		date_rfc5322(r->retry_until, date, sizeof(date));
		put_field(out, "Will-Retry-Until", date);
	}
}

/* The machine-readable part (RFC 3464 2.2 and 2.3). */
static void
put_status_part(const struct dsn_report *r, struct buf *out)
{
	char v[1200], date[64];

	snprintf(v, sizeof(v), "dns; %s", r->myhostname);
	put_field(out, "Reporting-MTA", v);
	put_field(out, "X-Postern-Queue-ID", r->qid);
	snprintf(v, sizeof(v), "rfc822; %s", r->sender);
	put_field(out, "X-Postern-Sender", v);
	if (r->envid != NULL && *r->envid != '\0')
		put_field(out, "Original-Envelope-Id", r->envid);
	date_rfc5322(r->arrival, date, sizeof(date));
	put_field(out, "Arrival-Date", date);
	for (size_t i = 0; i < r->nrcpt; i++)
		put_rcpt_fields(r, &r->rcpt[i], out);
}

/* The length of the longest run of whole lines of p[0..n) within max. */
static size_t
whole_lines(const char *p, size_t n, size_t max)
{
	size_t end = 0;

	if (n <= max)
		return n;
	for (size_t i = 0; i < max; i++)
		if (p[i] == '\n')
			end = i + 1;
	return end;
}

/* A boundary that no line of the returned text holds. */
static void
make_boundary(const struct dsn_report *r, char *out, size_t outlen)
{
	for (unsigned k = 0;; k++) {
		if (k == 0)
			snprintf(out, outlen, "%s.%lld/%s", r->qid,
			    (long long)r->now, r->myhostname);
		else
			snprintf(out, outlen, "%s.%lld.%u/%s", r->qid,
			    (long long)r->now, k, r->myhostname);
		if (r->msg == NULL || memmem(r->msg, r->msglen, out,
		    strlen(out)) == NULL)
			return;
	}
}

/* Build a notice. */
int
dsn_build(const struct dsn_report *r, struct buf *out)
{
	char boundary[400], date[64];
	const char *msg = r->msg ? r->msg : "";
	size_t hlen, body, keep, start = out->len;
	int full, flags = 0, eight, eight_text = 0;

	hdr_split(msg, r->msglen, &hlen, &body);
	full = r->action == DSN_FAILED && !r->ret_hdrs &&
	    r->msglen <= r->size_limit;
	keep = full ? r->msglen : whole_lines(msg, hlen, r->size_limit);
	if (!full)
		flags |= DSN_TRUNCATED;
	eight = mem_has_8bit(msg, keep);
	/* SMTPUTF8 addresses and replies make the readable part 8-bit. */
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *rc = &r->rcpt[i];
		if (mem_has_8bit(rc->addr, strlen(rc->addr)) || (rc->orig &&
		    mem_has_8bit(rc->orig, strlen(rc->orig))) || (rc->text &&
		    mem_has_8bit(rc->text, strlen(rc->text))))
			eight_text = 1;
	}
	make_boundary(r, boundary, sizeof(boundary));
	date_rfc5322(r->now, date, sizeof(date));

	buf_addf(out, "Date: %s\n", date);
	buf_addf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\n",
	    r->myhostname);
	buf_addf(out, "Subject: %s\n", kinds[r->action].subject);
	buf_addf(out, "To: %s\n", r->sender);
	buf_adds(out, "Auto-Submitted: auto-replied\n");
	buf_addf(out, "Message-ID: <%lld.%s@%s>\n", (long long)r->now,
	    r->notice_qid ? r->notice_qid : r->qid, r->myhostname);
	buf_adds(out, "MIME-Version: 1.0\n");
	buf_adds(out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\n");
	buf_addf(out, "\tboundary=\"%s\"\n", boundary);
	buf_addf(out, "Content-Transfer-Encoding: %s\n", eight || eight_text ?
	    "8bit" : "7bit");
	buf_adds(out, "\nThis is a MIME-encapsulated message.\n\n");

	buf_addf(out, "--%s\n", boundary);
	buf_addf(out, "Content-Description: Notification\n"
	    "Content-Type: text/plain; charset=%s\n"
	    "Content-Transfer-Encoding: %s\n\n", eight_text ? "utf-8" :
	    "us-ascii", eight_text ? "8bit" : "7bit");
	put_text_part(r, out);

	buf_addf(out, "\n--%s\n", boundary);
	buf_adds(out, "Content-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n");
	put_status_part(r, out);

	buf_addf(out, "\n--%s\n", boundary);
	if (full)
		buf_adds(out, "Content-Description: Undelivered Message\n"
		    "Content-Type: message/rfc822\n");
	else
		buf_addf(out, "Content-Description: %s\n"
		    "Content-Type: text/rfc822-headers\n",
		    r->action == DSN_FAILED ? "Undelivered Message Headers" :
		    "Message Headers");
	buf_addf(out, "Content-Transfer-Encoding: %s\n\n", eight ? "8bit" :
	    "7bit");
	buf_add(out, msg, keep);
	if (keep > 0 && msg[keep - 1] != '\n')
		buf_addc(out, '\n');
	buf_addf(out, "\n--%s--\n", boundary);
	if (mem_has_8bit(out->data + start, out->len - start))
		flags |= DSN_8BIT;
	return flags;
}
