/*
 * test_line.c - the line protocol decoder: the grammar (escapes as InfluxDB
 * decodes them, every value type, timestamps and every precision,
 * comments), raw newlines inside string values, every bad-line class with
 * its reason and offsets, identical results for every split of the input,
 * the max_line bound (a 10 MB line without newline stays within it),
 * datagrams, EVENT field sets, random input, and the text of a line kept
 * for HTTP's error reports and the reset between request bodies.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "line.h"

/* Everything the decoder reports, rendered as text, so that two runs can be
 * compared with one strcmp. */
struct transcript {
	char *text;
	size_t len, cap;
	size_t points, bad;
	struct line_error last_error;
	int stop_at_point;
};

__attribute__((format(printf, 2, 3)))
static void say(struct transcript *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->text + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < t->cap - t->len)
			break;
		t->cap = t->cap * 2 + (size_t)n + 64;
		t->text = realloc(t->text, t->cap);
		assert_non_null(t->text);
	}
	t->len += (size_t)n;
}

static void say_field(struct transcript *t, const struct line_field *f)
{
	assert_int_equal(strlen(f->key), f->key_len);
	switch (f->type) {
	case LINE_VALUE_FLOAT:
		say(t, " %s=%.17g", f->key, f->value.f);
		break;
	case LINE_VALUE_INT:
		say(t, " %s=%" PRId64 "i", f->key, f->value.i);
		break;
	case LINE_VALUE_UINT:
		say(t, " %s=%" PRIu64 "u", f->key, f->value.u);
		break;
	case LINE_VALUE_STRING:
		assert_int_equal(strlen(f->string), f->string_len);
		say(t, " %s=[%s]", f->key, f->string);
		break;
	case LINE_VALUE_BOOL:
		say(t, " %s=%s", f->key, f->value.b ? "true" : "false");
		break;
	}
}

/* Only a string value can hold a newline: anywhere else it ends the line. */
static void assert_one_line(const char *text)
{
	assert_null(strchr(text, '\n'));
}

static int on_point(void *user, const struct line_point *p)
{
	struct transcript *t = user;

	assert_int_equal(strlen(p->measurement), p->measurement_len);
	assert_true(p->nfields >= 1);
	assert_one_line(p->measurement);
	say(t, "#%" PRIu64 "@%" PRIu64 " <%s>", p->line_number, p->offset, p->measurement);
	for (size_t i = 0; i < p->ntags; i++) {
		assert_int_equal(strlen(p->tags[i].key), p->tags[i].key_len);
		assert_int_equal(strlen(p->tags[i].value), p->tags[i].value_len);
		assert_one_line(p->tags[i].key);
		assert_one_line(p->tags[i].value);
		say(t, ",%s=%s", p->tags[i].key, p->tags[i].value);
	}
	for (size_t i = 0; i < p->nfields; i++) {
		assert_one_line(p->fields[i].key);
		say_field(t, &p->fields[i]);
	}
	if (p->has_timestamp)
		say(t, " ts=%" PRId64 "\n", p->timestamp_ns);
	else
		say(t, " ts=none\n");
	t->points++;
	if (t->stop_at_point && (int)t->points == t->stop_at_point)
		return -ECANCELED;
	return 0;
}

static void on_bad_line(void *user, const struct line_error *err)
{
	struct transcript *t = user;

	say(t, "!%s line %" PRIu64 " at %" PRIu64 "+%" PRIu64 ": %s\n",
	    line_error_kind_name(err->kind), err->line_number, err->line_offset,
	    err->offset - err->line_offset, err->reason);
	t->last_error = *err;
	t->bad++;
}

static const struct line_options ns_options = {.max_line = 1024,
					       .precision = LINE_PRECISION_NS};

static struct line_decoder *new_decoder(const struct line_options *options,
					struct transcript *t)
{
	struct line_decoder *decoder = line_decoder_new(options, on_point, on_bad_line, t);

	assert_non_null(decoder);
	return decoder;
}

/* Decode text in pieces of `step` bytes (0: whole) into t, finish included. */
static int decode_in_steps(const struct line_options *options, const char *text,
			   size_t len, size_t step, struct transcript *t)
{
	struct line_decoder *decoder = new_decoder(options, t);
	int rc = 0;

	for (size_t at = 0; at < len && rc == 0;) {
		size_t n = step == 0 || len - at < step ? len - at : step;
		rc = line_decoder_feed(decoder, text + at, n);
		at += n;
	}
	if (rc == 0)
		rc = line_decoder_finish(decoder);
	assert_true(line_decoder_buffer_capacity(decoder) <= options->max_line);
	line_decoder_free(decoder);
	return rc;
}

static void transcript_free(struct transcript *t)
{
	free(t->text);
	memset(t, 0, sizeof(*t));
}

/* Decode one text at once and return the transcript (caller frees). */
static char *decode_text(const struct line_options *options, const char *text)
{
	struct transcript t = {0};

	assert_int_equal(decode_in_steps(options, text, strlen(text), 0, &t), 0);
	say(&t, "%s", "");
	return t.text;
}

static void assert_decodes_to(const char *text, const char *expected)
{
	char *got = decode_text(&ns_options, text);

	assert_string_equal(got, expected);
	free(got);
}

