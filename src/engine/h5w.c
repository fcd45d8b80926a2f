/*
 * h5w.c - the storage engine's lifecycle and its append API.
 *
 * This file holds the engine object, the table of groups (found by their
 * expanded path, bounded by limits.max_groups) and the entry points that
 * make a group ready for data before they hand it to its layout: tables
 * in h5w_table.c, streams in h5w_stream.c, records in h5w_records.c;
 * chunk handling is in h5w_chunk.c, the file in h5w_file.c.
 *
 * Threading: the API is called by one thread (the daemon's writer thread),
 * which is also the only thread that calls HDF5. The compression workers
 * started here only ever see chunk bytes (h5w_pool.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5w_internal.h"
#include "h5z_lz4.h"

#define DEFAULT_MAX_OPEN_RECORDS 16

unsigned char *h5w_scratch(struct h5w *w, size_t bytes)
{
	if (bytes > w->scratch_cap) {
		unsigned char *buf = realloc(w->scratch, bytes);
		if (!buf)
			return NULL;
		w->scratch = buf;
		w->scratch_cap = bytes;
	}
	return w->scratch;
}

static void free_run(struct h5w *w)
{
	for (size_t i = 0; i < w->nrun_attrs; i++) {
		free((char *)w->run_attrs[i].name);
		free((char *)w->run_attrs[i].s);
	}
	free(w->run_attrs);
	free(w->run);
	w->run = NULL;
	w->run_attrs = NULL;
	w->nrun_attrs = 0;
	w->run_start = w->run_restarted = 0;
	w->run_files = 0;
}

/* Make a copy of RUN the engine's run (replacing any); -ENOMEM. */
static int set_run(struct h5w *w, const struct h5w_run *run)
{
	char *name = strdup(run->name);
	struct h5w_attr *attrs = calloc(run->nattrs + 1, sizeof(*attrs));
	bool ok = name && attrs;
	for (size_t i = 0; ok && i < run->nattrs; i++) {
		attrs[i] = run->attrs[i];
		attrs[i].name = strdup(run->attrs[i].name);
		attrs[i].s = run->attrs[i].s ? strdup(run->attrs[i].s) : NULL;
		ok = attrs[i].name && (attrs[i].s || !run->attrs[i].s);
	}
	if (!ok) {
		for (size_t i = 0; attrs && i < run->nattrs; i++) {
			free((char *)attrs[i].name);
			free((char *)attrs[i].s);
		}
		free(attrs);
		free(name);
		return -ENOMEM;
	}
	free_run(w);
	w->run = name;
	w->run_attrs = attrs;
	w->nrun_attrs = run->nattrs;
	w->run_start = run->start;
	w->run_restarted = run->restarted;
	return 0;
}

