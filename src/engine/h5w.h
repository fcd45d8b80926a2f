/*
 * h5w.h - the storage engine: appends samples, rows and records to HDF5
 * files laid out as SPEC §4 describes, in the terms of the schema.
 *
 * One engine writes the files of one schema. Its API is not thread-safe: the
 * daemon calls it from a single writer thread, and that thread is the only
 * one that ever calls HDF5. Internally the engine runs a pool of compression
 * workers (LZ4) that never touch HDF5; the writer thread hands them whole
 * chunks and writes their results with direct chunk writes.
 *
 * Time is int64 nanoseconds since the Unix epoch. The engine has no clock of
 * its own: the caller passes "now" to h5w_tick() (and to h5w_open()), which
 * drives record timeouts, periodic flushes and UTC-interval rolling, so tests
 * are deterministic.
 *
 * Every function returns 0 or a negative errno code; on failure it fills the
 * caller's struct h5w_error with one line of context (file, group, dataset,
 * and the innermost HDF5 error messages). The engine never aborts the process.
 *
 * Codes: -EINVAL bad argument (unknown channel, wrong waveform length, dtype
 * not convertible), -EMLINK group limit (limits.max_groups), -ENOBUFS the
 * buffers would exceed limits.max_buffer, -ENOSPC disk full (-EFBIG the
 * file-size limit, -EAGAIN no file can be created now: the directory is
 * not writable, descriptors are exhausted, an I/O error), see below, -EIO
 * any other HDF5 or file-system failure, -ENOMEM, -ESTALE a frame of an
 * event whose record already closed (dropped, see h5w_record_data).
 *
 * A full disk loses nothing that was accepted. The engine keeps
 * output.min_free bytes free (h5w_space.c): a chunk write that would eat
 * into that reserve is not attempted, and one that fails anyway is kept
 * too; the chunk stays in memory and the next flush stores it, returning
 * the error while it persists; extents only ever cover stored chunks. The
 * reserve lets HDF5 flush and close the file on a "full" disk.
 *
 * So from the append functions -ENOSPC, -EFBIG (file-size limit) and
 * -EAGAIN (no file can be created) mean "accepted and held in memory, not
 * yet stored": nothing is lost (h5w_held()). An append
 * is buffered whole or refused whole; -ENOBUFS refuses it (the held data
 * fills limits.max_buffer, or no file can be started): nothing of it was
 * taken, and the caller should stop reading and offer it again once a
 * flush succeeds. The flush that finally stores what was held closes that
 * file (stats.full_episodes), so the data after a full disk starts a new
 * file. h5w_roll() on a full disk returns -ENOBUFS and closes nothing.
 */
#ifndef H5REC_H5W_H
#define H5REC_H5W_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"

/* RC says the data is held in memory, not lost: the output refuses it for
 * now (a full disk, a file-size limit, a file that cannot be created). */
static inline bool h5w_held(int rc)
{
	return rc == -ENOSPC || rc == -EFBIG || rc == -EAGAIN;
}

/* The root attribute `Conventions`: the CF version whose rules the files
 * meet, with the exceptions docs/engine.md lists. */
#define H5W_CONVENTIONS "CF-1.8"

struct h5w;       /* the engine */
struct h5w_group; /* one stream group (e.g. "/15"); valid until h5w_close() */

struct h5w_error {
	char message[512];
};

/* A root attribute given by the user (a run's). */
struct h5w_attr {
	const char *name;
	enum { H5W_ATTR_INT, H5W_ATTR_FLOAT, H5W_ATTR_STRING } type;
	int64_t i;
	double f;
	const char *s;
};

/* A run (h5w_run_start): what every file of it records at its root. */
struct h5w_run {
	const char *name;     /* `{run}` and root attribute `run` */
	int64_t start;        /* ns since 1970: root attribute `run_start` */
	int64_t restarted;    /* ns: the recorder restarted during the run
				 (`run_restarted` in the next file); 0: no */
	const struct h5w_attr *attrs; /* more root attributes, for every file */
	size_t nattrs;
};

