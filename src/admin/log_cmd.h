/*
 * log_cmd.h - `postern log`: the mail log's lines about a message or an
 * address.
 */
#ifndef POSTERN_LOG_CMD_H
#define POSTERN_LOG_CMD_H

/*
 * postern log [-n count] [-f file] [queue_id | address]; argv[0] is
 * "log". Returns 0, EX_USAGE, EX_CONFIG, EX_NOINPUT (no log found),
 * EX_NOPERM (the log is not readable) or EX_UNAVAILABLE (nothing about
 * the queue ID or address).
 */
int log_cmd(int argc, char **argv, const char *confdir);

#endif
