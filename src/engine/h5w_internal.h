/*
 * h5w_internal.h - the engine's shared internals (not for use outside h5w*.c).
 *
 * Object model. The engine (struct h5w) owns logical groups (struct
 * h5w_group), one per stream group path, which live as long as the engine.
 * A group owns a fixed set of datasets (struct h5w_dset) decided by its
 * layout when the group is first named. HDF5 objects are tied to the current
 * file: `created_gen` remembers in which file generation a group exists.
 * Without SWMR a group is created in the file on its first data there.
 * Under SWMR a file's groups are all created before SWMR-write mode starts
 * (h5w_file.c): a group whose data finds no place in the current file is
 * `pending`, its data waits in memory, and the next flush starts a new file
 * holding it and every group that had data in the previous one (`carry`).
 * Dataset ids are opened on demand and kept in a bounded LRU list
 * (H5W_OPEN_DATASETS): an open dataset costs HDF5 tens of kB.
 *
 * Threading: everything here is touched only by the engine's caller thread,
 * except struct h5w_job, which the pool hands to one worker between submit
 * and completion (the worker reads job->raw and writes job->out).
 */
#ifndef H5REC_H5W_INTERNAL_H
#define H5REC_H5W_INTERNAL_H

#include <hdf5.h>
#include <pthread.h>
#include <zlib.h>

#include "chunk_filter.h"
#include "h5w.h"

#define H5W_INDEX_CHUNK 1024 /* rows per chunk of time/index datasets */
#define H5W_SPARES 8         /* chunk buffers a dataset keeps for reuse */
#define H5W_OUT_CACHE 8      /* compressed-output buffers kept for reuse */
#define H5W_PENDING_BYTES (16u << 20) /* buffered data that starts a file for waiting groups early */
#define H5W_OPEN_DATASETS 4096  /* dataset ids kept open at most (LRU) */
#define H5W_FLUSH_EVERY 256     /* chunk writes between two H5Fflush (h5w_file.c) */
#define H5W_WRITEBACK_BYTES (32u << 20) /* chunk bytes stored between two starts
					   of writeback (h5w_writeback.c) */
#define H5W_INLINE_ENCODE (64u << 10) /* chunks up to this are encoded without the
					 pool at flushes (h5w_chunk.c) */

/* A records row's state (its record_state column): readers can tell a
 * channel that was missing when the record closed (its fill stays) from
 * one that has not arrived yet. */
enum {
	H5W_RECORD_OPEN = 0,       /* more of the event may come (the fill) */
	H5W_RECORD_COMPLETE = 1,   /* closed with every channel (and fields) */
	H5W_RECORD_INCOMPLETE = 2, /* closed by timeout, max_open_records or the
				      file's end: what is missing keeps fill */
};

/* How a dataset's chunks reach the file. */
enum h5w_codec {
	H5W_CODEC_RAW,      /* no filter: a direct chunk write from the buffer */
	H5W_CODEC_POOL,     /* encoded by the pool (h5w_pipeline.c), direct chunk write */
	H5W_CODEC_PIPELINE, /* H5Dwrite through HDF5's own pipeline: variable-length
			       strings, whose chunks hold heap references */
};

/* The filters of a dataset, in the order HDF5 applies them. */
enum h5w_filter { H5W_FILTER_NONE, H5W_FILTER_DEFLATE, H5W_FILTER_LZ4, H5W_FILTER_SZIP };
/* szip's parameters as HDF5 stores them in the dataset (cd_values) */
enum { H5W_SZIP_MASK, H5W_SZIP_PPB, H5W_SZIP_BPP, H5W_SZIP_PPS, H5W_SZIP_NPARMS };
struct h5w_filters {
	bool shuffle;
	enum h5w_filter codec;
	int level;           /* deflate */
	uint32_t lz4_block;  /* lz4: block size, 0 = whole chunk */
	unsigned szip[H5W_SZIP_NPARMS]; /* szip: h5w_szip_params */
	bool fletcher32;
};

