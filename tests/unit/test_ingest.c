/* test_ingest.c - the allocator of loop → writer work items (ingest.c):
 * large items are reused instead of coming back from malloc with fresh
 * pages each time, within the cache's bounds, from any thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

enum { WAVEFORM = 400000 };

static void test_large_item_is_reused(void **state)
{
	(void)state;
	assert_int_equal(ingest_item_cache_drain(), 0);
	struct ingest_item *item = ingest_item_new(INGEST_ITEM_DATA, WAVEFORM, "peer-a");
	assert_non_null(item);
	item->number = 42;
	item->source = 7;
	memset(item + 1, 0x5A, WAVEFORM);
	ingest_item_free(item);

	struct ingest_item *again = ingest_item_new(INGEST_ITEM_ROWS, WAVEFORM - 1000, "peer-b");
	assert_ptr_equal(again, item);
	/* a fresh header whatever the block held before */
	assert_int_equal(again->kind, INGEST_ITEM_ROWS);
	assert_int_equal(again->number, 0);
	assert_int_equal(again->source, 0);
	assert_string_equal(again->peer, "peer-b");
	assert_int_equal(again->link.bytes, sizeof(*again) + WAVEFORM - 1000);
	ingest_item_free(again);

	/* much smaller requests do not pin a large block */
	struct ingest_item *small = ingest_item_new(INGEST_ITEM_DATA, WAVEFORM / 2, NULL);
	assert_ptr_not_equal(small, item);
	ingest_item_free(small);
	assert_int_equal(ingest_item_cache_drain(), 2);
}

static void test_small_items_are_not_kept(void **state)
{
	(void)state;
	for (int i = 0; i < 10; i++)
		ingest_item_free(ingest_item_new(INGEST_ITEM_DATA, 1000, NULL));
	ingest_item_free(ingest_item_new(INGEST_ITEM_FLUSH, 0, NULL));
	ingest_item_free(NULL);
	assert_int_equal(ingest_item_cache_drain(), 0);
}

static void test_cache_is_bounded(void **state)
{
	(void)state;
	struct ingest_item *items[12];
	for (int i = 0; i < 12; i++)
		assert_non_null(items[i] = ingest_item_new(INGEST_ITEM_DATA, WAVEFORM, NULL));
	for (int i = 0; i < 12; i++)
		ingest_item_free(items[i]);
	assert_int_equal(ingest_item_cache_drain(), 8); /* by count */

	const size_t big = 20u << 20;
	struct ingest_item *a = ingest_item_new(INGEST_ITEM_DATA, big, NULL);
	struct ingest_item *b = ingest_item_new(INGEST_ITEM_DATA, big, NULL);
	assert_non_null(a);
	assert_non_null(b);
	ingest_item_free(a);
	ingest_item_free(b);
	assert_int_equal(ingest_item_cache_drain(), 1); /* by bytes */

	ingest_item_free(ingest_item_new(INGEST_ITEM_DATA, 40u << 20, NULL));
	assert_int_equal(ingest_item_cache_drain(), 0); /* larger than the cache */
}

/* The loop allocates, the writer frees: from two threads at once. */
static void *free_items(void *arg)
{
	struct ingest_item **items = arg;
	for (int i = 0; i < 200; i++)
		ingest_item_free(items[i]);
	return NULL;
}

static void test_other_thread_frees(void **state)
{
	(void)state;
	struct ingest_item *items[200];
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 200; i++) {
			items[i] = ingest_item_new(INGEST_ITEM_DATA, 70000 + (size_t)(i % 3) * 1000, NULL);
			assert_non_null(items[i]);
		}
		pthread_t thread;
		assert_int_equal(pthread_create(&thread, NULL, free_items, items), 0);
		for (int i = 0; i < 200; i++)
			ingest_item_free(ingest_item_new(INGEST_ITEM_DATA, 70000, NULL));
		assert_int_equal(pthread_join(thread, NULL), 0);
	}
	assert_true(ingest_item_cache_drain() <= 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_item_is_reused),
		cmocka_unit_test(test_small_items_are_not_kept),
		cmocka_unit_test(test_cache_is_bounded),
		cmocka_unit_test(test_other_thread_frees),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
