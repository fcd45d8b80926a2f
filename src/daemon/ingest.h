/*
 * ingest.h - from decoded input to work for the writer thread.
 *
 * The loop thread decodes frames and lines (ingest_frame.c, ingest_line.c),
 * routes them (router.c), and turns each into a work item for the writer
 * thread (writer.c), which alone calls the storage engine and so HDF5. This
 * header defines those items and the loop-side state they share: the group
 * registry, the counters, the back-pressure link to the writer queue, and
 * the durability watermark that ACK frames report.
 *
 * Items are self-contained (they copy what they need out of the network
 * buffer) and carry a group id instead of the group's placeholder values:
 * the loop keeps a registry of groups and announces each new one once with
 * an INGEST_ITEM_GROUP item, so the rows of a busy table cost a few bytes of
 * routing each, not a copy of their names.
 *
 * Threading: struct ingest belongs to the loop thread, except `progress`,
 * through which the writer thread reports back (progress.h), and what is
 * marked as shared with it.
 */
#ifndef H5REC_INGEST_H
#define H5REC_INGEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "h5w.h"
#include "line.h"
#include "log.h"
#include "net.h"
#include "progress.h"
#include "router.h"
#include "schema.h"
#include "run.h"
#include "writer_queue.h"

enum ingest_item_kind {
	INGEST_ITEM_GROUP,  /* a new group id: stream + placeholder values */
	INGEST_ITEM_DATA,   /* a DATA frame's samples */
	INGEST_ITEM_EVENT,  /* an EVENT frame's fields */
	INGEST_ITEM_ROWS,   /* a batch of table rows from lines */
	INGEST_ITEM_FLUSH,  /* make everything durable now (h5rec flush) */
	INGEST_ITEM_ROLL,   /* start a new file (SIGHUP, h5rec roll) */
	INGEST_ITEM_RETIRE, /* forget groups idle for a whole file (their ids) */
	INGEST_ITEM_RUN,    /* start (u.run.state) or stop a run (h5rec run) */
};

/* A value of a table row or an event field. Strings live in the item's
 * arena: `string` is an offset into it until the writer resolves it. */
struct ingest_value {
	uint32_t index; /* channel (rows) or event field (events) */
	enum dtype dtype;
	union {
		int64_t i64;
		uint64_t u64;
		double f64;
		uint32_t string; /* arena offset of a NUL-terminated string */
	} v;
};

struct ingest_row {
	uint32_t group;
	uint32_t nvalues;
	int64_t time;
	uint32_t first_value; /* index into the batch's values */
};

/* Longest sender's message id kept (bytes): longer ones are cut. */
#define INGEST_ORIGIN_ID_MAX 128

struct ingest_item {
	struct writer_item link; /* queue link and byte cost; first member */
	enum ingest_item_kind kind;
	uint64_t number;         /* loop-assigned, increasing; for durability */
	uint64_t source;         /* id of the frame connection it came from; 0: none */
	uint64_t origin;         /* stream sequence of its broker message; 0: none */
	/* its broker message's id from its sender (Nats-Msg-Id), UTF-8; "": none */
	char origin_id[INGEST_ORIGIN_ID_MAX + 1];
	size_t alloc_bytes;      /* size of its allocation (large ones are reused) */
	char peer[80];           /* who sent it, for error messages */
	union {
		struct {
			uint32_t id;
			const struct schema_stream *stream;
			struct route route;
		} group;
		struct {
			uint32_t group;
			uint32_t channel;
			enum dtype dtype;
			int64_t t0;
			uint64_t seq;
			uint64_t event_id;
			size_t nsamples;
			void *samples; /* points into this allocation */
			/* pre-compressed chunks (FRAME_FLAG_CHUNKS): samples
			 * points at the payload (chunk table, then the
			 * chunks), of `stored` bytes */
			bool encoded;
			size_t stored;
			/* and the frame's key, for an ERROR frame should
			 * the writer refuse a chunk (in this allocation) */
			const char *key;
		} data;
		struct {
			uint32_t group;
			uint64_t event_id;
			int64_t time;
			uint32_t nvalues;
			struct ingest_value *values; /* into this allocation */
			char *arena;
		} event;
		struct {
			uint32_t nrows;
			struct ingest_row *rows;
			struct ingest_value *values;
			char *arena;
		} rows;
		struct {
			uint32_t n;
			uint32_t *ids; /* into this allocation */
		} retire;
		struct {
			struct run_state *state; /* into this allocation; NULL: stop */
			int64_t time;            /* when it was asked for */
		} run;
	} u;
};

/* Set in the source id of items from a broker (source.h), whose messages
 * the broker can deliver again: see writer_failed. */
