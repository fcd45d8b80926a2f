/*
 * cli_check.c - `h5rec check SCHEMA`: validate a schema and show what it
 * resolves to.
 *
 * The listing is the schema after every default has been applied: where
 * files go, what is listened on, and per stream every dataset the recorder
 * will create with its dtype, shape, chunk shape, filters and dimension
 * scales (SPEC §4). It is meant for a person checking a schema before
 * deploying it, so it is plain indented text, not a format to parse.
 *
 * Warnings go to stderr, also with -q: they name schemas that are valid but
 * will hurt in production, and do not change the exit status.
 */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "h5w.h"
#include "schema.h"
#include "schema_internal.h"

void cli_check_usage(FILE *out)
{
	fprintf(out, "usage: h5rec check [-q] SCHEMA\n"
		     "Validate SCHEMA and print the resolved layout; on error print\n"
		     "FILE:LINE:COL: message and exit 1.\n"
		     "  -q, --quiet   print nothing when the schema is valid\n");
}

static const char *const transport_text[] = {"tcp", "udp", "unix"};
static const char *const layout_text[] = {"table", "records", "stream"};

static void print_output(const struct schema *schema)
{
	const struct schema_output *out = &schema->output;
	char a[32], b[32];

	printf("output\n");
	printf("  directory    %s\n", out->directory);
	printf("  file         %s\n", out->file.text);
	if (out->roll_every_ns || out->roll_size) {
		schema_format_duration(out->roll_every_ns, a, sizeof(a));
		schema_format_size(out->roll_size, b, sizeof(b));
		printf("  roll         %s%s%s%s%s\n", out->roll_every_ns ? "every " : "",
		       out->roll_every_ns ? a : "", out->roll_every_ns && out->roll_size ? ", " : "",
		       out->roll_size ? "size " : "", out->roll_size ? b : "");
	} else {
		printf("  roll         never (only on restart, SIGHUP or h5rec roll)\n");
	}
	if (out->driver == SCHEMA_DRIVER_FAMILY) {
		schema_format_size(out->member_size, a, sizeof(a));
		printf("  driver       family, members of %s\n", a);
	} else {
		printf("  driver       sec2\n");
	}
	printf("  swmr         %s\n", out->swmr ? "on" : "off");
	schema_format_duration(out->flush_ns, a, sizeof(a));
	printf("  flush        every %s\n", a);
	if (out->min_free) {
		schema_format_size(out->min_free, a, sizeof(a));
		printf("  min_free     %s (writing waits while less is free)\n", a);
	} else {
		printf("  min_free     off (writes run until the disk is full)\n");
	}
	schema_format_duration(out->time_past_ns, a, sizeof(a));
	schema_format_duration(out->time_future_ns, b, sizeof(b));
	printf("  time_window  %s before to %s after receipt; rows outside are counted%s\n", a, b,
	       out->time_reject ? " and rejected" : " and kept");
	if (schema->control.socket)
		printf("control socket %s\n", schema->control.socket);
	else
		printf("control socket default: /run/h5rec/%s.sock, else "
		       "$XDG_RUNTIME_DIR/h5rec-%s.sock, else /tmp/h5rec-<uid>/%s.sock\n",
		       schema->name, schema->name, schema->name);
}

static void print_listen(const struct schema *schema)
{
	if (!schema->nlisten)
		return;
	printf("listen\n");
	for (size_t i = 0; i < schema->nlisten; i++) {
		const struct schema_listen *l = &schema->listen[i];
		printf("  %-7s %-4s ", schema_protocol_name(l->protocol), transport_text[l->transport]);
		if (l->transport == SCHEMA_TRANSPORT_UNIX)
			printf("%s", l->path);
		else if (strchr(l->host, ':'))
			printf("[%s]:%u", l->host, l->port);
		else
			printf("%s:%u", l->host, l->port);
		if (l->protocol == SCHEMA_PROTOCOL_LINE)
			printf("  precision %s", line_precision_name(l->precision));
		if (l->protocol == SCHEMA_PROTOCOL_HTTP)
			printf("  max_body %llu", (unsigned long long)l->max_body);
		if (l->token)
			printf("  token required");
		for (size_t k = 0; k < l->nallow; k++)
			printf("%s%s", k ? ", " : "  allow ", l->allow[k].text);
		printf("\n");
	}
}

