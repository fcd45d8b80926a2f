/*
 * ingest_line.c - line protocol from the network to table rows for the
 * writer (net handler callbacks; loop thread only).
 *
 * Lines are small and many, so they are not queued one by one: each read
 * (or datagram) becomes one INGEST_ITEM_ROWS item holding all its rows,
 * their values and their strings in one allocation. The per-connection
 * batch arrays are reused from read to read and bounded by what one read
 * can hold (64 KiB of input), so a connection costs a fixed amount of memory.
 *
 * A bad line is counted, logged (rate-limited) and skipped; the connection
 * stays open (SPEC §3.2). So do lines with an unknown measurement, a missing
 * tag or a hostile tag value: they are bad lines, not bad connections.
 */
#include "ingest_line.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest_fields.h"

struct ingest_line_conn {
	struct ingest *ingest;
	struct line_decoder *decoder;
	char peer[80];
	int64_t receive_time; /* for lines without a timestamp */
	struct line_batch batch;
};

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int grow(void **array, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *p = realloc(*array, n * elem);
	if (!p)
		return -ENOMEM;
	*array = p;
	*cap = n;
	return 0;
}

/* Room for one more row of up to nfields values and `strings` bytes. */
static int batch_reserve(struct line_batch *b, size_t nfields, size_t strings)
{
	if (grow((void **)&b->rows, &b->rows_cap, b->nrows + 1, sizeof(*b->rows)) ||
	    grow((void **)&b->values, &b->values_cap, b->nvalues + nfields, sizeof(*b->values)) ||
	    grow((void **)&b->arena, &b->arena_cap, b->arena_used + strings, 1))
		return -ENOMEM;
	return 0;
}

void ingest_line_batch_free(struct line_batch *b)
{
	free(b->rows);
	free(b->values);
	free(b->arena);
	*b = (struct line_batch){0};
}

size_t ingest_line_batch_bytes(const struct line_batch *b)
{
	return b->nrows * sizeof(*b->rows) + b->nvalues * sizeof(*b->values) + b->arena_used;
}

void ingest_line_batch_clear(struct line_batch *b)
{
	b->nrows = b->nvalues = b->arena_used = 0;
}

void ingest_line_batch_flush(struct ingest *ingest, struct line_batch *b, const char *peer,
			bool datagram)
{
	if (!b->nrows)
		return;
	size_t rows = b->nrows * sizeof(*b->rows), values = b->nvalues * sizeof(*b->values);
	struct ingest_item *item =
		ingest_item_new(INGEST_ITEM_ROWS, rows + values + b->arena_used, peer);
	if (!item) {
		ingest_error(ingest, INGEST_WRITE_ERRORS, "%s: out of memory: %zu rows lost", peer,
			     b->nrows);
	} else {
		item->source = b->source;
		item->u.rows.nrows = (uint32_t)b->nrows;
		item->u.rows.rows = (struct ingest_row *)(item + 1);
		item->u.rows.values = (struct ingest_value *)((char *)item->u.rows.rows + rows);
		item->u.rows.arena = (char *)item->u.rows.values + values;
		memcpy(item->u.rows.rows, b->rows, rows);
		memcpy(item->u.rows.values, b->values, values);
		memcpy(item->u.rows.arena, b->arena, b->arena_used);
		if (datagram)
			ingest_push_datagram_item(ingest, item);
		else
			ingest_push(ingest, item);
	}
	ingest_line_batch_clear(b);
}

