/*
 * h5w_records.c - open-record tracking for `layout: records` (SPEC §4.2).
 *
 * An event arrives as several frames (one waveform per channel, plus an
 * EVENT frame with its scalar fields) that may interleave with other
 * events. The first frame of an event opens a record and assigns the next
 * row, so rows follow the order in which events began. Data goes straight
 * into the chunk buffers at that row. A record closes when it is complete
 * (every channel, and the fields if the stream declares any), when it is
 * older than record_timeout, when max_open_records newer ones are open, or
 * when the file closes; channels still missing then keep the fill value and
 * are counted. Rows below the oldest open record are final, so their chunks
 * are sealed and go to the file.
 *
 * One row per event: the ids of the most recently closed records are kept
 * (a bounded FIFO with a hash), and a late frame for one of them is refused
 * with -ESTALE rather than opening a second row for the same event.
 *
 * Every dataset of the group has the same number of rows: rows of a record
 * whose data has not arrived are padded with fill before each flush (and
 * rewritten when the data comes), so extents agree at every durability point.
 *
 * Caller thread only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h5w_internal.h"

static bool complete(const struct h5w_group *g, const struct h5w_record *rec)
{
	const struct schema_stream *st = g->stream;
	if (st->nevent_fields && !rec->have_fields)
		return false;
	for (size_t i = 0; i < st->nchannels; i++)
		if (!rec->have[i])
			return false;
	return true;
}

static uint64_t group_rows(const struct h5w_group *g)
{
	return g->dsets[g->time_ds].nrows;
}

/* Bring every dataset (but the fixed sample_time) to UPTO rows with fill. */
static int pad(struct h5w *w, struct h5w_group *g, uint64_t upto, struct h5w_error *err)
{
	for (size_t i = 0; i < g->ndsets; i++) {
		struct h5w_dset *ds = &g->dsets[i];
		if (i == g->sample_time_ds || ds->nrows >= upto)
			continue;
		int rc = h5w_dset_fill(w, ds, ds->nrows, upto - ds->nrows, err);
		if (rc)
			return rc;
	}
	return 0;
}

int h5w_records_pad(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	return pad(w, g, group_rows(g), err);
}

/* Rows below the oldest open record are final: store their chunks. */
static int seal(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	uint64_t upto = g->nrecords ? g->records[0].row : group_rows(g);
	int rc = pad(w, g, upto, err);
	for (size_t i = 0; !rc && i < g->ndsets; i++)
		if (i != g->sample_time_ds)
			rc = h5w_dset_seal(w, &g->dsets[i], upto, err);
	return rc;
}

int h5w_records_seal(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	return seal(w, g, err);
}

#define CHAIN_END UINT32_MAX

static uint32_t closed_bucket(uint64_t event_id)
{
	/* Fibonacci hashing: sequential ids spread over every bucket */
	return (uint32_t)((event_id * UINT64_C(0x9E3779B97F4A7C15)) >> 52) &
	       (H5W_CLOSED_EVENTS - 1);
}

bool h5w_closed_has(const struct h5w_group *g, uint64_t event_id)
{
	const struct h5w_closed_events *c = &g->closed;
	if (!c->count)
		return false;
	for (uint32_t i = c->buckets[closed_bucket(event_id)]; i != CHAIN_END; i = c->next[i])
		if (c->ids[i] == event_id)
			return true;
	return false;
}

static void closed_forget_all(struct h5w_closed_events *c)
{
	if (c->buckets)
		memset(c->buckets, 0xff, H5W_CLOSED_EVENTS * sizeof(*c->buckets));
	c->head = c->count = 0;
}

/* Remember that EVENT_ID's record closed, forgetting the oldest id when the
 * ring is full. Without memory for the ring the engine only loses the
 * protection against late frames, so that failure is not an error. */
