/*
 * test_h5w.c - the storage engine's contracts that readers cannot see:
 * errors come back with context and the engine keeps working (group limit,
 * waveform length, dtype, buffer limit, a file-size limit standing in for a
 * full disk), record closing by timeout and by too many open records, the
 * clipping counter, and the UTC roll boundary arithmetic. The file contents
 * themselves are checked with real readers in tests/py/test_engine*.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5_hl.h>

#include "h5w.h"
#include "h5lz4.h"
#include "h5w_internal.h"
#include "h5z_lz4.h"
#include "schema.h"

#define T0 INT64_C(1767323045000000000)
#define SEC INT64_C(1000000000)

struct fixture {
	char dir[64];
	struct schema *schema;
	struct h5w *engine;
	struct h5w_error err;
};

static const char *records_body =
	"streams:\n"
	"  - name: dust\n"
	"    match: { key: \"{board}/{channel}\" }\n"
	"    group: \"/{board}\"\n"
	"    layout: records\n"
	"    samples: 1000\n"
	"    dt: 1.0e-6\n"
	"    record_timeout: 2s\n"
	"    event_fields: { mass: float32 }\n"
	"    channels:\n"
	"      a: { dtype: float32, chunk: 2 }\n"
	"      b: { dtype: int8, chunk: 2 }\n";

static struct fixture *setup_output(const char *output, const char *limits, const char *body,
				    unsigned max_open);

static struct fixture *setup_with(const char *limits, const char *body, unsigned max_open)
{
	return setup_output("", limits, body, max_open);
}

/* OUTPUT: more keys of the output mapping, each "  key: value\n". */
static struct fixture *setup_output(const char *output, const char *limits, const char *body,
				    unsigned max_open)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char text[4096];
	struct schema_error serr;
	assert_non_null(fx);
	/* a test that failed with a file-size limit in place left it there */
	struct rlimit fsize;
	getrlimit(RLIMIT_FSIZE, &fsize);
	fsize.rlim_cur = fsize.rlim_max;
	setrlimit(RLIMIT_FSIZE, &fsize);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_h5w.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(text, sizeof(text),
		 "name: unit\n"
		 "output:\n  directory: %s\n  file: \"u-{seq}.h5\"\n  flush: 1s\n%s"
		 "listen:\n  - { protocol: %s, transport: tcp, address: \"127.0.0.1:7701\" }\n"
		 "%s%s",
		 fx->dir, output, strstr(body, "measurement") ? "line" : "frame", limits, body);
	int rc = schema_load_string(text, strlen(text), "unit.yaml", &fx->schema, &serr);
	if (rc)
		fail_msg("%s", serr.message);
	struct h5w_options opt = {.host = "h", .workers = 2, .max_open_records = max_open};
	assert_int_equal(h5w_open(&fx->engine, fx->schema, &opt, T0, &fx->err), 0);
	return fx;
}

static void teardown_fx(struct fixture *fx)
{
	char cmd[128];
	if (fx->engine)
		h5w_close(fx->engine, &fx->err);
	schema_free(fx->schema);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
}

static struct h5w_group *group(struct fixture *fx, const char *board)
{
	struct h5w_group *g = NULL;
	const char *names[] = {"board"}, *values[] = {board};
	assert_int_equal(h5w_group_get(fx->engine, &fx->schema->streams[0], names, values, 1, &g,
				       &fx->err), 0);
	return g;
}

static void test_roll_boundary(void **state)
{
	(void)state;
	int64_t hour = 3600 * SEC, day = 24 * hour;
	assert_true(h5w_roll_boundary(T0, hour) == T0 - (4 * 60 + 5) * SEC);
	assert_true(h5w_roll_boundary(T0, day) == T0 - ((3 * 60 + 4) * 60 + 5) * SEC);
	assert_true(h5w_roll_boundary(-1, hour) == -hour);
	assert_true(h5w_roll_boundary(0, hour) == 0);
}

static const char *table_body =
	"streams:\n"
	"  - name: weather\n"
	"    match: { measurement: weather }\n"
	"    group: \"/{board}\"\n"
	"    layout: table\n"
	"    channels: { t: { dtype: float32, chunk: 64 } }\n";

static int append_row(struct fixture *fx, struct h5w_group *g, int64_t t)
{
	struct h5w_value v = {.index = 0, .dtype = DTYPE_FLOAT64, .v.f64 = 1.5};
	return h5w_table_append(fx->engine, g, t, &v, 1, &fx->err);
}

/* limits.max_groups bounds the groups that take data in one file, not the
 * engine's lifetime: a new group is refused in a full file and taken in
 * the next one; groups idle for a whole file can be forgotten. */
static void group_limit_per_file(const char *output)
{
	struct fixture *fx = setup_output(output, "limits: { max_groups: 2 }\n", table_body, 0);
	struct h5w_group *a = group(fx, "a"), *b = group(fx, "b"), *c = group(fx, "c");
	struct h5w_stats st;
	assert_ptr_equal(group(fx, "a"), a);
	assert_int_equal(append_row(fx, a, T0), 0);
	assert_int_equal(append_row(fx, b, T0), 0);
	assert_int_equal(append_row(fx, c, T0), -EMLINK);
	assert_non_null(strstr(fx->err.message, "max_groups"));
	assert_non_null(strstr(fx->err.message, "/c"));
	assert_int_equal(append_row(fx, a, T0 + 1), 0); /* groups in the file go on */
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.file_groups, 2);
	/* c never took data anywhere: idle; a and b are in the file */
	assert_true(h5w_group_idle(fx->engine, c));
	assert_false(h5w_group_idle(fx->engine, a));
	assert_int_equal(h5w_group_retire(fx->engine, a), -EBUSY);

	assert_int_equal(h5w_roll(fx->engine, &fx->err), 0);
	/* b took data in the file just closed */
	assert_false(h5w_group_idle(fx->engine, b));
	/* the next file takes c and a; then it is full for b (under SWMR, b
	 * is in it all the same, carried over empty from the last file) */
	assert_int_equal(append_row(fx, c, T0 + 2 * SEC), 0);
	assert_int_equal(append_row(fx, a, T0 + 2 * SEC), 0);
	assert_int_equal(append_row(fx, b, T0 + 2 * SEC), -EMLINK);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	assert_false(h5w_group_idle(fx->engine, b));
	assert_int_equal(h5w_roll(fx->engine, &fx->err), 0);
	/* b took no data in the file just closed: idle, and forgotten */
	assert_true(h5w_group_idle(fx->engine, b));
	assert_false(h5w_group_idle(fx->engine, c));
	assert_int_equal(h5w_group_retire(fx->engine, b), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.groups, 2);
	assert_int_equal(st.groups_retired, 1);
	/* named again, it is a new group that takes data */
	struct h5w_group *b2 = group(fx, "b");
	assert_ptr_equal(group(fx, "a"), a);
	assert_ptr_equal(group(fx, "c"), c);
	assert_int_equal(append_row(fx, b2, T0 + 3 * SEC), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	teardown_fx(fx);
}

static void test_group_limit(void **state)
{
	(void)state;
	group_limit_per_file("  swmr: false\n");
}

static void test_group_limit_swmr(void **state)
{
	(void)state;
	group_limit_per_file("  swmr: true\n");
}

/* Under SWMR a group new to the file starts a new one (groups cannot be
 * created in SWMR-write mode). The file it closes only to take the new
 * group passes all of its groups on, not only those heard from since it
 * began: else stations that report less often than the flush would start
 * a new file at every flush (500 stations every 10 s with a flush each
 * second made a file a second). */
static void test_swmr_new_groups_do_not_churn_files(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("  swmr: true\n", "", table_body, 0);
	struct h5w_stats st;
	char name[16];
	/* 20 stations, 2 reporting per flush, for 60 flushes */
	for (int sec = 0; sec < 60; sec++) {
		for (int j = 0; j < 2; j++) {
			snprintf(name, sizeof(name), "s%d", (sec * 2 + j) % 20);
			assert_int_equal(append_row(fx, group(fx, name), T0 + sec * SEC + j), 0);
		}
		assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	}
	h5w_get_stats(fx->engine, &st);
	/* a new file for each of the first 10 flushes (2 new stations each),
	 * then one file for good */
	assert_int_equal(st.files_closed, 9);
	/* after a roll, a station silent for the whole file is left out */
	assert_int_equal(h5w_roll(fx->engine, &fx->err), 0);
	assert_int_equal(append_row(fx, group(fx, "s0"), T0 + 61 * SEC), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	assert_int_equal(append_row(fx, group(fx, "s1"), T0 + 62 * SEC), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.files_closed, 10); /* s1 was in the last file: carried */
	teardown_fx(fx);
}

/* The engine names at most twice limits.max_groups groups (the groups of
 * this file and of the last): beyond, -EMLINK until some are retired. */
static void test_group_names_bounded(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("limits: { max_groups: 2 }\n", table_body, 0);
	struct h5w_group *g;
	const char *names[] = {"board"}, *values[] = {"e"};
	struct h5w_group *a = group(fx, "a");
	group(fx, "b");
	group(fx, "c");
	group(fx, "d");
	assert_int_equal(h5w_group_get(fx->engine, &fx->schema->streams[0], names, values, 1, &g,
				       &fx->err), -EMLINK);
	assert_non_null(strstr(fx->err.message, "max_groups"));
	assert_int_equal(h5w_group_retire(fx->engine, a), 0);
	assert_int_equal(h5w_group_get(fx->engine, &fx->schema->streams[0], names, values, 1, &g,
				       &fx->err), 0);
	teardown_fx(fx);
}

static void test_bad_waveform_and_dtype(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("", records_body, 0);
	struct h5w_group *g = group(fx, "x");
	float wave[1001] = {0};
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_FLOAT32, wave, 999,
					 &fx->err), -EINVAL);
	assert_non_null(strstr(fx->err.message, "999"));
	assert_non_null(strstr(fx->err.message, "/x/a"));
	struct h5w_value v = {.index = 0, .dtype = DTYPE_STRING, .v.s = "heavy"};
	assert_int_equal(h5w_record_fields(fx->engine, g, 1, T0, &v, 1, &fx->err), -EINVAL);
	assert_non_null(strstr(fx->err.message, "mass"));
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_STRING, wave, 1000,
					 &fx->err), -EINVAL);
	/* the engine goes on working */
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_FLOAT32, wave, 1000,
					 &fx->err), 0);
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	assert_true(st.errors >= 3);
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;
	teardown_fx(fx);
}