/* What one thread keeps between the chunks it encodes (h5w_pipeline.c). */
struct h5w_encoder {
	unsigned char *scratch;  /* the shuffled chunk */
	size_t scratch_cap;
	z_stream zs;
	bool deflate_ready;
	int level;
};

/* A chunk's worth of rows held in memory. Rows [0, init_rows) hold data or
 * fill; the rest is filled just before the chunk is written. */
struct h5w_chunkbuf {
	uint64_t index;        /* chunk number along axis 0 */
	unsigned char *data;   /* cap_rows rows */
	uint64_t cap_rows;     /* grows up to chunk_rows as rows arrive */
	uint64_t init_rows;
	uint64_t dirty_lo, dirty_hi; /* rows changed since last written (lo == hi: none) */
	size_t slot;           /* bytes its last write took in the file; 0: none
				  (a rewrite of that size stays in place) */
	/* A chunk that came encoded (issue 19) and cannot go to the file yet
	 * is held as it came: data is its encoded_len bytes, stored with
	 * encoded_mask, never decoded (h5w_dset_hold_encoded). */
	bool encoded;
	size_t encoded_len;
	uint32_t encoded_mask;
};

struct h5w_dset {
	char name[160];            /* name inside the group */
	struct h5w_group *group;
	const struct schema_channel *channel; /* NULL for time and index datasets */
	const struct schema_event_field *field; /* records: an event field's dataset */
	enum dtype dtype;
	size_t elem_size;          /* bytes per element in memory (string: char *) */
	uint64_t row_elems;        /* 1, or samples for records waveforms */
	size_t row_bytes;
	uint64_t chunk_rows;
	size_t chunk_bytes;
	enum h5w_codec codec;
	struct h5w_filters filters; /* H5W_CODEC_POOL */
	unsigned char fill[8];     /* one element of fill, in file byte order */
	bool user_fill;            /* fill is set in the dataset (becomes _FillValue) */
	bool is_time;              /* CF time attributes */
	bool is_scale;             /* a dimension scale */
	bool is_origin;            /* provenance: source_seq (h5w_origin) */
	bool is_origin_id;         /* provenance: source_msg_id (h5w_origin) */
	bool frame_index;          /* stream: _frame_time/_start/_seq, stored only
				      as far as their frames' samples are */
	bool event_table;          /* stream events: a column of the event table,
				      stored only as far as the samples its
				      rows point at are (h5w_events.c) */
	int scale_axis0;           /* index in group->dsets of axis-0 scale, -1: none */
	int scale_axis1;           /* records: index of sample_time, -1: none */
	hid_t id;                  /* H5I_INVALID_HID when not open */
	struct h5w_dset *lru_prev, *lru_next; /* open ids, most recently used first */
	uint64_t used_flush;       /* w->flushes when its id was last used */
	/* per file */
	uint64_t nrows;            /* rows in this file */
	uint64_t extent;           /* extent set in the file */
	uint64_t mark;             /* nrows before the current append (table) */
	int64_t start_time, end_time; /* of the data in this file */
	bool has_time;
	bool start_dirty, end_dirty; /* start_time/end_time changed since written */
	/* time axes (is_time), per file: the latest time of its rows, and
	 * whether a row came that was not later than every row before it */
	int64_t order_latest;
	bool order_has, order_broken;
	/* chunk buffers, ordered by index */
	struct h5w_chunkbuf *bufs;
	size_t nbufs, capbufs;
	unsigned char *spares[H5W_SPARES]; /* recycled chunk buffers */
	unsigned nspares;
};

/* records layout: an event whose row is assigned but not yet final; also
 * an open event of a stream's event table (h5w_events.c) */
struct h5w_record {
	uint64_t event_id;
	uint64_t row;
	int64_t opened;        /* when its first frame arrived (h5w_arrival) */
	bool have_fields;
	unsigned char *have;   /* per channel: waveform (stream: samples) arrived */
	uint64_t *span;        /* stream events, per channel: first sample, end */
};

