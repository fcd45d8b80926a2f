/* test_router.c - frame keys and lines to streams, groups and channels, and
 * the placeholder checks that keep network names out of paths; a line's
 * group tag is found among any number of tags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static const char schema_text[] =
	"name: routing\n"
	"listen:\n"
	"  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7700\" }\n"
	"  - { protocol: line, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	"streams:\n"
	"  - name: dust\n"
	"    match: { key: \"dust/{channel}\" }\n"
	"    group: /dust\n"
	"    layout: records\n"
	"    samples: 4\n"
	"    dt: 1.0e-3\n"
	"    channels:\n"
	"      first_detector: { dtype: float32 }\n"
	"      second_detector: { dtype: float32 }\n"
	"  - name: bursts\n"
	"    match: { key: \"burst/{channel}\" }\n"
	"    group: /bursts\n"
	"    layout: records\n"
	"    samples: 2\n"
	"    dt: 1.0e-3\n"
	"    channels:\n"
	"      a: { dtype: float32 }\n"
	"  - name: adc\n"
	"    match: { key: \"{board}/{channel}\" }\n"
	"    group: \"/{board}\"\n"
	"    layout: stream\n"
	"    channels:\n"
	"      ch1: { dtype: int16, dt: 1.0e-6 }\n"
	"  - name: adc_records\n"
	"    match: { key: \"rec/{board}/{channel}\" }\n"
	"    group: \"/rec_{board}\"\n"
	"    layout: records\n"
	"    samples: 2\n"
	"    dt: 1.0e-3\n"
	"    channels:\n"
	"      ch1: { dtype: int16 }\n"
	"  - name: weather\n"
	"    match: { measurement: weather }\n"
	"    group: \"/{station}\"\n"
	"    layout: table\n"
	"    channels:\n"
	"      temperature: { dtype: float32 }\n";

static int setup(void **state)
{
	struct schema *schema;
	struct schema_error err;
	if (schema_load_string(schema_text, sizeof(schema_text) - 1, "routing.yaml", &schema, &err)) {
		print_error("%s\n", err.message);
		return -1;
	}
	*state = schema;
	return 0;
}

static int teardown(void **state)
{
	schema_free(*state);
	return 0;
}

static void test_data_key_fixed_group(void **state)
{
	struct route route;
	char reason[256];
	assert_int_equal(router_data_key(*state, "dust/second_detector", &route, reason,
					 sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.stream->name, "dust");
	assert_int_equal(route.channel, 1);
	assert_int_equal(route.nvalues, 0);
}

static void test_data_key_with_placeholder(void **state)
{
	struct route route;
	char reason[256];
	const char *values[ROUTER_MAX_PLACEHOLDERS];
	assert_int_equal(router_data_key(*state, "b-7.x/ch1", &route, reason, sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.stream->name, "adc");
	assert_int_equal(route.channel, 0);
	assert_int_equal(route.nvalues, 1);
	assert_string_equal(route.names[0], "board");
	router_values(&route, values);
	assert_string_equal(values[0], "b-7.x");
}

static void test_data_key_errors(void **state)
{
	struct route route;
	char reason[256];

	assert_int_equal(router_data_key(*state, "dust/third", &route, reason, sizeof(reason)),
			 ROUTER_NO_CHANNEL);
	assert_string_equal(reason, "key 'dust/third': stream 'dust' has no channel 'third'");

	assert_int_equal(router_data_key(*state, "../ch1", &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE);
	assert_non_null(strstr(reason, "value '..' of {board}"));
	assert_int_equal(router_data_key(*state, ".hidden/ch1", &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE);
	assert_int_equal(router_data_key(*state, "/ch1", &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE); /* empty */
	char long_key[80];
	memset(long_key, 'a', 65);
	strcpy(long_key + 65, "/ch1");
	assert_int_equal(router_data_key(*state, long_key, &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE);
	long_key[64] = '/';
	strcpy(long_key + 65, "ch1");
	assert_int_equal(router_data_key(*state, long_key, &route, reason, sizeof(reason)),
			 ROUTER_OK); /* 64 is allowed */
	assert_int_equal(router_data_key(*state, "b 7/ch1", &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE);
	assert_int_equal(router_data_key(*state, "nokey", &route, reason, sizeof(reason)),
			 ROUTER_NO_STREAM);
	assert_string_equal(reason, "key 'nokey' matches no frame stream");
}

static void test_event_keys(void **state)
{
	struct route route;
	char reason[256];
	assert_int_equal(router_event_key(*state, "dust", &route, reason, sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.stream->name, "dust");
	/* The stream's name (SPEC §3.1) and its key prefix both work. */
	assert_int_equal(router_event_key(*state, "bursts", &route, reason, sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.stream->name, "bursts");
	assert_int_equal(router_event_key(*state, "burst", &route, reason, sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.stream->name, "bursts");
	/* "b7" matches adc's "{board}" prefix, but adc is not a records stream. */
	assert_int_equal(router_event_key(*state, "b7", &route, reason, sizeof(reason)),
			 ROUTER_WRONG_KIND);
	assert_int_equal(router_event_key(*state, "..", &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE);
	/* A group with placeholders is named by the key prefix only. */
	assert_int_equal(router_event_key(*state, "rec/b9", &route, reason, sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.stream->name, "adc_records");
	assert_string_equal(route.values[0], "b9");
	/* Its bare name cannot say which group: here it falls through to adc's
	 * "{board}" prefix, a stream-layout stream. */
	assert_int_equal(router_event_key(*state, "adc_records", &route, reason, sizeof(reason)),
			 ROUTER_WRONG_KIND);
}

static struct line_tag tag(const char *key, const char *value)
{
	return (struct line_tag){key, strlen(key), value, strlen(value)};
}

static void test_lines(void **state)
{
	struct route route;
	char reason[256];
	struct line_tag tags[] = {tag("site", "north"), tag("station", "15")};

	assert_int_equal(router_line(*state, "weather", tags, 2, &route, reason, sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.stream->name, "weather");
	assert_int_equal(route.nvalues, 1); /* only tags the group uses */
	assert_string_equal(route.names[0], "station");
	assert_string_equal(route.values[0], "15");

	assert_int_equal(router_line(*state, "weather", tags, 1, &route, reason, sizeof(reason)),
			 ROUTER_MISSING_TAG);
	assert_string_equal(reason, "measurement 'weather': tag 'station' missing (group /{station})");

	struct line_tag twice[] = {tag("station", "15"), tag("station", "16")};
	assert_int_equal(router_line(*state, "weather", twice, 2, &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE);
	assert_string_equal(reason, "measurement 'weather': tag 'station' has two values");
	twice[1] = tag("station", "15"); /* the same value twice is no conflict */
	assert_int_equal(router_line(*state, "weather", twice, 2, &route, reason, sizeof(reason)),
			 ROUTER_OK);
	/* Only the length says where a value ends: "1" is not "15". */
	twice[1] = (struct line_tag){"station", 7, "15", 1};
	assert_int_equal(router_line(*state, "weather", twice, 2, &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE);

	tags[1] = tag("station", "../../etc");
	assert_int_equal(router_line(*state, "weather", tags, 2, &route, reason, sizeof(reason)),
			 ROUTER_BAD_VALUE);
	assert_int_equal(router_line(*state, "rain", tags, 2, &route, reason, sizeof(reason)),
			 ROUTER_NO_STREAM);
	assert_string_equal(router_status_name(ROUTER_MISSING_TAG), "missing_tag");
}

/* Lines with many tags (the decoder allows one per four bytes of max_line):
 * the group tag is found wherever it is, and a second value anywhere
 * after it is noticed. Routing once looked at the first 64 tags only. */
static void test_line_with_many_tags(void **state)
{
	enum { NTAGS = 1000 };
	struct line_tag *tags = calloc(NTAGS, sizeof(*tags));
	char (*keys)[16] = calloc(NTAGS, sizeof(*keys));
	struct route route;
	char reason[256];

	assert_non_null(tags);
	assert_non_null(keys);
	for (size_t i = 0; i < NTAGS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "t%zu", i);
		tags[i] = tag(keys[i], "x");
	}
	tags[89] = tag("station", "s90");
	assert_int_equal(router_line(*state, "weather", tags, 100, &route, reason, sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.values[0], "s90");
	assert_int_equal(router_line(*state, "weather", tags, 89, &route, reason, sizeof(reason)),
			 ROUTER_MISSING_TAG);

	tags[NTAGS - 1] = tag("station", "s90");
	assert_int_equal(router_line(*state, "weather", tags, NTAGS, &route, reason,
				     sizeof(reason)),
			 ROUTER_OK);
	tags[NTAGS - 1] = tag("station", "s91");
	assert_int_equal(router_line(*state, "weather", tags, NTAGS, &route, reason,
				     sizeof(reason)),
			 ROUTER_BAD_VALUE);
	assert_string_equal(reason, "measurement 'weather': tag 'station' has two values");

	tags[89] = tag("t89", "x");
	assert_int_equal(router_line(*state, "weather", tags, NTAGS, &route, reason,
				     sizeof(reason)),
			 ROUTER_OK);
	assert_string_equal(route.values[0], "s91");
	free(keys);
	free(tags);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_key_fixed_group),
		cmocka_unit_test(test_data_key_with_placeholder),
		cmocka_unit_test(test_data_key_errors),
		cmocka_unit_test(test_event_keys),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_line_with_many_tags),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
