/*
 * sendmail.c - sendmail(8), mailq and newaliases: put a message in the
 * spool and exit.
 *
 * This program is setgid postern and runs for any user, so it starts in
 * hostile territory: the group given up at once (kept only as the saved
 * group, and taken back just for the spool write), descriptors 0-2 forced
 * open, a umask, an empty environment, stray descriptors closed, and
 * configuration overrides (-C, POSTERN_CONFIG_DIR) honoured only for root
 * and the postern user. It never talks to the network and links only libc
 * and libbsd, because it runs once per message and must be fast: options,
 * main.cf, the input, one spool write. Options follow Postfix's
 * sendmail(1), parsed by hand because "-fADDR", "-f ADDR", "-oi" and
 * "-q30m" all have to work.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <bsd/string.h>

#include "conf/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/addr.h"
#include "spool/enqueue.h"

#define CONFIG_ENV	"POSTERN_CONFIG_DIR"

enum mode { M_DELIVER, M_LIST, M_FLUSH, M_ALIASES };

struct opts {
	enum mode	 mode;
	int		 extract;	/* -t */
	int		 ignore_dots;	/* -i, -oi */
	const char	*sender;	/* -f / -r, or NULL */
	const char	*full_name;	/* -F */
	const char	*dash_c;	/* -C */
	char		*notify;	/* -N, upper-case */
	const char	*ret;		/* -R: "FULL" or "HDRS" */
	const char	*envid;		/* -V */
	char		**rcpt;		/* command-line recipients */
	int		 nrcpt;
};

/*
 * The ids sendmail started with. Only the spool write needs the postern
 * group; everything else (main.cf, the arguments, the input) is read with
 * the caller's own rights, so the group waits in the saved set-group-ID
 * until then.
 */
static struct {
	int	setid;		/* started set-user-ID or set-group-ID */
	gid_t	caller;		/* the real group: the caller's */
	gid_t	priv;		/* the group we are set to (postern) */
} ids;

/* Make gid the effective (and file system) group, the saved one kept. */
static void
group_set(gid_t gid)
{
	gid_t r, e, s;

	if (setresgid((gid_t)-1, gid, (gid_t)-1) < 0)
		fatalx_status(EX_OSERR, "cannot set the effective group to "
		    "%lu: %s; check how sendmail is installed (see "
		    "sendmail(8), SECURITY)", (unsigned long)gid,
		    strerror(errno));
	/* Trust, but verify: a surprise here means a broken setup. */
	if (getresgid(&r, &e, &s) < 0 || e != gid || getegid() != gid ||
	    s != ids.priv)
		fatalx_status(EX_OSERR, "the effective group is not %lu after "
		    "setresgid; check how sendmail is installed (see "
		    "sendmail(8), SECURITY)", (unsigned long)gid);
}

/* Give up the set-group-ID group until the spool write (see ids). */
static void
group_init(void)
{
	gid_t r, e, s;

	if (getresgid(&r, &e, &s) < 0)
		fatalx_status(EX_OSERR, "cannot read my group IDs: %s",
		    strerror(errno));
	ids.setid = e != r || geteuid() != getuid();
	ids.caller = r;
	ids.priv = e;
	group_set(ids.caller);
}

/* Copy s with control characters made visible, for an error message. */
static char *
printable(const char *s)
{
	char *p, *c = xstrndup(s, 200);

	for (p = c; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return c;
}

/* -N: "never", or a comma list of success, failure, delay. */
static char *
parse_notify(const char *v)
{
	static const char *const ok[] = { "SUCCESS", "FAILURE", "DELAY" };
	char *up = xstrdup(v), *tok, *save = NULL, *tmp;
	size_t i, n = 0;

	for (char *p = up; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	/* NEVER excludes the others (RFC 3461), so it must stand alone. */
	if (strcmp(up, "NEVER") == 0)
		return up;
	tmp = xstrdup(up);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++) {
		for (i = 0; i < 3 && strcmp(tok, ok[i]) != 0; i++)
			;
		if (i == 3)
			break;
	}
	free(tmp);
	if (tok != NULL || n == 0 || up[0] == ',' || up[strlen(up) - 1] == ',' ||
	    strstr(up, ",,") != NULL)
		fatalx_status(EX_USAGE, "bad -N option value \"%.60s\": use "
		    "never, or a list of success,failure,delay", v);
	return up;
}

/* -V: an envelope ID must go into ENVID= as is: xtext-safe ASCII. */
static const char *
check_envid(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 100)
		fatalx_status(EX_USAGE, "bad -V option value: 1 to 100 characters");
	for (const char *p = v; *p; p++)
		if (*p < '!' || *p > '~' || *p == '+' || *p == '=')
			fatalx_status(EX_USAGE, "bad -V option value: only "
			    "printable ASCII without '+', '=' or spaces");
	return v;
}