int h5w_open(struct h5w **out, const struct schema *schema, const struct h5w_options *options,
	     int64_t now, struct h5w_error *err)
{
	struct h5w_options none = {0};
	char host[256] = "";
	struct h5w *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (!options)
		options = &none;
	if (!w) {
		h5w_err(NULL, err, "out of memory starting the storage engine");
		return -ENOMEM;
	}
	/* Errors are collected into messages (h5w_error.c), never printed. */
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	w->schema = schema;
	w->now = w->arrived = w->horizon = now;
	w->file = H5I_INVALID_HID;
	w->flush_every = H5W_FLUSH_EVERY;
	w->conv_dxpl = H5I_INVALID_HID;
	w->dapl_nocache = H5I_INVALID_HID;
	w->str_type = H5I_INVALID_HID;
	w->max_open_records = options->max_open_records ? options->max_open_records
							: DEFAULT_MAX_OPEN_RECORDS;
	if (!options->host)
		gethostname(host, sizeof(host) - 1);
	w->host = strdup(options->host ? options->host : host);
	w->run = options->run ? strdup(options->run) : NULL;
	w->shard = options->shard ? strdup(options->shard) : NULL;
	if (options->run_state && set_run(w, options->run_state)) {
		free(w->run);
		w->run = NULL;
	}
	w->hash_size = 64;
	w->hash = calloc(w->hash_size, sizeof(*w->hash));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned workers = options->workers ? options->workers : (cpus > 0 ? (unsigned)cpus : 1);
	int rc = -ENOMEM;
	/* LZ4 is declared mandatory in the datasets (h5w_layout.c): the class
	 * linked into this process satisfies HDF5 without any plugin path. */
	if (w->host && (w->run || !options->run) && (w->shard || !options->shard) && w->hash)
		rc = h5z_lz4_register();
	if (!rc)
		rc = h5w_convert_init(w);
	if (!rc)
		rc = h5w_pool_start(&w->pool, workers);
	/* enough queued work to keep every worker busy while the writer thread
	 * stores results, and no more: memory stays low and predictable */
	w->max_inflight = 2 * workers + 1;
	if (rc) {
		h5w_err(NULL, err, "starting the storage engine: %s", strerror(-rc));
		h5w_convert_free(w);
		free(w->hash);
		free(w->host);
		free(w->run);
		free(w->shard);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static void free_group(struct h5w *w, struct h5w_group *g)
{
	for (size_t i = 0; i < g->ndsets; i++) {
		h5w_dset_reset(w, &g->dsets[i]);
		free(g->dsets[i].bufs);
		for (unsigned k = 0; k < g->dsets[i].nspares; k++) {
			free(g->dsets[i].spares[k]);
			w->buffered -= g->dsets[i].chunk_bytes;
		}
	}
	h5w_records_destroy(w, g);
	for (size_t i = 0; i < g->nvalues; i++) {
		free(g->names[i]);
		free(g->values[i]);
	}
	free(g->names);
	free(g->values);
	free(g->dsets);
	free(g->chan_ds);
	free(g->chan_time_ds);
	free(g->frame_start_ds);
	free(g->frame_seq_ds);
	free(g->frame_origin_ds);
	free(g->frame_origin_id_ds);
	free(g->field_ds);
	free(g->ev_start_ds);
	free(g->ev_count_ds);
	free(g->seen);
	free(g);
}

int h5w_close(struct h5w *w, struct h5w_error *err)
{
	if (!w)
		return 0;
	int rc = h5w_file_close(w, err);
	if (!rc && w->unclosed[0]) {
		h5w_err(w, err, "%s could not be closed (a write failed): it stays marked as "
			"open for writing (h5clear -s --increment makes it readable)", w->unclosed);
		rc = -EIO;
	}
	h5w_chunks_reap(w, true, NULL);
	h5w_pool_stop(&w->pool);
	h5w_encoder_free(&w->encoder);
	for (unsigned k = 0; k < w->nouts; k++)
		free(w->outs[k]);
	free(w->pad);
	for (size_t i = 0; i < w->ngroups; i++)
		free_group(w, w->group_list[i]);
	free(w->group_list);
	free(w->hash);
	h5w_convert_free(w);
	if (w->dapl_nocache != H5I_INVALID_HID)
		H5Pclose(w->dapl_nocache);
	free(w->scratch);
	free(w->decoded);
	free(w->host);
	free(w->shard);
	free_run(w);
	free(w);
	return rc;
}

/* ---- groups ------------------------------------------------------------ */

static size_t hash_path(const char *s, size_t size)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % size);
}

static int grow_hash(struct h5w *w)
{
	size_t size = w->hash_size * 2;
	struct h5w_group **hash = calloc(size, sizeof(*hash));
	if (!hash)
		return -ENOMEM;
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		size_t b = hash_path(g->path, size);
		g->hash_next = hash[b];
		hash[b] = g;
	}
	free(w->hash);
	w->hash = hash;
	w->hash_size = size;
	return 0;
}

