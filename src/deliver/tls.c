/*
 * tls.c - the SMTP client's TLS layer on OpenSSL.
 *
 * Verification never aborts a handshake: a verify callback records the
 * first chain error and any name mismatch and lets the handshake finish,
 * then tls_start() compares what was recorded with the policy. Nothing
 * has been sent over the connection at that point (the client speaks
 * first in SMTP only after the handshake), so refusing costs nothing and
 * `postern check` can still describe the certificate it refused.
 *
 * All I/O is non-blocking: the handshake waits with fd_wait() under one
 * deadline, and reads and writes plug into conn.c's transport seam,
 * reporting which direction OpenSSL waits for.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>

#include <bsd/string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "deliver/tls.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define NAMES_MAX	16	/* match names or pins per policy */

/* One cached session: a relay and level, and the session to resume. */
struct tls_cached {
	char		*key;
	SSL_SESSION	*sess;
	int		 fresh;		/* not yet exported */
};

struct tls_ctx {
	SSL_CTX			*ssl;
	const EVP_MD		*md;
	char			*fp_digest;
	char			*protocols, *mand_protocols;
	char			*ciphers, *mand_ciphers;
	char			*exclude, *mand_exclude;
	char			*fp_match, *verify_match, *secure_match;
	char			*servername;
	int			 loglevel;
	int			 cache_timeout;	/* 0: no reuse */
	unsigned long long	 gen;		/* this context's random id */
	struct tls_cached	*cache;
	size_t			 ncache;
};

/* One connection in progress or established. */
struct tls_conn {
	SSL		*ssl;
	struct tls_ctx	*ctx;
	char		*key;		/* cache key */
	int		 ok;		/* met its policy: sessions cacheable */
	SSL_SESSION	*pending;	/* a session that arrived before ok */
	const char	*pins;		/* level fingerprint: the pins */
	const char	*names;		/* levels verify/secure: the names */
	const char	*host;		/* the server's name (MX host) */
	const char	*nexthop;	/* the relay's domain as configured */
	char		 chain_err[128];
	int		 dead;		/* a fatal error: no close_notify */
};

/* Level names, in enum order. */
static const char *const level_names[] = {
	"none", "may", "encrypt", "fingerprint", "verify", "secure",
};

/* Protocol names, weakest first; SSLv2 is never possible. */
static const struct {
	const char	*name;
	int		 version;
} protos[] = {
	{ "SSLv3", SSL3_VERSION },
	{ "TLSv1", TLS1_VERSION },
	{ "TLSv1.1", TLS1_1_VERSION },
	{ "TLSv1.2", TLS1_2_VERSION },
	{ "TLSv1.3", TLS1_3_VERSION },
};
#define NPROTOS	(sizeof(protos) / sizeof(protos[0]))

static int conn_index = -1;	/* SSL ex_data slot for struct tls_conn */

/* Parse a level name. */
int
tls_level_parse(const char *s, enum tls_level *lev)
{
	size_t i;

	if (s == NULL || *s == '\0') {
		*lev = TLS_LEV_NONE;
		return 0;
	}
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(s, level_names[i]) == 0) {
			*lev = (enum tls_level)i;
			return 0;
		}
	return -1;
}

/* A level's name. */
const char *
tls_level_name(enum tls_level lev)
{
	return level_names[lev];
}

/* 1 for levels that refuse clear text. */
int
tls_level_mandatory(enum tls_level lev)
{
	return lev >= TLS_LEV_ENCRYPT;
}

/* Free a policy's strings. */
void
tls_policy_free(struct tls_policy *p)
{
	if (p == NULL)
		return;
	free(p->match);
	free(p->protocols);
	free(p->ciphers);
	free(p->exclude);
	free(p->servername);
	memset(p, 0, sizeof(*p));
}

