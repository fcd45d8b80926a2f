/*
 * writer_queue.c - the loop → writer-thread hand-off (see writer_queue.h).
 *
 * A mutex and a condition variable are enough: the loop pushes whole decoded
 * frames or line batches, not single samples, so the lock is taken a few
 * thousand times a second at most, and the writer takes everything queued in
 * one go. on_drained is called after the lock is released so that it may
 * take other locks (uv_async_send takes none, but callers may).
 *
 * Arrival times run on the recorder's own clock: wall time minus the time
 * the queue was full. While it is full the loop reads nothing, so a frame
 * that waited in the socket for that long did not come late; time spent
 * so is not counted against a sender (record timeouts, h5w_arrival).
 */
#include "writer_queue.h"

#include <errno.h>
#include <time.h>

int writer_queue_init(struct writer_queue *queue, size_t high_water, size_t low_water,
		      void (*on_drained)(void *arg), void *on_drained_arg)
{
	if (high_water == 0 || low_water > high_water)
		return -EINVAL;
	*queue = (struct writer_queue){
		.tail = &queue->head,
		.high_water = high_water,
		.low_water = low_water ? low_water : high_water / 2,
		.on_drained = on_drained,
		.on_drained_arg = on_drained_arg,
	};
	pthread_condattr_t attr;
	int err = pthread_condattr_init(&attr);
	if (err)
		return -err;
	/* Timeouts are measured on the monotonic clock: wall-clock steps
	 * (NTP) must not stall or hurry the writer. */
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(&queue->nonempty, &attr);
	pthread_condattr_destroy(&attr);
	if (err)
		return -err;
	err = pthread_mutex_init(&queue->lock, NULL);
	if (err) {
		pthread_cond_destroy(&queue->nonempty);
		return -err;
	}
	return 0;
}

void writer_queue_destroy(struct writer_queue *queue)
{
	pthread_mutex_destroy(&queue->lock);
	pthread_cond_destroy(&queue->nonempty);
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The recorder's clock at wall time NOW (lock held): see the top. */
static int64_t recorder_time(const struct writer_queue *queue, int64_t now)
{
	return now - queue->full_ns - (queue->full ? now - queue->full_since : 0);
}

bool writer_queue_push(struct writer_queue *queue, struct writer_item *item)
{
	bool full;
	int64_t now = realtime_ns();

	item->next = NULL;
	pthread_mutex_lock(&queue->lock);
	if (queue->closed) {
		pthread_mutex_unlock(&queue->lock);
		return true;
	}
	item->arrived = recorder_time(queue, now);
	*queue->tail = item;
	queue->tail = &item->next;
	queue->buffered += item->bytes;
	if (queue->buffered > queue->peak_buffered)
		queue->peak_buffered = queue->buffered;
	if (queue->buffered >= queue->high_water && !queue->full) {
		queue->full = true;
		queue->full_since = now;
	}
	full = queue->full;
	pthread_cond_signal(&queue->nonempty);
	pthread_mutex_unlock(&queue->lock);
	return full;
}

int64_t writer_queue_oldest(struct writer_queue *queue)
{
	int64_t now = realtime_ns();
	pthread_mutex_lock(&queue->lock);
	int64_t oldest = recorder_time(queue, now);
	if (queue->head && queue->head->arrived < oldest)
		oldest = queue->head->arrived;
	pthread_mutex_unlock(&queue->lock);
	return oldest;
}

static struct timespec deadline_after(int64_t timeout_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t nsec = ts.tv_nsec + timeout_ns % 1000000000;
	ts.tv_sec += (time_t)(timeout_ns / 1000000000 + nsec / 1000000000);
	ts.tv_nsec = (long)(nsec % 1000000000);
	return ts;
}

struct writer_item *writer_queue_take(struct writer_queue *queue, int64_t timeout_ns,
				      bool *closed)
{
	struct timespec deadline = deadline_after(timeout_ns > 0 ? timeout_ns : 0);
	struct writer_item *items;

	pthread_mutex_lock(&queue->lock);
	while (!queue->head && !queue->closed) {
		if (timeout_ns < 0) {
			pthread_cond_wait(&queue->nonempty, &queue->lock);
		} else if (pthread_cond_timedwait(&queue->nonempty, &queue->lock, &deadline) ==
			   ETIMEDOUT) {
			break;
		}
	}
	items = queue->head;
	queue->head = NULL;
	queue->tail = &queue->head;
	*closed = queue->closed && !items;
	pthread_mutex_unlock(&queue->lock);
	return items;
}

void writer_queue_release(struct writer_queue *queue, size_t bytes)
{
	bool drained = false;

	pthread_mutex_lock(&queue->lock);
	queue->buffered -= bytes < queue->buffered ? bytes : queue->buffered;
	if (queue->full && queue->buffered < queue->low_water) {
		queue->full = false;
		queue->full_ns += realtime_ns() - queue->full_since;
		drained = true;
	}
	pthread_mutex_unlock(&queue->lock);
	if (drained && queue->on_drained)
		queue->on_drained(queue->on_drained_arg);
}

void writer_queue_close(struct writer_queue *queue)
{
	pthread_mutex_lock(&queue->lock);
	queue->closed = true;
	pthread_cond_broadcast(&queue->nonempty);
	pthread_mutex_unlock(&queue->lock);
}

size_t writer_queue_buffered(struct writer_queue *queue, bool *full)
{
	pthread_mutex_lock(&queue->lock);
	size_t buffered = queue->buffered;
	if (full)
		*full = queue->full;
	pthread_mutex_unlock(&queue->lock);
	return buffered;
}