static void test_weather_line(void **state)
{
	(void)state;
	assert_decodes_to("weather,station=15 temperature=21.3,wind=3.2 1375204299000000000\n",
			  "#1@0 <weather>,station=15 temperature=21.300000000000001 "
			  "wind=3.2000000000000002 ts=1375204299000000000\n");
}

static void test_escapes(void **state)
{
	(void)state;
	assert_decodes_to("my\\ meas\\,x\\=y,t\\=k\\ 1=v\\ 1\\,2\\=3 f\\ k\\,\\==1\n",
			  "#1@0 <my meas,x\\=y>,t=k 1=v 1,2=3 f k,==1 ts=none\n");
	assert_decodes_to("m s=\"a \\\"q\\\" \\\\ b \\n, c=d\"\n",
			  "#1@0 <m> s=[a \"q\" \\ b \\n, c=d] ts=none\n");
	/* A backslash that escapes nothing is a byte of its own, and the byte
	 * after it is scanned on its own: here it escapes the comma, so the
	 * measurement is "a\,t=1" and there are no tags. */
	assert_decodes_to("a\\\\,t=1 f=1\n", "#1@0 <a\\,t=1> f=1 ts=none\n");
	assert_decodes_to("m s=\"x\\\\\",n=1\n", "#1@0 <m> s=[x\\] n=1 ts=none\n");
	assert_decodes_to("m s=\"\"\n", "#1@0 <m> s=[] ts=none\n");
	assert_decodes_to("\\ m f=1 \\\n", "!timestamp line 1 at 0+8: invalid timestamp '\\'\n");
	assert_decodes_to("grüße,ort=Zürich µ=1\n", "#1@0 <grüße>,ort=Zürich µ=1 ts=none\n");
}

/*
 * Backslashes exactly as InfluxDB decodes them (its models/points_test.go,
 * TestParsePointUnescape and TestParsePointWithStringWithBackslash, and
 * issue 11): per element, a backslash escapes only the bytes that element
 * may escape; before anything else it is literal and the next byte is
 * scanned on its own.
 */
static void test_backslash_as_influxdb(void **state)
{
	(void)state;
	/* issue 11: one backslash, then an escaped space */
	assert_decodes_to("cpu,host=two\\\\ words value=42\n",
			  "#1@0 <cpu>,host=two\\ words value=42 ts=none\n");
	assert_decodes_to("a\\\\,b=c v=1\n", "#1@0 <a\\,b=c> v=1 ts=none\n");
	/* tag keys and values: comma, equals and space */
	assert_decodes_to("cpu,reg\\\\=ion=east value=1.0\n",
			  "#1@0 <cpu>,reg\\=ion=east value=1 ts=none\n");
	assert_decodes_to("cpu,regions=\\\\ east value=1.0\n",
			  "#1@0 <cpu>,regions=\\ east value=1 ts=none\n");
	assert_decodes_to("cpu,regions=east\\\\  value=1.0\n",
			  "#1@0 <cpu>,regions=east\\  value=1 ts=none\n");
	assert_decodes_to("cpu,regions=eas\\t value=1.0\n",
			  "#1@0 <cpu>,regions=eas\\t value=1 ts=none\n");
	assert_decodes_to("cpu,regions=\\\\,\\,\\=east value=1.0\n",
			  "#1@0 <cpu>,regions=\\,,=east value=1 ts=none\n");
	/* the value C:\Temp\ x from a client that escapes the space only */
	assert_decodes_to("cpu,path=C:\\Temp\\\\ x,n=1 f=1\n",
			  "#1@0 <cpu>,path=C:\\Temp\\ x,n=1 f=1 ts=none\n");
	/* the measurement escapes comma and space only: "\=" stays */
	assert_decodes_to("cpu\\=load,region=east value=1.0\n",
			  "#1@0 <cpu\\=load>,region=east value=1 ts=none\n");
	assert_decodes_to("c\\\\\\ pu f=1\n", "#1@0 <c\\\\ pu> f=1 ts=none\n");
	/* field keys: comma, equals and space */
	assert_decodes_to("cpu \\a=1i\n", "#1@0 <cpu> \\a=1i ts=none\n");
	assert_decodes_to("cpu a\\\\=b=1i,c\\\\\\,d=2i\n",
			  "#1@0 <cpu> a\\=b=1i c\\\\,d=2i ts=none\n");
	/* string values: quote and backslash */
	assert_decodes_to("cpu str=\"foo\\,bar\"\n", "#1@0 <cpu> str=[foo\\,bar] ts=none\n");
	assert_decodes_to("cpu str=\"foo\\\\\",str2=\"bar\"\n",
			  "#1@0 <cpu> str=[foo\\] str2=[bar] ts=none\n");
	assert_decodes_to("cpu value=\"test\\\\\\\"\"\n", "#1@0 <cpu> value=[test\\\"] ts=none\n");
	assert_decodes_to("cpu value=\"test\\\"\"\n", "#1@0 <cpu> value=[test\"] ts=none\n");
	/* quotes outside the field set are plain bytes */
	assert_decodes_to("\"cpu\",\"host\"=\"serverA\" value=1.0\n",
			  "#1@0 <\"cpu\">,\"host\"=\"serverA\" value=1 ts=none\n");
}

