/*
 * config.c - load main.cf, expand $name references, check types.
 *
 * The configuration is an array parallel to the parameter table: raw text
 * (main.cf's or the default), expanded text, and the parsed number for
 * typed parameters. Everything is expanded and checked at load time, so
 * a program either starts with a valid configuration or says which line
 * is wrong.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bsd/string.h>

#include "conf/config.h"
#include "conf/params.h"
#include "lib/buf.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define MAINCF_MAX	(1024 * 1024)	/* a larger main.cf is a mistake */
#define EXPAND_DEPTH	32

struct config {
	char		*dir;
	size_t		 n;
	char		**raw;		/* value text, unexpanded */
	char		**val;		/* expanded */
	long long	*num;		/* PT_BOOL / PT_INT / PT_TIME */
	int		*line;		/* main.cf line, 0 when not set there */
	unsigned char	*set;
	char		**file;		/* a name parameter's value read from
					   the file its value names, or NULL */
};

/*
 * The parameters that name this host or domain. As in Debian's Postfix
 * ("myorigin = /etc/mailname"), a value that is an absolute path stands
 * for the first line of that file; the result must be a domain name.
 * In this order: mydomain's default comes from myhostname.
 */
static const char *const name_params[] = {
	"myhostname", "mydomain", "myorigin",
};

#define MAILNAME_MAX	4096	/* a longer mail name file is a mistake */

/* Strip trailing white space in place. */
static void
rtrim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* Hand one complete logical line to the callback; 0 or -1. */
static int
maincf_line(char *line, int lineno, maincf_cb cb, void *arg, char *err,
    size_t errlen)
{
	char *eq, *name, *value;

	rtrim(line);
	if (*line == '\0')
		return 0;
	eq = strchr(line, '=');
	name = line;
	if (eq == NULL) {
		snprintf(err, errlen, "line %d: missing '=' after parameter "
		    "name \"%.60s\"", lineno, name);
		return -1;
	}
	*eq = '\0';
	rtrim(name);
	value = eq + 1;
	while (isspace((unsigned char)*value))
		value++;
	if (*name == '\0') {
		snprintf(err, errlen, "line %d: missing parameter name "
		    "before '='", lineno);
		return -1;
	}
	for (char *p = name; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '_') {
			snprintf(err, errlen, "line %d: bad parameter name "
			    "\"%.60s\"", lineno, name);
			return -1;
		}
	}
	cb(arg, lineno, name, value);
	return 0;
}

/* Parse main.cf text into settings. */
int
maincf_parse(const char *text, size_t len, maincf_cb cb, void *arg,
    char *err, size_t errlen)
{
	struct buf logical = BUF_INIT;
	const char *p = text, *end = text + len, *nl;
	int lineno = 0, start = 0, rc = 0;
	size_t linelen;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		linelen = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		if (memchr(p, '\0', linelen) != NULL) {
			snprintf(err, errlen, "line %d: NUL byte", lineno);
			rc = -1;
			goto out;
		}
		const char *q = p;
		while (q < p + linelen && isspace((unsigned char)*q))
			q++;
		if (q == p + linelen || *q == '#') {
			/* Blank and comment lines do not end a continuation. */
		} else if (q != p) {
			if (logical.len == 0) {
				snprintf(err, errlen, "line %d: continuation "
				    "line without a parameter before it "
				    "(remove the leading white space)", lineno);
				rc = -1;
				goto out;
			}
			buf_addc(&logical, ' ');
			buf_add(&logical, q, (size_t)(p + linelen - q));
		} else {
			if (logical.len && maincf_line(logical.data, start, cb,
			    arg, err, errlen) < 0) {
				rc = -1;
				goto out;
			}
			buf_reset(&logical);
			buf_add(&logical, p, linelen);
			start = lineno;
		}
		p = nl ? nl + 1 : end;
	}
	if (logical.len && maincf_line(logical.data, start, cb, arg, err,
	    errlen) < 0)
		rc = -1;
