/*
 * log.h - the few logging verbs every postern program uses.
 *
 * A daemon line looks like syslog's: "Nov 21 16:07:05 host postern/smtp[812]:
 * text", whether it goes to syslog (facility mail), to maillog_file or to
 * stderr under posternd -f. Command-line programs print "prog: text" on
 * stderr. Nothing secret is ever passed to these functions.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>

enum log_dest {
	LOG_DEST_CLI,		/* "prog: text" on stderr (command-line tools) */
	LOG_DEST_STDERR,	/* full syslog-style lines on stderr (posternd -f) */
	LOG_DEST_SYSLOG,	/* syslog(3), facility mail */
	LOG_DEST_FILE,		/* full lines appended to a file (maillog_file) */
};

/*
 * Start logging as ident (e.g. "postern/qmgr", or "sendmail" for a CLI)
 * to dest; file is the path for LOG_DEST_FILE. Returns 0, or -1 with errno
 * when the file cannot be opened (logging then falls back to stderr).
 */
int log_open(const char *ident, enum log_dest dest, const char *file);
/*
 * 1 when a syslog daemon listens on /dev/log; 0 with the path and the
 * reason in why (no syslog: a container, a test namespace).
 */
int log_syslog_available(char *why, size_t whylen);
/* Change the ident, e.g. "postern/smtp" in a delivery worker. */
void log_set_ident(const char *ident);
/* The host name printed in file and stderr lines. */
void log_set_hostname(const char *name);
/* Print log_debug lines too. */
void log_set_verbose(int on);
/* Exit status used by fatal()/fatalx() (default 1; sendmail uses 75). */
void log_set_fatal_status(int status);
/* The file descriptor of the log file, or -1 (kept open across fork). */
int log_fd(void);
/* In a forked child, before it closes inherited descriptors. */
void log_child(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A warning without errno. */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log "fatal: ...: strerror(errno)" and exit. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log "fatal: ..." and exit. */
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log "fatal: ..." and exit with the given sysexits status. */
_Noreturn void fatalx_status(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
