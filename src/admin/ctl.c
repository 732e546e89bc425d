/*
 * ctl.c - client side of the daemon's control socket.
 *
 * postern flush (and later admin commands) talk to a running posternd
 * through queue_directory/public/control: one request line out, one
 * answer line back. The exchange is bounded by a 10 second deadline so
 * a wedged daemon cannot hang an administrator's shell.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/ctl.h"
#include "lib/util.h"

#define CTL_TIMEOUT_MS	10000

/*
 * Read one line into reply (newline removed). A daemon that closes
 * without a newline still gave its answer, so EOF ends the line too.
 * Returns 0, or -1 with errno.
 */
static int
read_line(int fd, char *reply, size_t replylen, int64_t deadline)
{
	size_t len = 0;
	ssize_t n;
	char c;

	for (;;) {
		short rev;
		if (fd_wait(fd, POLLIN, deadline, &rev) < 0)
			return -1;
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0 && len == 0) {
			errno = ECONNRESET;	/* closed without answering */
			return -1;
		}
		if (n == 0 || c == '\n')
			break;
		/* Keep reading past the buffer's end to consume the line. */
		if (len + 1 < replylen)
			reply[len] = c;
		len++;
	}
	if (replylen > 0)
		reply[len < replylen ? len : replylen - 1] = '\0';
	return 0;
}

/* Write all of p; MSG_NOSIGNAL so a daemon that hangs up is EPIPE, not death. */
static int
send_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Connect to the daemon of queue_dir and send one request line. */
static int
ctl_open(const char *queue_dir, const char *request)
{
	struct sockaddr_un sun;
	char line[512];
	int fd = -1, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s",
	    queue_dir, CTL_SOCKET) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((size_t)snprintf(line, sizeof(line), "%s\n", request) >=
	    sizeof(line) || strchr(request, '\n') != NULL) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    send_all(fd, line, strlen(line)) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* 0 for "ok" or "ok TEXT", 1 for anything else. */
static int
reply_status(const char *reply)
{
	return (strncmp(reply, "ok", 2) == 0 && (reply[2] == '\0' ||
	    reply[2] == ' ')) ? 0 : 1;
}

/* Send request and read the daemon's answer. */
int
ctl_request(const char *queue_dir, const char *request, char *reply,
    size_t replylen)
{
	int fd, rc = -1, saved;
	int64_t deadline = now_mono_ms() + CTL_TIMEOUT_MS;

	if (replylen > 0)
		reply[0] = '\0';
	if ((fd = ctl_open(queue_dir, request)) < 0)
		return -1;
	if (read_line(fd, reply, replylen, deadline) == 0)
		rc = reply_status(reply);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* Send request; copy what follows an "ok" answer to out. */
int
ctl_stream(const char *queue_dir, const char *request, char *reply,
    size_t replylen, FILE *out)
{
	char chunk[8192];
	ssize_t n;
	short rev;
	int fd, rc = -1, saved;

	if (replylen > 0)
		reply[0] = '\0';
	if ((fd = ctl_open(queue_dir, request)) < 0)
		return -1;
	if (read_line(fd, reply, replylen, now_mono_ms() + CTL_TIMEOUT_MS) < 0)
		goto out;
	if ((rc = reply_status(reply)) != 0)
		goto out;
	/* A listing may be long: the deadline is per read, not in all. */
	for (;;) {
		if (fd_wait(fd, POLLIN, now_mono_ms() + CTL_TIMEOUT_MS,
		    &rev) < 0) {
			rc = -1;
			break;
		}
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		if (fwrite(chunk, 1, (size_t)n, out) != (size_t)n) {
			rc = -1;
			break;
		}
	}
out:
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}
