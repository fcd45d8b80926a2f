/*
 * h5w_pipeline.c - a chunk encoded exactly as HDF5's filter pipeline would
 * store it, without HDF5: shuffle, then deflate, LZ4 or szip, then
 * Fletcher-32, in that order (the order h5w_layout.c declares them in the
 * dataset).
 *
 * Why not HDF5's own pipeline: it runs inside H5Dwrite on the writer
 * thread, one chunk at a time, and chooses the stored size itself. Encoding
 * here lets the compression workers (h5w_pool.c) do it in parallel, and lets
 * the engine choose how many bytes a chunk takes in the file: a partial
 * chunk rewritten at every flush is padded to the size of its last write
 * (h5w_pipeline_slot), because HDF5 overwrites a chunk in place only when
 * its size is unchanged, and in SWMR-write mode never reuses the space of
 * a chunk that moved. Every decoder stops at the end of its own stream
 * (zlib at the deflate stream's end, LZ4 and szip at the uncompressed size
 * in their headers), so the padding is never read; Fletcher-32 is computed
 * over the padded bytes, as stored.
 *
 * The formats are HDF5's (H5Zshuffle.c, H5Zfletcher32.c, H5checksum.c);
 * shuffle and Fletcher-32 live in src/proto/chunk_filter.c, shared with the
 * senders that encode chunks themselves (issue 19). Fletcher-32 is appended
 * little-endian.
 *
 * szip (H5Zszip.c) stores the chunk's size as 4 bytes little-endian, then
 * what libaec's SZ_BufftoBuffCompress makes of the chunk with the dataset's
 * four parameters (h5w_szip_params). The encoder here is that same
 * library, the one Debian's HDF5 decodes szip with, so the bytes are the
 * ones HDF5 would store. Except for one case: HDF5 declares szip optional
 * and, when a chunk would grow, stores it unfiltered with the filter's bit
 * set in the chunk's mask. The engine writes every chunk with mask 0, so it
 * stores the grown encoding instead (a few percent more than raw, on noise
 * alone); HDF5's decoder reads it the same, as it never checks the size.
 * tests/unit/test_h5w.c checks every encoding byte for byte against HDF5's.
 *
 * Thread-safe: each caller passes its own struct h5w_encoder (the shuffle's
 * scratch buffer and a deflate stream kept between chunks: zlib's
 * deflateInit allocates 256 kB, which glibc maps and unmaps at every chunk,
 * and the unmapping stops every thread of the process).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <szlib.h>
#include <zlib.h>

#include "h5lz4.h"
#include "h5w_internal.h"

/*
 * The szip parameters HDF5 stores for a dataset of ELEM-byte little-endian
 * numbers in chunks of CHUNK_ROWS x ROW_ELEMS (ROW_ELEMS 1: a 1-D dataset)
 * declared with H5Pset_szip(CODING, PIXELS_PER_BLOCK): what H5Pset_szip and
 * H5Z_set_local_szip make of them. The options gain K13 and raw (no szip
 * header), lose chip, and say little-endian. 32- and 64-bit numbers are
 * coded as 32 or 64 bits per pixel (libaec then codes them byte by byte);
 * a scanline is the chunk's fastest dimension, at most 128 blocks. The
 * caller has checked the chunk holds at least one block (schema_stream.c).
 * h5w_layout.c checks the values against the ones HDF5 stored.
 */
void h5w_szip_params(unsigned coding, unsigned pixels_per_block, size_t elem, uint64_t chunk_rows,
		     uint64_t row_elems, unsigned cd[H5W_SZIP_NPARMS])
{
	uint64_t scanline = row_elems > 1 ? row_elems : chunk_rows;
	uint64_t most = (uint64_t)pixels_per_block * SZ_MAX_BLOCKS_PER_SCANLINE;
	if (scanline < pixels_per_block)
		scanline = chunk_rows * row_elems; /* the chunk's elements, at least a block */
	if (scanline > most)
		scanline = most;
	cd[H5W_SZIP_MASK] = (coding & ~(unsigned)SZ_CHIP_OPTION_MASK) | SZ_ALLOW_K13_OPTION_MASK |
			    SZ_RAW_OPTION_MASK | SZ_LSB_OPTION_MASK;
	cd[H5W_SZIP_PPB] = pixels_per_block;
	cd[H5W_SZIP_BPP] = (unsigned)(elem * 8);
	cd[H5W_SZIP_PPS] = (unsigned)scanline;
}