out:
	buf_free(&logical);
	return rc;
}

/* A fresh configuration with raw defaults. */
static struct config *
config_new(void)
{
	const struct param_def *t;
	struct config *cf = xcalloc(1, sizeof(*cf));
	char host[256], *dot;

	t = param_table(&cf->n);
	cf->raw = xcalloc(cf->n, sizeof(char *));
	cf->val = xcalloc(cf->n, sizeof(char *));
	cf->num = xcalloc(cf->n, sizeof(long long));
	cf->line = xcalloc(cf->n, sizeof(int));
	cf->set = xcalloc(cf->n, 1);
	cf->file = xcalloc(cf->n, sizeof(char *));

	/* Postfix's computed defaults: the host name, qualified. */
	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		strlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.') == NULL)
		strlcat(host, ".localdomain", sizeof(host));
	dot = strchr(host, '.');
	for (size_t i = 0; i < cf->n; i++) {
		if (!(t[i].flags & PF_COMPUTED))
			cf->raw[i] = xstrdup(t[i].def);
		else if (strcmp(t[i].name, "myhostname") == 0)
			cf->raw[i] = xstrdup(host);
		else if (strcmp(t[i].name, "mydomain") == 0)
			cf->raw[i] = xstrdup(dot[1] ? dot + 1 : "localdomain");
		else
			cf->raw[i] = xstrdup("");
	}
	return cf;
}

/* Index of a parameter in the table, or -1. */
static long
param_index(const char *name)
{
	const struct param_def *t, *p;
	size_t n;

	p = param_find(name);
	if (p == NULL)
		return -1;
	t = param_table(&n);
	return p - t;
}

/* Expand one value into out, recursively; 0 or -1. */
static int
expand_into(const struct config *cf, const char *s, struct buf *out,
    int depth, char *err, size_t errlen)
{
	char name[128];
	const char *p = s, *start;
	long i;
	char close, op;

	if (depth > EXPAND_DEPTH) {
		snprintf(err, errlen, "parameter references nest too deep "
		    "(a $name loop?)");
		return -1;
	}
	while (*p) {
		if (*p != '$') {
			buf_addc(out, *p++);
			continue;
		}
		p++;
		if (*p == '$') {
			buf_addc(out, '$');
			p++;
			continue;
		}
		close = *p == '{' ? '}' : *p == '(' ? ')' : '\0';
		if (close)
			p++;
		start = p;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		if ((size_t)(p - start) >= sizeof(name) || p == start) {
			buf_addc(out, '$');
			p = start - (close ? 1 : 0);
			continue;
		}
		memcpy(name, start, (size_t)(p - start));
		name[p - start] = '\0';
		i = param_index(name);
		op = '\0';
		const char *alt = NULL;
		size_t altlen = 0;
		if (close && (*p == '?' || *p == ':')) {
			op = *p++;
			alt = p;
			int nest = 0;
			while (*p && !(*p == close && nest == 0)) {
				if (*p == '{' || *p == '(')
					nest++;
				else if (*p == '}' || *p == ')')
					nest--;
				p++;
			}
			altlen = (size_t)(p - alt);
		}
		if (close) {
			if (*p != close) {
				snprintf(err, errlen, "missing '%c' after "
				    "\"$%c%s\"", close, close == '}' ? '{' :
				    '(', name);
				return -1;
			}
			p++;
		}
		struct buf val = BUF_INIT;
		/* A name read from a file stands for the path that named it. */
		if (i >= 0 && cf->file[i] != NULL)
			buf_adds(&val, cf->file[i]);
		else if (i >= 0 && expand_into(cf, cf->raw[i], &val, depth + 1,
		    err, errlen) < 0) {
			buf_free(&val);
			return -1;
		}
		int empty = val.len == 0;
		if (op == '\0') {
			buf_add(out, val.data ? val.data : "", val.len);
		} else if ((op == '?' && !empty) || (op == ':' && empty)) {
			char *a = xstrndup(alt, altlen);
			int rc = expand_into(cf, a, out, depth + 1, err, errlen);
			free(a);
			if (rc < 0) {
				buf_free(&val);
				return -1;
			}
		}
		buf_free(&val);
	}
	return 0;
}

