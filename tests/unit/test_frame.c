/*
 * test_frame.c - the frame protocol codec: encode/decode round trips, the
 * same frames and errors for every way of splitting the input, every error
 * class with its reason and stream offset, seq gap accounting, bounded
 * buffering, datagrams, and garbage that must never crash. The split tests
 * also run with the payloads of cut DATA frames placed in buffers of the
 * caller's (frame_decoder_set_payload_fn), which must change nothing but
 * where those payloads are.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"
#include "frame.h"
#include "pipeline.h"

#define MAX_SEEN 64
#define PLACE_GUARD 16

struct seen_frame {
	struct frame frame;     /* key and payload pointers are not kept */
	char key[FRAME_MAX_KEY + 1];
	uint32_t payload_crc;
};

struct seen {
	size_t count;
	struct seen_frame frames[MAX_SEEN];
	const uint8_t *input;   /* the slice being fed, for the zero-copy check */
	size_t input_len;
	size_t in_place;        /* payloads that pointed into the input */
	int stop_at;            /* return -ECANCELED on this frame number (1-based) */
	bool place;             /* give cut DATA payloads a buffer of ours */
	uint8_t *place_buf;     /* the last one given, PLACE_GUARD bytes longer */
	size_t place_len;
	size_t place_calls;
	size_t placed;          /* payloads delivered in place_buf */
};

/* Set for the decoders that decode_in_steps() and decode_split_at() make. */
static bool place_payloads;

static void *place_payload(void *user, const struct frame *frame)
{
	struct seen *seen = user;

	if (!seen->place || frame->type != FRAME_DATA)
		return NULL;
	assert_null(frame->payload);
	assert_true(frame->payload_len > 0);
	assert_int_equal(strlen(frame->key), frame->key_len);
	free(seen->place_buf);
	seen->place_len = frame->payload_len;
	seen->place_buf = malloc(frame->payload_len + PLACE_GUARD);
	assert_non_null(seen->place_buf);
	memset(seen->place_buf, 0xA5, frame->payload_len + PLACE_GUARD);
	seen->place_calls++;
	return seen->place_buf;
}

static void set_placement(struct frame_decoder *decoder, struct seen *seen)
{
	seen->place = place_payloads;
	frame_decoder_set_payload_fn(decoder, place_payload);
}

static void free_placement(struct seen *seen)
{
	free(seen->place_buf);
	seen->place_buf = NULL;
}

static int record_frame(void *user, const struct frame *frame)
{
	struct seen *seen = user;
	struct seen_frame *out;
	const uint8_t *payload = frame->payload;

	assert_true(seen->count < MAX_SEEN);
	out = &seen->frames[seen->count++];
	out->frame = *frame;
	out->frame.key = NULL;
	out->frame.payload = NULL;
	assert_int_equal(strlen(frame->key), frame->key_len);
	memcpy(out->key, frame->key, frame->key_len + 1);
	out->payload_crc = crc32c(frame->payload, frame->payload_len);
	if (frame->payload_len && payload >= seen->input &&
	    payload + frame->payload_len <= seen->input + seen->input_len)
		seen->in_place++;
	if (seen->place_buf && payload == seen->place_buf) {
		/* the payload and nothing else was written there */
		assert_int_equal(frame->payload_len, seen->place_len);
		for (size_t i = 0; i < PLACE_GUARD; i++)
			assert_int_equal(seen->place_buf[frame->payload_len + i], 0xA5);
		seen->placed++;
	}
	if (seen->stop_at && (int)seen->count == seen->stop_at)
		return -ECANCELED;
	return 0;
}

static const struct frame_options sender_options = {
	.max_frame = 1 << 20,
	.peer = FRAME_FROM_SENDER,
};

/* Append an encoded frame to buf at *len. */
static void append_frame(uint8_t *buf, size_t cap, size_t *len, enum frame_type type,
			 enum dtype dtype, unsigned flags, uint64_t seq, uint64_t event_id,
			 const char *key, const void *payload, size_t payload_len)
{
	struct frame frame = {
		.type = type,
		.dtype = dtype,
		.flags = (uint8_t)flags,
		.seq = seq,
		.t0 = 1700000000000000000 + (int64_t)seq,
		.event_id = event_id,
		.key = key,
		.key_len = strlen(key),
		.payload = payload,
		.payload_len = payload_len,
	};
	size_t written = 0;

	assert_int_equal(frame_encode(&frame, buf + *len, cap - *len, &written), 0);
	*len += written;
}

/* A stream with one frame of every kind the recorder accepts. */
static size_t build_mixed_stream(uint8_t *buf, size_t cap)
{
	float samples[100];
	int16_t counts[7] = {1, -2, 3, -4, 5, -6, 7};
	const char *fields = "mass=3.8e-17,velocity=9646.3,run=\"Run3\"";
	size_t len = 0;

	for (int i = 0; i < 100; i++)
		samples[i] = (float)i * 0.5f;
	append_frame(buf, cap, &len, FRAME_HELLO, DTYPE_NONE, 0, 1, 0, "digitizer-1",
		     "token=\"abc\"", 11);
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_FLOAT32, FRAME_FLAG_CRC, 2, 7,
		     "dust/first_detector", samples, sizeof(samples));
	append_frame(buf, cap, &len, FRAME_EVENT, DTYPE_NONE, FRAME_FLAG_CRC |
		     FRAME_FLAG_ACK_REQUESTED, 3, 7, "dust", fields, strlen(fields));
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_INT16, 0, 4, 0, "board/ch0", counts,
		     sizeof(counts));
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_FLOAT64, FRAME_FLAG_CRC, 5, 0,
		     "empty", NULL, 0);
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_UINT8, 0, 6, 0, "grüße/µ", "xyz", 3);
	return len;
}

struct outcome {
	struct seen seen;
	int rc;
	struct frame_error err;
};

