/*
 * hchecks.h - smtp_header_checks: Postfix's header_checks(5) rules
 * applied to a message's header block on its way to the relay.
 */
#ifndef POSTERN_HCHECKS_H
#define POSTERN_HCHECKS_H

#include <stddef.h>

#include "conf/maps.h"
#include "lib/buf.h"

/*
 * Look each header field of the header block hdr[0..hdrlen) (LF line
 * ends, as hdr_split gives it) up in m, one logical field at a time: the
 * field with its continuation lines, the line breaks inside it kept as
 * "\n" and the last one dropped (e.g. "Received: from x\n\tby y"). The
 * result's first word (any case) is the action, the rest its text:
 *
 *   IGNORE		the field is dropped
 *   REPLACE text	the field becomes text
 *   PREPEND text	text is inserted as a field before it
 *   WARN text		logged as "qid: warning: header <field>: text"
 *   INFO text		logged as "qid: info: header <field>: text"
 *   DUNNO, OK		the field is kept
 *
 * REPLACE and PREPEND text must be a header field ("Name: value", with
 * any line break followed by white space); otherwise the field is kept
 * and a warning logged. Any other action (REJECT, DISCARD, HOLD,
 * REDIRECT, FILTER, BCC, STRIP, ... or an unknown word) cannot act on
 * mail on its way out: the field is kept and a warning names the action
 * and the tables and says what to use instead. Fields not found are
 * kept as they are.
 *
 * The new header block is appended to out. Returns the number of fields
 * dropped, replaced or prepended to, or -1 with a message in err (naming
 * the parameter and the table) when a lookup fails; out is then as it
 * was before the call, and the caller defers the message. qid prefixes
 * the log lines.
 */
int hchk_apply(struct maps *m, const char *hdr, size_t hdrlen,
    struct buf *out, const char *qid, char *err, size_t errlen);

#endif
