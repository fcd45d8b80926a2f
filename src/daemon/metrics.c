/*
 * metrics.c - the Prometheus text exposition of the recorder's figures
 * (see metrics.h).
 *
 * Each family is written whole (HELP, TYPE, then its samples), as the
 * format requires. Names follow Prometheus' conventions so that the usual
 * dashboards work unchanged: rate() over the _total counters, bytes and
 * seconds as plain numbers. The one figure status does not already hold,
 * the free space of the output directory, is one statvfs(): a local call
 * that does not wait on the disk.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "ingest_http.h"
#include "source.h"

struct page {
	char *buf;
	size_t len, used; /* used may pass len: the size needed */
};

static void put(struct page *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct page *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(p->used < p->len ? p->buf + p->used : NULL,
			  p->used < p->len ? p->len - p->used : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		p->used += (size_t)n;
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(struct page *p, const char *value)
{
	for (; *value; value++) {
		if (*value == '\\' || *value == '"')
			put(p, "\\%c", *value);
		else if (*value == '\n')
			put(p, "\\n");
		else
			put(p, "%c", *value);
	}
}

static void family(struct page *p, const char *name, const char *type, const char *help)
{
	put(p, "# HELP h5rec_%s %s\n# TYPE h5rec_%s %s\n", name, help, name, type);
}

static void sample_u64(struct page *p, const char *name, unsigned long long value)
{
	put(p, "h5rec_%s %llu\n", name, value);
}

static void sample_double(struct page *p, const char *name, double value)
{
	put(p, "h5rec_%s %.9g\n", name, value);
}

static void one_u64(struct page *p, const char *name, const char *type, const char *help,
		    unsigned long long value)
{
	family(p, name, type, help);
	sample_u64(p, name, value);
}

static void one_double(struct page *p, const char *name, const char *type, const char *help,
		       double value)
{
	family(p, name, type, help);
	sample_double(p, name, value);
}

static const char *transport_name(enum schema_transport t)
{
	return t == SCHEMA_TRANSPORT_TCP ? "tcp" : t == SCHEMA_TRANSPORT_UDP ? "udp" : "unix";
}

static void build_info(struct page *p, const struct status *s)
{
	family(p, "build_info", "gauge", "The recorder's version and schema (always 1).");
	put(p, "h5rec_build_info{version=\"%s\",schema=\"", H5REC_VERSION);
	put_label(p, s ? s->schema->name : "");
	put(p, "\",influxdb_version=\"%s\"} 1\n", INGEST_HTTP_INFLUX_VERSION);
}

static void process(struct page *p, const struct status *s)
{
	uint64_t up_ms = uv_now(s->ingest->loop) - s->started_ms;
	one_double(p, "start_time_seconds", "gauge", "When the recorder started (Unix time).",
		   (double)s->started_ns / 1e9);
	one_double(p, "uptime_seconds", "gauge", "Seconds since the recorder started.",
		   (double)up_ms / 1e3);
	one_u64(p, "pid", "gauge", "The recorder's process id.", (unsigned long long)getpid());
	one_u64(p, "accepting", "gauge", "1 while the listeners accept data, 0 once stopping.",
		s->net != NULL);
}

/* One sample of a listener family: NAME{protocol,transport,address} VALUE. */
static void listener_sample(struct page *p, const char *name, const struct schema_listen *l,
			    unsigned long long value)
{
	put(p, "h5rec_%s{protocol=\"%s\",transport=\"%s\",address=\"", name,
	    schema_protocol_name(l->protocol), transport_name(l->transport));
	put_label(p, l->address);
	put(p, "\"} %llu\n", value);
}

static void listeners(struct page *p, const struct status *s)
{
	static const struct {
		const char *name, *type, *help;
		size_t offset;
	} figures[] = {
		{"connections_open", "gauge", "Connections open now.",
		 offsetof(struct net_listener_stats, open)},
		{"connections_accepted_total", "counter", "Connections accepted.",
		 offsetof(struct net_listener_stats, accepted)},
		{"connections_refused_total", "counter",
		 "Connections refused by allow, a connection limit or the handler.",
		 offsetof(struct net_listener_stats, refused)},
		{"connections_evicted_total", "counter",
		 "Unproven connections closed to make room for a new one.",
		 offsetof(struct net_listener_stats, evicted)},
		{"connections_timed_out_total", "counter",
		 "Connections closed by auth_timeout or idle_timeout.",
		 offsetof(struct net_listener_stats, timed_out)},
		{"listener_received_bytes_total", "counter", "Bytes received, by listener.",
		 offsetof(struct net_listener_stats, bytes)},
		{"listener_datagrams_total", "counter", "UDP datagrams received.",
		 offsetof(struct net_listener_stats, datagrams)},
		{"listener_read_errors_total", "counter", "Connections ended by a socket error.",
		 offsetof(struct net_listener_stats, read_errors)},
	};
	if (!s->net)
		return;
	for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++) {
		family(p, figures[f].name, figures[f].type, figures[f].help);
		for (size_t i = 0; i < net_listener_count(s->net); i++) {
			const struct net_listener_stats *st = net_listener_stats(s->net, i);
			uint64_t value;
			memcpy(&value, (const char *)st + figures[f].offset, sizeof(value));
			listener_sample(p, figures[f].name, net_listener_schema(s->net, i), value);
		}
	}
}

/* Per source (source.h): NAME{backend,stream,consumer} VALUE. */
static void sources(struct page *p, const struct status *s)
{
	static const struct {
		const char *name, *type, *help;
		size_t offset;
	} figures[] = {
		{"source_fetched_total", "counter", "Messages received from the broker.",
		 offsetof(struct source_stats, fetched)},
		{"source_received_bytes_total", "counter", "Bytes of the messages received.",
		 offsetof(struct source_stats, bytes)},
		{"source_acked_total", "counter", "Messages acknowledged: their data is durable.",
		 offsetof(struct source_stats, acked)},
		{"source_naked_total", "counter",
		 "Messages given back: their data could not be stored.",
		 offsetof(struct source_stats, naked)},
		{"source_rejected_total", "counter", "Invalid messages terminated (never redelivered).",
		 offsetof(struct source_stats, rejected)},
		{"source_redelivered_total", "counter",
		 "Messages received again after a recorder did not acknowledge them.",
		 offsetof(struct source_stats, redelivered)},
		{"source_pending", "gauge", "Messages received and not yet acknowledged.",
		 offsetof(struct source_stats, pending)},
		{"source_lag", "gauge", "Messages of the stream the consumer has not delivered yet.",
		 offsetof(struct source_stats, lag)},
	};
	struct sources *list = s->ingest->sources;
	if (!list || !list->n)
		return;
	for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++) {
		family(p, figures[f].name, figures[f].type, figures[f].help);
		for (size_t i = 0; i < list->n; i++) {
			struct source *src = &list->list[i];
			struct source_stats st;
			uint64_t value;
			source_get_stats(src, &st);
			memcpy(&value, (const char *)&st + figures[f].offset, sizeof(value));
			put(p, "h5rec_%s{backend=\"%s\",stream=\"", figures[f].name, src->backend->name);
			put_label(p, src->config->stream);
			put(p, "\",consumer=\"");
			put_label(p, src->config->consumer);
			put(p, "\"} %llu\n", (unsigned long long)value);
		}
	}
}

