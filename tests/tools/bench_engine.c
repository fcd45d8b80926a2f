/*
 * bench_engine.c - storage-engine throughput, one measurement per run; the
 * driver tests/bench/engine_bench.py repeats runs, takes medians and prints
 * the comparison table. Not run by ctest.
 *
 *   bench_engine records DIR MIB [MAX_BUFFER_MIB]
 *       records layout, 3 x float32 waveforms of 100000 samples (400 kB) per
 *       event, uncompressed, flush every 1 s of wall time, until MIB MiB.
 *   bench_engine write DIR MIB
 *       the baseline: write() of the same bytes in 400 kB pieces, one fsync.
 *   bench_engine lz4 DIR MIB
 *       stream layout, float32 sine + noise as a 14-bit digitizer records it
 *       (quantised to 1/8192 V), LZ4 chunks of 256 Ki samples;
 *       also writes the raw bytes to DIR/raw.f32 for the `lz4 -1` baseline.
 *   bench_engine deflate DIR MIB
 *       the same data with deflate level 4 (no shuffle), then single-threaded
 *       compress2 of the same chunks, for comparison.
 *   bench_engine codec DIR MIB
 *       the same data with the channel options in $BENCH_CODEC (for example
 *       "compression: szip, fletcher32: true"; tests/bench/codec_engine.py).
 *   bench_engine table DIR RECORDS
 *       table layout, 4 float32 channels, one h5w_table_append per record
 *       (BENCH_WIRE=float64: values sent as float64 and converted, as the
 *       line protocol delivers them).
 *
 * Prints one line: "<mode> bytes=<n> seconds=<s> rate=<bytes/s> samples=<n>
 * maxrss_kib=<k>".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "h5w.h"
#include "schema.h"

#define SAMPLES 100000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The engine's clock, arrivals on time. */
static int tick_now(struct h5w *w, struct h5w_error *err)
{
	int64_t now = wall_ns();
	return h5w_tick(w, now, now, err);
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_engine: %s: %s\n", what, msg);
	exit(1);
}

static struct schema *load(const char *dir, const char *body, unsigned max_buffer_mib)
{
	char text[4096];
	struct schema *s = NULL;
	struct schema_error serr;
	snprintf(text, sizeof(text),
		 "name: bench\noutput:\n  directory: %s\n  file: \"bench-{seq}.h5\"\n  flush: 1s\n"
		 "listen:\n  - { protocol: %s, transport: tcp, address: \"127.0.0.1:7701\" }\n"
		 "limits: { max_buffer: %uMiB }\n%s",
		 dir, strstr(body, "measurement") ? "line" : "frame", max_buffer_mib, body);
	if (schema_load_string(text, strlen(text), "bench.yaml", &s, &serr))
		die("schema", serr.message);
	return s;
}

static struct h5w_group *group(struct h5w *w, const struct schema *s)
{
	struct h5w_group *g;
	struct h5w_error err;
	const char *names[] = {"board"}, *values[] = {"b1"};
	if (h5w_group_get(w, &s->streams[0], names, values, 1, &g, &err))
		die("group", err.message);
	return g;
}

static void report(const char *mode, uint64_t bytes, double secs, uint64_t samples)
{
	printf("%s bytes=%" PRIu64 " seconds=%.4f rate=%.0f samples=%" PRIu64 " maxrss_kib=%ld\n",
	       mode, bytes, secs, (double)bytes / secs, samples, maxrss_kib());
}

