/*
 * test_conn.c - conn.c's limits against a peer on loopback that drips
 * one byte every 100 ms: the idle timeout alone never fires, the total
 * deadline (conn_set_deadline) does, on time, for reads and for a
 * write that the peer does not drain.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "deliver/conn.h"
#include "lib/util.h"

/* A listening socket on 127.0.0.1; its port in text. */
static int
listener(char *port, size_t portlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(port, portlen, "%u", ntohs(sa.sin_port));
	return fd;
}

/* A child that accepts one connection and drips bytes, reading nothing. */
static pid_t
dripper(int lfd)
{
	pid_t pid = fork();
	int c;

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	c = accept(lfd, NULL, NULL);
	for (int i = 0; c >= 0 && i < 600; i++) {
		if (write(c, "x", 1) != 1)
			break;
		usleep(100000);
	}
	_exit(0);
}

/* Connect to the dripper; reap it with stop(). */
static struct conn *
start(pid_t *pid)
{
	enum conn_err why;
	char port[16], err[256];
	int lfd = listener(port, sizeof(port));
	struct conn *c;

	*pid = dripper(lfd);
	c = conn_open("127.0.0.1", port, 5, &why, err, sizeof(err));
	close(lfd);
	assert_non_null(c);
	return c;
}

static void
stop(struct conn *c, pid_t pid)
{
	conn_close(c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void
test_idle_timeout_restarts(void **state)
{
	pid_t pid;
	struct conn *c = start(&pid);
	int64_t t0 = now_mono_ms();

	/* A 1 s idle timeout, bytes every 100 ms: 1.5 s and still going. */
	while (now_mono_ms() - t0 < 1500)
		assert_true(conn_fill(c, 1) > 0);
	stop(c, pid);
}

static void
test_total_deadline_reading(void **state)
{
	pid_t pid;
	struct conn *c = start(&pid);
	int64_t t0 = now_mono_ms(), took;
	ssize_t n;

	conn_set_deadline(c, t0 + 700);
	while ((n = conn_fill(c, 1)) > 0)
		assert_true(now_mono_ms() - t0 < 3000);
	took = now_mono_ms() - t0;
	assert_int_equal(n, -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(took >= 690 && took < 1500);
	/* Cleared: reading goes on as before. */
	conn_set_deadline(c, 0);
	assert_true(conn_fill(c, 1) > 0);
	stop(c, pid);
}

static void
test_total_deadline_writing(void **state)
{
	static char big[1 << 20];
	pid_t pid;
	struct conn *c = start(&pid);
	int64_t t0 = now_mono_ms(), took;
	int rc;

	/* The peer never reads: more than the socket buffers can hold. */
	for (int i = 0; i < 16; i++)
		buf_add(conn_out(c), big, sizeof(big));
	conn_set_deadline(c, t0 + 700);
	rc = conn_flush(c, 10);
	took = now_mono_ms() - t0;
	assert_int_equal(rc, -1);
	assert_int_equal(errno, ETIMEDOUT);
	assert_true(took >= 690 && took < 1500);
	stop(c, pid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_timeout_restarts),
		cmocka_unit_test(test_total_deadline_reading),
		cmocka_unit_test(test_total_deadline_writing),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
