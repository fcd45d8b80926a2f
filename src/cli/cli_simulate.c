/*
 * cli_simulate.c - `h5rec simulate weather|accelerator|digitizer`: realistic
 * generators for the three reference users, sent with the real client.
 *
 *   weather      N stations, each at its own sampling interval, sending
 *                temperature, wind, pressure and humidity as line protocol;
 *   accelerator  dust-grain events: an EVENT frame with mass and velocity,
 *                then one waveform per detector (100,000 float32 samples by
 *                default) showing the grain's charge passing each detector;
 *   digitizer    continuous int16 ADC channels per board as DATA frames.
 *
 * With -c SCHEMA a generator sends what the schema declares, so that a
 * recorder running that schema takes every line and frame: the stream's
 * measurement and the tags its group template names, or its key template;
 * its channels and event fields with their dtypes (line values typed as
 * line protocol types them, waveforms in the channel's dtype, through its
 * scale_factor/add_offset); the listener's timestamp precision; the
 * waveform length. Frame keys are checked with the recorder's own router
 * before anything is sent. Without a schema the built-in example (the
 * schemas/ files) is used. Output is deterministic for a given --seed and
 * --t0, so tests can regenerate or (with --tee) replay exactly what was sent.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_common.h"
#include "router.h"
#include "sender.h"

void cli_simulate_usage(FILE *out)
{
	fprintf(out,
		"usage: h5rec simulate weather|accelerator|digitizer [options]\n"
		"Generate realistic data for one of the reference setups and send it.\n"
		"\n"
		"  -c, --config SCHEMA   send what the schema declares (stream, tags, channels,\n"
		"                        dtypes, event fields, precision) to its listener\n"
		"  -t, --to ADDRESS      tcp:HOST:PORT, udp:HOST:PORT or unix:PATH\n"
		"  -n, --count N         lines (weather), events (accelerator) or frames per\n"
		"                        channel (digitizer) to send; default 1000, 100, 100\n"
		"  -d, --duration SECS   stop after this many seconds instead\n"
		"  -r, --rate R          per second: lines, events or frames per channel;\n"
		"                        0 = as fast as possible (default: 1000, 10, 100)\n"
		"  -s, --stations N      weather stations (default 10); digitizer boards (2)\n"
		"      --samples N       waveform length (accelerator, default 100000) or\n"
		"                        samples per frame (digitizer, default 4096)\n"
		"      --seed N          random seed (default 1)\n"
		"      --t0 NS           time of the first sample, ns since 1970 (default now)\n"
		"      --token TOKEN     the listener's token (frames)\n"
		"      --write-size N    split writes into pieces of N bytes (testing)\n"
		"      --tee FILE        also write every byte sent to FILE\n"
		"      --no-ack          do not request or wait for ACKs\n"
		"      --reconnect N     resend what was not acknowledged after a lost\n"
		"                        connection, up to N tries without progress (frames)\n"
		"      --precompress     waveforms as chunks encoded here with the channel's\n"
		"                        filter pipeline (stored by the recorder as they are)\n"
		"      --encode-threads N with --precompress: encode on N threads, frames still\n"
		"                        sent in order (default 1; 0: one per CPU)\n"
		"      --nats URLS       publish to NATS JetStream instead (see h5rec send)\n"
		"      --subject SUBJECT the subject to publish to, with --nats\n"
		"  -h, --help            this text\n"
		"\n"
		"Frames are acknowledged: the exit status is 1 when the recorder refused any.\n"
		"Line protocol is not: `h5rec status` shows what the recorder took.\n");
}

struct sim {
	const char *kind;
	struct cli_target target;
	unsigned long long count;
	double duration;
	double rate;
	bool rate_set;
	unsigned long long stations;
	unsigned long long samples;
	uint64_t rng;
	int64_t t0;
	struct sender *sender;
	double started;
	unsigned long long sent; /* units: lines, events, frames */
	uint64_t values;         /* samples and field values sent */
	char err[512];           /* why it failed: ours, or the sender's */
};

/* ---- helpers -------------------------------------------------------------- */

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: small, fast, and the same sequence on every machine. */
static uint64_t rng_next(struct sim *sim)
{
	sim->rng ^= sim->rng >> 12;
	sim->rng ^= sim->rng << 25;
	sim->rng ^= sim->rng >> 27;
	return sim->rng * 2685821657736338717ull;
}

static double uniform(struct sim *sim)
{
	return (double)(rng_next(sim) >> 11) * (1.0 / 9007199254740992.0);
}

