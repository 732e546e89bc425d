/*
 * body.h - turn a stored message into the SMTP DATA stream.
 *
 * Pure: no I/O, no configuration, so it is unit-tested and fuzzed alone.
 */
#ifndef POSTERN_BODY_H
#define POSTERN_BODY_H

#include <stddef.h>

#include "lib/buf.h"

/*
 * Append to out the DATA stream of msg (len bytes, LF line ends; CRLF
 * is accepted too): every line ends in CRLF, a line starting with '.'
 * gets another '.', a bare CR is a line break, NUL bytes are dropped, a
 * missing final newline is supplied, and the stream ends with ".\r\n".
 *
 * No line is longer than line_limit octets (not counting CRLF or a
 * stuffed dot) and no content is lost: long header lines are folded (at
 * white space when possible, else with CRLF SPACE). When a body line is
 * too long and the message is a single text part in 7bit/8bit (or with
 * no MIME headers), the body is re-encoded as quoted-printable and the
 * headers say so, so the reader gets the exact text back; otherwise
 * (multipart, already encoded) long body lines are broken with CRLF, as
 * Postfix's smtp_line_length_limit does.
 */
void body_encode(const char *msg, size_t len, int line_limit,
    struct buf *out);

#endif