/* Expand $name references in text. */
char *
conf_expand(const struct config *cf, const char *text, char *err,
    size_t errlen)
{
	struct buf out = BUF_INIT;

	if (expand_into(cf, text, &out, 0, err, errlen) < 0) {
		buf_free(&out);
		return NULL;
	}
	return buf_steal(&out);
}

/* Parse "10", "10s", "5m", "2h", "5d", "1w". */
int
conf_parse_time(const char *s, char unit, long long *out)
{
	long long v, mult;
	char *end;
	char u;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno)
		return -1;
	u = *end ? *end++ : unit;
	if (*end)
		return -1;
	switch (u) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 7 * 86400; break;
	default: return -1;
	}
	if (v > LLONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* Where a value came from, for error messages. */
static void
where(const struct config *cf, size_t i, char *w, size_t wlen)
{
	if (cf->line[i] > 0)
		snprintf(w, wlen, "%s/main.cf line %d", cf->dir ? cf->dir : ".",
		    cf->line[i]);
	else if (cf->set[i])
		snprintf(w, wlen, "command line");
	else
		snprintf(w, wlen, "default");
}

/*
 * Postfix's mydomain default is $myhostname minus its first component,
 * so a main.cf that sets only myhostname moves mydomain with it. The
 * computed default from the system host name applies otherwise.
 */
static void
derive_mydomain(struct config *cf)
{
	long h = param_index("myhostname"), d = param_index("mydomain");
	char err[256], *host, *dot;

	if (!cf->set[h] || cf->set[d])
		return;
	host = cf->file[h] != NULL ? xstrdup(cf->file[h]) :
	    conf_expand(cf, cf->raw[h], err, sizeof(err));
	if (host == NULL)
		return;		/* config_finish reports the loop */
	dot = strchr(host, '.');
	free(cf->raw[d]);
	cf->raw[d] = xstrdup(dot != NULL && dot[1] != '\0' ? dot + 1 :
	    "localdomain");
	free(host);
}

/*
 * 1 when s is a domain name: dot-separated labels of letters, digits,
 * '-' and '_' (host names in the wild have them), none empty or with a
 * '-' at either end, at most 63 bytes each and 253 in all.
 */
static int
is_domain(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i <= n; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)s[i]) || s[i] == '_' ||
		    (s[i] == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return 1;
}

