/*
 * cli_export.c - `h5rec export --layout book RECORDED.h5 OUT.h5`: a closed
 * records-layout file rewritten in the layout of the accelerator particle
 * database of "Python and HDF5" (Collette, O'Reilly 2013), the seed of this
 * project, so that analysis code written for that layout runs unchanged.
 *
 * The book keeps one group per event, named by its index (/0, /1, ...),
 * with the attributes id_dust_event, mass, velocity and experiment_name,
 * one 1-D dataset per detector waveform with a `dt` attribute, and the root
 * attributes timestamp and version_number. The recorder cannot write that
 * layout live (a group per event costs a group, its datasets and their
 * metadata per event, and every group the file will have must exist before
 * SWMR-write mode starts: docs/schema.md, "One group per event"), so it
 * records one row per event and this command makes the book's file from a
 * closed recording.
 *
 * Decisions (docs/recorder.md, "h5rec export"):
 * - Rows are read one at a time: one waveform per channel in memory, and a
 *   chunk cache of one chunk per channel, so memory does not grow with the
 *   file.
 * - Only complete records (record_state 1) become events unless
 *   --incomplete keep; missing waveforms then keep their fill value.
 * - Every event field becomes an attribute of its own name (or the name
 *   --field gives it); mass, velocity and experiment_name must be there,
 *   so that the book's code finds what it reads.
 * - OUT appears whole or not at all: it is written as .OUT.part beside it,
 *   fsync'd and renamed without replacing anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "h5w.h"
#include "h5z_lz4.h"

void cli_export_usage(FILE *out)
{
	fprintf(out,
		"usage: h5rec export --layout book [options] RECORDED.h5 OUT.h5\n"
		"Write the events of a closed records-layout file in the layout of the book's\n"
		"accelerator particle database: a group per event (/0, /1, ...) with the\n"
		"attributes id_dust_event, mass, velocity, experiment_name, a 1-D dataset with\n"
		"a dt attribute per waveform, and the root attributes timestamp and\n"
		"version_number. OUT.h5 must not exist; it appears only when complete.\n"
		"\n"
		"  -l, --layout book          the layout to write (only book)\n"
		"  -g, --group PATH           the records group to export (needed when the\n"
		"                             file has several)\n"
		"  -i, --incomplete skip|keep records with missing waveforms or fields\n"
		"                             (default skip: left out and counted)\n"
		"  -f, --field NAME=FIELD     write event field FIELD as attribute NAME\n"
		"                             (repeatable; default: every field as itself)\n"
		"  -e, --experiment-name TEXT experiment_name of every event (default: the\n"
		"                             event field experiment_name, else the run)\n"
		"  -v, --version-number N     root attribute version_number (default 1)\n"
		"  -h, --help                 this text\n");
}

enum {
	EXPORT_MAX_GROUPS = 64,   /* records groups listed when one must be chosen */
	EXPORT_MAX_MAPS = 32,     /* --field options */
	EXPORT_MAX_DSETS = 512,   /* datasets of one records group */
	EXPORT_NAME_MAX = 256,
	/* A chunk larger than this is not cached: each row then decodes its
	 * chunk again, slower but still bounded. */
	EXPORT_CACHE_MAX = 256 << 20,
};

/* The attributes the book's code reads from every event group. */
static const char *const book_attrs[] = {"mass", "velocity", "experiment_name"};

struct field_map {
	const char *name;  /* attribute in OUT */
	const char *field; /* event field of the records group */
};

struct export_opts {
	const char *group;
	bool keep_incomplete;
	const char *experiment_name;
	int64_t version_number;
	struct field_map maps[EXPORT_MAX_MAPS];
	size_t nmaps;
};

enum field_kind { FIELD_FLOAT, FIELD_INT, FIELD_UINT, FIELD_STRING };

struct channel {
	char name[EXPORT_NAME_MAX];
	hid_t dset;
	hid_t file_type; /* of the exported dataset */
	double dt;
	bool packed;     /* scale_factor/add_offset: exported unpacked, float64 */
	double scale, offset, fill;
	bool has_fill;
};

