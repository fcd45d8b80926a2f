/*
 * cli_vds.c - `h5rec vds OUTPUT FILES...|DIR`: one master file of HDF5
 * virtual datasets over the files of several recorders (docs/scale-out.md).
 *
 * For each group path found in the inputs, and each axis of its layout (a
 * dimension scale that grows: `time` of a table or records group, a stream
 * channel's `<ch>_frame_time`), the master holds a virtual dataset per
 * dataset on that axis that concatenates the files' rows along axis 0,
 * files in the order of their first time on the group's first time axis.
 * Rows that repeat a message already included are left out (vds_plan.c):
 * the provenance column of the axis (`source_seq`, `<ch>_frame_source_seq`)
 * says which message a row came from, and every dataset of the axis maps
 * the same row ranges, so columns stay aligned. Files without provenance
 * are concatenated whole.
 *
 * What cannot be virtual is written as real data: a stream channel's
 * `<ch>_frame_start` (indexes into the master's samples, not the file's),
 * fixed-size scales (`sample_time`). A stream's event table (`event_time`
 * axis) is left out: its indexes point into each file's samples.
 *
 * Source files are named relative to the master's directory, so the
 * directory can move as a whole. HDF5 opens them when the master is read:
 * the master is only as good as the files it names, which must be closed
 * (a killed recorder's file: `h5clear -s` first).
 *
 * The master is built as `.NAME.part` beside OUTPUT and renamed over it.
 * Its groups' time_monotonic is computed last, from the master closed and
 * opened again read-only (mark_monotonic says why).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "timefmt.h"
#include "vds_plan.h"

#define NAME_MAX_LEN 512

void cli_vds_usage(FILE *out)
{
	fprintf(out,
		"usage: h5rec vds OUTPUT FILES...|DIR\n"
		"Write OUTPUT, a master file of HDF5 virtual datasets that concatenates the\n"
		"groups of closed h5rec files (the files of several recorders of one schema,\n"
		"or of one recorder's rolls) into one dataset per group and column, each\n"
		"message once: rows that repeat a message already included (by their\n"
		"source_seq) are left out. A DIR stands for the *.h5 files in it. Source\n"
		"files are named relative to OUTPUT's directory. Rebuild it when files\n"
		"are added; a file of a killed recorder must be cleared with h5clear first.\n"
		"\n"
		"  -h, --help  this text\n");
}

struct input {
	char *path;
	char *rel; /* relative to the master's directory */
	hid_t id;
};

struct dset {
	char name[NAME_MAX_LEN];
	hid_t type;
	int rank;
	hsize_t dims[2];
	bool growing; /* axis 0 unlimited */
	bool is_scale;
	char scale[2][NAME_MAX_LEN]; /* attached scales per axis; "" none */
};

struct group {
	char path[NAME_MAX_LEN];
	struct dset *dsets;
	size_t ndsets;
	size_t *files; /* inputs holding the group, in concatenation order */
	size_t nfiles;
};

struct vds {
	const char *output;
	char part[PATH_MAX];
	struct input *in;
	size_t nin;
	hid_t out;
	uint64_t dropped, rows;
	bool provenance;
	int failed;
};

/* ---- inputs ------------------------------------------------------------------ */

static bool is_h5(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 3 && !strcmp(name + n - 3, ".h5");
}

