/*
 * h5w_chunk.c - per-dataset chunk buffers and how chunks reach the file.
 *
 * Appends land in memory, one buffer per chunk, already in the file's dtype
 * and byte order; a buffer starts small and doubles up to the chunk size, so
 * thousands of slowly filling groups (weather stations) cost only the rows
 * they hold. A chunk goes to the file whole: when it is
 * sealed (every row in it final), and, padded with the fill value, at every
 * flush (so the extent is exact at each durability point; a partial chunk is
 * simply rewritten whole at the next flush or when it fills). Writing whole
 * chunks is what makes direct chunk writes possible: no read-modify-write,
 * no filter pipeline on the writer thread, and the compression of a chunk
 * can run on a worker (h5w_pool.c) while the writer buffers the next one.
 *
 * The extent of a dataset is raised just before a chunk is stored, to the
 * end of that chunk's valid rows (never past the rows appended): HDF5 1.10
 * crashes on H5Dwrite_chunk while the extent is 0, and SWMR readers must
 * never see rows that hold no data yet. After a flush has stored the last,
 * partial chunk, the extent equals the rows appended, exactly.
 *
 * A write refused for want of space (output.min_free, h5w_space.c: full
 * disk, file-size limit) loses nothing: the chunk stays in memory, still
 * dirty, and is written again at the next flush, which returns the error
 * until it is stored (until then appends only buffer). Chunks of a dataset
 * reach the file in order (the pool returns jobs in submission order), and
 * none is stored while an earlier one waits for a retry, so the extent only
 * ever covers chunks that are stored. The kept chunks count against
 * limits.max_buffer like any other, so a disk that stays full ends in
 * -ENOBUFS, not in unbounded memory. A write that HDF5 itself fails (I/O
 * error; a full disk with min_free 0) is kept the same way, but HDF5's view
 * of the file is then in doubt, and the file ends at the next flush
 * (h5w_file.c: end_file).
 *
 * Memory: chunk buffers and compressed outputs are counted in w->buffered
 * and bounded by limits.max_buffer; before refusing (-ENOBUFS) the writer
 * waits for in-flight compression to release memory.
 *
 * Caller thread only; workers see a chunk's bytes only through a job.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h5w_internal.h"

/* Chunks at least this big keep one buffer for reuse: malloc of large blocks
 * maps fresh pages, and faulting them in costs as much as writing them. */
#define SPARE_MIN_BYTES (64 * 1024)

static char *string_at(const unsigned char *data, uint64_t i)
{
	char *s;
	memcpy(&s, data + i * sizeof(char *), sizeof(s));
	return s;
}

static void free_strings(struct h5w_dset *ds, unsigned char *data, uint64_t from, uint64_t to)
{
	if (ds->dtype != DTYPE_STRING)
		return;
	/* the fill of string datasets is a static empty string (h5w_layout.c) */
	char *fill = string_at(ds->fill, 0);
	for (uint64_t i = from; i < to; i++) {
		char *s = string_at(data, i);
		if (s && s != fill)
			free(s);
	}
}

static void fill_rows(const struct h5w_dset *ds, unsigned char *data, uint64_t from, uint64_t to)
{
	if (to <= from)
		return;
	size_t start = (size_t)from * ds->row_bytes, len = (size_t)(to - from) * ds->row_bytes;
	unsigned char *p = data + start;
	size_t done = ds->elem_size;
	memcpy(p, ds->fill, ds->elem_size);
	while (done < len) {
		size_t n = done < len - done ? done : len - done;
		memcpy(p + done, p, n);
		done += n;
	}
}

/* Give back a buffer of CAP_ROWS rows: kept for reuse when it is a whole
 * large chunk, else freed. */
static void release_data(struct h5w *w, struct h5w_dset *ds, unsigned char *data,
			 uint64_t cap_rows)
{
	if (cap_rows == ds->chunk_rows && ds->nspares < H5W_SPARES &&
	    ds->chunk_bytes >= SPARE_MIN_BYTES) {
		ds->spares[ds->nspares++] = data;
		return;
	}
	free(data);
	w->buffered -= (size_t)cap_rows * ds->row_bytes;
}

/* Give back the memory of the dataset's buffer BUF, whatever it holds. */
static void release_buf(struct h5w *w, struct h5w_dset *ds, struct h5w_chunkbuf *buf)
{
	if (buf->encoded) {
		free(buf->data);
		w->buffered -= buf->encoded_len;
		return;
	}
	free_strings(ds, buf->data, 0, buf->init_rows);
	release_data(w, ds, buf->data, buf->cap_rows);
}

static void drop_caches(struct h5w *w);

static int finish_job(struct h5w *w, struct h5w_job *job, struct h5w_error *err);

/* Wait for one compression job and store it. Returns false when none was
 * in flight; *rc keeps the first error. */
static bool reap_one(struct h5w *w, int *rc, struct h5w_error *err)
{
	struct h5w_job *job = h5w_pool_take(&w->pool, true);
	if (!job)
		return false;
	int r = finish_job(w, job, *rc ? NULL : err);
	if (r && !*rc)
		*rc = r;
	return true;
}

/* Make room for BYTES more of buffered memory, waiting for the pool first. */
static int reserve(struct h5w *w, size_t bytes, bool may_exceed, struct h5w_error *err)
{
	uint64_t limit = w->schema->limits.max_buffer;
	if (!limit || w->buffered + bytes <= limit)
		goto ok;
	int rc = 0;
	while (w->buffered + bytes > limit && reap_one(w, &rc, err))
		;
	if (rc)
		return rc;
	if (w->buffered + bytes > limit)
		drop_caches(w);
	if (w->buffered + bytes > limit && !may_exceed) {
		h5w_err(w, err, "buffers full: %llu bytes held, %zu more needed, limit %llu "
			"(limits.max_buffer)", (unsigned long long)w->buffered, bytes,
			(unsigned long long)limit);
		return -ENOBUFS;
	}
ok:
	w->buffered += bytes;
	return 0;
}

