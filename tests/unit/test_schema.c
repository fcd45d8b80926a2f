/*
 * test_schema.c - the schema loader (src/schema/): the example schemas
 * load to the expected model, defaults resolve as docs/schema.md says, the
 * strict size/duration/address/template parsers, and a table of invalid
 * schemas each pinned to its exact "FILE:LINE:COL: message".
 *
 * Every invalid schema is its own test, so a failure names the case. The
 * suite also runs under valgrind (tests/valgrind.cmake) and in the ASan
 * build, which is what proves the error paths free everything.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "schema.h"
#include "schema_internal.h"

#define SEC INT64_C(1000000000)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static struct schema *load_ok(const char *text)
{
	struct schema *schema = NULL;
	struct schema_error err;
	int rc = schema_load_string(text, strlen(text), "t.yaml", &schema, &err);
	if (rc)
		fail_msg("unexpected error %d: %s", rc, err.message);
	assert_non_null(schema);
	return schema;
}

static struct schema *load_example(const char *name)
{
	char path[1024];
	struct schema *schema = NULL;
	struct schema_error err;

	snprintf(path, sizeof(path), "%s/schemas/%s", H5REC_SOURCE_DIR, name);
	int rc = schema_load_file(path, &schema, &err);
	if (rc)
		fail_msg("%s: %s", name, err.message);
	return schema;
}

static const char *part(const struct schema_template *tmpl, size_t i, bool *placeholder)
{
	assert_true(i < tmpl->nparts);
	*placeholder = tmpl->parts[i].placeholder;
	return tmpl->parts[i].text;
}

/* ---- sources ------------------------------------------------------------- */

static void test_nats_source(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		"name: t\n"
		"sources:\n"
		"  - nats:\n"
		"      servers: [nats://127.0.0.1:4222, tls://10.0.0.2:4222]\n"
		"      stream: DAQ\n"
		"      consumer: recorders\n"
		"      subjects: [\"daq.>\"]\n"
		"      replicas: 3\n"
		"      protocol: line\n"
		"      precision: ms\n"
		"      fetch: { batch: 16 }\n"
		"streams:\n"
		"  - name: s\n"
		"    match: { measurement: m }\n"
		"    channels:\n"
		"      a: {}\n");
	assert_int_equal(s->nlisten, 0);
	assert_int_equal(s->nsources, 1);
	const struct schema_source *src = &s->sources[0];
	assert_int_equal(src->kind, SCHEMA_SOURCE_NATS);
	assert_int_equal(src->protocol, SCHEMA_PROTOCOL_LINE);
	assert_int_equal(src->precision, LINE_PRECISION_MS);
	assert_int_equal(src->nservers, 2);
	assert_string_equal(src->servers[1], "tls://10.0.0.2:4222");
	assert_string_equal(src->stream, "DAQ");
	assert_string_equal(src->consumer, "recorders");
	assert_int_equal(src->nsubjects, 1);
	assert_string_equal(src->subjects[0], "daq.>");
	assert_int_equal(src->replicas, 3);
	assert_int_equal(src->fetch_batch, 16);
	assert_int_equal(src->fetch_max_bytes, 8 * MiB);
	assert_int_equal(src->fetch_expires_ns, SEC);
	assert_int_equal(src->ack_wait_ns, 60 * SEC);
	assert_int_equal(src->max_ack_pending, 1024);
	assert_null(src->credentials);
	schema_free(s);
}

/* Without sources there are no provenance datasets: their names are free. */
static void test_provenance_names_free_without_sources(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		"name: t\n"
		"listen:\n"
		"  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
		"streams:\n"
		"  - name: r\n"
		"    match: { key: \"r/{channel}\" }\n"
		"    layout: records\n"
		"    samples: 100\n"
		"    dt: 1.0e-6\n"
		"    event_fields: { source_msg_id: float32 }\n"
		"    channels:\n"
		"      source_seq: { dtype: float32 }\n"
		"  - name: s\n"
		"    match: { key: \"s/{channel}\" }\n"
		"    layout: stream\n"
		"    channels:\n"
		"      a: { dtype: int16, dt: 1.0e-6 }\n"
		"      a_frame_source_msg_id: { dt: 1.0 }\n");
	assert_int_equal(s->nstreams, 2);
	assert_string_equal(s->streams[0].channels[0].name, "source_seq");
	schema_free(s);
}

/* ---- the example schemas ------------------------------------------------ */

static void test_example_weather(void **state)
{
	(void)state;
	struct schema *s = load_example("weather.yaml");
	bool ph;

	assert_string_equal(s->name, "weather");
	assert_non_null(strstr(s->source, "name: weather"));
	assert_int_equal(s->source_len, strlen(s->source));
	assert_string_equal(s->output.directory, "data/weather");
	assert_string_equal(s->output.file.text, "weather-{date}-{seq}.h5");
	assert_true(schema_template_has(&s->output.file, "date"));
	assert_true(schema_template_has(&s->output.file, "seq"));
	assert_false(schema_template_has(&s->output.file, "member"));
	assert_int_equal(s->output.roll_every_ns, 86400 * SEC);
	assert_int_equal(s->output.roll_size, 4 * GiB);
	assert_int_equal(s->output.driver, SCHEMA_DRIVER_SEC2);
	assert_true(s->output.swmr);
	assert_int_equal(s->output.flush_ns, SEC);
	assert_int_equal(s->output.min_free, 64 * MiB);
	assert_null(s->control.socket);

	assert_int_equal(s->nlisten, 3);
	assert_int_equal(s->listen[0].protocol, SCHEMA_PROTOCOL_LINE);
	assert_int_equal(s->listen[0].transport, SCHEMA_TRANSPORT_TCP);
	assert_string_equal(s->listen[0].host, "127.0.0.1");
	assert_int_equal(s->listen[0].port, 7601);
	assert_null(s->listen[0].path);
	assert_int_equal(s->listen[0].precision, LINE_PRECISION_NS);
	assert_null(s->listen[0].token);
	assert_int_equal(s->listen[0].nallow, 0);
	assert_int_equal(s->listen[1].transport, SCHEMA_TRANSPORT_UDP);
	assert_int_equal(s->listen[1].port, 8089);
	assert_int_equal(s->listen[1].nallow, 2);
	assert_int_equal(s->listen[1].allow[0].family, AF_INET);
	assert_int_equal(s->listen[1].allow[0].prefix_len, 32);
	assert_memory_equal(s->listen[1].allow[0].addr, "\x7f\0\0\x01", 4);
	assert_string_equal(s->listen[1].allow[1].text, "10.0.0.0/8");
	assert_int_equal(s->listen[1].allow[1].prefix_len, 8);
	assert_int_equal(s->listen[1].allow[1].addr[0], 10);
	assert_int_equal(s->listen[2].protocol, SCHEMA_PROTOCOL_HTTP);
	assert_int_equal(s->listen[2].port, 8086);
	assert_int_equal(s->listen[2].max_body, 32 * MiB);
	assert_null(s->listen[2].token);

	assert_int_equal(s->limits.max_groups, 10000);
	assert_int_equal(s->limits.max_buffer, 512 * MiB);
	assert_int_equal(s->limits.max_frame, 64 * MiB);
	assert_int_equal(s->limits.max_line, 64 * 1024);
	assert_int_equal(s->limits.max_connections, 256);

	assert_int_equal(s->nstreams, 1);
	const struct schema_stream *st = schema_find_stream(s, "weather");
	assert_ptr_equal(st, &s->streams[0]);
	assert_null(schema_find_stream(s, "nope"));
	assert_string_equal(st->match_measurement, "weather");
	assert_false(st->match_is_key);
	assert_string_equal(st->group.text, "/{station}");
	assert_int_equal(st->group.nparts, 2);
	assert_string_equal(part(&st->group, 0, &ph), "/");
	assert_false(ph);
	assert_string_equal(part(&st->group, 1, &ph), "station");
	assert_true(ph);
	assert_int_equal(st->layout, SCHEMA_LAYOUT_TABLE);
	assert_int_equal(st->unknown_fields, SCHEMA_UNKNOWN_DROP);
	assert_int_equal(st->nattrs, 2);
	assert_string_equal(st->attrs[0].name, "institution");
	assert_int_equal(st->attrs[0].type, SCHEMA_ATTR_STRING);
	assert_string_equal(st->attrs[0].text, "Example Lab");
	assert_int_equal(st->nevent_fields, 0);
	assert_int_equal(st->coord_chunk, 4096);

	static const char *const names[] = {"temperature", "wind", "pressure", "humidity"};
	static const char *const units[] = {"degC", "m/s", "hPa", "%"};
	static const double dts[] = {10, 5, 60, 60};
	assert_int_equal(st->nchannels, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct schema_channel *ch = schema_find_channel(st, names[i]);
		assert_ptr_equal(ch, &st->channels[i]);
		assert_int_equal(ch->dtype, DTYPE_FLOAT32);
		assert_string_equal(ch->units, units[i]);
		assert_non_null(ch->long_name);
		assert_true(ch->has_dt);
		assert_true(ch->dt == dts[i]);
		assert_false(ch->has_packing);
		assert_int_equal(ch->chunk, 4096);
		assert_int_equal(ch->compression, SCHEMA_COMPRESSION_DEFLATE);
		assert_int_equal(ch->level, 4);
		assert_true(ch->shuffle);
		assert_false(ch->fletcher32);
		assert_false(ch->has_fill);
		assert_true(isnan(ch->fill.f));
		assert_false(ch->own_time);
	}
	assert_null(schema_find_channel(st, "rain"));
	schema_free(s);
}

static void test_example_accelerator(void **state)
{
	(void)state;
	struct schema *s = load_example("accelerator.yaml");
	bool ph;

	assert_string_equal(s->name, "accelerator");
	assert_string_equal(s->output.directory, "data/accelerator");
	assert_int_equal(s->output.roll_every_ns, 3600 * SEC);
	assert_int_equal(s->output.roll_size, 16 * GiB);
	assert_true(s->output.swmr);
	assert_int_equal(s->nlisten, 1);
	assert_int_equal(s->listen[0].protocol, SCHEMA_PROTOCOL_FRAME);
	assert_int_equal(s->listen[0].port, 7701);
	assert_string_equal(s->listen[0].token, "change-me");
	assert_int_equal(s->limits.max_buffer, GiB);

	const struct schema_stream *st = schema_find_stream(s, "dust");
	assert_non_null(st);
	assert_true(st->match_is_key);
	assert_null(st->match_measurement);
	assert_string_equal(st->match_key.text, "dust/{channel}");
	assert_int_equal(st->match_key.nparts, 2);
	assert_string_equal(part(&st->match_key, 0, &ph), "dust/");
	assert_false(ph);
	assert_string_equal(part(&st->match_key, 1, &ph), "channel");
	assert_true(ph);
	assert_string_equal(st->group.text, "/dust");
	assert_int_equal(st->layout, SCHEMA_LAYOUT_RECORDS);
	assert_int_equal(st->samples, 100000);
	assert_true(st->dt == 2.0e-8);
	assert_int_equal(st->record_timeout_ns, SEC);
	assert_int_equal(st->coord_chunk, 1024);
	assert_int_equal(st->nevent_fields, 2);
	assert_string_equal(st->event_fields[0].name, "mass");
	assert_int_equal(st->event_fields[0].dtype, DTYPE_FLOAT32);
	assert_string_equal(st->event_fields[0].units, "kg");
	assert_string_equal(st->event_fields[1].name, "velocity");
	assert_int_equal(st->event_fields[1].dtype, DTYPE_FLOAT32);
	assert_string_equal(st->event_fields[1].units, "m/s");

	static const char *const names[] = {"first_detector", "second_detector", "third_detector"};
	assert_int_equal(st->nchannels, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct schema_channel *ch = &st->channels[i];
		assert_string_equal(ch->name, names[i]);
		assert_int_equal(ch->dtype, DTYPE_FLOAT32);
		assert_string_equal(ch->units, "V");
		assert_int_equal(ch->compression, SCHEMA_COMPRESSION_DEFLATE);
		assert_int_equal(ch->level, 1);
		assert_true(ch->shuffle);
		assert_true(ch->fletcher32);
		assert_int_equal(ch->chunk, 1);
		assert_true(ch->has_dt);
		assert_true(ch->dt == 2.0e-8);
		assert_true(ch->pos.line > 0 && ch->pos.col == 7);
	}
	schema_free(s);
}

