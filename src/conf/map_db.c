/*
 * map_db.c - hash: and btree: tables, GDBM files compiled by postern map.
 *
 * Lookups read NAME.db through GDBM, opened read-only without locks: a
 * table is never written in place. `postern map` writes a new file and
 * renames it over the old one, so a reader keeps the version it opened
 * until it notices the change (stat at most once a second, as texthash
 * does) and opens the new one; the daemon picks up a compiled table
 * without a restart. maps_stale() reports a missing or stale .db to
 * postern check.
 *
 * A .db that is missing, not a GDBM file (a Berkeley DB file left by
 * Postfix, a stray) or older than its source does not stop the mail: on
 * a host that another MTA left behind, /etc/aliases exists long before
 * anyone runs newaliases, and the first cron mail to root must not wait
 * for that. The lookups then read the source text itself (aliases(5) or
 * postmap(1) format, re-read when it changes, as texthash: does), and
 * the log says so once, with the command that compiles the table. Only
 * when the source cannot be read either (or the .db is there but may
 * not be read: the daemon restarts as root for that) do the lookups
 * fail, with the reason and the fix, so the daemon keeps the mail that
 * needs the table and delivers it once the table is there.
 *
 * The tables may hold passwords: values handed out are wiped when the
 * next one replaces them, and the buffers GDBM returns are wiped before
 * they are freed. GDBM's own bucket cache cannot be wiped from outside;
 * it lives as long as the open file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <bsd/string.h>
#include <gdbm.h>

#include "conf/map_db.h"
#include "conf/map_text.h"
#include "conf/maps.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define RECHECK_MS	1000	/* stat a .db file at most this often */

/* One opened hash: or btree: table. */
struct dbmap {
	char		*title;		/* "param: hash:/path" for logs */
	const char	*type;		/* "hash" or "btree" */
	char		*name;		/* the source file */
	char		*dbpath;	/* name + ".db" */
	int		 alias;		/* an alias table: advise newaliases */
	GDBM_FILE	 db;		/* NULL while the file is unusable */
	struct stat	 dbst;		/* of the open file */
	int64_t		 checked;	/* now_mono_ms() of the last stat */
	int		 force;		/* stat at the next find */
	char		 error[512];	/* why db is NULL */
	struct stat	 denied_st;	/* the last version we could not */
	int		 denied;	/* open: EACCES (see db_load) */
	struct map_watch *text;		/* the source read as text while the
					   .db is unusable or stale, or NULL */
	char		 text_why[512];	/* why (logged once per reason) */
	int		 no_text;	/* map_db_text_fallback(0) at the open */
	int		 quiet;		/* opening: keep the warning for later */
	char		*pending;	/* that warning, logged at the first
					   lookup or refresh, or NULL */
	char		*value;		/* the last value found */
	size_t		 vsize;		/* bytes allocated for value */
};

/* Tables opened from now on may read their source (see map_db.h). */
static int text_fallback = 1;

void
map_db_text_fallback(int on)
{
	text_fallback = on;
}

/* 1 when the type is compiled by postern map. */
int
map_db_type(const char *type)
{
	return strcmp(type, "hash") == 0 || strcmp(type, "btree") == 0;
}

/* name + ".db". */
char *
map_db_path(const char *name)
{
	return xasprintf("%s.db", name);
}

/* The message for a .db that cannot be used, with the fix. */
void
map_db_open_msg(char *err, size_t errlen, const char *type, const char *name,
    int alias, const char *why)
{
	snprintf(err, errlen, "cannot open %s.db: %s; compile it with: %s"
	    "postern map %s%s:%s", name, why, alias ? "newaliases, or " : "",
	    alias ? "-a " : "", type, name);
}

/* GDBM's reason for the last failure, with errno when it is relevant. */
static const char *
gdbm_why(char *buf, size_t len)
{
	int e = gdbm_errno, saved = errno;

	switch (e) {
	case GDBM_BAD_MAGIC_NUMBER:
	case GDBM_EMPTY_DATABASE:
	case GDBM_BAD_HEADER:
	case GDBM_BAD_FILE_OFFSET:
	case GDBM_FILE_EOF:
		/* The usual cause: Postfix's Berkeley DB file, or a stray. */
		snprintf(buf, len, "not a table made by postern map (%s; a "
		    "Berkeley DB file left by Postfix?)", gdbm_strerror(e));
		break;
	default:
		if (gdbm_check_syserr(e))
			snprintf(buf, len, "%s: %s", gdbm_strerror(e),
			    strerror(saved));
		else
			snprintf(buf, len, "%s", gdbm_strerror(e));
	}
	return buf;
}