/* Parse "level attr=value ..." (see tls.h). */
int
tls_policy_parse(const char *text, struct tls_policy *p, char *err,
    size_t errlen)
{
	static const char *const attrs[] = {
		"match", "protocols", "ciphers", "exclude", "servername",
	};
	char *copy = xstrdup(text), *tok, *save = NULL, *eq, **slot, *joined;
	const char *sep;
	int rc = -1, first = 1;
	size_t i;

	memset(p, 0, sizeof(*p));
	for (tok = strtok_r(copy, " \t,", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,", &save)) {
		if (first) {
			first = 0;
			if (tls_level_parse(tok, &p->level) == 0)
				continue;
			snprintf(err, errlen, "unknown TLS security level "
			    "\"%s\" (expected none, may, encrypt, fingerprint, "
			    "verify or secure)", tok);
			goto out;
		}
		if ((eq = strchr(tok, '=')) == NULL || eq == tok) {
			snprintf(err, errlen, "\"%s\": expected "
			    "attribute=value after the level", tok);
			goto out;
		}
		*eq = '\0';
		slot = NULL;
		for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
			if (strcasecmp(tok, attrs[i]) == 0)
				slot = i == 0 ? &p->match : i == 1 ?
				    &p->protocols : i == 2 ? &p->ciphers :
				    i == 3 ? &p->exclude : &p->servername;
		if (slot == NULL) {
			snprintf(err, errlen, "unknown TLS policy attribute "
			    "\"%s\" (postern knows match, protocols, ciphers, "
			    "exclude, servername)", tok);
			goto out;
		}
		if (eq[1] == '\0') {
			snprintf(err, errlen, "empty value for TLS policy "
			    "attribute \"%s\"", tok);
			goto out;
		}
		/* As Postfix: match= accumulates, the others appear once. */
		if (*slot != NULL && slot != &p->match) {
			snprintf(err, errlen, "TLS policy attribute \"%s\" "
			    "given twice", tok);
			goto out;
		}
		if (*slot != NULL) {
			sep = strpbrk(*slot, "|") || strpbrk(eq + 1, "|") ||
			    p->level == TLS_LEV_FINGERPRINT ? "|" : ":";
			joined = xasprintf("%s%s%s", *slot, sep, eq + 1);
			free(*slot);
			*slot = joined;
		} else
			*slot = xstrdup(eq + 1);
	}
	if (first) {
		snprintf(err, errlen, "empty TLS policy");
		goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		tls_policy_free(p);
	free(copy);
	return rc;
}

/* The index of a protocol name, or -1. */
static int
proto_index(const char *name)
{
	size_t i;

	for (i = 0; i < NPROTOS; i++)
		if (strcasecmp(name, protos[i].name) == 0)
			return (int)i;
	return -1;
}

/* Parse a protocol list (see tls.h). */
int
tls_protocols_parse(const char *spec, int *min, int *max, char *err,
    size_t errlen)
{
	unsigned allow = 0, include = 0, exclude = 0;
	char *copy = xstrdup(spec), *tok, *save = NULL, *name;
	int lo = 0, hi = (int)NPROTOS - 1, i, k, rc = -1, first = -1, last = -1;

	for (tok = strtok_r(copy, " \t,:", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,:", &save)) {
		name = tok + (tok[0] == '!' ? 1 : (tok[0] == '>' ||
		    tok[0] == '<') && tok[1] == '=' ? 2 : 0);
		k = proto_index(name);
		if (k < 0 && strcasecmp(name, "SSLv2") != 0) {
			snprintf(err, errlen, "unknown TLS protocol \"%s\" "
			    "(expected SSLv3, TLSv1, TLSv1.1, TLSv1.2 or "
			    "TLSv1.3, with !, >= or <=)", name);
			goto out;
		}
		if (k < 0) {		/* SSLv2: only "!SSLv2" makes sense */
			if (tok[0] != '!') {
				snprintf(err, errlen, "SSLv2 is not "
				    "supported");
				goto out;
			}
			continue;
		}
		if (tok[0] == '!')
			exclude |= 1u << k;
		else if (tok[0] == '>')
			lo = k > lo ? k : lo;
		else if (tok[0] == '<')
			hi = k < hi ? k : hi;
		else
			include |= 1u << k;
	}
	for (i = 0; i < (int)NPROTOS; i++)
		if (i >= lo && i <= hi && !(exclude & (1u << i)) &&
		    (include == 0 || (include & (1u << i))))
			allow |= 1u << i;
	for (i = 0; i < (int)NPROTOS; i++)
		if (allow & (1u << i)) {
			if (first < 0)
				first = i;
			else if (last != i - 1) {
				snprintf(err, errlen, "protocol list \"%s\" "
				    "leaves a gap between versions; allow a "
				    "contiguous range such as >=TLSv1.2", spec);
				goto out;
			}
			last = i;
		}
	if (first < 0) {
		snprintf(err, errlen, "protocol list \"%s\" allows no protocol",
		    spec);
		goto out;
	}
	*min = protos[first].version;
	*max = protos[last].version;
	rc = 0;
out:
	free(copy);
	return rc;
}

/*
 * The OpenSSL cipher list for a Postfix cipher grade and exclusions.
 * Returns 0, or -1 with a message.
 */
static int
cipher_list(const char *grade, const char *exclude, char *out, size_t outlen,
    char *err, size_t errlen)
{
	const char *base;
	char *copy, *tok, *save = NULL;

	if (grade == NULL || *grade == '\0' || strcasecmp(grade, "medium") == 0)
		base = "HIGH:MEDIUM:!aNULL:!eNULL:@STRENGTH";
	else if (strcasecmp(grade, "high") == 0)
		base = "HIGH:!aNULL:!eNULL:@STRENGTH";
	else if (strcasecmp(grade, "low") == 0 ||
	    strcasecmp(grade, "export") == 0)
		base = "ALL:!aNULL:!eNULL:@STRENGTH";
	else {
		snprintf(err, errlen, "cipher grade \"%s\": expected high, "
		    "medium or low (null is never allowed)", grade);
		return -1;
	}
	strlcpy(out, base, outlen);
	if (exclude == NULL)
		return 0;
	copy = xstrdup(exclude);
	for (tok = strtok_r(copy, " \t,:", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t,:", &save)) {
		strlcat(out, ":!", outlen);
		if (strlcat(out, tok, outlen) >= outlen) {
			free(copy);
			snprintf(err, errlen, "cipher exclusion list too long");
			return -1;
		}
	}
	free(copy);
	return 0;
}

/* The text of the first OpenSSL error on the queue, or dflt. */
static const char *
ssl_errstr(const char *dflt)
{
	unsigned long e = ERR_peek_error();
	const char *r;

	if (e == 0)
		return dflt;
	r = ERR_reason_error_string(e);
	return r != NULL ? r : dflt;
}

/* Duplicate s, or NULL for NULL. */
static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/*
 * Verify callback: remember the first chain error and let the handshake
 * go on; tls_start judges afterwards. Names are not OpenSSL's business
 * here: judge() matches them itself after every handshake, resumed or
 * not, so a resumed session never inherits an old name verdict.
 */
static int
verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *tc = ssl ? SSL_get_ex_data(ssl, conn_index) : NULL;
	int e = X509_STORE_CTX_get_error(store);

	if (ok || tc == NULL)
		return 1;
	if (tc->chain_err[0] == '\0')
		strlcpy(tc->chain_err, X509_verify_cert_error_string(e),
		    sizeof(tc->chain_err));
	return 1;
}

/* Find the cache slot for key, or NULL. */
static struct tls_cached *
cache_find(struct tls_ctx *ctx, const char *key)
{
	size_t i;

	for (i = 0; i < ctx->ncache; i++)
		if (strcmp(ctx->cache[i].key, key) == 0)
			return &ctx->cache[i];
	return NULL;
}

/* Keep sess (our reference) as the session for key. */
static void
cache_put(struct tls_ctx *ctx, const char *key, SSL_SESSION *sess, int fresh)
{
	struct tls_cached *e = cache_find(ctx, key);

	if (e == NULL) {
		ctx->cache = xreallocarray(ctx->cache, ctx->ncache + 1,
		    sizeof(*ctx->cache));
		e = &ctx->cache[ctx->ncache++];
		e->key = xstrdup(key);
		e->sess = NULL;
	}
	if (e->sess != NULL)
		SSL_SESSION_free(e->sess);
	e->sess = sess;
	e->fresh = fresh;
}

/*
 * A new session from the server (TLS 1.2: during the handshake; 1.3:
 * tickets after it). Kept only for a connection that met its policy.
 * Returns 1: we keep the reference.
 */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_conn *tc = SSL_get_ex_data(ssl, conn_index);

	if (tc == NULL || tc->ctx->cache_timeout == 0 ||
	    !SSL_SESSION_is_resumable(sess))
		return 0;
	if (tc->ok) {
		cache_put(tc->ctx, tc->key, sess, 1);
		return 1;
	}
	if (tc->pending != NULL)
		SSL_SESSION_free(tc->pending);
	tc->pending = sess;
	return 1;
}

/* OpenSSL's passphrase callback: there is nobody to ask. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* 1 when dir holds OpenSSL's hash links (NNNNNNNN.0), as update-ca-
   certificates and `openssl rehash` make them. */
static int
dir_hashed(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (d == NULL)
		return 0;
	while (!found && (e = readdir(d)) != NULL)
		found = strlen(e->d_name) == 10 && e->d_name[8] == '.' &&
		    e->d_name[9] == '0' &&
		    strspn(e->d_name, "0123456789abcdef") == 8;
	closedir(d);
	return found;
}

/*
 * The system's trusted CAs, as OpenSSL's defaults name them (including
 * SSL_CERT_FILE and SSL_CERT_DIR). When the default directory is hashed,
 * it alone is used: a certificate is read when a chain needs it, where
 * the default file would be parsed whole into every process (about
 * 1.4 MB per process with Debian's bundle). The directory holds the
 * same CAs as the bundle on Debian, Alpine and Fedora.
 */
static int
load_default_cas(SSL_CTX *ssl)
{
	const char *dir = getenv(X509_get_default_cert_dir_env());

	if (getenv(X509_get_default_cert_file_env()) == NULL) {
		if (dir == NULL)
			dir = X509_get_default_cert_dir();
		if (strchr(dir, ':') == NULL && dir_hashed(dir))
			return SSL_CTX_load_verify_locations(ssl, NULL, dir);
	}
	return SSL_CTX_set_default_verify_paths(ssl);
}

/* Load the trust store and the client certificate into ctx->ssl. */
static int
ctx_load(struct tls_ctx *ctx, const struct tls_conf *tc, char *err,
    size_t errlen)
{
	const char *cafile = tc->cafile && *tc->cafile ? tc->cafile : NULL;
	const char *capath = tc->capath && *tc->capath ? tc->capath : NULL;
	const char *key;
	struct stat st;

	errno = 0;
	memset(&st, 0, sizeof(st));
	if (capath != NULL && (stat(capath, &st) < 0 ||
	    !S_ISDIR(st.st_mode))) {
		snprintf(err, errlen, "smtp_tls_CApath %s: %s", capath,
		    errno && !S_ISREG(st.st_mode) ? strerror(errno) :
		    "not a directory");
		return -1;
	}
	if (cafile != NULL || capath != NULL) {
		if (!SSL_CTX_load_verify_locations(ctx->ssl, cafile, capath)) {
			snprintf(err, errlen, "cannot load trusted CA "
			    "certificates from %s %s: %s", cafile ?
			    "smtp_tls_CAfile" : "smtp_tls_CApath", cafile ?
			    cafile : capath, ssl_errstr("bad file"));
			return -1;
		}
	} else if (!load_default_cas(ctx->ssl)) {
		snprintf(err, errlen, "cannot load the system's trusted CA "
		    "certificates: %s", ssl_errstr("unknown error"));
		return -1;
	}
	if (tc->cert_file == NULL || *tc->cert_file == '\0')
		return 0;
	key = tc->key_file && *tc->key_file ? tc->key_file : tc->cert_file;
	if (!SSL_CTX_use_certificate_chain_file(ctx->ssl, tc->cert_file)) {
		snprintf(err, errlen, "cannot load smtp_tls_cert_file %s: %s",
		    tc->cert_file, ssl_errstr("bad file"));
		return -1;
	}
	/* A daemon cannot type a passphrase: never prompt. */
	SSL_CTX_set_default_passwd_cb(ctx->ssl, no_passphrase);
	if (!SSL_CTX_use_PrivateKey_file(ctx->ssl, key, SSL_FILETYPE_PEM)) {
		snprintf(err, errlen, "cannot load smtp_tls_key_file %s: %s%s",
		    key, ssl_errstr("bad file"), ERR_GET_REASON(
		    ERR_peek_error()) == PEM_R_BAD_PASSWORD_READ ? " (the key "
		    "is encrypted; postern needs it without a passphrase, "
		    "readable by root only)" : "");
		return -1;
	}
	if (!SSL_CTX_check_private_key(ctx->ssl)) {
		snprintf(err, errlen, "smtp_tls_key_file %s does not belong to "
		    "the certificate in smtp_tls_cert_file %s", key,
		    tc->cert_file);
		return -1;
	}
	return 0;
}

/* Check that every protocol and cipher setting parses. */
static int
ctx_check(const struct tls_conf *tc, char *err, size_t errlen)
{
	char list[512], why[256];
	int lo, hi;

	if (tls_protocols_parse(tc->protocols ? tc->protocols : "", &lo, &hi,
	    why, sizeof(why)) < 0) {
		snprintf(err, errlen, "smtp_tls_protocols: %s", why);
		return -1;
	}
	if (tls_protocols_parse(tc->mand_protocols ? tc->mand_protocols : "",
	    &lo, &hi, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "smtp_tls_mandatory_protocols: %s", why);
		return -1;
	}
	if (cipher_list(tc->ciphers, tc->exclude, list, sizeof(list), why,
	    sizeof(why)) < 0) {
		snprintf(err, errlen, "smtp_tls_ciphers: %s", why);
		return -1;
	}
	if (cipher_list(tc->mand_ciphers, tc->mand_exclude, list,
	    sizeof(list), why, sizeof(why)) < 0) {
		snprintf(err, errlen, "smtp_tls_mandatory_ciphers: %s", why);
		return -1;
	}
	return 0;
}

/* Build the client context (see tls.h). */
struct tls_ctx *
tls_ctx_new(const struct tls_conf *tc, char *err, size_t errlen)
{
	struct tls_ctx *ctx;
	const char *dg = tc->fp_digest && *tc->fp_digest ? tc->fp_digest :
	    "sha256";

	if (conn_index < 0)
		conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (ctx_check(tc, err, errlen) < 0)
		return NULL;
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->md = EVP_get_digestbyname(dg);
	if (ctx->md == NULL) {
		snprintf(err, errlen, "smtp_tls_fingerprint_digest: unknown "
		    "digest \"%s\" (use sha256, sha1 or md5)", dg);
		goto fail;
	}
	ctx->ssl = SSL_CTX_new(TLS_client_method());
	if (ctx->ssl == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
		    ssl_errstr("out of memory"));
		goto fail;
	}
	/* A peer that drops TCP without close_notify: end of stream. */
	SSL_CTX_set_options(ctx->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, verify_cb);
	SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_CLIENT |
	    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx->ssl, new_session_cb);
	if (ctx_load(ctx, tc, err, errlen) < 0)
		goto fail;
	ctx->fp_digest = xstrdup(dg);
	ctx->protocols = dup_or_null(tc->protocols);
	ctx->mand_protocols = dup_or_null(tc->mand_protocols);
	ctx->ciphers = dup_or_null(tc->ciphers);
	ctx->mand_ciphers = dup_or_null(tc->mand_ciphers);
	ctx->exclude = dup_or_null(tc->exclude);
	ctx->mand_exclude = dup_or_null(tc->mand_exclude);
	ctx->fp_match = dup_or_null(tc->fp_match);
	ctx->verify_match = xstrdup(tc->verify_match && *tc->verify_match ?
	    tc->verify_match : "hostname");
	ctx->secure_match = xstrdup(tc->secure_match && *tc->secure_match ?
	    tc->secure_match : "nexthop, dot-nexthop");
	ctx->servername = dup_or_null(tc->servername);
	ctx->loglevel = tc->loglevel;
	ctx->cache_timeout = tc->cache_timeout > 0 ? tc->cache_timeout : 0;
	if (RAND_bytes((unsigned char *)&ctx->gen, sizeof(ctx->gen)) != 1)
		ctx->gen = (unsigned long long)time(NULL) ^
		    (unsigned long long)(uintptr_t)ctx;
	return ctx;
fail:
	tls_ctx_free(ctx);
	return NULL;
}

