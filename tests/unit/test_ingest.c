/* test_ingest.c - the allocator of loop → writer work items (ingest.c):
 * large items are reused instead of coming back from malloc with fresh
 * pages each time, within the cache's bounds, from any thread; and the
 * group registry: groups the writer offers back are forgotten only when
 * nothing is queued for them, their ids come back, every other group is
 * still found, and a full file refuses new groups, counted by peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "ingest.h"
#include "router.h"
#include "schema.h"

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
	struct ingest_item *items[40];
	for (int i = 0; i < 40; i++)
		assert_non_null(items[i] = ingest_item_new(INGEST_ITEM_DATA, WAVEFORM, NULL));
	for (int i = 0; i < 40; i++)
		ingest_item_free(items[i]);
	assert_int_equal(ingest_item_cache_drain(), 32); /* by count */

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
	assert_true(ingest_item_cache_drain() <= 32);
}

/* ---- group registry ---------------------------------------------------- */

struct registry {
	uv_loop_t loop;
	struct writer_queue queue;
	struct schema *schema;
	struct ingest ingest;
};

static void drained(void *arg)
{
	(void)arg;
}

static void registry_open(struct registry *r, unsigned max_groups)
{
	char text[1024];
	struct schema_error err;
	snprintf(text, sizeof(text),
		 "name: unit\n"
		 "output: { directory: /tmp, file: \"u-{seq}.h5\" }\n"
		 "listen:\n  - { protocol: line, transport: tcp, address: \"127.0.0.1:7701\" }\n"
		 "limits: { max_groups: %u }\n"
		 "streams:\n"
		 "  - { name: w, match: { measurement: w }, group: \"/{station}\", layout: table,\n"
		 "      channels: { t: { dtype: float32 } } }\n", max_groups);
	if (schema_load_string(text, strlen(text), "unit.yaml", &r->schema, &err))
		fail_msg("%s", err.message);
	assert_int_equal(uv_loop_init(&r->loop), 0);
	assert_int_equal(writer_queue_init(&r->queue, 1u << 30, 0, drained, NULL), 0);
	assert_int_equal(ingest_init(&r->ingest, &r->loop, r->schema, &r->queue), 0);
}

/* What the writer would take: every item queued so far, the number of the
 * RETIRE items among them and their ids. */
static size_t registry_take(struct registry *r, uint32_t *retired, size_t cap)
{
	bool closed;
	size_t n = 0;
	struct writer_item *list = writer_queue_take(&r->queue, 0, &closed);
	while (list) {
		struct ingest_item *item = (struct ingest_item *)list;
		list = list->next;
		if (item->kind == INGEST_ITEM_RETIRE)
			for (uint32_t i = 0; i < item->u.retire.n && n < cap; i++)
				retired[n++] = item->u.retire.ids[i];
		writer_queue_release(&r->queue, item->link.bytes);
		ingest_item_free(item);
	}
	return n;
}

static void registry_close(struct registry *r)
{
	registry_take(r, NULL, 0);
	ingest_close(&r->ingest);
	assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
	ingest_free(&r->ingest);
	writer_queue_close(&r->queue);
	writer_queue_destroy(&r->queue);
	assert_int_equal(uv_loop_close(&r->loop), 0);
	schema_free(r->schema);
}

static int station_id(struct registry *r, int station, const char *peer, uint32_t *id)
{
	struct route route = {.stream = &r->schema->streams[0], .nvalues = 1,
			      .names = {"station"}};
	snprintf(route.values[0], sizeof(route.values[0]), "s%d", station);
	return ingest_group_id(&r->ingest, &route, peer, id);
}

