/*
 * test_lz4_plugin.c - the loadable module (libh5rec_lz4.so) as HDF5 and
 * other programs see it.
 *
 * HDF5 must find it through its plugin path alone (this program never
 * registers the filter itself), it must export nothing but the two H5PL
 * entry points, and it must agree byte for byte with an independent
 * implementation of the format: Debian's hdf5-filter-plugin, whose filter
 * function is called directly on the same buffers (skipped if that package
 * is not installed).
 *
 * Environment: H5REC_PLUGIN_DIR, the directory holding the built module.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hdf5.h>

#include "h5lz4.h"

#define DEBIAN_LZ4_PLUGIN H5_DEFAULT_PLUGINDIR "/libh5lz4.so"

typedef const void *(*plugin_info_fn)(void);

static const char *plugin_dir(void)
{
	const char *dir = getenv("H5REC_PLUGIN_DIR");

	if (dir == NULL || *dir == '\0')
		fail_msg("H5REC_PLUGIN_DIR is not set");
	return dir;
}

/* Path of the module in H5REC_PLUGIN_DIR that offers filter 32004. */
static void find_our_module(char *path, size_t size)
{
	DIR *dir = opendir(plugin_dir());
	struct dirent *entry;

	assert_non_null(dir);
	path[0] = '\0';
	while ((entry = readdir(dir)) != NULL) {
		void *handle;
		plugin_info_fn info;

		if (strncmp(entry->d_name, "lib", 3) != 0 || strstr(entry->d_name, ".so") == NULL)
			continue;
		snprintf(path, size, "%s/%s", plugin_dir(), entry->d_name);
		handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		assert_non_null(handle);
		*(void **)&info = dlsym(handle, "H5PLget_plugin_info");
		if (info && ((const H5Z_class2_t *)info())->id == H5LZ4_FILTER_ID) {
			dlclose(handle);
			break;
		}
		dlclose(handle);
		path[0] = '\0';
	}
	closedir(dir);
	if (path[0] == '\0')
		fail_msg("no module offering filter 32004 in %s", plugin_dir());
}

static int loaded_from_dir(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *dir = arg;
	char real[PATH_MAX];

	(void)size;
	if (info->dlpi_name && realpath(info->dlpi_name, real) &&
	    strncmp(real, dir, strlen(dir)) == 0 && strstr(real, ".so"))
		return 1;
	return 0;
}