/* Free the context and its cached sessions. */
void
tls_ctx_free(struct tls_ctx *ctx)
{
	size_t i;

	if (ctx == NULL)
		return;
	for (i = 0; i < ctx->ncache; i++) {
		SSL_SESSION_free(ctx->cache[i].sess);
		free(ctx->cache[i].key);
	}
	free(ctx->cache);
	SSL_CTX_free(ctx->ssl);
	free(ctx->fp_digest);
	free(ctx->protocols);
	free(ctx->mand_protocols);
	free(ctx->ciphers);
	free(ctx->mand_ciphers);
	free(ctx->exclude);
	free(ctx->mand_exclude);
	free(ctx->fp_match);
	free(ctx->verify_match);
	free(ctx->secure_match);
	free(ctx->servername);
	free(ctx);
}

/* Map an SSL_get_error() result to errno and the wanted poll events. */
static ssize_t
io_err(struct tls_conn *tc, int r, short *want)
{
	switch (SSL_get_error(tc->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		*want = POLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want = POLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		tc->dead = 1;
		if (errno == 0)
			errno = ECONNRESET;
		return -1;
	default:
		tc->dead = 1;
		log_debug("TLS error: %s", ssl_errstr("unknown"));
		errno = ECONNRESET;
		return -1;
	}
}

/* One SSL_read_ex or SSL_write_ex, with the result mapped for conn.c. */
static ssize_t
tls_io(struct tls_conn *tc, int wr, void *p, size_t len, short *want)
{
	size_t n = 0;
	int r;

	ERR_clear_error();
	errno = 0;
	r = wr ? SSL_write_ex(tc->ssl, p, len, &n) :
	    SSL_read_ex(tc->ssl, p, len, &n);
	if (r == 1)
		return (ssize_t)n;
	return io_err(tc, r, want);
}

/* Transport read through TLS. */
static ssize_t
tls_read(void *arg, int fd, void *p, size_t len, short *want)
{
	(void)fd;
	return tls_io(arg, 0, p, len, want);
}

/* Transport write through TLS (SSL_write_ex does not change p). */
static ssize_t
tls_write(void *arg, int fd, const void *p, size_t len, short *want)
{
	(void)fd;
	return tls_io(arg, 1, (void *)(uintptr_t)p, len, want);
}

/* Free one connection's TLS state (close_notify is best effort). */
static void
tls_conn_free(struct tls_conn *tc)
{
	if (tc == NULL)
		return;
	if (tc->ssl != NULL) {
		ERR_clear_error();
		if (tc->ok && !tc->dead)
			(void)SSL_shutdown(tc->ssl);
		ERR_clear_error();
		SSL_free(tc->ssl);
	}
	if (tc->pending != NULL)
		SSL_SESSION_free(tc->pending);
	free(tc->key);
	free(tc);
}

/* conn.c's close hook. */
static void
tls_close(void *arg)
{
	tls_conn_free(arg);
}

/* 1 when host is an IPv4 or IPv6 address literal. */
static int
is_ip(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

/* "AB:CD:..." of a digest. */
static void
hex_colons(const unsigned char *d, unsigned n, char *out, size_t outlen)
{
	size_t o = 0;
	unsigned i;

	out[0] = '\0';
	for (i = 0; i < n && o + 3 < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%s%02X",
		    i ? ":" : "", d[i]);
}

/* A certificate name as RFC 2253 text. */
static void
name_text(const X509_NAME *nm, char *out, size_t outlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	out[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(b, out, (int)outlen - 1);
		out[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
}

/* Describe the peer certificate in info: names, dates, fingerprints. */
static void
cert_info(struct tls_ctx *ctx, X509 *cert, struct tls_info *info)
{
	unsigned char md[EVP_MAX_MD_SIZE], *der;
	unsigned n = 0;
	struct tm tm;
	int days = 0, secs = 0, len;

	name_text(X509_get_subject_name(cert), info->subject,
	    sizeof(info->subject));
	name_text(X509_get_issuer_name(cert), info->issuer,
	    sizeof(info->issuer));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		strftime(info->not_after, sizeof(info->not_after),
		    "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)))
		info->days_left = days - (days <= 0 && secs < 0 ? 1 : 0);
	strlcpy(info->fp_digest, ctx->fp_digest, sizeof(info->fp_digest));
	if (X509_digest(cert, ctx->md, md, &n))
		hex_colons(md, n, info->cert_fp, sizeof(info->cert_fp));
	/* The public key's fingerprint is of its DER SubjectPublicKeyInfo,
	   as Postfix and "openssl pkey -pubout -outform DER" compute it. */
	der = NULL;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len > 0 && EVP_Digest(der, (size_t)len, md, &n, ctx->md, NULL))
		hex_colons(md, n, info->pkey_fp, sizeof(info->pkey_fp));
	OPENSSL_free(der);
}

/* The DNS names and IP addresses of a certificate, for messages. */
static void
cert_names(X509 *cert, char *out, size_t outlen)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name,
	    NULL, NULL);
	const GENERAL_NAME *g;
	const unsigned char *ip;
	char text[INET6_ADDRSTRLEN];
	int i, n;

	out[0] = '\0';
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_DNS)
			strlcpy(text, (const char *)ASN1_STRING_get0_data(
			    g->d.dNSName), sizeof(text));
		else if (g->type == GEN_IPADD) {
			ip = ASN1_STRING_get0_data(g->d.iPAddress);
			n = ASN1_STRING_length(g->d.iPAddress);
			if (inet_ntop(n == 4 ? AF_INET : AF_INET6, ip, text,
			    sizeof(text)) == NULL || (n != 4 && n != 16))
				continue;
		} else
			continue;
		if (out[0] != '\0')
			strlcat(out, ", ", outlen);
		strlcat(out, text, outlen);
	}
	GENERAL_NAMES_free(gens);
}

