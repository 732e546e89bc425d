/*
 * conn.h - one client TCP connection with buffered, deadline-bound I/O.
 *
 * The socket is non-blocking with TCP_NODELAY. Output is collected in a
 * buffer and written by conn_flush(), so a whole pipelined command group
 * leaves in one write. Input is read into a buffer that the protocol
 * layer parses in place and consumes.
 *
 * The TLS seam: all socket reads and writes go through a struct conn_io.
 * The default one uses recv/send; TLS replaces it with conn_set_io()
 * after the handshake, and nothing above this layer changes.
 */
#ifndef POSTERN_CONN_H
#define POSTERN_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"

/*
 * Byte transport under a connection. read and write never block: they
 * return the byte count (read: 0 at end of stream), or -1 with errno;
 * errno EAGAIN means "not now", with *want set to POLLIN or POLLOUT
 * (a TLS read may need the socket writable, and the other way round).
 */
struct conn_io {
	ssize_t	(*read)(void *ctx, int fd, void *p, size_t len, short *want);
	ssize_t	(*write)(void *ctx, int fd, const void *p, size_t len,
		    short *want);
	void	(*close)(void *ctx);	/* at conn_close; may be NULL */
	void	*ctx;
};

/* Why conn_open failed. */
enum conn_err {
	CONN_ERR_NONE,
	CONN_ERR_DNS,		/* name not found or resolver failure */
	CONN_ERR_CONNECT,	/* every address refused, unreachable, ... */
};

struct conn;

/*
 * Connect to host (a name or an address literal) at a numeric port,
 * trying each address getaddrinfo returns in order, each for at most
 * timeout seconds. name is the host name used in messages. On failure
 * returns NULL, sets *why, and err holds the Postfix-style reason of the
 * last attempt ("connect to name[127.0.0.1]:25: Connection refused").
 */
struct conn *conn_open(const char *host, const char *port, int timeout,
    enum conn_err *why, char *err, size_t errlen);
/* Numeric address of the peer ("127.0.0.1", "::1"). */
const char *conn_addr(const struct conn *c);
/* The socket, for a TLS layer to attach to. */
int conn_fd(const struct conn *c);
/* Replace the byte transport (TLS); io is copied. */
void conn_set_io(struct conn *c, const struct conn_io *io);
/* The transport in use (TLS finds its own state through it). */
const struct conn_io *conn_get_io(const struct conn *c);
/* Pending input: parse from in->data, then buf_consume() what was used. */
struct buf *conn_in(struct conn *c);
/* Pending output: append commands here, then conn_flush(). */
struct buf *conn_out(struct conn *c);
/*
 * Write all pending output. timeout is an idle limit in seconds: it
 * restarts whenever bytes move. Input that arrives meanwhile is read
 * into conn_in (so a peer that answers a long pipelined group early can
 * never deadlock us). Returns 0, or -1 with errno (ETIMEDOUT on timeout).
 */
int conn_flush(struct conn *c, int timeout);
/*
 * Read what is available into conn_in, waiting up to timeout seconds.
 * Returns the byte count, 0 at end of stream, -1 with errno (ETIMEDOUT).
 */
ssize_t conn_fill(struct conn *c, int timeout);
/*
 * Set a total deadline (now_mono_ms() time; 0 clears it): until it is
 * cleared, conn_flush and conn_fill give up with ETIMEDOUT at that
 * instant whatever their idle timeout, however bytes trickle in.
 */
void conn_set_deadline(struct conn *c, int64_t deadline);
/* Close the socket and free everything. */
void conn_close(struct conn *c);

#endif