static int new_group(struct h5w *w, const struct schema_stream *stream, const char *path,
		     const char *const *names, const char *const *values, size_t nvalues,
		     struct h5w_group **out, struct h5w_error *err)
{
	struct h5w_group *g = calloc(1, sizeof(*g));
	struct h5w_group **list = realloc(w->group_list, (w->ngroups + 1) * sizeof(*list));
	if (list)
		w->group_list = list;
	if (!g || !list)
		goto nomem;
	snprintf(g->path, sizeof(g->path), "%s", path);
	g->stream = stream;
	g->names = calloc(nvalues + 1, sizeof(char *));
	g->values = calloc(nvalues + 1, sizeof(char *));
	g->seen = calloc(stream->nchannels + 1, 1);
	if (!g->names || !g->values || !g->seen)
		goto nomem;
	for (size_t i = 0; i < nvalues; i++) {
		if (!schema_template_has(&stream->group, names[i]))
			continue;
		g->names[g->nvalues] = strdup(names[i]);
		g->values[g->nvalues] = strdup(values[i]);
		g->nvalues++;
		if (!g->names[g->nvalues - 1] || !g->values[g->nvalues - 1])
			goto nomem;
	}
	int rc = h5w_layout_plan(w, g, err);
	if (rc) {
		free_group(w, g);
		return rc;
	}
	if (w->ngroups * 2 >= w->hash_size && grow_hash(w))
		goto nomem;
	size_t b = hash_path(path, w->hash_size);
	g->hash_next = w->hash[b];
	w->hash[b] = g;
	w->group_list[w->ngroups++] = g;
	w->stats.groups = w->ngroups;
	*out = g;
	return 0;
nomem:
	if (g)
		free_group(w, g);
	h5w_err(w, err, "out of memory adding group %s", path);
	return -ENOMEM;
}

int h5w_group_get(struct h5w *w, const struct schema_stream *stream,
		  const char *const *names, const char *const *values, size_t nvalues,
		  struct h5w_group **out, struct h5w_error *err)
{
	char path[512];
	long n = schema_template_expand(&stream->group, names, values, nvalues, path, sizeof(path));
	if (n < 0) {
		h5w_err(w, err, "stream %s: group template %s: %s", stream->name,
			stream->group.text, n == -ENOENT ? "a placeholder has no value"
							 : "the path is too long");
		return (int)n;
	}
	for (struct h5w_group *g = w->hash[hash_path(path, w->hash_size)]; g; g = g->hash_next) {
		if (strcmp(g->path, path))
			continue;
		if (g->stream != stream) {
			h5w_err(w, err, "group %s belongs to stream %s, not %s", path,
				g->stream->name, stream->name);
			return -EINVAL;
		}
		*out = g;
		return 0;
	}
	/* the groups of this file and of the last, at most (h5w.h) */
	if (w->ngroups >= 2 * w->schema->limits.max_groups) {
		h5w_err(w, err, "stream %s: group %s not added: the recorder knows twice "
			"limits.max_groups (%llu) groups already", stream->name, path,
			(unsigned long long)w->schema->limits.max_groups);
		return -EMLINK;
	}
	return new_group(w, stream, path, names, values, nvalues, out, err);
}

bool h5w_group_idle(const struct h5w *w, const struct h5w_group *g)
{
	if (g->pending || g->carry || h5w_in_current(w, g))
		return false;
	/* no data in the last file closed: gen is the current file's, or
	 * (none open) the last one's (data_gen 0: never any) */
	uint64_t last = w->file != H5I_INVALID_HID ? w->gen - 1 : w->gen;
	return g->data_gen < last || !g->data_gen;
}

