/*
 * h5w_file.c - the current output file: naming, creation, SWMR, flush and
 * fsync, closing and rolling; and the ids of its open datasets.
 *
 * Naming (SPEC §4.5): the output.file template is expanded with {name},
 * {date} (YYYYMMDD, UTC), {time} (HHMMSS, UTC), {seq} (4 digits, zero-padded),
 * {run}, and, for the family driver, {member} becomes "%d", the printf
 * pattern HDF5's family driver expands to the member number (a literal '%'
 * elsewhere in the name is doubled). An existing file is never overwritten:
 * the next {seq} is tried (the schema requires {seq} in the template).
 *
 * A file appears under its name complete (sec2): it is created as
 * ".NAME.part" beside it, given its root attributes and first groups (and,
 * under SWMR, switched to SWMR-write mode), fsync'd, renamed to NAME
 * without replacing anything (renameat2 RENAME_NOREPLACE), and the
 * directory is fsync'd. A recorder killed while building a file leaves at
 * most a ".part" file that never held acknowledged data; it is removed when
 * that name is next built.
 *
 * SWMR (sec2 only). Out of SWMR-write mode HDF5 writes metadata in no
 * particular order: a writer killed while it changes the structure of a
 * file that already holds data can leave that data unreadable (the root
 * group's link storage rewritten halfway). In SWMR-write mode every write
 * is ordered so that the file on disk is consistent after each one, but
 * HDF5 1.10 cannot create objects in it. So a file's structure is fixed
 * before it holds anything: every group it will have is created before
 * SWMR-write mode starts, and it never leaves that mode again (final
 * attributes exist from creation and only their values are written). A
 * group that first has data while the file is live is `pending`: its data
 * waits in memory, and the next flush (or more than H5W_PENDING_BYTES of
 * waiting data) closes the file and starts the next one with the pending
 * groups and every group that had data in the closed one (`carry`), so
 * that a steady network does not start a file per station. Thousands of
 * groups appearing at once cost one new file, not thousands of reopens;
 * groups that trickle in cost one file per flush that sees new ones.
 *
 * Without SWMR (swmr: false, or the family driver) groups are created in
 * the live file on their first data; such files are not crash-safe.
 *
 * Flush is the durability point (SPEC §6): every changed chunk is stored
 * (partial ones padded, extents exact), H5Fflush, then fsync of the file's
 * descriptor(s), because HDF5 itself never calls fsync. Every fsync's
 * result is checked. HDF5 1.10's H5Fflush takes time quadratic in the
 * dirty metadata entries of a SWMR file (its pass over them restarts
 * whenever flushing one dirties another): 50,000 datasets written at once
 * took 51 s in one H5Fflush and 4.5 s in H5Fflush calls every 500. So the
 * metadata is flushed every H5W_FLUSH_EVERY chunk writes as well; the
 * durability point is still the final H5Fflush and fsync. But every
 * H5Fflush also walks HDF5's whole metadata cache (H5C_set_slist_enabled,
 * 25,000 entries for 500 stations) and every open dataset: a flush that
 * writes at most 2 * H5W_FLUSH_EVERY chunks (a steady network's partial
 * chunks) makes only the final one.
 *
 * Open datasets: an open dataset id costs HDF5 about 20 kB (object header,
 * layout, property lists) and every H5Fflush visits each, but opening one
 * again costs far more than writing a partial chunk, so at most
 * H5W_OPEN_DATASETS are kept open (see h5w_dset_adopt for which goes); the
 * chunk cache of each is off (the engine writes whole chunks itself).
 *
 * Caller thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
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

static const char *output_dir(const struct h5w *w)
{
	return w->schema->output.directory ? w->schema->output.directory : ".";
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

/* ---- open datasets ------------------------------------------------------ */

static void lru_unlink(struct h5w *w, struct h5w_dset *ds)
{
	if (ds->lru_prev)
		ds->lru_prev->lru_next = ds->lru_next;
	else
		w->lru_head = ds->lru_next;
	if (ds->lru_next)
		ds->lru_next->lru_prev = ds->lru_prev;
	else
		w->lru_tail = ds->lru_prev;
	ds->lru_prev = ds->lru_next = NULL;
}

static void lru_push(struct h5w *w, struct h5w_dset *ds)
{
	ds->lru_prev = NULL;
	ds->lru_next = w->lru_head;
	if (w->lru_head)
		w->lru_head->lru_prev = ds;
	else
		w->lru_tail = ds;
	w->lru_head = ds;
}

