/*
 * h5w_stream.c - `layout: stream` (SPEC §4.3): each channel's samples
 * appended in arrival order, and per channel a frame index (time, first
 * sample, seq) whose rows never point at samples not yet stored.
 *
 * A frame may also bring whole chunks its sender encoded (issue 19,
 * h5w_stream_encoded): they must start at a chunk boundary of the channel
 * and fill their chunks, so each is stored as it came, at its place, with
 * the frame's index row as for samples.
 *
 * Caller thread only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h5w_internal.h"

/* The samples of frame ROW end where the next frame starts (or at the
 * channel's last sample); UINT64_MAX when that is not in memory. */
static uint64_t frame_end(const struct h5w_dset *samples, const struct h5w_dset *starts,
			  uint64_t row)
{
	if (row + 1 == starts->nrows)
		return samples->nrows;
	uint64_t next = row + 1, chunk = next / starts->chunk_rows;
	for (size_t i = 0; i < starts->nbufs; i++) {
		const struct h5w_chunkbuf *b = &starts->bufs[i];
		uint64_t at = next % starts->chunk_rows;
		if (b->index == chunk && at < b->init_rows) {
			uint64_t end;
			memcpy(&end, b->data + at * sizeof(end), sizeof(end));
			return end;
		}
	}
	return UINT64_MAX;
}

/* How many of CHANNEL's frames have all their samples stored: the frame
 * index may go that far (frames tile the samples in order). */