struct field {
	char name[EXPORT_NAME_MAX]; /* in the records group */
	const char *as;             /* attribute name in OUT */
	hid_t dset;
	enum field_kind kind;
};

struct source {
	const char *path;
	hid_t file, group;
	char group_path[1024];
	hid_t event_id, record_state;
	hsize_t rows, samples;
	struct channel channels[EXPORT_MAX_DSETS];
	size_t nchannels;
	struct field fields[EXPORT_MAX_DSETS];
	size_t nfields;
	bool reported;                      /* a member's failure was printed */
	int64_t timestamp;                  /* root file_created, s since 1970 */
	char run[EXPORT_NAME_MAX];          /* root `run`, "" if none */
};

struct counts {
	unsigned long long events, incomplete_skipped, incomplete_kept;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int signum)
{
	interrupted = signum;
}

/* Print "h5rec export: ..." to stderr; returns 1 (the operation failed). */
__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("h5rec export: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* ---- reading the recording -------------------------------------------------- */

static bool has_dataset(hid_t group, const char *name)
{
	H5O_info_t oi;

	return H5Lexists(group, name, H5P_DEFAULT) > 0 &&
	       H5Oget_info_by_name2(group, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
	       oi.type == H5O_TYPE_DATASET;
}

/* A records group holds the index datasets the records layout always has
 * (docs/engine.md, "layout: records"). */
static bool is_records_group(hid_t group)
{
	return has_dataset(group, "event_id") && has_dataset(group, "record_state") &&
	       has_dataset(group, "sample_time") && has_dataset(group, "time");
}

struct group_list {
	char paths[EXPORT_MAX_GROUPS][1024];
	size_t n, more;
};

static herr_t visit_object(hid_t root, const char *name, const H5O_info_t *info, void *arg)
{
	struct group_list *list = arg;

	if (info->type != H5O_TYPE_GROUP || strcmp(name, ".") == 0)
		return 0;
	hid_t group = H5Gopen2(root, name, H5P_DEFAULT);
	if (group < 0)
		return 0;
	if (is_records_group(group)) {
		if (list->n < EXPORT_MAX_GROUPS)
			snprintf(list->paths[list->n++], sizeof(list->paths[0]), "/%s", name);
		else
			list->more++;
	}
	H5Gclose(group);
	return 0;
}

/* The records group to export: --group, else the file's only one. */
static int choose_group(struct source *src, const char *wanted)
{
	if (wanted) {
		src->group = H5Gopen2(src->file, wanted, H5P_DEFAULT);
		if (src->group < 0)
			return fail("%s: no group %s", src->path, wanted);
		if (!is_records_group(src->group))
			return fail("%s: %s is not a records-layout group (it lacks event_id, "
				    "record_state, sample_time or time)", src->path, wanted);
		snprintf(src->group_path, sizeof(src->group_path), "%s", wanted);
		return 0;
	}
	static struct group_list list;
	list.n = list.more = 0;
	if (H5Ovisit2(src->file, H5_INDEX_NAME, H5_ITER_INC, visit_object, &list,
		      H5O_INFO_BASIC) < 0)
		return fail("%s: cannot list its groups", src->path);
	if (list.n == 0)
		return fail("%s holds no records-layout group: export --layout book takes the "
			    "file of a `layout: records` stream (one row per event)", src->path);
	if (list.n > 1) {
		fprintf(stderr, "h5rec export: %s holds %zu%s records groups; choose one with "
				"--group:", src->path, list.n, list.more ? " or more" : "");
		for (size_t i = 0; i < list.n; i++)
			fprintf(stderr, " %s", list.paths[i]);
		fputc('\n', stderr);
		return 1;
	}
	snprintf(src->group_path, sizeof(src->group_path), "%s", list.paths[0]);
	src->group = H5Gopen2(src->file, list.paths[0], H5P_DEFAULT);
	return src->group < 0 ? fail("%s: cannot open %s", src->path, list.paths[0]) : 0;
}

/* A scalar numeric attribute of OBJ as a double; false if absent. */
static bool double_attr(hid_t obj, const char *name, double *out)
{
	if (H5Aexists(obj, name) <= 0)
		return false;
	hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
	bool ok = attr >= 0 && H5Aread(attr, H5T_NATIVE_DOUBLE, out) >= 0;
	if (attr >= 0)
		H5Aclose(attr);
	return ok;
}

/* A string attribute of OBJ into out[len]; false if absent or not text. */
static bool string_attr(hid_t obj, const char *name, char *out, size_t len)
{
	bool ok = false;

	out[0] = '\0';
	if (H5Aexists(obj, name) <= 0)
		return false;
	hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
	hid_t type = H5Aget_type(attr);
	if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0) {
		char *value = NULL;
		ok = H5Aread(attr, type, &value) >= 0 && value;
		if (ok)
			snprintf(out, len, "%s", value);
		H5free_memory(value);
	} else if (H5Tget_class(type) == H5T_STRING) {
		char *value = calloc(1, H5Tget_size(type) + 1);
		ok = value && H5Aread(attr, type, value) >= 0;
		if (ok)
			snprintf(out, len, "%s", value);
		free(value);
	}
	H5Tclose(type);
	H5Aclose(attr);
	return ok;
}

/* Root attribute file_created ("2026-01-01T00:00:00Z") in s since 1970:
 * the book's file timestamp is when the recording began. */
static int read_timestamp(struct source *src)
{
	char text[64];
	struct tm tm = {0};

	if (!string_attr(src->file, "file_created", text, sizeof(text)))
		return fail("%s: no root attribute file_created: not a file written by h5rec",
			    src->path);
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (*end != 'Z' && *end != '.'))
		return fail("%s: root attribute file_created '%s' is not an ISO 8601 UTC time",
			    src->path, text);
	src->timestamp = (int64_t)timegm(&tm);
	return 0;
}

