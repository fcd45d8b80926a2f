/*
 * source.c - the backend-independent part of sources (see source.h): the
 * hand-off from fetch threads to the loop, decoding messages into items,
 * and the mapping from the writer's durable marks to acknowledgements.
 *
 * Acks mean durable. A message is decoded into items on the loop thread
 * and remembered with the number of the last item queued so far (as a
 * frame connection remembers a frame that asked for an ACK): once the
 * writer reports every item below that number durable (flushed and
 * fsync'd), everything made from the message is on disk and it is acked.
 * Each message has a source id of its own, which its items carry, so when
 * the writer could not store one, that message is given back (nak) before
 * the marks that follow could cover it, and only that one; another
 * recorder, or a later file, may store it. A loss the writer cannot charge
 * to anyone (a failed fsync with many messages since the last flush) gives
 * back every message held: one stored twice is better than one lost.
 *
 * The hand-off is bounded by bytes (inbox_mark); a fetch thread waits
 * before fetching while it is over the mark or the writer queue is full,
 * so a slow disk slows the fetching, not the memory.
 */
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest_frame.h"
#include "ingest_line.h"
#include "log.h"
#include "utf8.h"

/* While the writer queue is full, a fetch thread looks again this often. */
#define SOURCE_FULL_POLL_MS 50

