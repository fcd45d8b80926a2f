/*
 * h5w_encoded.c - chunks that arrive already encoded by the sender (issue
 * 19): what is checked before they are stored, and how they are decoded
 * when they cannot be stored as they are.
 *
 * A sender that runs the channel's filter pipeline itself sends chunks as
 * HDF5 stores them; the recorder then writes them with H5Dwrite_chunk and
 * never compresses. What it still owes the file is that every chunk it
 * stores decodes: a chunk that would fail at read time is refused here,
 * with -EBADMSG, as far as that can be known without decoding it -
 *
 *   - its size: the sender's uncompressed size must be the dataset's chunk;
 *   - its filter mask: only bits of filters the dataset has;
 *   - Fletcher-32, when the pipeline ends with it: the checksum covers the
 *     stored bytes, so it proves them intact without decoding anything;
 *   - LZ4: the block table must add up to the chunk's size and to the
 *     stored bytes exactly (h5lz4_decoded_size), which bounds every block;
 *   - deflate: only its two-byte zlib header can be checked.
 *
 * `verify_chunks: decode` decodes every chunk whole on top of that (zlib
 * verifies its own Adler-32; LZ4 blocks must decode to their sizes). A
 * chunk that passes the cheap checks but is corrupt inside (deflate or LZ4
 * without Fletcher-32) is stored, and fails at read time as any corrupt
 * chunk does: an HDF5 read error, never a crash (the LZ4 plugin's decoder
 * is bounds-checked, SPEC §5).
 *
 * A chunk that cannot be written at once (its group waits for the next
 * file under SWMR, earlier chunks wait for disk space) is held as it came
 * (h5w_chunk.c, h5w_dset_hold_encoded), not decoded. Decoding remains for
 * the rare put of rows into a held chunk that does not cover it whole.
 *
 * Caller thread only (w->decoded is the engine's).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "h5lz4.h"
#include "h5w_internal.h"

/* The filters of DS in HDF5's order, as positions in its filter mask. */
struct positions {
	int shuffle, codec, fletcher32; /* -1: absent */
	unsigned n;
};

static struct positions positions(const struct h5w_filters *f)
{
	struct positions p = {-1, -1, -1, 0};
	if (f->shuffle)
		p.shuffle = (int)p.n++;
	if (f->codec != H5W_FILTER_NONE)
		p.codec = (int)p.n++;
	if (f->fletcher32)
		p.fletcher32 = (int)p.n++;
	return p;
}