/* Compare two fingerprints, ignoring case and colons. */
static int
fp_equal(const char *a, const char *b)
{
	for (;;) {
		while (*a == ':')
			a++;
		while (*b == ':')
			b++;
		if (*a == '\0' || *b == '\0')
			return *a == *b;
		if ((*a | 0x20) != (*b | 0x20))
			return 0;
		a++;
		b++;
	}
}

/* 1 when one of the pins in list matches the certificate or its key. */
static int
fp_match(const char *list, const struct tls_info *info)
{
	char *copy = xstrdup(list), *tok, *save = NULL;
	int ok = 0;

	for (tok = strtok_r(copy, " \t,|", &save); tok != NULL && !ok;
	    tok = strtok_r(NULL, " \t,|", &save))
		ok = (info->cert_fp[0] && fp_equal(tok, info->cert_fp)) ||
		    (info->pkey_fp[0] && fp_equal(tok, info->pkey_fp));
	free(copy);
	return ok;
}

/*
 * Walk a match list for level verify or secure: the policy's match= or
 * main.cf's, where, as in Postfix, "hostname" stands for the server's
 * name (the MX host, for a relay looked up in DNS), "nexthop" for the
 * relay's domain as configured and "dot-nexthop" for any name below
 * that. Without an MX lookup the two are the same name. Calls fn for
 * each name until it returns 1; returns 1 then, else 0. *count gets the
 * number of names seen.
 */
