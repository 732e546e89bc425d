/*
 * map_exec.c - exec:/path, a lookup answered by a program.
 *
 * This is how a secret that should not sit in a file reaches postern:
 * an OAuth helper that refreshes a token (oama, mutt_oauth2.py,
 * sasl-xoauth2-tool wrapped in a two-line script), or a keyring
 * client. The program gets the key as its argument (never the secret),
 * answers on stdout, and is killed when it takes too long. Answers are
 * cached for a while and forgotten at once when the relay refuses the
 * login one produced, so an expired token is fetched again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <bsd/string.h>

#include "conf/map_exec.h"
#include "lib/util.h"
#include "lib/xalloc.h"

/* One remembered answer. */
struct exec_cached {
	char	*key;
	char	*value;
	double	 until;
};

struct exec_map {
	char			*path;
	int			 ttl;
	struct exec_cached	*c;
	size_t			 n;
	char			*last;		/* the value last returned */
};

/* The child: wire the pipes and exec; never returns. */
static _Noreturn void
child(char *const argv[], int out, int errfd)
{
	static char *const envp[] = {
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/", "LANG=C", NULL
	};
	int nul = open("/dev/null", O_RDONLY);

	if (nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(errfd, 2) < 0)
		_exit(127);
	fds_close_from(3);
	signal(SIGPIPE, SIG_DFL);
	execve(argv[0], argv, envp);
	dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Read from both pipes until both close or the deadline passes. */
static int
collect(int fds[2], int64_t deadline, char *out, size_t outmax,
    size_t *outlen, char *msg, size_t msglen)
{
	struct pollfd p[2];
	char junk[512];
	size_t errlen = 0;
	ssize_t n;
	int open_fds = 2, i, left;

	*outlen = 0;
	while (open_fds > 0) {
		for (i = 0; i < 2; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		left = (int)(deadline - now_mono_ms());
		if (left <= 0)
			return -1;
		if (poll(p, 2, left) < 0 && errno != EINTR)
			return -1;
		for (i = 0; i < 2; i++) {
			if (fds[i] < 0 || p[i].revents == 0)
				continue;
			if (i == 0 && *outlen < outmax)
				n = read(fds[0], out + *outlen, outmax - *outlen);
			else if (i == 1 && errlen + 1 < msglen)
				n = read(fds[1], msg + errlen, msglen - 1 - errlen);
			else
				n = read(fds[i], junk, sizeof(junk));
			if (n > 0 && i == 0 && *outlen < outmax)
				*outlen += (size_t)n;
			else if (n > 0 && i == 1 && errlen + 1 < msglen)
				errlen += (size_t)n;
			if (n == 0 || (n < 0 && errno != EINTR &&
			    errno != EAGAIN)) {
				close(fds[i]);
				fds[i] = -1;
				open_fds--;
			}
		}
	}
	msg[errlen] = '\0';
	msg[strcspn(msg, "\r\n")] = '\0';
	return 0;
}

/* Run a program (see map_exec.h). */
int
map_exec_run(char *const argv[], int timeout, char *out, size_t outmax,
    size_t *outlen, char *msg, size_t msglen)
{
	int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, fds[2], status, rc = -1;
	int timed_out = 0;
	int64_t deadline = now_mono_ms() + (int64_t)timeout * 1000;
	pid_t pid;

	msg[0] = '\0';
	*outlen = 0;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
		snprintf(msg, msglen, "cannot make a pipe: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		snprintf(msg, msglen, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child(argv, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	fds[0] = po[0];
	fds[1] = pe[0];
	po[0] = pe[0] = -1;
	if (collect(fds, deadline, out, outmax - 1, outlen, msg, msglen) < 0) {
		kill(pid, SIGKILL);
		snprintf(msg, msglen, "%s did not answer within %d seconds "
		    "and was killed", argv[0], timeout);
		timed_out = 1;
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	out[*outlen] = '\0';
	/* The pipes are closed: the program has exited or soon will. */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out)
		goto out;
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else
		snprintf(msg, msglen, "%s was killed by signal %d", argv[0],
		    WTERMSIG(status));
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return rc;
}

/* The cache slot for key, or NULL. */
static struct exec_cached *
cache_find(struct exec_map *em, const char *key)
{
	for (size_t i = 0; i < em->n; i++)
		if (strcmp(em->c[i].key, key) == 0)
			return &em->c[i];
	return NULL;
}

/* Remember value for key. */
static void
cache_put(struct exec_map *em, const char *key, const char *value)
{
	struct exec_cached *c = cache_find(em, key);

	if (c == NULL) {
		em->c = xreallocarray(em->c, em->n + 1, sizeof(*em->c));
		c = &em->c[em->n++];
		c->key = xstrdup(key);
		c->value = NULL;
	}
	free_secret(c->value);
	c->value = xstrdup(value);
	c->until = now_real() + em->ttl;
}

/* Look a key up: the cache, else the program. */
static int
exec_find(void *state, const char *key, const char **value, char *err,
    size_t errlen)
{
	struct exec_map *em = state;
	struct exec_cached *c = cache_find(em, key);
	char *argv[3], *out = xmalloc(MAP_EXEC_OUT_MAX), msg[300];
	size_t len;
	int rc, found = MAP_ERROR;

	if (c != NULL && c->value != NULL && now_real() < c->until) {
		*value = c->value;
		free(out);
		return MAP_FOUND;
	}
	argv[0] = em->path;
	argv[1] = (char *)key;
	argv[2] = NULL;
	rc = map_exec_run(argv, MAP_EXEC_TIMEOUT, out, MAP_EXEC_OUT_MAX, &len,
	    msg, sizeof(msg));
	if (rc != 0) {
		if (rc > 0)
			snprintf(err, errlen, "%s exited with status %d%s%s",
			    em->path, rc, msg[0] ? ": " : "", msg);
		else
			strlcpy(err, msg, errlen);
		goto out;
	}
	out[strcspn(out, "\r\n")] = '\0';
	if (out[0] == '\0') {
		found = MAP_NOTFOUND;
		goto out;
	}
	free_secret(em->last);
	em->last = xstrdup(out);
	if (em->ttl > 0)
		cache_put(em, key, out);
	*value = em->last;
	found = MAP_FOUND;
out:
	explicit_bzero(out, MAP_EXEC_OUT_MAX);
	free(out);
	return found;
}

/* Forget key's cached answer. */
static void
exec_forget(void *state, const char *key)
{
	struct exec_cached *c = cache_find(state, key);

	if (c != NULL) {
		free_secret(c->value);
		c->value = NULL;
	}
}

/* Set the cache time. */
static void
exec_set_ttl(void *state, int seconds)
{
	((struct exec_map *)state)->ttl = seconds;
}

/* Free everything, wiping the answers. */
static void
exec_close(void *state)
{
	struct exec_map *em = state;

	for (size_t i = 0; i < em->n; i++) {
		free(em->c[i].key);
		free_secret(em->c[i].value);
	}
	free(em->c);
	free_secret(em->last);
	free(em->path);
	free(em);
}

static const struct map_ops exec_ops = {
	.find = exec_find,
	.close = exec_close,
	.forget = exec_forget,
	.set_ttl = exec_set_ttl,
};

/* Open exec:/path. */
int
map_exec_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen)
{
	struct exec_map *em;
	struct stat st;

	(void)title;
	if (name[0] != '/') {
		snprintf(err, errlen, "the program must be named by an "
		    "absolute path (exec:/usr/local/bin/get-token)");
		return -1;
	}
	if (stat(name, &st) < 0 || access(name, X_OK) < 0) {
		snprintf(err, errlen, "cannot run %s: %s", name,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a file", name);
		return -1;
	}
	em = xcalloc(1, sizeof(*em));
	em->path = xstrdup(name);
	*ops = &exec_ops;
	*state = em;
	return 0;
}
