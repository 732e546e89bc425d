/*
 * benchsink.c - a fast SMTP sink for `make bench`: plain, or STARTTLS +
 * AUTH like a mail provider's submission port.
 *
 *   benchsink [-t] [-a user:pass] [-s statusfile] [-r receiptfile] port
 *
 * -t offers STARTTLS (a self-signed P-256 certificate made at start-up)
 * and, with -a, AUTH PLAIN LOGIN after it; MAIL is refused before AUTH
 * then. Every connection is served by a forked child (blocking I/O,
 * replies buffered until the input runs dry, so pipelined groups cost one
 * write). Counters live in shared memory; the parent writes
 * "sessions N messages M" to the status file whenever they change. With
 * -r each accepted message appends "EPOCH-SECONDS MESSAGE-ID" to the
 * receipt file (for latency). A test tool: it keeps nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct counters {
	atomic_long	sessions;
	atomic_long	messages;
};

struct conn {
	int		 fd;
	SSL		*ssl;
	char		 in[65536];
	size_t		 ilen, ipos;
	char		 out[65536];
	size_t		 olen;
};

static struct counters *ctr;
static SSL_CTX *tls_ctx;
static const char *auth_pair;	/* "user:pass" or NULL */
static int receipt_fd = -1;
static volatile sig_atomic_t stop;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/* A self-signed certificate for 127.0.0.1 (the client does not verify). */
static SSL_CTX *
make_tls(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;

	if (c == NULL || k == NULL || x == NULL)
		die("openssl");
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"benchsink.test", -1, -1, 0);
	X509_set_issuer_name(x, n);
	if (!X509_sign(x, k, EVP_sha256()) ||
	    SSL_CTX_use_certificate(c, x) != 1 ||
	    SSL_CTX_use_PrivateKey(c, k) != 1)
		die("certificate");
	X509_free(x);
	EVP_PKEY_free(k);
	return c;
}

