/*
 * status.c - the recorder's status as text and JSON (see status.h).
 *
 * Both formats are written by the same walk over the figures, through a
 * tiny emitter that knows which format it writes, so the two can never
 * disagree about what the recorder reports.
 */
#include "status.h"

#include "source.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest_http.h"
#include "json.h"
#include "schema_internal.h"
#include "source.h"
#include "timefmt.h"

int status_init(struct status *status, const struct schema *schema, struct ingest *ingest,
		struct writer *writer, struct writer_queue *queue, uint64_t now_ms)
{
	struct timespec ts;
	memset(status, 0, sizeof(*status));
	status->schema = schema;
	status->ingest = ingest;
	status->writer = writer;
	status->queue = queue;
	clock_gettime(CLOCK_REALTIME, &ts);
	status->started_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	status->started_ms = now_ms;
	status->slot_samples = calloc(STATUS_RATE_SLOTS * (schema->nstreams ? schema->nstreams : 1),
				      sizeof(uint64_t));
	if (!status->slot_samples)
		return -ENOMEM;
	status_sample(status, now_ms);
	return 0;
}

void status_free(struct status *status)
{
	free(status->slot_samples);
	status->slot_samples = NULL;
}

void status_sample(struct status *status, uint64_t now_ms)
{
	size_t n = status->schema->nstreams;
	status->slot_ms[status->slot_next] = now_ms;
	memcpy(status->slot_samples + status->slot_next * n, status->ingest->stream_samples,
	       n * sizeof(uint64_t));
	status->slot_next = (status->slot_next + 1) % STATUS_RATE_SLOTS;
	if (status->slots_used < STATUS_RATE_SLOTS)
		status->slots_used++;
}

double status_stream_rate(const struct status *status, size_t stream)
{
	if (status->slots_used < 2)
		return 0;
	size_t n = status->schema->nstreams;
	size_t newest = (status->slot_next + STATUS_RATE_SLOTS - 1) % STATUS_RATE_SLOTS;
	size_t oldest = (status->slot_next + STATUS_RATE_SLOTS - status->slots_used) %
			STATUS_RATE_SLOTS;
	uint64_t ms = status->slot_ms[newest] - status->slot_ms[oldest];
	uint64_t samples = status->slot_samples[newest * n + stream] -
			   status->slot_samples[oldest * n + stream];
	return ms ? (double)samples * 1000.0 / (double)ms : 0;
}

/* ---- emitter ------------------------------------------------------------ */

