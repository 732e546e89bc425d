/*
 * header.h - the header block of a message with LF line ends (RFC 5322).
 * Pure functions over memory: no I/O, nothing global.
 */
#ifndef POSTERN_HEADER_H
#define POSTERN_HEADER_H

#include <stddef.h>

#include "lib/buf.h"

/* Bits returned by hdr_have(). */
#define HDR_FROM	0x01
#define HDR_DATE	0x02
#define HDR_MSGID	0x04

/*
 * Split msg into its header block and body. The header block is
 * msg[0..*hdr_len): whole header lines, continuation lines included. The
 * body starts at *body_off: after the empty line that ends the headers,
 * or at the first line that is not a header field (then there is no empty
 * line and *body_off == *hdr_len). A first line that is not a header field
 * means there are no headers (*hdr_len == 0). A message of headers only
 * has *body_off == len.
 */
void hdr_split(const char *msg, size_t len, size_t *hdr_len,
    size_t *body_off);

/*
 * The value of the nth (from 0) header field called name (case does not
 * matter) in the header block hdr[0..len), unfolded (the line breaks of
 * continuation lines removed) and with surrounding white space trimmed.
 * Returns a new string, or NULL when there is no such field.
 */
char *hdr_get(const char *hdr, size_t len, const char *name, size_t nth);

/*
 * Append msg to out without any header field called name (continuation
 * lines included). Only the header block is searched; the body is copied
 * as it is. Returns the number of fields removed.
 */
size_t hdr_remove(const char *msg, size_t len, const char *name,
    struct buf *out);

/* Which of From:, Date:, Message-ID: the header block has (HDR_*). */
unsigned hdr_have(const char *hdr, size_t len);

#endif
