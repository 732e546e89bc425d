/*
 * check.h - `postern check`: the configuration and a live relay test.
 */
#ifndef POSTERN_CHECK_H
#define POSTERN_CHECK_H

/*
 * postern check; argv[0] is "check". Connects to the relay as posternd
 * would, sends no mail, prints what it found. Returns 0 when mail would
 * be delivered, EX_UNAVAILABLE when the relay refuses or fails the TLS
 * policy, EX_CONFIG when the configuration is wrong, EX_USAGE.
 */
int check_cmd(int argc, char **argv, const char *confdir);

#endif
