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
 *
 * Why three streams: one chain of `crc32` instructions is bound by their
 * latency (3 cycles on the Intel cores we run on) while the CPU could start
 * one per cycle, and every frame payload is checked on the loop thread. So a
 * long buffer is cut into three equal blocks whose CRCs run interleaved, as
 * three independent chains, and are then joined. Joining uses linearity:
 * the register after block A then block B equals the register after A moved
 * over |B| zero bytes, XOR the register of B alone started from 0. Moving a
 * register over n zero bytes is multiplication by x^(8n) modulo the
 * polynomial, a linear map of the 32 register bits, so for each fixed block
 * size it is tabulated (four 256-entry tables, one per register byte) at
 * start-up, from x^(8n) computed by repeated squaring. Two block sizes keep
 * the join cost negligible for long buffers and still cover shorter ones.
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

#ifdef CRC32C_HAVE_SSE42_PATH

/* Block sizes of the three-stream path, in bytes (multiples of 8). */
#define CRC32C_LONG_BLOCK 8192u
#define CRC32C_SHORT_BLOCK 256u

/* Moves a register over a fixed number of zero bytes (see the top). */
struct crc32c_shift {
	uint32_t table[4][256];
};

static struct crc32c_shift crc32c_shift_long;
static struct crc32c_shift crc32c_shift_short;

/*
 * a(x) * b(x) modulo the polynomial, both in the reflected representation
 * the register uses: the most significant bit is the coefficient of x^0,
 * bit 0 that of x^31.
 */
static uint32_t multiply_mod_poly(uint32_t a, uint32_t b)
{
	uint32_t product = 0;

	for (uint32_t term = 0x80000000u; term != 0; term >>= 1) {
		if (a & term)
			product ^= b;
		b = (b & 1u) ? (b >> 1) ^ CRC32C_POLY : b >> 1; /* b *= x */
	}
	return product;
}

/* x^(8 * nbytes) modulo the polynomial. */
static uint32_t x_pow_8n_mod_poly(uint64_t nbytes)
{
	uint64_t exponent = nbytes * 8;
	uint32_t square = 0x40000000u; /* x^1 */
	uint32_t result = 0x80000000u; /* x^0 */

	for (; exponent != 0; exponent >>= 1) {
		if (exponent & 1u)
			result = multiply_mod_poly(result, square);
		square = multiply_mod_poly(square, square);
	}
	return result;
}

static void build_shift(struct crc32c_shift *shift, uint64_t nbytes)
{
	uint32_t factor = x_pow_8n_mod_poly(nbytes);

	for (unsigned byte = 0; byte < 4; byte++)
		for (uint32_t value = 0; value < 256; value++)
			shift->table[byte][value] =
				multiply_mod_poly(factor, value << (8 * byte));
}

/* The register crc moved over the shift's number of zero bytes. */
static uint32_t apply_shift(const struct crc32c_shift *shift, uint32_t crc)
{
	return shift->table[0][crc & 0xFFu] ^ shift->table[1][(crc >> 8) & 0xFFu] ^
	       shift->table[2][(crc >> 16) & 0xFFu] ^ shift->table[3][crc >> 24];
}

#endif

static void crc32c_init(void)
{
	build_tables();
#ifdef CRC32C_HAVE_SSE42_PATH
	build_shift(&crc32c_shift_long, CRC32C_LONG_BLOCK);
	build_shift(&crc32c_shift_short, CRC32C_SHORT_BLOCK);
#endif
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

/*
 * Three interleaved chains over consecutive blocks of `block` bytes each,
 * for as long as three whole blocks remain; crc is the raw (inverted)
 * register and is returned as such.
 */
__attribute__((target("sse4.2")))
static uint64_t three_streams(uint64_t crc, const unsigned char **pp, size_t *lenp,
			      size_t block, const struct crc32c_shift *shift)
{
	const unsigned char *p = *pp;
	size_t len = *lenp;

	while (len >= 3 * block) {
		uint64_t crc1 = 0, crc2 = 0;
		const unsigned char *end = p + block;

		for (; p < end; p += 8) {
			uint64_t word0, word1, word2;
			memcpy(&word0, p, sizeof(word0));
			memcpy(&word1, p + block, sizeof(word1));
			memcpy(&word2, p + 2 * block, sizeof(word2));
			crc = _mm_crc32_u64(crc, word0);
			crc1 = _mm_crc32_u64(crc1, word1);
			crc2 = _mm_crc32_u64(crc2, word2);
		}
		crc = apply_shift(shift, (uint32_t)crc) ^ (uint32_t)crc1;
		crc = apply_shift(shift, (uint32_t)crc) ^ (uint32_t)crc2;
		p += 2 * block;
		len -= 3 * block;
	}
	*pp = p;
	*lenp = len;
	return crc;
}

__attribute__((target("sse4.2")))
uint32_t crc32c_update_sse42(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t crc64;

	pthread_once(&crc32c_once, crc32c_init);
	crc = ~crc;
	while (len > 0 && ((uintptr_t)p & 7u) != 0) {
		crc = _mm_crc32_u8(crc, *p++);
		len--;
	}
	crc64 = three_streams(crc, &p, &len, CRC32C_LONG_BLOCK, &crc32c_shift_long);
	crc64 = three_streams(crc64, &p, &len, CRC32C_SHORT_BLOCK, &crc32c_shift_short);
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