/* Close DS's id, if it is open. */
void h5w_dset_forget(struct h5w *w, struct h5w_dset *ds)
{
	if (ds->id == H5I_INVALID_HID)
		return;
	lru_unlink(w, ds);
	w->nopen--;
	H5Dclose(ds->id);
	ds->id = H5I_INVALID_HID;
}

void h5w_datasets_close(struct h5w *w)
{
	while (w->lru_head)
		h5w_dset_forget(w, w->lru_head);
}

/* The access properties of DS: whole chunks are written directly, so
 * HDF5's chunk cache would only hold memory. Variable-length strings go
 * through H5Dwrite and keep HDF5's default one. */
hid_t h5w_dset_dapl(struct h5w *w, const struct h5w_dset *ds)
{
	if (ds->codec == H5W_CODEC_PIPELINE)
		return H5P_DEFAULT;
	if (w->dapl_nocache == H5I_INVALID_HID) {
		hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
		if (dapl < 0 || H5Pset_chunk_cache(dapl, 0, 0, 1.0) < 0) {
			if (dapl >= 0)
				H5Pclose(dapl);
			H5Eclear2(H5E_DEFAULT);
			return H5P_DEFAULT;
		}
		w->dapl_nocache = dapl;
	}
	return w->dapl_nocache;
}

/*
 * Keep ID, the open id of DS, as DS's. Beyond H5W_OPEN_DATASETS one is
 * closed: the least recently used, unless it was used in this flush too.
 * A flush visits datasets in the same order every time, and when more of
 * them are busy than ids may be open, LRU would close each just before it
 * is needed again; closing one of the last used instead keeps most ids
 * open from one flush to the next. (The second last: the last may be in
 * use with DS, a scale being attached to it.)
 */
void h5w_dset_adopt(struct h5w *w, struct h5w_dset *ds, hid_t id)
{
	h5w_dset_forget(w, ds);
	if (w->nopen >= H5W_OPEN_DATASETS) {
		struct h5w_dset *victim = w->lru_tail;
		if (victim->used_flush == w->flushes && w->lru_head->lru_next)
			victim = w->lru_head->lru_next;
		h5w_dset_forget(w, victim);
	}
	ds->id = id;
	ds->used_flush = w->flushes;
	lru_push(w, ds);
	w->nopen++;
}

/* DS's id, opened if need be. Valid until the next h5w_dset_open or
 * h5w_dset_adopt of another dataset (which may close it). */