static bool applied(const struct h5w_encoded *c, int position)
{
	return position >= 0 && !(c->filter_mask & (UINT32_C(1) << position));
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int refuse(struct h5w *w, const struct h5w_dset *ds, struct h5w_error *err,
		  const char *why)
{
	h5w_err(w, err, "%s/%s: pre-compressed chunk refused: %s", ds->group->path, ds->name, why);
	return -EBADMSG;
}

/* The stored bytes without the Fletcher-32 trailer, checked. */
static int check_fletcher(struct h5w *w, const struct h5w_dset *ds, const struct h5w_encoded *c,
			  int at, size_t *len, struct h5w_error *err)
{
	if (!applied(c, at))
		return 0;
	if (*len < 4)
		return refuse(w, ds, err, "shorter than its Fletcher-32 checksum");
	const unsigned char *bytes = c->data;
	*len -= 4;
	if (chunk_fletcher32(bytes, *len) != get_le32(bytes + *len))
		return refuse(w, ds, err, "Fletcher-32 checksum does not match its bytes");
	return 0;
}

/* What the codec's stream says of itself, without decoding it. */
static int check_codec(struct h5w *w, const struct h5w_dset *ds, const struct h5w_encoded *c,
		       bool coded, size_t len, struct h5w_error *err)
{
	const unsigned char *bytes = c->data;
	uint64_t size = 0;
	if (!coded || ds->filters.codec == H5W_FILTER_NONE) {
		if (len != c->raw_size)
			return refuse(w, ds, err, "stored unencoded, but not of the chunk's size");
		return 0;
	}
	switch (ds->filters.codec) {
	case H5W_FILTER_LZ4:
		if (h5lz4_decoded_size(bytes, len, &size) || size != c->raw_size)
			return refuse(w, ds, err, "its LZ4 block table is inconsistent");
		return 0;
	case H5W_FILTER_DEFLATE:
		if (len < 2 || (bytes[0] & 0x0f) != Z_DEFLATED || ((bytes[0] << 8) | bytes[1]) % 31)
			return refuse(w, ds, err, "not a zlib stream");
		return 0;
	default:
		return refuse(w, ds, err, "this compression is not taken pre-compressed");
	}
}

static unsigned char *decoded_buf(struct h5w *w, size_t bytes)
{
	if (bytes > w->decoded_cap) {
		unsigned char *buf = realloc(w->decoded, bytes);
		if (!buf)
			return NULL;
		w->decoded = buf;
		w->decoded_cap = bytes;
	}
	return w->decoded;
}

/* Undo the codec into out (raw_size bytes). */
static int decode_codec(struct h5w *w, const struct h5w_dset *ds, const struct h5w_encoded *c,
			size_t len, unsigned char *out, struct h5w_error *err)
{
	size_t n = 0;
	if (ds->filters.codec == H5W_FILTER_LZ4) {
		if (h5lz4_decode(c->data, len, out, c->raw_size, &n) || n != c->raw_size)
			return refuse(w, ds, err, "its LZ4 blocks do not decode");
		return 0;
	}
	uLongf out_len = (uLongf)c->raw_size;
	uLong in_len = (uLong)len;
	if (uncompress2(out, &out_len, c->data, &in_len) != Z_OK || out_len != c->raw_size)
		return refuse(w, ds, err, "its deflate stream does not decode to the chunk");
	return 0;
}

int h5w_encoded_check(struct h5w *w, const struct h5w_dset *ds, const struct h5w_encoded *c,
		      bool decode, struct h5w_error *err)
{
	struct positions p = positions(&ds->filters);
	size_t len = c->len;
	if (c->raw_size != ds->chunk_bytes) {
		h5w_err(w, err, "%s/%s: pre-compressed chunk refused: it decodes to %llu bytes, "
			"a chunk holds %zu", ds->group->path, ds->name,
			(unsigned long long)c->raw_size, ds->chunk_bytes);
		w->stats.chunks_refused++;
		return -EBADMSG;
	}
	if (p.n < 32 && (c->filter_mask >> p.n)) {
		h5w_err(w, err, "%s/%s: pre-compressed chunk refused: filter mask 0x%x names "
			"filters the dataset does not have (%u)", ds->group->path, ds->name,
			c->filter_mask, p.n);
		w->stats.chunks_refused++;
		return -EBADMSG;
	}
	int rc = check_fletcher(w, ds, c, p.fletcher32, &len, err);
	if (!rc)
		rc = check_codec(w, ds, c, applied(c, p.codec), len, err);
	if (!rc && decode && applied(c, p.codec)) {
		unsigned char *out = decoded_buf(w, c->raw_size);
		rc = out ? decode_codec(w, ds, c, len, out, err) : -ENOMEM;
	}
	if (rc == -EBADMSG)
		w->stats.chunks_refused++;
	return rc;
}

/*
 * The chunk's samples, decoded into w->decoded (valid until the next call
 * here), for a chunk h5w_encoded_check() accepted. NULL on failure (err
 * says why).
 */
const unsigned char *h5w_encoded_decode(struct h5w *w, const struct h5w_dset *ds,
					const struct h5w_encoded *c, struct h5w_error *err)
{
	struct positions p = positions(&ds->filters);
	size_t len = c->len - (applied(c, p.fletcher32) ? 4 : 0);
	size_t raw = (size_t)c->raw_size;
	unsigned char *buf = decoded_buf(w, 2 * raw);
	if (!buf) {
		h5w_err(w, err, "%s/%s: out of memory decoding a pre-compressed chunk",
			ds->group->path, ds->name);
		return NULL;
	}
	unsigned char *coded = buf, *plain = buf + raw;
	w->stats.chunks_decoded++;
	if (applied(c, p.codec)) {
		if (decode_codec(w, ds, c, len, coded, err))
			return NULL;
	} else {
		memcpy(coded, c->data, raw);
	}
	if (!applied(c, p.shuffle))
		return coded;
	chunk_unshuffle(coded, plain, raw, ds->elem_size);
	return plain;
}
