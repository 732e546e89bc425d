/*
 * map_cmd.c - `postern map` and `newaliases`: Postfix's postmap and
 * postalias for postern's tables.
 *
 * Compiling is map_db_compile's job (parse all, then one durable
 * replace); this file reads the command line, splits "type:name" (a
 * bare name is hash:, Postfix's default_database_type), and turns
 * results into messages and sysexits codes. A query goes through
 * maps_open and maps_find, exactly as the daemon looks keys up, so it
 * works for every table type and folds the key the same way; only the
 * daemon's reading of a hash: table's source while its .db is unusable
 * is turned off (map_db_text_fallback), as postmap -q reads the .db.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/conf_cmd.h"
#include "admin/map_cmd.h"
#include "conf/config.h"
#include "conf/map_db.h"
#include "conf/map_text.h"
#include "conf/maps.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define MAP_USAGE	"usage: postern map [-a] [type:]file ...\n" \
			"       postern map [-a] -q key type:name ...\n" \
			"       postern map [-a] -s type:name ..."

/* One "type:name" argument, split. */
struct table_arg {
	char	 type[32];
	char	*name;		/* points into the argument */
};

/* What the command line asks for. */
struct map_opts {
	int		 alias;		/* -a */
	const char	*query;		/* -q KEY */
	int		 show;		/* -s */
};

/*
 * Split arg into type and name. The text before the first ':' is the
 * type when it is a plain word ("hash", "texthash"); otherwise the whole
 * argument is a file name and the type is hash, as postmap's default.
 */
static void
table_split(char *arg, struct table_arg *ta)
{
	size_t n = strspn(arg, "abcdefghijklmnopqrstuvwxyz");

	if (n > 0 && n < sizeof(ta->type) && arg[n] == ':') {
		memcpy(ta->type, arg, n);
		ta->type[n] = '\0';
		ta->name = arg + n + 1;
	} else {
		strlcpy(ta->type, "hash", sizeof(ta->type));
		ta->name = arg;
	}
}

/* A parser's warning ("NAME: line N: ..."), on stderr. */
static void
warn_print(void *arg, const char *msg)
{
	log_warnx("%s", msg);
}

/* Compile one table; 0 or a sysexits code, with the message printed. */
static int
compile_one(const struct table_arg *ta, int alias)
{
	char err[1024];
	int rc;

	if (strcmp(ta->type, "texthash") == 0) {
		log_info("texthash:%s is read as text and needs no compiling; "
		    "to use a compiled table, write hash:%s in main.cf",
		    ta->name, ta->name);
		return EX_USAGE;
	}
	if (!map_db_type(ta->type)) {
		log_info("%s:%s: postern map compiles hash: and btree: tables "
		    "only", ta->type, ta->name);
		return EX_USAGE;
	}
	if (*ta->name == '\0') {
		log_info("%s: missing file name", ta->type);
		return EX_USAGE;
	}
	rc = map_db_compile(ta->type, ta->name, alias, warn_print, NULL, err,
	    sizeof(err));
	if (rc != 0)
		log_info("%s", err);
	return rc;
}

/*
 * A table's file that is missing, found before opening it: the source
 * of texthash:, the .db of hash: and btree:. 0, or EX_NOINPUT with the
 * message printed.
 */
static int
query_missing(const struct table_arg *ta, int alias)
{
	struct stat st;
	char err[1024], *db;

	if (map_db_type(ta->type) && ta->name[0] == '/') {
		db = map_db_path(ta->name);
		if (stat(db, &st) < 0 && errno == ENOENT) {
			map_db_open_msg(err, sizeof(err), ta->type, ta->name,
			    alias, strerror(errno));
			log_info("%s:%s: %s", ta->type, ta->name, err);
			free(db);
			return EX_NOINPUT;
		}
		free(db);
	} else if (strcmp(ta->type, "texthash") == 0 && ta->name[0] == '/' &&
	    stat(ta->name, &st) < 0 && errno == ENOENT) {
		log_info("texthash:%s: cannot open the file: %s", ta->name,
		    strerror(errno));
		return EX_NOINPUT;
	}
	return 0;
}

