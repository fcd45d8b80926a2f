/* test_log.c - levels, journald prefixes and rate limiting of log.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int pipe_fds[2];

static int setup(void **state)
{
	(void)state;
	if (pipe2(pipe_fds, O_NONBLOCK) != 0)
		return -1;
	log_set_output(pipe_fds[1], true);
	log_set_level(LOG_LEVEL_INFO);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	return 0;
}

/* Everything logged since the last call. */
static const char *drain(void)
{
	static char buf[65536];
	ssize_t n = read(pipe_fds[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_level_names(void **state)
{
	(void)state;
	enum log_level level;
	assert_int_equal(log_level_from_name("debug", &level), 0);
	assert_int_equal(level, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_from_name("warning", &level), 0);
	assert_int_equal(level, LOG_LEVEL_WARNING);
	assert_int_equal(log_level_from_name("loud", &level), -EINVAL);
	assert_string_equal(log_level_name(LOG_LEVEL_ERROR), "error");
}

static void test_journal_prefix_and_filtering(void **state)
{
	(void)state;
	log_msg(LOG_LEVEL_ERROR, "disk %s", "full");
	log_msg(LOG_LEVEL_DEBUG, "not shown at level info");
	log_msg(LOG_LEVEL_INFO, "listening on %d", 7601);
	assert_string_equal(drain(), "<3>disk full\n<6>listening on 7601\n");

	log_set_level(LOG_LEVEL_DEBUG);
	log_msg(LOG_LEVEL_DEBUG, "now shown");
	assert_string_equal(drain(), "<7>now shown\n");
}

static void test_plain_format_has_time_and_level(void **state)
{
	(void)state;
	log_set_output(pipe_fds[1], false);
	log_msg(LOG_LEVEL_WARNING, "slow writer");
	const char *out = drain();
	/* 2026-11-24T10:37:58.123Z warning: slow writer */
	assert_int_equal(strlen(out), strlen("2026-11-24T10:37:58.123Z warning: slow writer\n"));
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[23], 'Z');
	assert_non_null(strstr(out, " warning: slow writer\n"));
}

static void test_long_message_is_truncated_with_newline(void **state)
{
	(void)state;
	char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_msg(LOG_LEVEL_ERROR, "%s", big);
	const char *out = drain();
	size_t len = strlen(out);
	assert_true(len > 1000 && len < sizeof(big));
	assert_int_equal(out[len - 1], '\n');
	assert_ptr_equal(strchr(out, '\n'), out + len - 1); /* one line */
}

static void test_ratelimit_counts_suppressed(void **state)
{
	(void)state;
	const int64_t second = 1000000000;
	struct log_ratelimit limit = LOG_RATELIMIT_INIT(second, 3);
	int written = 0;

	for (int i = 0; i < 10; i++)
		written += log_ratelimited(&limit, 5 * second + i, LOG_LEVEL_ERROR, "bad line %d", i);
	assert_int_equal(written, 3);
	assert_string_equal(drain(), "<3>bad line 0\n<3>bad line 1\n<3>bad line 2\n");
	assert_int_equal(limit.suppressed, 7);

	/* Next window: the first message reports how many were dropped. */
	assert_true(log_ratelimited(&limit, 6 * second + 1, LOG_LEVEL_ERROR, "bad line %d", 10));
	assert_string_equal(drain(), "<3>bad line 10 (7 similar messages suppressed)\n");
	assert_int_equal(limit.suppressed, 0);

	/* Disabled levels are neither written nor counted. */
	assert_false(log_ratelimited(&limit, 6 * second + 2, LOG_LEVEL_DEBUG, "quiet"));
	assert_int_equal(limit.suppressed, 0);
}

/* Network text cannot forge a line, move the terminal or break UTF-8: a
 * newline, CR, ESC, DEL, the backslash and invalid bytes become \xNN;
 * valid UTF-8 passes. */
static void test_network_text_is_escaped(void **state)
{
	(void)state;
	log_msg(LOG_LEVEL_WARNING, "from %s: %s", "evil\n<3>forged line\r\x1b[2J",
		"caf\xc3\xa9 \xff\xfe a\\x0a \x7f");
	const char *out = drain();
	assert_string_equal(out, "<4>from evil\\x0a<3>forged line\\x0d\\x1b[2J: "
				 "caf\xc3\xa9 \\xff\\xfe a\\x5cx0a \\x7f\n");
	char small[8];
	assert_int_equal(log_escape("\x01\x02\x03", small, sizeof(small)), 4);
	assert_string_equal(small, "\\x01");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_names),
		cmocka_unit_test_setup_teardown(test_journal_prefix_and_filtering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_format_has_time_and_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_message_is_truncated_with_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ratelimit_counts_suppressed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network_text_is_escaped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
