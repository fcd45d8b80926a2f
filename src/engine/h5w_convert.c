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
 *
 * Fast paths. The line protocol delivers one float64, int64 or uint64 value
 * per table cell, and for a single value H5Tconvert costs far more than the
 * conversion (type comparisons, id lookups, the library lock). The pairs
 * that HDF5 1.10 converts like plain C with a range clamp are done here,
 * with the same results bit for bit and the same clipped counts;
 * tests/unit/test_h5w.c compares every fast pair with H5Tconvert on edge
 * values and millions of random ones. What they rest on, measured:
 *  - float64 -> float32 raises a range exception exactly when the value is
 *    beyond +-FLT_MAX (infinities included), never for NaN, and then stores
 *    +-infinity, also for values within half an ulp above FLT_MAX that the
 *    C cast rounds down to FLT_MAX; otherwise it is the C cast (NaN
 *    payloads, rounding, subnormals, underflow);
 *  - integer -> integer clamps to the destination's range and raises
 *    RANGE_HI/RANGE_LOW exactly when it clamps;
 *  - integer -> float32/float64 is the C conversion and raises nothing the
 *    engine counts.
 * Float -> integer and float32 sources stay with H5Tconvert. Little-endian
 * hosts only (memory holds the file's little-endian values).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
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

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FAST_PATHS 1
#else
#define FAST_PATHS 0
#endif

#define PUT(p, T, v)                   \
	do {                           \
		T put_ = (T)(v);       \
		memcpy(p, &put_, sizeof(put_)); \
	} while (0)

/* Store V (a signed source value) as TO, clamped, counting clamps. */
static void store_signed(enum dtype to, int64_t v, unsigned char *p, uint64_t *clipped)
{
	int64_t lo = INT64_MIN, hi = INT64_MAX;
	switch (to) {
	case DTYPE_INT8: lo = INT8_MIN, hi = INT8_MAX; break;
	case DTYPE_UINT8: lo = 0, hi = UINT8_MAX; break;
	case DTYPE_INT16: lo = INT16_MIN, hi = INT16_MAX; break;
	case DTYPE_UINT16: lo = 0, hi = UINT16_MAX; break;
	case DTYPE_INT32: lo = INT32_MIN, hi = INT32_MAX; break;
	case DTYPE_UINT32: lo = 0, hi = UINT32_MAX; break;
	case DTYPE_UINT64: lo = 0; break;
	case DTYPE_FLOAT32: PUT(p, float, v); return;
	case DTYPE_FLOAT64: PUT(p, double, v); return;
	default: break;
	}
	if (v < lo || v > hi) {
		v = v < lo ? lo : hi;
		(*clipped)++;
	}
	switch (to) {
	case DTYPE_INT8: PUT(p, int8_t, v); break;
	case DTYPE_UINT8: PUT(p, uint8_t, v); break;
	case DTYPE_INT16: PUT(p, int16_t, v); break;
	case DTYPE_UINT16: PUT(p, uint16_t, v); break;
	case DTYPE_INT32: PUT(p, int32_t, v); break;
	case DTYPE_UINT32: PUT(p, uint32_t, v); break;
	case DTYPE_UINT64: PUT(p, uint64_t, v); break;
	default: PUT(p, int64_t, v); break;
	}
}

/* Store V (an unsigned source value) as TO, clamped, counting clamps. */
static void store_unsigned(enum dtype to, uint64_t v, unsigned char *p, uint64_t *clipped)
{
	uint64_t hi = UINT64_MAX;
	switch (to) {
	case DTYPE_INT8: hi = INT8_MAX; break;
	case DTYPE_UINT8: hi = UINT8_MAX; break;
	case DTYPE_INT16: hi = INT16_MAX; break;
	case DTYPE_UINT16: hi = UINT16_MAX; break;
	case DTYPE_INT32: hi = INT32_MAX; break;
	case DTYPE_UINT32: hi = UINT32_MAX; break;
	case DTYPE_INT64: hi = INT64_MAX; break;
	case DTYPE_FLOAT32: PUT(p, float, v); return;
	case DTYPE_FLOAT64: PUT(p, double, v); return;
	default: break;
	}
	if (v > hi) {
		v = hi;
		(*clipped)++;
	}
	switch (to) {
	case DTYPE_INT8: PUT(p, int8_t, v); break;
	case DTYPE_UINT8: PUT(p, uint8_t, v); break;
	case DTYPE_INT16: PUT(p, int16_t, v); break;
	case DTYPE_UINT16: PUT(p, uint16_t, v); break;
	case DTYPE_INT32: PUT(p, int32_t, v); break;
	case DTYPE_UINT32: PUT(p, uint32_t, v); break;
	case DTYPE_INT64: PUT(p, int64_t, v); break;
	default: PUT(p, uint64_t, v); break;
	}
}

static bool is_integer(enum dtype t)
{
	return t >= DTYPE_INT8 && t <= DTYPE_UINT64;
}

static bool is_signed(enum dtype t)
{
	return t == DTYPE_INT8 || t == DTYPE_INT16 || t == DTYPE_INT32 || t == DTYPE_INT64;
}

/* Is FROM -> TO one of the exact fast paths (see the top of the file)? */
bool h5w_convert_has_fast(enum dtype from, enum dtype to)
{
	if (!FAST_PATHS || from == to)
		return false;
	if (from == DTYPE_FLOAT64)
		return to == DTYPE_FLOAT32;
	return is_integer(from) && (is_integer(to) || to == DTYPE_FLOAT32 || to == DTYPE_FLOAT64);
}

/*
 * The fast path: convert N values FROM -> TO like H5Tconvert with the
 * engine's exception callback would, adding clamped values to *CLIPPED.
 * Only for pairs h5w_convert_has_fast() accepts.
 */
void h5w_convert_fast(enum dtype from, enum dtype to, const void *src, size_t n, void *dst,
		      uint64_t *clipped)
{
	const unsigned char *s = src;
	unsigned char *d = dst;
	size_t from_size = dtype_size(from), to_size = dtype_size(to);
	if (from == DTYPE_FLOAT64) {
		for (size_t i = 0; i < n; i++, s += 8, d += 4) {
			double v;
			memcpy(&v, s, sizeof(v));
			float f = (float)v;
			if (v > FLT_MAX || v < -FLT_MAX) {
				/* HDF5 stores infinity even where C would round
				 * down to FLT_MAX (within half an ulp above it) */
				f = v > 0 ? HUGE_VALF : -HUGE_VALF;
				(*clipped)++;
			}
			memcpy(d, &f, sizeof(f));
		}
		return;
	}
	for (size_t i = 0; i < n; i++, s += from_size, d += to_size) {
		if (is_signed(from)) {
			int64_t v;
			switch (from) {
			case DTYPE_INT8: { int8_t x; memcpy(&x, s, 1); v = x; break; }
			case DTYPE_INT16: { int16_t x; memcpy(&x, s, 2); v = x; break; }
			case DTYPE_INT32: { int32_t x; memcpy(&x, s, 4); v = x; break; }
			default: memcpy(&v, s, 8); break;
			}
			store_signed(to, v, d, clipped);
		} else {
			uint64_t v;
			switch (from) {
			case DTYPE_UINT8: { uint8_t x; memcpy(&x, s, 1); v = x; break; }
			case DTYPE_UINT16: { uint16_t x; memcpy(&x, s, 2); v = x; break; }
			case DTYPE_UINT32: { uint32_t x; memcpy(&x, s, 4); v = x; break; }
			default: memcpy(&v, s, 8); break;
			}
			store_unsigned(to, v, d, clipped);
		}
	}
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
	if (h5w_convert_has_fast(from, to)) {
		h5w_convert_fast(from, to, src, n, dst, &w->stats.samples_clipped);
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
