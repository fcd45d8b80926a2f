/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of the frame protocol's
 * optional trailer (SPEC §3.1).
 *
 * None of the project's dependencies provides CRC-32C (zlib has only the
 * IEEE CRC-32), so it lives here: AVX-512 carry-less multiplication for
 * long buffers and the SSE4.2 `crc32` instruction in three interleaved
 * chains when the CPU has them (checked once at run time), else a portable
 * slicing-by-8 table.
 * Both give identical results; the tests compare them.
 *
 * The functions are pure and thread-safe: the one-time table set-up and CPU
 * check run under pthread_once.
 *
 * Conventions: reflected polynomial 0x82F63B78, initial value and final XOR
 * 0xFFFFFFFF, handled inside, so a running value chains directly:
 * crc32c_update(crc32c_update(0, a, na), b, nb) == crc32c of a followed by b,
 * and crc32c("123456789", 9) == 0xE3069283.
 */
#ifndef H5REC_CRC32C_H
#define H5REC_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC-32C of data[0..len). */
uint32_t crc32c(const void *data, size_t len);

/* Continue the CRC-32C `crc` (0 to start, or an earlier result) over
 * data[0..len), using the fastest implementation the CPU supports. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t len);

/* The table implementation, always available. */
uint32_t crc32c_update_portable(uint32_t crc, const void *data, size_t len);

/* Does this CPU run crc32c_update_sse42()? */
bool crc32c_have_sse42(void);

/* The SSE4.2 implementation; only call it when crc32c_have_sse42() is true.
 * Exposed so the tests can check it against the portable one. */
uint32_t crc32c_update_sse42(uint32_t crc, const void *data, size_t len);

/* Does this CPU (and OS) run crc32c_update_avx512()? */
bool crc32c_have_avx512(void);

/* Carry-less multiply folding with AVX-512 VPCLMULQDQ for long buffers (the
 * SSE4.2 path for short ones); only call it when crc32c_have_avx512() is
 * true. Exposed for the tests. */
uint32_t crc32c_update_avx512(uint32_t crc, const void *data, size_t len);

#endif