int h5w_group_retire(struct h5w *w, struct h5w_group *g)
{
	if (!h5w_group_idle(w, g))
		return -EBUSY;
	struct h5w_group **link = &w->hash[hash_path(g->path, w->hash_size)];
	while (*link != g)
		link = &(*link)->hash_next;
	*link = g->hash_next;
	for (size_t i = 0; i < w->ngroups; i++) {
		if (w->group_list[i] != g)
			continue;
		/* keep the creation order: it is the order groups appear in files */
		memmove(w->group_list + i, w->group_list + i + 1,
			(w->ngroups - i - 1) * sizeof(*w->group_list));
		break;
	}
	w->ngroups--;
	w->stats.groups = w->ngroups;
	w->stats.groups_retired++;
	free_group(w, g);
	return 0;
}

/*
 * Make sure G takes data now (h5w_file_group): in the current file, or,
 * under SWMR when it is not there, held for the next file. A full disk
 * that leaves no room for a file refuses the data (-ENOBUFS: offered
 * again later).
 */
static int group_ready(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	int rc = h5w_file_group(w, g, err);
	if (h5w_held(rc))
		return -ENOBUFS; /* no file for the data: refused, to be offered again */
	if (rc)
		return rc;
	/* Pending groups hold their chunks back from the file and the
	 * compression workers: a fast stream gets its file within a few MiB,
	 * a batch of slow ones waits for the flush. */
	uint64_t limit = w->schema->limits.max_buffer;
	uint64_t early = limit / 4;
	if (early > H5W_PENDING_BYTES)
		early = H5W_PENDING_BYTES;
	if (w->npending && w->pending_bytes > early && !w->stats.full) {
		rc = h5w_file_start_pending(w, err);
		if (h5w_held(rc))
			return -ENOBUFS;
		if (rc)
			return rc;
	}
	if (!g->pending && g->data_gen != w->gen) { /* a pending group's is set with its file */
		g->data_gen = w->gen;
		w->file_groups++;
	}
	return 0;
}

/*
 * Chunks kept after a failed write wait for the next flush. When they fill
 * half the buffer, new data tries them first (at most once per engine time,
 * so a disk that stays full costs a few attempts a second): once space is
 * back, data must not be refused for want of memory until the periodic
 * flush comes. The outcome is the flush's business; a flush that found
 * space back closes the file, and group_ready then opens the next one.
 */
static void retry_kept_chunks(struct h5w *w)
{
	if (w->store_failed && w->now != w->retried_at &&
	    w->buffered > w->schema->limits.max_buffer / 2) {
		w->retried_at = w->now;
		h5w_flush(w, NULL);
	}
}

/* What every append does before it buffers: room first, then the group. */
static int ready_for_data(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	retry_kept_chunks(w);
	return group_ready(w, g, err);
}

/* ---- appends ----------------------------------------------------------- */

int h5w_table_append(struct h5w *w, struct h5w_group *g, int64_t time,
		     const struct h5w_value *values, size_t nvalues, struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	if (st->layout != SCHEMA_LAYOUT_TABLE) {
		h5w_err(w, err, "%s: not a table-layout group", g->path);
		return -EINVAL;
	}
	for (size_t i = 0; i < nvalues; i++) {
		if (values[i].index >= st->nchannels) {
			h5w_err(w, err, "%s: channel index %zu out of range", g->path,
				values[i].index);
			return -EINVAL;
		}
	}
	if (h5w_time_rejected(w, g, time))
		return 0; /* counted: output.time_window.reject */
	int rc = ready_for_data(w, g, err);
	return rc ? rc : h5w_table_put(w, g, time, values, nvalues, err);
}

/* What every append to a stream channel starts with: 1 when the frame is
 * outside output.time_window (counted, nothing more to do), 0 when the
 * group takes data now, or an error. */
static int stream_ready(struct h5w *w, struct h5w_group *g, size_t channel, int64_t t0,
			struct h5w_error *err)
{
	if (g->stream->layout != SCHEMA_LAYOUT_STREAM || channel >= g->stream->nchannels) {
		h5w_err(w, err, "%s: no stream channel %zu", g->path, channel);
		return -EINVAL;
	}
	if (h5w_time_rejected(w, g, t0))
		return 1; /* counted: output.time_window.reject */
	return ready_for_data(w, g, err);
}

