/*
 * pipeline.h - how a channel stores its chunks, as the recorder tells a
 * sender that wants to send them pre-compressed (issue 19): the DESCRIBE
 * answer's payload, and the id that ties a chunk to it.
 *
 * The answer is a line-protocol field set in one canonical form,
 *
 *   layout="records",dtype="float32",chunk=100000i,
 *   pipeline="shuffle,lz4=0,fletcher32",id=2868135232i
 *
 * chunk is the chunk's length in samples, pipeline the HDF5 filters in
 * the order they apply (shuffle; deflate=LEVEL, lz4=BLOCK_BYTES with 0 for
 * the whole chunk; fletcher32), empty for none, and id the CRC-32C of
 * everything before ",id=". Every pre-compressed frame carries the id it
 * was made for: a recorder whose schema changed has another id and refuses
 * the chunks instead of storing what its datasets cannot decode.
 *
 * libc only, no state: any thread.
 */
#ifndef H5REC_PIPELINE_H
#define H5REC_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

enum pipeline_codec { PIPELINE_NONE, PIPELINE_DEFLATE, PIPELINE_LZ4 };
enum pipeline_layout { PIPELINE_RECORDS, PIPELINE_STREAM };

struct pipeline {
	enum pipeline_layout layout;
	enum dtype dtype;
	uint64_t chunk;          /* samples per chunk */
	bool shuffle;
	enum pipeline_codec codec;
	int level;               /* deflate */
	uint32_t lz4_block;      /* lz4, bytes; 0: the whole chunk */
	bool fletcher32;
};

/* Longest canonical text, with room to spare. */
#define PIPELINE_TEXT_MAX 256

/* The canonical field set with its id into buf; returns its length, or 0
 * when it does not fit (or the pipeline is invalid). */
size_t pipeline_format(const struct pipeline *p, char *buf, size_t size);

/* The id of P: the CRC-32C of its canonical text up to ",id=". */
uint32_t pipeline_id(const struct pipeline *p);

/* Number of HDF5 filters P declares (the bits a chunk's filter mask may
 * have set are below it). */
unsigned pipeline_nfilters(const struct pipeline *p);

/* Read a canonical field set (the recorder's answer) into *p and its id
 * into *id. -EINVAL when it is not one, or when its id does not match. */
int pipeline_parse(const char *text, size_t len, struct pipeline *p, uint32_t *id);

#endif