/* Feed buf in pieces of `step` bytes (0: all at once), then finish. */
static void decode_in_steps(const uint8_t *buf, size_t len, size_t step,
			    const struct frame_options *options, struct outcome *out)
{
	struct frame_decoder *decoder;

	memset(out, 0, sizeof(*out));
	decoder = frame_decoder_new(options, record_frame, &out->seen);
	assert_non_null(decoder);
	set_placement(decoder, &out->seen);
	for (size_t at = 0; at < len && out->rc == 0;) {
		size_t n = step == 0 || len - at < step ? len - at : step;
		out->seen.input = buf + at;
		out->seen.input_len = n;
		out->rc = frame_decoder_feed(decoder, buf + at, n, &out->err);
		at += n;
	}
	if (out->rc == 0)
		out->rc = frame_decoder_finish(decoder, &out->err);
	frame_decoder_free(decoder);
	free_placement(&out->seen);
}

/* Feed buf cut at one position. */
static void decode_split_at(const uint8_t *buf, size_t len, size_t cut,
			    const struct frame_options *options, struct outcome *out)
{
	struct frame_decoder *decoder;

	memset(out, 0, sizeof(*out));
	decoder = frame_decoder_new(options, record_frame, &out->seen);
	assert_non_null(decoder);
	set_placement(decoder, &out->seen);
	out->rc = frame_decoder_feed(decoder, buf, cut, &out->err);
	if (out->rc == 0)
		out->rc = frame_decoder_feed(decoder, buf + cut, len - cut, &out->err);
	if (out->rc == 0)
		out->rc = frame_decoder_finish(decoder, &out->err);
	frame_decoder_free(decoder);
	free_placement(&out->seen);
}

static void assert_same_outcome(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->rc, b->rc);
	assert_int_equal(a->seen.count, b->seen.count);
	for (size_t i = 0; i < a->seen.count; i++) {
		const struct seen_frame *x = &a->seen.frames[i], *y = &b->seen.frames[i];
		assert_int_equal(x->frame.type, y->frame.type);
		assert_int_equal(x->frame.dtype, y->frame.dtype);
		assert_int_equal(x->frame.flags, y->frame.flags);
		assert_int_equal(x->frame.seq, y->frame.seq);
		assert_int_equal(x->frame.t0, y->frame.t0);
		assert_int_equal(x->frame.event_id, y->frame.event_id);
		assert_int_equal(x->frame.key_len, y->frame.key_len);
		assert_int_equal(x->frame.payload_len, y->frame.payload_len);
		assert_int_equal(x->frame.offset, y->frame.offset);
		assert_int_equal(x->frame.lost_before, y->frame.lost_before);
		assert_string_equal(x->key, y->key);
		assert_int_equal(x->payload_crc, y->payload_crc);
	}
	if (a->rc) {
		assert_int_equal(a->err.kind, b->err.kind);
		assert_int_equal(a->err.offset, b->err.offset);
		assert_int_equal(a->err.frame_offset, b->err.frame_offset);
		assert_string_equal(a->err.reason, b->err.reason);
	}
}

static void test_round_trip_in_place(void **state)
{
	uint8_t buf[4096];
	size_t len = build_mixed_stream(buf, sizeof(buf));
	struct outcome out;
	(void)state;

	decode_in_steps(buf, len, 0, &sender_options, &out);
	assert_int_equal(out.rc, 0);
	assert_int_equal(out.seen.count, 6);
	assert_int_equal(out.seen.frames[0].frame.type, FRAME_HELLO);
	assert_string_equal(out.seen.frames[0].key, "digitizer-1");
	assert_int_equal(out.seen.frames[1].frame.dtype, DTYPE_FLOAT32);
	assert_int_equal(out.seen.frames[1].frame.payload_len, 400);
	assert_int_equal(out.seen.frames[1].frame.event_id, 7);
	assert_int_equal(out.seen.frames[1].frame.t0, 1700000000000000002);
	assert_int_equal(out.seen.frames[2].frame.flags, 3);
	assert_string_equal(out.seen.frames[5].key, "grüße/µ");
	assert_int_equal(out.seen.frames[0].frame.offset, 0);
	assert_int_equal(out.seen.frames[1].frame.offset, 40 + 11 + 11);
	/* Every non-empty payload was handed out in place, none copied. */
	assert_int_equal(out.seen.in_place, 5);
}

static void test_every_split_decodes_identically(void **state)
{
	uint8_t buf[4096];
	size_t len = build_mixed_stream(buf, sizeof(buf));
	struct outcome whole, split;
	(void)state;

	decode_in_steps(buf, len, 0, &sender_options, &whole);
	for (int place = 0; place <= 1; place++) {
		place_payloads = place;
		for (size_t cut = 0; cut <= len; cut++) {
			decode_split_at(buf, len, cut, &sender_options, &split);
			assert_same_outcome(&whole, &split);
		}
		for (size_t step = 1; step <= 67; step++) {
			decode_in_steps(buf, len, step, &sender_options, &split);
			assert_same_outcome(&whole, &split);
		}
	}
	place_payloads = false;
}

/* Cut DATA payloads go where the payload function says, once per frame;
 * other frames, and frames whole in one slice, never ask. */
static void test_payloads_placed_when_cut(void **state)
{
	uint8_t buf[4096];
	size_t len = build_mixed_stream(buf, sizeof(buf));
	struct outcome out;
	(void)state;

	place_payloads = true;
	decode_in_steps(buf, len, 0, &sender_options, &out);
	assert_int_equal(out.rc, 0);
	assert_int_equal(out.seen.place_calls, 0);
	/* one byte at a time: the three non-empty DATA payloads are placed */
	decode_in_steps(buf, len, 1, &sender_options, &out);
	assert_int_equal(out.rc, 0);
	assert_int_equal(out.seen.count, 6);
	assert_int_equal(out.seen.place_calls, 3);
	assert_int_equal(out.seen.placed, 3);
	place_payloads = false;
}