static void test_example_digitizer(void **state)
{
	(void)state;
	struct schema *s = load_example("digitizer.yaml");

	assert_int_equal(s->output.driver, SCHEMA_DRIVER_FAMILY);
	assert_int_equal(s->output.member_size, GiB);
	assert_false(s->output.swmr);
	assert_true(schema_template_has(&s->output.file, "member"));
	assert_int_equal(s->output.roll_every_ns, 3600 * SEC);
	assert_int_equal(s->output.roll_size, 0);
	assert_int_equal(s->nlisten, 2);
	assert_int_equal(s->listen[1].transport, SCHEMA_TRANSPORT_UDP);
	assert_int_equal(s->limits.max_groups, 64);
	assert_int_equal(s->limits.max_frame, 16 * MiB);

	const struct schema_stream *st = schema_find_stream(s, "adc");
	assert_non_null(st);
	assert_string_equal(st->match_key.text, "{board}/{channel}");
	assert_true(schema_template_has(&st->match_key, "board"));
	assert_string_equal(st->group.text, "/{board}");
	assert_int_equal(st->layout, SCHEMA_LAYOUT_STREAM);
	assert_int_equal(st->coord_chunk, 1024);
	assert_true(st->events);
	assert_int_equal(st->record_timeout_ns, 2 * SEC);
	assert_int_equal(st->nevent_fields, 2);
	assert_string_equal(st->event_fields[0].name, "trigger_level");
	assert_int_equal(st->event_fields[0].dtype, DTYPE_FLOAT32);
	assert_string_equal(st->event_fields[0].units, "V");
	assert_int_equal(st->event_fields[1].dtype, DTYPE_UINT8);
	assert_int_equal(st->nchannels, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct schema_channel *ch = &st->channels[i];
		assert_int_equal(ch->dtype, DTYPE_INT16);
		assert_string_equal(ch->units, "V");
		assert_true(ch->has_packing);
		assert_true(ch->scale_factor == 3.0517578125e-4);
		assert_true(ch->add_offset == 0);
		assert_true(ch->has_dt);
		assert_int_equal(ch->chunk, 65536);
		assert_int_equal(ch->fill.i, 0);
		assert_true(ch->fletcher32);
	}
	assert_int_equal(st->channels[0].compression, SCHEMA_COMPRESSION_SZIP);
	assert_int_equal(st->channels[0].szip_coding, SCHEMA_SZIP_NN);
	assert_int_equal(st->channels[0].szip_pixels_per_block, 32);
	assert_false(st->channels[0].shuffle);
	assert_true(st->channels[0].dt == 1.0e-6);
	assert_string_equal(st->channels[3].name, "adc3");
	assert_int_equal(st->channels[3].compression, SCHEMA_COMPRESSION_NONE);
	assert_true(st->channels[3].dt == 1.0e-3);
	schema_free(s);
}

/* ---- defaults and resolution -------------------------------------------- */

#define LINE_HEAD "name: t\nlisten:\n  - { protocol: line, transport: tcp, address: \"7601\" }\n"

static void test_builtin_defaults(void **state)
{
	(void)state;
	struct schema *s = load_ok(LINE_HEAD "streams:\n  - name: s\n    match: { measurement: m }\n"
					     "    channels:\n      a: {}\n");

	assert_string_equal(s->output.directory, "data/t");
	assert_string_equal(s->output.file.text, "{name}-{date}-{time}-{seq}.h5");
	assert_int_equal(s->output.roll_every_ns, 0);
	assert_int_equal(s->output.roll_size, 0);
	assert_int_equal(s->output.driver, SCHEMA_DRIVER_SEC2);
	assert_true(s->output.swmr);
	assert_int_equal(s->output.flush_ns, SEC);
	assert_true(s->output.time_past_ns == 3650 * 86400 * SEC);
	assert_true(s->output.time_future_ns == 86400 * SEC);
	assert_false(s->output.time_reject);
	assert_int_equal(s->nattrs, 0);
	assert_string_equal(s->listen[0].host, "127.0.0.1");
	assert_int_equal(s->listen[0].port, 7601);
	assert_int_equal(s->limits.max_groups, 10000);
	assert_int_equal(s->limits.max_line, 65536);
	const struct schema_stream *st = &s->streams[0];
	assert_string_equal(st->group.text, "/s");
	assert_int_equal(st->layout, SCHEMA_LAYOUT_TABLE);
	assert_int_equal(st->unknown_fields, SCHEMA_UNKNOWN_DROP);
	assert_int_equal(st->nattrs, 0);
	const struct schema_channel *ch = &st->channels[0];
	assert_int_equal(ch->dtype, DTYPE_FLOAT64);
	assert_null(ch->units);
	assert_false(ch->has_dt);
	assert_true(ch->scale_factor == 1 && ch->add_offset == 0);
	assert_int_equal(ch->chunk, 4096);
	assert_int_equal(ch->compression, SCHEMA_COMPRESSION_NONE);
	assert_int_equal(ch->level, 4);
	assert_false(ch->shuffle);
	assert_false(ch->fletcher32);
	assert_true(isnan(ch->fill.f));
	schema_free(s);
}

static void test_time_window(void **state)
{
	(void)state;
	struct schema *s = load_ok("name: t\noutput: { time_window: { past: 2h, reject: true } }\n"
				   "listen:\n  - { protocol: line, transport: tcp, address: \"7601\" }\n"
				   "streams:\n  - name: s\n    match: { measurement: m }\n"
				   "    channels:\n      a: {}\n");
	assert_true(s->output.time_past_ns == 2 * 3600 * SEC);
	assert_true(s->output.time_future_ns == 86400 * SEC); /* the default */
	assert_true(s->output.time_reject);
	schema_free(s);
}

static void test_family_default_file(void **state)
{
	(void)state;
	struct schema *s = load_ok("name: t\noutput: { driver: family, member_size: 512MiB }\n"
				   "listen:\n  - { protocol: line, transport: tcp, address: \"7601\" }\n"
				   "streams:\n  - name: s\n    match: { measurement: m }\n"
				   "    channels:\n      a: {}\n");
	assert_string_equal(s->output.file.text, "{name}-{date}-{time}-{seq}-{member}.h5");
	assert_false(s->output.swmr);
	assert_int_equal(s->output.member_size, 512 * MiB);
	schema_free(s);
}

static void test_min_free(void **state)
{
	(void)state;
	static const char *rest = "listen:\n  - { protocol: line, transport: tcp, address: \"7601\" }\n"
				  "streams:\n  - name: s\n    match: { measurement: m }\n"
				  "    channels:\n      a: {}\n";
	char text[512];
	snprintf(text, sizeof(text), "name: t\noutput: { min_free: 0B }\n%s", rest);
	struct schema *s = load_ok(text);
	assert_int_equal(s->output.min_free, 0); /* the reserve is off */
	schema_free(s);
	snprintf(text, sizeof(text), "name: t\noutput: { min_free: 2GiB }\n%s", rest);
	s = load_ok(text);
	assert_int_equal(s->output.min_free, 2 * GiB);
	schema_free(s);
}

static void test_channel_inherits_defaults(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		LINE_HEAD "streams:\n  - name: s\n    match: { measurement: m }\n"
			  "    defaults: { dtype: int32, compression: deflate, level: 6, shuffle: true,"
			  " fill: -1, units: V, fletcher32: true }\n"
			  "    channels:\n      a: {}\n      b: { compression: lz4 }\n"
			  "      c: { compression: none, units: mV, fill: 7 }\n"
			  "      d: { compression: lz4, block_size: 64KiB, dtype: uint64,"
			  " fill: 18446744073709551615 }\n");
	const struct schema_stream *st = &s->streams[0];
	const struct schema_channel *a = &st->channels[0], *b = &st->channels[1],
				    *c = &st->channels[2], *d = &st->channels[3];

	assert_int_equal(a->dtype, DTYPE_INT32);
	assert_int_equal(a->compression, SCHEMA_COMPRESSION_DEFLATE);
	assert_int_equal(a->level, 6);
	assert_true(a->shuffle);
	assert_true(a->fletcher32);
	assert_true(a->has_fill);
	assert_int_equal(a->fill.i, -1);
	assert_string_equal(a->units, "V");
	/* Options that do not apply to lz4 (level) are dropped, not inherited;
	 * shuffle and fletcher32 apply to it. */
	assert_int_equal(b->compression, SCHEMA_COMPRESSION_LZ4);
	assert_true(b->shuffle);
	assert_true(b->fletcher32);
	assert_int_equal(b->lz4_block_size, 0);
	assert_int_equal(c->compression, SCHEMA_COMPRESSION_NONE);
	assert_false(c->shuffle);
	assert_true(c->fletcher32);
	assert_string_equal(c->units, "mV");
	assert_int_equal(c->fill.i, 7);
	assert_int_equal(d->lz4_block_size, 65536);
	assert_int_equal(d->fill.u, UINT64_MAX);
	schema_free(s);
}

/* szip takes its two options, defaults of 32 pixels per block and nn
 * coding, and no shuffle: one inherited from defaults is dropped. */
static void test_channel_szip(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		LINE_HEAD "streams:\n  - name: s\n    match: { measurement: m }\n"
			  "    defaults: { dtype: int16, compression: lz4, shuffle: true }\n"
			  "    channels:\n      a: { compression: szip }\n"
			  "      b: { compression: szip, szip_pixels_per_block: 8, szip_coding: ec,"
			  " fletcher32: true, dtype: float32 }\n");
	const struct schema_channel *a = &s->streams[0].channels[0], *b = &s->streams[0].channels[1];
	assert_int_equal(a->compression, SCHEMA_COMPRESSION_SZIP);
	assert_int_equal(a->szip_pixels_per_block, 32);
	assert_int_equal(a->szip_coding, SCHEMA_SZIP_NN);
	assert_false(a->shuffle);
	assert_false(a->fletcher32);
	assert_int_equal(b->szip_pixels_per_block, 8);
	assert_int_equal(b->szip_coding, SCHEMA_SZIP_EC);
	assert_true(b->fletcher32);
	assert_int_equal(b->dtype, DTYPE_FLOAT32);
	schema_free(s);
}

