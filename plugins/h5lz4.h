/*
 * h5lz4.h - the LZ4 chunk format of HDF5 filter 32004 (SPEC §5).
 *
 * One small library, used twice: by the HDF5 filter plugin (what readers
 * load) and by the recorder's storage engine, which compresses whole chunks
 * in its worker threads and hands the result to H5Dwrite_chunk. Both must
 * produce and accept exactly the registered format:
 *
 *   8 bytes  big-endian uncompressed size of the chunk
 *   4 bytes  big-endian block size
 *   per block: 4 bytes big-endian stored length, then the block; a block
 *   that LZ4 does not shrink is stored raw, with stored length equal to the
 *   block's uncompressed size.
 *
 * The functions are pure (no global state, no allocation) and thread-safe.
 * They return 0 or a negative errno code.
 */
#ifndef H5REC_H5LZ4_H
#define H5REC_H5LZ4_H

#include <stddef.h>
#include <stdint.h>

#define H5LZ4_FILTER_ID 32004
#define H5LZ4_HEADER_SIZE 12
/* Largest block the format allows (LZ4's own input limit). */
#define H5LZ4_MAX_BLOCK_SIZE 0x7E000000u
/* Block size 0 (none given) means the whole chunk, capped at the max. */

/* Worst-case encoded size of nbytes with the given block size (0 = whole
 * chunk): the header, 4 bytes per block and the input itself, since a block
 * that does not shrink is stored raw. 0 if the size cannot be represented or
 * block_size is above H5LZ4_MAX_BLOCK_SIZE. */
size_t h5lz4_bound(size_t nbytes, uint32_t block_size);

/*
 * Encode src[0..nbytes) into dst (capacity dst_cap, at least
 * h5lz4_bound(nbytes, block_size)). block_size 0 means one block for the
 * whole chunk; a block size larger than the chunk is written as the chunk
 * size, as the reference encoder does. Stores the encoded length in *out_len.
 * Errors: -EINVAL (block size above H5LZ4_MAX_BLOCK_SIZE), -ENOSPC (dst_cap
 * below the bound), -EOVERFLOW (bound not representable).
 */
int h5lz4_encode(const void *src, size_t nbytes, uint32_t block_size,
		 void *dst, size_t dst_cap, size_t *out_len);

/*
 * Read and validate the header of an encoded chunk of n bytes: stores the
 * uncompressed size. The whole block table is checked, not just the first
 * 12 bytes: block size 0 (for a non-empty chunk) or above the maximum, a
 * stored length of 0, above its block's size, past the end of the chunk, or
 * promising more than LZ4 can expand to, blocks that do not add up to the
 * size or that leave bytes over at the end. So a size that passes is at most
 * 255 times n and safe to allocate. Nothing is decompressed here.
 * Errors: -EBADMSG (truncated or inconsistent header).
 */
int h5lz4_decoded_size(const void *src, size_t n, uint64_t *size);

/*
 * Decode an encoded chunk of n bytes into dst (capacity dst_cap, at least the
 * size from h5lz4_decoded_size). Every length is checked against the header
 * and against n; a corrupt, truncated or lying chunk gives -EBADMSG, never an
 * overread or a write past the decoded size. Stores the decoded length in
 * *out_len. Errors: -EBADMSG (corrupt chunk; dst may hold partial output),
 * -ENOSPC (dst_cap below the decoded size).
 */
int h5lz4_decode(const void *src, size_t n, void *dst, size_t dst_cap, size_t *out_len);

/*
 * Decode, in place, an encoded chunk of n bytes in which every block is
 * stored raw (what incompressible data, e.g. noisy float waveforms, turns
 * into): the data is moved to the front of buf, saving the reader an
 * allocation and a copy. Stores the decoded length in *out_len.
 * Errors: -EAGAIN (some block is compressed: use h5lz4_decode; buf is
 * untouched), -EBADMSG (as h5lz4_decode; buf is untouched).
 */
int h5lz4_decode_raw_in_place(void *buf, size_t n, size_t *out_len);

#endif
