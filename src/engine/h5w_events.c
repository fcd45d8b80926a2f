/*
 * h5w_events.c - the event table of a `layout: stream` group with
 * `events: true`: triggered captures inside a continuous recording.
 *
 * The samples stay exactly as in any stream (continuous, in arrival order,
 * with their frame index); the table only says which of them belong to an
 * event. One row per event, on the table's own time axis `event_time`:
 * event_id, event_state, per channel `<channel>_event_start` (the event's
 * first sample in that channel, counted from the file's first) and
 * `<channel>_event_count` (samples from there to the end of its last
 * frame on that channel), and the EVENT frame's fields. A DATA frame with
 * a non-zero event_id marks its samples as the event's; event_id 0 means
 * "not part of an event".
 *
 * An event's frames (DATA on any channel, its EVENT frame) may come in any
 * order and interleave with other events, and nothing says how many DATA
 * frames an event has: so an event stays open until record_timeout after
 * its first frame arrived, until max_open_records newer ones are open
 * (the oldest closes), until h5w_record_close, or until its file closes.
 * This reuses the open-record bookkeeping of the records layout
 * (g->records, the ring of closed ids, the field conversion). A DATA frame
 * of an event that closed in this file is stored as samples like any
 * other, but no longer extends the event (stats.event_frames_late); its
 * EVENT frame then is refused (-ESTALE), as records refuse late data. An
 * event whose EVENT frame never came closes with state 2 (incomplete)
 * and fill in its fields.
 *
 * Rows never point at samples that are not in the same file: the table is
 * stored only as far as the samples its rows point at are (as the frame
 * index is, h5w_stream.c), and sample indexes count from the file's first
 * sample. An event that goes on across a roll gets a row in each file,
 * each pointing at that file's samples.
 *
 * Caller thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h5w_internal.h"

static struct h5w_dset *ev_time(struct h5w_group *g)
{
	return &g->dsets[g->time_ds];
}

static uint64_t event_rows(const struct h5w_group *g)
{
	return g->dsets[g->time_ds].nrows;
}

static int find(const struct h5w_group *g, uint64_t event_id, size_t *index)
{
	for (size_t i = g->nrecords; i-- > 0;) {
		if (g->records[i].event_id == event_id) {
			*index = i;
			return 0;
		}
	}
	return -ENOENT;
}

/* Write the event's span on CHANNEL into its row. The row was put whole
 * when the event opened and is not sealed while the event is open, so
 * these puts only change buffered rows and cannot fail. */
static void put_span(struct h5w *w, struct h5w_group *g, const struct h5w_record *rec,
		     size_t channel)
{
	uint64_t start = rec->span[2 * channel], count = rec->span[2 * channel + 1] - start;
	h5w_dset_put(w, &g->dsets[g->ev_start_ds[channel]], rec->row, &start, 1, NULL);
	h5w_dset_put(w, &g->dsets[g->ev_count_ds[channel]], rec->row, &count, 1, NULL);
}

/* Close the event at I: event_state says whether its EVENT frame came. */
static int close_at(struct h5w *w, struct h5w_group *g, size_t i, struct h5w_error *err)
{
	struct h5w_record *rec = &g->records[i];
	uint8_t state = rec->have_fields ? H5W_RECORD_COMPLETE : H5W_RECORD_INCOMPLETE;
	int rc = h5w_dset_put(w, &g->dsets[g->record_state_ds], rec->row, &state, 1, err);
	h5w_closed_remember(g, rec->event_id);
	w->stats.events_closed++;
	if (!rec->have_fields)
		w->stats.events_without_fields++;
	free(rec->have);
	free(rec->span);
	memmove(&g->records[i], &g->records[i + 1], (g->nrecords - i - 1) * sizeof(*rec));
	g->nrecords--;
	w->open_records--;
	return rc;
}

/* Take back the rows from ROW on of every column (an event that could not
 * be opened whole). */
static void truncate_rows(struct h5w *w, struct h5w_group *g, uint64_t row)
{
	for (size_t i = 0; i < g->ndsets; i++)
		if (g->dsets[i].event_table)
			h5w_dset_truncate(w, &g->dsets[i], row);
}

/* Open EVENT_ID at the next row, whole or not at all: its time, id, state
 * and an empty span per channel (so that its row is buffered in every
 * column it changes later; the fields get fill when the row is padded). */
