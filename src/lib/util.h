/*
 * util.h - small helpers shared by every program.
 */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Seconds since the epoch with microseconds, from CLOCK_REALTIME. */
double now_real(void);
/*
 * t as an RFC 5322 date in local time with a numeric zone ("Sat, 21 Nov
 * 2026 18:39:15 +0000"); day and month names are English, since no
 * program calls setlocale. out is "" when it does not fit.
 */
void date_rfc5322(time_t t, char *out, size_t outlen);
/* 1 when p[0..n) holds a byte >= 0x80. */
int mem_has_8bit(const char *p, size_t n);
/* Milliseconds from CLOCK_MONOTONIC, for deadlines. */
int64_t now_mono_ms(void);
/*
 * Wait until fd has one of events or the monotonic deadline (ms) passes,
 * retrying EINTR. Returns 0 with *revents set, or -1 with errno
 * (ETIMEDOUT at the deadline).
 */
int fd_wait(int fd, short events, int64_t deadline, short *revents);
/* Put fd in non-blocking mode; 0 or -1. */
int set_nonblock(int fd);
/* The last path component of s (no copy). */
const char *path_base(const char *s);

/*
 * The long options every program answers, as the only argument:
 * "--help" prints help (and "--version" the line "PROG (postern)
 * VERSION") to standard output and returns the exit status (0, or
 * EX_IOERR when the output could not be written). Returns -1 for any
 * other command line.
 */
int std_long_option(int argc, char **argv, const char *prog,
    const char *help);
/* Parse a decimal integer in [min, max]; 0 or -1 (errstr set). */
int parse_ll(const char *s, long long min, long long max, long long *out,
    const char **errstr);
/* Make fds 0, 1 and 2 valid (opened on /dev/null when closed). */
void fds_sanitize(void);
/* Close every descriptor >= 3 except keep1 and keep2 (-1: none). */
void fds_close_except(int keep1, int keep2);
/* Close every descriptor >= lowfd. */
void fds_close_from(int lowfd);
/*
 * A self-pipe for an event loop: SIGTERM, SIGINT, SIGHUP and SIGCHLD
 * each write their number to fds[1] (non-blocking, close-on-exec; read
 * fds[0]); SIGPIPE is ignored. One pipe per process: a later call
 * replaces the earlier one. 0, or -1 with errno.
 */
int signals_to_pipe(int fds[2]);

#endif