static void test_value_types(void **state)
{
	(void)state;
	assert_decodes_to("m a=1,b=1.0,c=-1.5e3,d=.5,e=1.,g=2E-2,h=-0\n",
			  "#1@0 <m> a=1 b=1 c=-1500 d=0.5 e=1 g=0.02 h=-0 ts=none\n");
	assert_decodes_to("m a=1i,b=-9223372036854775808i,c=9223372036854775807i,"
			  "d=18446744073709551615u,e=0u\n",
			  "#1@0 <m> a=1i b=-9223372036854775808i c=9223372036854775807i "
			  "d=18446744073709551615u e=0u ts=none\n");
	assert_decodes_to("m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE\n",
			  "#1@0 <m> a=true b=true c=true d=true e=true f=false g=false "
			  "h=false i=false j=false ts=none\n");
	assert_decodes_to("m tiny=1e-400\n", "#1@0 <m> tiny=0 ts=none\n");
}

static void test_timestamps_and_precision(void **state)
{
	struct line_options options = ns_options;
	struct transcript t = {0};
	const char *text = "m f=1 -5\nm f=1 9223372036\nm f=1 9223372037\n";
	(void)state;

	assert_decodes_to("m f=1 -1\nm f=1   42  \n",
			  "#1@0 <m> f=1 ts=-1\n#2@9 <m> f=1 ts=42\n");
	options.precision = LINE_PRECISION_S;
	assert_int_equal(decode_in_steps(&options, text, strlen(text), 0, &t), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text,
			    "#1@0 <m> f=1 ts=-5000000000\n"
			    "#2@9 <m> f=1 ts=9223372036000000000\n"
			    "!timestamp line 3 at 26+6: timestamp '9223372037' (s) out of range "
			    "for int64 nanoseconds\n");
	transcript_free(&t);
	options.precision = LINE_PRECISION_MS;
	assert_int_equal(decode_in_steps(&options, "m f=1 1500\n", 11, 0, &t), 0);
	assert_non_null(strstr(t.text, "ts=1500000000\n"));
	transcript_free(&t);
	options.precision = LINE_PRECISION_US;
	assert_int_equal(decode_in_steps(&options, "m f=1 -7\n", 9, 0, &t), 0);
	assert_non_null(strstr(t.text, "ts=-7000\n"));
	transcript_free(&t);
}

/* Minutes and hours, as InfluxDB's v1 write API takes them. */
static void test_precision_minutes_hours(void **state)
{
	struct line_options options = ns_options;
	struct transcript t = {0};
	const char *hours = "m f=1 491452\nm f=1 -2\nm f=1 2562047\nm f=1 2562048\n";
	(void)state;

	options.precision = LINE_PRECISION_M;
	assert_int_equal(decode_in_steps(&options, "m f=1 29487120\n", 15, 0, &t), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text, "#1@0 <m> f=1 ts=1769227200000000000\n");
	transcript_free(&t);
	options.precision = LINE_PRECISION_H;
	assert_int_equal(decode_in_steps(&options, hours, strlen(hours), 0, &t), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text,
			    "#1@0 <m> f=1 ts=1769227200000000000\n"
			    "#2@13 <m> f=1 ts=-7200000000000\n"
			    "#3@22 <m> f=1 ts=9223369200000000000\n"
			    "!timestamp line 4 at 36+6: timestamp '2562048' (h) out of range "
			    "for int64 nanoseconds\n");
	transcript_free(&t);
	assert_string_equal(line_precision_name(LINE_PRECISION_NS), "ns");
	assert_string_equal(line_precision_name(LINE_PRECISION_M), "m");
	assert_string_equal(line_precision_name(LINE_PRECISION_H), "h");
	assert_string_equal(line_precision_name((enum line_precision)42), "unknown");
}

/*
 * A raw newline inside a quoted string value belongs to the string, as in
 * InfluxDB 1.x and 2.x (TestParsePointWithStringWithNewline): cutting the
 * line there once lost the point and decoded the rest of the string as a
 * line nobody sent. Quotes outside the field set's values do not open a
 * string (TestParsePointsUnbalancedQuotedTags).
 */
