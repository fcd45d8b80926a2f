/*
 * chunk_encode.c - HDF5's filter pipeline for senders that compress (see
 * chunk_encode.h): shuffle, then LZ4 in filter 32004's format or deflate
 * (zlib's format, what H5Z_filter_deflate stores), then Fletcher-32
 * appended little-endian. The codecs are the ones the recorder uses (the
 * h5lz4 codec, zlib), the byte filters are proto's, so a chunk encoded here
 * is the chunk the recorder would have stored.
 */
#include "chunk_encode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "chunk_filter.h"
#include "h5lz4.h"

static int run_codec(const struct pipeline *p, const uint8_t *in, size_t len, uint8_t *out,
		     size_t cap, size_t *out_len)
{
	if (p->codec == PIPELINE_LZ4)
		return h5lz4_encode(in, len, p->lz4_block, out, cap, out_len) ? -EIO : 0;
	if (p->codec == PIPELINE_DEFLATE) {
		uLongf n = (uLongf)cap;
		if (compress2(out, &n, in, (uLong)len, p->level) != Z_OK)
			return -EIO;
		*out_len = n;
		return 0;
	}
	memcpy(out, in, len);
	*out_len = len;
	return 0;
}

static size_t codec_bound(const struct pipeline *p, size_t len)
{
	if (p->codec == PIPELINE_LZ4)
		return h5lz4_bound(len, p->lz4_block);
	if (p->codec == PIPELINE_DEFLATE)
		return compressBound((uLong)len);
	return len;
}

int chunk_encode(const struct pipeline *p, const void *raw, size_t len, size_t elem,
		 uint8_t **out, size_t *out_len)
{
	size_t bound = codec_bound(p, len);
	uint8_t *shuffled = NULL, *buf;
	const uint8_t *in = raw;
	int rc;

	if (!bound)
		return -EINVAL;
	buf = malloc(bound + 4);
	if (!buf)
		return -ENOMEM;
	if (p->shuffle) {
		shuffled = malloc(len ? len : 1);
		if (!shuffled) {
			free(buf);
			return -ENOMEM;
		}
		chunk_shuffle(raw, shuffled, len, elem);
		in = shuffled;
	}
	rc = run_codec(p, in, len, buf, bound, out_len);
	free(shuffled);
	if (rc) {
		free(buf);
		return rc;
	}
	if (p->fletcher32) {
		uint32_t sum = chunk_fletcher32(buf, *out_len);
		for (int i = 0; i < 4; i++)
			buf[*out_len + (size_t)i] = (uint8_t)(sum >> (8 * i));
		*out_len += 4;
	}
	*out = buf;
	return 0;
}