static void test_record_timeout_and_open_limit(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("", records_body, 2);
	struct h5w_group *g = group(fx, "x");
	float wave[1000] = {0};
	int8_t small[1000] = {0};
	struct h5w_value mass = {.index = 0, .dtype = DTYPE_FLOAT64, .v.f64 = 1.5};
	struct h5w_stats st;

	/* complete: closes at once */
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_FLOAT32, wave, 1000, &fx->err), 0);
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 1, DTYPE_INT8, small, 1000, &fx->err), 0);
	assert_int_equal(h5w_record_fields(fx->engine, g, 1, T0, &mass, 1, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 1);
	assert_int_equal(st.missing_channels, 0);

	/* incomplete: closes after record_timeout, missing channel counted */
	assert_int_equal(h5w_record_data(fx->engine, g, 2, T0, 0, DTYPE_FLOAT32, wave, 1000, &fx->err), 0);
	assert_int_equal(h5w_tick(fx->engine, T0 + SEC, T0 + SEC, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 1);
	assert_int_equal(h5w_tick(fx->engine, T0 + 2 * SEC, T0 + 2 * SEC, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 2);
	assert_int_equal(st.missing_channels, 1);

	/* the timeout runs from when frames arrived, up to the horizon of
	 * what may still come: a writer behind by seconds (now) closes nothing
	 * whose frames arrived within record_timeout of each other */
	h5w_arrival(fx->engine, T0 + 3 * SEC);
	assert_int_equal(h5w_record_data(fx->engine, g, 9, T0, 0, DTYPE_FLOAT32, wave, 1000, &fx->err), 0);
	assert_int_equal(h5w_tick(fx->engine, T0 + 30 * SEC, T0 + 4 * SEC, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 2);
	h5w_arrival(fx->engine, T0 + 4 * SEC);
	assert_int_equal(h5w_record_data(fx->engine, g, 9, T0, 1, DTYPE_INT8, small, 1000, &fx->err), 0);
	assert_int_equal(h5w_record_fields(fx->engine, g, 9, T0, &mass, 1, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 3); /* complete, not late */
	assert_int_equal(st.missing_channels, 1);
	h5w_arrival(fx->engine, T0 + 5 * SEC);
	assert_int_equal(h5w_record_data(fx->engine, g, 10, T0, 0, DTYPE_FLOAT32, wave, 1000, &fx->err), 0);
	assert_int_equal(h5w_tick(fx->engine, T0 + 31 * SEC, T0 + 6 * SEC, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 3);
	assert_int_equal(h5w_tick(fx->engine, T0 + 32 * SEC, T0 + 7 * SEC, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 4); /* two seconds after its frame arrived */
	assert_int_equal(st.missing_channels, 2);

	/* a third open record pushes out the oldest of two */
	for (uint64_t e = 3; e <= 5; e++)
		assert_int_equal(h5w_record_data(fx->engine, g, e, T0, 0, DTYPE_FLOAT32, wave, 1000,
						 &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 5);
	assert_int_equal(h5w_record_close(fx->engine, g, 4, &fx->err), 0);
	assert_int_equal(h5w_record_close(fx->engine, g, 4, &fx->err), -ENOENT);
	/* event 0 is a record of its own */
	assert_int_equal(h5w_record_data(fx->engine, g, 0, T0, 1, DTYPE_INT8, small, 1000, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 7);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.file_rows, 8);
	teardown_fx(fx);
}

static void test_roll_closes_open_records(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("", records_body, 0);
	struct h5w_group *g = group(fx, "x");
	float wave[1000] = {0};
	struct h5w_stats st;
	assert_int_equal(h5w_record_data(fx->engine, g, 7, T0, 0, DTYPE_FLOAT32, wave, 1000, &fx->err), 0);
	assert_int_equal(h5w_roll(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 1);
	assert_int_equal(st.missing_channels, 1);
	assert_int_equal(st.files_closed, 1);
	assert_false(st.file_open);
	/* the event's next frame starts a new row in the next file, which
	 * (SWMR: its groups are created before it goes live) the next flush
	 * starts */
	assert_int_equal(h5w_record_data(fx->engine, g, 7, T0, 1, DTYPE_FLOAT32, wave, 1000, &fx->err), 0);
	assert_int_equal(h5w_record_close(fx->engine, g, 7, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_false(st.file_open);
	assert_int_equal(st.records_closed, 2);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_true(st.file_open);
	assert_int_equal(st.file_rows, 1);
	teardown_fx(fx);
}

/* SPEC §4.2: one row per event. A frame of an event whose record closed
 * (here by record_timeout) is refused with -ESTALE, not given a second row;
 * the engine remembers the last H5W_CLOSED_EVENTS closed ids. */
static void test_late_frame_of_closed_event_refused(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("", records_body, 0);
	struct h5w_group *g = group(fx, "x");
	float wave[1000] = {0};
	struct h5w_value mass = {.index = 0, .dtype = DTYPE_FLOAT64, .v.f64 = 1.5};
	struct h5w_stats st;

	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_FLOAT32, wave, 1000, &fx->err), 0);
	assert_int_equal(h5w_tick(fx->engine, T0 + 3 * SEC, T0 + 3 * SEC, &fx->err), 0);
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 1, DTYPE_FLOAT32, wave, 1000, &fx->err),
			 -ESTALE);
	assert_non_null(strstr(fx->err.message, "event 1 already closed (record_timeout)"));
	assert_int_equal(h5w_record_fields(fx->engine, g, 1, T0, &mass, 1, &fx->err), -ESTALE);
	assert_int_equal(h5w_record_close(fx->engine, g, 1, &fx->err), -ENOENT);
	assert_int_equal(h5w_record_data(fx->engine, g, 2, T0, 0, DTYPE_FLOAT32, wave, 1000, &fx->err), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.file_rows, 2);

	/* the memory is bounded: after H5W_CLOSED_EVENTS newer closes, event 1
	 * is forgotten and opens a row again */
	for (uint64_t e = 2; e < 2 + H5W_CLOSED_EVENTS; e++) {
		assert_int_equal(h5w_record_fields(fx->engine, g, e, T0, &mass, 1, &fx->err), 0);
		h5w_record_close(fx->engine, g, e, &fx->err);
	}
	assert_int_equal(h5w_record_fields(fx->engine, g, 3, T0, &mass, 1, &fx->err), -ESTALE);
	assert_int_equal(h5w_record_fields(fx->engine, g, 1, T0, &mass, 1, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.file_rows, 2 + H5W_CLOSED_EVENTS);
	teardown_fx(fx);
}

static void test_clipping_counted(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("", records_body, 0);
	struct h5w_group *g = group(fx, "x");
	double wave[1000];
	for (int i = 0; i < 1000; i++)
		wave[i] = i % 2 ? 1000.0 : -5.0;
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 1, DTYPE_FLOAT64, wave, 1000,
					 &fx->err), 0);
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.samples_clipped, 500);
	teardown_fx(fx);
}

static void test_buffer_limit(void **state)
{
	(void)state;
	/* one chunk of a is 2 x 100000 x 4 bytes; the limit allows one */
	static const char *body =
		"streams:\n"
		"  - name: dust\n"
		"    match: { key: \"{board}/{channel}\" }\n"
		"    group: \"/{board}\"\n"
		"    layout: records\n"
		"    samples: 100000\n"
		"    dt: 1.0e-6\n"
		"    channels:\n"
		"      a: { dtype: float32, chunk: 2 }\n"
		"      b: { dtype: float32, chunk: 2 }\n";
	struct fixture *fx = setup_with("limits: { max_buffer: 1MiB, max_frame: 512KiB }\n", body, 16);
	struct h5w_group *g = group(fx, "x");
	static float wave[100000];
	int rc = 0;
	uint64_t e;
	for (e = 1; e < 16 && !rc; e++)
		rc = h5w_record_data(fx->engine, g, e, T0, e % 2, DTYPE_FLOAT32, wave, 100000,
				     &fx->err);
	assert_int_equal(rc, -ENOBUFS);
	assert_non_null(strstr(fx->err.message, "max_buffer"));
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	assert_true(st.buffered_bytes <= 1 << 20);
	teardown_fx(fx);
}

/* A file-size limit of BYTES (RLIMIT_FSIZE): write() past it fails with
 * EFBIG, as on a full disk (SIGXFSZ ignored, as h5recd does). OLD: the
 * limit to give back with lift_file_size_limit(). */
static void limit_file_size(struct rlimit *old, rlim_t bytes)
{
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, old);
	struct rlimit lim = {.rlim_cur = bytes, .rlim_max = old->rlim_max};
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

static void lift_file_size_limit(const struct rlimit *old)
{
	setrlimit(RLIMIT_FSIZE, old);
	signal(SIGXFSZ, SIG_DFL);
}

static void test_write_error_is_returned_not_fatal(void **state)
{
	(void)state;
	static const char *stream_body =
		"streams:\n"
		"  - name: adc\n"
		"    match: { key: \"{board}/{channel}\" }\n"
		"    group: \"/{board}\"\n"
		"    layout: stream\n"
		"    channels:\n"
		"      a: { dtype: float32, chunk: 65536, dt: 1e-6, compression: lz4 }\n";
	struct fixture *fx = setup_with("", stream_body, 0);
	struct h5w_group *g = group(fx, "x");
	static float noise[1 << 16];
	for (size_t i = 0; i < sizeof(noise) / sizeof(noise[0]); i++)
		noise[i] = (float)rand();
	/* a file-size limit makes write() fail with EFBIG, like a full disk */
	struct rlimit old;
	limit_file_size(&old, 2 << 20);
	int rc = 0;
	for (int k = 0; k < 200 && !rc; k++) {
		rc = h5w_stream_append(fx->engine, g, 0, DTYPE_FLOAT32, noise, 1 << 16,
				       T0 + k * SEC, (uint64_t)k, &fx->err);
		if (!rc)
			rc = h5w_flush(fx->engine, &fx->err);
	}
	assert_true(rc == -EIO || rc == -ENOSPC || rc == -EFBIG);
	assert_non_null(strstr(fx->err.message, fx->dir));
	/* once space is back, the engine closes the file and it is valid */
	lift_file_size_limit(&old);
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	rc = h5w_close(fx->engine, &fx->err);
	fx->engine = NULL;
	assert_int_equal(rc, 0);
	hid_t file = H5Fopen(st.file_name, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	hid_t ds = H5Dopen2(file, "/x/a_frame_start", H5P_DEFAULT);
	assert_true(ds >= 0);
	H5Dclose(ds);
	H5Fclose(file);
	teardown_fx(fx);
}

/* One stream channel /x/a of int16, a 65536-sample chunk per frame. */
static const char *const INT16_STREAM =
	"streams:\n"
	"  - name: adc\n"
	"    match: { key: \"{board}/{channel}\" }\n"
	"    group: \"/{board}\"\n"
	"    layout: stream\n"
	"    channels:\n"
	"      a: { dtype: int16, chunk: 65536, dt: 1e-6 }\n";

/* Frames of /x/a in FILE: their seqs (at most MAX) and first and last
 * samples, checked against what the tests below put in frame k (k + 1). */
static hsize_t file_frames(const char *path, uint64_t *seqs, size_t max)
{
	hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	hid_t samples = H5Dopen2(file, "/x/a", H5P_DEFAULT);
	hid_t seqds = H5Dopen2(file, "/x/a_frame_seq", H5P_DEFAULT);
	hsize_t nsamples = 0, nframes = 0;
	hid_t space = H5Dget_space(samples);
	H5Sget_simple_extent_dims(space, &nsamples, NULL);
	H5Sclose(space);
	space = H5Dget_space(seqds);
	H5Sget_simple_extent_dims(space, &nframes, NULL);
	H5Sclose(space);
	assert_true(nframes <= max);
	assert_int_equal(nsamples, nframes << 16); /* the index covers every sample */
	int16_t *all = malloc(nsamples * sizeof(*all) + 1);
	assert_true(H5Dread(samples, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) >= 0);
	assert_true(H5Dread(seqds, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, seqs) >= 0);
	for (hsize_t f = 0; f < nframes; f++) {
		assert_int_equal(all[f << 16], (int16_t)(seqs[f] + 1));
		assert_int_equal(all[(f << 16) + 65535], (int16_t)(seqs[f] + 1));
	}
	free(all);
	H5Dclose(samples);
	H5Dclose(seqds);
	H5Fclose(file);
	return nframes;
}

/* Frame K of the full-disk tests: FULL_FRAME samples of value K + 1 at
 * T0 + K s, sequence number K, appended to channel 0 of G. */
enum { FULL_FRAME = 1 << 16 };

static int append_frame(struct fixture *fx, struct h5w_group *g, uint64_t k)
{
	static int16_t frame[FULL_FRAME];
	for (size_t i = 0; i < FULL_FRAME; i++)
		frame[i] = (int16_t)(k + 1);
	return h5w_stream_append(fx->engine, g, 0, DTYPE_INT16, frame, FULL_FRAME,
				 T0 + (int64_t)k * SEC, k, &fx->err);
}

/*
 * The file may not grow (a file-size limit at its present size: EFBIG, as a
 * full disk gives ENOSPC), and output.min_free keeps that from HDF5: the
 * engine does not even try the writes. A chunk that cannot be written is
 * kept, and appends return the error while they are held; extents never
 * cover a chunk that is not stored; appends end in -ENOBUFS instead of
 * growing memory. When the limit goes, the first flush stores what was held
 * and closes that file, which then holds every frame accepted before,
 * exactly; the next frame starts a new file.
 */
static void test_min_free_keeps_hdf5_off_a_full_disk(void **state)
{
	(void)state;
	enum { MAX_FRAMES = 65 };
	struct fixture *fx = setup_output("  min_free: 1MiB\n",
					  "limits: { max_buffer: 2MiB, max_frame: 1MiB }\n",
					  INT16_STREAM, 0);
	struct h5w_group *g = group(fx, "x");
	bool accepted[MAX_FRAMES] = {false};
	uint64_t k = 0;
	struct h5w_stats st;
	for (; k < 4; k++) {
		assert_int_equal(append_frame(fx, g, k), 0);
		accepted[k] = true;
	}
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_false(st.full);
	struct stat sb;
	assert_int_equal(stat(st.file_name, &sb), 0);
	/* the file may not grow: every new chunk write fails */
	struct rlimit old;
	limit_file_size(&old, (rlim_t)sb.st_size);
	int rc = 0, first_error = 0;
	for (; k < MAX_FRAMES - 1 && rc != -ENOBUFS; k++) {
		rc = append_frame(fx, g, k);
		if (rc && !first_error) {
			first_error = rc;
			assert_non_null(strstr(fx->err.message, "writing chunk 4 of /x/a"));
			/* the reserve: refused before HDF5 saw anything */
			assert_non_null(strstr(fx->err.message, "output.min_free"));
			assert_non_null(strstr(fx->err.message, "file-size limit"));
			assert_null(strstr(fx->err.message, "(HDF5:"));
		}
		accepted[k] = rc != -ENOBUFS;
	}
	assert_int_equal(first_error, -EFBIG);
	assert_int_equal(rc, -ENOBUFS); /* bounded: the caller must slow down */
	h5w_get_stats(fx->engine, &st);
	assert_true(st.full);
	assert_true(st.buffered_bytes <= 2u << 20);
	assert_true(h5w_flush(fx->engine, &fx->err) < 0);
	assert_int_equal(h5w_roll(fx->engine, &fx->err), -ENOBUFS); /* would lose them */
	char full_file[sizeof(st.file_name)];
	snprintf(full_file, sizeof(full_file), "%s", st.file_name);
	/* space is back: a flush stores what was held and closes the file */
	lift_file_size_limit(&old);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_false(st.full);
	assert_false(st.file_open);
	assert_int_equal(st.full_episodes, 1);
	/* what was held (2 MiB) is gone; buffers for reuse may stay: 8 whole
	 * chunks of /x/a and the outputs of compressed index chunks */
	assert_true(st.buffered_bytes <= (1u << 20) + (64u << 10));
	/* the refused frame, offered again, starts a new file (at the flush) */
	assert_int_equal(append_frame(fx, g, k), 0);
	uint64_t next = k++;
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_string_not_equal(st.file_name, full_file);
	rc = h5w_close(fx->engine, &fx->err);
	fx->engine = NULL;
	assert_int_equal(rc, 0);

	uint64_t seqs[MAX_FRAMES];
	hsize_t nframes = file_frames(full_file, seqs, MAX_FRAMES);
	uint64_t want = 0;
	for (uint64_t j = 0; j < next; j++)
		if (accepted[j])
			assert_int_equal(seqs[want++], j);
	assert_int_equal(nframes, want);
	assert_int_equal(file_frames(st.file_name, seqs, MAX_FRAMES), 1);
	assert_int_equal(seqs[0], next);
	teardown_fx(fx);
}

/*
 * Closing on a full disk (the recorder stopping before space returns): the
 * reserve of output.min_free lets the close write its metadata, what could
 * not be stored is lost (the close says so), and the file is valid, with a
 * frame index that covers exactly the samples stored, no more, no less.
 */
static void test_close_on_a_full_disk_keeps_the_file_valid(void **state)
{
	(void)state;
	enum { MAX_FRAMES = 65 };
	struct fixture *fx = setup_output("  min_free: 1MiB\n",
					  "limits: { max_buffer: 2MiB, max_frame: 1MiB }\n",
					  INT16_STREAM, 0);
	struct h5w_group *g = group(fx, "x");
	uint64_t k = 0;
	struct h5w_stats st;
	for (; k < 2; k++)
		assert_int_equal(append_frame(fx, g, k), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	struct stat sb;
	assert_int_equal(stat(st.file_name, &sb), 0);
	/* room for the reserve and about three more chunks */
	struct rlimit old;
	limit_file_size(&old, (rlim_t)sb.st_size + (1 << 20) + 3 * 2 * FULL_FRAME + 4096);
	int rc = 0;
	for (; k < MAX_FRAMES - 1 && rc != -ENOBUFS; k++) {
		rc = append_frame(fx, g, k);
	}
	assert_int_equal(rc, -ENOBUFS);
	h5w_get_stats(fx->engine, &st);
	assert_true(st.full);
	rc = h5w_close(fx->engine, &fx->err); /* the limit is still there */
	fx->engine = NULL;
	lift_file_size_limit(&old);
	assert_int_equal(rc, -EFBIG);
	uint64_t seqs[MAX_FRAMES];
	hsize_t nframes = file_frames(st.file_name, seqs, MAX_FRAMES); /* exact tiling */
	assert_true(nframes > 2); /* frames stored after the limit came are indexed too */
	for (hsize_t f = 0; f < nframes; f++)
		assert_int_equal(seqs[f], f);
	teardown_fx(fx);
}

/*
 * Without the reserve (min_free 0) HDF5 itself meets the error, and after a
 * failed write its view of the file is in doubt: the next flush ends the
 * file, without writing to it again. It holds exactly the frames of its
 * last good flush, what came after is counted lost (so the recorder ACKs
 * none of it), and the next frame starts a new file.
 */
static void test_hdf5_write_error_ends_the_file(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("  min_free: 0B\n",
					  "limits: { max_buffer: 2MiB, max_frame: 1MiB }\n",
					  INT16_STREAM, 0);
	struct h5w_group *g = group(fx, "x");
	uint64_t k = 0;
	struct h5w_stats st;
	for (; k < 4; k++)
		assert_int_equal(append_frame(fx, g, k), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	char first_file[sizeof(st.file_name)];
	snprintf(first_file, sizeof(first_file), "%s", st.file_name);
	struct stat sb;
	assert_int_equal(stat(first_file, &sb), 0);
	struct rlimit old;
	limit_file_size(&old, (rlim_t)sb.st_size);
	int rc = append_frame(fx, g, k++);
	assert_true(rc == -EFBIG || rc == -EIO);
	assert_non_null(strstr(fx->err.message, "writing chunk 4 of /x/a"));
	assert_non_null(strstr(fx->err.message, "(HDF5:"));
	/* the limit goes (as a transient I/O error would): the file ends all the
	 * same, and its close, with room again, leaves it valid */
	lift_file_size_limit(&old);
	rc = h5w_flush(fx->engine, &fx->err);
	assert_true(rc < 0);
	assert_non_null(strstr(fx->err.message, "a write failed since its last flush: the file ends here"));
	h5w_get_stats(fx->engine, &st);
	assert_false(st.file_open);
	assert_int_equal(st.losses, 1);
	assert_int_equal(append_frame(fx, g, k), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_string_not_equal(st.file_name, first_file);
	rc = h5w_close(fx->engine, &fx->err);
	fx->engine = NULL;
	assert_int_equal(rc, 0);
	uint64_t seqs[8];
	assert_int_equal(file_frames(first_file, seqs, 8), 4);
	for (uint64_t j = 0; j < 4; j++)
		assert_int_equal(seqs[j], j);
	assert_int_equal(file_frames(st.file_name, seqs, 8), 1);
	assert_int_equal(seqs[0], k);
	teardown_fx(fx);
}

/*
 * A partial chunk of a compressed dataset that the flush may not store
 * (output.min_free: the file may grow by less than the reserve): small
 * chunks are encoded on the writer thread at a flush, from a padded copy of
 * the buffer. The copy is released once, the rows stay buffered, and the
 * first flush after the limit goes stores them all. (The copy used to be
 * freed twice: glibc aborted h5recd on a full disk.)
 */
static void test_unstored_partial_chunk_is_kept_once(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("  min_free: 1MiB\n", "",
		"streams:\n"
		"  - name: adc\n"
		"    match: { key: \"{board}/{channel}\" }\n"
		"    group: \"/{board}\"\n"
		"    layout: stream\n"
		"    channels:\n"
		"      a: { dtype: int16, chunk: 4096, dt: 1e-6, compression: deflate }\n", 0);
	struct h5w_group *g = group(fx, "x");
	enum { ROWS = 1000, NFRAMES = 5 }; /* random, as compressed as raw */
	static int16_t frames[NFRAMES][ROWS];
	uint32_t x = 12345;
	for (size_t k = 0; k < NFRAMES; k++)
		for (size_t i = 0; i < ROWS; i++)
			frames[k][i] = (int16_t)((x = x * 1103515245u + 12345u) >> 16);
	assert_int_equal(h5w_stream_append(fx->engine, g, 0, DTYPE_INT16, frames[0], ROWS, T0, 0,
					   &fx->err), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	struct stat sb;
	assert_int_equal(stat(st.file_name, &sb), 0);
	/* room for HDF5's metadata (half the reserve), not for chunks */
	struct rlimit old;
	limit_file_size(&old, (rlim_t)sb.st_size + (768 << 10));
	int failed = 0;
	for (int k = 1; k < NFRAMES; k++) {
		assert_int_equal(h5w_stream_append(fx->engine, g, 0, DTYPE_INT16, frames[k], ROWS,
						   T0 + k * SEC, (uint64_t)k, &fx->err), 0);
		failed += h5w_flush(fx->engine, &fx->err) < 0 &&
			  strstr(fx->err.message, "writing chunk 0 of /x/a");
	}
	lift_file_size_limit(&old);
	assert_int_equal(failed, NFRAMES - 1);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	char name[sizeof(st.file_name)];
	snprintf(name, sizeof(name), "%s", st.file_name);
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;
	hid_t file = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	hid_t ds = H5Dopen2(file, "/x/a", H5P_DEFAULT);
	hid_t space = H5Dget_space(ds);
	hsize_t n = 0;
	H5Sget_simple_extent_dims(space, &n, NULL);
	assert_int_equal(n, NFRAMES * ROWS);
	static int16_t back[NFRAMES * ROWS];
	assert_true(H5Dread(ds, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, frames, sizeof(back));
	H5Sclose(space);
	H5Dclose(ds);
	H5Fclose(file);
	teardown_fx(fx);
}

/* ---- conversion fast paths ---------------------------------------------- */

static H5T_conv_ret_t count_like_the_engine(H5T_conv_except_t type, hid_t src, hid_t dst,
					    void *src_buf, void *dst_buf, void *data)
{
	(void)src, (void)dst, (void)src_buf, (void)dst_buf;
	if (type == H5T_CONV_EXCEPT_RANGE_HI || type == H5T_CONV_EXCEPT_RANGE_LOW ||
	    type == H5T_CONV_EXCEPT_NAN)
		(*(uint64_t *)data)++;
	return H5T_CONV_UNHANDLED;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/* N source values of type FROM at SRC: fast path and H5Tconvert agree bit
 * for bit and in the clipped count. Returns the count. */
static uint64_t compare_with_hdf5(enum dtype from, enum dtype to, const unsigned char *src,
				  size_t n, hid_t dxpl, uint64_t *hdf5_clipped)
{
	size_t fs = dtype_size(from), ts = dtype_size(to);
	unsigned char *fast = calloc(n, ts), *ref = calloc(n, fs > ts ? fs : ts);
	assert_non_null(fast);
	assert_non_null(ref);
	uint64_t clipped = 0;
	*hdf5_clipped = 0;
	h5w_convert_fast(from, to, src, n, fast, &clipped);
	memcpy(ref, src, n * fs);
	assert_true(H5Tconvert(h5w_file_type(NULL, from), h5w_file_type(NULL, to), n, ref, NULL,
				   dxpl) >= 0);
	for (size_t i = 0; i < n; i++) {
		if (memcmp(fast + i * ts, ref + i * ts, ts)) {
			uint64_t in = 0, got = 0, want = 0;
			memcpy(&in, src + i * fs, fs);
			memcpy(&got, fast + i * ts, ts);
			memcpy(&want, ref + i * ts, ts);
			fail_msg("%s -> %s of bits 0x%016llx: 0x%llx, H5Tconvert gives 0x%llx",
				 dtype_name(from), dtype_name(to), (unsigned long long)in,
				 (unsigned long long)got, (unsigned long long)want);
		}
	}
	free(fast);
	free(ref);
	return clipped;
}

/*
 * h5w_pipeline.c encodes chunks exactly as HDF5's filter pipeline does, for
 * every combination the engine declares (shuffle, deflate, LZ4 or szip,
 * Fletcher-32): HDF5 writes a chunk through its own filters, and the bytes
 * it stored (H5Dread_chunk) must be ours, byte for byte. Then our chunk
 * padded with zeros (a partial chunk rewritten in place) must read back
 * through HDF5's pipeline as the data, and a flipped byte must fail the
 * checksum.
 */
static void test_pipeline_matches_hdf5(void **state)
{
	(void)state;
	enum { N = 3000 };
	static const struct h5w_filters cases[] = {
		{.codec = H5W_FILTER_DEFLATE, .level = 4},
		{.shuffle = true, .codec = H5W_FILTER_DEFLATE, .level = 4},
		{.shuffle = true, .codec = H5W_FILTER_DEFLATE, .level = 1, .fletcher32 = true},
		{.codec = H5W_FILTER_LZ4},
		{.shuffle = true, .codec = H5W_FILTER_LZ4, .lz4_block = 1000, .fletcher32 = true},
		{.fletcher32 = true},
		{.shuffle = true},
		/* szip: coding and pixels per block; the rest per dtype below */
		{.codec = H5W_FILTER_SZIP, .szip = {H5_SZIP_NN_OPTION_MASK, 16}},
		{.codec = H5W_FILTER_SZIP, .szip = {H5_SZIP_EC_OPTION_MASK, 32}, .fletcher32 = true},
		{.codec = H5W_FILTER_SZIP, .szip = {H5_SZIP_NN_OPTION_MASK, 8}, .fletcher32 = true},
	};
	static const enum dtype types[] = {DTYPE_INT16, DTYPE_FLOAT32, DTYPE_INT64, DTYPE_INT8};
	struct h5w_encoder enc = {0};
	assert_int_equal(h5z_lz4_register(), 0);
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	H5Pset_fapl_core(fapl, 1 << 20, 0);
	hid_t file = H5Fcreate("pipeline.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	assert_true(file >= 0);
	unsigned char *raw = malloc(N * 8), *ours = malloc(N * 8 + 4096),
		      *theirs = malloc(N * 8 + 4096), *back = malloc(N * 8);
	uint64_t rng = 7;
	int made = 0;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			struct h5w_filters szip = cases[c];
			const struct h5w_filters *f = &szip;
			size_t elem = dtype_size(types[t]), len = N * elem;
			if (f->codec == H5W_FILTER_SZIP)
				h5w_szip_params(cases[c].szip[0], cases[c].szip[1], elem, N, 1,
						szip.szip);
			for (size_t i = 0; i < len; i++) /* smooth low bytes, noisy high */
				raw[i] = (unsigned char)(i % elem ? splitmix(&rng) % 3 : i / elem / 7);
			hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
			hsize_t chunk = N, dims = 2 * N, none = 0;
			H5Pset_chunk(dcpl, 1, &chunk);
			if (f->shuffle)
				H5Pset_shuffle(dcpl);
			if (f->codec == H5W_FILTER_DEFLATE)
				H5Pset_deflate(dcpl, (unsigned)f->level);
			if (f->codec == H5W_FILTER_LZ4) {
				unsigned cd[1] = {f->lz4_block};
				H5Pset_filter(dcpl, H5LZ4_FILTER_ID, H5Z_FLAG_MANDATORY, 1, cd);
			}
			if (f->codec == H5W_FILTER_SZIP)
				H5Pset_szip(dcpl, cases[c].szip[0], cases[c].szip[1]);
			if (f->fletcher32)
				H5Pset_fletcher32(dcpl);
			hid_t space = H5Screate_simple(1, &dims, NULL);
			hid_t type = H5Tcopy(types[t] == DTYPE_INT16   ? H5T_STD_I16LE
					     : types[t] == DTYPE_FLOAT32 ? H5T_IEEE_F32LE
					     : types[t] == DTYPE_INT64	 ? H5T_STD_I64LE
									 : H5T_STD_I8LE);
			char name[32];
			snprintf(name, sizeof(name), "d%d", made++);
			hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
			hid_t mspace = H5Screate_simple(1, &chunk, NULL);
			H5Sselect_hyperslab(space, H5S_SELECT_SET, &none, NULL, &chunk, NULL);
			assert_true(H5Dwrite(ds, type, mspace, space, H5P_DEFAULT, raw) >= 0);
			uint32_t mask = 1;
			hsize_t stored = 0;
			assert_true(H5Dget_chunk_storage_size(ds, &none, &stored) >= 0);
			assert_true(H5Dread_chunk(ds, H5P_DEFAULT, &none, &mask, theirs) >= 0);
			assert_int_equal(mask, 0);
			size_t n, tail = f->fletcher32 ? 4 : 0;
			assert_int_equal(h5w_pipeline_encode(&enc, f, raw, len, elem, ours,
							     h5w_pipeline_bound(f, len), &n), 0);
			size_t size = h5w_pipeline_finish(f, ours, n, n);
			if (size != stored || memcmp(ours, theirs, size))
				fail_msg("case %zu, %s: %zu bytes, HDF5 stored %llu (%s)", c,
					 dtype_name(types[t]), size, (unsigned long long)stored,
					 size == stored ? "bytes differ" : "sizes differ");
			/* padded to more than it needs, as a chunk kept in place (only
			 * compressed chunks are: their decoders stop at their end) */
			size_t pad = f->codec == H5W_FILTER_NONE ? 0 : 300;
			size = h5w_pipeline_finish(f, ours, n, n + pad);
			assert_int_equal(size, n + pad + tail);
			hsize_t second = N;
			assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, &second, size, ours) >= 0);
			H5Sselect_hyperslab(space, H5S_SELECT_SET, &second, NULL, &chunk, NULL);
			assert_true(H5Dread(ds, type, mspace, space, H5P_DEFAULT, back) >= 0);
			assert_memory_equal(back, raw, len);
			if (f->fletcher32) { /* the checksum covers the padding */
				ours[n + pad / 3] ^= 1;
				assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, &second, size, ours) >= 0);
				H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
				assert_true(H5Dread(ds, type, mspace, space, H5P_DEFAULT, back) < 0);
			}
			H5Sclose(mspace);
			H5Sclose(space);
			H5Tclose(type);
			H5Pclose(dcpl);
			H5Dclose(ds);
		}
	}
	H5Fclose(file);
	H5Pclose(fapl);
	h5w_encoder_free(&enc);
	free(raw);
	free(ours);
	free(theirs);
	free(back);
}

/* The szip parameters the engine encodes with are the ones HDF5 stores in
 * the dataset (H5Z_set_local_szip), for 1-D chunks and records' 2-D ones,
 * short and long scanlines, every element size and block. */
static void test_szip_params_match_hdf5(void **state)
{
	(void)state;
	static const hsize_t shapes[][2] = {{3000, 1}, {100000, 1}, {40, 1}, {10, 5},
					     {4, 100}, {2, 8000}, {1000, 3}, {3, 4096}};
	const hid_t types[] = {H5T_STD_I8LE, H5T_STD_I16LE, H5T_IEEE_F32LE,
			       H5T_IEEE_F64LE};
	static const unsigned blocks[] = {2, 8, 16, 32};
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	H5Pset_fapl_core(fapl, 1 << 20, 0);
	hid_t file = H5Fcreate("szip_params.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	assert_true(file >= 0);
	int made = 0;
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
				const hsize_t *chunk = shapes[s];
				int rank = chunk[1] > 1 ? 2 : 1;
				unsigned coding = b % 2 ? H5_SZIP_EC_OPTION_MASK
							: H5_SZIP_NN_OPTION_MASK;
				if (chunk[0] * chunk[1] < blocks[b])
					continue; /* refused by the schema */
				hsize_t dims[2] = {0, chunk[1]}, max[2] = {H5S_UNLIMITED, chunk[1]};
				hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
				H5Pset_chunk(dcpl, rank, chunk);
				H5Pset_szip(dcpl, coding, blocks[b]);
				hid_t space = H5Screate_simple(rank, dims, max);
				char name[32];
				snprintf(name, sizeof(name), "d%d", made++);
				hid_t ds = H5Dcreate2(file, name, types[t], space, H5P_DEFAULT, dcpl,
						      H5P_DEFAULT);
				assert_true(ds >= 0);
				hid_t created = H5Dget_create_plist(ds);
				unsigned flags, theirs[8], ours[H5W_SZIP_NPARMS];
				size_t n = 8;
				assert_true(H5Pget_filter_by_id2(created, H5Z_FILTER_SZIP, &flags, &n,
								 theirs, 0, NULL, NULL) >= 0);
				h5w_szip_params(coding, blocks[b], H5Tget_size(types[t]), chunk[0],
						chunk[1], ours);
				assert_int_equal(n, H5W_SZIP_NPARMS);
				for (size_t i = 0; i < H5W_SZIP_NPARMS; i++)
					if (ours[i] != theirs[i])
						fail_msg("chunk %llux%llu, %zu bytes, block %u: "
							 "parameter %zu is %u, HDF5 %u",
							 (unsigned long long)chunk[0],
							 (unsigned long long)chunk[1],
							 H5Tget_size(types[t]), blocks[b], i, ours[i],
							 theirs[i]);
				H5Pclose(created);
				H5Dclose(ds);
				H5Sclose(space);
				H5Pclose(dcpl);
			}
	H5Fclose(file);
	H5Pclose(fapl);
}

/* A chunk szip cannot shrink (noise in every bit) grows a little; HDF5
 * would store it unfiltered, the engine stores the grown encoding, and
 * HDF5 decodes it all the same, with its checksum. Noise is szip's worst
 * case, so it also pins h5w_pipeline_bound: every element size, block and
 * coding fits it (the encoder fails otherwise), and it stays within the
 * option id's share (3 bits per block of bytes, 4 of 16-bit samples). */
static void test_szip_grown_chunk_reads_back(void **state)
{
	(void)state;
	enum { N = 8192 }; /* whole scanlines: no padding in the bound */
	const hid_t types[] = {H5T_STD_U8LE, H5T_STD_I16LE, H5T_IEEE_F32LE, H5T_STD_I64LE};
	static const unsigned blocks[] = {2, 8, 32};
	struct h5w_encoder enc = {0};
	unsigned char *raw = malloc(N * 8), *out = malloc(N * 10), *back = malloc(N * 8);
	uint64_t rng = 11;
	for (size_t i = 0; i < N * 8; i++)
		raw[i] = (unsigned char)splitmix(&rng);
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	H5Pset_fapl_core(fapl, 1 << 22, 0);
	hid_t file = H5Fcreate("szip_grown.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	int made = 0;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++)
			for (unsigned coding = H5_SZIP_EC_OPTION_MASK; coding <= H5_SZIP_NN_OPTION_MASK;
			     coding += H5_SZIP_NN_OPTION_MASK - H5_SZIP_EC_OPTION_MASK) {
				size_t elem = H5Tget_size(types[t]), len = N * elem, n;
				struct h5w_filters f = {.codec = H5W_FILTER_SZIP, .fletcher32 = true};
				h5w_szip_params(coding, blocks[b], elem, N, 1, f.szip);
				size_t cap = h5w_pipeline_bound(&f, len);
				double id = elem == 2 ? 4 : 3, bits = elem == 2 ? 16 : 8;
				assert_true((double)cap <= (double)len * (1 + id / (blocks[b] * bits)) + 16);
				assert_int_equal(h5w_pipeline_encode(&enc, &f, raw, len, elem, out, cap - 4,
								     &n), 0);
				assert_true(n > len + 4);
				size_t size = h5w_pipeline_finish(&f, out, n, n);
				hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
				hsize_t chunk = N, zero = 0;
				H5Pset_chunk(dcpl, 1, &chunk);
				H5Pset_szip(dcpl, coding, blocks[b]);
				H5Pset_fletcher32(dcpl);
				hid_t space = H5Screate_simple(1, &chunk, NULL);
				char name[32];
				snprintf(name, sizeof(name), "d%d", made++);
				hid_t ds = H5Dcreate2(file, name, types[t], space, H5P_DEFAULT, dcpl,
						      H5P_DEFAULT);
				assert_true(ds >= 0);
				assert_true(H5Dwrite_chunk(ds, H5P_DEFAULT, 0, &zero, size, out) >= 0);
				assert_true(H5Dread(ds, types[t], H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
				assert_memory_equal(back, raw, len);
				H5Dclose(ds);
				H5Sclose(space);
				H5Pclose(dcpl);
			}
	H5Fclose(file);
	H5Pclose(fapl);
	h5w_encoder_free(&enc);
	free(raw);
	free(out);
	free(back);
}

/* The slots a partial chunk takes as it fills: geometric while young, then
 * the whole chunk foreseen; a write that fits stays where it is. */
static void test_pipeline_slots(void **state)
{
	(void)state;
	size_t max = 20000;
	assert_int_equal(h5w_pipeline_slot(20, 0, max, 1, 4096, false), 64);
	assert_int_equal(h5w_pipeline_slot(100, 0, max, 1, 4096, false), 200);
	assert_int_equal(h5w_pipeline_slot(200, 200, max, 3, 4096, false), 200);
	assert_int_equal(h5w_pipeline_slot(300, 200, max, 5, 4096, false), 600);
	/* still under a quarter: doubling */
	assert_int_equal(h5w_pipeline_slot(1000, 600, max, 1000, 4096, false), 2000);
	/* from a quarter of the chunk on: foreseen whole size + 1/8 */
	assert_int_equal(h5w_pipeline_slot(2000, 600, max, 1024, 4096, false), 9000);
	assert_int_equal(h5w_pipeline_slot(8500, 9000, max, 4000, 4096, false), 9000);
	/* never more than the most an encoding can take */
	assert_int_equal(h5w_pipeline_slot(5000, 0, max, 1100, 4096, false), max);
	/* a final chunk that does not fit takes its own size */
	assert_int_equal(h5w_pipeline_slot(9100, 9000, max, 4096, 4096, true), 9100);
	assert_int_equal(h5w_pipeline_slot(8000, 9000, max, 4096, 4096, true), 9000);
}

static void test_conversion_fast_paths_match_hdf5(void **state)
{
	(void)state;
	uint64_t hdf5_clipped = 0, rng = 42;
	hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
	assert_true(dxpl >= 0);
	assert_true(H5Pset_type_conv_cb(dxpl, count_like_the_engine, &hdf5_clipped) >= 0);
	/* edge values of every integer width, as int64 and uint64 bit patterns */
	static const int64_t int_edges[] = {
		0, 1, -1, 2, -2, 126, 127, 128, 129, -127, -128, -129, 254, 255, 256,
		32766, 32767, 32768, -32767, -32768, -32769, 65534, 65535, 65536,
		INT32_MAX - 1, INT32_MAX, (int64_t)INT32_MAX + 1, INT32_MIN + 1, INT32_MIN,
		(int64_t)INT32_MIN - 1, (int64_t)UINT32_MAX - 1, UINT32_MAX, (int64_t)UINT32_MAX + 1,
		(1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 24) + 3, -(1 << 24) - 1,
		(INT64_C(1) << 53) + 1, (INT64_C(1) << 53) - 1, -(INT64_C(1) << 53) - 1,
		(INT64_C(1) << 62) + 1, INT64_MAX - 1, INT64_MAX, INT64_MIN + 1, INT64_MIN,
		INT64_MAX - 511, INT64_MAX - 512, INT64_MAX - 1023,
	};
	size_t nedges = sizeof(int_edges) / sizeof(int_edges[0]);
	enum { RANDOM = 1 << 18, RANDOM_F64 = 4 << 20 };
	size_t cap = (nedges + RANDOM_F64 + 64) * 8;
	unsigned char *src = malloc(cap);
	assert_non_null(src);
	size_t pairs = 0;
	for (int f = DTYPE_INT8; f <= DTYPE_FLOAT64; f++) {
		for (int t = DTYPE_INT8; t <= DTYPE_FLOAT64; t++) {
			enum dtype from = (enum dtype)f, to = (enum dtype)t;
			if (!h5w_convert_has_fast(from, to))
				continue;
			pairs++;
			size_t fs = dtype_size(from), n = 0;
			if (from == DTYPE_FLOAT64) {
				static const double f64_edges[] = {
					0.0, -0.0, 1.0, -1.0, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN,
					FLT_TRUE_MIN, FLT_TRUE_MIN / 2, FLT_TRUE_MIN / 3,
					(double)FLT_MAX * (1 + 0x1p-25), (double)FLT_MAX * (1 + 0x1p-24),
					-(double)FLT_MAX * (1 + 0x1p-25), 0x1p128, -0x1p128, DBL_MAX,
					-DBL_MAX, DBL_MIN, 5e-324, HUGE_VAL, -HUGE_VAL, NAN, -NAN,
					1.0 + 0x1p-24, 1.0 + 0x1p-23 + 0x1p-24, 16777217.0, 0.1,
				};
				for (size_t i = 0; i < sizeof(f64_edges) / sizeof(*f64_edges); i++)
					memcpy(src + 8 * n++, &f64_edges[i], 8);
				static const uint64_t nan_bits[] = {
					UINT64_C(0x7FF0000000000001), UINT64_C(0x7FF8000000000001),
					UINT64_C(0xFFF0000000000001), UINT64_C(0x7FFFFFFFFFFFFFFF),
					UINT64_C(0xFFFFFFFFFFFFFFFF), UINT64_C(0x7FF4000000000000),
				};
				for (size_t i = 0; i < sizeof(nan_bits) / sizeof(*nan_bits); i++)
					memcpy(src + 8 * n++, &nan_bits[i], 8);
				for (size_t i = 0; i < RANDOM_F64; i++) {
					uint64_t bits = splitmix(&rng);
					if (i % 2) { /* half of them in and near float range */
						double v = (double)(int64_t)bits * 0x1p-63 *
							   ldexp(1.0, (int)(bits % 300) - 150);
						memcpy(&bits, &v, 8);
					}
					memcpy(src + 8 * n++, &bits, 8);
				}
			} else {
				for (size_t i = 0; i < nedges; i++, n++)
					memcpy(src + fs * n, &int_edges[i], fs);
				for (size_t i = 0; i < RANDOM; i++, n++) {
					uint64_t bits = splitmix(&rng);
					bits >>= bits & 63; /* every magnitude */
					memcpy(src + fs * n, &bits, fs);
				}
			}
			uint64_t clipped = compare_with_hdf5(from, to, src, n, dxpl, &hdf5_clipped);
			if (clipped != hdf5_clipped)
				fail_msg("%s -> %s: %llu clipped, H5Tconvert counts %llu",
					 dtype_name(from), dtype_name(to), (unsigned long long)clipped,
					 (unsigned long long)hdf5_clipped);
		}
	}
	assert_true(h5w_convert_has_fast(DTYPE_FLOAT64, DTYPE_FLOAT32));
	assert_true(h5w_convert_has_fast(DTYPE_INT64, DTYPE_INT16));
	assert_true(pairs > 60);
	free(src);
	H5Pclose(dxpl);
}

static int group_monotonic_attr(const char *path, const char *group)
{
	hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	hid_t attr = H5Aopen_by_name(file, group, "time_monotonic", H5P_DEFAULT, H5P_DEFAULT);
	int value = -1;
	assert_true(attr >= 0);
	assert_true(H5Aread(attr, H5T_NATIVE_INT, &value) >= 0);
	H5Aclose(attr);
	H5Fclose(file);
	return value;
}

static int table_row(struct fixture *fx, struct h5w_group *g, int64_t t)
{
	struct h5w_value v = {.index = 0, .dtype = DTYPE_FLOAT64, .v.f64 = 1.0};
	return h5w_table_append(fx->engine, g, t, &v, 1, &fx->err);
}

/*
 * A row not later than an earlier row of its time axis (back in time, or
 * a repeated time) is counted for its group and clears time_monotonic in
 * that file only; a row outside output.time_window around its receive
 * time is counted and, with reject, not stored.
 */
static void test_time_order_and_window(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("  time_window: { past: 1h, future: 1h, reject: true }\n",
					  "", "streams:\n  - name: lab\n"
					  "    match: { measurement: lab }\n    group: \"/{board}\"\n"
					  "    channels:\n      a: {}\n", 0);
	struct h5w_group *a = group(fx, "a"), *b = group(fx, "b");
	struct h5w_stats st;
	struct h5w_time_groups tg;
	char first[4096], second[4096];
	h5w_arrival(fx->engine, T0);
	assert_int_equal(table_row(fx, a, T0), 0);
	assert_int_equal(table_row(fx, a, T0 + 2 * SEC), 0);
	assert_int_equal(table_row(fx, a, T0 + SEC), 0);     /* back */
	assert_int_equal(table_row(fx, a, T0 + 2 * SEC), 0); /* repeated */
	assert_int_equal(table_row(fx, b, T0), 0);
	assert_int_equal(table_row(fx, b, T0 - 2 * 3600 * SEC), 0); /* rejected */
	assert_int_equal(table_row(fx, b, T0 + 2 * 3600 * SEC), 0); /* rejected */
	assert_int_equal(table_row(fx, b, T0 + SEC), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.time.not_increasing, 2);
	assert_int_equal(st.time.implausible, 2);
	assert_int_equal(st.time.rejected, 2);
	h5w_get_time_groups(fx->engine, &tg);
	assert_int_equal(tg.n, 2);
	assert_string_equal(tg.group[0].path, "/a");
	assert_int_equal(tg.group[0].counts.not_increasing, 2);
	assert_string_equal(tg.group[1].path, "/b");
	assert_int_equal(tg.group[1].counts.rejected, 2);
	assert_int_equal(tg.unlisted, 0);
	assert_int_equal(st.samples_written, 6);
	assert_int_equal(h5w_roll(fx->engine, &fx->err), 0);
	/* a new file judges its own rows: earlier than the last file's is fine */
	assert_int_equal(table_row(fx, a, T0 - SEC), 0);
	assert_int_equal(table_row(fx, b, T0), 0);
	assert_int_equal(table_row(fx, b, T0), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.time.not_increasing, 3);
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;
	snprintf(first, sizeof(first), "%s/u-0000.h5", fx->dir);
	snprintf(second, sizeof(second), "%s/u-0001.h5", fx->dir);
	assert_int_equal(group_monotonic_attr(first, "/a"), 0);
	assert_int_equal(group_monotonic_attr(first, "/b"), 1);
	assert_int_equal(group_monotonic_attr(second, "/a"), 1);
	assert_int_equal(group_monotonic_attr(second, "/b"), 0);
	teardown_fx(fx);
}

static void test_many_slow_groups_fit_the_buffer(void **state)
{
	(void)state;
	/* 1500 stations, 3 datasets each with 512 KiB chunks: whole-chunk
	 * buffers would need 2.3 GB; buffers that grow with their rows fit */
	static const char *body =
		"streams:\n"
		"  - name: weather\n"
		"    match: { measurement: weather }\n"
		"    group: \"/{board}\"\n"
		"    layout: table\n"
		"    defaults: { dtype: float64, chunk: 65536 }\n"
		"    channels: { t: {}, p: {} }\n";
	struct fixture *fx = setup_with("limits: { max_buffer: 64MiB }\n", body, 0);
	struct h5w_stats st;
	char name[16];
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 1500; i++) {
			snprintf(name, sizeof(name), "s%d", i);
			struct h5w_value v[2] = {{.index = 0, .dtype = DTYPE_FLOAT64, .v.f64 = i},
						 {.index = 1, .dtype = DTYPE_FLOAT64, .v.f64 = -i}};
			assert_int_equal(h5w_table_append(fx->engine, group(fx, name),
							  T0 + round * SEC, v, 2, &fx->err), 0);
		}
	}
	/* every partial chunk is written whole (padded) at a flush: 2.3 GB here,
	 * which is why this test flushes once */
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_true(st.buffered_bytes <= 64u << 20);
	assert_int_equal(st.groups, 1500);
	teardown_fx(fx);
}

/* ---- events inside a stream ------------------------------------------------ */

/* Two channels of a continuous stream with an event table. */
static const char *const EVENT_STREAM =
	"streams:\n"
	"  - name: adc\n"
	"    match: { key: \"{board}/{channel}\" }\n"
	"    group: \"/{board}\"\n"
	"    layout: stream\n"
	"    events: true\n"
	"    record_timeout: 2s\n"
	"    event_fields: { mass: float32, hits: int32 }\n"
	"    channels:\n"
	"      a: { dtype: int16, chunk: 64, dt: 1e-6 }\n"
	"      b: { dtype: float32, chunk: 64, dt: 1e-6, compression: deflate }\n";

/* N values of the 1-D dataset PATH of FILE as TYPE into OUT (at most MAX);
 * returns its length. */
static hsize_t read_column(hid_t file, const char *path, hid_t type, void *out, hsize_t max)
{
	hid_t ds = H5Dopen2(file, path, H5P_DEFAULT);
	if (ds < 0)
		fail_msg("no dataset %s", path);
	hid_t space = H5Dget_space(ds);
	hsize_t n = 0;
	H5Sget_simple_extent_dims(space, &n, NULL);
	assert_true(n <= max);
	if (n)
		assert_true(H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0);
	H5Sclose(space);
	H5Dclose(ds);
	return n;
}

static int send_event(struct fixture *fx, struct h5w_group *g, uint64_t id, int64_t t, float mass)
{
	struct h5w_value v[2] = {{.index = 0, .dtype = DTYPE_FLOAT64, .v.f64 = mass},
				 {.index = 1, .dtype = DTYPE_INT64, .v.i64 = (int64_t)id * 10}};
	return h5w_record_fields(fx->engine, g, id, t, v, 2, &fx->err);
}

/*
 * A DATA frame with an event id marks its samples as the event's, in any
 * order with its EVENT frame and other events; event_id 0 is no event. The
 * table holds per channel the first sample and the count up to the end of
 * the event's last frame, the EVENT frame's time and fields, and whether
 * the EVENT frame came (state 1) or not (2, fields fill). The samples stay
 * a continuous stream: a late frame of a closed event is stored all the
 * same, outside the event, and its late EVENT frame is refused.
 */
static void test_stream_events_table(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("", EVENT_STREAM, 0);
	struct h5w_group *g = group(fx, "x");
	static int16_t a[400];
	static float b[400];
	for (int i = 0; i < 400; i++) {
		a[i] = (int16_t)i;
		b[i] = (float)i / 2;
	}
	struct h5w_engine_frame {
		size_t channel;
		uint64_t event, n;
	} frames[] = {
		{0, 0, 100}, /* a 0..100: no event */
		{0, 5, 50},  /* a 100..150: event 5 */
		{1, 5, 30},  /* b 0..30: event 5 (its EVENT frame comes later) */
		{1, 6, 20},  /* b 30..50: event 6 (EVENT first, below) */
		{0, 5, 10},  /* a 150..160: event 5 goes on */
		{0, 7, 40},  /* a 160..200: event 7, whose EVENT frame never comes */
		{1, 0, 5},   /* b 50..55 */
	};
	size_t at[2] = {0, 0};
	assert_int_equal(send_event(fx, g, 6, T0 + 60, 0.5f), 0);
	for (size_t k = 0; k < sizeof(frames) / sizeof(frames[0]); k++) {
		size_t c = frames[k].channel;
		const void *data = c ? (const void *)(b + at[c]) : (const void *)(a + at[c]);
		assert_int_equal(h5w_stream_append_event(fx->engine, g, c,
							 c ? DTYPE_FLOAT32 : DTYPE_INT16, data,
							 frames[k].n, T0 + (int64_t)k, k,
							 frames[k].event, &fx->err), 0);
		at[c] += frames[k].n;
	}
	assert_int_equal(send_event(fx, g, 5, T0 + 50, 1.5f), 0);
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.events_closed, 0);
	/* record_timeout after their first frames: every event closes */
	assert_int_equal(h5w_tick(fx->engine, T0 + 3 * SEC, T0 + 3 * SEC, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.events_closed, 3);
	assert_int_equal(st.events_without_fields, 1);
	/* late: the samples are kept, the event is not extended; a late EVENT
	 * frame is refused */
	assert_int_equal(h5w_stream_append_event(fx->engine, g, 0, DTYPE_INT16, a + 200, 8,
						 T0 + 100, 100, 7, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.event_frames_late, 1);
	assert_int_equal(send_event(fx, g, 7, T0 + 70, 2.5f), -ESTALE);
	assert_non_null(strstr(fx->err.message, "event 7 already closed"));
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;

	char path[128];
	snprintf(path, sizeof(path), "%s/u-0000.h5", fx->dir);
	hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	uint64_t id[8], as[8], ac[8], bs[8], bc[8];
	int64_t t[8];
	uint8_t st8[8];
	float mass[8];
	int32_t hits[8];
	assert_int_equal(read_column(file, "/x/event_id", H5T_NATIVE_UINT64, id, 8), 3);
	read_column(file, "/x/event_time", H5T_NATIVE_INT64, t, 8);
	read_column(file, "/x/event_state", H5T_NATIVE_UINT8, st8, 8);
	read_column(file, "/x/a_event_start", H5T_NATIVE_UINT64, as, 8);
	read_column(file, "/x/a_event_count", H5T_NATIVE_UINT64, ac, 8);
	read_column(file, "/x/b_event_start", H5T_NATIVE_UINT64, bs, 8);
	read_column(file, "/x/b_event_count", H5T_NATIVE_UINT64, bc, 8);
	assert_int_equal(read_column(file, "/x/mass", H5T_NATIVE_FLOAT, mass, 8), 3);
	assert_int_equal(read_column(file, "/x/hits", H5T_NATIVE_INT32, hits, 8), 3);
	/* rows in the order events began: 6 (its EVENT frame), 5, 7 */
	uint64_t want_id[] = {6, 5, 7}, want_as[] = {0, 100, 160}, want_ac[] = {0, 60, 40};
	uint64_t want_bs[] = {30, 0, 0}, want_bc[] = {20, 30, 0};
	int64_t want_t[] = {T0 + 60, T0 + 50, T0 + 5};
	uint8_t want_state[] = {H5W_RECORD_COMPLETE, H5W_RECORD_COMPLETE, H5W_RECORD_INCOMPLETE};
	for (int r = 0; r < 3; r++) {
		assert_int_equal(id[r], want_id[r]);
		assert_true(t[r] == want_t[r]);
		assert_int_equal(st8[r], want_state[r]);
		assert_int_equal(as[r], want_as[r]);
		assert_int_equal(ac[r], want_ac[r]);
		assert_int_equal(bs[r], want_bs[r]);
		assert_int_equal(bc[r], want_bc[r]);
	}
	assert_true(mass[0] == 0.5f && mass[1] == 1.5f && isnan(mass[2]));
	assert_true(hits[0] == 60 && hits[1] == 50 && hits[2] == 0);
	/* the samples are the stream, whole: the late frame too */
	int16_t back_a[400];
	float back_b[400];
	assert_int_equal(read_column(file, "/x/a", H5T_NATIVE_INT16, back_a, 400), 208);
	assert_memory_equal(back_a, a, 208 * sizeof(*a));
	assert_int_equal(read_column(file, "/x/b", H5T_NATIVE_FLOAT, back_b, 400), 55);
	assert_memory_equal(back_b, b, 55 * sizeof(*b));
	/* every column is on the table's own time axis */
	hid_t scale = H5Dopen2(file, "/x/event_time", H5P_DEFAULT);
	assert_true(H5DSis_scale(scale) > 0);
	const char *columns[] = {"event_id", "event_state", "a_event_start", "a_event_count",
				 "b_event_start", "b_event_count", "mass", "hits"};
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "/x/%s", columns[i]);
		hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
		assert_true(H5DSis_attached(ds, scale, 0) > 0);
		H5Dclose(ds);
	}
	H5Dclose(scale);
	H5Fclose(file);
	teardown_fx(fx);
}

/*
 * Open events are bounded by max_open_records (the oldest closes, without
 * its fields if they had not come); an event that goes on across a roll
 * has a row in each file, each pointing at that file's samples only.
 */
static void test_stream_events_bounded_and_rolled(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("", EVENT_STREAM, 2);
	struct h5w_group *g = group(fx, "x");
	int16_t a[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	struct h5w_stats st;
	for (uint64_t e = 1; e <= 3; e++)
		assert_int_equal(h5w_stream_append_event(fx->engine, g, 0, DTYPE_INT16, a, 10,
							 T0 + (int64_t)e, e, e, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.events_closed, 1);
	assert_int_equal(h5w_record_close(fx->engine, g, 2, &fx->err), 0);
	assert_int_equal(h5w_record_close(fx->engine, g, 2, &fx->err), -ENOENT);
	/* event 3 is open across the roll */
	assert_int_equal(h5w_roll(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.events_closed, 3);
	assert_int_equal(h5w_stream_append_event(fx->engine, g, 0, DTYPE_INT16, a, 4, T0 + 9, 9, 3,
						 &fx->err), 0);
	assert_int_equal(send_event(fx, g, 3, T0 + 3, 3.0f), 0);
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;

	char path[128];
	uint64_t id[4], start[4], count[4];
	uint8_t states[4];
	snprintf(path, sizeof(path), "%s/u-0000.h5", fx->dir);
	hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	assert_int_equal(read_column(file, "/x/event_id", H5T_NATIVE_UINT64, id, 4), 3);
	read_column(file, "/x/a_event_start", H5T_NATIVE_UINT64, start, 4);
	read_column(file, "/x/a_event_count", H5T_NATIVE_UINT64, count, 4);
	read_column(file, "/x/event_state", H5T_NATIVE_UINT8, states, 4);
	for (int r = 0; r < 3; r++) {
		assert_int_equal(id[r], r + 1);
		assert_int_equal(start[r], 10 * r);
		assert_int_equal(count[r], 10);
		assert_int_equal(states[r], H5W_RECORD_INCOMPLETE);
	}
	H5Fclose(file);
	snprintf(path, sizeof(path), "%s/u-0001.h5", fx->dir);
	file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	assert_int_equal(read_column(file, "/x/event_id", H5T_NATIVE_UINT64, id, 4), 1);
	read_column(file, "/x/a_event_start", H5T_NATIVE_UINT64, start, 4);
	read_column(file, "/x/a_event_count", H5T_NATIVE_UINT64, count, 4);
	read_column(file, "/x/event_state", H5T_NATIVE_UINT8, states, 4);
	assert_int_equal(id[0], 3);
	assert_int_equal(start[0], 0);
	assert_int_equal(count[0], 4);
	assert_int_equal(states[0], H5W_RECORD_COMPLETE);
	H5Fclose(file);
	teardown_fx(fx);
}

/*
 * The event table is stored only as far as the samples its rows point at
 * are: while a samples chunk cannot be written (output.min_free, a
 * file-size limit), the rows of the events in it wait in memory with it,
 * and a flush that stores the chunk stores them.
 */
static void test_stream_event_rows_wait_for_their_samples(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("  min_free: 1MiB\n", "",
		"streams:\n"
		"  - name: adc\n"
		"    match: { key: \"{board}/{channel}\" }\n"
		"    group: \"/{board}\"\n"
		"    layout: stream\n"
		"    events: true\n"
		"    channels:\n"
		"      a: { dtype: int16, chunk: 4096, dt: 1e-6 }\n", 0);
	struct h5w_group *g = group(fx, "x");
	static int16_t frame[1000];
	assert_int_equal(h5w_stream_append_event(fx->engine, g, 0, DTYPE_INT16, frame, 1000, T0,
						 0, 1, &fx->err), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	struct h5w_dset *rows = &g->dsets[g->time_ds], *samples = &g->dsets[g->chan_ds[0]];
	assert_int_equal(rows->extent, 1);
	assert_int_equal(samples->extent, 1000);
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	struct stat sb;
	assert_int_equal(stat(st.file_name, &sb), 0);
	struct rlimit old;
	limit_file_size(&old, (rlim_t)sb.st_size + (768 << 10)); /* metadata, not chunks */
	assert_int_equal(h5w_stream_append_event(fx->engine, g, 0, DTYPE_INT16, frame, 1000,
						 T0 + SEC, 1, 2, &fx->err), 0);
	assert_true(h5w_flush(fx->engine, &fx->err) < 0);
	assert_int_equal(samples->extent, 1000);
	assert_int_equal(rows->nrows, 2);
	assert_int_equal(rows->extent, 1); /* event 2's row waits for its samples */
	for (size_t i = 0; i < g->ndsets; i++)
		if (g->dsets[i].event_table)
			assert_int_equal(g->dsets[i].extent, 1);
	lift_file_size_limit(&old);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	char name[sizeof(st.file_name)];
	snprintf(name, sizeof(name), "%s", st.file_name);
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;
	hid_t file = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	uint64_t id[4], start[4], count[4];
	assert_int_equal(read_column(file, "/x/event_id", H5T_NATIVE_UINT64, id, 4), 2);
	read_column(file, "/x/a_event_start", H5T_NATIVE_UINT64, start, 4);
	read_column(file, "/x/a_event_count", H5T_NATIVE_UINT64, count, 4);
	assert_true(id[1] == 2 && start[1] == 1000 && count[1] == 1000);
	H5Fclose(file);
	teardown_fx(fx);
}

/* One LZ4 records channel /x/a of float32, a record per chunk: the shape
 * pre-compressed waveforms (issue 19) take. */
static const char *const ENCODED_RECORDS =
	"streams:\n"
	"  - name: dust\n"
	"    match: { key: \"{board}/{channel}\" }\n"
	"    group: \"/{board}\"\n"
	"    layout: records\n"
	"    samples: 1000\n"
	"    dt: 1.0e-6\n"
	"    channels:\n"
	"      a: { dtype: float32, compression: lz4, chunk: 1 }\n";

enum { ENCODED_EVENTS = 12 };

struct sent_chunk {
	unsigned char bytes[4096 + 64];
	size_t len;
};

/* Event K's waveform as a sender encodes it (LZ4, one block). */
static void encode_event(struct sent_chunk *c, unsigned k)
{
	float samples[1000];
	for (size_t i = 0; i < 1000; i++)
		samples[i] = (float)(k * 1000 + i % 37);
	assert_int_equal(h5lz4_encode(samples, sizeof(samples), 0, c->bytes, sizeof(c->bytes),
				      &c->len), 0);
}

static int send_encoded(struct fixture *fx, struct h5w_group *g, const struct sent_chunk *sent,
			unsigned k)
{
	struct h5w_encoded c = {.data = sent[k].bytes, .len = sent[k].len, .raw_size = 4000};
	return h5w_record_encoded(fx->engine, g, k + 1, T0 + (int64_t)k * SEC, 0, &c, &fx->err);
}

/* The chunk of DS at OFFSET (first row) is stored as BYTES (LEN), with
 * no filter skipped. */
static void assert_chunk_is(hid_t ds, hsize_t offset, const void *bytes, size_t len)
{
	hsize_t at[2] = {offset, 0}, size = 0;
	uint32_t mask = 1;
	unsigned char *got = malloc(len + 1);
	assert_non_null(got);
	assert_true(H5Dget_chunk_storage_size(ds, at, &size) >= 0);
	assert_int_equal(size, len);
	assert_true(H5Dread_chunk(ds, H5P_DEFAULT, at, &mask, got) >= 0);
	assert_int_equal(mask, 0);
	assert_memory_equal(got, bytes, len);
	free(got);
}

/* The name of an engine's file, as struct h5w_stats holds it. */
typedef char file_name[sizeof(((struct h5w_stats *)0)->file_name)];

/* Flush and close FX's engine; NAME: the file it wrote last. */
static void close_engine(struct fixture *fx, file_name name)
{
	struct h5w_stats st;
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	memcpy(name, st.file_name, sizeof(st.file_name));
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;
}

/* Rows of /x/a in PATH, each checked to be stored exactly as event_id's
 * chunk was sent. */
static hsize_t rows_as_sent(const char *path, const struct sent_chunk *sent)
{
	hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	uint64_t ids[ENCODED_EVENTS];
	hsize_t n = read_column(file, "/x/event_id", H5T_NATIVE_UINT64, ids, ENCODED_EVENTS);
	hid_t ds = H5Dopen2(file, "/x/a", H5P_DEFAULT);
	assert_true(ds >= 0);
	for (hsize_t row = 0; row < n; row++)
		assert_chunk_is(ds, row, sent[ids[row] - 1].bytes, sent[ids[row] - 1].len);
	H5Dclose(ds);
	H5Fclose(file);
	return n;
}

/*
 * Pre-compressed chunks are stored as they came wherever they have to wait:
 * before their group's SWMR file exists (the first records of every file,
 * and after a roll) and while the disk is full. None is decoded and encoded
 * again: every stored chunk is the sender's bytes.
 */
static void test_encoded_chunks_wait_encoded(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("  min_free: 1MiB\n", "", ENCODED_RECORDS, 0);
	struct h5w_group *g = group(fx, "x");
	static struct sent_chunk sent[ENCODED_EVENTS];
	for (unsigned k = 0; k < ENCODED_EVENTS; k++)
		encode_event(&sent[k], k);
	struct h5w_stats st;
	unsigned k = 0;
	for (; k < 3; k++) /* no file yet: they wait for the flush */
		assert_int_equal(send_encoded(fx, g, sent, k), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.chunks_precompressed, 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	for (; k < 6; k++) /* straight into the file */
		assert_int_equal(send_encoded(fx, g, sent, k), 0);
	assert_int_equal(h5w_roll(fx->engine, &fx->err), 0);
	for (; k < 9; k++) /* waiting for the next file */
		assert_int_equal(send_encoded(fx, g, sent, k), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	/* the file may not grow: the chunks wait in memory */
	h5w_get_stats(fx->engine, &st);
	struct stat sb;
	assert_int_equal(stat(st.file_name, &sb), 0);
	struct rlimit old;
	limit_file_size(&old, (rlim_t)sb.st_size);
	assert_int_equal(send_encoded(fx, g, sent, k++), -EFBIG);
	for (; k < ENCODED_EVENTS; k++)
		assert_int_equal(send_encoded(fx, g, sent, k), 0);
	h5w_get_stats(fx->engine, &st);
	assert_true(st.full);
	lift_file_size_limit(&old);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.chunks_decoded, 0);
	assert_int_equal(st.chunks_precompressed, ENCODED_EVENTS);
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;
	char path[128];
	hsize_t rows = 0;
	for (unsigned seq = 0; seq < 2; seq++) {
		snprintf(path, sizeof(path), "%s/u-%04u.h5", fx->dir, seq);
		rows += rows_as_sent(path, sent);
	}
	assert_int_equal(rows, ENCODED_EVENTS);
	teardown_fx(fx);
}

/*
 * A waveform refused for want of memory (-ENOBUFS, to be offered again)
 * leaves no record behind: not the one it opened (that record, flushed
 * with fill and closed with a roll, would be a second, empty copy of the
 * event in another file), nor part of its row when opening it failed.
 */
static void test_refused_waveform_leaves_no_record(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("limits: { max_buffer: 1MiB, max_frame: 512KiB }\n",
					records_body, 0);
	struct h5w_group *g = group(fx, "x");
	struct h5w_dset *time = &g->dsets[g->time_ds], *ids = &g->dsets[g->event_id_ds];
	float a[1000];
	int8_t b[1000];
	for (size_t i = 0; i < 1000; i++) {
		a[i] = (float)i;
		b[i] = (int8_t)(i % 100);
	}
	uint64_t limit = fx->schema->limits.max_buffer;
	assert_int_equal(fx->engine->buffered, 0);
	/* room to open the record (three 256-byte column buffers), not for
	 * its waveform */
	uint64_t other = limit - 2000;
	fx->engine->buffered += other;
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_FLOAT32, a, 1000,
					 &fx->err), -ENOBUFS);
	assert_int_equal(g->nrecords, 0);
	assert_int_equal(time->nrows, 0);
	assert_int_equal(ids->nrows, 0);
	fx->engine->buffered -= other;
	/* room for its time, not for its event id */
	other = limit - 256 - 128;
	fx->engine->buffered += other;
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_FLOAT32, a, 1000,
					 &fx->err), -ENOBUFS);
	assert_int_equal(g->nrecords, 0);
	assert_int_equal(time->nrows, 0);
	fx->engine->buffered -= other;
	/* offered again: one record */
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_FLOAT32, a, 1000,
					 &fx->err), 0);
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 1, DTYPE_INT8, b, 1000, &fx->err),
			 0);
	struct h5w_value mass = {.index = 0, .dtype = DTYPE_FLOAT64, .v.f64 = 3.5};
	assert_int_equal(h5w_record_fields(fx->engine, g, 1, T0, &mass, 1, &fx->err), 0);
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.records_closed, 1);
	file_name name;
	close_engine(fx, name);
	hid_t file = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	uint64_t id[4];
	int64_t t[4];
	assert_int_equal(read_column(file, "/x/event_id", H5T_NATIVE_UINT64, id, 4), 1);
	assert_int_equal(read_column(file, "/x/time", H5T_NATIVE_INT64, t, 4), 1);
	assert_true(id[0] == 1 && t[0] == T0);
	H5Fclose(file);
	teardown_fx(fx);
}

/*
 * A pre-compressed records row whose write is refused for want of space
 * and which cannot be held either (limits.max_buffer full) refuses its
 * frame with -ENOBUFS, to be offered again: it was counted as held, and
 * so acknowledged, while nothing of it was kept.
 */
static void test_encoded_row_not_kept_is_refused(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("  min_free: 1MiB\n",
					  "limits: { max_buffer: 1MiB, max_frame: 512KiB }\n",
					  ENCODED_RECORDS, 0);
	struct h5w_group *g = group(fx, "x");
	static struct sent_chunk sent[ENCODED_EVENTS];
	for (unsigned k = 0; k < 2; k++)
		encode_event(&sent[k], k);
	assert_int_equal(send_encoded(fx, g, sent, 0), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	/* the file may not grow, and memory holds no more than half a row */
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	struct stat sb;
	assert_int_equal(stat(st.file_name, &sb), 0);
	struct rlimit old;
	limit_file_size(&old, (rlim_t)sb.st_size);
	/* (whatever buffers for reuse it then frees, it stays over the limit) */
	uint64_t other = fx->schema->limits.max_buffer - sent[1].len / 2;
	fx->engine->buffered += other;
	assert_int_equal(send_encoded(fx, g, sent, 1), -ENOBUFS);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.losses, 0);
	fx->engine->buffered -= other;
	lift_file_size_limit(&old);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	assert_int_equal(send_encoded(fx, g, sent, 1), 0); /* offered again */
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;
	hsize_t rows = 0;
	for (unsigned seq = 0; seq < 3; seq++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/u-%04u.h5", fx->dir, seq);
		if (!access(path, F_OK))
			rows += rows_as_sent(path, sent);
	}
	assert_int_equal(rows, 2);
	teardown_fx(fx);
}

/*
 * Pre-compressed frames of a stream with `events: true`: each frame's
 * chunks are covered by its event's row as a frame of samples is (its
 * first sample and count per channel), a frame of no event by none, and
 * every chunk is stored as it came.
 */
static void test_encoded_stream_frames_in_events(void **state)
{
	(void)state;
	struct fixture *fx = setup_with("",
					"streams:\n"
					"  - name: adc\n"
					"    match: { key: \"{board}/{channel}\" }\n"
					"    group: \"/{board}\"\n"
					"    layout: stream\n"
					"    events: true\n"
					"    record_timeout: 2s\n"
					"    event_fields: { mass: float32 }\n"
					"    channels:\n"
					"      a: { dtype: float32, compression: lz4, chunk: 1000, "
					"dt: 1e-6 }\n",
					0);
	struct h5w_group *g = group(fx, "x");
	static struct sent_chunk sent[4];
	struct h5w_encoded c[4];
	for (unsigned k = 0; k < 4; k++) {
		encode_event(&sent[k], k);
		c[k] = (struct h5w_encoded){.data = sent[k].bytes, .len = sent[k].len,
					    .raw_size = 4000};
	}
	/* event 5: two chunks; then a frame of no event; then event 6 */
	assert_int_equal(h5w_stream_append_encoded(fx->engine, g, 0, &c[0], 2, T0, 1, 5, &fx->err),
			 0);
	assert_int_equal(h5w_stream_append_encoded(fx->engine, g, 0, &c[2], 1, T0 + SEC, 2, 0,
						   &fx->err), 0);
	assert_int_equal(h5w_stream_append_encoded(fx->engine, g, 0, &c[3], 1, T0 + 2 * SEC, 3, 6,
						   &fx->err), 0);
	for (uint64_t id = 5; id <= 6; id++) {
		struct h5w_value mass = {.index = 0, .dtype = DTYPE_FLOAT64, .v.f64 = (double)id};
		assert_int_equal(h5w_record_fields(fx->engine, g, id, T0, &mass, 1, &fx->err), 0);
	}
	file_name name;
	close_engine(fx, name);
	hid_t file = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	uint64_t id[4], start[4], count[4];
	assert_int_equal(read_column(file, "/x/event_id", H5T_NATIVE_UINT64, id, 4), 2);
	read_column(file, "/x/a_event_start", H5T_NATIVE_UINT64, start, 4);
	read_column(file, "/x/a_event_count", H5T_NATIVE_UINT64, count, 4);
	assert_true(id[0] == 5 && start[0] == 0 && count[0] == 2000);
	assert_true(id[1] == 6 && start[1] == 3000 && count[1] == 1000);
	hid_t a = H5Dopen2(file, "/x/a", H5P_DEFAULT);
	assert_true(a >= 0);
	for (unsigned k = 0; k < 4; k++)
		assert_chunk_is(a, (hsize_t)k * 1000, sent[k].bytes, sent[k].len);
	H5Dclose(a);
	H5Fclose(file);
	teardown_fx(fx);
}

/*
 * A records row held as it came (pre-compressed, before the file exists)
 * and then sent again as samples while its record is open: the samples
 * replace it whole, so the held chunk becomes a buffer of rows without
 * being decoded, and the file has the samples.
 */
static void test_held_encoded_row_sent_again_as_samples(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("", "",
					  "streams:\n"
					  "  - name: dust\n"
					  "    match: { key: \"{board}/{channel}\" }\n"
					  "    group: \"/{board}\"\n"
					  "    layout: records\n"
					  "    samples: 1000\n"
					  "    dt: 1.0e-6\n"
					  "    channels:\n"
					  "      a: { dtype: float32, compression: lz4, chunk: 1 }\n"
					  "      b: { dtype: float32, chunk: 1 }\n",
					  0);
	struct h5w_group *g = group(fx, "x");
	static struct sent_chunk sent[1];
	encode_event(&sent[0], 0);
	struct h5w_encoded c = {.data = sent[0].bytes, .len = sent[0].len, .raw_size = 4000};
	assert_int_equal(h5w_record_encoded(fx->engine, g, 1, T0, 0, &c, &fx->err), 0);
	struct h5w_dset *a = &g->dsets[g->chan_ds[0]];
	assert_int_equal(a->nbufs, 1);
	assert_true(a->bufs[0].encoded);
	float samples[1000], got[1000];
	for (size_t i = 0; i < 1000; i++)
		samples[i] = (float)i * 0.5f;
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 0, DTYPE_FLOAT32, samples, 1000,
					 &fx->err), 0);
	assert_false(a->bufs[0].encoded);
	assert_int_equal(h5w_record_data(fx->engine, g, 1, T0, 1, DTYPE_FLOAT32, samples, 1000,
					 &fx->err), 0);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.chunks_decoded, 0);
	assert_int_equal(st.chunks_precompressed, 0);
	file_name name;
	close_engine(fx, name);
	hid_t file = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT);
	assert_true(file >= 0);
	hid_t ds = H5Dopen2(file, "/x/a", H5P_DEFAULT);
	assert_true(ds >= 0);
	assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
	assert_memory_equal(got, samples, sizeof(samples));
	H5Dclose(ds);
	H5Fclose(file);
	teardown_fx(fx);
}