/* One error case: a valid frame after a valid 62-byte HELLO, mutated. */
struct error_case {
	const char *name;
	void (*mutate)(uint8_t *frame, size_t *len);
	enum frame_error_kind kind;
	uint64_t offset_in_frame;
	const char *reason;
};

static void set_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void set_u32(uint8_t *p, uint32_t v)
{
	set_u16(p, (uint16_t)v);
	set_u16(p + 2, (uint16_t)(v >> 16));
}

static void bad_magic(uint8_t *f, size_t *len) { (void)len; f[2] = 'X'; }
static void bad_version(uint8_t *f, size_t *len) { (void)len; f[4] = 2; }
static void unknown_type(uint8_t *f, size_t *len) { (void)len; f[5] = 7; }
static void ack_from_sender(uint8_t *f, size_t *len) { (void)len; f[5] = FRAME_ACK; f[6] = 0; }
static void dtype_too_big(uint8_t *f, size_t *len) { (void)len; f[6] = 11; }
static void data_without_dtype(uint8_t *f, size_t *len) { (void)len; f[6] = 0; }
static void event_with_dtype(uint8_t *f, size_t *len) { (void)len; f[5] = FRAME_EVENT; }
static void reserved_flag(uint8_t *f, size_t *len) { (void)len; f[7] |= 0x88; }
static void error_from_sender(uint8_t *f, size_t *len) { (void)len; f[5] = FRAME_ERROR; f[6] = 0; }
static void chunks_on_event(uint8_t *f, size_t *len)
{
	(void)len;
	f[5] = FRAME_EVENT;
	f[6] = 0;
	f[7] |= FRAME_FLAG_CHUNKS;
}
/* The chunks flag on the float samples 1, 2, 3, 4 (CRC made right): the
 * chunk count is the bytes of 2.0f. */
static void chunks_on_samples(uint8_t *f, size_t *len)
{
	(void)len;
	f[7] |= FRAME_FLAG_CHUNKS;
	set_u32(f + 64, frame_crc(f, f + 40, 8, f + 48, 16));
}
static void key_too_long(uint8_t *f, size_t *len) { (void)len; set_u16(f + 8, 1025); }
static void empty_key(uint8_t *f, size_t *len) { (void)len; set_u16(f + 8, 0); }
static void reserved_field(uint8_t *f, size_t *len) { (void)len; f[11] = 1; }
static void payload_too_big(uint8_t *f, size_t *len) { (void)len; set_u32(f + 12, (1 << 20) + 4); }
static void partial_sample(uint8_t *f, size_t *len) { (void)len; set_u32(f + 12, 6); }
static void event_id_zero(uint8_t *f, size_t *len)
{
	(void)len;
	f[5] = FRAME_EVENT;
	f[6] = 0;
	memset(f + 32, 0, 8);
}
static void key_with_nul(uint8_t *f, size_t *len) { (void)len; f[40 + 3] = 0; }
static void key_overlong_utf8(uint8_t *f, size_t *len) { (void)len; f[40 + 2] = 0xC0; f[40 + 3] = 0x80; }
static void key_surrogate(uint8_t *f, size_t *len)
{
	(void)len;
	f[40 + 1] = 0xED;
	f[40 + 2] = 0xA0;
	f[40 + 3] = 0x80;
}
static void key_cut_sequence(uint8_t *f, size_t *len) { (void)len; f[40 + 6] = 0xE2; }
static void crc_flipped(uint8_t *f, size_t *len) { f[*len - 10] ^= 1; }
static void truncated(uint8_t *f, size_t *len) { (void)f; *len -= 5; }

/* The frame mutated: DATA float32, CRC, key "dust/ch1" (8 bytes), 16 bytes
 * of payload, event_id 9: 40 + 8 + 16 + 4 = 68 bytes. */
static const struct error_case error_cases[] = {
	{"magic", bad_magic, FRAME_ERR_MAGIC, 2, "bad magic: byte 2 is 0x58, expected 'R' of \"H5RF\""},
	{"version", bad_version, FRAME_ERR_VERSION, 4, "unsupported version 2 (expected 1)"},
	{"type", unknown_type, FRAME_ERR_TYPE, 5, "unknown frame type 7"},
	{"ack", ack_from_sender, FRAME_ERR_TYPE, 5, "ACK frame from a sender (ACK goes from recorder to sender only)"},
	{"dtype", dtype_too_big, FRAME_ERR_DTYPE, 6, "unknown dtype 11 (0..10)"},
	{"dtype0", data_without_dtype, FRAME_ERR_DTYPE, 6, "DATA frame with dtype 0 (none)"},
	{"eventdtype", event_with_dtype, FRAME_ERR_DTYPE, 6, "EVENT frame with dtype 9 (float32); it must be 0"},
	{"flags", reserved_flag, FRAME_ERR_FLAGS, 7, "reserved flag bits 0x88 set"},
	{"error", error_from_sender, FRAME_ERR_TYPE, 5, "ERROR frame from a sender (ERROR goes from recorder to sender only)"},
	{"chunksflag", chunks_on_event, FRAME_ERR_FLAGS, 7, "chunks flag (0x04) on a EVENT frame (DATA only)"},
	{"chunks", chunks_on_samples, FRAME_ERR_CHUNKS, 52, "chunk count 1073741824 (1..65536)"},
	{"keylen", key_too_long, FRAME_ERR_KEY_LEN, 8, "key_len 1025 above 1024"},
	{"emptykey", empty_key, FRAME_ERR_KEY_LEN, 8, "DATA frame with an empty key"},
	{"reserved", reserved_field, FRAME_ERR_RESERVED, 10, "reserved field is 0x0100 (must be 0)"},
	{"payloadlen", payload_too_big, FRAME_ERR_PAYLOAD_LEN, 12, "payload_len 1048580 above max_frame 1048576"},
	{"samples", partial_sample, FRAME_ERR_PAYLOAD_SIZE, 12, "DATA payload_len 6 is not a whole number of float32 samples (4 bytes)"},
	{"eventid", event_id_zero, FRAME_ERR_EVENT_ID, 32, "EVENT frame with event_id 0"},
	{"keynul", key_with_nul, FRAME_ERR_KEY, 43, "key holds a NUL byte at key byte 3"},
	{"overlong", key_overlong_utf8, FRAME_ERR_KEY, 42, "key is not valid UTF-8 at key byte 2 (0xc0)"},
	{"surrogate", key_surrogate, FRAME_ERR_KEY, 41, "key is not valid UTF-8 at key byte 1 (0xed)"},
	{"cututf8", key_cut_sequence, FRAME_ERR_KEY, 46, "key is not valid UTF-8 at key byte 6 (0xe2)"},
	{"crc", crc_flipped, FRAME_ERR_CRC, 64, "CRC-32C mismatch"},
	{"truncated", truncated, FRAME_ERR_TRUNCATED, 63, "stream ended inside a frame (63 of 68 bytes)"},
};

