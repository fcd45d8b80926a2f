/*
 * cli_info.c - `h5rec info FILE`: what an h5rec file holds — groups,
 * datasets, rows, time span, chunking, filters and compression ratio.
 *
 * It opens closed files, live files that a recorder is still writing (SWMR
 * read), and family files (given as the member pattern with %d, or as any
 * member's name). It reads only metadata and the first and last value of
 * each time axis, so it is instant even on files of many gigabytes - as
 * long as the group's `time_monotonic` attribute says its time axes are in
 * order. Otherwise (or in files without it) the first and last rows are
 * not the time span, and the axis is read whole, in blocks, for its true
 * minimum and maximum.
 *
 * A damaged file is reported, not waited on: metadata that fails its
 * checksum is re-read a bounded number of times (INFO_READ_ATTEMPTS), and
 * the first object that cannot be read ends the listing with its name and
 * HDF5's reason, and a non-zero exit.
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
#include "h5w.h"
#include "json.h"
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

/*
 * Under SWMR, HDF5 re-reads metadata whose checksum fails, as a reader may
 * catch the writer in the middle of writing it: by default 100 times,
 * sleeping 1 ns, doubling each time (the 37th sleep is 69 s), so one
 * damaged block held `h5rec info` for more than a day. A torn read is over
 * when the writer's write of that block is, microseconds later: 24 attempts
 * keep re-reading for some 8 ms (2^23 ns of sleeps), far beyond that, and
 * then the block is taken as damaged. Retries are needed: reading once, 1
 * in some 450 runs on a file flushed every millisecond caught an object
 * header mid-write. (Files opened without SWMR are read once.)
 */
enum { INFO_READ_ATTEMPTS = 24 };

struct info {
	FILE *out;
	bool json;
	bool first_group, first_dataset;
	unsigned long long datasets;
	unsigned long long raw_bytes, stored_bytes;
	char path[1024];    /* of the group being listed; "" for the root */
	char damaged[1536]; /* the first object that could not be read, and why */
};

/* ---- errors --------------------------------------------------------------- */

enum { CAUSE_MAX = 256 };

/* Walking up the error stack starts at the failure itself ("incorrect
 * metadata checksum after all read attempts"); the rest only say who
 * called. */
static herr_t first_cause(unsigned n, const H5E_error2_t *err, void *arg)
{
	char *why = arg;

	if (n == 0 && err->desc)
		snprintf(why, CAUSE_MAX, "%s", err->desc);
	return 0;
}

/* The cause of the failure on HDF5's error stack into why[CAUSE_MAX]. */
static void cause(char *why)
{
	why[0] = '\0';
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_cause, why);
}

/* Whether the failure on HDF5's error stack is metadata failing its
 * checksum. Raw data carries no checksum, and a read of it can fail in a
 * live file without any damage: a reader may catch the last, partial chunk
 * while the writer rewrites it (seen as "inflate() failed" under a 1 ms
 * flush), so only metadata failures make a file damaged. */
static bool metadata_damaged(void)
{
	char why[CAUSE_MAX];

	cause(why);
	return strstr(why, "checksum") != NULL;
}

/* Remember that OBJECT's WHAT could not be read; returns -EIO. */
static int unreadable(struct info *info, const char *object, const char *what)
{
	char why[CAUSE_MAX];

	cause(why);
	if (!info->damaged[0])
		snprintf(info->damaged, sizeof(info->damaged), "%s: cannot read its %s%s%s%s",
			 object, what, why[0] ? " (" : "", why, why[0] ? ")" : "");
	return -EIO;
}

/* ---- opening ------------------------------------------------------------ */

/* why[CAUSE_MAX]: HDF5's reason when both ways of opening fail. */
static hid_t open_single(const char *path, const char **mode, char *why)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	hid_t file = -1;

	if (fapl >= 0 && H5Pset_metadata_read_attempts(fapl, INFO_READ_ATTEMPTS) >= 0)
		file = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
	if (fapl >= 0)
		H5Pclose(fapl);
	*mode = "swmr-read";
	if (file < 0) {
		file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
		*mode = "read";
	}
	if (file < 0)
		cause(why);
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

