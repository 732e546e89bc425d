/*
 * util.c - time, descriptor and parsing helpers.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <bsd/stdlib.h>
#include <bsd/unistd.h>

#include "lib/util.h"
#include "lib/version.h"

/* Wall-clock time in seconds. */
double
now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Monotonic milliseconds. */
int64_t
now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Non-blocking mode. */
int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Last path component. */
const char *
path_base(const char *s)
{
	const char *p = strrchr(s, '/');

	return p ? p + 1 : s;
}

/* Bounded integer parse through strtonum. */
int
parse_ll(const char *s, long long min, long long max, long long *out,
    const char **errstr)
{
	const char *err = NULL;
	long long v;

	v = strtonum(s, min, max, &err);
	if (err != NULL) {
		if (errstr)
			*errstr = err;
		return -1;
	}
	*out = v;
	return 0;
}

/* Ensure 0, 1, 2 are open so a later open() cannot land on them. */
void
fds_sanitize(void)
{
	int fd;

	for (int i = 0; i < 3; i++) {
		if (fcntl(i, F_GETFD) >= 0 || errno != EBADF)
			continue;
		fd = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
		if (fd < 0)
			_exit(75);	/* EX_TEMPFAIL: nothing safe to do */
		if (fd != i)
			_exit(75);
	}
}

/* Close stray descriptors. */
void
fds_close_from(int lowfd)
{
	closefrom(lowfd);
}

/* Close every descriptor >= 3 except two. */
void
fds_close_except(int keep1, int keep2)
{
	int lo = 3, a = keep1 < keep2 ? keep1 : keep2;
	int b = keep1 < keep2 ? keep2 : keep1;

	/* Close the gaps below, between and above the kept ones. */
	if (a >= lo) {
		if (a > lo)
			close_range((unsigned)lo, (unsigned)a - 1, 0);
		lo = a + 1;
	}
	if (b >= lo) {
		if (b > lo)
			close_range((unsigned)lo, (unsigned)b - 1, 0);
		lo = b + 1;
	}
	close_range((unsigned)lo, ~0U, 0);
}

/* Wait for events on fd until a deadline. */
int
fd_wait(int fd, short events, int64_t deadline, short *revents)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	for (;;) {
		left = deadline - now_mono_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n > 0) {
			*revents = pfd.revents;
			return 0;
		}
	}
}

/* An RFC 5322 date (see util.h). */
void
date_rfc5322(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(out, outlen, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 &&
	    outlen > 0)
		out[0] = '\0';
}

/* 1 when p[0..n) holds a byte >= 0x80. */
int
mem_has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return 1;
	return 0;
}

/* ---- signals through a self-pipe ---------------------------------------- */

static int selfpipe_write = -1;

/* Signal handler: hand the signal number to the loop reading the pipe. */
static void
selfpipe_handler(int sig)
{
	unsigned char c = (unsigned char)sig;
	int saved = errno;

	(void)!write(selfpipe_write, &c, 1);
	errno = saved;
}

/* SIGTERM, SIGINT, SIGHUP and SIGCHLD as bytes on a new pipe (see util.h). */
int
signals_to_pipe(int fds[2])
{
	struct sigaction sa;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	selfpipe_write = fds[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = selfpipe_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* --help and --version (see util.h). */
int
std_long_option(int argc, char **argv, const char *prog, const char *help)
{
	if (argc != 2)
		return -1;
	if (strcmp(argv[1], "--version") == 0)
		printf("%s (postern) %s\n", prog, POSTERN_VERSION);
	else if (strcmp(argv[1], "--help") == 0)
		fputs(help, stdout);
	else
		return -1;
	/* A full disk or a closed pipe is not success. */
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : EX_IOERR;
}