/*
 * The most szip can make of LEN bytes. libaec pads each scanline to whole
 * blocks and the last scanline to a whole one, and codes 32- and 64-bit
 * numbers as bytes. Each block takes the cheapest of its codes, never more
 * than the block stored as it is behind an option id (3 bits for 8-bit
 * samples, 4 for 16): 5 % more than raw with 32 pixels per block of
 * bytes, 19 % with 2. Then the stream's last byte, and the 4-byte size.
 */
static size_t szip_bound(const unsigned cd[H5W_SZIP_NPARMS], size_t len)
{
	unsigned bpp = cd[H5W_SZIP_BPP], ppb = cd[H5W_SZIP_PPB], pps = cd[H5W_SZIP_PPS];
	size_t bits = bpp == 32 || bpp == 64 ? 8 : bpp; /* per coded sample */
	size_t id = bits > 8 ? 4 : 3;
	size_t samples = len * 8 / bits;
	size_t scanlines = (samples + pps - 1) / pps;
	size_t blocks = scanlines * ((pps + ppb - 1) / ppb);
	return 4 + (blocks * (id + ppb * bits) + 7) / 8 + 8;
}

/* Bytes an encoded chunk of RAW_LEN bytes may take, before padding. */
size_t h5w_pipeline_bound(const struct h5w_filters *f, size_t raw_len)
{
	size_t len = raw_len;
	if (f->codec == H5W_FILTER_DEFLATE)
		len = (size_t)compressBound((uLong)raw_len);
	else if (f->codec == H5W_FILTER_LZ4)
		len = h5lz4_bound(raw_len, f->lz4_block);
	else if (f->codec == H5W_FILTER_SZIP)
		len = szip_bound(f->szip, raw_len);
	return len + (f->fletcher32 ? 4 : 0);
}

void h5w_encoder_free(struct h5w_encoder *e)
{
	if (e->deflate_ready)
		deflateEnd(&e->zs);
	free(e->scratch);
	*e = (struct h5w_encoder){0};
}

/* zlib's compress2(), on a stream kept from the last chunk. */
static int deflate_chunk(struct h5w_encoder *e, const unsigned char *in, size_t len, int level,
			 unsigned char *out, size_t out_cap, size_t *out_len)
{
	if (!e->deflate_ready) {
		e->zs = (z_stream){0};
		if (deflateInit(&e->zs, level) != Z_OK)
			return -ENOMEM;
		e->deflate_ready = true;
		e->level = level;
	} else if (deflateReset(&e->zs) != Z_OK ||
		   (e->level != level && deflateParams(&e->zs, level, Z_DEFAULT_STRATEGY) != Z_OK)) {
		return -EIO;
	}
	e->level = level;
	e->zs.next_in = (Bytef *)(uintptr_t)in;
	e->zs.avail_in = (uInt)len;
	e->zs.next_out = out;
	e->zs.avail_out = (uInt)out_cap;
	if (deflate(&e->zs, Z_FINISH) != Z_STREAM_END)
		return -EIO;
	*out_len = out_cap - e->zs.avail_out;
	return 0;
}

/* HDF5's szip filter: the size, little-endian, then libaec's stream.
 * libaec allocates its padded copy of the chunk at every call; glibc's
 * mmap threshold rises to the chunk size after the first free, so chunks
 * up to 32 MiB come from the heap after that. */
static int szip_chunk(const unsigned cd[H5W_SZIP_NPARMS], const unsigned char *in, size_t len,
		      unsigned char *out, size_t out_cap, size_t *out_len)
{
	SZ_com_t param = {
		.options_mask = (int)cd[H5W_SZIP_MASK],
		.bits_per_pixel = (int)cd[H5W_SZIP_BPP],
		.pixels_per_block = (int)cd[H5W_SZIP_PPB],
		.pixels_per_scanline = (int)cd[H5W_SZIP_PPS],
	};
	if (out_cap < 4 || len > UINT32_MAX)
		return -EIO;
	for (int i = 0; i < 4; i++)
		out[i] = (unsigned char)(len >> (8 * i));
	size_t n = out_cap - 4;
	int rc = SZ_BufftoBuffCompress(out + 4, &n, in, len, &param);
	if (rc == SZ_MEM_ERROR)
		return -ENOMEM;
	if (rc != SZ_OK)
		return -EIO;
	*out_len = n + 4;
	return 0;
}

/*
 * Encode RAW_LEN bytes of RAW (elements of ELEM bytes) into OUT (OUT_CAP
 * bytes, at least h5w_pipeline_bound), with F's filters and E's buffers.
 * Fletcher-32 is not appended yet (h5w_pipeline_finish does it, after
 * padding). 0, -ENOMEM or -EIO.
 */
