/*
 * writer.c - the writer thread (see writer.h).
 *
 * The thread wakes for a batch of items or at least every tick, so that
 * output.flush is kept even on an idle recorder: durability must not depend
 * on more data arriving. Errors from the engine are counted and logged
 * (rate-limited) and the thread goes on with the next item; the engine
 * keeps closed files valid whatever happens to the open one.
 */
#include "writer.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { WRITER_MAX_TICK_NS = 100 * 1000 * 1000, WRITER_MAX_VALUES = 4096 };

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Data of an item was not stored: count it (a frame for an event whose
 * record already closed is `late_data`, anything else `write_errors`), log
 * it rate-limited, and make sure no ACK covers it.
 */
static void writer_failed(struct writer *writer, const struct ingest_item *item, int rc,
			  const struct h5w_error *err)
{
	enum ingest_counter counter = rc == -ESTALE ? INGEST_LATE_DATA : INGEST_WRITE_ERRORS;
	atomic_fetch_add(&writer->ingest->counters_writer[counter], 1);
	ingest_note_failed(writer->ingest, item->source);
	log_ratelimited(&writer->error_log, realtime_ns(),
			rc == -ESTALE ? LOG_LEVEL_WARNING : LOG_LEVEL_ERROR,
			"%s: data from %s not stored: %s", ingest_counter_name(counter),
			item->peer[0] ? item->peer : "the recorder", err->message);
}

/* The group an item names; NULL with err filled if creating it failed:
 * the data for it is lost, and each loss is counted like any write error. */
static const struct writer_group *item_group(struct writer *writer, uint32_t id,
					     struct h5w_error *err)
{
	if (id >= writer->groups_cap || !writer->groups[id].group) {
		snprintf(err->message, sizeof(err->message),
			 "its group could not be created (see the first error about it)");
		return NULL;
	}
	return &writer->groups[id];
}

static int register_group(struct writer *writer, const struct ingest_item *item,
			  struct h5w_error *err)
{
	uint32_t id = item->u.group.id;
	if (id >= writer->groups_cap) {
		size_t cap = writer->groups_cap ? writer->groups_cap * 2 : 64;
		while (cap <= id)
			cap *= 2;
		struct writer_group *groups = realloc(writer->groups, cap * sizeof(*groups));
		if (!groups) {
			snprintf(err->message, sizeof(err->message), "out of memory");
			return -ENOMEM;
		}
		memset(groups + writer->groups_cap, 0, (cap - writer->groups_cap) * sizeof(*groups));
		writer->groups = groups;
		writer->groups_cap = cap;
	}
	const char *values[ROUTER_MAX_PLACEHOLDERS];
	router_values(&item->u.group.route, values);
	writer->groups[id].stream = item->u.group.stream;
	return h5w_group_get(writer->engine, item->u.group.stream, item->u.group.route.names,
			     values, item->u.group.route.nvalues, &writer->groups[id].group, err);
}

/* Item values to engine values; strings become pointers into the arena. */
static void engine_values(const struct ingest_value *in, size_t n, const char *arena,
			  struct h5w_value *out)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = (struct h5w_value){.index = in[i].index, .dtype = in[i].dtype};
		switch (in[i].dtype) {
		case DTYPE_INT64:
			out[i].v.i64 = in[i].v.i64;
			break;
		case DTYPE_UINT64:
			out[i].v.u64 = in[i].v.u64;
			break;
		case DTYPE_UINT8: /* booleans */
			out[i].v.u8 = (uint8_t)in[i].v.u64;
			break;
		case DTYPE_STRING:
			out[i].v.s = arena + in[i].v.string;
			break;
		default:
			out[i].dtype = DTYPE_FLOAT64;
			out[i].v.f64 = in[i].v.f64;
			break;
		}
	}
}