struct h5w_options {
	const char *host;          /* root attribute `host`; NULL: gethostname() */
	const char *run;           /* `{run}` and root attribute `run`; NULL: none */
	const char *shard;         /* `{shard}`; NULL: empty */
	const struct h5w_run *run_state; /* a whole run to start in (overrides run) */
	unsigned workers;          /* compression threads; 0: online CPUs */
	unsigned max_open_records; /* records layout, per group; 0: 16 */
};

/*
 * Start an engine for SCHEMA (which must outlive it). No file is created
 * until data arrives: under SWMR at the first flush after it, with every
 * group that had data by then (see h5w_file.c). NOW is the current time.
 */
int h5w_open(struct h5w **out, const struct schema *schema, const struct h5w_options *options,
	     int64_t now, struct h5w_error *err);

/*
 * Write everything, close the current file with exact extents and final
 * attributes, stop the workers and free the engine. Returns the first error
 * met while closing; the engine is freed in every case.
 */
int h5w_close(struct h5w *engine, struct h5w_error *err);

/*
 * Files HDF5 failed to close in this process (after a write error). HDF5
 * still holds them, and its own exit handler (H5close) crashes on them:
 * a process that saw any must leave without exit handlers (_exit).
 */
unsigned long h5w_unclosed_files(void);

/*
 * Is the HDF5 file at PATH marked as open for writing? Its superblock says
 * so (the file consistency flags: version 2 and 3 at byte 11, 0 and 1 at
 * byte 20) while a writer has it open, and a writer that died leaves it
 * so: readers other than SWMR's then refuse it until `h5clear -s`. 1 yes,
 * 0 no (closed cleanly), -1 not known (unreadable, or no superblock at the
 * start: a user block, a family member other than the first).
 */
int h5w_file_marked_open(const char *path);

/*
 * The group of STREAM named by placeholder values (names[i] = values[i]),
 * created in a file on its first data (under SWMR: in the next file started,
 * its data held until then). Values must already be validated
 * (schema_placeholder_value_valid). limits.max_groups bounds the groups
 * that take data in one file: data for a group new to a file in which that
 * many took data already is refused with -EMLINK (until the next file). The engine keeps
 * at most twice that many groups named (-EMLINK beyond): those of the
 * current file and of the last; a caller that names groups without end
 * (junk placeholder values) gives back the idle ones (h5w_group_retire).
 */
int h5w_group_get(struct h5w *engine, const struct schema_stream *stream,
		  const char *const *names, const char *const *values, size_t nvalues,
		  struct h5w_group **out, struct h5w_error *err);

/*
 * Did G take no data in the last file closed, nor since (and is it not
 * carried into the next, under SWMR)? Such a group holds no data and no
 * HDF5 object: h5w_group_retire may free it.
 */
bool h5w_group_idle(const struct h5w *engine, const struct h5w_group *g);

/*
 * Forget an idle group (h5w_group_idle); naming it again (h5w_group_get)
 * makes it anew. -EBUSY, and nothing done, when it is not idle.
 */
int h5w_group_retire(struct h5w *engine, struct h5w_group *g);

/* A single value of a table row or of an event's fields. `index` is the
 * channel's index in stream->channels (table) or the field's index in
 * stream->event_fields (records). `dtype` is the value's wire type; the
 * matching member of `v` holds it (DTYPE_STRING: v.s, NUL-terminated). */
struct h5w_value {
	size_t index;
	enum dtype dtype;
	union {
		int8_t i8;
		uint8_t u8;
		int16_t i16;
		uint16_t u16;
		int32_t i32;
		uint32_t u32;
		int64_t i64;
		uint64_t u64;
		float f32;
		double f64;
		const char *s;
	} v;
};

/*
 * layout: table. One row at TIME holding VALUES; declared channels that are
 * absent get their fill value. Values of own_time channels go to the
 * channel's own time axis instead; a call holding only such values adds no
 * row to the shared axis.
 */
int h5w_table_append(struct h5w *engine, struct h5w_group *group, int64_t time,
		     const struct h5w_value *values, size_t nvalues, struct h5w_error *err);

/*
 * layout: stream. Append N samples of wire type WIRE to CHANNEL (index in
 * stream->channels); T0 is the time of the first sample and SEQ the frame's
 * sequence number, both recorded in the channel's frame index.
 */
int h5w_stream_append(struct h5w *engine, struct h5w_group *group, size_t channel,
		      enum dtype wire, const void *samples, size_t n, int64_t t0, uint64_t seq,
		      struct h5w_error *err);

