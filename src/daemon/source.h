/*
 * source.h - data the recorder pulls from a message broker (the schema's
 * `sources`), beside the listeners that wait for it (docs/scale-out.md).
 *
 * A source's messages carry what a listener of its protocol would read
 * (frames, or a batch of lines). The core (source.c) turns them into
 * items with the same decoders (ingest_frame_message, ingest_line_message),
 * holds each message until every item made from it is durable, and then
 * has the backend acknowledge it; a message whose data the writer reports
 * lost (progress.h: its source id, one per message, failed) is given back
 * instead (nak), so that another recorder stores it. Messages held long (back-pressure, a
 * full disk) are kept alive with "in progress" every third of ack_wait.
 *
 * Backends sit behind a table of functions, as curl's protocol handlers
 * do: NATS JetStream (source_nats.c) is the first, Kafka would be another.
 *
 * Threads. A backend fetches on threads of its own (the brokers' C clients
 * offer blocking calls only) and hands messages over with source_deliver(),
 * which wakes the loop through a uv_async; it asks source_wait_room()
 * before each fetch, which waits while the hand-off holds more than its
 * mark or the writer queue is full (back-pressure reaches the broker as
 * fetches not made: its max_ack_pending then stops delivery). Everything
 * else of the core runs on the loop thread. settle() is called on the loop
 * thread and must not block: backends queue the work for their own thread.
 */
#ifndef H5REC_SOURCE_H
#define H5REC_SOURCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ingest.h"
#include "schema.h"

/* One message, made by the backend, owned by the core from
 * source_deliver() until it is settled (ack, nak, term). */
struct source_msg {
	struct source_msg *next;
	const void *data;
	size_t len;
	uint64_t stream_seq;   /* the broker's sequence of the message */
	/* the sender's id of the message (source_msg_set_id): "" none */
	char msg_id[INGEST_ORIGIN_ID_MAX + 1];
	uint64_t deliveries;   /* 1 the first time, more when redelivered */
	uint64_t lag;          /* messages of the stream not yet delivered, when
				  this one was (the consumer's backlog) */
	/* core, loop thread */
	uint64_t id;           /* source id of its items (ingest->next_source) */
	uint64_t last_item;    /* durable once every item below last_item + 1 is */
	uint64_t kept_ms;      /* uv_now() of its delivery or last "in progress" */
	uint64_t taken_ms;     /* uv_now() of its delivery */
};

enum source_settle {
	SOURCE_ACK,         /* stored durably: never deliver it again */
	SOURCE_NAK,         /* not stored: deliver it to a recorder again now */
	SOURCE_TERM,        /* cannot be stored by anyone (invalid): never again */
	SOURCE_IN_PROGRESS, /* still held: restart the broker's ack_wait */
};

struct source;

struct source_backend {
	const char *name; /* "nats" */
	/* Loop thread, at start: connect, create what the schema says to,
	 * start fetching. Returns 0 or a negative errno with ERR filled. */
	int (*start)(struct source *src, char *err, size_t errlen);
	/* Loop thread: fetch no more (the thread may finish a fetch first,
	 * then calls source_fetch_done). */
	void (*stop_fetching)(struct source *src);
	/* Loop thread, after stop_fetching: wait for the fetch thread to end
	 * (at most one fetch's expiry). */
	void (*join)(struct source *src);
	/* Loop thread: the message's bytes are decoded and not read again;
	 * the backend may free them (held messages then cost a few bytes,
	 * not their payload: max_ack_pending of them may wait for a flush). */
	void (*taken)(struct source *src, struct source_msg *msg);
	/* Loop thread: ACK, NAK or TERM the message, then free it; or
	 * IN_PROGRESS, and keep it. Queued in order, never blocks. */
	void (*settle)(struct source *src, struct source_msg *msg, enum source_settle how);
	/* Loop thread, once the loop no longer holds messages: send what is
	 * queued, join the threads, disconnect, free the backend's state. */
	void (*close)(struct source *src);
	/* Any thread: is it connected to the broker now? */
	bool (*connected)(struct source *src);
};

/* Counters of one source, for status and metrics. */
struct source_stats {
	uint64_t fetched;     /* messages received */
	uint64_t bytes;       /* their bytes */
	uint64_t acked;       /* acknowledged: durable */
	uint64_t naked;       /* given back: their data could not be stored */
	uint64_t rejected;    /* terminated: invalid, no recorder can store them */
	uint64_t redelivered; /* received again (another recorder did not ack) */
	uint64_t pending;     /* received and not yet settled */
	uint64_t lag;         /* the consumer's backlog at the last delivery */
	bool fetching_paused; /* back-pressure: no fetch until the queue drains */
	bool connected;
};

struct source {
	const struct source_backend *backend;
	const struct schema_source *config;
	struct ingest *ingest;
	char name[96];     /* "nats DAQ/recorders", for logs and status */
	void *state;       /* the backend's */

	/* fetch threads → loop, under lock */
	pthread_mutex_t lock;
	pthread_cond_t room;          /* the hand-off fell below its mark */
	struct source_msg *inbox, **inbox_tail;
	size_t inbox_bytes;
	size_t inbox_mark;            /* fetching waits above it */
	bool stopping;                /* no more fetches */
	bool fetch_done;              /* the backend's fetching ended */
	_Atomic bool paused;          /* waiting for the writer queue */
	uv_async_t async;
	bool async_open;

	/* loop thread */
	struct source_msg *held, **held_tail; /* waiting to be durable */
	struct source_stats stats;    /* all but paused and connected */
	uint64_t flush_item;          /* number of the last flush it asked for */
	bool drained;                 /* fetch done and inbox empty */
};

struct sources {
	struct source *list;
	size_t n;
	uv_timer_t keepalive; /* "in progress" for messages held long */
	bool timer_open;
	bool stopping;              /* sources_drain was called */
	void (*drained)(void *arg); /* sources_drain's */
	void *drained_arg;
};

/* Loop thread: start every source of the schema (none: nothing to do).
 * Returns 0 or a negative errno, logged. */
int sources_start(struct sources *s, uv_loop_t *loop, struct ingest *ingest);
/* Loop thread: stop fetching; DONE runs (on the loop) once every message
 * fetched is queued for the writer. At once when there are no sources. */
void sources_drain(struct sources *s, void (*done)(void *arg), void *arg);
/* Loop thread: the writer's report (ingest.h on_sources): nak what failed,
 * ack what is durable. */
void sources_progress(void *sources, const uint64_t *failed, size_t nfailed, bool all_failed,
		      uint64_t durable);
/* Loop thread, after the writer is joined: nak what is still held, close
 * the backends and the handles; free once the loop has run. */
void sources_close(struct sources *s);
void sources_free(struct sources *s);

/* Loop thread: source I's counters. */
void source_get_stats(struct source *src, struct source_stats *out);

/* For backends, from their fetch thread. */
/* Wait until there is room for a fetch; false: stop fetching. */
bool source_wait_room(struct source *src);
/* Set MSG's msg_id from the sender's id of the message (ID: a C string,
 * NULL: none), as provenance keeps it: cut at INGEST_ORIGIN_ID_MAX bytes
 * without splitting a character; left empty if it is not valid UTF-8 (it
 * becomes an HDF5 UTF-8 string, which readers decode). Any thread. */
void source_msg_set_id(struct source_msg *msg, const char *id);
/* Hand a message to the loop. */
void source_deliver(struct source *src, struct source_msg *msg);
/* Fetching has ended (after stop_fetching, or for good on an error). */
void source_fetch_done(struct source *src);

/* The backends. */
extern const struct source_backend source_nats;

#endif