static int apply_data(struct writer *writer, const struct ingest_item *item,
		      const struct writer_group *group, struct h5w_error *err)
{
	if (group->stream->layout == SCHEMA_LAYOUT_RECORDS)
		return h5w_record_data(writer->engine, group->group, item->u.data.event_id,
				       item->u.data.t0, item->u.data.channel, item->u.data.dtype,
				       item->u.data.samples, item->u.data.nsamples, err);
	return h5w_stream_append(writer->engine, group->group, item->u.data.channel,
				 item->u.data.dtype, item->u.data.samples, item->u.data.nsamples,
				 item->u.data.t0, item->u.data.seq, err);
}

static int apply_rows(struct writer *writer, const struct ingest_item *item,
		      struct h5w_error *err)
{
	struct h5w_value values[WRITER_MAX_VALUES];

	for (uint32_t r = 0; r < item->u.rows.nrows; r++) {
		const struct ingest_row *row = &item->u.rows.rows[r];
		const struct writer_group *group = item_group(writer, row->group, err);
		size_t n = row->nvalues < WRITER_MAX_VALUES ? row->nvalues : WRITER_MAX_VALUES;
		if (!group) {
			writer_failed(writer, item, -EIO, err);
			continue;
		}
		engine_values(item->u.rows.values + row->first_value, n, item->u.rows.arena,
			      values);
		int rc = h5w_table_append(writer->engine, group->group, row->time, values, n, err);
		if (rc)
			writer_failed(writer, item, rc, err); /* one bad row spoils no other */
	}
	return 0;
}

static int apply_item(struct writer *writer, const struct ingest_item *item,
		      struct h5w_error *err)
{
	const struct writer_group *group;
	struct h5w_value values[WRITER_MAX_VALUES];

	switch (item->kind) {
	case INGEST_ITEM_GROUP:
		return register_group(writer, item, err);
	case INGEST_ITEM_DATA:
		group = item_group(writer, item->u.data.group, err);
		return group ? apply_data(writer, item, group, err) : -EIO;
	case INGEST_ITEM_EVENT:
		group = item_group(writer, item->u.event.group, err);
		if (!group)
			return -EIO;
		engine_values(item->u.event.values, item->u.event.nvalues, item->u.event.arena,
			      values);
		return h5w_record_fields(writer->engine, group->group, item->u.event.event_id,
					 item->u.event.time, values, item->u.event.nvalues, err);
	case INGEST_ITEM_ROWS:
		return apply_rows(writer, item, err);
	case INGEST_ITEM_FLUSH:
		return h5w_flush(writer->engine, err);
	case INGEST_ITEM_ROLL:
		return h5w_roll(writer->engine, err);
	}
	return 0;
}

/*
 * Publish the engine's figures, and progress to the loop. Durability is
 * marked where it is known to hold: an explicit flush or roll makes the
 * items up to it durable (apply_batch); a flush by the tick after a batch
 * makes every applied item durable. A flush the engine does on its own in
 * the middle of a batch (a roll by size) is not counted: the items after it
 * are in a new file and not yet flushed, and an early ACK would be a lie.
 */
static void publish_stats(struct writer *writer, int64_t flush_before_tick)
{
	struct h5w_stats stats;
	h5w_get_stats(writer->engine, &stats);
	if (stats.last_flush != flush_before_tick)
		writer->durable_item = writer->last_item + 1;
	ingest_mark_progress(writer->ingest, writer->last_item + 1, writer->durable_item);
	pthread_mutex_lock(&writer->stats_lock);
	writer->stats = stats;
	pthread_mutex_unlock(&writer->stats_lock);
}

static void apply_batch(struct writer *writer, struct writer_item *list)
{
	struct h5w_error err;
	size_t bytes = 0;

	while (list) {
		struct ingest_item *item = (struct ingest_item *)list;
		list = list->next;
		int rc = apply_item(writer, item, &err);
		if (rc < 0)
			writer_failed(writer, item, rc, &err);
		else if (item->kind == INGEST_ITEM_FLUSH || item->kind == INGEST_ITEM_ROLL)
			writer->durable_item = item->number + 1; /* flushed, or closed and fsync'd */
		writer->last_item = item->number;
		bytes += item->link.bytes;
		ingest_item_free(item);
		if (writer->delay_us)
			usleep(writer->delay_us);
	}
	writer_queue_release(writer->queue, bytes);
}