static int add_channel(struct source *src, hid_t dset, const char *name)
{
	struct channel *ch = &src->channels[src->nchannels];
	hid_t type = H5Dget_type(dset);

	snprintf(ch->name, sizeof(ch->name), "%s", name);
	ch->dset = dset;
	if (!double_attr(dset, "dt", &ch->dt)) {
		H5Tclose(type);
		return fail("%s: %s/%s has no dt attribute", src->path, src->group_path, name);
	}
	double unused;
	ch->packed = double_attr(dset, "scale_factor", &unused) ||
		     double_attr(dset, "add_offset", &unused);
	if (ch->packed) {
		ch->scale = double_attr(dset, "scale_factor", &ch->scale) ? ch->scale : 1.0;
		ch->offset = double_attr(dset, "add_offset", &ch->offset) ? ch->offset : 0.0;
		ch->has_fill = double_attr(dset, "_FillValue", &ch->fill);
		ch->file_type = H5Tcopy(H5T_IEEE_F64LE);
		H5Tclose(type);
	} else {
		ch->file_type = type;
	}
	src->nchannels++;
	return 0;
}

static int add_field(struct source *src, hid_t dset, const char *name)
{
	struct field *f = &src->fields[src->nfields];
	hid_t type = H5Dget_type(dset);
	H5T_class_t cls = H5Tget_class(type);

	snprintf(f->name, sizeof(f->name), "%s", name);
	f->as = f->name;
	f->dset = dset;
	f->kind = cls == H5T_FLOAT    ? FIELD_FLOAT
		  : cls == H5T_STRING ? FIELD_STRING
		  : H5Tget_sign(type) == H5T_SGN_NONE ? FIELD_UINT
						      : FIELD_INT;
	bool known = cls == H5T_FLOAT || cls == H5T_STRING || cls == H5T_INTEGER;
	H5Tclose(type);
	if (!known)
		return fail("%s: event field %s/%s has a type the book's layout cannot hold",
			    src->path, src->group_path, name);
	src->nfields++;
	return 0;
}

/* A dataset of the records group is a waveform channel (events x
 * samples) or an event field (events,); anything else is not ours. */