static void streams(struct page *p, const struct status *s)
{
	family(p, "stream_samples_total", "counter", "Samples and field values accepted, by stream.");
	for (size_t i = 0; i < s->schema->nstreams; i++) {
		put(p, "h5rec_stream_samples_total{stream=\"");
		put_label(p, s->schema->streams[i].name);
		put(p, "\"} %llu\n", (unsigned long long)s->ingest->stream_samples[i]);
	}
	family(p, "stream_samples_per_second", "gauge",
	       "Samples per second over the last 10 s, by stream.");
	for (size_t i = 0; i < s->schema->nstreams; i++) {
		put(p, "h5rec_stream_samples_per_second{stream=\"");
		put_label(p, s->schema->streams[i].name);
		put(p, "\"} %.3f\n", status_stream_rate(s, i));
	}
}

static void counters(struct page *p, const struct status *s)
{
	struct ingest *in = s->ingest;
	one_u64(p, "received_lines_total", "counter", "Valid lines received (line protocol, HTTP).",
		ingest_counter_value(in, INGEST_LINES));
	one_u64(p, "received_frames_total", "counter", "Valid frames received.",
		ingest_counter_value(in, INGEST_FRAMES));
	one_u64(p, "received_samples_total", "counter", "Samples and field values accepted.",
		ingest_counter_value(in, INGEST_SAMPLES));
	one_u64(p, "received_bytes_total", "counter",
		"Frame payload and line bytes received (HTTP: decoded body bytes).",
		ingest_counter_value(in, INGEST_BYTES));
	family(p, "bad_input_total", "counter",
	       "Input refused or dropped, by class (as h5rec status names them).");
	for (int c = INGEST_BYTES + 1; c < INGEST_NCOUNTERS; c++)
		put(p, "h5rec_bad_input_total{class=\"%s\"} %llu\n",
		    ingest_counter_name((enum ingest_counter)c),
		    (unsigned long long)ingest_counter_value(in, (enum ingest_counter)c));
	family(p, "http_responses_total", "counter", "HTTP responses sent, by status code.");
	for (size_t i = 0; i < INGEST_HTTP_CODES; i++)
		put(p, "h5rec_http_responses_total{code=\"%d\"} %llu\n", ingest_http_code(i),
		    (unsigned long long)in->http_responses[i]);
	one_u64(p, "http_inflight_bytes", "gauge",
		"Rows of HTTP request bodies not yet ended (count against max_buffer).",
		in->http_inflight);
}

