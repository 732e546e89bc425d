/*
 * qadmin_cmd.h - postern delete, hold, release, requeue (Postfix's
 * postsuper -d, -h, -H, -r) and postern cat (postcat -q).
 */
#ifndef POSTERN_QADMIN_CMD_H
#define POSTERN_QADMIN_CMD_H

#include <stddef.h>

#include "spool/qops.h"

#define QADMIN_MAX_IDS	64	/* queue IDs on one command line */

/* A parsed delete/hold/release/requeue command line. */
struct qadmin_args {
	enum qop	 op;
	int		 all;		/* ALL */
	int		 from_stdin;	/* - : IDs on standard input */
	const char	*ids[QADMIN_MAX_IDS];
	size_t		 nids;
	unsigned	 mask;		/* QM_* queues to look in */
};

/*
 * Parse argv (argv[0] is the command: delete, hold, release, requeue):
 * one or more queue IDs, or ALL (upper case, as postsuper wants), or -,
 * then optional queue names (incoming, active, deferred, hold; release
 * takes only hold). Pure. Returns 0, or -1 with what is wrong in err.
 */
int qadmin_parse(int argc, char **argv, struct qadmin_args *a, char *err,
    size_t errlen);

/* A parsed flush command line. */
struct flush_args {
	const char	*qid;		/* -i, or NULL */
	const char	*domain;	/* -s, or NULL */
};

/*
 * Parse argv of postern flush ([-i QID | -s DOMAIN]). Pure. Returns 0, or
 * -1 with err.
 */
int flush_parse(int argc, char **argv, struct flush_args *f, char *err,
    size_t errlen);

/*
 * 1 when s can be a mail domain for flush -s: 1 to 253 letters, digits,
 * dots, hyphens (no leading dot, no empty label), or an address literal
 * in brackets.
 */
int flush_domain_valid(const char *s);

/*
 * A queue ID as a person or a script gives it: surrounding blanks and
 * the mailq marks '*' and '!' after it removed, in place. Returns s.
 */
char *qadmin_clean_id(char *s);

/* postern delete | hold | release | requeue; returns the exit status. */
int qadmin_cmd(int argc, char **argv, const char *confdir);
/* postern cat [-b] [-e] [-h] ID; returns the exit status. */
int cat_cmd(int argc, char **argv, const char *confdir);

#endif
