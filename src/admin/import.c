/*
 * import.c - `postern conf --import DIR`: move a Postfix null client over.
 *
 * Reads DIR/main.cf (Postfix's syntax is postern's) and sorts every
 * setting into one of three kinds, each reported on its own line:
 *
 *   used         postern has the parameter: it is written to the new
 *                main.cf as it was (tables first copied, see below);
 *   ignored      irrelevant to a null client (the SMTP server, local
 *                delivery, Postfix's own directories and programs) or
 *                accepted and ignored by postern too: left out;
 *   unsupported  a Postfix feature postern lacks (canonical_maps, say):
 *                left out, and the line says so, so that nothing is
 *                dropped silently.
 *
 * Tables of used parameters that live in DIR (hash:/etc/postfix/
 * sasl_passwd) are copied, with their mode, into the postern
 * configuration directory and named there; hash: and btree: sources are
 * compiled (Postfix's Berkeley DB files are not postern's GDBM files).
 * Tables elsewhere (hash:/etc/aliases) keep their names; the report says
 * which to compile. The new main.cf is written whole (temp file, fsync,
 * rename); an existing one is replaced only with -f, and kept as
 * main.cf.bak.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <bsd/string.h>

#include "admin/import.h"
#include "conf/config.h"
#include "conf/map_db.h"
#include "conf/params.h"
#include "lib/buf.h"
#include "lib/fsio.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define IMPORT_MAX	(1 << 20)	/* main.cf and table sources */

/* Postfix parameters a null client does not need (prefix: trailing *). */
static const char *const irrelevant[] = {
	"alias_database",	/* postern reads alias_maps only */
	"biff", "command_directory", "daemon_directory", "data_directory",
	"debug_peer_level", "debug_peer_list", "debugger_command",
	"default_transport", "disable_vrfy_command", "home_mailbox",
	"html_directory", "lmtp_*", "local_recipient_maps",
	"local_transport", "mail_owner", "mail_spool_directory",
	"mailbox_*", "mailq_path", "manpage_directory", "master_service_*",
	"meta_directory", "milter_*", "newaliases_path", "non_smtpd_*",
	"postscreen_*", "queue_directory", "readme_directory",
	"sample_directory", "sendmail_path", "setgid_group",
	"shlib_directory", "smtpd_*", "unknown_local_recipient_reject_code",
	"virtual_mailbox_*", "virtual_transport",
};

/* Postfix parameters whose value is a list of tables. */
static const char *const table_params[] = {
	"alias_maps", "sender_dependent_relayhost_maps", "smtp_generic_maps",
	"smtp_header_checks", "smtp_sasl_password_maps",
	"smtp_tls_policy_maps", "transport_maps",
};

enum kind { K_USED, K_IGNORED, K_UNSUPPORTED };

struct setting {
	char		*name;
	char		*value;		/* as it will be written */
	int		 lineno;
	enum kind	 kind;
	const char	*why;
};

struct import {
	const char	*from;		/* the Postfix directory */
	const char	*to;		/* postern's configuration directory */
	struct setting	*s;
	size_t		 n;
	int		 status;
	struct buf	 notes;		/* table lines of the report */
};

/* 1 when name matches an entry of list (an entry ending in * a prefix). */
static int
in_list(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(list[i]);
		if (list[i][l - 1] == '*' ? strncmp(name, list[i], l - 1) == 0 :
		    strcmp(name, list[i]) == 0)
			return 1;
	}
	return 0;
}

/* maincf_parse callback: remember the setting (a later one replaces). */
static void
collect(void *arg, int lineno, const char *name, const char *value)
{
	struct import *im = arg;

	for (size_t i = 0; i < im->n; i++)
		if (strcmp(im->s[i].name, name) == 0) {
			free(im->s[i].value);
			im->s[i].value = xstrdup(value);
			im->s[i].lineno = lineno;
			return;
		}
	im->s = xreallocarray(im->s, im->n + 1, sizeof(*im->s));
	memset(&im->s[im->n], 0, sizeof(im->s[im->n]));
	im->s[im->n].name = xstrdup(name);
	im->s[im->n].value = xstrdup(value);
	im->s[im->n].lineno = lineno;
	im->n++;
}

