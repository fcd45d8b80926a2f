/*
 * crc32c.c - CRC-32C for the frame protocol's trailer (see crc32c.h).
 *
 * Three implementations behind one entry point. The portable one is the
 * classic slicing-by-8 table method: eight 256-entry tables let the loop
 * fold eight input bytes per step with independent lookups. The fast ones
 * use the SSE4.2 `crc32` instruction, which computes exactly this
 * polynomial, and, for buffers of 1 KiB and more where the CPU has AVX-512
 * VPCLMULQDQ, carry-less multiplication; they are compiled with
 * per-function target attributes, so the rest of the program needs no
 * special flags and still runs on CPUs without them. The choice is made
 * once, under pthread_once, together with building the tables and
 * constants, so any thread may call in at any time.
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
 *
 * Why folding on top: `crc32` takes 8 bytes per cycle at best (21-31 GB/s
 * measured on 400 kB buffers), a 512-bit carry-less multiply four 16-byte
 * lanes per instruction (93 GB/s). The message is a polynomial over GF(2);
 * a 16-byte piece followed by n bits is congruent, modulo the CRC
 * polynomial, to that piece times x^n reduced to below 96 bits, which is
 * two carry-less products with constants x^k mod P (see struct
 * crc32c_fold). Sixteen lanes fold forward until the tail, are folded into
 * one 16-byte piece congruent to all that was read, and `crc32` finishes
 * from there: no Barrett reduction, no tables.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HAVE_SSE42_PATH 1
#include <immintrin.h>
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

/* Shorter buffers than this take the three-stream path. */
#define CRC32C_FOLD_MIN 1024u

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

