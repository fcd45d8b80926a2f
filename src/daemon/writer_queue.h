/*
 * writer_queue.h - the hand-off from the network loop to the writer thread.
 *
 * The libuv loop thread decodes input and pushes work items; the one writer
 * thread (the only thread that calls HDF5) takes them in batches. The queue
 * never blocks the loop: push always succeeds, and instead the queue counts
 * the bytes it holds. Above the high-water mark (limits.max_buffer) push
 * reports "full" and the loop stops reading TCP/Unix connections; when the
 * writer has released enough to fall below the low-water mark, the queue
 * calls on_drained (from the writer thread — typically uv_async_send) so the
 * loop resumes reading. Memory is thereby bounded by max_buffer plus what
 * one read can add.
 *
 * Items are intrusive: embed struct writer_item in your own struct. The
 * bytes an item costs stay counted until the writer releases them, which it
 * does once the engine has taken the data over.
 */
#ifndef H5REC_WRITER_QUEUE_H
#define H5REC_WRITER_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct writer_item {
	struct writer_item *next;
	size_t bytes;    /* what this item costs against the limit */
	int64_t arrived; /* when it arrived, stamped at push: CLOCK_REALTIME ns
			    minus the time the queue was full (writer_queue.c) */
};

struct writer_queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct writer_item *head;
	struct writer_item **tail;
	size_t buffered;      /* bytes pushed and not yet released */
	size_t peak_buffered; /* high-water mark reached, for status */
	size_t high_water;    /* push reports full at or above this */
	size_t low_water;     /* on_drained fires when falling below this */
	bool full;            /* between crossing high_water and low_water */
	int64_t full_since;   /* CLOCK_REALTIME ns when it last became full */
	int64_t full_ns;      /* time spent full before that */
	bool closed;
	void (*on_drained)(void *arg);
	void *on_drained_arg;
};

/* low_water 0 means high_water / 2. Returns 0 or a negative errno. */
int writer_queue_init(struct writer_queue *queue, size_t high_water, size_t low_water,
		      void (*on_drained)(void *arg), void *on_drained_arg);
/* The queue must be empty and no thread may use it any more. */
void writer_queue_destroy(struct writer_queue *queue);

/* Loop thread. Appends the item, stamping its arrival time; returns true
 * while the queue is full (the caller should stop reading until
 * on_drained). Pushing to a closed queue is a programming error and
 * returns true without queueing. */
bool writer_queue_push(struct writer_queue *queue, struct writer_item *item);

/*
 * Writer thread. Takes every queued item, oldest first, waiting up to
 * timeout_ns (negative: forever) for one to arrive. Returns the list
 * (linked through next), or NULL on timeout or when the queue is closed and
 * empty; *closed tells the two apart.
 */
struct writer_item *writer_queue_take(struct writer_queue *queue, int64_t timeout_ns,
				      bool *closed);

/* Any thread: when the oldest item still queued arrived, or the arrival
 * time an item pushed now would get when the queue is empty: nothing that
 * arrived before it is still to come. */
int64_t writer_queue_oldest(struct writer_queue *queue);

/* Writer thread: the engine has taken over `bytes` of what was taken. */
void writer_queue_release(struct writer_queue *queue, size_t bytes);

/* Any thread: no more pushes; take() returns what is left, then NULL. */
void writer_queue_close(struct writer_queue *queue);

/* Any thread: bytes currently counted, and whether the queue is full. */
size_t writer_queue_buffered(struct writer_queue *queue, bool *full);

#endif
