/*
 * codec_bench.c - what each channel compression saves and costs on
 * digitizer-like data: the engine's own chunk encoder against the lz4,
 * gzip and zstd command-line tools at level 1 on the same bytes, measured
 * in the same run.
 *
 * Usage: codec_bench [--mib N] [--reps R] [--chunk-kib K] [--dir TMPDIR]
 * (tests/bench/codec_bench.sh runs it; docs/performance.md has results.)
 *
 * The engine side is h5w_pipeline_encode + h5w_pipeline_finish, the code the
 * daemon's compression pool runs for every chunk (shuffle, deflate, LZ4 or
 * szip, Fletcher-32), on one thread, chunk by chunk over N MiB. Each
 * encoding is then written into an HDF5 file in memory with H5Dwrite_chunk
 * and read back through HDF5's own filters (not timed): a row whose bytes
 * do not decode to the data fails the run, so every ratio printed is one a
 * reader can open. The tools read a file of the same bytes and write to a
 * file (page cache), one process per run: their time includes starting the
 * process, which is small next to N MiB.
 *
 * The data (N MiB each):
 *   accelerator float32  detector volts with 14-bit resolution: baseline,
 *                        noise of a few steps, a pulse per 100,000 samples
 *   digitizer int16      a sine over most of the range, noise of 6 counts
 *   detector int16       a baseline of 200 counts, noise of 3, a pulse of
 *                        500..8000 counts (50-sample decay) now and then
 * Speeds are medians over R repetitions, interleaved so that machine noise
 * hits every row alike, in MB/s of raw data (MB = 10^6 bytes), and as a
 * ratio to `lz4 -1` on the same bytes: the ratio is the figure to compare
 * between machines.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5lz4.h"
#include "h5w_internal.h"
#include "h5z_lz4.h"

extern char **environ;

#define MAX_REPS 64

struct codec {
	const char *name;
	struct h5w_filters f; /* szip: .szip = {coding, pixels per block} */
};

static const struct codec codecs[] = {
	{"none+fletcher32", {.fletcher32 = true}},
	{"lz4", {.codec = H5W_FILTER_LZ4}},
	{"lz4+fletcher32", {.codec = H5W_FILTER_LZ4, .fletcher32 = true}},
	{"shuffle+lz4", {.shuffle = true, .codec = H5W_FILTER_LZ4}},
	{"shuffle+lz4+fletcher32", {.shuffle = true, .codec = H5W_FILTER_LZ4, .fletcher32 = true}},
	{"deflate 1", {.codec = H5W_FILTER_DEFLATE, .level = 1}},
	{"deflate 4", {.codec = H5W_FILTER_DEFLATE, .level = 4}},
	{"deflate 6", {.codec = H5W_FILTER_DEFLATE, .level = 6}},
	{"shuffle+deflate 1", {.shuffle = true, .codec = H5W_FILTER_DEFLATE, .level = 1}},
	{"shuffle+deflate 1+fletcher32",
	 {.shuffle = true, .codec = H5W_FILTER_DEFLATE, .level = 1, .fletcher32 = true}},
	{"shuffle+deflate 4", {.shuffle = true, .codec = H5W_FILTER_DEFLATE, .level = 4}},
	{"szip nn 8", {.codec = H5W_FILTER_SZIP, .szip = {H5_SZIP_NN_OPTION_MASK, 8}}},
	{"szip nn 16", {.codec = H5W_FILTER_SZIP, .szip = {H5_SZIP_NN_OPTION_MASK, 16}}},
	{"szip nn 32", {.codec = H5W_FILTER_SZIP, .szip = {H5_SZIP_NN_OPTION_MASK, 32}}},
	{"szip nn 32+fletcher32",
	 {.codec = H5W_FILTER_SZIP, .szip = {H5_SZIP_NN_OPTION_MASK, 32}, .fletcher32 = true}},
	{"szip ec 32", {.codec = H5W_FILTER_SZIP, .szip = {H5_SZIP_EC_OPTION_MASK, 32}}},
};
#define N_CODECS (sizeof(codecs) / sizeof(codecs[0]))

/* The reference tools, each writing its compressed stream to stdout. */
static const char *const tools[][5] = {
	{"lz4", "-1", "-c", NULL},
	{"gzip", "-1", "-c", NULL},
	{"zstd", "-1", "-c", "-q", NULL},
};
#define N_TOOLS (sizeof(tools) / sizeof(tools[0]))

struct dataset {
	const char *name;
	enum dtype dtype;
	unsigned char *data;
	size_t bytes;
	size_t stored[N_CODECS];
	double seconds[N_CODECS][MAX_REPS];
	size_t tool_stored[N_TOOLS];
	double tool_seconds[N_TOOLS][MAX_REPS];
};

