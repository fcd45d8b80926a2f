/*
 * chunk_filter.h - HDF5's shuffle and Fletcher-32 filters on a chunk's
 * bytes, exactly as H5Zshuffle.c and H5checksum.c compute them: shared by
 * the storage engine, which encodes and checks chunks, and by the senders
 * that encode them themselves (issue 19). libc only; pure, any thread.
 */
#ifndef H5REC_CHUNK_FILTER_H
#define H5REC_CHUNK_FILTER_H

#include <stddef.h>
#include <stdint.h>

/* Byte k of element i goes to k * n + i (n = len / elem whole elements;
 * the bytes past them stay at the end). */
void chunk_shuffle(const unsigned char *restrict src, unsigned char *restrict dst, size_t len,
		   size_t elem);
/* The inverse. */
void chunk_unshuffle(const unsigned char *restrict src, unsigned char *restrict dst, size_t len,
		     size_t elem);
/* Fletcher-32 as HDF5 computes it: big-endian 16-bit words (an odd last
 * byte as a word's high byte), both sums folded every 360 words. HDF5
 * appends it little-endian. */
uint32_t chunk_fletcher32(const unsigned char *data, size_t len);

#endif