/* records layout: ids of the events whose records closed most recently in
 * the current file, so that a frame arriving after its record closed is
 * refused instead of opening a second row (SPEC §4.2: one row per event).
 * A ring of H5W_CLOSED_EVENTS ids, oldest at `head`, found through a hash
 * of chains (`next`, `buckets`; UINT32_MAX ends a chain). One allocation,
 * made when the group's first record closes. */
#define H5W_CLOSED_EVENTS 4096u
struct h5w_closed_events {
	uint64_t *ids;
	uint32_t *next;
	uint32_t *buckets;
	uint32_t head, count;
};

struct h5w_group {
	char path[512];
	const struct schema_stream *stream;
	size_t nvalues;
	char **names, **values;      /* placeholder values, for attributes */
	uint64_t created_gen;        /* file generation it exists in; 0: none */
	uint64_t data_gen;           /* file generation it last took data for */
	bool pending;                /* SWMR: waits for the next file (h5w_file.c) */
	bool carry;                  /* SWMR: had data in the last file closed, so
					the next file is created with it */
	struct h5w_dset *dsets;
	size_t ndsets;
	size_t dsets_cap;           /* slots in dsets: what its layout plans */
	/* roles: indexes into dsets */
	size_t time_ds;              /* table/records: the shared time axis */
	size_t *chan_ds;             /* per channel: its data dataset */
	size_t *chan_time_ds;        /* table: its time axis; stream: frame_time */
	size_t *frame_start_ds, *frame_seq_ds; /* stream */
	/* provenance (schemas with sources): the stream sequence of the
	 * message each row came from; table and records: on the shared time
	 * axis (SIZE_MAX: none); stream: per channel, in its frame index */
	size_t origin_ds;
	size_t *frame_origin_ds;
	/* the sender's id of that message: records (SIZE_MAX: none) and
	 * stream frames only, a table's rows being many per message */
	size_t origin_id_ds;
	size_t *frame_origin_id_ds;
	size_t event_id_ds, sample_time_ds;    /* records */
	size_t record_state_ds;                /* records: H5W_RECORD_* per row */
	size_t *field_ds;            /* records, stream events: per event field */
	/* stream events: the event table uses time_ds (event_time),
	 * event_id_ds, record_state_ds (event_state), field_ds and these,
	 * per channel: the first sample and the sample count of an event */
	size_t *ev_start_ds, *ev_count_ds;
	unsigned char *seen;         /* table: channels present in the row */
	/* records */
	struct h5w_record *records;  /* open records (stream: events), oldest first */
	size_t nrecords;
	struct h5w_closed_events closed; /* recently closed event ids */
	struct h5w_group *hash_next;
	/* time order (h5w_time.c), counted since the engine opened */
	struct h5w_time_counts time;
	bool time_listed;            /* in w->time_groups */
	bool monotonic_written;      /* value of `time_monotonic` in the file */
};

struct h5w_job {
	struct h5w_dset *dset;
	uint64_t index;            /* chunk number */
	unsigned char *raw;        /* chunk_bytes of input */
	bool owns_raw;             /* raw is freed (or recycled) after writing */
	size_t raw_len;
	uint64_t rows;             /* rows of the chunk holding data */
	bool final;                /* the chunk's rows are final (sealed) */
	size_t slot;               /* in: bytes its last write took (0: none) */
	unsigned char *out;
	size_t out_cap, out_len;   /* out_len: the bytes to store, padded */
	uint64_t dirty_lo;         /* first row the chunk buffer had changed */
	int status;                /* worker's result */
	bool finished;             /* encoded (guarded by the pool's lock) */
	struct h5w_job *next;      /* work queue */
	struct h5w_job *order_next; /* submission order */
};

struct h5w_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;       /* jobs queued or stopping */
	pthread_cond_t done;       /* the oldest job completed */
	struct h5w_job *queue_head, *queue_tail; /* waiting for a worker */
	struct h5w_job *order_head, *order_tail; /* every pending job, oldest first */
	unsigned pending;          /* submitted and not yet taken back */
	bool stopping;
	pthread_t *threads;
	unsigned nthreads;
};