static void test_newline_in_string(void **state)
{
	(void)state;
	assert_decodes_to("m str=\"x\ntypes,dev=c34i f64=34\n\"\nn f=1\n",
			  "#1@0 <m> str=[x\ntypes,dev=c34i f64=34\n] ts=none\n"
			  "#2@33 <n> f=1 ts=none\n");
	assert_decodes_to("cpu,host=serverA value=1.0,str=\"foo\nbar\" 1000000000\n",
			  "#1@0 <cpu>,host=serverA value=1 str=[foo\nbar] ts=1000000000\n");
	assert_decodes_to("m a=\"1\n2\",b=t,c=\"3\\\"\n\\\\\",d=\"\" 5\r\nn f=1",
			  "#1@0 <m> a=[1\n2] b=true c=[3\"\n\\] d=[] ts=5\n"
			  "#2@33 <n> f=1 ts=none\n");
	assert_decodes_to("m s=\"a\r\nb\"\r\n", "#1@0 <m> s=[a\r\nb] ts=none\n");
	/* a quote in a tag, the measurement, a field key, an unquoted value or
	 * the timestamp is a plain byte: each newline here ends a line */
	assert_decodes_to("baz,mytag=\"a x=1 1441103862125\nbaz,mytag=a z=1 1441103862126\n",
			  "#1@0 <baz>,mytag=\"a x=1 ts=1441103862125\n"
			  "#2@31 <baz>,mytag=a z=1 ts=1441103862126\n");
	assert_decodes_to("\"m f=1\nm a\"b=1\nm,t=\\\" f=1\n",
			  "#1@0 <\"m> f=1 ts=none\n#2@7 <m> a\"b=1 ts=none\n"
			  "#3@15 <m>,t=\\\" f=1 ts=none\n");
	assert_decodes_to("m f=1\"\nm f=1 \"2\nn f=2\n",
			  "!value line 1 at 0+4: field 'f': invalid number '1\"'\n"
			  "!timestamp line 2 at 7+6: invalid timestamp '\"2'\n"
			  "#3@16 <n> f=2 ts=none\n");
	/* a backslash does not carry a line over its newline */
	assert_decodes_to("m,t=a\\\nn f=1\n", "!field line 1 at 0+6: no field set\n"
						 "#2@7 <n> f=1 ts=none\n");
	/* an escaped space does not end the key part, so the quote is a tag's */
	assert_decodes_to("m,t=a\\ \"b f=1\nn f=2\n", "#1@0 <m>,t=a \"b f=1 ts=none\n"
						      "#2@14 <n> f=2 ts=none\n");
	/* a string left open takes the rest of the input, up to max_line */
	assert_decodes_to("m f=\"open\nn f=1\n",
			  "!value line 1 at 0+4: field 'f': unterminated string\n");
	assert_decodes_to("ok f=1\nm f=\"abc\\\"\nn f=1",
			  "#1@0 <ok> f=1 ts=none\n"
			  "!value line 2 at 7+4: field 'f': unterminated string\n");
}

/* A line with a string longer than max_line is skipped up to its real end:
 * a newline inside the string, past the limit, must not end it, or the rest
 * of the string would be decoded as lines. */
static void test_too_long_string_is_skipped_whole(void **state)
{
	struct line_options options = {.max_line = 64, .precision = LINE_PRECISION_NS};
	char text[512];
	struct transcript t = {0};
	(void)state;

	snprintf(text, sizeof(text),
		 "a f=1\nlong s=\"%0100d\ninjected,dev=x f=1\n%050d\",g=2\nb f=2\n", 0, 0);
	for (size_t step = 0; step <= 70; step += 7) {
		assert_int_equal(decode_in_steps(&options, text, strlen(text), step, &t), 0);
		say(&t, "%s", "");
		assert_string_equal(t.text,
				    "#1@0 <a> f=1 ts=none\n"
				    "!too_long line 2 at 6+63: line longer than max_line (64 bytes "
				    "with its newline)\n"
				    "#3@190 <b> f=2 ts=none\n");
		transcript_free(&t);
	}
}

/* A datagram is split the same way: one point, one string. */
static void test_newline_in_string_datagram(void **state)
{
	struct transcript t = {0};
	struct line_decoder *decoder = new_decoder(&ns_options, &t);
	const char *datagram = "m s=\"x\ntypes,dev=c34i f64=34\n\"\nn f=1";
	(void)state;

	assert_int_equal(line_decode_datagram(decoder, datagram, strlen(datagram)), 0);
	assert_int_equal(line_decode_datagram(decoder, "o s=\"y\nz\"", 9), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text, "#1@0 <m> s=[x\ntypes,dev=c34i f64=34\n] ts=none\n"
				    "#2@31 <n> f=1 ts=none\n"
				    "#1@0 <o> s=[y\nz] ts=none\n");
	line_decoder_free(decoder);
	transcript_free(&t);
}

static void test_comments_blank_crlf(void **state)
{
	struct transcript t = {0};
	const char *text = "# a comment\n\n   \r\n  # indented comment\r\n"
			   "m f=1\r\n\tm2 f=2 7\r\n";
	struct line_decoder *decoder = new_decoder(&ns_options, &t);
	(void)state;

	assert_int_equal(line_decoder_feed(decoder, text, strlen(text)), 0);
	assert_int_equal(line_decoder_finish(decoder), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text, "#5@40 <m> f=1 ts=none\n#6@47 <m2> f=2 ts=7\n");
	assert_int_equal(line_decoder_stats(decoder)->comments, 2);
	assert_int_equal(line_decoder_stats(decoder)->blank, 2);
	assert_int_equal(line_decoder_stats(decoder)->lines, 6);
	assert_int_equal(line_decoder_stats(decoder)->points, 2);
	assert_int_equal(line_decoder_stats(decoder)->bytes, strlen(text));
	line_decoder_free(decoder);
	transcript_free(&t);
}

struct bad_case {
	const char *line;
	const char *expected; /* the transcript line for it, as line 2 at 6 */
};

/* Each line goes after "ok f=1\n" (6 bytes + newline) and before another
 * good line, which must still come through. */
