/* test_utf8.c - the UTF-8 validator against RFC 3629's boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "utf8.h"

static size_t len_of(const char *bytes, size_t n)
{
	return utf8_sequence_length((const unsigned char *)bytes, n);
}

static void test_valid_sequences(void **state)
{
	(void)state;
	assert_int_equal(len_of("a", 1), 1);
	assert_int_equal(len_of("\x7F", 1), 1);
	assert_int_equal(len_of("\xC2\x80", 2), 2);         /* U+0080 */
	assert_int_equal(len_of("\xDF\xBF", 2), 2);         /* U+07FF */
	assert_int_equal(len_of("\xE0\xA0\x80", 3), 3);     /* U+0800 */
	assert_int_equal(len_of("\xED\x9F\xBF", 3), 3);     /* U+D7FF */
	assert_int_equal(len_of("\xEE\x80\x80", 3), 3);     /* U+E000 */
	assert_int_equal(len_of("\xEF\xBF\xBF", 3), 3);     /* U+FFFF */
	assert_int_equal(len_of("\xF0\x90\x80\x80", 4), 4); /* U+10000 */
	assert_int_equal(len_of("\xF4\x8F\xBF\xBF", 4), 4); /* U+10FFFF */
	assert_int_equal(len_of("\xC3\xA9tude", 6), 2);     /* only the first */
}

static void test_invalid_sequences(void **state)
{
	(void)state;
	assert_int_equal(len_of("\x80", 1), 0);             /* lone continuation */
	assert_int_equal(len_of("\xC0\x80", 2), 0);         /* overlong NUL */
	assert_int_equal(len_of("\xC1\xBF", 2), 0);         /* overlong */
	assert_int_equal(len_of("\xE0\x9F\xBF", 3), 0);     /* overlong */
	assert_int_equal(len_of("\xED\xA0\x80", 3), 0);     /* surrogate U+D800 */
	assert_int_equal(len_of("\xF0\x8F\xBF\xBF", 4), 0); /* overlong */
	assert_int_equal(len_of("\xF4\x90\x80\x80", 4), 0); /* past U+10FFFF */
	assert_int_equal(len_of("\xF5\x80\x80\x80", 4), 0);
	assert_int_equal(len_of("\xFF", 1), 0);
	assert_int_equal(len_of("\xC3\x28", 2), 0);         /* bad continuation */
	assert_int_equal(len_of("\xE2\x82\x28", 3), 0);
	assert_int_equal(len_of("\xE2\x82", 2), 0);         /* truncated */
	assert_int_equal(len_of("\xF0\x90\x80", 3), 0);
}

static size_t prefix_of(const char *bytes, size_t max)
{
	return utf8_prefix((const unsigned char *)bytes, strlen(bytes), max);
}

/* Text kept up to a bound is cut between characters, never inside one. */
static void test_prefix(void **state)
{
	(void)state;
	assert_int_equal(prefix_of("", 128), 0);
	assert_int_equal(prefix_of("s1:42", 128), 5);
	assert_int_equal(prefix_of("s1:42", 3), 3);
	assert_int_equal(prefix_of("\xC3\xA9\xC3\xA9", 3), 2);      /* not half an é */
	assert_int_equal(prefix_of("\xC3\xA9\xC3\xA9", 4), 4);
	assert_int_equal(prefix_of("a\xF0\x90\x80\x80", 4), 1);    /* nor 3/4 of U+10000 */
	assert_int_equal(prefix_of("\xFF\xFE:1", 128), SIZE_MAX);  /* not UTF-8 */
	assert_int_equal(prefix_of("ab\xC3", 128), SIZE_MAX);      /* truncated */
	assert_int_equal(prefix_of("ab\xFF", 2), 2);               /* past the cut: unread */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_sequences),
		cmocka_unit_test(test_invalid_sequences),
		cmocka_unit_test(test_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
