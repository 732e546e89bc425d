/*
 * config.h - main.cf, read the way Postfix reads it.
 *
 * Syntax: "name = value" lines; '#' comment lines; a line that starts with
 * white space continues the previous one; later settings win; $name,
 * ${name} and $(name) expand, with ${name?text} (text when name is not
 * empty) and ${name:text} (text when it is). Unknown names are warnings
 * naming the file and line, never failures.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stddef.h>

struct config;

/* Called for each "name = value" setting found by maincf_parse. */
typedef void (*maincf_cb)(void *arg, int lineno, const char *name,
    const char *value);

/*
 * Parse main.cf text (pure: no I/O). Calls cb for every setting, value
 * with leading and trailing white space removed and continuation lines
 * joined by one space. Returns 0, or -1 with a message in err naming the
 * line ("line 3: missing '=' after parameter name \"foo\"").
 */
int maincf_parse(const char *text, size_t len, maincf_cb cb, void *arg,
    char *err, size_t errlen);

/*
 * Load dir/main.cf. A missing main.cf means all defaults (a missing dir
 * is an error); an unreadable
 * one, a syntax error or a value of the wrong type is an error: NULL is
 * returned and err says what is wrong and where. Unknown parameters are
 * logged with log_warnx.
 */
struct config *config_load(const char *dir, char *err, size_t errlen);
/* Configuration with every parameter at its default (for conf -d). */
struct config *config_defaults(void);
/* Override a parameter after loading (command-line -o name=value). */
int config_set(struct config *cf, const char *name, const char *value,
    char *err, size_t errlen);
void config_free(struct config *cf);

/* The configuration directory this was loaded from. */
const char *config_dir(const struct config *cf);
/* Expanded value of a known parameter (aborts on an unknown name). */
const char *conf_str(const struct config *cf, const char *name);
/* Value as a boolean: 1 for yes, 0 for no. */
int conf_bool(const struct config *cf, const char *name);
/* Value of an integer parameter. */
long long conf_int(const struct config *cf, const char *name);
/* Value of a time parameter, in seconds. */
long long conf_time(const struct config *cf, const char *name);
/* 1 when the parameter was set in main.cf (or by config_set). */
int conf_is_set(const struct config *cf, const char *name);
/* The value as written (unexpanded): main.cf's or the default. */
const char *conf_raw(const struct config *cf, const char *name);

/*
 * Parse a time value with an optional unit (s, m, h, d, w); a bare number
 * is in unit. Returns 0 and seconds in *out, or -1.
 */
int conf_parse_time(const char *s, char unit, long long *out);

/*
 * Expand $name references in text using cf; the caller frees the result.
 * Returns NULL and sets err on a reference loop.
 */
char *conf_expand(const struct config *cf, const char *text, char *err,
    size_t errlen);

#endif
