/*
 * h5w_layout.c - what a stream group looks like in the file (SPEC §4.1-4.3).
 *
 * Planning (h5w_layout_plan) decides, without touching HDF5, the datasets a
 * group has under its layout, their dtypes, chunking, codecs, fill values
 * and which dimension scale covers which axis. Creation (h5w_layout_create)
 * makes them in the current file with their attributes and attaches the
 * scales. All datasets of a group are created together: under SWMR, before
 * the file enters SWMR-write mode (h5w_file.c). Every attribute a dataset
 * will ever have is created with it, because SWMR-write mode allows
 * writing an attribute's value but not adding one: start_time/end_time are
 * written at each flush (h5w_layout_times), so a killed file's are as
 * current as its data; 0 in both means "no data in this file".
 *
 * Every dimension of every scaled dataset gets a scale (netCDF-4 rejects a
 * variable with only some of its dimensions scaled): table channels use
 * `time` (or `<channel>_time`), records waveforms use `time` and
 * `sample_time`, stream frame indexes use `<channel>_frame_time`. Stream
 * sample datasets have no scale (their time is computed from the frame index)
 * and appear to netCDF as phony dimensions.
 *
 * Fill values: floats get NaN (or the declared `fill`), integer channels
 * one only when the schema declares it, so that a real 0 is not masked by
 * readers. A dataset with a fill value carries it as _FillValue too, of
 * the dataset's type: netCDF and xarray mask missing values by that
 * attribute, not by HDF5's fill property.
 *
 * Text attributes are variable-length UTF-8 strings, so that h5py 3 reads
 * them as str, as netCDF4 and xarray do.
 * Caller thread only.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hdf5_hl.h>

#include "h5lz4.h"
#include "h5w_internal.h"
#include "timefmt.h"

#define TIME_UNITS "nanoseconds since 1970-01-01T00:00:00Z"

/* A text attribute as a variable-length UTF-8 string: h5py 3 reads it as
 * str (a fixed-length one reads as bytes), netCDF as a string attribute. */
static int attr_string(hid_t obj, const char *name, const char *value)
{
	hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR), attr = H5I_INVALID_HID;
	int rc = -EIO;
	if (type < 0 || space < 0 || H5Tset_size(type, H5T_VARIABLE) < 0 ||
	    H5Tset_cset(type, H5T_CSET_UTF8) < 0)
		goto out;
	if (H5Aexists(obj, name) > 0)
		H5Adelete(obj, name);
	attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	if (attr >= 0 && H5Awrite(attr, type, &value) >= 0)
		rc = 0;
out:
	if (attr >= 0)
		H5Aclose(attr);
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	return rc;
}

static int attr_scalar(hid_t obj, const char *name, hid_t type, const void *value)
{
	hid_t space = H5Screate(H5S_SCALAR), attr = H5I_INVALID_HID;
	int rc = -EIO;
	if (space < 0)
		return rc;
	htri_t exists = H5Aexists(obj, name);
	if (exists > 0)
		attr = H5Aopen(obj, name, H5P_DEFAULT);
	else if (exists == 0)
		attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	if (attr >= 0 && H5Awrite(attr, type, value) >= 0)
		rc = 0;
	if (attr >= 0)
		H5Aclose(attr);
	H5Sclose(space);
	return rc;
}

static int attr_int64(hid_t obj, const char *name, int64_t value)
{
	return attr_scalar(obj, name, H5T_STD_I64LE, &value);
}

/* The value of an int64 attribute that exists (created with the dataset):
 * all SWMR-write mode allows. */
static int attr_update_int64(hid_t obj, const char *name, int64_t value)
{
	hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
	int rc = attr >= 0 && H5Awrite(attr, H5T_NATIVE_INT64, &value) >= 0 ? 0 : -EIO;
	if (attr >= 0)
		H5Aclose(attr);
	return rc;
}

/* `time_monotonic`: 1 while every time axis of the group is strictly
 * increasing in this file, 0 once one is not (h5w_time.c); int8, which
 * netCDF reads as a byte. */
static int attr_monotonic(hid_t gid, struct h5w_group *g, bool create)
{
	int8_t value = h5w_time_monotonic(g) ? 1 : 0;
	hid_t attr = create ? H5I_INVALID_HID : H5Aopen(gid, "time_monotonic", H5P_DEFAULT);
	int rc = create ? attr_scalar(gid, "time_monotonic", H5T_STD_I8LE, &value)
			: attr >= 0 && H5Awrite(attr, H5T_NATIVE_INT8, &value) >= 0 ? 0 : -EIO;
	if (attr >= 0)
		H5Aclose(attr);
	if (!rc)
		g->monotonic_written = value;
	return rc;
}

static int attr_double(hid_t obj, const char *name, double value)
{
	return attr_scalar(obj, name, H5T_IEEE_F64LE, &value);
}

static int attr_list(hid_t obj, const char *name, hid_t type, const void *values, size_t n)
{
	hsize_t dims[1] = {n};
	hid_t space = H5Screate_simple(1, dims, NULL), attr = H5I_INVALID_HID;
	int rc = -EIO;
	if (space < 0)
		return rc;
	if (H5Aexists(obj, name) > 0)
		H5Adelete(obj, name);
	attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	if (attr >= 0 && H5Awrite(attr, type == H5T_STD_I64LE ? H5T_NATIVE_INT64
							  : H5T_NATIVE_DOUBLE, values) >= 0)
		rc = 0;
	if (attr >= 0)
		H5Aclose(attr);
	H5Sclose(space);
	return rc;
}

/* The schema's `attrs` of an object, in YAML's types (schema.h). */
static int attrs_write(hid_t obj, const struct schema_attr *attrs, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const struct schema_attr *a = &attrs[i];
		switch (a->type) {
		case SCHEMA_ATTR_INT: rc |= attr_int64(obj, a->name, a->i); break;
		case SCHEMA_ATTR_FLOAT: rc |= attr_double(obj, a->name, a->f); break;
		case SCHEMA_ATTR_STRING: rc |= attr_string(obj, a->name, a->text); break;
		case SCHEMA_ATTR_INTS:
			rc |= attr_list(obj, a->name, H5T_STD_I64LE, a->ints, a->count);
			break;
		case SCHEMA_ATTR_FLOATS:
			rc |= attr_list(obj, a->name, H5T_IEEE_F64LE, a->floats, a->count);
			break;
		}
	}
	return rc;
}

