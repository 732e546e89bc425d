/*
 * map_text.c - the lookup table types whose content is text: texthash,
 * inline and static.
 *
 * texthash reads a postmap(1) source file into an in-memory hash table,
 * as Postfix's texthash does, and (unlike Postfix) reads it again when
 * it changes, so a long-running daemon picks up an edited table without
 * a restart. The file is checked with stat() at most once a second. A
 * re-read that fails drops the old content: lookups then fail (the mail
 * is deferred) rather than go on with data the administrator replaced.
 *
 * The tables may hold passwords (sasl_passwd), so every buffer that held
 * file content, every key and every value is wiped before it is freed,
 * and messages name a line or an entry number, never a value.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/string.h>

#include "conf/map_text.h"
#include "conf/maps.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define RECHECK_MS	1000	/* stat a watched table file at most this often */
#define SEPARATORS	", \t\r\n"	/* between tables and inline: entries */

/* One key and its value, in one allocation: "key\0value\0". */
struct map_entry {
	char	*key;
	char	*value;
	size_t	 size;
};

/* Open addressing with linear probing; slot holds entry index + 1. */
struct map_table {
	struct map_entry *e;
	size_t		  n;
	size_t		  cap;
	uint32_t	 *slot;
	size_t		  nslot;	/* a power of two, more than 2 * n */
};

/* White space as Postfix's ISSPACE sees it, whatever the locale. */
static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	    c == '\f';
}

/* Fold ASCII upper case to lower case in place. */
void
map_fold(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* FNV-1a over a NUL-terminated key. */
static uint64_t
key_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t
table_slot(const struct map_table *t, const char *key)
{
	size_t mask = t->nslot - 1, i = (size_t)key_hash(key) & mask;

	while (t->slot[i] != 0 && strcmp(t->e[t->slot[i] - 1].key, key) != 0)
		i = (i + 1) & mask;
	return i;
}

/* Double the slot array and place every entry again. */
static void
table_grow(struct map_table *t)
{
	size_t i;

	if (t->nslot > SIZE_MAX / 4 || t->n >= UINT32_MAX - 1)
		fatalx("lookup table too large");
	free(t->slot);
	t->nslot *= 2;
	t->slot = xcalloc(t->nslot, sizeof(*t->slot));
	for (i = 0; i < t->n; i++)
		t->slot[table_slot(t, t->e[i].key)] = (uint32_t)(i + 1);
}

/* Set an entry to key and value, wiping what it held. */
static void
entry_set(struct map_entry *e, const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = strlen(value);
	char *p;

	if (klen > SIZE_MAX / 2 || vlen > SIZE_MAX / 2 - 2)
		fatalx("lookup table entry too large");
	p = xmalloc(klen + vlen + 2);
	memcpy(p, key, klen + 1);
	memcpy(p + klen + 1, value, vlen + 1);
	if (e->key != NULL) {
		explicit_bzero(e->key, e->size);
		free(e->key);
	}
	e->key = p;
	e->value = p + klen + 1;
	e->size = klen + vlen + 2;
}

/* An empty table. */
struct map_table *
map_table_new(void)
{
	struct map_table *t = xcalloc(1, sizeof(*t));

	t->nslot = 16;
	t->slot = xcalloc(t->nslot, sizeof(*t->slot));
	return t;
}

/* Store value under key; first or last wins as the caller says. */
int
map_table_put(struct map_table *t, const char *key, const char *value,
    int replace)
{
	size_t i = table_slot(t, key);

	if (t->slot[i] != 0) {
		if (replace)
			entry_set(&t->e[t->slot[i] - 1], key, value);
		return 1;
	}
	if ((t->n + 1) * 2 > t->nslot) {
		table_grow(t);
		i = table_slot(t, key);
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->e = xreallocarray(t->e, t->cap, sizeof(*t->e));
	}
	memset(&t->e[t->n], 0, sizeof(t->e[t->n]));
	entry_set(&t->e[t->n], key, value);
	t->slot[i] = (uint32_t)(t->n + 1);
	t->n++;
	return 0;
}

/* The value under key, or NULL. */
const char *
map_table_get(const struct map_table *t, const char *key)
{
	size_t i = table_slot(t, key);

	return t->slot[i] ? t->e[t->slot[i] - 1].value : NULL;
}

/* Number of keys. */
size_t
map_table_count(const struct map_table *t)
{
	return t->n;
}

/* The i'th entry, in the order first stored. */
void
map_table_entry(const struct map_table *t, size_t i, const char **key,
    const char **value)
{
	*key = t->e[i].key;
	*value = t->e[i].value;
}

/* Wipe every entry and free the table. */
void
map_table_free(struct map_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		explicit_bzero(t->e[i].key, t->e[i].size);
		free(t->e[i].key);
	}
	free(t->e);
	free(t->slot);
	free(t);
}