/* Nothing but the plugin path: HDF5 must find, load and use the module. */
static void test_hdf5_loads_module_from_plugin_path(void **state)
{
	char real_dir[PATH_MAX];
	unsigned int npaths = 0, config = 0;
	hsize_t n = 20000, chunk = 5000;
	int32_t data[20000], back[20000];
	hid_t fapl, file, space, dcpl, dset;

	(void)state;
	assert_non_null(realpath(plugin_dir(), real_dir));
	assert_true(H5PLsize(&npaths) >= 0);
	while (npaths-- > 0)
		assert_true(H5PLremove(0) >= 0);
	assert_true(H5PLappend(plugin_dir()) >= 0);
	assert_int_equal(dl_iterate_phdr(loaded_from_dir, real_dir), 0);

	assert_true(H5Zfilter_avail(H5LZ4_FILTER_ID) > 0);
	assert_int_equal(dl_iterate_phdr(loaded_from_dir, real_dir), 1);
	assert_true(H5Zget_filter_info(H5LZ4_FILTER_ID, &config) >= 0);
	assert_true(config & H5Z_FILTER_CONFIG_ENCODE_ENABLED);
	assert_true(config & H5Z_FILTER_CONFIG_DECODE_ENABLED);

	for (int i = 0; i < 20000; i++)
		data[i] = i / 3;
	fapl = H5Pcreate(H5P_FILE_ACCESS);
	H5Pset_fapl_core(fapl, 1 << 20, 0);
	file = H5Fcreate("plugin-test.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	space = H5Screate_simple(1, &n, NULL);
	dcpl = H5Pcreate(H5P_DATASET_CREATE);
	H5Pset_chunk(dcpl, 1, &chunk);
	H5Pset_filter(dcpl, H5LZ4_FILTER_ID, H5Z_FLAG_MANDATORY, 0, NULL);
	dset = H5Dcreate2(file, "x", H5T_NATIVE_INT32, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	assert_true(dset >= 0);
	assert_true(H5Dwrite(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	assert_true(H5Dflush(dset) >= 0);
	assert_true(H5Dget_storage_size(dset) < sizeof(data) / 2);
	assert_true(H5Dread(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
	assert_memory_equal(back, data, sizeof(data));
	H5Dclose(dset);
	H5Pclose(dcpl);
	H5Sclose(space);
	H5Fclose(file);
	H5Pclose(fapl);
}

/* The codec is linked in with hidden visibility: loading the module next to
 * another copy of h5lz4 (the recorder, another plugin) cannot mix them. */
static void test_module_exports_only_entry_points(void **state)
{
	static const char *internal[] = {"h5lz4_encode", "h5lz4_decode", "h5lz4_bound",
					 "h5lz4_decoded_size", "h5z_lz4_register", "h5z_lz4_class"};
	char path[PATH_MAX];
	void *handle;

	(void)state;
	find_our_module(path, sizeof(path));
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(handle);
	assert_non_null(dlsym(handle, "H5PLget_plugin_type"));
	assert_non_null(dlsym(handle, "H5PLget_plugin_info"));
	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
		if (dlsym(handle, internal[i]) != NULL)
			fail_msg("module exports %s", internal[i]);
	dlclose(handle);
}

static const H5Z_class2_t *load_class(const char *path, void **handle)
{
	plugin_info_fn info;
	const H5Z_class2_t *cls;

	*handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (*handle == NULL)
		return NULL;
	*(void **)&info = dlsym(*handle, "H5PLget_plugin_info");
	assert_non_null(info);
	cls = info();
	assert_int_equal(cls->id, H5LZ4_FILTER_ID);
	return cls;
}

/* Run a filter function on a copy of src, as HDF5 would; returns the output
 * (H5allocate_memory'd) and its length, or NULL. */
static void *run_filter(const H5Z_class2_t *cls, unsigned int flags, uint32_t block_size,
			const void *src, size_t n, size_t *out_len)
{
	size_t buf_size = n ? n : 1;
	void *buf = H5allocate_memory(buf_size, 0);
	unsigned int cd[1] = {block_size};

	assert_non_null(buf);
	memcpy(buf, src, n);
	*out_len = cls->filter(flags, 1, cd, n, &buf_size, &buf);
	if (*out_len == 0) {
		H5free_memory(buf);
		return NULL;
	}
	return buf;
}

static void test_byte_identical_with_debian_plugin(void **state)
{
	static const size_t sizes[] = {1, 100, 4096, 100000, 1u << 20};
	static const uint32_t block_sizes[] = {0, 1000, 65536, 1u << 30};
	char path[PATH_MAX];
	void *ours_handle, *theirs_handle;
	const H5Z_class2_t *ours, *theirs;
	uint64_t rng = 0x9e3779b97f4a7c15u;

	(void)state;
	find_our_module(path, sizeof(path));
	theirs = load_class(DEBIAN_LZ4_PLUGIN, &theirs_handle);
	if (theirs == NULL) {
		print_message("skipped: %s not installed\n", DEBIAN_LZ4_PLUGIN);
		skip();
	}
	ours = load_class(path, &ours_handle);
	assert_non_null(ours);
	assert_ptr_not_equal(ours->filter, theirs->filter);

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		unsigned char *data = malloc(n);

		for (int kind = 0; kind < 2; kind++) {
			for (size_t i = 0; i < n; i++) {
				rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
				data[i] = kind ? (unsigned char)rng : (unsigned char)(i / 100);
			}
			for (size_t b = 0; b < sizeof(block_sizes) / sizeof(block_sizes[0]); b++) {
				size_t ours_len, theirs_len, back_len;
				unsigned char *a = run_filter(ours, 0, block_sizes[b], data, n, &ours_len);
				unsigned char *t = run_filter(theirs, 0, block_sizes[b], data, n, &theirs_len);
				unsigned char *back;

				assert_non_null(a);
				assert_non_null(t);
				assert_int_equal(ours_len, theirs_len);
				assert_memory_equal(a, t, ours_len);
				/* each decodes the other's chunk */
				back = run_filter(ours, H5Z_FLAG_REVERSE, 0, t, theirs_len, &back_len);
				assert_non_null(back);
				assert_int_equal(back_len, n);
				assert_memory_equal(back, data, n);
				H5free_memory(back);
				back = run_filter(theirs, H5Z_FLAG_REVERSE, 0, a, ours_len, &back_len);
				assert_non_null(back);
				assert_int_equal(back_len, n);
				assert_memory_equal(back, data, n);
				H5free_memory(back);
				H5free_memory(a);
				H5free_memory(t);
			}
		}
		free(data);
	}
	dlclose(ours_handle);
	dlclose(theirs_handle);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: it must see a process where nothing has loaded the filter */
		cmocka_unit_test(test_hdf5_loads_module_from_plugin_path),
		cmocka_unit_test(test_module_exports_only_entry_points),
		cmocka_unit_test(test_byte_identical_with_debian_plugin),
	};

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