/*
 * -F: the name goes into a From: field we may add, so it must be text
 * that cannot end that field: a line break there would let the caller
 * write any header (Bcc:, Reply-To:). Refused, not cleaned: the caller
 * should know. The name is checked here and encoded by enq_build.
 */
static const char *
check_full_name(const char *v)
{
	char err[160], *shown, *ok = addr_phrase(v, err, sizeof(err));

	if (ok == NULL) {
		shown = printable(v);
		fatalx_status(EX_USAGE, "bad -F option value \"%.60s\": %s",
		    shown, err);
	}
	free(ok);
	return v;
}

/* -b: the mode of operation. */
static void
opt_mode(struct opts *o, const char *v)
{
	if (strcmp(v, "m") == 0)
		o->mode = M_DELIVER;
	else if (strcmp(v, "p") == 0)
		o->mode = M_LIST;
	else if (strcmp(v, "i") == 0)
		o->mode = M_ALIASES;
	else
		fatalx_status(EX_USAGE, "-b%.20s is not supported", v);
}

/* An option that takes a value (attached, or the next argument). */
static void
opt_value(struct opts *o, int c, const char *v)
{
	switch (c) {
	case 'f': case 'r':
		o->sender = v;
		break;
	case 'F':
		o->full_name = check_full_name(v);
		break;
	case 'C':
		o->dash_c = v;
		break;
	case 'b':
		opt_mode(o, v);
		break;
	case 'o':
		/* Old sendmail options; only -oi means anything here. */
		if (strcmp(v, "i") == 0)
			o->ignore_dots = 1;
		break;
	case 'B':
		/* Checked but not stored: the 8-bit flag comes from the data. */
		if (strcasecmp(v, "7BIT") != 0 && strcasecmp(v, "8BITMIME") != 0)
			fatalx_status(EX_USAGE, "bad -B option value \"%.20s\": "
			    "use 7BIT or 8BITMIME", v);
		break;
	case 'N':
		free(o->notify);
		o->notify = parse_notify(v);
		break;
	case 'R':
		if (strcasecmp(v, "full") == 0)
			o->ret = "FULL";
		else if (strcasecmp(v, "hdrs") == 0)
			o->ret = "HDRS";
		else
			fatalx_status(EX_USAGE, "bad -R option value \"%.20s\": "
			    "use full or hdrs", v);
		break;
	case 'V':
		o->envid = check_envid(v);
		break;
	default:	/* -L -h -O -X -p -e: accepted, no meaning here */
		break;
	}
}

/* Parse the command line; returns with o->rcpt at the recipients. */
static void
parse_args(struct opts *o, int argc, char **argv)
{
	const char *arg, *v;
	int i, j, c;

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		/* The first non-option starts the recipient list. */
		if (arg[0] != '-' || arg[1] == '\0')
			break;
		for (j = 1; (c = arg[j]) != '\0'; j++) {
			if (strchr("tivmnGUx", c) != NULL) {
				if (c == 't')
					o->extract = 1;
				else if (c == 'i')
					o->ignore_dots = 1;
				else if (c == 'v')
					log_set_verbose(1);
				continue;
			}
			if (c == 'q') {		/* -q, -q30m, -qR...: flush */
				o->mode = M_FLUSH;
				break;
			}
			if (c == 'I') {		/* old name of newaliases */
				o->mode = M_ALIASES;
				continue;
			}
			if (strchr("frFCboBNRVLhOXpe", c) == NULL)
				fatalx_status(EX_USAGE, "unknown option -%c; "
				    "see sendmail(8)", c);
			/* "-fADDR" or "-f ADDR": the rest of the word, or the next. */
			v = arg + j + 1;
			if (*v == '\0' && ++i >= argc)
				fatalx_status(EX_USAGE, "option -%c requires "
				    "a value; see sendmail(8)", c);
			opt_value(o, c, *v ? v : argv[i]);
			break;
		}
	}
	o->rcpt = argv + i;
	o->nrcpt = argc - i;
}

