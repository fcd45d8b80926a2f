/*
 * writer.c - the writer thread (see writer.h).
 *
 * The thread wakes for a batch of items or at least every tick, so that
 * output.flush is kept even on an idle recorder: durability must not depend
 * on more data arriving. Errors from the engine are counted and logged
 * (rate-limited) and the thread goes on with the next item; the engine
 * keeps closed files valid whatever happens to the open one.
 *
 * A full disk (or file-size limit) is not an error of an item: the engine
 * holds what it cannot store (h5w.h) and the writer goes on, logging when
 * the output becomes full and when space returns. Once what is held fills
 * limits.max_buffer the engine refuses more (-ENOBUFS), and the writer
 * stalls on that item (writer_stall): it keeps the item and the rest of
 * its batch, whose bytes stay counted in the queue, so the queue fills and
 * the loop stops reading TCP and Unix connections: senders are held back,
 * nothing is dropped (UDP datagrams are, counted, as for any back-pressure).
 * Every second a flush tries to store what is held; when one succeeds the
 * engine closes that file and the item goes into a new one. Only when the
 * recorder is stopping and the output stays full for WRITER_STOP_WAIT_MS
 * does the writer give up and count what it could not store. (-ENOBUFS
 * with nothing held for want of space means limits.max_buffer is too
 * small for the chunks open at once: waiting would not help, and the data
 * is counted as a write error.)
 */
#include "writer.h"

#include <errno.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

enum { WRITER_MAX_TICK_NS = 100 * 1000 * 1000, WRITER_MAX_VALUES = 4096 };
#define WRITER_RETRY_NS INT64_C(1000000000) /* a stalled writer's flush attempts */
#define WRITER_NAP_NS INT64_C(100000000)    /* ...checking for a stop this often */

static int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/* The engine holds the data in memory for want of space: not lost. */
static bool held(int rc)
{
	return h5w_held(rc);
}

/*
 * Data of an item was not stored: count it (a frame for an event whose
 * record already closed is `late_data`, anything else `write_errors`), log
 * it rate-limited, and make sure no ACK covers it.
 */
static void writer_failed(struct writer *writer, const struct ingest_item *item, int rc,
			  const struct h5w_error *err)
{
	enum ingest_counter counter = rc == -ESTALE   ? INGEST_LATE_DATA
				      : rc == -EMLINK ? INGEST_GROUP_LIMIT
						      : INGEST_WRITE_ERRORS;
	atomic_fetch_add(&writer->ingest->counters_writer[counter], 1);
	if (rc == -EMLINK)
		ingest_note_refusal(writer->ingest, item->peer);
	if (item->kind == INGEST_ITEM_FLUSH || item->kind == INGEST_ITEM_ROLL) {
		log_msg(LOG_LEVEL_ERROR, "%s failed: %s",
			item->kind == INGEST_ITEM_FLUSH ? "flush" : "roll", err->message);
		return; /* losses, if any, are charged by check_losses() */
	}
	/* A late frame from a broker is a message delivered again after this
	 * recorder closed its event's record (its ack was lost): the record
	 * is stored, and giving the message back would only bring it back
	 * here, late again, for ever. Counted, not charged to the source. */
	/* A chunk that failed its checks: its sender is told why (an ERROR
	 * frame, as for refusals on the loop), then its connection closes. */
	if (rc == -EBADMSG && item->kind == INGEST_ITEM_DATA && item->u.data.encoded)
		progress_note_refusal(&writer->ingest->progress, item->source, item->u.data.seq,
				      item->u.data.key, err->message);
	if (!(rc == -ESTALE && (item->source & INGEST_SOURCE_BROKER)))
		progress_note_failed(&writer->ingest->progress, item->source);
	log_ratelimited(&writer->error_log, realtime_ns(),
			rc == -ESTALE || rc == -EMLINK ? LOG_LEVEL_WARNING : LOG_LEVEL_ERROR,
			"%s: data from %s not stored: %s", ingest_counter_name(counter),
			item->peer[0] ? item->peer : "an unnamed sender", err->message);
}

/* Everything applied so far is durable: no connection's data is at risk. */
static void window_clear(struct writer *writer)
{
	writer->window.n = 0;
	writer->window.overflow = false;
}

