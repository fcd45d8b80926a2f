/*
 * test_h5lz4.c - the LZ4 chunk codec (plugins/h5lz4.c) on its own, without
 * HDF5: the bytes it writes, round trips over sizes and block sizes, and
 * what it does with chunks that are truncated, flipped or lying.
 *
 * Inputs handed to the decoder are always copied into a buffer of exactly
 * their length, so an overread is an ASan error in the sanitizer build.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h5lz4.h"

struct buf {
	unsigned char *data;
	size_t len;
};

static uint64_t xorshift(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

enum kind { KIND_ZEROS, KIND_RAMP, KIND_RANDOM, KIND_HALF_RANDOM };

static unsigned char *make_data(size_t n, enum kind kind, uint64_t seed)
{
	unsigned char *p = malloc(n ? n : 1);
	uint64_t state = seed | 1;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		switch (kind) {
		case KIND_ZEROS:
			p[i] = 0;
			break;
		case KIND_RAMP:
			p[i] = (unsigned char)(i / 7);
			break;
		case KIND_RANDOM:
			p[i] = (unsigned char)xorshift(&state);
			break;
		case KIND_HALF_RANDOM:
			p[i] = (i / 1000) % 2 ? (unsigned char)xorshift(&state) : (unsigned char)(i % 13);
			break;
		}
	}
	return p;
}

static struct buf encode(const void *src, size_t n, uint32_t block_size)
{
	struct buf out;
	size_t cap = h5lz4_bound(n, block_size);

	assert_true(cap >= H5LZ4_HEADER_SIZE);
	out.data = malloc(cap);
	assert_non_null(out.data);
	assert_int_equal(h5lz4_encode(src, n, block_size, out.data, cap, &out.len), 0);
	assert_true(out.len <= cap);
	return out;
}

static struct buf copy_exact(const unsigned char *src, size_t n)
{
	struct buf b = {malloc(n ? n : 1), n};

	assert_non_null(b.data);
	memcpy(b.data, src, n);
	return b;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void set_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void set_be64(unsigned char *p, uint64_t v)
{
	set_be32(p, (uint32_t)(v >> 32));
	set_be32(p + 4, (uint32_t)v);
}

/* Decode a chunk; returns the codec's result, checks the output on success. */
static int decode_check(const struct buf *chunk, const unsigned char *expect, size_t expect_len)
{
	uint64_t size = 0;
	size_t out_len = 0;
	unsigned char *out;
	int err;

	err = h5lz4_decoded_size(chunk->data, chunk->len, &size);
	if (err)
		return err;
	assert_true(size <= (uint64_t)chunk->len * 255u);
	out = malloc(size ? (size_t)size : 1);
	assert_non_null(out);
	err = h5lz4_decode(chunk->data, chunk->len, out, (size_t)size, &out_len);
	if (err == 0) {
		assert_int_equal(out_len, size);
		if (expect) {
			assert_int_equal(out_len, expect_len);
			assert_memory_equal(out, expect, expect_len);
		}
	}
	free(out);
	return err;
}

/*
 * A chunk built by hand from the format description, its first block
 * compressed by an independent LZ4 implementation (python3-lz4), its second
 * stored raw: 80 bytes, block size 64.
 */
static void test_known_chunk_decodes(void **state)
{
	static const unsigned char chunk[] = {
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x40,
		0x00, 0x00, 0x00, 0x10, 0x6f, 0x68, 0x35, 0x72, 0x65, 0x63, 0x20, 0x06,
		0x00, 0x22, 0x50, 0x20, 0xc8, 0xc9, 0xca, 0xcb, 0x00, 0x00, 0x00, 0x10,
		0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
		0xd8, 0xd9, 0xda, 0xdb};
	unsigned char expect[80];
	struct buf b = copy_exact(chunk, sizeof(chunk));

	(void)state;
	for (int i = 0; i < 60; i++)
		expect[i] = (unsigned char)"h5rec "[i % 6];
	for (int i = 60; i < 80; i++)
		expect[i] = (unsigned char)(200 + i - 60);
	assert_int_equal(decode_check(&b, expect, sizeof(expect)), 0);
	free(b.data);
}

