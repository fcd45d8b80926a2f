/*
 * h5lz4.c - encoder and decoder of the LZ4 chunk format of HDF5 filter 32004.
 *
 * This is the whole codec: the plugin (h5z_lz4.c) and the recorder's storage
 * engine both call it, so a chunk written by either is the same bytes. The
 * LZ4 work itself is liblz4's (LZ4_compress_default, LZ4_decompress_safe);
 * this file only does the framing.
 *
 * Encoding never needs scratch space: each block is compressed straight into
 * its place in the output with a capacity of one byte less than the block,
 * so LZ4 gives up (returns 0) exactly when the block would not shrink, and
 * the block is then copied raw. The encoded size is therefore never more than
 * header + 4 bytes per block + the input, which is h5lz4_bound().
 *
 * Decoding trusts nothing. Before a single byte is decoded (and before the
 * plugin allocates the output), h5lz4_decoded_size() walks the block table
 * and checks that every stored length fits the chunk, that the blocks
 * account for exactly the announced size, that nothing but zero bytes
 * follows them (h5rec pads a chunk it rewrites in place to the size of its
 * last write; other decoders stop at the announced size too), and that no
 * block claims more than LZ4 can produce from its stored bytes. That last rule bounds the allocation a lying header can cause to
 * H5LZ4_MAX_EXPANSION times the chunk's stored size.
 *
 * Threading: no state, no allocation (liblz4 keeps its compression state on
 * the stack); any number of threads may call these functions at once.
 */
#include "h5lz4.h"

#include <errno.h>
#include <string.h>

#include <lz4.h>

#define H5LZ4_LENGTH_SIZE 4

/*
 * In an LZ4 block every sequence decodes to at most 255 bytes per byte it
 * occupies (a match length grows by at most 255 per extension byte, and a
 * sequence with a match costs at least 3 bytes for at most 18 bytes of
 * match without extension bytes; literals are 1:1). A compressed block that
 * claims more than this is a lie, whatever its payload.
 */
