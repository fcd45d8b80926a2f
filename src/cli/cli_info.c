/*
 * cli_info.c - `h5rec info FILE`: what an h5rec file holds — groups,
 * datasets, rows, time span, chunking, filters and compression ratio.
 *
 * It opens closed files, live files that a recorder is still writing (SWMR
 * read), and family files (given as the member pattern with %d, or as any
 * member's name). It reads only metadata and the first and last value of
 * each time axis, so it is instant even on files of many gigabytes.
 */
#include <errno.h>
#include <getopt.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "timefmt.h"

void cli_info_usage(FILE *out)
{
	fprintf(out,
		"usage: h5rec info [--json] FILE\n"
		"Show what an HDF5 file written by h5rec holds: groups, datasets, rows,\n"
		"time span, chunking, filters and compression ratio. FILE may be a file\n"
		"still being written (read with SWMR), or a family: its pattern with %%d\n"
		"(data-%%d.h5) or the name of one member (data-0.h5).\n"
		"\n"
		"  --json      one JSON object instead of text\n"
		"  -h, --help  this text\n");
}

struct info {
	FILE *out;
	bool json;
	bool first_group, first_dataset;
	unsigned long long datasets;
	unsigned long long raw_bytes, stored_bytes;
};

/* ---- opening ------------------------------------------------------------ */

static hid_t open_single(const char *path, const char **mode)
{
	hid_t file = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
	*mode = "swmr-read";
	if (file < 0) {
		file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
		*mode = "read";
	}
	return file;
}

/* "data-7.h5" → "data-%d.h5": the last run of digits in the file name
 * before its extension. */
static bool member_pattern(const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *ext = strrchr(base, '.');
	const char *stop = ext ? ext : base + strlen(base);
	const char *end = NULL;
	for (const char *p = base; p < stop; p++)
		if (*p >= '0' && *p <= '9' && (p + 1 == stop || p[1] < '0' || p[1] > '9'))
			end = p + 1;
	if (!end)
		return false;
	const char *start = end;
	while (start > base && start[-1] >= '0' && start[-1] <= '9')
		start--;
	int n = snprintf(out, len, "%.*s%%d%s", (int)(start - path), path, end);
	return n > 0 && (size_t)n < len;
}

static hid_t open_family(const char *pattern)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	/* Member size 0: take it from the first member, as h5py's memb_size=0. */
	H5Pset_fapl_family(fapl, 0, H5P_DEFAULT);
	hid_t file = H5Fopen(pattern, H5F_ACC_RDONLY, fapl);
	H5Pclose(fapl);
	return file;
}

static hid_t open_any(const char *path, char *shown, size_t shown_len, const char **mode)
{
	char pattern[4096];
	hid_t file = -1;

	snprintf(shown, shown_len, "%s", path);
	if (!strstr(path, "%d"))
		file = open_single(path, mode);
	if (file < 0 && strstr(path, "%d")) {
		file = open_family(path);
		*mode = "family";
	}
	if (file < 0 && member_pattern(path, pattern, sizeof(pattern))) {
		file = open_family(pattern);
		*mode = "family";
		if (file >= 0)
			snprintf(shown, shown_len, "%s", pattern);
	}
	return file;
}

/* ---- printing helpers ------------------------------------------------------ */

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

/* A string attribute (fixed or variable length); "" if absent. */
static void string_attr(hid_t obj, const char *name, char *out, size_t len)
{
	out[0] = '\0';
	if (H5Aexists(obj, name) <= 0)
		return;
	hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
	hid_t type = H5Aget_type(attr);
	if (H5Tget_class(type) == H5T_STRING) {
		if (H5Tis_variable_str(type) > 0) {
			char *value = NULL;
			if (H5Aread(attr, type, &value) >= 0 && value) {
				snprintf(out, len, "%s", value);
				H5free_memory(value);
			}
		} else {
			size_t size = H5Tget_size(type);
			char *value = calloc(1, size + 1);
			if (value && H5Aread(attr, type, value) >= 0)
				snprintf(out, len, "%s", value);
			free(value);
		}
	}
	H5Tclose(type);
	H5Aclose(attr);
}

