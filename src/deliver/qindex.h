/*
 * qindex.h - the queue manager's index by queue ID.
 *
 * An open-addressing hash table (linear probing, deletion by backward
 * shift, so no tombstones pile up) from a queue ID to the table entry
 * that holds it. Keys are not copied: each points at the ID inside its
 * entry, which lives as long as the entry is indexed. 16 bytes a slot,
 * at most half full: about 32 bytes per queued message.
 */
#ifndef POSTERN_QINDEX_H
#define POSTERN_QINDEX_H

#include <stddef.h>

struct qindex_slot {
	const char	*key;		/* NULL: free */
	void		*val;
};

struct qindex {
	struct qindex_slot	*slot;
	size_t			 cap;	/* a power of two, or 0 */
	size_t			 n;
};

/* An empty index (also what a zeroed struct qindex is). */
void qindex_init(struct qindex *ix);
void qindex_free(struct qindex *ix);
/* The value stored under key, or NULL. */
void *qindex_get(const struct qindex *ix, const char *key);
/*
 * Store val under key (replacing what was there). key must stay valid
 * and unchanged until it is deleted.
 */
void qindex_put(struct qindex *ix, const char *key, void *val);
/* Remove key; 1 when it was there, 0 when not. */
int qindex_del(struct qindex *ix, const char *key);

#endif
