/*
 * ingest.c - loop-side state shared by the frame and line ingest paths:
 * items, the group registry, counters, back-pressure, and what the loop
 * does with the writer's progress (progress.h): ACKs, closing connections
 * whose data was lost, retiring idle groups.
 *
 * Everything here runs on the loop thread except ingest_queue_drained(),
 * which the writer queue calls from any thread (it only wakes the loop with
 * uv_async_send), ingest_note_refusal(), and the item allocator, which
 * both threads use.
 *
 * Large items are recycled. A DATA item is as large as its waveform (400 kB
 * in the accelerator set-up), and glibc serves blocks that size with mmap,
 * or from the top of a heap it trims again when they are freed: so every
 * item came with fresh pages, faulted in one at a time while the kernel
 * read the payload into them (95 % of h5recd's page faults, and more CPU
 * than the copy that reading into the item saves). The loop allocates items
 * and the writer frees them, so freed blocks are kept between them, under
 * a mutex (one lock per large item), bounded in count and bytes. 32 of
 * them: pre-compressed waveforms vary in size, and with 8 only 46 % of
 * their items found a block that fits (91 % with 32); a block reused is
 * also still in the CPU's cache, where a fresh one from the heap is not.
 */
#include "ingest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_frame.h"
#include "ingest_http.h"
#include "ingest_line.h"

/* A group in the registry (below). */
struct ingest_group_entry {
	uint32_t id;
	uint64_t last_push; /* number of the last item queued for it */
	uint64_t seen_ms;   /* uv_now() of its last line or frame */
	uint64_t points;    /* lines and frames routed to it */
	const struct schema_stream *stream;
	const char *path;   /* its group path, after the key */
	size_t key_len;
	char key[]; /* values joined by '\0', then the path */
};

static const char *const counter_names[INGEST_NCOUNTERS] = {
	[INGEST_FRAMES] = "frames",
	[INGEST_LINES] = "lines",
	[INGEST_SAMPLES] = "samples",
	[INGEST_BYTES] = "bytes",
	[INGEST_PROTOCOL_ERRORS] = "protocol_errors",
	[INGEST_BAD_LINES] = "bad_lines",
	[INGEST_UNKNOWN_STREAM] = "unknown_streams",
	[INGEST_UNKNOWN_CHANNEL] = "unknown_channels",
	[INGEST_UNKNOWN_FIELD] = "unknown_fields",
	[INGEST_BAD_PLACEHOLDER] = "bad_placeholders",
	[INGEST_BAD_DATA] = "bad_data",
	[INGEST_GROUP_LIMIT] = "group_limit",
	[INGEST_LOST_FRAMES] = "lost_frames",
	[INGEST_UDP_DROPS] = "udp_drops",
	[INGEST_AUTH_FAILURES] = "auth_failures",
	[INGEST_WRITE_ERRORS] = "write_errors",
	[INGEST_LATE_DATA] = "late_data",
};

const char *ingest_counter_name(enum ingest_counter counter)
{
	return counter < INGEST_NCOUNTERS ? counter_names[counter] : "unknown";
}

uint64_t ingest_counter_value(struct ingest *ingest, enum ingest_counter counter)
{
	return ingest->counters[counter] + atomic_load(&ingest->counters_writer[counter]);
}

/* Allocations at least this large are recycled. */
#define ITEM_CACHE_MIN (64u * 1024)
#define ITEM_CACHE_COUNT 32
#define ITEM_CACHE_BYTES (32u << 20)

static struct {
	pthread_mutex_t lock;
	size_t count;
	size_t bytes;
	struct ingest_item *items[ITEM_CACHE_COUNT]; /* oldest first */
} item_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void cache_remove(size_t i)
{
	item_cache.bytes -= item_cache.items[i]->alloc_bytes;
	item_cache.count--;
	memmove(&item_cache.items[i], &item_cache.items[i + 1],
		(item_cache.count - i) * sizeof(item_cache.items[0]));
}

/* A cached block of at least `bytes`, wasting at most a quarter of them. */
static struct ingest_item *cache_take(size_t bytes)
{
	struct ingest_item *found = NULL;
	pthread_mutex_lock(&item_cache.lock);
	for (size_t i = item_cache.count; i-- > 0;) {
		size_t have = item_cache.items[i]->alloc_bytes;
		if (have >= bytes && have - bytes <= bytes / 4) {
			found = item_cache.items[i];
			cache_remove(i);
			break;
		}
	}
	pthread_mutex_unlock(&item_cache.lock);
	return found;
}