static void test_layout_of_compressed_blocks(void **state)
{
	size_t n = 10000;
	unsigned char *src = make_data(n, KIND_RAMP, 1);
	struct buf b = encode(src, n, 4096);
	size_t pos = H5LZ4_HEADER_SIZE;
	size_t blocks[] = {4096, 4096, 1808};

	(void)state;
	assert_int_equal(be64(b.data), n);
	assert_int_equal(be32(b.data + 8), 4096);
	for (size_t i = 0; i < 3; i++) {
		uint32_t stored = be32(b.data + pos);

		assert_true(stored > 0 && stored < blocks[i]);
		pos += 4 + stored;
	}
	assert_int_equal(pos, b.len);
	assert_int_equal(decode_check(&b, src, n), 0);
	free(b.data);
	free(src);
}

static void test_incompressible_blocks_are_stored_raw(void **state)
{
	size_t n = 10000;
	unsigned char *src = make_data(n, KIND_RANDOM, 2);
	struct buf b = encode(src, n, 4096);
	size_t pos = H5LZ4_HEADER_SIZE;

	(void)state;
	for (size_t done = 0; done < n;) {
		size_t block = n - done < 4096 ? n - done : 4096;

		assert_int_equal(be32(b.data + pos), block);
		assert_memory_equal(b.data + pos + 4, src + done, block);
		pos += 4 + block;
		done += block;
	}
	assert_int_equal(b.len, h5lz4_bound(n, 4096));
	assert_int_equal(decode_check(&b, src, n), 0);
	free(b.data);
	free(src);
}

static void test_block_size_never_exceeds_chunk(void **state)
{
	unsigned char *src = make_data(1000, KIND_RAMP, 3);
	uint32_t sizes[] = {0, 1000, 1u << 20, H5LZ4_MAX_BLOCK_SIZE};

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct buf b = encode(src, 1000, sizes[i]);

		assert_int_equal(be32(b.data + 8), 1000);
		assert_int_equal(decode_check(&b, src, 1000), 0);
		free(b.data);
	}
	free(src);
}