static void test_string_channel_skips_numeric_defaults(void **state)
{
	(void)state;
	struct schema *s = load_ok(LINE_HEAD "streams:\n  - name: s\n    match: { measurement: m }\n"
					     "    defaults: { fill: -1, scale_factor: 2, dtype: int16,"
					     " fletcher32: true }\n"
					     "    channels:\n      a: {}\n      status: { dtype: string }\n");
	const struct schema_channel *a = &s->streams[0].channels[0], *st = &s->streams[0].channels[1];

	assert_true(a->has_packing && a->scale_factor == 2);
	/* HDF5 refuses Fletcher-32 on variable-length strings */
	assert_true(a->fletcher32);
	assert_false(st->fletcher32);
	assert_true(a->has_fill && a->fill.i == -1);
	assert_int_equal(st->dtype, DTYPE_STRING);
	assert_false(st->has_packing);
	assert_false(st->has_fill);
	assert_true(st->scale_factor == 1);
	schema_free(s);
}

static void test_attrs_and_fills(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		LINE_HEAD "streams:\n  - name: s\n    match: { measurement: m }\n"
			  "    attrs: { i: -12, f: 2.5, q: \"3\", b: true, t: text }\n"
			  "    channels:\n      nan: { fill: .nan }\n      ninf: { fill: -.inf }\n"
			  "      small: { dtype: int64, fill: -9223372036854775808 }\n"
			  "      f32: { dtype: float32, fill: -3.4e38 }\n"
			  "      status: { dtype: string, own_time: true }\n");
	const struct schema_stream *st = &s->streams[0];

	assert_int_equal(st->nattrs, 5);
	assert_int_equal(st->attrs[0].type, SCHEMA_ATTR_INT);
	assert_int_equal(st->attrs[0].i, -12);
	assert_int_equal(st->attrs[1].type, SCHEMA_ATTR_FLOAT);
	assert_true(st->attrs[1].f == 2.5);
	assert_int_equal(st->attrs[2].type, SCHEMA_ATTR_STRING);
	assert_string_equal(st->attrs[2].text, "3");
	assert_int_equal(st->attrs[3].type, SCHEMA_ATTR_STRING);
	assert_string_equal(st->attrs[3].text, "true");
	assert_int_equal(st->attrs[4].type, SCHEMA_ATTR_STRING);
	assert_true(isnan(st->channels[0].fill.f) && st->channels[0].has_fill);
	assert_true(isinf(st->channels[1].fill.f) && st->channels[1].fill.f < 0);
	assert_true(st->channels[2].fill.i == INT64_MIN);
	assert_true(st->channels[3].fill.f == -3.4e38);
	assert_int_equal(st->channels[4].dtype, DTYPE_STRING);
	assert_true(st->channels[4].own_time);
	schema_free(s);
}

static void test_attrs_everywhere(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		"name: t\nattrs: { title: \"Lab run\", version: 3 }\n"
		"listen:\n  - { protocol: frame, transport: tcp, address: \"7601\" }\n"
		"streams:\n  - name: d\n    match: { key: \"d/{channel}\" }\n"
		"    layout: records\n    samples: 4\n    dt: 1.0e-3\n"
		"    defaults: { attrs: { coupling: DC } }\n"
		"    event_fields:\n"
		"      mass: { dtype: float32, units: kg, long_name: \"grain mass\",\n"
		"              attrs: { standard_name: mass, valid_range: [0, 1.5e-12] } }\n"
		"      run: string\n"
		"    channels:\n"
		"      a: { attrs: { gain: 2, range: [-10, 10], offset: -0.5 } }\n"
		"      b: {}\n");
	const struct schema_stream *st = &s->streams[0];

	assert_int_equal(s->nattrs, 2);
	assert_string_equal(s->attrs[0].name, "title");
	assert_int_equal(s->attrs[0].type, SCHEMA_ATTR_STRING);
	assert_int_equal(s->attrs[1].type, SCHEMA_ATTR_INT);
	const struct schema_channel *a = &st->channels[0], *b = &st->channels[1];
	assert_int_equal(a->nattrs, 3);
	assert_int_equal(a->attrs[0].type, SCHEMA_ATTR_INT);
	assert_int_equal(a->attrs[1].type, SCHEMA_ATTR_INTS);
	assert_int_equal(a->attrs[1].count, 2);
	assert_true(a->attrs[1].ints[0] == -10 && a->attrs[1].ints[1] == 10);
	assert_int_equal(a->attrs[2].type, SCHEMA_ATTR_FLOAT);
	assert_int_equal(b->nattrs, 1); /* from defaults */
	assert_string_equal(b->attrs[0].name, "coupling");
	assert_string_equal(b->attrs[0].text, "DC");
	const struct schema_event_field *mass = &st->event_fields[0];
	assert_int_equal(mass->dtype, DTYPE_FLOAT32);
	assert_string_equal(mass->units, "kg");
	assert_string_equal(mass->long_name, "grain mass");
	assert_int_equal(mass->nattrs, 2);
	assert_int_equal(mass->attrs[1].type, SCHEMA_ATTR_FLOATS);
	assert_true(mass->attrs[1].floats[0] == 0 && mass->attrs[1].floats[1] == 1.5e-12);
	assert_int_equal(st->event_fields[1].dtype, DTYPE_STRING);
	assert_null(st->event_fields[1].units);
	schema_free(s);
}

static void test_listen_forms(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		"name: t\ncontrol: { socket: /tmp/t.sock }\nlisten:\n"
		"  - { protocol: line, transport: tcp, address: \"[::1]:7601\", precision: ms,"
		" allow: [\"::1\", \"fd00::/8\"] }\n"
		"  - { protocol: line, transport: unix, address: /tmp/t-line.sock }\n"
		"  - { protocol: line, transport: udp, address: 7601 }\n"
		"streams:\n  - name: s\n    match: { measurement: m }\n    channels:\n      a: {}\n");

	assert_string_equal(s->control.socket, "/tmp/t.sock");
	assert_string_equal(s->listen[0].host, "::1");
	assert_int_equal(s->listen[0].port, 7601);
	assert_int_equal(s->listen[0].precision, LINE_PRECISION_MS);
	assert_int_equal(s->listen[0].allow[0].family, AF_INET6);
	assert_int_equal(s->listen[0].allow[0].prefix_len, 128);
	assert_int_equal(s->listen[0].allow[1].prefix_len, 8);
	assert_int_equal(s->listen[0].allow[1].addr[0], 0xfd);
	assert_int_equal(s->listen[1].transport, SCHEMA_TRANSPORT_UNIX);
	assert_string_equal(s->listen[1].path, "/tmp/t-line.sock");
	assert_null(s->listen[1].host);
	assert_int_equal(s->listen[1].port, 0);
	assert_string_equal(s->listen[2].host, "127.0.0.1");
	schema_free(s);
}

/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d and matches
 * them against IPv4 rules, so a rule written in that form must become the
 * IPv4 rule (prefix less 96), or it would never match anyone. */
static void test_allow_mapped_ipv4(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		"name: t\nlisten:\n"
		"  - { protocol: line, transport: tcp, address: \"[::]:7601\", allow:"
		" [\"::ffff:127.0.0.1\", \"::ffff:10.0.0.0/104\", \"::FFFF:0:0/96\","
		" \"::ffff:c0a8:101/128\", \"::ffff:1.2.3.4/127\", \"::1\", \"::/0\"] }\n"
		"streams:\n  - name: s\n    match: { measurement: m }\n    channels:\n      a: {}\n");
	static const struct {
		int family;
		unsigned prefix_len;
		uint8_t addr[16];
		const char *text;
	} want[] = {
		{AF_INET, 32, {127, 0, 0, 1}, "::ffff:127.0.0.1"},
		{AF_INET, 8, {10}, "::ffff:10.0.0.0/104"},
		{AF_INET, 0, {0}, "::FFFF:0:0/96"},
		{AF_INET, 32, {192, 168, 1, 1}, "::ffff:c0a8:101/128"},
		{AF_INET, 31, {1, 2, 3, 4}, "::ffff:1.2.3.4/127"},
		{AF_INET6, 128, {[15] = 1}, "::1"},
		{AF_INET6, 0, {0}, "::/0"},
	};
	const struct schema_listen *l = &s->listen[0];

	assert_int_equal(l->nallow, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < l->nallow; i++) {
		assert_string_equal(l->allow[i].text, want[i].text);
		assert_int_equal(l->allow[i].family, want[i].family);
		assert_int_equal(l->allow[i].prefix_len, want[i].prefix_len);
		assert_memory_equal(l->allow[i].addr, want[i].addr, 16);
	}
	schema_free(s);
}

static void test_specific_key_before_general(void **state)
{
	(void)state;
	struct schema *s = load_ok(
		"name: t\nlisten:\n  - { protocol: frame, transport: tcp, address: \"7701\" }\n"
		"streams:\n"
		"  - { name: dust, match: { key: \"dust/{channel}\" }, layout: stream,"
		" channels: { a: { dt: 1 } } }\n"
		"  - { name: adc, match: { key: \"{board}/{channel}\" }, group: \"/{board}\","
		" layout: stream, channels: { a: { dt: 1 } } }\n"
		"  - { name: deep, match: { key: \"{board}/x/{channel}\" }, group: \"/{board}/x\","
		" layout: stream, channels: { a: { dt: 1 } } }\n");
	assert_int_equal(s->nstreams, 3);
	assert_string_equal(s->streams[0].group.text, "/dust");
	schema_free(s);
}

static void test_load_file_errors(void **state)
{
	(void)state;
	struct schema *s = (struct schema *)1;
	struct schema_error err;

	assert_int_equal(schema_load_file("/nonexistent/x.yaml", &s, &err), -ENOENT);
	assert_null(s);
	assert_string_equal(err.message, "/nonexistent/x.yaml: cannot open: No such file or directory");
	schema_free(NULL);
}

/* PREFIX, then OPEN repeated depth times, then CLOSE repeated depth times,
 * then SUFFIX, as a new string. */
static char *nested(const char *prefix, const char *open, const char *close, size_t depth,
		    const char *suffix)
{
	size_t lp = strlen(prefix), lo = strlen(open), lc = strlen(close), ls = strlen(suffix);
	char *text = malloc(lp + depth * (lo + lc) + ls + 1), *p = text;

	assert_non_null(text);
	memcpy(p, prefix, lp);
	p += lp;
	for (size_t i = 0; i < depth; i++, p += lo)
		memcpy(p, open, lo);
	for (size_t i = 0; i < depth; i++, p += lc)
		memcpy(p, close, lc);
	memcpy(p, suffix, ls + 1);
	return text;
}

