/* test_writer_queue.c - order, byte accounting, back-pressure signalling and
 * shutdown of the loop → writer hand-off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "writer_queue.h"

struct test_item {
	struct writer_item item; /* first: lists hold &item */
	unsigned number;
};

static void count_drained(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_fifo_and_accounting(void **state)
{
	(void)state;
	struct writer_queue queue;
	struct test_item items[5];
	bool closed;

	assert_int_equal(writer_queue_init(&queue, 1000, 0, NULL, NULL), 0);
	for (unsigned i = 0; i < 5; i++) {
		items[i] = (struct test_item){.item.bytes = 10 * (i + 1), .number = i};
		assert_false(writer_queue_push(&queue, &items[i].item));
	}
	assert_int_equal(writer_queue_buffered(&queue, NULL), 150);

	struct writer_item *list = writer_queue_take(&queue, 0, &closed);
	assert_false(closed);
	unsigned expect = 0;
	for (struct writer_item *it = list; it; it = it->next)
		assert_int_equal(((struct test_item *)it)->number, expect++);
	assert_int_equal(expect, 5);

	/* Taking does not release: the bytes count until the engine has them. */
	assert_int_equal(writer_queue_buffered(&queue, NULL), 150);
	writer_queue_release(&queue, 150);
	assert_int_equal(writer_queue_buffered(&queue, NULL), 0);
	writer_queue_destroy(&queue);
}

static void test_high_and_low_water(void **state)
{
	(void)state;
	struct writer_queue queue;
	atomic_int drained = 0;
	struct test_item items[4];
	bool full, closed;

	assert_int_equal(writer_queue_init(&queue, 300, 100, count_drained, &drained), 0);
	for (unsigned i = 0; i < 4; i++)
		items[i] = (struct test_item){.item.bytes = 100, .number = i};
	assert_false(writer_queue_push(&queue, &items[0].item));
	assert_false(writer_queue_push(&queue, &items[1].item));
	assert_true(writer_queue_push(&queue, &items[2].item)); /* 300: full */
	assert_true(writer_queue_push(&queue, &items[3].item)); /* stays full */
	assert_non_null(writer_queue_take(&queue, 0, &closed));

	writer_queue_release(&queue, 200); /* 200 left: still above low water */
	writer_queue_buffered(&queue, &full);
	assert_true(full);
	assert_int_equal(drained, 0);
	writer_queue_release(&queue, 150); /* 50 < 100: drained, once */
	writer_queue_buffered(&queue, &full);
	assert_false(full);
	assert_int_equal(drained, 1);
	writer_queue_release(&queue, 50);
	assert_int_equal(drained, 1);
	assert_int_equal(queue.peak_buffered, 400);
	writer_queue_destroy(&queue);
}

static void test_timeout_and_close(void **state)
{
	(void)state;
	struct writer_queue queue;
	struct test_item item = {.item.bytes = 1};
	bool closed = true;

	assert_int_equal(writer_queue_init(&queue, 10, 0, NULL, NULL), 0);
	assert_null(writer_queue_take(&queue, 20 * 1000 * 1000, &closed));
	assert_false(closed);

	writer_queue_push(&queue, &item.item);
	writer_queue_close(&queue);
	/* What was queued before close is still delivered, then the end. */
	assert_ptr_equal(writer_queue_take(&queue, -1, &closed), &item.item);
	assert_false(closed);
	assert_null(writer_queue_take(&queue, -1, &closed));
	assert_true(closed);
	/* Pushing after close queues nothing. */
	struct test_item late = {.item.bytes = 5};
	assert_true(writer_queue_push(&queue, &late.item));
	assert_int_equal(writer_queue_buffered(&queue, NULL), 1);
	writer_queue_destroy(&queue);
	assert_int_equal(writer_queue_init(&queue, 0, 0, NULL, NULL), -EINVAL);
}

/* A producer that obeys back-pressure against a consumer thread: every item
 * arrives once, in order, and the queue never holds much more than the
 * high-water mark. */
enum { NITEMS = 200000, ITEM_BYTES = 64, HIGH_WATER = 64 * 1024 };

struct consumer {
	struct writer_queue *queue;
	unsigned received;
	bool in_order;
};

static void *consume(void *arg)
{
	struct consumer *c = arg;
	bool closed = false;
	while (!closed) {
		struct writer_item *list = writer_queue_take(c->queue, -1, &closed);
		size_t bytes = 0;
		while (list) {
			struct test_item *t = (struct test_item *)list;
			list = list->next;
			c->in_order &= t->number == c->received;
			c->received++;
			bytes += t->item.bytes;
			free(t);
		}
		writer_queue_release(c->queue, bytes);
	}
	return NULL;
}

static int64_t realtime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Arrival times run on the recorder's clock, which stops while the queue is
 * full (the loop reads nothing then): an item pushed after 100 ms of being
 * full is stamped less than 100 ms after the one before the pause, and
 * writer_queue_oldest is the head's stamp, or the clock when empty. */
static void test_arrival_clock_stops_while_full(void **state)
{
	(void)state;
	struct writer_queue queue;
	struct test_item a = {.item.bytes = 100}, b = {.item.bytes = 10}, c = {.item.bytes = 10};
	bool closed;
	assert_int_equal(writer_queue_init(&queue, 100, 50, NULL, NULL), 0);
	int64_t before = realtime();
	assert_true(writer_queue_push(&queue, &a.item)); /* full */
	assert_true(a.item.arrived >= before && a.item.arrived <= realtime());
	assert_int_equal(writer_queue_oldest(&queue), a.item.arrived);
	struct timespec pause = {0, 100000000};
	nanosleep(&pause, NULL);
	assert_non_null(writer_queue_take(&queue, 0, &closed));
	writer_queue_release(&queue, 100); /* below low water: no longer full */
	int64_t wall = realtime();
	assert_false(writer_queue_push(&queue, &b.item));
	assert_true(b.item.arrived - a.item.arrived < wall - before - 90000000);
	assert_int_equal(writer_queue_oldest(&queue), b.item.arrived);
	assert_non_null(writer_queue_take(&queue, 0, &closed));
	int64_t empty = writer_queue_oldest(&queue);
	assert_true(empty >= b.item.arrived);
	assert_false(writer_queue_push(&queue, &c.item));
	assert_true(c.item.arrived >= empty);
	writer_queue_destroy(&queue);
}

static void test_threads_with_backpressure(void **state)
{
	(void)state;
	struct writer_queue queue;
	atomic_int drained = 0;
	struct consumer c = {.queue = &queue, .in_order = true};
	pthread_t thread;

	assert_int_equal(writer_queue_init(&queue, HIGH_WATER, 0, count_drained, &drained), 0);
	assert_int_equal(pthread_create(&thread, NULL, consume, &c), 0);
	for (unsigned i = 0; i < NITEMS; i++) {
		struct test_item *t = malloc(sizeof(*t));
		assert_non_null(t);
		*t = (struct test_item){.item.bytes = ITEM_BYTES, .number = i};
		if (writer_queue_push(&queue, &t->item)) {
			/* Full: wait for the drained signal, as the loop would. */
			int seen = drained;
			bool full = true;
			while (atomic_load(&drained) == seen && full)
				writer_queue_buffered(&queue, &full);
		}
	}
	writer_queue_close(&queue);
	pthread_join(thread, NULL);
	assert_int_equal(c.received, NITEMS);
	assert_true(c.in_order);
	assert_int_equal(writer_queue_buffered(&queue, NULL), 0);
	assert_true(queue.peak_buffered <= HIGH_WATER + ITEM_BYTES);
	writer_queue_destroy(&queue);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_and_accounting),
		cmocka_unit_test(test_high_and_low_water),
		cmocka_unit_test(test_timeout_and_close),
		cmocka_unit_test(test_arrival_clock_stops_while_full),
		cmocka_unit_test(test_threads_with_backpressure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