/* Parser state shared by the lines of one texthash text. */
struct text_ctx {
	struct map_table *t;
	map_warn_fn	  warn;
	void		 *arg;
	char		 *err;
	size_t		  errlen;
};

/* Store one logical line "key whitespace value" (line[len] writable). */
static int
text_entry(struct text_ctx *c, char *line, size_t len, int lineno)
{
	char *key = line, *value = line, *end = line + len, msg[256];

	*end = '\0';
	while (value < end && !is_space((unsigned char)*value))
		value++;
	if (value < end)
		*value++ = '\0';
	while (value < end && is_space((unsigned char)*value))
		value++;
	while (end > value && is_space((unsigned char)end[-1]))
		*--end = '\0';
	if (*value == '\0') {
		/* Not the key either: a lone "user:password" is a secret. */
		snprintf(c->err, c->errlen, "line %d: missing value after the "
		    "key (expected \"key whitespace value\")", lineno);
		return -1;
	}
	map_fold(key);
	if (key[strlen(key) - 1] == ':' && c->warn != NULL) {
		snprintf(msg, sizeof(msg), "line %d: record is in \"key: "
		    "value\" format; is this an alias file?", lineno);
		c->warn(c->arg, msg);
	}
	/* postmap's default: warn and keep the first (-r replaces, -w is quiet). */
	if (map_table_put(c->t, key, value, 0) == 1 && c->warn != NULL) {
		snprintf(msg, sizeof(msg), "line %d: duplicate entry \"%.100s\" "
		    "ignored; the first one is used", lineno, key);
		c->warn(c->arg, msg);
	}
	return 0;
}

/*
 * Split text into logical lines the way Postfix's readllines does and
 * hand each to entry with the number of its first line: blank lines and
 * lines whose first non-blank is '#' are skipped (they do not end a
 * logical line); a line starting with white space continues the logical
 * line, its text appended as is; a CR before a line end is dropped.
 */
static int
parse_lines(const char *data, size_t len, struct text_ctx *c,
    int (*entry)(struct text_ctx *, char *, size_t, int))
{
	const char *p = data, *end = data + len, *nl, *eol, *q;
	char *line;
	size_t used = 0;
	int lineno = 0, start = 0, rc = -1;

	/* A logical line is never longer than the text: no growing copies. */
	if (len == SIZE_MAX)
		fatalx("lookup table text too large");
	line = xmalloc(len + 1);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		eol = nl ? nl : end;
		lineno++;
		if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
			snprintf(c->err, c->errlen, "line %d: NUL byte", lineno);
			goto out;
		}
		if (eol > p && eol[-1] == '\r')
			eol--;
		for (q = p; q < eol && is_space((unsigned char)*q); q++)
			;
		if (q == eol || *q == '#') {
			/* Blank and comment lines do not end a logical line. */
		} else if (q != p) {
			if (used == 0) {
				snprintf(c->err, c->errlen, "line %d: "
				    "continuation line without a key before "
				    "it (remove the leading white space)",
				    lineno);
				goto out;
			}
			/* Postfix appends the text as is, leading blanks too. */
			memcpy(line + used, p, (size_t)(eol - p));
			used += (size_t)(eol - p);
		} else {
			if (used > 0 && entry(c, line, used, start) < 0)
				goto out;
			memcpy(line, p, (size_t)(eol - p));
			used = (size_t)(eol - p);
			start = lineno;
		}
		p = nl ? nl + 1 : end;
	}
	if (used > 0 && entry(c, line, used, start) < 0)
		goto out;
	rc = 0;
out:
	explicit_bzero(line, len + 1);
	free(line);
	return rc;
}

/* Parse postmap(1) source text into t. */
int
map_text_parse(const char *data, size_t len, struct map_table *t,
    map_warn_fn warn, void *arg, char *err, size_t errlen)
{
	struct text_ctx c = { t, warn, arg, err, errlen };

	return parse_lines(data, len, &c, text_entry);
}

