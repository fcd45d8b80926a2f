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
	uint64_t durable_item;     /* items numbered below are durable */
	unsigned delay_us;         /* testing: slow the writer down per item */
	struct log_ratelimit error_log;
	/* A copy of the engine's figures for status readers on other threads. */
	pthread_mutex_t stats_lock;
	struct h5w_stats stats;
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
 * Close the queue, let the thread apply what is left, close the engine
 * (exact extents, final attributes) and join. Returns the engine's close
 * result. Blocks: call it once the loop has nothing else to do.
 */
int writer_stop(struct writer *writer);

/* Any thread: the engine's figures as of the writer's last batch. */
void writer_stats(struct writer *writer, struct h5w_stats *stats);

#endif
