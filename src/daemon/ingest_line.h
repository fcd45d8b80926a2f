/*
 * ingest_line.h - the line protocol's path into the recorder: decoding per
 * connection or datagram, routing each line to its group, and batching rows
 * for the writer. Loop thread only.
 */
#ifndef H5REC_INGEST_LINE_H
#define H5REC_INGEST_LINE_H

#include "ingest.h"

/* Rows decoded from lines, gathered into one INGEST_ITEM_ROWS item. The
 * arrays grow to the largest batch and are reused. */
struct line_batch {
	struct ingest_row *rows;
	size_t nrows, rows_cap;
	struct ingest_value *values;
	size_t nvalues, values_cap;
	char *arena;
	size_t arena_used, arena_cap;
	uint64_t source; /* the source id its items carry; 0: none */
};

/* Route a decoded line and add it to the batch as a row. Returns 0 (added,
 * or nothing in it declared), -EINVAL when it was skipped (counted and
 * logged; why, when not NULL, says why), or -ENOMEM. */
int ingest_line_point(struct ingest *ingest, struct line_batch *b, const struct line_point *point,
		      int64_t receive_time, const char *peer, char *why, size_t why_len);
/* Count and log a line the decoder found bad. */
void ingest_line_report_bad(struct ingest *ingest, const char *peer, const struct line_error *err);
/* Queue what the batch holds as one item (datagram: dropped when the
 * queue is full); the batch is then empty. */
void ingest_line_batch_flush(struct ingest *ingest, struct line_batch *b, const char *peer,
			     bool datagram);
/* Bytes the batch's rows would take in the queue. */
size_t ingest_line_batch_bytes(const struct line_batch *b);
/* Forget the rows (an aborted request's). */
void ingest_line_batch_clear(struct line_batch *b);
void ingest_line_batch_free(struct line_batch *b);

/* The line protocol's net handler (arg: INGEST). */
struct net_handler ingest_line_handler(struct ingest *ingest);

/* A complete buffer of lines from a message of a source (source.h),
 * decoded and routed as the same bytes on a line listener of PRECISION,
 * into one item that carries SOURCE. Bad lines are skipped and counted as
 * on a listener. Returns 0 or -ENOMEM. */
int ingest_line_message(struct ingest *ingest, const char *peer, uint64_t source,
			enum line_precision precision, const char *buf, size_t len);

/* Release the datagram decoders (from ingest_free). */
void ingest_line_udp_free(struct ingest *ingest);

#endif