/* Rows a new partial chunk buffer starts with: enough for a burst, small
 * enough that thousands of slowly filling groups stay cheap. The buffer
 * doubles as rows arrive, up to the whole chunk. */
#define INITIAL_BYTES 256

static int grow_buf(struct h5w *w, struct h5w_dset *ds, struct h5w_chunkbuf *buf, uint64_t rows,
		    struct h5w_error *err)
{
	if (rows <= buf->cap_rows)
		return 0;
	uint64_t cap = buf->cap_rows * 2;
	if (cap < rows)
		cap = rows;
	if (cap > ds->chunk_rows)
		cap = ds->chunk_rows;
	size_t more = (size_t)(cap - buf->cap_rows) * ds->row_bytes;
	int rc = reserve(w, more, false, err);
	if (rc)
		return rc;
	unsigned char *data = realloc(buf->data, (size_t)cap * ds->row_bytes);
	if (!data) {
		w->buffered -= more;
		h5w_err(w, err, "out of memory buffering %s/%s", ds->group->path, ds->name);
		return -ENOMEM;
	}
	buf->data = data;
	buf->cap_rows = cap;
	return 0;
}

/* Room in the dataset's array of buffers for one more. */
static int room_for_buf(struct h5w_dset *ds)
{
	if (ds->nbufs < ds->capbufs)
		return 0;
	size_t cap = ds->capbufs ? ds->capbufs * 2 : 4;
	struct h5w_chunkbuf *bufs = realloc(ds->bufs, cap * sizeof(*bufs));
	if (!bufs)
		return -ENOMEM;
	ds->bufs = bufs;
	ds->capbufs = cap;
	return 0;
}

static void mark_dirty(struct h5w_chunkbuf *buf, uint64_t lo, uint64_t hi);

/*
 * Rows are put into a chunk held encoded (a records row that comes again,
 * or is filled): it becomes a buffer of rows. WHOLE: the put covers every
 * row, so nothing needs decoding; otherwise the chunk is decoded (counted
 * in chunks_decoded) and written again whole.
 */
static int unhold(struct h5w *w, struct h5w_dset *ds, struct h5w_chunkbuf *buf, bool whole,
		  struct h5w_error *err)
{
	const unsigned char *rows = NULL;
	if (!whole) {
		struct h5w_encoded c = {.data = buf->data, .len = buf->encoded_len,
					.filter_mask = buf->encoded_mask,
					.raw_size = ds->chunk_bytes};
		rows = h5w_encoded_decode(w, ds, &c, err);
		if (!rows)
			return -EIO;
	}
	int rc = reserve(w, ds->chunk_bytes, false, err);
	if (rc)
		return rc;
	unsigned char *data = malloc(ds->chunk_bytes);
	if (!data) {
		w->buffered -= ds->chunk_bytes;
		h5w_err(w, err, "out of memory buffering %s/%s", ds->group->path, ds->name);
		return -ENOMEM;
	}
	if (rows)
		memcpy(data, rows, ds->chunk_bytes);
	free(buf->data);
	w->buffered -= buf->encoded_len;
	*buf = (struct h5w_chunkbuf){.index = buf->index, .data = data,
				     .cap_rows = ds->chunk_rows,
				     .init_rows = whole ? 0 : ds->chunk_rows, .slot = buf->slot};
	if (!whole)
		mark_dirty(buf, 0, ds->chunk_rows);
	return 0;
}

/* The buffer of chunk INDEX, created (with room for NEED rows) if absent,
 * ready for rows [AT, NEED) to be put. */
static int find_buf(struct h5w *w, struct h5w_dset *ds, uint64_t index, uint64_t at,
		    uint64_t need, struct h5w_chunkbuf **out, struct h5w_error *err)
{
	size_t pos = ds->nbufs;
	while (pos > 0 && ds->bufs[pos - 1].index >= index) {
		if (ds->bufs[pos - 1].index == index) {
			*out = &ds->bufs[pos - 1];
			if ((*out)->encoded) {
				int rc = unhold(w, ds, *out, at == 0 && need == ds->chunk_rows, err);
				if (rc)
					return rc;
			}
			return grow_buf(w, ds, *out, need, err);
		}
		pos--;
	}
	if (room_for_buf(ds))
		return -ENOMEM;
	unsigned char *data = NULL;
	uint64_t cap_rows = ds->chunk_rows;
	if (ds->nspares) {
		data = ds->spares[--ds->nspares];
	} else {
		uint64_t initial = INITIAL_BYTES / ds->row_bytes;
		if (initial < need)
			initial = need;
		if (initial < cap_rows)
			cap_rows = initial;
		size_t bytes = (size_t)cap_rows * ds->row_bytes;
		int rc = reserve(w, bytes, false, err);
		if (rc)
			return rc;
		data = malloc(bytes);
		if (!data) {
			w->buffered -= bytes;
			return -ENOMEM;
		}
	}
	memmove(&ds->bufs[pos + 1], &ds->bufs[pos], (ds->nbufs - pos) * sizeof(*ds->bufs));
	ds->nbufs++;
	ds->bufs[pos] = (struct h5w_chunkbuf){.index = index, .data = data, .cap_rows = cap_rows};
	*out = &ds->bufs[pos];
	return 0;
}

static int raise_extent(struct h5w *w, struct h5w_dset *ds, uint64_t end, struct h5w_error *err)
{
	if (ds->extent >= end)
		return 0;
	hsize_t dims[2] = {end, ds->row_elems};
	if (H5Dset_extent(ds->id, dims) < 0)
		return h5w_err_hdf5(w, err, "%s: extending %s/%s to %llu rows", w->file_name,
				    ds->group->path, ds->name, (unsigned long long)end);
	ds->extent = end;
	return 0;
}

/* After a failed write: set the extent back to END so that it covers only
 * stored chunks. Best effort (it may fail on the same full disk); HDF5's
 * error stack is cleared, the caller reports the write's own error. */