int h5w_pipeline_encode(struct h5w_encoder *e, const struct h5w_filters *f,
			const unsigned char *raw, size_t raw_len, size_t elem, unsigned char *out,
			size_t out_cap, size_t *out_len)
{
	const unsigned char *in = raw;
	if (f->shuffle) {
		if (e->scratch_cap < raw_len) {
			unsigned char *buf = realloc(e->scratch, raw_len);
			if (!buf)
				return -ENOMEM;
			e->scratch = buf;
			e->scratch_cap = raw_len;
		}
		chunk_shuffle(raw, e->scratch, raw_len, elem);
		in = e->scratch;
	}
	switch (f->codec) {
	case H5W_FILTER_DEFLATE:
		return deflate_chunk(e, in, raw_len, f->level, out, out_cap, out_len);
	case H5W_FILTER_LZ4:
		return h5lz4_encode(in, raw_len, f->lz4_block, out, out_cap, out_len);
	case H5W_FILTER_SZIP:
		return szip_chunk(f->szip, in, raw_len, out, out_cap, out_len);
	case H5W_FILTER_NONE:
		break;
	}
	if (out_cap < raw_len)
		return -EIO;
	memcpy(out, in, raw_len);
	*out_len = raw_len;
	return 0;
}

/*
 * The stored size of a partial chunk whose encoding takes LEN bytes (its
 * checksum included), ROWS of its CHUNK_ROWS rows holding data, when its
 * last write took SLOT bytes (0: none). An encoding that fits the slot
 * keeps it: rewritten in place. Otherwise a new slot: twice the size while
 * the chunk is less than a quarter full (an idle station's chunk costs
 * little, and a chunk still young when its file closes carries little
 * padding), then the whole chunk's size foreseen from the rows so far, an
 * eighth more for the data to vary. So the slots a chunk leaves behind in
 * a SWMR file add up to about half its final size, and the final chunk
 * usually fits the last slot; a chunk whose file closes when it is more
 * than a quarter full keeps the padding up to its foreseen size. A final
 * (whole) chunk that does not fit takes exactly its own size.
 */
size_t h5w_pipeline_slot(size_t len, size_t slot, size_t max, uint64_t rows, uint64_t chunk_rows,
			 bool final)
{
	if (slot >= len)
		return slot;
	if (final)
		return len;
	size_t next;
	if (rows * 4 < chunk_rows) {
		next = 2 * len;
	} else {
		double whole = (double)len * (double)chunk_rows / (double)(rows ? rows : 1);
		next = (size_t)(whole * 1.125);
	}
	if (next < 64)
		next = 64;
	if (next > max) /* MAX: the most an encoding of the chunk can take */
		next = max;
	return next > len ? next : len;
}

/* Pad OUT from LEN to SIZE bytes with zeros and append the checksum if the
 * pipeline has one: returns the bytes to store. OUT must hold SIZE + 4. */
size_t h5w_pipeline_finish(const struct h5w_filters *f, unsigned char *out, size_t len,
			   size_t size)
{
	if (size > len)
		memset(out + len, 0, size - len);
	if (!f->fletcher32)
		return size;
	uint32_t sum = chunk_fletcher32(out, size);
	for (int i = 0; i < 4; i++)
		out[size + (size_t)i] = (unsigned char)(sum >> (8 * i));
	return size + 4;
}

/*
 * Encode JOB's chunk with its dataset's filters into job->out, padded to
 * the size the chunk keeps in the file (h5w_pipeline_slot), checksum last:
 * job->out_len is what to store, job->status 0 or the error. A partial
 * chunk (not final) is deflated at level 1: it is written again at the
 * next flush, and its stored size only sizes its slot. Any thread.
 */
void h5w_job_encode(struct h5w_job *job, struct h5w_encoder *encoder)
{
	const struct h5w_dset *ds = job->dset;
	struct h5w_filters f = ds->filters;
	size_t len, tail = f.fletcher32 ? 4 : 0;
	if (!job->final && f.codec == H5W_FILTER_DEFLATE)
		f.level = 1;
	job->status = h5w_pipeline_encode(encoder, &f, job->raw, job->raw_len, ds->elem_size,
					  job->out, job->out_cap - tail, &len);
	if (job->status)
		return;
	/* job->out_cap is at least the bound, see submit_job() */
	size_t max = h5w_pipeline_bound(&f, job->raw_len);
	size_t size = f.codec == H5W_FILTER_NONE
			      ? len + tail
			      : h5w_pipeline_slot(len + tail, job->slot, max, job->rows,
						  ds->chunk_rows, job->final);
	job->out_len = h5w_pipeline_finish(&f, job->out, len, size - tail);
}
