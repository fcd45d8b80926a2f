/*
 * h5w_gen.c - drives the storage engine directly, for tests/py/test_engine*.py.
 *
 *   h5w_gen SCHEMA MODE [N] [ARG]
 *
 * Writes deterministic data whose values the Python tests recompute:
 *   table N      N rows into /<station> for stations "15" (and "16" with ARG=2);
 *                channel c of row i is (i*3 + c) % 100 (floats: i*0.5 + c,
 *                strings "s<i>"), absent when (i + c) % 5 == 4; own_time
 *                channels only on rows with i % 3 == 0. Values are sent as
 *                float64 (strings as strings), so every row is converted.
 *   records N    N events; sample j of channel c of event e is
 *                (e*7 + c*3 + j) % 101 sent as int16; fields field f = e + f/4;
 *                events with e % 4 == 3 never send channel 0, e % 5 == 2 never
 *                channel 4 (closed by timeout or completeness never reached).
 *   stream N     N frames per channel of 1000 + 37*k int16 samples, sample s
 *                of channel c = (s + 11*c) % 30000.
 *   clip         out-of-range values into each table channel; prints counters.
 *   live SECS    appends table rows in real time for SECS seconds, a second
 *                group appears half way; prints "rows <total>" after each flush.
 *   kill         like live, forever (the test kills it).
 *   bulk N       N MiB of stream samples (family / size-rolling tests).
 *   roll         ticks across UTC boundaries with explicit times and rolls.
 *   slow N       a weather station's N readings 10 s apart into /15, each made
 *                durable on its own (h5w_flush): the first channel a smooth
 *                temperature (0.1 resolution), the others weather-like; the
 *                Python test recomputes them with the same formula.
 *   many N       one reading each from stations "0".."N-1", then close.
 *   steady N     the weather steady state in engine time: 500 stations
 *                reporting every 10 s (50 rows a second), a flush each
 *                second, for N seconds (for profiling the per-flush cost).
 * Time starts at T0 = 2026-01-02T03:04:05Z, one second per row/event.
 * Prints the engine counters at the end as "key value" lines (before the
 * close, whose own flush they leave out).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h5w.h"
#include "schema.h"

#define T0 INT64_C(1767323045000000000)
#define SEC INT64_C(1000000000)

static struct h5w *engine;
static struct h5w_error err;

static void check(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "h5w_gen: %s: %s (%d)\n", what, err.message, rc);
		exit(1);
	}
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* The engine's clock: arrivals are on time (horizon = now). */
static int tick(int64_t now)
{
	return h5w_tick(engine, now, now, &err);
}

static struct h5w_group *group(const struct schema_stream *st, const char *name, const char *value)
{
	struct h5w_group *g;
	const char *names[] = {name};
	const char *values[] = {value};
	check(h5w_group_get(engine, st, names, values, 1, &g, &err), "group");
	return g;
}

static void table_row(struct h5w_group *g, const struct schema_stream *st, uint64_t i, int64_t t)
{
	struct h5w_value values[32];
	char strings[32][32];
	size_t n = 0;
	for (size_t c = 0; c < st->nchannels && n < 32; c++) {
		const struct schema_channel *ch = &st->channels[c];
		if ((i + c) % 5 == 4 || (ch->own_time && i % 3))
			continue;
		values[n].index = c;
		if (ch->dtype == DTYPE_STRING) {
			snprintf(strings[n], sizeof(strings[n]), "s%" PRIu64, i);
			values[n].dtype = DTYPE_STRING;
			values[n].v.s = strings[n];
		} else {
			values[n].dtype = DTYPE_FLOAT64;
			values[n].v.f64 = ch->dtype == DTYPE_FLOAT32 || ch->dtype == DTYPE_FLOAT64
						  ? (double)i * 0.5 + (double)c
						  : (double)((i * 3 + c) % 100);
		}
		n++;
	}
	check(h5w_table_append(engine, g, t, values, n, &err), "table_append");
}

