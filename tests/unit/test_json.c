/* test_json.c - text as a JSON string: escapes, UTF-8 kept, invalid bytes
 * replaced, whatever the pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"

struct sink {
	char buf[256];
	size_t len;
	int pieces;
};

static void put(void *arg, const char *piece, size_t len)
{
	struct sink *s = arg;
	assert_true(len > 0);
	assert_true(s->len + len < sizeof(s->buf));
	memcpy(s->buf + s->len, piece, len);
	s->len += len;
	s->buf[s->len] = '\0';
	s->pieces++;
}

static const char *escaped(struct sink *s, const char *text, size_t n)
{
	memset(s, 0, sizeof(*s));
	json_escape(text, n, put, s);
	return s->buf;
}

static void test_plain_text_is_one_piece(void **state)
{
	(void)state;
	struct sink s;
	assert_string_equal(escaped(&s, "weather/s12", 11), "weather/s12");
	assert_int_equal(s.pieces, 1);
	assert_string_equal(escaped(&s, "", 0), "");
	assert_int_equal(s.pieces, 0);
}

static void test_quotes_backslashes_and_controls(void **state)
{
	(void)state;
	struct sink s;
	assert_string_equal(escaped(&s, "a\"b\\c", 5), "a\\\"b\\\\c");
	assert_string_equal(escaped(&s, "x\ny\r\x1b[31m\x7f", 10),
			    "x\\u000ay\\u000d\\u001b[31m\\u007f");
	assert_string_equal(escaped(&s, "nul\0end", 7), "nul\\u0000end");
}

static void test_utf8_kept_invalid_bytes_replaced(void **state)
{
	(void)state;
	struct sink s;
	assert_string_equal(escaped(&s, "\xC3\xA9t\xC3\xA9", 5), "\xC3\xA9t\xC3\xA9");
	/* a lone continuation, an overlong NUL, a truncated sequence */
	assert_string_equal(escaped(&s, "a\x80" "b\xC0\x80" "c\xE2\x82", 8),
			    "a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_text_is_one_piece),
		cmocka_unit_test(test_quotes_backslashes_and_controls),
		cmocka_unit_test(test_utf8_kept_invalid_bytes_replaced),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