static void test_registry_retires_idle_groups(void **state)
{
	(void)state;
	enum { N = 1000 };
	static uint32_t ids[N], retired[N];
	struct registry r;
	registry_open(&r, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(station_id(&r, i, "10.0.0.1:4000", &ids[i]), 0);
	registry_take(&r, NULL, 0);
	uint64_t upto = r.ingest.next_item; /* every GROUP item applied */
	/* one more item for s1 is queued after the writer looked */
	uint32_t again;
	assert_int_equal(station_id(&r, 1, "10.0.0.1:4000", &again), 0);
	assert_int_equal(again, ids[1]);
	struct ingest_item *rows = ingest_item_new(INGEST_ITEM_ROWS, sizeof(struct ingest_row), NULL);
	rows->u.rows.rows = (struct ingest_row *)(rows + 1);
	rows->u.rows.rows[0] = (struct ingest_row){.group = ids[1]};
	rows->u.rows.nrows = 1;
	ingest_push(&r.ingest, rows);

	/* the writer offers every odd station */
	uint32_t *offer = malloc(N / 2 * sizeof(*offer));
	for (int i = 0; i < N / 2; i++)
		offer[i] = ids[2 * i + 1];
	progress_offer_idle(&r.ingest.progress, offer, N / 2, upto);
	uv_run(&r.loop, UV_RUN_NOWAIT);
	size_t n = registry_take(&r, retired, N);
	assert_int_equal(n, N / 2 - 1); /* all but s1 */
	assert_int_equal(r.ingest.ngroups, N / 2 + 1);
	assert_int_equal(r.ingest.groups_retired, N / 2 - 1);
	for (size_t k = 0; k < n; k++)
		assert_true(retired[k] != ids[1] && retired[k] % 2 == ids[3] % 2);

	/* the groups kept keep their ids, found through the shifted table */
	for (int i = 0; i < N; i += 2) {
		assert_int_equal(station_id(&r, i, "10.0.0.1:4000", &again), 0);
		assert_int_equal(again, ids[i]);
	}
	assert_int_equal(station_id(&r, 1, "10.0.0.1:4000", &again), 0);
	assert_int_equal(again, ids[1]);
	assert_int_equal(registry_take(&r, retired, N), 0); /* no new GROUP item... */
	assert_int_equal(r.ingest.next_item, upto + 2);      /* ...nor any other */
	/* a retired station comes back as a new group, on a freed id */
	assert_int_equal(station_id(&r, 3, "10.0.0.1:4000", &again), 0);
	bool reused = false;
	for (int i = 0; i < N / 2; i++)
		reused |= again == ids[2 * i + 1] && again != ids[1];
	assert_true(reused);
	assert_int_equal(r.ingest.next_item, upto + 3);
	registry_close(&r);
}

static void test_registry_full_file_refuses_by_peer(void **state)
{
	(void)state;
	struct registry r;
	struct ingest_refusals refusals;
	uint32_t id;
	registry_open(&r, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(station_id(&r, i, "10.0.0.1:4000", &id), 0);
	/* the writer says the file holds max_groups groups with data */
	atomic_store(&r.ingest.progress.file_groups, 4);
	assert_int_equal(station_id(&r, 9, "10.0.0.2:4001", &id), -EMLINK);
	assert_int_equal(station_id(&r, 9, "10.0.0.2:4002", &id), -EMLINK);
	assert_int_equal(station_id(&r, 9, "[::1]:4003", &id), -EMLINK);
	assert_int_equal(station_id(&r, 2, "10.0.0.1:4000", &id), 0); /* known: taken */
	/* a new file: new groups again, up to twice max_groups known */
	atomic_store(&r.ingest.progress.file_groups, 0);
	for (int i = 4; i < 8; i++)
		assert_int_equal(station_id(&r, i, "10.0.0.1:4000", &id), 0);
	assert_int_equal(station_id(&r, 8, "10.0.0.3:1", &id), -EMLINK);
	ingest_refusals(&r.ingest, &refusals);
	assert_string_equal(refusals.peers[0].host, "10.0.0.2");
	assert_int_equal(refusals.peers[0].count, 2);
	assert_string_equal(refusals.peers[1].host, "::1");
	assert_string_equal(refusals.peers[2].host, "10.0.0.3");
	assert_int_equal(refusals.others, 0);
	/* more addresses than places: the one with the fewest makes room */
	for (int i = 0; i < 20; i++) {
		char peer[32];
		snprintf(peer, sizeof(peer), "10.9.0.%d:1", i);
		ingest_note_refusal(&r.ingest, peer);
	}
	ingest_refusals(&r.ingest, &refusals);
	assert_string_equal(refusals.peers[0].host, "10.0.0.2");
	assert_int_equal(refusals.others, 7); /* 3 + 20 addresses, 16 places */
	registry_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_item_is_reused),
		cmocka_unit_test(test_small_items_are_not_kept),
		cmocka_unit_test(test_cache_is_bounded),
		cmocka_unit_test(test_other_thread_frees),
		cmocka_unit_test(test_registry_retires_idle_groups),
		cmocka_unit_test(test_registry_full_file_refuses_by_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