static hid_t open_any(const char *path, char *shown, size_t shown_len, const char **mode,
		      char *why)
{
	char pattern[4096];
	hid_t file = -1;

	snprintf(shown, shown_len, "%s", path);
	if (!strstr(path, "%d"))
		file = open_single(path, mode, why);
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

static void write_piece(void *arg, const char *piece, size_t len)
{
	fwrite(piece, 1, len, arg);
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	json_escape(s, strlen(s), write_piece, out);
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

/* First and last value of a 1-D int64 time axis: 1, 0 (no rows) or -1
 * (a read failed; the error is on HDF5's stack). */
static int time_span(hid_t dset, hsize_t rows, int64_t *first, int64_t *last)
{
	if (rows == 0)
		return 0;
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
	return ok ? 1 : -1;
}

/* Does the group holding the dataset NAME say its time axes are strictly
 * increasing (attribute time_monotonic = 1)? */
static bool group_monotonic(hid_t dset, const char *name)
{
	char group[1024];
	const char *slash = strrchr(name, '/');
	size_t len = slash ? (size_t)(slash - name) : 0;
	int value = 0;

	snprintf(group, sizeof(group), "%.*s", (int)(len ? len : 1), len ? name : "/");
	if (H5Aexists_by_name(dset, group, "time_monotonic", H5P_DEFAULT) <= 0)
		return false;
	hid_t attr = H5Aopen_by_name(dset, group, "time_monotonic", H5P_DEFAULT, H5P_DEFAULT);
	bool ok = attr >= 0 && H5Aread(attr, H5T_NATIVE_INT, &value) >= 0;
	if (attr >= 0)
		H5Aclose(attr);
	return ok && value == 1;
}

/* The smallest and largest value of a 1-D int64 time axis of ROWS rows,
 * read in blocks, and whether it is strictly increasing: 0, or -1 (a read
 * failed). */
static int time_extremes(hid_t dset, hsize_t rows, int64_t *min, int64_t *max,
			 bool *increasing)
{
	int64_t prev = 0;
	enum { BLOCK = 1 << 16 };
	int64_t *buf = malloc(BLOCK * sizeof(*buf));
	hid_t space = H5Dget_space(dset);
	int rc = buf && space >= 0 ? 0 : -1;

	for (hsize_t at = 0; !rc && at < rows; at += BLOCK) {
		hsize_t n = rows - at < BLOCK ? rows - at : BLOCK;
		hid_t mem = H5Screate_simple(1, &n, NULL);
		H5Sselect_hyperslab(space, H5S_SELECT_SET, &at, NULL, &n, NULL);
		if (mem < 0 || H5Dread(dset, H5T_NATIVE_INT64, mem, space, H5P_DEFAULT, buf) < 0)
			rc = -1;
		for (hsize_t i = 0; !rc && i < n; i++) {
			if (at + i > 0 && buf[i] <= prev)
				*increasing = false;
			prev = buf[i];
			if (buf[i] < *min)
				*min = buf[i];
			if (buf[i] > *max)
				*max = buf[i];
		}
		if (mem >= 0)
			H5Sclose(mem);
	}
	if (space >= 0)
		H5Sclose(space);
	free(buf);
	return rc;
}

/* ---- datasets and groups ---------------------------------------------------- */

/* What is shown of one dataset. */
struct dataset_facts {
	hid_t space, type, dcpl;
	int rank;
	hsize_t dims[8], chunk[8];
	bool chunked, has_span;
	unsigned long long raw, stored;
	int64_t first, last;     /* the time of the first and the last row */
	int64_t min, max;        /* the time span */
	bool monotonic;          /* strictly increasing: min, max = first, last */
};

static bool is_time_axis(const struct dataset_facts *d, const char *name)
{
	const char *leaf = strrchr(name, '/');

	leaf = leaf ? leaf + 1 : name;
	return d->rank == 1 && H5Tget_class(d->type) == H5T_INTEGER &&
	       H5Tget_size(d->type) == 8 && (strcmp(leaf, "time") == 0 || strstr(leaf, "_time"));
}

/* Read what is shown beyond the object header: the chunk index (for the
 * stored size) and the ends of a time axis. -EIO, recorded in info, if
 * either cannot be read. */
static int read_facts(struct info *info, hid_t dset, const char *name, struct dataset_facts *d)
{
	d->rank = H5Sget_simple_extent_dims(d->space, d->dims, NULL);
	d->chunked = H5Pget_layout(d->dcpl) == H5D_CHUNKED;
	if (d->chunked)
		H5Pget_chunk(d->dcpl, 8, d->chunk);
	hssize_t points = H5Sget_simple_extent_npoints(d->space);
	d->raw = (unsigned long long)(points > 0 ? points : 0) * H5Tget_size(d->type);
	/* 0 is also what a failure returns: only the error stack tells */
	d->stored = H5Dget_storage_size(dset);
	if (H5Eget_num(H5E_DEFAULT) > 0)
		return unreadable(info, name, "chunk index");
	int span = is_time_axis(d, name) ? time_span(dset, d->dims[0], &d->first, &d->last) : 0;
	if (span > 0) {
		d->monotonic = group_monotonic(dset, name);
		d->min = d->first < d->last ? d->first : d->last;
		d->max = d->first < d->last ? d->last : d->first;
		if (!d->monotonic) {
			d->monotonic = true; /* unless the axis says otherwise */
			if (time_extremes(dset, d->dims[0], &d->min, &d->max, &d->monotonic))
				span = -1;
		}
	}
	if (span < 0 && metadata_damaged())
		return unreadable(info, name, "time axis");
	d->has_span = span > 0;
	return 0;
}

static void print_json(struct info *info, const struct dataset_facts *d, const char *name,
		       const char *filter_names)
{
	fprintf(info->out, "%s\n    {\"name\": ", info->first_dataset ? "" : ",");
	json_string(info->out, name);
	fprintf(info->out, ", \"dtype\": \"%s\", \"shape\": [", type_name(d->type));
	for (int i = 0; i < d->rank; i++)
		fprintf(info->out, "%s%llu", i ? ", " : "", (unsigned long long)d->dims[i]);
	fprintf(info->out, "], \"chunks\": [");
	for (int i = 0; d->chunked && i < d->rank; i++)
		fprintf(info->out, "%s%llu", i ? ", " : "", (unsigned long long)d->chunk[i]);
	fprintf(info->out, "], \"filters\": \"%s\", \"raw_bytes\": %llu, \"stored_bytes\": %llu",
		filter_names, d->raw, d->stored);
	if (d->has_span)
		fprintf(info->out, ", \"min_time\": %" PRId64 ", \"max_time\": %" PRId64
			", \"first_time\": %" PRId64 ", \"last_time\": %" PRId64
			", \"monotonic\": %s", d->min, d->max, d->first, d->last,
			d->monotonic ? "true" : "false");
	fprintf(info->out, "}");
}

static void print_text(struct info *info, const struct dataset_facts *d, const char *name,
		       const char *filter_names)
{
	char shape[128] = "", chunks[128] = "";

	for (int i = 0; i < d->rank; i++) {
		size_t n = strlen(shape), m = strlen(chunks);
		snprintf(shape + n, sizeof(shape) - n, "%s%llu", i ? "x" : "",
			 (unsigned long long)d->dims[i]);
		snprintf(chunks + m, sizeof(chunks) - m, "%s%llu", i ? "x" : "",
			 (unsigned long long)d->chunk[i]);
	}
	fprintf(info->out, "  %-28s %-8s %-16s chunks %-12s %-22s", name, type_name(d->type), shape,
		d->chunked ? chunks : "-", filter_names);
	/* data within one partly filled chunk: the chunk is stored whole, so a
	 * ratio would say more about the padding than the compression */
	if (d->stored && d->chunked && d->rank >= 1 && d->dims[0] < d->chunk[0])
		fprintf(info->out, " ratio n/a (one partly filled chunk)");
	else if (d->stored)
		fprintf(info->out, " ratio %.2f", (double)d->raw / (double)d->stored);
	if (d->has_span) {
		char a[TIME_ISO8601_MAX], b[TIME_ISO8601_MAX];
		time_iso8601(d->min, 9, a, sizeof(a));
		time_iso8601(d->max, 9, b, sizeof(b));
		fprintf(info->out, "\n  %-28s time %s .. %s%s", "", a, b,
			d->monotonic ? "" : " (not in time order)");
	}
	fprintf(info->out, "\n");
}

/* Print one dataset; -EIO (recorded in info) if it cannot be read. */
static int show_dataset(struct info *info, hid_t dset, const char *name)
{
	struct dataset_facts d = {
		.space = H5Dget_space(dset),
		.type = H5Dget_type(dset),
		.dcpl = H5Dget_create_plist(dset),
	};
	char filter_names[128];
	int err = read_facts(info, dset, name, &d);

	if (!err) {
		filters(d.dcpl, filter_names, sizeof(filter_names));
		if (info->json)
			print_json(info, &d, name, filter_names);
		else
			print_text(info, &d, name, filter_names);
		info->raw_bytes += d.raw;
		info->stored_bytes += d.stored;
		info->datasets++;
		info->first_dataset = false;
	}
	H5Pclose(d.dcpl);
	H5Tclose(d.type);
	H5Sclose(d.space);
	return err;
}

static int list_group(struct info *info, hid_t group);

static int open_group(struct info *info, hid_t parent, const char *name)
{
	if (!info->json)
		fprintf(info->out, "%s\n", info->path);
	hid_t group = H5Gopen2(parent, name, H5P_DEFAULT);
	if (group < 0)
		return unreadable(info, info->path, "object header");
	int err = list_group(info, group);
	H5Gclose(group);
	return err;
}

static int open_dataset(struct info *info, hid_t group, const char *name)
{
	hid_t dset = H5Dopen2(group, name, H5P_DEFAULT);
	if (dset < 0)
		return unreadable(info, info->path, "object header");
	int err = show_dataset(info, dset, info->path);
	H5Dclose(dset);
	return err;
}

/* One member of the group being listed (info->path), and a group's own
 * members after it: depth first, by name. Only hard links are followed
 * (h5rec writes no others); a path too long for info->path ends the walk,
 * which also ends a loop of links in a damaged or crafted file. */
static herr_t visit_link(hid_t group, const char *name, const H5L_info_t *link, void *arg)
{
	struct info *info = arg;
	size_t len = strlen(info->path);
	H5O_info_t oi;
	int err = 0;

	if (link->type != H5L_TYPE_HARD)
		return 0;
	if (len + 1 + strlen(name) >= sizeof(info->path)) {
		snprintf(info->damaged, sizeof(info->damaged),
			 "%.200s...: groups nested too deep to list (a loop of links?)", info->path);
		return -1;
	}
	snprintf(info->path + len, sizeof(info->path) - len, "/%s", name);
	if (H5Oget_info_by_name2(group, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0)
		err = unreadable(info, info->path, "object header");
	else if (oi.type == H5O_TYPE_GROUP)
		err = open_group(info, group, name);
	else if (oi.type == H5O_TYPE_DATASET)
		err = open_dataset(info, group, name);
	info->path[len] = '\0';
	return err ? -1 : 0;
}

/* Walked by hand rather than with H5Ovisit, which fails as a whole: this
 * way the object that cannot be read is known by name. */
static int list_group(struct info *info, hid_t group)
{
	hsize_t next = 0;

	if (H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &next, visit_link, info) >= 0)
		return 0;
	return unreadable(info, info->path[0] ? info->path : "/", "list of members");
}

/*
 * --json on a damaged file: stdout is still one JSON object, ending with
 * "damaged" (what could not be read) after the datasets listed before it,
 * so that a script parsing it learns why rather than choking on half an
 * object. PATH: the file could not be read at all, the object starts
 * here; NULL: the object's list of datasets is open, and is closed.
 */
static void print_json_damaged(const char *path, const char *why)
{
	if (path) {
		printf("{\"file\": ");
		json_string(stdout, path);
		printf(", ");
	} else {
		printf("\n  ], ");
	}
	printf("\"damaged\": ");
	json_string(stdout, why);
	printf("}\n");
}

/* Print what the file holds; -EIO when some object of it cannot be read,
 * with the object and the reason in damaged. */
static int show(hid_t file, const char *path, const char *mode, bool json, char *damaged,
		size_t damaged_len)
{
	struct info info = {.out = stdout, .json = json, .first_dataset = true};
	char schema_name[256], created[64], version[64];
	hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
	hsize_t size = 0;

	if (root < 0) {
		unreadable(&info, "/", "object header");
		snprintf(damaged, damaged_len, "%s", info.damaged);
		if (json)
			print_json_damaged(path, damaged);
		return -EIO;
	}
	H5Fget_filesize(file, &size);
	/* a family's superblock is in its first member: "%d" → "0" */
	char first[4096];
	const char *pct = strstr(path, "%d");
	snprintf(first, sizeof(first), "%.*s0%s", pct ? (int)(pct - path) : (int)strlen(path), path,
		 pct ? pct + 2 : "");
	int state = h5w_file_marked_open(pct ? first : path);
	string_attr(root, "schema_name", schema_name, sizeof(schema_name));
	string_attr(root, "file_created", created, sizeof(created));
	string_attr(root, "h5rec_version", version, sizeof(version));
	if (json) {
		printf("{\"file\": ");
		json_string(stdout, path);
		printf(", \"opened\": \"%s\", \"state\": \"%s\", \"size\": %llu, "
		       "\"schema_name\": ", mode, state == 1 ? "open-for-writing"
					  : state == 0 ? "closed" : "unknown",
		       (unsigned long long)size);
		json_string(stdout, schema_name);
		printf(", \"file_created\": ");
		json_string(stdout, created);
		printf(", \"datasets\": [");
	} else {
		printf("%s: %llu bytes, %s\n", path, (unsigned long long)size,
		       state == 1 ? "still marked as open for writing: being written now, or its "
				    "writer stopped without closing it (killed, crashed); it is read "
				    "as SWMR readers see it, and others need h5clear -s once no "
				    "writer has it"
		       : state == 0 ? "closed cleanly"
				    : strcmp(mode, "read") ? "read with SWMR" : "read");
		if (schema_name[0])
			printf("schema %s, created %s by h5rec %s\n", schema_name, created, version);
		else
			printf("not written by h5rec (no schema_name attribute)\n");
	}
	int rc = list_group(&info, root);
	H5Gclose(root);
	if (rc) {
		snprintf(damaged, damaged_len, "%s", info.damaged);
		if (json)
			print_json_damaged(NULL, damaged);
		return rc;
	}
	double ratio = info.stored_bytes ? (double)info.raw_bytes / (double)info.stored_bytes : 0;
	if (json)
		printf("\n  ], \"raw_bytes\": %llu, \"stored_bytes\": %llu}\n", info.raw_bytes,
		       info.stored_bytes);
	else
		printf("%llu datasets, %llu bytes of data stored in %llu (compression ratio %.2f)\n",
		       info.datasets, info.raw_bytes, info.stored_bytes, ratio);
	return 0;
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
	char why[CAUSE_MAX] = "";
	hid_t file = open_any(path, shown, sizeof(shown), &mode, why);
	if (file < 0) {
		if (!strstr(path, "%d") && stat(path, &st) != 0) {
			fprintf(stderr, "h5rec info: %s: %s\n", path, strerror(errno));
		} else if (strstr(why, "checksum")) {
			char said[CAUSE_MAX + 32];
			snprintf(said, sizeof(said), "cannot open it (%s)", why);
			if (json)
				print_json_damaged(path, said);
			fprintf(stderr, "h5rec info: %s: the file is damaged: %s\n", path, said);
		} else {
			fprintf(stderr,
				"h5rec info: %s: cannot open as HDF5 (if its writer was killed, "
				"run 'h5clear -s %s' first)\n",
				path, path);
		}
		return 1;
	}
	char damaged[sizeof(((struct info *)0)->damaged)] = "";
	int rc = show(file, shown, mode, json, damaged, sizeof(damaged));
	H5Fclose(file);
	if (rc) {
		fflush(stdout);
		fprintf(stderr, "h5rec info: %s: the file is damaged: %s\n", shown, damaged);
		return 1;
	}
	return 0;
}