static void engine(struct page *p, const struct h5w_stats *w)
{
	one_u64(p, "file_open", "gauge", "1 while an output file is open.", w->file_open);
	family(p, "file_info", "gauge", "The current (or last) output file (always 1).");
	put(p, "h5rec_file_info{name=\"");
	put_label(p, w->file_name);
	put(p, "\"} 1\n");
	one_u64(p, "file_size_bytes", "gauge", "Bytes of the current file.", w->file_size);
	one_u64(p, "file_rows", "gauge", "Rows and samples appended to the current file.",
		w->file_rows);
	one_u64(p, "files_closed_total", "counter", "Output files closed.", w->files_closed);
	one_u64(p, "samples_written_total", "counter", "Values stored by the engine.",
		w->samples_written);
	one_u64(p, "samples_clipped_total", "counter", "Values clipped by dtype conversion.",
		w->samples_clipped);
	one_u64(p, "missing_channels_total", "counter", "Record channels left at their fill value.",
		w->missing_channels);
	one_u64(p, "records_closed_total", "counter", "Records closed.", w->records_closed);
	one_u64(p, "events_closed_total", "counter", "Events of stream event tables closed.",
		w->events_closed);
	one_u64(p, "events_without_fields_total", "counter",
		"Stream events closed without their EVENT frame.", w->events_without_fields);
	one_u64(p, "event_frames_late_total", "counter",
		"DATA frames of a stream event closed already, stored outside it.",
		w->event_frames_late);
	one_u64(p, "chunks_written_total", "counter", "HDF5 chunks written.", w->chunks_written);
	one_u64(p, "chunks_precompressed_total", "counter",
		"Chunks senders sent pre-compressed, stored as they came.", w->chunks_precompressed);
	one_u64(p, "chunks_decoded_total", "counter",
		"Pre-compressed chunks decoded to be buffered (no file for them yet).",
		w->chunks_decoded);
	one_u64(p, "chunks_refused_total", "counter",
		"Pre-compressed chunks refused by their checks.", w->chunks_refused);
	one_u64(p, "chunk_raw_bytes_total", "counter", "Chunk bytes before compression.",
		w->bytes_raw);
	one_u64(p, "chunk_stored_bytes_total", "counter", "Chunk bytes as stored.",
		w->bytes_compressed);
	one_u64(p, "open_groups", "gauge", "Groups the engine holds open.", w->groups);
	one_u64(p, "engine_errors_total", "counter", "Errors of the storage engine.", w->errors);
	one_u64(p, "flushes_total", "counter", "Flushes that made data durable.", w->flushes);
	one_double(p, "last_flush_timestamp_seconds", "gauge",
		   "When data was last made durable (Unix time; 0: never).",
		   (double)w->last_flush / 1e9);
}

/* statvfs of the output directory, or of the first directory above it
 * that exists (the engine creates it with the first file). */
static int output_statvfs(const char *directory, struct statvfs *vfs)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s", directory);
	while (statvfs(path, vfs) != 0) {
		char *slash = strrchr(path, '/');
		if (!slash)
			return statvfs(".", vfs);
		if (slash == path) {
			slash[1] = '\0';
			return statvfs(path, vfs);
		}
		*slash = '\0';
	}
	return 0;
}

static void output(struct page *p, const struct status *s, const struct h5w_stats *w,
		   const struct writer_output *out)
{
	struct statvfs vfs;
	one_u64(p, "output_full", "gauge", "1 while the disk refuses data (held in memory).",
		w->full);
	one_u64(p, "output_stalled", "gauge", "1 while writing is stopped and reading paused.",
		out->stalled);
	one_double(p, "output_full_since_timestamp_seconds", "gauge",
		   "When the output became full (Unix time; 0: not full).",
		   (double)out->full_since / 1e9);
	one_u64(p, "output_held_bytes", "gauge", "Bytes held in memory while the output is full.",
		w->full ? w->buffered_bytes : 0);
	one_u64(p, "output_full_episodes_total", "counter", "Full-disk episodes that ended.",
		w->full_episodes);
	one_double(p, "output_stalled_seconds_total", "counter",
		   "Time writing was stopped by a full output.", (double)out->stalled_ns / 1e9);
	if (output_statvfs(s->schema->output.directory, &vfs) == 0)
		one_u64(p, "disk_free_bytes", "gauge",
			"Bytes free to the recorder in the output directory's file system.",
			(unsigned long long)vfs.f_bavail * vfs.f_frsize);
}