void h5w_closed_remember(struct h5w_group *g, uint64_t event_id)
{
	struct h5w_closed_events *c = &g->closed;
	if (!event_id)
		return;
	if (!c->ids) {
		size_t n = H5W_CLOSED_EVENTS;
		unsigned char *block = malloc(n * (sizeof(*c->ids) + 2 * sizeof(uint32_t)));
		if (!block)
			return;
		c->ids = (uint64_t *)(void *)block;
		c->next = (uint32_t *)(void *)(block + n * sizeof(*c->ids));
		c->buckets = c->next + n;
		closed_forget_all(c);
	}
	uint32_t slot;
	if (c->count == H5W_CLOSED_EVENTS) {
		slot = c->head;
		c->head = (c->head + 1) % H5W_CLOSED_EVENTS;
		uint32_t *link = &c->buckets[closed_bucket(c->ids[slot])];
		while (*link != slot)
			link = &c->next[*link];
		*link = c->next[slot];
	} else {
		slot = (c->head + c->count++) % H5W_CLOSED_EVENTS;
	}
	uint32_t b = closed_bucket(event_id);
	c->ids[slot] = event_id;
	c->next[slot] = c->buckets[b];
	c->buckets[b] = slot;
}

/* A frame for an event whose record is no longer open: refused when the
 * record closed recently in this file (it would open a second row). */
static int refuse_closed(struct h5w *w, struct h5w_group *g, uint64_t event_id,
			 const char *what, struct h5w_error *err)
{
	if (!event_id || !h5w_closed_has(g, event_id))
		return 0;
	h5w_err(w, err, "%s: event %llu already closed (record_timeout): late %s dropped",
		g->path, (unsigned long long)event_id, what);
	return -ESTALE;
}

/* Close the record at I: its row's record_state says how it ended (the
 * close happens whatever that write returns). */
static int close_at(struct h5w *w, struct h5w_group *g, size_t i, struct h5w_error *err)
{
	struct h5w_record *rec = &g->records[i];
	uint8_t state = complete(g, rec) ? H5W_RECORD_COMPLETE : H5W_RECORD_INCOMPLETE;
	int rc = h5w_dset_put(w, &g->dsets[g->record_state_ds], rec->row, &state, 1, err);
	h5w_closed_remember(g, rec->event_id);
	for (size_t c = 0; c < g->stream->nchannels; c++)
		if (!rec->have[c])
			w->stats.missing_channels++;
	w->stats.records_closed++;
	free(rec->have);
	memmove(&g->records[i], &g->records[i + 1], (g->nrecords - i - 1) * sizeof(*rec));
	g->nrecords--;
	w->open_records--;
	return rc;
}

static struct h5w_record *find(struct h5w_group *g, uint64_t event_id)
{
	if (!event_id)
		return NULL;
	for (size_t i = g->nrecords; i-- > 0;)
		if (g->records[i].event_id == event_id)
			return &g->records[i];
	return NULL;
}

/* Take ROW back from the columns open_record() puts a new record in. */
static void drop_record_row(struct h5w *w, struct h5w_group *g, uint64_t row)
{
	size_t cols[] = {g->time_ds, g->event_id_ds, g->record_state_ds, g->origin_ds,
			 g->origin_id_ds};
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		if (cols[i] != SIZE_MAX)
			h5w_dset_truncate(w, &g->dsets[cols[i]], row);
}