static void lower_extent(struct h5w_dset *ds, uint64_t end)
{
	if (ds->extent <= end)
		return;
	hsize_t dims[2] = {end, ds->row_elems};
	if (H5Dset_extent(ds->id, dims) >= 0)
		ds->extent = end;
	H5Eclear2(H5E_DEFAULT);
}

/* Is a chunk of DS below INDEX waiting to be written again? Then chunk INDEX
 * must wait too: storing it would need an extent covering the missing one. */
static bool earlier_unstored(const struct h5w_dset *ds, uint64_t index)
{
	for (size_t i = 0; i < ds->nbufs && ds->bufs[i].index < index; i++)
		if (ds->bufs[i].dirty_hi > ds->bufs[i].dirty_lo)
			return true;
	return false;
}

static uint64_t valid_end(const struct h5w_dset *ds, uint64_t index)
{
	uint64_t end = (index + 1) * ds->chunk_rows;
	return end < ds->nrows ? end : ds->nrows;
}

/* A write that h5w_space_check() refused: reported like a failed write (the
 * caller keeps the chunk), without HDF5 ever seeing the full disk. */
static int no_room(struct h5w *w, const struct h5w_dset *ds, int rc, const char *what,
		   uint64_t from, uint64_t to, struct h5w_error *err)
{
	if (from == to)
		h5w_err(w, err, "%s: writing %s %llu of %s/%s: %s (%s)", w->file_name, what,
			(unsigned long long)from, ds->group->path, ds->name, strerror(-rc),
			w->space_why);
	else
		h5w_err(w, err, "%s: writing %s %llu..%llu of %s/%s: %s (%s)", w->file_name,
			what, (unsigned long long)from, (unsigned long long)to, ds->group->path,
			ds->name, strerror(-rc), w->space_why);
	w->store_failed = true;
	return rc;
}

/* HDF5 failed the write RC reported (h5w_err_hdf5() took it for a full
 * disk if errno said so): not a hold to wait out, since the file ends at
 * the next flush, but an error. WAS_FULL: stats.full before the write. */
static int write_failed(struct h5w *w, bool was_full)
{
	w->store_failed = w->hdf5_failed = true;
	w->stats.full = was_full;
	return -EIO;
}

/*
 * Write chunk INDEX whole. A chunk that starts inside the extent (a partial
 * chunk written again with more rows) is written first and the extent
 * raised after, so that a failed write never needs the extent lowered into
 * the middle of a chunk: HDF5 then reads that chunk back to fill the rows
 * past the new end, and after a failed write that read can fail (and crash
 * HDF5). A chunk that starts at the extent needs the extent raised first
 * (HDF5 writes no chunk wholly outside it); after a failure it is lowered
 * back to that chunk boundary, which only drops an index entry.
 *
 * A write that HDF5 itself fails leaves its view of the file in doubt (a
 * rewrite that failed once was later "written" with the chunk index left
 * on the old chunk): hdf5_failed makes the next flush end the file.
 */
static int store_masked(struct h5w *w, struct h5w_dset *ds, uint64_t index, const void *bytes,
			size_t len, uint32_t mask, struct h5w_error *err)
{
	hsize_t offset[2] = {index * ds->chunk_rows, 0};
	uint64_t old_extent = ds->extent;
	bool inside = offset[0] < old_extent;
	int rc = h5w_space_check(w, len, !ds->frame_index);
	if (rc)
		return no_room(w, ds, rc, "chunk", index, index, err);
	rc = h5w_dset_open(w, ds, err);
	if (!rc && !inside)
		rc = raise_extent(w, ds, valid_end(ds, index), err);
	if (rc)
		return rc;
	bool was_full = w->stats.full;
	if (H5Dwrite_chunk(ds->id, H5P_DEFAULT, mask, offset, len, bytes) < 0) {
		h5w_err_hdf5(w, err, "%s: writing chunk %llu of %s/%s failed, so the file ends "
			     "at its next flush", w->file_name, (unsigned long long)index,
			     ds->group->path, ds->name);
		if (!inside)
			lower_extent(ds, old_extent);
		return write_failed(w, was_full);
	}
	h5w_space_used(w, len);
	h5w_file_wrote_chunk(w);
	h5w_writeback_note(w, len);
	w->stats.chunks_written++;
	w->stats.bytes_raw += ds->chunk_bytes;
	w->stats.bytes_compressed += len;
	w->file_bytes += len;
	if (inside)
		return raise_extent(w, ds, valid_end(ds, index), err);
	return 0;
}

static int store_direct(struct h5w *w, struct h5w_dset *ds, uint64_t index, const void *bytes,
			size_t len, struct h5w_error *err)
{
	return store_masked(w, ds, index, bytes, len, 0, err);
}

/* HDF5's own pipeline: write the chunk's valid rows as a hyperslab. */
static int store_pipeline(struct h5w *w, struct h5w_dset *ds, uint64_t index,
			  const unsigned char *data, uint64_t lo, uint64_t hi,
			  struct h5w_error *err)
{
	uint64_t base = index * ds->chunk_rows, end = valid_end(ds, index);
	uint64_t old_extent = ds->extent;
	uint64_t start = base + lo, stop = base + hi < end ? base + hi : end;
	int rc = 0;
	if (stop > start) {
		rc = h5w_space_check(w, (stop - start) * ds->row_bytes, !ds->frame_index);
		if (rc)
			return no_room(w, ds, rc, "rows", start, stop, err);
	}
	rc = h5w_dset_open(w, ds, err);
	if (!rc)
		rc = raise_extent(w, ds, end, err);
	if (rc || stop <= start)
		return rc;
	data += (size_t)lo * ds->row_bytes;
	hsize_t fstart[2] = {start, 0}, count[2] = {stop - start, ds->row_elems};
	hid_t fspace = H5Dget_space(ds->id);
	hid_t mspace = H5Screate_simple(ds->row_elems > 1 ? 2 : 1, count, NULL);
	herr_t st = -1;
	bool was_full = w->stats.full;
	if (fspace >= 0 && mspace >= 0 &&
	    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, fstart, NULL, count, NULL) >= 0)
		st = H5Dwrite(ds->id, h5w_file_type(w, ds->dtype), mspace, fspace, H5P_DEFAULT,
			      data);
	/* read HDF5's error stack before the next call clears it */
	if (st < 0)
		rc = h5w_err_hdf5(w, err, "%s: writing rows %llu..%llu of %s/%s failed, so the "
				  "file ends at its next flush", w->file_name,
				  (unsigned long long)start, (unsigned long long)stop,
				  ds->group->path, ds->name);
	if (mspace >= 0)
		H5Sclose(mspace);
	if (fspace >= 0)
		H5Sclose(fspace);
	if (rc) {
		lower_extent(ds, old_extent);
		return write_failed(w, was_full);
	}
	h5w_space_used(w, (stop - start) * ds->row_bytes);
	h5w_file_wrote_chunk(w);
	w->stats.chunks_written++;
	w->stats.bytes_raw += (stop - start) * ds->row_bytes;
	w->file_bytes += (stop - start) * ds->row_bytes;
	return 0;
}