/*
 * The same, for a frame that is part of event EVENT_ID (0: of none). In a
 * stream with `events: true` the samples go where any frame's go, and the
 * event's row of the group's event table (opened by its first frame, DATA
 * or EVENT) covers them: per channel its first sample and the samples up
 * to the end of its last frame. The event's fields come with
 * h5w_record_fields. An event closes record_timeout after its first frame
 * arrived, when max_open_records newer events are open, on
 * h5w_record_close or when its file closes; a frame of an event that
 * closed in this file is stored as samples outside any event (counted in
 * stats.event_frames_late). Without `events`, EVENT_ID is ignored.
 */
int h5w_stream_append_event(struct h5w *engine, struct h5w_group *group, size_t channel,
			    enum dtype wire, const void *samples, size_t n, int64_t t0,
			    uint64_t seq, uint64_t event_id, struct h5w_error *err);

/*
 * layout: records. The waveform of CHANNEL for event EVENT_ID (exactly
 * stream->samples samples of type WIRE). The first frame of an event opens
 * its record and assigns its row; T0 is the record's time until the event's
 * fields arrive. EVENT_ID 0 makes a record of its own, closed at once.
 * -ESTALE when the event's record already closed in this file (timeout,
 * max_open_records, complete, or h5w_record_close; the last 4096 closed ids
 * per group are remembered): the data is dropped, never given a second row.
 */
int h5w_record_data(struct h5w *engine, struct h5w_group *group, uint64_t event_id, int64_t t0,
		    size_t channel, enum dtype wire, const void *samples, size_t n,
		    struct h5w_error *err);

/* A chunk a sender encoded with the channel's filter pipeline (issue 19):
 * its bytes as HDF5 stores them, the HDF5 filter mask (bit i: filter i
 * skipped) and the size it decodes to. */
struct h5w_encoded {
	const void *data;
	size_t len;
	uint32_t filter_mask;
	uint64_t raw_size;
};

/*
 * layout: records, pre-compressed. The waveform of CHANNEL for EVENT_ID as
 * one encoded chunk (the channel's chunk is one record: `chunk: 1`), in the
 * channel's own dtype. It is checked first, without decoding where the
 * pipeline allows (Fletcher-32 over the stored bytes, LZ4's block table,
 * deflate's header) or decoded whole with `verify_chunks: decode`; a chunk
 * that fails is refused with -EBADMSG and touches nothing. It is then
 * written as it is with a direct chunk write, or, where the row cannot go
 * to the file now (its group waits for the next file, earlier chunks wait
 * for space), held as it came (its bytes count against limits.max_buffer)
 * and written as it is when its row goes out. Otherwise as
 * h5w_record_data.
 */
int h5w_record_encoded(struct h5w *engine, struct h5w_group *group, uint64_t event_id,
		       int64_t t0, size_t channel, const struct h5w_encoded *chunk,
		       struct h5w_error *err);

/*
 * layout: stream, pre-compressed. NCHUNKS whole chunks of CHANNEL that a
 * sender encoded with its pipeline (each decodes to the channel's chunk),
 * appended as one frame (T0, SEQ in the frame index, as
 * h5w_stream_append). The channel's samples in this file must end at a
 * chunk boundary (-EINVAL otherwise: a channel takes samples or chunks,
 * not both). Every chunk is checked first (-EBADMSG, nothing taken), then
 * stored as it is, or held as it is where it cannot go to the file now, as
 * in h5w_record_encoded. EVENT_ID as in h5w_stream_append_event: in a
 * stream with `events`, the event's row covers the chunks' samples.
 */
int h5w_stream_append_encoded(struct h5w *engine, struct h5w_group *group, size_t channel,
			      const struct h5w_encoded *chunks, size_t nchunks, int64_t t0,
			      uint64_t seq, uint64_t event_id, struct h5w_error *err);

/* The event's scalar fields (index into stream->event_fields) and its time,
 * for a records group or a stream with events (h5w_stream_append_event).
 * -ESTALE as for h5w_record_data. */
int h5w_record_fields(struct h5w *engine, struct h5w_group *group, uint64_t event_id,
		      int64_t time, const struct h5w_value *fields, size_t nfields,
		      struct h5w_error *err);

