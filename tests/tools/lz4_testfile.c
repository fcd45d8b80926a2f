/*
 * lz4_testfile.c - write an HDF5 file with LZ4 datasets the way h5rec does,
 * for tests/py/test_lz4_interop.py to read with other implementations.
 *
 * Usage: lz4_testfile OUT.h5
 *
 * Every dataset /lz4/<name> has an uncompressed twin /ref/<name> holding the
 * same values, so a reader needs nothing but the file to check itself.
 *   /lz4/pipe_<dtype>_b<block>  every numeric dtype through HDF5's filter
 *                               pipeline (class registered directly)
 *   /lz4/direct_f32_b<block>    chunks encoded with h5lz4_encode and written
 *                               with H5Dwrite_chunk, as the storage engine does
 *   /lz4/records_f32            unlimited x 100000, one row per chunk
 * Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "h5lz4.h"
#include "h5z_lz4.h"

struct dtype {
	const char *name;
	hid_t type;
};

static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Quantised sine plus a little noise: what an ADC channel looks like. */
static void fill(hid_t type, void *out, size_t n, uint64_t seed)
{
	size_t size = H5Tget_size(type);
	uint64_t state = seed | 1;

	for (size_t i = 0; i < n; i++) {
		double v = floor(100.0 * sin((double)i / 300.0)) + (double)(next_random(&state) % 3);

		if (H5Tequal(type, H5T_NATIVE_FLOAT) > 0) {
			((float *)out)[i] = (float)v / 8.0f;
		} else if (H5Tequal(type, H5T_NATIVE_DOUBLE) > 0) {
			((double *)out)[i] = v / 8.0;
		} else {
			long long k = (long long)v + (H5Tget_sign(type) == H5T_SGN_NONE ? 128 : 0);

			memcpy((unsigned char *)out + i * size, &k, size);
		}
	}
}

static int write_pair(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims,
		      const hsize_t *chunk, long long block_size, const void *data)
{
	hid_t space = H5Screate_simple(rank, dims, NULL);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	char path[128];
	unsigned int cd = (unsigned int)block_size;
	hid_t ref, lz4;
	int err = 0;

	H5Pset_chunk(dcpl, rank, chunk);
	snprintf(path, sizeof(path), "/ref/%s", name);
	ref = H5Dcreate2(file, path, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	H5Pset_filter(dcpl, H5LZ4_FILTER_ID, H5Z_FLAG_MANDATORY, block_size < 0 ? 0 : 1, &cd);
	snprintf(path, sizeof(path), "/lz4/%s", name);
	lz4 = H5Dcreate2(file, path, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	if (ref < 0 || lz4 < 0)
		err = -1;
	else if (data && (H5Dwrite(ref, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0 ||
			  H5Dwrite(lz4, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
		err = -1;
	H5Dclose(ref);
	H5Dclose(lz4);
	H5Pclose(dcpl);
	H5Sclose(space);
	return err;
}

static int write_pipeline(hid_t file)
{
	const struct dtype types[] = {
		{"i1", H5T_NATIVE_INT8},   {"u1", H5T_NATIVE_UINT8},  {"i2", H5T_NATIVE_INT16},
		{"u2", H5T_NATIVE_UINT16}, {"i4", H5T_NATIVE_INT32},  {"u4", H5T_NATIVE_UINT32},
		{"i8", H5T_NATIVE_INT64},  {"u8", H5T_NATIVE_UINT64}, {"f4", H5T_NATIVE_FLOAT},
		{"f8", H5T_NATIVE_DOUBLE}};
	const long long block_sizes[] = {-1, 0, 1000};
	hsize_t n = 25000, chunk = 10000;
	void *data = malloc(n * 8);

	if (!data)
		return -1;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		fill(types[t].type, data, n, t + 1);
		for (size_t b = 0; b < sizeof(block_sizes) / sizeof(block_sizes[0]); b++) {
			char name[64];

			snprintf(name, sizeof(name), "pipe_%s_b%lld", types[t].name, block_sizes[b]);
			if (write_pair(file, name, types[t].type, 1, &n, &chunk, block_sizes[b], data)) {
				free(data);
				return -1;
			}
		}
	}
	free(data);
	return 0;
}

static int write_direct(hid_t file, uint32_t block_size)
{
	const hsize_t chunk = 65536, n = 4 * chunk;
	const size_t chunk_bytes = chunk * sizeof(float);
	size_t cap = h5lz4_bound(chunk_bytes, block_size);
	float *data = malloc(n * sizeof(float));
	unsigned char *enc = malloc(cap);
	char name[64], path[80];
	hid_t dset;
	int err = 0;

	if (!data || !enc)
		return -1;
	fill(H5T_NATIVE_FLOAT, data, n, 99);
	snprintf(name, sizeof(name), "direct_f32_b%u", block_size);
	/* the twin gets its values from the pipeline; the chunks are replaced */
	err = write_pair(file, name, H5T_NATIVE_FLOAT, 1, &n, &chunk, block_size, NULL);
	snprintf(path, sizeof(path), "/ref/%s", name);
	dset = H5Dopen2(file, path, H5P_DEFAULT);
	if (err || H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
		err = -1;
	H5Dclose(dset);
	snprintf(path, sizeof(path), "/lz4/%s", name);
	dset = H5Dopen2(file, path, H5P_DEFAULT);
	for (hsize_t c = 0; !err && c < 4; c++) {
		hsize_t offset = c * chunk;
		size_t len = 0;

		if (h5lz4_encode(data + offset, chunk_bytes, block_size, enc, cap, &len) != 0 ||
		    H5Dwrite_chunk(dset, H5P_DEFAULT, 0, &offset, len, enc) < 0)
			err = -1;
	}
	H5Dclose(dset);
	free(enc);
	free(data);
	return err;
}

static int write_records(hid_t file)
{
	hsize_t dims[2] = {3, 100000}, chunk[2] = {1, 100000};
	float *data = malloc(3 * 100000 * sizeof(float));
	int err;

	if (!data)
		return -1;
	fill(H5T_NATIVE_FLOAT, data, 3 * 100000, 7);
	err = write_pair(file, "records_f32", H5T_NATIVE_FLOAT, 2, dims, chunk, 0, data);
	free(data);
	return err;
}

int main(int argc, char **argv)
{
	hid_t file, group;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUT.h5\n", argv[0]);
		return 1;
	}
	if (h5z_lz4_register() != 0) {
		fprintf(stderr, "lz4_testfile: cannot register filter 32004\n");
		return 1;
	}
	file = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (file < 0)
		return 1;
	group = H5Gcreate2(file, "ref", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Gclose(group);
	group = H5Gcreate2(file, "lz4", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Gclose(group);
	if (write_pipeline(file) || write_direct(file, 0) || write_direct(file, 4096) ||
	    write_records(file)) {
		fprintf(stderr, "lz4_testfile: writing %s failed\n", argv[1]);
		H5Fclose(file);
		return 1;
	}
	return H5Fclose(file) < 0;
}