static const char *type_name(hid_t type)
{
	H5T_class_t cls = H5Tget_class(type);
	size_t size = H5Tget_size(type);
	if (cls == H5T_FLOAT)
		return size == 4 ? "float32" : "float64";
	if (cls == H5T_STRING)
		return "string";
	if (cls != H5T_INTEGER)
		return "other";
	bool sign = H5Tget_sign(type) == H5T_SGN_2;
	switch (size) {
	case 1:
		return sign ? "int8" : "uint8";
	case 2:
		return sign ? "int16" : "uint16";
	case 4:
		return sign ? "int32" : "uint32";
	default:
		return sign ? "int64" : "uint64";
	}
}

static void filters(hid_t dcpl, char *out, size_t len)
{
	out[0] = '\0';
	int n = H5Pget_nfilters(dcpl);
	size_t used = 0;
	for (int i = 0; i < n && used < len; i++) {
		unsigned flags, cd[8];
		size_t ncd = 8;
		char name[64] = "";
		H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof(name),
						 name, NULL);
		const char *shown = id == H5Z_FILTER_DEFLATE	  ? "deflate"
				    : id == H5Z_FILTER_SHUFFLE	  ? "shuffle"
				    : id == H5Z_FILTER_FLETCHER32 ? "fletcher32"
				    : id == 32004		  ? "lz4"
								  : name;
		int w = snprintf(out + used, len - used, "%s%s", i ? "+" : "", shown);
		if (w > 0)
			used += (size_t)w;
	}
	if (!n)
		snprintf(out, len, "none");
}

/* First and last value of a 1-D int64 time axis. */
static bool time_span(hid_t dset, hsize_t rows, int64_t *first, int64_t *last)
{
	if (rows == 0)
		return false;
	hid_t space = H5Dget_space(dset), mem = H5Screate_simple(1, (hsize_t[]){1}, NULL);
	bool ok = true;
	hsize_t at[2] = {0, rows - 1};
	int64_t *vals[2] = {first, last};
	for (int i = 0; i < 2 && ok; i++) {
		H5Sselect_hyperslab(space, H5S_SELECT_SET, &at[i], NULL, (hsize_t[]){1}, NULL);
		ok = H5Dread(dset, H5T_NATIVE_INT64, mem, space, H5P_DEFAULT, vals[i]) >= 0;
	}
	H5Sclose(mem);
	H5Sclose(space);
	return ok;
}

/* ---- datasets and groups ---------------------------------------------------- */