int h5w_dset_open(struct h5w *w, struct h5w_dset *ds, struct h5w_error *err)
{
	char path[700];
	if (ds->id != H5I_INVALID_HID) {
		ds->used_flush = w->flushes;
		if (w->lru_head != ds) {
			lru_unlink(w, ds);
			lru_push(w, ds);
		}
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s", ds->group->path, ds->name);
	hid_t id = H5Dopen2(w->file, path, h5w_dset_dapl(w, ds));
	if (id < 0)
		return h5w_err_hdf5(w, err, "%s: opening dataset %s", w->file_name, path);
	h5w_dset_adopt(w, ds, id);
	return 0;
}

/* ---- creating and publishing a file ------------------------------------- */

/* Expand the template for sequence number SEQ (and w->file_created). */
static int expand_name(struct h5w *w, unsigned seq, char *out, size_t len)
{
	const struct schema_output *o = &w->schema->output;
	char date[16], tod[16], seqtext[16], name[2048], fixed[4096];
	time_t secs = (time_t)(h5w_roll_boundary(w->file_created, 1000000000) / 1000000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	strftime(tod, sizeof(tod), "%H%M%S", &tm);
	snprintf(seqtext, sizeof(seqtext), "%04u", seq);
	/* {host}: recorders that share a directory (several on one consumer
	 * of a broker, docs/scale-out.md) write apart */
	const char *names[] = {"name", "host", "shard", "date", "time", "seq", "run", "member"};
	const char *values[] = {w->schema->name, w->host ? w->host : "", w->shard ? w->shard : "",
				date, tod, seqtext, w->run ? w->run : "",
				family(w) ? MEMBER_MARK : "0"};
	long n = schema_template_expand(&o->file, names, values, 8, name, sizeof(name));
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
	int len_written = snprintf(out, len, "%s/%s", output_dir(w), fixed);
	return len_written < 0 || (size_t)len_written >= len ? -ENAMETOOLONG : 0;
}

/* ".NAME.part" beside NAME: where a sec2 file is built. */
static int part_name(const char *name, char *out, size_t len)
{
	const char *slash = strrchr(name, '/');
	int n = slash ? snprintf(out, len, "%.*s/.%s.part", (int)(slash - name), name, slash + 1)
		      : snprintf(out, len, ".%s.part", name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * Family: the name of a member of PATTERN (its one %d) that exists, if
 * any. Any member counts, not only the first: a later one left behind
 * (the first removed by hand, say) would make HDF5 fail the file's writes
 * once it grows into that member, and would be overwritten.
 */
static bool family_member_exists(const char *pattern, char *found, size_t len)
{
	const char *base = strrchr(pattern, '/');
	base = base ? base + 1 : pattern;
	const char *d = strstr(base, "%d");
	if (!d)
		return false;
	char dir[4096];
	if (base == pattern)
		snprintf(dir, sizeof(dir), ".");
	else if (base == pattern + 1)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(base - pattern - 1), pattern);
	size_t pre = (size_t)(d - base);
	const char *suffix = d + 2;
	size_t suf = strlen(suffix);
	DIR *dp = opendir(dir);
	if (!dp)
		return false;
	bool exists = false;
	struct dirent *e;
	while (!exists && (e = readdir(dp)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n <= pre + suf || strncmp(e->d_name, base, pre) != 0 ||
		    strcmp(e->d_name + n - suf, suffix) != 0)
			continue;
		exists = true;
		for (size_t i = pre; i < n - suf; i++)
			exists = exists && e->d_name[i] >= '0' && e->d_name[i] <= '9';
		if (exists)
			snprintf(found, len, "%s/%s", dir, e->d_name);
	}
	closedir(dp);
	return exists;
}

/* Is NAME (a family: any member of it) there already? Never overwritten. */
static bool name_taken(struct h5w *w, const char *name)
{
	if (!family(w))
		return access(name, F_OK) == 0;
	char member[4096 + 256];
	if (!family_member_exists(name, member, sizeof(member)))
		return false;
	h5w_err(w, NULL, "%s: %s of an earlier file is there; skipping to the next {seq}", name,
		member);
	return true;
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

/* Create the next file: w->file_name is its name, w->part_name where it is
 * built (sec2; empty for family, which HDF5 names itself). */
static int create_file(struct h5w *w, struct h5w_error *err)
{
	const struct schema_output *o = &w->schema->output;
	int rc = mkdirs(output_dir(w));
	if (rc) {
		h5w_err(w, err, "creating directory %s: %s", output_dir(w), strerror(-rc));
		return rc;
	}
	hid_t fapl = make_fapl(w);
	if (fapl < 0)
		return h5w_err_hdf5(w, err, "file access properties");
	/* the schema loader makes sure the template has {seq} */
	for (unsigned attempt = 0; attempt < 100000; attempt++) {
		unsigned seq = w->seq + attempt;
		rc = expand_name(w, seq, w->file_name, sizeof(w->file_name));
		if (!rc && !family(w))
			rc = part_name(w->file_name, w->part_name, sizeof(w->part_name));
		if (rc) {
			h5w_err(w, err, "expanding file name template %s: %s", o->file.text,
				strerror(-rc));
			break;
		}
		if (name_taken(w, w->file_name))
			continue;
		const char *path = w->file_name;
		if (!family(w)) {
			path = w->part_name;
			unlink(path); /* left by a recorder killed while building it */
		}
		w->file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
		if (w->file >= 0) {
			w->file_seq = seq;
			w->seq = seq + 1;
			break;
		}
		w->file = H5I_INVALID_HID;
		if (!name_taken(w, path)) {
			rc = h5w_err_hdf5(w, err, "%s: creating file", path);
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

static int fsync_dir(struct h5w *w, struct h5w_error *err)
{
	int fd = open(output_dir(w), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0 || fsync(fd))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc)
		h5w_err(w, err, "%s: fsync of the directory: %s", output_dir(w), strerror(-rc));
	return rc;
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

/* Give the built file its name (sec2): fsync'd first, never replacing a
 * file that appeared meanwhile, then the directory fsync'd. */
static int publish_file(struct h5w *w, struct h5w_error *err)
{
	if (family(w))
		return 0;
	if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
		return h5w_err_hdf5(w, err, "%s: H5Fflush", w->part_name);
	int rc = fsync_file(w, err);
	if (rc)
		return rc;
	if (renameat2(AT_FDCWD, w->part_name, AT_FDCWD, w->file_name, RENAME_NOREPLACE)) {
		/* a file system without RENAME_NOREPLACE: link() never replaces */
		if (errno != EINVAL || link(w->part_name, w->file_name)) {
			rc = -errno;
			h5w_err(w, err, "%s: naming the new file %s: %s", w->part_name,
				w->file_name, strerror(errno));
			return rc;
		}
		unlink(w->part_name);
	}
	w->part_name[0] = '\0';
	return fsync_dir(w, err);
}

/* Files HDF5 could not close (h5w_unclosed_files()). Every engine's files
 * count: HDF5's exit handler sees them all. */
static _Atomic unsigned long unclosed_files;

unsigned long h5w_unclosed_files(void)
{
	return unclosed_files;
}

/* H5Fclose(w->file); false (and counted) when HDF5 could not close it */
static bool close_hdf5_file(struct h5w *w)
{
	if (H5Fclose(w->file) >= 0)
		return true;
	H5Eclear2(H5E_DEFAULT);
	unclosed_files++;
	return false;
}

/* A file that could not be built: closed and removed (it holds nothing
 * acknowledged); the groups stay pending for the next attempt, their
 * chunks (still all in memory) to be written again. */
static void abandon_file(struct h5w *w)
{
	h5w_chunks_reap(w, true, NULL);
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (h5w_in_current(w, g))
			for (size_t j = 0; j < g->ndsets; j++)
				h5w_dset_unstore(&g->dsets[j]);
	}
	h5w_datasets_close(w);
	close_hdf5_file(w);
	H5Eclear2(H5E_DEFAULT);
	w->file = H5I_INVALID_HID;
	w->swmr_active = false;
	w->store_failed = w->hdf5_failed = false;
	if (w->part_name[0])
		unlink(w->part_name);
	w->part_name[0] = '\0';
}

/* ---- storing ------------------------------------------------------------- */

/* After a flush that stored everything: give back the memory of whole
 * chunks that are final (sealing them costs no write, they are stored), so
 * that chunks kept through a full disk do not hold the buffer once it is
 * over. */
static void release_stored(struct h5w *w)
{
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (!h5w_in_current(w, g))
			continue;
		if (g->stream->layout == SCHEMA_LAYOUT_RECORDS) {
			h5w_records_seal(w, g, NULL);
			continue;
		}
		for (size_t j = 0; j < g->ndsets; j++)
			if (!g->dsets[j].event_table)
				h5w_dset_seal(w, &g->dsets[j], g->dsets[j].nrows, NULL);
		if (g->stream->events)
			h5w_events_seal(w, g, NULL);
	}
}

/*
 * Forget the groups' part of the file just closed, drop their buffers and
 * records, and say which go into the next file under SWMR (carry): after a
 * roll, those that had data in the closed file (a station silent for a
 * whole file is left out); when the file was closed only to take new
 * groups (w->switching), all of its groups. Else every new station would
 * start a file with only the stations heard from in the last one, and
 * stations reporting less often than the flush would start a new file at
 * every flush.
 */
static void forget_file(struct h5w *w)
{
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (g->created_gen != w->gen) /* not in the file just closed */
			continue;
		g->carry = w->switching || g->data_gen == w->gen;
		for (size_t j = 0; j < g->ndsets; j++)
			h5w_dset_reset(w, &g->dsets[j]);
		h5w_records_free(w, g);
	}
	w->store_failed = w->hdf5_failed = false;
	w->stats.full = false; /* what was held is gone with the file */
	w->stats.full_reason[0] = '\0';
	w->stats.files_closed++;
}

/*
 * The file cannot be trusted past its last good flush, WHY: an fsync
 * failed (Linux may have dropped the pages it could not write, and a later
 * fsync that succeeds says nothing about them, as PostgreSQL and SQLite
 * treat it), or HDF5 failed a write (its view of the file is in doubt
 * after an I/O error). So the file ends here: it is closed as it is,
 * nothing written since its last good flush can be vouched for, and what
 * the engine holds of it is dropped too (counted in stats.losses, so that
 * the caller ACKs none of it). The next data starts a new file.
 */
static void end_file(struct h5w *w, const char *why, const char *detail,
		     struct h5w_error *err)
{
	char cause[sizeof(err->message)] = "";
	if (detail) /* the failure itself (may be ERR's message), said with the end */
		snprintf(cause, sizeof(cause), " (%s)", detail);
	h5w_chunks_reap(w, true, NULL);
	h5w_datasets_close(w);
	/* HDF5 writes its metadata at the close, which may fail the same way
	 * (a file-size limit): then the file keeps its open-for-writing mark */
	const char *unclosed = "";
	if (!close_hdf5_file(w)) {
		unclosed = ". It could not be closed: it stays marked as open for writing "
			   "(h5clear -s --increment makes it readable)";
		if (!w->unclosed[0])
			snprintf(w->unclosed, sizeof(w->unclosed), "%s", w->file_name);
	}
	w->file = H5I_INVALID_HID;
	w->swmr_active = false;
	w->stats.losses++;
	forget_file(w);
	h5w_err(w, err, "%s: %s: the file ends here, and what was written to it since its "
		"last flush may be lost%s%s", w->file_name, why, cause, unclosed);
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
		if (!h5w_in_current(w, g) || g->stream->layout != SCHEMA_LAYOUT_STREAM)
			continue;
		for (size_t c = 0; c < g->stream->nchannels; c++) {
			uint64_t upto = UINT64_MAX; /* every row */
			if (!h5w_dset_stored(&g->dsets[g->chan_ds[c]]))
				upto = h5w_frames_stored(g, c);
			size_t index[5] = {g->chan_time_ds[c], g->frame_start_ds[c],
					   g->frame_seq_ds[c], g->frame_origin_ds[c],
					   g->frame_origin_id_ds[c]};
			size_t nindex = w->schema->nsources ? 5 : 3; /* with provenance */
			for (size_t k = 0; k < nindex; k++) {
				int rc = h5w_dset_flush_upto(w, &g->dsets[index[k]], upto,
							     first ? NULL : err);
				if (rc && !first)
					first = rc;
			}
		}
		/* the event table likewise, as far as the samples of its rows */
		int rc = g->stream->events ? h5w_events_store(w, g, first ? NULL : err) : 0;
		if (rc && !first)
			first = rc;
	}
	int rc = h5w_chunks_reap(w, true, first ? NULL : err);
	return first ? first : rc;
}

/* Hand every changed chunk of G (but its frame index) to the file or the
 * pool; 0 or the first error. */
static int store_group(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	int first = 0, rc;
	if (g->stream->layout == SCHEMA_LAYOUT_RECORDS) {
		rc = h5w_records_pad(w, g, err);
		if (rc)
			first = rc;
	}
	for (size_t j = 0; j < g->ndsets; j++) {
		if (g->dsets[j].frame_index || g->dsets[j].event_table)
			continue;
		rc = h5w_dset_flush(w, &g->dsets[j], first ? NULL : err);
		if (rc && !first)
			first = rc;
	}
	return first;
}

/* Store every changed chunk of every group in the current file (partial
 * ones padded, extents exact) and the datasets' times. Returns the first
 * error; it keeps going so that as much as possible is stored. */
static int store_chunks(struct h5w *w, struct h5w_error *err)
{
	int first = 0, rc;
	w->flushes++;
	w->store_failed = false; /* retry every chunk kept after a failed write */
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (!h5w_in_current(w, g))
			continue;
		rc = store_group(w, g, first ? NULL : err);
		if (rc && !first)
			first = rc;
	}
	rc = h5w_chunks_reap(w, true, first ? NULL : err);
	if (rc && !first)
		first = rc;
	rc = flush_frame_index(w, first ? NULL : err);
	if (rc && !first)
		first = rc;
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (!h5w_in_current(w, g))
			continue;
		rc = h5w_layout_times(w, g, first ? NULL : err);
		if (rc && !first)
			first = rc;
	}
	return first;
}

/* The chunk buffers of the current file's groups that a flush writes now
 * (a stream's frame index counts as its samples do: roughly). */
static uint64_t chunks_to_store(const struct h5w *w)
{
	uint64_t n = 0;
	for (size_t i = 0; i < w->ngroups; i++) {
		const struct h5w_group *g = w->group_list[i];
		if (!h5w_in_current(w, g))
			continue;
		for (size_t j = 0; j < g->ndsets; j++)
			for (size_t b = 0; b < g->dsets[j].nbufs; b++)
				n += g->dsets[j].bufs[b].dirty_hi > g->dsets[j].bufs[b].dirty_lo;
	}
	return n;
}

/* Store every changed chunk of every group in the current file, then
 * H5Fflush and fsync. Returns the first error; it keeps going so that as
 * much as possible is durable. */
static int store_all(struct h5w *w, struct h5w_error *err)
{
	/* HDF5 writes metadata below (extents, H5Fflush): not into a full
	 * disk, where a failed metadata write can break the file. */
	if (w->hdf5_failed) { /* since the last flush: no more writes to it */
		end_file(w, "a write failed since its last flush", NULL, err);
		return -EIO;
	}
	int rc = h5w_space_check(w, 0, false);
	if (rc) {
		h5w_err(w, err, "%s: flush put off: %s (%s)", w->file_name, strerror(-rc),
			w->space_why);
		w->store_failed = true;
		return rc;
	}
	/* A flush that writes few chunks makes one H5Fflush, at its end: an
	 * intermediate one would cost a walk of HDF5's whole metadata cache
	 * for little dirty metadata (see h5w_file_wrote_chunk). */
	w->flush_every = chunks_to_store(w) > 2 * H5W_FLUSH_EVERY ? H5W_FLUSH_EVERY : UINT_MAX;
	w->encode_inline = true;
	int first = store_chunks(w, err);
	w->encode_inline = false;
	w->flush_every = H5W_FLUSH_EVERY;
	if (w->hdf5_failed) {
		end_file(w, "a write failed", first && err ? err->message : NULL, err);
		return -EIO;
	}
	w->stats.metadata_flushes++;
	if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) {
		rc = h5w_err_hdf5(w, first ? NULL : err, "%s: H5Fflush", w->file_name);
		if (!first)
			first = rc;
	}
	w->writes_unflushed = 0;
	hsize_t size = 0;
	if (H5Fget_filesize(w->file, &size) >= 0)
		w->stats.file_size = size;
	rc = fsync_file(w, first ? NULL : err);
	if (rc) {
		end_file(w, "fsync failed", first || !err ? NULL : err->message,
			 first ? NULL : err);
		return first ? first : rc;
	}
	/* what is free now is asked again at the next chunk write: a budget
	 * from before the flush lives at most one flush period */
	h5w_space_recheck(w);
	if (!first) {
		w->last_flush = w->now;
		w->stats.last_flush = w->now;
		w->stats.flushes++;
		w->stats.full = false;
		w->stats.full_reason[0] = '\0';
		w->dirty = false;
		release_stored(w);
	}
	return first;
}