/* An output buffer of at least CAP bytes, reused when one is free. */
static unsigned char *get_out(struct h5w *w, size_t cap, size_t *got, struct h5w_error *err)
{
	for (unsigned i = 0; i < w->nouts; i++) {
		if (w->out_caps[i] >= cap) {
			unsigned char *out = w->outs[i];
			*got = w->out_caps[i];
			w->outs[i] = w->outs[--w->nouts];
			w->out_caps[i] = w->out_caps[w->nouts];
			return out;
		}
	}
	if (reserve(w, cap, true, err))
		return NULL;
	unsigned char *out = malloc(cap);
	if (!out)
		w->buffered -= cap;
	*got = cap;
	return out;
}

static void put_out(struct h5w *w, unsigned char *out, size_t cap)
{
	if (w->nouts < H5W_OUT_CACHE) {
		w->outs[w->nouts] = out;
		w->out_caps[w->nouts++] = cap;
		return;
	}
	free(out);
	w->buffered -= cap;
}

/* Does DS still hold DATA as the buffer of chunk INDEX? */
static bool held_by_dataset(const struct h5w_dset *ds, uint64_t index, const unsigned char *data)
{
	for (size_t i = 0; i < ds->nbufs; i++)
		if (ds->bufs[i].index == index)
			return ds->bufs[i].data == data;
	return false;
}

/* Hand chunk INDEX (DATA, chunk_bytes) to the compression pool. ROWS of it
 * hold data; FINAL: they will not change again; SLOT: the bytes its last
 * write took in the file (see h5w_pipeline_slot). OWNED: DATA is the
 * job's to release, whatever happens, unless the dataset still holds it as
 * that chunk's buffer (a sealed chunk: the caller drops it on success, and
 * keeps it, to be written again, on failure). */
static int submit_job(struct h5w *w, struct h5w_dset *ds, uint64_t index, unsigned char *data,
		      bool owned, uint64_t dirty_lo, bool final, size_t slot,
		      struct h5w_error *err)
{
	size_t cap = h5w_pipeline_bound(&ds->filters, ds->chunk_bytes);
	int rc = 0;
	struct h5w_job *job = NULL;
	while (w->pool.pending >= w->max_inflight && reap_one(w, &rc, err))
		;
	if (rc)
		goto failed;
	job = calloc(1, sizeof(*job));
	if (!job)
		goto nomem;
	job->out = get_out(w, cap, &job->out_cap, err);
	if (!job->out)
		goto nomem;
	job->dset = ds;
	job->index = index;
	job->raw = data;
	job->owns_raw = owned;
	job->dirty_lo = dirty_lo;
	job->raw_len = ds->chunk_bytes;
	job->rows = valid_end(ds, index) - index * ds->chunk_rows;
	job->final = final;
	job->slot = slot;
	/* At a periodic flush, a small chunk with the pool idle is encoded
	 * here: handing it over costs two thread wake-ups, more than deflating
	 * a mostly empty 16 KiB chunk of a slow station. (With jobs in flight
	 * it queues behind them: a dataset's chunks reach the file in order.
	 * Bursts, and new files, keep the workers.) */
	if (w->encode_inline && !w->pool.pending && ds->chunk_bytes <= H5W_INLINE_ENCODE) {
		h5w_job_encode(job, &w->encoder);
		return finish_job(w, job, err);
	}
	h5w_pool_submit(&w->pool, job);
	return 0;
nomem:
	free(job);
	h5w_err(w, err, "out of memory compressing %s/%s", ds->group->path, ds->name);
	rc = -ENOMEM;
failed:
	if (owned && !held_by_dataset(ds, index, data))
		release_data(w, ds, data, ds->chunk_rows);
	return rc;
}

static int insert_buf(struct h5w_dset *ds, const struct h5w_chunkbuf *buf);

/* A job whose chunk did not reach the file: the chunk is kept for the next
 * flush. A flush job's buffer is still in the dataset and is marked dirty
 * again; a sealed chunk's buffer (the job owns it) goes back in. */
static int keep_unstored(struct h5w *w, struct h5w_job *job, struct h5w_error *err)
{
	struct h5w_dset *ds = job->dset;
	for (size_t i = 0; i < ds->nbufs; i++) {
		struct h5w_chunkbuf *buf = &ds->bufs[i];
		if (buf->index != job->index)
			continue;
		mark_dirty(buf, job->dirty_lo < buf->init_rows ? job->dirty_lo : 0, buf->init_rows);
		if (buf->data == job->raw)
			job->owns_raw = false; /* a sealed chunk encoded inline: still held */
		return 0;
	}
	if (!job->owns_raw)
		return 0;
	struct h5w_chunkbuf buf = {.index = job->index, .data = job->raw,
				   .cap_rows = ds->chunk_rows, .init_rows = ds->chunk_rows,
				   .dirty_lo = job->dirty_lo, .dirty_hi = ds->chunk_rows,
				   .slot = job->slot};
	if (insert_buf(ds, &buf)) {
		w->stats.losses++;
		h5w_err(w, err, "out of memory keeping chunk %llu of %s/%s: it is lost",
			(unsigned long long)job->index, ds->group->path, ds->name);
		return -ENOMEM;
	}
	job->owns_raw = false;
	return 0;
}