/* Sort one setting into used, ignored or unsupported. */
static void
classify(struct setting *st)
{
	const struct param_def *p = param_find(st->name);

	if (in_list(irrelevant, sizeof(irrelevant) / sizeof(irrelevant[0]),
	    st->name)) {
		st->kind = K_IGNORED;
		st->why = "not needed by a null client";
	} else if (p == NULL) {
		st->kind = K_UNSUPPORTED;
		st->why = "postern does not have this feature";
	} else if (p->flags & PF_IGNORED) {
		st->kind = K_IGNORED;
		st->why = "accepted and ignored by postern too";
	} else if (strcmp(st->name, "config_directory") == 0) {
		st->kind = K_IGNORED;
		st->why = "postern's own directory is used";
	} else {
		st->kind = K_USED;
		st->why = NULL;
	}
}

/* A table compiler's warning, into the report. */
static void
note_warning(void *arg, const char *msg)
{
	struct import *im = arg;

	buf_addf(&im->notes, "warning %s\n", msg);
}

/* Replace every $config_directory / ${config_directory} by dir. */
static char *
expand_confdir(const char *v, const char *dir)
{
	static const char *const forms[] = { "${config_directory}",
	    "$(config_directory)", "$config_directory" };
	struct buf b = BUF_INIT;
	char *out;

	while (*v) {
		size_t i, l = 0;
		for (i = 0; i < 3; i++) {
			l = strlen(forms[i]);
			if (strncmp(v, forms[i], l) == 0)
				break;
		}
		if (i < 3) {
			buf_add(&b, dir, strlen(dir));
			v += l;
		} else
			buf_addc(&b, *v++);
	}
	buf_addc(&b, '\0');
	out = xstrdup(b.data);
	buf_free(&b);
	return out;
}

