/*
 * writer.h - the writer thread: the one thread that calls the storage
 * engine, and therefore the only one that ever calls HDF5.
 *
 * It takes work items from the writer queue in batches, applies them to the
 * engine, releases their bytes (which is what lets the loop resume reading
 * under back-pressure), and ticks the engine's clock so that flushes, record
 * timeouts and rolls happen even when no data arrives. After every flush it
 * tells the loop which items are now durable, for ACK frames.
 */
#ifndef H5REC_WRITER_H
#define H5REC_WRITER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "h5w.h"
#include "ingest.h"
#include "log.h"
#include "writer_queue.h"

struct writer_group {
	struct h5w_group *group; /* NULL: creating it failed */
	const struct schema_stream *stream;
};

/* What the writer adds to the engine's figures about a full output (the
 * engine's stats say whether it is full, why, and how often it was). */
struct writer_output {
	bool stalled;              /* refused data waits, reading is paused */
	int64_t full_since;        /* wall clock, ns; 0: not full */
	uint64_t stalled_ns;       /* time spent stalled, in total */
};

/* The connections (item sources) whose data was applied since the last
 * durable point: if the engine loses data, theirs is what may be gone. */
#define WRITER_WINDOW_MAX 64
struct writer_window {
	uint64_t sources[WRITER_WINDOW_MAX];
	size_t n;
	bool overflow;   /* more than fit: every connection is charged */
};

struct writer {
	pthread_t thread;
	bool started;
	struct writer_queue *queue;
	struct ingest *ingest;
	const struct schema *schema;
	const struct h5w_options *options; /* until the engine is open */
	struct h5w *engine;
	struct writer_group *groups; /* by ingest group id */
	size_t groups_cap;
	uint64_t last_item;        /* number of the last item applied */
	uint32_t next_row;         /* ROWS item refused part-way: its next row */
	uint64_t durable_item;     /* items numbered below are durable */
	struct writer_window window; /* sources applied since durable_item moved */
	uint64_t losses_seen;      /* the engine's stats.losses already charged */
	uint64_t closed_seen;      /* files_closed when idle groups were last offered */
	/* The answer to the last run request (under stats_lock). */
	uint64_t run_reply_item;
	char run_reply[600];
	uint64_t implausible_logged; /* stats.time.implausible already logged */
	int64_t implausible_log_at;  /* monotonic time of that message */
	unsigned delay_us;         /* testing: slow the writer down per item */
	struct log_ratelimit error_log;
	/* A copy of the engine's figures for status readers on other threads. */
	pthread_mutex_t stats_lock;
	struct h5w_stats stats;
	struct writer_output output;
	struct h5w_time_groups time_groups; /* as of the last tick (stats_lock) */
	struct h5w_time_groups tick_time_groups; /* writer thread: being read */
	bool gave_up;              /* stopping on a full disk: refused items are lost */
	_Atomic int64_t stopping_ns; /* monotonic time the recorder began to stop; 0: not */
	/* Opening the engine, which happens on the writer thread. */
	pthread_cond_t opened;
	int open_result;           /* 1 while opening, then 0 or a negative errno */
	struct h5w_error open_error;
	int result;                /* first error closing the engine */
};

/*
 * Start the thread and open the engine on it; returns once the engine is
 * open. The engine creates no file before the first data arrives. Returns
 * 0 or a negative errno with err filled. options must stay valid until the
 * call returns.
 */
int writer_start(struct writer *writer, const struct schema *schema,
		 const struct h5w_options *options, struct writer_queue *queue,
		 struct ingest *ingest, unsigned delay_us, struct h5w_error *err);

/*
 * Close the queue: the thread applies what is left, closes the engine
 * (exact extents, final attributes), then calls progress_finish.
 * Does not wait.
 */
void writer_finish(struct writer *writer);

/*
 * writer_finish, then join. Returns the engine's close result. Blocks until
 * the engine is closed.
 */
int writer_stop(struct writer *writer);

/*
 * Any thread: the recorder is stopping. A writer held up by a full disk
 * (see writer.c) waits WRITER_STOP_WAIT_MS more for space, then gives up
 * what it cannot store, counting it; with NOW, it gives up at once.
 */
void writer_stopping(struct writer *writer, bool now);

/* Any thread: the engine's figures as of the writer's last batch, and the
 * output's state (either may be NULL). */
void writer_stats(struct writer *writer, struct h5w_stats *stats, struct writer_output *output);

/* The engine's h5w_get_time_groups as of the writer's last tick. */
void writer_time_groups(struct writer *writer, struct h5w_time_groups *groups);

#define WRITER_STOP_WAIT_MS 10000

/* Loop thread: the answer to the run request that was item ITEM, once the
 * writer applied it ("run NAME started\n", or "error: …\n"); false if the
 * answer is not (or no longer) there. */
bool writer_run_reply(struct writer *writer, uint64_t item, char *out, size_t len);

#endif