static int
names_walk(const char *list, const char *host, const char *nexthop,
    int (*fn)(void *arg, const char *name), void *arg, int *count)
{
	char *copy = xstrdup(list), *tok, *save = NULL, dot[300];
	const char *name;
	int hit = 0;

	*count = 0;
	for (tok = strtok_r(copy, " \t,:", &save); tok != NULL && !hit &&
	    *count < NAMES_MAX; tok = strtok_r(NULL, " \t,:", &save)) {
		name = tok;
		if (strcasecmp(tok, "hostname") == 0)
			name = host;
		else if (strcasecmp(tok, "nexthop") == 0)
			name = nexthop;
		else if (strcasecmp(tok, "dot-nexthop") == 0) {
			if (is_ip(nexthop))
				continue;
			snprintf(dot, sizeof(dot), ".%s", nexthop);
			name = dot;
		}
		(*count)++;
		hit = fn(arg, name);
	}
	free(copy);
	return hit;
}

/* names_walk callback: collect the names for messages. */
static int
name_show(void *arg, const char *name)
{
	struct buf *b = arg;

	buf_addf(b, "%s%s", b->len ? ", " : "", name);
	return 0;
}

/* names_walk callback: 1 when the certificate matches name. */
static int
name_check(void *arg, const char *name)
{
	X509 *cert = arg;

	if (is_ip(name))
		return X509_check_ip_asc(cert, name, 0) == 1;
	return X509_check_host(cert, name, 0,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

/*
 * The protocol range and OpenSSL cipher list for a policy: its own
 * attributes, else main.cf's for its level. 0, or -1 with err.
 */
static int
effective(const struct tls_ctx *ctx, const struct tls_policy *p, int *lo,
    int *hi, char *list, size_t listlen, char *err, size_t errlen)
{
	int mand = tls_level_mandatory(p->level);
	const char *pr = p->protocols ? p->protocols : mand ?
	    ctx->mand_protocols : ctx->protocols;
	const char *ci = p->ciphers ? p->ciphers : mand ? ctx->mand_ciphers :
	    ctx->ciphers;
	char why[256], ex[512];

	/* As Postfix: the general exclusions always, the mandatory ones
	   too at mandatory levels; a policy's exclude= replaces both. */
	snprintf(ex, sizeof(ex), "%s %s", p->exclude ? p->exclude :
	    ctx->exclude ? ctx->exclude : "", p->exclude == NULL && mand &&
	    ctx->mand_exclude ? ctx->mand_exclude : "");
	if (tls_protocols_parse(pr ? pr : "", lo, hi, why, sizeof(why)) < 0 ||
	    cipher_list(ci, ex, list, listlen, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "TLS policy: %s", why);
		return -1;
	}
	return 0;
}

/* Check a policy completely before any connection (see tls.h). */
int
tls_policy_check(const struct tls_ctx *ctx, const struct tls_policy *p,
    char *err, size_t errlen)
{
	const char *m = p->match;
	char list[512];
	int lo, hi;

	if (effective(ctx, p, &lo, &hi, list, sizeof(list), err, errlen) < 0)
		return -1;
	if (p->level == TLS_LEV_FINGERPRINT) {
		if (m == NULL)
			m = ctx->fp_match;
		if (m == NULL || strspn(m, " \t,|") == strlen(m)) {
			snprintf(err, errlen, "TLS level fingerprint needs "
			    "smtp_tls_fingerprint_cert_match (or match= in the "
			    "policy table) to list the server's fingerprints");
			return -1;
		}
	}
	if (p->servername != NULL && *p->servername == '\0') {
		snprintf(err, errlen, "TLS policy: empty servername=");
		return -1;
	}
	return 0;
}

/* Apply protocols and ciphers for the level to one connection. */
static int
set_params(struct tls_ctx *ctx, SSL *ssl, const struct tls_policy *p,
    char *err, size_t errlen)
{
	char list[512];
	int lo, hi;

	if (effective(ctx, p, &lo, &hi, list, sizeof(list), err, errlen) < 0)
		return -1;
	if (!SSL_set_min_proto_version(ssl, lo) ||
	    !SSL_set_max_proto_version(ssl, hi) ||
	    !SSL_set_cipher_list(ssl, list)) {
		snprintf(err, errlen, "TLS policy: ciphers \"%s\" not "
		    "accepted by OpenSSL: %s", list, ssl_errstr("unknown "
		    "error"));
		return -1;
	}
	return 0;
}

/* The SNI name to send, or NULL. */
static const char *
sni_name(struct tls_ctx *ctx, const struct tls_policy *p, const char *host,
    const char *nexthop)
{
	const char *sn = p->servername ? p->servername : ctx->servername;

	if (sn == NULL || *sn == '\0')
		return NULL;
	if (strcasecmp(sn, "hostname") == 0)
		sn = host;
	else if (strcasecmp(sn, "nexthop") == 0)
		sn = nexthop;
	return is_ip(sn) ? NULL : sn;
}

/* Run the non-blocking handshake until done or the deadline passes. */
static int
handshake(SSL *ssl, int fd, int timeout, char *err, size_t errlen)
{
	int64_t deadline = now_mono_ms() + (int64_t)timeout * 1000;
	short want, rev;
	int r;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_connect(ssl)) == 1)
			return 0;
		switch (SSL_get_error(ssl, r)) {
		case SSL_ERROR_WANT_READ:
			want = POLLIN;
			break;
		case SSL_ERROR_WANT_WRITE:
			want = POLLOUT;
			break;
		case SSL_ERROR_SYSCALL:
			snprintf(err, errlen, "TLS handshake failed: %s",
			    errno ? strerror(errno) : "lost connection");
			return -1;
		default:
			snprintf(err, errlen, "TLS handshake failed: %s",
			    ssl_errstr("protocol error"));
			return -1;
		}
		if (fd_wait(fd, want, deadline, &rev) == -1) {
			snprintf(err, errlen, "TLS handshake failed: %s",
			    errno == ETIMEDOUT ? "timed out" : strerror(errno));
			return -1;
		}
	}
}