/* Does G go into the file being started? */
static bool starts_with(const struct h5w *w, const struct h5w_group *g)
{
	return swmr_wanted(w) && (g->pending || g->carry);
}

/*
 * The next file could not be created, RC: the directory is not writable
 * (EACCES, EROFS), descriptors are exhausted (EMFILE, ENFILE), an I/O
 * error. Like a full disk, that passes, and nothing is to be lost to it:
 * what waits for the file stays in memory (stats.full, with the reason),
 * the senders are held back once it fills limits.max_buffer, and every
 * flush tries again. Only a file name template that yields no name is an
 * error of its own.
 */
static int creation_held(struct h5w *w, int rc, struct h5w_error *err)
{
	if (rc == -EEXIST || rc == -ENAMETOOLONG)
		return rc;
	if (!w->stats.full)
		snprintf(w->stats.full_reason, sizeof(w->stats.full_reason), "%s",
			 err ? err->message : w->stats.last_error);
	w->stats.full = true;
	return -EAGAIN;
}

/*
 * Start the next file: create it, write its root attributes and, under
 * SWMR, create every pending and carried-over group, store the pending
 * groups' data and enter SWMR-write mode; then give it its name. Returns
 * -ENOSPC or -EFBIG with the file started when data could not be stored
 * for want of space (it is held, as after any refused write), and -EAGAIN
 * when the file could not be created (creation_held: nothing started).
 */