static int finish_job(struct h5w *w, struct h5w_job *job, struct h5w_error *err)
{
	struct h5w_dset *ds = job->dset;
	int rc = job->status;
	if (rc)
		h5w_err(w, err, "%s/%s: compressing chunk %llu failed (%d)", ds->group->path,
			ds->name, (unsigned long long)job->index, rc);
	else if (earlier_unstored(ds, job->index))
		rc = -EAGAIN; /* the earlier chunk's failure was reported */
	else
		rc = store_direct(w, ds, job->index, job->out, job->out_len, err);
	if (!rc && !job->final) {
		/* a partial chunk, still buffered: its next write keeps this size */
		for (size_t i = 0; i < ds->nbufs; i++)
			if (ds->bufs[i].index == job->index)
				ds->bufs[i].slot = job->out_len;
	}
	if (rc) {
		int kept = keep_unstored(w, job, rc == -EAGAIN ? err : NULL);
		if (rc == -EAGAIN)
			rc = kept;
	}
	put_out(w, job->out, job->out_cap);
	if (job->owns_raw)
		release_data(w, ds, job->raw, ds->chunk_rows);
	free(job);
	return rc;
}

/* Write the results of finished compression jobs; with WAIT_ALL, wait for
 * every job in flight. Returns the first error; every job is consumed. */
int h5w_chunks_reap(struct h5w *w, bool wait_all, struct h5w_error *err)
{
	int first = 0;
	struct h5w_job *job;
	while ((job = h5w_pool_take(&w->pool, wait_all))) {
		int rc = finish_job(w, job, first ? NULL : err);
		if (rc && !first)
			first = rc;
	}
	return first;
}

/* A whole-chunk copy of BUF padded with fill, for storing a partial buffer
 * without growing it: shared scratch for synchronous writes, or (OWNED) a
 * fresh buffer a compression job takes over. */
static unsigned char *padded_copy(struct h5w *w, struct h5w_dset *ds,
				  const struct h5w_chunkbuf *buf, bool owned, struct h5w_error *err)
{
	unsigned char *copy;
	if (owned) {
		if (reserve(w, ds->chunk_bytes, true, err))
			return NULL;
		copy = malloc(ds->chunk_bytes);
		if (!copy)
			w->buffered -= ds->chunk_bytes;
	} else {
		if (w->pad_cap < ds->chunk_bytes) {
			unsigned char *p = realloc(w->pad, ds->chunk_bytes);
			if (!p)
				return NULL;
			w->pad = p;
			w->pad_cap = ds->chunk_bytes;
		}
		copy = w->pad;
	}
	if (copy) {
		memcpy(copy, buf->data, (size_t)buf->init_rows * ds->row_bytes);
		fill_rows(ds, copy, buf->init_rows, ds->chunk_rows);
	}
	return copy;
}

/*
 * Store a chunk buffer (or hand it to the pool, which stores it later).
 * FINAL: its rows will not change again, and on success the buffer is
 * handed over (to the pool or back to free memory): the caller then drops
 * it from the dataset. Otherwise the buffer stays; a partial-capacity buffer
 * is stored through a padded copy so that idle groups keep only the rows
 * they have. On failure the buffer stays, dirty, for the next attempt.
 */
static int write_buf(struct h5w *w, struct h5w_dset *ds, struct h5w_chunkbuf *buf, bool final,
		     struct h5w_error *err)
{
	int rc = 0;
	uint64_t lo = buf->dirty_lo, hi = buf->dirty_hi;
	if (buf->encoded) {
		rc = store_masked(w, ds, buf->index, buf->data, buf->encoded_len,
				  buf->encoded_mask, err);
		if (rc)
			return rc;
		w->stats.chunks_precompressed++;
		buf->dirty_lo = buf->dirty_hi = 0;
		if (final)
			release_buf(w, ds, buf);
		return 0;
	}
	if (ds->codec == H5W_CODEC_PIPELINE) {
		/* Only the rows changed since the last write: rewriting a chunk's
		 * variable-length strings at every flush would leave a copy of each
		 * in the file's global heap every time. The valid rows are all
		 * initialised, so nothing unwritten is left behind. */
		rc = store_pipeline(w, ds, buf->index, buf->data, lo, hi, err);
		if (rc)
			return rc;
		buf->dirty_lo = buf->dirty_hi = 0;
		if (final) {
			free_strings(ds, buf->data, 0, buf->init_rows);
			release_data(w, ds, buf->data, buf->cap_rows);
		}
		return 0;
	}
	bool pooled = ds->codec == H5W_CODEC_POOL;
	if (final || buf->cap_rows == ds->chunk_rows) {
		rc = grow_buf(w, ds, buf, ds->chunk_rows, err);
		if (rc)
			return rc;
		fill_rows(ds, buf->data, buf->init_rows, ds->chunk_rows);
		buf->init_rows = ds->chunk_rows;
		if (pooled)
			rc = submit_job(w, ds, buf->index, buf->data, final, lo, final, buf->slot,
					err);
		else
			rc = store_direct(w, ds, buf->index, buf->data, ds->chunk_bytes, err);
		if (rc)
			return rc;
		buf->dirty_lo = buf->dirty_hi = 0;
		if (final && !pooled)
			release_data(w, ds, buf->data, buf->cap_rows);
		return 0;
	}
	unsigned char *copy = padded_copy(w, ds, buf, pooled, err);
	if (!copy) {
		h5w_err(w, err, "out of memory storing %s/%s", ds->group->path, ds->name);
		return -ENOMEM;
	}
	if (pooled) {
		/* the copy is the job's, stored or not */
		rc = submit_job(w, ds, buf->index, copy, true, lo, false, buf->slot, err);
	} else {
		rc = store_direct(w, ds, buf->index, copy, ds->chunk_bytes, err);
	}
	if (!rc)
		buf->dirty_lo = buf->dirty_hi = 0;
	return rc;
}

