/*
 * rewrite.c - what the relay sees: the address headers of locally
 * submitted mail qualified with $myorigin (Postfix's cleanup does it with
 * append_at_myorigin and append_dot_mydomain: cron writes "From: root
 * (Cron Daemon)", mailx "To: root"), smtp_generic_maps on the envelope
 * and the address headers, then smtp_header_checks, applied by the worker
 * to each message on its way out.
 *
 * The queue file is never changed: it keeps the message as received, so
 * that a changed myorigin or generic table applies to mail still queued,
 * and sendmail stays a plain writer. Qualification happens here rather
 * than at enqueue for the same reason; a message that came over the
 * network (qfile flag "remote") keeps its headers as they are, as
 * Postfix's local_header_rewrite_clients leaves remote clients' alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bsd/string.h>

#include "conf/maps.h"
#include "deliver/worker.h"
#include "lib/xalloc.h"
#include "mail/addr.h"
#include "mail/addrlist.h"
#include "mail/addrmap.h"
#include "mail/hchecks.h"
#include "mail/header.h"
#include "spool/qfile.h"

/* The lookup context of smtp_generic_maps, from the router's settings. */
struct gen {
	const struct worker_cfg	*wc;
	struct addr_map_ctx	 ctx;
	const char		**local;
	char			*lhost;		/* localhost.$mydomain */
	/* Qualify header addresses first; NULL: not this message. */
	const struct addr_rewrite *qual;
	char			*err;
	size_t			 errlen;
	int			 failed;
};

static void
gen_init(struct gen *g, const struct worker_cfg *wc, char *err, size_t errlen)
{
	const struct router *r = &wc->rt;
	size_t n = 0;

	memset(g, 0, sizeof(*g));
	g->wc = wc;
	g->err = err;
	g->errlen = errlen;
	g->local = xcalloc(r->nmydest + 3, sizeof(*g->local));
	g->lhost = xasprintf("localhost.%s", r->mydomain);
	g->local[n++] = r->myhostname;
	g->local[n++] = "localhost";
	g->local[n++] = g->lhost;
	for (size_t i = 0; i < r->nmydest; i++)
		g->local[n++] = r->mydest[i];
	g->ctx.delims = r->delims;
	g->ctx.myorigin = r->myorigin;
	g->ctx.local_domains = g->local;
	g->ctx.nlocal = n;
	g->ctx.propagate = r->generic_ext;
	g->ctx.append_at_myorigin = r->rw.append_at_myorigin;
	g->ctx.append_dot_mydomain = r->rw.append_dot_mydomain;
	g->ctx.mydomain = r->mydomain;
}

static void
gen_free(struct gen *g)
{
	free(g->local);
	free(g->lhost);
}

/* 1 when the parameter names at least one table. */
static int
has_tables(const struct maps *m)
{
	return m != NULL && *maps_title(m) != '\0';
}

/* One address; MAP_* with *out. */
static int
gen_find(struct gen *g, const char *addr, char **out)
{
	*out = NULL;
	if (*addr == '\0' || !has_tables(g->wc->generic))
		return MAP_NOTFOUND;
	return addr_map_find(g->wc->generic, addr, &g->ctx, out, g->err,
	    g->errlen);
}

/*
 * hdr_rewrite_addrs' callback: the address qualified (when this message
 * gets it), then its smtp_generic_maps result; the new address, or NULL.
 */
static char *
gen_header(void *arg, const char *addr)
{
	struct gen *g = arg;
	char *q = NULL, *out;

	if (g->failed)
		return NULL;
	if (g->qual != NULL)
		q = addr_qualify_canon(addr, g->qual);
	if (gen_find(g, q != NULL ? q : addr, &out) == MAP_ERROR) {
		g->failed = 1;
		free(q);
		return NULL;
	}
	if (out == NULL)
		return q;
	free(q);
	return out;
}

/* Replace *addr with its smtp_generic_maps result; 0 or -1. */
static int
gen_env(struct gen *g, char **addr)
{
	char *out;
	int rc = gen_find(g, *addr, &out);

	if (rc == MAP_ERROR)
		return -1;
	if (rc == MAP_FOUND) {
		free(*addr);
		*addr = out;
	}
	return 0;
}

/* smtp_generic_maps for one address (see worker.h). */
int
worker_generic(const struct worker_cfg *wc, const char *addr, char **out,
    char *err, size_t errlen)
{
	struct gen g;
	int rc;

	*out = NULL;
	if (!has_tables(wc->generic))
		return MAP_NOTFOUND;
	gen_init(&g, wc, err, errlen);
	rc = gen_find(&g, addr, out);
	gen_free(&g);
	return rc;
}

/* The qualification of header addresses for env, or NULL (see the top). */
static const struct addr_rewrite *
header_qual(const struct worker_cfg *wc, const struct qenv *env)
{
	const struct addr_rewrite *rw = &wc->rt.rw;

	if (env->flags & QF_REMOTE)
		return NULL;
	return rw->append_at_myorigin || rw->append_dot_mydomain ? rw : NULL;
}

/* Rewrite one message (see worker.h). */
int
worker_rewrite(const struct worker_cfg *wc, const char *qid,
    struct qenv *env, const char *msg, size_t len, struct buf *out,
    char *err, size_t errlen)
{
	struct buf hdr = BUF_INIT;
	struct gen g;
	size_t hlen, boff, changed = 0;
	int rc = -1, gen = has_tables(wc->generic);

	buf_reset(out);
	gen_init(&g, wc, err, errlen);
	g.qual = header_qual(wc, env);
	if (!gen && !has_tables(wc->hchecks) && g.qual == NULL) {
		rc = 0;
		goto out;
	}
	hdr_split(msg, len, &hlen, &boff);
	if (gen) {
		if (gen_env(&g, &env->sender) < 0)
			goto out;
		for (size_t i = 0; i < env->nrcpt; i++)
			if (gen_env(&g, &env->rcpt[i].addr) < 0)
				goto out;
	}
	if (gen || g.qual != NULL) {
		changed = hdr_rewrite_addrs(msg, hlen, gen_header, &g, &hdr);
		if (g.failed)
			goto out;
	} else
		buf_add(&hdr, msg, hlen);
	if (has_tables(wc->hchecks)) {
		/* header_checks see the addresses as the relay will. */
		if (hchk_apply(wc->hchecks, hdr.data, hdr.len, out, qid, err,
		    errlen) < 0)
			goto out;
	} else if (changed == 0) {
		/* Nothing in the message changed: send it as it is. */
		rc = 0;
		goto out;
	} else
		buf_add(out, hdr.data, hdr.len);
	buf_add(out, msg + hlen, len - hlen);
	rc = 1;
out:
	gen_free(&g);
	buf_free(&hdr);
	return rc;
}
