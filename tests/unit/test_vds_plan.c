/* test_vds_plan.c - which rows `h5rec vds` keeps of several files: one copy
 * of each message, the longest, all columns of an axis alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vds_plan.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void expect_ranges(const struct vds_keep *k, const uint64_t *pairs, size_t npairs)
{
	assert_int_equal(k->nranges, npairs);
	for (size_t i = 0; i < npairs; i++) {
		assert_int_equal(k->ranges[i].start, pairs[2 * i]);
		assert_int_equal(k->ranges[i].count, pairs[2 * i + 1]);
	}
}

/* A recorder killed after storing messages 3 and 4, which the survivor
 * stored again: the second copies go, the survivor's rows stay in one
 * piece around the gap. */
static void test_failover_duplicates_left_out(void **state)
{
	(void)state;
	const uint64_t a[] = {1, 2, 3, 4};
	const uint64_t b[] = {5, 3, 4, 6, 7};
	const struct vds_rows files[] = {{a, N(a)}, {b, N(b)}};
	struct vds_keep keep[2];
	uint64_t dropped = 99;
	assert_int_equal(vds_plan_keep(files, 2, keep, &dropped), 0);
	assert_int_equal(dropped, 2);
	expect_ranges(&keep[0], (const uint64_t[]){0, 4}, 1);
	expect_ranges(&keep[1], (const uint64_t[]){0, 1, 3, 2}, 2);
	assert_int_equal(keep[0].rows + keep[1].rows, 7);
	vds_keep_free(keep, 2);
}

/* Many rows per message (a batch of lines): a run is one copy; a copy
 * stored in part (a write failed) loses to a whole one, wherever it is. */
static void test_longest_copy_wins(void **state)
{
	(void)state;
	const uint64_t a[] = {9, 9, 10, 10, 10};
	const uint64_t b[] = {9, 9, 9, 10, 10, 10};
	const struct vds_rows files[] = {{a, N(a)}, {b, N(b)}};
	struct vds_keep keep[2];
	uint64_t dropped = 0;
	assert_int_equal(vds_plan_keep(files, 2, keep, &dropped), 0);
	assert_int_equal(dropped, 5);
	expect_ranges(&keep[0], (const uint64_t[]){2, 3}, 1);
	expect_ranges(&keep[1], (const uint64_t[]){0, 3}, 1);
	vds_keep_free(keep, 2);
}

/* A message delivered twice to the same recorder (given back, then taken
 * again) is two runs in one file: one is kept. */
static void test_duplicate_within_one_file(void **state)
{
	(void)state;
	const uint64_t a[] = {1, 2, 1, 3};
	const struct vds_rows files[] = {{a, N(a)}};
	struct vds_keep keep[1];
	uint64_t dropped = 0;
	assert_int_equal(vds_plan_keep(files, 1, keep, &dropped), 0);
	assert_int_equal(dropped, 1);
	expect_ranges(&keep[0], (const uint64_t[]){0, 2, 3, 1}, 2);
	vds_keep_free(keep, 1);
}

/* Rows not from a broker (sequence 0) and files without provenance are
 * never taken for duplicates. */
static void test_without_provenance_everything_kept(void **state)
{
	(void)state;
	const uint64_t a[] = {0, 0, 4, 0};
	const struct vds_rows files[] = {{a, N(a)}, {NULL, 3}, {NULL, 0}};
	struct vds_keep keep[3];
	uint64_t dropped = 7;
	assert_int_equal(vds_plan_keep(files, 3, keep, &dropped), 0);
	assert_int_equal(dropped, 0);
	expect_ranges(&keep[0], (const uint64_t[]){0, 4}, 1);
	expect_ranges(&keep[1], (const uint64_t[]){0, 3}, 1);
	assert_int_equal(keep[2].nranges, 0);
	assert_int_equal(keep[2].rows, 0);
	vds_keep_free(keep, 3);
}

/* Ties go to the earlier file, so the concatenation order decides. */
static void test_tie_goes_to_the_first_file(void **state)
{
	(void)state;
	const uint64_t a[] = {7, 8};
	const uint64_t b[] = {8, 7};
	const struct vds_rows files[] = {{a, N(a)}, {b, N(b)}};
	struct vds_keep keep[2];
	uint64_t dropped = 0;
	assert_int_equal(vds_plan_keep(files, 2, keep, &dropped), 0);
	assert_int_equal(dropped, 2);
	expect_ranges(&keep[0], (const uint64_t[]){0, 2}, 1);
	assert_int_equal(keep[1].nranges, 0);
	vds_keep_free(keep, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failover_duplicates_left_out),
		cmocka_unit_test(test_longest_copy_wins),
		cmocka_unit_test(test_duplicate_within_one_file),
		cmocka_unit_test(test_without_provenance_everything_kept),
		cmocka_unit_test(test_tie_goes_to_the_first_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
