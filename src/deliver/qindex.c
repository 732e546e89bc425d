/*
 * qindex.c - queue ID -> table entry, an open-addressing hash (qindex.h).
 *
 * Queue IDs are short hex strings made from inode and time; FNV-1a mixes
 * them well enough, and the table doubles at half full so probes stay
 * short. Deletion shifts the following entries of the probe run back
 * instead of leaving a marker, so a queue that churns for months keeps
 * the same probe lengths as a fresh one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/qindex.h"
#include "lib/xalloc.h"

#define QINDEX_MIN	64

/* FNV-1a over the key's bytes. */
static size_t
hash(const char *key)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 29));
}

void
qindex_init(struct qindex *ix)
{
	memset(ix, 0, sizeof(*ix));
}

void
qindex_free(struct qindex *ix)
{
	free(ix->slot);
	qindex_init(ix);
}

/* The slot holding key, or the free slot where it would go. */
static size_t
find(const struct qindex *ix, const char *key)
{
	size_t mask = ix->cap - 1, i = hash(key) & mask;

	while (ix->slot[i].key != NULL && strcmp(ix->slot[i].key, key) != 0)
		i = (i + 1) & mask;
	return i;
}

/* Double the table (or make the first one) and re-insert everything. */
static void
grow(struct qindex *ix)
{
	struct qindex_slot *old = ix->slot;
	size_t oldcap = ix->cap;

	ix->cap = oldcap ? oldcap * 2 : QINDEX_MIN;
	ix->slot = xcalloc(ix->cap, sizeof(*ix->slot));
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key != NULL)
			ix->slot[find(ix, old[i].key)] = old[i];
	free(old);
}

/* Look up key. */
void *
qindex_get(const struct qindex *ix, const char *key)
{
	size_t i;

	if (ix->cap == 0)
		return NULL;
	i = find(ix, key);
	return ix->slot[i].key != NULL ? ix->slot[i].val : NULL;
}

/* Insert or replace. */
void
qindex_put(struct qindex *ix, const char *key, void *val)
{
	size_t i;

	if (2 * (ix->n + 1) > ix->cap)
		grow(ix);
	i = find(ix, key);
	if (ix->slot[i].key == NULL)
		ix->n++;
	ix->slot[i].key = key;
	ix->slot[i].val = val;
}

/* Remove, shifting the rest of the probe run back into the hole. */
int
qindex_del(struct qindex *ix, const char *key)
{
	size_t mask, hole, j, home;

	if (ix->cap == 0)
		return 0;
	mask = ix->cap - 1;
	hole = find(ix, key);
	if (ix->slot[hole].key == NULL)
		return 0;
	ix->slot[hole].key = NULL;
	ix->n--;
	for (j = (hole + 1) & mask; ix->slot[j].key != NULL; j = (j + 1) & mask) {
		home = hash(ix->slot[j].key) & mask;
		/* j may move to hole only if its home is not in (hole, j]. */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			ix->slot[hole] = ix->slot[j];
			ix->slot[j].key = NULL;
			hole = j;
		}
	}
	return 1;
}
