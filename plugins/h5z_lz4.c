/*
 * h5z_lz4.c - HDF5 filter 32004 (LZ4): the glue between HDF5's filter
 * pipeline and the codec in h5lz4.c.
 *
 * HDF5 hands the filter one chunk in a buffer it allocated and expects the
 * result in a buffer the filter allocates with H5allocate_memory (the
 * library frees it with H5free_memory; a plugin must not use its own
 * malloc, which may belong to another C runtime). The output is sized before
 * it is allocated: by h5lz4_bound() when compressing, and when decompressing
 * by the size in the chunk header, but only after h5lz4_decoded_size() has
 * validated the whole block table, so a corrupt or hostile chunk cannot ask
 * for a huge allocation. A chunk LZ4 could not shrink at all (all blocks
 * raw: noisy waveforms often are) is decoded in place in HDF5's buffer,
 * which spares a chunk-sized allocation and copy on every read of such data.
 * Any failure returns 0, which HDF5 turns into a read or write error, with a
 * message on HDF5's error stack.
 *
 * On read, cd_values are ignored: the block size that matters is the one in
 * each chunk's header, so files written with any block size, by any
 * conforming writer, read the same.
 *
 * Threading: whatever HDF5 allows; the filter keeps no state.
 */
#include "h5z_lz4.h"

#include <errno.h>

#include "h5lz4.h"

#define H5Z_LZ4_NAME "lz4 (h5rec; registered LZ4 format, id 32004)"

/* Non-variadic wrapper so each call site reads as one line. */
#define lz4_error(minor, msg) \
	H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_PLINE, (minor), \
		 "%s", (msg))

/* Refuse, at H5Dcreate, a block size the format cannot hold, rather than
 * failing every chunk write later. */
static htri_t lz4_can_apply(hid_t dcpl_id, hid_t type_id, hid_t space_id)
{
	unsigned int flags;
	unsigned int values[4] = {0};
	size_t nvalues = sizeof(values) / sizeof(values[0]);

	(void)type_id;
	(void)space_id;
	if (H5Pget_filter_by_id2(dcpl_id, H5LZ4_FILTER_ID, &flags, &nvalues, values, 0, NULL,
				 NULL) < 0)
		return -1;
	if (nvalues > 0 && values[0] > H5LZ4_MAX_BLOCK_SIZE) {
		lz4_error(H5E_BADVALUE, "lz4: block size (cd_values[0]) above 0x7E000000");
		return -1;
	}
	return 1;
}

static size_t lz4_compress(unsigned int block_size, size_t nbytes, size_t *buf_size,
			   void **buf)
{
	size_t bound = h5lz4_bound(nbytes, block_size);
	size_t out_len = 0;
	void *out;

	if (bound == 0) {
		lz4_error(H5E_BADVALUE, "lz4: block size above 0x7E000000 or chunk too large");
		return 0;
	}
	out = H5allocate_memory(bound, 0);
	if (out == NULL) {
		lz4_error(H5E_NOSPACE, "lz4: cannot allocate the compressed chunk");
		return 0;
	}
	if (h5lz4_encode(*buf, nbytes, block_size, out, bound, &out_len) != 0) {
		H5free_memory(out);
		lz4_error(H5E_CANTFILTER, "lz4: compression failed");
		return 0;
	}
	H5free_memory(*buf);
	*buf = out;
	*buf_size = bound;
	return out_len;
}

static size_t lz4_decompress(size_t nbytes, size_t *buf_size, void **buf)
{
	uint64_t size = 0;
	size_t out_len = 0;
	void *out;
	int err;

	if (nbytes > *buf_size)
		err = -EBADMSG;
	else
		err = h5lz4_decode_raw_in_place(*buf, nbytes, &out_len);
	if (err == 0)
		return out_len;
	if (err == -EAGAIN)
		err = h5lz4_decoded_size(*buf, nbytes, &size);
	if (err) {
		lz4_error(H5E_BADVALUE, "lz4: corrupt chunk (bad header or block table)");
		return 0;
	}
	/* HDF5 has no empty chunks, but a zero-byte allocation is no output. */
	out = H5allocate_memory(size ? (size_t)size : 1, 0);
	if (out == NULL) {
		lz4_error(H5E_NOSPACE, "lz4: cannot allocate the decompressed chunk");
		return 0;
	}
	if (h5lz4_decode(*buf, nbytes, out, (size_t)size, &out_len) != 0) {
		H5free_memory(out);
		lz4_error(H5E_CANTFILTER, "lz4: corrupt chunk (LZ4 block does not decode)");
		return 0;
	}
	H5free_memory(*buf);
	*buf = out;
	*buf_size = size ? (size_t)size : 1;
	return out_len;
}

static size_t lz4_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
			 size_t nbytes, size_t *buf_size, void **buf)
{
	if (flags & H5Z_FLAG_REVERSE)
		return lz4_decompress(nbytes, buf_size, buf);
	return lz4_compress(cd_nelmts > 0 ? cd_values[0] : 0, nbytes, buf_size, buf);
}

const H5Z_class2_t h5z_lz4_class = {
	.version = H5Z_CLASS_T_VERS,
	.id = (H5Z_filter_t)H5LZ4_FILTER_ID,
	.encoder_present = 1,
	.decoder_present = 1,
	.name = H5Z_LZ4_NAME,
	.can_apply = lz4_can_apply,
	.set_local = NULL,
	.filter = lz4_filter,
};

int h5z_lz4_register(void)
{
	return H5Zregister(&h5z_lz4_class) < 0 ? -EIO : 0;
}