static void run_table(const struct schema *s, uint64_t rows, int ngroups)
{
	const struct schema_stream *st = &s->streams[0];
	struct h5w_group *g[2] = {group(st, "station", "15"),
				  ngroups > 1 ? group(st, "station", "16") : NULL};
	for (uint64_t i = 0; i < rows; i++) {
		for (int k = 0; k < ngroups; k++)
			table_row(g[k], st, i, T0 + (int64_t)i * SEC);
		check(tick(T0 + (int64_t)i * SEC), "tick");
	}
}

static void run_records(const struct schema *s, uint64_t events)
{
	const struct schema_stream *st = &s->streams[0];
	struct h5w_group *g = group(st, "board", "b1");
	int16_t *wave = calloc(st->samples, sizeof(*wave));
	for (uint64_t e = 0; e < events; e++) {
		int64_t t = T0 + (int64_t)e * SEC;
		check(tick(t), "tick");
		struct h5w_value fields[8];
		for (size_t f = 0; f < st->nevent_fields && f < 8; f++) {
			fields[f].index = f;
			fields[f].dtype = DTYPE_FLOAT64;
			fields[f].v.f64 = (double)e + (double)f / 4.0;
		}
		if (e % 2 == 0)
			check(h5w_record_fields(engine, g, e + 1, t, fields, st->nevent_fields, &err),
			      "fields");
		for (size_t c = 0; c < st->nchannels; c++) {
			if ((c == 0 && e % 4 == 3) || (c == 4 && e % 5 == 2))
				continue;
			for (uint64_t j = 0; j < st->samples; j++)
				wave[j] = (int16_t)((e * 7 + c * 3 + j) % 101);
			check(h5w_record_data(engine, g, e + 1, t, c, DTYPE_INT16, wave, st->samples,
					      &err), "record_data");
		}
		if (e % 2 == 1)
			check(h5w_record_fields(engine, g, e + 1, t, fields, st->nevent_fields, &err),
			      "fields");
	}
	free(wave);
}

static void run_stream(const struct schema *s, uint64_t frames)
{
	const struct schema_stream *st = &s->streams[0];
	struct h5w_group *g = group(st, "board", "b1");
	int16_t *buf = malloc((1000 + 37 * frames) * sizeof(*buf));
	uint64_t pos[64] = {0};
	for (uint64_t k = 0; k < frames; k++) {
		size_t n = 1000 + 37 * k;
		for (size_t c = 0; c < st->nchannels && c < 64; c++) {
			for (size_t j = 0; j < n; j++)
				buf[j] = (int16_t)((pos[c] + j + 11 * c) % 30000);
			check(h5w_stream_append(engine, g, c, DTYPE_INT16, buf, n,
						T0 + (int64_t)k * SEC, k + 1, &err), "stream_append");
			pos[c] += n;
		}
		check(tick(T0 + (int64_t)k * SEC), "tick");
	}
	free(buf);
}

static void run_clip(const struct schema *s)
{
	const struct schema_stream *st = &s->streams[0];
	struct h5w_group *g = group(st, "station", "15");
	const double probes[] = {1e300, -1e300, 1e6, -1e6, 42.0};
	for (size_t p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
		struct h5w_value v[16];
		size_t n = 0;
		for (size_t c = 0; c < st->nchannels && n < 16; c++) {
			if (st->channels[c].dtype == DTYPE_STRING)
				continue;
			v[n].index = c;
			v[n].dtype = DTYPE_FLOAT64;
			v[n].v.f64 = probes[p];
			n++;
		}
		check(h5w_table_append(engine, g, T0 + (int64_t)p * SEC, v, n, &err), "append");
	}
	/* a string into a numeric channel is refused with context */
	struct h5w_value bad = {.index = 0, .dtype = DTYPE_STRING, .v.s = "x"};
	int rc = h5w_table_append(engine, g, T0, &bad, 1, &err);
	printf("bad_string_rc %d\nbad_string_message %s\n", rc, err.message);
}