/* Look up each line of standard input; prints "key value" when found. */
static int
query_stdin(struct maps *m)
{
	char *line = NULL, err[1024];
	const char *v;
	size_t cap = 0;
	ssize_t n;
	int rc = 1, r;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		r = maps_find(m, line, &v, err, sizeof(err));
		if (r == MAP_ERROR) {
			log_info("%s", err);
			rc = EX_UNAVAILABLE;
			break;
		}
		if (r == MAP_FOUND) {
			printf("%s %s\n", line, v);
			rc = 0;
		}
	}
	free(line);
	return rc;
}

/* -q: look key up in the tables, in order, as the daemon would. */
static int
query(const struct map_opts *o, int n, char **args)
{
	struct table_arg ta;
	struct buf list = BUF_INIT;
	struct maps *m;
	const char *v;
	char err[1024];
	int rc = 0;

	buf_adds(&list, "");
	for (int i = 0; i < n && rc == 0; i++) {
		table_split(args[i], &ta);
		rc = query_missing(&ta, o->alias);
		buf_addf(&list, "%s%s:%s", i ? ", " : "", ta.type, ta.name);
	}
	if (rc != 0)
		goto out;
	/* Like postmap -q: the .db answers, never its source read as text. */
	map_db_text_fallback(0);
	/* "alias ..." makes the advice for a missing .db name newaliases. */
	m = maps_open(o->alias ? "alias table" : "table", list.data, err,
	    sizeof(err));
	if (m == NULL) {
		log_info("%s", err);
		rc = EX_UNAVAILABLE;
		goto out;
	}
	if (strcmp(o->query, "-") == 0) {
		rc = query_stdin(m);
	} else {
		rc = maps_find(m, o->query, &v, err, sizeof(err));
		if (rc == MAP_FOUND) {
			printf("%s\n", v);
			rc = 0;
		} else if (rc == MAP_NOTFOUND) {
			rc = 1;
		} else {
			log_info("%s", err);
			rc = EX_UNAVAILABLE;
		}
	}
	maps_free(m);
out:
	buf_free(&list);	/* may hold an inline: password */
	return rc;
}

/* Whether an alias name must be quoted to be read back. */
static int
needs_quotes(const char *key)
{
	return key[0] == '\0' || key[0] == '"' || key[0] == '#' ||
	    key[strcspn(key, " \t\r\n\v\f:")] != '\0';
}

/* Print one record: "key value", or "key: value" for aliases. */
static void
print_entry(void *arg, const char *key, const char *value)
{
	const int *alias = arg;

	if (!*alias) {
		printf("%s %s\n", key, value);
		return;
	}
	if (!needs_quotes(key)) {
		printf("%s: %s\n", key, value);
		return;
	}
	putchar('"');
	for (; *key; key++) {
		if (*key == '"' || *key == '\\')
			putchar('\\');
		putchar(*key);
	}
	printf("\": %s\n", value);
}

/* -s of a texthash table: its source, parsed, in the file's order. */
static int
show_text(const struct table_arg *ta, int alias)
{
	struct map_table *t = NULL;
	struct stat st;
	const char *k, *v;
	char *data = NULL, err[512];
	size_t len = 0;
	int rc = EX_NOINPUT;

	if (map_text_read(ta->name, MAP_DB_SOURCE_MAX, &data, &len, &st, err,
	    sizeof(err)) < 0) {
		log_info("%s: %s", ta->name, err);
		return rc;
	}
	t = map_table_new();
	if ((alias ? map_alias_parse : map_text_parse)(data, len, t, NULL,
	    NULL, err, sizeof(err)) < 0) {
		log_info("%s: %s", ta->name, err);
		rc = EX_DATAERR;
		goto out;
	}
	for (size_t i = 0; i < map_table_count(t); i++) {
		map_table_entry(t, i, &k, &v);
		print_entry(&alias, k, v);
	}
	rc = 0;
out:
	map_table_free(t);
	explicit_bzero(data, len);
	free(data);
	return rc;
}

