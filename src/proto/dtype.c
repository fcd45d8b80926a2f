/*
 * dtype.c - names and sizes of the sample types.
 *
 * The enum values are the frame protocol's wire numbers (SPEC §3.1), so this
 * table is indexed directly by a frame's dtype byte.
 */
#include <errno.h>
#include <string.h>

#include "dtype.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[DTYPE_NONE] = {"none", 0},
	[DTYPE_INT8] = {"int8", 1},
	[DTYPE_UINT8] = {"uint8", 1},
	[DTYPE_INT16] = {"int16", 2},
	[DTYPE_UINT16] = {"uint16", 2},
	[DTYPE_INT32] = {"int32", 4},
	[DTYPE_UINT32] = {"uint32", 4},
	[DTYPE_INT64] = {"int64", 8},
	[DTYPE_UINT64] = {"uint64", 8},
	[DTYPE_FLOAT32] = {"float32", 4},
	[DTYPE_FLOAT64] = {"float64", 8},
	[DTYPE_STRING] = {"string", 0},
};

#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

const char *dtype_name(enum dtype type)
{
	if ((unsigned)type >= NDTYPES)
		return NULL;
	return dtypes[type].name;
}

size_t dtype_size(enum dtype type)
{
	if ((unsigned)type >= NDTYPES)
		return 0;
	return dtypes[type].size;
}

/* "none" is a wire value, not something a schema may declare. */
int dtype_from_name(const char *name, enum dtype *type)
{
	for (unsigned i = DTYPE_INT8; i < NDTYPES; i++) {
		if (strcmp(name, dtypes[i].name) == 0) {
			*type = (enum dtype)i;
			return 0;
		}
	}
	return -EINVAL;
}
