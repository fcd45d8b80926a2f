/*
 * h5w_file.c - the current output file: naming, creation, SWMR, flush and
 * fsync, closing and rolling.
 *
 * Naming (SPEC §4.5): the output.file template is expanded with {name},
 * {date} (YYYYMMDD, UTC), {time} (HHMMSS, UTC), {seq} (4 digits, zero-padded),
 * {run}, and, for the family driver, {member} becomes "%d", the printf
 * pattern HDF5's family driver expands to the member number (a literal '%'
 * elsewhere in the name is doubled). An existing file is never overwritten:
 * the next {seq} is tried (the schema requires {seq} in the template).
 * H5F_ACC_EXCL backs the check against races.
 *
 * SWMR (sec2 only): right after creation (root attributes written) the file
 * is switched to SWMR-write mode, so readers can follow it and a killed
 * writer leaves a consistent file: out of that mode HDF5 writes metadata in
 * no particular order. HDF5 1.10 cannot create objects in SWMR-write mode,
 * so groups are created at flushes: the file is closed and reopened
 * normally (h5w_file_define), every group that appeared since the last
 * flush is created, and SWMR-write mode is restarted (h5w_file_swmr). The
 * non-SWMR windows are those few milliseconds. Dataset ids are closed around
 * both transitions and reopened lazily.
 *
 * Flush is the durability point (SPEC §6): every changed chunk is stored
 * (partial ones padded, extents exact), H5Fflush, then fsync of the file's
 * descriptor(s), because HDF5 itself never calls fsync.
 *
 * Caller thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5w_internal.h"

#define MEMBER_MARK "\x01"

int64_t h5w_roll_boundary(int64_t now, int64_t every)
{
	int64_t q = now / every;
	if (now % every < 0)
		q--;
	return q * every;
}

static bool family(const struct h5w *w)
{
	return w->schema->output.driver == SCHEMA_DRIVER_FAMILY;
}

static bool swmr_wanted(const struct h5w *w)
{
	return w->schema->output.swmr && !family(w);
}

static int mkdirs(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0777) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0777) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Expand the template for sequence number SEQ. */
static int expand_name(struct h5w *w, unsigned seq, char *out, size_t len)
{
	const struct schema_output *o = &w->schema->output;
	char date[16], tod[16], seqtext[16], name[2048], fixed[4096];
	time_t secs = (time_t)(w->now / 1000000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	strftime(tod, sizeof(tod), "%H%M%S", &tm);
	snprintf(seqtext, sizeof(seqtext), "%04u", seq);
	const char *names[] = {"name", "date", "time", "seq", "run", "member"};
	const char *values[] = {w->schema->name, date, tod, seqtext, w->run ? w->run : "",
				family(w) ? MEMBER_MARK : "0"};
	long n = schema_template_expand(&o->file, names, values, 6, name, sizeof(name));
	if (n < 0)
		return (int)n;
	size_t j = 0;
	for (const char *p = name; *p && j + 3 < sizeof(fixed); p++) {
		if (*p == '%' && family(w)) {
			fixed[j++] = '%';
			fixed[j++] = '%';
		} else if (*p == MEMBER_MARK[0]) {
			fixed[j++] = '%';
			fixed[j++] = 'd';
		} else {
			fixed[j++] = *p;
		}
	}
	fixed[j] = '\0';
	int len_written = snprintf(out, len, "%s/%s", o->directory ? o->directory : ".", fixed);
	return len_written < 0 || (size_t)len_written >= len ? -ENAMETOOLONG : 0;
}

static bool name_taken(const struct h5w *w, const char *name)
{
	char first[4096];
	if (family(w)) {
		snprintf(first, sizeof(first), name, 0);
		name = first;
	}
	return access(name, F_OK) == 0;
}

static hid_t make_fapl(const struct h5w *w)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	if (fapl < 0)
		return fapl;
	if (H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0 ||
	    (family(w) &&
	     H5Pset_fapl_family(fapl, (hsize_t)w->schema->output.member_size, H5P_DEFAULT) < 0)) {
		H5Pclose(fapl);
		return H5I_INVALID_HID;
	}
	return fapl;
}