static int add_dataset(struct source *src, hid_t dset, const char *name)
{
	hid_t space = H5Dget_space(dset);
	hsize_t dims[2] = {0, 0};
	int rank = H5Sget_simple_extent_dims(space, dims, NULL);

	H5Sclose(space);
	if (rank == 2 && dims[0] == src->rows && dims[1] == src->samples)
		return add_channel(src, dset, name);
	if (rank == 1 && dims[0] == src->rows)
		return add_field(src, dset, name);
	return fail("%s: %s/%s is not shaped as a records channel or event field", src->path,
		    src->group_path, name);
}

/* One member of the records group; the index datasets are skipped. */
static herr_t visit_member(hid_t group, const char *name, const H5L_info_t *link, void *arg)
{
	static const char *const index[] = {"time", "event_id", "record_state", "sample_time"};
	struct source *src = arg;
	hid_t dset = H5I_INVALID_HID;
	int rc;

	(void)link;
	for (size_t i = 0; i < sizeof(index) / sizeof(index[0]); i++)
		if (strcmp(name, index[i]) == 0)
			return 0;
	if (!has_dataset(group, name))
		return 0;
	if (src->nchannels + src->nfields >= EXPORT_MAX_DSETS)
		rc = fail("%s: %s has more than %d datasets", src->path, src->group_path,
			  EXPORT_MAX_DSETS);
	else if ((dset = H5Dopen2(group, name, H5P_DEFAULT)) < 0)
		rc = fail("%s: cannot open %s/%s", src->path, src->group_path, name);
	else
		rc = add_dataset(src, dset, name);
	if (rc && dset >= 0)
		H5Dclose(dset);
	src->reported = rc != 0;
	return rc ? -1 : 0;
}

static hsize_t length_of(hid_t dset)
{
	hsize_t dims[2] = {0, 0};
	hid_t space = H5Dget_space(dset);

	H5Sget_simple_extent_dims(space, dims, NULL);
	H5Sclose(space);
	return dims[0];
}

static int read_layout(struct source *src)
{
	src->event_id = H5Dopen2(src->group, "event_id", H5P_DEFAULT);
	src->record_state = H5Dopen2(src->group, "record_state", H5P_DEFAULT);
	hid_t sample_time = H5Dopen2(src->group, "sample_time", H5P_DEFAULT);
	if (src->event_id < 0 || src->record_state < 0 || sample_time < 0)
		return fail("%s: cannot open the index datasets of %s", src->path,
			    src->group_path);
	src->rows = length_of(src->event_id);
	src->samples = length_of(sample_time);
	H5Dclose(sample_time);
	if (length_of(src->record_state) != src->rows)
		return fail("%s: %s: record_state and event_id differ in length", src->path,
			    src->group_path);
	hsize_t next = 0;
	if (H5Literate(src->group, H5_INDEX_NAME, H5_ITER_INC, &next, visit_member, src) < 0)
		return src->reported ? 1
				     : fail("%s: cannot list the members of %s", src->path,
					    src->group_path);
	if (src->nchannels == 0)
		return fail("%s: %s has no waveform channels", src->path, src->group_path);
	string_attr(src->file, "run", src->run, sizeof(src->run));
	return read_timestamp(src);
}

/* Apply --field and check that every attribute the book's code reads will
 * be written. */
static int map_fields(struct source *src, const struct export_opts *opts)
{
	for (size_t m = 0; m < opts->nmaps; m++) {
		size_t i;
		for (i = 0; i < src->nfields; i++)
			if (strcmp(src->fields[i].name, opts->maps[m].field) == 0)
				break;
		if (i == src->nfields)
			return fail("--field %s=%s: %s has no event field %s", opts->maps[m].name,
				    opts->maps[m].field, src->group_path, opts->maps[m].field);
		src->fields[i].as = opts->maps[m].name;
	}
	for (size_t i = 0; i < src->nfields; i++)
		for (size_t j = i + 1; j < src->nfields; j++)
			if (strcmp(src->fields[i].as, src->fields[j].as) == 0)
				return fail("two event fields (%s, %s) would both be attribute %s",
					    src->fields[i].name, src->fields[j].name,
					    src->fields[i].as);
	for (size_t k = 0; k < sizeof(book_attrs) / sizeof(book_attrs[0]); k++) {
		bool found = false;
		for (size_t i = 0; i < src->nfields; i++)
			found |= strcmp(src->fields[i].as, book_attrs[k]) == 0;
		if (found || (strcmp(book_attrs[k], "experiment_name") == 0 &&
			      (opts->experiment_name || src->run[0])))
			continue;
		return fail("%s has no event field for the book's attribute %s: map one with "
			    "--field %s=FIELD%s", src->group_path, book_attrs[k], book_attrs[k],
			    strcmp(book_attrs[k], "experiment_name") == 0
				    ? ", or give --experiment-name TEXT"
				    : "");
	}
	return 0;
}