/* ---- planning ---------------------------------------------------------- */

static uint64_t or_default(uint64_t value, uint64_t dflt)
{
	return value ? value : dflt;
}

/* DS's chunks go through F, encoded by the compression pool; an empty
 * pipeline writes them as they are. */
static void set_filters(struct h5w_dset *ds, struct h5w_filters f)
{
	if (ds->dtype == DTYPE_STRING)
		return; /* heap references: HDF5's own pipeline (strings never compress) */
	f.shuffle = f.shuffle && ds->elem_size > 1; /* no-op otherwise, so not declared */
	ds->filters = f;
	ds->codec = f.codec != H5W_FILTER_NONE || f.shuffle || f.fletcher32 ? H5W_CODEC_POOL
									    : H5W_CODEC_RAW;
}

/* Time axes and indexes (time, event_id, frame_time, frame_start,
 * frame_seq): int64 values that grow slowly, which shuffle and deflate at
 * its fastest level make a few percent of their size. Stored raw, the time
 * axis of a table was most of a small station's bytes. */
static const struct h5w_filters INDEX_FILTERS = {
	.shuffle = true, .codec = H5W_FILTER_DEFLATE, .level = 1};

static struct h5w_dset *add(struct h5w_group *g, const char *name, enum dtype dtype,
			    uint64_t row_elems, uint64_t chunk_rows, size_t *index)
{
	if (g->ndsets >= g->dsets_cap) { /* plan_size and the plan_* disagree */
		fprintf(stderr, "h5w: %s: more datasets planned than %zu\n", g->path, g->dsets_cap);
		abort();
	}
	struct h5w_dset *ds = &g->dsets[g->ndsets];
	*index = g->ndsets++;
	memset(ds, 0, sizeof(*ds));
	snprintf(ds->name, sizeof(ds->name), "%s", name);
	ds->group = g;
	ds->dtype = dtype;
	ds->elem_size = dtype == DTYPE_STRING ? sizeof(char *) : dtype_size(dtype);
	ds->row_elems = row_elems;
	ds->row_bytes = (size_t)row_elems * ds->elem_size;
	ds->chunk_rows = chunk_rows;
	ds->chunk_bytes = (size_t)chunk_rows * ds->row_bytes;
	ds->codec = dtype == DTYPE_STRING ? H5W_CODEC_PIPELINE : H5W_CODEC_RAW;
	set_filters(ds, INDEX_FILTERS); /* channels replace them (channel_options) */
	ds->scale_axis0 = -1;
	ds->scale_axis1 = -1;
	ds->id = H5I_INVALID_HID;
	return ds;
}

static void set_fill(struct h5w_dset *ds, bool user, union schema_number value)
{
	static const char *empty = "";
	ds->user_fill = user;
	switch (ds->dtype) {
	case DTYPE_FLOAT32: {
		float f = (float)value.f;
		memcpy(ds->fill, &f, sizeof(f));
		ds->user_fill = true;
		break;
	}
	case DTYPE_FLOAT64:
		memcpy(ds->fill, &value.f, sizeof(value.f));
		ds->user_fill = true;
		break;
	case DTYPE_STRING:
		/* never freed: h5w_chunk.c recognises it by address */
		memcpy(ds->fill, &empty, sizeof(empty));
		ds->user_fill = false;
		break;
	default:
		/* integers: the low bytes of the 64-bit value, little-endian */
		for (size_t i = 0; i < ds->elem_size; i++)
			ds->fill[i] = (unsigned char)(value.u >> (8 * i));
		break;
	}
}

static enum h5w_filter channel_codec(const struct schema_channel *ch)
{
	switch (ch->compression) {
	case SCHEMA_COMPRESSION_DEFLATE: return H5W_FILTER_DEFLATE;
	case SCHEMA_COMPRESSION_LZ4: return H5W_FILTER_LZ4;
	case SCHEMA_COMPRESSION_SZIP: return H5W_FILTER_SZIP;
	case SCHEMA_COMPRESSION_NONE: break;
	}
	return H5W_FILTER_NONE;
}

static void channel_options(struct h5w_dset *ds, const struct schema_channel *ch)
{
	union schema_number nan_fill = {.f = NAN};
	struct h5w_filters f = {
		.shuffle = ch->shuffle,
		.codec = channel_codec(ch),
		.level = ch->level,
		.lz4_block = ch->lz4_block_size,
		.fletcher32 = ch->fletcher32,
	};
	ds->channel = ch;
	if (f.codec == H5W_FILTER_SZIP)
		h5w_szip_params(ch->szip_coding == SCHEMA_SZIP_EC ? H5_SZIP_EC_OPTION_MASK
								  : H5_SZIP_NN_OPTION_MASK,
				(unsigned)ch->szip_pixels_per_block, ds->elem_size, ds->chunk_rows,
				ds->row_elems, f.szip);
	set_filters(ds, f);
	if (ch->has_fill)
		set_fill(ds, true, ch->fill);
	else if (ch->dtype == DTYPE_FLOAT32 || ch->dtype == DTYPE_FLOAT64)
		set_fill(ds, true, nan_fill);
	else
		set_fill(ds, false, (union schema_number){.u = 0});
}

/*
 * Provenance, in a schema with sources: the JetStream stream sequence of
 * the message a row (a frame, in a stream) came from, on the axis of
 * SCALE. 0 (HDF5's default fill, not declared as _FillValue so that
 * readers keep the column an integer) marks rows from a listener.
 */
