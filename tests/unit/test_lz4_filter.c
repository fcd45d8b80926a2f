/*
 * test_lz4_filter.c - filter 32004 through the HDF5 C API: the class from
 * plugins/h5z_lz4.c registered directly, as the recorder does.
 *
 * Round trips over every numeric dtype, chunk sizes from 1 byte to 16 MiB,
 * default and small block sizes, compressible and random data; the direct
 * chunk write path of the storage engine; and corrupt chunks, which must
 * turn into read errors with the filter's message on the error stack.
 * Files live in memory (core driver) except where reopening matters.
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
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "h5lz4.h"
#include "h5z_lz4.h"

enum kind { KIND_SMOOTH, KIND_RANDOM };

static uint64_t xorshift(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/* Fill n elements of type: a slow ramp/sine (compressible) or random bits. */
static void *make_data(hid_t type, size_t n, enum kind kind, uint64_t seed)
{
	size_t size = H5Tget_size(type);
	unsigned char *p = malloc(n * size + 1);
	uint64_t state = seed | 1;

	assert_non_null(p);
	if (kind == KIND_RANDOM) {
		for (size_t i = 0; i < n * size; i++)
			p[i] = (unsigned char)xorshift(&state);
		return p;
	}
	for (size_t i = 0; i < n; i++) {
		/* quantised like ADC counts, so that LZ4 finds repeats */
		double v = floor(100.0 * sin((double)i / 500.0)) / 4.0;
		long long k = (long long)(i / 16 % 100);

		if (H5Tequal(type, H5T_NATIVE_FLOAT) > 0)
			((float *)(void *)p)[i] = (float)v;
		else if (H5Tequal(type, H5T_NATIVE_DOUBLE) > 0)
			((double *)(void *)p)[i] = v;
		else
			memcpy(p + i * size, &k, size); /* little-endian: the low bytes */
	}
	return p;
}

static hid_t memory_file(void)
{
	static unsigned counter;
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	char name[64];
	hid_t file;

	assert_true(fapl >= 0);
	assert_true(H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0);
	/* Unique names: a failed test leaves its in-memory file open. */
	snprintf(name, sizeof(name), "lz4-filter-test-%u.h5", counter++);
	file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	assert_true(file >= 0);
	H5Pclose(fapl);
	return file;
}

/* A 1-D LZ4 dataset of n elements in chunks of chunk elements; block_size
 * < 0 leaves cd_values empty. */
static hid_t create_1d(hid_t file, const char *name, hid_t type, hsize_t n, hsize_t chunk,
		       long long block_size)
{
	hid_t space = H5Screate_simple(1, &n, NULL);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	unsigned int cd = (unsigned int)block_size;
	hid_t dset;

	assert_true(H5Pset_chunk(dcpl, 1, &chunk) >= 0);
	assert_true(H5Pset_filter(dcpl, H5LZ4_FILTER_ID, H5Z_FLAG_MANDATORY, block_size < 0 ? 0 : 1,
				  &cd) >= 0);
	dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	H5Pclose(dcpl);
	H5Sclose(space);
	return dset;
}

/* The first stored chunk must be in the LZ4 format and decode to the first
 * chunk of data: proves the filter really ran, not just that bytes came back. */
static void check_first_chunk_is_lz4(hid_t dset, const void *data, size_t chunk_bytes)
{
	hsize_t offset = 0;
	hsize_t stored = 0;
	uint32_t mask = 1;
	unsigned char *raw;
	unsigned char *out = malloc(chunk_bytes);
	size_t out_len = 0;

	assert_true(H5Dget_chunk_storage_size(dset, &offset, &stored) >= 0);
	raw = malloc(stored);
	assert_non_null(raw);
	assert_non_null(out);
	assert_true(H5Dread_chunk(dset, H5P_DEFAULT, &offset, &mask, raw) >= 0);
	assert_int_equal(mask, 0);
	assert_int_equal(h5lz4_decode(raw, stored, out, chunk_bytes, &out_len), 0);
	assert_int_equal(out_len, chunk_bytes);
	assert_memory_equal(out, data, chunk_bytes);
	free(raw);
	free(out);
}

static void round_trip(hid_t file, hid_t type, hsize_t n, hsize_t chunk, long long block_size,
		       enum kind kind)
{
	static unsigned counter;
	char name[64];
	size_t size = H5Tget_size(type);
	void *data = make_data(type, n, kind, n * 31 + (hsize_t)block_size + size);
	void *back = malloc(n * size + 1);
	hid_t dset;