/* One element of a 1-D dataset, or one row of a 2-D one, into out. */
static int read_row(hid_t dset, hsize_t row, hsize_t width, hid_t mem_type, void *out)
{
	hid_t space = H5Dget_space(dset);
	hsize_t start[2] = {row, 0}, count[2] = {1, width};
	hid_t mem = H5Screate_simple(1, width ? &count[1] : count, NULL);
	herr_t rc = H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
	if (rc >= 0)
		rc = H5Dread(dset, mem_type, mem, space, H5P_DEFAULT, out);
	H5Sclose(mem);
	H5Sclose(space);
	return rc < 0 ? -EIO : 0;
}

/* ---- writing the book's layout ------------------------------------------------- */

static int scalar_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
		       const void *value)
{
	hid_t space = H5Screate(H5S_SCALAR);
	hid_t attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
	herr_t rc = attr < 0 ? -1 : H5Awrite(attr, mem_type, value);

	if (attr >= 0)
		H5Aclose(attr);
	H5Sclose(space);
	return rc < 0 ? -EIO : 0;
}

/* A variable-length UTF-8 string, as h5py writes a str attribute. */
static int text_attr(hid_t obj, const char *name, const char *text)
{
	hid_t type = H5Tcopy(H5T_C_S1);
	H5Tset_size(type, H5T_VARIABLE);
	H5Tset_cset(type, H5T_CSET_UTF8);
	int rc = scalar_attr(obj, name, type, type, &text);
	H5Tclose(type);
	return rc;
}

/* Event field F of ROW as an attribute of the event group: numbers as
 * int64, uint64 or float64 scalars, as h5py stores Python numbers. */
static int field_attr(hid_t event, const struct field *f, hsize_t row)
{
	if (f->kind == FIELD_STRING) {
		hid_t type = H5Tcopy(H5T_C_S1);
		char *text = NULL;
		H5Tset_size(type, H5T_VARIABLE);
		H5Tset_cset(type, H5T_CSET_UTF8);
		int rc = read_row(f->dset, row, 0, type, &text);
		if (!rc)
			rc = text_attr(event, f->as, text ? text : "");
		H5free_memory(text);
		H5Tclose(type);
		return rc;
	}
	union {
		double f;
		int64_t i;
		uint64_t u;
	} v;
	hid_t mem = f->kind == FIELD_FLOAT ? H5T_NATIVE_DOUBLE
		    : f->kind == FIELD_INT ? H5T_NATIVE_INT64
					   : H5T_NATIVE_UINT64;
	hid_t file = f->kind == FIELD_FLOAT ? H5T_IEEE_F64LE
		     : f->kind == FIELD_INT ? H5T_STD_I64LE
					    : H5T_STD_U64LE;
	int rc = read_row(f->dset, row, 0, mem, &v);
	return rc ? rc : scalar_attr(event, f->as, file, mem, &v);
}