static const struct source_backend *backend_of(enum schema_source_kind kind)
{
	switch (kind) {
	case SCHEMA_SOURCE_NATS:
		return &source_nats;
	}
	return NULL;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- fetch threads ----------------------------------------------------------- */

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += (ms % 1000) * 1000000L;
	ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

bool source_wait_room(struct source *src)
{
	bool go;
	pthread_mutex_lock(&src->lock);
	for (;;) {
		bool queue_full;
		if (src->stopping)
			break;
		writer_queue_buffered(src->ingest->queue, &queue_full);
		bool over = src->inbox_bytes >= src->inbox_mark;
		atomic_store(&src->paused, queue_full);
		if (!queue_full && !over)
			break;
		struct timespec until;
		deadline_in(&until, SOURCE_FULL_POLL_MS);
		pthread_cond_timedwait(&src->room, &src->lock, &until);
	}
	go = !src->stopping;
	pthread_mutex_unlock(&src->lock);
	return go;
}

void source_msg_set_id(struct source_msg *msg, const char *id)
{
	size_t n = id ? strlen(id) : 0;
	size_t keep = utf8_prefix((const unsigned char *)id, n, INGEST_ORIGIN_ID_MAX);
	if (keep == SIZE_MAX)
		keep = 0;
	memcpy(msg->msg_id, id ? id : "", keep);
	msg->msg_id[keep] = '\0';
}

void source_deliver(struct source *src, struct source_msg *msg)
{
	msg->next = NULL;
	pthread_mutex_lock(&src->lock);
	*src->inbox_tail = msg;
	src->inbox_tail = &msg->next;
	src->inbox_bytes += msg->len;
	pthread_mutex_unlock(&src->lock);
	uv_async_send(&src->async);
}

void source_fetch_done(struct source *src)
{
	pthread_mutex_lock(&src->lock);
	src->fetch_done = true;
	pthread_mutex_unlock(&src->lock);
	uv_async_send(&src->async);
}

/* ---- loop thread ---------------------------------------------------------------- */

static void settle(struct source *src, struct source_msg *msg, enum source_settle how)
{
	switch (how) {
	case SOURCE_ACK:
		src->stats.acked++;
		break;
	case SOURCE_NAK:
		src->stats.naked++;
		break;
	case SOURCE_TERM:
		src->stats.rejected++;
		break;
	case SOURCE_IN_PROGRESS:
		src->backend->settle(src, msg, how);
		return;
	}
	src->stats.pending--;
	src->backend->settle(src, msg, how);
}

static void hold(struct source *src, struct source_msg *msg)
{
	msg->next = NULL;
	*src->held_tail = msg;
	src->held_tail = &msg->next;
}

/* Decode one message into items; hold it until they are durable. */
static void take_message(struct source *src, struct source_msg *msg)
{
	struct ingest *ingest = src->ingest;
	char peer[80];
	int err;

	snprintf(peer, sizeof(peer), "%.40s seq %llu", src->name,
		 (unsigned long long)msg->stream_seq);
	src->stats.fetched++;
	src->stats.pending++;
	src->stats.bytes += msg->len;
	src->stats.lag = msg->lag;
	if (msg->deliveries > 1)
		src->stats.redelivered++;
	/* each message its own source id: a failure to store is charged to
	 * the messages it hit, not to every message held */
	msg->id = ingest->next_source++ | INGEST_SOURCE_BROKER;
	/* provenance: every row made from it records its stream sequence */
	ingest->origin = msg->stream_seq;
	ingest->origin_id = msg->msg_id;
	if (src->config->protocol == SCHEMA_PROTOCOL_FRAME)
		err = ingest_frame_message(ingest, peer, msg->id, msg->data, msg->len);
	else
		err = ingest_line_message(ingest, peer, msg->id, src->config->precision, msg->data,
					  msg->len);
	ingest->origin = 0;
	ingest->origin_id = NULL;
	msg->last_item = ingest->next_item - 1;
	msg->kept_ms = msg->taken_ms = uv_now(ingest->loop);
	src->backend->taken(src, msg);
	if (err == -EPROTO) {
		/* the same bytes would be refused by every recorder, every time */
		settle(src, msg, SOURCE_TERM);
		return;
	}
	if (err) {
		/* for now (max_groups, memory): another file or recorder may */
		log_ratelimited(&ingest->error_log, now_ns(), LOG_LEVEL_WARNING,
				"%s: message %llu not taken (%s): given back", src->name,
				(unsigned long long)msg->stream_seq,
				err == -EAGAIN ? "refused for now" : strerror(-err));
		settle(src, msg, SOURCE_NAK);
		return;
	}
	hold(src, msg);
}

static void check_drained(struct sources *s)
{
	if (!s->drained)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (!s->list[i].drained)
			return;
	void (*done)(void *arg) = s->drained;
	s->drained = NULL;
	done(s->drained_arg);
}

static void on_async(uv_async_t *async)
{
	struct source *src = async->data;
	struct sources *s = src->ingest->sources;

	pthread_mutex_lock(&src->lock);
	struct source_msg *list = src->inbox;
	src->inbox = NULL;
	src->inbox_tail = &src->inbox;
	src->inbox_bytes = 0;
	bool done = src->fetch_done;
	pthread_cond_broadcast(&src->room);
	pthread_mutex_unlock(&src->lock);

	while (list) {
		struct source_msg *next = list->next;
		take_message(src, list);
		list = next;
	}
	if (done && !src->drained) {
		src->drained = true;
		if (s)
			check_drained(s);
	}
}

/* Give back everything SRC holds. */
static void nak_held(struct source *src)
{
	struct source_msg *msg = src->held;
	src->held = NULL;
	src->held_tail = &src->held;
	while (msg) {
		struct source_msg *next = msg->next;
		settle(src, msg, SOURCE_NAK);
		msg = next;
	}
}

static void ack_durable(struct source *src, uint64_t durable)
{
	while (src->held && src->held->last_item < durable) {
		struct source_msg *msg = src->held;
		src->held = msg->next;
		if (!src->held)
			src->held_tail = &src->held;
		settle(src, msg, SOURCE_ACK);
	}
}

static bool failed_has(const uint64_t *failed, size_t nfailed, uint64_t id)
{
	for (size_t k = 0; k < nfailed; k++)
		if (failed[k] == id)
			return true;
	return false;
}

/* Give back the held messages whose data the writer could not store
 * (ALL: every one); the others stay held, in order. */
static void nak_failed(struct source *src, const uint64_t *failed, size_t nfailed, bool all)
{
	struct source_msg *msg = src->held, *keep = NULL, **keep_tail = &keep;
	size_t naked = 0;
	while (msg) {
		struct source_msg *next = msg->next;
		if (all || failed_has(failed, nfailed, msg->id)) {
			settle(src, msg, SOURCE_NAK);
			naked++;
		} else {
			msg->next = NULL;
			*keep_tail = msg;
			keep_tail = &msg->next;
		}
		msg = next;
	}
	src->held = keep;
	src->held_tail = keep ? keep_tail : &src->held;
	if (naked)
		log_ratelimited(&src->ingest->error_log, now_ns(), LOG_LEVEL_WARNING,
				"%s: %zu message%s not stored here (see above): given back to "
				"the broker for another recorder or a later file", src->name,
				naked, naked == 1 ? "" : "s");
}

void sources_progress(void *arg, const uint64_t *failed, size_t nfailed, bool all_failed,
		      uint64_t durable)
{
	struct sources *s = arg;
	for (size_t i = 0; i < s->n; i++) {
		struct source *src = &s->list[i];
		if (src->held && (nfailed || all_failed))
			nak_failed(src, failed, nfailed, all_failed);
		ack_durable(src, durable);
	}
}

/*
 * The writer marks items durable when a flush writes something: items it
 * applied without writing anything (late frames of a record already
 * stored, say) wait for the next data to be flushed, which may never come.
 * A message held that long after all its items were applied asks for a
 * flush (as `h5rec flush` does), which makes everything before it durable.
 */
static void flush_if_stuck(struct source *src, uint64_t now)
{
	struct ingest *ingest = src->ingest;
	struct source_msg *oldest = src->held;
	uint64_t applied = atomic_load(&ingest->progress.applied);
	uint64_t flush_ms = (uint64_t)(ingest->schema->output.flush_ns / 1000000);

	if (!oldest || oldest->last_item >= applied || src->flush_item > oldest->last_item ||
	    now - oldest->taken_ms < 2 * flush_ms)
		return;
	struct ingest_item *item = ingest_item_new(INGEST_ITEM_FLUSH, 0, src->name);
	if (!item)
		return;
	/* the writer may free the item before ingest_push returns */
	src->flush_item = ingest->next_item;
	ingest_push(ingest, item);
}

/* Messages held for a third of ack_wait are kept alive; the oldest are
 * first in the list. */
static void on_keepalive(uv_timer_t *timer)
{
	struct sources *s = timer->data;
	for (size_t i = 0; i < s->n; i++) {
		struct source *src = &s->list[i];
		uint64_t now = uv_now(src->ingest->loop);
		/* once stopping, the writer flushes by itself, and the queue
		 * closes when the drain ends */
		if (!s->stopping)
			flush_if_stuck(src, now);
		uint64_t third = (uint64_t)(src->config->ack_wait_ns / 3000000);
		for (struct source_msg *msg = src->held; msg; msg = msg->next) {
			if (now - msg->kept_ms < third)
				continue;
			msg->kept_ms = now;
			settle(src, msg, SOURCE_IN_PROGRESS);
		}
	}
}

/* ---- lifecycle ------------------------------------------------------------------ */

static int source_init(struct source *src, uv_loop_t *loop, struct ingest *ingest,
		       const struct schema_source *config)
{
	src->backend = backend_of(config->kind);
	src->config = config;
	src->ingest = ingest;
	snprintf(src->name, sizeof(src->name), "%s %.40s/%.40s", src->backend->name,
		 config->stream, config->consumer);
	src->inbox_tail = &src->inbox;
	src->held_tail = &src->held;
	/* two fetches in hand: one being decoded, one arriving */
	src->inbox_mark = (size_t)config->fetch_max_bytes * 2;
	pthread_mutex_init(&src->lock, NULL);
	pthread_cond_init(&src->room, NULL);
	int err = uv_async_init(loop, &src->async, on_async);
	if (err)
		return err;
	src->async.data = src;
	src->async_open = true;
	return 0;
}

int sources_start(struct sources *s, uv_loop_t *loop, struct ingest *ingest)
{
	const struct schema *schema = ingest->schema;
	int64_t shortest = INT64_MAX;

	memset(s, 0, sizeof(*s));
	if (!schema->nsources)
		return 0;
	s->list = calloc(schema->nsources, sizeof(*s->list));
	if (!s->list)
		return -ENOMEM;
	ingest->sources = s;
	ingest->on_sources = sources_progress;
	for (size_t i = 0; i < schema->nsources; i++) {
		struct source *src = &s->list[i];
		char why[512];
		int err = source_init(src, loop, ingest, &schema->sources[i]);
		s->n++;
		if (err)
			return err;
		err = src->backend->start(src, why, sizeof(why));
		if (err) {
			log_msg(LOG_LEVEL_ERROR, "source %s: %s", src->name, why);
			return err;
		}
		log_msg(LOG_LEVEL_INFO, "source %s: fetching", src->name);
		if (schema->sources[i].ack_wait_ns < shortest)
			shortest = schema->sources[i].ack_wait_ns;
	}
	uv_timer_init(loop, &s->keepalive);
	s->keepalive.data = s;
	s->timer_open = true;
	uint64_t every = (uint64_t)(shortest / 6000000); /* ms: a sixth of ack_wait */
	return uv_timer_start(&s->keepalive, on_keepalive, every, every);
}

void sources_drain(struct sources *s, void (*done)(void *arg), void *arg)
{
	s->drained = done;
	s->drained_arg = arg;
	s->stopping = true;
	for (size_t i = 0; i < s->n; i++) {
		struct source *src = &s->list[i];
		pthread_mutex_lock(&src->lock);
		src->stopping = true;
		pthread_cond_broadcast(&src->room);
		pthread_mutex_unlock(&src->lock);
		if (src->state)
			src->backend->stop_fetching(src);
		else
			src->drained = true; /* never started */
	}
	check_drained(s);
}

void source_get_stats(struct source *src, struct source_stats *out)
{
	*out = src->stats;
	out->fetching_paused = atomic_load(&src->paused);
	out->connected = src->state && src->backend->connected(src);
}

void sources_close(struct sources *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct source *src = &s->list[i];
		if (src->state) {
			pthread_mutex_lock(&src->lock);
			src->stopping = true;
			pthread_cond_broadcast(&src->room);
			pthread_mutex_unlock(&src->lock);
			src->backend->stop_fetching(src);
			src->backend->join(src);
			/* what was never taken: after a failed start, or a drain
			 * cut short */
			pthread_mutex_lock(&src->lock);
			struct source_msg *rest = src->inbox;
			src->inbox = NULL;
			src->inbox_tail = &src->inbox;
			pthread_mutex_unlock(&src->lock);
			while (rest) {
				struct source_msg *next = rest->next;
				src->stats.pending++;
				settle(src, rest, SOURCE_NAK);
				rest = next;
			}
			nak_held(src);
			src->backend->close(src);
			src->state = NULL;
		}
		if (src->async_open) {
			src->async_open = false;
			uv_close((uv_handle_t *)&src->async, NULL);
		}
	}
	if (s->timer_open) {
		s->timer_open = false;
		uv_close((uv_handle_t *)&s->keepalive, NULL);
	}
}

void sources_free(struct sources *s)
{
	for (size_t i = 0; i < s->n; i++) {
		pthread_mutex_destroy(&s->list[i].lock);
		pthread_cond_destroy(&s->list[i].room);
	}
	free(s->list);
	s->list = NULL;
	s->n = 0;
}