static const struct bad_case bad_cases[] = {
	{"weather,station=15 temperature=21.3,wind=3.2.1 1",
	 "!value line 2 at 7+41: field 'wind': invalid number '3.2.1'"},
	{"m f=abc", "!value line 2 at 7+4: field 'f': invalid value 'abc'"},
	{"m f=inf", "!value line 2 at 7+4: field 'f': invalid value 'inf'"},
	{"m f=-nan", "!value line 2 at 7+4: field 'f': invalid number '-nan'"},
	{"m f=0x10", "!value line 2 at 7+4: field 'f': invalid number '0x10'"},
	{"m f=1e", "!value line 2 at 7+4: field 'f': invalid number '1e'"},
	{"m f=tru", "!value line 2 at 7+4: field 'f': invalid value 'tru'"},
	{"m f=1.5i", "!value line 2 at 7+4: field 'f': invalid integer '1.5i'"},
	{"m f=i", "!value line 2 at 7+4: field 'f': invalid value 'i'"},
	{"m f=9223372036854775808i",
	 "!value line 2 at 7+4: field 'f': integer '9223372036854775808i' out of range"},
	{"m f=-9223372036854775809i",
	 "!value line 2 at 7+4: field 'f': integer '-9223372036854775809i' out of range"},
	{"m f=-1u", "!value line 2 at 7+4: field 'f': invalid unsigned integer '-1u'"},
	{"m f=18446744073709551616u",
	 "!value line 2 at 7+4: field 'f': unsigned integer '18446744073709551616u' out of range"},
	{"m f=1e999", "!value line 2 at 7+4: field 'f': number '1e999' out of range"},
	{"m f=", "!value line 2 at 7+4: field 'f': missing value"},
	{"m f=,g=1", "!value line 2 at 7+4: field 'f': missing value"},
	{"m f=\"a\"b", "!value line 2 at 7+7: field 'f': unexpected text after the string"},
	{"m f", "!field line 2 at 7+3: field 'f': missing '='"},
	{"m f g=1", "!field line 2 at 7+3: field 'f': missing '='"},
	{"m =1", "!field line 2 at 7+2: empty field key"},
	{"m f=1,", "!field line 2 at 7+6: empty field key"},
	{"m", "!field line 2 at 7+1: no field set"},
	{"m   ", "!field line 2 at 7+4: no field set"},
	{"m,t=1", "!field line 2 at 7+5: no field set"},
	{",t=1 f=1", "!measurement line 2 at 7+0: empty measurement"},
	{"m,t f=1", "!tag line 2 at 7+3: tag 't': missing '='"},
	{"m,t,u=1 f=1", "!tag line 2 at 7+3: tag 't': missing '='"},
	{"m,=v f=1", "!tag line 2 at 7+2: empty tag key"},
	{"m,t= f=1", "!tag line 2 at 7+4: tag 't': empty value"},
	{"m,t=a=b f=1", "!tag line 2 at 7+5: tag 't': unescaped '=' in value"},
	{"m f=1 12a", "!timestamp line 2 at 7+6: invalid timestamp '12a'"},
	{"m f=1 1.5", "!timestamp line 2 at 7+6: invalid timestamp '1.5'"},
	{"m f=1 -", "!timestamp line 2 at 7+6: invalid timestamp '-'"},
	{"m f=1 1 2", "!timestamp line 2 at 7+8: unexpected text after the timestamp"},
	{"m f=1 99999999999999999999",
	 "!timestamp line 2 at 7+6: timestamp '99999999999999999999' (ns) out of range for "
	 "int64 nanoseconds"},
	{"m f=\"\xff\"", "!encoding line 2 at 7+5: invalid UTF-8 at byte 5 of the line (0xff)"},
	{"m f=\"\xc3\"", "!encoding line 2 at 7+5: invalid UTF-8 at byte 5 of the line (0xc3)"},
	{"m f=\"\xed\xa0\x80\"",
	 "!encoding line 2 at 7+5: invalid UTF-8 at byte 5 of the line (0xed)"},
	{"m f=\"\x01\"x", "!value line 2 at 7+7: field 'f': unexpected text after the string"},
	{"m \x01=1 bad", "!timestamp line 2 at 7+6: invalid timestamp 'bad'"},
	{"m \x01=\"x\"y", "!value line 2 at 7+7: field '\\x01': unexpected text after the string"},
};

static void test_every_bad_line_class(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char text[256], expected[512];
		char *got;

		snprintf(text, sizeof(text), "ok f=1\n%s\nnext f=2\n", bad_cases[i].line);
		snprintf(expected, sizeof(expected),
			 "#1@0 <ok> f=1 ts=none\n%s\n#3@%zu <next> f=2 ts=none\n",
			 bad_cases[i].expected, 8 + strlen(bad_cases[i].line));
		got = decode_text(&ns_options, text);
		assert_string_equal(got, expected);
		free(got);
	}
}

/* A NUL cannot go through the string helpers above. */
static void test_nul_byte(void **state)
{
	static const char text[] = "m f=\"a\0b\"\nm f=1\n";
	struct transcript t = {0};
	(void)state;

	assert_int_equal(decode_in_steps(&ns_options, text, sizeof(text) - 1, 0, &t), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text, "!encoding line 1 at 0+6: NUL byte at byte 6 of the line\n"
				    "#2@10 <m> f=1 ts=none\n");
	transcript_free(&t);
}