struct out {
	char *buf;
	size_t len, used; /* used may pass len: the size needed */
	bool json;
	bool first;       /* no comma before the next JSON member */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->used < o->len ? o->buf + o->used : NULL,
			  o->used < o->len ? o->len - o->used : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

static void put_piece(void *arg, const char *piece, size_t len)
{
	put(arg, "%.*s", (int)len, piece);
}

static void put_json_string(struct out *o, const char *s)
{
	put(o, "\"");
	json_escape(s, strlen(s), put_piece, o);
	put(o, "\"");
}

/* JSON: "key": (with the comma); text: nothing. */
static void key(struct out *o, const char *name)
{
	if (!o->json)
		return;
	put(o, "%s\"%s\": ", o->first ? "" : ", ", name);
	o->first = false;
}

static void member_str(struct out *o, const char *name, const char *value)
{
	key(o, name);
	put_json_string(o, value);
}

static void member_u64(struct out *o, const char *name, unsigned long long value)
{
	key(o, name);
	put(o, "%llu", value);
}

static void member_bool(struct out *o, const char *name, bool value)
{
	key(o, name);
	put(o, "%s", value ? "true" : "false");
}

static void member_double(struct out *o, const char *name, double value)
{
	key(o, name);
	put(o, "%.3f", value);
}

static void open_object(struct out *o, const char *name)
{
	if (!o->json)
		return;
	key(o, name);
	put(o, "{");
	o->first = true;
}

static void close_object(struct out *o)
{
	if (o->json) {
		put(o, "}");
		o->first = false;
	}
}

static const char *transport_name(enum schema_transport t)
{
	return t == SCHEMA_TRANSPORT_TCP ? "tcp" : t == SCHEMA_TRANSPORT_UDP ? "udp" : "unix";
}

/* ---- sections -------------------------------------------------------------- */

static void emit_header(struct out *o, const struct status *s, uint64_t now_ms)
{
	uint64_t up = (now_ms - s->started_ms) / 1000;
	char started[TIME_ISO8601_MAX];
	time_iso8601(s->started_ns, 0, started, sizeof(started));
	if (o->json) {
		member_str(o, "version", H5REC_VERSION);
		member_str(o, "schema", s->schema->name);
		member_str(o, "schema_path", s->schema->path ? s->schema->path : "");
		member_u64(o, "pid", (unsigned long long)(int)getpid());
		member_str(o, "started", started);
		member_u64(o, "uptime_s", up);
		member_bool(o, "accepting", s->net);
		return;
	}
	put(o, "h5recd %s, schema %s (%s), pid %d\n", H5REC_VERSION, s->schema->name,
	    s->schema->path ? s->schema->path : "-", (int)getpid());
	put(o, "up %lluh%02llum%02llus since %s%s\n", (unsigned long long)(up / 3600),
	    (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60), started,
	    s->net ? "" : "; stopping (listeners closed)");
}

static void emit_listeners(struct out *o, const struct status *s)
{
	if (o->json) {
		key(o, "listeners");
		put(o, "[");
	} else {
		put(o, "listeners:\n");
	}
	for (size_t i = 0; s->net && i < net_listener_count(s->net); i++) {
		const struct schema_listen *l = net_listener_schema(s->net, i);
		const struct net_listener_stats *st = net_listener_stats(s->net, i);
		const char *protocol = schema_protocol_name(l->protocol);
		if (o->json) {
			put(o, "%s{", i ? ", " : "");
			o->first = true;
			member_str(o, "protocol", protocol);
			member_str(o, "transport", transport_name(l->transport));
			member_str(o, "address", l->address);
			member_u64(o, "connections_open", st->open);
			member_u64(o, "connections_accepted", st->accepted);
			member_u64(o, "refused", st->refused);
			member_u64(o, "evicted", st->evicted);
			member_u64(o, "timed_out", st->timed_out);
			member_u64(o, "datagrams", st->datagrams);
			member_u64(o, "bytes", st->bytes);
			member_u64(o, "read_errors", st->read_errors);
			put(o, "}");
		} else if (l->transport == SCHEMA_TRANSPORT_UDP) {
			put(o, "  %-5s/%-4s %-24s %llu datagrams, %llu bytes, %llu refused\n", protocol,
			    transport_name(l->transport), l->address, (unsigned long long)st->datagrams,
			    (unsigned long long)st->bytes, (unsigned long long)st->refused);
		} else {
			put(o, "  %-5s/%-4s %-24s %llu open, %llu accepted, %llu refused, %llu evicted, "
			    "%llu timed out, %llu bytes\n",
			    protocol, transport_name(l->transport), l->address,
			    (unsigned long long)st->open, (unsigned long long)st->accepted,
			    (unsigned long long)st->refused, (unsigned long long)st->evicted,
			    (unsigned long long)st->timed_out, (unsigned long long)st->bytes);
		}
	}
	if (o->json) {
		put(o, "]");
		o->first = false;
	}
}

/* Sources (source.h): counters of each, and whether it is connected and
 * fetching. Only with sources in the schema, so that the status of a
 * recorder without them reads as before. */
static void emit_sources(struct out *o, const struct status *s)
{
	struct sources *sources = s->ingest->sources;
	if (!sources || !sources->n)
		return;
	if (o->json) {
		key(o, "sources");
		put(o, "[");
	} else {
		put(o, "sources:\n");
	}
	for (size_t i = 0; i < sources->n; i++) {
		struct source *src = &sources->list[i];
		struct source_stats st;
		source_get_stats(src, &st);
		if (o->json) {
			put(o, "%s{", i ? ", " : "");
			o->first = true;
			member_str(o, "backend", src->backend->name);
			member_str(o, "stream", src->config->stream);
			member_str(o, "consumer", src->config->consumer);
			member_bool(o, "connected", st.connected);
			member_bool(o, "fetching_paused", st.fetching_paused);
			member_u64(o, "fetched", st.fetched);
			member_u64(o, "bytes", st.bytes);
			member_u64(o, "acked", st.acked);
			member_u64(o, "naked", st.naked);
			member_u64(o, "rejected", st.rejected);
			member_u64(o, "redelivered", st.redelivered);
			member_u64(o, "pending", st.pending);
			member_u64(o, "lag", st.lag);
			put(o, "}");
		} else {
			put(o, "  %-28s %s%s; %llu fetched, %llu acked, %llu nak'd, %llu rejected, "
			    "%llu redelivered, %llu pending, lag %llu\n", src->name,
			    st.connected ? "connected" : "DISCONNECTED",
			    st.fetching_paused ? ", fetching paused (buffer full)" : "",
			    (unsigned long long)st.fetched, (unsigned long long)st.acked,
			    (unsigned long long)st.naked, (unsigned long long)st.rejected,
			    (unsigned long long)st.redelivered, (unsigned long long)st.pending,
			    (unsigned long long)st.lag);
		}
	}
	if (o->json) {
		put(o, "]");
		o->first = false;
	}
}

static void emit_streams(struct out *o, const struct status *s)
{
	if (o->json) {
		key(o, "streams");
		put(o, "[");
	} else {
		put(o, "streams (samples/s over the last %zu s, total):\n",
		    s->slots_used > 1 ? s->slots_used - 1 : 0);
	}
	for (size_t i = 0; i < s->schema->nstreams; i++) {
		const char *name = s->schema->streams[i].name;
		double rate = status_stream_rate(s, i);
		unsigned long long total = s->ingest->stream_samples[i];
		if (o->json) {
			put(o, "%s{", i ? ", " : "");
			o->first = true;
			member_str(o, "name", name);
			member_double(o, "samples_per_s", rate);
			member_u64(o, "samples", total);
			put(o, "}");
		} else {
			put(o, "  %-24s %12.1f/s %16llu\n", name, rate, total);
		}
	}
	if (o->json) {
		put(o, "]");
		o->first = false;
	}
}

/* HTTP responses by status code, when a listener speaks HTTP. */
static void emit_http(struct out *o, const struct status *s)
{
	bool http = false;
	for (size_t i = 0; i < s->schema->nlisten; i++)
		http |= s->schema->listen[i].protocol == SCHEMA_PROTOCOL_HTTP ||
			s->schema->listen[i].protocol == SCHEMA_PROTOCOL_METRICS;
	if (!http)
		return;
	if (o->json) {
		open_object(o, "http_responses");
		for (size_t i = 0; i < INGEST_HTTP_CODES; i++) {
			char code[8];
			snprintf(code, sizeof(code), "%d", ingest_http_code(i));
			member_u64(o, code, s->ingest->http_responses[i]);
		}
		close_object(o);
		return;
	}
	put(o, "http responses:");
	unsigned shown = 0;
	for (size_t i = 0; i < INGEST_HTTP_CODES; i++) {
		if (!s->ingest->http_responses[i])
			continue;
		put(o, " %d: %llu", ingest_http_code(i),
		    (unsigned long long)s->ingest->http_responses[i]);
		shown++;
	}
	put(o, "%s\n", shown ? "" : " none");
}

static void emit_counters(struct out *o, const struct status *s)
{
	struct ingest *in = s->ingest;
	open_object(o, "counters");
	if (!o->json)
		put(o, "totals: %llu lines, %llu frames, %llu samples, %llu bytes\nerrors:",
		    (unsigned long long)ingest_counter_value(in, INGEST_LINES),
		    (unsigned long long)ingest_counter_value(in, INGEST_FRAMES),
		    (unsigned long long)ingest_counter_value(in, INGEST_SAMPLES),
		    (unsigned long long)ingest_counter_value(in, INGEST_BYTES));
	unsigned errors = 0;
	for (int c = 0; c < INGEST_NCOUNTERS; c++) {
		uint64_t v = ingest_counter_value(in, (enum ingest_counter)c);
		bool is_total = c <= INGEST_BYTES;
		if (o->json) {
			key(o, ingest_counter_name((enum ingest_counter)c));
			put(o, "%llu", (unsigned long long)v);
		} else if (!is_total && v) {
			put(o, " %s %llu", ingest_counter_name((enum ingest_counter)c),
			    (unsigned long long)v);
			errors++;
		}
	}
	close_object(o);
	if (!o->json)
		put(o, "%s\n", errors ? "" : " none");
	emit_http(o, s);
}

/* Groups: those of the file against limits.max_groups, and who was refused
 * a new one (junk placeholder values show up here, by address). */
static void emit_groups(struct out *o, const struct status *s, const struct h5w_stats *w)
{
	struct ingest_refusals r;
	ingest_refusals(s->ingest, &r);
	unsigned long long max = (unsigned long long)s->schema->limits.max_groups;
	if (o->json) {
		open_object(o, "groups");
		member_u64(o, "in_file", w->file_groups);
		member_u64(o, "max_per_file", max);
		member_u64(o, "known", s->ingest->ngroups);
		member_u64(o, "retired", s->ingest->groups_retired);
		key(o, "refused_by_peer");
		put(o, "[");
		bool first = true;
		for (size_t i = 0; i < INGEST_REFUSING_PEERS; i++) {
			if (!r.peers[i].count)
				continue;
			put(o, "%s{", first ? "" : ", ");
			o->first = true;
			member_str(o, "peer", r.peers[i].host);
			member_u64(o, "refused", r.peers[i].count);
			put(o, "}");
			first = false;
		}
		put(o, "]");
		o->first = false;
		member_u64(o, "refused_other_peers", r.others);
		close_object(o);
		return;
	}
	put(o, "groups: %llu in the file of %llu allowed (limits.max_groups), %llu known, "
	       "%llu retired idle\n", (unsigned long long)w->file_groups, max,
	    (unsigned long long)s->ingest->ngroups, (unsigned long long)s->ingest->groups_retired);
	bool any = false;
	for (size_t i = 0; i < INGEST_REFUSING_PEERS; i++) {
		if (!r.peers[i].count)
			continue;
		put(o, "%s %s %llu", any ? "," : "  new groups refused (by peer):", r.peers[i].host,
		    (unsigned long long)r.peers[i].count);
		any = true;
	}
	if (r.others)
		put(o, ", others %llu", (unsigned long long)r.others);
	if (any)
		put(o, "\n");
}

/* The run going on (h5rec run start), if any. */
static void emit_run(struct out *o, const struct h5w_stats *w)
{
	char start[TIME_ISO8601_MAX] = "";
	if (w->run_start)
		time_iso8601(w->run_start, 0, start, sizeof(start));
	if (o->json) {
		open_object(o, "run");
		member_str(o, "name", w->run);
		member_str(o, "start", start);
		member_u64(o, "files", w->run_files);
		close_object(o);
	} else if (w->run[0]) {
		put(o, "run: %s%s%s, %llu files since the recorder started\n", w->run,
		    start[0] ? " since " : "",
		    start, (unsigned long long)w->run_files);
	}
}

static void emit_engine(struct out *o, const struct h5w_stats *w)
{
	if (o->json) {
		open_object(o, "file");
		member_bool(o, "open", w->file_open);
		member_str(o, "name", w->file_name);
		member_u64(o, "size", w->file_size);
		member_u64(o, "rows", w->file_rows);
		member_u64(o, "files_closed", w->files_closed);
		close_object(o);
		emit_run(o, w);
		open_object(o, "engine");
		member_u64(o, "samples_written", w->samples_written);
		member_u64(o, "samples_clipped", w->samples_clipped);
		member_u64(o, "missing_channels", w->missing_channels);
		member_u64(o, "records_closed", w->records_closed);
		member_u64(o, "events_closed", w->events_closed);
		member_u64(o, "events_without_fields", w->events_without_fields);
		member_u64(o, "event_frames_late", w->event_frames_late);
		member_u64(o, "chunks_written", w->chunks_written);
		member_u64(o, "chunks_precompressed", w->chunks_precompressed);
		member_u64(o, "chunks_decoded", w->chunks_decoded);
		member_u64(o, "chunks_refused", w->chunks_refused);
		member_u64(o, "bytes_raw", w->bytes_raw);
		member_u64(o, "bytes_compressed", w->bytes_compressed);
		member_u64(o, "groups", w->groups);
		member_u64(o, "errors", w->errors);
		close_object(o);
		return;
	}
	if (w->file_name[0])
		put(o, "file: %s, %llu bytes, %llu rows (%s); %llu files closed\n", w->file_name,
		    (unsigned long long)w->file_size, (unsigned long long)w->file_rows,
		    w->file_open ? "open" : "closed", (unsigned long long)w->files_closed);
	else
		put(o, "file: none yet (created with the first data)\n");
	emit_run(o, w);
	put(o, "written: %llu samples (%llu clipped), %llu chunks, %llu bytes raw, %llu stored",
	    (unsigned long long)w->samples_written, (unsigned long long)w->samples_clipped,
	    (unsigned long long)w->chunks_written, (unsigned long long)w->bytes_raw,
	    (unsigned long long)w->bytes_compressed);
	if (w->chunks_precompressed || w->chunks_decoded || w->chunks_refused)
		put(o, "; pre-compressed chunks: %llu stored as sent, %llu decoded, %llu refused",
		    (unsigned long long)w->chunks_precompressed,
		    (unsigned long long)w->chunks_decoded, (unsigned long long)w->chunks_refused);
	if (w->records_closed || w->missing_channels)
		put(o, "; %llu records closed, %llu channels missing",
		    (unsigned long long)w->records_closed, (unsigned long long)w->missing_channels);
	if (w->events_closed || w->event_frames_late)
		put(o, "; %llu stream events closed (%llu without their EVENT frame), %llu late "
		    "frames", (unsigned long long)w->events_closed,
		    (unsigned long long)w->events_without_fields,
		    (unsigned long long)w->event_frames_late);
	put(o, "\n");
}

static void member_time_counts(struct out *o, const struct h5w_time_counts *c)
{
	member_u64(o, "not_increasing", c->not_increasing);
	member_u64(o, "implausible", c->implausible);
	member_u64(o, "rejected", c->rejected);
}

/* Time order and late data (docs/engine.md): rows not later than an
 * earlier row of their time axis, rows outside output.time_window, per
 * group for the first groups that had any. */
static void emit_time(struct out *o, const struct status *s, const struct h5w_stats *w)
{
	const struct schema_output *out = &s->schema->output;
	struct h5w_time_groups groups;
	writer_time_groups(s->writer, &groups);
	char past[32], future[32];
	schema_format_duration(out->time_past_ns, past, sizeof(past));
	schema_format_duration(out->time_future_ns, future, sizeof(future));
	if (o->json) {
		open_object(o, "time");
		member_time_counts(o, &w->time);
		member_str(o, "window_past", past);
		member_str(o, "window_future", future);
		member_bool(o, "window_reject", out->time_reject);
		key(o, "groups");
		put(o, "[");
		for (size_t i = 0; i < groups.n; i++) {
			put(o, "%s{", i ? ", " : "");
			o->first = true;
			member_str(o, "group", groups.group[i].path);
			member_time_counts(o, &groups.group[i].counts);
			put(o, "}");
		}
		put(o, "]");
		o->first = false;
		member_u64(o, "groups_unlisted", groups.unlisted);
		close_object(o);
		return;
	}
	put(o, "time: %llu rows not after an earlier one, %llu outside -%s..+%s of receipt "
	       "(%llu rejected)\n",
	    (unsigned long long)w->time.not_increasing, (unsigned long long)w->time.implausible,
	    past, future, (unsigned long long)w->time.rejected);
	for (size_t i = 0; i < groups.n; i++) {
		const struct h5w_time_counts *c = &groups.group[i].counts;
		put(o, "  %-24s %llu not after an earlier row, %llu outside the window, %llu "
		       "rejected\n", groups.group[i].path, (unsigned long long)c->not_increasing,
		    (unsigned long long)c->implausible, (unsigned long long)c->rejected);
	}
	if (groups.unlisted)
		put(o, "  and %llu more groups\n", (unsigned long long)groups.unlisted);
}

/* Whether the output takes data: a full disk holds it in memory. */
static void emit_output(struct out *o, const struct h5w_stats *w, const struct writer_output *out)
{
	char since[TIME_ISO8601_MAX] = "";
	if (out->full_since)
		time_iso8601(out->full_since, 0, since, sizeof(since));
	const char *state = out->stalled ? "stalled" : w->full ? "full" : "ok";
	if (o->json) {
		open_object(o, "output");
		member_str(o, "state", state);
		member_bool(o, "full", w->full);
		member_bool(o, "stalled", out->stalled);
		member_str(o, "reason", w->full ? w->full_reason : "");
		member_str(o, "full_since", since);
		member_u64(o, "held_bytes", w->full ? w->buffered_bytes : 0);
		member_u64(o, "full_episodes", w->full_episodes);
		member_double(o, "stalled_s", (double)out->stalled_ns / 1e9);
		close_object(o);
		return;
	}
	if (w->full)
		put(o, "output: FULL since %s: %llu bytes held in memory until space returns%s\n"
		       "  because: %s\n",
		    since, (unsigned long long)w->buffered_bytes,
		    out->stalled ? "; writing stopped, reading paused" : "", w->full_reason);
	else if (w->full_episodes || out->stalled_ns)
		put(o, "output: ok; %llu full-disk episodes so far, writing stopped %.1f s in "
		       "total\n", (unsigned long long)w->full_episodes, (double)out->stalled_ns / 1e9);
}

static void emit_buffer(struct out *o, const struct status *s, const struct h5w_stats *w)
{
	bool full;
	size_t queued = writer_queue_buffered(s->queue, &full);
	uint64_t limit = s->schema->limits.max_buffer;
	double paused_s = s->net ? (double)net_paused_ns(s->net) / 1e9 : 0;
	char flushed[TIME_ISO8601_MAX] = "never";
	double ago = 0;
	if (w->last_flush) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		time_iso8601(w->last_flush, 0, flushed, sizeof(flushed));
		ago = (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - w->last_flush) / 1e9;
	}
	const char *last_error = w->last_error[0] ? w->last_error : s->last_error;
	if (o->json) {
		open_object(o, "buffer");
		member_u64(o, "queued_bytes", queued);
		member_u64(o, "engine_bytes", w->buffered_bytes);
		member_u64(o, "max_buffer", limit);
		member_u64(o, "peak_queued_bytes", s->queue->peak_buffered);
		member_bool(o, "reading_paused", full);
		member_double(o, "paused_s", paused_s);
		close_object(o);
		member_str(o, "last_flush", w->last_flush ? flushed : "");
		member_double(o, "last_flush_age_s", ago);
		member_str(o, "last_error", last_error);
		return;
	}
	put(o, "buffer: %zu bytes queued + %llu in chunks of %llu allowed (%.1f%%), peak %zu; "
	       "reading %s, paused %.1f s in total\n",
	    queued, (unsigned long long)w->buffered_bytes, (unsigned long long)limit,
	    limit ? 100.0 * (double)(queued + w->buffered_bytes) / (double)limit : 0.0,
	    s->queue->peak_buffered, full ? "paused" : "on", paused_s);
	if (w->last_flush)
		put(o, "last flush: %s (%.1f s ago)\n", flushed, ago);
	else
		put(o, "last flush: never\n");
	put(o, "last error: %s\n", last_error[0] ? last_error : "none");
}