/* Fill the facts of an established connection. */
static void
describe(struct tls_ctx *ctx, struct tls_conn *tc, X509 *cert,
    struct tls_info *info)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(tc->ssl);
	long vr = SSL_get_verify_result(tc->ssl);
	int n;

	info->active = 1;
	info->reused = SSL_session_reused(tc->ssl);
	strlcpy(info->proto, SSL_get_version(tc->ssl), sizeof(info->proto));
	strlcpy(info->cipher, c ? SSL_CIPHER_get_name(c) : "unknown",
	    sizeof(info->cipher));
	info->bits = c ? SSL_CIPHER_get_bits(c, &info->alg_bits) : 0;
	if (cert != NULL)
		cert_info(ctx, cert, info);
	/*
	 * The chain verdict: the callback's first error on a full
	 * handshake, the session's stored result on a resumed one (it was
	 * made against this same context's trust store: the cache key
	 * carries the context's id). Either way OpenSSL's final result
	 * must be OK too, in case verification never reached the callback.
	 */
	if (vr != X509_V_OK && tc->chain_err[0] == '\0')
		strlcpy(tc->chain_err, X509_verify_cert_error_string(vr),
		    sizeof(tc->chain_err));
	if (cert == NULL && tc->chain_err[0] == '\0')
		strlcpy(tc->chain_err, "no server certificate",
		    sizeof(tc->chain_err));
	strlcpy(info->chain_err, tc->chain_err, sizeof(info->chain_err));
	info->chain_ok = cert != NULL && tc->chain_err[0] == '\0';
	/* Names and pins are matched here, after every handshake. */
	if (info->name_checked)
		info->name_ok = cert != NULL && names_walk(tc->names, tc->host,
		    tc->nexthop, name_check, cert, &n);
	if (info->fp_checked)
		info->fp_ok = cert != NULL && fp_match(tc->pins, info);
	if ((info->name_checked && info->chain_ok && info->name_ok) ||
	    (info->fp_checked && info->fp_ok))
		strlcpy(info->trust, "Verified", sizeof(info->trust));
	else
		strlcpy(info->trust, info->chain_ok ? "Trusted" : "Untrusted",
		    sizeof(info->trust));
}