/* A float32 LZ4 stream channel /x/a of 100,000-sample chunks:
 * pre-compressed frames of several chunks. */
static const char *const ENCODED_STREAM =
	"streams:\n"
	"  - name: adc\n"
	"    match: { key: \"{board}/{channel}\" }\n"
	"    group: \"/{board}\"\n"
	"    layout: stream\n"
	"    channels:\n"
	"      a: { dtype: float32, compression: lz4, chunk: 100000, dt: 1e-6 }\n";

enum { BIG_CHUNK = 100000 };

struct big_chunk {
	unsigned char *bytes;
	size_t len;
};

/* Chunk K: noise LZ4 cannot shrink, so each holds about 400 kB. */
static void encode_big(struct big_chunk *c, unsigned k)
{
	static float samples[BIG_CHUNK];
	uint32_t x = 2463534242u + k;
	for (size_t i = 0; i < BIG_CHUNK; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		samples[i] = (float)x;
	}
	size_t cap = sizeof(samples) + sizeof(samples) / 64 + 1024;
	c->bytes = malloc(cap);
	assert_non_null(c->bytes);
	assert_int_equal(h5lz4_encode(samples, sizeof(samples), 0, c->bytes, cap, &c->len), 0);
	assert_true(c->len > 390000);
}

/* Chunks FIRST..FIRST+N-1 of BIG as the frame SEQ of board x's channel a. */
static int send_big(struct fixture *fx, struct h5w_group *g, const struct big_chunk *big,
		    unsigned first, unsigned n, uint64_t seq)
{
	struct h5w_encoded c[4];
	for (unsigned i = 0; i < n; i++)
		c[i] = (struct h5w_encoded){.data = big[first + i].bytes, .len = big[first + i].len,
					    .raw_size = BIG_CHUNK * sizeof(float)};
	return h5w_stream_append_encoded(fx->engine, g, 0, c, n, T0 + (int64_t)seq * SEC, seq, 0,
					 &fx->err);
}

