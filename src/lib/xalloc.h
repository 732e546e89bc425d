/*
 * xalloc.h - allocation that cannot be ignored.
 *
 * Every allocator here either returns memory or ends the process with a
 * message naming what failed. Callers never check for NULL.
 */
#ifndef POSTERN_XALLOC_H
#define POSTERN_XALLOC_H

#include <stddef.h>

/* Allocate size bytes or die. */
void *xmalloc(size_t size);
/* Allocate nmemb zeroed elements or die. */
void *xcalloc(size_t nmemb, size_t size);
/* Resize to nmemb * size bytes (overflow checked) or die. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
/* Duplicate a string or die. */
char *xstrdup(const char *s);
/* Duplicate at most n bytes of s, NUL-terminated, or die. */
char *xstrndup(const char *s, size_t n);
/* Format into a fresh string or die. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wipe a string that held a secret, then free it; NULL is fine. */
void free_secret(char *s);

#endif