/* Judge an established connection against its policy; 0 or -1. */
static int
judge(struct tls_ctx *ctx, struct tls_conn *tc, const char *peer,
    struct tls_info *info, char *err, size_t errlen)
{
	X509 *cert = SSL_get0_peer_certificate(tc->ssl);
	char certnames[200];

	describe(ctx, tc, cert, info);
	if (ctx->loglevel >= 1)
		log_info("%s TLS connection established to %s: %s with cipher "
		    "%s (%d/%d bits)%s", info->trust, peer, info->proto,
		    info->cipher, info->bits, info->alg_bits,
		    info->reused && ctx->loglevel >= 2 ? " (session reused)" :
		    "");
	if (info->fp_checked && !info->fp_ok) {
		snprintf(err, errlen, "certificate verify failed: fingerprint "
		    "mismatch: the server's certificate has %s fingerprint %s "
		    "(public key %s), matching none of the configured pins",
		    info->fp_digest, info->cert_fp, info->pkey_fp);
		return -1;
	}
	if (info->name_checked && !info->chain_ok) {
		snprintf(err, errlen, "certificate verify failed: %s "
		    "(issuer %s)", info->chain_err, info->issuer);
		return -1;
	}
	if (info->name_checked && !info->name_ok) {
		cert_names(cert, certnames, sizeof(certnames));
		snprintf(err, errlen, "certificate verify failed: hostname "
		    "mismatch: the certificate is for %s, expected %s",
		    certnames[0] ? certnames : info->subject, info->names);
		return -1;
	}
	return 0;
}