/* x^exponent modulo the polynomial. */
static uint32_t x_pow_mod_poly(uint64_t exponent)
{
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
	uint32_t factor = x_pow_mod_poly(nbytes * 8);

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

/*
 * Folding constants of the carry-less multiply path, for moving a 128-bit
 * piece of message forward by `bits`. The piece is taken as two 64-bit
 * halves in memory order; the first half stands for A(x) * x^64, the second
 * for B(x). With a 64-bit factor whose bit s holds the coefficient of
 * x^(63 - s), the carry-less product of a half with the factor holds, bit
 * for bit in the same memory order, x * half * factor: so the factors are
 * x^(bits + 63) and x^(bits - 1) modulo the polynomial, in the top 32 bits.
 * The folded result (both products XORed) has degree below 96, so it is
 * again a 128-bit piece of message, congruent modulo the polynomial.
 */
struct crc32c_fold {
	uint64_t first;  /* for the half in the lower eight bytes */
	uint64_t second; /* for the half in the upper eight bytes */
};

static struct crc32c_fold crc32c_fold_2048; /* four 512-bit registers */
static struct crc32c_fold crc32c_fold_512;  /* one register */
static struct crc32c_fold crc32c_fold_128;  /* one lane */

static void build_fold(struct crc32c_fold *fold, uint64_t bits)
{
	fold->first = (uint64_t)x_pow_mod_poly(bits + 63) << 32;
	fold->second = (uint64_t)x_pow_mod_poly(bits - 1) << 32;
}

#endif

static void crc32c_init(void)
{
	build_tables();
	crc32c_impl = crc32c_update_portable;
#ifdef CRC32C_HAVE_SSE42_PATH
	build_shift(&crc32c_shift_long, CRC32C_LONG_BLOCK);
	build_shift(&crc32c_shift_short, CRC32C_SHORT_BLOCK);
	build_fold(&crc32c_fold_2048, 2048);
	build_fold(&crc32c_fold_512, 512);
	build_fold(&crc32c_fold_128, 128);
	if (crc32c_have_sse42())
		crc32c_impl = crc32c_update_sse42;
	if (crc32c_have_avx512())
		crc32c_impl = crc32c_update_avx512;
#endif
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

/* Moving lanes forward: x^bits * (each 128-bit lane) mod P, as a lane. */
__attribute__((target("avx512f,vpclmulqdq")))
static __m512i fold_512(__m512i lanes, __m512i factors)
{
	return _mm512_xor_si512(_mm512_clmulepi64_epi128(lanes, factors, 0x00),
				_mm512_clmulepi64_epi128(lanes, factors, 0x11));
}

__attribute__((target("pclmul,sse4.2")))
static __m128i fold_128(__m128i lane, __m128i factors)
{
	return _mm_xor_si128(_mm_clmulepi64_si128(lane, factors, 0x00),
			     _mm_clmulepi64_si128(lane, factors, 0x11));
}

__attribute__((target("avx512f,vpclmulqdq")))
static __m512i fold_factors_512(const struct crc32c_fold *fold)
{
	return _mm512_broadcast_i32x4(_mm_set_epi64x((long long)fold->second,
						     (long long)fold->first));
}

/*
 * Sixteen 128-bit lanes, in four 512-bit registers, each fold 256 bytes
 * forward per step; then the registers, then the lanes, are folded into
 * one 128-bit piece congruent to everything read, whose CRC the crc32
 * instruction takes from there. crc is the raw register; len >= 256.
 */
__attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))
static uint32_t fold_avx512(uint32_t crc, const unsigned char **pp, size_t *lenp)
{
	const unsigned char *p = *pp;
	size_t len = *lenp;
	__m512i step = fold_factors_512(&crc32c_fold_2048);
	__m512i next = fold_factors_512(&crc32c_fold_512);
	__m512i x0 = _mm512_loadu_si512(p), x1 = _mm512_loadu_si512(p + 64);
	__m512i x2 = _mm512_loadu_si512(p + 128), x3 = _mm512_loadu_si512(p + 192);

	/* the register's start value acts as XORed into the first 4 bytes */
	x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
	for (p += 256, len -= 256; len >= 256; p += 256, len -= 256) {
		x0 = _mm512_xor_si512(fold_512(x0, step), _mm512_loadu_si512(p));
		x1 = _mm512_xor_si512(fold_512(x1, step), _mm512_loadu_si512(p + 64));
		x2 = _mm512_xor_si512(fold_512(x2, step), _mm512_loadu_si512(p + 128));
		x3 = _mm512_xor_si512(fold_512(x3, step), _mm512_loadu_si512(p + 192));
	}
	x0 = _mm512_xor_si512(fold_512(x0, next), x1);
	x0 = _mm512_xor_si512(fold_512(x0, next), x2);
	x0 = _mm512_xor_si512(fold_512(x0, next), x3);
	for (; len >= 64; p += 64, len -= 64)
		x0 = _mm512_xor_si512(fold_512(x0, next), _mm512_loadu_si512(p));

	__m128i lane_step = _mm_set_epi64x((long long)crc32c_fold_128.second,
					   (long long)crc32c_fold_128.first);
	__m128i v = _mm512_extracti32x4_epi32(x0, 0);
	v = _mm_xor_si128(fold_128(v, lane_step), _mm512_extracti32x4_epi32(x0, 1));
	v = _mm_xor_si128(fold_128(v, lane_step), _mm512_extracti32x4_epi32(x0, 2));
	v = _mm_xor_si128(fold_128(v, lane_step), _mm512_extracti32x4_epi32(x0, 3));
	for (; len >= 16; p += 16, len -= 16)
		v = _mm_xor_si128(fold_128(v, lane_step), _mm_loadu_si128((const void *)p));

	uint64_t crc64 = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(v));
	crc64 = _mm_crc32_u64(crc64, (uint64_t)_mm_extract_epi64(v, 1));
	*pp = p;
	*lenp = len;
	return (uint32_t)crc64;
}

bool crc32c_have_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") &&
	       __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq");
}

__attribute__((target("sse4.2")))
uint32_t crc32c_update_avx512(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (len < CRC32C_FOLD_MIN)
		return crc32c_update_sse42(crc, data, len);
	pthread_once(&crc32c_once, crc32c_init);
	crc = fold_avx512(~crc, &p, &len);
	while (len--)
		crc = _mm_crc32_u8(crc, *p++);
	return ~crc;
}

#else

bool crc32c_have_sse42(void)
{
	return false;
}

bool crc32c_have_avx512(void)
{
	return false;
}

uint32_t crc32c_update_avx512(uint32_t crc, const void *data, size_t len)
{
	return crc32c_update_portable(crc, data, len);
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
