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
/* Block size used when none is given (0): the whole chunk, capped at the max. */

/* Worst-case encoded size of nbytes with the given block size (0 = whole
 * chunk); 0 if the size cannot be represented. */
size_t h5lz4_bound(size_t nbytes, uint32_t block_size);

/*
 * Encode src[0..nbytes) into dst (capacity dst_cap, at least
 * h5lz4_bound(nbytes, block_size)). block_size 0 means one block for the
 * whole chunk. Stores the encoded length in *out_len.
 * Errors: -EINVAL (block size above H5LZ4_MAX_BLOCK_SIZE), -ENOSPC (dst too
 * small).
 */
int h5lz4_encode(const void *src, size_t nbytes, uint32_t block_size,
		 void *dst, size_t dst_cap, size_t *out_len);

/*
 * Read and validate the header of an encoded chunk of n bytes: stores the
 * uncompressed size. Errors: -EBADMSG (truncated or inconsistent header).
 */
int h5lz4_decoded_size(const void *src, size_t n, uint64_t *size);

/*
 * Decode an encoded chunk of n bytes into dst (capacity dst_cap, at least the
 * size from h5lz4_decoded_size). Every length is checked against the header
 * and against n; a corrupt, truncated or lying chunk gives -EBADMSG, never an
 * overread. Stores the decoded length in *out_len.
 */
int h5lz4_decode(const void *src, size_t n, void *dst, size_t dst_cap, size_t *out_len);

#endif
