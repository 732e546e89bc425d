/*
 * ctlsrv.h - posternd's answers to the control requests of postern's
 * queue commands: delete, hold, release, requeue, flush -i / -s, and the
 * listing for callers who may not read the spool (see admin/ctl.h for
 * the protocol). loop.c accepts the connection and answers "flush"
 * itself; everything else comes here.
 */
#ifndef POSTERN_CTLSRV_H
#define POSTERN_CTLSRV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct addr_rewrite;
struct config;
struct qmgr;

/* What a request may use of the daemon. */
struct ctlsrv {
	struct qmgr			*q;
	const struct addr_rewrite	*rw;	/* to qualify for requeue */
	const struct config		*cf;	/* queue_directory, mail_owner */
	void	(*flush_all)(void *arg);	/* "flush": the loop's */
	void	 *arg;
};

/*
 * The open control connections. Any local user may connect, so none may
 * stall the daemon: each socket is non-blocking and read only when poll
 * says so, a request must arrive whole within CTL_DEADLINE_MS of the
 * connect (bytes dribbled in do not extend it), one user other than root
 * and the daemon's may hold CTL_PER_UID at once (SO_PEERCRED), and the
 * last CTL_RESERVED of CTL_MAX_CONNS are kept for root and mail_owner.
 * See posternd(8), SECURITY.
 */
#define CTL_MAX_CONNS	32
#define CTL_RESERVED	4
#define CTL_PER_UID	4
#define CTL_DEADLINE_MS	2000
#define CTL_LINE_MAX	256

/*
 * A listing is written by a child, and its connection leaves the table
 * at once: the children are capped apart. A user other than root, the
 * daemon's and mail_owner may have CTL_LIST_PER_UID listing at once,
 * all such users together CTL_LIST_MAX ("error busy" beyond; root's and
 * mail_owner's are not counted), and each child lives CTL_LIST_SECS at
 * most, however slowly its reader reads.
 */
#define CTL_LIST_MAX	4
#define CTL_LIST_PER_UID 1
#define CTL_LIST_SECS	120

struct ctlconn {
	int	fd;
	long	uid;			/* the peer's, from SO_PEERCRED */
	int	priv;			/* root, our user or mail_owner */
	int64_t	deadline;		/* monotonic ms */
	size_t	len;
	char	line[CTL_LINE_MAX];
};

struct ctllist {
	pid_t	pid;
	long	uid;			/* who asked for the listing */
};

struct ctlconns {
	struct ctlconn	c[CTL_MAX_CONNS];
	size_t		n;
	struct ctllist	l[CTL_LIST_MAX];	/* unprivileged listings */
	size_t		nl;
	int64_t		list_logged;	/* last "refused" line (ms) */
	int		owner_known;	/* owner is mail_owner's uid */
	long		owner;		/* or -1: no such user */
};

/* Accept what waits on the listening socket lfd, within the limits. */
void ctlsrv_accept(struct ctlconns *cc, int lfd, const struct config *cf);
/* The configuration changed: mail_owner's uid is looked up again. */
void ctlsrv_reconfigured(struct ctlconns *cc);
/* pid was reaped: 1 when it was a listing child (it is forgotten). */
int ctlsrv_reaped(struct ctlconns *cc, pid_t pid);
/* Close every connection whose deadline passed before now (ms). */
void ctlsrv_expire(struct ctlconns *cc, int64_t now);
/* The earliest deadline (monotonic ms), or -1 when none is open. */
int64_t ctlsrv_next_deadline(const struct ctlconns *cc);
/*
 * Read what connection i has sent; when its request line is complete
 * (or the peer closed), answer it with ctlsrv_request and close it.
 * The entry may be replaced by the last: call from the end backwards.
 * Returns 1 when a request was served (it may have made mail due), 0
 * when only bytes arrived or the connection closed.
 */
int ctlsrv_input(struct ctlconns *cc, size_t i, const struct ctlsrv *c);
/* Close every connection (the daemon stops). */
void ctlsrv_close_all(struct ctlconns *cc);

/*
 * Serve request line on the accepted connection fd; a listing child is
 * counted in cc. Returns 1 with the answer line (newline included) in
 * reply, or 0 when the connection was handed to a child process that
 * writes the answer (the caller then only closes its copy of fd).
 */
int ctlsrv_request(const struct ctlsrv *c, struct ctlconns *cc, int fd,
    char *line, char *reply, size_t replylen);

#endif