static void assert_load_fails(char *text, const char *message)
{
	struct schema *s = (struct schema *)1;
	struct schema_error err;

	assert_int_equal(schema_load_string(text, strlen(text), "t.yaml", &s, &err), -EINVAL);
	assert_null(s);
	assert_string_equal(err.message, message);
	free(text);
}

#define TOO_DEEP ": mappings and lists nested more than 64 deep (a schema needs 5)"

/*
 * Nesting is bounded (64) before libyaml builds the tree: without the bound,
 * 40,000 '[' took seconds (libyaml's scanner is quadratic in flow depth).
 * The error points at the first mapping or list past the bound; the root
 * mapping counts as the first level.
 */
static void test_depth_bound(void **state)
{
	(void)state;

	/* the root mapping, then '[' from 2:9: the 65th level is at 9 + 63 */
	assert_load_fails(nested("name: t\nlisten: ", "[", "]", 40000, "\n"),
			  "t.yaml:2:72" TOO_DEEP);
	assert_load_fails(nested("name: t\nlisten: ", "{a: ", "}", 40000, "\n"),
			  "t.yaml:2:261" TOO_DEEP);
	/* block lists "- - - x", two columns a level, from 3:1 */
	assert_load_fails(nested("name: t\nlisten:\n", "- ", "", 40000, "x\n"),
			  "t.yaml:3:127" TOO_DEEP);
	/* block mappings, one line and one column a level */
	char *text = malloc(100 * (100 + 3) + 1), *p = text;
	assert_non_null(text);
	for (size_t level = 0; level < 100; level++) {
		memset(p, ' ', level);
		p += level;
		memcpy(p, "k:\n", 4);
		p += 3;
	}
	assert_load_fails(text, "t.yaml:65:65" TOO_DEEP);
	/* never closed: the depth is found before the end that is missing */
	assert_load_fails(nested("name: t\nlisten: ", "[", "", 40000, ""), "t.yaml:2:72" TOO_DEEP);
	/* a syntax error before the bound is reported as before */
	assert_load_fails(nested("name: t\nlisten: [}", "[", "", 100, "\n"),
			  "t.yaml:2:10: YAML syntax error: did not find expected node content "
			  "while parsing a flow node");
	/* exactly 64 levels are not refused for their depth */
	assert_load_fails(nested("name: t\nlisten: ", "[", "]", 63, "\nstreams: []\n"),
			  "t.yaml:2:10: listen[0]: expected a mapping (protocol, transport, "
			  "address), got a list");
}

/* ---- the strict parsers -------------------------------------------------- */

static void test_sizes(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc;
		uint64_t bytes;
	} cases[] = {
		{"0B", 0, 0},
		{"512B", 0, 512},
		{"64KiB", 0, 65536},
		{"64MiB", 0, 64 * MiB},
		{"4GiB", 0, 4 * GiB},
		{"2TiB", 0, UINT64_C(2) << 40},
		{"1KB", 0, 1000},
		{"5MB", 0, 5000000},
		{"3GB", 0, 3000000000},
		{"1TB", 0, 1000000000000},
		{"1048576TiB", 0, UINT64_C(1) << 60},
		{"1048577TiB", -ERANGE, 0},
		{"99999999999999999999B", -ERANGE, 0},
		{"1.5GiB", -EINVAL, 0},
		{"-1MiB", -EINVAL, 0},
		{"+1MiB", -EINVAL, 0},
		{"64", -EINVAL, 0},
		{"64 MiB", -EINVAL, 0},
		{"64mib", -EINVAL, 0},
		{"64k", -EINVAL, 0},
		{"MiB", -EINVAL, 0},
		{"", -EINVAL, 0},
		{"1e3B", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t bytes = 12345;
		int rc = schema_parse_size(cases[i].text, &bytes);
		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d, expected %d", cases[i].text, rc, cases[i].rc);
		if (rc == 0)
			assert_int_equal(bytes, cases[i].bytes);
	}
	char buf[32];
	schema_format_size(64 * MiB, buf, sizeof(buf));
	assert_string_equal(buf, "64MiB");
	schema_format_size(1000, buf, sizeof(buf));
	assert_string_equal(buf, "1000B");
	schema_format_size(0, buf, sizeof(buf));
	assert_string_equal(buf, "0B");
}

static void test_durations(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc;
		int64_t ns;
	} cases[] = {
		{"250ms", 0, 250000000},
		{"10s", 0, 10 * SEC},
		{"1h", 0, 3600 * SEC},
		{"1d", 0, 86400 * SEC},
		{"5m", 0, 300 * SEC},
		{"5min", 0, 300 * SEC},
		{"7ns", 0, 7},
		{"3us", 0, 3000},
		{"1.5s", 0, 1500000000},
		{"0.25ms", 0, 250000},
		{"0s", 0, 0},
		{"106751d", 0, INT64_C(106751) * 86400 * SEC},
		{"106752d", -ERANGE, 0},
		{"0.5ns", -EINVAL, 0},
		{"1.s", -EINVAL, 0},
		{".5s", -EINVAL, 0},
		{"10", -EINVAL, 0},
		{"10 s", -EINVAL, 0},
		{"10 parsecs", -EINVAL, 0},
		{"-1s", -EINVAL, 0},
		{"1e3ms", -EINVAL, 0},
		{"1S", -EINVAL, 0},
		{"", -EINVAL, 0},
		{"0.1234567890123456789s", -EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ns = -1;
		int rc = schema_parse_duration(cases[i].text, &ns);
		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d, expected %d", cases[i].text, rc, cases[i].rc);
		if (rc == 0)
			assert_int_equal(ns, cases[i].ns);
	}
	char buf[32];
	schema_format_duration(3600 * SEC, buf, sizeof(buf));
	assert_string_equal(buf, "1h");
	schema_format_duration(60 * SEC, buf, sizeof(buf));
	assert_string_equal(buf, "1min");
	schema_format_duration(1500 * 1000000, buf, sizeof(buf));
	assert_string_equal(buf, "1500ms");
}

static void test_templates(void **state)
{
	(void)state;
	struct schema_template t;
	char why[128], out[64];
	static const char *const names[] = {"name", "seq", "date"};
	static const char *const values[] = {"weather", "3", "20260101"};

	assert_int_equal(schema_template_parse("{name}-{date}-{seq}.h5", &t, why, sizeof(why)), 0);
	assert_int_equal(t.nparts, 6);
	assert_true(schema_template_has(&t, "seq"));
	assert_false(schema_template_has(&t, "time"));
	assert_int_equal(schema_template_expand(&t, names, values, 3, out, sizeof(out)), 21);
	assert_string_equal(out, "weather-20260101-3.h5");
	assert_int_equal(schema_template_expand(&t, names, values, 2, out, sizeof(out)), -ENOENT);
	assert_int_equal(schema_template_expand(&t, names, values, 3, out, 21), -ENOSPC);
	assert_int_equal(schema_template_expand(&t, names, values, 3, out, 22), 21);
	schema_template_free(&t);

	assert_int_equal(schema_template_parse("plain", &t, why, sizeof(why)), 0);
	assert_int_equal(t.nparts, 1);
	assert_int_equal(schema_template_expand(&t, NULL, NULL, 0, out, sizeof(out)), 5);
	schema_template_free(&t);
	assert_int_equal(schema_template_parse("", &t, why, sizeof(why)), 0);
	assert_int_equal(t.nparts, 0);
	assert_int_equal(schema_template_expand(&t, NULL, NULL, 0, out, sizeof(out)), 0);
	schema_template_free(&t);

	static const char *const bad[] = {"{", "}", "a{b", "a}b", "{}", "{a{b}}", "{1a}", "{a-b}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (schema_template_parse(bad[i], &t, why, sizeof(why)) != -EINVAL)
			fail_msg("'%s' parsed", bad[i]);
		assert_null(t.parts);
	}
}

static void test_placeholder_values(void **state)
{
	(void)state;
	assert_true(schema_placeholder_value_valid("15", 2));
	assert_true(schema_placeholder_value_valid("board-1.a_B", 11));
	assert_true(schema_placeholder_value_valid("ab/cd", 2));
	assert_false(schema_placeholder_value_valid("ab/cd", 5));
	assert_false(schema_placeholder_value_valid("", 0));
	assert_false(schema_placeholder_value_valid(".hidden", 7));
	assert_false(schema_placeholder_value_valid("..", 2));
	assert_false(schema_placeholder_value_valid("a b", 3));
	assert_false(schema_placeholder_value_valid("a\0b", 3));
	assert_false(schema_placeholder_value_valid("\xc3\xa9", 2));
	char long_value[66];
	memset(long_value, 'x', sizeof(long_value));
	assert_true(schema_placeholder_value_valid(long_value, 64));
	assert_false(schema_placeholder_value_valid(long_value, 65));
	assert_true(schema_placeholder_name_valid("_a1"));
	assert_false(schema_placeholder_name_valid("1a"));
}

static void test_addresses(void **state)
{
	(void)state;
	char why[200], *host;
	uint16_t port;
	struct schema_allow allow;

	assert_int_equal(schema_parse_hostport("0.0.0.0:1", &host, &port, why, sizeof(why)), 0);
	assert_string_equal(host, "0.0.0.0");
	assert_int_equal(port, 1);
	free(host);
	assert_int_equal(schema_parse_hostport("[fe80::1]:65535", &host, &port, why, sizeof(why)), 0);
	assert_string_equal(host, "fe80::1");
	assert_int_equal(port, 65535);
	free(host);
	static const char *const bad[] = {"1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:07", "1.2.3.4:",
					  "1.2.3:80", "::1:80", "[::1]", "host:80", "0", "-1",
					  "1.2.3.4:+80", "[1.2.3.4]:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (schema_parse_hostport(bad[i], &host, &port, why, sizeof(why)) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_null(host);
	}
	assert_int_equal(schema_parse_allow("192.168.0.0/16", &allow, why, sizeof(why)), 0);
	assert_int_equal(allow.prefix_len, 16);
	free(allow.text);
	assert_int_equal(schema_parse_allow("0.0.0.0/0", &allow, why, sizeof(why)), 0);
	free(allow.text);
	static const char *const bad_allow[] = {"192.168.0.1/16", "10.0.0.0/33", "::/129",
						"10.0.0.0/", "10.0.0.0/08", "example.com",
						"10.0.0.0/8/8"};
	for (size_t i = 0; i < sizeof(bad_allow) / sizeof(bad_allow[0]); i++)
		if (schema_parse_allow(bad_allow[i], &allow, why, sizeof(why)) != -EINVAL)
			fail_msg("'%s' accepted", bad_allow[i]);
}

static void test_dtypes(void **state)
{
	(void)state;
	enum dtype type;

	for (int i = DTYPE_INT8; i <= DTYPE_STRING; i++) {
		const char *name = dtype_name((enum dtype)i);
		assert_non_null(name);
		assert_int_equal(dtype_from_name(name, &type), 0);
		assert_int_equal(type, i);
	}
	assert_int_equal(dtype_size(DTYPE_INT16), 2);
	assert_int_equal(dtype_size(DTYPE_UINT64), 8);
	assert_int_equal(dtype_size(DTYPE_FLOAT32), 4);
	assert_int_equal(dtype_size(DTYPE_STRING), 0);
	assert_int_equal(dtype_size(DTYPE_NONE), 0);
	assert_int_equal(dtype_size((enum dtype)99), 0);
	assert_null(dtype_name((enum dtype)99));
	assert_string_equal(dtype_name(DTYPE_NONE), "none");
	assert_int_equal(dtype_from_name("none", &type), -EINVAL);
	assert_int_equal(dtype_from_name("float16", &type), -EINVAL);
	assert_int_equal(dtype_from_name("Float32", &type), -EINVAL);
}