static void test_empty_chunk(void **state)
{
	unsigned char none = 0;
	struct buf b = encode(&none, 0, 0);
	uint64_t size = 1;

	(void)state;
	assert_int_equal(b.len, H5LZ4_HEADER_SIZE);
	assert_int_equal(h5lz4_decoded_size(b.data, b.len, &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(decode_check(&b, NULL, 0), 0);
	free(b.data);
}

static void test_round_trips(void **state)
{
	static const size_t sizes[] = {1,     2,     3,     15,    16,    17,   255,
				       256,   4095,  4096,  4097,  65535, 65536, 65537,
				       70001, 1u << 20 | 3};
	static const uint32_t block_sizes[] = {0, 1, 2, 7, 4096, 65536, H5LZ4_MAX_BLOCK_SIZE};

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (int kind = KIND_ZEROS; kind <= KIND_HALF_RANDOM; kind++) {
			unsigned char *src = make_data(sizes[s], (enum kind)kind, sizes[s]);

			for (size_t k = 0; k < sizeof(block_sizes) / sizeof(block_sizes[0]); k++) {
				struct buf b;

				/* One LZ4 call per byte is valid but slow: keep it small. */
				if (block_sizes[k] < 16 && sizes[s] > 70001)
					continue;
				b = encode(src, sizes[s], block_sizes[k]);
				assert_int_equal(decode_check(&b, src, sizes[s]), 0);
				free(b.data);
			}
			free(src);
		}
	}
}

static void test_bound(void **state)
{
	(void)state;
	assert_int_equal(h5lz4_bound(0, 0), 12);
	assert_int_equal(h5lz4_bound(1, 0), 12 + 4 + 1);
	assert_int_equal(h5lz4_bound(10000, 4096), 12 + 3 * 4 + 10000);
	assert_int_equal(h5lz4_bound(10000, 1), 12 + 10000 * 4 + 10000);
	assert_int_equal(h5lz4_bound(10, H5LZ4_MAX_BLOCK_SIZE + 1), 0);
	assert_int_equal(h5lz4_bound(SIZE_MAX - 100, 1), 0);
	assert_int_equal(h5lz4_bound(SIZE_MAX - 8, 0), 0);
}

static void test_encode_rejects_bad_arguments(void **state)
{
	unsigned char *src = make_data(5000, KIND_RAMP, 4);
	size_t cap = h5lz4_bound(5000, 0);
	unsigned char *dst = malloc(cap);
	size_t len = 0;

	(void)state;
	assert_int_equal(h5lz4_encode(src, 5000, H5LZ4_MAX_BLOCK_SIZE + 1, dst, cap, &len), -EINVAL);
	assert_int_equal(h5lz4_encode(src, 5000, 0, dst, cap - 1, &len), -ENOSPC);
	assert_int_equal(h5lz4_encode(src, 5000, 0, dst, cap, &len), 0);
	free(dst);
	free(src);
}

static void test_decode_needs_room(void **state)
{
	unsigned char *src = make_data(5000, KIND_RAMP, 5);
	struct buf b = encode(src, 5000, 1000);
	unsigned char *out = malloc(4999);
	size_t len = 0;

	(void)state;
	assert_int_equal(h5lz4_decode(b.data, b.len, out, 4999, &len), -ENOSPC);
	free(out);
	free(b.data);
	free(src);
}

/* A three-block chunk with both block kinds, the victim of the tests below. */
static struct buf victim(unsigned char **src_out, size_t *n_out)
{
	size_t n = 3 * 1000 + 500;
	unsigned char *src = make_data(n, KIND_HALF_RANDOM, 6);
	struct buf b = encode(src, n, 1000);

	*src_out = src;
	*n_out = n;
	return b;
}

static void test_every_truncation_fails(void **state)
{
	unsigned char *src;
	size_t n;
	struct buf b = victim(&src, &n);

	(void)state;
	for (size_t len = 0; len < b.len; len++) {
		struct buf cut = copy_exact(b.data, len);

		assert_int_equal(decode_check(&cut, NULL, 0), -EBADMSG);
		free(cut.data);
	}
	free(b.data);
	free(src);
}

/* After the blocks only zero bytes may follow: h5rec pads a chunk it
 * rewrites in place to the size of its last write. Anything else there is
 * corruption. */
static void test_trailing_bytes_fail_zero_padding_decodes(void **state)
{
	unsigned char *src;
	size_t n;
	struct buf b = victim(&src, &n);
	struct buf longer = {calloc(1, b.len + 100), b.len + 100};
	unsigned char *back = malloc(n);
	size_t got = 0;

	(void)state;
	memcpy(longer.data, b.data, b.len);
	assert_int_equal(h5lz4_decode(longer.data, longer.len, back, n, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(back, src, n);
	longer.data[b.len + 99] = 1;
	assert_int_equal(decode_check(&longer, NULL, 0), -EBADMSG);
	longer.data[b.len + 99] = 0;
	longer.data[b.len] = 0x80;
	assert_int_equal(decode_check(&longer, NULL, 0), -EBADMSG);
	free(back);
	free(longer.data);
	free(b.data);
	free(src);
}

/*
 * Flip every bit of the chunk in turn. There is no checksum in the format,
 * so a flip inside raw or literal data may decode "successfully" to other
 * bytes; what must hold is: no crash or overread, and every flip in the
 * header or in a length field is caught.
 */
static void test_flipped_bits(void **state)
{
	unsigned char *src;
	size_t n;
	struct buf b = victim(&src, &n);
	unsigned char is_length[8192] = {0};
	size_t pos = H5LZ4_HEADER_SIZE;
	size_t caught = 0;

	(void)state;
	assert_true(b.len < sizeof(is_length));
	memset(is_length, 1, H5LZ4_HEADER_SIZE);
	while (pos < b.len) {
		memset(is_length + pos, 1, 4);
		pos += 4 + be32(b.data + pos);
	}
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			struct buf bad = copy_exact(b.data, b.len);
			int err;

			bad.data[i] ^= (unsigned char)(1u << bit);
			err = decode_check(&bad, NULL, 0);
			assert_true(err == 0 || err == -EBADMSG);
			if (is_length[i])
				assert_int_equal(err, -EBADMSG);
			caught += err != 0;
			free(bad.data);
		}
	}
	assert_true(caught > 8 * (H5LZ4_HEADER_SIZE + 4 * 4));
	free(b.data);
	free(src);
}

static void test_lying_headers(void **state)
{
	unsigned char *src;
	size_t n;
	struct buf b = victim(&src, &n);
	struct {
		size_t offset;
		int width;
		uint64_t value;
	} lies[] = {
		{0, 8, 3501},			   /* one byte more than the blocks hold */
		{0, 8, 3499},			   /* one byte less */
		{0, 8, UINT64_C(1) << 40},	   /* far larger than the chunk */
		{0, 8, UINT64_MAX},		   /* "negative" */
		{8, 4, 0},			   /* zero block size */
		{8, 4, 0x80000000u},		   /* negative block size */
		{8, 4, 0xffffffffu},		   /* -1 */
		{8, 4, H5LZ4_MAX_BLOCK_SIZE + 1},  /* above the format's maximum */
		{12, 4, 0},			   /* empty block */
		{12, 4, 1001},			   /* stored length above the block size */
		{12, 4, 0x7fffffffu},		   /* stored length beyond the buffer */
		{12, 4, 0xffffffffu},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		struct buf bad = copy_exact(b.data, b.len);

		if (lies[i].width == 8)
			set_be64(bad.data + lies[i].offset, lies[i].value);
		else
			set_be32(bad.data + lies[i].offset, (uint32_t)lies[i].value);
		assert_int_equal(decode_check(&bad, NULL, 0), -EBADMSG);
		free(bad.data);
	}
	free(b.data);
	free(src);
}

/* A block that claims more than LZ4 can expand its stored bytes to is
 * refused before anything is allocated or decoded. */
static void test_expansion_limit(void **state)
{
	unsigned char chunk[12 + 4 + 4];
	uint64_t size = 0;

	(void)state;
	set_be64(chunk, 1u << 30);
	set_be32(chunk + 8, 1u << 30);
	set_be32(chunk + 12, 4);
	memset(chunk + 16, 0, 4);
	assert_int_equal(h5lz4_decoded_size(chunk, sizeof(chunk), &size), -EBADMSG);
	set_be64(chunk, 4 * 255);
	set_be32(chunk + 8, 4 * 255);
	assert_int_equal(h5lz4_decoded_size(chunk, sizeof(chunk), &size), 0);
	assert_int_equal(size, 4 * 255);
}

/* Compressed data that decodes to fewer or more bytes than its block. */
static void test_block_decoding_to_wrong_length(void **state)
{
	size_t n = 4000;
	unsigned char *src = make_data(n, KIND_RAMP, 7);
	struct buf b = encode(src, n, 0);
	struct buf shorter = copy_exact(b.data, b.len);
	struct buf longer = copy_exact(b.data, b.len);

	(void)state;
	set_be64(shorter.data, n + 1);
	set_be32(shorter.data + 8, (uint32_t)n + 1);
	set_be64(longer.data, n - 1);
	set_be32(longer.data + 8, (uint32_t)n - 1);
	assert_int_equal(decode_check(&shorter, NULL, 0), -EBADMSG);
	assert_int_equal(decode_check(&longer, NULL, 0), -EBADMSG);
	free(shorter.data);
	free(longer.data);
	free(b.data);
	free(src);
}

/* cmocka's assertions are not thread-safe: the workers only report. */
static void test_raw_chunk_decodes_in_place(void **state)
{
	size_t n = 10000;
	unsigned char *src = make_data(n, KIND_RANDOM, 8);
	struct buf b = encode(src, n, 3000);
	size_t len = 0;

	(void)state;
	assert_int_equal(h5lz4_decode_raw_in_place(b.data, b.len, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(b.data, src, n);
	free(b.data);
	free(src);
}

static void test_in_place_refuses_compressed_and_corrupt_chunks(void **state)
{
	unsigned char *src;
	size_t n, len = 0;
	struct buf b = victim(&src, &n); /* blocks 0 and 2 compressed */
	struct buf copy = copy_exact(b.data, b.len);

	(void)state;
	assert_int_equal(h5lz4_decode_raw_in_place(copy.data, copy.len, &len), -EAGAIN);
	assert_memory_equal(copy.data, b.data, b.len);
	for (size_t cut = 0; cut < b.len; cut += 7) {
		struct buf part = copy_exact(b.data, cut);

		assert_int_equal(h5lz4_decode_raw_in_place(part.data, part.len, &len), -EBADMSG);
		free(part.data);
	}
	free(copy.data);
	free(b.data);
	free(src);
}

static void *round_trip_worker(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg;
	int failed = 0;

	for (int i = 0; i < 20 && !failed; i++) {
		size_t n = 50000 + (size_t)i * 777;
		size_t cap = h5lz4_bound(n, 8192);
		unsigned char *src = malloc(n);
		unsigned char *enc = malloc(cap);
		unsigned char *dec = malloc(n);
		uint64_t state = seed * 1000 + (uint64_t)i + 1;
		size_t enc_len = 0, dec_len = 0;

		failed = !src || !enc || !dec;
		for (size_t k = 0; !failed && k < n; k++)
			src[k] = (k / 1000) % 2 ? (unsigned char)xorshift(&state) : (unsigned char)k;
		failed = failed || h5lz4_encode(src, n, 8192, enc, cap, &enc_len) != 0 ||
			 h5lz4_decode(enc, enc_len, dec, n, &dec_len) != 0 || dec_len != n ||
			 memcmp(src, dec, n) != 0;
		free(src);
		free(enc);
		free(dec);
	}
	return failed ? (void *)1 : NULL;
}

static void test_concurrent_use(void **state)
{
	pthread_t threads[4];

	(void)state;
	for (uintptr_t i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, round_trip_worker, (void *)(i + 1)), 0);
	for (int i = 0; i < 4; i++) {
		void *result = (void *)1;

		assert_int_equal(pthread_join(threads[i], &result), 0);
		assert_null(result);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_chunk_decodes),
		cmocka_unit_test(test_layout_of_compressed_blocks),
		cmocka_unit_test(test_incompressible_blocks_are_stored_raw),
		cmocka_unit_test(test_block_size_never_exceeds_chunk),
		cmocka_unit_test(test_empty_chunk),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_encode_rejects_bad_arguments),
		cmocka_unit_test(test_decode_needs_room),
		cmocka_unit_test(test_every_truncation_fails),
		cmocka_unit_test(test_trailing_bytes_fail_zero_padding_decodes),
		cmocka_unit_test(test_flipped_bits),
		cmocka_unit_test(test_lying_headers),
		cmocka_unit_test(test_expansion_limit),
		cmocka_unit_test(test_block_decoding_to_wrong_length),
		cmocka_unit_test(test_raw_chunk_decodes_in_place),
		cmocka_unit_test(test_in_place_refuses_compressed_and_corrupt_chunks),
		cmocka_unit_test(test_concurrent_use),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
