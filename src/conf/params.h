/*
 * params.h - the table of every configuration parameter postern knows.
 *
 * One row per parameter: name, default (which may reference $other
 * parameters, as in Postfix), type, bounds and flags. `postern conf -d`,
 * the man page check and type validation all read this table.
 */
#ifndef POSTERN_PARAMS_H
#define POSTERN_PARAMS_H

#include <stddef.h>

enum param_type {
	PT_STR,		/* free text, $name expanded */
	PT_BOOL,	/* yes / no */
	PT_INT,		/* decimal integer within [min, max] */
	PT_TIME,	/* integer with optional unit s m h d w; stored in seconds */
};

#define PF_SECRET	0x01	/* never printed by conf or logged */
#define PF_IGNORED	0x02	/* Postfix parameter accepted and ignored: no
				   meaning for an outbound-only null client */
#define PF_COMPUTED	0x04	/* default computed at run time (host name) */

struct param_def {
	const char	*name;
	const char	*def;	/* default value text; NULL for PF_COMPUTED */
	enum param_type	 type;
	char		 unit;	/* PT_TIME: unit of a bare number */
	long long	 min;	/* PT_INT/PT_TIME bounds (seconds for time) */
	long long	 max;
	unsigned	 flags;
};

/* The parameter named name, or NULL. */
const struct param_def *param_find(const char *name);
/* The whole table, sorted by name; *n is set to its length. */
const struct param_def *param_table(size_t *n);

#endif