int h5w_stream_append(struct h5w *w, struct h5w_group *g, size_t channel, enum dtype wire,
		      const void *samples, size_t n, int64_t t0, uint64_t seq,
		      struct h5w_error *err)
{
	return h5w_stream_append_event(w, g, channel, wire, samples, n, t0, seq, 0, err);
}

/* A stream frame, as samples or as encoded chunks. */
struct stream_frame {
	enum dtype wire;
	const void *samples;
	size_t n; /* samples; for chunks, set by stream_frame() */
	const struct h5w_encoded *chunks;
	size_t nchunks; /* 0: samples */
};

static int put_frame(struct h5w *w, struct h5w_group *g, size_t channel,
		     const struct stream_frame *f, int64_t t0, uint64_t seq, struct h5w_error *err)
{
	if (f->nchunks)
		return h5w_stream_encoded(w, g, channel, f->chunks, f->nchunks, t0, seq, err);
	return h5w_stream_put(w, g, channel, f->wire, f->samples, f->n, t0, seq, err);
}

/* Frame F of CHANNEL, part of event EVENT_ID (0: of none). */
static int stream_frame(struct h5w *w, struct h5w_group *g, size_t channel,
			struct stream_frame *f, int64_t t0, uint64_t seq, uint64_t event_id,
			struct h5w_error *err)
{
	int rc = stream_ready(w, g, channel, t0, err);
	if (!rc && f->nchunks)
		f->n = f->nchunks * g->dsets[g->chan_ds[channel]].chunk_rows;
	if (rc || f->n == 0)
		return rc > 0 ? 0 : rc;
	if (!event_id || !g->stream->events)
		return put_frame(w, g, channel, f, t0, seq, err);
	/* The event first, so that a frame is taken whole (samples, frame
	 * index and event) or not at all. A late frame of an event closed in
	 * this file is kept as samples: the stream never loses data. */
	size_t index;
	bool opened;
	rc = h5w_events_begin(w, g, event_id, t0, &index, &opened, err);
	if (rc == -ESTALE)
		return put_frame(w, g, channel, f, t0, seq, err);
	if (rc)
		return rc;
	uint64_t first = g->dsets[g->chan_ds[channel]].nrows;
	rc = put_frame(w, g, channel, f, t0, seq, err);
	if (rc && !h5w_held(rc)) { /* refused whole */
		if (opened)
			h5w_events_undo(w, g, index);
		return rc;
	}
	h5w_events_span(w, g, index, channel, first, f->n);
	return rc;
}

int h5w_stream_append_encoded(struct h5w *w, struct h5w_group *g, size_t channel,
			      const struct h5w_encoded *chunks, size_t nchunks, int64_t t0,
			      uint64_t seq, uint64_t event_id, struct h5w_error *err)
{
	struct stream_frame f = {.chunks = chunks, .nchunks = nchunks};
	return stream_frame(w, g, channel, &f, t0, seq, event_id, err);
}

int h5w_stream_append_event(struct h5w *w, struct h5w_group *g, size_t channel,
			    enum dtype wire, const void *samples, size_t n, int64_t t0,
			    uint64_t seq, uint64_t event_id, struct h5w_error *err)
{
	struct stream_frame f = {.wire = wire, .samples = samples, .n = n};
	return stream_frame(w, g, channel, &f, t0, seq, event_id, err);
}

/* ---- records ----------------------------------------------------------- */

/* A group that takes events: records, or a stream with an event table. */
static int records_group(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	if (!h5w_has_events(g)) {
		h5w_err(w, err, "%s: not a records-layout group, nor a stream with events", g->path);
		return -EINVAL;
	}
	return ready_for_data(w, g, err);
}

/* What a waveform for CHANNEL of a records group G, at T0, goes through
 * first: 1 when it is to be stored, 0 when the time window rejected it
 * (counted), or an error. */
