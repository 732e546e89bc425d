/*
 * test_qindex.c - the queue manager's index by queue ID: insert, find,
 * replace, delete (backward shift) against a plain array as the model,
 * through enough churn to grow the table and wrap probe runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/qindex.h"

#define NKEYS	20000

static char keys[NKEYS][16];
static int present[NKEYS];

/* Every key is found exactly when the model says it is there. */
static void
check_all(const struct qindex *ix)
{
	size_t n = 0;

	for (size_t i = 0; i < NKEYS; i++) {
		void *v = qindex_get(ix, keys[i]);
		if (present[i]) {
			assert_ptr_equal(v, &present[i]);
			n++;
		} else
			assert_null(v);
	}
	assert_int_equal(ix->n, n);
}

static void
test_churn(void **state)
{
	struct qindex ix;
	unsigned seed = 12345;

	qindex_init(&ix);
	assert_null(qindex_get(&ix, "ABC"));
	assert_int_equal(qindex_del(&ix, "ABC"), 0);
	for (size_t i = 0; i < NKEYS; i++)
		snprintf(keys[i], sizeof(keys[i]), "%X", (unsigned)(i * 2654435761u));
	for (size_t i = 0; i < NKEYS; i++) {
		qindex_put(&ix, keys[i], &present[i]);
		present[i] = 1;
	}
	check_all(&ix);
	/* Random deletes and re-inserts: probe runs are cut and rejoined. */
	for (int round = 0; round < 4; round++) {
		for (size_t k = 0; k < NKEYS; k++) {
			size_t i;
			seed = seed * 1103515245u + 12345u;
			i = (seed >> 8) % NKEYS;
			if (present[i]) {
				assert_int_equal(qindex_del(&ix, keys[i]), 1);
				present[i] = 0;
			} else {
				qindex_put(&ix, keys[i], &present[i]);
				present[i] = 1;
			}
		}
		check_all(&ix);
	}
	/* Replacing keeps one entry. */
	for (size_t i = 0; i < NKEYS; i++)
		if (present[i]) {
			size_t n = ix.n;
			qindex_put(&ix, keys[i], &present[i]);
			assert_int_equal(ix.n, n);
			break;
		}
	/* The table stays at most half full. */
	assert_true(2 * ix.n <= ix.cap);
	for (size_t i = 0; i < NKEYS; i++)
		if (present[i]) {
			assert_int_equal(qindex_del(&ix, keys[i]), 1);
			present[i] = 0;
		}
	check_all(&ix);
	qindex_free(&ix);
}

/* A tiny table where every key collides into one run. */
static void
test_small_runs(void **state)
{
	struct qindex ix;
	static char k[40][16];
	static int v[40];

	qindex_init(&ix);
	for (int i = 0; i < 40; i++) {
		snprintf(k[i], sizeof(k[i]), "Q%d", i);
		qindex_put(&ix, k[i], &v[i]);
	}
	for (int i = 0; i < 40; i += 3)
		assert_int_equal(qindex_del(&ix, k[i]), 1);
	for (int i = 0; i < 40; i++)
		if (i % 3 == 0)
			assert_null(qindex_get(&ix, k[i]));
		else
			assert_ptr_equal(qindex_get(&ix, k[i]), &v[i]);
	qindex_free(&ix);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_small_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