static void bench_records(const char *dir, uint64_t mib, unsigned max_buffer)
{
	static const char *body =
		"streams:\n  - name: dust\n    match: { key: \"{board}/{channel}\" }\n"
		"    group: \"/{board}\"\n    layout: records\n    samples: 100000\n    dt: 2e-8\n"
		"    defaults: { dtype: float32, chunk: 1 }\n"
		"    channels: { first: {}, second: {}, third: {} }\n";
	struct schema *s = load(dir, body, max_buffer);
	struct h5w *w;
	struct h5w_error err;
	struct h5w_options opt = {.workers = 2};
	if (h5w_open(&w, s, &opt, wall_ns(), &err))
		die("open", err.message);
	struct h5w_group *g = group(w, s);
	float *waves[3];
	for (int c = 0; c < 3; c++) {
		waves[c] = malloc(SAMPLES * sizeof(float));
		for (int j = 0; j < SAMPLES; j++)
			waves[c][j] = (float)sin(j * 0.001 * (c + 1));
	}
	uint64_t total = mib << 20, bytes = 0, samples = 0;
	double t0 = now_s();
	for (uint64_t e = 1; bytes < total; e++) {
		for (size_t c = 0; c < 3 && bytes < total; c++) {
			if (h5w_record_data(w, g, e, wall_ns(), c, DTYPE_FLOAT32, waves[c], SAMPLES,
					    &err))
				die("record_data", err.message);
			bytes += SAMPLES * sizeof(float);
			samples += SAMPLES;
		}
		if (tick_now(w, &err))
			die("tick", err.message);
	}
	if (h5w_close(w, &err))
		die("close", err.message);
	report("records", bytes, now_s() - t0, samples);
	for (int c = 0; c < 3; c++)
		free(waves[c]);
	schema_free(s);
}

static void bench_write(const char *dir, uint64_t mib)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/baseline.bin", dir);
	float *buf = malloc(SAMPLES * sizeof(float));
	for (int j = 0; j < SAMPLES; j++)
		buf[j] = (float)sin(j * 0.001);
	uint64_t total = mib << 20, bytes = 0;
	double t0 = now_s();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open", strerror(errno));
	while (bytes < total) {
		ssize_t n = write(fd, buf, SAMPLES * sizeof(float));
		if (n != (ssize_t)(SAMPLES * sizeof(float)))
			die("write", strerror(errno));
		bytes += (uint64_t)n;
	}
	fsync(fd);
	close(fd);
	report("write", bytes, now_s() - t0, bytes / 4);
	unlink(path);
	free(buf);
}

static uint64_t rng_state = 88172645463325252ull;

static double noise(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0 - 0.5;
}

static void bench_compressed(const char *dir, uint64_t mib, const char *mode,
			     const char *compression)
{
	char body[1024];
	snprintf(body, sizeof(body),
		 "streams:\n  - name: adc\n    match: { key: \"{board}/{channel}\" }\n"
		 "    group: \"/{board}\"\n    layout: stream\n"
		 "    channels: { a0: { dtype: float32, chunk: 262144, dt: 1e-6, %s } }\n",
		 compression);
	struct schema *s = load(dir, body, 512);
	size_t n = (size_t)(mib << 20) / sizeof(float);
	float *data = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		/* a 14-bit digitizer's view of a sine plus noise, in volts */
		data[i] = (float)(round((sin((double)i * 0.01) + 0.05 * noise()) * 8192.0) / 8192.0);
	char raw[4096];
	snprintf(raw, sizeof(raw), "%s/raw.f32", dir);
	FILE *f = fopen(raw, "wb");
	if (!f || fwrite(data, sizeof(float), n, f) != n)
		die("raw", strerror(errno));
	fclose(f);

	struct h5w *w;
	struct h5w_error err;
	struct h5w_options opt = {0};
	if (getenv("BENCH_WORKERS"))
		opt.workers = (unsigned)atoi(getenv("BENCH_WORKERS"));
	if (h5w_open(&w, s, &opt, wall_ns(), &err))
		die("open", err.message);
	struct h5w_group *g = group(w, s);
	size_t frame = 1 << 16;
	double t0 = now_s();
	for (size_t i = 0; i < n; i += frame) {
		size_t k = n - i < frame ? n - i : frame;
		if (h5w_stream_append(w, g, 0, DTYPE_FLOAT32, data + i, k, wall_ns(), i / frame, &err))
			die("append", err.message);
		if (tick_now(w, &err))
			die("tick", err.message);
	}
	struct h5w_stats st;
	h5w_get_stats(w, &st);
	if (h5w_close(w, &err))
		die("close", err.message);
	double secs = now_s() - t0;
	report(mode, n * sizeof(float), secs, n);
	printf("lz4_ratio raw=%" PRIu64 " stored=%" PRIu64 "\n", st.bytes_raw, st.bytes_compressed);
	if (!strcmp(mode, "deflate")) {
		/* what one thread of zlib does with the same chunks */
		size_t chunk = 262144 * sizeof(float);
		uLongf cap = compressBound(chunk);
		unsigned char *out = malloc(cap);
		t0 = now_s();
		for (size_t off = 0; off < n * sizeof(float); off += chunk) {
			uLongf len = cap;
			size_t k = n * sizeof(float) - off < chunk ? n * sizeof(float) - off : chunk;
			compress2(out, &len, (const Bytef *)data + off, k, 4);
		}
		report("zlib", n * sizeof(float), now_s() - t0, n);
		free(out);
	}
	free(data);
	schema_free(s);
}