/* -s: print every record of each table. */
static int
show(const struct map_opts *o, int n, char **args)
{
	struct table_arg ta;
	char err[1024];
	int rc = 0, alias = o->alias;

	for (int i = 0; i < n && rc == 0; i++) {
		table_split(args[i], &ta);
		if (map_db_type(ta.type)) {
			rc = map_db_dump(ta.type, ta.name, alias, print_entry,
			    &alias, err, sizeof(err));
			if (rc != 0)
				log_info("%s:%s: %s", ta.type, ta.name, err);
		} else if (strcmp(ta.type, "texthash") == 0) {
			rc = show_text(&ta, alias);
		} else {
			log_info("%s:%s: postern map -s lists hash:, btree: and "
			    "texthash: tables only", ta.type, ta.name);
			rc = EX_USAGE;
		}
	}
	return rc;
}

/* Parse map's options into o; the index of the first table or -1. */
static int
map_options(int argc, char **argv, struct map_opts *o)
{
	int ch;

	memset(o, 0, sizeof(*o));
	optind = 0;		/* glibc: restart scanning for this argv */
	opterr = 0;		/* our own message names the subcommand */
	while ((ch = getopt(argc, argv, "+aq:s")) != -1) {
		switch (ch) {
		case 'a': o->alias = 1; break;
		case 'q': o->query = optarg; break;
		case 's': o->show = 1; break;
		default:
			if (optopt == 'q')
				fprintf(stderr, "postern: map: option -q needs "
				    "a key\n");
			else
				fprintf(stderr, "postern: map: invalid option "
				    "-- '%c'\n", optopt);
			return -1;
		}
	}
	if (o->query != NULL && o->show) {
		fprintf(stderr, "postern: map: -q and -s cannot be used "
		    "together\n");
		return -1;
	}
	if (optind == argc) {
		fprintf(stderr, "postern: map: missing table name\n");
		return -1;
	}
	return optind;
}

/* postern map. */
int
map_cmd(int argc, char **argv, const char *confdir)
{
	struct table_arg ta;
	struct map_opts o;
	int first, rc = 0;

	(void)confdir;
	if ((first = map_options(argc, argv, &o)) < 0) {
		fprintf(stderr, "%s\n", MAP_USAGE);
		return EX_USAGE;
	}
	if (o.query != NULL)
		rc = query(&o, argc - first, argv + first);
	else if (o.show)
		rc = show(&o, argc - first, argv + first);
	else
		for (int i = first; i < argc && rc == 0; i++) {
			table_split(argv[i], &ta);
			rc = compile_one(&ta, o.alias);
		}
	if (fflush(stdout) == EOF) {
		log_warn("write error on standard output");
		rc = EX_IOERR;
	}
	return rc;
}

/* newaliases: compile the tables of alias_database. */
int
newaliases_cmd(int argc, char **argv, const char *confdir)
{
	struct table_arg ta;
	struct config *cf;
	char *copy, *p, *item;
	int rc = 0, n = 0;

	if (argc > 1) {
		fprintf(stderr, "usage: newaliases\n");
		return EX_USAGE;
	}
	cf = admin_config(confdir);
	copy = xstrdup(conf_str(cf, "alias_database"));
	p = copy;
	while (rc == 0 && (item = map_text_token(&p)) != NULL) {
		n++;
		table_split(item, &ta);
		if (strcmp(ta.type, "texthash") == 0)
			log_info("alias_database: texthash:%s is read as text; "
			    "nothing to compile", ta.name);
		else
			rc = compile_one(&ta, 1);
	}
	if (n == 0)
		log_info("alias_database is empty: nothing to compile");
	free(copy);
	config_free(cf);
	return rc;
}
