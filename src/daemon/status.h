/*
 * status.h - what the recorder is doing, as text for people and JSON for
 * programs: uptime, listeners, connections, per-stream rates, totals,
 * counters by error class, the open file, buffer fill, last flush and last
 * error. Served by the control socket (`h5rec status`) and summarised for
 * systemd's STATUS= line.
 *
 * Loop thread only: it reads the loop's counters directly and the writer's
 * figures through writer_stats().
 */
#ifndef H5REC_STATUS_H
#define H5REC_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "net.h"
#include "schema.h"
#include "writer.h"
#include "writer_queue.h"

#define STATUS_RATE_SLOTS 11 /* one per second: rates over the last 10 s */

struct status {
	const struct schema *schema;
	struct ingest *ingest;
	struct writer *writer;
	struct writer_queue *queue;
	struct net *net;           /* NULL once the listeners are closed */
	int64_t started_ns;        /* wall clock */
	uint64_t started_ms;       /* loop clock */
	/* Per-stream sample counts once a second, for rates. */
	uint64_t slot_ms[STATUS_RATE_SLOTS];
	uint64_t *slot_samples;    /* STATUS_RATE_SLOTS × nstreams */
	size_t slot_next, slots_used;
	char last_error[512];      /* set by status_note_error */
};

int status_init(struct status *status, const struct schema *schema, struct ingest *ingest,
		struct writer *writer, struct writer_queue *queue, uint64_t now_ms);
void status_free(struct status *status);

/* Take this second's sample of the per-stream counters (1 Hz timer). */
void status_sample(struct status *status, uint64_t now_ms);

/* Samples per second of stream i over the sampled window. */
double status_stream_rate(const struct status *status, size_t stream);

/* Render into out (NUL-terminated, truncated to len). Returns the length
 * that a large enough buffer would have needed for this rendering: the
 * writer thread changes what is shown meanwhile, so a second rendering may
 * need more; render until the result fits. */
size_t status_text(const struct status *status, uint64_t now_ms, char *out, size_t len);
size_t status_json(const struct status *status, uint64_t now_ms, char *out, size_t len);

/* Every group the recorder knows, the longest silent first: path, stream,
 * when a line or frame for it last arrived, how many (`h5rec status
 * --groups`). Same conventions as status_text; 0, and nothing written,
 * when out of memory. */
size_t status_groups(const struct status *status, uint64_t now_ms, bool json, char *out,
		     size_t len);

/* One line for systemd's STATUS=: rate, buffer fill, file. */
void status_summary(const struct status *status, char *text, size_t len);

#endif