static int record_preamble(struct h5w *w, struct h5w_group *g, size_t channel, int64_t t0,
			   struct h5w_error *err)
{
	if (channel >= g->stream->nchannels || g->stream->layout != SCHEMA_LAYOUT_RECORDS) {
		h5w_err(w, err, "%s: no records channel %zu", g->path, channel);
		return -EINVAL;
	}
	int rc = records_group(w, g, err);
	if (rc)
		return rc;
	return h5w_time_rejected(w, g, t0) ? 0 : 1; /* counted: output.time_window.reject */
}

int h5w_record_data(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		    size_t channel, enum dtype wire, const void *samples, size_t n,
		    struct h5w_error *err)
{
	int rc = record_preamble(w, g, channel, t0, err);
	if (rc <= 0)
		return rc;
	return h5w_records_data(w, g, event_id, t0, channel, wire, samples, n, err);
}

int h5w_record_encoded(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		       size_t channel, const struct h5w_encoded *chunk, struct h5w_error *err)
{
	int rc = record_preamble(w, g, channel, t0, err);
	if (rc <= 0)
		return rc;
	return h5w_records_encoded(w, g, event_id, t0, channel, chunk, err);
}

int h5w_record_fields(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t time,
		      const struct h5w_value *fields, size_t nfields, struct h5w_error *err)
{
	int rc = records_group(w, g, err);
	if (!rc && h5w_time_rejected(w, g, time))
		return 0; /* counted: output.time_window.reject */
	if (!rc && g->stream->layout == SCHEMA_LAYOUT_STREAM)
		return h5w_events_fields(w, g, event_id, time, fields, nfields, err);
	if (!rc)
		rc = h5w_records_fields(w, g, event_id, time, fields, nfields, err);
	return rc;
}

int h5w_record_close(struct h5w *w, struct h5w_group *g, uint64_t event_id,
		     struct h5w_error *err)
{
	if (!h5w_in_file(w, g)) {
		h5w_err(w, err, "%s: no open record for event %llu", g->path,
			(unsigned long long)event_id);
		return -ENOENT;
	}
	if (g->stream->layout == SCHEMA_LAYOUT_STREAM)
		return h5w_events_close(w, g, event_id, err);
	return h5w_records_close(w, g, event_id, err);
}

/* ---- time, flush, roll --------------------------------------------------- */

void h5w_arrival(struct h5w *w, int64_t arrived)
{
	w->arrived = arrived;
}

void h5w_origin(struct h5w *w, uint64_t stream_seq, const char *msg_id)
{
	w->origin = stream_seq;
	w->origin_id = msg_id ? msg_id : "";
}

int h5w_tick(struct h5w *w, int64_t now, int64_t horizon, struct h5w_error *err)
{
	const struct schema_output *o = &w->schema->output;
	int rc = 0;
	w->now = now;
	w->arrived = now;
	w->horizon = horizon;
	if (w->file == H5I_INVALID_HID && !w->npending)
		return 0;
	for (size_t i = 0; !rc && w->open_records && i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (h5w_in_file(w, g) && g->nrecords)
			rc = g->stream->layout == SCHEMA_LAYOUT_STREAM
				     ? h5w_events_expire(w, g, false, err)
				     : h5w_records_expire(w, g, false, err);
	}
	if (rc)
		return rc;
	rc = h5w_chunks_reap(w, false, err);
	if (!rc && w->dirty && now - w->last_flush >= o->flush_ns)
		rc = h5w_flush(w, err);
	if (rc || w->file == H5I_INVALID_HID)
		return rc;
	hsize_t size = 0;
	if (o->roll_size && H5Fget_filesize(w->file, &size) >= 0)
		w->stats.file_size = size;
	/* After the flush: a file started for data that waited across a
	 * boundary is closed at once. No roll while chunks are held for want
	 * of space: closing would lose them. The file is closed anyway once
	 * they are stored. */
	if (!w->stats.full && ((w->roll_period_end && now >= w->roll_period_end) ||
			       (o->roll_size && size >= o->roll_size)))
		return h5w_file_roll(w, err);
	return 0;
}