/* Store a name and its value, keeping the first of a duplicate name. */
static void
alias_put(struct text_ctx *c, char *name, const char *value, int lineno)
{
	char msg[256];

	map_fold(name);
	/* postalias: warn and keep the first. The name is not a secret but
	   is not echoed either: messages never quote table content. */
	if (map_table_put(c->t, name, value, 0) == 1 && c->warn != NULL) {
		snprintf(msg, sizeof(msg), "line %d: duplicate alias name "
		    "ignored; the first one is used", lineno);
		c->warn(c->arg, msg);
	}
}

/*
 * The quoted name at *p ('"' there): unquoted in place, a backslash
 * taking the next character as is. Advances *p past the closing quote.
 * Returns the name, or NULL when the quote is not closed.
 */
static char *
alias_unquote(char **p)
{
	char *r = *p + 1, *w = *p, *name = *p;

	for (; *r != '"'; r++) {
		if (*r == '\\' && r[1] != '\0')
			r++;
		if (*r == '\0')
			return NULL;
		*w++ = *r;
	}
	*w = '\0';		/* w < r: the opening quote was not copied */
	*p = r + 1;
	return name;
}

/* Store one logical line "name: value" of an aliases(5) file. */
static int
alias_entry(struct text_ctx *c, char *line, size_t len, int lineno)
{
	char *p = line, *name, *q, *value, *end = line + len;
	const char *why = NULL;
	int quoted = *p == '"';

	*end = '\0';
	if (quoted) {
		if ((name = alias_unquote(&p)) == NULL) {
			snprintf(c->err, c->errlen, "line %d: missing '\"' at "
			    "the end of the quoted alias name", lineno);
			return -1;
		}
	} else {
		name = p;
		p += strcspn(p, ": \t\r\n\v\f");
	}
	for (q = p; is_space((unsigned char)*q); q++)
		;
	if (*q == '\0')
		why = "missing ':' after the alias name (expected \"name: "
		    "address, ...\")";
	else if (*q != ':' && quoted)
		why = "text between the quoted alias name and ':'";
	else if (*q != ':')
		why = "white space in the alias name (put a name with spaces "
		    "in double quotes: \"a b\": ...)";
	else if (quoted ? *name == '\0' : p == name)
		why = "empty alias name before ':'";
	if (why != NULL) {
		snprintf(c->err, c->errlen, "line %d: %s", lineno, why);
		return -1;
	}
	*p = '\0';
	for (value = q + 1; is_space((unsigned char)*value); value++)
		;
	while (end > value && is_space((unsigned char)end[-1]))
		*--end = '\0';
	if (*value == '\0') {
		snprintf(c->err, c->errlen, "line %d: nothing after ':' "
		    "(expected \"name: address, ...\")", lineno);
		return -1;
	}
	alias_put(c, name, value, lineno);
	return 0;
}

/* Parse aliases(5) source text into t. */
int
map_alias_parse(const char *data, size_t len, struct map_table *t,
    map_warn_fn warn, void *arg, char *err, size_t errlen)
{
	struct text_ctx c = { t, warn, arg, err, errlen };

	return parse_lines(data, len, &c, alias_entry);
}

/* Length of the balanced { } group at s (s[0] == '{'), or 0. */
static size_t
group_len(const char *s)
{
	size_t i, depth = 0;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '{')
			depth++;
		else if (s[i] == '}' && --depth == 0)
			return i + 1;
	}
	return 0;
}

/* The next token, splitting at SEPARATORS outside { } (mystrtokq). */
char *
map_text_token(char **src)
{
	char *start = *src + strspn(*src, SEPARATORS), *p;
	size_t depth = 0;

	if (*start == '\0') {
		*src = start;
		return NULL;
	}
	for (p = start; *p != '\0'; p++) {
		if (*p == '{')
			depth++;
		else if (*p == '}' && depth > 0)
			depth--;
		else if (depth == 0 && strchr(SEPARATORS, *p) != NULL) {
			*p++ = '\0';
			break;
		}
	}
	*src = p;
	return start;
}

/*
 * Strip a token's outer { } and the white space just inside them, in
 * place (Postfix's extpar). Returns the inside, or NULL with *why.
 */