static int open_record(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		       struct h5w_record **out, struct h5w_error *err)
{
	int rc;
	if (!g->records) {
		g->records = calloc(w->max_open_records, sizeof(*g->records));
		if (!g->records)
			return -ENOMEM;
	}
	if (g->nrecords == w->max_open_records) {
		rc = close_at(w, g, 0, err);
		if (!rc)
			rc = seal(w, g, err);
		if (rc)
			return rc;
	}
	uint64_t row = group_rows(g);
	uint8_t open = H5W_RECORD_OPEN;
	rc = h5w_dset_put(w, &g->dsets[g->time_ds], row, &t0, 1, err);
	if (!rc)
		rc = h5w_dset_put(w, &g->dsets[g->event_id_ds], row, &event_id, 1, err);
	if (!rc)
		rc = h5w_dset_put(w, &g->dsets[g->record_state_ds], row, &open, 1, err);
	if (!rc && g->origin_ds != SIZE_MAX) /* the message that opened it */
		rc = h5w_dset_put(w, &g->dsets[g->origin_ds], row, &w->origin, 1, err);
	if (!rc && g->origin_id_ds != SIZE_MAX)
		rc = h5w_dset_put_string(w, &g->dsets[g->origin_id_ds], row, w->origin_id, err);
	struct h5w_record *rec = &g->records[g->nrecords];
	*rec = (struct h5w_record){.event_id = event_id, .row = row, .opened = w->arrived};
	if (!rc && !(rec->have = calloc(g->stream->nchannels + 1, 1)))
		rc = -ENOMEM;
	if (rc) { /* opened whole or not at all: the columns stay in step */
		drop_record_row(w, g, row);
		return rc;
	}
	g->nrecords++;
	w->open_records++;
	/* judged by the time the record opens with: an event time that
	 * arrives later replaces it in the file but is not judged again */
	h5w_time_note(w, g, &g->dsets[g->time_ds], t0);
	h5w_count_rows(w, g, 1);
	*out = rec;
	return 0;
}

/* Take back REC, opened by a frame that was then refused (-ENOBUFS)
 * before anything of it was kept: its row goes from every column
 * open_record() put it in, so the frame offered again opens the record
 * afresh, in whichever file it then goes to, and no empty record is left
 * behind in this one. REC is the newest record, its row the last. */
static void unopen(struct h5w *w, struct h5w_group *g, struct h5w_record *rec)
{
	uint64_t row = rec->row;
	free(rec->have);
	g->nrecords--;
	w->open_records--;
	drop_record_row(w, g, row);
	if (g->pending)
		w->pending_rows--;
	else
		w->file_rows--;
}

/* The open record of EVENT_ID, or a new one (its time T0), unless the
 * event closed recently in this file: then its late WHAT is refused. */
static int take_record(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		       const char *what, struct h5w_record **out, struct h5w_error *err)
{
	*out = find(g, event_id);
	if (*out)
		return 0;
	int rc = refuse_closed(w, g, event_id, what, err);
	return rc ? rc : open_record(w, g, event_id, t0, out, err);
}

static int close_if_complete(struct h5w *w, struct h5w_group *g, struct h5w_record *rec,
			     struct h5w_error *err)
{
	if (rec->event_id && !complete(g, rec))
		return 0;
	int rc = close_at(w, g, (size_t)(rec - g->records), err);
	return rc ? rc : seal(w, g, err);
}

static int record_time(struct h5w_group *g, const struct h5w_record *rec, int64_t *t)
{
	const struct h5w_dset *time = &g->dsets[g->time_ds];
	for (size_t i = 0; i < time->nbufs; i++) {
		const struct h5w_chunkbuf *b = &time->bufs[i];
		if (rec->row / time->chunk_rows == b->index) {
			memcpy(t, b->data + (rec->row % time->chunk_rows) * sizeof(*t), sizeof(*t));
			return 0;
		}
	}
	return -ENOENT;
}

static int row_stored(struct h5w *w, struct h5w_group *g, struct h5w_record *rec, size_t channel,
		      int64_t t0, size_t n, int rc, struct h5w_error *err);