static int open_event(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		      size_t *index, struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	int rc;
	if (!g->records) {
		g->records = calloc(w->max_open_records, sizeof(*g->records));
		if (!g->records)
			return -ENOMEM;
	}
	if (g->nrecords == w->max_open_records && (rc = close_at(w, g, 0, err)))
		return rc;
	uint64_t row = event_rows(g), zero = 0;
	uint8_t open = H5W_RECORD_OPEN;
	struct h5w_record rec = {.event_id = event_id, .row = row, .opened = w->arrived};
	rec.have = calloc(st->nchannels + 1, 1);
	rec.span = calloc(2 * st->nchannels + 1, sizeof(*rec.span));
	rc = rec.have && rec.span ? 0 : -ENOMEM;
	if (!rc)
		rc = h5w_dset_put(w, ev_time(g), row, &t0, 1, err);
	if (!rc)
		rc = h5w_dset_put(w, &g->dsets[g->event_id_ds], row, &event_id, 1, err);
	if (!rc)
		rc = h5w_dset_put(w, &g->dsets[g->record_state_ds], row, &open, 1, err);
	for (size_t c = 0; !rc && c < st->nchannels; c++) {
		rc = h5w_dset_put(w, &g->dsets[g->ev_start_ds[c]], row, &zero, 1, err);
		if (!rc)
			rc = h5w_dset_put(w, &g->dsets[g->ev_count_ds[c]], row, &zero, 1, err);
	}
	if (rc) {
		truncate_rows(w, g, row);
		free(rec.have);
		free(rec.span);
		return rc;
	}
	*index = g->nrecords;
	g->records[g->nrecords++] = rec;
	w->open_records++;
	/* judged by the time it opens with, as a record is */
	h5w_time_note(w, g, ev_time(g), t0);
	return 0;
}

/*
 * A DATA frame of EVENT_ID is about to be appended: find its open event or
 * open one (*opened). -ESTALE when the event closed in this file: the
 * samples are to be stored all the same, outside any event.
 */
int h5w_events_begin(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		     size_t *index, bool *opened, struct h5w_error *err)
{
	*opened = false;
	if (!find(g, event_id, index))
		return 0;
	if (h5w_closed_has(g, event_id)) {
		w->stats.event_frames_late++;
		return -ESTALE;
	}
	int rc = open_event(w, g, event_id, t0, index, err);
	*opened = !rc;
	return rc;
}

/* The frame that opened the event at INDEX was refused: forget the event. */
void h5w_events_undo(struct h5w *w, struct h5w_group *g, size_t index)
{
	struct h5w_record *rec = &g->records[index];
	truncate_rows(w, g, rec->row);
	free(rec->have);
	free(rec->span);
	memmove(rec, rec + 1, (g->nrecords - index - 1) * sizeof(*rec));
	g->nrecords--;
	w->open_records--;
}

/* N samples from FIRST of CHANNEL are the event's at INDEX: its span on
 * that channel runs from its first frame's first sample to its last
 * frame's end (frames of other events in between lie inside it). */
void h5w_events_span(struct h5w *w, struct h5w_group *g, size_t index, size_t channel,
		     uint64_t first, uint64_t n)
{
	struct h5w_record *rec = &g->records[index];
	if (!rec->have[channel]) {
		rec->have[channel] = 1;
		rec->span[2 * channel] = first;
	}
	if (first + n > rec->span[2 * channel + 1])
		rec->span[2 * channel + 1] = first + n;
	put_span(w, g, rec, channel);
}

int h5w_events_fields(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t time,
		      const struct h5w_value *fields, size_t nfields, struct h5w_error *err)
{
	size_t index;
	int rc = 0;
	if (!event_id) {
		h5w_err(w, err, "%s: event fields need an event id other than 0", g->path);
		return -EINVAL;
	}
	for (size_t i = 0; i < nfields; i++) {
		if (fields[i].index >= g->stream->nevent_fields) {
			h5w_err(w, err, "%s: event field index %zu out of range", g->path,
				fields[i].index);
			return -EINVAL;
		}
	}
	if (find(g, event_id, &index)) {
		if (h5w_closed_has(g, event_id)) {
			h5w_err(w, err, "%s: event %llu already closed (record_timeout): late "
				"event fields dropped", g->path, (unsigned long long)event_id);
			return -ESTALE;
		}
		rc = open_event(w, g, event_id, time, &index, err);
	}
	struct h5w_record *rec = rc ? NULL : &g->records[index];
	/* the EVENT frame's time is the event's (a DATA frame's t0 stood in) */
	if (!rc)
		rc = h5w_dset_put(w, ev_time(g), rec->row, &time, 1, err);
	for (size_t i = 0; !rc && i < nfields; i++)
		rc = h5w_field_put(w, g, rec->row, &fields[i], err);
	if (!rc)
		rec->have_fields = true;
	return rc;
}

