/*
 * crc32c.c - CRC-32C for the frame protocol's trailer (see crc32c.h).
 *
 * Two implementations behind one entry point. The portable one is the
 * classic slicing-by-8 table method: eight 256-entry tables let the loop
 * fold eight input bytes per step with independent lookups. The fast one
 * uses the SSE4.2 `crc32` instruction, which computes exactly this
 * polynomial; it is compiled with a per-function target attribute, so the
 * rest of the program needs no -msse4.2 and still runs on CPUs without it.
 * The choice is made once, under pthread_once, together with building the
 * tables, so any thread may call in at any time.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HAVE_SSE42_PATH 1
#include <nmmintrin.h>
#endif

/* Reflected Castagnoli polynomial. */
#define CRC32C_POLY 0x82F63B78u

typedef uint32_t (*crc32c_impl_fn)(uint32_t crc, const void *data, size_t len);

static uint32_t crc32c_table[8][256];
static crc32c_impl_fn crc32c_impl;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void build_tables(void)
{
	for (uint32_t byte = 0; byte < 256; byte++) {
		uint32_t crc = byte;
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 1u) ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
		crc32c_table[0][byte] = crc;
	}
	for (int slice = 1; slice < 8; slice++) {
		for (int byte = 0; byte < 256; byte++) {
			uint32_t prev = crc32c_table[slice - 1][byte];
			crc32c_table[slice][byte] = (prev >> 8) ^ crc32c_table[0][prev & 0xFFu];
		}
	}
}

static void crc32c_init(void)
{
	build_tables();
	crc32c_impl = crc32c_have_sse42() ? crc32c_update_sse42 : crc32c_update_portable;
}

static uint32_t load_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The running value is kept inverted inside; callers see the final form. */
static uint32_t fold_slices_of_8(uint32_t crc, const unsigned char **pp, size_t *lenp)
{
	const unsigned char *p = *pp;
	size_t len = *lenp;

	while (len >= 8) {
		uint32_t lo = crc ^ load_le32(p);
		uint32_t hi = load_le32(p + 4);
		crc = crc32c_table[7][lo & 0xFFu] ^ crc32c_table[6][(lo >> 8) & 0xFFu] ^
		      crc32c_table[5][(lo >> 16) & 0xFFu] ^ crc32c_table[4][lo >> 24] ^
		      crc32c_table[3][hi & 0xFFu] ^ crc32c_table[2][(hi >> 8) & 0xFFu] ^
		      crc32c_table[1][(hi >> 16) & 0xFFu] ^ crc32c_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	*pp = p;
	*lenp = len;
	return crc;
}

uint32_t crc32c_update_portable(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	pthread_once(&crc32c_once, crc32c_init);
	crc = ~crc;
	crc = fold_slices_of_8(crc, &p, &len);
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xFFu];
	return ~crc;
}

#ifdef CRC32C_HAVE_SSE42_PATH

bool crc32c_have_sse42(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t crc32c_update_sse42(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t crc64;

	crc = ~crc;
	while (len > 0 && ((uintptr_t)p & 7u) != 0) {
		crc = _mm_crc32_u8(crc, *p++);
		len--;
	}
	crc64 = crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t word;
		memcpy(&word, p, sizeof(word));
		crc64 = _mm_crc32_u64(crc64, word);
	}
	crc = (uint32_t)crc64;
	while (len--)
		crc = _mm_crc32_u8(crc, *p++);
	return ~crc;
}

#else

bool crc32c_have_sse42(void)
{
	return false;
}

uint32_t crc32c_update_sse42(uint32_t crc, const void *data, size_t len)
{
	return crc32c_update_portable(crc, data, len);
}

#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_impl(crc, data, len);
}

uint32_t crc32c(const void *data, size_t len)
{
	return crc32c_update(0, data, len);
}