static int by_string(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_input(struct vds *v, const char *path)
{
	struct input *more = realloc(v->in, (v->nin + 1) * sizeof(*more));
	if (!more)
		return -ENOMEM;
	v->in = more;
	v->in[v->nin] = (struct input){.path = strdup(path), .id = H5I_INVALID_HID};
	return v->in[v->nin++].path ? 0 : -ENOMEM;
}

static int add_dir(struct vds *v, const char *dir)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	if (!d) {
		fprintf(stderr, "h5rec vds: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (!is_h5(e->d_name))
			continue;
		char **more = realloc(names, (n + 1) * sizeof(*names));
		if (!more) {
			rc = -ENOMEM;
			break;
		}
		names = more;
		if (asprintf(&names[n], "%s/%s", dir, e->d_name) < 0) {
			rc = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), by_string);
	for (size_t i = 0; i < n; i++) {
		if (!rc)
			rc = add_input(v, names[i]);
		free(names[i]);
	}
	free(names);
	return rc;
}

/* PATH relative to directory DIR (both absolute and canonical): the
 * components they share are dropped, each other one of DIR is a "..". */
static char *relative_to(const char *dir, const char *path)
{
	size_t common = 0;
	for (size_t i = 0; dir[i] && dir[i] == path[i]; i++)
		if ((dir[i + 1] == '/' || dir[i + 1] == '\0') && path[i + 1] == '/')
			common = i + 1;
	size_t ups = 0;
	for (const char *p = dir + common; *p; p++)
		if (*p == '/' && p[1])
			ups++;
	const char *rest = path + common;
	while (*rest == '/')
		rest++;
	char *out = malloc(ups * 3 + strlen(rest) + 1);
	if (!out)
		return NULL;
	out[0] = '\0';
	for (size_t i = 0; i < ups; i++)
		strcat(out, "../");
	strcat(out, rest);
	return out;
}

/* Open every input; the master being rebuilt, and other masters, are
 * left out. A file still marked open for writing is refused. */
static int open_inputs(struct vds *v, const char *outdir)
{
	char real[PATH_MAX], out_real[PATH_MAX];
	bool have_out = realpath(v->output, out_real) != NULL;
	size_t kept = 0;
	int rc = 0;
	for (size_t i = 0; !rc && i < v->nin; i++) {
		struct input *in = &v->in[i];
		if (!realpath(in->path, real)) {
			fprintf(stderr, "h5rec vds: %s: %s\n", in->path, strerror(errno));
			rc = -ENOENT;
			break;
		}
		if (have_out && !strcmp(real, out_real))
			continue;
		in->id = H5Fopen(in->path, H5F_ACC_RDONLY, H5P_DEFAULT);
		if (in->id < 0) {
			hid_t swmr = H5Fopen(in->path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
			if (swmr >= 0) {
				H5Fclose(swmr);
				fprintf(stderr, "h5rec vds: %s is open for writing, or its writer was "
					"killed: the master can only name closed files (after a "
					"crash, 'h5clear -s %s' makes it one, with everything up to "
					"its last flush)\n", in->path, in->path);
			} else {
				fprintf(stderr, "h5rec vds: %s: not an HDF5 file h5rec can read\n",
					in->path);
			}
			rc = -EINVAL;
			break;
		}
		if (H5Aexists(in->id, "vds_files") > 0) { /* another master */
			H5Fclose(in->id);
			in->id = H5I_INVALID_HID;
			continue;
		}
		in->rel = relative_to(outdir, real);
		if (!in->rel)
			rc = -ENOMEM;
	}
	/* keep the files taken, in order; free the others */
	for (size_t i = 0; i < v->nin; i++) {
		if (v->in[i].rel || (rc && v->in[i].id >= 0)) {
			struct input in = v->in[i];
			v->in[i] = (struct input){.id = H5I_INVALID_HID};
			v->in[kept++] = in;
		} else {
			free(v->in[i].path);
		}
	}
	v->nin = kept;
	return rc;
}

/* A root text attribute of a file ("" when absent); the caller frees it. */
static char *root_text(hid_t file, const char *name)
{
	char *value = NULL;
	if (H5Aexists(file, name) > 0) {
		hid_t a = H5Aopen(file, name, H5P_DEFAULT);
		hid_t t = H5Tcopy(H5T_C_S1);
		H5Tset_size(t, H5T_VARIABLE);
		H5Tset_cset(t, H5T_CSET_UTF8);
		if (H5Aread(a, t, &value) < 0)
			value = NULL;
		H5Tclose(t);
		H5Aclose(a);
	}
	char *copy = strdup(value ? value : "");
	H5free_memory(value);
	return copy;
}

static int check_schemas(struct vds *v)
{
	char *first = root_text(v->in[0].id, "schema_name");
	int rc = first ? 0 : -ENOMEM;
	for (size_t i = 1; !rc && i < v->nin; i++) {
		char *name = root_text(v->in[i].id, "schema_name");
		if (!name || strcmp(name, first)) {
			fprintf(stderr, "h5rec vds: %s is of schema '%s', %s of '%s': a master joins "
				"the files of one schema\n", v->in[i].path, name ? name : "?",
				v->in[0].path, first);
			rc = -EINVAL;
		}
		free(name);
	}
	free(first);
	return rc;
}

/* ---- groups and their datasets ---------------------------------------------------- */

struct collect {
	char **paths;
	size_t n;
};

static herr_t note_group(hid_t obj, const char *name, const H5O_info_t *info, void *op)
{
	struct collect *c = op;
	(void)obj;
	if (info->type != H5O_TYPE_DATASET)
		return 0;
	char path[NAME_MAX_LEN];
	snprintf(path, sizeof(path), "/%s", name);
	char *slash = strrchr(path, '/');
	if (slash == path)
		slash[1] = '\0';
	else
		*slash = '\0';
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->paths[i], path))
			return 0;
	char **more = realloc(c->paths, (c->n + 1) * sizeof(*more));
	if (!more)
		return -1;
	c->paths = more;
	c->paths[c->n] = strdup(path);
	return c->paths[c->n++] ? 0 : -1;
}

static void scale_name(hid_t did, unsigned axis, char *out, size_t len)
{
	out[0] = '\0';
	if (H5DSget_num_scales(did, axis) <= 0)
		return;
	hid_t refs = H5Aopen(did, "DIMENSION_LIST", H5P_DEFAULT);
	if (refs < 0)
		return;
	hid_t space = H5Aget_space(refs);
	hssize_t n = H5Sget_simple_extent_npoints(space);
	hvl_t *vl = calloc((size_t)(n > 0 ? n : 1), sizeof(*vl));
	hid_t vtype = H5Tvlen_create(H5T_STD_REF_OBJ);
	if (vl && H5Aread(refs, vtype, vl) >= 0 && (hssize_t)axis < n && vl[axis].len) {
		hobj_ref_t ref = ((hobj_ref_t *)vl[axis].p)[0];
		hid_t sid = H5Rdereference2(did, H5P_DEFAULT, H5R_OBJECT, &ref);
		char full[NAME_MAX_LEN];
		if (sid >= 0 && H5Iget_name(sid, full, sizeof(full)) > 0) {
			const char *base = strrchr(full, '/');
			snprintf(out, len, "%s", base ? base + 1 : full);
		}
		if (sid >= 0)
			H5Dclose(sid);
	}
	if (vl)
		H5Dvlen_reclaim(vtype, space, H5P_DEFAULT, vl);
	free(vl);
	H5Tclose(vtype);
	H5Sclose(space);
	H5Aclose(refs);
}

struct list_ctx {
	hid_t gid;
	struct dset *dsets;
	size_t n;
};

