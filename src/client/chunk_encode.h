/*
 * chunk_encode.h - a chunk through a channel's filter pipeline on the
 * sender's side (issue 19), byte for byte as HDF5 and h5recd store it.
 * Pure; any thread (each call allocates its own buffers).
 */
#ifndef H5REC_CHUNK_ENCODE_H
#define H5REC_CHUNK_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline.h"

/* Encode RAW (LEN bytes of ELEM-byte samples) with P into a new buffer
 * (*out, free() it) of *out_len bytes. 0, -ENOMEM, -EINVAL (a pipeline
 * this encoder does not run), -EIO (the codec failed). */
int chunk_encode(const struct pipeline *p, const void *raw, size_t len, size_t elem,
		 uint8_t **out, size_t *out_len);

#endif