/*
 * Open dbpath read-only for lookups or a dump; *st is its fstat. NULL
 * with the message and the fix in err.
 */
static GDBM_FILE
db_open_file(const char *type, const char *name, const char *dbpath,
    int alias, struct stat *st, char *err, size_t errlen)
{
	GDBM_FILE db;
	char why[300];
	int fd, saved;

	/* O_NONBLOCK: a FIFO put in the file's place must not hang us. */
	fd = open(dbpath, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		saved = errno;
		map_db_open_msg(err, errlen, type, name, alias,
		    strerror(errno));
		errno = saved;	/* EACCES: see db_load */
		return NULL;
	}
	if (fstat(fd, st) < 0) {
		map_db_open_msg(err, errlen, type, name, alias,
		    strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st->st_mode)) {
		map_db_open_msg(err, errlen, type, name, alias,
		    "not a regular file");
		close(fd);
		return NULL;
	}
	/* No locks: nobody writes a table in place (see the top). */
	db = gdbm_fd_open(fd, dbpath, 0, GDBM_READER | GDBM_NOLOCK |
	    GDBM_CLOERROR, NULL);
	if (db == NULL)
		map_db_open_msg(err, errlen, type, name, alias,
		    gdbm_why(why, sizeof(why)));
	return db;
}

/* a is later than b. */
static int
ts_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* a and b are the same instant. */
static int
ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Whether two stats describe the same version of a file. */
static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size && ts_eq(&a->st_mtim, &b->st_mtim) &&
	    ts_eq(&a->st_ctim, &b->st_ctim);
}

/* The stale message: "/x.db is older than its source /x; run: ...". */
static void
stale_msg(const struct dbmap *d, char *msg, size_t len)
{
	snprintf(msg, len, "%s is older than its source %s; run: %spostern "
	    "map %s%s:%s", d->dbpath, d->name, d->alias ? "newaliases, or " :
	    "", d->alias ? "-a " : "", d->type, d->name);
}

/* Close the open file, if any. */
static void
db_drop(struct dbmap *d)
{
	if (d->db != NULL)
		gdbm_close(d->db);
	d->db = NULL;
}

/*
 * The .db exists but we may not open it: tell the maps layer once per
 * version of the file (a daemon that gave up root restarts to read it;
 * if root cannot read that version either, it must not restart again).
 */
static void
db_denied(struct dbmap *d)
{
	struct stat st;

	if (stat(d->dbpath, &st) < 0)
		return;
	if (d->denied && same_file(&st, &d->denied_st))
		return;
	d->denied_st = st;
	d->denied = 1;
	map_note_denied(d->title);
}

/* Open the .db (again); 0, or -1 with err (the old file is kept). */
static int
db_load(struct dbmap *d, char *err, size_t errlen)
{
	struct stat st;
	GDBM_FILE db;

	db = db_open_file(d->type, d->name, d->dbpath, d->alias, &st, err,
	    errlen);
	if (db == NULL) {
		if (errno == EACCES)
			db_denied(d);
		return -1;
	}
	db_drop(d);
	d->db = db;
	d->dbst = st;
	return 0;
}

/* A parser's warning about the source read as text, with the table. */
static void
text_warn(void *arg, const char *msg)
{
	struct map_watch *w = arg;

	log_warnx("%s: %s", w->title, msg);
}

/* map_watch's parsers for the source: aliases(5) or postmap(1) text. */
static int
text_parse(struct map_watch *w, const char *data, size_t len, void **table,
    int alias, char *err, size_t errlen)
{
	struct map_table *t = map_table_new();

	if ((alias ? map_alias_parse : map_text_parse)(data, len, t, text_warn,
	    w, err, errlen) < 0) {
		map_table_free(t);
		return -1;
	}
	*table = t;
	return 0;
}

/* The source of an alias table (aliases(5)). */
static int
alias_text_parse(struct map_watch *w, const char *data, size_t len,
    void **table, char *err, size_t errlen)
{
	return text_parse(w, data, len, table, 1, err, errlen);
}

/* The source of any other table (postmap(1) format). */
static int
plain_text_parse(struct map_watch *w, const char *data, size_t len,
    void **table, char *err, size_t errlen)
{
	return text_parse(w, data, len, table, 0, err, errlen);
}

