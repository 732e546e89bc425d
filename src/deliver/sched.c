/*
 * sched.c - the retry schedule (see sched.h).
 *
 * Computed in two phases so that a message that waited for weeks with a
 * one-second maximum does not cost millions of loop turns: the doubling
 * phase has at most 64 steps, the constant phase is a division.
 */
#include <math.h>

#include "deliver/sched.h"

/* Next schedule point after `after`. */
double
sched_next_retry(double arrival, double after, long long min_backoff,
    long long max_backoff)
{
	double t, step;

	if (min_backoff < 1)
		min_backoff = 1;
	if (max_backoff < min_backoff)
		max_backoff = min_backoff;
	step = (double)min_backoff;
	t = arrival + step;
	/* Doubling phase. */
	while (t <= after && step < (double)max_backoff) {
		step *= 2;
		if (step > (double)max_backoff)
			step = (double)max_backoff;
		t += step;
	}
	/* Constant phase: jump over whole steps at once. */
	if (t <= after)
		t += (floor((after - t) / step) + 1) * step;
	return t;
}