/* ---- invalid schemas ------------------------------------------------------ */

struct bad_case {
	const char *title;
	const char *yaml;
	const char *message;
};

static const struct bad_case bad_cases[] = {
	{"yaml syntax",
	  "name: t\n"
	  "listen: [\n"
	  "  - a\n",
	  "t.yaml:3:3: YAML syntax error: did not find expected node content while parsing a flow node"},
	{"tab indentation",
	  "name: t\n"
	  "listen:\n"
	  "\t- a\n",
	  "t.yaml:3:1: YAML syntax error: found character that cannot start any token while scanning for the next token"},
	{"empty document",
	  "",
	  "t.yaml:1:1: the schema is empty"},
	{"root is a list",
	  "- name: t\n",
	  "t.yaml:1:1: expected a mapping of name, output, listen, streams, got a list"},
	{"two documents",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n"
	  "---\n"
	  "name: u\n",
	  "t.yaml:10:1: expected one YAML document, found a second one here"},
	{"unknown top key, near miss",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "strems:\n"
	  "  - name: s\n",
	  "t.yaml:4:1: unknown key 'strems' at the top level (did you mean 'streams'?)"},
	{"unknown top key",
	  "colour: red\n"
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:1:1: unknown key 'colour' at the top level"},
	{"duplicate top key",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "name: u\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:1: duplicate key 'name' at the top level (first given on line 1)"},
	{"missing name",
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:1:1: missing required key 'name' at the top level"},
	{"bad name",
	  "name: bad/name\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:1:7: name: expected a name of letters, digits, '_', '.' and '-' (at most 64, not starting with '.'), got 'bad/name'"},
	{"missing listen",
	  "name: t\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:1:1: missing required key 'listen' at the top level (or 'sources': a recorder needs at least one of them)"},
	{"empty listen",
	  "name: t\n"
	  "listen: []\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:2:9: listen: expected at least one listener"},
	{"empty streams",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams: []\n",
	  "t.yaml:4:10: streams: expected at least one stream"},
	{"NUL in a string",
	  "name: \"t\\0x\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:1:7: name: contains a NUL character"},
	{"roll every garbage",
	  "name: t\n"
	  "output:\n"
	  "  roll: { every: 10 parsecs }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:18: output.roll.every: expected a duration like 250ms, 10s, 1h, 1d, got '10 parsecs'"},
	{"roll every fraction of ns",
	  "name: t\n"
	  "output:\n"
	  "  roll: { every: 0.5ns }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:18: output.roll.every: expected a duration like 250ms, 10s, 1h, 1d, got '0.5ns'"},
	{"roll size fraction",
	  "name: t\n"
	  "output:\n"
	  "  roll: { size: 1.5GiB }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:17: output.roll.size: expected a size like 64KiB, 512MiB, 4GiB (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), got '1.5GiB'"},
	{"size unit case",
	  "name: t\n"
	  "output:\n"
	  "  roll: { size: 4gib }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:17: output.roll.size: expected a size like 64KiB, 512MiB, 4GiB (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), got '4gib'"},
	{"size overflow",
	  "name: t\n"
	  "output:\n"
	  "  roll: { size: 99999999999999999999B }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:17: output.roll.size: expected a size from 1MiB to 1048576TiB, got '99999999999999999999B'"},
	{"flush bare number",
	  "name: t\n"
	  "output:\n"
	  "  flush: 1\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:10: output.flush: expected a duration like 250ms, 10s, 1h, 1d, got '1'"},
	{"flush out of range",
	  "name: t\n"
	  "output:\n"
	  "  flush: 2h\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:10: output.flush: expected a duration from 1ms to 1h, got '2h'"},
	{"roll unknown key",
	  "name: t\n"
	  "output:\n"
	  "  roll: { evry: 1d }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:11: unknown key 'evry' in output.roll (did you mean 'every'?)"},
	{"roll empty",
	  "name: t\n"
	  "output:\n"
	  "  roll: {}\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:9: output.roll: expected every (a duration) and/or size"},
	{"driver enum",
	  "name: t\n"
	  "output:\n"
	  "  driver: posix\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:11: output.driver: expected one of sec2, family, got 'posix'"},
	{"family without member_size",
	  "name: t\n"
	  "output:\n"
	  "  driver: family\n"
	  "  file: \"{name}-{seq}-{member}.h5\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:11: output.driver: family needs output.member_size (the size of each member file)"},
	{"family without {member}",
	  "name: t\n"
	  "output:\n"
	  "  driver: family\n"
	  "  member_size: 1GiB\n"
	  "  file: \"{name}-{seq}.h5\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:5:9: output.file: the family driver needs {member} in the file name (the member number)"},
	{"family with swmr",
	  "name: t\n"
	  "output:\n"
	  "  driver: family\n"
	  "  member_size: 1GiB\n"
	  "  swmr: true\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:5:9: output.swmr: SWMR is not available with the family driver (HDF5 allows one or the other)"},
	{"member_size with sec2",
	  "name: t\n"
	  "output:\n"
	  "  member_size: 1GiB\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:3: output.member_size: only used with driver: family"},
	{"{member} with sec2",
	  "name: t\n"
	  "output:\n"
	  "  file: \"{name}-{seq}-{member}.h5\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:9: output.file: {member} is only used with driver: family"},
	{"file unknown placeholder",
	  "name: t\n"
	  "output:\n"
	  "  file: \"{station}-{seq}.h5\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:9: output.file: unknown placeholder '{station}' (expected {name} {host} {shard} {date} {time} {seq} {run} {member})"},
	{"file without {seq}",
	  "name: t\n"
	  "output:\n"
	  "  file: \"{name}-{date}.h5\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:9: output.file: the file name must contain {seq}, so that a new file never overwrites an old one"},
	{"file with a directory",
	  "name: t\n"
	  "output:\n"
	  "  file: \"sub/{name}-{seq}.h5\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:9: output.file: expected a file name without '/' (directories go in output.directory), got 'sub/{name}-{seq}.h5'"},
	{"file brace not closed",
	  "name: t\n"
	  "output:\n"
	  "  file: \"{name}-{seq.h5\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:9: output.file: '{' at offset 7 is not closed by '}'"},
	{"placeholder name",
	  "name: t\n"
	  "output:\n"
	  "  file: \"{1x}-{seq}.h5\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:9: output.file: placeholder '{1x}' is not a valid name ([A-Za-z_][A-Za-z0-9_]*)"},
	{"swmr not a bool",
	  "name: t\n"
	  "output:\n"
	  "  swmr: yes\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:9: output.swmr: expected true or false, got 'yes'"},
	{"output not a mapping",
	  "name: t\n"
	  "output: data\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:2:9: output: expected a mapping, got 'data'"},
	{"control socket too long",
	  "name: t\n"
	  "control: { socket: \"/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:2:20: control.socket: path is too long for a Unix socket (at most 107 bytes)"},
	{"max_groups zero",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "limits: { max_groups: 0 }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:23: limits.max_groups: expected an integer from 1 to 10000000, got '0'"},
	{"max_groups negative",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "limits: { max_groups: -5 }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:23: limits.max_groups: expected an integer from 1 to 10000000, got '-5'"},
	{"max_frame above max_buffer",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "limits: { max_buffer: 1MiB, max_frame: 2MiB }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:40: limits.max_frame: must not exceed limits.max_buffer"},
	{"limits unknown key",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "limits: { max_lines: 1KiB }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:11: unknown key 'max_lines' in limits (did you mean 'max_line'?)"},
	{"protocol enum",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: https, transport: tcp, address: \"127.0.0.1:80\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:17: listen[0].protocol: expected one of line, frame, http, metrics, got 'https' (did you mean 'http'?)"},
	{"transport missing",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:5: listen[0]: missing required key 'transport'"},
	{"host name not allowed",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"localhost:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:48: listen[0].address: expected IPV4:PORT, [IPV6]:PORT or PORT, got 'localhost:7601' ('localhost' is not a numeric IPv4 address)"},
	{"port out of range",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:70000\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:48: listen[0].address: expected IPV4:PORT, [IPV6]:PORT or PORT, got '127.0.0.1:70000' (the port must be a number from 1 to 65535)"},
	{"ipv6 without port",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"[::1]7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:48: listen[0].address: expected IPV4:PORT, [IPV6]:PORT or PORT, got '[::1]7601' (an IPv6 address must be written [ADDRESS]:PORT)"},
	{"duplicate listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:48: listen[1].address: '127.0.0.1:7601' is already used by listen[0]"},
	{"precision on frame listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\", precision: ms }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:67: listen[1].precision: only line listeners take a precision (frame timestamps are always ns; an HTTP request names its own)"},
	{"token on line listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\", token: abc }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:66: listen[0].token: only frame and http listeners take a token (checked in the HELLO frame or the Authorization header)"},
	{"token on metrics listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "  - { protocol: metrics, transport: tcp, address: \"127.0.0.1:9100\", token: abc }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:69: listen[1].token: only frame and http listeners take a token (checked in the HELLO frame or the Authorization header)"},
	{"http over udp",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: http, transport: udp, address: \"127.0.0.1:8086\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:34: listen[0].transport: http listeners speak HTTP, which needs a connection: use tcp or unix"},
	{"max_body on line listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\", max_body: 1MiB }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:66: listen[0].max_body: only http listeners take a max_body"},
	{"retry_after on frame listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\", retry_after: 5s }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:67: listen[1].retry_after: only http listeners take a retry_after"},
	{"max_body too small",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: http, transport: tcp, address: \"127.0.0.1:8086\", max_body: 10 }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:76: listen[0].max_body: expected a size like 64KiB, 512MiB, 4GiB (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), got '10'"},
	{"token on udp listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: udp, address: \"127.0.0.1:7802\", token: abc }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"{b}/{channel}\" }\n"
	  "    group: \"/{b}\"\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dt: 1 }\n",
	  "t.yaml:3:67: listen[0].token: UDP has no connection to present a token on; use tcp or unix, or an allow list"},
	{"allow on unix",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: unix, address: /tmp/t.sock, allow: [127.0.0.1] }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:69: listen[0].allow: not used with transport unix (file permissions decide who may connect)"},
	{"allow host bits",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\", allow: [\"10.0.0.1/8\"] }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:74: listen[0].allow[0]: network '10.0.0.1/8' has host bits set after the /8 prefix"},
	{"allow prefix",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\", allow: [\"10.0.0.0/33\"] }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:74: listen[0].allow[0]: prefix length in '10.0.0.0/33' must be 0..32"},
	{"listen item not a mapping",
	  "name: t\n"
	  "listen:\n"
	  "  - 7601\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:5: listen[0]: expected a mapping (protocol, transport, address), got a scalar"},
	{"listener without stream",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:4:5: listen[1]: no stream takes frame protocol data (give a stream a match.key)"},
	{"stream without listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n"
	  "  - name: f\n"
	  "    match: { key: \"f/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      x: { dt: 1 }\n",
	  "t.yaml:3:3: listen: stream 'f' takes frame protocol data but no listener has protocol: frame"},
	{"line stream without line or http listener",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: metrics, transport: tcp, address: \"127.0.0.1:9100\" }\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n"
	  "  - name: f\n"
	  "    match: { key: \"f/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      x: { dt: 1 }\n",
	  "t.yaml:3:3: listen: stream 's' takes line protocol data but no listener has protocol: line or http"},
	{"stream key near miss",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    sampels: 10\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:5: unknown key 'sampels' in stream 's' (did you mean 'samples'?)"},
	{"match neither",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: {}\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:6:12: streams[s].match: expected measurement (line protocol) or key (frames)"},
	{"match both",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m, key: \"s/{channel}\" }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:6:30: streams[s].match: expected measurement (line protocol) or key (frames), not both"},
	{"key {channel} not last",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}/x\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:6:19: streams[s].match.key: the last part of a frame key must be {channel}, got 's/{channel}/x'"},
	{"key partial placeholder",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s{n}/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:6:19: streams[s].match.key: a placeholder must be a whole '/'-separated part, got 's{n}'"},
	{"key empty part",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s//{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:6:19: streams[s].match.key: expected parts separated by single '/', got an empty part in 's//{channel}'"},
	{"group placeholder not in key",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: stream\n"
	  "    group: \"/{board}\"\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:8:12: streams[s].group: placeholder '{board}' is not in match.key 's/{channel}'"},
	{"key placeholder not in group",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"{board}/{channel}\" }\n"
	  "    layout: stream\n"
	  "    group: /adc\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:8:12: streams[s].group: must use '{board}' from match.key, or streams from different board values would share a group"},
	{"{channel} in a group",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    group: \"/{channel}\"\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:12: streams[s].group: {channel} names a dataset and cannot be used in a group"},
	{"group not absolute",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    group: weather\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:12: streams[s].group: expected an absolute path below the root like /s, got 'weather'"},
	{"group dot-dot",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    group: \"/a/../b\"\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:12: streams[s].group: empty, '.' and '..' parts are not allowed, got '/a/../b'"},
	{"line stream records",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    layout: records\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:13: streams[s].layout: line protocol streams (match.measurement) use layout table, got 'records'"},
	{"frame stream table",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:6:19: streams[s]: frame streams (match.key) need layout: records or layout: stream (the default, table, is for line protocol)"},
	{"records without samples",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    dt: 1.0e-6\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:5:5: streams[s]: layout records needs samples (the samples per waveform)"},
	{"records without dt",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 10\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:5:5: streams[s]: layout records needs dt (the sample interval in seconds)"},
	{"samples on table",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    samples: 10\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:5: streams[s].samples: only used with layout records"},
	{"record_timeout on stream",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: stream\n"
	  "    record_timeout: 2s\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:8:5: streams[s].record_timeout: only used with layout records or with "
	  "events: true"},
	{"event_fields on table",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    event_fields: { mass: float32 }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:5: streams[s].event_fields: only used with layout records"},
	{"events on records",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 10\n"
	  "    dt: 1.0e-6\n"
	  "    events: true\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:10:5: streams[s].events: only used with layout stream (a records stream is "
	  "made of events already)"},
	{"event field on the event table's axis",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"{channel}\" }\n"
	  "    layout: stream\n"
	  "    events: true\n"
	  "    event_fields: { event_time: float32 }\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:9:21: streams[s].event_fields: 'event_time' collides with a layout dataset of "
	  "the same name"},
	{"event field named like a channel's event column",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"{channel}\" }\n"
	  "    layout: stream\n"
	  "    events: true\n"
	  "    event_fields: { a_event_count: int32 }\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:9:21: streams[s].event_fields: 'a_event_count' collides with a layout dataset "
	  "of the same name"},
	{"channel named like the event table's columns",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"{channel}\" }\n"
	  "    layout: stream\n"
	  "    events: true\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n"
	  "      a_event_start: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:11:7: streams[s].channels: channel 'a_event_start' collides with the dataset "
	  "'a_event_start' of layout stream"},
	{"unknown_fields enum",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    unknown_fields: keep\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:21: streams[s].unknown_fields: expected one of drop, error, got 'keep'"},
	{"duplicate channel",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n"
	  "      b: {}\n"
	  "      a: {}\n",
	  "t.yaml:10:7: streams[s].channels: duplicate channel 'a' (first given on line 8)"},
	{"channel name",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      bad name: {}\n",
	  "t.yaml:8:7: streams[s].channels: expected a channel name of letters, digits, '_', '.' and '-' (at most 64, not starting with '.'), got 'bad name'"},
	{"channel dtype",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: float16 }\n",
	  "t.yaml:8:19: streams[s].channels.a.dtype: expected a dtype (int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64, string), got 'float16' (did you mean 'float32'?)"},
	{"channel unknown key (brief example)",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      wind: { dtype: float32, chunks: 10 }\n",
	  "t.yaml:8:31: unknown key 'chunks' in channel 'wind' (did you mean 'chunk'?)"},
	{"channel not a mapping",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: float32\n",
	  "t.yaml:8:10: streams[s].channels.a: expected a mapping of channel options (use {} for all defaults), got a scalar"},
	{"channels empty",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      {}\n",
	  "t.yaml:8:7: streams[s].channels: expected at least one channel"},
	{"string in records",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    channels:\n"
	  "      a: { dtype: string }\n",
	  "t.yaml:11:19: streams[s].channels.a.dtype: string is only for layout table (status fields), this stream is records"},
	{"own_time in records",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    channels:\n"
	  "      a: { own_time: true }\n",
	  "t.yaml:11:22: streams[s].channels.a.own_time: only used with layout table"},
	{"dt on records channel",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    channels:\n"
	  "      a: { dt: 1.0e-6 }\n",
	  "t.yaml:11:12: streams[s].channels.a.dt: with layout records the sample interval is the stream's dt"},
	{"stream layout without dt",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16 }\n",
	  "t.yaml:9:7: streams[s].channels.a: layout stream needs dt (the sample interval in seconds), on the channel or in defaults"},
	{"level with lz4",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: lz4, level: 5 }\n",
	  "t.yaml:8:30: streams[s].channels.a.level: only used with compression: deflate (compression here is lz4)"},
	{"shuffle without compression",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: none, shuffle: true }\n",
	  "t.yaml:8:31: streams[s].channels.a.shuffle: only used with compression: deflate or lz4 (compression here is none)"},
	{"block_size with deflate",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: deflate, block_size: 1MiB }\n",
	  "t.yaml:8:34: streams[s].channels.a.block_size: only used with compression: lz4 (compression here is deflate)"},
	{"block_size too big",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: lz4, block_size: 3GiB }\n",
	  "t.yaml:8:42: streams[s].channels.a.block_size: expected a size from 0B to 2016MiB, got '3GiB'"},
	{"level out of range",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: deflate, level: 10 }\n",
	  "t.yaml:8:41: streams[s].channels.a.level: expected an integer from 1 to 9, got '10'"},
	{"szip pixels_per_block odd",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: szip, szip_pixels_per_block: 7 }\n",
	  "t.yaml:8:54: streams[s].channels.a.szip_pixels_per_block: expected an even number (szip codes samples in pairs), got 7"},
	{"szip pixels_per_block too big",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: szip, szip_pixels_per_block: 64 }\n",
	  "t.yaml:8:54: streams[s].channels.a.szip_pixels_per_block: expected an integer from 2 to 32, got '64'"},
	{"szip_coding with lz4",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: lz4, szip_coding: ec }\n",
	  "t.yaml:8:30: streams[s].channels.a.szip_coding: only used with compression: szip (compression here is lz4)"},
	{"szip_coding unknown",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: szip, szip_coding: chip }\n",
	  "t.yaml:8:44: streams[s].channels.a.szip_coding: expected one of nn, ec, got 'chip'"},
	{"shuffle with szip",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: szip, shuffle: true }\n",
	  "t.yaml:8:31: streams[s].channels.a.shuffle: only used with compression: deflate or lz4 (compression here is szip, which has its own preprocessing)"},
	{"szip on a string",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: string, compression: szip }\n",
	  "t.yaml:8:40: streams[s].channels.a.compression: szip needs a numeric dtype (this channel is string)"},
	{"szip chunk below a block",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: int16, compression: szip, chunk: 8 }\n",
	  "t.yaml:8:52: streams[s].channels.a.chunk: 8 elements per chunk, fewer than szip_pixels_per_block (32): szip needs a whole block"},
	{"szip defaults shuffle",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    defaults: { compression: szip, shuffle: true }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:36: streams[s].defaults.shuffle: only used with compression: deflate or lz4 (compression here is szip, which has its own preprocessing)"},
	{"defaults level with own compression",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    defaults: { compression: none, level: 3 }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:36: streams[s].defaults.level: only used with compression: deflate (compression here is none)"},
	{"fill int16 range",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: int16, fill: 40000 }\n",
	  "t.yaml:8:32: streams[s].channels.a.fill: expected an integer from -32768 to 32767 (int16), got '40000'"},
	{"fill uint8 negative",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: uint8, fill: -1 }\n",
	  "t.yaml:8:32: streams[s].channels.a.fill: expected an integer from 0 to 255 (uint8), got '-1'"},
	{"fill float32 range",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: float32, fill: 1e39 }\n",
	  "t.yaml:8:34: streams[s].channels.a.fill: expected a number within float32 range, got '1e39'"},
	{"fill string",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: string, fill: x }\n",
	  "t.yaml:8:33: streams[s].channels.a.fill: string channels have no fill value (a missing value is the empty string)"},
	{"fill float garbage",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { fill: abc }\n",
	  "t.yaml:8:18: streams[s].channels.a.fill: expected a number, .nan or .inf, got 'abc'"},
	{"scale_factor zero",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: int16, scale_factor: 0 }\n",
	  "t.yaml:8:40: streams[s].channels.a.scale_factor: expected a non-zero number, got '0'"},
	{"dt negative",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dt: -1 }\n",
	  "t.yaml:8:16: streams[s].channels.a.dt: expected a positive number, got '-1'"},
	{"dt inf",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dt: .inf }\n",
	  "t.yaml:8:16: streams[s].channels.a.dt: expected a positive number, got '.inf'"},
	{"chunk zero",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { chunk: 0 }\n",
	  "t.yaml:8:19: streams[s].channels.a.chunk: expected an integer from 1 to 4294967295, got '0'"},
	{"chunk too big",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    channels:\n"
	  "      a: { dtype: float64, chunk: 10000000 }\n",
	  "t.yaml:11:35: streams[s].channels.a.chunk: 10000000 rows of 800 bytes exceed HDF5's 4 GiB chunk limit"},
	{"waveform too big",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 1000000000\n"
	  "    dt: 1.0e-6\n"
	  "    channels:\n"
	  "      a: { dtype: float64 }\n",
	  "t.yaml:8:14: streams[s].samples: one waveform of float64 is 8000000000 bytes, above HDF5's 4 GiB chunk limit"},
	{"channel named time",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      time: {}\n",
	  "t.yaml:8:7: streams[s].channels: channel 'time' collides with the dataset 'time' of layout table"},
	{"channel clashes with frame index",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n"
	  "      a_frame_seq: { dt: 1.0 }\n",
	  "t.yaml:10:7: streams[s].channels: channel 'a_frame_seq' collides with the dataset 'a_frame_seq' of layout stream"},
	{"channel clashes with own_time",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { own_time: true }\n"
	  "      a_time: {}\n",
	  "t.yaml:9:7: streams[s].channels: channel 'a_time' collides with the dataset 'a_time' of layout table"},
	{"event field collides with channel",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    event_fields: { a: float32 }\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:21: streams[s].event_fields: 'a' collides with a channel of the same name"},
	{"event field reserved",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    event_fields: { event_id: uint64 }\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:21: streams[s].event_fields: 'event_id' collides with a layout dataset of the same name"},
	{"event field named like the records state column",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    event_fields: { record_state: uint8 }\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:21: streams[s].event_fields: 'record_state' collides with a layout dataset of the same name"},
	{"records channel named like the state column",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    channels:\n"
	  "      record_state: { dtype: float32 }\n",
	  "t.yaml:11:7: streams[s].channels: channel 'record_state' collides with the dataset 'record_state' of layout records"},
	{"string channel with fletcher32",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      state: { dtype: string, fletcher32: true }\n",
	  "t.yaml:8:31: streams[s].channels.state.fletcher32: HDF5 cannot checksum variable-length strings; only numeric dtypes take it"},
	{"channel clashes with source_seq (records, with sources)",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://127.0.0.1:4222], stream: S, consumer: c, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n"
	  "      source_seq: { dtype: float32 }\n",
	  "t.yaml:12:7: streams[s].channels: channel 'source_seq' collides with the dataset 'source_seq' of layout records"},
	{"channel clashes with source_seq (table, with sources)",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://127.0.0.1:4222], stream: S, consumer: c, protocol: line }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      source_seq: {}\n",
	  "t.yaml:8:7: streams[s].channels: channel 'source_seq' collides with the dataset 'source_seq' of layout table"},
	{"event field clashes with source_msg_id (records, with sources)",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://127.0.0.1:4222], stream: S, consumer: c, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    event_fields: { source_msg_id: string }\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:21: streams[s].event_fields: 'source_msg_id' collides with a layout dataset of the same name"},
	{"event field clashes with source_seq (records, with sources)",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://127.0.0.1:4222], stream: S, consumer: c, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    event_fields: { source_seq: uint64 }\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:21: streams[s].event_fields: 'source_seq' collides with a layout dataset of the same name"},
	{"channel clashes with frame_source_seq (stream, with sources)",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://127.0.0.1:4222], stream: S, consumer: c, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n"
	  "      a_frame_source_seq: { dt: 1.0 }\n",
	  "t.yaml:10:7: streams[s].channels: channel 'a_frame_source_seq' collides with the dataset 'a_frame_source_seq' of layout stream"},
	{"channel clashes with frame_source_msg_id (stream, with sources)",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://127.0.0.1:4222], stream: S, consumer: c, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n"
	  "      a_frame_source_msg_id: { dt: 1.0 }\n",
	  "t.yaml:10:7: streams[s].channels: channel 'a_frame_source_msg_id' collides with the dataset 'a_frame_source_msg_id' of layout stream"},
	{"event field clashes with frame_source_msg_id (stream, with sources)",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://127.0.0.1:4222], stream: S, consumer: c, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: stream\n"
	  "    events: true\n"
	  "    event_fields: { a_frame_source_msg_id: float32 }\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:9:21: streams[s].event_fields: 'a_frame_source_msg_id' collides with a layout dataset of the same name"},
	{"event field dtype",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    event_fields: { mass: double }\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:27: streams[s].event_fields.mass: expected a dtype (int8 ... uint64, float32, float64, string) or a mapping {dtype, units, long_name, attrs}, got 'double'"},
	{"duplicate stream name",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n"
	  "  - name: s\n"
	  "    match: { measurement: n }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:9:11: streams[s].name: stream 's' is already defined"},
	{"duplicate measurement",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n"
	  "  - name: u\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:10:27: streams[u].match.measurement: 'm' is already matched by stream 's'"},
	{"frame key shadowed by an earlier stream",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: u\n"
	  "    match: { key: \"{x}/{channel}\" }\n"
	  "    group: \"/{x}\"\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      b: { dt: 1 }\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:12:19: streams[s].match.key: 's/{channel}' can never match: every such key already matches '{x}/{channel}' of the earlier stream 'u' (streams are tried in order; put the more specific key first)"},
	{"same group",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n"
	  "  - name: u\n"
	  "    match: { measurement: n }\n"
	  "    group: /s\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:11:12: streams[u].group: '/s' is also the group of stream 's'"},
	{"attr collides with placeholder",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    group: \"/{station}\"\n"
	  "    attrs: { station: x }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:8:14: streams[s].attrs: 'station' collides with the group placeholder {station}, which is stored as an attribute of that name"},
	{"attr list of text",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    attrs: { tags: [a, b] }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:21: streams[s].attrs.tags[0]: expected a number (a list attribute holds numbers only), got 'a'"},
	{"root attr reserved Conventions",
	  "name: t\n"
	  "attrs: { title: x, Conventions: CF-1.6 }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:2:20: attrs: 'Conventions' is written by the recorder itself (the CF version the files meet)"},
	{"root attr not a mapping",
	  "name: t\n"
	  "attrs: [1, 2]\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:2:8: attrs: expected a mapping, got a list"},
	{"channel attr reserved units",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { units: V, attrs: { gain: 2, units: mV } }\n",
	  "t.yaml:8:40: streams[s].channels.a.attrs: 'units' is written by the recorder itself (the option units)"},
	{"channel attr reserved _FillValue",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { attrs: { _FillValue: 0 } }\n",
	  "t.yaml:8:21: streams[s].channels.a.attrs: '_FillValue' is written by the recorder itself (netCDF reserves names starting with '_', such as _FillValue, which the recorder writes from the option fill)"},
	{"channel attr reserved scale attribute",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { attrs: { DIMENSION_LIST: x } }\n",
	  "t.yaml:8:21: streams[s].channels.a.attrs: 'DIMENSION_LIST' is written by the recorder itself (HDF5 dimension scales)"},
	{"defaults attr reserved scale_factor",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    defaults: { attrs: { scale_factor: 2 } }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:26: streams[s].defaults.attrs: 'scale_factor' is written by the recorder itself (the option scale_factor)"},
	{"group attr reserved time_monotonic",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    attrs: { time_monotonic: 1 }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:14: streams[s].attrs: 'time_monotonic' is written by the recorder itself (whether the group's time axes are strictly increasing)"},
	{"attr empty list",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { attrs: { range: [] } }\n",
	  "t.yaml:8:28: streams[s].channels.a.attrs.range: expected a list of 1 to 1024 numbers, got 0"},
	{"attr nested mapping",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { attrs: { range: { lo: 1 } } }\n",
	  "t.yaml:8:28: streams[s].channels.a.attrs.range: expected a single value or a list of numbers, got a mapping"},
	{"attr quoted number in list",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { attrs: { range: [-10, \"10\"] } }\n",
	  "t.yaml:8:34: streams[s].channels.a.attrs.range[1]: expected a number (a list attribute holds numbers only), got '10'"},
	{"event field attr reserved long_name",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: d\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 4\n"
	  "    dt: 1.0e-3\n"
	  "    event_fields:\n"
	  "      mass: { dtype: float32, units: kg, attrs: { long_name: m } }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:11:51: streams[d].event_fields.mass.attrs: 'long_name' is written by the recorder itself (the option long_name)"},
	{"event field mapping without dtype",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: d\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 4\n"
	  "    dt: 1.0e-3\n"
	  "    event_fields:\n"
	  "      mass: { units: kg }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:11:13: streams[d].event_fields.mass: missing required key 'dtype'"},
	{"event field unknown option",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: d\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 4\n"
	  "    dt: 1.0e-3\n"
	  "    event_fields:\n"
	  "      mass: { dtype: float32, unit: kg }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:11:31: unknown key 'unit' in event field 'mass' (did you mean 'units'?)"},
	{"time window unknown key",
	  "name: t\n"
	  "output: { time_window: { before: 1d } }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:2:26: unknown key 'before' in output.time_window"},
	{"time window bad duration",
	  "name: t\n"
	  "output:\n"
	  "  time_window: { past: 0s }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:24: output.time_window.past: expected a duration from 1s to 36600d, got '0s'"},
	{"time window not a mapping",
	  "name: t\n"
	  "output: { time_window: 1d }\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:2:24: output.time_window: expected a mapping, got '1d'"},
	{"stream not a mapping",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - weather\n",
	  "t.yaml:5:5: streams[0]: expected a mapping (name, match, channels, ...), got a scalar"},
	{"key not a scalar",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n"
	  "  - name: u\n"
	  "    ? [a]\n"
	  "    : 1\n",
	  "t.yaml:10:7: keys in stream 'u' must be plain names, got a list"},
	{"null string",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { units: }\n",
	  "t.yaml:8:19: streams[s].channels.a.units: expected a non-empty string, got nothing"},
	{"tilde string",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { units: ~ }\n",
	  "t.yaml:8:19: streams[s].channels.a.units: expected a non-empty string, got nothing"},
	{"output null",
	  "name: t\n"
	  "output:\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:2:8: output: expected a mapping, got nothing"},
	{"attr null",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    attrs: { x: }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:17: streams[s].attrs.x: expected a single value or a list of numbers, got nothing"},
	{"defaults own_time in records",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    defaults: { own_time: true }\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:27: streams[s].defaults.own_time: only used with layout table"},
	{"defaults dt in records",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    defaults: { dt: 1.0e-6 }\n"
	  "    channels:\n"
	  "      a: { dtype: float32 }\n",
	  "t.yaml:10:17: streams[s].defaults.dt: with layout records the sample interval is the stream's dt"},
	{"scale on string channel",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: string, scale_factor: 2 }\n",
	  "t.yaml:8:27: streams[s].channels.a.scale_factor: only for numeric dtypes"},
	{"chunk from defaults too big",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: records\n"
	  "    samples: 100\n"
	  "    dt: 1.0e-6\n"
	  "    defaults: { chunk: 10000000 }\n"
	  "    channels:\n"
	  "      a: { dtype: float64 }\n",
	  "t.yaml:10:24: streams[s].defaults.chunk: 10000000 rows of 800 bytes exceed HDF5's 4 GiB chunk limit"},
	{"fill from defaults bad for int8",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    defaults: { fill: 300 }\n"
	  "    channels:\n"
	  "      a: { dtype: int8 }\n",
	  "t.yaml:7:23: streams[s].defaults.fill: expected an integer from -128 to 127 (int8), got '300'"},
	{"too many group placeholders",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    group: \"/{p0}/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/{p9}/{p10}/{p11}/{p12}/{p13}/{p14}/{p15}/{p16}\"\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:12: streams[s].group: at most 16 placeholders are allowed"},
	{"layout near miss",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    layout: tabel\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:13: streams[s].layout: expected one of table, records, stream, got 'tabel' (did you mean 'table'?)"},
	{"dtype near miss",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { dtype: float }\n",
	  "t.yaml:8:19: streams[s].channels.a.dtype: expected a dtype (int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64, string), got 'float' (did you mean 'float32'?)"},
	{"compression case",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: { compression: LZ4 }\n",
	  "t.yaml:8:25: streams[s].channels.a.compression: expected one of none, deflate, lz4, szip, got 'LZ4' (did you mean 'lz4'?)"},
	{"directory with placeholder",
	  "name: t\n"
	  "output:\n"
	  "  directory: \"data/{name}\"\n"
	  "listen:\n"
	  "  - { protocol: line, transport: tcp, address: \"127.0.0.1:7601\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { measurement: m }\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:3:14: output.directory: placeholders are not expanded here (only in output.file), got 'data/{name}'"},
	{"frame stream with layout table",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"s/{channel}\" }\n"
	  "    layout: table\n"
	  "    channels:\n"
	  "      a: {}\n",
	  "t.yaml:7:13: streams[s].layout: frame streams (match.key) use layout records or stream, got 'table'"},
	{"empty key template",
	  "name: t\n"
	  "listen:\n"
	  "  - { protocol: frame, transport: tcp, address: \"127.0.0.1:7701\" }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:6:19: streams[s].match.key: expected a non-empty template, got ''"},
	{"source of unknown backend",
	  "name: t\n"
	  "sources:\n"
	  "  - kafka: { brokers: [x] }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:5: sources[0]: unknown source 'kafka' (known: nats)"},
	{"source with two backends",
	  "name: t\n"
	  "sources:\n"
	  "  - { nats: {}, kafka: {} }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:5: sources[0]: expected a mapping of one backend (nats: {...}), got a mapping of several keys"},
	{"nats source without consumer",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://127.0.0.1:4222], stream: S, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:11: sources[0].nats: missing required key 'consumer'"},
	{"nats server not a URL",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [127.0.0.1:4222], stream: S, consumer: c, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:23: sources[0].nats.servers[0]: '127.0.0.1:4222' is not a server URL (nats://host:port or tls://host:port)"},
	{"nats stream name with a dot",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://h:4222], stream: a.b, consumer: c, protocol: frame }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:47: sources[0].nats.stream: 'a.b' is not a JetStream name (1 to 64 printable characters, none of . * > / \\ or space)"},
	{"nats subject with an empty token",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://h:4222], stream: S, consumer: c, protocol: frame, subjects: [a..b] }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:91: sources[0].nats.subjects[0]: 'a..b' is not a NATS subject"},
	{"nats ack_wait within two flushes",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://h:4222], stream: S, consumer: c, protocol: frame, ack_wait: 2s }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:90: sources[0].nats.ack_wait: must be more than twice output.flush (messages are acked only once the flush has made them durable)"},
	{"nats fetch expires over ack_wait",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://h:4222], stream: S, consumer: c, protocol: frame, ack_wait: 5s, fetch: { expires: 5s } }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:112: sources[0].nats.fetch.expires: must be shorter than ack_wait"},
	{"nats precision on frames",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://h:4222], stream: S, consumer: c, protocol: frame, precision: ms }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:91: sources[0].nats.precision: only line sources take a precision"},
	{"nats unknown fetch key",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://h:4222], stream: S, consumer: c, protocol: frame, fetch: { batches: 3 } }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:89: unknown key 'batches' in sources[0].nats.fetch (did you mean 'batch'?)"},
	{"nats line source, only frame streams",
	  "name: t\n"
	  "sources:\n"
	  "  - nats: { servers: [nats://h:4222], stream: S, consumer: c, protocol: line }\n"
	  "streams:\n"
	  "  - name: s\n"
	  "    match: { key: \"d/{channel}\" }\n"
	  "    layout: stream\n"
	  "    channels:\n"
	  "      a: { dtype: int16, dt: 1.0e-6 }\n",
	  "t.yaml:3:5: sources[0]: no stream takes line protocol data (give a stream a match.measurement)"},
};

#define NBAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

static void test_invalid(void **state)
{
	const struct bad_case *c = *state;
	struct schema *schema = (struct schema *)1;
	struct schema_error err;

	int rc = schema_load_string(c->yaml, strlen(c->yaml), "t.yaml", &schema, &err);
	assert_int_equal(rc, -EINVAL);
	assert_null(schema);
	assert_string_equal(err.message, c->message);
}

/*
 * Torture (curl's idea): fail each allocation of a load in turn. Every
 * failure must come back as -ENOMEM with nothing leaked (ASan/valgrind
 * check the leaks), and once no allocation fails the result must be the
 * normal one.
 */
static void test_torture_examples(void **state)
{
	(void)state;
	static const char *const names[] = {"weather.yaml", "accelerator.yaml", "digitizer.yaml"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/schemas/%s", H5REC_SOURCE_DIR, names[i]);
		for (long n = 1;; n++) {
			struct schema *s = (struct schema *)1;
			struct schema_error err;
			schema_alloc_fail_countdown = n;
			int rc = schema_load_file(path, &s, &err);
			if (schema_alloc_fail_countdown > 0) {
				schema_alloc_fail_countdown = 0;
				assert_int_equal(rc, 0);
				schema_free(s);
				assert_true(n > 40); /* the loop really ran through the loader */
				break;
			}
			if (rc != -ENOMEM)
				fail_msg("%s, allocation %ld: rc %d (%s)", names[i], n, rc, err.message);
			assert_null(s);
		}
	}
}

/* Deterministic xorshift, so a failure reproduces. */
static uint32_t next_random(uint32_t *state)
{
	uint32_t x = *state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *state = x;
}

static char *read_example(const char *name, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/schemas/%s", H5REC_SOURCE_DIR, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *text = malloc(1 << 16);
	assert_non_null(text);
	*len = fread(text, 1, 1 << 16, f);
	fclose(f);
	return text;
}

/*
 * Mutated examples (a byte replaced, a span deleted or duplicated): every
 * load must either succeed or give one well-formed "m.yaml:LINE:COL: "
 * message. Run under ASan/valgrind this is a small, always-on fuzz of the
 * loader's walk over odd but parseable YAML.
 */
static void test_mutated_examples(void **state)
{
	(void)state;
	static const char *const names[] = {"weather.yaml", "accelerator.yaml", "digitizer.yaml"};
	static const char alphabet[] = "{}[]:,-#&*!|>'\"%@` \n\tab0123456789./_";
	uint32_t seed = 0x5eed1234u;

	for (size_t e = 0; e < sizeof(names) / sizeof(names[0]); e++) {
		size_t len;
		char *text = read_example(names[e], &len);
		char *copy = malloc(2 * len + 1);
		assert_non_null(copy);
		for (int round = 0; round < 1500; round++) {
			size_t n = len, at = next_random(&seed) % len;
			size_t span = 1 + next_random(&seed) % 40;
			memcpy(copy, text, len);
			switch (next_random(&seed) % 3) {
			case 0:
				copy[at] = alphabet[next_random(&seed) % (sizeof(alphabet) - 1)];
				break;
			case 1:
				span = span < len - at ? span : len - at;
				memmove(copy + at, copy + at + span, len - at - span);
				n -= span;
				break;
			default:
				span = span < len - at ? span : len - at;
				memmove(copy + at + span, copy + at, len - at);
				n += span;
				break;
			}
			struct schema *s = NULL;
			struct schema_error err;
			int rc = schema_load_string(copy, n, "m.yaml", &s, &err);
			if (rc == 0) {
				schema_free(s);
				continue;
			}
			int line = 0, col = 0, used = 0;
			if (rc != -EINVAL ||
			    sscanf(err.message, "m.yaml:%d:%d: %n", &line, &col, &used) != 2 ||
			    line < 1 || col < 1 || used == 0 || err.message[used] == '\0')
				fail_msg("%s round %d: rc %d, '%s'", names[e], round, rc, err.message);
		}
		free(copy);
		free(text);
	}
}

static void test_torture_invalid(void **state)
{
	const struct bad_case *c = *state;

	for (long n = 1;; n++) {
		struct schema *s = (struct schema *)1;
		struct schema_error err;
		schema_alloc_fail_countdown = n;
		int rc = schema_load_string(c->yaml, strlen(c->yaml), "t.yaml", &s, &err);
		assert_null(s);
		if (schema_alloc_fail_countdown > 0) {
			schema_alloc_fail_countdown = 0;
			assert_int_equal(rc, -EINVAL);
			assert_string_equal(err.message, c->message);
			break;
		}
		if (rc != -ENOMEM && rc != -EINVAL)
			fail_msg("allocation %ld: rc %d (%s)", n, rc, err.message);
		if (rc == -EINVAL)
			assert_string_equal(err.message, c->message);
	}
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_nats_source),
		cmocka_unit_test(test_provenance_names_free_without_sources),
		cmocka_unit_test(test_example_weather),
		cmocka_unit_test(test_example_accelerator),
		cmocka_unit_test(test_example_digitizer),
		cmocka_unit_test(test_builtin_defaults),
		cmocka_unit_test(test_family_default_file),
		cmocka_unit_test(test_min_free),
		cmocka_unit_test(test_channel_inherits_defaults),
		cmocka_unit_test(test_channel_szip),
		cmocka_unit_test(test_string_channel_skips_numeric_defaults),
		cmocka_unit_test(test_attrs_and_fills),
		cmocka_unit_test(test_attrs_everywhere),
		cmocka_unit_test(test_time_window),
		cmocka_unit_test(test_listen_forms),
		cmocka_unit_test(test_allow_mapped_ipv4),
		cmocka_unit_test(test_specific_key_before_general),
		cmocka_unit_test(test_load_file_errors),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_templates),
		cmocka_unit_test(test_placeholder_values),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_dtypes),
		cmocka_unit_test(test_torture_examples),
		cmocka_unit_test(test_mutated_examples),
	};
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	static char torture_names[NBAD][96];
	struct CMUnitTest tests[sizeof(fixed) / sizeof(fixed[0]) + 2 * NBAD];

	memcpy(tests, fixed, sizeof(fixed));
	for (size_t i = 0; i < NBAD; i++) {
		tests[nfixed + i] = (struct CMUnitTest){
			.name = bad_cases[i].title,
			.test_func = test_invalid,
			.initial_state = (void *)&bad_cases[i],
		};
		snprintf(torture_names[i], sizeof(torture_names[i]), "torture: %s",
			 bad_cases[i].title);
		tests[nfixed + NBAD + i] = (struct CMUnitTest){
			.name = torture_names[i],
			.test_func = test_torture_invalid,
			.initial_state = (void *)&bad_cases[i],
		};
	}
	return _cmocka_run_group_tests("schema", tests, nfixed + 2 * NBAD, NULL, NULL);
}