static void window_add(struct writer *writer, uint64_t source)
{
	struct writer_window *w = &writer->window;
	if (!source)
		return; /* UDP: no connection, no ACKs */
	for (size_t i = 0; i < w->n; i++)
		if (w->sources[i] == source)
			return;
	if (w->n < WRITER_WINDOW_MAX)
		w->sources[w->n++] = source;
	else
		w->overflow = true;
}

/*
 * Did the engine drop data it had accepted (stats.losses moved)? Then
 * every connection with data applied since the last durable point is
 * closed without a further ACK: the engine cannot say whose data it was,
 * only that it was not durable yet. The error that says what was lost has
 * been logged where it happened.
 */
static void check_losses(struct writer *writer)
{
	struct h5w_stats stats;
	h5w_get_stats(writer->engine, &stats);
	if (stats.losses == writer->losses_seen)
		return;
	writer->losses_seen = stats.losses;
	struct writer_window *w = &writer->window;
	log_msg(LOG_LEVEL_ERROR, "data not yet durable was lost (%s); closing %s that sent "
		"any since the last flush, without ACKs", stats.last_error,
		w->overflow ? "every connection owed ACKs" : "the connections");
	atomic_fetch_add(&writer->ingest->counters_writer[INGEST_WRITE_ERRORS], 1);
	if (w->overflow)
		progress_note_all_failed(&writer->ingest->progress);
	for (size_t i = 0; i < w->n && !w->overflow; i++)
		progress_note_failed(&writer->ingest->progress, w->sources[i]);
	window_clear(writer);
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

/* Forget the groups the loop retired (ingest.c: retire_idle): idle for a
 * whole file, nothing queued for them. Their ids may come back at once
 * with other groups, which the items after this one create. */
static void retire_groups(struct writer *writer, const struct ingest_item *item)
{
	for (uint32_t i = 0; i < item->u.retire.n; i++) {
		uint32_t id = item->u.retire.ids[i];
		if (id >= writer->groups_cap)
			continue;
		struct writer_group *wg = &writer->groups[id];
		/* not idle after all: it stays in the engine, found again by
		 * its path when its id is named anew */
		if (wg->group && h5w_group_retire(writer->engine, wg->group))
			log_msg(LOG_LEVEL_WARNING, "group %u: retired by the loop, but it is not "
				"idle in the engine; kept", id);
		*wg = (struct writer_group){0};
	}
}

/* After a file was closed: offer the loop the groups idle for a whole file
 * (h5w_group_idle), so that junk placeholder values cost nothing for long
 * and limits.max_groups bounds every file, not the recorder's lifetime. */
static void offer_idle_groups(struct writer *writer, const struct h5w_stats *stats)
{
	if (stats->files_closed == writer->closed_seen)
		return;
	writer->closed_seen = stats->files_closed;
	uint32_t n = 0, *ids = NULL;
	for (size_t id = 0; id < writer->groups_cap; id++) {
		const struct h5w_group *g = writer->groups[id].group;
		if (!g || !h5w_group_idle(writer->engine, g))
			continue;
		if (!ids && !(ids = malloc(writer->groups_cap * sizeof(*ids))))
			return; /* offered again after the next file */
		ids[n++] = (uint32_t)id;
	}
	if (n)
		progress_offer_idle(&writer->ingest->progress, ids, n, writer->last_item + 1);
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

/* A pre-compressed frame (docs/protocols.md §1.5): its chunk table, which
 * the loop checked, read again into the engine's terms. */
static int apply_encoded(struct writer *writer, const struct ingest_item *item,
			 const struct writer_group *group, struct h5w_error *err)
{
	struct frame_chunks chunks;
	struct frame_chunk chunk;
	struct h5w_encoded one, *list = &one;
	size_t at = 0;
	int rc = frame_chunks_open(item->u.data.samples, item->u.data.stored,
				   dtype_size(item->u.data.dtype), 0, &chunks, NULL);
	if (rc)
		return -EIO;
	if (chunks.count > 1 && !(list = calloc(chunks.count, sizeof(*list))))
		return -ENOMEM;
	for (uint32_t i = 0; i < chunks.count; i++) {
		frame_chunks_get(&chunks, i, &at, &chunk);
		list[i] = (struct h5w_encoded){.data = chunk.data, .len = chunk.stored_size,
					       .filter_mask = chunk.filter_mask,
					       .raw_size = chunk.raw_size};
	}
	if (group->stream->layout == SCHEMA_LAYOUT_RECORDS)
		rc = h5w_record_encoded(writer->engine, group->group, item->u.data.event_id,
					item->u.data.t0, item->u.data.channel, list, err);
	else
		rc = h5w_stream_append_encoded(writer->engine, group->group, item->u.data.channel,
					       list, chunks.count, item->u.data.t0,
					       item->u.data.seq, item->u.data.event_id, err);
	if (list != &one)
		free(list);
	return rc;
}

static int apply_data(struct writer *writer, const struct ingest_item *item,
		      const struct writer_group *group, struct h5w_error *err)
{
	if (item->u.data.encoded)
		return apply_encoded(writer, item, group, err);
	if (group->stream->layout == SCHEMA_LAYOUT_RECORDS)
		return h5w_record_data(writer->engine, group->group, item->u.data.event_id,
				       item->u.data.t0, item->u.data.channel, item->u.data.dtype,
				       item->u.data.samples, item->u.data.nsamples, err);
	return h5w_stream_append_event(writer->engine, group->group, item->u.data.channel,
				       item->u.data.dtype, item->u.data.samples,
				       item->u.data.nsamples, item->u.data.t0, item->u.data.seq,
				       item->u.data.event_id, err);
}

static int apply_rows(struct writer *writer, const struct ingest_item *item,
		      struct h5w_error *err)
{
	struct h5w_value values[WRITER_MAX_VALUES];

	for (uint32_t r = writer->next_row; r < item->u.rows.nrows; r++) {
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
		if (rc == -ENOBUFS) {
			writer->next_row = r; /* refused: offered again from this row */
			return rc;
		}
		if (rc && !held(rc))
			writer_failed(writer, item, rc, err); /* one bad row spoils no other */
	}
	writer->next_row = 0;
	return 0;
}

/* A roll asked for (SIGHUP, `h5rec roll`): the log names the file closed
 * (the last, when groups waiting for a file made one first). */
static int roll(struct writer *writer, struct h5w_error *err)
{
	struct h5w_stats before, after;
	h5w_get_stats(writer->engine, &before);
	int rc = h5w_roll(writer->engine, err);
	if (rc)
		return rc;
	h5w_get_stats(writer->engine, &after);
	uint64_t closed = after.files_closed - before.files_closed;
	if (closed == 1)
		log_msg(LOG_LEVEL_NOTICE, "roll: %s closed; the next data starts a new file",
			after.file_name);
	else if (closed > 1)
		log_msg(LOG_LEVEL_NOTICE, "roll: %llu files closed, the last %s; the next data "
			"starts a new file", (unsigned long long)closed, after.file_name);
	else
		log_msg(LOG_LEVEL_NOTICE, "roll: no file was open");
	return 0;
}

static void set_run_reply(struct writer *writer, uint64_t item, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_run_reply(struct writer *writer, uint64_t item, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&writer->stats_lock);
	writer->run_reply_item = item;
	va_start(ap, fmt);
	vsnprintf(writer->run_reply, sizeof(writer->run_reply), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&writer->stats_lock);
}

bool writer_run_reply(struct writer *writer, uint64_t item, char *out, size_t len)
{
	pthread_mutex_lock(&writer->stats_lock);
	bool found = writer->run_reply_item == item && writer->run_reply[0];
	if (found)
		snprintf(out, len, "%s", writer->run_reply);
	pthread_mutex_unlock(&writer->stats_lock);
	return found;
}

/*
 * Start or stop a run (h5rec run): the engine rolls and takes the run's
 * attributes for the files that follow; the state file beside the data
 * keeps the run across a restart. The answer for the control socket is
 * left in run_reply. -ENOBUFS (a full disk holds data) is offered again.
 */
static int apply_run(struct writer *writer, const struct ingest_item *item,
		     struct h5w_error *err)
{
	const struct run_state *state = item->u.run.state;
	struct h5w_stats before;
	h5w_get_stats(writer->engine, &before);
	int rc;
	if (state) {
		struct h5w_attr attrs[RUN_MAX_ATTRS];
		struct h5w_run run;
		if (before.run[0]) {
			set_run_reply(writer, item->number, "error: run %s is going on; "
				      "h5rec run stop ends it\n", before.run);
			return 0;
		}
		run_to_engine(state, 0, attrs, &run);
		rc = h5w_run_start(writer->engine, &run, err);
		if (rc == -ENOBUFS)
			return rc;
		if (!rc && (rc = run_state_save(writer->schema, state)))
			snprintf(err->message, sizeof(err->message), "saving the run's state "
				 "(for a restart during it): %s", strerror(-rc));
		if (rc) { /* said here and to the asker; losses charged by check_losses */
			log_msg(LOG_LEVEL_ERROR, "run %s not started: %s", state->name, err->message);
			set_run_reply(writer, item->number, "error: run %s not started: %s\n",
				      state->name, err->message);
			return 0;
		}
		log_msg(LOG_LEVEL_NOTICE, "run %s started (%zu attributes)%s%s", state->name,
			state->nattrs, before.file_open ? "; closed " : "",
			before.file_open ? before.file_name : "");
		set_run_reply(writer, item->number, "run %s started\n", state->name);
		return 0;
	}
	if (!before.run[0]) {
		set_run_reply(writer, item->number, "error: no run is going on\n");
		return 0;
	}
	rc = h5w_run_stop(writer->engine, item->u.run.time, err);
	if (rc == -ENOBUFS)
		return rc;
	if (rc < 0) {
		log_msg(LOG_LEVEL_ERROR, "run %s not stopped: %s", before.run, err->message);
		set_run_reply(writer, item->number, "error: run %s not stopped: %s\n", before.run,
			      err->message);
		return 0;
	}
	int saved = run_state_save(writer->schema, NULL);
	if (saved)
		log_msg(LOG_LEVEL_WARNING, "run %s: removing its state file: %s (a restart would "
			"resume the run)", before.run, strerror(-saved));
	struct h5w_stats after;
	h5w_get_stats(writer->engine, &after);
	if (rc == 1) {
		log_msg(LOG_LEVEL_NOTICE, "run %s stopped; its last file was closed already, "
			"without run_end", before.run);
		set_run_reply(writer, item->number, "run %s stopped (its last file was closed "
			      "before the stop, without run_end)\n", before.run);
	} else {
		log_msg(LOG_LEVEL_NOTICE, "run %s stopped: run_end written in %s, closed",
			before.run, after.file_name);
		set_run_reply(writer, item->number, "run %s stopped: run_end written in %s\n",
			      before.run, after.file_name);
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
		return roll(writer, err);
	case INGEST_ITEM_RETIRE:
		retire_groups(writer, item);
		return 0;
	case INGEST_ITEM_RUN:
		return apply_run(writer, item, err);
	}
	return 0;
}

/* Rows with implausible timestamps are logged as a count, at most every
 * 10 s: one bad sender can send them at line rate. */
static void log_implausible(struct writer *writer, const struct h5w_stats *stats)
{
	const struct schema_output *out = &writer->schema->output;
	int64_t now = clock_ns(CLOCK_MONOTONIC);
	uint64_t more = stats->time.implausible - writer->implausible_logged;
	if (!more || (writer->implausible_log_at && now - writer->implausible_log_at <
							    10 * INT64_C(1000000000)))
		return;
	log_msg(LOG_LEVEL_WARNING, "%llu more rows with a timestamp outside output.time_window "
		"around their receive time (%s); h5rec status names the groups",
		(unsigned long long)more, out->time_reject ? "rejected" : "stored");
	writer->implausible_logged = stats->time.implausible;
	writer->implausible_log_at = now;
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
	if (stats.last_flush != flush_before_tick) {
		writer->durable_item = writer->last_item + 1;
		window_clear(writer);
	}
	atomic_store(&writer->ingest->progress.file_groups, stats.file_groups);
	offer_idle_groups(writer, &stats);
	progress_mark(&writer->ingest->progress, writer->last_item + 1, writer->durable_item);
	h5w_get_time_groups(writer->engine, &writer->tick_time_groups);
	log_implausible(writer, &stats);
	pthread_mutex_lock(&writer->stats_lock);
	writer->time_groups = writer->tick_time_groups;
	bool was_full = writer->stats.full;
	int64_t since = writer->output.full_since;
	writer->stats = stats;
	if (stats.full && !was_full)
		writer->output.full_since = realtime_ns();
	else if (!stats.full)
		writer->output.full_since = 0;
	pthread_mutex_unlock(&writer->stats_lock);
	/* The output's state changes are logged once each, not per item. */
	if (stats.full && !was_full)
		log_msg(LOG_LEVEL_ERROR, "output full: %s; holding data in memory (up to "
			"limits.max_buffer) until it can be written", stats.full_reason);
	else if (!stats.full && was_full)
		log_msg(LOG_LEVEL_NOTICE, "output: space returned after %.1f s; what was held is "
			"stored, %s closed, new data goes to a new file",
			(double)(realtime_ns() - since) / 1e9, stats.file_name);
}

static void set_stalled(struct writer *writer, bool stalled, int64_t ns)
{
	pthread_mutex_lock(&writer->stats_lock);
	writer->output.stalled = stalled;
	writer->output.stalled_ns += (uint64_t)ns;
	pthread_mutex_unlock(&writer->stats_lock);
}

/* Sleep NS unless the recorder starts stopping, or is told to stop now,
 * meanwhile (either changes stopping_ns). */
static void nap(struct writer *writer, int64_t ns)
{
	int64_t stopping = atomic_load(&writer->stopping_ns);
	for (int64_t slept = 0; slept < ns; slept += WRITER_NAP_NS) {
		if (atomic_load(&writer->stopping_ns) != stopping)
			return;
		struct timespec ts = {0, WRITER_NAP_NS};
		nanosleep(&ts, NULL);
	}
}

/* Does the engine hold data for want of space? Its -ENOBUFS then means
 * "wait for space"; otherwise the buffers are simply too small for what is
 * open (limits.max_buffer), which waiting would not mend: a write error. */
static bool output_full(struct writer *writer)
{
	struct h5w_stats stats;
	h5w_get_stats(writer->engine, &stats);
	return stats.full;
}

/* Stopping, and the output stayed full: what the engine holds is lost. It
 * cannot say whose data that is, so no ACKing connection may wait for more
 * ACKs: the loop closes them all, which also lets the drain end. */
static void give_up(struct writer *writer, const char *why)
{
	writer->gave_up = true;
	log_msg(LOG_LEVEL_ERROR, "stopping, and the output stayed full: what is not stored yet is "
		"lost (%s)", why);
	progress_note_all_failed(&writer->ingest->progress);
}

/* Stopping for WRITER_STOP_WAIT_MS already? */
static bool stop_wait_over(struct writer *writer)
{
	int64_t stop = atomic_load(&writer->stopping_ns);
	return stop && clock_ns(CLOCK_MONOTONIC) - stop >= WRITER_STOP_WAIT_MS * INT64_C(1000000);
}

/*
 * Flush every second until a flush succeeds (0: everything held is stored)
 * or the recorder has been stopping for WRITER_STOP_WAIT_MS (the flush's
 * error; the writer gives up for good). *err says why the last one failed.
 */
static int wait_for_space(struct writer *writer, struct h5w_error *err)
{
	struct h5w_stats before;
	for (;;) {
		/* figures for status only: a flush the engine made on its own in
		 * the middle of the batch must not mark anything durable */
		h5w_get_stats(writer->engine, &before);
		publish_stats(writer, before.last_flush);
		nap(writer, WRITER_RETRY_NS);
		int rc = h5w_flush(writer->engine, err);
		check_losses(writer);
		publish_stats(writer, before.last_flush);
		if (!rc)
			return 0;
		if (stop_wait_over(writer)) {
			give_up(writer, err->message);
			return rc;
		}
	}
}

/*
 * The engine refused an item (-ENOBUFS): what it holds for want of space
 * fills limits.max_buffer, or no file can be started. Hold on to the item
 * (see the top of this file) until a flush succeeds: then return true, to
 * offer the item again. Returns false once the writer gave up (stopping):
 * the item is lost.
 */
static bool writer_stall(struct writer *writer, const struct h5w_error *why)
{
	if (writer->gave_up)
		return false;
	int64_t start = clock_ns(CLOCK_MONOTONIC);
	struct h5w_error err;

	set_stalled(writer, true, 0);
	log_msg(LOG_LEVEL_ERROR, "output full: writing stopped, reading paused until space "
		"returns (%s)", why->message);
	int rc = wait_for_space(writer, &err);
	int64_t stalled = clock_ns(CLOCK_MONOTONIC) - start;
	set_stalled(writer, false, stalled);
	if (rc)
		return false;
	log_msg(LOG_LEVEL_NOTICE, "output: writing resumed after %.1f s", (double)stalled / 1e9);
	return true;
}

static void apply_batch(struct writer *writer, struct writer_item *list)
{
	struct h5w_error err;
	size_t bytes = 0;

	while (list) {
		struct ingest_item *item = (struct ingest_item *)list;
		h5w_arrival(writer->engine, item->link.arrived);
		h5w_origin(writer->engine, item->origin, item->origin_id);
		window_add(writer, item->source);
		int rc = apply_item(writer, item, &err);
		if (rc == -ENOBUFS && output_full(writer) && writer_stall(writer, &err))
			continue; /* offered again */
		check_losses(writer);
		list = list->next;
		writer->next_row = 0;
		if (rc < 0 && !held(rc)) { /* held data is not lost; publish_stats logs it */
			writer_failed(writer, item, rc, &err);
		} else if (!rc && (item->kind == INGEST_ITEM_FLUSH || item->kind == INGEST_ITEM_ROLL)) {
			writer->durable_item = item->number + 1; /* flushed, or closed and fsync'd */
			window_clear(writer);
		}
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
		/* Records time out by when their frames arrived, measured
		 * against the oldest item still queued: a writer that is behind
		 * must not turn frames that came on time into late ones. */
		rc = h5w_tick(writer->engine, realtime_ns(), writer_queue_oldest(writer->queue),
			      &err);
		if (rc < 0 && !held(rc))
			log_ratelimited(&writer->error_log, realtime_ns(), LOG_LEVEL_ERROR,
					"writing the output: %s", err.message);
		/* Stopping: what the draining connections sent is made durable
		 * at once, so that their ACKs go out and the drain ends within its
		 * grace, not at the next periodic flush (output.flush may be a
		 * minute or an hour). */
		if (atomic_load(&writer->stopping_ns) && writer->durable_item <= writer->last_item &&
		    !writer->stats.full) {
			rc = h5w_flush(writer->engine, &err);
			if (rc < 0 && !held(rc))
				log_ratelimited(&writer->error_log, realtime_ns(), LOG_LEVEL_ERROR,
						"writing the output: %s", err.message);
		}
		check_losses(writer);
		publish_stats(writer, before.last_flush);
		/* Held data, not stalled: the drain may wait on connections owed
		 * ACKs for it, so the give-up cannot wait for the queue to close. */
		if (writer->stats.full && !writer->gave_up && stop_wait_over(writer))
			give_up(writer, writer->stats.full_reason);
	}
	/* Held for want of space: give it the rest of WRITER_STOP_WAIT_MS. */
	if (writer->stats.full && !writer->gave_up)
		wait_for_space(writer, &err);
	writer->result = h5w_close(writer->engine, &err);
	if (writer->result < 0)
		log_msg(LOG_LEVEL_ERROR, "closing the output file: %s", err.message);
	writer->engine = NULL;
	/* A clean close flushed everything that was applied. */
	if (writer->result == 0)
		progress_mark(&writer->ingest->progress, writer->last_item + 1, writer->last_item + 1);
	progress_finish(&writer->ingest->progress);
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

void writer_finish(struct writer *writer)
{
	writer_stopping(writer, false);
	writer_queue_close(writer->queue);
}

int writer_stop(struct writer *writer)
{
	if (!writer->started)
		return 0;
	writer_finish(writer);
	pthread_join(writer->thread, NULL);
	writer->started = false;
	pthread_cond_destroy(&writer->opened);
	pthread_mutex_destroy(&writer->stats_lock);
	free(writer->groups);
	writer->groups = NULL;
	return writer->result;
}

void writer_stopping(struct writer *writer, bool now)
{
	int64_t t = clock_ns(CLOCK_MONOTONIC);
	if (now)
		t -= WRITER_STOP_WAIT_MS * INT64_C(1000000);
	int64_t expected = 0;
	if (!atomic_compare_exchange_strong(&writer->stopping_ns, &expected, t) && now)
		atomic_store(&writer->stopping_ns, t);
}

void writer_time_groups(struct writer *writer, struct h5w_time_groups *groups)
{
	pthread_mutex_lock(&writer->stats_lock);
	*groups = writer->time_groups;
	pthread_mutex_unlock(&writer->stats_lock);
}

void writer_stats(struct writer *writer, struct h5w_stats *stats, struct writer_output *output)
{
	pthread_mutex_lock(&writer->stats_lock);
	if (stats)
		*stats = writer->stats;
	if (output)
		*output = writer->output;
	pthread_mutex_unlock(&writer->stats_lock);
}
