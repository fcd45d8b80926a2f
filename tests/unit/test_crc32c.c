/*
 * test_crc32c.c - CRC-32C against published check values (the CRC catalogue's
 * "123456789" and the RFC 3720 appendix B.4 vectors), chaining, and the
 * SSE4.2 path against the portable table path on every length and alignment.
 * The SSE4.2 path runs three interleaved chains over blocks of 8 KiB and of
 * 256 bytes once three such blocks remain, and joins them; the AVX-512 path
 * folds 256, then 64, then 16 bytes at a time from 1 KiB on: lengths around
 * those boundaries, and random lengths, alignments and starting values up
 * to several long blocks, check every join and every fold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc32c.h"

static void test_check_value(void **state)
{
	(void)state;
	assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c_update_portable(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c("", 0), 0);
}

static void test_rfc3720_vectors(void **state)
{
	unsigned char buf[32];
	(void)state;

	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c(buf, sizeof(buf)), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	assert_int_equal(crc32c(buf, sizeof(buf)), 0x62A8AB43u);
	for (unsigned i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	assert_int_equal(crc32c(buf, sizeof(buf)), 0x46DD794Eu);
	for (unsigned i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	assert_int_equal(crc32c(buf, sizeof(buf)), 0x113FDB5Cu);
}

static void test_rfc3720_iscsi_read_pdu(void **state)
{
	static const unsigned char pdu[48] = {
		0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	(void)state;
	assert_int_equal(crc32c(pdu, sizeof(pdu)), 0xD9963A56u);
	assert_int_equal(crc32c_update_portable(0, pdu, sizeof(pdu)), 0xD9963A56u);
}

static void test_chaining_equals_one_pass(void **state)
{
	unsigned char buf[1000];
	(void)state;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	uint32_t whole = crc32c(buf, sizeof(buf));
	for (size_t split = 0; split <= sizeof(buf); split += 37) {
		uint32_t crc = crc32c_update(0, buf, split);
		crc = crc32c_update(crc, buf + split, sizeof(buf) - split);
		assert_int_equal(crc, whole);
	}
}

static unsigned char *random_buffer(size_t len, unsigned seed)
{
	unsigned char *buf = malloc(len);

	assert_non_null(buf);
	srand(seed);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)rand();
	return buf;
}

/* Every length 0..300 at every alignment 0..15, plus one large buffer: the
 * two implementations must agree bit for bit. */
static void test_sse42_matches_portable(void **state)
{
	enum { BIG = 1 << 20 };
	unsigned char *buf = malloc(BIG + 16);
	(void)state;

	assert_non_null(buf);
	srand(12345);
	for (size_t i = 0; i < BIG + 16; i++)
		buf[i] = (unsigned char)rand();
	if (!crc32c_have_sse42()) {
		free(buf);
		skip();
	}
	for (size_t align = 0; align < 16; align++) {
		for (size_t len = 0; len <= 300; len++) {
			uint32_t seed = (uint32_t)(len * 2654435761u);
			assert_int_equal(crc32c_update_sse42(seed, buf + align, len),
					 crc32c_update_portable(seed, buf + align, len));
		}
	}
	assert_int_equal(crc32c_update_sse42(0, buf + 3, BIG),
			 crc32c_update_portable(0, buf + 3, BIG));
	free(buf);
}

/* The same for the AVX-512 folding path, over every length that reaches it
 * up to a few of its steps. */
static void test_avx512_matches_portable(void **state)
{
	enum { BIG = 1 << 20 };
	unsigned char *buf = random_buffer(BIG + 64, 2024);
	(void)state;

	if (!crc32c_have_avx512()) {
		free(buf);
		skip();
	}
	for (size_t align = 0; align < 64; align += 7)
		for (size_t len = 0; len <= 2200; len++) {
			uint32_t seed = (uint32_t)(len * 2654435761u + align);
			assert_int_equal(crc32c_update_avx512(seed, buf + align, len),
					 crc32c_update_portable(seed, buf + align, len));
		}
	assert_int_equal(crc32c_update_avx512(0, buf + 5, BIG),
			 crc32c_update_portable(0, buf + 5, BIG));
	free(buf);
}

static void check_against_portable(const unsigned char *buf, size_t len, uint32_t seed)
{
	uint32_t expected = crc32c_update_portable(seed, buf, len);

	assert_int_equal(crc32c_update_sse42(seed, buf, len), expected);
	assert_int_equal(crc32c_update(seed, buf, len), expected);
	if (crc32c_have_avx512())
		assert_int_equal(crc32c_update_avx512(seed, buf, len), expected);
}

/* Lengths at and around multiples of three blocks, at every alignment mod 8,
 * where the path switches between three chains and one. */
static void test_sse42_block_boundaries(void **state)
{
	static const size_t bases[] = {3 * 256, 6 * 256, 3 * 8192, 3 * 8192 + 3 * 256,
				       6 * 8192, 9 * 8192 + 2 * 3 * 256,
				       1024, 1024 + 64, 1024 + 256, 1024 + 256 + 64 + 16, 4096 + 3 * 64};
	enum { MAX = 9 * 8192 + 2 * 3 * 256 + 64 };
	unsigned char *buf = random_buffer(MAX + 8, 777);
	(void)state;

	if (!crc32c_have_sse42()) {
		free(buf);
		skip();
	}
	for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++)
		for (size_t len = bases[b] - 17; len <= bases[b] + 17; len++)
			for (size_t align = 0; align < 8; align++)
				check_against_portable(buf + align, len,
						       (uint32_t)(len * 2246822519u + align));
	free(buf);
}

/* Random lengths (up to seven long blocks), alignments and starting values. */
static void test_sse42_random_lengths(void **state)
{
	enum { MAX = 7 * 8192 * 3 };
	unsigned char *buf = random_buffer(MAX + 64, 4242);
	(void)state;

	if (!crc32c_have_sse42()) {
		free(buf);
		skip();
	}
	srand(99);
	for (int i = 0; i < 400; i++) {
		size_t len = (size_t)rand() % MAX;
		size_t align = (size_t)rand() % 64;
		uint32_t seed = (uint32_t)rand() * 2654435761u;
		check_against_portable(buf + align, len, seed);
	}
	free(buf);
}

/* A payload checked in pieces, as frames cut by reads would be, gives the
 * one-pass value wherever the cuts fall relative to the blocks. */
static void test_sse42_chaining_long(void **state)
{
	enum { LEN = 400000 };
	unsigned char *buf = random_buffer(LEN, 31337);
	(void)state;

	uint32_t whole = crc32c_update_portable(0, buf, LEN);
	srand(7);
	for (int i = 0; i < 50; i++) {
		uint32_t crc = 0;
		for (size_t at = 0; at < LEN;) {
			size_t piece = 1 + (size_t)rand() % 70000;
			if (piece > LEN - at)
				piece = LEN - at;
			crc = crc32c_update(crc, buf + at, piece);
			at += piece;
		}
		assert_int_equal(crc, whole);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_rfc3720_vectors),
		cmocka_unit_test(test_rfc3720_iscsi_read_pdu),
		cmocka_unit_test(test_chaining_equals_one_pass),
		cmocka_unit_test(test_sse42_matches_portable),
		cmocka_unit_test(test_avx512_matches_portable),
		cmocka_unit_test(test_sse42_block_boundaries),
		cmocka_unit_test(test_sse42_random_lengths),
		cmocka_unit_test(test_sse42_chaining_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
