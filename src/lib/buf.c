/*
 * buf.c - growable byte buffer with a guaranteed trailing NUL.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* Make room for extra bytes plus the trailing NUL. */
void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;

	if (extra > (size_t)-1 / 2 - b->len)
		fatalx("buffer size overflow");
	need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	b->data = xreallocarray(b->data, cap, 1);
	b->cap = cap;
}

/* Append len bytes. */
void
buf_add(struct buf *b, const void *p, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* Append a string. */
void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Append one byte. */
void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

/* Append formatted text. */
void
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("buf_addf: bad format");
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Drop the first n bytes. */
void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

/* Empty and wipe, keep the memory. */
void
buf_wipe(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	b->len = 0;
}

/* Empty the buffer, keep its memory. */
void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Wipe and free. */
void
buf_free(struct buf *b)
{
	if (b->data) {
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

/* Hand the string to the caller. */
char *
buf_steal(struct buf *b)
{
	char *s;

	if (b->data == NULL)
		return xstrdup("");
	s = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}