static void run_live(const struct schema *s, double secs, bool forever)
{
	const struct schema_stream *st = &s->streams[0];
	struct h5w_group *g1 = group(st, "station", "15"), *g2 = NULL;
	struct h5w_stats stats;
	int64_t start = wall_ns(), last_flush = 0;
	uint64_t i = 0;
	while (forever || wall_ns() - start < (int64_t)(secs * 1e9)) {
		int64_t now = wall_ns();
		for (int k = 0; k < 10; k++, i++) {
			table_row(g1, st, i, now);
			if (g2)
				table_row(g2, st, i, now);
		}
		if (!g2 && now - start > (int64_t)(secs * 0.5e9) && !forever) {
			g2 = group(st, "station", "16");
			printf("group16 %" PRId64 "\n", now);
		}
		check(tick(now), "tick");
		h5w_get_stats(engine, &stats);
		if (stats.last_flush != last_flush) {
			last_flush = stats.last_flush;
			printf("flushed %" PRIu64 " %" PRId64 "\n", i, wall_ns());
			fflush(stdout);
		}
		struct timespec pause = {0, 1000000};
		nanosleep(&pause, NULL);
	}
}

/* Reading I of a slow station, channel C: weather-like values a reader
 * can recompute (tests/py/test_engine_scale.py). */
static double weather_value(uint64_t i, size_t c)
{
	double x = (double)i;
	switch (c % 4) {
	case 0: return round((15.0 + 8.0 * sin(x / 8640.0 * 6.283185307179586) +
			      0.3 * sin(x * 0.7)) * 10.0) / 10.0;
	case 1: return (double)((i * 7919) % 97) / 10.0;
	case 2: return 1013.0 + round(sin(x / 3000.0) * 100.0) / 10.0;
	default: return (double)(40 + (i / 30) % 50);
	}
}

static void run_slow(const struct schema *s, uint64_t rows)
{
	const struct schema_stream *st = &s->streams[0];
	struct h5w_group *g = group(st, "station", "15");
	struct h5w_value values[32];
	for (uint64_t i = 0; i < rows; i++) {
		size_t n = 0;
		for (size_t c = 0; c < st->nchannels && c < 32; c++, n++)
			values[n] = (struct h5w_value){.index = c, .dtype = DTYPE_FLOAT64,
						       .v.f64 = weather_value(i, c)};
		int64_t t = T0 + (int64_t)i * 10 * SEC;
		check(tick(t), "tick");
		check(h5w_table_append(engine, g, t, values, n, &err), "append");
		check(h5w_flush(engine, &err), "flush");
	}
}

static void run_many(const struct schema *s, uint64_t stations)
{
	const struct schema_stream *st = &s->streams[0];
	char name[32];
	for (uint64_t k = 0; k < stations; k++) {
		snprintf(name, sizeof(name), "%" PRIu64, k);
		table_row(group(st, "station", name), st, k, T0 + (int64_t)k);
	}
}

static void run_steady(const struct schema *s, uint64_t seconds)
{
	const struct schema_stream *st = &s->streams[0];
	enum { STATIONS = 500, PER_SECOND = 50 };
	static struct h5w_group *groups[STATIONS];
	char name[32];
	for (uint64_t k = 0; k < STATIONS; k++) {
		snprintf(name, sizeof(name), "%" PRIu64, k);
		groups[k] = group(st, "station", name);
	}
	for (uint64_t sec = 0; sec < seconds; sec++) {
		int64_t t = T0 + (int64_t)sec * SEC;
		for (uint64_t j = 0; j < PER_SECOND; j++) {
			uint64_t k = (sec * PER_SECOND + j) % STATIONS;
			table_row(groups[k], st, sec, t + (int64_t)j);
		}
		check(tick(t + SEC - 1), "tick");
		check(h5w_flush(engine, &err), "flush");
	}
}

