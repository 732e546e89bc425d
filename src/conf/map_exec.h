/*
 * map_exec.h - the exec: lookup table type (postern's own): a program
 * answers each lookup.
 */
#ifndef POSTERN_MAP_EXEC_H
#define POSTERN_MAP_EXEC_H

#include <stddef.h>

#include "conf/maps.h"

#define MAP_EXEC_TIMEOUT	10	/* seconds a program may take */
#define MAP_EXEC_OUT_MAX	16384	/* bytes of output read */

/*
 * Open exec:/absolute/path/to/program. The program must exist and be
 * executable now; it runs without a shell, with the folded key as its
 * only argument, stdin from /dev/null and an environment of PATH, HOME
 * and LANG=C only. Its answer:
 *   exit 0, first line non-empty     found: the line (CR/LF removed)
 *   exit 0, no output                not found
 *   anything else, or no exit within MAP_EXEC_TIMEOUT seconds
 *                                    an error (the caller defers), with
 *                                    the first line of its stderr
 * Found answers are cached for the time maps_set_cache_time() sets (0,
 * the default: every lookup runs the program).
 */
int map_exec_open(const char *title, const char *name,
    const struct map_ops **ops, void **state, char *err, size_t errlen);

/*
 * Run argv[0] with argv, collect up to outmax bytes of stdout into out
 * (NUL-terminated) and the first line of stderr into msg; timeout in
 * seconds. Returns the exit status (0-255), or -1 with a reason in msg
 * (could not run, killed, timed out). Exposed for tests.
 */
int map_exec_run(char *const argv[], int timeout, char *out, size_t outmax,
    size_t *outlen, char *msg, size_t msglen);

#endif
