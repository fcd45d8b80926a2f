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
 * With -c SCHEMA the generator takes the listener, token, stream, channel
 * names and waveform length from the schema, so it fits any schema of the
 * same shape. Output is deterministic for a given --seed and --t0, so tests
 * can regenerate or (with --tee) replay exactly what was sent.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_common.h"
#include "sender.h"

void cli_simulate_usage(FILE *out)
{
	fprintf(out,
		"usage: h5rec simulate weather|accelerator|digitizer [options]\n"
		"Generate realistic data for one of the reference setups and send it.\n"
		"\n"
		"  -c, --config SCHEMA   take address, token, stream and channels from the schema\n"
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
		"  -h, --help            this text\n");
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

/* ---- weather ----------------------------------------------------------------- */

struct station {
	char name[24];
	int64_t interval_ns;
	int64_t next_ns;
	double offset; /* local climate */
};

static int simulate_weather(struct sim *sim)
{
	const struct schema_stream *stream = schema_stream(sim, SCHEMA_LAYOUT_TABLE, false);
	const char *measurement = stream ? stream->match_measurement : "weather";
	struct station *stations = calloc(sim->stations, sizeof(*stations));
	char line[512];
	int rc = 0;

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
	while (more(sim)) {
		struct station *st = &stations[0];
		for (unsigned long long i = 1; i < sim->stations; i++)
			if (stations[i].next_ns < st->next_ns)
				st = &stations[i];
		double day = (double)(st->next_ns % 86400000000000ll) / 86400e9;
		double temperature = 12.0 + st->offset + 6.0 * sin(2 * M_PI * (day - 0.25)) +
				     0.2 * gauss(sim);
		double wind = fabs(3.0 + 2.0 * gauss(sim));
		double pressure = 1013.25 + 3.0 * sin(2 * M_PI * day / 3) + 0.1 * gauss(sim);
		double humidity = fmin(100, fmax(0, 65 - 15 * sin(2 * M_PI * (day - 0.25)) +
							    2 * gauss(sim)));
		int n = snprintf(line, sizeof(line),
				 "%s,station=%s temperature=%.3f,wind=%.2f,pressure=%.2f,"
				 "humidity=%.1f %lld\n",
				 measurement, st->name, temperature, wind, pressure, humidity,
				 (long long)st->next_ns);
		rc = sender_raw(sim->sender, line, (size_t)n);
		if (rc)
			break;
		st->next_ns += st->interval_ns;
		sim->values += 4;
		pace(sim, ++sim->sent);
	}
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
static void waveform(struct sim *sim, float *out, size_t n, size_t detector, double mass,
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
		out[i] = (float)(lsb * nearbyint((v + 0.003 * gauss(sim)) / lsb));
	}
}

static int simulate_accelerator(struct sim *sim)
{
	const struct schema_stream *stream = schema_stream(sim, SCHEMA_LAYOUT_RECORDS, true);
	static const char *const default_channels[] = {"first_detector", "second_detector",
						       "third_detector"};
	size_t nchannels = stream ? stream->nchannels : 3;
	char prefix[256] = "dust";
	int rc = 0;

	if (stream) {
		/* "dust/{channel}" → keys "dust/<channel>", EVENT key "dust". */
		const struct schema_template *key = &stream->match_key;
		if (key->nparts != 2 || key->parts[0].placeholder || !key->parts[1].placeholder) {
			fprintf(stderr, "h5rec simulate: stream '%s' key '%s' is not PREFIX/{channel}\n",
				stream->name, key->text);
			return -EINVAL;
		}
		snprintf(prefix, sizeof(prefix), "%.*s", (int)strlen(key->parts[0].text) - 1,
			 key->parts[0].text);
		if (!sim->samples)
			sim->samples = stream->samples;
	}
	if (!sim->samples)
		sim->samples = 100000;
	float *samples = malloc(sim->samples * sizeof(float));
	if (!samples)
		return -ENOMEM;

	while (more(sim) && !rc) {
		uint64_t event_id = sim->sent + 1;
		int64_t t0 = sim->t0 + (int64_t)((double)sim->sent * 1e9 / (sim->rate > 0 ? sim->rate : 10));
		double mass = 1e-17 * exp(gauss(sim)), velocity = 2000 + 8000 * uniform(sim);
		char fields[128];
		snprintf(fields, sizeof(fields), "mass=%.6g,velocity=%.6g", mass, velocity);
		rc = sender_event(sim->sender, prefix, event_id, t0, fields);
		for (size_t c = 0; c < nchannels && !rc; c++) {
			char key[512];
			snprintf(key, sizeof(key), "%s/%s", prefix,
				 stream ? stream->channels[c].name : default_channels[c]);
			waveform(sim, samples, sim->samples, c, mass, velocity);
			rc = sender_data(sim->sender, key, DTYPE_FLOAT32, t0, event_id, samples,
					 sim->samples);
			sim->values += sim->samples;
		}
		sim->values += 2;
		pace(sim, ++sim->sent);
	}
	free(samples);
	return rc;
}

/* ---- digitizer -------------------------------------------------------------------- */

static int simulate_digitizer(struct sim *sim)
{
	const struct schema_stream *stream = schema_stream(sim, SCHEMA_LAYOUT_STREAM, true);
	static const char *const default_channels[] = {"adc0", "adc1", "adc2", "adc3"};
	size_t nchannels = stream ? stream->nchannels : 4;
	size_t per_frame = sim->samples ? sim->samples : 4096;
	int16_t *samples = malloc(per_frame * sizeof(int16_t));
	int rc = 0;

	if (!samples)
		return -ENOMEM;
	while (more(sim) && !rc) {
		for (unsigned long long b = 0; b < sim->stations && !rc; b++) {
			for (size_t c = 0; c < nchannels && !rc; c++) {
				double dt = stream && stream->channels[c].has_dt ? stream->channels[c].dt
										 : 1e-6;
				uint64_t first = sim->sent * per_frame;
				int64_t t0 = sim->t0 + (int64_t)((double)first * dt * 1e9);
				for (size_t i = 0; i < per_frame; i++) {
					double t = (double)(first + i) * dt;
					double v = 8000 * sin(2 * M_PI * (50.0 * (double)(c + 1)) * t +
							      (double)b) + 40 * gauss(sim);
					samples[i] = (int16_t)lrint(fmax(-32768, fmin(32767, v)));
				}
				char key[256];
				snprintf(key, sizeof(key), "board%llu/%s", b,
					 stream ? stream->channels[c].name : default_channels[c]);
				rc = sender_data(sim->sender, key, DTYPE_INT16, t0, 0, samples, per_frame);
				sim->values += per_frame;
			}
		}
		pace(sim, ++sim->sent);
	}
	free(samples);
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

	char err[512] = "";
	rc = cli_target_connect(&sim.target, &sim.sender, err, sizeof(err));
	if (!rc && gen->protocol == SCHEMA_PROTOCOL_FRAME)
		rc = sender_hello(sim.sender, "h5rec-simulate", sim.target.token);
	sim.started = mono_s();
	if (!rc)
		rc = gen->run(&sim);
	if (!rc)
		rc = sender_finish(sim.sender);
	double elapsed = mono_s() - sim.started;
	if (rc) {
		fprintf(stderr, "h5rec simulate: %s\n", err[0] ? err : strerror(-rc));
	} else {
		printf("h5rec simulate %s: %llu %s, %llu values in %.2f s (%.0f values/s)\n", gen->name,
		       sim.sent, gen->unit, (unsigned long long)sim.values, elapsed,
		       elapsed > 0 ? (double)sim.values / elapsed : 0.0);
		cli_print_sent(stdout, "simulate", sim.sender, &sim.target);
	}
	sender_close(sim.sender);
	cli_target_free(&sim.target);
	return rc ? 1 : 0;
}