/*
 * 1 when uid is the mail_owner user that the built-in configuration
 * names (default postern): only root's main.cf may say whom we trust,
 * as Postfix's postdrop reads its own. *name gets the user's name.
 */
static int
is_mail_owner(uid_t uid, char *name, size_t namelen)
{
	char err[512];
	struct config *cf = config_load(POSTERN_SYSCONFDIR, err, sizeof(err));
	struct passwd *pw;
	int yes;

	strlcpy(name, cf != NULL ? conf_str(cf, "mail_owner") : "postern",
	    namelen);
	pw = getpwnam(name);
	yes = cf != NULL && pw != NULL && pw->pw_uid == uid;
	config_free(cf);
	return yes;
}

/*
 * The configuration directory: -C, else the environment, else the
 * built-in one. A set-id sendmail must not read a configuration the
 * caller chose (its queue_directory would be written with our group).
 */
static const char *
config_dir_choose(const char *dash_c, const char *envdir)
{
	char owner[256] = "postern";
	/* Remembered: the effective group is the caller's by now. */
	int trusted = !ids.setid || getuid() == 0 ||
	    ((dash_c || envdir) && is_mail_owner(getuid(), owner,
	    sizeof(owner)));

	if (dash_c != NULL) {
		if (!trusted)
			fatalx_status(EX_NOPERM, "-C is allowed only for root "
			    "and the mail_owner user (%s)", owner);
		return dash_c;
	}
	if (envdir != NULL && *envdir != '\0' && trusted)
		return envdir;
	return NULL;
}

/* -bp, -q, -bi: run "postern queue", "flush" or "newaliases" from our
   directory. */
static _Noreturn void
run_postern(const char *cmd, const char *confdir)
{
	char self[PATH_MAX], prog[PATH_MAX + 16], *slash;
	const char *av[5];
	ssize_t n;
	int ac = 0;
	gid_t g = getgid();

	/* Next to us, not on PATH: the caller controls PATH. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		fatal("cannot find my own program: /proc/self/exe");
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) != NULL)
		*slash = '\0';
	if ((size_t)snprintf(prog, sizeof(prog), "%s/postern", self) >= sizeof(prog))
		fatalx("program path too long");
	/* postern is not a set-id program: give it only the caller's group. */
	if (setresgid(g, g, g) < 0)
		fatal("cannot drop group privileges");
	av[ac++] = "postern";
	if (confdir != NULL) {
		av[ac++] = "-C";
		av[ac++] = confdir;
	}
	av[ac++] = cmd;
	av[ac] = NULL;
	execv(prog, (char *const *)av);
	fatalx_status(EX_UNAVAILABLE, "cannot run %s: %s", prog, strerror(errno));
}

/* The parameters addr_qualify needs, from main.cf. */
static struct addr_rewrite
rewrite_params(const struct config *cf)
{
	return (struct addr_rewrite){
		.myorigin = conf_str(cf, "myorigin"),
		.mydomain = conf_str(cf, "mydomain"),
		.append_at_myorigin = conf_bool(cf, "append_at_myorigin"),
		.append_dot_mydomain = conf_bool(cf, "append_dot_mydomain"),
	};
}

/*
 * Check an address given as the sender (empty allowed) or a recipient:
 * the bytes, then RFC 5321 Mailbox syntax, so that nothing after a space
 * can reach the relay as an ESMTP parameter. Returns it without <>;
 * exits 65 with what is wrong.
 */
static char *
checked_addr(const char *given, const char *what, int allow_empty)
{
	char err[200], *clean, *shown;

	if (addr_check(given, allow_empty, &clean, err, sizeof(err)) < 0 ||
	    (*clean != '\0' && addr_mailbox_check(clean, 1, err,
	    sizeof(err)) < 0)) {
		shown = printable(given);
		fatalx_status(EX_DATAERR, "bad address syntax in %s \"%s\": "
		    "%s", what, shown, err);
	}
	return clean;
}