#define INGEST_SOURCE_BROKER (UINT64_C(1) << 63)

/* Release an item (any thread). Large allocations are kept in a small
 * bounded cache for ingest_item_new() to reuse, see ingest.c. */
void ingest_item_free(struct ingest_item *item);

/* Error classes counted by the daemon (SPEC §3, issue: counters per error
 * class). Frame protocol violations are counted by their own kind. */
enum ingest_counter {
	INGEST_FRAMES,          /* valid frames received */
	INGEST_LINES,           /* valid lines received */
	INGEST_SAMPLES,         /* samples and field values accepted */
	INGEST_BYTES,           /* frame payload and line bytes received */
	INGEST_PROTOCOL_ERRORS, /* frame protocol violations (connection closed) */
	INGEST_BAD_LINES,       /* malformed lines (skipped) */
	INGEST_UNKNOWN_STREAM,  /* key or measurement matches no stream */
	INGEST_UNKNOWN_CHANNEL, /* DATA key names no channel */
	INGEST_UNKNOWN_FIELD,   /* line field or event field not declared */
	INGEST_BAD_PLACEHOLDER, /* placeholder value fails SPEC §2, missing tag */
	INGEST_BAD_DATA,        /* wrong waveform length, dtype not convertible */
	INGEST_GROUP_LIMIT,     /* limits.max_groups reached */
	INGEST_LOST_FRAMES,     /* seq gaps */
	INGEST_UDP_DROPS,       /* datagrams dropped (invalid, or over max_buffer) */
	INGEST_AUTH_FAILURES,   /* missing or wrong HELLO token */
	INGEST_WRITE_ERRORS,    /* items the engine failed to store */
	INGEST_LATE_DATA,       /* frames of an event whose record had closed */
	INGEST_NCOUNTERS,
};

const char *ingest_counter_name(enum ingest_counter counter);

struct ingest_group_entry;
struct sources;
struct status;

/* HTTP responses are counted by status code (ingest_http_code). */
#define INGEST_HTTP_CODES 10

/* Refusals for limits.max_groups, per peer address (ingest_note_refusal):
 * the addresses with the most, and every other one counted together. */
#define INGEST_REFUSING_PEERS 16
struct ingest_refusals {
	struct ingest_peer_refusals {
		char host[64];
		uint64_t count;
	} peers[INGEST_REFUSING_PEERS];
	uint64_t others;
};

struct ingest {
	uv_loop_t *loop;
	const struct schema *schema;
	struct writer_queue *queue;
	struct net *net;
	uint64_t next_item;     /* number of the next item pushed */
	/* The stream sequence of the broker message being decoded (source.c),
	 * 0 otherwise: ingest_push stamps it on every item as its origin, so
	 * the decoders need not know where their bytes came from. */
	uint64_t origin;
	/* ... and its sender's id for it (NUL-terminated, valid UTF-8, at most
	 * INGEST_ORIGIN_ID_MAX bytes), NULL otherwise: stamped as origin_id */
	const char *origin_id;

	/* Group registry: (stream, values) → id. limits.max_groups bounds the
	 * groups of a file; the registry holds those of the current file and
	 * of the last (2 × max_groups at most): the writer offers the groups
	 * idle for a whole file back at each roll (progress_offer_idle), and
	 * their ids are used again. */
	struct ingest_group_entry **group_slots;
	size_t group_slot_count; /* power of two */
	uint32_t ngroups;        /* entries in the registry */
	struct ingest_group_entry **by_id; /* [id]: its entry, NULL if free */
	uint32_t ids_used;       /* ids ever handed out: by_id's length */
	uint32_t *free_ids;      /* ids given back, to be used again */
	uint32_t nfree_ids;
	uint64_t groups_retired;

	/* Frame connections that asked for ACKs (ingest_frame.c). */
	struct ingest_frame_conn *ack_conns;
	/* Writer → loop: marks, failures, idle groups, the end (progress.h). */
	struct progress progress;
	uv_async_t drained_async; /* writer → loop: queue fell below low water */
	bool drained_open;

	/* Loop thread, after ACKs went out: who else waits for progress
	 * (the control socket's flush and roll requests). */
	void (*on_progress)(void *arg, uint64_t applied, uint64_t durable);
	void *on_progress_arg;
	/* Loop thread, after the frame connections: the sources (source.h)
	 * are told which sources failed and how far items are durable. */
	struct sources *sources;
	void (*on_sources)(void *sources, const uint64_t *failed, size_t nfailed, bool all_failed,
			   uint64_t durable);
	/* Loop thread, once, after the last progress: the writer has applied
	 * everything and closed the engine (progress_finish). */
	void (*on_writer_finished)(void *arg);
	void *on_writer_finished_arg;
	uint64_t next_source;   /* id of the next frame connection or source */
	/* Samples accepted per stream (index in schema->streams), for rates. */
	uint64_t *stream_samples;
	_Atomic uint64_t counters_writer[INGEST_NCOUNTERS];