struct h5w {
	const struct schema *schema;
	char *host, *run;
	char *shard; /* {shard}; NULL: none */
	int64_t run_start, run_restarted;
	struct h5w_attr *run_attrs;  /* copies (names and strings malloc'd) */
	size_t nrun_attrs;
	uint64_t run_files;          /* files started in the run */
	unsigned max_open_records;
	int64_t now;
	int64_t arrived;             /* arrival time of the data being appended */
	int64_t horizon;             /* nothing that arrived before it is to come */
	uint64_t origin;             /* stream sequence of the message being
					appended (h5w_origin); 0: none */
	const char *origin_id;       /* its sender's id, "" none; the caller's
					memory, valid until the next h5w_origin */
	/* groups */
	struct h5w_group **hash;
	size_t hash_size, ngroups;
	struct h5w_group **group_list; /* creation order */
	size_t open_records;         /* records layout: open in every group */
	/* the current file */
	hid_t file;                  /* H5I_INVALID_HID: none open */
	bool swmr_active;
	size_t npending;             /* groups waiting for the next file */
	uint64_t pending_bytes;      /* bytes appended to them meanwhile */
	uint64_t pending_rows;       /* rows of them, for stats.file_rows */
	int64_t pending_since;       /* engine time of the first of them: the
					next file is named and rolled by it */
	struct h5w_dset *lru_head, *lru_tail; /* open dataset ids (H5W_OPEN_DATASETS) */
	hid_t dapl_nocache;          /* dataset access: no chunk cache */
	unsigned nopen;
	unsigned writes_unflushed;   /* chunk writes since the last H5Fflush */
	unsigned flush_every;        /* ...that make one between flushes */
	uint64_t flushes;            /* flushes begun: ages the open ids */
	uint64_t gen;                /* file generation, +1 per file */
	uint64_t file_groups;        /* groups that took data in the current file */
	bool switching;              /* SWMR: closing a file only to take new
					groups, not rolling (forget_file) */
	char file_name[4096];        /* its name (family: the pattern HDF5 expands) */
	char part_name[4096];        /* where it is built before it gets its name */
	unsigned seq;                /* next {seq} */
	unsigned file_seq;           /* {seq} of the current file */
	int64_t file_created;
	int64_t roll_period_end;     /* engine time at which to roll; 0: never */
	uint64_t file_bytes;         /* chunk bytes written to the current file */
	uint64_t file_rows;
	int64_t last_flush;
	bool dirty;                  /* data appended since the last flush */
	bool store_failed;           /* a chunk write failed: chunks wait for the
					next flush instead of being retried at
					every append */
	bool hdf5_failed;            /* HDF5 met an I/O error writing: the file
					ends at the next flush (h5w_file.c) */
	char unclosed[4096];         /* the first file HDF5 could not close (a
					write failed): h5w_close() then fails */
	int64_t retried_at;          /* engine time of the last early retry */
	uint64_t space_budget;       /* chunk bytes writable before the next
					check of output.min_free (h5w_space.c) */
	char space_why[192];         /* why the last space check refused */
	uint64_t writeback_due;      /* chunk bytes stored since writeback was
					last started (h5w_writeback.c) */
	/* conversion */
	hid_t conv_dxpl;
	hid_t str_type;              /* variable-length UTF-8 string */
	unsigned char *conv_buf;
	unsigned char *scratch;      /* converted samples on their way to a chunk */
	size_t scratch_cap;
	size_t conv_cap;
	/* pre-compressed chunks decoded (h5w_encoded.c): the codec's output,
	 * then the unshuffled chunk */
	unsigned char *decoded;
	size_t decoded_cap;
	/* compression */
	struct h5w_pool pool;
	struct h5w_encoder encoder;  /* small chunks encoded on this thread */
	bool encode_inline;          /* ...at a periodic flush (h5w_file.c) */
	uint64_t buffered;           /* bytes of chunk buffers + pool outputs */
	unsigned max_inflight;       /* compression jobs queued at most */
	unsigned char *outs[H5W_OUT_CACHE]; /* reusable output buffers */
	size_t out_caps[H5W_OUT_CACHE];
	unsigned nouts;
	unsigned char *pad;          /* a padded whole chunk on its way to the file */
	size_t pad_cap;
	struct h5w_stats stats;
	/* the first groups whose rows broke time order or the time window,
	 * for stats (h5w_time.c) */
	struct h5w_group *time_groups[H5W_TIME_GROUPS];
	size_t ntime_groups;
	uint64_t time_groups_unlisted;
};