/* A 64-bit FNV-1a hash step over s (and a separator). */
static unsigned long long
fnv(unsigned long long h, const char *s)
{
	for (; s != NULL && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL;
}

/*
 * The session cache key: this context's id, the relay, the level and a
 * hash of everything else that decides acceptance or the handshake, so
 * that a session is only ever resumed under the policy that accepted it.
 */
static char *
cache_key(struct tls_ctx *ctx, const char *host, const char *nexthop,
    const char *port, const struct tls_policy *p, const char *match,
    const char *sni)
{
	unsigned long long h = 0xcbf29ce484222325ULL;

	h = fnv(h, nexthop);
	h = fnv(h, match);
	h = fnv(h, sni);
	h = fnv(h, p->protocols);
	h = fnv(h, p->ciphers);
	h = fnv(h, p->exclude);
	return xasprintf("%016llx/%s:%s/%s/%016llx", ctx->gen, host, port,
	    tls_level_name(p->level), h);
}

/* Prepare the names or pins the level checks; 0 or -1 with err. */
static int
prepare_checks(struct tls_ctx *ctx, struct tls_conn *tc,
    const struct tls_policy *p, const char *host, const char *nexthop,
    struct tls_info *info, const char **match, char *err, size_t errlen)
{
	struct buf b = BUF_INIT;
	int n;

	*match = NULL;
	if (p->level == TLS_LEV_VERIFY || p->level == TLS_LEV_SECURE) {
		*match = p->match ? p->match : p->level == TLS_LEV_VERIFY ?
		    ctx->verify_match : ctx->secure_match;
		info->name_checked = 1;
		tc->names = *match;
		tc->host = host;
		tc->nexthop = nexthop;
		buf_adds(&b, "");
		(void)names_walk(*match, host, nexthop, name_show, &b, &n);
		strlcpy(info->names, b.data, sizeof(info->names));
		buf_free(&b);
		if (n == 0) {
			snprintf(err, errlen, "TLS policy: no usable name in "
			    "match list \"%s\"", *match);
			return -1;
		}
	} else if (p->level == TLS_LEV_FINGERPRINT) {
		*match = p->match ? p->match : ctx->fp_match;
		info->fp_checked = 1;
		tc->pins = *match;
		if (*match == NULL || strspn(*match, " \t,|") ==
		    strlen(*match)) {
			snprintf(err, errlen, "TLS level fingerprint needs "
			    "smtp_tls_fingerprint_cert_match (or match= in the "
			    "policy table) to list the server's fingerprints");
			return -1;
		}
		strlcpy(info->names, *match, sizeof(info->names));
	}
	return 0;
}

/* Offer the cached session for the key, if it may still be resumed. */
static void
offer_session(struct tls_ctx *ctx, struct tls_conn *tc)
{
	struct tls_cached *cached = cache_find(ctx, tc->key);

	if (ctx->cache_timeout == 0 || cached == NULL || cached->sess == NULL)
		return;
	if (SSL_SESSION_is_resumable(cached->sess) &&
	    SSL_SESSION_get_time(cached->sess) + ctx->cache_timeout >
	    (long)time(NULL))
		(void)SSL_set_session(tc->ssl, cached->sess);
}

/* Handshake and judge (see tls.h). */
int
tls_start(struct tls_ctx *ctx, struct conn *c, const char *host,
    const char *nexthop, const char *port, const char *peer,
    const struct tls_policy *p, int timeout, struct tls_info *info,
    char *err, size_t errlen)
{
	struct tls_conn *tc = xcalloc(1, sizeof(*tc));
	struct conn_io io;
	const char *sni, *match;

	memset(info, 0, sizeof(*info));
	tc->ctx = ctx;
	if ((tc->ssl = SSL_new(ctx->ssl)) == NULL ||
	    !SSL_set_ex_data(tc->ssl, conn_index, tc) ||
	    !SSL_set_fd(tc->ssl, conn_fd(c))) {
		snprintf(err, errlen, "cannot set up TLS: %s",
		    ssl_errstr("out of memory"));
		goto fail;
	}
	if (set_params(ctx, tc->ssl, p, err, errlen) < 0)
		goto fail;
	if ((sni = sni_name(ctx, p, host, nexthop)) != NULL &&
	    !SSL_set_tlsext_host_name(tc->ssl, sni)) {
		snprintf(err, errlen, "bad TLS server name \"%s\"", sni);
		goto fail;
	}
	if (prepare_checks(ctx, tc, p, host, nexthop, info, &match, err,
	    errlen) < 0)
		goto fail;
	tc->key = cache_key(ctx, host, nexthop, port, p, match, sni);
	offer_session(ctx, tc);
	if (ctx->loglevel >= 2)
		log_info("setting up TLS connection to %s", peer);
	if (handshake(tc->ssl, conn_fd(c), timeout, err, errlen) < 0)
		goto fail;
	if (judge(ctx, tc, peer, info, err, errlen) < 0) {
		/* A resumed session that no longer passes: forget it here
		   and, through the next export, in the daemon. */
		if (info->reused)
			cache_put(ctx, tc->key, NULL, 1);
		goto fail;
	}
	/* From here the connection meets its policy: keep its sessions. */
	tc->ok = 1;
	if (tc->pending != NULL) {
		cache_put(ctx, tc->key, tc->pending, 1);
		tc->pending = NULL;
	}
	io.read = tls_read;
	io.write = tls_write;
	io.close = tls_close;
	io.ctx = tc;
	conn_set_io(c, &io);
	return 0;
fail:
	tls_conn_free(tc);
	return -1;
}

/* Channel binding data (see tls.h). */
const char *
tls_channel_binding(const struct conn *c, unsigned char *data, size_t datalen,
    size_t *len)
{
	static const char label[] = "EXPORTER-Channel-Binding";
	const struct conn_io *io = conn_get_io(c);
	struct tls_conn *tc;
	size_t n;

	*len = 0;
	if (io->read != tls_read || (tc = io->ctx) == NULL || datalen < 32)
		return NULL;
	if (SSL_version(tc->ssl) >= TLS1_3_VERSION) {
		if (SSL_export_keying_material(tc->ssl, data, 32, label,
		    sizeof(label) - 1, NULL, 0, 0) != 1)
			return NULL;
		*len = 32;
		return "tls-exporter";
	}
	/* The first Finished message: ours, or the server's on resumption. */
	n = SSL_session_reused(tc->ssl) ?
	    SSL_get_peer_finished(tc->ssl, data, datalen) :
	    SSL_get_finished(tc->ssl, data, datalen);
	if (n == 0 || n > datalen)
		return NULL;
	*len = n;
	return "tls-unique";
}

/* Export fresh sessions, and forgotten ones, as text lines. */
int
tls_cache_export(struct tls_ctx *ctx, struct buf *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char *der;
	size_t i, k, at;
	int len, n = 0;

	for (i = 0; i < ctx->ncache; i++) {
		if (!ctx->cache[i].fresh)
			continue;
		ctx->cache[i].fresh = 0;
		n++;
		if (ctx->cache[i].sess == NULL) {
			buf_addf(out, "T %s -\n", ctx->cache[i].key);
			continue;
		}
		der = NULL;
		if ((len = i2d_SSL_SESSION(ctx->cache[i].sess, &der)) <= 0) {
			n--;
			continue;
		}
		/* One reservation, so the secret is never copied by a
		   growing buffer. */
		buf_reserve(out, strlen(ctx->cache[i].key) + 4 +
		    2 * (size_t)len + 1);
		buf_addf(out, "T %s ", ctx->cache[i].key);
		at = out->len;
		for (k = 0; k < (size_t)len; k++) {
			out->data[at + 2 * k] = hex[der[k] >> 4];
			out->data[at + 2 * k + 1] = hex[der[k] & 15];
		}
		out->len = at + 2 * (size_t)len;
		buf_add(out, "\n", 1);
		OPENSSL_clear_free(der, (size_t)len);
	}
	return n;
}

/* The value of one hex digit, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Import one exported line "KEY HEX" or "KEY -" (forget KEY). A key from
 * another context (a worker started before a reload) is ignored.
 */
int
tls_cache_import(struct tls_ctx *ctx, const char *line)
{
	const char *sp = strchr(line, ' '), *h;
	unsigned char *der;
	const unsigned char *pp;
	SSL_SESSION *sess;
	size_t n, i;
	char *key, gen[20];
	int hi, lo, rc = -1;

	if (sp == NULL || sp == line || (n = strlen(sp + 1)) == 0)
		return -1;
	snprintf(gen, sizeof(gen), "%016llx/", ctx->gen);
	if (strncmp(line, gen, strlen(gen)) != 0)
		return 0;
	key = xstrndup(line, (size_t)(sp - line));
	if (strcmp(sp + 1, "-") == 0) {
		if (cache_find(ctx, key) != NULL)
			cache_put(ctx, key, NULL, 0);
		free(key);
		return 0;
	}
	if (n % 2) {
		free(key);
		return -1;
	}
	h = sp + 1;
	der = xmalloc(n / 2);
	for (i = 0; i < n / 2; i++) {
		if ((hi = hexval(h[2 * i])) < 0 || (lo = hexval(h[2 * i + 1])) < 0)
			goto out;
		der[i] = (unsigned char)(hi << 4 | lo);
	}
	pp = der;
	if ((sess = d2i_SSL_SESSION(NULL, &pp, (long)(n / 2))) == NULL)
		goto out;
	cache_put(ctx, key, sess, 0);
	rc = 0;
out:
	free(key);
	explicit_bzero(der, n / 2);
	free(der);
	return rc;
}