/* Close an event's record now; channels still missing keep their fill value
 * and are counted (a stream's event: its span is final). -ENOENT when no
 * such record is open. */
int h5w_record_close(struct h5w *engine, struct h5w_group *group, uint64_t event_id,
		     struct h5w_error *err);

/*
 * When the data of the next calls arrived at the recorder. A record is
 * opened at the arrival time of its first frame, and record_timeout is
 * measured from there (h5w_tick): the timeout is the sender's lateness, not
 * the recorder's. Without it, the time of the last h5w_tick stands in.
 */
void h5w_arrival(struct h5w *engine, int64_t arrived);

/*
 * Where the data of the next calls came from: the JetStream stream
 * sequence of the broker message that carried it, 0 for data from a
 * listener, and the sender's id of that message (its Nats-Msg-Id,
 * SENDER:N; valid UTF-8; NULL or "": none). In a schema with sources,
 * every table and records row and every frame of a stream records the
 * sequence (`source_seq`, `<channel>_frame_source_seq`), so that a message
 * stored by two recorders (after a failover) can be told from the files
 * alone; records rows and stream frames also record the id
 * (`source_msg_id`, `<channel>_frame_source_msg_id`), which names the
 * sender. MSG_ID is read during the calls that follow only, until the next
 * h5w_origin(): the engine copies what it keeps.
 */
void h5w_origin(struct h5w *engine, uint64_t stream_seq, const char *msg_id);

/*
 * Advance the engine's clock to NOW: roll when a UTC boundary of roll.every
 * has passed or the file reached roll.size, and flush when output.flush has
 * elapsed since the last flush. Close records opened more than their
 * record_timeout before HORIZON, the arrival time before which nothing more
 * can come (the oldest data still queued for the engine, or NOW): so a
 * writer that is behind (a disk stall, back-pressure) never closes a
 * record whose frames arrived within record_timeout of each other. Call it
 * often (at least every output.flush / 4).
 */
int h5w_tick(struct h5w *engine, int64_t now, int64_t horizon, struct h5w_error *err);

/* Make everything appended so far durable: all datasets current with exact
 * extents, H5Fflush, fsync. */
int h5w_flush(struct h5w *engine, struct h5w_error *err);

/* Close the current file (exact extents); the next data starts a new file.
 * Open records are closed first; data of groups waiting for a file gets one
 * of its own, so everything appended so far is durable on return. */
int h5w_roll(struct h5w *engine, struct h5w_error *err);

/*
 * Runs. h5w_run_start rolls (as h5w_roll; -ENOBUFS and nothing changed
 * while a full disk holds data) and makes RUN (copied) the run of every
 * file from the next on: `{run}` in their names, root attributes `run`,
 * `run_start`, `run_end` (0 until the run ends in that file),
 * `run_restarted` (in the first file after a restart) and the run's own;
 * `file_sequence` orders the files of a run. h5w_run_stop writes `run_end` = END into the
 * run's current file and rolls; 1 when the run had no file open (its last
 * one was closed already: no `run_end` is written). -EINVAL: no run.
 */
int h5w_run_start(struct h5w *engine, const struct h5w_run *run, struct h5w_error *err);
int h5w_run_stop(struct h5w *engine, int64_t end, struct h5w_error *err);

/* Rows of one group, counted since the engine opened: rows not later than
 * a row before them on the same time axis of the same file (back in time,
 * or a repeated time), rows whose time lies outside output.time_window
 * around their receive time, and of those the ones dropped
 * (time_window.reject). */
struct h5w_time_counts {
	uint64_t not_increasing;
	uint64_t implausible;
	uint64_t rejected;
};

/* Groups listed by name in stats (the first ones to count anything). */
#define H5W_TIME_GROUPS 16

struct h5w_time_groups {
	size_t n;
	struct {
		char path[512];
		struct h5w_time_counts counts;
	} group[H5W_TIME_GROUPS];
	uint64_t unlisted; /* more groups that counted some */
};

