/*
 * lz4_bench.c - LZ4 throughput through HDF5 with h5rec's plugin, against the
 * lz4 command-line tool on the same data in the same run.
 *
 * Usage: lz4_bench [--mib N] [--reps R] [--chunk-kib K] [--block BYTES]
 *                  [--plugin-dir DIR] [--lz4 PROGRAM] [--dir TMPDIR]
 * (tests/bench/lz4_bench.sh runs it with the build's plugin directory.)
 *
 * For each data set (sine+noise float32 quantised like ADC counts, random
 * float32 in [0, 1), ramp int32 0, 1, 2, ...; N MiB each) and each repetition, interleaved so that machine noise hits both
 * sides alike:
 *   HDF5 compress    create a file, write one chunked LZ4 dataset, close it
 *   HDF5 decompress  open it, read the dataset, close it
 *   lz4 compress     lz4 -1 --no-frame-crc RAW OUT (file to file, like
 *                    HDF5; no checksum, as the HDF5 format has none)
 *   lz4 decompress   lz4 -d -c OUT > /dev/null (file to nowhere, as HDF5
 *                    reads into memory)
 *   codec only       h5lz4_encode/h5lz4_decode chunk by chunk in memory,
 *                    to show what HDF5 itself costs
 * Both sides use files in the same directory (page cache). The
 * table gives medians over the repetitions, in MB/s of uncompressed data
 * (MB = 10^6 bytes), and the ratio of HDF5 to lz4, which is the number to
 * compare between machines; one absolute time alone says little.
 *
 * The filter is loaded the way readers load it: HDF5's plugin path is
 * replaced by --plugin-dir (default $H5REC_PLUGIN_DIR), and the module that
 * actually got mapped is printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
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

extern char **environ;

struct options {
	size_t mib;
	int reps;
	size_t chunk_kib;
	uint32_t block_size;
	const char *plugin_dir;
	const char *lz4;
	const char *dir;
};

enum measure { HDF5_C, HDF5_D, CLI_C, CLI_D, CODEC_C, CODEC_D, N_MEASURES };

struct dataset {
	const char *name;
	hid_t type;
	void *data;
	size_t bytes;
	double seconds[N_MEASURES][64];
	size_t hdf5_size, cli_size;
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

/* Approximately normal noise: the sum of four uniforms, centred. */
static double noise(uint64_t *state)
{
	double sum = 0;

	for (int i = 0; i < 4; i++)
		sum += (double)(next_random(state) >> 11) / 9007199254740992.0;
	return sum - 2.0;
}

