/*
 * postern.c - the administration program: global options, then one
 * subcommand from a table.
 *
 *   postern [-v] [-C dir] check | conf | queue | mailq | flush | delete |
 *       hold | release | requeue | cat | log | map | newaliases |
 *       route [args]
 *   newaliases [-v] [-C dir]        (postern under that name)
 *
 * The subcommands live in src/admin/; this file only finds the
 * configuration directory (-C, then POSTERN_CONFIG_DIR, then the built-in
 * one) and dispatches, so every subcommand is testable on its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "admin/check.h"
#include "admin/conf_cmd.h"
#include "admin/log_cmd.h"
#include "admin/map_cmd.h"
#include "admin/qadmin_cmd.h"
#include "admin/queue_cmd.h"
#include "admin/route_cmd.h"
#include "lib/log.h"
#include "lib/util.h"

/* One subcommand: its name and the function that runs it. */
struct subcmd {
	const char	*name;
	int		(*run)(int argc, char **argv, const char *confdir);
};

static const struct subcmd subcmds[] = {
	{ "cat", cat_cmd },
	{ "check", check_cmd },
	{ "conf", conf_cmd },
	{ "delete", qadmin_cmd },
	{ "flush", flush_cmd },
	{ "hold", qadmin_cmd },
	{ "log", log_cmd },
	{ "mailq", queue_cmd },
	{ "map", map_cmd },
	{ "newaliases", newaliases_cmd },
	{ "queue", queue_cmd },
	{ "release", qadmin_cmd },
	{ "requeue", qadmin_cmd },
	{ "route", route_cmd },
};

/* The usage summary (also --help). */
#define POSTERN_HELP \
	    "usage: postern [-v] [-C config_dir] command [args]\n" \
	    "  check                               test the relay: " \
	    "connection, TLS, certificate\n" \
	    "  conf [-n | -d | -x] [-h] [name ...]  show parameters\n" \
	    "  queue [-j]                          list the mail queue " \
	    "(alias: mailq)\n" \
	    "  flush [-i id | -s domain]           retry deferred mail now\n" \
	    "  delete id ... | ALL | - [queue ...] remove messages\n" \
	    "  hold id ... | ALL | - [queue ...]   put messages on hold\n" \
	    "  release id ... | ALL | -            release held messages\n" \
	    "  requeue id ... | ALL | - [queue ...] route messages afresh\n" \
	    "  cat [-b] [-e] [-h] id               show a queued message\n" \
	    "  log [-n count] [-f file] [id|addr]  the mail log's lines about " \
	    "a message\n" \
	    "  map [-a] [-q key | -s] type:file    compile, query or list a " \
	    "table\n" \
	    "  newaliases                          compile alias_database\n" \
	    "  route [-f sender] rcpt ...          show how mail would be " \
	    "rewritten and relayed\n" \
	    "  --help, --version                   this text, the version\n"

/* Print the usage summary and return EX_USAGE. */
static int
usage(void)
{
	fputs(POSTERN_HELP, stderr);
	return EX_USAGE;
}

int
main(int argc, char **argv)
{
	const char *confdir = getenv("POSTERN_CONFIG_DIR");
	/* Installed as newaliases too: then that is the command. */
	int newaliases = argc > 0 &&
	    strcmp(path_base(argv[0]), "newaliases") == 0;
	int ch;

	log_open(newaliases ? "newaliases" : "postern", LOG_DEST_CLI, NULL);
	if ((ch = std_long_option(argc, argv, newaliases ? "newaliases" :
	    "postern", POSTERN_HELP)) >= 0)
		return ch;
	if (confdir == NULL || *confdir == '\0')
		confdir = POSTERN_SYSCONFDIR;
	/* '+': options after the subcommand belong to the subcommand. */
	opterr = 0;
	while ((ch = getopt(argc, argv, "+C:v")) != -1) {
		switch (ch) {
		case 'C':
			confdir = optarg;
			break;
		case 'v':
			log_set_verbose(1);
			break;
		default:
			if (optopt == 'C')
				fprintf(stderr, "postern: option -C needs a "
				    "directory\n");
			else
				fprintf(stderr, "postern: invalid option -- "
				    "'%c'\n", optopt);
			return usage();
		}
	}
	if (newaliases)		/* argv[optind - 1] stands for the name */
		return newaliases_cmd(argc - optind + 1, argv + optind - 1,
		    confdir);
	if (optind == argc) {
		fprintf(stderr, "postern: missing command\n");
		return usage();
	}
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		if (strcmp(argv[optind], subcmds[i].name) == 0)
			return subcmds[i].run(argc - optind, argv + optind,
			    confdir);
	fprintf(stderr, "postern: unknown command \"%s\"\n", argv[optind]);
	return usage();
}