static void print_sources(const struct schema *schema)
{
	char wait[32], expires[32], bytes[32];

	if (!schema->nsources)
		return;
	printf("sources\n");
	for (size_t i = 0; i < schema->nsources; i++) {
		const struct schema_source *s = &schema->sources[i];
		schema_format_duration(s->ack_wait_ns, wait, sizeof(wait));
		schema_format_duration(s->fetch_expires_ns, expires, sizeof(expires));
		schema_format_size(s->fetch_max_bytes, bytes, sizeof(bytes));
		printf("  nats %-5s stream %s, consumer %s, servers", schema_protocol_name(s->protocol),
		       s->stream, s->consumer);
		for (size_t k = 0; k < s->nservers; k++)
			printf("%s%s", k ? ", " : " ", s->servers[k]);
		printf("\n        ack_wait %s, max_ack_pending %llu, fetch %llu messages / %s / %s",
		       wait, (unsigned long long)s->max_ack_pending,
		       (unsigned long long)s->fetch_batch, bytes, expires);
		if (s->nsubjects)
			printf("\n        creates the stream if missing: %llu replica(s), subjects",
			       (unsigned long long)s->replicas);
		for (size_t k = 0; k < s->nsubjects; k++)
			printf("%s%s", k ? ", " : " ", s->subjects[k]);
		printf("\n");
	}
}

static void print_limits(const struct schema_limits *limits)
{
	char buffer[32], frame[32], line[32];

	schema_format_size(limits->max_buffer, buffer, sizeof(buffer));
	schema_format_size(limits->max_frame, frame, sizeof(frame));
	schema_format_size(limits->max_line, line, sizeof(line));
	printf("limits\n  max_groups %llu, max_buffer %s, max_frame %s, max_line %s, max_connections %llu\n",
	       (unsigned long long)limits->max_groups, buffer, frame, line, (unsigned long long)limits->max_connections);
}

/* The schema's `attrs` of one object, one per line after PREFIX, with the
 * type each is written as. */
static void print_attrs(const char *prefix, const struct schema_attr *attrs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct schema_attr *a = &attrs[i];
		printf("%s%s = ", prefix, a->name);
		switch (a->type) {
		case SCHEMA_ATTR_STRING: printf("\"%s\"\n", a->text); break;
		case SCHEMA_ATTR_INT: printf("%s (int64)\n", a->text); break;
		case SCHEMA_ATTR_FLOAT: printf("%s (float64)\n", a->text); break;
		case SCHEMA_ATTR_INTS:
		case SCHEMA_ATTR_FLOATS:
			for (size_t k = 0; k < a->count; k++) {
				if (a->type == SCHEMA_ATTR_INTS)
					printf("%s%lld", k ? ", " : "[", (long long)a->ints[k]);
				else
					printf("%s%.17g", k ? ", " : "[", a->floats[k]);
			}
			printf("] (%s[%zu])\n", a->type == SCHEMA_ATTR_INTS ? "int64" : "float64",
			       a->count);
			break;
		}
	}
}

/* MAY_MISS: the layout leaves a value out when data lacks it (a line
 * without the field, a record without the channel), so its fill matters. */
static void print_channel_attrs(const struct schema_channel *ch, bool may_miss)
{
	printf("      ");
	if (ch->units)
		printf("units '%s', ", ch->units);
	if (ch->long_name)
		printf("long_name '%s', ", ch->long_name);
	if (ch->has_dt)
		printf("dt %.9g s, ", ch->dt);
	if (ch->has_packing)
		printf("scale_factor %.9g, add_offset %.9g, ", ch->scale_factor, ch->add_offset);
	bool is_float = ch->dtype == DTYPE_FLOAT32 || ch->dtype == DTYPE_FLOAT64;
	bool is_unsigned = ch->dtype == DTYPE_UINT64 || ch->dtype == DTYPE_UINT32 ||
			   ch->dtype == DTYPE_UINT16 || ch->dtype == DTYPE_UINT8;
	if (ch->dtype == DTYPE_STRING)
		printf("fill ''\n");
	else if (is_float)
		printf("_FillValue %g\n", ch->has_fill ? ch->fill.f : NAN);
	else if (!ch->has_fill)
		printf(may_miss ? "no fill: a missing value reads as 0 (declare `fill:` to have "
				  "readers mask it)\n"
				: "no fill\n");
	else if (is_unsigned)
		printf("_FillValue %llu\n", (unsigned long long)ch->fill.u);
	else
		printf("_FillValue %lld\n", (long long)ch->fill.i);
	print_attrs("      attr ", ch->attrs, ch->nattrs);
}