static size_t build_error_stream(uint8_t *buf, size_t cap, const struct error_case *c,
				 size_t *frame_at)
{
	float samples[4] = {1, 2, 3, 4};
	size_t len = 0, frame_len;

	append_frame(buf, cap, &len, FRAME_HELLO, DTYPE_NONE, 0, 1, 0, "sender", "a=1", 3);
	*frame_at = len;
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_FLOAT32, FRAME_FLAG_CRC, 2, 9,
		     "dust/ch1", samples, sizeof(samples));
	frame_len = len - *frame_at;
	assert_int_equal(frame_len, 68);
	c->mutate(buf + *frame_at, &frame_len);
	/* Bytes after the bad frame must never be looked at. */
	len = *frame_at + frame_len;
	if (c->kind != FRAME_ERR_TRUNCATED)
		append_frame(buf, cap, &len, FRAME_HELLO, DTYPE_NONE, 0, 3, 0, "x", "b=2", 3);
	return len;
}

static void test_every_error_class(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		const struct error_case *c = &error_cases[i];
		uint8_t buf[512];
		size_t frame_at;
		size_t len = build_error_stream(buf, sizeof(buf), c, &frame_at);
		struct outcome whole, split;

		decode_in_steps(buf, len, 0, &sender_options, &whole);
		assert_int_equal(whole.rc, -EPROTO);
		assert_int_equal(whole.seen.count, 1); /* the HELLO before it */
		assert_int_equal(whole.err.kind, c->kind);
		assert_int_equal(whole.err.frame_offset, frame_at);
		assert_int_equal(whole.err.offset, frame_at + c->offset_in_frame);
		assert_non_null(strstr(whole.err.reason, c->reason));
		for (int place = 0; place <= 1; place++) {
			place_payloads = place;
			for (size_t step = 1; step <= 9; step++) {
				decode_in_steps(buf, len, step, &sender_options, &split);
				assert_same_outcome(&whole, &split);
			}
			for (size_t cut = 0; cut <= len; cut++) {
				decode_split_at(buf, len, cut, &sender_options, &split);
				assert_same_outcome(&whole, &split);
			}
		}
		place_payloads = false;
	}
}

static void test_error_is_final(void **state)
{
	struct seen seen = {0};
	struct frame_decoder *decoder = frame_decoder_new(&sender_options, record_frame, &seen);
	struct frame_error err, again;
	uint8_t good[256];
	size_t len = 0;
	(void)state;

	append_frame(good, sizeof(good), &len, FRAME_HELLO, DTYPE_NONE, 0, 1, 0, "s", "", 0);
	assert_int_equal(frame_decoder_feed(decoder, "GET / HTTP/1.1\r\n", 16, &err), -EPROTO);
	assert_int_equal(err.kind, FRAME_ERR_MAGIC);
	assert_int_equal(err.offset, 0);
	assert_int_equal(frame_decoder_feed(decoder, good, len, &again), -EPROTO);
	assert_memory_equal(&err, &again, sizeof(err));
	assert_int_equal(frame_decoder_finish(decoder, &again), -EPROTO);
	assert_int_equal(seen.count, 0);
	assert_int_equal(frame_decoder_stats(decoder)->bytes, 16);
	frame_decoder_free(decoder);
}

static void test_callback_stops_decoding(void **state)
{
	uint8_t buf[4096];
	size_t len = build_mixed_stream(buf, sizeof(buf));
	struct seen seen = {.stop_at = 2};
	struct frame_decoder *decoder = frame_decoder_new(&sender_options, record_frame, &seen);
	struct frame_error err;
	(void)state;

	assert_int_equal(frame_decoder_feed(decoder, buf, len, &err), -ECANCELED);
	assert_int_equal(err.kind, FRAME_ERR_ABORTED);
	assert_int_equal(seen.count, 2);
	assert_int_equal(frame_decoder_feed(decoder, buf, len, &err), -ECANCELED);
	assert_int_equal(seen.count, 2);
	frame_decoder_free(decoder);
}

static void test_seq_gaps_and_backwards(void **state)
{
	static const uint64_t seqs[] = {10, 11, 14, 15, 12, 13, 20};
	static const uint64_t lost[] = {0, 0, 2, 0, 0, 0, 6};
	uint8_t buf[1024];
	size_t len = 0;
	struct outcome out;
	struct frame_decoder *decoder;
	(void)state;

	for (size_t i = 0; i < 7; i++)
		append_frame(buf, sizeof(buf), &len, FRAME_DATA, DTYPE_INT8, 0, seqs[i], 0, "k",
			     "ab", 2);
	decode_in_steps(buf, len, 0, &sender_options, &out);
	assert_int_equal(out.rc, 0);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(out.seen.frames[i].frame.lost_before, lost[i]);

	memset(&out, 0, sizeof(out));
	decoder = frame_decoder_new(&sender_options, record_frame, &out.seen);
	assert_int_equal(frame_decoder_feed(decoder, buf, len, NULL), 0);
	assert_int_equal(frame_decoder_stats(decoder)->lost, 8);
	assert_int_equal(frame_decoder_stats(decoder)->seq_backwards, 1);
	assert_int_equal(frame_decoder_stats(decoder)->frames, 7);
	assert_int_equal(frame_decoder_stats(decoder)->bytes, len);
	frame_decoder_free(decoder);
}