/* Copy from/base to to/base, keeping the mode; 0 or -1 with err. */
static int
copy_file(const char *path, const char *to, const char *base, char *err,
    size_t errlen)
{
	struct buf b = BUF_INIT;
	struct stat sb;
	int rc = -1;

	if (stat(path, &sb) < 0 || fs_read_file(path, &b, IMPORT_MAX) < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (fs_replace(to, base, b.data, b.len, sb.st_mode & 0777) < 0) {
		snprintf(err, errlen, "cannot write %s/%s: %s", to, base,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (b.data != NULL)
		explicit_bzero(b.data, b.len);	/* may be a password table */
	buf_free(&b);
	return rc;
}

/*
 * Rewrite the tables of a table parameter: those in the Postfix
 * directory are copied (and compiled); the value names the copies.
 */
static void
move_tables(struct import *im, struct setting *st)
{
	struct buf out = BUF_INIT;
	char *v = xstrdup(st->value), *save = NULL, err[1200], path[4096];
	size_t fl = strlen(im->from);
	int first = 1;

	for (char *t = strtok_r(v, ", \t", &save); t != NULL;
	    t = strtok_r(NULL, ", \t", &save)) {
		char *colon = strchr(t, ':'), *name = colon ? colon + 1 : t;
		const char *base;
		if (!first)
			buf_addc(&out, ' ');
		first = 0;
		if (colon == NULL || strncmp(name, im->from, fl) != 0 ||
		    name[fl] != '/') {
			/* Elsewhere (or inline:, static:): as it is. */
			buf_add(&out, t, strlen(t));
			if (colon != NULL && map_db_type((*colon = '\0', t)) &&
			    name[0] == '/') {
				buf_addf(&im->notes, "table   %s: %s:%s stays "
				    "where it is; compile it for postern with: "
				    "postern map %s%s:%s\n", st->name, t, name,
				    strcmp(st->name, "alias_maps") == 0 ?
				    "-a " : "", t, name);
			}
			if (colon != NULL)
				*colon = ':';
			continue;
		}
		*colon = '\0';
		base = strrchr(name, '/') + 1;
		snprintf(path, sizeof(path), "%s/%s", im->to, base);
		if (copy_file(name, im->to, base, err, sizeof(err)) < 0) {
			buf_addf(&im->notes, "error   %s: %s\n", st->name, err);
			im->status = EX_NOINPUT;
			buf_addf(&out, "%s:%s", t, name);
			continue;
		}
		buf_addf(&out, "%s:%s", t, path);
		if (map_db_type(t)) {
			int rc = map_db_compile(t, path, strcmp(st->name,
			    "alias_maps") == 0, note_warning, im, err,
			    sizeof(err));
			if (rc != 0) {
				buf_addf(&im->notes, "error   %s: %s\n",
				    st->name, err);
				im->status = rc;
				continue;
			}
			buf_addf(&im->notes, "table   %s: %s copied to %s and "
			    "compiled (%s.db)\n", st->name, name, path, path);
		} else
			buf_addf(&im->notes, "table   %s: %s copied to %s\n",
			    st->name, name, path);
	}
	buf_addc(&out, '\0');
	free(st->value);
	st->value = xstrdup(out.data);
	buf_free(&out);
	free(v);
}

/* The value of a used setting, or NULL. */
static const char *
used_value(const struct import *im, const char *name)
{
	for (size_t i = 0; i < im->n; i++)
		if (im->s[i].kind == K_USED && strcmp(im->s[i].name, name) == 0)
			return im->s[i].value;
	return NULL;
}

/*
 * What the TLS settings mean here: postern's default level is verify,
 * and it sends a password only over TLS whose peer was verified, where
 * Postfix sends it wherever smtp_sasl_security_options allow (a Debian
 * satellite: level may, options noanonymous, PLAIN over clear text).
 */
static void
report_tls(const struct import *im)
{
	const char *lev = used_value(im, "smtp_tls_security_level");
	const char *sasl = used_value(im, "smtp_sasl_auth_enable");
	int weak;

	if (lev == NULL) {
		printf("note        smtp_tls_security_level is not set: "
		    "Postfix sent in clear text where postern verifies "
		    "the relay's certificate (verify); set it in the "
		    "new main.cf if your relay cannot pass that\n");
		return;
	}
	weak = *lev == '\0' || strcmp(lev, "none") == 0 ||
	    strcmp(lev, "may") == 0 || strcmp(lev, "encrypt") == 0;
	if (weak && sasl != NULL && strcmp(sasl, "yes") == 0 &&
	    used_value(im, "smtp_sasl_allow_unencrypted") == NULL &&
	    used_value(im, "smtp_sasl_allow_unverified_tls") == NULL)
		printf("warning     smtp_tls_security_level = %s with "
		    "smtp_sasl_auth_enable = yes: postern sends a password "
		    "only over TLS with a verified certificate, so mail will "
		    "wait in the queue; set smtp_tls_security_level = verify "
		    "in the new main.cf (or accept the risk with "
		    "smtp_sasl_allow_unverified_tls = yes, or "
		    "smtp_sasl_allow_unencrypted = yes for clear text)\n",
		    *lev ? lev : "(empty)");
}

/* The new main.cf's text. */
static void
format_maincf(const struct import *im, struct buf *b)
{
	char stamp[64];
	time_t now = time(NULL);

	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", localtime(&now));
	buf_addf(b, "# main.cf for postern, imported from %s/main.cf by "
	    "`postern conf --import`\n# on %s. See postern.conf(5).\n\n",
	    im->from, stamp);
	for (size_t i = 0; i < im->n; i++)
		if (im->s[i].kind == K_USED)
			buf_addf(b, "%s = %s\n", im->s[i].name, im->s[i].value);
	buf_addf(b, "\n# Left out (see the import report):\n");
	for (size_t i = 0; i < im->n; i++)
		if (im->s[i].kind != K_USED)
			buf_addf(b, "#%s = %s\n", im->s[i].name, im->s[i].value);
}

/* Check the new settings the way the daemon will read them. */
static int
validate(const struct import *im, char *err, size_t errlen)
{
	struct config *cf = config_defaults();
	int rc = 0;

	for (size_t i = 0; i < im->n && rc == 0; i++)
		if (im->s[i].kind == K_USED && config_set(cf, im->s[i].name,
		    im->s[i].value, err, errlen) < 0)
			rc = -1;
	config_free(cf);
	return rc;
}

/* postern conf --import */
int
conf_import(const char *from, const char *confdir, int force)
{
	struct import im;
	struct buf text = BUF_INIT, out = BUF_INIT;
	char path[4096], bak[4096], err[1200];
	size_t used = 0, ign = 0, unsup = 0;
	struct stat sb;
	int exists;

	memset(&im, 0, sizeof(im));
	im.from = from;
	im.to = confdir;
	snprintf(path, sizeof(path), "%s/main.cf", from);
	if (fs_read_file(path, &text, IMPORT_MAX) < 0) {
		fprintf(stderr, "postern conf: cannot read %s: %s\n", path,
		    strerror(errno));
		return EX_NOINPUT;
	}
	if (maincf_parse(text.data, text.len, collect, &im, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "postern conf: %s: %s\n", path, err);
		im.status = EX_DATAERR;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/main.cf", confdir);
	exists = stat(path, &sb) == 0;
	if (exists && !force) {
		fprintf(stderr, "postern conf: %s already exists: move it away, "
		    "or add -f to replace it (the old one is kept as "
		    "main.cf.bak)\n", path);
		im.status = EX_CANTCREAT;
		goto out;
	}
	if (fs_mkdirs(confdir, 0755) < 0) {
		fprintf(stderr, "postern conf: cannot create %s: %s\n", confdir,
		    strerror(errno));
		im.status = EX_CANTCREAT;
		goto out;
	}
	for (size_t i = 0; i < im.n; i++) {
		struct setting *st = &im.s[i];
		char *v = expand_confdir(st->value, from);
		free(st->value);
		st->value = v;
		classify(st);
	}
	/* Before anything is written: values postern cannot take. */
	if (validate(&im, err, sizeof(err)) < 0) {
		fprintf(stderr, "postern conf: %s/main.cf cannot work here: "
		    "%s\n", from, err);
		im.status = EX_DATAERR;
		goto out;
	}
	for (size_t i = 0; i < im.n; i++)
		if (im.s[i].kind == K_USED && in_list(table_params,
		    sizeof(table_params) / sizeof(table_params[0]),
		    im.s[i].name))
			move_tables(&im, &im.s[i]);
	for (size_t i = 0; i < im.n; i++) {
		const struct setting *st = &im.s[i];
		if (st->kind == K_USED)
			used++;
		else if (st->kind == K_IGNORED)
			ign++;
		else
			unsup++;
		printf("%-11s %s%s%s%s\n", st->kind == K_USED ? "used" :
		    st->kind == K_IGNORED ? "ignored" : "unsupported",
		    st->name, st->why ? " (" : "", st->why ? st->why : "",
		    st->why ? ")" : "");
	}
	report_tls(&im);
	fputs(im.notes.data ? im.notes.data : "", stdout);
	if (im.status != 0)
		goto out;
	format_maincf(&im, &out);
	if (exists) {
		/* A second name, not a rename: main.cf stays until the new
		   one replaces it in one rename, so a failure or a crash
		   leaves the old one in place, never none. */
		snprintf(bak, sizeof(bak), "%s/main.cf.bak", confdir);
		if ((unlink(bak) < 0 && errno != ENOENT) || link(path, bak) < 0) {
			fprintf(stderr, "postern conf: cannot keep %s as %s: "
			    "%s\n", path, bak, strerror(errno));
			im.status = EX_CANTCREAT;
			goto out;
		}
	}
	if (fs_replace(confdir, "main.cf", out.data, out.len, 0644) < 0) {
		fprintf(stderr, "postern conf: cannot write %s: %s\n", path,
		    strerror(errno));
		im.status = EX_CANTCREAT;
		goto out;
	}
	printf("wrote %s: %zu used, %zu ignored, %zu unsupported; check it "
	    "with: postern check\n", path, used, ign, unsup);
out:
	for (size_t i = 0; i < im.n; i++) {
		free(im.s[i].name);
		free(im.s[i].value);
	}
	free(im.s);
	buf_free(&im.notes);
	buf_free(&text);
	buf_free(&out);
	return im.status;
}