/* Does G exist in the current file (so its chunks can be stored)? */
static inline bool h5w_in_current(const struct h5w *w, const struct h5w_group *g)
{
	return w->file != H5I_INVALID_HID && g->created_gen == w->gen;
}

/* Does G take data now: it exists in the current file, or waits for the
 * next one with its data in memory? */
static inline bool h5w_in_file(const struct h5w *w, const struct h5w_group *g)
{
	return h5w_in_current(w, g) || g->pending;
}

/* N more rows (or samples) for G: in the current file or the next. */
static inline void h5w_count_rows(struct h5w *w, const struct h5w_group *g, uint64_t n)
{
	if (g->pending)
		w->pending_rows += n;
	else
		w->file_rows += n;
}

/* h5w_time.c: the time order and plausibility of rows. */
/* Is TIME outside output.time_window around the receive time? Counted for
 * G; true when the row is to be dropped (time_window.reject). */
bool h5w_time_rejected(struct h5w *w, struct h5w_group *g, int64_t time);
/* A row at TIME was appended to the time axis T of G. */
void h5w_time_note(struct h5w *w, struct h5w_group *g, struct h5w_dset *t, int64_t time);
/* Are all of G's time axes strictly increasing in the current file? */
bool h5w_time_monotonic(const struct h5w_group *g);