static size_t render(const struct status *s, uint64_t now_ms, char *buf, size_t len, bool json)
{
	struct out o = {.buf = buf, .len = len, .json = json, .first = true};
	struct h5w_stats w;
	struct writer_output out;
	writer_stats(s->writer, &w, &out);
	if (len)
		buf[0] = '\0';
	if (json)
		put(&o, "{");
	emit_header(&o, s, now_ms);
	emit_listeners(&o, s);
	emit_sources(&o, s);
	emit_streams(&o, s);
	emit_counters(&o, s);
	emit_groups(&o, s, &w);
	emit_engine(&o, &w);
	emit_time(&o, s, &w);
	emit_output(&o, &w, &out);
	emit_buffer(&o, s, &w);
	if (json)
		put(&o, "}\n");
	return o.used;
}

static int by_silence(const void *a, const void *b)
{
	const struct ingest_group_view *x = a, *y = b;
	if (x->seen_ms != y->seen_ms)
		return x->seen_ms < y->seen_ms ? -1 : 1;
	return strcmp(x->path, y->path);
}

size_t status_groups(const struct status *s, uint64_t now_ms, bool json, char *buf, size_t len)
{
	struct out o = {.buf = buf, .len = len, .json = json, .first = true};
	const struct ingest *in = s->ingest;
	struct ingest_group_view *views = malloc((in->ngroups + 1) * sizeof(*views));
	size_t n = 0;
	struct timespec ts;
	if (!views)
		return 0;
	for (uint32_t id = 0; id < in->ids_used && n < in->ngroups; id++)
		n += ingest_group_view(in, id, &views[n]);
	qsort(views, n, sizeof(*views), by_silence);
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t wall_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (len)
		buf[0] = '\0';
	if (json)
		put(&o, "{\"groups\": [");
	else
		put(&o, "%zu groups, the longest silent first:\n  %-24s %9s %12s  %s\n", n,
		    "last seen", "ago", "points", "group (stream)");
	for (size_t i = 0; i < n; i++) {
		char seen[TIME_ISO8601_MAX];
		uint64_t ago_ms = now_ms - views[i].seen_ms;
		time_iso8601(wall_ns - (int64_t)ago_ms * 1000000, 0, seen, sizeof(seen));
		if (json) {
			put(&o, "%s{", i ? ", " : "");
			o.first = true;
			member_str(&o, "group", views[i].path);
			member_str(&o, "stream", views[i].stream->name);
			member_str(&o, "last_seen", seen);
			member_double(&o, "age_s", (double)ago_ms / 1e3);
			member_u64(&o, "points", views[i].points);
			put(&o, "}");
		} else {
			put(&o, "  %-24s %7.1f s %12llu  %s (%s)\n", seen, (double)ago_ms / 1e3,
			    (unsigned long long)views[i].points, views[i].path,
			    views[i].stream->name);
		}
	}
	if (json)
		put(&o, "]}\n");
	free(views);
	return o.used;
}

size_t status_text(const struct status *status, uint64_t now_ms, char *out, size_t len)
{
	return render(status, now_ms, out, len, false);
}

size_t status_json(const struct status *status, uint64_t now_ms, char *out, size_t len)
{
	return render(status, now_ms, out, len, true);
}

void status_summary(const struct status *status, char *text, size_t len)
{
	struct h5w_stats w;
	double rate = 0;
	bool full;
	writer_stats(status->writer, &w, NULL);
	for (size_t i = 0; i < status->schema->nstreams; i++)
		rate += status_stream_rate(status, i);
	size_t queued = writer_queue_buffered(status->queue, &full);
	uint64_t limit = status->schema->limits.max_buffer;
	snprintf(text, len, "%s%.0f samples/s, buffer %.1f%%%s, %s %s",
		 w.full ? "OUTPUT FULL, data held in memory; " : "", rate,
		 limit ? 100.0 * (double)(queued + w.buffered_bytes) / (double)limit : 0.0,
		 full ? " (reading paused)" : "", w.file_open ? "writing" : "last file",
		 w.file_name[0] ? w.file_name : "none yet");
}