static void show_dataset(struct info *info, hid_t dset, const char *name)
{
	hid_t space = H5Dget_space(dset), type = H5Dget_type(dset), dcpl = H5Dget_create_plist(dset);
	hsize_t dims[8] = {0}, chunk[8] = {0};
	int rank = H5Sget_simple_extent_dims(space, dims, NULL);
	bool chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
	if (chunked)
		H5Pget_chunk(dcpl, 8, chunk);
	char shape[128] = "", chunks[128] = "", filter_names[128], span[96] = "";
	for (int i = 0; i < rank; i++) {
		size_t n = strlen(shape), m = strlen(chunks);
		snprintf(shape + n, sizeof(shape) - n, "%s%llu", i ? "x" : "", (unsigned long long)dims[i]);
		snprintf(chunks + m, sizeof(chunks) - m, "%s%llu", i ? "x" : "", (unsigned long long)chunk[i]);
	}
	filters(dcpl, filter_names, sizeof(filter_names));
	hssize_t points = H5Sget_simple_extent_npoints(space);
	unsigned long long raw = (unsigned long long)(points > 0 ? points : 0) * H5Tget_size(type);
	unsigned long long stored = H5Dget_storage_size(dset);
	info->raw_bytes += raw;
	info->stored_bytes += stored;
	info->datasets++;

	const char *leaf = strrchr(name, '/');
	leaf = leaf ? leaf + 1 : name;
	int64_t first, last;
	bool has_span = rank == 1 && H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 8 &&
			(strcmp(leaf, "time") == 0 || strstr(leaf, "_time")) &&
			time_span(dset, dims[0], &first, &last);
	if (has_span) {
		char a[TIME_ISO8601_MAX], b[TIME_ISO8601_MAX];
		time_iso8601(first, 9, a, sizeof(a));
		time_iso8601(last, 9, b, sizeof(b));
		snprintf(span, sizeof(span), "%s .. %s", a, b);
	}
	double ratio = stored ? (double)raw / (double)stored : 0;
	if (info->json) {
		fprintf(info->out, "%s\n    {\"name\": ", info->first_dataset ? "" : ",");
		json_string(info->out, name);
		fprintf(info->out,
			", \"dtype\": \"%s\", \"shape\": [", type_name(type));
		for (int i = 0; i < rank; i++)
			fprintf(info->out, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
		fprintf(info->out, "], \"chunks\": [");
		for (int i = 0; chunked && i < rank; i++)
			fprintf(info->out, "%s%llu", i ? ", " : "", (unsigned long long)chunk[i]);
		fprintf(info->out, "], \"filters\": \"%s\", \"raw_bytes\": %llu, \"stored_bytes\": %llu",
			filter_names, raw, stored);
		if (has_span)
			fprintf(info->out, ", \"first_time\": %" PRId64 ", \"last_time\": %" PRId64, first,
				last);
		fprintf(info->out, "}");
	} else {
		fprintf(info->out, "  %-28s %-8s %-16s chunks %-12s %-22s", name, type_name(type), shape,
			chunked ? chunks : "-", filter_names);
		if (stored)
			fprintf(info->out, " ratio %.2f", ratio);
		if (has_span)
			fprintf(info->out, "\n  %-28s time %s", "", span);
		fprintf(info->out, "\n");
	}
	info->first_dataset = false;
	H5Pclose(dcpl);
	H5Tclose(type);
	H5Sclose(space);
}

static herr_t visit(hid_t root, const char *name, const H5O_info_t *oi, void *arg)
{
	struct info *info = arg;
	if (oi->type == H5O_TYPE_GROUP && strcmp(name, ".") != 0) {
		if (!info->json)
			fprintf(info->out, "/%s\n", name);
	} else if (oi->type == H5O_TYPE_DATASET) {
		hid_t dset = H5Dopen2(root, name, H5P_DEFAULT);
		if (dset >= 0) {
			char full[1024];
			snprintf(full, sizeof(full), "/%s", name);
			show_dataset(info, dset, full);
			H5Dclose(dset);
		}
	}
	return 0;
}

static int show(hid_t file, const char *path, const char *mode, bool json)
{
	struct info info = {.out = stdout, .json = json, .first_dataset = true};
	char schema_name[256], created[64], version[64];
	hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
	hsize_t size = 0;

	H5Fget_filesize(file, &size);
	string_attr(root, "schema_name", schema_name, sizeof(schema_name));
	string_attr(root, "file_created", created, sizeof(created));
	string_attr(root, "h5rec_version", version, sizeof(version));
	if (json) {
		printf("{\"file\": ");
		json_string(stdout, path);
		printf(", \"opened\": \"%s\", \"size\": %llu, \"schema_name\": ", mode,
		       (unsigned long long)size);
		json_string(stdout, schema_name);
		printf(", \"file_created\": ");
		json_string(stdout, created);
		printf(", \"datasets\": [");
	} else {
		printf("%s: %llu bytes (opened: %s)\n", path, (unsigned long long)size, mode);
		if (schema_name[0])
			printf("schema %s, created %s by h5rec %s\n", schema_name, created, version);
		else
			printf("not written by h5rec (no schema_name attribute)\n");
	}
	herr_t rc = H5Ovisit(root, H5_INDEX_NAME, H5_ITER_INC, visit, &info);
	double ratio = info.stored_bytes ? (double)info.raw_bytes / (double)info.stored_bytes : 0;
	if (json)
		printf("\n  ], \"raw_bytes\": %llu, \"stored_bytes\": %llu}\n", info.raw_bytes,
		       info.stored_bytes);
	else
		printf("%llu datasets, %llu bytes of data stored in %llu (compression ratio %.2f)\n",
		       info.datasets, info.raw_bytes, info.stored_bytes, ratio);
	H5Gclose(root);
	return rc < 0 ? -EIO : 0;
}

int cli_info(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			cli_info_usage(stdout);
			return 0;
		default:
			cli_info_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		cli_info_usage(stderr);
		return 2;
	}
	const char *path = argv[optind];
	char shown[4096];
	const char *mode = "";
	struct stat st;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* failures are reported below */
	hid_t file = open_any(path, shown, sizeof(shown), &mode);
	if (file < 0) {
		if (!strstr(path, "%d") && stat(path, &st) != 0)
			fprintf(stderr, "h5rec info: %s: %s\n", path, strerror(errno));
		else
			fprintf(stderr,
				"h5rec info: %s: cannot open as HDF5 (if its writer was killed, "
				"run 'h5clear -s %s' first)\n",
				path, path);
		return 1;
	}
	int rc = show(file, shown, mode, json);
	H5Fclose(file);
	return rc ? 1 : 0;
}