/* A frame bigger than one read is buffered, within the bound, and a large
 * buffer is released once its frame is out. */
static void test_large_frame_buffer_is_bounded(void **state)
{
	const size_t payload_len = 6 << 20;
	struct frame_options options = {.max_frame = payload_len, .peer = FRAME_FROM_SENDER};
	size_t cap = frame_encoded_size(3, payload_len, FRAME_FLAG_CRC);
	uint8_t *buf = malloc(cap);
	uint8_t *payload = calloc(1, payload_len);
	struct seen seen = {0};
	struct frame_decoder *decoder = frame_decoder_new(&options, record_frame, &seen);
	size_t len = 0, chunk = 65536, max_capacity = 0;
	(void)state;

	for (size_t i = 0; i < payload_len; i++)
		payload[i] = (uint8_t)(i * 31);
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_FLOAT64, FRAME_FLAG_CRC, 1, 0, "big",
		     payload, payload_len);
	for (size_t at = 0; at < len; at += chunk) {
		size_t n = len - at < chunk ? len - at : chunk;
		assert_int_equal(frame_decoder_feed(decoder, buf + at, n, NULL), 0);
		if (frame_decoder_buffer_capacity(decoder) > max_capacity)
			max_capacity = frame_decoder_buffer_capacity(decoder);
	}
	assert_int_equal(seen.count, 1);
	assert_int_equal(seen.frames[0].payload_crc, crc32c(payload, payload_len));
	assert_true(max_capacity <= payload_len + FRAME_CRC_SIZE);
	assert_int_equal(frame_decoder_buffer_capacity(decoder), 0);
	frame_decoder_free(decoder);
	free(buf);
	free(payload);
}

/* A large frame whose payload the caller places is never buffered by the
 * decoder: the payload is written once, into the caller's buffer, and its
 * CRC is checked there. */
static void test_large_frame_placed_not_buffered(void **state)
{
	const size_t payload_len = 400000;
	struct frame_options options = {.max_frame = payload_len, .peer = FRAME_FROM_SENDER};
	size_t cap = 2 * frame_encoded_size(3, payload_len, FRAME_FLAG_CRC);
	uint8_t *buf = malloc(cap);
	uint8_t *payload = malloc(payload_len);
	struct seen seen = {.place = true};
	struct frame_decoder *decoder = frame_decoder_new(&options, record_frame, &seen);
	size_t len = 0, chunk = 65536;
	struct frame_error err;
	(void)state;

	frame_decoder_set_payload_fn(decoder, place_payload);
	for (size_t i = 0; i < payload_len; i++)
		payload[i] = (uint8_t)(i * 131);
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_FLOAT32, FRAME_FLAG_CRC, 1, 0, "big",
		     payload, payload_len);
	size_t first_len = len;
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_FLOAT32, FRAME_FLAG_CRC, 2, 0, "big",
		     payload, payload_len);
	buf[len - 1] ^= 1; /* the second frame's CRC is wrong */
	for (size_t at = 0; at < len; at += chunk) {
		size_t n = len - at < chunk ? len - at : chunk;
		int rc = frame_decoder_feed(decoder, buf + at, n, &err);
		assert_int_equal(frame_decoder_buffer_capacity(decoder), 0);
		assert_int_equal(rc, at + n < len ? 0 : -EPROTO);
	}
	assert_int_equal(seen.count, 1);
	assert_int_equal(seen.placed, 1);
	assert_int_equal(seen.place_calls, 2);
	assert_int_equal(seen.frames[0].payload_crc, crc32c(payload, payload_len));
	assert_int_equal(err.kind, FRAME_ERR_CRC);
	assert_int_equal(err.frame_offset, first_len);
	frame_decoder_free(decoder);
	free_placement(&seen);
	free(buf);
	free(payload);
}

/* An oversized frame is refused from its header, before any payload. */
static void test_oversize_rejected_from_header(void **state)
{
	struct frame_options options = {.max_frame = 64, .peer = FRAME_FROM_SENDER};
	uint8_t payload[65] = {0};
	uint8_t buf[256];
	size_t len = 0;
	struct frame_error err;
	struct frame_decoder *decoder = frame_decoder_new(&options, NULL, NULL);
	(void)state;

	append_frame(buf, sizeof(buf), &len, FRAME_DATA, DTYPE_UINT8, 0, 1, 0, "k", payload, 65);
	assert_int_equal(frame_decoder_feed(decoder, buf, 16, &err), -EPROTO);
	assert_int_equal(err.kind, FRAME_ERR_PAYLOAD_LEN);
	assert_int_equal(err.offset, 12);
	assert_int_equal(frame_decoder_buffer_capacity(decoder), 0);
	frame_decoder_free(decoder);
}

static void test_truncated_header_at_end(void **state)
{
	struct frame_decoder *decoder = frame_decoder_new(&sender_options, NULL, NULL);
	struct frame_error err;
	(void)state;

	assert_int_equal(frame_decoder_feed(decoder, "H5RF\x01", 5, &err), 0);
	assert_int_equal(frame_decoder_finish(decoder, &err), -EPROTO);
	assert_int_equal(err.kind, FRAME_ERR_TRUNCATED);
	assert_int_equal(err.offset, 5);
	assert_string_equal(err.reason, "stream ended inside a frame (5 of the header's 40 bytes)");
	frame_decoder_free(decoder);

	decoder = frame_decoder_new(&sender_options, NULL, NULL);
	assert_int_equal(frame_decoder_finish(decoder, &err), 0);
	frame_decoder_free(decoder);
}