static int open_file(struct h5w *w, struct h5w_error *err)
{
	int rc = h5w_space_check(w, 0, false);
	if (rc) {
		h5w_err(w, err, "not starting a new file: %s (%s)", strerror(-rc), w->space_why);
		return rc;
	}
	w->gen++;
	w->file_groups = 0;
	/* A file is named, and rolled, by when its first data arrived. */
	w->file_created = w->npending ? w->pending_since : w->now;
	rc = create_file(w, err);
	if (rc)
		return creation_held(w, rc, err);
	w->swmr_active = false;
	w->file_bytes = 0;
	w->file_rows = w->pending_rows;
	w->last_flush = w->now;
	int64_t every = w->schema->output.roll_every_ns;
	w->roll_period_end = every > 0 ? h5w_roll_boundary(w->file_created, every) + every : 0;
	rc = h5w_root_attrs(w, err);
	/* Each group's waiting data is written right after the group is
	 * created, while its dataset ids are open: still out of SWMR-write
	 * mode, where HDF5 flushes in one pass what SWMR's ordered flush takes
	 * quadratic time over. Whole chunks stay buffered until the file is
	 * published (h5w_file_start_pending seals them), so that an abandoned
	 * file loses nothing. */
	int held = 0; /* data refused for want of space, held in memory */
	for (size_t i = 0; !rc && i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (!starts_with(w, g))
			continue;
		rc = h5w_layout_create(w, g, err);
		if (!rc && g->pending && !held)
			rc = store_group(w, g, err);
		if (h5w_held(rc)) {
			held = rc;
			rc = 0;
		}
	}
	if (!rc && !held && swmr_wanted(w)) {
		rc = store_chunks(w, err);
		if (h5w_held(rc)) {
			held = rc;
			rc = 0;
		}
	}
	if (!rc && w->hdf5_failed)
		rc = held ? held : -EIO; /* built again from memory, next time */
	if (!rc && swmr_wanted(w)) {
		h5w_datasets_close(w);
		if (H5Fstart_swmr_write(w->file) < 0)
			rc = h5w_err_hdf5(w, err, "%s: starting SWMR write", w->file_name);
		else
			w->swmr_active = true;
	}
	if (!rc)
		rc = publish_file(w, err);
	if (rc) {
		abandon_file(w);
		return rc;
	}
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (g->pending) {
			g->data_gen = w->gen;
			w->file_groups++;
		}
		g->carry = false;
		g->pending = false;
	}
	w->npending = 0;
	w->pending_bytes = 0;
	w->pending_rows = 0;
	snprintf(w->stats.file_name, sizeof(w->stats.file_name), "%s", w->file_name);
	return held;
}