static void *writer_main(void *arg)
{
	struct writer *writer = arg;
	int64_t tick = writer->schema->output.flush_ns / 4;
	bool closed = false;
	struct h5w_error err;
	struct h5w_stats before;

	if (tick <= 0 || tick > WRITER_MAX_TICK_NS)
		tick = WRITER_MAX_TICK_NS;
	/* The thread-safe libhdf5 keeps its error-printing setting per thread:
	 * silence it on this one, or every failure dumps the whole HDF5 error
	 * stack to stderr, unthrottled. The engine reports errors itself. */
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	int rc = h5w_open(&writer->engine, writer->schema, writer->options, realtime_ns(),
			  &writer->open_error);
	pthread_mutex_lock(&writer->stats_lock);
	if (rc == 0)
		h5w_get_stats(writer->engine, &writer->stats);
	writer->open_result = rc;
	pthread_cond_signal(&writer->opened);
	pthread_mutex_unlock(&writer->stats_lock);
	if (rc)
		return NULL;
	while (!closed) {
		struct writer_item *list = writer_queue_take(writer->queue, tick, &closed);
		apply_batch(writer, list);
		h5w_get_stats(writer->engine, &before);
		if (h5w_tick(writer->engine, realtime_ns(), &err) < 0)
			writer_failed(writer, &(struct ingest_item){.peer = ""}, -EIO, &err);
		publish_stats(writer, before.last_flush);
	}
	writer->result = h5w_close(writer->engine, &err);
	if (writer->result < 0)
		log_msg(LOG_LEVEL_ERROR, "closing the output file: %s", err.message);
	writer->engine = NULL;
	/* A clean close flushed everything that was applied. */
	if (writer->result == 0)
		ingest_mark_progress(writer->ingest, writer->last_item + 1, writer->last_item + 1);
	return NULL;
}

int writer_start(struct writer *writer, const struct schema *schema,
		 const struct h5w_options *options, struct writer_queue *queue,
		 struct ingest *ingest, unsigned delay_us, struct h5w_error *err)
{
	memset(writer, 0, sizeof(*writer));
	writer->schema = schema;
	writer->options = options;
	writer->queue = queue;
	writer->ingest = ingest;
	writer->delay_us = delay_us;
	writer->error_log = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000000000, 20);
	pthread_mutex_init(&writer->stats_lock, NULL);
	pthread_cond_init(&writer->opened, NULL);
	writer->open_result = 1; /* not known yet */
	int rc = pthread_create(&writer->thread, NULL, writer_main, writer);
	if (rc) {
		snprintf(err->message, sizeof(err->message), "cannot start the writer thread");
		rc = -rc;
	} else {
		/* The engine is opened on the writer thread (the only thread that
		 * calls HDF5); wait for the outcome. */
		pthread_mutex_lock(&writer->stats_lock);
		while (writer->open_result == 1)
			pthread_cond_wait(&writer->opened, &writer->stats_lock);
		rc = writer->open_result;
		pthread_mutex_unlock(&writer->stats_lock);
		if (rc) {
			*err = writer->open_error;
			pthread_join(writer->thread, NULL);
		}
	}
	if (rc) {
		pthread_cond_destroy(&writer->opened);
		pthread_mutex_destroy(&writer->stats_lock);
		return rc;
	}
	writer->started = true;
	return 0;
}

int writer_stop(struct writer *writer)
{
	if (!writer->started)
		return 0;
	writer_queue_close(writer->queue);
	pthread_join(writer->thread, NULL);
	writer->started = false;
	pthread_cond_destroy(&writer->opened);
	pthread_mutex_destroy(&writer->stats_lock);
	free(writer->groups);
	writer->groups = NULL;
	return writer->result;
}

void writer_stats(struct writer *writer, struct h5w_stats *stats)
{
	pthread_mutex_lock(&writer->stats_lock);
	*stats = writer->stats;
	pthread_mutex_unlock(&writer->stats_lock);
}