	snprintf(name, sizeof(name), "d%u", counter++);
	dset = create_1d(file, name, type, n, chunk, block_size);
	assert_true(dset >= 0);
	assert_true(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	assert_true(H5Dflush(dset) >= 0);
	memset(back, 0xa5, n * size);
	assert_true(H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, n * size);
	check_first_chunk_is_lz4(dset, data, (size_t)(chunk < n ? chunk : n) * size);
	if (kind == KIND_SMOOTH && n * size >= 4096 && block_size <= 0)
		assert_true(H5Dget_storage_size(dset) < n * size / 2);
	H5Dclose(dset);
	free(data);
	free(back);
}

static int setup(void **state)
{
	(void)state;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	return h5z_lz4_register();
}

static void test_every_numeric_dtype(void **state)
{
	hid_t types[] = {H5T_NATIVE_INT8,  H5T_NATIVE_UINT8,  H5T_NATIVE_INT16, H5T_NATIVE_UINT16,
			 H5T_NATIVE_INT32, H5T_NATIVE_UINT32, H5T_NATIVE_INT64, H5T_NATIVE_UINT64,
			 H5T_NATIVE_FLOAT, H5T_NATIVE_DOUBLE};
	long long block_sizes[] = {-1, 0, 1000, 64};
	hid_t file = memory_file();

	(void)state;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (size_t b = 0; b < sizeof(block_sizes) / sizeof(block_sizes[0]); b++)
			for (int kind = KIND_SMOOTH; kind <= KIND_RANDOM; kind++)
				round_trip(file, types[t], 4096 * 3 + 77, 4096, block_sizes[b],
					   (enum kind)kind);
	H5Fclose(file);
}

static void test_chunk_sizes_1_byte_to_16_mib(void **state)
{
	hid_t file = memory_file();
	struct {
		hid_t type;
		hsize_t n, chunk;
		long long block_size;
	} cases[] = {
		{H5T_NATIVE_INT8, 5, 1, 0},
		{H5T_NATIVE_INT8, 5, 1, 1},
		{H5T_NATIVE_UINT8, 7, 2, 1},
		{H5T_NATIVE_INT16, 1000, 3, 4},
		{H5T_NATIVE_INT8, 10000, 4097, 0},
		{H5T_NATIVE_FLOAT, 1u << 18, 1u << 18, 0},		/* 1 MiB */
		{H5T_NATIVE_FLOAT, (1u << 22) + 5, 1u << 22, 0},	/* 16 MiB, one block */
		{H5T_NATIVE_FLOAT, 1u << 22, 1u << 22, 65536},		/* 16 MiB, 256 blocks */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int kind = KIND_SMOOTH; kind <= KIND_RANDOM; kind++)
			round_trip(file, cases[i].type, cases[i].n, cases[i].chunk, cases[i].block_size,
				   (enum kind)kind);
	H5Fclose(file);
}

/* The records layout of the accelerator case: unlimited x 100000 float32,
 * extended record by record. */
static void test_records_layout_2d(void **state)
{
	hid_t file = memory_file();
	hsize_t dims[2] = {0, 100000}, maxdims[2] = {H5S_UNLIMITED, 100000};
	hsize_t chunk[2] = {2, 100000};
	hid_t space = H5Screate_simple(2, dims, maxdims);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	float *rows = make_data(H5T_NATIVE_FLOAT, 5 * 100000, KIND_SMOOTH, 9);
	float *back = malloc(5 * 100000 * sizeof(float));
	hid_t dset;

	(void)state;
	assert_true(H5Pset_chunk(dcpl, 2, chunk) >= 0);
	assert_true(H5Pset_filter(dcpl, H5LZ4_FILTER_ID, H5Z_FLAG_MANDATORY, 0, NULL) >= 0);
	dset = H5Dcreate2(file, "wave", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	assert_true(dset >= 0);
	for (hsize_t r = 0; r < 5; r++) {
		hsize_t size[2] = {r + 1, 100000}, start[2] = {r, 0}, count[2] = {1, 100000};
		hid_t fspace, mspace = H5Screate_simple(2, count, NULL);

		assert_true(H5Dset_extent(dset, size) >= 0);
		fspace = H5Dget_space(dset);
		H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
		assert_true(H5Dwrite(dset, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT,
				     rows + r * 100000) >= 0);
		H5Sclose(fspace);
		H5Sclose(mspace);
	}
	assert_true(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, rows, 5 * 100000 * sizeof(float));
	H5Dclose(dset);
	H5Pclose(dcpl);
	H5Sclose(space);
	H5Fclose(file);
	free(rows);
	free(back);
}

/* What the storage engine does: encode in its own thread, then write the
 * chunk as is. Reading goes through the filter. */
static void test_direct_chunk_write_reads_back(void **state)
{
	hid_t file = memory_file();
	size_t chunk_n = 50000, chunk_bytes = chunk_n * sizeof(float);
	float *data = make_data(H5T_NATIVE_FLOAT, 4 * chunk_n, KIND_SMOOTH, 11);
	float *back = malloc(4 * chunk_bytes);
	unsigned char *enc = malloc(h5lz4_bound(chunk_bytes, 8192));
	hid_t dset = create_1d(file, "direct", H5T_NATIVE_FLOAT, 4 * chunk_n, chunk_n, 8192);

	(void)state;
	assert_true(dset >= 0);
	for (hsize_t c = 0; c < 4; c++) {
		hsize_t offset = c * chunk_n;
		size_t len = 0;

		assert_int_equal(h5lz4_encode(data + offset, chunk_bytes, 8192, enc,
					      h5lz4_bound(chunk_bytes, 8192), &len), 0);
		assert_true(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, &offset, len, enc) >= 0);
	}
	assert_true(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, 4 * chunk_bytes);
	H5Dclose(dset);
	H5Fclose(file);
	free(enc);
	free(data);
	free(back);
}

static void test_file_keeps_filter_and_block_size(void **state)
{
	char path[] = "/tmp/h5rec-lz4-test-XXXXXX";
	int fd = mkstemp(path);
	int32_t data[3000], back[3000];
	unsigned int flags = 0, cd[2] = {0, 0};
	size_t ncd = 2;
	hid_t file, dset, dcpl;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	for (int i = 0; i < 3000; i++)
		data[i] = i;
	file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	dset = create_1d(file, "ramp", H5T_NATIVE_INT32, 3000, 1000, 512);
	assert_true(H5Dwrite(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	H5Dclose(dset);
	H5Fclose(file);

	file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	dset = H5Dopen2(file, "ramp", H5P_DEFAULT);
	assert_true(dset >= 0);
	dcpl = H5Dget_create_plist(dset);
	assert_true(H5Pget_filter_by_id2(dcpl, H5LZ4_FILTER_ID, &flags, &ncd, cd, 0, NULL, NULL) >= 0);
	assert_int_equal(ncd, 1);
	assert_int_equal(cd[0], 512);
	assert_true(H5Dread(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, sizeof(data));
	H5Pclose(dcpl);
	H5Dclose(dset);
	H5Fclose(file);
	unlink(path);
}

static void test_block_size_checked_at_create(void **state)
{
	hid_t file = memory_file();

	(void)state;
	assert_true(create_1d(file, "too_big", H5T_NATIVE_INT8, 100, 10,
			      (long long)H5LZ4_MAX_BLOCK_SIZE + 1) < 0);
	assert_true(create_1d(file, "negative", H5T_NATIVE_INT8, 100, 10, 0x80000000ll) < 0);
	hid_t ok = create_1d(file, "max", H5T_NATIVE_INT8, 100, 10, H5LZ4_MAX_BLOCK_SIZE);
	assert_true(ok >= 0);
	H5Dclose(ok);
	H5Fclose(file);
}

static herr_t find_lz4_message(unsigned n, const H5E_error2_t *err, void *found)
{
	(void)n;
	if (err->desc && strstr(err->desc, "lz4"))
		*(int *)found = 1;
	return 0;
}

struct corruption {
	const char *what;
	size_t offset; /* where to write value; SIZE_MAX: no write */
	int width;
	uint64_t value;
	long long new_len; /* -1: keep the length, -2: one non-zero byte more
			      (zero bytes after the blocks are padding, accepted) */
	int flip_at;       /* >= 0: xor 0xff into this byte */
};

/*
 * Write a valid dataset of 4 chunks, replace chunk 1 with a corrupt one
 * through H5Dwrite_chunk, and expect: reading chunk 1 fails with the
 * filter's message on the stack, reading chunk 0 still works.
 */
static void corrupt_and_read(hid_t file, const struct corruption *c)
{
	static unsigned counter;
	char name[64];
	size_t chunk_n = 3000, chunk_bytes = chunk_n * sizeof(float);
	float *data = make_data(H5T_NATIVE_FLOAT, 4 * chunk_n, KIND_SMOOTH, 13);
	float *back = malloc(chunk_bytes);
	size_t cap = h5lz4_bound(chunk_bytes, 1000) + 64;
	unsigned char *enc = calloc(1, cap);
	size_t len = 0;
	hsize_t offset = chunk_n, count = chunk_n, zero = 0;
	hid_t dset, fspace, mspace = H5Screate_simple(1, &count, NULL);
	int found = 0;
	herr_t status;

	snprintf(name, sizeof(name), "corrupt%u", counter++);
	dset = create_1d(file, name, H5T_NATIVE_FLOAT, 4 * chunk_n, chunk_n, 1000);
	assert_true(H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	assert_int_equal(h5lz4_encode(data + chunk_n, chunk_bytes, 1000, enc, cap, &len), 0);
	if (c->offset != SIZE_MAX) {
		for (int i = 0; i < c->width; i++)
			enc[c->offset + (size_t)i] = (unsigned char)(c->value >> (8 * (c->width - 1 - i)));
	}
	if (c->flip_at >= 0)
		enc[c->flip_at] ^= 0xff;
	if (c->new_len >= 0)
		len = (size_t)c->new_len;
	else if (c->new_len == -2)
		enc[len++] = 0x5a;
	assert_true(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, &offset, len, enc) >= 0);

	fspace = H5Dget_space(dset);
	H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &offset, NULL, &count, NULL);
	H5Eclear2(H5E_DEFAULT);
	status = H5Dread(dset, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, back);
	if (status >= 0)
		fail_msg("%s: corrupt chunk read without error", c->what);
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_lz4_message, &found);
	if (!found)
		fail_msg("%s: no lz4 message on the error stack", c->what);

	H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &zero, NULL, &count, NULL);
	assert_true(H5Dread(dset, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, chunk_bytes);

	H5Sclose(fspace);
	H5Sclose(mspace);
	H5Dclose(dset);
	free(enc);
	free(data);
	free(back);
}

static void test_corrupt_chunks_fail_to_read(void **state)
{
	const struct corruption cases[] = {
		{"header size +1", 0, 8, 12001, -1, -1},
		{"size larger than the chunk", 0, 8, UINT64_C(1) << 40, -1, -1},
		{"size 2^64-1", 0, 8, UINT64_MAX, -1, -1},
		{"zero block size", 8, 4, 0, -1, -1},
		{"negative block size", 8, 4, 0x80000000u, -1, -1},
		{"block size -1", 8, 4, 0xffffffffu, -1, -1},
		{"stored length beyond the buffer", 12, 4, 0x7fffffffu, -1, -1},
		{"stored length above block", 12, 4, 1001, -1, -1},
		{"zero stored length", 12, 4, 0, -1, -1},
		{"truncated header", SIZE_MAX, 0, 0, 7, -1},
		{"header only", SIZE_MAX, 0, 0, 12, -1},
		{"truncated block", SIZE_MAX, 0, 0, 40, -1},
		{"trailing non-zero byte", SIZE_MAX, 0, 0, -2, -1},
		{"flipped size byte", SIZE_MAX, 0, 0, -1, 6},
		{"flipped block size byte", SIZE_MAX, 0, 0, -1, 10},
		{"flipped length byte", SIZE_MAX, 0, 0, -1, 14},
		{"LZ4 literal run past the block", 16, 4, 0xffffffffu, -1, -1},
	};
	hid_t file = memory_file();

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		corrupt_and_read(file, &cases[i]);
	}
	H5Fclose(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_numeric_dtype),
		cmocka_unit_test(test_chunk_sizes_1_byte_to_16_mib),
		cmocka_unit_test(test_records_layout_2d),
		cmocka_unit_test(test_direct_chunk_write_reads_back),
		cmocka_unit_test(test_file_keeps_filter_and_block_size),
		cmocka_unit_test(test_block_size_checked_at_create),
		cmocka_unit_test(test_corrupt_chunks_fail_to_read),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
