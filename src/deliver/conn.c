/*
 * conn.c - connect with a timeout, then buffered I/O with poll() deadlines.
 *
 * Every wait is a poll() on the non-blocking socket with the remaining
 * time of the current deadline; nothing here uses alarm() or signals.
 * A timeout given to a call is an idle limit, restarted when bytes move;
 * conn_set_deadline() adds a total limit that no trickle of bytes can
 * push back (a relay that drips one byte a second).
 * Writes use MSG_NOSIGNAL so a peer that hangs up gives EPIPE instead of
 * killing the worker. All socket I/O goes through c->io, the seam where
 * TLS will take over the byte transport.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <bsd/string.h>

#include "deliver/conn.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define CONN_READ_CHUNK	4096

struct conn {
	int		 fd;
	char		 addr[INET6_ADDRSTRLEN];
	struct conn_io	 io;
	struct buf	 in;
	struct buf	 out;
	int		 eof;		/* the peer closed its side */
	int64_t		 limit;		/* conn_set_deadline; 0: none */
};

/* Plain socket read: the default transport. */
static ssize_t
plain_read(void *ctx, int fd, void *p, size_t len, short *want)
{
	ssize_t n;

	(void)ctx;
	n = recv(fd, p, len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		errno = EAGAIN;
		*want = POLLIN;
	}
	return n;
}

/* Plain socket write: the default transport. */
static ssize_t
plain_write(void *ctx, int fd, const void *p, size_t len, short *want)
{
	ssize_t n;

	(void)ctx;
	n = send(fd, p, len, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		errno = EAGAIN;
		*want = POLLOUT;
	}
	return n;
}

/* Connect one address with a timeout; 0, or -1 with errno. */
static int
connect_one(int fd, const struct sockaddr *sa, socklen_t salen, int timeout)
{
	short rev;
	int err = 0;
	socklen_t elen = sizeof(err);

	if (connect(fd, sa, salen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -1;
	if (fd_wait(fd, POLLOUT, now_mono_ms() + (int64_t)timeout * 1000,
	    &rev) == -1)
		return -1;
	/* The outcome of a non-blocking connect is in SO_ERROR. */
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1)
		return -1;
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Make a socket for ai and connect it; the fd, or -1 with errno. */
static int
open_addr(const struct addrinfo *ai, int timeout)
{
	int fd, one = 1, saved;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1)
		return -1;
	/* Commands go out as whole groups; Nagle would only add delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect_one(fd, ai->ai_addr, ai->ai_addrlen, timeout) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Numeric text of a socket address. */
static void
addr_text(const struct addrinfo *ai, char *out, size_t outlen)
{
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, out, outlen, NULL, 0,
	    NI_NUMERICHOST) != 0)
		strlcpy(out, "unknown", outlen);
}

/* Connect to the first address of host that answers. */
struct conn *
conn_open(const char *host, const char *port, int timeout,
    enum conn_err *why, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct conn *c = NULL;
	char addr[INET6_ADDRSTRLEN];
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	*why = CONN_ERR_DNS;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "Host or domain name not found. "
		    "Name service error for name=%s type=A: %s", host,
		    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		goto out;
	}
	*why = CONN_ERR_CONNECT;
	snprintf(err, errlen, "connect to %s: no address", host);
	/* Try every address in order; report the last failure. */
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		addr_text(ai, addr, sizeof(addr));
		if ((fd = open_addr(ai, timeout)) != -1)
			break;
		snprintf(err, errlen, "connect to %s[%s]:%s: %s", host, addr,
		    port, strerror(errno));
		log_debug("%s", err);
	}
	if (fd == -1)
		goto out;
	*why = CONN_ERR_NONE;
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	strlcpy(c->addr, addr, sizeof(c->addr));
	c->io.read = plain_read;
	c->io.write = plain_write;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return c;
}

/* Peer address. */
const char *
conn_addr(const struct conn *c)
{
	return c->addr;
}

/* The socket. */
int
conn_fd(const struct conn *c)
{
	return c->fd;
}

/* Swap the transport. */
void
conn_set_io(struct conn *c, const struct conn_io *io)
{
	c->io = *io;
}

/* The transport in use. */
const struct conn_io *
conn_get_io(const struct conn *c)
{
	return &c->io;
}

/* Input buffer. */
struct buf *
conn_in(struct conn *c)
{
	return &c->in;
}

/* Output buffer. */
struct buf *
conn_out(struct conn *c)
{
	return &c->out;
}

/* Set or clear the total deadline. */
void
conn_set_deadline(struct conn *c, int64_t deadline)
{
	c->limit = deadline;
}

/* An idle deadline cut down to the total one, when there is one. */
static int64_t
bounded(const struct conn *c, int timeout)
{
	int64_t d = now_mono_ms() + (int64_t)timeout * 1000;

	return c->limit != 0 && c->limit < d ? c->limit : d;
}

/* One non-blocking read into c->in; as io->read. */
static ssize_t
read_some(struct conn *c, short *want)
{
	ssize_t n;

	buf_reserve(&c->in, CONN_READ_CHUNK);
	n = c->io.read(c->io.ctx, c->fd, c->in.data + c->in.len,
	    CONN_READ_CHUNK, want);
	if (n > 0) {
		c->in.len += (size_t)n;
		c->in.data[c->in.len] = '\0';
	} else if (n == 0)
		c->eof = 1;
	return n;
}

/* Write out everything buffered. */
int
conn_flush(struct conn *c, int timeout)
{
	int64_t deadline = bounded(c, timeout);
	short want = POLLOUT, rev, rwant;
	ssize_t n;

	while (c->out.len > 0) {
		n = c->io.write(c->io.ctx, c->fd, c->out.data, c->out.len,
		    &want);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			deadline = bounded(c, timeout);
			continue;
		}
		if (n == 0 || errno != EAGAIN) {
			if (n == 0)
				errno = EPIPE;
			return -1;
		}
		/* While blocked, also drain replies the peer sends early. */
		if (fd_wait(c->fd, want | (c->eof ? 0 : POLLIN), deadline,
		    &rev) == -1)
			return -1;
		if ((rev & POLLIN) && !c->eof) {
			if (read_some(c, &rwant) < 0 && errno != EAGAIN)
				return -1;
		}
	}
	return 0;
}

/* Read more input. */
ssize_t
conn_fill(struct conn *c, int timeout)
{
	int64_t deadline = bounded(c, timeout);
	short want = POLLIN, rev;
	ssize_t n;

	if (c->eof)
		return 0;
	/* Bytes that keep coming must not carry us past the total limit. */
	if (c->limit != 0 && now_mono_ms() >= c->limit) {
		errno = ETIMEDOUT;
		return -1;
	}
	/* Read first: a TLS layer may hold decrypted bytes poll cannot see. */
	for (;;) {
		n = read_some(c, &want);
		if (n >= 0 || errno != EAGAIN)
			return n;
		if (fd_wait(c->fd, want, deadline, &rev) == -1)
			return -1;
	}
}

/* Close and free. */
void
conn_close(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->io.close != NULL)
		c->io.close(c->io.ctx);
	if (c->fd != -1)
		close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}