static struct h5w_dset *add_origin(struct h5w_group *g, const char *name, uint64_t chunk_rows,
				   size_t scale, size_t *index)
{
	struct h5w_dset *ds = add(g, name, DTYPE_UINT64, 1, chunk_rows, index);
	ds->scale_axis0 = (int)scale;
	ds->is_origin = true;
	return ds;
}

/*
 * The sender's id of that message (Nats-Msg-Id, SENDER:N), beside the
 * sequence: a variable-length UTF-8 string, as a table's string channels
 * are (HDF5's pipeline, the empty string for rows from a listener or a
 * message without one). Records and stream frames only: a table row is
 * one line of a batch of many, whose id would repeat on every line.
 */
static struct h5w_dset *add_origin_id(struct h5w_group *g, const char *name,
				      uint64_t chunk_rows, size_t scale, size_t *index)
{
	struct h5w_dset *ds = add(g, name, DTYPE_STRING, 1, chunk_rows, index);
	set_fill(ds, false, (union schema_number){.u = 0});
	ds->scale_axis0 = (int)scale;
	ds->is_origin_id = true;
	return ds;
}

static void plan_table(struct h5w_group *g, bool with_origin)
{
	const struct schema_stream *st = g->stream;
	uint64_t time_chunk = 0;
	size_t idx;
	for (size_t i = 0; i < st->nchannels; i++)
		if (!st->channels[i].own_time && st->channels[i].chunk > time_chunk)
			time_chunk = st->channels[i].chunk;
	struct h5w_dset *time = add(g, "time", DTYPE_INT64, 1, or_default(time_chunk, 4096),
				    &g->time_ds);
	time->is_time = time->is_scale = true;
	for (size_t i = 0; i < st->nchannels; i++) {
		const struct schema_channel *ch = &st->channels[i];
		uint64_t chunk = or_default(ch->chunk, 4096);
		g->chan_time_ds[i] = g->time_ds;
		if (ch->own_time) {
			char name[160];
			snprintf(name, sizeof(name), "%s_time", ch->name);
			struct h5w_dset *t = add(g, name, DTYPE_INT64, 1, chunk, &idx);
			t->is_time = t->is_scale = true;
			g->chan_time_ds[i] = idx;
		}
		struct h5w_dset *ds = add(g, ch->name, ch->dtype, 1, chunk, &g->chan_ds[i]);
		channel_options(ds, ch);
		ds->scale_axis0 = (int)g->chan_time_ds[i];
	}
	if (with_origin)
		add_origin(g, "source_seq", time->chunk_rows, g->time_ds, &g->origin_ds);
}

/* The event fields' datasets, on the axis of TIME: NaN fill for floats (as
 * missing values), integers none. */
static void plan_fields(struct h5w_group *g, size_t time, bool event_table)
{
	const struct schema_stream *st = g->stream;
	union schema_number nan_fill = {.f = NAN};
	for (size_t i = 0; i < st->nevent_fields; i++) {
		const struct schema_event_field *f = &st->event_fields[i];
		struct h5w_dset *ds = add(g, f->name, f->dtype, 1, H5W_INDEX_CHUNK, &g->field_ds[i]);
		ds->field = f;
		ds->scale_axis0 = (int)time;
		ds->event_table = event_table;
		if (f->dtype == DTYPE_FLOAT32 || f->dtype == DTYPE_FLOAT64)
			set_fill(ds, true, nan_fill);
		else
			set_fill(ds, false, (union schema_number){.u = 0});
	}
}

static void plan_records(struct h5w_group *g, bool with_origin)
{
	const struct schema_stream *st = g->stream;
	struct h5w_dset *time = add(g, "time", DTYPE_INT64, 1, H5W_INDEX_CHUNK, &g->time_ds);
	time->is_time = time->is_scale = true;
	struct h5w_dset *ev = add(g, "event_id", DTYPE_UINT64, 1, H5W_INDEX_CHUNK, &g->event_id_ds);
	ev->scale_axis0 = (int)g->time_ds;
	struct h5w_dset *state =
		add(g, "record_state", DTYPE_UINT8, 1, H5W_INDEX_CHUNK, &g->record_state_ds);
	state->scale_axis0 = (int)g->time_ds;
	set_fill(state, false, (union schema_number){.u = H5W_RECORD_OPEN});
	if (with_origin) {
		add_origin(g, "source_seq", H5W_INDEX_CHUNK, g->time_ds, &g->origin_ds);
		add_origin_id(g, "source_msg_id", H5W_INDEX_CHUNK, g->time_ds, &g->origin_id_ds);
	}
	plan_fields(g, g->time_ds, false);
	/* sample_time is fixed-size and written once at creation */
	struct h5w_dset *s = add(g, "sample_time", DTYPE_FLOAT64, 1, 1, &g->sample_time_ds);
	s->is_scale = true;
	for (size_t i = 0; i < st->nchannels; i++) {
		const struct schema_channel *ch = &st->channels[i];
		struct h5w_dset *ds =
			add(g, ch->name, ch->dtype, st->samples, or_default(ch->chunk, 1), &g->chan_ds[i]);
		channel_options(ds, ch);
		ds->scale_axis0 = (int)g->time_ds;
		ds->scale_axis1 = (int)g->sample_time_ds;
	}
}

/*
 * A stream's event table: one row per event, on its own time axis
 * `event_time` (a dimension of its own for netCDF), each column a plain
 * 1-D dataset: event_id, event_state, per channel the event's first
 * sample and sample count, and the EVENT frame's fields.
 */