static void test_datagram_whole_frames(void **state)
{
	uint8_t buf[4096];
	size_t len = build_mixed_stream(buf, sizeof(buf));
	struct seen seen = {.input = buf, .input_len = len};
	struct frame_seq seq = {0};
	struct frame_error err;
	(void)state;

	assert_int_equal(frame_decode_datagram(&sender_options, &seq, buf, len, record_frame,
					       &seen, &err), 0);
	assert_int_equal(seen.count, 6);
	assert_int_equal(seen.in_place, 5);
	assert_int_equal(seen.frames[5].frame.seq, 6);
	assert_true(seq.started);
	assert_int_equal(seq.expected, 7);
}

/* A datagram with any bad or partial frame delivers nothing. */
static void test_datagram_dropped_whole(void **state)
{
	uint8_t buf[4096];
	size_t len = build_mixed_stream(buf, sizeof(buf));
	struct seen seen = {0};
	struct frame_error err;
	(void)state;

	assert_int_equal(frame_decode_datagram(&sender_options, NULL, buf, len - 1,
					       record_frame, &seen, &err), -EPROTO);
	assert_int_equal(err.kind, FRAME_ERR_TRUNCATED);
	assert_int_equal(err.offset, len - 1);
	assert_string_equal(err.reason, "datagram ends inside a frame (52 of 53 bytes)");
	assert_int_equal(seen.count, 0);

	buf[len - 2] ^= 0x40; /* inside the last frame's payload, which has no CRC */
	buf[100] ^= 0x01;     /* inside the float32 payload, which has one */
	assert_int_equal(frame_decode_datagram(&sender_options, NULL, buf, len, record_frame,
					       &seen, &err), -EPROTO);
	assert_int_equal(err.kind, FRAME_ERR_CRC);
	assert_int_equal(seen.count, 0);

	assert_int_equal(frame_decode_datagram(&sender_options, NULL, buf, 0, record_frame,
					       &seen, &err), -EPROTO);
	assert_int_equal(err.kind, FRAME_ERR_TRUNCATED);
}

static void test_encoder_refuses_invalid_frames(void **state)
{
	uint8_t out[2048];
	size_t written;
	struct frame ok = {.type = FRAME_DATA, .dtype = DTYPE_INT32, .key = "k", .key_len = 1,
			   .payload = "abcd", .payload_len = 4};
	struct frame bad;
	char long_key[FRAME_MAX_KEY + 2];
	(void)state;

	assert_int_equal(frame_encode(&ok, out, sizeof(out), &written), 0);
	assert_int_equal(written, 45);
	assert_int_equal(frame_encode(&ok, out, 44, &written), -ENOSPC);
	bad = ok, bad.payload_len = 3;
	assert_int_equal(frame_encode(&bad, out, sizeof(out), &written), -EINVAL);
	bad = ok, bad.type = FRAME_EVENT, bad.dtype = DTYPE_NONE;
	assert_int_equal(frame_encode(&bad, out, sizeof(out), &written), -EINVAL);
	bad = ok, bad.type = (enum frame_type)(256 + FRAME_DATA);
	assert_int_equal(frame_encode(&bad, out, sizeof(out), &written), -EINVAL);
	bad = ok, bad.flags = 0x10;
	assert_int_equal(frame_encode(&bad, out, sizeof(out), &written), -EINVAL);
	bad = ok, bad.key = "a\xff", bad.key_len = 2;
	assert_int_equal(frame_encode(&bad, out, sizeof(out), &written), -EINVAL);
	memset(long_key, 'a', sizeof(long_key));
	bad = ok, bad.key = long_key, bad.key_len = FRAME_MAX_KEY + 1;
	assert_int_equal(frame_encode(&bad, out, sizeof(out), &written), -EINVAL);
	bad = ok, bad.key_len = 0;
	assert_int_equal(frame_encode(&bad, out, sizeof(out), &written), -EINVAL);
}

/* ACKs go the other way: a sender's decoder takes them and nothing else. */
static void test_ack_for_the_sender_side(void **state)
{
	struct frame ack = {.type = FRAME_ACK, .seq = 41, .flags = FRAME_FLAG_CRC};
	struct frame_options at_sender = {.max_frame = 64, .peer = FRAME_FROM_RECORDER};
	uint8_t out[128];
	size_t written, len = 0;
	struct outcome got;
	(void)state;

	assert_int_equal(frame_encode(&ack, out, sizeof(out), &written), 0);
	assert_int_equal(written, 44);
	decode_in_steps(out, written, 1, &at_sender, &got);
	assert_int_equal(got.rc, 0);
	assert_int_equal(got.seen.count, 1);
	assert_int_equal(got.seen.frames[0].frame.type, FRAME_ACK);
	assert_int_equal(got.seen.frames[0].frame.seq, 41);

	append_frame(out, sizeof(out), &len, FRAME_HELLO, DTYPE_NONE, 0, 1, 0, "x", "", 0);
	decode_in_steps(out, len, 0, &at_sender, &got);
	assert_int_equal(got.rc, -EPROTO);
	assert_string_equal(got.err.reason,
			    "HELLO frame from the recorder (only ACK, DESCRIBE or ERROR expected)");

	/* DESCRIBE answers and ERROR frames reach a sender too */
	len = 0;
	append_frame(out, sizeof(out), &len, FRAME_DESCRIBE, DTYPE_NONE, 0, 5, 0, "d/a", "x=1", 3);
	append_frame(out, sizeof(out), &len, FRAME_ERROR, DTYPE_NONE, 0, 6, 0, "d/a", "no", 2);
	decode_in_steps(out, len, 0, &at_sender, &got);
	assert_int_equal(got.rc, 0);
	assert_int_equal(got.seen.count, 2);
	assert_int_equal(got.seen.frames[1].frame.type, FRAME_ERROR);
}

