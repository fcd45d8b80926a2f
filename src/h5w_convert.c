/*
 * h5w_convert.c - wire dtype to channel dtype, the way HDF5 converts.
 *
 * Samples arrive in the sender's type (frame dtype byte, or a line-protocol
 * field's type) and are stored in the channel's declared type. The engine
 * does not write its own conversion loops: H5Tconvert does it, with a
 * conversion-exception callback on a private transfer property list that
 * counts every out-of-range value (H5T_CONV_EXCEPT_RANGE_HI/LOW, and NaN
 * into an integer) and lets HDF5 apply its default, which is clipping to
 * the destination's range. Memory buffers hold the file's byte order
 * (little-endian, as on the wire), so converted samples can be written as
 * raw chunks. Caller thread only (H5Tconvert is HDF5).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h5w_internal.h"

/* The file (and memory) type of each dtype: little-endian, like the wire. */
hid_t h5w_file_type(const struct h5w *w, enum dtype dtype)
{
	switch (dtype) {
	case DTYPE_INT8: return H5T_STD_I8LE;
	case DTYPE_UINT8: return H5T_STD_U8LE;
	case DTYPE_INT16: return H5T_STD_I16LE;
	case DTYPE_UINT16: return H5T_STD_U16LE;
	case DTYPE_INT32: return H5T_STD_I32LE;
	case DTYPE_UINT32: return H5T_STD_U32LE;
	case DTYPE_INT64: return H5T_STD_I64LE;
	case DTYPE_UINT64: return H5T_STD_U64LE;
	case DTYPE_FLOAT32: return H5T_IEEE_F32LE;
	case DTYPE_FLOAT64: return H5T_IEEE_F64LE;
	case DTYPE_STRING: return w->str_type;
	case DTYPE_NONE: break;
	}
	return H5I_INVALID_HID;
}

static H5T_conv_ret_t count_clipped(H5T_conv_except_t type, hid_t src, hid_t dst,
				    void *src_buf, void *dst_buf, void *data)
{
	uint64_t *clipped = data;
	(void)src;
	(void)dst;
	(void)src_buf;
	(void)dst_buf;
	if (type == H5T_CONV_EXCEPT_RANGE_HI || type == H5T_CONV_EXCEPT_RANGE_LOW ||
	    type == H5T_CONV_EXCEPT_NAN)
		(*clipped)++;
	return H5T_CONV_UNHANDLED;
}

int h5w_convert_init(struct h5w *w)
{
	w->conv_dxpl = H5Pcreate(H5P_DATASET_XFER);
	if (w->conv_dxpl < 0)
		return -EIO;
	if (H5Pset_type_conv_cb(w->conv_dxpl, count_clipped, &w->stats.samples_clipped) < 0)
		return -EIO;
	w->str_type = H5Tcopy(H5T_C_S1);
	if (w->str_type < 0 || H5Tset_size(w->str_type, H5T_VARIABLE) < 0 ||
	    H5Tset_cset(w->str_type, H5T_CSET_UTF8) < 0)
		return -EIO;
	return 0;
}

void h5w_convert_free(struct h5w *w)
{
	if (w->conv_dxpl > 0)
		H5Pclose(w->conv_dxpl);
	if (w->str_type > 0)
		H5Tclose(w->str_type);
	free(w->conv_buf);
	w->conv_buf = NULL;
	w->conv_cap = 0;
}

/*
 * Convert N values of type FROM at SRC into DST (type TO). Strings convert
 * only to strings, and are not handled here (callers copy the pointer).
 */
int h5w_convert(struct h5w *w, enum dtype from, enum dtype to, const void *src, size_t n,
		void *dst, struct h5w_error *err)
{
	size_t from_size = dtype_size(from), to_size = dtype_size(to);

	if (from_size == 0 || to_size == 0) {
		h5w_err(w, err, "dtype %s is not convertible to %s",
			dtype_name(from) ? dtype_name(from) : "?",
			dtype_name(to) ? dtype_name(to) : "?");
		return -EINVAL;
	}
	if (from == to) {
		memcpy(dst, src, n * to_size);
		return 0;
	}
	size_t need = n * (from_size > to_size ? from_size : to_size);
	if (need > w->conv_cap) {
		unsigned char *buf = realloc(w->conv_buf, need);
		if (!buf)
			return -ENOMEM;
		w->conv_buf = buf;
		w->conv_cap = need;
	}
	memcpy(w->conv_buf, src, n * from_size);
	if (H5Tconvert(h5w_file_type(w, from), h5w_file_type(w, to), n, w->conv_buf, NULL,
		       w->conv_dxpl) < 0)
		return h5w_err_hdf5(w, err, "converting %zu values from %s to %s", n,
				    dtype_name(from), dtype_name(to));
	memcpy(dst, w->conv_buf, n * to_size);
	return 0;
}