static int create_file(struct h5w *w, struct h5w_error *err)
{
	const struct schema_output *o = &w->schema->output;
	int rc = mkdirs(o->directory ? o->directory : ".");
	if (rc) {
		h5w_err(w, err, "creating directory %s: %s", o->directory, strerror(-rc));
		return rc;
	}
	hid_t fapl = make_fapl(w);
	if (fapl < 0)
		return h5w_err_hdf5(w, err, "file access properties");
	/* the schema loader makes sure the template has {seq} */
	for (unsigned attempt = 0; attempt < 100000; attempt++) {
		unsigned seq = w->seq + attempt;
		rc = expand_name(w, seq, w->file_name, sizeof(w->file_name));
		if (rc) {
			h5w_err(w, err, "expanding file name template %s: %s", o->file.text,
				strerror(-rc));
			break;
		}
		if (name_taken(w, w->file_name))
			continue;
		w->file = H5Fcreate(w->file_name, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
		if (w->file >= 0) {
			w->file_seq = seq;
			w->seq = seq + 1;
			break;
		}
		w->file = H5I_INVALID_HID;
		if (!name_taken(w, w->file_name)) {
			rc = h5w_err_hdf5(w, err, "%s: creating file", w->file_name);
			break;
		}
		H5Eclear2(H5E_DEFAULT);
	}
	H5Pclose(fapl);
	if (!rc && w->file < 0) {
		h5w_err(w, err, "no free file name for template %s", o->file.text);
		rc = -EEXIST;
	}
	return rc;
}

/* Make sure a file is open, creating the next one if needed. */
int h5w_file_ensure(struct h5w *w, struct h5w_error *err)
{
	if (w->file != H5I_INVALID_HID)
		return 0;
	int rc = h5w_space_check(w, 0, false);
	if (rc) {
		h5w_err(w, err, "not starting a new file: %s (%s)", strerror(-rc), w->space_why);
		return rc;
	}
	w->gen++;
	w->file_created = w->now;
	rc = create_file(w, err);
	if (rc)
		return rc;
	w->swmr_active = false;
	w->npending = 0;
	w->file_bytes = 0;
	w->file_rows = 0;
	w->dirty = false;
	w->last_flush = w->now;
	int64_t every = w->schema->output.roll_every_ns;
	w->roll_period_end = every > 0 ? h5w_roll_boundary(w->now, every) + every : 0;
	rc = h5w_root_attrs(w, err);
	/* SWMR-write mode at once: outside it HDF5 writes metadata in no
	 * particular order, and a writer killed then can leave a file whose root
	 * group is not even on disk. Groups are created at flushes from now on. */
	if (!rc)
		rc = h5w_file_swmr(w, err);
	if (rc)
		return rc;
	snprintf(w->stats.file_name, sizeof(w->stats.file_name), "%s", w->file_name);
	return 0;
}

static void close_datasets(struct h5w *w)
{
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		for (size_t j = 0; j < g->ndsets; j++) {
			if (g->dsets[j].id != H5I_INVALID_HID)
				H5Dclose(g->dsets[j].id);
			g->dsets[j].id = H5I_INVALID_HID;
		}
	}
}

/* Leave SWMR-write mode so objects can be created: close and reopen. */
int h5w_file_define(struct h5w *w, struct h5w_error *err)
{
	if (!w->swmr_active)
		return 0;
	int rc = h5w_chunks_reap(w, true, err);
	if (rc)
		return rc;
	close_datasets(w);
	if (H5Fclose(w->file) < 0) {
		w->file = H5I_INVALID_HID;
		return h5w_err_hdf5(w, err, "%s: closing to create objects", w->file_name);
	}
	w->swmr_active = false;
	/* SWMR readers hold a shared lock that would make this open fail; the
	 * engine already owns the file (it created it with an exclusive lock
	 * and H5F_ACC_EXCL), so the reopen goes without locking. Readers that
	 * try to open during the short window see the file open for writing
	 * without SWMR and retry. */
	hid_t fapl = make_fapl(w);
	if (fapl >= 0)
		H5Pset_file_locking(fapl, false, true);
	w->file = H5Fopen(w->file_name, H5F_ACC_RDWR, fapl);
	if (w->file < 0) {
		w->file = H5I_INVALID_HID;
		rc = h5w_err_hdf5(w, err, "%s: reopening to create objects", w->file_name);
	}
	H5Pclose(fapl);
	return rc;
}

/* Enter SWMR-write mode (if the schema wants it and it is not on). */
int h5w_file_swmr(struct h5w *w, struct h5w_error *err)
{
	if (w->swmr_active || !swmr_wanted(w))
		return 0;
	close_datasets(w);
	if (H5Fstart_swmr_write(w->file) < 0)
		return h5w_err_hdf5(w, err, "%s: starting SWMR write", w->file_name);
	w->swmr_active = true;
	return 0;
}