static const char mixed_stream[] =
	"# header comment\r\n"
	"weather,station=15 temperature=21.3,wind=3.2 1375204299000000000\n"
	"weather,station=16 temperature=19.0,wind=3.2.1 1375204299000000000\n"
	"\n"
	"status,station=15 ok=true,msg=\"all \\\"good\\\"\",n=3i,u=7u\r\n"
	"bad line without fields\n"
	"m,a\\ b=c\\,d f\\=g=-1.5e-3 -17\n"
	"this line is far too long for the decoder because max_line is small "
	"in this test, so it is skipped up to its newline and reported once "
	"whatever the split of the input may be\n"
	"note,at=C:\\Temp\\\\ x text=\"one \\\"\n\\\\\",more=\"\n\n\" 5\n"
	"q,t=\"a x=1\n"
	"long s=\"a string with a newline\npast max_line, which is small in this test, "
	"so that the line is skipped\nup to its end\",x=1\n"
	"m f=\"unterminated\n"
	"last f=1 1";

static void test_every_split_decodes_identically(void **state)
{
	struct line_options options = {.max_line = 100, .precision = LINE_PRECISION_NS};
	size_t len = strlen(mixed_stream);
	struct transcript whole = {0};
	(void)state;

	assert_int_equal(decode_in_steps(&options, mixed_stream, len, 0, &whole), 0);
	say(&whole, "%s", "");
	assert_int_equal(whole.points, 5);
	assert_int_equal(whole.bad, 5);
	assert_non_null(strstr(whole.text, "<note>,at=C:\\Temp\\ x text=[one \"\n\\] "
					   "more=[\n\n] ts=5\n"));
	assert_non_null(strstr(whole.text, "<q>,t=\"a x=1 ts=none\n"));
	assert_null(strstr(whole.text, "<last>"));
	for (size_t cut = 0; cut <= len; cut++) {
		struct transcript split = {0};
		struct line_decoder *decoder = new_decoder(&options, &split);
		assert_int_equal(line_decoder_feed(decoder, mixed_stream, cut), 0);
		assert_int_equal(line_decoder_feed(decoder, mixed_stream + cut, len - cut), 0);
		assert_int_equal(line_decoder_finish(decoder), 0);
		line_decoder_free(decoder);
		say(&split, "%s", "");
		assert_string_equal(split.text, whole.text);
		transcript_free(&split);
	}
	for (size_t step = 1; step <= 40; step++) {
		struct transcript split = {0};
		assert_int_equal(decode_in_steps(&options, mixed_stream, len, step, &split), 0);
		say(&split, "%s", "");
		assert_string_equal(split.text, whole.text);
		transcript_free(&split);
	}
	transcript_free(&whole);
}

/* 10 MB without a newline: reported once, never buffered, then the next
 * line decodes with the right number and offset. */
static void test_ten_megabyte_line_stays_bounded(void **state)
{
	struct line_options options = {.max_line = 65536, .precision = LINE_PRECISION_NS};
	struct transcript t = {0};
	struct line_decoder *decoder = new_decoder(&options, &t);
	const size_t total = 10u << 20, chunk = 65536;
	char *junk = malloc(chunk);
	(void)state;

	memset(junk, 'x', chunk);
	assert_int_equal(line_decoder_feed(decoder, "a f=1\n", 6), 0);
	for (size_t sent = 0; sent < total; sent += chunk) {
		assert_int_equal(line_decoder_feed(decoder, junk, chunk), 0);
		assert_true(line_decoder_buffer_capacity(decoder) <= options.max_line);
	}
	assert_int_equal(line_decoder_feed(decoder, "\nb f=2\n", 7), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text,
			    "#1@0 <a> f=1 ts=none\n"
			    "!too_long line 2 at 6+65535: line longer than max_line (65536 bytes "
			    "with its newline)\n"
			    "#3@10485767 <b> f=2 ts=none\n");
	assert_int_equal(line_decoder_stats(decoder)->too_long, 1);
	assert_true(line_decoder_buffer_capacity(decoder) <= options.max_line);
	line_decoder_free(decoder);
	free(junk);
	transcript_free(&t);
}

/* max_line counts the newline, and a "\r" before it: 9 bytes + "\n" fit in
 * 10, 10 bytes do not. */
static void test_max_line_boundary(void **state)
{
	struct line_options options = {.max_line = 10, .precision = LINE_PRECISION_NS};
	struct transcript t = {0};
	const char *text = "m f=12345\nm f=123456\nm f=1234\r\n";
	(void)state;

	for (size_t step = 0; step <= 11; step++) {
		assert_int_equal(decode_in_steps(&options, text, strlen(text), step, &t), 0);
		say(&t, "%s", "");
		assert_string_equal(t.text,
				    "#1@0 <m> f=12345 ts=none\n"
				    "!too_long line 2 at 10+9: line longer than max_line (10 bytes "
				    "with its newline)\n"
				    "#3@21 <m> f=1234 ts=none\n");
		transcript_free(&t);
	}
}