static void mark_dirty(struct h5w_chunkbuf *buf, uint64_t lo, uint64_t hi)
{
	if (buf->dirty_hi <= buf->dirty_lo) {
		buf->dirty_lo = lo;
		buf->dirty_hi = hi;
		return;
	}
	if (lo < buf->dirty_lo)
		buf->dirty_lo = lo;
	if (hi > buf->dirty_hi)
		buf->dirty_hi = hi;
}

static void drop_buf(struct h5w_dset *ds, size_t i)
{
	memmove(&ds->bufs[i], &ds->bufs[i + 1], (ds->nbufs - i - 1) * sizeof(*ds->bufs));
	ds->nbufs--;
}

/* Put BUF back among the dataset's buffers, in index order. */
static int insert_buf(struct h5w_dset *ds, const struct h5w_chunkbuf *buf)
{
	if (room_for_buf(ds))
		return -ENOMEM;
	size_t pos = ds->nbufs;
	while (pos > 0 && ds->bufs[pos - 1].index > buf->index)
		pos--;
	memmove(&ds->bufs[pos + 1], &ds->bufs[pos], (ds->nbufs - pos) * sizeof(*ds->bufs));
	ds->bufs[pos] = *buf;
	ds->nbufs++;
	return 0;
}

/*
 * Put NROWS rows (row_bytes each, in the file's dtype; strings as char *
 * the dataset takes over) at ROW. Rows may be rewritten until sealed.
 */
int h5w_dset_put(struct h5w *w, struct h5w_dset *ds, uint64_t row, const void *rows,
		 uint64_t nrows, struct h5w_error *err)
{
	const unsigned char *src = rows;
	if (ds->group->pending)
		w->pending_bytes += nrows * ds->row_bytes;
	while (nrows > 0) {
		uint64_t index = row / ds->chunk_rows, at = row % ds->chunk_rows;
		uint64_t n = ds->chunk_rows - at < nrows ? ds->chunk_rows - at : nrows;
		struct h5w_chunkbuf *buf;
		int rc = find_buf(w, ds, index, at, at + n, &buf, err);
		if (rc)
			return rc;
		if (at > buf->init_rows)
			fill_rows(ds, buf->data, buf->init_rows, at);
		else if (at < buf->init_rows)
			free_strings(ds, buf->data, at,
				     at + n < buf->init_rows ? at + n : buf->init_rows);
		memcpy(buf->data + at * ds->row_bytes, src, (size_t)n * ds->row_bytes);
		mark_dirty(buf, at < buf->init_rows ? at : buf->init_rows, at + n);
		if (at + n > buf->init_rows)
			buf->init_rows = at + n;
		src += (size_t)n * ds->row_bytes;
		row += n;
		nrows -= n;
		if (row > ds->nrows)
			ds->nrows = row;
	}
	w->dirty = true;
	return 0;
}

/* Put a copy of the string S (NULL: empty) at ROW of a string dataset. */
int h5w_dset_put_string(struct h5w *w, struct h5w_dset *ds, uint64_t row, const char *s,
			struct h5w_error *err)
{
	char *copy = strdup(s ? s : "");
	if (!copy) {
		h5w_err(w, err, "out of memory buffering %s/%s", ds->group->path, ds->name);
		return -ENOMEM;
	}
	int rc = h5w_dset_put(w, ds, row, &copy, 1, err);
	if (rc)
		free(copy); /* not taken: put fails before it stores anything */
	return rc;
}

/*
 * Store one row that is a whole chunk straight from the caller's memory
 * (records waveforms with chunk 1, uncompressed, already in the channel's
 * dtype): no copy into a chunk buffer. A buffer holding an older version of
 * that chunk is dropped. Rows never written read back as the fill value.
 */
int h5w_dset_write_row(struct h5w *w, struct h5w_dset *ds, uint64_t row, const void *data,
		       struct h5w_error *err)
{
	/* Buffered instead while chunks wait for the next flush, and when the
	 * file system is short of space: buffering can be refused whole
	 * (-ENOBUFS), a failed direct write would have to be kept anyway. */
	if (w->store_failed || earlier_unstored(ds, row))
		return h5w_dset_put(w, ds, row, data, 1, err); /* waits its turn */
	if (h5w_space_check(w, ds->chunk_bytes, true)) {
		w->store_failed = true;
		return h5w_dset_put(w, ds, row, data, 1, err);
	}
	for (size_t i = 0; i < ds->nbufs; i++) {
		if (ds->bufs[i].index == row) {
			release_buf(w, ds, &ds->bufs[i]);
			memmove(&ds->bufs[i], &ds->bufs[i + 1],
				(ds->nbufs - i - 1) * sizeof(*ds->bufs));
			ds->nbufs--;
			break;
		}
	}
	if (row + 1 > ds->nrows)
		ds->nrows = row + 1;
	w->dirty = true;
	int rc = store_direct(w, ds, row, data, ds->chunk_bytes, err);
	if (rc) {
		/* keep the row for the next flush; the write's error stands */
		struct h5w_error ignored;
		if (h5w_dset_put(w, ds, row, data, 1, &ignored)) {
			w->stats.losses++;
			h5w_err(w, NULL, "%s/%s: row %llu could not be kept: it is lost",
				ds->group->path, ds->name, (unsigned long long)row);
		}
	}
	return rc;
}

/*
 * Store chunk INDEX, which came encoded (h5w_encoded.c checked it), as it
 * is: a records row, or whole chunks of a stream channel. The caller has made sure it may go to the file now
 * (group in the current file, no earlier chunk waiting, no failed store).
 * A buffer holding an older version of that chunk (the fill of a record
 * padded before a flush) is dropped, after any compression job that may
 * still read it has been stored: that job would otherwise write the fill
 * over the data. On failure nothing is kept: the caller decodes the chunk
 * and buffers it.
 */
