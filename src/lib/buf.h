/*
 * buf.h - a growable byte buffer.
 *
 * Used for building queue files, SMTP command groups and log lines.
 * data is always NUL-terminated (the NUL is not counted in len), so a
 * buffer holding text can be passed to string functions directly.
 */
#ifndef POSTERN_BUF_H
#define POSTERN_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

#define BUF_INIT { NULL, 0, 0 }

/* Make room for at least extra more bytes. */
void buf_reserve(struct buf *b, size_t extra);
/* Append len bytes. */
void buf_add(struct buf *b, const void *p, size_t len);
/* Append a NUL-terminated string. */
void buf_adds(struct buf *b, const char *s);
/* Append one byte. */
void buf_addc(struct buf *b, char c);
/* Append formatted text. */
void buf_addf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (consumed input). */
void buf_consume(struct buf *b, size_t n);
/* Empty the buffer, keep the memory. */
void buf_reset(struct buf *b);
/* Empty the buffer and wipe its memory (it held a secret); keep it. */
void buf_wipe(struct buf *b);
/* Free the memory; wipe it first (the buffer may have held a secret). */
void buf_free(struct buf *b);
/* Take ownership of the data as a string; the buffer becomes empty. */
char *buf_steal(struct buf *b);

#endif