/* Keep item for reuse, making room by freeing the oldest blocks; false
 * when it is larger than the whole cache. */
static bool cache_put(struct ingest_item *item)
{
	struct ingest_item *evicted[ITEM_CACHE_COUNT];
	size_t nevicted = 0;
	if (item->alloc_bytes > ITEM_CACHE_BYTES)
		return false;
	pthread_mutex_lock(&item_cache.lock);
	while (item_cache.count == ITEM_CACHE_COUNT ||
	       item_cache.bytes + item->alloc_bytes > ITEM_CACHE_BYTES) {
		evicted[nevicted++] = item_cache.items[0];
		cache_remove(0);
	}
	item_cache.items[item_cache.count++] = item;
	item_cache.bytes += item->alloc_bytes;
	pthread_mutex_unlock(&item_cache.lock);
	for (size_t i = 0; i < nevicted; i++)
		free(evicted[i]);
	return true;
}

size_t ingest_item_cache_drain(void)
{
	size_t freed = 0;
	pthread_mutex_lock(&item_cache.lock);
	while (item_cache.count > 0) {
		struct ingest_item *item = item_cache.items[item_cache.count - 1];
		cache_remove(item_cache.count - 1);
		free(item);
		freed++;
	}
	pthread_mutex_unlock(&item_cache.lock);
	return freed;
}

struct ingest_item *ingest_item_new(enum ingest_item_kind kind, size_t extra, const char *peer)
{
	size_t bytes = sizeof(struct ingest_item) + extra;
	struct ingest_item *item = bytes >= ITEM_CACHE_MIN ? cache_take(bytes) : NULL;
	size_t alloc_bytes = item ? item->alloc_bytes : bytes;
	if (!item)
		item = malloc(bytes);
	if (!item)
		return NULL;
	memset(item, 0, sizeof(*item));
	item->kind = kind;
	item->alloc_bytes = alloc_bytes;
	item->link.bytes = bytes;
	if (peer)
		snprintf(item->peer, sizeof(item->peer), "%s", peer);
	return item;
}

void ingest_item_free(struct ingest_item *item)
{
	if (item && item->alloc_bytes >= ITEM_CACHE_MIN && cache_put(item))
		return;
	free(item);
}

void ingest_error(struct ingest *ingest, enum ingest_counter counter, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	ingest->counters[counter]++;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_ratelimited(&ingest->error_log, (int64_t)uv_hrtime(), LOG_LEVEL_WARNING, "%s: %s",
			ingest_counter_name(counter), message);
}

/* ---- back-pressure and durability ------------------------------------- */

static void note_push(struct ingest *ingest, uint32_t id, uint64_t number)
{
	if (id < ingest->ids_used && ingest->by_id[id])
		ingest->by_id[id]->last_push = number;
}

void ingest_push(struct ingest *ingest, struct ingest_item *item)
{
	item->number = ingest->next_item++;
	item->origin = ingest->origin;
	if (ingest->origin_id)
		snprintf(item->origin_id, sizeof(item->origin_id), "%s", ingest->origin_id);
	/* what each group has queued: retiring waits until it is applied */
	switch (item->kind) {
	case INGEST_ITEM_GROUP:
		note_push(ingest, item->u.group.id, item->number);
		break;
	case INGEST_ITEM_DATA:
		note_push(ingest, item->u.data.group, item->number);
		break;
	case INGEST_ITEM_EVENT:
		note_push(ingest, item->u.event.group, item->number);
		break;
	case INGEST_ITEM_ROWS:
		for (uint32_t r = 0; r < item->u.rows.nrows; r++)
			note_push(ingest, item->u.rows.rows[r].group, item->number);
		break;
	default:
		break;
	}
	if (writer_queue_push(ingest->queue, &item->link) && ingest->net)
		net_set_paused(ingest->net, true);
}

bool ingest_push_datagram_item(struct ingest *ingest, struct ingest_item *item)
{
	bool full;
	writer_queue_buffered(ingest->queue, &full);
	if (full) {
		ingest_error(ingest, INGEST_UDP_DROPS, "%s: datagram dropped: buffers full",
			     item->peer);
		ingest_item_free(item);
		return false;
	}
	ingest_push(ingest, item);
	return true;
}

static void on_drained(uv_async_t *async)
{
	struct ingest *ingest = async->data;
	bool full;
	writer_queue_buffered(ingest->queue, &full);
	if (!full && ingest->net)
		net_set_paused(ingest->net, false);
}