struct options {
	size_t mib;
	int reps;
	size_t chunk_kib;
	const char *dir;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static double uniform(uint64_t *state)
{
	return ((double)(next_random(state) >> 11) + 0.5) / 9007199254740992.0;
}

/* Normal noise of standard deviation 1 (Box-Muller). */
static double gauss(uint64_t *state)
{
	return sqrt(-2.0 * log(uniform(state))) * cos(2 * M_PI * uniform(state));
}

static void *alloc_or_die(size_t bytes)
{
	void *p = malloc(bytes);
	if (!p) {
		fprintf(stderr, "codec_bench: out of memory\n");
		exit(1);
	}
	return p;
}

static void make_data(struct dataset *sets, size_t bytes)
{
	float *accel = alloc_or_die(bytes);
	int16_t *sine = alloc_or_die(bytes), *detector = alloc_or_die(bytes);
	uint64_t state = 4;
	double pulse = 0, height = 0;
	for (size_t i = 0; i < bytes / 4; i++) {
		size_t t = i % 100000;
		if (t == 0)
			height = 0.1 + 0.8 * uniform(&state);
		double x = (double)t - 20000.0;
		double v = 0.01 + height * exp(-x * x / 3200.0) + 0.0005 * gauss(&state);
		accel[i] = (float)(round(v * 8192.0) / 8192.0); /* 14 bits over +-1 V */
	}
	for (size_t i = 0; i < bytes / 2; i++) {
		double s = 12000.0 * sin(2 * M_PI * (double)i / 1000.0) + 6.0 * gauss(&state);
		sine[i] = (int16_t)lround(s);
		if (next_random(&state) % 20000 == 0)
			height = 500.0 + 7500.0 * uniform(&state), pulse = 1;
		double d = 200.0 + 3.0 * gauss(&state) + height * pulse;
		pulse *= exp(-1.0 / 50.0);
		detector[i] = (int16_t)lround(d);
	}
	sets[0] = (struct dataset){.name = "accelerator float32", .dtype = DTYPE_FLOAT32,
				   .data = (unsigned char *)accel, .bytes = bytes};
	sets[1] = (struct dataset){.name = "digitizer int16", .dtype = DTYPE_INT16,
				   .data = (unsigned char *)sine, .bytes = bytes};
	sets[2] = (struct dataset){.name = "detector int16", .dtype = DTYPE_INT16,
				   .data = (unsigned char *)detector, .bytes = bytes};
}

/* The codec's filters for chunks of CHUNK bytes of D's dtype. */
static struct h5w_filters filters_for(const struct codec *c, const struct dataset *d,
				      size_t chunk)
{
	struct h5w_filters f = c->f;
	size_t elem = dtype_size(d->dtype);
	if (f.codec == H5W_FILTER_SZIP)
		h5w_szip_params(c->f.szip[0], c->f.szip[1], elem, chunk / elem, 1, f.szip);
	return f;
}

/* Encode D chunk by chunk into OUT (room for every chunk's bound, one
 * after the other); the stored sizes of the chunks into SIZES. */
static size_t encode_all(struct h5w_encoder *enc, const struct h5w_filters *f,
			 const struct dataset *d, size_t chunk, unsigned char *out, size_t *sizes)
{
	size_t elem = dtype_size(d->dtype), total = 0, cap = h5w_pipeline_bound(f, chunk) + 4;
	for (size_t off = 0, k = 0; off < d->bytes; off += chunk, k++) {
		size_t n;
		unsigned char *o = out + k * cap;
		if (h5w_pipeline_encode(enc, f, d->data + off, chunk, elem, o, cap, &n)) {
			fprintf(stderr, "codec_bench: encoding failed\n");
			exit(1);
		}
		sizes[k] = h5w_pipeline_finish(f, o, n, n);
		total += sizes[k];
	}
	return total;
}

/* Write the encoded chunks with H5Dwrite_chunk into a dataset declared as
 * the engine declares it, read it through HDF5's filters: 0 if the data
 * come back. */
static int verify(const struct h5w_filters *f, const struct dataset *d, size_t chunk,
		  const unsigned char *out, const size_t *sizes)
{
	size_t elem = dtype_size(d->dtype), cap = h5w_pipeline_bound(f, chunk) + 4;
	hsize_t n = d->bytes / elem, rows = chunk / elem;
	hid_t type = d->dtype == DTYPE_FLOAT32 ? H5T_IEEE_F32LE : H5T_STD_I16LE;
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dcpl = H5Pcreate(H5P_DATASET_CREATE);
	H5Pset_fapl_core(fapl, 1 << 24, 0);
	hid_t file = H5Fcreate("codec_bench.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	H5Pset_chunk(dcpl, 1, &rows);
	if (f->shuffle)
		H5Pset_shuffle(dcpl);
	if (f->codec == H5W_FILTER_DEFLATE)
		H5Pset_deflate(dcpl, (unsigned)f->level);
	if (f->codec == H5W_FILTER_LZ4) {
		unsigned cd[1] = {0};
		H5Pset_filter(dcpl, H5LZ4_FILTER_ID, H5Z_FLAG_MANDATORY, 1, cd);
	}
	if (f->codec == H5W_FILTER_SZIP)
		H5Pset_szip(dcpl, f->szip[H5W_SZIP_MASK] &
				   (H5_SZIP_NN_OPTION_MASK | H5_SZIP_EC_OPTION_MASK),
			    f->szip[H5W_SZIP_PPB]);
	if (f->fletcher32)
		H5Pset_fletcher32(dcpl);
	hid_t space = H5Screate_simple(1, &n, NULL);
	hid_t ds = H5Dcreate2(file, "data", type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	unsigned char *back = alloc_or_die(d->bytes);
	int rc = ds < 0 ? -1 : 0;
	for (size_t k = 0; !rc && k * chunk < d->bytes; k++) {
		hsize_t offset = k * rows;
		if (H5Dwrite_chunk(ds, H5P_DEFAULT, 0, &offset, sizes[k], out + k * cap) < 0)
			rc = -1;
	}
	if (!rc && (H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0 ||
		    memcmp(back, d->data, d->bytes)))
		rc = -1;
	free(back);
	H5Dclose(ds);
	H5Sclose(space);
	H5Fclose(file);
	H5Pclose(dcpl);
	H5Pclose(fapl);
	return rc;
}

/* Run ARGV with RAW as its last argument, its stdout into OUT. */
static int run_tool(const char *const *argv, const char *raw, const char *out)
{
	const char *args[8];
	size_t n = 0;
	while (argv[n] && n < 6) {
		args[n] = argv[n];
		n++;
	}
	args[n++] = raw;
	args[n] = NULL;
	posix_spawn_file_actions_t actions;
	pid_t pid;
	int status;
	if (posix_spawn_file_actions_init(&actions))
		return -1;
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out, O_WRONLY | O_CREAT | O_TRUNC,
					 0600);
	int err = posix_spawnp(&pid, args[0], &actions, NULL, (char *const *)args, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (err || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	return 0;
}

static bool have_tool(const char *name)
{
	const char *const argv[] = {name, "--version", NULL};
	posix_spawn_file_actions_t actions;
	pid_t pid;
	int status;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	int err = posix_spawnp(&pid, name, &actions, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	return !err && waitpid(pid, &status, 0) >= 0 && WIFEXITED(status) && !WEXITSTATUS(status);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!val)
			return -1;
		if (!strcmp(arg, "--mib"))
			o->mib = strtoul(val, NULL, 10);
		else if (!strcmp(arg, "--reps"))
			o->reps = atoi(val);
		else if (!strcmp(arg, "--chunk-kib"))
			o->chunk_kib = strtoul(val, NULL, 10);
		else if (!strcmp(arg, "--dir"))
			o->dir = val;
		else
			return -1;
		i++;
	}
	if (!o->mib || o->reps < 1 || o->reps > MAX_REPS || !o->chunk_kib ||
	    (o->mib * 1024) % o->chunk_kib)
		return -1;
	return 0;
}

static void measure(const struct options *o, struct dataset *sets, size_t nsets,
		    const bool *tool_ok)
{
	size_t chunk = o->chunk_kib * 1024, nchunks = sets[0].bytes / chunk;
	size_t most = 0;
	for (size_t c = 0; c < N_CODECS; c++)
		for (size_t s = 0; s < nsets; s++) {
			struct h5w_filters f = filters_for(&codecs[c], &sets[s], chunk);
			size_t b = h5w_pipeline_bound(&f, chunk) + 4;
			most = b > most ? b : most;
		}
	unsigned char *out = alloc_or_die(most * nchunks);
	size_t *sizes = alloc_or_die(nchunks * sizeof(*sizes));
	struct h5w_encoder enc = {0};
	char raw[4096], packed[4096];
	snprintf(raw, sizeof(raw), "%s/codec_bench.%d.raw", o->dir, (int)getpid());
	snprintf(packed, sizeof(packed), "%s/codec_bench.%d.out", o->dir, (int)getpid());
	for (size_t s = 0; s < nsets; s++) {
		struct dataset *d = &sets[s];
		FILE *fp = fopen(raw, "wb");
		if (!fp || fwrite(d->data, 1, d->bytes, fp) != d->bytes || fclose(fp)) {
			fprintf(stderr, "codec_bench: writing %s failed\n", raw);
			exit(1);
		}
		for (int r = 0; r < o->reps; r++) {
			for (size_t c = 0; c < N_CODECS; c++) {
				struct h5w_filters f = filters_for(&codecs[c], d, chunk);
				double t = now();
				d->stored[c] = encode_all(&enc, &f, d, chunk, out, sizes);
				d->seconds[c][r] = now() - t;
				if (r == 0 && verify(&f, d, chunk, out, sizes)) {
					fprintf(stderr, "codec_bench: %s on %s does not read back\n",
						codecs[c].name, d->name);
					exit(1);
				}
			}
			for (size_t k = 0; k < N_TOOLS; k++) {
				if (!tool_ok[k])
					continue;
				double t = now();
				if (run_tool(tools[k], raw, packed)) {
					fprintf(stderr, "codec_bench: %s failed\n", tools[k][0]);
					exit(1);
				}
				d->tool_seconds[k][r] = now() - t;
				struct stat st;
				d->tool_stored[k] = stat(packed, &st) ? 0 : (size_t)st.st_size;
			}
		}
	}
	unlink(raw);
	unlink(packed);
	h5w_encoder_free(&enc);
	free(out);
	free(sizes);
}

static void print_tables(const struct options *o, struct dataset *sets, size_t nsets,
			 const bool *tool_ok)
{
	printf("%zu MiB per data set, chunks of %zu KiB, median of %d runs; MB/s of raw data;\n"
	       "x lz4: speed / `lz4 -1` speed on the same bytes; stored/raw: smaller is better\n",
	       o->mib, o->chunk_kib, o->reps);
	for (size_t s = 0; s < nsets; s++) {
		struct dataset *d = &sets[s];
		double mb = (double)d->bytes / 1e6;
		double base = tool_ok[0] ? mb / median(d->tool_seconds[0], o->reps) : 0;
		printf("\n%-30s | stored/raw |   MB/s | x lz4 -1\n", d->name);
		for (size_t c = 0; c < N_CODECS; c++) {
			double speed = mb / median(d->seconds[c], o->reps);
			printf("%-30s | %10.3f | %6.0f | %8.2f\n", codecs[c].name,
			       (double)d->stored[c] / (double)d->bytes, speed,
			       base > 0 ? speed / base : 0.0);
			if (strstr(codecs[c].name, "+fletcher32") && codecs[c].f.codec)
				printf("SUMMARY|codec|%s, %s, MB/s (stored/raw %.3f)|%.0f|lz4 -1 CLI "
				       "(stored/raw %.3f)|%.0f|%.2f|-|-\n",
				       d->name, codecs[c].name, (double)d->stored[c] / (double)d->bytes,
				       speed, (double)d->tool_stored[0] / (double)d->bytes, base,
				       base > 0 ? speed / base : 0.0);
		}
		for (size_t k = 0; k < N_TOOLS; k++) {
			char name[32];
			snprintf(name, sizeof(name), "%s %s (CLI)", tools[k][0], tools[k][1]);
			if (!tool_ok[k]) {
				printf("%-30s | not installed\n", name);
				continue;
			}
			double speed = mb / median(d->tool_seconds[k], o->reps);
			printf("%-30s | %10.3f | %6.0f | %8.2f\n", name,
			       (double)d->tool_stored[k] / (double)d->bytes, speed,
			       base > 0 ? speed / base : 0.0);
		}
	}
}

int main(int argc, char **argv)
{
	struct options o = {.mib = 32, .reps = 5, .chunk_kib = 128, .dir = "/var/tmp"};
	if (parse_args(argc, argv, &o)) {
		fprintf(stderr, "usage: codec_bench [--mib N] [--reps R (1..%d)] [--chunk-kib K "
				"(dividing N MiB)] [--dir TMPDIR]\n", MAX_REPS);
		return 2;
	}
	if (h5z_lz4_register()) {
		fprintf(stderr, "codec_bench: registering the LZ4 filter failed\n");
		return 1;
	}
	bool tool_ok[N_TOOLS];
	for (size_t k = 0; k < N_TOOLS; k++)
		tool_ok[k] = have_tool(tools[k][0]);
	if (!tool_ok[0]) {
		fprintf(stderr, "codec_bench: the lz4 CLI, the baseline, is not installed\n");
		return 1;
	}
	struct dataset sets[3];
	make_data(sets, o.mib << 20);
	measure(&o, sets, 3, tool_ok);
	print_tables(&o, sets, 3, tool_ok);
	for (size_t s = 0; s < 3; s++)
		free(sets[s].data);
	return 0;
}