int h5w_dset_write_encoded(struct h5w *w, struct h5w_dset *ds, uint64_t index,
			   const struct h5w_encoded *c, struct h5w_error *err)
{
	for (size_t i = 0; i < ds->nbufs; i++) {
		if (ds->bufs[i].index != index)
			continue;
		int rc = h5w_chunks_reap(w, true, err);
		if (rc)
			return rc;
		for (size_t j = 0; j < ds->nbufs; j++) {
			if (ds->bufs[j].index == index) {
				release_buf(w, ds, &ds->bufs[j]);
				drop_buf(ds, j);
				break;
			}
		}
		break;
	}
	uint64_t nrows = ds->nrows, end = (index + 1) * ds->chunk_rows;
	if (end > ds->nrows)
		ds->nrows = end;
	int rc = store_masked(w, ds, index, c->data, c->len, c->filter_mask, err);
	if (rc) {
		ds->nrows = nrows;
		return rc;
	}
	w->stats.chunks_precompressed++;
	w->dirty = true;
	return 0;
}

/*
 * Hold chunk INDEX, which came encoded (h5w_encoded.c checked it) but
 * cannot go to the file now - its group waits for the next file (under
 * SWMR, the first chunks of every file), an earlier chunk waits for a
 * retry, or its direct write failed - as it came: a copy of its bytes,
 * counted against limits.max_buffer, which the flush or seal that stores
 * the chunk writes with its mask (write_buf). It is never decoded, and the
 * pool never encodes it again. A buffer holding an older version of the
 * chunk (a record's fill) is replaced, after any compression job that may
 * still read it has been stored. On failure (-ENOBUFS, -ENOMEM) nothing
 * is held.
 */
int h5w_dset_hold_encoded(struct h5w *w, struct h5w_dset *ds, uint64_t index,
			  const struct h5w_encoded *c, struct h5w_error *err)
{
	int rc = reserve(w, c->len, false, err);
	if (rc)
		return rc;
	struct h5w_chunkbuf held = {.index = index, .data = malloc(c->len),
				    .cap_rows = ds->chunk_rows, .init_rows = ds->chunk_rows,
				    .dirty_hi = ds->chunk_rows, .encoded = true,
				    .encoded_len = c->len, .encoded_mask = c->filter_mask};
	if (!held.data) {
		w->buffered -= c->len;
		h5w_err(w, err, "out of memory holding chunk %llu of %s/%s",
			(unsigned long long)index, ds->group->path, ds->name);
		return -ENOMEM;
	}
	memcpy(held.data, c->data, c->len);
	bool replaced = false;
	for (size_t i = 0; i < ds->nbufs && !replaced; i++) {
		if (ds->bufs[i].index != index)
			continue;
		/* a job's failed store keeps its chunk and is reported again by
		 * the next flush, which retries it: this chunk is held anyway */
		h5w_chunks_reap(w, true, NULL);
		for (size_t j = 0; j < ds->nbufs; j++) {
			if (ds->bufs[j].index == index) {
				release_buf(w, ds, &ds->bufs[j]);
				ds->bufs[j] = held;
				replaced = true;
				break;
			}
		}
	}
	if (!replaced && insert_buf(ds, &held)) {
		free(held.data);
		w->buffered -= c->len;
		h5w_err(w, err, "out of memory holding chunk %llu of %s/%s",
			(unsigned long long)index, ds->group->path, ds->name);
		return -ENOMEM;
	}
	uint64_t end = (index + 1) * ds->chunk_rows;
	if (end > ds->nrows)
		ds->nrows = end;
	if (ds->group->pending)
		w->pending_bytes += c->len;
	w->dirty = true;
	return 0;
}

/* Set NROWS rows at ROW back to the fill value (records: a missing channel). */
int h5w_dset_fill(struct h5w *w, struct h5w_dset *ds, uint64_t row, uint64_t nrows,
		  struct h5w_error *err)
{
	while (nrows > 0) {
		uint64_t index = row / ds->chunk_rows, at = row % ds->chunk_rows;
		uint64_t n = ds->chunk_rows - at < nrows ? ds->chunk_rows - at : nrows;
		struct h5w_chunkbuf *buf;
		int rc = find_buf(w, ds, index, at, at + n, &buf, err);
		if (rc)
			return rc;
		uint64_t end = at + n;
		if (at < buf->init_rows)
			free_strings(ds, buf->data, at, end < buf->init_rows ? end : buf->init_rows);
		fill_rows(ds, buf->data, at < buf->init_rows ? at : buf->init_rows, end);
		mark_dirty(buf, at < buf->init_rows ? at : buf->init_rows, end);
		if (end > buf->init_rows)
			buf->init_rows = end;
		row += n;
		nrows -= n;
		if (row > ds->nrows)
			ds->nrows = row;
	}
	w->dirty = true;
	return 0;
}

/* Rows below UPTO are final: store every chunk that lies wholly below. */
int h5w_dset_seal(struct h5w *w, struct h5w_dset *ds, uint64_t upto, struct h5w_error *err)
{
	if (!h5w_in_current(w, ds->group))
		return 0; /* not in the file yet: kept until the next flush creates it */
	/* After a failed write (full disk) chunks wait for the next flush, which
	 * retries them: each attempt costs HDF5 a fresh allocation in the file,
	 * so retrying at every append would only inflate it. */
	if (w->store_failed)
		return 0;
	while (ds->nbufs > 0 && (ds->bufs[0].index + 1) * ds->chunk_rows <= upto) {
		struct h5w_chunkbuf *buf = &ds->bufs[0];
		if (buf->dirty_hi > buf->dirty_lo) {
			int rc = write_buf(w, ds, buf, true, err);
			if (rc)
				return rc; /* kept: retried by the next flush */
		} else {
			/* stored as it is by a flush (padded rows are fill either way) */
			release_buf(w, ds, buf);
		}
		drop_buf(ds, 0);
	}
	return 0;
}