static int fsync_fd_of(struct h5w *w, hsize_t offset, struct h5w_error *err)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	void *handle = NULL;
	int rc = 0;
	if (family(w))
		H5Pset_family_offset(fapl, offset);
	if (H5Fget_vfd_handle(w->file, fapl, &handle) < 0 || !handle) {
		rc = h5w_err_hdf5(w, err, "%s: getting the file descriptor", w->file_name);
	} else if (fsync(*(int *)handle)) {
		rc = -errno;
		h5w_err(w, err, "%s: fsync: %s", w->file_name, strerror(errno));
	}
	H5Pclose(fapl);
	return rc;
}

static int fsync_file(struct h5w *w, struct h5w_error *err)
{
	if (!family(w))
		return fsync_fd_of(w, 0, err);
	hsize_t size = 0, member = w->schema->output.member_size;
	if (H5Fget_filesize(w->file, &size) < 0)
		return h5w_err_hdf5(w, err, "%s: getting the file size", w->file_name);
	for (hsize_t off = 0; off < size; off += member) {
		int rc = fsync_fd_of(w, off, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* Create the groups marked by h5w_group_ready, all in one reopen, restart
 * SWMR-write mode, and store the whole chunks they gathered meanwhile. */
int h5w_file_create_pending(struct h5w *w, struct h5w_error *err)
{
	if (!w->npending)
		return 0;
	int rc = h5w_space_check(w, 0, false);
	if (rc) {
		h5w_err(w, err, "%s: creating groups put off: %s (%s)", w->file_name,
			strerror(-rc), w->space_why);
		return rc;
	}
	rc = h5w_file_define(w, err);
	for (size_t i = 0; !rc && i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (g->pending_gen == w->gen && g->created_gen != w->gen)
			rc = h5w_layout_create(w, g, err);
	}
	if (rc)
		return rc; /* the groups not created stay marked */
	w->npending = 0;
	rc = h5w_file_swmr(w, err);
	for (size_t i = 0; !rc && i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (g->pending_gen != w->gen || g->created_gen != w->gen)
			continue;
		if (g->stream->layout == SCHEMA_LAYOUT_RECORDS) {
			rc = h5w_records_seal(w, g, err);
		} else {
			for (size_t j = 0; !rc && j < g->ndsets; j++)
				rc = h5w_dset_seal(w, &g->dsets[j], g->dsets[j].nrows, err);
		}
	}
	return rc;
}

/* After a flush that stored everything: give back the memory of whole
 * chunks that are final (sealing them costs no write, they are stored), so
 * that chunks kept through a full disk do not hold the buffer once it is
 * over. */
static void release_stored(struct h5w *w)
{
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (g->created_gen != w->gen)
			continue;
		if (g->stream->layout == SCHEMA_LAYOUT_RECORDS) {
			h5w_records_seal(w, g, NULL);
			continue;
		}
		for (size_t j = 0; j < g->ndsets; j++)
			h5w_dset_seal(w, &g->dsets[j], g->dsets[j].nrows, NULL);
	}
}

/* The frame index of a stream channel is stored only as far as the samples
 * of its frames are (after the samples' chunks were stored): an index row
 * must never point at samples that are not in the file. When a samples
 * chunk could not be written, the index rows of the frames before it are
 * stored, the others wait in memory with it. */
static int flush_frame_index(struct h5w *w, struct h5w_error *err)
{
	int first = 0;
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (g->created_gen != w->gen || g->stream->layout != SCHEMA_LAYOUT_STREAM)
			continue;
		for (size_t c = 0; c < g->stream->nchannels; c++) {
			uint64_t upto = UINT64_MAX; /* every row */
			if (!h5w_dset_stored(&g->dsets[g->chan_ds[c]]))
				upto = h5w_frames_stored(g, c);
			size_t index[3] = {g->chan_time_ds[c], g->frame_start_ds[c],
					   g->frame_seq_ds[c]};
			for (size_t k = 0; k < 3; k++) {
				int rc = h5w_dset_flush_upto(w, &g->dsets[index[k]], upto,
							     first ? NULL : err);
				if (rc && !first)
					first = rc;
			}
		}
	}
	int rc = h5w_chunks_reap(w, true, first ? NULL : err);
	return first ? first : rc;
}

/* Store every changed chunk of every group in the file, then H5Fflush and
 * fsync. Returns the first error; it keeps going so that as much as
 * possible is durable. */
int h5w_file_flush(struct h5w *w, struct h5w_error *err)
{
	int first = 0, rc;
	if (w->file == H5I_INVALID_HID)
		return 0;
	/* HDF5 writes metadata below (new groups, extents, H5Fflush): not into
	 * a full disk, where a failed metadata write can break the file. */
	rc = h5w_space_check(w, 0, false);
	if (rc) {
		h5w_err(w, err, "%s: flush put off: %s (%s)", w->file_name, strerror(-rc),
			w->space_why);
		w->store_failed = true;
		return rc;
	}
	first = h5w_file_create_pending(w, err);
	w->store_failed = false; /* retry every chunk kept after a failed write */
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (g->created_gen != w->gen)
			continue;
		if (g->stream->layout == SCHEMA_LAYOUT_RECORDS) {
			rc = h5w_records_pad(w, g, first ? NULL : err);
			if (rc && !first)
				first = rc;
		}
		for (size_t j = 0; j < g->ndsets; j++) {
			if (g->dsets[j].frame_index)
				continue;
			rc = h5w_dset_flush(w, &g->dsets[j], first ? NULL : err);
			if (rc && !first)
				first = rc;
		}
	}
	rc = h5w_chunks_reap(w, true, first ? NULL : err);
	if (rc && !first)
		first = rc;
	rc = flush_frame_index(w, first ? NULL : err);
	if (rc && !first)
		first = rc;
	rc = h5w_file_swmr(w, first ? NULL : err);
	if (rc && !first)
		first = rc;
	if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) {
		rc = h5w_err_hdf5(w, first ? NULL : err, "%s: H5Fflush", w->file_name);
		if (!first)
			first = rc;
	}
	rc = fsync_file(w, first ? NULL : err);
	if (rc && !first)
		first = rc;
	/* what is free now is asked again at the next chunk write: a budget
	 * from before the flush lives at most one flush period */
	h5w_space_recheck(w);
	if (!first) {
		w->last_flush = w->now;
		w->stats.last_flush = w->now;
		w->stats.full = false;
		w->stats.full_reason[0] = '\0';
		w->dirty = false;
		release_stored(w);
	}
	return first;
}