static double gauss(struct sim *sim)
{
	double u = uniform(sim), v = uniform(sim);
	return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

static int sim_fail(struct sim *sim, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int sim_fail(struct sim *sim, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sim->err, sizeof(sim->err), fmt, ap);
	va_end(ap);
	return code;
}

/* Keep to the requested rate: sleep until unit number `done` is due. */
static void pace(struct sim *sim, unsigned long long done)
{
	if (sim->rate <= 0)
		return;
	double due = sim->started + (double)done / sim->rate, now = mono_s();
	if (due > now) {
		double wait = due - now;
		struct timespec ts = {.tv_sec = (time_t)wait,
				      .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

static bool more(const struct sim *sim)
{
	if (sim->duration > 0)
		return mono_s() - sim->started < sim->duration;
	return sim->sent < sim->count;
}

/* Connect (and say HELLO on frame listeners) once the generator knows that
 * the schema fits: a generator that cannot send what the schema declares
 * says so without having opened a connection. */
static int sim_connect(struct sim *sim, bool frames)
{
	int rc = cli_target_connect(&sim->target, frames ? "h5rec-simulate" : NULL, &sim->sender,
				    sim->err, sizeof(sim->err));
	sim->started = mono_s();
	return rc;
}

/* The schema's stream with this layout, if a schema was given. */
static const struct schema_stream *schema_stream(const struct sim *sim, enum schema_layout layout,
						 bool frames)
{
	const struct schema *schema = sim->target.schema;
	for (size_t i = 0; schema && i < schema->nstreams; i++) {
		const struct schema_stream *s = &schema->streams[i];
		if (s->layout == layout && s->match_is_key == frames)
			return s;
	}
	return NULL;
}

/* ---- typed values ------------------------------------------------------------ */

static bool dtype_is_float(enum dtype dtype)
{
	return dtype == DTYPE_FLOAT32 || dtype == DTYPE_FLOAT64;
}

static bool dtype_is_unsigned(enum dtype dtype)
{
	return dtype == DTYPE_UINT8 || dtype == DTYPE_UINT16 || dtype == DTYPE_UINT32 ||
	       dtype == DTYPE_UINT64;
}

/* v rounded and clipped to an integer dtype's range, so that the recorder
 * never has to clip (and count) what we send. */
static double clip_integer(enum dtype dtype, double v)
{
	int bits = (int)dtype_size(dtype) * 8;
	double lo = dtype_is_unsigned(dtype) ? 0 : -ldexp(1, bits - 1);
	double hi = dtype_is_unsigned(dtype) ? ldexp(1, bits) - 1 : ldexp(1, bits - 1) - 1;
	if (bits == 64) /* the largest doubles below 2^64 and 2^63 */
		hi = dtype_is_unsigned(dtype) ? 18446744073709549568.0 : 9223372036854774784.0;
	return fmin(hi, fmax(lo, nearbyint(v)));
}

/* A line (or field set) being built; grows as needed. */
struct text {
	char *buf;
	size_t len, cap;
};

static int text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int text_add(struct text *t, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return 0;
		}
		size_t cap = t->cap * 2 + (size_t)n + 64;
		char *buf = realloc(t->buf, cap);
		if (!buf)
			return -ENOMEM;
		t->buf = buf;
		t->cap = cap;
	}
}

/* A name with line protocol's escapes: backslash before each of specials. */
static int text_add_name(struct text *t, const char *name, const char *specials)
{
	int rc = 0;
	for (const char *p = name; *p && !rc; p++)
		rc = strchr(specials, *p) ? text_add(t, "\\%c", *p) : text_add(t, "%c", *p);
	return rc;
}

/*
 * `name=value` typed as line protocol types it for a column of DTYPE:
 * floats with `decimals` places (< 0: 6 significant digits), integers with
 * the `i` suffix, unsigned with `u`, strings quoted (a status word).
 */
static int text_add_field(struct text *t, struct sim *sim, const char *name, enum dtype dtype,
			  double v, int decimals)
{
	static const char *const words[] = {"ok", "ok", "ok", "calibrating", "maintenance"};
	int rc = text_add_name(t, name, ",= ");
	if (rc)
		return rc;
	if (dtype == DTYPE_STRING)
		return text_add(t, "=\"%s\"", words[rng_next(sim) % 5]);
	if (dtype_is_float(dtype))
		return decimals < 0 ? text_add(t, "=%.6g", v) : text_add(t, "=%.*f", decimals, v);
	v = clip_integer(dtype, v);
	if (dtype_is_unsigned(dtype))
		return text_add(t, "=%lluu", (unsigned long long)v);
	return text_add(t, "=%lldi", (long long)v);
}

/*
 * Physical values (volts of a ±10 V converter) as a channel of type dtype
 * takes them: through the channel's scale_factor and add_offset when it has
 * them (stored = (value - add_offset) / scale_factor, the CF rule the
 * readers undo); else floats as they are and integers as the counts of an
 * ADC spanning the type's range. Integers are rounded and clipped.
 */
static void to_wire(const double *volts, size_t n, enum dtype dtype,
		    const struct schema_channel *channel, void *out)
{
	double scale = 1, offset = 0;
	int bits = (int)dtype_size(dtype) * 8;
	bool as_is = dtype_is_float(dtype) && !(channel && channel->has_packing);
	if (channel && channel->has_packing) {
		scale = 1 / channel->scale_factor;
		offset = -channel->add_offset / channel->scale_factor;
	} else if (!dtype_is_float(dtype)) {
		scale = ldexp(1, bits - 1) / 10;
		offset = dtype_is_unsigned(dtype) ? ldexp(1, bits - 1) : 0;
	}
	for (size_t i = 0; i < n; i++) {
		/* as_is: even -0.0 stays what the generator made */
		double v = as_is ? volts[i] : volts[i] * scale + offset;
		uint8_t *at = (uint8_t *)out + i * (size_t)(bits / 8);
		union {
			int8_t i8; uint8_t u8; int16_t i16; uint16_t u16; int32_t i32;
			uint32_t u32; int64_t i64; uint64_t u64; float f32; double f64;
		} x;
		if (!dtype_is_float(dtype))
			v = clip_integer(dtype, v);
		switch (dtype) {
		case DTYPE_INT8: x.i8 = (int8_t)v; break;
		case DTYPE_UINT8: x.u8 = (uint8_t)v; break;
		case DTYPE_INT16: x.i16 = (int16_t)v; break;
		case DTYPE_UINT16: x.u16 = (uint16_t)v; break;
		case DTYPE_INT32: x.i32 = (int32_t)v; break;
		case DTYPE_UINT32: x.u32 = (uint32_t)v; break;
		case DTYPE_INT64: x.i64 = (int64_t)v; break;
		case DTYPE_UINT64: x.u64 = (uint64_t)v; break;
		case DTYPE_FLOAT32: x.f32 = (float)v; break;
		default: x.f64 = v; break;
		}
		memcpy(at, &x, (size_t)(bits / 8));
	}
}

/* ---- frame keys ------------------------------------------------------------- */

/* Values for a key template's placeholders: {channel} is CHANNEL, every other
 * one "<name><index>" (board0, board1, …). */
struct key_values {
	const char *names[SCHEMA_MAX_PLACEHOLDERS];
	const char *values[SCHEMA_MAX_PLACEHOLDERS];
	char text[SCHEMA_MAX_PLACEHOLDERS][80];
	size_t n;
};

static void key_values(const struct schema_template *tmpl, const char *channel,
		       unsigned long long index, struct key_values *kv)
{
	kv->n = 0;
	for (size_t i = 0; i < tmpl->nparts && kv->n < SCHEMA_MAX_PLACEHOLDERS; i++) {
		const char *name = tmpl->parts[i].text;
		if (!tmpl->parts[i].placeholder)
			continue;
		kv->names[kv->n] = name;
		if (strcmp(name, "channel") == 0)
			snprintf(kv->text[kv->n], sizeof(kv->text[0]), "%s", channel);
		else
			snprintf(kv->text[kv->n], sizeof(kv->text[0]), "%.60s%llu", name, index);
		kv->values[kv->n] = kv->text[kv->n];
		kv->n++;
	}
}

/*
 * The DATA key of a channel of STREAM, checked with the recorder's own
 * router: a key that an earlier stream's template catches, or that fails
 * the placeholder rules, is refused here rather than by the recorder.
 */
static int data_key(struct sim *sim, const struct schema_stream *stream, const char *channel,
		    unsigned long long index, char *out, size_t len)
{
	struct key_values kv;
	struct route route;
	char reason[256];

	key_values(&stream->match_key, channel, index, &kv);
	if (schema_template_expand(&stream->match_key, kv.names, kv.values, kv.n, out, len) < 0)
		return sim_fail(sim, -EINVAL, "stream '%s': cannot make a key from '%s'",
				stream->name, stream->match_key.text);
	if (router_data_key(sim->target.schema, out, &route, reason, sizeof(reason)) != ROUTER_OK)
		return sim_fail(sim, -EINVAL, "stream '%s': %s", stream->name, reason);
	if (route.stream != stream)
		return sim_fail(sim, -EINVAL, "key '%s' for stream '%s' goes to stream '%s', "
				"whose key template comes first", out, stream->name,
				route.stream->name);
	return 0;
}

/* The EVENT key of STREAM: its key template without the final "/{channel}"
 * (router.h), or else the stream's name; checked like data_key. */
static int event_key(struct sim *sim, const struct schema_stream *stream, unsigned long long index,
		     char *out, size_t len)
{
	struct schema_template head = stream->match_key;
	struct key_values kv;
	struct route route;
	char reason[256] = "";

	if (head.nparts && head.parts[head.nparts - 1].placeholder &&
	    strcmp(head.parts[head.nparts - 1].text, "channel") == 0) {
		head.nparts--;
		key_values(&head, "", index, &kv);
		long n = schema_template_expand(&head, kv.names, kv.values, kv.n, out, len);
		if (n > 0 && out[n - 1] == '/')
			out[n - 1] = '\0';
		if (n > 0 && router_event_key(sim->target.schema, out, &route, reason,
					      sizeof(reason)) == ROUTER_OK &&
		    route.stream == stream)
			return 0;
	}
	snprintf(out, len, "%s", stream->name);
	if (router_event_key(sim->target.schema, out, &route, reason, sizeof(reason)) == ROUTER_OK &&
	    route.stream == stream)
		return 0;
	return sim_fail(sim, -EINVAL, "stream '%s': no EVENT key reaches it (%s)", stream->name,
			reason[0] ? reason : "another stream takes it");
}

/* ---- weather ----------------------------------------------------------------- */

struct station {
	char name[24];
	int64_t interval_ns;
	int64_t next_ns;
	double offset; /* local climate */
};

/* What one line holds: the schema's table stream, or the example's. */
struct weather_plan {
	const char *measurement;
	const char *tags[SCHEMA_MAX_PLACEHOLDERS]; /* the group's placeholders */
	size_t ntags;
	const struct schema_channel *channels;     /* NULL: the example's four */
	size_t nchannels;
	int64_t unit_ns;                           /* the listener's precision */
};

static const char *const example_weather[] = {"temperature", "wind", "pressure", "humidity"};

/* Nanoseconds per timestamp unit of the listener (`precision`). */
static int64_t precision_ns(const struct schema_listen *listener)
{
	static const struct {
		const char *name;
		int64_t ns;
	} units[] = {{"us", 1000}, {"ms", 1000000}, {"s", 1000000000ll},
		     {"m", 60000000000ll}, {"h", 3600000000000ll}};
	if (!listener || listener->protocol != SCHEMA_PROTOCOL_LINE)
		return 1;
	const char *name = line_precision_name(listener->precision);
	for (size_t i = 0; name && i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(name, units[i].name) == 0)
			return units[i].ns;
	return 1;
}

static int weather_plan(struct sim *sim, struct weather_plan *plan)
{
	const struct schema_stream *stream = schema_stream(sim, SCHEMA_LAYOUT_TABLE, false);

	*plan = (struct weather_plan){.measurement = "weather", .tags = {"station"}, .ntags = 1,
				      .nchannels = 4, .unit_ns = precision_ns(sim->target.listener)};
	if (!sim->target.schema)
		return 0;
	if (!stream)
		return sim_fail(sim, -EINVAL, "%s has no table stream matched by measurement",
				sim->target.schema_path);
	plan->measurement = stream->match_measurement;
	plan->channels = stream->channels;
	plan->nchannels = stream->nchannels;
	plan->ntags = 0;
	for (size_t i = 0; i < stream->group.nparts; i++) {
		const struct schema_template_part *part = &stream->group.parts[i];
		size_t seen = 0;
		while (seen < plan->ntags && strcmp(plan->tags[seen], part->text) != 0)
			seen++;
		if (part->placeholder && seen == plan->ntags)
			plan->tags[plan->ntags++] = part->text;
	}
	return 0;
}

/* One reading of channel NAME: the example's four as a station sees them,
 * anything else a slow daily cycle with noise. decimals: as printed. */
static double weather_value(struct sim *sim, const struct station *st, double day,
			    const char *name, int *decimals)
{
	*decimals = 3;
	if (strcmp(name, "temperature") == 0)
		return 12.0 + st->offset + 6.0 * sin(2 * M_PI * (day - 0.25)) + 0.2 * gauss(sim);
	*decimals = 2;
	if (strcmp(name, "wind") == 0)
		return fabs(3.0 + 2.0 * gauss(sim));
	if (strcmp(name, "pressure") == 0)
		return 1013.25 + 3.0 * sin(2 * M_PI * day / 3) + 0.1 * gauss(sim);
	*decimals = 1;
	if (strcmp(name, "humidity") == 0)
		return fmin(100, fmax(0, 65 - 15 * sin(2 * M_PI * (day - 0.25)) + 2 * gauss(sim)));
	*decimals = 3;
	return 50 + 10 * sin(2 * M_PI * day) + 5 * gauss(sim);
}

/*
 * measurement,tag=…,… field=…,… timestamp. The last placeholder of the
 * group numbers the stations (1..N, as `station` does in the example); any
 * earlier one splits them in two (site1, site2), so a group such as
 * "/{site}/{station}" gets both tags.
 */
static int weather_line(struct sim *sim, const struct weather_plan *plan, size_t index,
			const struct station *st, struct text *t)
{
	double day = (double)(st->next_ns % 86400000000000ll) / 86400e9;
	int rc = text_add_name(t, plan->measurement, ", ");

	for (size_t i = 0; i < plan->ntags && !rc; i++) {
		rc = text_add(t, ",");
		if (!rc)
			rc = text_add_name(t, plan->tags[i], ",= ");
		if (!rc && i + 1 == plan->ntags)
			rc = text_add(t, "=%s", st->name);
		else if (!rc)
			rc = text_add(t, "=%s%zu", plan->tags[i], index % 2 + 1);
	}
	for (size_t c = 0; c < plan->nchannels && !rc; c++) {
		const char *name = plan->channels ? plan->channels[c].name : example_weather[c];
		enum dtype dtype = plan->channels ? plan->channels[c].dtype : DTYPE_FLOAT32;
		int decimals;
		double v = weather_value(sim, st, day, name, &decimals);
		rc = text_add(t, c ? "," : " ");
		if (!rc)
			rc = text_add_field(t, sim, name, dtype, v, decimals);
	}
	if (!rc)
		rc = text_add(t, " %lld\n", (long long)(st->next_ns / plan->unit_ns));
	return rc;
}

static int simulate_weather(struct sim *sim)
{
	struct weather_plan plan;
	struct text line = {0};
	int rc = weather_plan(sim, &plan);
	if (rc)
		return rc;
	struct station *stations = calloc(sim->stations, sizeof(*stations));
	if (!stations)
		return -ENOMEM;
	for (unsigned long long i = 0; i < sim->stations; i++) {
		snprintf(stations[i].name, sizeof(stations[i].name), "%llu", i + 1);
		/* 1, 2, 5, 10 and 60 s: the mix a real network has. */
		static const int64_t intervals[] = {1, 2, 5, 10, 60};
		stations[i].interval_ns = intervals[i % 5] * 1000000000ll;
		stations[i].next_ns = sim->t0;
		stations[i].offset = 4.0 * gauss(sim);
	}
	rc = sim_connect(sim, false);
	while (!rc && more(sim)) {
		size_t at = 0;
		for (size_t i = 1; i < sim->stations; i++)
			if (stations[i].next_ns < stations[at].next_ns)
				at = i;
		struct station *st = &stations[at];
		line.len = 0;
		rc = weather_line(sim, &plan, at, st, &line);
		if (!rc)
			rc = sender_raw(sim->sender, line.buf, line.len);
		if (rc)
			break;
		st->next_ns += st->interval_ns;
		sim->values += plan.nchannels;
		pace(sim, ++sim->sent);
	}
	free(line.buf);
	free(stations);
	return rc;
}

/* ---- accelerator --------------------------------------------------------------- */

/*
 * A charged grain flying through three detectors: each sees a pulse that
 * rises as the grain enters, holds, and decays as it leaves, the second and
 * third later by the flight time. Amplitude grows with charge (mass), the
 * delays shrink with velocity, and every channel has its own noise. The
 * result is quantized like the 14-bit ADC (±10 V) that digitizes it, so the
 * data compresses the way real detector data does.
 */
static void waveform(struct sim *sim, double *out, size_t n, size_t detector, double mass,
		     double velocity)
{
	double charge = 2.0 + 1e17 * mass;           /* volts at the amplifier */
	double start = 0.15 * (double)n;             /* trigger position */
	double flight = 0.2 * (double)n * 5000.0 / velocity;
	double enter = start + (double)detector * flight, width = 0.1 * (double)n;
	for (size_t i = 0; i < n; i++) {
		double x = (double)i, v = 0;
		if (x >= enter)
			v = charge * (1 - exp(-(x - enter) / 200.0));
		if (x >= enter + width)
			v *= exp(-(x - enter - width) / 800.0);
		const double lsb = 20.0 / 16384;
		out[i] = lsb * nearbyint((v + 0.003 * gauss(sim)) / lsb);
	}
}

/* What one event is: the schema's records stream, or the example's. */
struct accelerator_plan {
	const struct schema_stream *stream; /* NULL: the example */
	size_t nchannels;
	char (*keys)[512];                  /* DATA key per channel */
	char event_key[512];
};

static const char *const example_detectors[] = {"first_detector", "second_detector",
						"third_detector"};

static int accelerator_plan(struct sim *sim, struct accelerator_plan *plan)
{
	const struct schema_stream *stream = schema_stream(sim, SCHEMA_LAYOUT_RECORDS, true);

	*plan = (struct accelerator_plan){.stream = stream, .nchannels = stream ? stream->nchannels : 3};
	if (sim->target.schema && !stream)
		return sim_fail(sim, -EINVAL, "%s has no records stream matched by frame keys",
				sim->target.schema_path);
	if (stream && sim->samples && sim->samples != stream->samples)
		return sim_fail(sim, -EINVAL, "--samples %llu: stream '%s' records waveforms of "
				"%llu samples", sim->samples, stream->name,
				(unsigned long long)stream->samples);
	if (stream)
		sim->samples = stream->samples;
	if (!sim->samples)
		sim->samples = 100000;
	plan->keys = calloc(plan->nchannels, sizeof(*plan->keys));
	if (!plan->keys)
		return -ENOMEM;
	if (!stream) {
		for (size_t c = 0; c < plan->nchannels; c++)
			snprintf(plan->keys[c], sizeof(plan->keys[c]), "dust/%s", example_detectors[c]);
		snprintf(plan->event_key, sizeof(plan->event_key), "dust");
		return 0;
	}
	for (size_t c = 0; c < plan->nchannels; c++) {
		int rc = data_key(sim, stream, stream->channels[c].name, 0, plan->keys[c],
				  sizeof(plan->keys[c]));
		if (rc)
			return rc;
	}
	return stream->nevent_fields ? event_key(sim, stream, 0, plan->event_key,
						 sizeof(plan->event_key))
				     : 0;
}

/* The EVENT payload: the stream's event fields (the example's mass and
 * velocity); fields the grain does not explain are plausible filler. */
static int event_fields(struct sim *sim, const struct schema_stream *stream, double mass,
			double velocity, struct text *t)
{
	size_t n = stream ? stream->nevent_fields : 2;
	int rc = 0;

	t->len = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *name = stream ? stream->event_fields[i].name : i ? "velocity" : "mass";
		enum dtype dtype = stream ? stream->event_fields[i].dtype : DTYPE_FLOAT32;
		double v = strcmp(name, "mass") == 0       ? mass
			   : strcmp(name, "velocity") == 0 ? velocity
			   : dtype_is_float(dtype)         ? exp(gauss(sim))
							   : (double)(sim->sent + 1);
		rc = text_add(t, "%s", i ? "," : "");
		if (!rc)
			rc = text_add_field(t, sim, name, dtype, v, -1);
	}
	return rc;
}

static int send_event(struct sim *sim, const struct accelerator_plan *plan, double *volts,
		      void *wire, struct text *fields)
{
	uint64_t event_id = sim->sent + 1;
	int64_t t0 = sim->t0 + (int64_t)((double)sim->sent * 1e9 / (sim->rate > 0 ? sim->rate : 10));
	double mass = 1e-17 * exp(gauss(sim)), velocity = 2000 + 8000 * uniform(sim);
	int rc = event_fields(sim, plan->stream, mass, velocity, fields);

	if (!rc && fields->len)
		rc = sender_event(sim->sender, plan->event_key, event_id, t0, fields->buf);
	for (size_t c = 0; c < plan->nchannels && !rc; c++) {
		const struct schema_channel *channel = plan->stream ? &plan->stream->channels[c] : NULL;
		enum dtype dtype = channel ? channel->dtype : DTYPE_FLOAT32;
		waveform(sim, volts, sim->samples, c, mass, velocity);
		to_wire(volts, sim->samples, dtype, channel, wire);
		rc = sender_data(sim->sender, plan->keys[c], dtype, t0, event_id, wire, sim->samples);
		sim->values += sim->samples;
	}
	sim->values += plan->stream ? plan->stream->nevent_fields : 2;
	return rc;
}

static int simulate_accelerator(struct sim *sim)
{
	struct accelerator_plan plan;
	struct text fields = {0};
	int rc = accelerator_plan(sim, &plan);
	double *volts = rc ? NULL : malloc(sim->samples * sizeof(double));
	void *wire = rc ? NULL : malloc(sim->samples * sizeof(double));

	if (!rc && (!volts || !wire))
		rc = -ENOMEM;
	if (!rc)
		rc = sim_connect(sim, true);
	while (!rc && more(sim)) {
		rc = send_event(sim, &plan, volts, wire, &fields);
		pace(sim, ++sim->sent);
	}
	free(fields.buf);
	free(wire);
	free(volts);
	free(plan.keys);
	return rc;
}

/* ---- digitizer -------------------------------------------------------------------- */

static const char *const example_adcs[] = {"adc0", "adc1", "adc2", "adc3"};

/* DATA keys of every board and channel, board-major. */
static int digitizer_keys(struct sim *sim, const struct schema_stream *stream, size_t nchannels,
			  char (*keys)[256])
{
	for (unsigned long long b = 0; b < sim->stations; b++) {
		for (size_t c = 0; c < nchannels; c++) {
			char *key = keys[b * nchannels + c];
			if (!stream) {
				snprintf(key, 256, "board%llu/%s", b, example_adcs[c]);
				continue;
			}
			int rc = data_key(sim, stream, stream->channels[c].name, b, key, 256);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* One frame of channel c of board b: a sine at (c+1)·50 Hz, a quarter of
 * full scale, plus noise, as counts of the board's 16-bit ±10 V ADC. */
static void adc_frame(struct sim *sim, double *volts, size_t n, uint64_t first, double dt,
		      unsigned long long b, size_t c)
{
	for (size_t i = 0; i < n; i++) {
		double t = (double)(first + i) * dt;
		double counts = 8000 * sin(2 * M_PI * (50.0 * (double)(c + 1)) * t + (double)b) +
				40 * gauss(sim);
		volts[i] = fmax(-32768, fmin(32767, counts)) * (10.0 / 32768);
	}
}

static int digitizer_round(struct sim *sim, const struct schema_stream *stream, size_t nchannels,
			   char (*keys)[256], size_t per_frame, double *volts, void *wire)
{
	int rc = 0;
	for (unsigned long long b = 0; b < sim->stations && !rc; b++) {
		for (size_t c = 0; c < nchannels && !rc; c++) {
			const struct schema_channel *channel = stream ? &stream->channels[c] : NULL;
			enum dtype dtype = channel ? channel->dtype : DTYPE_INT16;
			double dt = channel && channel->has_dt ? channel->dt : 1e-6;
			uint64_t first = sim->sent * per_frame;
			int64_t t0 = sim->t0 + (int64_t)((double)first * dt * 1e9);
			adc_frame(sim, volts, per_frame, first, dt, b, c);
			to_wire(volts, per_frame, dtype, channel, wire);
			rc = sender_data(sim->sender, keys[b * nchannels + c], dtype, t0, 0, wire,
					 per_frame);
			sim->values += per_frame;
		}
	}
	return rc;
}

static int simulate_digitizer(struct sim *sim)
{
	const struct schema_stream *stream = schema_stream(sim, SCHEMA_LAYOUT_STREAM, true);
	size_t nchannels = stream ? stream->nchannels : 4;
	size_t per_frame = sim->samples ? sim->samples : 4096;
	char (*keys)[256] = calloc(sim->stations * nchannels, sizeof(*keys));
	double *volts = malloc(per_frame * sizeof(double));
	void *wire = malloc(per_frame * sizeof(double));
	int rc = 0;

	if (!keys || !volts || !wire)
		rc = -ENOMEM;
	else if (sim->target.schema && !stream)
		rc = sim_fail(sim, -EINVAL, "%s has no stream-layout stream matched by frame keys",
			      sim->target.schema_path);
	if (!rc)
		rc = digitizer_keys(sim, stream, nchannels, keys);
	if (!rc)
		rc = sim_connect(sim, true);
	while (!rc && more(sim)) {
		rc = digitizer_round(sim, stream, nchannels, keys, per_frame, volts, wire);
		pace(sim, ++sim->sent);
	}
	free(wire);
	free(volts);
	free(keys);
	return rc;
}

/* ---- command ------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct sim *sim)
{
	enum { OPT_SAMPLES = 256, OPT_SEED, OPT_T0 };
	static const struct option options[] = {
		CLI_TARGET_OPTIONS,
		{"count", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 'd'},
		{"rate", required_argument, NULL, 'r'},
		{"stations", required_argument, NULL, 's'},
		{"samples", required_argument, NULL, OPT_SAMPLES},
		{"seed", required_argument, NULL, OPT_SEED},
		{"t0", required_argument, NULL, OPT_T0},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned long long number;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:t:n:d:r:s:h", options, NULL)) != -1) {
		int rc = cli_target_option(&sim->target, opt, optarg);
		if (rc <= 0) {
			if (rc < 0)
				return 2;
			continue;
		}
		switch (opt) {
		case 'n':
			if (cli_parse_uint(optarg, 1, UINT64_MAX, &sim->count))
				return cli_usage_error("simulate", "bad --count '%s'", optarg);
			break;
		case 'd':
			if (cli_parse_double(optarg, &sim->duration) || sim->duration <= 0)
				return cli_usage_error("simulate", "bad --duration '%s'", optarg);
			break;
		case 'r':
			if (cli_parse_double(optarg, &sim->rate) || sim->rate < 0)
				return cli_usage_error("simulate", "bad --rate '%s'", optarg);
			sim->rate_set = true;
			break;
		case 's':
			if (cli_parse_uint(optarg, 1, 100000, &sim->stations))
				return cli_usage_error("simulate", "bad --stations '%s'", optarg);
			break;
		case OPT_SAMPLES:
			if (cli_parse_uint(optarg, 1, 1ull << 26, &sim->samples))
				return cli_usage_error("simulate", "bad --samples '%s'", optarg);
			break;
		case OPT_SEED:
			if (cli_parse_uint(optarg, 0, UINT64_MAX, &number))
				return cli_usage_error("simulate", "bad --seed '%s'", optarg);
			sim->rng = number * 0x9E3779B97F4A7C15ull + 1; /* never 0 */
			break;
		case OPT_T0:
			if (cli_parse_int64(optarg, &sim->t0))
				return cli_usage_error("simulate", "bad --t0 '%s'", optarg);
			break;
		case 'h':
			cli_simulate_usage(stdout);
			return 1;
		default:
			cli_simulate_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("simulate", "say what to simulate: weather, accelerator or digitizer");
	sim->kind = argv[optind];
	return 0;
}

struct generator {
	const char *name;
	enum schema_protocol protocol;
	const char *default_address;
	unsigned long long count;
	double rate;
	unsigned long long stations;
	int (*run)(struct sim *sim);
	const char *unit;
};

/* Defaults match the example schemas in schemas/. */
static const struct generator generators[] = {
	{"weather", SCHEMA_PROTOCOL_LINE, "tcp:127.0.0.1:7601", 1000, 1000, 10, simulate_weather,
	 "lines"},
	{"accelerator", SCHEMA_PROTOCOL_FRAME, "tcp:127.0.0.1:7701", 100, 10, 1,
	 simulate_accelerator, "events"},
	{"digitizer", SCHEMA_PROTOCOL_FRAME, "tcp:127.0.0.1:7801", 100, 100, 2, simulate_digitizer,
	 "frames per channel"},
};

/* What a refusal of simulated frames most likely means. */
static const char refusal_causes[] =
	"  - the recorder runs another schema than the one given with -c (or, without -c,\n"
	"    than the example in schemas/): other keys, channels or waveform length;\n"
	"    give the recorder's own schema with -c\n"
	"  - the listener wants a token (--token) or another one\n"
	"  - the recorder's limits (max_groups, max_frame) are too small for this data\n";

int cli_simulate(int argc, char **argv)
{
	struct sim sim = {.rng = 0x9E3779B97F4A7C15ull + 1, .t0 = cli_now_ns()};
	const struct generator *gen = NULL;
	int rc = parse_args(argc, argv, &sim);
	if (rc)
		return rc == 1 ? 0 : rc;
	for (size_t i = 0; i < sizeof(generators) / sizeof(generators[0]); i++)
		if (strcmp(sim.kind, generators[i].name) == 0)
			gen = &generators[i];
	if (!gen)
		return cli_usage_error("simulate", "unknown setup '%s' (weather, accelerator, digitizer)",
				       sim.kind);
	if (!sim.count)
		sim.count = gen->count;
	if (!sim.rate_set)
		sim.rate = gen->rate;
	if (!sim.stations)
		sim.stations = gen->stations;
	if (!sim.target.schema_path && !sim.target.address)
		sim.target.address = gen->default_address;
	if (cli_target_resolve(&sim.target, gen->protocol, "simulate"))
		return 2;

	rc = gen->run(&sim);
	if (!rc)
		rc = sender_finish(sim.sender);
	double elapsed = mono_s() - sim.started;
	if (rc) {
		cli_report_failure("simulate", &sim.target, sim.sender, rc, sim.err, refusal_causes);
	} else {
		printf("h5rec simulate %s: %llu %s, %llu values in %.2f s (%.0f values/s)\n", gen->name,
		       sim.sent, gen->unit, (unsigned long long)sim.values, elapsed,
		       elapsed > 0 ? (double)sim.values / elapsed : 0.0);
		if (gen->protocol == SCHEMA_PROTOCOL_LINE)
			cli_print_lines_sent(stdout, "simulate", sim.sent, sim.values, sim.sender,
					     &sim.target);
		else
			cli_print_sent(stdout, "simulate", sim.sender, &sim.target);
	}
	sender_close(sim.sender);
	cli_target_free(&sim.target);
	return rc ? 1 : 0;
}
