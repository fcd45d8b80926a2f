/* test_timefmt.c - ISO 8601 UTC text: known instants, fractions, times
 * before 1970 (rounded down), both ends of int64 nanoseconds, short buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "timefmt.h"

#define SEC INT64_C(1000000000)

static void check(int64_t ns, int digits, const char *expect)
{
	char out[TIME_ISO8601_MAX];
	size_t n = time_iso8601(ns, digits, out, sizeof(out));
	assert_string_equal(out, expect);
	assert_int_equal(n, strlen(expect));
}

static void test_known_instants(void **state)
{
	(void)state;
	check(0, 0, "1970-01-01T00:00:00Z");
	check(1767225600 * SEC, 0, "2026-01-01T00:00:00Z");
	/* 2024 is a leap year: the day after 28 February */
	check(1709164800 * SEC, 0, "2024-02-29T00:00:00Z");
	check(951782400 * SEC + 1, 0, "2000-02-29T00:00:00Z"); /* fraction dropped */
}

static void test_fractions(void **state)
{
	(void)state;
	int64_t t = 1767225600 * SEC + 463464768;
	check(t, 9, "2026-01-01T00:00:00.463464768Z");
	check(t, 6, "2026-01-01T00:00:00.463464Z");
	check(t, 3, "2026-01-01T00:00:00.463Z"); /* cut, not rounded up */
	check(t, 1, "2026-01-01T00:00:00.4Z");
	check(t, 12, "2026-01-01T00:00:00.463464768Z"); /* at most nanoseconds */
	check(1767225600 * SEC + 5, 9, "2026-01-01T00:00:00.000000005Z");
	check(1767225600 * SEC + 999999999, 3, "2026-01-01T00:00:00.999Z");
}

static void test_before_1970_rounds_down(void **state)
{
	(void)state;
	check(-1, 9, "1969-12-31T23:59:59.999999999Z");
	check(-1, 0, "1969-12-31T23:59:59Z");
	check(-SEC, 3, "1969-12-31T23:59:59.000Z");
	check(-SEC - 500000000, 3, "1969-12-31T23:59:58.500Z");
}

static void test_int64_limits(void **state)
{
	(void)state;
	check(INT64_MAX, 9, "2262-04-11T23:47:16.854775807Z");
	check(INT64_MIN, 9, "1677-09-21T00:12:43.145224192Z");
}

static void test_short_buffer(void **state)
{
	(void)state;
	char out[11];
	memset(out, 'x', sizeof(out));
	size_t n = time_iso8601(0, 3, out, sizeof(out));
	assert_int_equal(n, strlen("1970-01-01T00:00:00.000Z"));
	assert_string_equal(out, "1970-01-01");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_instants),
		cmocka_unit_test(test_fractions),
		cmocka_unit_test(test_before_1970_rounds_down),
		cmocka_unit_test(test_int64_limits),
		cmocka_unit_test(test_short_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