static void make_data(struct dataset *sets, size_t bytes)
{
	size_t n = bytes / 4;
	float *sine = malloc(bytes), *random = malloc(bytes);
	int32_t *ramp = malloc(bytes);
	uint64_t state = 32004;

	if (!sine || !random || !ramp) {
		fprintf(stderr, "lz4_bench: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++) {
		/* a digitizer's view: integer ADC counts (sine + noise) times a
		 * volt scale, so values repeat as they do in recorded waveforms */
		double counts = round(1000.0 * sin(2 * M_PI * (double)i / 1000.0) + 5.0 * noise(&state));

		sine[i] = (float)counts * 0.0005f;
		random[i] = (float)((double)(next_random(&state) >> 40) / 16777216.0);
		ramp[i] = (int32_t)i;
	}
	sets[0] = (struct dataset){.name = "sine+noise float32", .type = H5T_NATIVE_FLOAT,
				   .data = sine, .bytes = bytes};
	sets[1] = (struct dataset){.name = "random float32", .type = H5T_NATIVE_FLOAT,
				   .data = random, .bytes = bytes};
	sets[2] = (struct dataset){.name = "ramp int32", .type = H5T_NATIVE_INT32,
				   .data = ramp, .bytes = bytes};
}

static int write_file(const char *path, const void *data, size_t bytes)
{
	FILE *f = fopen(path, "wb");
	int err = !f || fwrite(data, 1, bytes, f) != bytes;

	if (f && fclose(f) != 0)
		err = 1;
	return err ? -EIO : 0;
}

static size_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* Run a program to completion, its stdout to /dev/null. */
static int run(const char *const argv[])
{
	posix_spawn_file_actions_t actions;
	pid_t pid;
	int status, err;

	if (posix_spawn_file_actions_init(&actions) != 0)
		return -1;
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	err = posix_spawnp(&pid, argv[0], &actions, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (err != 0)
		return -1;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	return 0;
}

static int hdf5_compress(const struct options *o, struct dataset *d, const char *path)
{
	size_t elem = H5Tget_size(d->type);
	hsize_t n = d->bytes / elem, chunk = o->chunk_kib * 1024 / elem;
	unsigned int cd = o->block_size;
	hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hid_t space = H5Screate_simple(1, &n, NULL);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	hid_t dset;
	int err = 0;

	H5Pset_chunk(dcpl, 1, &chunk);
	H5Pset_filter(dcpl, H5LZ4_FILTER_ID, H5Z_FLAG_MANDATORY, 1, &cd);
	dset = H5Dcreate2(file, "data", d->type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	if (dset < 0 || H5Dwrite(dset, d->type, H5S_ALL, H5S_ALL, H5P_DEFAULT, d->data) < 0)
		err = -1;
	H5Dclose(dset);
	H5Pclose(dcpl);
	H5Sclose(space);
	if (H5Fclose(file) < 0)
		err = -1;
	return err;
}

static int hdf5_decompress(struct dataset *d, const char *path, void *out)
{
	hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	hid_t dset = H5Dopen2(file, "data", H5P_DEFAULT);
	int err = 0;

	if (dset < 0 || H5Dread(dset, d->type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
		err = -1;
	H5Dclose(dset);
	if (H5Fclose(file) < 0)
		err = -1;
	return err;
}

static int codec_round_trip(const struct options *o, struct dataset *d, unsigned char *enc,
			    unsigned char *out, double *t_enc, double *t_dec)
{
	size_t chunk = o->chunk_kib * 1024, cap = h5lz4_bound(chunk, o->block_size);
	size_t nchunks = (d->bytes + chunk - 1) / chunk;
	size_t *lens = calloc(nchunks, sizeof(*lens));
	const unsigned char *src = d->data;
	double t0;
	int err = 0;

	if (!lens)
		return -1;
	t0 = now();
	for (size_t c = 0; c < nchunks && !err; c++) {
		size_t len = d->bytes - c * chunk < chunk ? d->bytes - c * chunk : chunk;

		err = h5lz4_encode(src + c * chunk, len, o->block_size, enc + c * cap, cap, &lens[c]);
	}
	*t_enc = now() - t0;
	t0 = now();
	for (size_t c = 0; c < nchunks && !err; c++) {
		size_t len = 0;

		err = h5lz4_decode(enc + c * cap, lens[c], out + c * chunk, chunk, &len);
	}
	*t_dec = now() - t0;
	free(lens);
	return err || memcmp(out, d->data, d->bytes) != 0 ? -1 : 0;
}

/* The files of data set `set` in the scratch directory. */
static const char *const file_names[] = {"raw%d.bin", "ours%d.h5", "raw%d.bin.lz4"};

static void file_path(char *path, size_t size, const char *dir, int name, int set)
{
	char base[32];

	snprintf(base, sizeof(base), file_names[name], set);
	snprintf(path, size, "%s/%s", dir, base);
}

static int bench_one(const struct options *o, struct dataset *d, int set, int rep,
		     unsigned char *out, unsigned char *enc)
{
	char raw[PATH_MAX], h5[PATH_MAX], lz[PATH_MAX];
	double t0;

	file_path(raw, sizeof(raw), o->dir, 0, set);
	file_path(h5, sizeof(h5), o->dir, 1, set);
	file_path(lz, sizeof(lz), o->dir, 2, set);
	if (rep == 0 && write_file(raw, d->data, d->bytes) != 0)
		return -1;

	t0 = now();
	if (hdf5_compress(o, d, h5) != 0)
		return -1;
	d->seconds[HDF5_C][rep] = now() - t0;
	memset(out, 0, d->bytes);
	t0 = now();
	if (hdf5_decompress(d, h5, out) != 0)
		return -1;
	d->seconds[HDF5_D][rep] = now() - t0;
	if (memcmp(out, d->data, d->bytes) != 0) {
		fprintf(stderr, "lz4_bench: %s: HDF5 read back different data\n", d->name);
		return -1;
	}
	d->hdf5_size = file_size(h5);

	t0 = now();
	if (run((const char *const[]){o->lz4, "-1", "-f", "-q", "--no-frame-crc", raw, lz, NULL}) != 0)
		return -1;
	d->seconds[CLI_C][rep] = now() - t0;
	t0 = now();
	if (run((const char *const[]){o->lz4, "-d", "-c", "-q", lz, NULL}) != 0)
		return -1;
	d->seconds[CLI_D][rep] = now() - t0;
	d->cli_size = file_size(lz);

	return codec_round_trip(o, d, enc, out, &d->seconds[CODEC_C][rep],
				&d->seconds[CODEC_D][rep]);
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_mbps(const struct dataset *d, enum measure m, int reps)
{
	double sorted[64];
	double mid;

	memcpy(sorted, d->seconds[m], (size_t)reps * sizeof(double));
	qsort(sorted, (size_t)reps, sizeof(double), compare_doubles);
	mid = reps % 2 ? sorted[reps / 2] : (sorted[reps / 2 - 1] + sorted[reps / 2]) / 2;
	return (double)d->bytes / mid / 1e6;
}

static int find_plugin(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if (info->dlpi_name && strstr(info->dlpi_name, "lz4") && strstr(info->dlpi_name, "/lib") &&
	    !strstr(info->dlpi_name, "/liblz4")) {
		snprintf(arg, PATH_MAX, "%s", info->dlpi_name);
		return 1;
	}
	return 0;
}

static int load_plugin(const char *dir, char *mapped)
{
	unsigned int npaths = 0;

	if (dir == NULL || *dir == '\0') {
		fprintf(stderr, "lz4_bench: give --plugin-dir or set H5REC_PLUGIN_DIR\n");
		return -1;
	}
	if (H5PLsize(&npaths) < 0)
		return -1;
	while (npaths-- > 0)
		H5PLremove(0);
	if (H5PLappend(dir) < 0 || H5Zfilter_avail(H5LZ4_FILTER_ID) <= 0) {
		fprintf(stderr, "lz4_bench: no LZ4 filter plugin in %s\n", dir);
		return -1;
	}
	mapped[0] = '\0';
	dl_iterate_phdr(find_plugin, mapped);
	return 0;
}

static void print_table(const struct options *o, struct dataset *sets, int nsets,
			const char *mapped)
{
	char block[32] = "whole chunk";

	printf("LZ4 through HDF5 (h5rec plugin) vs lz4 CLI: %zu MiB per data set, %d repetitions, "
	       "medians\n", o->mib, o->reps);
	if (o->block_size)
		snprintf(block, sizeof(block), "%u B", o->block_size);
	printf("HDF5: chunk %zu KiB, block size %s; plugin %s\n", o->chunk_kib, block, mapped);
	printf("lz4 CLI: %s -1 --no-frame-crc RAW OUT; %s -d -c OUT >/dev/null (4 MiB blocks)\n",
	       o->lz4, o->lz4);
	printf("MB/s of uncompressed data, MB = 10^6 B\n\n");
	printf("%-19s | %6s %6s | %9s %9s %6s | %9s %9s %6s | %9s %9s\n", "data", "ratio", "ratio",
	       "comp", "comp", "HDF5/", "decomp", "decomp", "HDF5/", "codec", "codec");
	printf("%-19s | %6s %6s | %9s %9s %6s | %9s %9s %6s | %9s %9s\n", "", "HDF5", "lz4",
	       "HDF5", "lz4", "lz4", "HDF5", "lz4", "lz4", "comp", "decomp");
	for (int i = 0; i < nsets; i++) {
		struct dataset *d = &sets[i];
		double hc = median_mbps(d, HDF5_C, o->reps), hd = median_mbps(d, HDF5_D, o->reps);
		double cc = median_mbps(d, CLI_C, o->reps), cd = median_mbps(d, CLI_D, o->reps);

		printf("%-19s | %6.3f %6.3f | %9.0f %9.0f %6.2f | %9.0f %9.0f %6.2f | %9.0f %9.0f\n",
		       d->name, (double)d->bytes / (double)d->hdf5_size,
		       (double)d->bytes / (double)d->cli_size, hc, cc, hc / cc, hd, cd, hd / cd,
		       median_mbps(d, CODEC_C, o->reps), median_mbps(d, CODEC_D, o->reps));
	}
	/* One line per figure for tests/bench/run's combined table. */
	for (int i = 0; i < nsets; i++) {
		struct dataset *d = &sets[i];
		double hc = median_mbps(d, HDF5_C, o->reps), hd = median_mbps(d, HDF5_D, o->reps);
		double cc = median_mbps(d, CLI_C, o->reps), cd = median_mbps(d, CLI_D, o->reps);
		printf("SUMMARY|lz4|%s, compress through HDF5, MB/s|%.0f|lz4 -1 CLI|%.0f|%.2f|-|-\n",
		       d->name, hc, cc, hc / cc);
		printf("SUMMARY|lz4|%s, decompress through HDF5, MB/s|%.0f|lz4 -d CLI|%.0f|%.2f|-|-\n",
		       d->name, hd, cd, hd / cd);
	}
}

static int parse_args(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;

		if (value == NULL)
			return -1;
		i++;
		if (strcmp(arg, "--mib") == 0)
			o->mib = strtoul(value, NULL, 10);
		else if (strcmp(arg, "--reps") == 0)
			o->reps = atoi(value);
		else if (strcmp(arg, "--chunk-kib") == 0)
			o->chunk_kib = strtoul(value, NULL, 10);
		else if (strcmp(arg, "--block") == 0)
			o->block_size = (uint32_t)strtoul(value, NULL, 10);
		else if (strcmp(arg, "--plugin-dir") == 0)
			o->plugin_dir = value;
		else if (strcmp(arg, "--lz4") == 0)
			o->lz4 = value;
		else if (strcmp(arg, "--dir") == 0)
			o->dir = value;
		else
			return -1;
	}
	if (o->mib == 0 || o->reps < 1 || o->reps > 64 || o->chunk_kib == 0 ||
	    o->block_size > H5LZ4_MAX_BLOCK_SIZE)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {.mib = 64, .reps = 7, .chunk_kib = 4096, .block_size = 0,
			    .plugin_dir = getenv("H5REC_PLUGIN_DIR"), .lz4 = "lz4", .dir = NULL};
	char tmpl[] = "/tmp/h5rec-lz4-bench-XXXXXX", mapped[PATH_MAX], path[PATH_MAX];
	struct dataset sets[3];
	size_t bytes, cap;
	unsigned char *out, *enc;
	int err = 0;

	if (parse_args(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: %s [--mib N] [--reps R] [--chunk-kib K] [--block BYTES] "
				"[--plugin-dir DIR] [--lz4 PROGRAM] [--dir TMPDIR]\n", argv[0]);
		return 2;
	}
	if (o.dir == NULL && (o.dir = mkdtemp(tmpl)) == NULL) {
		perror("lz4_bench: mkdtemp");
		return 1;
	}
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (load_plugin(o.plugin_dir, mapped) != 0)
		return 1;
	bytes = o.mib << 20;
	cap = ((bytes + o.chunk_kib * 1024 - 1) / (o.chunk_kib * 1024)) *
	      h5lz4_bound(o.chunk_kib * 1024, o.block_size);
	make_data(sets, bytes);
	out = malloc(bytes + o.chunk_kib * 1024);
	enc = malloc(cap);
	if (!out || !enc)
		return 1;
	for (int rep = 0; rep < o.reps && !err; rep++)
		for (int i = 0; i < 3 && !err; i++)
			if (bench_one(&o, &sets[i], i, rep, out, enc) != 0) {
				fprintf(stderr, "lz4_bench: %s failed (rep %d)\n", sets[i].name, rep);
				err = 1;
			}
	if (!err)
		print_table(&o, sets, 3, mapped);
	for (int i = 0; i < 3; i++)
		for (int name = 0; name < 3; name++) {
			file_path(path, sizeof(path), o.dir, name, i);
			unlink(path);
		}
	if (o.dir == tmpl)
		rmdir(tmpl);
	for (int i = 0; i < 3; i++)
		free(sets[i].data);
	free(out);
	free(enc);
	return err;
}