static void plan_events(struct h5w_group *g)
{
	const struct schema_stream *st = g->stream;
	char name[160];
	struct h5w_dset *t = add(g, "event_time", DTYPE_INT64, 1, H5W_INDEX_CHUNK, &g->time_ds);
	t->is_time = t->is_scale = true;
	struct h5w_dset *col[2];
	col[0] = add(g, "event_id", DTYPE_UINT64, 1, H5W_INDEX_CHUNK, &g->event_id_ds);
	col[1] = add(g, "event_state", DTYPE_UINT8, 1, H5W_INDEX_CHUNK, &g->record_state_ds);
	set_fill(col[1], false, (union schema_number){.u = H5W_RECORD_OPEN});
	for (size_t k = 0; k < 2; k++)
		col[k]->scale_axis0 = (int)g->time_ds;
	t->event_table = col[0]->event_table = col[1]->event_table = true;
	for (size_t i = 0; i < st->nchannels; i++) {
		snprintf(name, sizeof(name), "%s_event_start", st->channels[i].name);
		col[0] = add(g, name, DTYPE_UINT64, 1, H5W_INDEX_CHUNK, &g->ev_start_ds[i]);
		snprintf(name, sizeof(name), "%s_event_count", st->channels[i].name);
		col[1] = add(g, name, DTYPE_UINT64, 1, H5W_INDEX_CHUNK, &g->ev_count_ds[i]);
		for (size_t k = 0; k < 2; k++) {
			col[k]->scale_axis0 = (int)g->time_ds;
			col[k]->event_table = true;
		}
	}
	plan_fields(g, g->time_ds, true);
}

static void plan_stream(struct h5w_group *g, bool with_origin)
{
	const struct schema_stream *st = g->stream;
	char name[160];
	for (size_t i = 0; i < st->nchannels; i++) {
		const struct schema_channel *ch = &st->channels[i];
		struct h5w_dset *ds = add(g, ch->name, ch->dtype, 1, or_default(ch->chunk, 65536),
					  &g->chan_ds[i]);
		channel_options(ds, ch);
		snprintf(name, sizeof(name), "%s_frame_time", ch->name);
		struct h5w_dset *t = add(g, name, DTYPE_INT64, 1, H5W_INDEX_CHUNK, &g->chan_time_ds[i]);
		t->is_time = t->is_scale = true;
		t->frame_index = true;
		snprintf(name, sizeof(name), "%s_frame_start", ch->name);
		struct h5w_dset *s = add(g, name, DTYPE_UINT64, 1, H5W_INDEX_CHUNK,
					 &g->frame_start_ds[i]);
		s->scale_axis0 = (int)g->chan_time_ds[i];
		s->frame_index = true;
		snprintf(name, sizeof(name), "%s_frame_seq", ch->name);
		s = add(g, name, DTYPE_UINT64, 1, H5W_INDEX_CHUNK, &g->frame_seq_ds[i]);
		s->scale_axis0 = (int)g->chan_time_ds[i];
		s->frame_index = true;
		if (with_origin) {
			snprintf(name, sizeof(name), "%s_frame_source_seq", ch->name);
			s = add_origin(g, name, H5W_INDEX_CHUNK, g->chan_time_ds[i],
				       &g->frame_origin_ds[i]);
			s->frame_index = true;
			snprintf(name, sizeof(name), "%s_frame_source_msg_id", ch->name);
			s = add_origin_id(g, name, H5W_INDEX_CHUNK, g->chan_time_ds[i],
					  &g->frame_origin_id_ds[i]);
			s->frame_index = true;
		}
	}
	if (st->events)
		plan_events(g);
}

/* How many datasets the plan_* functions give a group of ST: its dsets
 * array holds exactly that many, since with 10,000 groups the slots are
 * much of the engine's memory (an upper bound over every layout cost
 * 10,000 weather stations 19 MiB more when the provenance slots came). */
static size_t plan_size(const struct schema_stream *st, bool with_origin)
{
	size_t n = st->nchannels, own_time = 0, origin = with_origin ? 1 : 0;
	switch (st->layout) {
	case SCHEMA_LAYOUT_TABLE: /* time, channels, own_time axes, source_seq */
		for (size_t i = 0; i < n; i++)
			own_time += st->channels[i].own_time;
		return 1 + n + own_time + origin;
	case SCHEMA_LAYOUT_RECORDS: /* time, event_id, record_state, sample_time,
				       fields, channels, source_seq and _msg_id */
		return 4 + st->nevent_fields + n + 2 * origin;
	case SCHEMA_LAYOUT_STREAM: /* per channel: samples, frame time, start and
				      seq, source seq and msg id; the event table */
		return (4 + 2 * origin) * n + (st->events ? 3 + 2 * n + st->nevent_fields : 0);
	}
	return 0;
}

/* Decide the datasets of G from its stream's layout (no HDF5 calls). */
int h5w_layout_plan(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	size_t n = st->nchannels;
	bool with_origin = w->schema->nsources > 0;
	g->dsets_cap = plan_size(st, with_origin);
	g->dsets = calloc(g->dsets_cap + 1, sizeof(*g->dsets));
	g->chan_ds = calloc(n + 1, sizeof(size_t));
	g->chan_time_ds = calloc(n + 1, sizeof(size_t));
	g->frame_start_ds = calloc(n + 1, sizeof(size_t));
	g->frame_seq_ds = calloc(n + 1, sizeof(size_t));
	g->frame_origin_ds = calloc(n + 1, sizeof(size_t));
	g->frame_origin_id_ds = calloc(n + 1, sizeof(size_t));
	g->origin_ds = g->origin_id_ds = SIZE_MAX;
	g->field_ds = calloc(st->nevent_fields + 1, sizeof(size_t));
	g->ev_start_ds = calloc(n + 1, sizeof(size_t));
	g->ev_count_ds = calloc(n + 1, sizeof(size_t));
	if (!g->dsets || !g->chan_ds || !g->chan_time_ds || !g->frame_start_ds ||
	    !g->frame_seq_ds || !g->frame_origin_ds || !g->frame_origin_id_ds || !g->field_ds ||
	    !g->ev_start_ds || !g->ev_count_ds) {
		h5w_err(w, err, "out of memory planning group %s", g->path);
		return -ENOMEM;
	}
	switch (st->layout) {
	case SCHEMA_LAYOUT_TABLE: plan_table(g, with_origin); break;
	case SCHEMA_LAYOUT_RECORDS: plan_records(g, with_origin); break;
	case SCHEMA_LAYOUT_STREAM: plan_stream(g, with_origin); break;
	}
	return 0;
}