int h5w_events_close(struct h5w *w, struct h5w_group *g, uint64_t event_id,
		     struct h5w_error *err)
{
	size_t index;
	if (!event_id || find(g, event_id, &index)) {
		h5w_err(w, err, "%s: no open event %llu", g->path, (unsigned long long)event_id);
		return -ENOENT;
	}
	return close_at(w, g, index, err);
}

/* Close events past their timeout (ALL: every open event). */
int h5w_events_expire(struct h5w *w, struct h5w_group *g, bool all, struct h5w_error *err)
{
	int first = 0;
	int64_t timeout = g->stream->record_timeout_ns;
	for (size_t i = 0; i < g->nrecords;) {
		if (all || w->horizon - g->records[i].opened >= timeout) {
			int rc = close_at(w, g, i, first ? NULL : err);
			if (rc && !first)
				first = rc;
		} else {
			i++;
		}
	}
	return first;
}

/* Bring every column to the table's rows (fields not given are fill). */
int h5w_events_pad(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	uint64_t rows = event_rows(g);
	for (size_t i = 0; i < g->ndsets; i++) {
		struct h5w_dset *ds = &g->dsets[i];
		if (!ds->event_table || ds->nrows >= rows)
			continue;
		int rc = h5w_dset_fill(w, ds, ds->nrows, rows - ds->nrows, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* The uint64 at ROW of DS, from its buffers; false when not in memory. */
static bool buffered_u64(const struct h5w_dset *ds, uint64_t row, uint64_t *value)
{
	uint64_t chunk = row / ds->chunk_rows, at = row % ds->chunk_rows;
	for (size_t i = 0; i < ds->nbufs; i++) {
		const struct h5w_chunkbuf *b = &ds->bufs[i];
		if (b->index == chunk && at < b->init_rows) {
			memcpy(value, b->data + at * sizeof(*value), sizeof(*value));
			return true;
		}
	}
	return false;
}

/* How many rows of the table point only at samples in the file: rows in
 * the file did when they were stored, the others are in memory. */
static uint64_t rows_stored_samples(const struct h5w_group *g)
{
	const struct schema_stream *st = g->stream;
	const struct h5w_dset *t = &g->dsets[g->time_ds];
	bool all = true;
	for (size_t c = 0; all && c < st->nchannels; c++)
		all = h5w_dset_stored(&g->dsets[g->chan_ds[c]]);
	if (all)
		return t->nrows;
	uint64_t row = t->extent;
	for (; row < t->nrows; row++) {
		for (size_t c = 0; c < st->nchannels; c++) {
			uint64_t start, count;
			if (!buffered_u64(&g->dsets[g->ev_start_ds[c]], row, &start) ||
			    !buffered_u64(&g->dsets[g->ev_count_ds[c]], row, &count) ||
			    (count && start + count > g->dsets[g->chan_ds[c]].extent))
				return row;
		}
	}
	return row;
}

/* At a flush, after the samples were stored: store the table (padded) as
 * far as the samples its rows point at are; the rest waits in memory. */
int h5w_events_store(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	int first = h5w_events_pad(w, g, err);
	uint64_t upto = rows_stored_samples(g);
	for (size_t i = 0; i < g->ndsets; i++) {
		if (!g->dsets[i].event_table)
			continue;
		int rc = h5w_dset_flush_upto(w, &g->dsets[i], upto, first ? NULL : err);
		if (rc && !first)
			first = rc;
	}
	return first;
}

/* Rows below the oldest open event are final: store their whole chunks
 * and give back their memory, as far as their samples are stored. */
int h5w_events_seal(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	uint64_t upto = g->nrecords ? g->records[0].row : event_rows(g);
	uint64_t stored = rows_stored_samples(g);
	if (stored < upto)
		upto = stored;
	int rc = h5w_events_pad(w, g, err);
	for (size_t i = 0; !rc && i < g->ndsets; i++)
		if (g->dsets[i].event_table)
			rc = h5w_dset_seal(w, &g->dsets[i], upto, err);
	return rc;
}