void ingest_queue_drained(void *arg)
{
	struct ingest *ingest = arg;
	uv_async_send(&ingest->drained_async);
}

static void retire_idle(struct ingest *ingest);

static void on_progress(void *arg)
{
	struct ingest *ingest = arg;
	uint64_t durable = atomic_load(&ingest->progress.durable);
	uint64_t failed[PROGRESS_FAILED_MAX];
	bool all_failed;
	size_t nfailed = progress_take_failed(&ingest->progress, failed, &all_failed);
	/* Failures first: the marks that follow may already cover them; and
	 * before them the reasons, which their senders get before the close. */
	struct progress_refusal refusals[PROGRESS_REFUSALS_MAX];
	size_t nrefusals = progress_take_refusals(&ingest->progress, refusals);
	for (size_t i = 0; i < nrefusals; i++)
		ingest_frame_send_refusal(ingest, &refusals[i]);
	ingest_frame_drop_failed(ingest, failed, nfailed, all_failed);
	ingest_frame_send_acks(ingest, durable);
	if (ingest->on_sources)
		ingest->on_sources(ingest->sources, failed, nfailed, all_failed, durable);
	retire_idle(ingest);
	if (ingest->on_progress)
		ingest->on_progress(ingest->on_progress_arg, atomic_load(&ingest->progress.applied),
				    durable);
	void (*finished)(void *arg) = ingest->on_writer_finished;
	if (finished && atomic_load(&ingest->progress.finished)) {
		ingest->on_writer_finished = NULL;
		finished(ingest->on_writer_finished_arg);
	}
}

/* ---- group registry ---------------------------------------------------- */

static size_t route_key(const struct route *route, char *key, size_t cap)
{
	size_t len = 0;
	for (size_t i = 0; i < route->nvalues; i++) {
		size_t n = strlen(route->values[i]) + 1;
		if (len + n > cap)
			break;
		memcpy(key + len, route->values[i], n);
		len += n;
	}
	return len;
}

static uint64_t hash_key(const struct schema_stream *stream, const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)stream;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ull;
	}
	return h;
}

static int grow_registry(struct ingest *ingest)
{
	size_t count = ingest->group_slot_count ? ingest->group_slot_count * 2 : 64;
	struct ingest_group_entry **slots = calloc(count, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < ingest->group_slot_count; i++) {
		struct ingest_group_entry *e = ingest->group_slots[i];
		if (!e)
			continue;
		size_t at = hash_key(e->stream, e->key, e->key_len) & (count - 1);
		while (slots[at])
			at = (at + 1) & (count - 1);
		slots[at] = e;
	}
	free(ingest->group_slots);
	ingest->group_slots = slots;
	ingest->group_slot_count = count;
	return 0;
}

/* More ids: by_id grows, and the new ids go on the free list (lowest
 * first out). */
static int grow_ids(struct ingest *ingest)
{
	uint32_t more = ingest->ids_used ? ingest->ids_used : 64;
	uint32_t cap = ingest->ids_used + more;
	struct ingest_group_entry **by_id = realloc(ingest->by_id, cap * sizeof(*by_id));
	if (by_id)
		ingest->by_id = by_id;
	uint32_t *free_ids = realloc(ingest->free_ids, cap * sizeof(*free_ids));
	if (free_ids)
		ingest->free_ids = free_ids;
	if (!by_id || !free_ids)
		return -ENOMEM;
	for (uint32_t i = 0; i < more; i++) {
		by_id[ingest->ids_used + i] = NULL;
		free_ids[i] = cap - 1 - i;
	}
	ingest->nfree_ids = more;
	ingest->ids_used = cap;
	return 0;
}

/* Take E out of the open-addressing table, moving later entries of its
 * probe run back so that every lookup still finds them. */
static void registry_remove(struct ingest *ingest, struct ingest_group_entry *e)
{
	size_t mask = ingest->group_slot_count - 1;
	size_t at = hash_key(e->stream, e->key, e->key_len) & mask;
	while (ingest->group_slots[at] != e)
		at = (at + 1) & mask;
	size_t hole = at;
	for (size_t next = (hole + 1) & mask; ingest->group_slots[next]; next = (next + 1) & mask) {
		struct ingest_group_entry *m = ingest->group_slots[next];
		size_t home = hash_key(m->stream, m->key, m->key_len) & mask;
		/* m may fill the hole unless its home lies in (hole, next] */
		bool stays = hole <= next ? (home > hole && home <= next)
					  : (home > hole || home <= next);
		if (stays)
			continue;
		ingest->group_slots[hole] = m;
		hole = next;
	}
	ingest->group_slots[hole] = NULL;
	ingest->by_id[e->id] = NULL;
	ingest->free_ids[ingest->nfree_ids++] = e->id;
	ingest->ngroups--;
	free(e);
}