#define H5LZ4_MAX_EXPANSION 255u

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t get_be64(const unsigned char *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/*
 * The block size written to the header: 0 asks for one block holding the
 * whole chunk, and a block is never announced larger than the chunk. This is
 * what the reference writers store, so identical input gives identical bytes.
 */
static uint32_t effective_block_size(size_t nbytes, uint32_t block_size)
{
	uint32_t size = block_size ? block_size : H5LZ4_MAX_BLOCK_SIZE;

	if ((uint64_t)size > (uint64_t)nbytes)
		size = (uint32_t)nbytes;
	return size;
}

size_t h5lz4_bound(size_t nbytes, uint32_t block_size)
{
	uint32_t size = effective_block_size(nbytes, block_size);
	size_t nblocks;

	if (block_size > H5LZ4_MAX_BLOCK_SIZE)
		return 0;
	if (nbytes == 0)
		return H5LZ4_HEADER_SIZE;
	nblocks = (nbytes - 1) / size + 1;
	if (nbytes > SIZE_MAX - H5LZ4_HEADER_SIZE ||
	    nblocks > (SIZE_MAX - H5LZ4_HEADER_SIZE - nbytes) / H5LZ4_LENGTH_SIZE)
		return 0;
	return H5LZ4_HEADER_SIZE + nblocks * H5LZ4_LENGTH_SIZE + nbytes;
}

int h5lz4_encode(const void *src, size_t nbytes, uint32_t block_size,
		 void *dst, size_t dst_cap, size_t *out_len)
{
	const unsigned char *in = src;
	unsigned char *out = dst;
	uint32_t size = effective_block_size(nbytes, block_size);
	size_t bound = h5lz4_bound(nbytes, block_size);
	size_t pos = H5LZ4_HEADER_SIZE;
	size_t done = 0;

	if (block_size > H5LZ4_MAX_BLOCK_SIZE)
		return -EINVAL;
	if (bound == 0)
		return -EOVERFLOW;
	if (dst_cap < bound)
		return -ENOSPC;

	put_be64(out, (uint64_t)nbytes);
	put_be32(out + 8, size);
	while (done < nbytes) {
		size_t block = nbytes - done < size ? nbytes - done : size;
		unsigned char *stored = out + pos + H5LZ4_LENGTH_SIZE;
		int packed = LZ4_compress_default((const char *)in + done, (char *)stored,
						  (int)block, (int)block - 1);

		if (packed <= 0) {
			memcpy(stored, in + done, block);
			packed = (int)block;
		}
		put_be32(out + pos, (uint32_t)packed);
		pos += H5LZ4_LENGTH_SIZE + (size_t)packed;
		done += block;
	}
	*out_len = pos;
	return 0;
}

/*
 * Read the stored length of the block at *pos that decodes to block bytes,
 * check it against the rest of the chunk and LZ4's expansion limit, and
 * advance *pos past the length field.
 */
static int next_block(const unsigned char *in, size_t n, size_t *pos, size_t block,
		      size_t *stored)
{
	uint32_t length;

	if (n - *pos < H5LZ4_LENGTH_SIZE)
		return -EBADMSG;
	length = get_be32(in + *pos);
	*pos += H5LZ4_LENGTH_SIZE;
	if (length == 0 || length > block || length > n - *pos)
		return -EBADMSG;
	if (length < block && (uint64_t)block > (uint64_t)length * H5LZ4_MAX_EXPANSION)
		return -EBADMSG;
	*stored = length;
	return 0;
}

/* Validate the header and the whole block table; see the file comment. */
static int check_chunk(const unsigned char *in, size_t n, uint64_t *size_out,
		       uint32_t *block_size_out)
{
	uint64_t size;
	uint32_t block_size;
	size_t pos = H5LZ4_HEADER_SIZE;
	size_t left;
	int err;

	if (n < H5LZ4_HEADER_SIZE)
		return -EBADMSG;
	size = get_be64(in);
	block_size = get_be32(in + 8);
	if (block_size > H5LZ4_MAX_BLOCK_SIZE || (block_size == 0 && size != 0))
		return -EBADMSG;
	if (size > SIZE_MAX)
		return -EBADMSG;
	for (left = (size_t)size; left > 0;) {
		size_t block = left < block_size ? left : block_size;
		size_t stored;

		err = next_block(in, n, &pos, block, &stored);
		if (err)
			return err;
		pos += stored;
		left -= block;
	}
	for (; pos < n; pos++) /* padding */
		if (in[pos])
			return -EBADMSG;
	*size_out = size;
	*block_size_out = block_size;
	return 0;
}

int h5lz4_decoded_size(const void *src, size_t n, uint64_t *size)
{
	uint32_t block_size;

	return check_chunk(src, n, size, &block_size);
}

int h5lz4_decode(const void *src, size_t n, void *dst, size_t dst_cap, size_t *out_len)
{
	const unsigned char *in = src;
	unsigned char *out = dst;
	uint64_t size;
	uint32_t block_size;
	size_t pos = H5LZ4_HEADER_SIZE;
	size_t done = 0;
	int err;

	err = check_chunk(in, n, &size, &block_size);
	if (err)
		return err;
	if (size > dst_cap)
		return -ENOSPC;
	while (done < size) {
		size_t block = (size_t)size - done < block_size ? (size_t)size - done : block_size;
		size_t stored;

		err = next_block(in, n, &pos, block, &stored);
		if (err)
			return err;
		if (stored == block) {
			memcpy(out + done, in + pos, block);
		} else if (LZ4_decompress_safe((const char *)in + pos, (char *)out + done,
					       (int)stored, (int)block) != (int)block) {
			return -EBADMSG;
		}
		pos += stored;
		done += block;
	}
	*out_len = done;
	return 0;
}

int h5lz4_decode_raw_in_place(void *buf, size_t n, size_t *out_len)
{
	unsigned char *p = buf;
	uint64_t size;
	uint32_t block_size;
	size_t pos = H5LZ4_HEADER_SIZE;
	size_t done = 0;
	int err;

	err = check_chunk(p, n, &size, &block_size);
	if (err)
		return err;
	for (size_t left = (size_t)size; left > 0;) {
		size_t block = left < block_size ? left : block_size;

		if (get_be32(p + pos) != block)
			return -EAGAIN;
		pos += H5LZ4_LENGTH_SIZE + block;
		left -= block;
	}
	/* Each block moves towards the front: its output offset is always
	 * below its input offset, so moving them in order never overwrites a
	 * block not yet moved. */
	for (pos = H5LZ4_HEADER_SIZE; done < size;) {
		size_t block = (size_t)size - done < block_size ? (size_t)size - done : block_size;

		memmove(p + done, p + pos + H5LZ4_LENGTH_SIZE, block);
		pos += H5LZ4_LENGTH_SIZE + block;
		done += block;
	}
	*out_len = done;
	return 0;
}
