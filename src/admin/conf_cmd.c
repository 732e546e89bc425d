/*
 * conf_cmd.c - `postern conf`: print configuration parameters.
 *
 * Behaves like Postfix's postconf(1) for the options that make sense
 * without a master.cf: every parameter sorted by name, the values as
 * written (-x expands them), -n only what main.cf sets, -d the built-in
 * defaults, -h the value alone. The parameter table is the single source
 * of truth, so what this prints is what the daemon would use.
 *
 * A value flagged PF_SECRET is never printed, expanded or not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin/conf_cmd.h"
#include "admin/import.h"
#include "conf/config.h"
#include "conf/params.h"
#include "lib/log.h"

#define CONF_USAGE	"usage: postern conf [-n | -d | -x] [-h] [name ...]\n" \
			"       postern conf --import [-f] postfix_config_dir"

/* What to print: which parameters, and how. */
struct conf_opts {
	int	nondefault;	/* -n */
	int	defaults;	/* -d */
	int	expand;		/* -x */
	int	value_only;	/* -h */
};

/* Load the configuration or exit with the loader's message. */
struct config *
admin_config(const char *confdir)
{
	struct config *cf;
	char err[1024];

	cf = config_load(confdir, err, sizeof(err));
	if (cf == NULL)
		fatalx_status(EX_CONFIG, "%s", err);
	return cf;
}

/* Print one parameter in the selected form. */
static void
conf_print(const struct config *cf, const struct param_def *p,
    const struct conf_opts *o)
{
	const char *v;

	if (p->flags & PF_SECRET) {
		v = "(secret)";
	} else {
		/*
		 * Values were expanded at load time (-d's defaults too), and
		 * a name read from a file (myorigin = /etc/mailname) is
		 * shown as the programs use it.
		 */
		v = o->expand ? conf_str(cf, p->name) : conf_raw(cf, p->name);
	}
	if (o->value_only)
		printf("%s\n", v);
	else if (*v == '\0')
		printf("%s =\n", p->name);	/* postconf's form for empty */
	else
		printf("%s = %s\n", p->name, v);
}

/* Parse conf's options into o; returns the index of the first name or -1. */
static int
conf_options(int argc, char **argv, struct conf_opts *o)
{
	int ch;

	memset(o, 0, sizeof(*o));
	optind = 0;		/* glibc: restart scanning for this argv */
	opterr = 0;		/* our own message names the subcommand */
	while ((ch = getopt(argc, argv, "+dhnx")) != -1) {
		switch (ch) {
		case 'd': o->defaults = 1; break;
		case 'h': o->value_only = 1; break;
		case 'n': o->nondefault = 1; break;
		case 'x': o->expand = 1; break;
		default:
			fprintf(stderr, "postern: conf: invalid option -- "
			    "'%c'\n", optopt);
			return -1;
		}
	}
	if (o->defaults && o->nondefault) {
		fprintf(stderr, "postern: -d and -n cannot be used together\n");
		return -1;
	}
	return optind;
}

/* postern conf. */
int
conf_cmd(int argc, char **argv, const char *confdir)
{
	const struct param_def *t, *p;
	struct config *cf;
	struct conf_opts o;
	size_t n;
	int first, status = 0;

	if (argc > 1 && strcmp(argv[1], "--import") == 0) {
		int force = argc > 2 && strcmp(argv[2], "-f") == 0;
		if (argc != 3 + force) {
			fprintf(stderr, "%s\n", CONF_USAGE);
			return EX_USAGE;
		}
		return conf_import(argv[2 + force], confdir, force);
	}
	first = conf_options(argc, argv, &o);
	if (first < 0) {
		fprintf(stderr, "%s\n", CONF_USAGE);
		return EX_USAGE;
	}
	cf = o.defaults ? config_defaults() : admin_config(confdir);
	t = param_table(&n);
	if (first == argc) {
		/* No names: the whole table, already sorted by name. */
		for (size_t i = 0; i < n; i++)
			if (!o.nondefault || conf_is_set(cf, t[i].name))
				conf_print(cf, &t[i], &o);
		goto out;
	}
	for (int i = first; i < argc; i++) {
		p = param_find(argv[i]);
		if (p == NULL) {
			log_warnx("%s: unknown parameter", argv[i]);
			status = 1;
			continue;
		}
		if (!o.nondefault || conf_is_set(cf, p->name))
			conf_print(cf, p, &o);
	}
out:
	config_free(cf);
	if (fflush(stdout) == EOF) {
		log_warn("write error on standard output");
		status = EX_IOERR;
	}
	return status;
}