static void test_no_growth_in_steady_state(void **state)
{
	struct transcript t = {0};
	struct line_decoder *decoder = new_decoder(&ns_options, &t);
	const char *line = "weather,station=15,site=roof temperature=21.3,wind=3.2,ok=t 1\n";
	size_t capacity;
	(void)state;

	assert_int_equal(line_decoder_feed(decoder, line, strlen(line)), 0);
	capacity = line_decoder_buffer_capacity(decoder);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(line_decoder_feed(decoder, line, strlen(line)), 0);
	assert_int_equal(line_decoder_buffer_capacity(decoder), capacity);
	assert_int_equal(t.points, 1001);
	line_decoder_free(decoder);
	transcript_free(&t);
}

/* Arrays grow past their first size and keep every entry in order. */
static void test_many_tags_and_fields(void **state)
{
	struct line_options options = {.max_line = 8192, .precision = LINE_PRECISION_NS};
	char text[8192], expected[8192];
	size_t len = 0, elen = 0;
	struct transcript t = {0};
	(void)state;

	len += (size_t)snprintf(text + len, sizeof(text) - len, "m");
	elen += (size_t)snprintf(expected + elen, sizeof(expected) - elen, "#1@0 <m>");
	for (int i = 0; i < 100; i++) {
		len += (size_t)snprintf(text + len, sizeof(text) - len, ",t%d=v%d", i, i);
		elen += (size_t)snprintf(expected + elen, sizeof(expected) - elen, ",t%d=v%d", i, i);
	}
	for (int i = 0; i < 100; i++) {
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%cf%d=%di", i ? ',' : ' ',
					i, i);
		elen += (size_t)snprintf(expected + elen, sizeof(expected) - elen, " f%d=%di", i, i);
	}
	snprintf(text + len, sizeof(text) - len, "\n");
	snprintf(expected + elen, sizeof(expected) - elen, " ts=none\n");
	assert_int_equal(decode_in_steps(&options, text, strlen(text), 7, &t), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text, expected);
	transcript_free(&t);
}

static void test_callback_stops_decoding(void **state)
{
	struct transcript t = {.stop_at_point = 2};
	struct line_decoder *decoder = new_decoder(&ns_options, &t);
	const char *text = "a f=1\nb f=2\nc f=3\n";
	(void)state;

	assert_int_equal(line_decoder_feed(decoder, text, strlen(text)), -ECANCELED);
	assert_int_equal(line_decoder_feed(decoder, text, strlen(text)), -ECANCELED);
	assert_int_equal(line_decoder_finish(decoder), -ECANCELED);
	assert_int_equal(t.points, 2);
	line_decoder_free(decoder);
	transcript_free(&t);
}

static void test_datagrams(void **state)
{
	struct transcript t = {0};
	struct line_decoder *decoder = new_decoder(&ns_options, &t);
	const char *first = "a f=1\nb f=\nc f=3";
	const char *second = "d f=4\n";
	(void)state;

	assert_int_equal(line_decode_datagram(decoder, first, strlen(first)), 0);
	assert_int_equal(line_decode_datagram(decoder, "e f=\"open", 9), 0);
	assert_int_equal(line_decode_datagram(decoder, second, strlen(second)), 0);
	say(&t, "%s", "");
	assert_string_equal(t.text, "#1@0 <a> f=1 ts=none\n"
				    "!value line 2 at 6+4: field 'f': missing value\n"
				    "#3@11 <c> f=3 ts=none\n"
				    "!value line 1 at 0+4: field 'f': unterminated string\n"
				    "#1@0 <d> f=4 ts=none\n");
	line_decoder_free(decoder);
	transcript_free(&t);
}

static void test_event_field_set(void **state)
{
	struct transcript t = {0};
	struct line_decoder *decoder = new_decoder(&ns_options, &t);
	const char *payload = "mass=3.8e-17,velocity=9646.3,experiment_name=\"Run3\"";
	struct line_point point;
	struct line_error err;
	(void)state;

	assert_int_equal(line_parse_field_set(decoder, payload, strlen(payload), &point, &err), 0);
	assert_int_equal(point.nfields, 3);
	assert_string_equal(point.fields[0].key, "mass");
	assert_true(point.fields[0].value.f == 3.8e-17);
	assert_string_equal(point.fields[2].string, "Run3");
	assert_int_equal(line_parse_field_set(decoder, "a=1 b=2", 7, &point, &err), -EINVAL);
	assert_int_equal(err.kind, LINE_ERR_FIELD);
	assert_int_equal(err.offset, 4);
	assert_int_equal(line_parse_field_set(decoder, "a=1,b=x", 7, &point, &err), -EINVAL);
	assert_string_equal(err.reason, "field 'b': invalid value 'x'");
	assert_int_equal(line_parse_field_set(decoder, "", 0, &point, &err), -EINVAL);
	assert_string_equal(err.reason, "empty field key");
	assert_int_equal(line_parse_field_set(decoder, payload, 2000, &point, &err), -EINVAL);
	assert_int_equal(err.kind, LINE_ERR_TOO_LONG);
	line_decoder_free(decoder);
	transcript_free(&t);
}

static void test_error_kind_names(void **state)
{
	(void)state;
	assert_string_equal(line_error_kind_name(LINE_ERR_TOO_LONG), "too_long");
	assert_string_equal(line_error_kind_name(LINE_ERR_NOMEM), "nomem");
	assert_string_equal(line_error_kind_name((enum line_error_kind)42), "unknown");
}