/* ---- creation ---------------------------------------------------------- */

static int attr_strings(hid_t obj, const char *name, const char *const *values, size_t n);

static int dataset_attrs(struct h5w *w, struct h5w_group *g, struct h5w_dset *ds, hid_t id)
{
	const struct schema_channel *ch = ds->channel;
	int rc = 0;
	if (ds->is_time) {
		rc |= attr_string(id, "units", TIME_UNITS);
		rc |= attr_string(id, "calendar", "standard");
		rc |= attr_string(id, "standard_name", "time");
	}
	if (&g->dsets[g->sample_time_ds] == ds && g->stream->layout == SCHEMA_LAYOUT_RECORDS) {
		rc |= attr_string(id, "units", "s");
		rc |= attr_string(id, "long_name", "time of the sample within the record");
	}
	bool records = g->stream->layout == SCHEMA_LAYOUT_RECORDS;
	bool state = (records || g->stream->events) && &g->dsets[g->record_state_ds] == ds;
	if (state) {
		/* CF flags: what a reader needs to skip events still filling */
		static const uint8_t flags[] = {H5W_RECORD_OPEN, H5W_RECORD_COMPLETE,
						H5W_RECORD_INCOMPLETE};
		hsize_t n = sizeof(flags);
		hid_t space = H5Screate_simple(1, &n, NULL);
		hid_t attr = space < 0 ? H5I_INVALID_HID
				       : H5Acreate2(id, "flag_values", H5T_STD_U8LE, space,
						    H5P_DEFAULT, H5P_DEFAULT);
		rc |= attr < 0 || H5Awrite(attr, H5T_NATIVE_UINT8, flags) < 0;
		if (attr >= 0)
			H5Aclose(attr);
		if (space >= 0)
			H5Sclose(space);
		rc |= attr_string(id, "flag_meanings", "open complete incomplete");
		rc |= attr_string(id, "long_name", records
			? "state of the event's record: open (data may still come), complete, "
			  "or incomplete (closed with channels missing)"
			: "state of the event: open (data may still come), complete (closed with "
			  "its EVENT frame), or incomplete (closed without: its fields are fill)");
	}
	if (ds->event_table && !ds->field && !state && !ds->is_time &&
	    &g->dsets[g->event_id_ds] != ds) {
		/* per channel: which samples are the event's */
		size_t len = strlen(ds->name), suffix = strlen("_event_start");
		bool start = len > suffix && !strcmp(ds->name + len - suffix, "_event_start");
		rc |= attr_string(id, "long_name", start
			? "index in the channel of the event's first sample in this file"
			: "samples of the event in the channel from its first (0: none)");
	}
	if (ds->is_origin) {
		rc |= attr_string(id, "long_name", ds->frame_index
			? "JetStream stream sequence of the message that carried the frame "
			  "(0: not from a broker)"
			: "JetStream stream sequence of the message the row came from "
			  "(0: not from a broker)");
		/* the sequence is the stream's: which streams, for a reader
		 * that joins files of several schemas */
		const char *streams[64];
		size_t nstreams = 0;
		for (size_t i = 0; i < w->schema->nsources && nstreams < 64; i++)
			streams[nstreams++] = w->schema->sources[i].stream;
		rc |= attr_strings(id, "source_streams", streams, nstreams);
	}
	if (ds->is_origin_id) {
		rc |= attr_string(id, "long_name", ds->frame_index
			? "sender's id of the message that carried the frame (Nats-Msg-Id)"
			: "sender's id of the message the row came from (Nats-Msg-Id)");
		rc |= attr_string(id, "comment",
				  "SENDER:N as h5rec send --nats and simulate --nats set it: the "
				  "sender's name and its count of messages; cut at 128 bytes; "
				  "empty: not from a broker, or no id");
	}
	/* The fill value as readers mask it (netCDF, xarray, CF): of the
	 * dataset's own type, so the packed value when scale_factor applies. */
	if (ds->user_fill && ds->dtype != DTYPE_STRING)
		rc |= attr_scalar(id, "_FillValue", h5w_file_type(w, ds->dtype), ds->fill);
	if (ds->field) {
		if (ds->field->units)
			rc |= attr_string(id, "units", ds->field->units);
		if (ds->field->long_name)
			rc |= attr_string(id, "long_name", ds->field->long_name);
		rc |= attrs_write(id, ds->field->attrs, ds->field->nattrs);
	}
	if (!ch)
		return rc;
	rc |= attrs_write(id, ch->attrs, ch->nattrs);
	if (ch->units)
		rc |= attr_string(id, "units", ch->units);
	if (ch->long_name)
		rc |= attr_string(id, "long_name", ch->long_name);
	if (ch->has_dt)
		rc |= attr_double(id, "dt", ch->dt);
	else if (g->stream->layout == SCHEMA_LAYOUT_RECORDS && g->stream->dt > 0)
		rc |= attr_double(id, "dt", g->stream->dt);
	if (ch->has_packing) {
		rc |= attr_double(id, "scale_factor", ch->scale_factor);
		rc |= attr_double(id, "add_offset", ch->add_offset);
	}
	rc |= attr_int64(id, "start_time", ds->has_time ? ds->start_time : 0);
	rc |= attr_int64(id, "end_time", ds->has_time ? ds->end_time : 0);
	if (!rc)
		ds->start_dirty = ds->end_dirty = false;
	return rc;
}

/* The filters DS declares in the file (make_dcpl, and h5rec check through
 * h5w_describe). Strings keep HDF5's pipeline: deflate (a no-op on heap
 * references, but declared) as the channel says, no shuffle, and no
 * Fletcher-32, which HDF5 refuses on variable-length data (the schema
 * refuses it on string channels). */
static struct h5w_filters declared_filters(const struct h5w_dset *ds)
{
	const struct schema_channel *ch = ds->channel;
	if (ds->codec != H5W_CODEC_PIPELINE || !ch)
		return ds->filters;
	return (struct h5w_filters){
		.codec = ch->compression == SCHEMA_COMPRESSION_DEFLATE ? H5W_FILTER_DEFLATE
								       : H5W_FILTER_NONE,
		.level = ch->level, .fletcher32 = ch->fletcher32};
}