/*
 * Forget the groups the writer offered that nothing was queued for since
 * it looked (every item for them is applied): their entries go, their ids
 * are free, and one INGEST_ITEM_RETIRE, queued before any later item can
 * name those ids again, has the writer forget them too.
 */
static void retire_idle(struct ingest *ingest)
{
	uint32_t n;
	uint64_t upto;
	uint32_t *ids = progress_take_idle(&ingest->progress, &n, &upto);
	if (!ids)
		return;
	struct ingest_item *item = ingest_item_new(INGEST_ITEM_RETIRE, n * sizeof(uint32_t), NULL);
	if (item) {
		item->u.retire.ids = (uint32_t *)(item + 1);
		for (uint32_t i = 0; i < n; i++) {
			struct ingest_group_entry *e = ids[i] < ingest->ids_used
						       ? ingest->by_id[ids[i]] : NULL;
			if (!e || e->last_push >= upto)
				continue; /* in use again */
			item->u.retire.ids[item->u.retire.n++] = e->id;
			registry_remove(ingest, e);
		}
		ingest->groups_retired += item->u.retire.n;
		if (item->u.retire.n)
			ingest_push(ingest, item);
		else
			ingest_item_free(item);
	}
	free(ids);
}

/* Host part of a peer name ("10.0.0.7:50312" → "10.0.0.7"). */
static void peer_host(const char *peer, char *host, size_t cap)
{
	size_t len = strlen(peer);
	const char *colon = strrchr(peer, ':');
	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1) &&
	    (peer[0] != '[' || colon[-1] == ']'))
		len = (size_t)(colon - peer);
	if (peer[0] == '[' && len >= 2 && peer[len - 1] == ']') {
		peer++;
		len -= 2;
	}
	snprintf(host, cap, "%.*s", (int)len, peer);
}

void ingest_note_refusal(struct ingest *ingest, const char *peer)
{
	char host[sizeof(ingest->refusals.peers[0].host)];
	peer_host(peer && peer[0] ? peer : "unknown", host, sizeof(host));
	pthread_mutex_lock(&ingest->refusals_lock);
	struct ingest_refusals *r = &ingest->refusals;
	struct ingest_peer_refusals *least = &r->peers[0];
	bool counted = false;
	for (size_t i = 0; i < INGEST_REFUSING_PEERS && !counted; i++) {
		struct ingest_peer_refusals *p = &r->peers[i];
		if (p->count && strcmp(p->host, host) == 0) {
			p->count++;
			counted = true;
		} else if (p->count < least->count) {
			least = p;
		}
	}
	if (!counted) {
		/* a new address takes the place of the one with the fewest,
		 * whose count joins the others */
		r->others += least->count;
		snprintf(least->host, sizeof(least->host), "%s", host);
		least->count = 1;
	}
	pthread_mutex_unlock(&ingest->refusals_lock);
}

bool ingest_group_view(const struct ingest *ingest, uint32_t id, struct ingest_group_view *out)
{
	const struct ingest_group_entry *e = id < ingest->ids_used ? ingest->by_id[id] : NULL;
	if (!e)
		return false;
	*out = (struct ingest_group_view){.path = e->path, .stream = e->stream,
					  .seen_ms = e->seen_ms, .points = e->points};
	return true;
}

void ingest_refusals(struct ingest *ingest, struct ingest_refusals *out)
{
	pthread_mutex_lock(&ingest->refusals_lock);
	*out = ingest->refusals;
	pthread_mutex_unlock(&ingest->refusals_lock);
}