/* What other groups' data would hold: all of limits.max_buffer but room
 * for HALVES half chunks. */
static uint64_t occupy(struct fixture *fx, const struct big_chunk *big, unsigned halves)
{
	uint64_t other = fx->schema->limits.max_buffer - fx->engine->buffered -
			 big[0].len * halves / 2;
	fx->engine->buffered += other;
	return other;
}

/*
 * A frame of several pre-compressed chunks is taken whole or refused whole:
 * when a chunk cannot be kept (limits.max_buffer) after others of the frame
 * were held or stored, those are taken back, so the frame offered again
 * lands where it would have, and no row is left without its frame index.
 * Both ways: chunks held while the SWMR file does not exist yet, and a
 * chunk stored straight into the file before the next had to wait for
 * space.
 */
static void test_encoded_frame_refused_whole(void **state)
{
	(void)state;
	struct fixture *fx = setup_output("  swmr: true\n  min_free: 1MiB\n",
					  "limits: { max_buffer: 4MiB, max_frame: 2MiB }\n",
					  ENCODED_STREAM, 0);
	struct h5w_group *x = group(fx, "x");
	struct big_chunk big[4];
	for (unsigned k = 0; k < 4; k++)
		encode_big(&big[k], k);
	struct h5w_dset *ds = &x->dsets[x->chan_ds[0]];
	/* no file yet: held; the second chunk finds no room */
	uint64_t other = occupy(fx, big, 3);
	assert_int_equal(send_big(fx, x, big, 0, 2, 1), -ENOBUFS);
	assert_int_equal(ds->nrows, 0);
	assert_int_equal(ds->nbufs, 0);
	fx->engine->buffered -= other;
	assert_int_equal(send_big(fx, x, big, 0, 2, 1), 0); /* offered again */
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	assert_int_equal(ds->extent, 2 * BIG_CHUNK);
	/* the file may grow by one chunk: the second waits for space, and
	 * finds no room in memory */
	struct h5w_stats st;
	h5w_get_stats(fx->engine, &st);
	struct stat sb;
	assert_int_equal(stat(st.file_name, &sb), 0);
	struct rlimit old;
	limit_file_size(&old, (rlim_t)sb.st_size + (1u << 20) + big[2].len + 64 * 1024);
	other = occupy(fx, big, 1);
	assert_int_equal(send_big(fx, x, big, 2, 2, 2), -ENOBUFS);
	h5w_get_stats(fx->engine, &st);
	assert_int_equal(st.chunks_precompressed, 3); /* the first was stored... */
	assert_int_equal(ds->nrows, 2 * BIG_CHUNK);
	assert_int_equal(ds->extent, 2 * BIG_CHUNK); /* ...and is outside again */
	fx->engine->buffered -= other;
	lift_file_size_limit(&old);
	assert_int_equal(h5w_flush(fx->engine, &fx->err), 0);
	assert_int_equal(send_big(fx, x, big, 2, 2, 2), 0);
	assert_int_equal(h5w_close(fx->engine, &fx->err), 0);
	fx->engine = NULL;
	/* frames 1 and 2 at rows 0 and 2 chunks, every chunk as sent, in
	 * whichever files they went to */
	unsigned frames = 0, chunks = 0;
	for (unsigned f = 0; f < 3; f++) {
		char name[128];
		snprintf(name, sizeof(name), "%s/u-%04u.h5", fx->dir, f);
		if (access(name, F_OK))
			continue;
		hid_t file = H5Fopen(name, H5F_ACC_RDONLY, H5P_DEFAULT);
		assert_true(file >= 0);
		uint64_t start[4], seq[4];
		hsize_t n = read_column(file, "/x/a_frame_start", H5T_NATIVE_UINT64, start, 4);
		read_column(file, "/x/a_frame_seq", H5T_NATIVE_UINT64, seq, 4);
		hid_t a = H5Dopen2(file, "/x/a", H5P_DEFAULT);
		assert_true(a >= 0);
		hid_t space = H5Dget_space(a);
		hsize_t rows = 0;
		H5Sget_simple_extent_dims(space, &rows, NULL);
		H5Sclose(space);
		assert_int_equal(rows, 2 * BIG_CHUNK * n);
		for (hsize_t i = 0; i < n; i++) {
			assert_int_equal(start[i], 2 * BIG_CHUNK * i);
			for (unsigned c = 0; c < 2; c++) {
				const struct big_chunk *sent = &big[2 * (seq[i] - 1) + c];
				assert_chunk_is(a, start[i] + (hsize_t)c * BIG_CHUNK, sent->bytes,
						sent->len);
				chunks++;
			}
			frames++;
		}
		H5Dclose(a);
		H5Fclose(file);
	}
	assert_int_equal(frames, 2);
	assert_int_equal(chunks, 4);
	for (unsigned k = 0; k < 4; k++)
		free(big[k].bytes);
	teardown_fx(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roll_boundary),
		cmocka_unit_test(test_group_limit),
		cmocka_unit_test(test_group_limit_swmr),
		cmocka_unit_test(test_group_names_bounded),
		cmocka_unit_test(test_swmr_new_groups_do_not_churn_files),
		cmocka_unit_test(test_bad_waveform_and_dtype),
		cmocka_unit_test(test_record_timeout_and_open_limit),
		cmocka_unit_test(test_roll_closes_open_records),
		cmocka_unit_test(test_late_frame_of_closed_event_refused),
		cmocka_unit_test(test_clipping_counted),
		cmocka_unit_test(test_conversion_fast_paths_match_hdf5),
		cmocka_unit_test(test_pipeline_matches_hdf5),
		cmocka_unit_test(test_pipeline_slots),
		cmocka_unit_test(test_szip_params_match_hdf5),
		cmocka_unit_test(test_szip_grown_chunk_reads_back),
		cmocka_unit_test(test_buffer_limit),
		cmocka_unit_test(test_write_error_is_returned_not_fatal),
		cmocka_unit_test(test_hdf5_write_error_ends_the_file),
		cmocka_unit_test(test_min_free_keeps_hdf5_off_a_full_disk),
		cmocka_unit_test(test_unstored_partial_chunk_is_kept_once),
		cmocka_unit_test(test_close_on_a_full_disk_keeps_the_file_valid),
		cmocka_unit_test(test_many_slow_groups_fit_the_buffer),
		cmocka_unit_test(test_time_order_and_window),
		cmocka_unit_test(test_stream_events_table),
		cmocka_unit_test(test_stream_events_bounded_and_rolled),
		cmocka_unit_test(test_stream_event_rows_wait_for_their_samples),
		cmocka_unit_test(test_encoded_chunks_wait_encoded),
		cmocka_unit_test(test_encoded_frame_refused_whole),
		cmocka_unit_test(test_encoded_row_not_kept_is_refused),
		cmocka_unit_test(test_refused_waveform_leaves_no_record),
		cmocka_unit_test(test_encoded_stream_frames_in_events),
		cmocka_unit_test(test_held_encoded_row_sent_again_as_samples),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