static void bench_table(const char *dir, uint64_t records)
{
	static const char *body =
		"streams:\n  - name: weather\n    match: { measurement: weather }\n"
		"    group: \"/{board}\"\n    layout: table\n"
		"    defaults: { dtype: float32, chunk: 65536 }\n"
		"    channels: { a: {}, b: {}, c: {}, d: {} }\n";
	struct schema *s = load(dir, body, 512);
	struct h5w *w;
	struct h5w_error err;
	struct h5w_options opt = {0};
	if (h5w_open(&w, s, &opt, wall_ns(), &err))
		die("open", err.message);
	struct h5w_group *g = group(w, s);
	struct h5w_value v[4];
	/* BENCH_WIRE=float64: values as the line protocol delivers them, so
	 * every value is converted (h5w_convert.c: the float64 -> float32 fast
	 * path, which gives what H5Tconvert gives) */
	bool wide = getenv("BENCH_WIRE") && !strcmp(getenv("BENCH_WIRE"), "float64");
	double t0 = now_s();
	int64_t t = wall_ns();
	for (uint64_t i = 0; i < records; i++) {
		for (size_t c = 0; c < 4; c++) {
			v[c].index = c;
			if (wide) {
				v[c].dtype = DTYPE_FLOAT64;
				v[c].v.f64 = (double)i + (double)c;
			} else {
				v[c].dtype = DTYPE_FLOAT32;
				v[c].v.f32 = (float)i + (float)c;
			}
		}
		if (h5w_table_append(w, g, t + (int64_t)i, v, 4, &err))
			die("append", err.message);
		if ((i & 4095) == 0 && tick_now(w, &err))
			die("tick", err.message);
	}
	if (h5w_close(w, &err))
		die("close", err.message);
	report("table", records * 4 * sizeof(float), now_s() - t0, records * 4);
	schema_free(s);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_engine records|write|lz4|deflate|codec|table DIR N "
			"[MAX_BUFFER_MIB]\n");
		return 2;
	}
	uint64_t n = strtoull(argv[3], NULL, 10);
	if (!strcmp(argv[1], "records"))
		bench_records(argv[2], n, argc > 4 ? (unsigned)atoi(argv[4]) : 512);
	else if (!strcmp(argv[1], "write"))
		bench_write(argv[2], n);
	else if (!strcmp(argv[1], "lz4"))
		bench_compressed(argv[2], n, "lz4", "compression: lz4");
	else if (!strcmp(argv[1], "deflate"))
		bench_compressed(argv[2], n, "deflate", "compression: deflate, level: 4, shuffle: false");
	else if (!strcmp(argv[1], "codec") && getenv("BENCH_CODEC"))
		bench_compressed(argv[2], n, "codec", getenv("BENCH_CODEC"));
	else if (!strcmp(argv[1], "table"))
		bench_table(argv[2], n);
	else
		return 2;
	return 0;
}