int h5w_records_data(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		     size_t channel, enum dtype wire, const void *samples, size_t n,
		     struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	if (n != st->samples) {
		h5w_err(w, err, "%s/%s: waveform of %zu samples, the stream declares %llu",
			g->path, st->channels[channel].name, n, (unsigned long long)st->samples);
		return -EINVAL;
	}
	struct h5w_dset *ds = &g->dsets[g->chan_ds[channel]];
	struct h5w_record *rec;
	bool opened = find(g, event_id) == NULL;
	int rc = take_record(w, g, event_id, t0, st->channels[channel].name, &rec, err);
	if (rc)
		return rc;
	/* convert into scratch first: a bad dtype must not touch the row */
	const void *row = samples;
	if (wire != ds->dtype) {
		unsigned char *buf = h5w_scratch(w, ds->row_bytes);
		if (!buf)
			return -ENOMEM;
		rc = h5w_convert(w, wire, ds->dtype, samples, n, buf, err);
		row = buf;
	}
	if (!rc && ds->chunk_rows == 1 && ds->codec == H5W_CODEC_RAW && h5w_in_current(w, g))
		rc = h5w_dset_write_row(w, ds, rec->row, row, err);
	else if (!rc)
		rc = h5w_dset_put(w, ds, rec->row, row, 1, err);
	if (rc == -ENOBUFS) { /* refused, to be offered again */
		if (opened)
			unopen(w, g, rec);
		return rc;
	}
	return row_stored(w, g, rec, channel, t0, n, rc, err);
}

/* The waveform of CHANNEL went to REC's row with result RC: the record
 * has it, and closes if that completes it. */
static int row_stored(struct h5w *w, struct h5w_group *g, struct h5w_record *rec, size_t channel,
		      int64_t t0, size_t n, int rc, struct h5w_error *err)
{
	/* a failed write that kept the row (full disk): the row is the record's */
	int kept = h5w_held(rc) ? rc : 0;
	if (rc && !kept)
		return rc;
	int64_t t = t0;
	record_time(g, rec, &t);
	h5w_dset_note_time(&g->dsets[g->chan_ds[channel]], t, t);
	rec->have[channel] = 1;
	w->stats.samples_written += n;
	rc = close_if_complete(w, g, rec, kept ? NULL : err);
	return kept ? kept : rc;
}

/* Can an encoded row of DS go to the file now, as it is? Not while its
 * group waits for the next file, while chunks wait for a retry (they must
 * reach the file in order), or when a chunk holds more than one record. */
static bool direct_now(const struct h5w *w, const struct h5w_group *g, const struct h5w_dset *ds,
		       uint64_t row)
{
	if (ds->chunk_rows != 1 || !h5w_in_current(w, g) || w->store_failed)
		return false;
	for (size_t i = 0; i < ds->nbufs && ds->bufs[i].index < row; i++)
		if (ds->bufs[i].dirty_hi > ds->bufs[i].dirty_lo)
			return false;
	return true;
}

int h5w_records_encoded(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
			size_t channel, const struct h5w_encoded *chunk, struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	struct h5w_dset *ds = &g->dsets[g->chan_ds[channel]];
	bool decode = st->channels[channel].verify_chunks == SCHEMA_VERIFY_DECODE;
	if (ds->chunk_rows != 1) {
		h5w_err(w, err, "%s/%s: pre-compressed chunk refused: the channel stores %llu "
			"records per chunk (pre-compressed waveforms need chunk: 1)", g->path,
			ds->name, (unsigned long long)ds->chunk_rows);
		return -EINVAL;
	}
	int rc = h5w_encoded_check(w, ds, chunk, decode, err);
	if (rc)
		return rc;
	struct h5w_record *rec;
	bool opened = find(g, event_id) == NULL;
	rc = take_record(w, g, event_id, t0, st->channels[channel].name, &rec, err);
	if (rc)
		return rc;
	bool direct = direct_now(w, g, ds, rec->row);
	if (direct)
		rc = h5w_dset_write_encoded(w, ds, rec->row, chunk, err);
	if (!direct || rc) {
		/* held as it came, stored when its chunk goes out; a failed
		 * direct write's error stands (the row is kept). A row that
		 * cannot be kept refuses the frame (-ENOBUFS: offered again
		 * once a flush made room): never taken, so never acknowledged. */
		int put = h5w_dset_hold_encoded(w, ds, rec->row, chunk, err);
		if (put) {
			if (rc)
				h5w_err(w, NULL, "%s/%s: row %llu could not be kept after its "
					"write failed: the frame is refused", g->path, ds->name,
					(unsigned long long)rec->row);
			if (put == -ENOBUFS && opened)
				unopen(w, g, rec);
			return put;
		}
	}
	return row_stored(w, g, rec, channel, t0, st->samples, rc, err);
}