static void filters_text(const struct h5w_dataset_info *d, char *out, size_t outlen)
{
	size_t n = 0;

	out[0] = '\0';
	if (d->shuffle)
		n += (size_t)snprintf(out + n, outlen - n, "shuffle, ");
	if (d->compression == SCHEMA_COMPRESSION_DEFLATE)
		n += (size_t)snprintf(out + n, outlen - n, "deflate level %d, ", d->level);
	if (d->compression == SCHEMA_COMPRESSION_LZ4) {
		char block[32];
		schema_format_size(d->lz4_block, block, sizeof(block));
		n += (size_t)snprintf(out + n, outlen - n, "lz4 (filter 32004, block %s), ",
				      d->lz4_block ? block : "whole chunk");
	}
	if (d->compression == SCHEMA_COMPRESSION_SZIP)
		n += (size_t)snprintf(out + n, outlen - n, "szip %s, %u pixels per block, ",
				      d->szip_coding == SCHEMA_SZIP_EC ? "ec" : "nn",
				      d->szip_pixels_per_block);
	if (d->fletcher32)
		n += (size_t)snprintf(out + n, outlen - n, "fletcher32, ");
	if (n >= 2 && n < outlen)
		out[n - 2] = '\0';
	else
		snprintf(out, outlen, "none");
}

/* The name of the unlimited axis whose scale is SCALE (NULL: a stream
 * channel's samples, which have none). */
static const char *axis_name(const struct schema_stream *s, const char *scale)
{
	static const char frame_time[] = "_frame_time";
	size_t len = scale ? strlen(scale) : 0, suffix = strlen(frame_time);

	if (!scale)
		return "samples";
	if (s->layout == SCHEMA_LAYOUT_TABLE)
		return "rows";
	if (s->layout == SCHEMA_LAYOUT_STREAM && len > suffix &&
	    strcmp(scale + len - suffix, frame_time) == 0)
		return "frames";
	return "events";
}

/*
 * One dataset line: name, dtype, shape, chunk shape, filters, dims, then
 * the attributes of the channel or event field it holds. Everything comes
 * from the engine's own plan (h5w_describe), so the line is what the
 * recorder creates, not a second account of the layout rules.
 */
static int print_dataset(const struct h5w_dataset_info *d, void *arg)
{
	const struct schema_stream *s = arg;
	const char *axis = axis_name(s, d->dims[0]);
	char shape[64], chunk[64], filters[128], dims[400];

	if (d->fixed_rows)
		snprintf(shape, sizeof(shape), "(%llu,)", (unsigned long long)d->fixed_rows);
	else if (d->row_elems > 1)
		snprintf(shape, sizeof(shape), "(%s, %llu)", axis, (unsigned long long)d->row_elems);
	else
		snprintf(shape, sizeof(shape), "(%s,)", axis);
	if (!d->chunk_rows)
		snprintf(chunk, sizeof(chunk), "contiguous");
	else if (d->row_elems > 1)
		snprintf(chunk, sizeof(chunk), "chunk (%llu, %llu)", (unsigned long long)d->chunk_rows,
			 (unsigned long long)d->row_elems);
	else
		snprintf(chunk, sizeof(chunk), "chunk (%llu,)", (unsigned long long)d->chunk_rows);
	filters_text(d, filters, sizeof(filters));
	if (d->is_scale)
		snprintf(dims, sizeof(dims), "dimension scale%s", d->fixed_rows ? ", i*dt" : "");
	else if (!d->dims[0])
		snprintf(dims, sizeof(dims), "no scale: time from the frame index");
	else
		snprintf(dims, sizeof(dims), "dims [%s%s%s]", d->dims[0], d->dims[1] ? ", " : "",
			 d->dims[1] ? d->dims[1] : "");
	printf("    %-22s %-8s %-16s %-22s %s; %s\n", d->name, dtype_name(d->dtype), shape, chunk,
	       filters, dims);
	if (d->fixed_rows)
		printf("      dt %g s\n", s->dt);
	if (d->channel)
		print_channel_attrs(d->channel, s->layout != SCHEMA_LAYOUT_STREAM);
	if (d->field) {
		if (d->field->units)
			printf("      units '%s'\n", d->field->units);
		if (d->field->long_name)
			printf("      long_name '%s'\n", d->field->long_name);
		print_attrs("      attr ", d->field->attrs, d->field->nattrs);
	}
	return 0;
}

static int print_stream(const struct schema *schema, const struct schema_stream *s,
			struct h5w_error *err)
{
	char timeout[32];

	printf("\nstream %s\n", s->name);
	if (s->match_is_key)
		printf("  match        frame key '%s'\n", s->match_key.text);
	else
		printf("  match        line measurement '%s'\n", s->match_measurement);
	printf("  group        %s", s->group.text);
	size_t nplaceholders = 0;
	for (size_t i = 0; i < s->group.nparts; i++) {
		if (!s->group.parts[i].placeholder)
			continue;
		printf("%s%s", nplaceholders++ ? ", " : "   (string attributes: ",
		       s->group.parts[i].text);
	}
	printf("%s\n", nplaceholders ? ")" : "");
	printf("  layout       %s", layout_text[s->layout]);
	if (s->layout == SCHEMA_LAYOUT_RECORDS) {
		schema_format_duration(s->record_timeout_ns, timeout, sizeof(timeout));
		printf(", %llu samples per waveform, record_timeout %s",
		       (unsigned long long)s->samples, timeout);
	} else if (s->events) {
		schema_format_duration(s->record_timeout_ns, timeout, sizeof(timeout));
		printf(", with an event table, record_timeout %s", timeout);
	}
	printf("\n  unknown      %s\n", s->unknown_fields == SCHEMA_UNKNOWN_DROP
						? "fields are counted and dropped"
						: "fields are errors");
	print_attrs("  attr         ", s->attrs, s->nattrs);
	printf("  datasets     (name, dtype, shape, chunk, filters; dimension scales)\n");
	return h5w_describe(schema, s, print_dataset, (void *)s, err);
}

