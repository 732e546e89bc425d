/*
 * overflow.c - a program broken on purpose: a signed overflow, built
 * with the unit tests' sanitizer flags by `make check-sanitizers`.
 *
 * It must end at the overflow with UBSan's report and a non-zero status;
 * if it reaches the end, the build lets undefined behaviour through and
 * the check fails. The operand comes from argv so that the compiler
 * cannot fold it away.
 */
#include <stdio.h>
#include <stdlib.h>

/* Add one to argv[1] as an int, overflowing at INT_MAX. */
int
main(int argc, char **argv)
{
	volatile int n;

	if (argc != 2) {
		fprintf(stderr, "usage: overflow NUMBER\n");
		return 64;
	}
	n = atoi(argv[1]);
	n = n + 1;
	printf("still running after the overflow: %d\n", n);
	return 0;
}
