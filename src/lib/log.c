/*
 * log.c - one line per event, in the layout Postfix's log readers expect.
 *
 * Each line is written with a single write(2) on an O_APPEND descriptor,
 * so lines from the daemon and its workers never interleave mid-line.
 * The module keeps its own small state (destination, ident); it is the
 * one process-wide setting every module shares by design.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <bsd/string.h>

#include "lib/log.h"

#define LOG_LINE_MAX	4096

static struct {
	enum log_dest	dest;
	char		ident[64];
	char		host[256];
	int		fd;
	int		verbose;
	int		fatal_status;
} lg = { LOG_DEST_CLI, "postern", "localhost", -1, 0, 1 };

/* Start logging. */
int
log_open(const char *ident, enum log_dest dest, const char *file)
{
	int fd;

	strlcpy(lg.ident, ident, sizeof(lg.ident));
	lg.dest = dest;
	if (lg.fd >= 0 && lg.fd > 2)
		close(lg.fd);
	lg.fd = -1;
	if (dest == LOG_DEST_SYSLOG)
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	if (dest == LOG_DEST_FILE) {
		fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			lg.dest = LOG_DEST_STDERR;
			return -1;
		}
		lg.fd = fd;
	}
	return 0;
}

/*
 * 1 when something listens on syslog's socket; 0 with the reason. A
 * container or a namespace without /dev/log would otherwise swallow
 * every line: syslog(3) drops them in silence.
 */
int
log_syslog_available(char *why, size_t whylen)
{
	struct sockaddr_un sun;
	int fd, ok = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path, _PATH_LOG, sizeof(sun.sun_path));
	for (int type = SOCK_DGRAM; !ok; type = SOCK_STREAM) {
		if ((fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) < 0)
			break;
		ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		close(fd);
		/* A stream socket (some syslog daemons) refuses datagrams. */
		if (ok || errno != EPROTOTYPE || type == SOCK_STREAM)
			break;
	}
	if (!ok)
		snprintf(why, whylen, "%s: %s", _PATH_LOG, strerror(errno));
	return ok;
}

/* Change the ident, e.g. in a worker. */
void
log_set_ident(const char *ident)
{
	strlcpy(lg.ident, ident, sizeof(lg.ident));
	if (lg.dest == LOG_DEST_SYSLOG) {
		closelog();
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

/*
 * In a child about to close its inherited descriptors: syslog(3) keeps
 * its socket to itself, so let it connect again at the next line rather
 * than keep the number of a descriptor closed under it (which a later
 * open could reuse).
 */
void
log_child(void)
{
	if (lg.dest == LOG_DEST_SYSLOG) {
		closelog();
		openlog(lg.ident, LOG_PID, LOG_MAIL);
	}
}

/* Host name for file and stderr lines. */
void
log_set_hostname(const char *name)
{
	strlcpy(lg.host, name, sizeof(lg.host));
}

/* Enable debug lines. */
void
log_set_verbose(int on)
{
	lg.verbose = on;
}

/* Exit status of fatal(). */
void
log_set_fatal_status(int status)
{
	lg.fatal_status = status;
}

/* The log file descriptor or -1. */
int
log_fd(void)
{
	return lg.fd;
}

/* Format and emit one line at a syslog priority. */
static void __attribute__((format(printf, 3, 0)))
log_emit(int prio, const char *prefix, const char *fmt, va_list ap, int err)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 400], stamp[32];
	size_t n;
	time_t now;
	struct tm tm;
	int fd;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Never let a caller's newline split a log line. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (err)
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ": %s",
		    strerror(err));

	switch (lg.dest) {
	case LOG_DEST_SYSLOG:
		syslog(prio, "%s%s", prefix, msg);
		return;
	case LOG_DEST_CLI:
		snprintf(line, sizeof(line), "%s: %s%s\n", lg.ident, prefix, msg);
		fd = STDERR_FILENO;
		break;
	default:
		now = time(NULL);
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s\n", stamp,
		    lg.host, lg.ident, (long)getpid(), prefix, msg);
		fd = lg.dest == LOG_DEST_FILE && lg.fd >= 0 ? lg.fd : STDERR_FILENO;
		break;
	}
	n = strlen(line);
	if (n > 0 && line[n - 1] != '\n')
		line[n - 1] = '\n';	/* truncated: still one line */
	(void)!write(fd, line, n);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_INFO, "", fmt, ap, 0);
	va_end(ap);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, "warning: ", fmt, ap, saved);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, "warning: ", fmt, ap, 0);
	va_end(ap);
	errno = saved;
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (!lg.verbose)
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, "", fmt, ap, 0);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "fatal: ", fmt, ap, saved);
	va_end(ap);
	exit(lg.fatal_status);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(lg.fatal_status);
}

void
fatalx_status(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "fatal: ", fmt, ap, 0);
	va_end(ap);
	exit(status);
}
