/* test_ingest_http.c - the parts of the HTTP write API that need no socket:
 * query parameters, precisions of the v1 and v2 APIs, every accepted form
 * of the token and the ones refused, the InfluxDB wording of a partial
 * write with its JSON escaping, and the metrics page without a recorder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_http.h"
#include "line.h"
#include "metrics.h"

static void test_query_params(void **state)
{
	(void)state;
	const char *q = "db=weather&rp=&precision=s&u=me%40site&p=a%2Bb+c&flag";
	char out[64];
	assert_true(ingest_http_query_param(q, strlen(q), "db", out, sizeof(out)));
	assert_string_equal(out, "weather");
	assert_true(ingest_http_query_param(q, strlen(q), "rp", out, sizeof(out)));
	assert_string_equal(out, "");
	assert_true(ingest_http_query_param(q, strlen(q), "u", out, sizeof(out)));
	assert_string_equal(out, "me@site");
	assert_true(ingest_http_query_param(q, strlen(q), "p", out, sizeof(out)));
	assert_string_equal(out, "a+b c");
	assert_true(ingest_http_query_param(q, strlen(q), "flag", out, sizeof(out)));
	assert_string_equal(out, "");
	assert_false(ingest_http_query_param(q, strlen(q), "d", out, sizeof(out)));
	assert_false(ingest_http_query_param(q, strlen(q), "precisio", out, sizeof(out)));
	/* only the bytes given are read; a cut value stays NUL-terminated */
	assert_false(ingest_http_query_param(q, 1, "db", out, sizeof(out)));
	char small[4];
	assert_true(ingest_http_query_param(q, strlen(q), "db", small, sizeof(small)));
	assert_string_equal(small, "wea");
	/* a broken escape is kept as it is */
	const char *bad = "p=%zz%4";
	assert_true(ingest_http_query_param(bad, strlen(bad), "p", out, sizeof(out)));
	assert_string_equal(out, "%zz%4");
}

static void test_precisions(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int v1, v2; /* expected precision, -1: refused */
	} cases[] = {
		{"", LINE_PRECISION_NS, LINE_PRECISION_NS},
		{"n", LINE_PRECISION_NS, -1},
		{"ns", LINE_PRECISION_NS, LINE_PRECISION_NS},
		{"u", LINE_PRECISION_US, -1},
		{"us", LINE_PRECISION_US, LINE_PRECISION_US},
		{"ms", LINE_PRECISION_MS, LINE_PRECISION_MS},
		{"s", LINE_PRECISION_S, LINE_PRECISION_S},
		{"m", LINE_PRECISION_M, -1},
		{"h", LINE_PRECISION_H, -1},
		{"d", -1, -1},
		{"S", -1, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum line_precision p;
		int rc = ingest_http_precision(cases[i].text, false, &p);
		assert_int_equal(rc, cases[i].v1 < 0 ? -EINVAL : 0);
		if (!rc)
			assert_int_equal(p, cases[i].v1);
		rc = ingest_http_precision(cases[i].text, true, &p);
		assert_int_equal(rc, cases[i].v2 < 0 ? -EINVAL : 0);
		if (!rc)
			assert_int_equal(p, cases[i].v2);
	}
}

