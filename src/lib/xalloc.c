/*
 * xalloc.c - allocators that die with a message instead of returning NULL.
 *
 * A small mail program out of memory cannot do anything useful; for
 * sendmail the message is not yet accepted (exit 75), for posternd the
 * queue file is intact and the next start resumes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/stdlib.h>
#include <bsd/string.h>

#include "lib/log.h"
#include "lib/xalloc.h"

/* Allocate size bytes or die. */
void *
xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu bytes", size);
	return p;
}

/* Allocate nmemb zeroed elements or die. */
void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu x %zu bytes", nmemb, size);
	return p;
}

/* Resize with overflow check or die. */
void *
xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	void *p = reallocarray(ptr, nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		fatalx("out of memory allocating %zu x %zu bytes", nmemb, size);
	return p;
}

/* Duplicate a string or die. */
char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatalx("out of memory duplicating a string");
	return p;
}

/* Duplicate at most n bytes or die. */
char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		fatalx("out of memory duplicating a string");
	return p;
}

/* Format into a fresh string or die. */
char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("out of memory formatting a string");
	return p;
}

/* Wipe and free a secret string. */
void
free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
