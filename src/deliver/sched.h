/*
 * sched.h - when to try a deferred message again.
 *
 * The retry schedule is a pure function of the message's arrival time and
 * the backoff parameters, so there is nothing to lose in a crash: tries
 * fall at arrival + min, then the gap doubles up to max and stays there
 * (min, 2min, 4min, ... max, max, ...).
 */
#ifndef POSTERN_SCHED_H
#define POSTERN_SCHED_H

/*
 * The first point of the schedule strictly after `after`, for a message
 * that arrived at `arrival`, with backoff bounds in seconds (min >= 1,
 * max >= min).
 */
double sched_next_retry(double arrival, double after, long long min_backoff,
    long long max_backoff);

#endif
