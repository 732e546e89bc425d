/*
 * route_cmd.h - `postern route`: how each recipient would be rewritten,
 * expanded and relayed, without sending anything.
 */
#ifndef POSTERN_ROUTE_CMD_H
#define POSTERN_ROUTE_CMD_H

/*
 * postern route [-f sender] rcpt ...; argv[0] is "route". Returns 0,
 * EX_USAGE, EX_DATAERR for an address that cannot be used, EX_CONFIG
 * when the configuration is wrong, EX_TEMPFAIL when a table cannot be
 * read (the daemon would defer).
 */
int route_cmd(int argc, char **argv, const char *confdir);

#endif
