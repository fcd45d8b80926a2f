/*
 * dtype.h - the sample types every part of h5rec shares: the frame
 * protocol's wire numbers, the schema's channel types and the engine's
 * dataset types are one enumeration.
 */
#ifndef H5REC_DTYPE_H
#define H5REC_DTYPE_H

#include <stddef.h>

/* Sample types. The numbering of the numeric types is the wire numbering of
 * the frame protocol (SPEC §3.1), so a frame's dtype byte converts directly. */
enum dtype {
	DTYPE_NONE = 0,
	DTYPE_INT8 = 1,
	DTYPE_UINT8 = 2,
	DTYPE_INT16 = 3,
	DTYPE_UINT16 = 4,
	DTYPE_INT32 = 5,
	DTYPE_UINT32 = 6,
	DTYPE_INT64 = 7,
	DTYPE_UINT64 = 8,
	DTYPE_FLOAT32 = 9,
	DTYPE_FLOAT64 = 10,
	DTYPE_STRING = 11, /* table-layout status fields and event fields only */
};

/* "float32" etc.; NULL for an out-of-range value. */
const char *dtype_name(enum dtype type);
/* Bytes per sample; 0 for DTYPE_NONE and DTYPE_STRING (variable length). */
size_t dtype_size(enum dtype type);
/* Parse a dtype name; returns 0 or -EINVAL. */
int dtype_from_name(const char *name, enum dtype *type);

#endif