/* One waveform as the book stores it: 1-D, contiguous, with `dt`. */
static int write_waveform(hid_t event, const struct channel *ch, hsize_t row, hsize_t samples,
			  void *buf)
{
	hid_t mem = ch->packed ? H5T_NATIVE_DOUBLE : H5Tget_native_type(ch->file_type, H5T_DIR_ASCEND);
	int rc = read_row(ch->dset, row, samples, mem, buf);

	if (!rc && ch->packed) {
		double *v = buf;
		for (hsize_t i = 0; i < samples; i++)
			v[i] = ch->has_fill && v[i] == ch->fill ? NAN : v[i] * ch->scale + ch->offset;
	}
	hid_t space = H5Screate_simple(1, &samples, NULL);
	hid_t dset = rc ? -1
			: H5Dcreate2(event, ch->name, ch->file_type, space, H5P_DEFAULT,
				     H5P_DEFAULT, H5P_DEFAULT);
	if (dset < 0 || H5Dwrite(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ||
	    scalar_attr(dset, "dt", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &ch->dt))
		rc = -EIO;
	if (dset >= 0)
		H5Dclose(dset);
	H5Sclose(space);
	if (!ch->packed)
		H5Tclose(mem);
	return rc;
}

static int write_event(hid_t out, const struct source *src, const struct export_opts *opts,
		       hsize_t row, uint64_t id, unsigned long long index, void *buf)
{
	char name[32];
	snprintf(name, sizeof(name), "%llu", index);
	hid_t event = H5Gcreate2(out, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	if (event < 0)
		return -EIO;
	int64_t signed_id = (int64_t)id;
	int rc = scalar_attr(event, "id_dust_event", H5T_STD_I64LE, H5T_NATIVE_INT64, &signed_id);
	bool named = false;
	for (size_t i = 0; !rc && i < src->nfields; i++) {
		bool is_name = strcmp(src->fields[i].as, "experiment_name") == 0;
		named |= is_name;
		if (!(is_name && opts->experiment_name))
			rc = field_attr(event, &src->fields[i], row);
	}
	if (!rc && (opts->experiment_name || !named))
		rc = text_attr(event, "experiment_name",
			       opts->experiment_name ? opts->experiment_name : src->run);
	for (size_t i = 0; !rc && i < src->nchannels; i++)
		rc = write_waveform(event, &src->channels[i], row, src->samples, buf);
	H5Gclose(event);
	return rc;
}

/* Every row of the records group, one at a time, into OUT. */
static int write_events(hid_t out, const struct source *src, const struct export_opts *opts,
			struct counts *counts)
{
	void *buf = malloc((size_t)src->samples * sizeof(double));

	if (!buf)
		return fail("out of memory for a waveform of %llu samples",
			    (unsigned long long)src->samples);
	int rc = 0;
	for (hsize_t row = 0; !rc && row < src->rows; row++) {
		uint8_t state = 0;
		uint64_t id = 0;
		if (interrupted) {
			rc = fail("interrupted by signal %d", (int)interrupted);
			break;
		}
		if (read_row(src->record_state, row, 0, H5T_NATIVE_UINT8, &state) ||
		    read_row(src->event_id, row, 0, H5T_NATIVE_UINT64, &id)) {
			rc = fail("%s: cannot read row %llu of %s", src->path,
				  (unsigned long long)row, src->group_path);
			break;
		}
		if (id > INT64_MAX) {
			rc = fail("%s: event id %" PRIu64 " of row %llu does not fit the book's "
				  "id_dust_event (int64)", src->path, id, (unsigned long long)row);
			break;
		}
		/* 1 complete; 2 closed with something missing; 0 still open
		 * (a file recovered after a crash): not whole either */
		if (state != 1 && !opts->keep_incomplete) {
			counts->incomplete_skipped++;
			continue;
		}
		counts->incomplete_kept += state != 1;
		if (write_event(out, src, opts, row, id, counts->events, buf))
			rc = fail("%s: cannot export row %llu (event %" PRIu64 ") of %s",
				  src->path, (unsigned long long)row, id, src->group_path);
		counts->events++;
	}
	free(buf);
	return rc;
}

static int write_root(hid_t out, const struct source *src, const struct export_opts *opts)
{
	if (scalar_attr(out, "timestamp", H5T_STD_I64LE, H5T_NATIVE_INT64, &src->timestamp) ||
	    scalar_attr(out, "version_number", H5T_STD_I64LE, H5T_NATIVE_INT64,
			&opts->version_number))
		return fail("cannot write the root attributes");
	return 0;
}

/* ---- the file as a whole ----------------------------------------------------------- */

static int fsync_path(const char *path, bool directory)
{
	int fd = open(path, (directory ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
	int rc = fd < 0 || fsync(fd) ? -errno : 0;

	if (fd >= 0)
		close(fd);
	return rc;
}

/* Give the finished PART its name OUT: fsync'd first, never replacing a
 * file that appeared meanwhile, then the directory fsync'd. */
static int publish(const char *part, const char *out)
{
	char dir[4096];
	int rc = fsync_path(part, false);

	if (rc)
		return fail("%s: fsync: %s", part, strerror(-rc));
	if (renameat2(AT_FDCWD, part, AT_FDCWD, out, RENAME_NOREPLACE)) {
		/* a file system without RENAME_NOREPLACE: link() never replaces */
		if (errno != EINVAL || link(part, out))
			return fail("%s: %s", out, strerror(errno));
		unlink(part);
	}
	snprintf(dir, sizeof(dir), "%s", out);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	rc = fsync_path(slash ? dir : ".", true);
	return rc ? fail("%s: fsync of its directory: %s", out, strerror(-rc)) : 0;
}

/* ".OUT.part" in OUT's directory. */
static int part_name(const char *out, char *part, size_t len)
{
	const char *slash = strrchr(out, '/');
	int n = slash ? snprintf(part, len, "%.*s/.%s.part", (int)(slash - out), out, slash + 1)
		      : snprintf(part, len, ".%s.part", out);
	return n > 0 && (size_t)n < len ? 0 : fail("%s: name too long", out);
}

/* Refuse what export cannot read as a closed recording; opens src->file. */
static int open_source(struct source *src)
{
	struct stat st;

	if (stat(src->path, &st) != 0)
		return fail("%s: %s", src->path, strerror(errno));
	if (h5w_file_marked_open(src->path) == 1)
		return fail("%s is still marked open for writing: a recorder is writing it, or "
			    "its writer was killed. Export a closed file (h5rec roll closes the "
			    "current one; after a crash, run 'h5clear -s %s' once no recorder "
			    "has it)", src->path, src->path);
	src->file = H5Fopen(src->path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (src->file < 0)
		return fail("%s: cannot open as HDF5", src->path);
	return 0;
}

static void close_source(struct source *src)
{
	for (size_t i = 0; i < src->nchannels; i++) {
		H5Dclose(src->channels[i].dset);
		H5Tclose(src->channels[i].file_type);
	}
	for (size_t i = 0; i < src->nfields; i++)
		H5Dclose(src->fields[i].dset);
	if (src->event_id >= 0)
		H5Dclose(src->event_id);
	if (src->record_state >= 0)
		H5Dclose(src->record_state);
	if (src->group >= 0)
		H5Gclose(src->group);
	if (src->file >= 0)
		H5Fclose(src->file);
}

/* Chunk caches of one chunk per channel: a row read from a chunk of
 * several rows decodes it once, not once per row. Set on a reopened
 * dataset, the only way HDF5 1.10 takes a dataset access list. */
static void cache_one_chunk(struct source *src)
{
	for (size_t i = 0; i < src->nchannels; i++) {
		struct channel *ch = &src->channels[i];
		hid_t dcpl = H5Dget_create_plist(ch->dset);
		hsize_t chunk[2] = {1, src->samples};
		hid_t type = H5Dget_type(ch->dset);
		if (H5Pget_layout(dcpl) == H5D_CHUNKED)
			H5Pget_chunk(dcpl, 2, chunk);
		size_t bytes = (size_t)(chunk[0] * chunk[1]) * H5Tget_size(type);
		H5Tclose(type);
		H5Pclose(dcpl);
		if (bytes <= (1 << 20) || bytes > EXPORT_CACHE_MAX)
			continue;
		hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
		H5Pset_chunk_cache(dapl, 521, bytes + 1, 1.0);
		hid_t again = H5Dopen2(src->group, ch->name, dapl);
		H5Pclose(dapl);
		if (again >= 0) {
			H5Dclose(ch->dset);
			ch->dset = again;
		}
	}
}

static int export_book(const char *in, const char *out, const struct export_opts *opts)
{
	static struct source src;
	struct counts counts = {0};
	char part[4096];
	struct stat st;

	memset(&src, 0, sizeof(src));
	src.path = in;
	src.file = src.group = src.event_id = src.record_state = H5I_INVALID_HID;
	if (lstat(out, &st) == 0)
		return fail("%s exists; export never replaces a file", out);
	int rc = part_name(out, part, sizeof(part));
	if (!rc)
		rc = open_source(&src);
	if (!rc)
		rc = choose_group(&src, opts->group);
	if (!rc)
		rc = read_layout(&src);
	if (!rc)
		rc = map_fields(&src, opts);
	if (rc) {
		close_source(&src);
		return rc;
	}
	cache_one_chunk(&src);
	hid_t file = H5Fcreate(part, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (file < 0)
		rc = fail("%s: cannot create it", part);
	if (!rc)
		rc = write_events(file, &src, opts, &counts);
	if (!rc)
		rc = write_root(file, &src, opts);
	if (file >= 0 && H5Fclose(file) < 0 && !rc)
		rc = fail("%s: closing it failed", part);
	close_source(&src);
	if (!rc)
		rc = publish(part, out);
	if (rc) {
		unlink(part);
		return rc;
	}
	printf("h5rec export: %llu events of %s:%s written to %s in the book's layout",
	       counts.events, in, src.group_path, out);
	if (counts.incomplete_skipped)
		printf("; %llu incomplete records left out (--incomplete keep exports them)",
		       counts.incomplete_skipped);
	if (counts.incomplete_kept)
		printf("; %llu of them incomplete (missing values are fill)",
		       counts.incomplete_kept);
	printf("\n");
	return 0;
}

/* --field NAME=FIELD */
static int add_map(struct export_opts *opts, char *arg)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg || !eq[1])
		return cli_usage_error("export", "--field wants NAME=FIELD, got '%s'", arg);
	if (opts->nmaps == EXPORT_MAX_MAPS)
		return cli_usage_error("export", "at most %d --field options", EXPORT_MAX_MAPS);
	*eq = '\0';
	opts->maps[opts->nmaps++] = (struct field_map){arg, eq + 1};
	return 0;
}

static int parse_options(int argc, char **argv, struct export_opts *opts, const char **layout)
{
	static const struct option options[] = {
		{"layout", required_argument, NULL, 'l'},
		{"group", required_argument, NULL, 'g'},
		{"incomplete", required_argument, NULL, 'i'},
		{"field", required_argument, NULL, 'f'},
		{"experiment-name", required_argument, NULL, 'e'},
		{"version-number", required_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:g:i:f:e:v:h", options, NULL)) != -1) {
		switch (opt) {
		case 'l': *layout = optarg; break;
		case 'g': opts->group = optarg; break;
		case 'e': opts->experiment_name = optarg; break;
		case 'i':
			if (strcmp(optarg, "keep") && strcmp(optarg, "skip"))
				return cli_usage_error("export", "--incomplete wants skip or keep, "
								 "got '%s'", optarg);
			opts->keep_incomplete = strcmp(optarg, "keep") == 0;
			break;
		case 'f':
			if (add_map(opts, optarg))
				return 2;
			break;
		case 'v':
			if (cli_parse_int64(optarg, &opts->version_number))
				return cli_usage_error("export", "--version-number wants an integer, "
								 "got '%s'", optarg);
			break;
		case 'h': cli_export_usage(stdout); return -1;
		default: cli_export_usage(stderr); return 2;
		}
	}
	return 0;
}

int cli_export(int argc, char **argv)
{
	struct export_opts opts = {.version_number = 1};
	const char *layout = NULL;
	int rc = parse_options(argc, argv, &opts, &layout);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (!layout)
		return cli_usage_error("export", "--layout is required (--layout book)");
	if (strcmp(layout, "book") != 0)
		return cli_usage_error("export", "unknown layout '%s' (known: book)", layout);
	if (optind + 2 != argc) {
		cli_export_usage(stderr);
		return 2;
	}
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* failures are reported by name */
	if (h5z_lz4_register())
		return fail("cannot register the LZ4 filter");
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	return export_book(argv[optind], argv[optind + 1], &opts);
}
