/*
 * fuzz_line.c - libFuzzer target for the line protocol decoder (src/proto/line.c).
 *
 * Input: two control bytes, then text. Byte 0 picks max_line and the
 * timestamp precision; byte 1 seeds the split pattern. The text is decoded in
 * one feed and in pseudo-random slices, as a datagram, and as an EVENT field
 * set. Beyond "no crash, no leak, no UB", the oracles are: both stream
 * decodes report the same points and bad lines (hash of everything
 * reported), every string handed out is NUL-terminated at its stated length,
 * and the line buffer never exceeds max_line.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I src/proto
 *        tests/fuzz/fuzz_line.c src/proto/line.c src/proto/utf8.c -lm -o fuzz_line
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "line.h"

struct run {
	uint64_t hash;
	size_t points, bad;
};

static void check(int condition)
{
	if (!condition)
		abort();
}

static void mix(uint64_t *hash, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++)
		*hash = (*hash ^ p[i]) * 0x100000001B3ull;
}

static void mix_u64(uint64_t *hash, uint64_t value)
{
	mix(hash, &value, sizeof(value));
}

static void mix_string(uint64_t *hash, const char *text, size_t len)
{
	check(text != NULL && strlen(text) == len);
	mix(hash, text, len + 1);
}

static void mix_field(uint64_t *hash, const struct line_field *field)
{
	mix_string(hash, field->key, field->key_len);
	mix_u64(hash, (uint64_t)field->type);
	if (field->type == LINE_VALUE_STRING)
		mix_string(hash, field->string, field->string_len);
	else if (field->type == LINE_VALUE_BOOL)
		mix_u64(hash, field->value.b);
	else
		mix(hash, &field->value, sizeof(field->value.u));
}

static void mix_point(uint64_t *hash, const struct line_point *point)
{
	mix_u64(hash, point->line_number);
	mix_u64(hash, point->offset);
	for (size_t i = 0; i < point->ntags; i++) {
		mix_string(hash, point->tags[i].key, point->tags[i].key_len);
		mix_string(hash, point->tags[i].value, point->tags[i].value_len);
	}
	for (size_t i = 0; i < point->nfields; i++)
		mix_field(hash, &point->fields[i]);
	mix_u64(hash, point->has_timestamp ? (uint64_t)point->timestamp_ns : 0x5A5A);
}

static int on_point(void *user, const struct line_point *point)
{
	struct run *run = user;

	mix_string(&run->hash, point->measurement, point->measurement_len);
	check(point->measurement_len > 0 && point->nfields > 0);
	mix_point(&run->hash, point);
	run->points++;
	return 0;
}

static void on_bad_line(void *user, const struct line_error *err)
{
	struct run *run = user;

	check(err->offset >= err->line_offset);
	mix_u64(&run->hash, (uint64_t)err->kind);
	mix_u64(&run->hash, err->line_number);
	mix_u64(&run->hash, err->line_offset);
	mix_u64(&run->hash, err->offset);
	mix(&run->hash, err->reason, strlen(err->reason));
	run->bad++;
}

static void decode_stream(const struct line_options *options, const uint8_t *data, size_t len,
			  unsigned split_seed, struct run *run)
{
	struct line_decoder *decoder = line_decoder_new(options, on_point, on_bad_line, run);

	check(decoder != NULL);
	for (size_t at = 0; at < len;) {
		size_t n = split_seed ? 1 + (at * 131 + split_seed) % (split_seed + 1) : len;
		if (n > len - at)
			n = len - at;
		check(line_decoder_feed(decoder, data + at, n) == 0);
		check(line_decoder_buffer_capacity(decoder) <= options->max_line);
		at += n;
	}
	check(line_decoder_finish(decoder) == 0);
	check(line_decoder_stats(decoder)->points == run->points);
	check(line_decoder_stats(decoder)->bad_lines == run->bad);
	line_decoder_free(decoder);
}

static void decode_other_ways(const struct line_options *options, const uint8_t *data,
			      size_t len)
{
	struct run run = {0};
	struct line_decoder *decoder = line_decoder_new(options, on_point, on_bad_line, &run);
	struct line_point point;
	struct line_error err;

	check(decoder != NULL);
	check(line_decode_datagram(decoder, data, len) == 0);
	if (line_parse_field_set(decoder, data, len, &point, &err) == 0) {
		check(point.nfields > 0);
		for (size_t i = 0; i < point.nfields; i++)
			mix_field(&run.hash, &point.fields[i]);
	}
	check(line_decoder_buffer_capacity(decoder) <= options->max_line);
	line_decoder_free(decoder);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t max_lines[] = {1, 16, 256, 65536};
	struct line_options options = {0};
	struct run whole = {0}, sliced = {0};

	if (size < 2)
		return 0;
	options.max_line = max_lines[data[0] & 3u];
	options.precision = (enum line_precision)((data[0] >> 2) % (LINE_PRECISION_H + 1));
	options.keep_text = data[0] & 0x80u; /* the copy for HTTP's error reports */
	decode_stream(&options, data + 2, size - 2, 0, &whole);
	decode_stream(&options, data + 2, size - 2, data[1] | 1u, &sliced);
	check(whole.hash == sliced.hash);
	check(whole.points == sliced.points && whole.bad == sliced.bad);
	decode_other_ways(&options, data + 2, size - 2);
	return 0;
}