/* Wipe and free a table read from the source. */
static void
text_drop(void *table)
{
	map_table_free(table);
}

static void db_warn(struct dbmap *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Log a warning about the table; while it is being opened, keep it for
 * the first lookup or refresh instead: `postern check` opens tables it
 * never looks in (and reports them its own way), and a table opened
 * twice must not say the same thing twice.
 */
static void
db_warn(struct dbmap *d, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		fatal("vasprintf");	/* out of memory, as xasprintf */
	va_end(ap);
	if (d->quiet) {
		free(d->pending);
		d->pending = msg;
		return;
	}
	log_warnx("%s", msg);
	free(msg);
}

/* Log the warning kept at the open, if any. */
static void
db_flush_warning(struct dbmap *d)
{
	if (d->pending == NULL)
		return;
	log_warnx("%s", d->pending);
	free(d->pending);
	d->pending = NULL;
}

/* Stop reading the source as text; good: because the .db is good. */
static void
text_stop(struct dbmap *d, int good)
{
	if (d->text == NULL)
		return;
	map_watch_free(d->text);
	free(d->text);
	d->text = NULL;
	d->text_why[0] = '\0';
	if (good)
		log_info("%s: %s is up to date; the lookups use it again",
		    d->title, d->dbpath);
}

/*
 * The .db cannot be used (why says so, with the fix): read the source
 * as text instead, logging that once per reason. 0, or -1 with err when
 * the source cannot be read or parsed either.
 */
static int
text_start(struct dbmap *d, const char *why, char *err, size_t errlen)
{
	char e[512];

	if (d->text == NULL) {
		d->text = xcalloc(1, sizeof(*d->text));
		if (map_watch_init(d->text, d->title, d->name, d->alias ?
		    alias_text_parse : plain_text_parse, text_drop, e,
		    sizeof(e)) < 0) {
			free(d->text);
			d->text = NULL;
			d->text_why[0] = '\0';
			snprintf(err, errlen, "%s; and the source %s cannot be "
			    "read as text either: %.300s", why, d->name, e);
			return -1;
		}
	}
	if (strcmp(why, d->text_why) != 0) {
		db_warn(d, "%s: %s; until then the lookups read %s as text",
		    d->title, why, d->name);
		strlcpy(d->text_why, why, sizeof(d->text_why));
	}
	return 0;
}

/*
 * Look at the .db and its source now: open the .db again when it
 * changed, and choose what the lookups read (see the top). A failure is
 * logged once per change, not every second.
 */
static void
db_update(struct dbmap *d)
{
	struct stat st, src;
	char e[512], why[1024];
	int was_ok = d->db != NULL, fallback = !d->no_text;

	if (stat(d->dbpath, &st) < 0) {
		map_db_open_msg(e, sizeof(e), d->type, d->name, d->alias,
		    strerror(errno));
		/* Changed to unusable: no lookup goes on with the old data. */
		db_drop(d);
	} else if (!was_ok || !same_file(&st, &d->dbst)) {
		if (db_load(d, e, sizeof(e)) == 0) {
			if (was_ok || d->error[0] != '\0')
				log_info("%s: %s changed, opened again",
				    d->title, d->dbpath);
		} else {
			/* Unreadable for us: root reads it (db_denied). */
			fallback = fallback && errno != EACCES;
			db_drop(d);
		}
	}
	if (d->db != NULL) {
		if (!fallback || stat(d->name, &src) < 0 ||
		    !ts_after(&src.st_mtim, &d->dbst.st_mtim)) {
			text_stop(d, 1);
			d->error[0] = '\0';
			return;
		}
		stale_msg(d, e, sizeof(e));
	}
	if (fallback && text_start(d, e, why, sizeof(why)) == 0) {
		d->error[0] = '\0';
		return;
	}
	if (!fallback) {
		strlcpy(why, e, sizeof(why));
		text_stop(d, 0);
	}
	if (was_ok || strcmp(why, d->error) != 0)
		db_warn(d, "%s: %s; its lookups fail until it is fixed",
		    d->title, why);
	strlcpy(d->error, why, sizeof(d->error));
}

/* Look at the files at most once a second (or when told to). */
static void
db_check(struct dbmap *d)
{
	int64_t now = now_mono_ms();

	if (!d->force && now - d->checked < RECHECK_MS)
		return;
	d->force = 0;
	d->checked = now;
	db_update(d);
}

/* Keep a copy of a found value, wiping the previous one. */
static void
value_set(struct dbmap *d, const char *p, size_t n)
{
	if (d->vsize < n + 1) {
		if (d->value != NULL) {
			explicit_bzero(d->value, d->vsize);
			free(d->value);
		}
		d->vsize = n + 1;
		d->value = xmalloc(d->vsize);
	} else
		explicit_bzero(d->value, d->vsize);
	memcpy(d->value, p, n);
	d->value[n] = '\0';
}

/* Wipe and free a buffer GDBM returned. */
static void
datum_free(datum *v)
{
	if (v->dptr != NULL) {
		explicit_bzero(v->dptr, (size_t)v->dsize);
		free(v->dptr);
	}
	v->dptr = NULL;
}

/* hash:/btree: lookup. */
static int
db_find(void *state, const char *key, const char **value, char *err,
    size_t errlen)
{
	struct dbmap *d = state;
	char why[300];
	size_t klen = strlen(key);
	datum k, v;

	db_check(d);
	db_flush_warning(d);
	if (d->text != NULL) {
		struct map_table *t = map_watch_table(d->text, why,
		    sizeof(why));

		if (t == NULL) {
			snprintf(err, errlen, "%s; and the source %s cannot be "
			    "read as text either: %.300s", d->text_why,
			    d->name, why);
			return MAP_ERROR;
		}
		*value = map_table_get(t, key);
		return *value != NULL ? MAP_FOUND : MAP_NOTFOUND;
	}
	if (d->db == NULL) {
		strlcpy(err, d->error, errlen);
		return MAP_ERROR;
	}
	if (klen > INT_MAX)
		return MAP_NOTFOUND;
	k.dptr = (char *)key;
	k.dsize = (int)klen;
	v = gdbm_fetch(d->db, k);
	if (v.dptr == NULL) {
		if (gdbm_errno == GDBM_ITEM_NOT_FOUND)
			return MAP_NOTFOUND;
		snprintf(err, errlen, "cannot read %s: %s", d->dbpath,
		    gdbm_why(why, sizeof(why)));
		return MAP_ERROR;
	}
	value_set(d, v.dptr, (size_t)v.dsize);
	datum_free(&v);
	*value = d->value;
	return MAP_FOUND;
}

/* Stat at the next lookup. */
static void
db_recheck(void *state)
{
	struct dbmap *d = state;

	d->force = 1;
	if (d->text != NULL)
		map_watch_recheck(d->text);
}

/* Look at the file now, as a lookup would. */
static void
db_refresh(void *state)
{
	db_check(state);
	db_flush_warning(state);
}

/*
 * Report a missing or stale .db, from the files as they are now, or a
 * .db that could not be opened (a Berkeley DB file); and whether the
 * lookups read the source instead.
 */
static void
db_stale(void *state, maps_report_fn cb, void *arg)
{
	struct dbmap *d = state;
	struct stat src, db;
	char msg[1024];
	size_t n;

	if (stat(d->dbpath, &db) < 0)
		map_db_open_msg(msg, sizeof(msg), d->type, d->name, d->alias,
		    strerror(errno));
	else if (stat(d->name, &src) == 0 &&
	    ts_after(&src.st_mtim, &db.st_mtim))
		stale_msg(d, msg, sizeof(msg));
	else if (d->db == NULL && d->text != NULL)
		strlcpy(msg, d->text_why, sizeof(msg));
	else
		return;
	n = strlen(msg);
	if (!d->no_text && stat(d->name, &src) == 0)
		snprintf(msg + n, sizeof(msg) - n, "; until then the lookups "
		    "read %s as text", d->name);
	cb(arg, msg);
}

/* Close a table, wiping the last value. */
static void
db_close(void *state)
{
	struct dbmap *d = state;

	db_drop(d);
	if (d->text != NULL) {
		map_watch_free(d->text);
		free(d->text);
	}
	free(d->pending);
	if (d->value != NULL) {
		explicit_bzero(d->value, d->vsize);
		free(d->value);
	}
	free(d->title);
	free(d->name);
	free(d->dbpath);
	free(d);
}

static const struct map_ops db_ops = {
	.find = db_find, .recheck = db_recheck, .close = db_close,
	.stale = db_stale, .refresh = db_refresh,
};

/* Open type:name (see map_db.h). */
static int
db_open(const char *type, const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen)
{
	struct dbmap *d;

	/* Daemons change directory: a relative name would move with them. */
	if (name[0] != '/') {
		snprintf(err, errlen, "the file name must be absolute");
		return -1;
	}
	d = xcalloc(1, sizeof(*d));
	d->title = xstrdup(title);
	d->type = type;
	d->name = xstrdup(name);
	d->dbpath = map_db_path(name);
	/* The parameter, first in the title, says what the table is for. */
	d->alias = strncmp(title, "alias", 5) == 0;
	d->no_text = !text_fallback;
	/* Not a failure: the lookups report it (see the top). */
	d->quiet = 1;
	db_update(d);
	d->quiet = 0;
	d->checked = now_mono_ms();
	*ops = &db_ops;
	*state = d;
	return 0;
}

/* Open hash:/path. */
int
map_hash_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen)
{
	return db_open("hash", title, name, ops, state, err, errlen);
}