static char *
strip_group(char *s, const char **why)
{
	size_t n = group_len(s);
	char *end;

	if (n == 0) {
		*why = "missing '}'";
		return NULL;
	}
	if (s[n] != '\0') {
		*why = "text after '}'";
		return NULL;
	}
	end = s + n - 1;
	*end = '\0';
	for (s++; is_space((unsigned char)*s); s++)
		;
	while (end > s && is_space((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/*
 * Split "key = value" in place (Postfix's split_nameval): the key ends at
 * white space or '=', white space around '=' is skipped, the value is
 * trimmed. Returns 0, or -1 with *why.
 */
static int
split_keyval(char *s, char **key, char **value, const char **why)
{
	char *k, *e, *v, *end;

	for (k = s; is_space((unsigned char)*k); k++)
		;
	if (*k == '\0' || *k == '=') {
		*why = "missing key before '='";
		return -1;
	}
	for (e = k; *e != '\0' && *e != '=' && !is_space((unsigned char)*e); e++)
		;
	for (v = e; is_space((unsigned char)*v); v++)
		;
	if (*v != '=') {
		*why = "missing '=' after the key (write key=value without "
		    "spaces, or { key = value })";
		return -1;
	}
	*e = '\0';
	for (v++; is_space((unsigned char)*v); v++)
		;
	end = v + strlen(v);
	while (end > v && is_space((unsigned char)end[-1]))
		*--end = '\0';
	*key = k;
	*value = v;
	return 0;
}

/* Parse "{ key=value, { key = value } }" into t. */
int
map_inline_parse(const char *name, struct map_table *t, char *err,
    size_t errlen)
{
	size_t len = strlen(name);
	char *inner = NULL, *p, *tok, *key, *value;
	const char *why = NULL;
	int count = 0, rc = -1;

	if (name[0] != '{' || group_len(name) != len) {
		snprintf(err, errlen, "bad syntax: expected inline:{ key=value, "
		    "... } with balanced braces");
		return -1;
	}
	inner = xstrndup(name + 1, len - 2);
	p = inner;
	while ((tok = map_text_token(&p)) != NULL) {
		count++;
		if (*tok == '{' && (tok = strip_group(tok, &why)) == NULL)
			break;
		if (split_keyval(tok, &key, &value, &why) < 0)
			break;
		if (*value == '\0') {
			why = "empty value";
			break;
		}
		map_fold(key);
		/* No duplicate check: a later entry replaces, as in Postfix. */
		(void)map_table_put(t, key, value, 1);
	}
	if (why != NULL)
		snprintf(err, errlen, "entry %d: %s", count, why);
	else if (count == 0)
		snprintf(err, errlen, "empty table: expected inline:{ key=value, "
		    "... }");
	else
		rc = 0;
	explicit_bzero(inner, len - 1);
	free(inner);
	return rc;
}

/* The value of static:name. */
char *
map_static_parse(const char *name, char *err, size_t errlen)
{
	const char *why = NULL;
	char *copy, *v, *out = NULL;

	copy = xstrdup(name);
	v = copy;
	if (*v == '{')
		v = strip_group(v, &why);
	if (v == NULL)
		snprintf(err, errlen, "bad syntax: %s (expected static:value or "
		    "static:{ value })", why);
	else if (*v == '\0')
		snprintf(err, errlen, "empty value");
	else
		out = xstrdup(v);
	free_secret(copy);
	return out;
}

/* ---- file reading ------------------------------------------------- */

/* The identity of a file version from its stat. */
void
map_file_id_set(struct map_file_id *id, const struct stat *st)
{
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

/* Whether two file versions are the same. */
int
map_file_id_eq(const struct map_file_id *a, const struct map_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec &&
	    a->ctime.tv_sec == b->ctime.tv_sec &&
	    a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Read path whole into a fresh buffer (see map_text.h). */
int
map_text_read(const char *path, size_t limit, char **data, size_t *len,
    struct stat *st, char *err, size_t errlen)
{
	char *buf = NULL, *nb;
	size_t cap = 0, used = 0;
	ssize_t n;
	int fd, rc = -1, saved = 0;

	/* O_NONBLOCK: a FIFO put in the file's place must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		saved = errno;
		snprintf(err, errlen, "cannot open the file: %s",
		    strerror(errno));
		errno = saved;
		return -1;
	}
	if (fstat(fd, st) < 0) {
		saved = errno;
		snprintf(err, errlen, "cannot stat the file: %s",
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		saved = EINVAL;
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if ((uintmax_t)st->st_size > limit)
		goto too_large;
	cap = (size_t)st->st_size + 1;	/* the extra byte sees growth */
	buf = xmalloc(cap);
	for (;;) {
		if (used == cap) {
			if (cap > limit)
				goto too_large;
			/* Growth copies and wipes, never realloc: realloc
			   would leave the old bytes in freed memory. */
			nb = xmalloc(cap * 2);
			memcpy(nb, buf, used);
			explicit_bzero(buf, cap);
			free(buf);
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			snprintf(err, errlen, "cannot read the file: %s",
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > limit)
		goto too_large;
	*data = buf;
	*len = used;
	buf = NULL;
	rc = 0;
	goto out;
too_large:
	saved = EFBIG;
	snprintf(err, errlen, "file larger than %zu MB", limit >> 20);
out:
	if (buf != NULL) {
		explicit_bzero(buf, cap);
		free(buf);
	}
	close(fd);
	if (rc < 0)
		errno = saved;
	return rc;
}

/* map_text_read with the texthash limit, and the version read in *id. */
int
map_file_read(const char *path, char **data, size_t *len,
    struct map_file_id *id, char *err, size_t errlen)
{
	struct stat st;

	if (map_text_read(path, MAP_TEXT_MAX, data, len, &st, err, errlen) < 0)
		return -1;
	map_file_id_set(id, &st);
	return 0;
}

/* ---- a table file, read again when it changes ----------------------- */

/*
 * The file exists but we may not read it: tell the maps layer once per
 * version of the file (a daemon that gave up root restarts to read it;
 * if root cannot read that version either, it must not restart again).
 */
static void
watch_denied(struct map_watch *w)
{
	struct map_file_id id;
	struct stat st;

	if (stat(w->path, &st) < 0)
		return;
	map_file_id_set(&id, &st);
	if (w->denied_set && map_file_id_eq(&id, &w->denied))
		return;
	w->denied = id;
	w->denied_set = 1;
	map_note_denied(w->title);
}

/*
 * Read the file and parse it into a fresh table that replaces the old
 * one. On failure the old table is dropped too: lookups fail rather than
 * answer from content that was replaced.
 */
static int
watch_load(struct map_watch *w, char *err, size_t errlen)
{
	struct map_file_id id;
	void *t = NULL;
	char *data = NULL;
	size_t len = 0;
	int rc = -1;

	if (map_file_read(w->path, &data, &len, &id, err, errlen) < 0) {
		if (errno == EACCES)
			watch_denied(w);
		goto out;
	}
	if (w->parse(w, data, len, &t, err, errlen) < 0)
		goto out;
	w->drop(w->table);
	w->table = t;
	w->id = id;
	rc = 0;
out:
	if (data != NULL) {
		explicit_bzero(data, len);
		free(data);
	}
	if (rc < 0) {
		w->drop(w->table);
		w->table = NULL;
	}
	return rc;
}

/* Start watching path (see map_text.h). */
int
map_watch_init(struct map_watch *w, const char *title, const char *path,
    map_watch_parse_fn parse, void (*drop)(void *), char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	/* Daemons change directory: a relative name would move with them. */
	if (path[0] != '/') {
		snprintf(err, errlen, "the file name must be absolute");
		return -1;
	}
	w->title = xstrdup(title);
	w->path = xstrdup(path);
	w->parse = parse;
	w->drop = drop;
	if (watch_load(w, err, errlen) < 0) {
		map_watch_free(w);
		return -1;
	}
	w->checked = now_mono_ms();
	return 0;
}

/* The current table (see map_text.h). */
void *
map_watch_table(struct map_watch *w, char *err, size_t errlen)
{
	struct map_file_id id;
	struct stat st;
	char e[512];
	int64_t now = now_mono_ms();
	int was_ok = w->table != NULL;

	if (!w->force && now - w->checked < RECHECK_MS)
		goto out;
	w->force = 0;
	w->checked = now;
	if (stat(w->path, &st) < 0) {
		snprintf(e, sizeof(e), "cannot stat the file: %s",
		    strerror(errno));
		w->drop(w->table);
		w->table = NULL;
	} else {
		map_file_id_set(&id, &st);
		if (was_ok && map_file_id_eq(&id, &w->id))
			goto out;
		/* Changed, or still broken: a fix needs no other signal. */
		if (watch_load(w, e, sizeof(e)) == 0) {
			log_info("%s: file changed, read again", w->title);
			goto out;
		}
	}
	/* Log the change to broken once, not every second. */
	if (was_ok || strcmp(e, w->error) != 0)
		log_warnx("%s: %s; its lookups fail until it is fixed",
		    w->title, e);
	strlcpy(w->error, e, sizeof(w->error));
out:
	if (w->table == NULL)
		strlcpy(err, w->error, errlen);
	return w->table;
}

/* Stat at the next lookup. */
void
map_watch_recheck(struct map_watch *w)
{
	w->force = 1;
}

/* Stop watching; the table is dropped (wiped). */
void
map_watch_free(struct map_watch *w)
{
	if (w->drop != NULL)
		w->drop(w->table);
	free(w->title);
	free(w->path);
	memset(w, 0, sizeof(*w));
}

/* ---- texthash ------------------------------------------------------- */

/* Parser warning: log it with the table's name. */
static void
th_warn(void *arg, const char *msg)
{
	struct map_watch *w = arg;

	log_warnx("%s: %s", w->title, msg);
}

/* map_watch's parser for texthash. */
static int
th_parse(struct map_watch *w, const char *data, size_t len, void **table,
    char *err, size_t errlen)
{
	struct map_table *t = map_table_new();

	if (map_text_parse(data, len, t, th_warn, w, err, errlen) < 0) {
		map_table_free(t);
		return -1;
	}
	*table = t;
	return 0;
}

static void
th_drop(void *table)
{
	map_table_free(table);
}

/* texthash lookup. */
static int
th_find(void *state, const char *key, const char **value, char *err,
    size_t errlen)
{
	struct map_table *t = map_watch_table(state, err, errlen);

	if (t == NULL)
		return MAP_ERROR;
	*value = map_table_get(t, key);
	return *value != NULL ? MAP_FOUND : MAP_NOTFOUND;
}

static void
th_recheck(void *state)
{
	map_watch_recheck(state);
}

/* Look at the file now, as a lookup would. */
static void
th_refresh(void *state)
{
	char err[512];

	(void)map_watch_table(state, err, sizeof(err));
}

static void
th_close(void *state)
{
	map_watch_free(state);
	free(state);
}

static const struct map_ops texthash_ops = {
	.find = th_find, .recheck = th_recheck, .close = th_close,
	.refresh = th_refresh,
};

/* Open texthash:/path, reading the file now. */
int
map_texthash_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen)
{
	struct map_watch *w = xcalloc(1, sizeof(*w));

	if (map_watch_init(w, title, name, th_parse, th_drop, err,
	    errlen) < 0) {
		free(w);
		return -1;
	}
	*ops = &texthash_ops;
	*state = w;
	return 0;
}

/* ---- inline --------------------------------------------------------- */

/* inline lookup. */
static int
inline_find(void *state, const char *key, const char **value, char *err,
    size_t errlen)
{
	*value = map_table_get(state, key);
	return *value != NULL ? MAP_FOUND : MAP_NOTFOUND;
}

/* Free an inline table. */
static void
inline_close(void *state)
{
	map_table_free(state);
}

static const struct map_ops inline_ops = {
	.find = inline_find, .close = inline_close,
};

/* Open inline:{ ... }. */
int
map_inline_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen)
{
	struct map_table *t = map_table_new();

	if (map_inline_parse(name, t, err, errlen) < 0) {
		map_table_free(t);
		return -1;
	}
	*ops = &inline_ops;
	*state = t;
	return 0;
}

/* ---- static --------------------------------------------------------- */

/* static lookup: always the one value. */
static int
static_find(void *state, const char *key, const char **value, char *err,
    size_t errlen)
{
	*value = state;
	return MAP_FOUND;
}

/* Free a static table's value. */
static void
static_close(void *state)
{
	free_secret(state);
}

static const struct map_ops static_ops = {
	.find = static_find, .close = static_close,
};

/* Open static:value or static:{ value }. */
int
map_static_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen)
{
	char *v = map_static_parse(name, err, errlen);

	if (v == NULL)
		return -1;
	*ops = &static_ops;
	*state = v;
	return 0;
}