/* The first line of file path, trimmed, into *out; 0 or -1 with err. */
static int
read_mailname(const char *path, char **out, char *err, size_t errlen)
{
	struct buf text = BUF_INIT;
	char *p, *end;

	if (fs_read_file(path, &text, MAILNAME_MAX) < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    errno == EFBIG ? "larger than 4 KB" : strerror(errno));
		buf_free(&text);
		return -1;
	}
	buf_addc(&text, '\0');
	p = text.data;
	p[strcspn(p, "\n")] = '\0';
	while (isspace((unsigned char)*p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	*out = xstrdup(p);
	buf_free(&text);
	return 0;
}

/*
 * Settle myhostname, mydomain and myorigin (name_params): a value that
 * is an absolute path is read from that file, and each must then be a
 * domain name. 0, or -1 with err naming the setting and the fix. A $name
 * loop is left to config_finish, which reports it.
 */
static int
resolve_names(struct config *cf, char *err, size_t errlen)
{
	char e[256], w[300], *v, *name;
	long i;

	for (size_t k = 0; k < sizeof(name_params) / sizeof(*name_params);
	    k++) {
		i = param_index(name_params[k]);
		free(cf->file[i]);
		cf->file[i] = NULL;
		if (k == 1)
			derive_mydomain(cf);
		if ((v = conf_expand(cf, cf->raw[i], e, sizeof(e))) == NULL)
			continue;
		where(cf, (size_t)i, w, sizeof(w));
		if (v[0] == '/') {
			if (read_mailname(v, &name, e, sizeof(e)) < 0) {
				snprintf(err, errlen, "%s: %s = %s: %s; write "
				    "this host's mail domain in it, or set %s "
				    "to a domain name", w, name_params[k], v,
				    e, name_params[k]);
				free(v);
				return -1;
			}
			cf->file[i] = name;
			if (!is_domain(name)) {
				snprintf(err, errlen, "%s: %s = %s: the first "
				    "line of %s, \"%.60s\", is not a domain "
				    "name; write this host's mail domain in "
				    "it (such as host.example.com)", w,
				    name_params[k], v, v, name);
				free(v);
				return -1;
			}
		} else if (!is_domain(v)) {
			snprintf(err, errlen, "%s: %s = %.100s is not a domain "
			    "name; set it to one (such as host.example.com), "
			    "or to the path of a file that holds one such as "
			    "/etc/mailname", w, name_params[k], v);
			free(v);
			return -1;
		}
		free(v);
	}
	return 0;
}

/* Expand every value and check its type; 0 or -1. */
static int
config_finish(struct config *cf, char *err, size_t errlen)
{
	const struct param_def *t;
	char e[256], w[300];
	size_t n;

	if (resolve_names(cf, err, errlen) < 0)
		return -1;
	t = param_table(&n);
	for (size_t i = 0; i < n; i++) {
		free(cf->val[i]);
		if (cf->file[i] != NULL) {
			cf->val[i] = xstrdup(cf->file[i]);
			continue;
		}
		cf->val[i] = conf_expand(cf, cf->raw[i], e, sizeof(e));
		if (cf->val[i] == NULL) {
			where(cf, i, w, sizeof(w));
			snprintf(err, errlen, "%s: %s: %s", w, t[i].name, e);
			return -1;
		}
		const char *v = cf->val[i];
		switch (t[i].type) {
		case PT_STR:
			break;
		case PT_BOOL:
			if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0)
				cf->num[i] = 1;
			else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0)
				cf->num[i] = 0;
			else {
				where(cf, i, w, sizeof(w));
				snprintf(err, errlen, "%s: bad value \"%.60s\" "
				    "for %s: expected yes or no", w, v,
				    t[i].name);
				return -1;
			}
			break;
		case PT_INT: {
			const char *es = NULL;
			long long x;
			if (parse_ll(v, t[i].min, t[i].max, &x, &es) < 0) {
				where(cf, i, w, sizeof(w));
				snprintf(err, errlen, "%s: bad value \"%.60s\" "
				    "for %s: expected a whole number from "
				    "%lld to %lld", w, v, t[i].name, t[i].min,
				    t[i].max);
				return -1;
			}
			cf->num[i] = x;
			break;
		}
		case PT_TIME: {
			long long x;
			if (conf_parse_time(v, t[i].unit, &x) < 0 ||
			    x < t[i].min || x > t[i].max) {
				where(cf, i, w, sizeof(w));
				snprintf(err, errlen, "%s: bad value \"%.60s\" "
				    "for %s: expected a time such as 300s, "
				    "5m, 2h or 5d, from %llds to %llds", w, v,
				    t[i].name, t[i].min, t[i].max);
				return -1;
			}
			cf->num[i] = x;
			break;
		}
		}
	}
	return 0;
}

struct load_ctx {
	struct config	*cf;
	const char	*file;
};

/* maincf_parse callback: record one setting. */
static void
load_setting(void *arg, int lineno, const char *name, const char *value)
{
	struct load_ctx *lc = arg;
	long i = param_index(name);

	if (i < 0) {
		log_warnx("%s, line %d: unknown parameter \"%s\" is ignored "
		    "(see postern.conf(5) for the supported ones)", lc->file,
		    lineno, name);
		return;
	}
	free(lc->cf->raw[i]);
	lc->cf->raw[i] = xstrdup(value);
	lc->cf->line[i] = lineno;
	lc->cf->set[i] = 1;
}