static int print_schema(const struct schema *schema, struct h5w_error *err)
{
	int rc = 0;

	printf("schema '%s' (%s) is valid\n\n", schema->name, schema->path);
	printf("root attributes: Conventions = \"%s\" and the file's own (docs/engine.md)\n",
	       H5W_CONVENTIONS);
	print_attrs("  attr         ", schema->attrs, schema->nattrs);
	print_output(schema);
	print_listen(schema);
	print_sources(schema);
	print_limits(&schema->limits);
	for (size_t i = 0; !rc && i < schema->nstreams; i++)
		rc = print_stream(schema, &schema->streams[i], err);
	return rc;
}

/* Does a placeholder of this name number events rather than name a
 * source? A word of it names the event (event_id, shot_no, trigger), or the
 * whole name is a bare counter (id, n, seq). board_id or station are
 * sources: a few of them, each a group that grows. */
static bool names_events(const char *name)
{
	static const char *const event_words[] = {"event", "evt", "shot", "trigger", "trig",
						  "pulse", "particle", "grain", "hit", "record"};
	static const char *const counters[] = {"id", "n", "i", "idx", "index", "seq", "num",
					       "number", "count", "counter", "no", "nr"};
	char lower[128];
	size_t n = 0;

	for (; name[n] && n + 1 < sizeof(lower); n++)
		lower[n] = (char)tolower((unsigned char)name[n]);
	lower[n] = '\0';
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		if (strcmp(lower, counters[i]) == 0)
			return true;
	for (char *word = strtok(lower, "_-"); word; word = strtok(NULL, "_-"))
		for (size_t i = 0; i < sizeof(event_words) / sizeof(event_words[0]); i++)
			if (strcmp(word, event_words[i]) == 0)
				return true;
	return false;
}

/*
 * A group template that makes a group per event is valid, and runs, but
 * each event then costs a group with all its datasets and its own
 * sample_time axis, carried into every later file: waveforms of shape
 * (1, N), storage growing with the square of the events, a group the
 * recorder keeps in memory, and under SWMR a new file at the next flush;
 * max_groups then stops it (measured in docs/schema.md). Say so, and what
 * to do instead.
 */
static void warn_group_per_event(const struct schema *schema)
{
	for (size_t i = 0; i < schema->nstreams; i++) {
		const struct schema_stream *s = &schema->streams[i];
		for (size_t k = 0; k < s->group.nparts; k++) {
			const struct schema_template_part *part = &s->group.parts[k];
			if (!part->placeholder || !names_events(part->text))
				continue;
			fprintf(stderr,
				"%s:%d:%d: warning: streams[%s].group '%s' makes a group per event "
				"({%s} numbers events, not sources). Every event then gets its own "
				"group, datasets and sample_time axis, created again in every later "
				"file: waveforms of shape (1, N), tens of times the storage, recorder "
				"memory that grows with every event, a new file at each flush under "
				"SWMR, and events refused once a file holds limits.max_groups groups. Record events as rows of one group per "
				"source (layout: records, the event id in the frame) and write a "
				"group per event from the closed file with 'h5rec export --layout "
				"book' (docs/schema.md, \"One group per event\").\n",
				schema->path, s->pos.line, s->pos.col, s->name, s->group.text,
				part->text);
			break;
		}
	}
}

int cli_check(int argc, char **argv)
{
	static const struct option options[] = {
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt, quiet = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "qh", options, NULL)) != -1) {
		switch (opt) {
		case 'q':
			quiet = 1;
			break;
		case 'h':
			cli_check_usage(stdout);
			return 0;
		default:
			cli_check_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		cli_check_usage(stderr);
		return 2;
	}
	struct schema *schema = NULL;
	struct schema_error err;
	if (schema_load_file(argv[optind], &schema, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		return 1;
	}
	struct h5w_error describe_err;
	if (!quiet && print_schema(schema, &describe_err)) {
		fprintf(stderr, "h5rec check: %s\n", describe_err.message);
		schema_free(schema);
		return 1;
	}
	warn_group_per_event(schema);
	schema_free(schema);
	return 0;
}