/* Field V of the event at ROW, converted to the field's dtype (records and
 * a stream's event table alike). */
int h5w_field_put(struct h5w *w, struct h5w_group *g, uint64_t row, const struct h5w_value *v,
		  struct h5w_error *err)
{
	const struct schema_event_field *f = &g->stream->event_fields[v->index];
	struct h5w_dset *ds = &g->dsets[g->field_ds[v->index]];
	unsigned char value[8];
	if ((f->dtype == DTYPE_STRING) != (v->dtype == DTYPE_STRING)) {
		h5w_err(w, err, "%s/%s: a %s value is not convertible to %s", g->path, f->name,
			dtype_name(v->dtype) ? dtype_name(v->dtype) : "?", dtype_name(f->dtype));
		return -EINVAL;
	}
	if (f->dtype == DTYPE_STRING) {
		char *copy = strdup(v->v.s ? v->v.s : "");
		if (!copy)
			return -ENOMEM;
		int rc = h5w_dset_put(w, ds, row, &copy, 1, err);
		if (rc)
			free(copy);
		return rc;
	}
	int rc = h5w_convert(w, v->dtype, f->dtype, &v->v, 1, value, err);
	if (rc)
		return rc;
	return h5w_dset_put(w, ds, row, value, 1, err);
}

int h5w_records_fields(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t time,
		       const struct h5w_value *fields, size_t nfields, struct h5w_error *err)
{
	for (size_t i = 0; i < nfields; i++) {
		if (fields[i].index >= g->stream->nevent_fields) {
			h5w_err(w, err, "%s: event field index %zu out of range", g->path,
				fields[i].index);
			return -EINVAL;
		}
	}
	struct h5w_record *rec;
	int rc = take_record(w, g, event_id, time, "event fields", &rec, err);
	if (!rc)
		rc = h5w_dset_put(w, &g->dsets[g->time_ds], rec->row, &time, 1, err);
	for (size_t i = 0; !rc && i < nfields; i++)
		rc = h5w_field_put(w, g, rec->row, &fields[i], err);
	if (rc)
		return rc;
	rec->have_fields = true;
	return close_if_complete(w, g, rec, err);
}

int h5w_records_close(struct h5w *w, struct h5w_group *g, uint64_t event_id,
		      struct h5w_error *err)
{
	struct h5w_record *rec = find(g, event_id);
	if (!rec) {
		h5w_err(w, err, "%s: no open record for event %llu", g->path,
			(unsigned long long)event_id);
		return -ENOENT;
	}
	int rc = close_at(w, g, (size_t)(rec - g->records), err);
	return rc ? rc : seal(w, g, err);
}

/* Close records past their timeout (ALL: every open record). */
int h5w_records_expire(struct h5w *w, struct h5w_group *g, bool all, struct h5w_error *err)
{
	bool closed = false;
	int first = 0;
	int64_t timeout = g->stream->record_timeout_ns;
	for (size_t i = 0; i < g->nrecords;) {
		if (all || w->horizon - g->records[i].opened >= timeout) {
			int rc = close_at(w, g, i, first ? NULL : err);
			if (rc && !first)
				first = rc;
			closed = true;
		} else {
			i++;
		}
	}
	if (first)
		return first;
	return closed ? seal(w, g, err) : 0;
}

/* Forget the open records and the closed ids (the file was closed: an event
 * may go on in the next file). */
void h5w_records_free(struct h5w *w, struct h5w_group *g)
{
	for (size_t i = 0; i < g->nrecords; i++) {
		free(g->records[i].have);
		free(g->records[i].span);
	}
	w->open_records -= g->nrecords;
	g->nrecords = 0;
	closed_forget_all(&g->closed);
}

void h5w_records_destroy(struct h5w *w, struct h5w_group *g)
{
	h5w_records_free(w, g);
	free(g->records);
	g->records = NULL;
	free(g->closed.ids);
	g->closed = (struct h5w_closed_events){0};
}