/* A pre-compressed payload: two chunks, their table and bytes, as the
 * recorder reads them back; and every way such a payload can lie. */
static void test_chunk_payloads(void **state)
{
	uint8_t payload[FRAME_CHUNKS_HEAD + 2 * FRAME_CHUNK_ENTRY + 7];
	struct frame_chunks chunks;
	struct frame_chunk chunk;
	struct frame_error err;
	size_t at = 0;
	(void)state;

	frame_chunks_put_head(payload, 0xCAFEF00Du, 2);
	frame_chunks_put_entry(payload, 0, 3, 0, 404);
	frame_chunks_put_entry(payload, 1, 4, 1, 8);
	memcpy(payload + FRAME_CHUNKS_HEAD + 2 * FRAME_CHUNK_ENTRY, "abcdefg", 7);
	assert_int_equal(frame_chunks_open(payload, sizeof(payload), 4, 0, &chunks, &err), 0);
	assert_int_equal(chunks.pipeline_id, 0xCAFEF00Du);
	assert_int_equal(chunks.count, 2);
	frame_chunks_get(&chunks, 0, &at, &chunk);
	assert_int_equal(chunk.stored_size, 3);
	assert_int_equal(chunk.raw_size, 404);
	assert_memory_equal(chunk.data, "abc", 3);
	frame_chunks_get(&chunks, 1, &at, &chunk);
	assert_int_equal(chunk.filter_mask, 1);
	assert_memory_equal(chunk.data, "defg", 4);

	/* sizes that do not add up, a raw size of part of a sample, a stored
	 * size of 0, a table longer than the payload */
	assert_int_equal(frame_chunks_open(payload, sizeof(payload) - 1, 4, 100, &chunks, &err),
			 -EPROTO);
	assert_int_equal(err.kind, FRAME_ERR_CHUNKS);
	assert_non_null(strstr(err.reason, "add up to 7 bytes, the payload holds 6"));
	assert_int_equal(frame_chunks_open(payload, sizeof(payload), 8, 0, &chunks, &err), -EPROTO);
	assert_non_null(strstr(err.reason, "chunk 0: uncompressed size 404 is not"));
	frame_chunks_put_entry(payload, 1, 0, 0, 8);
	assert_int_equal(frame_chunks_open(payload, sizeof(payload), 4, 0, &chunks, &err), -EPROTO);
	assert_string_equal(err.reason, "chunk 1: stored size 0");
	frame_chunks_put_head(payload, 1, 3);
	assert_int_equal(frame_chunks_open(payload, sizeof(payload), 4, 0, &chunks, &err), -EPROTO);
	assert_non_null(strstr(err.reason, "does not fit"));
	assert_string_equal(frame_error_kind_name(FRAME_ERR_CHUNKS), "chunks");
}

/* The DESCRIBE answer: one canonical text, read back as it was, its id a
 * checksum of it, so any change of the pipeline changes the id. */
static void test_pipeline_text(void **state)
{
	struct pipeline p = {.layout = PIPELINE_RECORDS, .dtype = DTYPE_FLOAT32, .chunk = 100000,
			     .shuffle = true, .codec = PIPELINE_LZ4, .lz4_block = 16384,
			     .fletcher32 = true};
	struct pipeline back, other = p;
	char text[PIPELINE_TEXT_MAX];
	uint32_t id;
	(void)state;

	size_t len = pipeline_format(&p, text, sizeof(text));
	assert_true(len > 0);
	assert_non_null(strstr(text, "layout=\"records\",dtype=\"float32\",chunk=100000i,"
				     "pipeline=\"shuffle,lz4=16384,fletcher32\",id="));
	assert_int_equal(pipeline_parse(text, len, &back, &id), 0);
	assert_int_equal(id, pipeline_id(&p));
	assert_int_equal(back.codec, PIPELINE_LZ4);
	assert_int_equal(back.lz4_block, 16384);
	assert_true(back.shuffle && back.fletcher32);
	assert_int_equal(back.chunk, 100000);
	assert_int_equal(pipeline_nfilters(&p), 3);
	other.lz4_block = 0;
	assert_int_not_equal(pipeline_id(&other), pipeline_id(&p));
	other = p;
	other.codec = PIPELINE_DEFLATE;
	other.level = 4;
	assert_int_not_equal(pipeline_id(&other), pipeline_id(&p));
	/* a text whose id does not match is not taken */
	text[len - 2] = text[len - 2] == '1' ? '2' : '1';
	assert_int_equal(pipeline_parse(text, len, &back, &id), -EINVAL);
}

static void test_error_kind_names(void **state)
{
	(void)state;
	assert_string_equal(frame_error_kind_name(FRAME_ERR_CRC), "crc");
	assert_string_equal(frame_error_kind_name(FRAME_ERR_NOMEM), "nomem");
	assert_string_equal(frame_error_kind_name((enum frame_error_kind)99), "unknown");
	assert_int_equal(frame_dtype_sample_size(DTYPE_FLOAT64), 8);
	assert_int_equal(frame_dtype_sample_size(11), 0);
}

/*
 * Decode buf as a socket reader using frame_decoder_read_space would: where
 * the decoder offers room, "read" at most `step` bytes straight into it and
 * feed them from there; elsewhere feed `step`-byte slices of buf.
 */
static void decode_reading_in_place(const uint8_t *buf, size_t len, size_t step,
				    struct outcome *out, size_t *spaces)
{
	struct frame_options options = {.max_frame = 1 << 20, .peer = FRAME_FROM_SENDER};
	struct frame_decoder *decoder;