/* records' sample_time: fixed size, written once at creation, contiguous */
static bool fixed_size(const struct h5w_group *g, const struct h5w_dset *ds)
{
	return g->stream->layout == SCHEMA_LAYOUT_RECORDS && ds == &g->dsets[g->sample_time_ds];
}

/* What DS of G will be in the file, as make_dcpl and create_dataset make
 * it (h5w_describe). */
void h5w_layout_describe(const struct h5w_group *g, const struct h5w_dset *ds,
			 struct h5w_dataset_info *info)
{
	struct h5w_filters f = declared_filters(ds);
	bool fixed = fixed_size(g, ds);
	int scales[2] = {ds->is_scale ? (int)(ds - g->dsets) : ds->scale_axis0, ds->scale_axis1};

	*info = (struct h5w_dataset_info){
		.name = ds->name,
		.dtype = ds->dtype,
		.row_elems = ds->row_elems,
		.chunk_rows = fixed ? 0 : ds->chunk_rows,
		.fixed_rows = fixed ? g->stream->samples : 0,
		.is_scale = ds->is_scale,
		.channel = ds->channel,
		.field = ds->field,
		.shuffle = f.shuffle,
		.level = f.level,
		.lz4_block = f.lz4_block,
		.szip_coding = f.szip[H5W_SZIP_MASK] & H5_SZIP_EC_OPTION_MASK ? SCHEMA_SZIP_EC
									       : SCHEMA_SZIP_NN,
		.szip_pixels_per_block = f.szip[H5W_SZIP_PPB],
		.fletcher32 = f.fletcher32,
	};
	if (fixed) /* no filters either: a plain dataset creation property list */
		info->shuffle = info->fletcher32 = false;
	switch (fixed ? H5W_FILTER_NONE : f.codec) {
	case H5W_FILTER_DEFLATE: info->compression = SCHEMA_COMPRESSION_DEFLATE; break;
	case H5W_FILTER_LZ4: info->compression = SCHEMA_COMPRESSION_LZ4; break;
	case H5W_FILTER_SZIP: info->compression = SCHEMA_COMPRESSION_SZIP; break;
	case H5W_FILTER_NONE: info->compression = SCHEMA_COMPRESSION_NONE; break;
	}
	for (size_t axis = 0; axis < 2; axis++)
		info->dims[axis] = scales[axis] >= 0 ? g->dsets[scales[axis]].name : NULL;
}

/* The dataset creation properties: chunking, fill value, and the filters
 * in the order h5w_pipeline.c applies them (shuffle, deflate, LZ4 or szip,
 * Fletcher-32). */
static hid_t make_dcpl(struct h5w *w, const struct h5w_dset *ds)
{
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	hsize_t chunk[2] = {ds->chunk_rows, ds->row_elems};
	struct h5w_filters f = declared_filters(ds);
	if (dcpl < 0)
		return dcpl;
	if (H5Pset_chunk(dcpl, ds->row_elems > 1 ? 2 : 1, chunk) < 0)
		goto fail;
	if (ds->user_fill &&
	    H5Pset_fill_value(dcpl, h5w_file_type(w, ds->dtype), ds->fill) < 0)
		goto fail;
	if (f.shuffle && H5Pset_shuffle(dcpl) < 0)
		goto fail;
	if (f.codec == H5W_FILTER_DEFLATE && H5Pset_deflate(dcpl, (unsigned)f.level) < 0)
		goto fail;
	if (f.codec == H5W_FILTER_LZ4) {
		unsigned cd[1] = {f.lz4_block};
		/* Mandatory: every chunk is LZ4, never silently stored raw. The
		 * class is registered in-process when the engine opens, so creating
		 * the dataset needs no plugin path. */
		if (H5Pset_filter(dcpl, (H5Z_filter_t)H5LZ4_FILTER_ID, H5Z_FLAG_MANDATORY,
				  f.lz4_block ? 1 : 0, cd) < 0)
			goto fail;
	}
	/* Optional, as H5Pset_szip declares it: the engine never skips it, but
	 * HDF5's own writers (h5repack) may, for a chunk that would grow. */
	unsigned coding = f.szip[H5W_SZIP_MASK] & (H5_SZIP_NN_OPTION_MASK | H5_SZIP_EC_OPTION_MASK);
	if (f.codec == H5W_FILTER_SZIP && H5Pset_szip(dcpl, coding, f.szip[H5W_SZIP_PPB]) < 0)
		goto fail;
	if (f.fletcher32 && H5Pset_fletcher32(dcpl) < 0)
		goto fail;
	return dcpl;
fail:
	H5Pclose(dcpl);
	return H5I_INVALID_HID;
}

/* HDF5 completes szip's parameters when it creates the dataset
 * (H5Z_set_local_szip); the chunks decode only with the parameters they
 * were encoded with, so the engine's (h5w_szip_params) must be those. */
static int check_szip(struct h5w *w, const struct h5w_dset *ds, hid_t id,
		      struct h5w_error *err)
{
	unsigned flags, cd[H5W_SZIP_NPARMS + 4];
	size_t ncd = sizeof(cd) / sizeof(cd[0]);
	hid_t dcpl = H5Dget_create_plist(id);
	herr_t rc = dcpl < 0 ? -1
			     : H5Pget_filter_by_id2(dcpl, H5Z_FILTER_SZIP, &flags, &ncd, cd, 0,
						    NULL, NULL);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (rc < 0)
		return h5w_err_hdf5(w, err, "%s: reading the szip parameters of %s/%s",
				    w->file_name, ds->group->path, ds->name);
	if (ncd == H5W_SZIP_NPARMS && !memcmp(cd, ds->filters.szip, sizeof(ds->filters.szip)))
		return 0;
	h5w_err(w, err, "%s: HDF5 set szip parameters %u,%u,%u,%u for %s/%s, the engine "
		"encodes with %u,%u,%u,%u", w->file_name, cd[0], cd[1], cd[2], cd[3],
		ds->group->path, ds->name, ds->filters.szip[0], ds->filters.szip[1],
		ds->filters.szip[2], ds->filters.szip[3]);
	return -EIO;
}