/*
 * A flush that stores everything held since the disk was full ends that
 * file: it is closed at once, complete and valid, and the data that follows
 * starts a new file. So a full disk is always at a file boundary, and no
 * file goes on after HDF5 may have met a failed write.
 */
int h5w_flush(struct h5w *w, struct h5w_error *err)
{
	bool was_full = w->stats.full;
	int rc = h5w_file_flush(w, err);
	if (rc || !was_full || w->file == H5I_INVALID_HID)
		return rc;
	w->stats.full_episodes++;
	return h5w_file_roll(w, err);
}

int h5w_roll(struct h5w *w, struct h5w_error *err)
{
	if (w->stats.full) {
		/* Closing now would lose what is held: store it first, and if
		 * that cannot be done yet, close nothing. */
		int rc = h5w_file_flush(w, err);
		if (h5w_held(rc))
			return -ENOBUFS;
	}
	/* everything appended before the roll is in the files it closes,
	 * pending groups' data too (in a file of their own) */
	return h5w_file_close(w, err);
}

int h5w_run_start(struct h5w *w, const struct h5w_run *run, struct h5w_error *err)
{
	int rc = h5w_roll(w, err);
	if (rc)
		return rc;
	rc = set_run(w, run);
	if (rc)
		h5w_err(w, err, "out of memory starting run %s", run->name);
	return rc;
}

int h5w_run_stop(struct h5w *w, int64_t end, struct h5w_error *err)
{
	if (!w->run) {
		h5w_err(w, err, "no run to stop");
		return -EINVAL;
	}
	/* pending groups would start a file of the run at the roll: have it
	 * first, so that its run_end is written too */
	int rc = h5w_file_start_pending(w, err);
	if (h5w_held(rc))
		return -ENOBUFS;
	if (rc)
		return rc;
	bool in_file = w->file != H5I_INVALID_HID && w->run_start;
	if (in_file && (rc = h5w_root_run_end(w, end, err)))
		return rc;
	rc = h5w_roll(w, err);
	if (rc)
		return rc;
	free_run(w);
	return in_file ? 0 : 1;
}

void h5w_get_stats(const struct h5w *w, struct h5w_stats *stats)
{
	*stats = w->stats;
	stats->buffered_bytes = w->buffered;
	stats->groups = w->ngroups;
	stats->file_groups = h5w_file_groups(w);
	snprintf(stats->run, sizeof(stats->run), "%s", w->run ? w->run : "");
	stats->run_start = w->run_start;
	stats->run_files = w->run_files;
	stats->file_open = w->file != H5I_INVALID_HID;
	stats->file_rows = w->file_rows;
}

int h5w_describe(const struct schema *schema, const struct schema_stream *stream,
		 int (*each)(const struct h5w_dataset_info *info, void *arg), void *arg,
		 struct h5w_error *err)
{
	/* an engine that never opens a file: planning reads only its schema */
	struct h5w *w = calloc(1, sizeof(*w));
	struct h5w_group *g = calloc(1, sizeof(*g));
	struct h5w_dataset_info info;
	int rc = -ENOMEM;

	if (!w || !g) {
		h5w_err(NULL, err, "out of memory describing stream %s", stream->name);
		goto out;
	}
	w->schema = schema;
	g->stream = stream;
	snprintf(g->path, sizeof(g->path), "/");
	rc = h5w_layout_plan(w, g, err);
	for (size_t i = 0; !rc && i < g->ndsets; i++) {
		h5w_layout_describe(g, &g->dsets[i], &info);
		rc = each(&info, arg);
	}
out:
	if (g)
		free_group(w, g);
	free(w);
	return rc;
}