	memset(out, 0, sizeof(*out));
	*spaces = 0;
	decoder = frame_decoder_new(&options, record_frame, &out->seen);
	assert_non_null(decoder);
	set_placement(decoder, &out->seen);
	for (size_t at = 0; at < len && out->rc == 0;) {
		void *space = NULL;
		size_t room = frame_decoder_read_space(decoder, &space);
		size_t n = len - at < step ? len - at : step;
		const uint8_t *from = buf + at;
		if (room) {
			n = n < room ? n : room;
			memcpy(space, buf + at, n);
			from = space;
			(*spaces)++;
		}
		out->seen.input = from;
		out->seen.input_len = n;
		out->rc = frame_decoder_feed(decoder, from, n, &out->err);
		at += n;
	}
	if (out->rc == 0)
		out->rc = frame_decoder_finish(decoder, &out->err);
	void *space = NULL;
	assert_int_equal(frame_decoder_read_space(decoder, &space), 0);
	frame_decoder_free(decoder);
	free_placement(&out->seen);
}

/* Bytes read straight into the room the decoder offers decode exactly as
 * copied slices do, placed payloads or not; the room is only ever inside a
 * payload being assembled. */
static void test_read_space_in_place(void **state)
{
	const size_t big = 300000;
	size_t cap = 8192 + 2 * frame_encoded_size(3, big, FRAME_FLAG_CRC);
	uint8_t *buf = malloc(cap);
	uint8_t *payload = malloc(big);
	struct outcome whole, direct;
	size_t len, spaces;
	(void)state;

	assert_non_null(buf);
	assert_non_null(payload);
	for (size_t i = 0; i < big; i++)
		payload[i] = (uint8_t)(i * 13 + 1);
	len = build_mixed_stream(buf, cap);
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_UINT8, FRAME_FLAG_CRC, 7, 0, "big",
		     payload, big);
	append_frame(buf, cap, &len, FRAME_DATA, DTYPE_UINT8, 0, 8, 0, "big", payload, big);
	decode_in_steps(buf, len, 0, &sender_options, &whole);
	assert_int_equal(whole.rc, 0);
	assert_int_equal(whole.seen.count, 8);
	for (int place = 0; place <= 1; place++) {
		place_payloads = place;
		for (size_t step = 1; step <= 70000; step = step * 3 + 1) {
			decode_reading_in_place(buf, len, step, &direct, &spaces);
			assert_same_outcome(&whole, &direct);
			if (step < big)
				assert_true(spaces > 0);
		}
	}
	place_payloads = false;

	/* room for exactly the rest of a payload; none in a header, none
	 * between frames */
	struct frame_decoder *decoder = frame_decoder_new(&sender_options, NULL, NULL);
	void *space = NULL;
	assert_int_equal(frame_decoder_read_space(decoder, &space), 0);
	assert_int_equal(frame_decoder_feed(decoder, buf, 20, NULL), 0);
	assert_int_equal(frame_decoder_read_space(decoder, &space), 0);
	assert_int_equal(frame_decoder_feed(decoder, buf + 20, len - 20 - 100, NULL), 0);
	assert_int_equal(frame_decoder_read_space(decoder, &space), 100);
	assert_int_equal(frame_decoder_feed(decoder, buf + len - 100, 1, NULL), 0);
	assert_int_equal(frame_decoder_read_space(decoder, &space), 99);
	assert_int_equal(frame_decoder_feed(decoder, buf + len - 99, 99, NULL), 0);
	assert_int_equal(frame_decoder_read_space(decoder, &space), 0);
	assert_int_equal(frame_decoder_stats(decoder)->frames, 8);
	frame_decoder_free(decoder);
	free(buf);
	free(payload);
}

/* Mutated and random input: never a crash, and every split still agrees. */
static void test_garbage_never_crashes(void **state)
{
	uint8_t base[4096], buf[4096];
	size_t len = build_mixed_stream(base, sizeof(base));
	struct outcome whole, split;
	(void)state;

	srand(4242);
	for (int round = 0; round < 3000; round++) {
		memcpy(buf, base, len);
		int flips = 1 + rand() % 4;
		for (int i = 0; i < flips; i++)
			buf[(size_t)rand() % len] = (uint8_t)rand();
		decode_in_steps(buf, len, 0, &sender_options, &whole);
		place_payloads = round % 2;
		decode_in_steps(buf, len, 1 + (size_t)rand() % 50, &sender_options, &split);
		place_payloads = false;
		assert_same_outcome(&whole, &split);
	}
	for (int round = 0; round < 300; round++) {
		size_t n = (size_t)rand() % sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rand();
		if (n >= 4)
			memcpy(buf, "H5RF", 4);
		decode_in_steps(buf, n, 1 + (size_t)rand() % 7, &sender_options, &whole);
		frame_decode_datagram(&sender_options, NULL, buf, n, record_frame, &split.seen,
				      NULL);
		split.seen.count = 0;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_in_place),
		cmocka_unit_test(test_every_split_decodes_identically),
		cmocka_unit_test(test_payloads_placed_when_cut),
		cmocka_unit_test(test_every_error_class),
		cmocka_unit_test(test_error_is_final),
		cmocka_unit_test(test_callback_stops_decoding),
		cmocka_unit_test(test_seq_gaps_and_backwards),
		cmocka_unit_test(test_large_frame_buffer_is_bounded),
		cmocka_unit_test(test_large_frame_placed_not_buffered),
		cmocka_unit_test(test_read_space_in_place),
		cmocka_unit_test(test_oversize_rejected_from_header),
		cmocka_unit_test(test_truncated_header_at_end),
		cmocka_unit_test(test_datagram_whole_frames),
		cmocka_unit_test(test_datagram_dropped_whole),
		cmocka_unit_test(test_encoder_refuses_invalid_frames),
		cmocka_unit_test(test_ack_for_the_sender_side),
		cmocka_unit_test(test_error_kind_names),
		cmocka_unit_test(test_chunk_payloads),
		cmocka_unit_test(test_pipeline_text),
		cmocka_unit_test(test_garbage_never_crashes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