/*
 * Close the current file: store everything, close it, fsync it. Whatever
 * happens, the engine forgets the file afterwards, so the next data goes
 * to a new file; groups that had data in it are carried over into that
 * one (SWMR). Open records are closed first. Pending groups keep their
 * data for the next file.
 */
static int close_current(struct h5w *w, struct h5w_error *err)
{
	int first = 0, rc;
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (h5w_in_current(w, g) && h5w_has_events(g)) {
			rc = g->stream->layout == SCHEMA_LAYOUT_STREAM
				     ? h5w_events_expire(w, g, true, first ? NULL : err)
				     : h5w_records_expire(w, g, true, first ? NULL : err);
			if (rc && !first)
				first = rc;
		}
	}
	rc = store_all(w, first ? NULL : err);
	if (rc && !first)
		first = rc;
	if (w->file == H5I_INVALID_HID)
		return first; /* ended by a failed fsync */
	/* What could not be stored is dropped with the file. */
	if (rc && !h5w_held(rc))
		w->stats.losses++;
	h5w_chunks_reap(w, true, NULL);
	h5w_datasets_close(w);
	if (H5Fclose(w->file) < 0) {
		/* everything in it was stored and fsync'd above, but it keeps
		 * HDF5's open-for-writing mark: h5w_close() says so at the end */
		unclosed_files++;
		if (!w->unclosed[0])
			snprintf(w->unclosed, sizeof(w->unclosed), "%s", w->file_name);
		rc = h5w_err_hdf5(w, first ? NULL : err, "%s: closing", w->file_name);
		if (!first)
			first = rc;
	}
	w->file = H5I_INVALID_HID;
	w->swmr_active = false;
	/* HDF5 wrote the superblock's closed state at H5Fclose, after the last
	 * fsync: make that durable too. */
	rc = family(w) ? 0 : h5w_fsync_path(w, w->file_name, first ? NULL : err);
	if (rc && !first)
		first = rc;
	forget_file(w);
	return first;
}

