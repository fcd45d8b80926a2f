/*
 * h5w_table.c - `layout: table` (SPEC §4.1): a row of values from a line,
 * converted to the channels' dtypes and buffered in every dataset of the
 * group at once, so their rows stay in step (a missing field is a fill).
 *
 * Caller thread only.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h5w_internal.h"

static int convert_value(struct h5w *w, struct h5w_group *g, const struct h5w_value *v,
			 void *out, struct h5w_error *err)
{
	const struct schema_channel *ch = &g->stream->channels[v->index];
	if ((ch->dtype == DTYPE_STRING) != (v->dtype == DTYPE_STRING)) {
		h5w_err(w, err, "%s/%s: a %s value is not convertible to %s", g->path, ch->name,
			dtype_name(v->dtype) ? dtype_name(v->dtype) : "?", dtype_name(ch->dtype));
		return -EINVAL;
	}
	if (ch->dtype == DTYPE_STRING) {
		char *copy = strdup(v->v.s ? v->v.s : "");
		if (!copy)
			return -ENOMEM;
		memcpy(out, &copy, sizeof(copy));
		return 0;
	}
	int rc = h5w_convert(w, v->dtype, ch->dtype, &v->v, 1, out, err);
	if (rc == -EINVAL)
		h5w_err(w, err, "%s/%s: dtype %s is not convertible to %s", g->path, ch->name,
			dtype_name(v->dtype) ? dtype_name(v->dtype) : "?", dtype_name(ch->dtype));
	return rc;
}

/* Free the converted strings of VALUES[from..n) (never handed to a dataset). */
static void free_converted(const struct schema_stream *st, const struct h5w_value *values,
			   const unsigned char *converted, size_t from, size_t n)
{
	for (size_t j = from; j < n; j++) {
		if (st->channels[values[j].index].dtype == DTYPE_STRING) {
			char *s;
			memcpy(&s, converted + 8 * j, sizeof(s));
			free(s);
		}
	}
}

/* Buffer one row (all or nothing); *PUT is how many values were taken. */
static int put_row(struct h5w *w, struct h5w_group *g, int64_t time,
		   const struct h5w_value *values, size_t nvalues, const unsigned char *converted,
		   bool shared_row, size_t *put, struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	int rc = 0;
	memset(g->seen, 0, st->nchannels);
	*put = 0;
	for (size_t i = 0; i < nvalues; i++) {
		size_t c = values[i].index;
		const void *value = converted + 8 * i;
		struct h5w_dset *ds = &g->dsets[g->chan_ds[c]];
		uint64_t row = ds->nrows;
		if (!st->channels[c].own_time && g->seen[c])
			row--; /* repeated field: the last one wins */
		g->seen[c] = 1;
		rc = h5w_dset_put(w, ds, row, value, 1, err);
		if (rc)
			return rc;
		*put = i + 1; /* the dataset owns the value (a string) now */
		if (st->channels[c].own_time) {
			struct h5w_dset *t = &g->dsets[g->chan_time_ds[c]];
			rc = h5w_dset_put(w, t, t->nrows, &time, 1, err);
			if (rc)
				return rc;
		}
	}
	if (!shared_row)
		return 0;
	for (size_t c = 0; !rc && c < st->nchannels; c++) {
		if (g->seen[c] || st->channels[c].own_time)
			continue;
		struct h5w_dset *ds = &g->dsets[g->chan_ds[c]];
		rc = h5w_dset_fill(w, ds, ds->nrows, 1, err);
	}
	if (!rc)
		rc = h5w_dset_put(w, &g->dsets[g->time_ds], g->dsets[g->time_ds].nrows, &time, 1,
				  err);
	if (!rc && g->origin_ds != SIZE_MAX)
		rc = h5w_dset_put(w, &g->dsets[g->origin_ds], g->dsets[g->origin_ds].nrows,
				  &w->origin, 1, err);
	return rc;
}

/* Buffer one row of table values; it is taken whole or not at all. */
int h5w_table_put(struct h5w *w, struct h5w_group *g, int64_t time,
		  const struct h5w_value *values, size_t nvalues, struct h5w_error *err)
{
	const struct schema_stream *st = g->stream;
	unsigned char *converted;
	bool shared_row = false;
	int rc;

	converted = h5w_scratch(w, (nvalues + 1) * 8);
	if (!converted)
		return -ENOMEM;
	for (size_t i = 0; i < nvalues; i++) {
		rc = convert_value(w, g, &values[i], converted + 8 * i, err);
		if (rc) {
			free_converted(st, values, converted, 0, i);
			return rc;
		}
		if (!st->channels[values[i].index].own_time)
			shared_row = true;
	}
	for (size_t j = 0; j < g->ndsets; j++)
		g->dsets[j].mark = g->dsets[j].nrows;
	size_t put;
	rc = put_row(w, g, time, values, nvalues, converted, shared_row, &put, err);
	if (rc) {
		/* taken back whole: the datasets of the group stay in step */
		free_converted(st, values, converted, put, nvalues);
		for (size_t j = 0; j < g->ndsets; j++)
			h5w_dset_truncate(w, &g->dsets[j], g->dsets[j].mark);
		return rc;
	}
	for (size_t i = 0; i < nvalues; i++) {
		size_t c = values[i].index;
		h5w_dset_note_time(&g->dsets[g->chan_ds[c]], time, time);
		if (st->channels[c].own_time)
			h5w_time_note(w, g, &g->dsets[g->chan_time_ds[c]], time);
	}
	if (shared_row) {
		h5w_time_note(w, g, &g->dsets[g->time_ds], time);
		h5w_count_rows(w, g, 1);
	}
	w->stats.samples_written += nvalues;
	/* The row is accepted; storing the chunks it completed may fail (full
	 * disk): they stay in memory for the next flush, the error is returned. */
	for (size_t j = 0; j < g->ndsets; j++) {
		int r = h5w_dset_seal(w, &g->dsets[j], g->dsets[j].nrows, rc ? NULL : err);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