static int create_dataset(struct h5w *w, struct h5w_group *g, hid_t gid, struct h5w_dset *ds,
			  struct h5w_error *err)
{
	bool fixed = fixed_size(g, ds);
	uint64_t samples = g->stream->samples;
	hsize_t dims[2] = {fixed ? samples : 0, ds->row_elems};
	hsize_t maxdims[2] = {fixed ? samples : H5S_UNLIMITED, ds->row_elems};
	int rank = ds->row_elems > 1 ? 2 : 1;
	hid_t space = H5Screate_simple(rank, dims, maxdims);
	hid_t dcpl = fixed ? H5Pcreate(H5P_DATASET_CREATE) : make_dcpl(w, ds);
	hid_t id = H5I_INVALID_HID;
	int rc = 0;

	if (space >= 0 && dcpl >= 0)
		id = H5Dcreate2(gid, ds->name, h5w_file_type(w, ds->dtype), space, H5P_DEFAULT,
				dcpl, h5w_dset_dapl(w, ds));
	if (id < 0) {
		rc = h5w_err_hdf5(w, err, "%s: creating dataset %s/%s", w->file_name, g->path,
				  ds->name);
		goto out;
	}
	if (fixed) {
		double *t = malloc((size_t)samples * sizeof(double));
		if (!t) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint64_t i = 0; i < samples; i++)
			t[i] = (double)i * g->stream->dt;
		if (H5Dwrite(id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, t) < 0)
			rc = -EIO;
		free(t);
	}
	if (!rc && ds->codec == H5W_CODEC_POOL && ds->filters.codec == H5W_FILTER_SZIP)
		rc = check_szip(w, ds, id, err);
	if (!rc && dataset_attrs(w, g, ds, id))
		rc = -EIO;
	if (!rc && ds->is_scale && H5DSset_scale(id, ds->name) < 0)
		rc = -EIO;
	if (rc)
		rc = h5w_err_hdf5(w, err, "%s: writing attributes of %s/%s", w->file_name, g->path,
				  ds->name);
out:
	if (id >= 0 && !rc)
		h5w_dset_adopt(w, ds, id); /* its first chunks are written next */
	else if (id >= 0)
		H5Dclose(id);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (space >= 0)
		H5Sclose(space);
	return rc;
}

static int attach(struct h5w *w, struct h5w_group *g, struct h5w_dset *ds, int scale,
		  unsigned axis, struct h5w_error *err)
{
	if (scale < 0)
		return 0;
	struct h5w_dset *sds = &g->dsets[scale];
	/* both ids stay open: the LRU holds far more than a group's datasets */
	int rc = h5w_dset_open(w, sds, err);
	if (!rc)
		rc = h5w_dset_open(w, ds, err);
	/* the label names the axis for readers that show labels, not scales
	 * (h5py's dims[i].label) */
	if (!rc && (H5DSattach_scale(ds->id, sds->id, axis) < 0 ||
		    H5DSset_label(ds->id, axis, sds->name) < 0))
		rc = h5w_err_hdf5(w, err, "%s: attaching scale %s to %s/%s", w->file_name,
				  sds->name, g->path, ds->name);
	return rc;
}

/* An attribute that is a list of N strings (variable-length UTF-8). */
static int attr_strings(hid_t obj, const char *name, const char *const *values, size_t n)
{
	hsize_t dims = n;
	hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate_simple(1, &dims, NULL);
	hid_t attr = H5I_INVALID_HID;
	int rc = -EIO;
	if (type >= 0 && space >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0 &&
	    H5Tset_cset(type, H5T_CSET_UTF8) >= 0)
		attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	if (attr >= 0 && H5Awrite(attr, type, values) >= 0)
		rc = 0;
	if (attr >= 0)
		H5Aclose(attr);
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	return rc;
}

/*
 * NeXus NXdata, so that silx and NeXpy plot a group at once: the first
 * numeric channel is the signal, the others on the same axes auxiliary
 * signals (not for streams, whose channels differ in length), and the
 * axes are the dimension scales (table: `time`; records:
 * `time` and `sample_time`, each with its `_indices`). A stream group's
 * samples have no coordinate (the frame index gives their times): its
 * axis is "." (the index). The root names the file's first group as its
 * `default`. Readers that know nothing of NeXus see a few attributes.
 */
static int nexus_attrs(struct h5w *w, struct h5w_group *g, hid_t gid)
{
	const struct schema_stream *st = g->stream;
	const char *signal = NULL, *aux[64];
	size_t naux = 0;
	for (size_t i = 0; i < st->nchannels; i++) {
		const struct schema_channel *ch = &st->channels[i];
		if (ch->dtype == DTYPE_STRING || ch->own_time)
			continue;
		if (!signal)
			signal = ch->name;
		else if (naux < sizeof(aux) / sizeof(aux[0]))
			aux[naux++] = ch->name;
	}
	if (!signal)
		return 0; /* nothing to plot */
	int rc = attr_string(gid, "NX_class", "NXdata");
	rc |= attr_string(gid, "signal", signal);
	/* a stream's channels have lengths of their own: no shared axes */
	if (naux && st->layout != SCHEMA_LAYOUT_STREAM)
		rc |= attr_strings(gid, "auxiliary_signals", aux, naux);
	if (st->layout == SCHEMA_LAYOUT_RECORDS) {
		static const char *const axes[] = {"time", "sample_time"};
		rc |= attr_strings(gid, "axes", axes, 2);
		rc |= attr_int64(gid, "time_indices", 0);
		rc |= attr_int64(gid, "sample_time_indices", 1);
	} else if (st->layout == SCHEMA_LAYOUT_TABLE) {
		static const char *const axes[] = {"time"};
		rc |= attr_strings(gid, "axes", axes, 1);
		rc |= attr_int64(gid, "time_indices", 0);
	} else {
		static const char *const axes[] = {"."};
		rc |= attr_strings(gid, "axes", axes, 1);
	}
	if (strcmp(g->path, "/") == 0)
		return rc;
	hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
	if (root < 0)
		return -EIO;
	if (H5Aexists(root, "default") == 0)
		rc |= attr_string(root, "default", g->path + 1);
	H5Gclose(root);
	return rc;
}