/* Copy a reason for a skipped line out to the caller, when it wants one. */
static void tell(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void tell(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	if (!why || !why_len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

static int route_point(struct ingest *ingest, const struct line_point *point, const char *peer,
		       struct route *route, uint32_t *group, char *why, size_t why_len)
{
	char reason[256];
	/* Every tag of the line, however many: a group tag may come last. */
	enum router_status st = router_line(ingest->schema, point->measurement, point->tags,
					    point->ntags, route, reason, sizeof(reason));
	if (st != ROUTER_OK) {
		ingest_error(ingest,
			     st == ROUTER_NO_STREAM ? INGEST_UNKNOWN_STREAM : INGEST_BAD_PLACEHOLDER,
			     "%s: line %llu skipped: %s", peer,
			     (unsigned long long)point->line_number, reason);
		tell(why, why_len, "%s", reason);
		return -EINVAL;
	}
	int err = ingest_group_id(ingest, route, peer, group);
	if (err == -EMLINK) {
		tell(why, why_len, "limits.max_groups (%llu) reached",
		     (unsigned long long)ingest->schema->limits.max_groups);
		ingest_error(ingest, INGEST_GROUP_LIMIT,
			     "%s: line %llu skipped: a new group, and the file holds "
			     "limits.max_groups (%llu) groups", peer,
			     (unsigned long long)point->line_number,
			     (unsigned long long)ingest->schema->limits.max_groups);
	} else if (err) {
		tell(why, why_len, "out of memory");
		ingest_error(ingest, INGEST_WRITE_ERRORS, "%s: line %llu lost: out of memory", peer,
			     (unsigned long long)point->line_number);
	}
	return err;
}

/* Add a routed line to the batch as one row; < 0 skips the line. */
static int add_row(struct ingest *ingest, struct line_batch *b, const struct line_point *point,
		   const struct schema_stream *stream, uint32_t group, int64_t receive_time,
		   const char *peer, char *why, size_t why_len)
{
	size_t strings = 0;
	for (size_t i = 0; i < point->nfields; i++)
		strings += point->fields[i].string_len + 1;
	if (batch_reserve(b, point->nfields, strings))
		return -ENOMEM;

	struct ingest_row *row = &b->rows[b->nrows];
	*row = (struct ingest_row){.group = group,
				   .time = point->has_timestamp ? point->timestamp_ns : receive_time,
				   .first_value = (uint32_t)b->nvalues};
	size_t arena_mark = b->arena_used, unknown = 0;
	for (size_t i = 0; i < point->nfields; i++) {
		const struct line_field *field = &point->fields[i];
		const struct schema_channel *channel = schema_find_channel(stream, field->key);
		char reason[256];
		if (!channel) {
			unknown++;
			continue;
		}
		struct ingest_value *value = &b->values[row->first_value + row->nvalues];
		if (ingest_field_value(field, (uint32_t)(channel - stream->channels), channel->dtype,
				       value, b->arena, &b->arena_used, reason, sizeof(reason))) {
			ingest_error(ingest, INGEST_BAD_DATA, "%s: line %llu skipped: %s", peer,
				     (unsigned long long)point->line_number, reason);
			tell(why, why_len, "%s", reason);
			b->arena_used = arena_mark;
			return -EINVAL;
		}
		row->nvalues++;
	}
	if (unknown && stream->unknown_fields == SCHEMA_UNKNOWN_ERROR) {
		ingest_error(ingest, INGEST_UNKNOWN_FIELD,
			     "%s: line %llu skipped: %zu field(s) not declared in stream '%s'", peer,
			     (unsigned long long)point->line_number, unknown, stream->name);
		tell(why, why_len, "%zu field(s) not declared in stream '%s'", unknown,
		     stream->name);
		b->arena_used = arena_mark;
		return -EINVAL;
	}
	ingest_count(ingest, INGEST_UNKNOWN_FIELD, unknown);
	if (row->nvalues == 0)
		return 0; /* nothing declared in it: not a row */
	b->nvalues += row->nvalues;
	b->nrows++;
	ingest_count_samples(ingest, stream, row->nvalues);
	return 0;
}

int ingest_line_point(struct ingest *ingest, struct line_batch *b, const struct line_point *point,
		      int64_t receive_time, const char *peer, char *why, size_t why_len)
{
	struct route route;
	uint32_t group;

	ingest_count(ingest, INGEST_LINES, 1);
	int err = route_point(ingest, point, peer, &route, &group, why, why_len);
	if (err)
		return err;
	err = add_row(ingest, b, point, route.stream, group, receive_time, peer, why, why_len);
	if (err == -ENOMEM) {
		ingest_error(ingest, INGEST_WRITE_ERRORS, "%s: line %llu lost: out of memory", peer,
			     (unsigned long long)point->line_number);
		tell(why, why_len, "out of memory");
	}
	return err;
}

static void point_into_batch(struct ingest *ingest, struct line_batch *b,
			     const struct line_point *point, int64_t receive_time, const char *peer)
{
	ingest_line_point(ingest, b, point, receive_time, peer, NULL, 0);
}

void ingest_line_report_bad(struct ingest *ingest, const char *peer, const struct line_error *err)
{
	ingest_error(ingest, INGEST_BAD_LINES, "%s: line %llu (byte %llu): %s: %s", peer,
		     (unsigned long long)err->line_number, (unsigned long long)err->offset,
		     line_error_kind_name(err->kind), err->reason);
}

/* ---- stream connections ---------------------------------------------------- */

static int on_point(void *user, const struct line_point *point)
{
	struct ingest_line_conn *lc = user;
	point_into_batch(lc->ingest, &lc->batch, point, lc->receive_time, lc->peer);
	return 0;
}

static void on_bad_line(void *user, const struct line_error *err)
{
	struct ingest_line_conn *lc = user;
	ingest_line_report_bad(lc->ingest, lc->peer, err);
}

static void *ingest_line_open(void *arg, struct net_conn *conn, const struct net_peer *peer,
		       const struct schema_listen *listen)
{
	struct ingest *ingest = arg;
	(void)conn;
	struct ingest_line_conn *lc = calloc(1, sizeof(*lc));
	if (!lc)
		return NULL;
	const struct line_options options = {.max_line = ingest->schema->limits.max_line,
					     .precision = listen->precision};
	lc->decoder = line_decoder_new(&options, on_point, on_bad_line, lc);
	if (!lc->decoder) {
		free(lc);
		return NULL;
	}
	lc->ingest = ingest;
	snprintf(lc->peer, sizeof(lc->peer), "%s", peer->name);
	return lc;
}

static int ingest_line_data(void *state, const char *buf, size_t len)
{
	struct ingest_line_conn *lc = state;
	lc->receive_time = realtime_ns();
	ingest_count(lc->ingest, INGEST_BYTES, len);
	int rc = line_decoder_feed(lc->decoder, buf, len);
	ingest_line_batch_flush(lc->ingest, &lc->batch, lc->peer, false);
	return rc;
}

static void ingest_line_eof(void *state)
{
	struct ingest_line_conn *lc = state;
	lc->receive_time = realtime_ns();
	line_decoder_finish(lc->decoder);
	ingest_line_batch_flush(lc->ingest, &lc->batch, lc->peer, false);
}

static void ingest_line_close(void *state)
{
	struct ingest_line_conn *lc = state;
	line_decoder_free(lc->decoder);
	ingest_line_batch_free(&lc->batch);
	free(lc);
}

/* ---- datagrams --------------------------------------------------------------- */

/* One for every UDP line listener, kept for the life of the ingest: the
 * decoder and the batch are reused from datagram to datagram. A datagram is
 * decoded from a clean state in its listener's precision, so one decoder
 * serves listeners of any precision. */
struct ingest_line_udp {
	struct ingest *ingest;
	struct line_decoder *decoder;
	const char *peer; /* during one datagram */
	int64_t receive_time;
	struct line_batch batch;
};

static int on_datagram_point(void *user, const struct line_point *point)
{
	struct ingest_line_udp *udp = user;
	point_into_batch(udp->ingest, &udp->batch, point, udp->receive_time, udp->peer);
	return 0;
}

static void on_datagram_bad_line(void *user, const struct line_error *err)
{
	struct ingest_line_udp *udp = user;
	ingest_line_report_bad(udp->ingest, udp->peer, err);
}

static struct ingest_line_udp *udp_state(struct ingest *ingest)
{
	struct ingest_line_udp **slot = &ingest->line_udp;
	if (*slot)
		return *slot;
	struct ingest_line_udp *udp = calloc(1, sizeof(*udp));
	if (!udp)
		return NULL;
	const struct line_options options = {.max_line = ingest->schema->limits.max_line,
					     .precision = LINE_PRECISION_NS};
	udp->ingest = ingest;
	udp->decoder = line_decoder_new(&options, on_datagram_point, on_datagram_bad_line, udp);
	if (!udp->decoder) {
		free(udp);
		return NULL;
	}
	*slot = udp;
	return udp;
}

/* Decode BUF, complete lines, into one item (dropped when the queue is
 * full if DATAGRAM). */
static int decode_whole(struct ingest *ingest, const char *peer, uint64_t source,
			enum line_precision precision, const char *buf, size_t len, bool datagram)
{
	struct ingest_line_udp *udp = udp_state(ingest);
	if (!udp)
		return -ENOMEM;
	udp->peer = peer;
	udp->batch.source = source;
	udp->receive_time = realtime_ns();
	ingest_count(ingest, INGEST_BYTES, len);
	line_decoder_set_precision(udp->decoder, precision);
	line_decode_datagram(udp->decoder, buf, len);
	ingest_line_batch_flush(ingest, &udp->batch, peer, datagram);
	udp->peer = NULL;
	return 0;
}

static void ingest_line_datagram(void *arg, const struct net_peer *peer,
			  const struct schema_listen *listen, const char *buf, size_t len)
{
	struct ingest *ingest = arg;
	bool full;

	writer_queue_buffered(ingest->queue, &full);
	if (full) {
		ingest_error(ingest, INGEST_UDP_DROPS, "%s: datagram dropped: buffers full",
			     peer->name);
		return;
	}
	if (decode_whole(ingest, peer->name, 0, listen->precision, buf, len, true))
		ingest_error(ingest, INGEST_UDP_DROPS, "%s: datagram dropped: out of memory",
			     peer->name);
}

int ingest_line_message(struct ingest *ingest, const char *peer, uint64_t source,
			enum line_precision precision, const char *buf, size_t len)
{
	return decode_whole(ingest, peer, source, precision, buf, len, false);
}

void ingest_line_udp_free(struct ingest *ingest)
{
	struct ingest_line_udp *udp = ingest->line_udp;
	if (!udp)
		return;
	line_decoder_free(udp->decoder);
	ingest_line_batch_free(&udp->batch);
	free(udp);
	ingest->line_udp = NULL;
}

struct net_handler ingest_line_handler(struct ingest *ingest)
{
	return (struct net_handler){
		.arg = ingest,
		.open = ingest_line_open,
		.data = ingest_line_data,
		.eof = ingest_line_eof,
		.close = ingest_line_close,
		.datagram = ingest_line_datagram,
	};
}