int h5w_fsync_path(struct h5w *w, const char *path, struct h5w_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0 || fsync(fd))
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc)
		h5w_err(w, err, "%s: fsync: %s", path, strerror(-rc));
	return rc;
}

/* A chunk was written: every H5W_FLUSH_EVERY of them, flush HDF5's
 * metadata (not a durability point: no fsync; a failure shows again at the
 * flush that is one). */
void h5w_file_wrote_chunk(struct h5w *w)
{
	if (!w->swmr_active || ++w->writes_unflushed < w->flush_every)
		return;
	w->stats.metadata_flushes++;
	if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)
		H5Eclear2(H5E_DEFAULT);
	w->writes_unflushed = 0;
}

/* ---- the API of this file --------------------------------------------- */

/*
 * Make G take data. Without SWMR the file is created if need be and G in
 * it at once. Under SWMR a group not in the live file becomes pending: its
 * data waits in memory for the next flush, which starts a file with it.
 */
/* The groups that took data in the file that takes the data of a group
 * new to it: the current file, and under SWMR the next one too, which
 * holds those waiting for it. (Groups carried over empty into a file under
 * SWMR count once they take data.) */
uint64_t h5w_file_groups(const struct h5w *w)
{
	return (w->file != H5I_INVALID_HID ? w->file_groups : 0) + w->npending;
}