static herr_t note_dset(hid_t gid, const char *name, const H5L_info_t *info, void *op)
{
	struct list_ctx *c = op;
	H5O_info_t oi;
	(void)info;
	if (H5Oget_info_by_name(gid, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET)
		return 0;
	struct dset *more = realloc(c->dsets, (c->n + 1) * sizeof(*more));
	if (!more)
		return -1;
	c->dsets = more;
	struct dset *d = &c->dsets[c->n++];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	hid_t did = H5Dopen2(gid, name, H5P_DEFAULT);
	hid_t space = H5Dget_space(did);
	hsize_t maxdims[2] = {0, 0};
	d->rank = H5Sget_simple_extent_ndims(space);
	if (d->rank < 1 || d->rank > 2)
		d->rank = 0; /* not a column: left out */
	else
		H5Sget_simple_extent_dims(space, d->dims, maxdims);
	d->growing = d->rank && maxdims[0] == H5S_UNLIMITED;
	d->type = H5Dget_type(did);
	d->is_scale = H5DSis_scale(did) > 0;
	for (int a = 0; a < d->rank; a++)
		scale_name(did, (unsigned)a, d->scale[a], sizeof(d->scale[a]));
	H5Sclose(space);
	H5Dclose(did);
	return 0;
}

static int list_dsets(hid_t file, const char *path, struct dset **out, size_t *n)
{
	struct list_ctx c = {0};
	hid_t gid = H5Gopen2(file, path, H5P_DEFAULT);
	if (gid < 0)
		return -ENOENT;
	herr_t rc = H5Literate(gid, H5_INDEX_NAME, H5_ITER_INC, NULL, note_dset, &c);
	H5Gclose(gid);
	*out = c.dsets;
	*n = c.n;
	return rc < 0 ? -EIO : 0;
}

static void free_dsets(struct dset *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		H5Tclose(d[i].type);
	free(d);
}

static const struct dset *find_dset(const struct dset *d, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(d[i].name, name))
			return &d[i];
	return NULL;
}

/* Every file holding G must hold the same datasets, of the same types and
 * row shapes, as the first: else the files are not of one layout. */
