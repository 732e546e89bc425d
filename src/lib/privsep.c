/*
 * privsep.c - giving up root for good (see privsep.h).
 *
 * The order matters: groups first, while we still may change them; the
 * user ids last, since once they are not root nothing else can change.
 * setres[ug]id sets all three ids at once, so no saved id keeps root in
 * reserve. Every call is checked, and the result is checked again from
 * the other side: the ids read back, and an attempt to become root again
 * that must fail.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bsd/string.h>

#include "lib/privsep.h"
#include "lib/xalloc.h"

/* Look a user up by name. */
int
privsep_lookup(const char *name, struct privsep_user *u, char *err,
    size_t errlen)
{
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		if (errno == 0 || errno == ENOENT || errno == ESRCH)
			snprintf(err, errlen, "no such user: %s", name);
		else
			snprintf(err, errlen, "cannot look up user %s: %s",
			    name, strerror(errno));
		if (errno == ENOENT || errno == ESRCH)
			errno = 0;
		return -1;
	}
	if (strlcpy(u->name, pw->pw_name, sizeof(u->name)) >= sizeof(u->name)) {
		snprintf(err, errlen, "user name too long: %s", name);
		errno = ENAMETOOLONG;
		return -1;
	}
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

/* The effective user, by name when it has one. */
void
privsep_self(struct privsep_user *u)
{
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	u->uid = geteuid();
	u->gid = getegid();
	if ((pw = getpwuid(u->uid)) != NULL)
		strlcpy(u->name, pw->pw_name, sizeof(u->name));
	else
		snprintf(u->name, sizeof(u->name), "%lu",
		    (unsigned long)u->uid);
}

/* Whether group 0 is among this process's supplementary groups. */
static int
has_root_group(void)
{
	gid_t *groups;
	int n = getgroups(0, NULL), rc = 0;

	if (n <= 0)
		return n < 0;	/* cannot tell: assume the worst */
	groups = xcalloc((size_t)n, sizeof(*groups));
	n = getgroups(n, groups);
	if (n < 0)
		rc = 1;
	for (int i = 0; i < n; i++)
		if (groups[i] == 0)
			rc = 1;
	free(groups);
	return rc;
}

/* Become u for good. */
int
privsep_drop(const struct privsep_user *u, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (u->uid == 0 || u->gid == 0) {
		snprintf(err, errlen, "user %s has uid or group id 0: posternd "
		    "gives up root for mail_owner, which must be an ordinary "
		    "user (scripts/postern-user.sh creates one)", u->name);
		return -1;
	}
	if (initgroups(u->name, u->gid) < 0) {
		snprintf(err, errlen, "cannot set the groups of user %s: %s",
		    u->name, strerror(errno));
		return -1;
	}
	if (setresgid(u->gid, u->gid, u->gid) < 0) {
		snprintf(err, errlen, "cannot change the group to %lu (user "
		    "%s): %s", (unsigned long)u->gid, u->name, strerror(errno));
		return -1;
	}
	if (setresuid(u->uid, u->uid, u->uid) < 0) {
		snprintf(err, errlen, "cannot change the user to %s: %s",
		    u->name, strerror(errno));
		return -1;
	}
	/* Read back every id, then try the way back, which must fail. */
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != u->uid || eu != u->uid || su != u->uid ||
	    rg != u->gid || eg != u->gid || sg != u->gid) {
		snprintf(err, errlen, "the user and group ids are not user "
		    "%s's after the change", u->name);
		return -1;
	}
	if (setuid(0) != -1 || seteuid(0) != -1) {
		snprintf(err, errlen, "root could be regained after changing "
		    "to user %s", u->name);
		return -1;
	}
	if (setgid(0) != -1 || setegid(0) != -1) {
		snprintf(err, errlen, "group root could be regained after "
		    "changing to user %s", u->name);
		return -1;
	}
	if (has_root_group()) {
		snprintf(err, errlen, "user %s is in group root; posternd "
		    "must not run with it (remove %s from group root)",
		    u->name, u->name);
		return -1;
	}
	return 0;
}