/* Open btree:/path (the same GDBM file). */
int
map_btree_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen)
{
	return db_open("btree", title, name, ops, state, err, errlen);
}

/* ---- compiling ------------------------------------------------------ */

/* Where a compile's warnings go, and the file they are about. */
struct compile_ctx {
	const char	*name;
	map_warn_fn	 warn;
	void		*arg;
};

/* A parser's or the writer's warning, prefixed with the file name. */
static void
compile_warn(void *arg, const char *msg)
{
	struct compile_ctx *c = arg;
	char *line;

	if (c->warn == NULL)
		return;
	line = xasprintf("%s: %s", c->name, msg);
	c->warn(c->arg, line);
	free(line);
}

/*
 * Give the new file the source's owner, group and permission bits, so a
 * private sasl_passwd gives a private sasl_passwd.db. Without root the
 * file stays ours; a group we cannot give it loses its group bits.
 */
static int
copy_owner(int fd, const struct stat *src, const char *dbpath,
    struct compile_ctx *c, char *err, size_t errlen)
{
	mode_t mode = src->st_mode & 0777;
	char msg[512];

	if (fchown(fd, src->st_uid, src->st_gid) < 0) {
		if (errno != EPERM) {
			snprintf(err, errlen, "cannot give %s the owner of %s: "
			    "%s", dbpath, c->name, strerror(errno));
			return -1;
		}
		if (fchown(fd, (uid_t)-1, src->st_gid) < 0) {
			mode &= ~(mode_t)070;
			snprintf(msg, sizeof(msg), "cannot give %s the group "
			    "of the source (%s); the group gets no access",
			    dbpath, strerror(errno));
			compile_warn(c, msg);
		}
	}
	if (fchmod(fd, mode) < 0) {
		snprintf(err, errlen, "cannot set the mode of %s: %s", dbpath,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Store every entry of t in db; 0 or -1 with err. */
static int
db_store_all(GDBM_FILE db, const struct map_table *t, const char *dbpath,
    char *err, size_t errlen)
{
	const char *key, *value;
	char why[300];
	size_t n = map_table_count(t), kl, vl;
	datum k, v;

	for (size_t i = 0; i < n; i++) {
		map_table_entry(t, i, &key, &value);
		kl = strlen(key);
		vl = strlen(value);
		if (kl > INT_MAX || vl > INT_MAX) {
			snprintf(err, errlen, "cannot write %s: entry too "
			    "large", dbpath);
			return -1;
		}
		k.dptr = (char *)key;
		k.dsize = (int)kl;
		v.dptr = (char *)value;
		v.dsize = (int)vl;
		if (gdbm_store(db, k, v, GDBM_INSERT) != 0) {
			snprintf(err, errlen, "cannot write %s: %s", dbpath,
			    gdbm_why(why, sizeof(why)));
			return -1;
		}
	}
	return 0;
}

/*
 * Write t to a temporary file next to dbpath and rename it over dbpath,
 * durably. Returns 0 or a sysexits code with err; on failure the
 * temporary file is gone and dbpath untouched.
 */
static int
db_write(const struct map_table *t, const struct stat *src,
    const char *dbpath, struct compile_ctx *c, char *err, size_t errlen)
{
	const char *slash = strrchr(dbpath, '/');
	/* mkstemp(3) replaces the six X of its template. */
	char *tmp = xasprintf("%s.tmp-%s", dbpath, "XXXXXX"), *dir, why[300];
	GDBM_FILE db = NULL;
	enum fs_step step;
	int fd, gfd, rc = EX_IOERR;

	dir = slash == NULL ? xstrdup(".") : slash == dbpath ? xstrdup("/") :
	    xstrndup(dbpath, (size_t)(slash - dbpath));
	/* Created 0600: nothing is readable before the mode is copied. */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot create a temporary file in %s: "
		    "%s", dir, strerror(errno));
		free(tmp);
		free(dir);
		return EX_CANTCREAT;
	}
	/* GDBM closes its descriptor; ours stays for fsync and rename. */
	if ((gfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto fail;
	}
	db = gdbm_fd_open(gfd, tmp, 0, GDBM_NEWDB | GDBM_NOLOCK |
	    GDBM_CLOERROR, NULL);
	if (db == NULL) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
		    gdbm_why(why, sizeof(why)));
		rc = EX_CANTCREAT;
		goto fail;
	}
	if (db_store_all(db, t, dbpath, err, errlen) < 0)
		goto fail;
	if (gdbm_close(db) != 0) {
		db = NULL;
		snprintf(err, errlen, "cannot write %s: %s", tmp,
		    gdbm_why(why, sizeof(why)));
		goto fail;
	}
	db = NULL;
	if (copy_owner(fd, src, dbpath, c, err, errlen) < 0) {
		rc = EX_CANTCREAT;
		goto fail;
	}
	/* fsync, close, rename over dbpath, fsync the directory. */
	if (fs_commit(fd, "", 0, tmp, dir, slash ? slash + 1 : dbpath, 0,
	    &step) < 0) {
		snprintf(err, errlen, "cannot %s %s: %s", fs_step_name(step),
		    step == FS_SYNC_DIR ? dir : tmp, strerror(errno));
		fd = -1;	/* fs_commit closed it and removed tmp */
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	if (db != NULL)
		gdbm_close(db);
	if (fd >= 0) {
		close(fd);
		(void)unlink(tmp);
	}
out:
	free(tmp);
	free(dir);
	return rc;
}

/* Compile name into name.db (see map_db.h). */
int
map_db_compile(const char *type, const char *name, int alias,
    map_warn_fn warn, void *arg, char *err, size_t errlen)
{
	struct compile_ctx c = { name, warn, arg };
	struct map_table *t = NULL;
	struct stat st;
	char *data = NULL, *dbpath = map_db_path(name), e[512];
	size_t len = 0;
	int rc;

	if (map_text_read(name, MAP_DB_SOURCE_MAX, &data, &len, &st, e,
	    sizeof(e)) < 0) {
		rc = errno == EFBIG ? EX_DATAERR : EX_NOINPUT;
		snprintf(err, errlen, "%s: %s", name, e);
		goto out;
	}
	/* All of the source is checked before anything is written. */
	t = map_table_new();
	if ((alias ? map_alias_parse : map_text_parse)(data, len, t,
	    compile_warn, &c, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "%s: %s", name, e);
		rc = EX_DATAERR;
		goto out;
	}
	rc = db_write(t, &st, dbpath, &c, err, errlen);
out:
	map_table_free(t);
	if (data != NULL) {
		explicit_bzero(data, len);
		free(data);
	}
	free(dbpath);
	return rc;
}

/* A NUL-terminated copy of a GDBM datum. */
static char *
datum_str(const datum *v)
{
	return xstrndup(v->dptr, (size_t)v->dsize);
}

/* Call fn for every record of name.db (see map_db.h). */
int
map_db_dump(const char *type, const char *name, int alias,
    map_db_entry_fn fn, void *arg, char *err, size_t errlen)
{
	char *dbpath = map_db_path(name), *ks, *vs, why[300];
	struct stat st;
	GDBM_FILE db;
	datum k, v, next;
	int rc = 0;

	db = db_open_file(type, name, dbpath, alias, &st, err, errlen);
	if (db == NULL) {
		free(dbpath);
		return EX_NOINPUT;
	}
	for (k = gdbm_firstkey(db); k.dptr != NULL; k = next) {
		v = gdbm_fetch(db, k);
		if (v.dptr == NULL) {
			datum_free(&k);
			break;
		}
		ks = datum_str(&k);
		vs = datum_str(&v);
		fn(arg, ks, vs);
		free_secret(ks);
		free_secret(vs);
		datum_free(&v);
		next = gdbm_nextkey(db, k);
		datum_free(&k);
	}
	if (gdbm_errno != GDBM_ITEM_NOT_FOUND) {
		snprintf(err, errlen, "cannot read %s: %s", dbpath,
		    gdbm_why(why, sizeof(why)));
		rc = EX_IOERR;
	}
	gdbm_close(db);
	free(dbpath);
	return rc;
}