static void run_bulk(const struct schema *s, uint64_t mib)
{
	const struct schema_stream *st = &s->streams[0];
	struct h5w_group *g = group(st, "board", "b1");
	size_t n = 1 << 18;
	float *buf = malloc(n * sizeof(*buf));
	uint64_t total = 0;
	for (uint64_t k = 0; total < mib << 20; k++) {
		for (size_t j = 0; j < n; j++)
			buf[j] = (float)((k * n + j) % 1000);
		check(h5w_stream_append(engine, g, 0, DTYPE_FLOAT32, buf, n, T0 + (int64_t)k * SEC,
					k, &err), "stream_append");
		check(tick(T0 + (int64_t)k * SEC), "tick");
		total += n * sizeof(*buf);
	}
	free(buf);
}

static void run_roll(const struct schema *s)
{
	/* one row per 20 minutes for 5 hours: with roll.every 1h, 5 or 6 files */
	const struct schema_stream *st = &s->streams[0];
	struct h5w_group *g = group(st, "station", "15");
	for (uint64_t i = 0; i < 15; i++) {
		int64_t t = T0 + (int64_t)i * 1200 * SEC;
		check(tick(t), "tick");
		table_row(g, st, i, t);
		if (i == 7)
			check(h5w_roll(engine, &err), "roll");
	}
}

int main(int argc, char **argv)
{
	struct schema *s = NULL;
	struct schema_error serr;
	if (argc < 3) {
		fprintf(stderr, "usage: h5w_gen SCHEMA MODE [N] [ARG]\n");
		return 2;
	}
	if (schema_load_file(argv[1], &s, &serr)) {
		fprintf(stderr, "%s\n", serr.message);
		return 2;
	}
	const char *mode = argv[2];
	uint64_t n = argc > 3 ? strtoull(argv[3], NULL, 10) : 10;
	int arg = argc > 4 ? atoi(argv[4]) : 1;
	bool realtime = !strcmp(mode, "live") || !strcmp(mode, "kill");
	struct h5w_options opt = {.host = "testhost", .run = "run7"};
	check(h5w_open(&engine, s, &opt, realtime ? wall_ns() : T0, &err), "open");

	if (!strcmp(mode, "table"))
		run_table(s, n, arg);
	else if (!strcmp(mode, "records"))
		run_records(s, n);
	else if (!strcmp(mode, "stream"))
		run_stream(s, n);
	else if (!strcmp(mode, "clip"))
		run_clip(s);
	else if (!strcmp(mode, "live"))
		run_live(s, (double)n, false);
	else if (!strcmp(mode, "kill"))
		run_live(s, 0, true);
	else if (!strcmp(mode, "bulk"))
		run_bulk(s, n);
	else if (!strcmp(mode, "roll"))
		run_roll(s);
	else if (!strcmp(mode, "slow"))
		run_slow(s, n);
	else if (!strcmp(mode, "many"))
		run_many(s, n);
	else if (!strcmp(mode, "steady"))
		run_steady(s, n);
	else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}

	struct h5w_stats st;
	h5w_get_stats(engine, &st);
	int rc = h5w_close(engine, &err);
	if (rc)
		fprintf(stderr, "h5w_gen: close: %s\n", err.message);
	printf("samples_written %" PRIu64 "\nsamples_clipped %" PRIu64
	       "\nmissing_channels %" PRIu64 "\nrecords_closed %" PRIu64
	       "\nchunks_written %" PRIu64 "\nfiles_closed %" PRIu64 "\nflushes %" PRIu64
	       "\nmetadata_flushes %" PRIu64 "\nfile %s\n",
	       st.samples_written, st.samples_clipped, st.missing_channels, st.records_closed,
	       st.chunks_written, st.files_closed + 1, st.flushes, st.metadata_flushes,
	       st.file_name);
	if (st.last_error[0])
		printf("last_error %s\n", st.last_error);
	schema_free(s);
	return rc ? 1 : 0;
}