/* Write the buffered replies. */
static int
flush_out(struct conn *c)
{
	size_t off = 0;

	while (off < c->olen) {
		int n = c->ssl ? SSL_write(c->ssl, c->out + off,
		    (int)(c->olen - off)) : (int)write(c->fd, c->out + off,
		    c->olen - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	c->olen = 0;
	return 0;
}

/* Queue one reply line. */
static void
reply(struct conn *c, const char *s)
{
	size_t l = strlen(s);

	if (c->olen + l + 2 > sizeof(c->out))
		(void)flush_out(c);
	memcpy(c->out + c->olen, s, l);
	memcpy(c->out + c->olen + l, "\r\n", 2);
	c->olen += l + 2;
}

/* One input line without CRLF into line; 0, or -1 at end/error. */
static int
get_line(struct conn *c, char *line, size_t max)
{
	size_t k = 0;

	for (;;) {
		while (c->ipos < c->ilen) {
			char ch = c->in[c->ipos++];
			if (ch == '\n') {
				if (k > 0 && line[k - 1] == '\r')
					k--;
				line[k] = '\0';
				return 0;
			}
			if (k + 1 < max)
				line[k++] = ch;
		}
		/* Input ran dry: answer what was asked before waiting. */
		if (c->olen > 0 && flush_out(c) < 0)
			return -1;
		int n = c->ssl ? SSL_read(c->ssl, c->in, sizeof(c->in)) :
		    (int)read(c->fd, c->in, sizeof(c->in));
		if (n <= 0)
			return -1;
		c->ilen = (size_t)n;
		c->ipos = 0;
	}
}

/* Check AUTH PLAIN's base64 "\0user\0pass". */
static int
plain_ok(const char *b64)
{
	unsigned char dec[512];
	char want[300];
	int n = EVP_DecodeBlock(dec, (const unsigned char *)b64,
	    (int)strlen(b64));
	const char *colon = strchr(auth_pair, ':');

	size_t bl = strlen(b64);

	if (n <= 0 || colon == NULL)
		return 0;
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	for (size_t i = bl; i > 0 && b64[i - 1] == '='; i--)
		n--;
	/* authzid \0 user \0 pass */
	size_t ul = (size_t)(colon - auth_pair);
	int wl = snprintf(want, sizeof(want), "%c%.*s%c%s", 0, (int)ul,
	    auth_pair, 0, colon + 1);
	unsigned char *p = memchr(dec, 0, (size_t)n);
	if (p == NULL)
		return 0;
	return (int)(dec + n - p) == wl && memcmp(p, want, (size_t)wl) == 0;
}

/* Read DATA to the final dot; note the Message-ID. */
static int
read_data(struct conn *c)
{
	char line[4096], mid[300] = "";
	int in_head = 1;

	for (;;) {
		if (get_line(c, line, sizeof(line)) < 0)
			return -1;
		if (strcmp(line, ".") == 0)
			break;
		if (in_head && line[0] == '\0')
			in_head = 0;
		if (in_head && mid[0] == '\0' &&
		    strncasecmp(line, "Message-ID:", 11) == 0) {
			const char *v = line + 11;
			while (*v == ' ')
				v++;
			snprintf(mid, sizeof(mid), "%.290s", v);
		}
	}
	atomic_fetch_add(&ctr->messages, 1);
	if (receipt_fd >= 0) {
		struct timespec ts;
		char rec[400];
		clock_gettime(CLOCK_REALTIME, &ts);
		int n = snprintf(rec, sizeof(rec), "%lld.%06ld %s\n",
		    (long long)ts.tv_sec, ts.tv_nsec / 1000, mid);
		(void)!write(receipt_fd, rec, (size_t)n);
	}
	return 0;
}

/* Serve one connection (in a child). */
static void
serve(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	char line[4096];
	int authed = auth_pair == NULL, one = 1;

	c->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	reply(c, "220 benchsink.test ESMTP");
	while (get_line(c, line, sizeof(line)) == 0) {
		if (strncasecmp(line, "EHLO", 4) == 0) {
			reply(c, "250-benchsink.test");
			reply(c, "250-PIPELINING");
			reply(c, "250-SIZE 104857600");
			if (tls_ctx != NULL && c->ssl == NULL)
				reply(c, "250-STARTTLS");
			if (auth_pair != NULL && (c->ssl != NULL || tls_ctx == NULL))
				reply(c, "250-AUTH PLAIN LOGIN");
			reply(c, "250 8BITMIME");
		} else if (strncasecmp(line, "HELO", 4) == 0) {
			reply(c, "250 benchsink.test");
		} else if (strcasecmp(line, "STARTTLS") == 0 && tls_ctx &&
		    c->ssl == NULL) {
			reply(c, "220 go ahead");
			if (flush_out(c) < 0)
				break;
			c->ssl = SSL_new(tls_ctx);
			SSL_set_fd(c->ssl, fd);
			if (SSL_accept(c->ssl) != 1)
				break;
			c->ilen = c->ipos = 0;
		} else if (strncasecmp(line, "AUTH PLAIN", 10) == 0 && auth_pair) {
			const char *arg = line + 10;
			char resp[1024];
			while (*arg == ' ')
				arg++;
			if (*arg == '\0') {
				reply(c, "334 ");
				if (get_line(c, resp, sizeof(resp)) < 0)
					break;
				arg = resp;
			}
			authed = plain_ok(arg);
			reply(c, authed ? "235 2.7.0 Authentication successful" :
			    "535 5.7.8 Authentication failed");
		} else if (strncasecmp(line, "AUTH LOGIN", 10) == 0 && auth_pair) {
			char u[512], p[512];
			reply(c, "334 VXNlcm5hbWU6");
			if (get_line(c, u, sizeof(u)) < 0)
				break;
			reply(c, "334 UGFzc3dvcmQ6");
			if (get_line(c, p, sizeof(p)) < 0)
				break;
			authed = 1;
			reply(c, "235 2.7.0 Authentication successful");
		} else if (strncasecmp(line, "MAIL", 4) == 0) {
			reply(c, authed ? "250 2.1.0 Ok" :
			    "530 5.7.0 Authentication required");
		} else if (strncasecmp(line, "RCPT", 4) == 0) {
			reply(c, authed ? "250 2.1.5 Ok" :
			    "530 5.7.0 Authentication required");
		} else if (strcasecmp(line, "DATA") == 0) {
			if (!authed) {
				reply(c, "530 5.7.0 Authentication required");
				continue;
			}
			reply(c, "354 End data with <CR><LF>.<CR><LF>");
			if (read_data(c) < 0)
				break;
			reply(c, "250 2.0.0 Ok: queued");
		} else if (strcasecmp(line, "RSET") == 0 ||
		    strcasecmp(line, "NOOP") == 0) {
			reply(c, "250 2.0.0 Ok");
		} else if (strcasecmp(line, "QUIT") == 0) {
			reply(c, "221 2.0.0 Bye");
			(void)flush_out(c);
			break;
		} else
			reply(c, "502 5.5.2 Error: command not recognized");
	}
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(fd);
	_exit(0);
}

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Rewrite the status file when the counters changed. */
static void
write_status(const char *path, long *ls, long *lm)
{
	long s = atomic_load(&ctr->sessions), m = atomic_load(&ctr->messages);
	char tmp[4200], text[100];
	FILE *f;

	if (path == NULL || (s == *ls && m == *lm))
		return;
	*ls = s;
	*lm = m;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(text, sizeof(text), "sessions %ld messages %ld\n", s, m);
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fputs(text, f);
	fclose(f);
	(void)rename(tmp, path);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	const char *status = NULL;
	long ls = -1, lm = -1;
	int ch, tls = 0, lfd, one = 1;

	while ((ch = getopt(argc, argv, "ta:s:r:")) != -1) {
		switch (ch) {
		case 't': tls = 1; break;
		case 'a': auth_pair = optarg; break;
		case 's': status = optarg; break;
		case 'r':
			receipt_fd = open(optarg, O_WRONLY | O_CREAT | O_APPEND |
			    O_CLOEXEC, 0644);
			if (receipt_fd < 0)
				die(optarg);
			break;
		default:
			fprintf(stderr, "usage: benchsink [-t] [-a user:pass] "
			    "[-s statusfile] [-r receiptfile] port\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "benchsink: give the port\n");
		return 2;
	}
	ctr = mmap(NULL, sizeof(*ctr), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctr == MAP_FAILED)
		die("mmap");
	if (tls)
		tls_ctx = make_tls();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((unsigned short)atoi(argv[optind]));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 512) < 0)
		die("bind/listen");
	write_status(status, &ls, &lm);
	while (!stop) {
		struct pollfd p = { lfd, POLLIN, 0 };
		if (poll(&p, 1, 20) > 0) {
			int fd = accept4(lfd, NULL, NULL, 0);
			if (fd >= 0) {
				atomic_fetch_add(&ctr->sessions, 1);
				if (fork() == 0) {
					close(lfd);
					serve(fd);
				}
				close(fd);
			}
		}
		write_status(status, &ls, &lm);
	}
	write_status(status, &ls, &lm);
	return 0;
}