static void fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Close the current file: write everything, final attributes, close, fsync.
 * Whatever happens, the engine forgets the file afterwards, so the next data
 * goes to a new file. */
int h5w_file_close(struct h5w *w, struct h5w_error *err)
{
	int first = 0, rc;
	if (w->file == H5I_INVALID_HID)
		return 0;
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (h5w_in_file(w, g) && g->stream->layout == SCHEMA_LAYOUT_RECORDS) {
			rc = h5w_records_expire(w, g, true, first ? NULL : err);
			if (rc && !first)
				first = rc;
		}
	}
	rc = h5w_file_flush(w, first ? NULL : err);
	if (rc && !first)
		first = rc;
	/* final attributes are new objects: leave SWMR-write mode for them */
	rc = h5w_file_define(w, first ? NULL : err);
	if (rc && !first)
		first = rc;
	for (size_t i = 0; w->file != H5I_INVALID_HID && i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (g->created_gen != w->gen)
			continue;
		rc = h5w_layout_finish(w, g, first ? NULL : err);
		if (rc && !first)
			first = rc;
	}
	h5w_chunks_reap(w, true, NULL);
	close_datasets(w);
	if (w->file != H5I_INVALID_HID && H5Fclose(w->file) < 0) {
		rc = h5w_err_hdf5(w, first ? NULL : err, "%s: closing", w->file_name);
		if (!first)
			first = rc;
	}
	w->file = H5I_INVALID_HID;
	w->swmr_active = false;
	if (family(w)) {
		char member[4096];
		for (int m = 0;; m++) {
			snprintf(member, sizeof(member), w->file_name, m);
			if (access(member, F_OK))
				break;
			fsync_path(member);
		}
	} else {
		fsync_path(w->file_name);
	}
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		for (size_t j = 0; j < g->ndsets; j++)
			h5w_dset_reset(w, &g->dsets[j]);
		h5w_records_free(g);
	}
	w->store_failed = false;
	w->stats.full = false; /* what was held is gone with the file */
	w->stats.full_reason[0] = '\0';
	w->stats.files_closed++;
	return first;
}
