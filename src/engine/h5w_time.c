/*
 * h5w_time.c - the time order and plausibility of rows (docs/engine.md,
 * "Time order and late data").
 *
 * Rows are appended in arrival order and files roll by receive time, so a
 * back-filled day, a late station or a repeated reading leave a group's
 * time axis unsorted or with repeated times; xarray's sel() and resample()
 * then fail, and CF requires coordinate variables to be strictly
 * monotonic. The recorder does not reorder (that would hold rows back and
 * rewrite stored chunks); it says so instead: each time axis remembers, per
 * file, the latest time of its rows, and a row not later than that is
 * counted for its group and clears the group's `time_monotonic` attribute
 * in that file (written at the next flush, and so at close and roll).
 *
 * Independently, a row whose time is far from when it was received (1970
 * from seconds sent to a nanosecond listener, 2100 from a bad clock) is
 * implausible: counted, and dropped when output.time_window.reject says
 * so. Counts are per group since the engine opened; the first
 * H5W_TIME_GROUPS groups that count anything are named in the stats.
 * Caller thread only.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "h5w_internal.h"

static void list_group(struct h5w *w, struct h5w_group *g)
{
	if (g->time_listed)
		return;
	g->time_listed = true;
	if (w->ntime_groups < H5W_TIME_GROUPS)
		w->time_groups[w->ntime_groups++] = g;
	else
		w->time_groups_unlisted++;
}

bool h5w_time_rejected(struct h5w *w, struct h5w_group *g, int64_t time)
{
	const struct schema_output *out = &w->schema->output;
	/* the receive time is a clock reading, within ±100 years of 2000;
	 * the bounds (windows of at most 100 years) then cannot overflow */
	int64_t received = w->arrived < 0 ? 0 : w->arrived > INT64_MAX / 2 ? INT64_MAX / 2
									       : w->arrived;
	if (time >= received - out->time_past_ns && time <= received + out->time_future_ns)
		return false;
	g->time.implausible++;
	w->stats.time.implausible++;
	if (out->time_reject) {
		g->time.rejected++;
		w->stats.time.rejected++;
	}
	list_group(w, g);
	return out->time_reject;
}

void h5w_time_note(struct h5w *w, struct h5w_group *g, struct h5w_dset *t, int64_t time)
{
	if (t->order_has && time <= t->order_latest) {
		t->order_broken = true;
		g->time.not_increasing++;
		w->stats.time.not_increasing++;
		list_group(w, g);
		return;
	}
	t->order_latest = time;
	t->order_has = true;
}

bool h5w_time_monotonic(const struct h5w_group *g)
{
	for (size_t i = 0; i < g->ndsets; i++)
		if (g->dsets[i].is_time && g->dsets[i].order_broken)
			return false;
	return true;
}

void h5w_get_time_groups(const struct h5w *w, struct h5w_time_groups *groups)
{
	groups->n = w->ntime_groups;
	groups->unlisted = w->time_groups_unlisted;
	for (size_t i = 0; i < w->ntime_groups; i++) {
		const struct h5w_group *g = w->time_groups[i];
		snprintf(groups->group[i].path, sizeof(groups->group[i].path), "%s", g->path);
		groups->group[i].counts = g->time;
	}
}