static void test_authorization(void **state)
{
	(void)state;
	const char *t = "s3cret";
	/* no token configured: everything passes */
	assert_true(ingest_http_authorized(NULL, NULL, NULL));
	assert_true(ingest_http_authorized(NULL, "Token nope", "nope"));
	/* the forms clients send */
	assert_true(ingest_http_authorized(t, "Token s3cret", NULL));
	assert_true(ingest_http_authorized(t, "token  s3cret", NULL));
	assert_true(ingest_http_authorized(t, "Token me:s3cret", NULL));
	assert_true(ingest_http_authorized(t, "Bearer s3cret", NULL));
	assert_true(ingest_http_authorized(t, "Basic bWU6czNjcmV0", NULL)); /* me:s3cret */
	assert_true(ingest_http_authorized(t, NULL, "s3cret"));
	assert_true(ingest_http_authorized(t, "", "s3cret"));
	/* and what must not pass */
	assert_false(ingest_http_authorized(t, NULL, NULL));
	assert_false(ingest_http_authorized(t, NULL, ""));
	assert_false(ingest_http_authorized(t, NULL, "s3cre"));
	assert_false(ingest_http_authorized(t, NULL, "s3crets"));
	assert_false(ingest_http_authorized(t, "Token s3cre", NULL));
	assert_false(ingest_http_authorized(t, "Token s3cret2", NULL));
	assert_false(ingest_http_authorized(t, "Token me:wrong", NULL));
	assert_false(ingest_http_authorized(t, "Token", NULL));
	assert_false(ingest_http_authorized(t, "Tokens3cret", NULL));
	assert_false(ingest_http_authorized(t, "Digest s3cret", NULL));
	assert_false(ingest_http_authorized(t, "Basic czNjcmV0", NULL)); /* no user: */
	assert_false(ingest_http_authorized(t, "Basic bWU6d3Jvbmc=", NULL)); /* me:wrong */
	assert_false(ingest_http_authorized(t, "Basic !!!!", NULL));
	/* a wrong header is not rescued by a right parameter */
	assert_false(ingest_http_authorized(t, "Token wrong", "s3cret"));
}

static void test_partial_write_json(void **state)
{
	(void)state;
	char out[512];
	const char *l = "cpu,host=a value=";
	size_t n = ingest_http_partial_json(false, l, strlen(l), false, "missing field value", 2,
					    out, sizeof(out));
	assert_int_equal(n, strlen(out));
	assert_string_equal(out, "{\"error\":\"partial write: unable to parse "
				 "'cpu,host=a value=': missing field value dropped=2\"}");
	ingest_http_partial_json(true, l, strlen(l), false, "missing field value", 1, out,
				 sizeof(out));
	assert_string_equal(out, "{\"code\":\"invalid\",\"message\":\"partial write: unable to "
				 "parse 'cpu,host=a value=': missing field value dropped=1\"}");
	/* quotes, backslashes, control bytes and bad UTF-8 stay valid JSON */
	const char odd[] = "m s=\"a\\b\"\t\x01 \xc3\xa9 \xff";
	ingest_http_partial_json(false, odd, sizeof(odd) - 1, true, "why \"not\"", 1, out,
				 sizeof(out));
	assert_string_equal(out, "{\"error\":\"partial write: unable to parse 'm s=\\\"a\\\\b\\\""
				 "\\u0009\\u0001 \xc3\xa9 \\ufffd...': why \\\"not\\\" dropped=1\"}");
	/* cut to the buffer, always terminated */
	char small[16];
	n = ingest_http_partial_json(false, l, strlen(l), false, "x", 1, small, sizeof(small));
	assert_int_equal(n, sizeof(small) - 1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_metrics_without_recorder(void **state)
{
	(void)state;
	char page[1024];
	size_t n = metrics_render(NULL, page, sizeof(page));
	assert_int_equal(n, strlen(page));
	assert_non_null(strstr(page, "# TYPE h5rec_build_info gauge\n"));
	assert_non_null(strstr(page, "h5rec_build_info{version=\"" H5REC_VERSION "\""));
	/* a short buffer says how much is needed */
	char tiny[8];
	assert_int_equal(metrics_render(NULL, tiny, sizeof(tiny)), n);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	assert_false(metrics_output_stalled(NULL));
	assert_int_equal(ingest_http_code(0), 200);
	assert_int_equal(ingest_http_code(INGEST_HTTP_CODES), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_params),
		cmocka_unit_test(test_precisions),
		cmocka_unit_test(test_authorization),
		cmocka_unit_test(test_partial_write_json),
		cmocka_unit_test(test_metrics_without_recorder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