static int group_attrs(struct h5w *w, struct h5w_group *g, hid_t gid, struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	int rc = 0;
	rc |= nexus_attrs(w, g, gid);
	rc |= attrs_write(gid, st->attrs, st->nattrs);
	for (size_t i = 0; i < g->nvalues; i++)
		rc |= attr_string(gid, g->names[i], g->values[i]);
	rc |= attr_monotonic(gid, g, true);
	if (rc)
		return h5w_err_hdf5(w, err, "%s: writing attributes of group %s", w->file_name,
				    g->path);
	return 0;
}

/* Create G with all its datasets in the current file, which must not be in
 * SWMR-write mode. */
int h5w_layout_create(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	hid_t gid;
	int rc = 0;
	if (strcmp(g->path, "/") == 0) {
		gid = H5Gopen2(w->file, "/", H5P_DEFAULT);
	} else {
		hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
		H5Pset_create_intermediate_group(lcpl, 1);
		gid = H5Gcreate2(w->file, g->path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
		H5Pclose(lcpl);
	}
	if (gid < 0)
		return h5w_err_hdf5(w, err, "%s: creating group %s", w->file_name, g->path);
	rc = group_attrs(w, g, gid, err);
	for (size_t i = 0; !rc && i < g->ndsets; i++)
		rc = create_dataset(w, g, gid, &g->dsets[i], err);
	for (size_t i = 0; !rc && i < g->ndsets; i++) {
		rc = attach(w, g, &g->dsets[i], g->dsets[i].scale_axis0, 0, err);
		if (!rc)
			rc = attach(w, g, &g->dsets[i], g->dsets[i].scale_axis1, 1, err);
	}
	H5Gclose(gid);
	if (!rc)
		g->created_gen = w->gen;
	return rc;
}

/* Write the start_time/end_time of the data in this file of every dataset
 * of G whose data changed them since they were last written (usually the
 * end_time of the datasets that took rows), and the group's
 * time_monotonic when it changed. */
int h5w_layout_times(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	if (h5w_time_monotonic(g) != g->monotonic_written) {
		hid_t gid = H5Gopen2(w->file, g->path, H5P_DEFAULT);
		int rc = gid >= 0 ? attr_monotonic(gid, g, false) : -EIO;
		if (gid >= 0)
			H5Gclose(gid);
		if (rc)
			return h5w_err_hdf5(w, err, "%s: writing time_monotonic of %s",
					    w->file_name, g->path);
	}
	for (size_t i = 0; i < g->ndsets; i++) {
		struct h5w_dset *ds = &g->dsets[i];
		if (!ds->channel || !(ds->start_dirty || ds->end_dirty))
			continue;
		int rc = h5w_dset_open(w, ds, err);
		if (rc)
			return rc;
		if ((ds->start_dirty && attr_update_int64(ds->id, "start_time", ds->start_time)) ||
		    (ds->end_dirty && attr_update_int64(ds->id, "end_time", ds->end_time)))
			return h5w_err_hdf5(w, err, "%s: writing start_time/end_time of %s/%s",
					    w->file_name, g->path, ds->name);
		ds->start_dirty = ds->end_dirty = false;
	}
	return 0;
}

int h5w_root_run_end(struct h5w *w, int64_t end, struct h5w_error *err)
{
	hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
	int rc = root >= 0 && attr_update_int64(root, "run_end", end) == 0 ? 0 : -EIO;
	if (root >= 0)
		H5Gclose(root);
	return rc ? h5w_err_hdf5(w, err, "%s: writing run_end", w->file_name) : 0;
}

int h5w_root_attrs(struct h5w *w, struct h5w_error *err)
{
	const struct schema *s = w->schema;
	char created[TIME_ISO8601_MAX];
	hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
	int rc = root < 0 ? -EIO : 0;
	time_iso8601(w->file_created, 0, created, sizeof(created));
	if (!rc) {
		rc |= attr_string(root, "Conventions", H5W_CONVENTIONS);
		rc |= attr_string(root, "h5rec_version", H5REC_VERSION);
		rc |= attr_string(root, "schema_name", s->name ? s->name : "");
		rc |= attr_string(root, "schema", s->source ? s->source : "");
		rc |= attr_string(root, "file_created", created);
		rc |= attr_string(root, "host", w->host);
		rc |= attr_int64(root, "file_sequence", (int64_t)w->file_seq);
		if (w->run)
			rc |= attr_string(root, "run", w->run);
		rc |= attrs_write(root, s->attrs, s->nattrs);
		/* a run's own attributes after the schema's: the run's win */
		if (w->run && w->run_start) {
			/* run_end exists from the start: SWMR-write mode may only
			 * change it (h5w_run_stop) */
			rc |= attr_int64(root, "run_start", w->run_start);
			rc |= attr_int64(root, "run_end", 0);
			w->run_files++;
			if (w->run_restarted)
				rc |= attr_int64(root, "run_restarted", w->run_restarted);
			w->run_restarted = 0;
		}
		for (size_t i = 0; w->run && i < w->nrun_attrs; i++) {
			const struct h5w_attr *a = &w->run_attrs[i];
			rc |= a->type == H5W_ATTR_INT     ? attr_int64(root, a->name, a->i)
			    : a->type == H5W_ATTR_FLOAT ? attr_double(root, a->name, a->f)
							: attr_string(root, a->name, a->s);
		}
		H5Gclose(root);
	}
	if (rc)
		return h5w_err_hdf5(w, err, "%s: writing root attributes", w->file_name);
	return 0;
}