	/* Parses EVENT and HELLO field sets (ingest_fields.c); lazily made. */
	struct line_decoder *fields_decoder;
	/* Seq tracking of UDP frame senders (ingest_frame.c). */
	struct ingest_udp_sender *udp_senders;
	uint64_t udp_clock;
	/* Line datagram decoding (ingest_line.c): one decoder for every UDP
	 * line listener, set to the listener's precision for each datagram. */
	struct ingest_line_udp *line_udp;

	/* max_groups refusals by peer; under refusals_lock (both threads). */
	pthread_mutex_t refusals_lock;
	struct ingest_refusals refusals;

	/* The HTTP listeners (ingest_http.c): bytes of rows decoded from
	 * request bodies that have not ended yet, which count against
	 * max_buffer; responses sent, by code. */
	uint64_t http_inflight;
	uint64_t http_responses[INGEST_HTTP_CODES];
	/* What /metrics and /health report (set once status exists). */
	struct status *status;

	uint64_t counters[INGEST_NCOUNTERS];
	uint64_t protocol_errors_by_kind[32]; /* enum frame_error_kind */
	struct log_ratelimit error_log;
};

/* Set up the loop-side state. The queue's on_drained must call
 * ingest_queue_drained() (see daemon.c). Returns 0 or a negative errno. */
int ingest_init(struct ingest *ingest, uv_loop_t *loop, const struct schema *schema,
		struct writer_queue *queue);
/* Close the async handles; memory is released once the loop has run. */
void ingest_close(struct ingest *ingest);
/* Free what ingest_init allocated, after the loop has closed the handles. */
void ingest_free(struct ingest *ingest);

/* Any thread: the queue fell below its low-water mark; resume reading. */
void ingest_queue_drained(void *ingest);

/* Any thread: PEER's data was refused for limits.max_groups. */
void ingest_note_refusal(struct ingest *ingest, const char *peer);
/* Loop thread: what the registry knows of group ID (false: no such id).
 * Ids run from 0 to ids_used - 1. */
struct ingest_group_view {
	const char *path;
	const struct schema_stream *stream;
	uint64_t seen_ms; /* uv_now() of its last line or frame */
	uint64_t points;  /* lines and frames routed to it */
};
bool ingest_group_view(const struct ingest *ingest, uint32_t id, struct ingest_group_view *out);

/* Loop thread: a copy of the refusals by peer. */
void ingest_refusals(struct ingest *ingest, struct ingest_refusals *out);

/* Loop thread: number and queue an item; pauses reading when the queue is
 * full. Stream connections only: UDP uses ingest_push_datagram_item. */
void ingest_push(struct ingest *ingest, struct ingest_item *item);
/* Loop thread, UDP: queue the item unless the queue is full, in which case
 * it is dropped, freed and counted (UDP cannot be slowed down). */
bool ingest_push_datagram_item(struct ingest *ingest, struct ingest_item *item);

/*
 * Loop thread: the id of the group of route, registering it (and queueing
 * an INGEST_ITEM_GROUP) on first use. Returns 0, -EMLINK when a new group
 * cannot be taken (the current file holds limits.max_groups groups, or the
 * registry twice that), -ENOMEM.
 */
int ingest_group_id(struct ingest *ingest, const struct route *route, const char *peer,
		    uint32_t *id);

/* Count an error of class `counter` and log it, rate-limited. */
void ingest_error(struct ingest *ingest, enum ingest_counter counter, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void ingest_count(struct ingest *ingest, enum ingest_counter counter, uint64_t n)
{
	ingest->counters[counter] += n;
}

/* Samples (or field values) accepted for a stream. */
static inline void ingest_count_samples(struct ingest *ingest, const struct schema_stream *stream,
					uint64_t n)
{
	ingest->counters[INGEST_SAMPLES] += n;
	ingest->stream_samples[stream - ingest->schema->streams] += n;
}

/* A counter's total, loop-side and writer-side. */
uint64_t ingest_counter_value(struct ingest *ingest, enum ingest_counter counter);

/* Allocate an item with `extra` bytes after it (payload, values, arena);
 * any thread. The extra bytes are not initialised. */
struct ingest_item *ingest_item_new(enum ingest_item_kind kind, size_t extra, const char *peer);

/* Free the allocations the item cache keeps (at exit); returns how many. */
size_t ingest_item_cache_drain(void);

#endif