static void buffer(struct page *p, const struct status *s, const struct h5w_stats *w)
{
	bool full;
	size_t queued = writer_queue_buffered(s->queue, &full);
	one_u64(p, "writer_queue_bytes", "gauge", "Bytes queued for the writer thread.", queued);
	one_u64(p, "writer_queue_peak_bytes", "gauge", "Most bytes ever queued for the writer.",
		s->queue->peak_buffered);
	one_u64(p, "buffer_engine_bytes", "gauge", "Chunk memory the engine holds.",
		w->buffered_bytes);
	one_u64(p, "buffer_limit_bytes", "gauge", "limits.max_buffer.",
		s->schema->limits.max_buffer);
	one_u64(p, "reading_paused", "gauge", "1 while back-pressure pauses reading.", full);
	one_double(p, "backpressure_seconds_total", "counter",
		   "Time reading was paused by back-pressure.",
		   s->net ? (double)net_paused_ns(s->net) / 1e9 : 0);
	const char *last_error = w->last_error[0] ? w->last_error : s->last_error;
	family(p, "last_error_info", "gauge", "The last error (always 1; empty: none).");
	put(p, "h5rec_last_error_info{message=\"");
	put_label(p, last_error);
	put(p, "\"} 1\n");
}

/* Groups against limits.max_groups, time order, and the run: the figures
 * of `h5rec status` that came with them. */
static void groups_time_run(struct page *p, const struct status *s, const struct h5w_stats *w)
{
	struct ingest_refusals r;
	ingest_refusals(s->ingest, &r);
	one_u64(p, "file_groups", "gauge", "Groups that took data in the current file.",
		w->file_groups);
	one_u64(p, "file_groups_limit", "gauge", "limits.max_groups: groups per file.",
		s->schema->limits.max_groups);
	one_u64(p, "groups_known", "gauge", "Groups the recorder remembers (this file and the "
		"last).", s->ingest->ngroups);
	one_u64(p, "groups_retired_total", "counter", "Groups forgotten after a whole file "
		"without data.", s->ingest->groups_retired);
	uint64_t refused = r.others;
	for (size_t i = 0; i < INGEST_REFUSING_PEERS; i++)
		refused += r.peers[i].count;
	one_u64(p, "groups_refused_total", "counter", "Data refused for limits.max_groups (by "
		"peer address: h5rec status).", refused);
	one_u64(p, "rows_not_increasing_total", "counter", "Rows whose time is not after the "
		"row before them on their group's time axis.", w->time.not_increasing);
	one_u64(p, "rows_implausible_total", "counter", "Rows whose time lies outside "
		"output.time_window around their arrival.", w->time.implausible);
	one_u64(p, "rows_rejected_total", "counter", "Implausible rows dropped "
		"(time_window.reject).", w->time.rejected);
	family(p, "run_info", "gauge", "The run going on (always 1; empty name: none).");
	put(p, "h5rec_run_info{name=\"");
	put_label(p, w->run);
	put(p, "\"} 1\n");
	one_double(p, "run_start_timestamp_seconds", "gauge",
		   "When the run began (Unix time; 0: no run).", (double)w->run_start / 1e9);
}

size_t metrics_render(const struct status *s, char *out, size_t len)
{
	struct page p = {.buf = out, .len = len};
	if (len)
		out[0] = '\0';
	build_info(&p, s);
	if (s) {
		struct h5w_stats w;
		struct writer_output wo;
		writer_stats(s->writer, &w, &wo);
		process(&p, s);
		listeners(&p, s);
		sources(&p, s);
		streams(&p, s);
		counters(&p, s);
		engine(&p, &w);
		output(&p, s, &w, &wo);
		buffer(&p, s, &w);
		groups_time_run(&p, s, &w);
	}
	return p.used;
}

bool metrics_output_stalled(const struct status *s)
{
	struct writer_output out;
	if (!s)
		return false;
	writer_stats(s->writer, NULL, &out);
	return out.stalled;
}