static int check_group(struct vds *v, struct group *g)
{
	for (size_t k = 1; k < g->nfiles; k++) {
		struct input *in = &v->in[g->files[k]];
		struct dset *d = NULL;
		size_t n = 0;
		int rc = list_dsets(in->id, g->path, &d, &n);
		const char *why = NULL, *what = "";
		for (size_t i = 0; !rc && !why && i < g->ndsets; i++) {
			const struct dset *a = &g->dsets[i], *b = find_dset(d, n, a->name);
			what = a->name;
			if (!b)
				why = "has no dataset";
			else if (H5Tequal(a->type, b->type) <= 0)
				why = "has another type for";
			else if (a->rank != b->rank || (a->rank == 2 && a->dims[1] != b->dims[1]))
				why = "has another shape for";
		}
		if (!rc && !why && n != g->ndsets) {
			why = "has other datasets in";
			what = g->path;
		}
		free_dsets(d, n);
		if (rc || why) {
			fprintf(stderr, "h5rec vds: %s %s %s (group %s, unlike %s): a master joins "
				"files of one layout\n", in->path, why ? why : "cannot list", what,
				g->path, v->in[g->files[0]].path);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- reading columns ------------------------------------------------------------ */

static hid_t open_in(struct vds *v, size_t file, const struct group *g, const char *name)
{
	char path[2 * NAME_MAX_LEN];
	snprintf(path, sizeof(path), "%s/%s", strcmp(g->path, "/") ? g->path : "", name);
	return H5Dopen2(v->in[file].id, path, H5P_DEFAULT);
}

static uint64_t rows_in(struct vds *v, size_t file, const struct group *g, const char *name)
{
	hid_t did = open_in(v, file, g, name);
	hsize_t dims[2] = {0, 0};
	if (did < 0)
		return 0;
	hid_t space = H5Dget_space(did);
	H5Sget_simple_extent_dims(space, dims, NULL);
	H5Sclose(space);
	H5Dclose(did);
	return dims[0];
}

/* A whole 1-D column as uint64 (or int64: MEMTYPE); NULL on failure. */
static void *read_column(struct vds *v, size_t file, const struct group *g, const char *name,
			 hid_t memtype, uint64_t *n)
{
	hid_t did = open_in(v, file, g, name);
	if (did < 0)
		return NULL;
	hid_t space = H5Dget_space(did);
	hsize_t dims[1] = {0};
	H5Sget_simple_extent_dims(space, dims, NULL);
	void *buf = malloc((size_t)(dims[0] ? dims[0] : 1) * 8);
	if (buf && dims[0] && H5Dread(did, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
		free(buf);
		buf = NULL;
	}
	*n = dims[0];
	H5Sclose(space);
	H5Dclose(did);
	return buf;
}

/* The first value of a 1-D int64 column; false when it is empty. */
static bool read_first(struct vds *v, size_t file, const struct group *g, const char *name,
		       int64_t *out)
{
	hid_t did = open_in(v, file, g, name);
	if (did < 0)
		return false;
	hid_t space = H5Dget_space(did);
	hsize_t dims[1] = {0}, start[1] = {0}, one[1] = {1};
	H5Sget_simple_extent_dims(space, dims, NULL);
	hid_t mem = H5Screate_simple(1, one, NULL);
	bool got = dims[0] > 0 &&
		   H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, one, NULL) >= 0 &&
		   H5Dread(did, H5T_NATIVE_INT64, mem, space, H5P_DEFAULT, out) >= 0;
	H5Sclose(mem);
	H5Sclose(space);
	H5Dclose(did);
	return got;
}

/* ---- attributes ------------------------------------------------------------------- */

struct copy_ctx {
	hid_t dst;
	const char *const *skip;
};

static herr_t copy_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
	struct copy_ctx *c = op;
	(void)info;
	for (const char *const *s = c->skip; s && *s; s++)
		if (!strcmp(*s, name))
			return 0;
	hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
	hid_t ftype = H5Aget_type(a), space = H5Aget_space(a);
	hid_t mtype = H5Tget_native_type(ftype, H5T_DIR_ASCEND);
	hssize_t n = H5Sget_simple_extent_npoints(space);
	size_t size = H5Tget_size(mtype);
	void *buf = calloc((size_t)(n > 0 ? n : 1), size ? size : 1);
	herr_t rc = -1;
	if (buf && H5Aread(a, mtype, buf) >= 0) {
		if (H5Aexists(c->dst, name) > 0)
			H5Adelete(c->dst, name);
		hid_t b = H5Acreate2(c->dst, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
		if (b >= 0 && H5Awrite(b, mtype, buf) >= 0)
			rc = 0;
		if (b >= 0)
			H5Aclose(b);
		if (H5Tis_variable_str(mtype) > 0 || H5Tdetect_class(mtype, H5T_VLEN) > 0)
			H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, buf);
	}
	free(buf);
	H5Tclose(mtype);
	H5Tclose(ftype);
	H5Sclose(space);
	H5Aclose(a);
	return rc;
}

static int copy_attrs(hid_t src, hid_t dst, const char *const *skip)
{
	struct copy_ctx c = {dst, skip};
	return H5Aiterate2(src, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attr, &c) < 0 ? -EIO : 0;
}

static int attr_i64(hid_t obj, const char *name, int64_t value, hid_t type)
{
	hid_t space = H5Screate(H5S_SCALAR);
	if (H5Aexists(obj, name) > 0)
		H5Adelete(obj, name);
	hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	int rc = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &value) >= 0 ? 0 : -EIO;
	if (a >= 0)
		H5Aclose(a);
	H5Sclose(space);
	return rc;
}

static int attr_text(hid_t obj, const char *name, const char *const *values, size_t n,
		     bool list)
{
	hsize_t dims = n;
	hid_t t = H5Tcopy(H5T_C_S1);
	H5Tset_size(t, H5T_VARIABLE);
	H5Tset_cset(t, H5T_CSET_UTF8);
	hid_t space = list ? H5Screate_simple(1, &dims, NULL) : H5Screate(H5S_SCALAR);
	if (H5Aexists(obj, name) > 0)
		H5Adelete(obj, name);
	hid_t a = H5Acreate2(obj, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
	int rc = a >= 0 && H5Awrite(a, t, values) >= 0 ? 0 : -EIO;
	if (a >= 0)
		H5Aclose(a);
	H5Sclose(space);
	H5Tclose(t);
	return rc;
}

/* start_time/end_time over the files: the earliest and the latest that
 * are set (0: no data in that file). */
static int data_times(struct vds *v, const struct group *g, const char *name, hid_t did)
{
	int64_t first = 0, last = 0;
	for (size_t k = 0; k < g->nfiles; k++) {
		hid_t src = open_in(v, g->files[k], g, name);
		int64_t s = 0, e = 0;
		if (src < 0)
			continue;
		if (H5Aexists(src, "start_time") > 0) {
			hid_t a = H5Aopen(src, "start_time", H5P_DEFAULT);
			H5Aread(a, H5T_NATIVE_INT64, &s);
			H5Aclose(a);
			a = H5Aopen(src, "end_time", H5P_DEFAULT);
			H5Aread(a, H5T_NATIVE_INT64, &e);
			H5Aclose(a);
		}
		H5Dclose(src);
		if (s && (!first || s < first))
			first = s;
		if (e > last)
			last = e;
	}
	int rc = attr_i64(did, "start_time", first, H5T_STD_I64LE);
	return rc ? rc : attr_i64(did, "end_time", last, H5T_STD_I64LE);
}

static const char *const DSET_SKIP[] = {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST",
					"start_time", "end_time", NULL};

static int dataset_attrs(struct vds *v, const struct group *g, const struct dset *d, hid_t did)
{
	hid_t src = open_in(v, g->files[0], g, d->name);
	if (src < 0)
		return -EIO;
	int rc = copy_attrs(src, did, DSET_SKIP);
	bool timed = H5Aexists(src, "start_time") > 0;
	H5Dclose(src);
	return rc || !timed ? rc : data_times(v, g, d->name, did);
}

/* ---- writing ------------------------------------------------------------------------ */

/* A piece of a virtual dataset: rows [start, start + count) of FILE, whose
 * dataset has SRC_ROWS rows. */
struct piece {
	size_t file;
	uint64_t src_rows, start, count;
};

static hid_t create_out(struct vds *v, hid_t gid, const struct group *g, const struct dset *d,
			uint64_t total, hid_t dcpl)
{
	hsize_t dims[2] = {total, d->rank == 2 ? d->dims[1] : 1};
	hid_t space = H5Screate_simple(d->rank, dims, NULL);
	hid_t did = H5Dcreate2(gid, d->name, d->type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	H5Sclose(space);
	if (did < 0)
		fprintf(stderr, "h5rec vds: %s: creating %s/%s failed\n", v->output, g->path,
			d->name);
	return did;
}

/* The fill value of the source dataset, for readers that look there. */
static void copy_fill(struct vds *v, const struct group *g, const struct dset *d, hid_t dcpl)
{
	hid_t src = open_in(v, g->files[0], g, d->name);
	if (src < 0)
		return;
	hid_t sdcpl = H5Dget_create_plist(src);
	H5D_fill_value_t defined;
	unsigned char fill[64];
	if (H5Pfill_value_defined(sdcpl, &defined) >= 0 && defined == H5D_FILL_VALUE_USER_DEFINED &&
	    H5Tget_class(d->type) != H5T_STRING && H5Tget_size(d->type) <= sizeof(fill) &&
	    H5Pget_fill_value(sdcpl, d->type, fill) >= 0)
		H5Pset_fill_value(dcpl, d->type, fill);
	H5Pclose(sdcpl);
	H5Dclose(src);
}

static int write_virtual(struct vds *v, hid_t gid, const struct group *g, const struct dset *d,
			 const struct piece *pieces, size_t npieces)
{
	uint64_t total = 0;
	hsize_t row = d->rank == 2 ? d->dims[1] : 1;
	for (size_t i = 0; i < npieces; i++)
		total += pieces[i].count;
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	hsize_t vdims[2] = {total, row};
	hid_t vspace = H5Screate_simple(d->rank, vdims, NULL);
	char src_name[2 * NAME_MAX_LEN];
	snprintf(src_name, sizeof(src_name), "%s/%s", strcmp(g->path, "/") ? g->path : "",
		 d->name);
	uint64_t at = 0;
	int rc = 0;
	copy_fill(v, g, d, dcpl);
	for (size_t i = 0; !rc && i < npieces; i++) {
		const struct piece *p = &pieces[i];
		hsize_t sdims[2] = {p->src_rows, row};
		hsize_t vstart[2] = {at, 0}, sstart[2] = {p->start, 0}, count[2] = {p->count, row};
		hid_t sspace = H5Screate_simple(d->rank, sdims, NULL);
		if (H5Sselect_hyperslab(vspace, H5S_SELECT_SET, vstart, NULL, count, NULL) < 0 ||
		    H5Sselect_hyperslab(sspace, H5S_SELECT_SET, sstart, NULL, count, NULL) < 0 ||
		    H5Pset_virtual(dcpl, vspace, v->in[p->file].rel, src_name, sspace) < 0)
			rc = -EIO;
		H5Sclose(sspace);
		at += p->count;
	}
	hid_t did = rc ? H5I_INVALID_HID : create_out(v, gid, g, d, total, dcpl);
	if (did >= 0)
		rc = dataset_attrs(v, g, d, did);
	else
		rc = -EIO;
	if (did >= 0)
		H5Dclose(did);
	H5Sclose(vspace);
	H5Pclose(dcpl);
	return rc;
}

/* A real dataset of TOTAL rows (VALUES: uint64, or NULL: a copy of the
 * first file's, for fixed-size datasets). */
static int write_real(struct vds *v, hid_t gid, const struct group *g, const struct dset *d,
		      const uint64_t *values, uint64_t total)
{
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	hid_t did = create_out(v, gid, g, d, values ? total : d->dims[0], dcpl);
	int rc = did < 0 ? -EIO : 0;
	if (!rc && values && total &&
	    H5Dwrite(did, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
		rc = -EIO;
	if (!rc && !values) {
		hid_t src = open_in(v, g->files[0], g, d->name);
		hid_t mtype = H5Tget_native_type(d->type, H5T_DIR_ASCEND);
		size_t size = H5Tget_size(mtype) * (size_t)d->dims[0] * (d->rank == 2 ? d->dims[1] : 1);
		void *buf = malloc(size ? size : 1);
		if (src < 0 || !buf || H5Dread(src, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ||
		    H5Dwrite(did, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
			rc = -EIO;
		free(buf);
		H5Tclose(mtype);
		if (src >= 0)
			H5Dclose(src);
	}
	if (!rc)
		rc = dataset_attrs(v, g, d, did);
	if (did >= 0)
		H5Dclose(did);
	H5Pclose(dcpl);
	return rc;
}

/* ---- one axis ------------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* The name a dataset of axis AXIS has when it plays ROLE: `<ch>_frameROLE`
 * on a stream channel's frame axis `<ch>_frame_time`, ROLE without its
 * leading `_` otherwise (`source_seq` on `time`). */
static void axis_member(const char *axis, const char *role, char *out, size_t len)
{
	if (ends_with(axis, "_frame_time"))
		snprintf(out, len, "%.*s%s", (int)(strlen(axis) - strlen("_time")), axis, role);
	else
		snprintf(out, len, "%s", role + 1);
}

/* Kept rows of every file of G on AXIS; pieces of the axis' datasets. */
static int plan_axis(struct vds *v, const struct group *g, const struct dset *axis,
		     struct vds_keep *keep, uint64_t *total)
{
	char seq_name[NAME_MAX_LEN];
	axis_member(axis->name, "_source_seq", seq_name, sizeof(seq_name));
	bool with_seq = find_dset(g->dsets, g->ndsets, seq_name) != NULL &&
			!strcmp(find_dset(g->dsets, g->ndsets, seq_name)->scale[0], axis->name);
	struct vds_rows *rows = calloc(g->nfiles + 1, sizeof(*rows));
	int rc = rows ? 0 : -ENOMEM;
	for (size_t k = 0; !rc && k < g->nfiles; k++) {
		rows[k].nrows = rows_in(v, g->files[k], g, axis->name);
		if (!with_seq)
			continue;
		uint64_t n = 0;
		rows[k].seq = read_column(v, g->files[k], g, seq_name, H5T_NATIVE_UINT64, &n);
		if (!rows[k].seq)
			rc = -EIO;
		else if (n < rows[k].nrows)
			rows[k].nrows = n;
	}
	uint64_t dropped = 0;
	if (!rc)
		rc = vds_plan_keep(rows, g->nfiles, keep, &dropped);
	*total = 0;
	for (size_t k = 0; !rc && k < g->nfiles; k++)
		*total += keep[k].rows;
	for (size_t k = 0; rows && k < g->nfiles; k++)
		free((void *)rows[k].seq);
	free(rows);
	v->dropped += dropped;
	v->provenance |= with_seq;
	return rc;
}

static struct piece *row_pieces(struct vds *v, const struct group *g, const char *name,
				const struct vds_keep *keep, size_t *n)
{
	size_t count = 0;
	for (size_t k = 0; k < g->nfiles; k++)
		count += keep[k].nranges;
	struct piece *p = calloc(count + 1, sizeof(*p));
	*n = 0;
	for (size_t k = 0; p && k < g->nfiles; k++) {
		uint64_t src_rows = rows_in(v, g->files[k], g, name);
		for (size_t r = 0; r < keep[k].nranges; r++)
			p[(*n)++] = (struct piece){g->files[k], src_rows, keep[k].ranges[r].start,
						   keep[k].ranges[r].count};
	}
	return p;
}

/* A stream channel: its samples follow the frames kept, and its
 * frame_start is recomputed to point into the master's samples. */
static int write_samples(struct vds *v, hid_t gid, const struct group *g, const struct dset *axis,
			 const struct vds_keep *keep, uint64_t frames)
{
	char samples_name[NAME_MAX_LEN], start_name[NAME_MAX_LEN];
	snprintf(samples_name, sizeof(samples_name), "%.*s", (int)(strlen(axis->name) -
		 strlen("_frame_time")), axis->name);
	axis_member(axis->name, "_start", start_name, sizeof(start_name));
	const struct dset *samples = find_dset(g->dsets, g->ndsets, samples_name);
	const struct dset *starts = find_dset(g->dsets, g->ndsets, start_name);
	if (!samples || !starts)
		return 0;
	size_t cap = 1;
	for (size_t k = 0; k < g->nfiles; k++)
		cap += keep[k].nranges;
	struct piece *pieces = calloc(cap, sizeof(*pieces));
	uint64_t *new_starts = calloc(frames + 1, sizeof(*new_starts));
	size_t npieces = 0;
	uint64_t frame = 0, at = 0;
	int rc = pieces && new_starts ? 0 : -ENOMEM;
	for (size_t k = 0; !rc && k < g->nfiles; k++) {
		uint64_t nframes = 0, nsamples = rows_in(v, g->files[k], g, samples_name);
		uint64_t *start = read_column(v, g->files[k], g, start_name, H5T_NATIVE_UINT64,
					      &nframes);
		if (!start) {
			rc = -EIO;
			break;
		}
		for (size_t r = 0; r < keep[k].nranges; r++) {
			uint64_t a = keep[k].ranges[r].start, b = a + keep[k].ranges[r].count;
			uint64_t first = start[a], end = b < nframes ? start[b] : nsamples;
			for (uint64_t f = a; f < b; f++)
				new_starts[frame++] = at + (start[f] - first);
			pieces[npieces++] = (struct piece){g->files[k], nsamples, first, end - first};
			at += end - first;
		}
		free(start);
	}
	if (!rc)
		rc = write_virtual(v, gid, g, samples, pieces, npieces);
	if (!rc)
		rc = write_real(v, gid, g, starts, new_starts, frame);
	free(pieces);
	free(new_starts);
	return rc;
}

static int write_axis(struct vds *v, hid_t gid, const struct group *g, const struct dset *axis)
{
	struct vds_keep *keep = calloc(g->nfiles + 1, sizeof(*keep));
	uint64_t total = 0;
	int rc = keep ? plan_axis(v, g, axis, keep, &total) : -ENOMEM;
	char start_name[NAME_MAX_LEN];
	bool stream = ends_with(axis->name, "_frame_time");
	axis_member(axis->name, "_start", start_name, sizeof(start_name));
	for (size_t i = 0; !rc && i < g->ndsets; i++) {
		const struct dset *d = &g->dsets[i];
		if (d != axis && strcmp(d->scale[0], axis->name))
			continue;
		if (stream && !strcmp(d->name, start_name))
			continue; /* write_samples */
		size_t n = 0;
		struct piece *p = row_pieces(v, g, d->name, keep, &n);
		rc = p ? write_virtual(v, gid, g, d, p, n) : -ENOMEM;
		free(p);
	}
	if (!rc && stream)
		rc = write_samples(v, gid, g, axis, keep, total);
	if (!strcmp(axis->name, "time") || stream)
		v->rows += total;
	if (keep)
		vds_keep_free(keep, g->nfiles);
	free(keep);
	return rc;
}

/* ---- one group -------------------------------------------------------------------------- */

static bool is_time(struct vds *v, const struct group *g, const struct dset *d)
{
	hid_t did = open_in(v, g->files[0], g, d->name);
	bool yes = false;
	if (did >= 0 && H5Aexists(did, "calendar") > 0)
		yes = true;
	if (did >= 0)
		H5Dclose(did);
	return yes;
}

/* Files in the order of the first time on the group's first time axis
 * (files where it is empty last, in name order). */
struct order {
	size_t file;
	bool empty;
	int64_t first;
};

static int by_first_time(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	if (x->empty != y->empty)
		return x->empty ? 1 : -1;
	if (!x->empty && x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->file < y->file ? -1 : x->file > y->file;
}

static void order_files(struct vds *v, struct group *g)
{
	const struct dset *t = NULL;
	for (size_t i = 0; !t && i < g->ndsets; i++)
		if (g->dsets[i].is_scale && g->dsets[i].growing && is_time(v, g, &g->dsets[i]))
			t = &g->dsets[i];
	struct order *o = calloc(g->nfiles + 1, sizeof(*o));
	if (!t || !o) {
		free(o);
		return;
	}
	for (size_t k = 0; k < g->nfiles; k++) {
		int64_t first = 0;
		bool got = read_first(v, g->files[k], g, t->name, &first);
		o[k] = (struct order){g->files[k], !got, first};
	}
	qsort(o, g->nfiles, sizeof(*o), by_first_time);
	for (size_t k = 0; k < g->nfiles; k++)
		g->files[k] = o[k].file;
	free(o);
}

/* Is the int64 dataset NAME of GID strictly increasing? Read in blocks,
 * so memory does not grow with the master. */
static bool increasing(hid_t gid, const char *name)
{
	enum { BLOCK = 1 << 16 };
	hid_t did = H5Dopen2(gid, name, H5P_DEFAULT);
	hid_t space = H5Dget_space(did);
	hsize_t n = 0;
	H5Sget_simple_extent_dims(space, &n, NULL);
	int64_t *t = malloc(BLOCK * sizeof(*t)), last = INT64_MIN;
	bool yes = t != NULL;
	for (hsize_t at = 0; yes && at < n; at += BLOCK) {
		hsize_t count[1] = {n - at < BLOCK ? n - at : BLOCK}, start[1] = {at};
		hid_t mem = H5Screate_simple(1, count, NULL);
		yes = H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
		      H5Dread(did, H5T_NATIVE_INT64, mem, space, H5P_DEFAULT, t) >= 0;
		for (hsize_t r = 0; yes && r < count[0]; r++) {
			yes = at + r == 0 || t[r] > last;
			last = t[r];
		}
		H5Sclose(mem);
	}
	free(t);
	H5Sclose(space);
	H5Dclose(did);
	return yes;
}

/*
 * time_monotonic of each group of the master: every time axis strictly
 * increasing. Read from the master once it is closed and opened again
 * read-only: HDF5 opens a virtual dataset's sources with the intent of its
 * file, and the sources are open read-only here, so a master open for
 * writing reads them as fill.
 */
static int mark_monotonic(struct vds *v)
{
	struct collect groups = {0};
	hid_t file = H5Fopen(v->part, H5F_ACC_RDONLY, H5P_DEFAULT);
	int8_t *flags = NULL;
	int rc = file < 0 || H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, note_group, &groups) < 0
			 ? -EIO : 0;
	if (!rc && !(flags = calloc(groups.n + 1, 1)))
		rc = -ENOMEM;
	for (size_t p = 0; !rc && p < groups.n; p++) {
		struct dset *d = NULL;
		size_t n = 0;
		hid_t gid = H5Gopen2(file, groups.paths[p], H5P_DEFAULT);
		rc = list_dsets(file, groups.paths[p], &d, &n);
		flags[p] = 1;
		for (size_t i = 0; !rc && i < n; i++) {
			hid_t did = d[i].is_scale && d[i].rank == 1
					    ? H5Dopen2(gid, d[i].name, H5P_DEFAULT) : H5I_INVALID_HID;
			bool timed = did >= 0 && H5Aexists(did, "calendar") > 0;
			if (did >= 0)
				H5Dclose(did);
			if (timed && !increasing(gid, d[i].name))
				flags[p] = 0;
		}
		free_dsets(d, n);
		if (gid >= 0)
			H5Gclose(gid);
	}
	if (file >= 0)
		H5Fclose(file);
	file = rc ? H5I_INVALID_HID : H5Fopen(v->part, H5F_ACC_RDWR, H5P_DEFAULT);
	if (!rc && file < 0)
		rc = -EIO;
	for (size_t p = 0; !rc && p < groups.n; p++) {
		if (!strcmp(groups.paths[p], "/"))
			continue;
		hid_t gid = H5Gopen2(file, groups.paths[p], H5P_DEFAULT);
		rc = gid < 0 ? -EIO : attr_i64(gid, "time_monotonic", flags[p], H5T_STD_I8LE);
		if (gid >= 0)
			H5Gclose(gid);
	}
	if (file >= 0 && H5Fclose(file) < 0 && !rc)
		rc = -EIO;
	for (size_t p = 0; p < groups.n; p++)
		free(groups.paths[p]);
	free(groups.paths);
	free(flags);
	return rc;
}

static int attach_scales(struct vds *v, hid_t gid, const struct group *g)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < g->ndsets; i++) {
		const struct dset *d = &g->dsets[i];
		if (d->is_scale && H5Lexists(gid, d->name, H5P_DEFAULT) > 0) {
			hid_t did = H5Dopen2(gid, d->name, H5P_DEFAULT);
			rc = H5DSset_scale(did, d->name) < 0 ? -EIO : 0;
			H5Dclose(did);
		}
	}
	for (size_t i = 0; !rc && i < g->ndsets; i++) {
		const struct dset *d = &g->dsets[i];
		if (H5Lexists(gid, d->name, H5P_DEFAULT) <= 0)
			continue;
		for (int a = 0; !rc && a < d->rank; a++) {
			if (!d->scale[a][0] || H5Lexists(gid, d->scale[a], H5P_DEFAULT) <= 0)
				continue;
			hid_t did = H5Dopen2(gid, d->name, H5P_DEFAULT);
			hid_t sid = H5Dopen2(gid, d->scale[a], H5P_DEFAULT);
			if (H5DSattach_scale(did, sid, (unsigned)a) < 0 ||
			    H5DSset_label(did, (unsigned)a, d->scale[a]) < 0)
				rc = -EIO;
			H5Dclose(sid);
			H5Dclose(did);
		}
	}
	if (rc)
		fprintf(stderr, "h5rec vds: %s: attaching the scales of %s failed\n", v->output,
			g->path);
	return rc;
}

static bool on_growing_axis(const struct group *g, const struct dset *d)
{
	if (d->is_scale && d->growing)
		return true;
	const struct dset *s = d->scale[0][0] ? find_dset(g->dsets, g->ndsets, d->scale[0]) : NULL;
	return s && s->growing;
}

static void say_left_out(const struct group *g, const struct dset *d, const char *why)
{
	fprintf(stderr, "h5rec vds: %s/%s left out: %s\n", strcmp(g->path, "/") ? g->path : "",
		d->name, why);
}

static int write_group(struct vds *v, struct group *g)
{
	hid_t gid;
	if (!strcmp(g->path, "/")) {
		gid = H5Gopen2(v->out, "/", H5P_DEFAULT);
	} else {
		hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
		H5Pset_create_intermediate_group(lcpl, 1);
		gid = H5Gcreate2(v->out, g->path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
		H5Pclose(lcpl);
	}
	if (gid < 0)
		return -EIO;
	order_files(v, g);
	hid_t src = H5Gopen2(v->in[g->files[0]].id, g->path, H5P_DEFAULT);
	static const char *const group_skip[] = {"time_monotonic", NULL};
	int rc = strcmp(g->path, "/") ? copy_attrs(src, gid, group_skip) : 0;
	H5Gclose(src);
	for (size_t i = 0; !rc && i < g->ndsets; i++) {
		const struct dset *d = &g->dsets[i];
		char frame_start[2 * NAME_MAX_LEN];
		snprintf(frame_start, sizeof(frame_start), "%s_frame_start", d->name);
		if (!d->rank)
			say_left_out(g, d, "not a column");
		else if (!strcmp(d->name, "event_time") || !strcmp(d->scale[0], "event_time"))
			continue; /* a stream's event table: said once, below */
		else if (d->is_scale && d->growing)
			rc = write_axis(v, gid, g, d);
		else if (!d->growing)
			rc = write_real(v, gid, g, d, NULL, 0);
		else if (!on_growing_axis(g, d) && !find_dset(g->dsets, g->ndsets, frame_start))
			say_left_out(g, d, "on no axis h5rec vds knows");
	}
	if (find_dset(g->dsets, g->ndsets, "event_time"))
		fprintf(stderr, "h5rec vds: %s: the event table (event_time) is left out: its "
			"indexes point into each file's samples\n", g->path);
	if (!rc)
		rc = attach_scales(v, gid, g);
	H5Gclose(gid);
	return rc;
}

/* ---- the master ------------------------------------------------------------------------- */

static int root_attrs(struct vds *v)
{
	static const char *const skip[] = {"file_created", "file_sequence", "host", "run_end",
					   "run_restarted", NULL};
	const char **names = calloc(v->nin + 1, sizeof(*names));
	char created[TIME_ISO8601_MAX];
	struct timespec now;
	if (!names)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &now);
	time_iso8601((int64_t)now.tv_sec * 1000000000 + now.tv_nsec, 0, created, sizeof(created));
	for (size_t i = 0; i < v->nin; i++)
		names[i] = v->in[i].rel;
	const char *one[1] = {created};
	int rc = copy_attrs(v->in[0].id, v->out, skip);
	rc |= attr_text(v->out, "vds_files", names, v->nin, true);
	rc |= attr_text(v->out, "vds_created", one, 1, false);
	rc |= attr_i64(v->out, "vds_duplicates_dropped", (int64_t)v->dropped, H5T_STD_I64LE);
	rc |= attr_i64(v->out, "vds_deduplicated", v->provenance, H5T_STD_I8LE);
	free(names);
	return rc;
}

static int build(struct vds *v)
{
	struct collect groups = {0};
	int rc = 0;
	for (size_t i = 0; !rc && i < v->nin; i++)
		if (H5Ovisit(v->in[i].id, H5_INDEX_NAME, H5_ITER_INC, note_group, &groups) < 0)
			rc = -EIO;
	qsort(groups.paths, groups.n, sizeof(*groups.paths), by_string);
	for (size_t p = 0; !rc && p < groups.n; p++) {
		struct group g = {0};
		snprintf(g.path, sizeof(g.path), "%s", groups.paths[p]);
		g.files = calloc(v->nin, sizeof(*g.files));
		for (size_t i = 0; g.files && i < v->nin; i++)
			if (H5Lexists(v->in[i].id, g.path, H5P_DEFAULT) > 0 || !strcmp(g.path, "/"))
				g.files[g.nfiles++] = i;
		rc = !g.files ? -ENOMEM : list_dsets(v->in[g.files[0]].id, g.path, &g.dsets, &g.ndsets);
		if (!rc)
			rc = check_group(v, &g);
		if (!rc)
			rc = write_group(v, &g);
		free_dsets(g.dsets, g.ndsets);
		free(g.files);
	}
	for (size_t p = 0; p < groups.n; p++)
		free(groups.paths[p]);
	free(groups.paths);
	return rc ? rc : root_attrs(v);
}

static int make_master(struct vds *v)
{
	char *copy = strdup(v->output), *copy2 = strdup(v->output);
	if (copy && copy2)
		snprintf(v->part, sizeof(v->part), "%s/.%s.part", dirname(copy), basename(copy2));
	free(copy);
	free(copy2);
	if (!v->part[0])
		return -ENOMEM;
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	/* virtual datasets need the 1.10 format; nothing newer, so that every
	 * reader of 1.10 and later opens it */
	H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
	v->out = H5Fcreate(v->part, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	H5Pclose(fapl);
	if (v->out < 0) {
		fprintf(stderr, "h5rec vds: cannot create %s\n", v->part);
		return -EIO;
	}
	int rc = build(v);
	if (H5Fclose(v->out) < 0 && !rc)
		rc = -EIO;
	if (!rc)
		rc = mark_monotonic(v);
	if (!rc && rename(v->part, v->output) < 0) {
		fprintf(stderr, "h5rec vds: %s: %s\n", v->output, strerror(errno));
		rc = -errno;
	}
	if (rc)
		unlink(v->part);
	return rc;
}

static int out_dir(const char *output, char *dir)
{
	char *copy = strdup(output);
	if (!copy)
		return -ENOMEM;
	int rc = realpath(dirname(copy), dir) ? 0 : -errno;
	if (rc)
		fprintf(stderr, "h5rec vds: %s: directory of the master: %s\n", output, strerror(-rc));
	free(copy);
	return rc;
}

int cli_vds(int argc, char **argv)
{
	static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {0}};
	struct vds v = {.out = H5I_INVALID_HID};
	char dir[PATH_MAX];
	int opt;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'h': cli_vds_usage(stdout); return 0;
		default: cli_vds_usage(stderr); return 2;
		}
	}
	if (argc - optind < 2)
		return cli_usage_error("vds", "give OUTPUT and the files (or a directory) to join");
	v.output = argv[optind];
	if (out_dir(v.output, dir))
		return 1;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	int rc = 0;
	for (int i = optind + 1; !rc && i < argc; i++) {
		struct stat st;
		rc = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? add_dir(&v, argv[i])
								      : add_input(&v, argv[i]);
	}
	if (!rc)
		rc = open_inputs(&v, dir);
	if (!rc && !v.nin) {
		fprintf(stderr, "h5rec vds: no h5rec files to join\n");
		rc = -ENOENT;
	}
	if (!rc)
		rc = check_schemas(&v);
	if (!rc)
		rc = make_master(&v);
	if (!rc) {
		printf("%s: %zu file%s, %llu rows (time axes and frames)", v.output, v.nin,
		       v.nin == 1 ? "" : "s", (unsigned long long)v.rows);
		if (v.provenance)
			printf(", %llu duplicate rows left out\n", (unsigned long long)v.dropped);
		else
			printf("; no provenance columns (files not from a broker): concatenated, "
			       "duplicates not looked for\n");
	}
	for (size_t i = 0; i < v.nin; i++) {
		if (v.in[i].id >= 0)
			H5Fclose(v.in[i].id);
		free(v.in[i].path);
		free(v.in[i].rel);
	}
	free(v.in);
	return rc ? 1 : 0;
}