int h5w_file_group(struct h5w *w, struct h5w_group *g, struct h5w_error *err)
{
	if (h5w_in_file(w, g))
		return 0;
	uint64_t max = w->schema->limits.max_groups;
	if (h5w_file_groups(w) >= max) {
		h5w_err(w, err, "%s: not added, limits.max_groups (%llu) groups took data in "
			"the file already; taken again from the next file on", g->path,
			(unsigned long long)max);
		return -EMLINK;
	}
	if (!swmr_wanted(w)) {
		int rc = w->file == H5I_INVALID_HID ? open_file(w, err) : 0;
		return rc ? rc : h5w_layout_create(w, g, err);
	}
	g->pending = true;
	if (w->npending++ == 0) {
		w->pending_since = w->now;
		if (w->file == H5I_INVALID_HID)
			w->last_flush = w->now; /* the flush period counts from the first data */
	}
	return 0;
}

/*
 * Give the pending groups a file: close the current one (once everything
 * in it is stored, so a full disk loses nothing) and start the next, then
 * store the whole chunks the pending groups gathered.
 */
int h5w_file_start_pending(struct h5w *w, struct h5w_error *err)
{
	int rc;
	if (!w->npending)
		return 0;
	if (w->file != H5I_INVALID_HID) {
		rc = store_all(w, err);
		if (rc)
			return rc; /* nothing closed: what is held stays */
		w->switching = true;
		rc = close_current(w, err);
		w->switching = false;
		if (rc)
			return rc;
	}
	rc = open_file(w, err);
	for (size_t i = 0; !rc && i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		if (!h5w_in_current(w, g))
			continue;
		if (g->stream->layout == SCHEMA_LAYOUT_RECORDS) {
			rc = h5w_records_seal(w, g, err);
		} else {
			for (size_t j = 0; !rc && j < g->ndsets; j++)
				if (!g->dsets[j].event_table)
					rc = h5w_dset_seal(w, &g->dsets[j], g->dsets[j].nrows, err);
			if (!rc && g->stream->events)
				rc = h5w_events_seal(w, g, err);
		}
	}
	return rc;
}

/* Make everything appended so far durable, in a new file for the pending
 * groups if there are any. */
int h5w_file_flush(struct h5w *w, struct h5w_error *err)
{
	int rc = h5w_file_start_pending(w, err);
	if ((rc && !h5w_held(rc)) || w->file == H5I_INVALID_HID)
		return rc;
	int stored = store_all(w, rc ? NULL : err);
	return rc ? rc : stored;
}

/* Roll: close the current file; the next data starts a new one. With
 * pending groups that new file is started now, so that everything
 * appended is durable on return. */
int h5w_file_roll(struct h5w *w, struct h5w_error *err)
{
	if (w->npending)
		return h5w_file_flush(w, err);
	if (w->file == H5I_INVALID_HID)
		return 0;
	return close_current(w, err);
}

/* The end: everything stored (pending groups in a file of their own), the
 * file closed. */
int h5w_file_close(struct h5w *w, struct h5w_error *err)
{
	int rc = h5w_file_start_pending(w, err);
	if (w->file == H5I_INVALID_HID)
		return rc;
	int closed = close_current(w, rc ? NULL : err);
	return rc ? rc : closed;
}

int h5w_file_marked_open(const char *path)
{
	static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
	unsigned char sb[24];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, sb, sizeof(sb), 0);
	close(fd);
	if (n != (ssize_t)sizeof(sb) || memcmp(sb, signature, sizeof(signature)))
		return -1;
	return sb[8] >= 2 ? (sb[11] & 0x05) != 0 : (sb[20] & 0x01) != 0;
}