/* h5w_error.c */
void h5w_err(struct h5w *w, struct h5w_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int h5w_err_hdf5(struct h5w *w, struct h5w_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* h5w_space.c */
int h5w_space_check(struct h5w *w, uint64_t bytes, bool raw);
void h5w_space_used(struct h5w *w, uint64_t bytes);
void h5w_space_recheck(struct h5w *w);

/* h5w_writeback.c */
void h5w_writeback_note(struct h5w *w, uint64_t bytes);

/* h5w_convert.c */
hid_t h5w_file_type(const struct h5w *w, enum dtype dtype);
int h5w_convert_init(struct h5w *w);
void h5w_convert_free(struct h5w *w);
int h5w_convert(struct h5w *w, enum dtype from, enum dtype to, const void *src, size_t n,
		void *dst, struct h5w_error *err);
bool h5w_convert_has_fast(enum dtype from, enum dtype to);
void h5w_convert_fast(enum dtype from, enum dtype to, const void *src, size_t n, void *dst,
		      uint64_t *clipped);

/* h5w_pipeline.c */
void h5w_szip_params(unsigned coding, unsigned pixels_per_block, size_t elem, uint64_t chunk_rows,
		     uint64_t row_elems, unsigned cd[H5W_SZIP_NPARMS]);
size_t h5w_pipeline_bound(const struct h5w_filters *f, size_t raw_len);
int h5w_pipeline_encode(struct h5w_encoder *e, const struct h5w_filters *f,
			const unsigned char *raw, size_t raw_len, size_t elem, unsigned char *out,
			size_t out_cap, size_t *out_len);
void h5w_encoder_free(struct h5w_encoder *e);
void h5w_job_encode(struct h5w_job *job, struct h5w_encoder *encoder);
size_t h5w_pipeline_slot(size_t len, size_t slot, size_t max, uint64_t rows, uint64_t chunk_rows,
			 bool final);
size_t h5w_pipeline_finish(const struct h5w_filters *f, unsigned char *out, size_t len,
			   size_t size);

/* h5w_encoded.c: chunks that arrive encoded (issue 19) */
int h5w_encoded_check(struct h5w *w, const struct h5w_dset *ds, const struct h5w_encoded *c,
		      bool decode, struct h5w_error *err);
const unsigned char *h5w_encoded_decode(struct h5w *w, const struct h5w_dset *ds,
					const struct h5w_encoded *c, struct h5w_error *err);

/* h5w_pool.c */
int h5w_pool_start(struct h5w_pool *pool, unsigned nthreads);
void h5w_pool_stop(struct h5w_pool *pool);
void h5w_pool_submit(struct h5w_pool *pool, struct h5w_job *job);
struct h5w_job *h5w_pool_take(struct h5w_pool *pool, bool wait);

/* h5w_chunk.c */
int h5w_dset_put(struct h5w *w, struct h5w_dset *ds, uint64_t row, const void *rows,
		 uint64_t nrows, struct h5w_error *err);
int h5w_dset_put_string(struct h5w *w, struct h5w_dset *ds, uint64_t row, const char *s,
			struct h5w_error *err);
int h5w_dset_write_row(struct h5w *w, struct h5w_dset *ds, uint64_t row, const void *data,
		       struct h5w_error *err);
int h5w_dset_write_encoded(struct h5w *w, struct h5w_dset *ds, uint64_t index,
			   const struct h5w_encoded *c, struct h5w_error *err);
int h5w_dset_hold_encoded(struct h5w *w, struct h5w_dset *ds, uint64_t index,
			  const struct h5w_encoded *c, struct h5w_error *err);
int h5w_dset_fill(struct h5w *w, struct h5w_dset *ds, uint64_t row, uint64_t nrows,
		  struct h5w_error *err);
int h5w_dset_seal(struct h5w *w, struct h5w_dset *ds, uint64_t upto, struct h5w_error *err);
int h5w_dset_flush(struct h5w *w, struct h5w_dset *ds, struct h5w_error *err);
int h5w_dset_flush_upto(struct h5w *w, struct h5w_dset *ds, uint64_t rows, struct h5w_error *err);
int h5w_chunks_reap(struct h5w *w, bool wait_all, struct h5w_error *err);
void h5w_dset_reset(struct h5w *w, struct h5w_dset *ds);
void h5w_dset_unstore(struct h5w_dset *ds);
void h5w_dset_truncate(struct h5w *w, struct h5w_dset *ds, uint64_t rows);
bool h5w_dset_stored(const struct h5w_dset *ds);
void h5w_dset_note_time(struct h5w_dset *ds, int64_t first, int64_t last);

/* h5w_layout.c */
int h5w_layout_plan(struct h5w *w, struct h5w_group *g, struct h5w_error *err);
void h5w_layout_describe(const struct h5w_group *g, const struct h5w_dset *ds,
			 struct h5w_dataset_info *info);
int h5w_layout_create(struct h5w *w, struct h5w_group *g, struct h5w_error *err);
int h5w_layout_times(struct h5w *w, struct h5w_group *g, struct h5w_error *err);
/* The run's end time in the current file's root attribute run_end. */
int h5w_root_run_end(struct h5w *w, int64_t end, struct h5w_error *err);
int h5w_root_attrs(struct h5w *w, struct h5w_error *err);

/* h5w_file.c */
int h5w_file_group(struct h5w *w, struct h5w_group *g, struct h5w_error *err);
uint64_t h5w_file_groups(const struct h5w *w);
int h5w_file_start_pending(struct h5w *w, struct h5w_error *err);
int h5w_file_flush(struct h5w *w, struct h5w_error *err);
int h5w_file_roll(struct h5w *w, struct h5w_error *err);
int h5w_file_close(struct h5w *w, struct h5w_error *err);
int h5w_fsync_path(struct h5w *w, const char *path, struct h5w_error *err);
void h5w_file_wrote_chunk(struct h5w *w);
int h5w_dset_open(struct h5w *w, struct h5w_dset *ds, struct h5w_error *err);
void h5w_dset_adopt(struct h5w *w, struct h5w_dset *ds, hid_t id);
hid_t h5w_dset_dapl(struct h5w *w, const struct h5w_dset *ds);
void h5w_dset_forget(struct h5w *w, struct h5w_dset *ds);
void h5w_datasets_close(struct h5w *w);
int64_t h5w_roll_boundary(int64_t now, int64_t every);

/* h5w_records.c */
int h5w_records_data(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		     size_t channel, enum dtype wire, const void *samples, size_t n,
		     struct h5w_error *err);
int h5w_records_fields(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t time,
		       const struct h5w_value *fields, size_t nfields, struct h5w_error *err);
int h5w_records_encoded(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
			size_t channel, const struct h5w_encoded *chunk, struct h5w_error *err);
int h5w_records_close(struct h5w *w, struct h5w_group *g, uint64_t event_id,
		      struct h5w_error *err);
int h5w_records_expire(struct h5w *w, struct h5w_group *g, bool all, struct h5w_error *err);
void h5w_records_free(struct h5w *w, struct h5w_group *g);
void h5w_records_destroy(struct h5w *w, struct h5w_group *g);
int h5w_records_seal(struct h5w *w, struct h5w_group *g, struct h5w_error *err);
int h5w_records_pad(struct h5w *w, struct h5w_group *g, struct h5w_error *err);
/* shared with stream events (h5w_events.c) */
bool h5w_closed_has(const struct h5w_group *g, uint64_t event_id);
void h5w_closed_remember(struct h5w_group *g, uint64_t event_id);
int h5w_field_put(struct h5w *w, struct h5w_group *g, uint64_t row, const struct h5w_value *v,
		  struct h5w_error *err);

/* h5w_events.c: the event table of a stream group (stream->events) */
int h5w_events_begin(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t t0,
		     size_t *index, bool *opened, struct h5w_error *err);
void h5w_events_undo(struct h5w *w, struct h5w_group *g, size_t index);
void h5w_events_span(struct h5w *w, struct h5w_group *g, size_t index, size_t channel,
		     uint64_t first, uint64_t n);
int h5w_events_fields(struct h5w *w, struct h5w_group *g, uint64_t event_id, int64_t time,
		      const struct h5w_value *fields, size_t nfields, struct h5w_error *err);
int h5w_events_close(struct h5w *w, struct h5w_group *g, uint64_t event_id,
		     struct h5w_error *err);
int h5w_events_expire(struct h5w *w, struct h5w_group *g, bool all, struct h5w_error *err);
int h5w_events_pad(struct h5w *w, struct h5w_group *g, struct h5w_error *err);
int h5w_events_store(struct h5w *w, struct h5w_group *g, struct h5w_error *err);
int h5w_events_seal(struct h5w *w, struct h5w_group *g, struct h5w_error *err);

/* Does G keep open events (records, or a stream's event table)? */
static inline bool h5w_has_events(const struct h5w_group *g)
{
	return g->stream->layout == SCHEMA_LAYOUT_RECORDS ||
	       (g->stream->layout == SCHEMA_LAYOUT_STREAM && g->stream->events);
}

/* h5w.c */
unsigned char *h5w_scratch(struct h5w *w, size_t bytes);

/* h5w_table.c, h5w_stream.c: the group is ready for data (h5w.c saw to it). */
int h5w_table_put(struct h5w *w, struct h5w_group *g, int64_t time,
		  const struct h5w_value *values, size_t nvalues, struct h5w_error *err);
int h5w_stream_put(struct h5w *w, struct h5w_group *g, size_t channel, enum dtype wire,
		   const void *samples, size_t n, int64_t t0, uint64_t seq,
		   struct h5w_error *err);
uint64_t h5w_frames_stored(const struct h5w_group *g, size_t channel);
int h5w_stream_encoded(struct h5w *w, struct h5w_group *g, size_t channel,
		       const struct h5w_encoded *chunks, size_t nchunks, int64_t t0, uint64_t seq,
		       struct h5w_error *err);

#endif