uint64_t h5w_frames_stored(const struct h5w_group *g, size_t channel)
{
	const struct h5w_dset *samples = &g->dsets[g->chan_ds[channel]];
	const struct h5w_dset *starts = &g->dsets[g->frame_start_ds[channel]];
	uint64_t lo = starts->extent, hi = starts->nrows; /* frames below lo are stored */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (frame_end(samples, starts, mid) <= samples->extent)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Store the whole chunks of a channel's frame index (time, start, seq) whose
 * frames' samples are all in the file: an index row never points at samples
 * that are not stored (a samples chunk may be waiting after a failed write). */
static int seal_frame_index(struct h5w *w, const struct h5w_dset *samples,
			    struct h5w_dset *const index[], size_t nindex, struct h5w_error *err)
{
	const struct h5w_dset *starts = index[1];
	uint64_t chunk = starts->chunk_rows;
	uint64_t sealed = starts->nbufs ? starts->bufs[0].index * chunk : starts->nrows;
	uint64_t upto = starts->nrows / chunk * chunk;
	while (upto > sealed && frame_end(samples, starts, upto - 1) > samples->extent)
		upto -= chunk;
	int rc = 0;
	for (size_t k = 0; !rc && k < nindex && upto > sealed; k++)
		rc = h5w_dset_seal(w, index[k], upto, err);
	return rc;
}

static int frame_taken(struct h5w *w, struct h5w_group *g, size_t channel, uint64_t start,
		       size_t n, int64_t t0, uint64_t seq, struct h5w_error *err);

/* Buffer one frame of a stream channel and its frame index row, whole or
 * not at all, and store what it completed. */
int h5w_stream_put(struct h5w *w, struct h5w_group *g, size_t channel, enum dtype wire,
		   const void *samples, size_t n, int64_t t0, uint64_t seq,
		   struct h5w_error *err)
{
	int rc;
	struct h5w_dset *ds = &g->dsets[g->chan_ds[channel]];
	const void *data = samples;
	if (wire != ds->dtype) {
		unsigned char *buf = h5w_scratch(w, n * ds->elem_size);
		if (!buf)
			return -ENOMEM;
		rc = h5w_convert(w, wire, ds->dtype, samples, n, buf, err);
		if (rc) {
			if (rc == -EINVAL)
				h5w_err(w, err, "%s/%s: dtype %s is not convertible to %s", g->path,
					ds->name, dtype_name(wire) ? dtype_name(wire) : "?",
					dtype_name(ds->dtype));
			return rc;
		}
		data = buf;
	}
	uint64_t start = ds->nrows;
	/* all or nothing: a frame is buffered whole (samples and index row) or,
	 * when memory is refused, not at all */
	rc = h5w_dset_put(w, ds, start, data, n, err);
	if (rc) {
		h5w_dset_truncate(w, ds, start);
		return rc;
	}
	return frame_taken(w, g, channel, start, n, t0, seq, err);
}

/* CHANNEL's samples [START, START + N) of a frame are in: its index row,
 * its times and counts, and storing what it completed. */
static int frame_taken(struct h5w *w, struct h5w_group *g, size_t channel, uint64_t start,
		       size_t n, int64_t t0, uint64_t seq, struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	struct h5w_dset *ds = &g->dsets[g->chan_ds[channel]];
	struct h5w_dset *index[5] = {&g->dsets[g->chan_time_ds[channel]],
				     &g->dsets[g->frame_start_ds[channel]],
				     &g->dsets[g->frame_seq_ds[channel]],
				     &g->dsets[g->frame_origin_ds[channel]],
				     &g->dsets[g->frame_origin_id_ds[channel]]};
	const void *row[4] = {&t0, &start, &seq, &w->origin};
	size_t nindex = w->schema->nsources ? 5 : 3; /* with provenance */
	uint64_t frame = index[0]->nrows;
	int rc = 0;
	for (size_t k = 0; !rc && k < nindex && k < 4; k++)
		rc = h5w_dset_put(w, index[k], frame, row[k], 1, err);
	if (!rc && nindex == 5) /* the sender's id: a string the dataset owns */
		rc = h5w_dset_put_string(w, index[4], frame, w->origin_id, err);
	if (rc) {
		h5w_dset_truncate(w, ds, start);
		for (size_t k = 0; k < nindex; k++)
			h5w_dset_truncate(w, index[k], frame);
		return rc;
	}
	const struct schema_channel *ch = &st->channels[channel];
	int64_t span = ch->has_dt ? (int64_t)((double)(n - 1) * ch->dt * 1e9) : 0;
	h5w_dset_note_time(ds, t0, t0 + span);
	h5w_time_note(w, g, index[0], t0);
	w->stats.samples_written += n;
	h5w_count_rows(w, g, n);
	/* The frame is accepted. Storing what is complete may fail (full disk):
	 * then the chunks stay in memory for the next flush, and the error is
	 * returned. */
	rc = h5w_dset_seal(w, ds, ds->nrows, err);
	int rc_index = seal_frame_index(w, ds, index, nindex, err);
	return rc ? rc : rc_index;
}


/* May chunk INDEX of DS go to the file as it came? Its group is in the
 * current file, no store failed, no earlier chunk waits. */
static bool direct_now(const struct h5w *w, const struct h5w_group *g, const struct h5w_dset *ds,
		       uint64_t index)
{
	if (!h5w_in_current(w, g) || w->store_failed)
		return false;
	for (size_t i = 0; i < ds->nbufs && ds->bufs[i].index < index; i++)
		if (ds->bufs[i].dirty_hi > ds->bufs[i].dirty_lo)
			return false;
	return true;
}

/* One encoded chunk at chunk INDEX: stored as it came, or held as it came
 * when it cannot go to the file now or its write failed. Returns 0 when
 * the chunk is stored or kept, with a failed write's error (the file ends
 * at the next flush, the chunk goes to the next one) in *WROTE; otherwise
 * the error that kept it from being held (-ENOBUFS, -ENOMEM): nothing of
 * it is kept. */
static int put_encoded(struct h5w *w, struct h5w_group *g, struct h5w_dset *ds, uint64_t index,
		       const struct h5w_encoded *c, int *wrote, struct h5w_error *err)
{
	int rc = 0;
	bool direct = direct_now(w, g, ds, index);
	*wrote = 0;
	if (direct)
		rc = h5w_dset_write_encoded(w, ds, index, c, err);
	if (direct && !rc)
		return 0;
	struct h5w_error ignored;
	int put = h5w_dset_hold_encoded(w, ds, index, c, rc ? &ignored : err);
	if (put && rc)
		h5w_err(w, NULL, "%s/%s: chunk %llu could not be kept after its write failed: "
			"the frame is refused", g->path, ds->name, (unsigned long long)index);
	*wrote = rc;
	return put;
}

int h5w_stream_encoded(struct h5w *w, struct h5w_group *g, size_t channel,
		       const struct h5w_encoded *chunks, size_t nchunks, int64_t t0, uint64_t seq,
		       struct h5w_error *err)
{
	struct h5w_dset *ds = &g->dsets[g->chan_ds[channel]];
	bool decode = g->stream->channels[channel].verify_chunks == SCHEMA_VERIFY_DECODE;
	uint64_t start = ds->nrows;
	if (start % ds->chunk_rows) {
		h5w_err(w, err, "%s/%s: pre-compressed chunks refused: the channel holds %llu "
			"samples in this file, not a whole number of %llu-sample chunks (send its "
			"samples either way, not both)", g->path, ds->name,
			(unsigned long long)start, (unsigned long long)ds->chunk_rows);
		return -EINVAL;
	}
	/* every chunk checked before any is stored: a frame is taken whole */
	for (size_t i = 0; i < nchunks; i++) {
		int rc = h5w_encoded_check(w, ds, &chunks[i], decode, err);
		if (rc)
			return rc;
	}
	/* A chunk that cannot be kept refuses the frame whole: the chunks of it
	 * already held are dropped and those already stored put outside the
	 * extent again, so that the frame offered again (after -ENOBUFS)
	 * starts where this one did and no row is left without its index. */
	int first = 0;
	for (size_t i = 0; i < nchunks; i++) {
		int wrote = 0;
		int rc = put_encoded(w, g, ds, start / ds->chunk_rows + i, &chunks[i], &wrote,
				     err);
		if (rc) {
			h5w_dset_truncate(w, ds, start);
			return rc;
		}
		if (wrote && !first)
			first = wrote;
	}
	int rc = frame_taken(w, g, channel, start, nchunks * ds->chunk_rows, t0, seq, err);
	return first ? first : rc;
}