/* Load dir/main.cf. */
struct config *
config_load(const char *dir, char *err, size_t errlen)
{
	struct config *cf = config_new();
	struct buf text = BUF_INIT;
	char path[4096], e[512];
	struct load_ctx lc;

	cf->dir = xstrdup(dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/main.cf", dir) >= sizeof(path)) {
		snprintf(err, errlen, "%s: configuration directory name too long",
		    dir);
		goto fail;
	}
	if (fs_read_file(path, &text, MAINCF_MAX) < 0) {
		struct stat st;
		/* No main.cf is all defaults; no directory is a typo in -C. */
		if (errno == ENOENT && stat(dir, &st) < 0) {
			snprintf(err, errlen, "configuration directory %s: %s",
			    dir, strerror(errno));
			goto fail;
		}
		if (errno != ENOENT) {
			snprintf(err, errlen, "cannot read %s: %s", path,
			    errno == EFBIG ? "file larger than 1 MB" :
			    strerror(errno));
			goto fail;
		}
	}
	lc.cf = cf;
	lc.file = path;
	if (text.len && maincf_parse(text.data, text.len, load_setting, &lc,
	    e, sizeof(e)) < 0) {
		snprintf(err, errlen, "%s, %s", path, e);
		goto fail;
	}
	free(cf->raw[param_index("config_directory")]);
	cf->raw[param_index("config_directory")] = xstrdup(dir);
	if (config_finish(cf, err, errlen) < 0)
		goto fail;
	buf_free(&text);
	return cf;
fail:
	buf_free(&text);
	config_free(cf);
	return NULL;
}

/* All defaults. */
struct config *
config_defaults(void)
{
	struct config *cf = config_new();
	char err[512];

	cf->dir = xstrdup(POSTERN_SYSCONFDIR);
	if (config_finish(cf, err, sizeof(err)) < 0)
		fatalx("built-in defaults do not load: %s", err);
	return cf;
}

/* Override one parameter and re-check. */
int
config_set(struct config *cf, const char *name, const char *value,
    char *err, size_t errlen)
{
	long i = param_index(name);

	if (i < 0) {
		snprintf(err, errlen, "unknown parameter \"%s\"", name);
		return -1;
	}
	free(cf->raw[i]);
	cf->raw[i] = xstrdup(value);
	cf->line[i] = 0;
	cf->set[i] = 1;
	return config_finish(cf, err, errlen);
}

void
config_free(struct config *cf)
{
	if (cf == NULL)
		return;
	for (size_t i = 0; i < cf->n; i++) {
		free(cf->raw[i]);
		free(cf->val[i]);
		free(cf->file[i]);
	}
	free(cf->file);
	free(cf->raw);
	free(cf->val);
	free(cf->num);
	free(cf->line);
	free(cf->set);
	free(cf->dir);
	free(cf);
}

const char *
config_dir(const struct config *cf)
{
	return cf->dir;
}

/* Index of a parameter the code asks for; unknown is a programming error. */
static size_t
must_index(const char *name)
{
	long i = param_index(name);

	if (i < 0)
		fatalx("internal error: no parameter named %s", name);
	return (size_t)i;
}

const char *
conf_str(const struct config *cf, const char *name)
{
	return cf->val[must_index(name)];
}

int
conf_bool(const struct config *cf, const char *name)
{
	return (int)cf->num[must_index(name)];
}

long long
conf_int(const struct config *cf, const char *name)
{
	return cf->num[must_index(name)];
}

long long
conf_time(const struct config *cf, const char *name)
{
	return cf->num[must_index(name)];
}

int
conf_is_set(const struct config *cf, const char *name)
{
	return cf->set[must_index(name)];
}

const char *
conf_raw(const struct config *cf, const char *name)
{
	return cf->raw[must_index(name)];
}