/* Random bytes drawn mostly from the protocol's own alphabet, so that deep
 * paths are reached: never a crash, and splitting never changes anything. */
static void test_random_input(void **state)
{
	static const char alphabet[] = "ab=, \"\\\n\r#it0123456789.-eu\xc3\xa9\xff";
	struct line_options options = {.max_line = 64, .precision = LINE_PRECISION_MS};
	char text[600];
	(void)state;

	srand(777);
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)rand() % sizeof(text);
		struct transcript whole = {0}, split = {0};
		for (size_t i = 0; i < len; i++)
			text[i] = alphabet[(size_t)rand() % (sizeof(alphabet) - 1)];
		decode_in_steps(&options, text, len, 0, &whole);
		decode_in_steps(&options, text, len, 1 + (size_t)rand() % 17, &split);
		say(&whole, "%s", "");
		say(&split, "%s", "");
		assert_string_equal(whole.text, split.text);
		transcript_free(&whole);
		transcript_free(&split);
	}
}

struct kept {
	char text[LINE_TEXT_MAX + 1];
	char point_text[64];
	size_t points, bad;
	bool cut;
	uint64_t line_number;
};

static int kept_point(void *user, const struct line_point *point)
{
	struct kept *s = user;
	s->points++;
	s->line_number = point->line_number;
	snprintf(s->point_text, sizeof(s->point_text), "%.*s", (int)point->text_len, point->text);
	return 0;
}

static void kept_bad(void *user, const struct line_error *err)
{
	struct kept *s = user;
	s->bad++;
	s->cut = err->text_cut;
	memcpy(s->text, err->text ? err->text : "", err->text ? err->text_len : 0);
	s->text[err->text ? err->text_len : 0] = '\0';
}

static void test_line_text_and_reset(void **state)
{
	(void)state;
	struct kept s = {0};
	const struct line_options options = {.max_line = 64 * 1024, .keep_text = true};
	struct line_decoder *d = line_decoder_new(&options, kept_point, kept_bad, &s);
	assert_non_null(d);
	/* the text is the line as sent, before unescaping */
	const char *body = "m,t=a\\ b v=1\nm v=\"x\\\"y\n";
	assert_int_equal(line_decoder_feed(d, body, strlen(body)), 0);
	assert_int_equal(s.points, 1);
	assert_string_equal(s.point_text, "m,t=a\\ b v=1");
	assert_int_equal(s.bad, 0); /* the quoted string is still open */
	/* a new body: the open line is forgotten, numbering restarts */
	line_decoder_reset(d);
	const char *next = "m v=2\nm v=\n";
	assert_int_equal(line_decoder_feed(d, next, strlen(next)), 0);
	assert_int_equal(line_decoder_finish(d), 0);
	assert_int_equal(s.points, 2);
	assert_int_equal(s.line_number, 1);
	assert_int_equal(s.bad, 1);
	assert_string_equal(s.text, "m v=");
	/* a long bad line is kept cut */
	char *longline = malloc(LINE_TEXT_MAX + 100);
	assert_non_null(longline);
	memset(longline, 'a', LINE_TEXT_MAX + 98);
	longline[LINE_TEXT_MAX + 98] = '\n';
	line_decoder_reset(d);
	assert_int_equal(line_decoder_feed(d, longline, LINE_TEXT_MAX + 99), 0);
	assert_int_equal(s.bad, 2);
	assert_true(s.cut);
	assert_int_equal(strlen(s.text), LINE_TEXT_MAX);
	free(longline);
	line_decoder_free(d);

	/* without keep_text, nothing is copied */
	struct kept plain = {0};
	const struct line_options no_text = {.max_line = 1024};
	d = line_decoder_new(&no_text, kept_point, kept_bad, &plain);
	assert_non_null(d);
	assert_int_equal(line_decode_datagram(d, "m v=\n", 5), 0);
	assert_int_equal(plain.bad, 1);
	assert_string_equal(plain.text, "");
	line_decoder_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weather_line),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_backslash_as_influxdb),
		cmocka_unit_test(test_value_types),
		cmocka_unit_test(test_timestamps_and_precision),
		cmocka_unit_test(test_precision_minutes_hours),
		cmocka_unit_test(test_newline_in_string),
		cmocka_unit_test(test_too_long_string_is_skipped_whole),
		cmocka_unit_test(test_newline_in_string_datagram),
		cmocka_unit_test(test_comments_blank_crlf),
		cmocka_unit_test(test_every_bad_line_class),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_every_split_decodes_identically),
		cmocka_unit_test(test_ten_megabyte_line_stays_bounded),
		cmocka_unit_test(test_max_line_boundary),
		cmocka_unit_test(test_no_growth_in_steady_state),
		cmocka_unit_test(test_many_tags_and_fields),
		cmocka_unit_test(test_callback_stops_decoding),
		cmocka_unit_test(test_datagrams),
		cmocka_unit_test(test_event_field_set),
		cmocka_unit_test(test_error_kind_names),
		cmocka_unit_test(test_random_input),
		cmocka_unit_test(test_line_text_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
