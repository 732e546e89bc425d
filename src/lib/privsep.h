/*
 * privsep.h - giving up root for good.
 *
 * posternd starts as root only to open what needs root (the password
 * table, TLS keys, the spool's owners); its daemon process then becomes
 * mail_owner with every id (real, effective, saved; user and groups) and
 * checks that root cannot be had back.
 */
#ifndef POSTERN_PRIVSEP_H
#define POSTERN_PRIVSEP_H

#include <stddef.h>
#include <sys/types.h>

/* The user a daemon runs as. */
struct privsep_user {
	uid_t	uid;
	gid_t	gid;		/* the primary group, from the password file */
	char	name[256];
};

/*
 * Look user name up in the password database into *u. Returns 0, or -1
 * with errno (0: no such user) and a message in err naming the user.
 */
int privsep_lookup(const char *name, struct privsep_user *u, char *err,
    size_t errlen);

/*
 * The user this process runs as (its effective uid and gid), named from
 * the password database or by number.
 */
void privsep_self(struct privsep_user *u);

/*
 * Become u for good: the supplementary groups of u (initgroups), then
 * the real, effective and saved group id, then the three user ids; then
 * check that every id is u's and that setuid(0) and setgid(0) now fail.
 * Must run as root, for a u that is not root. Returns 0, or -1 with a
 * message in err naming the step that failed: the caller must not go
 * on (it may still hold some of root's rights).
 */
int privsep_drop(const struct privsep_user *u, char *err, size_t errlen);

#endif