/* The envelope sender: -f, else the caller's login name; qualified. */
static char *
envelope_sender(const struct opts *o, const struct addr_rewrite *rw)
{
	struct passwd *pw;
	char *clean, *q;

	if (o->sender == NULL) {
		/* The real uid: the effective ids are ours, not the user's. */
		if ((pw = getpwuid(getuid())) == NULL)
			fatalx_status(EX_OSERR, "no login name found for user "
			    "ID %lu", (unsigned long)getuid());
		/* A login name is a local part like any other. */
		clean = checked_addr(pw->pw_name, "sender (the login name; "
		    "use -f)", 0);
	} else
		clean = checked_addr(o->sender, "sender", 1);
	q = addr_qualify(clean, rw);
	free(clean);
	return q;
}

/* Check, qualify and add one recipient (duplicates are dropped). */
static void
add_rcpt(struct qenv *env, const char *given, const struct addr_rewrite *rw,
    const char *what)
{
	char *clean, *q;

	clean = checked_addr(given, what, 0);
	q = addr_qualify(clean, rw);
	/* -t plus the same address on the command line: deliver once. */
	for (size_t i = 0; i < env->nrcpt; i++)
		if (strcmp(env->rcpt[i].addr, q) == 0)
			goto out;
	qenv_add_rcpt(env, q, strcmp(q, clean) != 0 ? clean : NULL);
out:
	free(q);
	free(clean);
}

/* -t: the recipients of the To/Cc/Bcc headers. */
static void
header_rcpts(struct qenv *env, const struct buf *msg,
    const struct addr_rewrite *rw)
{
	struct addr_list l = { NULL, 0 };
	char err[160];
	size_t before = env->nrcpt;

	if (enq_header_rcpts(msg->data ? msg->data : "", msg->len, &l, err,
	    sizeof(err)) < 0)
		fatalx_status(EX_DATAERR, "bad address syntax in %s", err);
	for (size_t i = 0; i < l.n; i++)
		add_rcpt(env, l.v[i], rw, "recipient (To:, Cc: or Bcc:)");
	if (l.n == 0 && before == 0)
		fatalx_status(EX_USAGE, "no recipient addresses found in "
		    "message header");
	addr_list_free(&l);
}

/* Read stdin within message_size_limit. */
static void
read_message(const struct opts *o, const struct config *cf, struct buf *msg)
{
	long long limit = conf_int(cf, "message_size_limit");
	int rc;

	/* 0 is "no limit", but the daemon reads no file over QFILE_MAX. */
	rc = enq_read(STDIN_FILENO, o->ignore_dots, limit > 0 ?
	    (size_t)limit : QFILE_MAX, msg);
	if (rc == -1)
		fatalx_status(EX_IOERR, "error reading the message: %s",
		    strerror(errno));
	if (rc == -2 && limit > 0)
		fatalx_status(EX_DATAERR, "message is larger than "
		    "message_size_limit (%lld bytes)", limit);
	if (rc == -2)
		fatalx_status(EX_DATAERR, "message is larger than %zu bytes, "
		    "the most postern can queue", QFILE_MAX);
}

/* The -bm mode: read, check, queue. */
static int
deliver(const struct opts *o, const char *confdir)
{
	char err[512], qid[QID_MAX];
	struct qenv env = { 0 };
	struct enq_msg m = { 0 };
	struct buf msg = BUF_INIT;
	struct addr_rewrite rw;
	struct config *cf;
	const char *qdir;
	int rc, saved;

	/* Refuse what we can before reading the input. */
	if (o->nrcpt == 0 && !o->extract)
		fatalx_status(EX_USAGE, "no recipients specified");
	if ((cf = config_load(confdir, err, sizeof(err))) == NULL)
		fatalx_status(EX_CONFIG, "%s", err);
	rw = rewrite_params(cf);
	env.sender = envelope_sender(o, &rw);
	for (int i = 0; i < o->nrcpt; i++)
		add_rcpt(&env, o->rcpt[i], &rw, "recipient");
	read_message(o, cf, &msg);
	if (o->extract)
		header_rcpts(&env, &msg, &rw);
	env.uid = getuid();
	env.notify = o->notify ? xstrdup(o->notify) : NULL;
	env.ret = o->ret ? xstrdup(o->ret) : NULL;
	env.envid = o->envid ? xstrdup(o->envid) : NULL;

	m.myhostname = conf_str(cf, "myhostname");
	m.from = *env.sender ? env.sender : addr_qualify("MAILER-DAEMON", &rw);
	m.full_name = o->full_name;
	m.uid = env.uid;
	m.remove_bcc = o->extract;
	m.minfree = conf_int(cf, "queue_minfree");
	qdir = conf_str(cf, "queue_directory");
	/* The group only for the write: the file and rename need it. */
	group_set(ids.priv);
	rc = enq_queue(qdir, &m, &env, msg.data ? msg.data : "", msg.len, qid,
	    err, sizeof(err));
	saved = errno;
	group_set(ids.caller);
	errno = saved;
	/* errno names the cause; err has the step, for -v. */
	if (rc < 0) {
		/* No room (queue_minfree, a full disk): err says how much. */
		if (errno == ENOSPC)
			fatalx_status(EX_TEMPFAIL, "cannot queue message: %s",
			    err);
		log_debug("%s", err);
		/* Too large is final: trying again cannot help. */
		fatalx_status(errno == EFBIG ? EX_DATAERR : EX_TEMPFAIL,
		    "cannot queue message: %s (queue directory %s)",
		    strerror(errno), qdir);
	}
	log_debug("queued as %s", qid);
	/* The process ends here; freeing keeps leak checkers quiet. */
	if (m.from != env.sender)
		free((char *)m.from);
	qenv_free(&env);
	buf_free(&msg);
	config_free(cf);
	return EX_OK;
}