struct h5w_stats {
	uint64_t samples_written;  /* values accepted, all layouts */
	uint64_t samples_clipped;  /* values clipped by dtype conversion */
	uint64_t missing_channels; /* record channels left at fill */
	uint64_t records_closed;
	uint64_t events_closed;         /* stream event tables: events closed */
	uint64_t events_without_fields; /* ...of them without their EVENT frame */
	uint64_t event_frames_late;     /* DATA frames of an event closed already:
					   stored as samples outside any event */
	uint64_t chunks_written;
	/* chunks senders sent pre-compressed (issue 19): stored as they came
	 * (also after waiting, held encoded, for their file or for space),
	 * decoded (a held chunk that rows were put into, only partly
	 * covering it: none in practice), refused by the checks
	 * (h5w_encoded.c) */
	uint64_t chunks_precompressed, chunks_decoded, chunks_refused;
	uint64_t bytes_raw;        /* chunk bytes before compression */
	uint64_t bytes_compressed; /* chunk bytes as stored */
	uint64_t buffered_bytes;   /* chunk memory held now */
	uint64_t groups;           /* groups known to the engine */
	uint64_t file_groups;      /* groups that took data in the current file
				      (and, under SWMR, wait for the next) */
	uint64_t groups_retired;   /* h5w_group_retire */
	uint64_t files_closed;
	uint64_t errors;
	uint64_t losses;           /* times data already accepted was dropped (a
				      chunk that could not be kept, a file ended
				      by a failed fsync or closed with chunks it
				      could not store): nothing accepted since
				      the last flush that succeeded may be
				      taken as durable */
	bool full;                 /* the disk (or file-size limit) refuses data now:
				      chunks are held in memory until space returns */
	char full_reason[512];     /* the first error of that episode */
	uint64_t full_episodes;    /* times a file was closed after space returned */
	int64_t last_flush;        /* engine time of the last flush, 0: none */
	uint64_t flushes;          /* flushes that made data durable (fsync'd) */
	uint64_t metadata_flushes; /* H5Fflush calls, at flushes and between */
	bool file_open;
	char file_name[4096];      /* current (or last) file; family: the %d pattern */
	uint64_t file_size;        /* bytes of the current file */
	uint64_t file_rows;        /* rows + samples appended to the current file */
	char last_error[512];
	char run[72];              /* the current run, "" if none */
	int64_t run_start;
	uint64_t run_files;        /* files started in it so far */
	struct h5w_time_counts time; /* all groups; by group: h5w_get_time_groups */
};

void h5w_get_stats(const struct h5w *engine, struct h5w_stats *stats);

/* The first groups whose rows counted in stats.time, with their counts:
 * apart from h5w_get_stats, which is called per append and stays small. */
void h5w_get_time_groups(const struct h5w *engine, struct h5w_time_groups *groups);

/*
 * One dataset of a stream group as the engine creates it (h5w_describe):
 * what `h5rec check` prints, taken from the planner that makes the files
 * so that the listing cannot drift from them.
 */
struct h5w_dataset_info {
	const char *name;
	enum dtype dtype;            /* string: variable-length UTF-8 */
	uint64_t row_elems;          /* 1; records waveforms: samples (2-D) */
	uint64_t chunk_rows;         /* rows per chunk; 0: not chunked */
	uint64_t fixed_rows;         /* rows of a fixed-size dataset; 0: unlimited */
	bool is_scale;               /* a dimension scale (dims[0] is itself) */
	const char *dims[2];         /* the scale of each axis; NULL: none */
	const struct schema_channel *channel;   /* the channel it holds, or NULL */
	const struct schema_event_field *field; /* the event field it holds, or NULL */
	/* the filters declared in the file, in the order HDF5 applies them */
	bool shuffle;
	enum schema_compression compression;
	int level;                   /* deflate */
	uint32_t lz4_block;          /* lz4: bytes per block, 0: the whole chunk */
	enum schema_szip_coding szip_coding;
	unsigned szip_pixels_per_block;
	bool fletcher32;
};

/*
 * Call EACH for every dataset a group of STREAM (of SCHEMA) has, in the
 * order the engine creates them, without touching HDF5. Stops at the first
 * non-zero return of EACH and returns it; -ENOMEM (with ERR) when planning
 * fails; else 0. Any thread.
 */
int h5w_describe(const struct schema *schema, const struct schema_stream *stream,
		 int (*each)(const struct h5w_dataset_info *info, void *arg), void *arg,
		 struct h5w_error *err);

#endif