int ingest_group_id(struct ingest *ingest, const struct route *route, const char *peer,
		    uint32_t *id)
{
	char key[ROUTER_MAX_PLACEHOLDERS * (ROUTER_MAX_VALUE + 1)];
	size_t len = route_key(route, key, sizeof(key));
	uint64_t h = hash_key(route->stream, key, len);

	if (ingest->group_slot_count) {
		size_t mask = ingest->group_slot_count - 1;
		for (size_t at = h & mask; ingest->group_slots[at]; at = (at + 1) & mask) {
			struct ingest_group_entry *e = ingest->group_slots[at];
			if (e->stream == route->stream && e->key_len == len &&
			    memcmp(e->key, key, len) == 0) {
				e->seen_ms = uv_now(ingest->loop);
				e->points++;
				*id = e->id;
				return 0;
			}
		}
	}
	/* The writer refuses data for a group new to a full file: register
	 * none meanwhile (junk values would only fill the registry). */
	uint64_t max = ingest->schema->limits.max_groups;
	if (atomic_load(&ingest->progress.file_groups) >= max || ingest->ngroups >= 2 * max) {
		ingest_note_refusal(ingest, peer);
		return -EMLINK;
	}
	/* Keep the table at most half full so probes stay short. */
	if ((ingest->ngroups + 1) * 2 > ingest->group_slot_count && grow_registry(ingest))
		return -ENOMEM;
	if (!ingest->nfree_ids && grow_ids(ingest))
		return -ENOMEM;

	char path[512];
	const char *values[ROUTER_MAX_PLACEHOLDERS];
	router_values(route, values);
	if (schema_template_expand(&route->stream->group, route->names, values, route->nvalues,
				   path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "?"); /* the writer says why */
	size_t path_len = strlen(path) + 1;
	struct ingest_group_entry *e = malloc(sizeof(*e) + len + path_len);
	struct ingest_item *item = ingest_item_new(INGEST_ITEM_GROUP, 0, peer);
	if (!e || !item) {
		free(e);
		free(item);
		return -ENOMEM;
	}
	e->id = ingest->free_ids[--ingest->nfree_ids];
	ingest->by_id[e->id] = e;
	ingest->ngroups++;
	e->stream = route->stream;
	e->key_len = len;
	memcpy(e->key, key, len);
	memcpy(e->key + len, path, path_len);
	e->path = e->key + len;
	e->seen_ms = uv_now(ingest->loop);
	e->points = 1;
	size_t mask = ingest->group_slot_count - 1;
	size_t at = h & mask;
	while (ingest->group_slots[at])
		at = (at + 1) & mask;
	ingest->group_slots[at] = e;

	item->u.group.id = e->id;
	item->u.group.stream = route->stream;
	item->u.group.route = *route;
	ingest_push(ingest, item);
	*id = e->id;
	return 0;
}

/* ---- lifecycle ----------------------------------------------------------- */

int ingest_init(struct ingest *ingest, uv_loop_t *loop, const struct schema *schema,
		struct writer_queue *queue)
{
	memset(ingest, 0, sizeof(*ingest));
	ingest->loop = loop;
	ingest->schema = schema;
	ingest->queue = queue;
	ingest->next_item = 1;
	ingest->next_source = 1;
	/* 20 messages a second, then a summary of what was suppressed. */
	ingest->error_log = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000000000, 20);
	ingest->stream_samples = calloc(schema->nstreams ? schema->nstreams : 1,
					sizeof(*ingest->stream_samples));
	if (!ingest->stream_samples)
		return -ENOMEM;
	pthread_mutex_init(&ingest->refusals_lock, NULL);
	int err = progress_init(&ingest->progress, loop, on_progress, ingest);
	if (err)
		return err;
	err = uv_async_init(loop, &ingest->drained_async, on_drained);
	if (err) {
		progress_close(&ingest->progress);
		return err;
	}
	ingest->drained_async.data = ingest;
	ingest->drained_open = true;
	return 0;
}

void ingest_close(struct ingest *ingest)
{
	progress_close(&ingest->progress);
	if (!ingest->drained_open)
		return;
	ingest->drained_open = false;
	uv_close((uv_handle_t *)&ingest->drained_async, NULL);
}

void ingest_free(struct ingest *ingest)
{
	ingest_item_cache_drain();
	line_decoder_free(ingest->fields_decoder);
	ingest->fields_decoder = NULL;
	ingest_line_udp_free(ingest);
	free(ingest->udp_senders);
	ingest->udp_senders = NULL;
	free(ingest->stream_samples);
	ingest->stream_samples = NULL;
	pthread_mutex_destroy(&ingest->refusals_lock);
	progress_free(&ingest->progress);
	for (size_t i = 0; i < ingest->group_slot_count; i++)
		free(ingest->group_slots[i]);
	free(ingest->group_slots);
	ingest->group_slots = NULL;
	free(ingest->by_id);
	free(ingest->free_ids);
	ingest->by_id = NULL;
	ingest->free_ids = NULL;
	ingest->group_slot_count = 0;
}