/*
 * Hostile-territory start-up: what a set-id program must do first. The
 * group goes before anything else; the environment is read only for
 * POSTERN_CONFIG_DIR, then cleared (TMPDIR, TZ, LANG and LC_* are never
 * looked at: nothing here uses a temporary directory or a locale, and
 * time stamps use the system's zone).
 */
static char *
sanitize_process(void)
{
	const char *v;
	char *envdir = NULL;

	group_init();
	fds_sanitize();
	umask(027);
	v = getenv(CONFIG_ENV);
	if (v != NULL)
		envdir = xstrdup(v);
	clearenv();
	/* A child (postern, for -bp and -q) needs a sane PATH. */
	setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
	fds_close_from(3);
	return envdir;
}

/* --help: the options that matter most; sendmail(8) has them all. */
#define SENDMAIL_HELP \
	"usage: sendmail [options] [--] recipient ...\n" \
	"Queue the message on standard input for postern's posternd.\n" \
	"  -t            recipients from To:, Cc:, Bcc: (Bcc: removed)\n" \
	"  -i, -oi       a line with a single dot does not end the message\n" \
	"  -f sender     the envelope sender (default: your login name)\n" \
	"  -F name       your full name for the From: header\n" \
	"  -N dsn        FAILURE,DELAY,SUCCESS or NEVER notices\n" \
	"  -R full|hdrs  how much of the message a bounce returns\n" \
	"  -V envid      the envelope ID for notices\n" \
	"  -C dir        configuration directory (root and mail_owner)\n" \
	"  -bp           list the queue (as mailq)\n" \
	"  -bi           compile the aliases (as newaliases)\n" \
	"  -q            deliver the queued mail now\n" \
	"  --version     print the version\n" \
	"Exit status: 0 once the message is on disk; see sendmail(8).\n"

int
main(int argc, char **argv)
{
	struct opts o = { .mode = M_DELIVER };
	const char *prog, *confdir;
	char *envdir;
	int rc;

	/* The name first (it reads nothing), so every error carries it. */
	prog = argc > 0 ? path_base(argv[0]) : "sendmail";
	if (strcmp(prog, "mailq") == 0)
		o.mode = M_LIST;
	else if (strcmp(prog, "newaliases") == 0)
		o.mode = M_ALIASES;
	else
		prog = "sendmail";
	log_open(prog, LOG_DEST_CLI, NULL);
	if ((rc = std_long_option(argc, argv, prog, SENDMAIL_HELP)) >= 0)
		return rc;
	envdir = sanitize_process();
	/* Out of memory and the like are temporary: the caller retries. */
	log_set_fatal_status(EX_TEMPFAIL);

	parse_args(&o, argc, argv);
	confdir = config_dir_choose(o.dash_c, envdir);
	switch (o.mode) {
	case M_ALIASES:
		run_postern("newaliases", confdir);
	case M_LIST:
		run_postern("queue", confdir);
	case M_FLUSH:
		run_postern("flush", confdir);
	case M_DELIVER:
		break;
	}
	rc = deliver(&o, confdir ? confdir : POSTERN_SYSCONFDIR);
	free(o.notify);
	free(envdir);
	return rc;
}
