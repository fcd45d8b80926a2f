/*
 * fuzz_frame.c - libFuzzer target for the frame codec (src/proto/frame.c).
 *
 * Input: two control bytes, then a byte stream. Byte 0 picks max_frame,
 * which side decodes (recorder or sender) and whether the sliced decode
 * places cut payloads in buffers of its own (frame_decoder_set_payload_fn);
 * byte 1 seeds the split pattern.
 * The stream is decoded three ways: in one feed, in pseudo-random slices,
 * and as one datagram. Beyond "no crash, no leak, no UB", the oracles are:
 * the one-feed and sliced decodes report the same frames and the same error
 * (hash of everything reported); every frame re-encodes to exactly the bytes
 * it was decoded from; a datagram that decodes gives the same frames as the
 * stream; and the buffer never exceeds its bound.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I src/proto
 *        tests/fuzz/fuzz_frame.c src/proto/frame.c src/proto/crc32c.c src/proto/utf8.c
 *        -o fuzz_frame
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

struct run {
	const uint8_t *stream;
	size_t stream_len;
	uint64_t hash;
	size_t frames;
	int place;         /* give cut payloads a buffer of ours */
	uint8_t *placed;   /* the last one given */
};

static void *place_payload(void *user, const struct frame *frame)
{
	struct run *run = user;

	free(run->placed);
	run->placed = malloc(frame->payload_len);
	return run->placed;
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

static void check(int condition)
{
	if (!condition)
		abort();
}

/* The frame must be exactly the bytes at its offset, re-encoded. */
static void check_reencodes(const struct run *run, const struct frame *frame)
{
	size_t size = frame_encoded_size(frame->key_len, frame->payload_len, frame->flags);
	uint8_t *copy = malloc(size ? size : 1);
	size_t written = 0;

	check(copy != NULL);
	check(frame->offset + size <= run->stream_len);
	check(frame_encode(frame, copy, size, &written) == 0);
	check(written == size);
	check(memcmp(copy, run->stream + frame->offset, size) == 0);
	free(copy);
}

static int on_frame(void *user, const struct frame *frame)
{
	struct run *run = user;

	check(strlen(frame->key) == frame->key_len);
	check_reencodes(run, frame);
	mix_u64(&run->hash, frame->offset);
	mix_u64(&run->hash, frame->lost_before);
	mix_u64(&run->hash, frame->seq);
	mix_u64(&run->hash, frame->payload_len);
	mix(&run->hash, frame->payload, frame->payload_len);
	run->frames++;
	return 0;
}

static void mix_error(struct run *run, int rc, const struct frame_error *err)
{
	mix_u64(&run->hash, (uint64_t)(int64_t)rc);
	if (rc == 0)
		return;
	mix_u64(&run->hash, (uint64_t)err->kind);
	mix_u64(&run->hash, err->offset);
	mix_u64(&run->hash, err->frame_offset);
	mix(&run->hash, err->reason, strlen(err->reason));
}

static uint64_t bound(const struct frame_options *options)
{
	uint64_t max_frame = options->max_frame;

	return max_frame + FRAME_CRC_SIZE;
}

static void decode_stream(const struct frame_options *options, const uint8_t *data,
			  size_t len, unsigned split_seed, struct run *run)
{
	struct frame_decoder *decoder = frame_decoder_new(options, on_frame, run);
	struct frame_error err;
	int rc = 0;

	check(decoder != NULL);
	if (run->place)
		frame_decoder_set_payload_fn(decoder, place_payload);
	for (size_t at = 0; at < len && rc == 0;) {
		size_t n = split_seed ? 1 + (at * 131 + split_seed) % (split_seed + 1) : len;
		if (n > len - at)
			n = len - at;
		rc = frame_decoder_feed(decoder, data + at, n, &err);
		check(frame_decoder_buffer_capacity(decoder) <= bound(options));
		at += n;
	}
	if (rc == 0)
		rc = frame_decoder_finish(decoder, &err);
	mix_error(run, rc, &err);
	frame_decoder_free(decoder);
	free(run->placed);
	run->placed = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t max_frames[] = {0, 16, 4096, 1u << 20};
	struct frame_options options;
	struct run whole = {0}, sliced = {0}, datagram = {0};
	struct frame_error err;
	int rc;

	if (size < 2)
		return 0;
	options.max_frame = max_frames[data[0] & 3u];
	options.peer = (data[0] & 4u) ? FRAME_FROM_RECORDER : FRAME_FROM_SENDER;
	sliced.place = (data[0] & 8u) != 0;
	whole.stream = sliced.stream = datagram.stream = data + 2;
	whole.stream_len = sliced.stream_len = datagram.stream_len = size - 2;

	decode_stream(&options, data + 2, size - 2, 0, &whole);
	decode_stream(&options, data + 2, size - 2, data[1] | 1u, &sliced);
	check(whole.hash == sliced.hash);
	check(whole.frames == sliced.frames);

	struct frame_seq seq = {0};
	rc = frame_decode_datagram(&options, &seq, data + 2, size - 2, on_frame, &datagram, &err);
	if (rc == 0) {
		mix_error(&datagram, 0, &err);
		check(datagram.hash == whole.hash);
	} else {
		check(datagram.frames == 0);
	}
	return 0;
}
