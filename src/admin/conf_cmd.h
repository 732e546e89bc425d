/*
 * conf_cmd.h - `postern conf`: show parameters like postconf(1).
 */
#ifndef POSTERN_CONF_CMD_H
#define POSTERN_CONF_CMD_H

struct config;

/*
 * Load confdir/main.cf for an admin subcommand, or exit EX_CONFIG with
 * the loader's message. Unknown parameters are warnings only.
 */
struct config *admin_config(const char *confdir);

/*
 * postern conf [-n | -d | -x] [-h] [NAME...]; argv[0] is "conf".
 * Returns the exit status: 0, 1 when a NAME is unknown, EX_USAGE.
 */
int conf_cmd(int argc, char **argv, const char *confdir);

#endif