/* Store every changed chunk, partial ones padded with fill. LZ4 jobs are in
 * flight on return; the caller waits for them (h5w_chunks_reap) before the
 * buffers change again. */
int h5w_dset_flush(struct h5w *w, struct h5w_dset *ds, struct h5w_error *err)
{
	for (size_t i = 0; i < ds->nbufs; i++) {
		if (ds->bufs[i].dirty_hi <= ds->bufs[i].dirty_lo)
			continue;
		int rc = write_buf(w, ds, &ds->bufs[i], false, err);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Store the rows of DS below ROWS only, and raise the extent to ROWS: the
 * frame index of a stream channel whose samples are stored only in part.
 * The rows from ROWS on stay in memory and dirty for the next flush; a
 * chunk with rows on both sides is written whole (the rows past the extent
 * stay invisible until it is raised) and stays dirty from ROWS on.
 */
int h5w_dset_flush_upto(struct h5w *w, struct h5w_dset *ds, uint64_t rows, struct h5w_error *err)
{
	uint64_t nrows = ds->nrows;
	if (rows >= nrows)
		return h5w_dset_flush(w, ds, err);
	if (rows <= ds->extent)
		return 0;
	int rc = 0;
	ds->nrows = rows; /* valid_end() stops there while the chunks are stored */
	for (size_t i = 0; !rc && i < ds->nbufs; i++) {
		struct h5w_chunkbuf *buf = &ds->bufs[i];
		uint64_t base = buf->index * ds->chunk_rows, hi = buf->dirty_hi;
		if (base >= rows)
			break; /* buffers are in chunk order */
		if (hi <= buf->dirty_lo)
			continue;
		rc = write_buf(w, ds, buf, false, err);
		if (!rc && base + hi > rows)
			mark_dirty(buf, rows - base, hi);
	}
	int reaped = h5w_chunks_reap(w, true, rc ? NULL : err); /* compressed: stored now */
	ds->nrows = nrows;
	return rc ? rc : reaped;
}

void h5w_dset_note_time(struct h5w_dset *ds, int64_t first, int64_t last)
{
	if (!ds->has_time) {
		ds->start_time = first;
		ds->end_time = last;
		ds->has_time = ds->start_dirty = ds->end_dirty = true;
		return;
	}
	if (first < ds->start_time) {
		ds->start_time = first;
		ds->start_dirty = true;
	}
	if (last > ds->end_time) {
		ds->end_time = last;
		ds->end_dirty = true;
	}
}

/* Forget rows from ROWS on: an append that could not be completed is taken
 * back whole, so the datasets of a group stay in step. Rows of samples were
 * never written, so only buffers change; pre-compressed chunks go to the
 * file as they come, and those of a frame taken back are put outside the
 * extent again (ROWS is then a chunk boundary: no chunk is cut). */
void h5w_dset_truncate(struct h5w *w, struct h5w_dset *ds, uint64_t rows)
{
	if (rows >= ds->nrows)
		return;
	for (size_t i = ds->nbufs; i-- > 0;) {
		struct h5w_chunkbuf *b = &ds->bufs[i];
		uint64_t base = b->index * ds->chunk_rows;
		if (base >= rows) {
			release_buf(w, ds, b);
			drop_buf(ds, i);
			continue;
		}
		uint64_t keep = rows - base;
		if (keep >= b->init_rows || b->encoded)
			break; /* an encoded chunk is whole: rows are taken back by chunks */
		free_strings(ds, b->data, keep, b->init_rows);
		b->init_rows = keep;
		if (b->dirty_hi > keep)
			b->dirty_hi = keep;
		if (b->dirty_lo >= b->dirty_hi)
			b->dirty_lo = b->dirty_hi = 0;
	}
	ds->nrows = rows;
	if (ds->extent > rows && ds->id != H5I_INVALID_HID)
		lower_extent(ds, rows);
}

/* The file DS's chunks were written to was abandoned: every buffered
 * chunk is to be written again, to a new place. */
void h5w_dset_unstore(struct h5w_dset *ds)
{
	for (size_t i = 0; i < ds->nbufs; i++) {
		struct h5w_chunkbuf *b = &ds->bufs[i];
		b->slot = 0;
		if (b->init_rows)
			mark_dirty(b, 0, b->init_rows);
	}
	ds->extent = 0;
	ds->start_dirty = ds->end_dirty = ds->has_time;
}

/* Is every row of DS in the file (all its chunks stored, extent exact)? */
bool h5w_dset_stored(const struct h5w_dset *ds)
{
	return ds->extent == ds->nrows && !earlier_unstored(ds, UINT64_MAX);
}

/* Forget the current file's rows (after it was closed, or abandoned). */
void h5w_dset_reset(struct h5w *w, struct h5w_dset *ds)
{
	for (size_t i = 0; i < ds->nbufs; i++) {
		struct h5w_chunkbuf *b = &ds->bufs[i];
		free_strings(ds, b->data, 0, b->encoded ? 0 : b->init_rows);
		free(b->data);
		w->buffered -= b->encoded ? b->encoded_len : (size_t)b->cap_rows * ds->row_bytes;
	}
	ds->nbufs = 0;
	ds->nrows = 0;
	ds->extent = 0;
	ds->has_time = ds->start_dirty = ds->end_dirty = false;
	ds->order_has = ds->order_broken = false;
	h5w_dset_forget(w, ds);
}

/* Free every buffer kept only for reuse (under memory pressure). */
static void drop_caches(struct h5w *w)
{
	for (size_t i = 0; i < w->ngroups; i++) {
		struct h5w_group *g = w->group_list[i];
		for (size_t j = 0; j < g->ndsets; j++) {
			struct h5w_dset *ds = &g->dsets[j];
			while (ds->nspares) {
				free(ds->spares[--ds->nspares]);
				w->buffered -= ds->chunk_bytes;
			}
		}
	}
	while (w->nouts) {
		w->nouts--;
		free(w->outs[w->nouts]);
		w->buffered -= w->out_caps[w->nouts];
	}
}
