/*
 * schema_stream.c - the `streams` part of a schema: match, group, layout,
 * channels with their options, event fields and attributes (SPEC §2, §4).
 *
 * A stream's protocol follows from its match: `measurement` is line
 * protocol, `key` is frames. Channel options resolve in three steps - the
 * channel's own value, else the stream's `defaults`, else the built-in
 * default - so the storage engine never looks further than the channel.
 * Options that only make sense with some compressions (level with
 * deflate, block_size with lz4, shuffle with either, szip_pixels_per_block
 * and szip_coding with szip) are errors where written next to another
 * compression, and are dropped silently when they merely come from
 * `defaults` to a channel that chose a different compression. fletcher32
 * goes with any.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5lz4.h"
#include "schema_internal.h"
#include "schema_stream.h"
#include "schema_yaml.h"

/* HDF5 refuses chunks of 4 GiB or more. */
#define CHUNK_BYTES_MAX UINT64_C(0xFFFFFFFF)
/* Bytes per element of a variable-length string dataset (hvl_t/char *). */
#define STRING_ELEMENT_SIZE 16

static const struct enum_name layout_names[] = {
	{"table", SCHEMA_LAYOUT_TABLE},
	{"records", SCHEMA_LAYOUT_RECORDS},
	{"stream", SCHEMA_LAYOUT_STREAM},
	{NULL, 0},
};
static const struct enum_name unknown_names[] = {
	{"drop", SCHEMA_UNKNOWN_DROP},
	{"error", SCHEMA_UNKNOWN_ERROR},
	{NULL, 0},
};
static const struct enum_name compression_names[] = {
	{"none", SCHEMA_COMPRESSION_NONE},
	{"deflate", SCHEMA_COMPRESSION_DEFLATE},
	{"lz4", SCHEMA_COMPRESSION_LZ4},
	{"szip", SCHEMA_COMPRESSION_SZIP},
	{NULL, 0},
};
static const struct enum_name szip_coding_names[] = {
	{"nn", SCHEMA_SZIP_NN},
	{"ec", SCHEMA_SZIP_EC},
	{NULL, 0},
};
static const struct enum_name verify_names[] = {
	{"check", SCHEMA_VERIFY_CHECK},
	{"decode", SCHEMA_VERIFY_DECODE},
	{NULL, 0},
};
static const char *const layout_text[] = {"table", "records", "stream"};
static const char *const compression_text[] = {"none", "deflate", "lz4", "szip"};

#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)

/* group has a computed default ("/" + name). */
enum { ST_NAME, ST_MATCH, ST_GROUP, ST_LAYOUT, ST_ATTRS, ST_DEFAULTS, ST_UNKNOWN, ST_SAMPLES,
       ST_DT, ST_TIMEOUT, ST_EVENT_FIELDS, ST_EVENTS, ST_CHANNELS, ST_N };
static const struct opt stream_opts[ST_N] = {
	[ST_NAME] = {"name", OPT_NAME, offsetof(struct schema_stream, name),
		     .flags = OPT_F_REQUIRED},
	[ST_MATCH] = {"match", OPT_NODE, .kind = YAML_MAPPING_NODE, .flags = OPT_F_REQUIRED},
	[ST_GROUP] = {"group", OPT_TEMPLATE, offsetof(struct schema_stream, group)},
	[ST_LAYOUT] = {"layout", OPT_ENUM, offsetof(struct schema_stream, layout), "table",
		       .enums = layout_names},
	[ST_ATTRS] = {"attrs", OPT_NODE, .kind = YAML_MAPPING_NODE},
	[ST_DEFAULTS] = {"defaults", OPT_NODE, .kind = YAML_MAPPING_NODE},
	[ST_UNKNOWN] = {"unknown_fields", OPT_ENUM, offsetof(struct schema_stream, unknown_fields),
			"drop", .enums = unknown_names},
	[ST_SAMPLES] = {"samples", OPT_UINT, offsetof(struct schema_stream, samples), .min = 1,
			.max = UINT32_MAX},
	[ST_DT] = {"dt", OPT_REAL, offsetof(struct schema_stream, dt), .flags = OPT_F_POSITIVE},
	[ST_TIMEOUT] = {"record_timeout", OPT_DURATION,
			offsetof(struct schema_stream, record_timeout_ns), "1s", .min = MS,
			.max = 3600 * SEC},
	[ST_EVENT_FIELDS] = {"event_fields", OPT_NODE, .kind = YAML_MAPPING_NODE},
	[ST_EVENTS] = {"events", OPT_BOOL, offsetof(struct schema_stream, events), "false"},
	[ST_CHANNELS] = {"channels", OPT_NODE, .kind = YAML_MAPPING_NODE,
			 .flags = OPT_F_REQUIRED},
};

enum { MATCH_MEASUREMENT, MATCH_KEY, MATCH_N };
static const struct opt match_opts[MATCH_N] = {
	[MATCH_MEASUREMENT] = {"measurement", OPT_NAME,
			       offsetof(struct schema_stream, match_measurement)},
	[MATCH_KEY] = {"key", OPT_TEMPLATE, offsetof(struct schema_stream, match_key)},
};

/* chunk, shuffle and fill have defaults that depend on the layout, the
 * compression and the dtype (resolve_channel). */
enum { CH_DTYPE, CH_UNITS, CH_LONG_NAME, CH_DT, CH_SCALE, CH_OFFSET, CH_CHUNK, CH_COMPRESSION,
       CH_LEVEL, CH_BLOCK_SIZE, CH_SZIP_PPB, CH_SZIP_CODING, CH_SHUFFLE, CH_FLETCHER32, CH_VERIFY,
       CH_FILL, CH_OWN_TIME, CH_ATTRS, CH_N };
static const struct opt channel_opts[CH_N] = {
	[CH_DTYPE] = {"dtype", OPT_DTYPE, offsetof(struct schema_channel, dtype), "float64"},
	[CH_UNITS] = {"units", OPT_STRING, offsetof(struct schema_channel, units)},
	[CH_LONG_NAME] = {"long_name", OPT_STRING, offsetof(struct schema_channel, long_name)},
	[CH_DT] = {"dt", OPT_REAL, offsetof(struct schema_channel, dt), .flags = OPT_F_POSITIVE},
	[CH_SCALE] = {"scale_factor", OPT_REAL, offsetof(struct schema_channel, scale_factor),
		      "1", .flags = OPT_F_NONZERO},
	[CH_OFFSET] = {"add_offset", OPT_REAL, offsetof(struct schema_channel, add_offset), "0"},
	[CH_CHUNK] = {"chunk", OPT_UINT, offsetof(struct schema_channel, chunk), .min = 1,
		      .max = UINT32_MAX},
	[CH_COMPRESSION] = {"compression", OPT_ENUM, offsetof(struct schema_channel, compression),
			    "none", .enums = compression_names},
	[CH_LEVEL] = {"level", OPT_INT, offsetof(struct schema_channel, level), "4", .min = 1,
		      .max = 9},
	[CH_BLOCK_SIZE] = {"block_size", OPT_SIZE32,
			   offsetof(struct schema_channel, lz4_block_size), "0B", .min = 0,
			   .max = H5LZ4_MAX_BLOCK_SIZE},
	/* HDF5's H5Pset_szip takes any even count up to 32 */
	[CH_SZIP_PPB] = {"szip_pixels_per_block", OPT_INT,
			 offsetof(struct schema_channel, szip_pixels_per_block), "32", .min = 2,
			 .max = 32},
	[CH_SZIP_CODING] = {"szip_coding", OPT_ENUM, offsetof(struct schema_channel, szip_coding),
			    "nn", .enums = szip_coding_names},
	[CH_SHUFFLE] = {"shuffle", OPT_BOOL, offsetof(struct schema_channel, shuffle)},
	[CH_FLETCHER32] = {"fletcher32", OPT_BOOL, offsetof(struct schema_channel, fletcher32),
			   "false"},
	[CH_VERIFY] = {"verify_chunks", OPT_ENUM, offsetof(struct schema_channel, verify_chunks),
		       "check", .enums = verify_names},
	[CH_FILL] = {"fill", OPT_NODE, .kind = YAML_SCALAR_NODE},
	[CH_OWN_TIME] = {"own_time", OPT_BOOL, offsetof(struct schema_channel, own_time),
			 "false"},
	/* in defaults: the attributes of every channel that has none of its own */
	[CH_ATTRS] = {"attrs", OPT_NODE, .kind = YAML_MAPPING_NODE},
};

/* An event field written as a mapping. */
enum { EF_DTYPE, EF_UNITS, EF_LONG_NAME, EF_ATTRS, EF_N };
static const struct opt field_opts[EF_N] = {
	[EF_DTYPE] = {"dtype", OPT_DTYPE, offsetof(struct schema_event_field, dtype),
		      .flags = OPT_F_REQUIRED},
	[EF_UNITS] = {"units", OPT_STRING, offsetof(struct schema_event_field, units)},
	[EF_LONG_NAME] = {"long_name", OPT_STRING, offsetof(struct schema_event_field, long_name)},
	[EF_ATTRS] = {"attrs", OPT_NODE, .kind = YAML_MAPPING_NODE},
};

/* State of one stream while it is being built. */
struct stream_ctx {
	struct schema_stream *stream;
	struct seen seen[ST_N];
	struct seen match_seen[MATCH_N];
	struct schema_channel defaults;  /* options from `defaults` */
	struct seen defaults_seen[CH_N];
	char path[96];                   /* "streams[dust]" */
	bool provenance;                 /* the schema has sources */
};

static size_t seq_len(const yaml_node_t *list)
{
	return (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
}

static size_t map_len(const yaml_node_t *map)
{
	return (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

static void channel_release(struct schema_channel *channel)
{
	loader_release(channel_opts, CH_N, channel);
	free(channel->name);
	schema_attrs_free(channel->attrs, channel->nattrs);
}

void schema_stream_release(struct schema_stream *stream)
{
	loader_release(stream_opts, ST_N, stream);
	loader_release(match_opts, MATCH_N, stream);
	schema_attrs_free(stream->attrs, stream->nattrs);
	for (size_t i = 0; i < stream->nevent_fields; i++) {
		struct schema_event_field *field = &stream->event_fields[i];
		loader_release(field_opts, EF_N, field);
		free(field->name);
		schema_attrs_free(field->attrs, field->nattrs);
	}
	free(stream->event_fields);
	for (size_t i = 0; i < stream->nchannels; i++)
		channel_release(&stream->channels[i]);
	free(stream->channels);
}

/* ---- match and group ---------------------------------------------------- */

/*
 * Frame keys are '/'-separated parts, each either literal text or exactly
 * one placeholder, and the last part is {channel}: the recorder then matches
 * a key by splitting it at '/', with no pattern matching on the data path.
 */
static int check_key(struct loader *ld, struct stream_ctx *ctx)
{
	const struct schema_template *key = &ctx->stream->match_key;
	yaml_node_t *at = ctx->match_seen[MATCH_KEY].value;
	const char *text = key->text;

	for (const char *part = text;;) {
		const char *end = strchr(part, '/');
		size_t len = end ? (size_t)(end - part) : strlen(part);
		const char *open = memchr(part, '{', len);
		if (len == 0)
			return loader_fail(ld, at, "%s.match.key: expected parts separated by "
					   "single '/', got an empty part in '%s'", ctx->path, text);
		if (open && (open != part || part[len - 1] != '}' || memchr(part + 1, '{', len - 1)))
			return loader_fail(ld, at, "%s.match.key: a placeholder must be a whole "
					   "'/'-separated part, got '%.*s'", ctx->path, (int)len,
					   part);
		if (!end)
			break;
		part = end + 1;
	}
	const struct schema_template_part *last = &key->parts[key->nparts - 1];
	if (!last->placeholder || strcmp(last->text, "channel") != 0)
		return loader_fail(ld, at, "%s.match.key: the last part of a frame key must be "
				   "{channel}, got '%s'", ctx->path, text);
	for (size_t i = 0; i < key->nparts; i++) {
		if (!key->parts[i].placeholder)
			continue;
		if (i + 1 < key->nparts && strcmp(key->parts[i].text, "channel") == 0)
			return loader_fail(ld, at, "%s.match.key: {channel} must be the last part "
					   "of the key", ctx->path);
		for (size_t j = 0; j < i; j++)
			if (key->parts[j].placeholder &&
			    strcmp(key->parts[j].text, key->parts[i].text) == 0)
				return loader_fail(ld, at, "%s.match.key: placeholder '{%s}' is "
						   "used twice", ctx->path, key->parts[i].text);
	}
	return 0;
}

static size_t count_placeholders(const struct schema_template *tmpl)
{
	size_t n = 0;

	for (size_t i = 0; i < tmpl->nparts; i++)
		n += tmpl->parts[i].placeholder;
	return n;
}

static int load_match(struct loader *ld, struct stream_ctx *ctx)
{
	struct schema_stream *stream = ctx->stream;
	yaml_node_t *match = ctx->seen[ST_MATCH].value;
	char path[128], where[160];
	int err;

	snprintf(path, sizeof(path), "%s.match", ctx->path);
	snprintf(where, sizeof(where), "in %s", path);
	err = loader_walk(ld, match, match_opts, MATCH_N, stream, ctx->match_seen, path, where);
	if (err)
		return err;
	bool measurement = ctx->match_seen[MATCH_MEASUREMENT].key != NULL;
	bool key = ctx->match_seen[MATCH_KEY].key != NULL;
	if (measurement && key)
		return loader_fail(ld, ctx->match_seen[MATCH_KEY].key,
				   "%s: expected measurement (line protocol) or key (frames), "
				   "not both", path);
	if (!measurement && !key)
		return loader_fail(ld, match,
				   "%s: expected measurement (line protocol) or key (frames)",
				   path);
	stream->match_is_key = key;
	if (key && count_placeholders(&stream->match_key) > SCHEMA_MAX_PLACEHOLDERS)
		return loader_fail(ld, ctx->match_seen[MATCH_KEY].value,
				   "%s.key: at most %d placeholders are allowed", path,
				   SCHEMA_MAX_PLACEHOLDERS);
	return key ? check_key(ld, ctx) : 0;
}

static bool group_literal_valid(const char *text)
{
	for (const char *p = text; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-' || *p == '/'))
			return false;
	return true;
}

/* Group paths are absolute, below the root (which holds the file's own
 * attributes), with no empty, "." or ".." parts. */
static int check_group_shape(struct loader *ld, struct stream_ctx *ctx, yaml_node_t *at)
{
	const struct schema_template *group = &ctx->stream->group;
	const char *text = group->text;

	if (text[0] != '/' || text[1] == '\0')
		return loader_fail(ld, at, "%s.group: expected an absolute path below the root "
				   "like /%s, got '%s'", ctx->path, ctx->stream->name, text);
	for (const char *part = text + 1;;) {
		const char *end = strchr(part, '/');
		size_t len = end ? (size_t)(end - part) : strlen(part);
		if (len == 0 || (len == 1 && part[0] == '.') ||
		    (len == 2 && part[0] == '.' && part[1] == '.'))
			return loader_fail(ld, at, "%s.group: empty, '.' and '..' parts are not "
					   "allowed, got '%s'", ctx->path, text);
		if (!end)
			break;
		part = end + 1;
	}
	for (size_t i = 0; i < group->nparts; i++)
		if (!group->parts[i].placeholder && !group_literal_valid(group->parts[i].text))
			return loader_fail(ld, at, "%s.group: expected letters, digits, '_', '.', "
					   "'-' and '/' around placeholders, got '%s'", ctx->path,
					   text);
	return 0;
}

/*
 * Group placeholders: frame streams take them from the key (all of the
 * key's, so that two boards never share a group), line streams from tags.
 * {channel} names a dataset, never a group.
 */
static int load_group(struct loader *ld, struct stream_ctx *ctx, yaml_node_t *stream_node)
{
	struct schema_stream *stream = ctx->stream;
	yaml_node_t *at = ctx->seen[ST_GROUP].value ? ctx->seen[ST_GROUP].value : stream_node;
	int err;

	if (!ctx->seen[ST_GROUP].key) {
		char text[80], why[64];
		snprintf(text, sizeof(text), "/%s", stream->name);
		if (schema_template_parse(text, &stream->group, why, sizeof(why)))
			return loader_nomem(ld, at);
	}
	err = check_group_shape(ld, ctx, at);
	if (err)
		return err;
	if (count_placeholders(&stream->group) > SCHEMA_MAX_PLACEHOLDERS)
		return loader_fail(ld, at, "%s.group: at most %d placeholders are allowed",
				   ctx->path, SCHEMA_MAX_PLACEHOLDERS);
	const struct schema_template *group = &stream->group, *key = &stream->match_key;
	for (size_t i = 0; i < group->nparts; i++) {
		const char *name = group->parts[i].text;
		if (!group->parts[i].placeholder)
			continue;
		if (strcmp(name, "channel") == 0)
			return loader_fail(ld, at, "%s.group: {channel} names a dataset and cannot "
					   "be used in a group", ctx->path);
		if (stream->match_is_key && !schema_template_has(key, name))
			return loader_fail(ld, at, "%s.group: placeholder '{%s}' is not in "
					   "match.key '%s'", ctx->path, name, key->text);
	}
	for (size_t i = 0; stream->match_is_key && i < key->nparts; i++) {
		const char *name = key->parts[i].text;
		if (key->parts[i].placeholder && strcmp(name, "channel") != 0 &&
		    !schema_template_has(group, name))
			return loader_fail(ld, at, "%s.group: must use '{%s}' from match.key, or "
					   "streams from different %s values would share a group",
					   ctx->path, name, name);
	}
	return 0;
}

/* ---- layout ------------------------------------------------------------- */

static int check_layout(struct loader *ld, struct stream_ctx *ctx, yaml_node_t *stream_node)
{
	struct schema_stream *stream = ctx->stream;
	yaml_node_t *layout_at = ctx->seen[ST_LAYOUT].value;

	if (!stream->match_is_key && stream->layout != SCHEMA_LAYOUT_TABLE)
		return loader_fail(ld, layout_at, "%s.layout: line protocol streams (match."
				   "measurement) use layout table, got '%s'", ctx->path,
				   layout_text[stream->layout]);
	if (stream->match_is_key && stream->layout == SCHEMA_LAYOUT_TABLE && layout_at)
		return loader_fail(ld, layout_at, "%s.layout: frame streams (match.key) use "
				   "layout records or stream, got 'table'", ctx->path);
	if (stream->match_is_key && stream->layout == SCHEMA_LAYOUT_TABLE)
		return loader_fail(ld, ctx->match_seen[MATCH_KEY].value,
				   "%s: frame streams (match.key) need layout: records or layout: "
				   "stream (the default, table, is for line protocol)", ctx->path);
	if (ctx->seen[ST_EVENTS].key && stream->layout != SCHEMA_LAYOUT_STREAM)
		return loader_fail(ld, ctx->seen[ST_EVENTS].key, "%s.events: only used with layout "
				   "stream (a records stream is made of events already)", ctx->path);
	if (stream->layout == SCHEMA_LAYOUT_RECORDS) {
		if (!ctx->seen[ST_SAMPLES].key)
			return loader_fail(ld, stream_node, "%s: layout records needs samples (the "
					   "samples per waveform)", ctx->path);
		if (!ctx->seen[ST_DT].key)
			return loader_fail(ld, stream_node, "%s: layout records needs dt (the sample "
					   "interval in seconds)", ctx->path);
		return 0;
	}
	static const int records_only[] = {ST_SAMPLES, ST_DT, ST_TIMEOUT, ST_EVENT_FIELDS};
	for (size_t i = 0; i < sizeof(records_only) / sizeof(records_only[0]); i++) {
		const struct seen *seen = &ctx->seen[records_only[i]];
		int opt = records_only[i];
		/* a stream's event table takes the events' fields and timeout */
		bool event_opt = opt == ST_TIMEOUT || opt == ST_EVENT_FIELDS;
		if (!seen->key || (event_opt && stream->events))
			continue;
		return loader_fail(ld, seen->key, "%s.%s: only used with layout records%s",
				   ctx->path, stream_opts[opt].name,
				   opt == ST_DT ? " (give channels their dt, or put it in "
						  "defaults)"
				   : event_opt && stream->layout == SCHEMA_LAYOUT_STREAM
					   ? " or with events: true"
					   : "");
	}
	return 0;
}

/* ---- channels ----------------------------------------------------------- */

/*
 * Options that belong to one compression, checked where they are written:
 * a channel against its resolved compression, `defaults` against its own
 * compression (when it sets one).
 */
static int check_compression_options(struct loader *ld, const struct schema_channel *values,
				     const struct seen *seen,
				     enum schema_compression compression, const char *path)
{
	const char *comp = compression_text[compression];

	if (seen[CH_LEVEL].key && compression != SCHEMA_COMPRESSION_DEFLATE)
		return loader_fail(ld, seen[CH_LEVEL].key, "%s.level: only used with compression: "
				   "deflate (compression here is %s)", path, comp);
	if (seen[CH_SHUFFLE].key && values->shuffle &&
	    (compression == SCHEMA_COMPRESSION_NONE || compression == SCHEMA_COMPRESSION_SZIP))
		return loader_fail(ld, seen[CH_SHUFFLE].key, "%s.shuffle: only used with "
				   "compression: deflate or lz4 (compression here is %s%s)", path, comp,
				   compression == SCHEMA_COMPRESSION_SZIP
					   ? ", which has its own preprocessing"
					   : "");
	if (seen[CH_BLOCK_SIZE].key && compression != SCHEMA_COMPRESSION_LZ4)
		return loader_fail(ld, seen[CH_BLOCK_SIZE].key, "%s.block_size: only used with "
				   "compression: lz4 (compression here is %s)", path, comp);
	for (int i = CH_SZIP_PPB; i <= CH_SZIP_CODING; i++)
		if (seen[i].key && compression != SCHEMA_COMPRESSION_SZIP)
			return loader_fail(ld, seen[i].key, "%s.%s: only used with compression: "
					   "szip (compression here is %s)", path,
					   channel_opts[i].name, comp);
	if (seen[CH_SZIP_PPB].key && values->szip_pixels_per_block % 2)
		return loader_fail(ld, seen[CH_SZIP_PPB].value, "%s.szip_pixels_per_block: "
				   "expected an even number (szip codes samples in pairs), got %d",
				   path, values->szip_pixels_per_block);
	return 0;
}

static int load_defaults(struct loader *ld, struct stream_ctx *ctx)
{
	yaml_node_t *node = ctx->seen[ST_DEFAULTS].value;
	char path[128], where[160];
	int err;

	if (!node)
		return 0;
	snprintf(path, sizeof(path), "%s.defaults", ctx->path);
	snprintf(where, sizeof(where), "in defaults of stream '%s'", ctx->stream->name);
	err = loader_walk(ld, node, channel_opts, CH_N, &ctx->defaults, ctx->defaults_seen, path,
			  where);
	if (err || !ctx->defaults_seen[CH_COMPRESSION].key)
		return err;
	return check_compression_options(ld, &ctx->defaults, ctx->defaults_seen,
					 ctx->defaults.compression, path);
}

static const char *fill_float(const char *text, double *value)
{
	static const char *const nans[] = {".nan", ".NaN", ".NAN"};
	static const char *const infs[] = {".inf", ".Inf", ".INF"};
	const char *p = text[0] == '-' || text[0] == '+' ? text + 1 : text;

	for (size_t i = 0; i < 3; i++) {
		if (strcmp(text, nans[i]) == 0) {
			*value = NAN;
			return NULL;
		}
		if (strcmp(p, infs[i]) == 0) {
			*value = text[0] == '-' ? -INFINITY : INFINITY;
			return NULL;
		}
	}
	if (loader_parse_real(text, value))
		return "a number, .nan or .inf";
	return NULL;
}

static void integer_range(enum dtype dtype, int64_t *lo, uint64_t *hi)
{
	size_t bits = dtype_size(dtype) * 8;
	bool is_signed = dtype == DTYPE_INT8 || dtype == DTYPE_INT16 || dtype == DTYPE_INT32 ||
			 dtype == DTYPE_INT64;

	*lo = is_signed ? (bits == 64 ? INT64_MIN : -(INT64_C(1) << (bits - 1))) : 0;
	*hi = is_signed ? (UINT64_C(1) << (bits - 1)) - 1
			: (bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1);
}

/* The fill value must be representable in the channel's dtype. */
static int resolve_fill(struct loader *ld, struct schema_channel *ch, yaml_node_t *node,
			const char *path)
{
	const char *name = dtype_name(ch->dtype), *text;
	char shown[80];

	if (!node) {
		if (ch->dtype == DTYPE_FLOAT32 || ch->dtype == DTYPE_FLOAT64)
			ch->fill.f = NAN;
		return 0;
	}
	text = loader_text(node);
	if (ch->dtype == DTYPE_STRING)
		return loader_fail(ld, node, "%s.fill: string channels have no fill value (a "
				   "missing value is the empty string)", path);
	ch->has_fill = true;
	if (ch->dtype == DTYPE_FLOAT32 || ch->dtype == DTYPE_FLOAT64) {
		const char *bad = fill_float(text, &ch->fill.f);
		if (!bad && ch->dtype == DTYPE_FLOAT32 && isfinite(ch->fill.f) &&
		    fabs(ch->fill.f) > FLT_MAX)
			bad = "a number within float32 range";
		if (bad)
			return loader_fail(ld, node, "%s.fill: expected %s, got '%s'", path, bad,
					   loader_shown(text, shown, sizeof(shown)));
		return 0;
	}
	int64_t lo, i;
	uint64_t hi, u;
	integer_range(ch->dtype, &lo, &hi);
	bool ok;
	if (lo < 0) {
		ok = loader_parse_int64(text, &i) == 0 && i >= lo && (i < 0 || (uint64_t)i <= hi);
		ch->fill.i = i;
	} else {
		ok = loader_parse_uint64(text, &u) == 0 && u <= hi;
		ch->fill.u = u;
	}
	if (!ok)
		return loader_fail(ld, node, "%s.fill: expected an integer from %lld to %llu "
				   "(%s), got '%s'", path, (long long)lo, (unsigned long long)hi,
				   name, loader_shown(text, shown, sizeof(shown)));
	return 0;
}

static uint64_t default_chunk(enum schema_layout layout)
{
	switch (layout) {
	case SCHEMA_LAYOUT_TABLE:
		return 4096;
	case SCHEMA_LAYOUT_RECORDS:
		return 1;
	default:
		return 65536;
	}
}

/* HDF5 limits one chunk to less than 4 GiB. */
static int check_chunk_bytes(struct loader *ld, struct stream_ctx *ctx,
			     const struct schema_channel *ch, const struct seen *eff,
			     const char *const *paths)
{
	const struct schema_stream *stream = ctx->stream;
	uint64_t element = ch->dtype == DTYPE_STRING ? STRING_ELEMENT_SIZE : dtype_size(ch->dtype);
	uint64_t per_row = stream->layout == SCHEMA_LAYOUT_RECORDS ? stream->samples * element
								    : element;

	if (ch->chunk <= CHUNK_BYTES_MAX / per_row)
		return 0;
	if (eff[CH_CHUNK].value)
		return loader_fail(ld, eff[CH_CHUNK].value, "%s.chunk: %llu rows of %llu bytes "
				   "exceed HDF5's 4 GiB chunk limit", paths[CH_CHUNK],
				   (unsigned long long)ch->chunk, (unsigned long long)per_row);
	return loader_fail(ld, ctx->seen[ST_SAMPLES].value, "%s.samples: one waveform of "
			   "%s is %llu bytes, above HDF5's 4 GiB chunk limit", ctx->path,
			   dtype_name(ch->dtype), (unsigned long long)per_row);
}

/* What HDF5's szip filter accepts (H5Z_can_apply_szip, H5Z_set_local_szip):
 * fixed-size numbers, and at least a block of elements in every chunk. */
static int check_szip(struct loader *ld, struct stream_ctx *ctx, const struct schema_channel *ch,
		      const struct seen *eff, const char *const *paths)
{
	uint64_t per_row = ctx->stream->layout == SCHEMA_LAYOUT_RECORDS ? ctx->stream->samples : 1;
	uint64_t elements = ch->chunk * per_row;

	if (ch->compression != SCHEMA_COMPRESSION_SZIP)
		return 0;
	if (ch->dtype == DTYPE_STRING)
		return loader_fail(ld, eff[CH_COMPRESSION].value, "%s.compression: szip needs a "
				   "numeric dtype (this channel is string)", paths[CH_COMPRESSION]);
	if (elements >= (uint64_t)ch->szip_pixels_per_block)
		return 0;
	if (eff[CH_CHUNK].value)
		return loader_fail(ld, eff[CH_CHUNK].value, "%s.chunk: %llu elements per chunk, "
				   "fewer than szip_pixels_per_block (%d): szip needs a whole block",
				   paths[CH_CHUNK], (unsigned long long)elements,
				   ch->szip_pixels_per_block);
	return loader_fail(ld, eff[CH_COMPRESSION].value, "%s.compression: szip needs chunks of "
			   "at least szip_pixels_per_block (%d) elements, these have %llu",
			   paths[CH_COMPRESSION], ch->szip_pixels_per_block,
			   (unsigned long long)elements);
}

static int check_channel_layout(struct loader *ld, struct stream_ctx *ctx,
				const struct schema_channel *ch, const struct seen *eff,
				yaml_node_t *key, const char *const *paths)
{
	enum schema_layout layout = ctx->stream->layout;

	if (ch->dtype == DTYPE_STRING && layout != SCHEMA_LAYOUT_TABLE)
		return loader_fail(ld, eff[CH_DTYPE].value, "%s.dtype: string is only for layout "
				   "table (status fields), this stream is %s", paths[CH_DTYPE],
				   layout_text[layout]);
	if (ch->dtype == DTYPE_STRING && (eff[CH_SCALE].key || eff[CH_OFFSET].key)) {
		int i = eff[CH_SCALE].key ? CH_SCALE : CH_OFFSET;
		return loader_fail(ld, eff[i].key, "%s.%s: only for numeric dtypes", paths[i],
				   channel_opts[i].name);
	}
	if (ch->own_time && layout != SCHEMA_LAYOUT_TABLE)
		return loader_fail(ld, eff[CH_OWN_TIME].value, "%s.own_time: only used with "
				   "layout table", paths[CH_OWN_TIME]);
	if (layout == SCHEMA_LAYOUT_RECORDS && eff[CH_DT].key)
		return loader_fail(ld, eff[CH_DT].key, "%s.dt: with layout records the sample "
				   "interval is the stream's dt", paths[CH_DT]);
	if (layout == SCHEMA_LAYOUT_STREAM && !eff[CH_DT].key)
		return loader_fail(ld, key, "%s: layout stream needs dt (the sample interval in "
				   "seconds), on the channel or in defaults", paths[CH_N]);
	return 0;
}

/* Options inherited from defaults that do not apply to the channel's own
 * compression are dropped rather than reported. */
static void drop_inapplicable(struct schema_channel *ch)
{
	if (ch->compression == SCHEMA_COMPRESSION_NONE || ch->compression == SCHEMA_COMPRESSION_SZIP)
		ch->shuffle = false;
	if (ch->compression != SCHEMA_COMPRESSION_LZ4)
		ch->lz4_block_size = 0;
}

static int resolve_channel(struct loader *ld, struct stream_ctx *ctx, struct schema_channel *ch,
			   struct seen *own, yaml_node_t *key, const char *path)
{
	struct seen eff[CH_N];
	const char *paths[CH_N + 1]; /* where each option was written; [CH_N]: the channel */
	char defaults_path[128];
	int err;

	snprintf(defaults_path, sizeof(defaults_path), "%s.defaults", ctx->path);
	paths[CH_N] = path;
	for (size_t i = 0; i < CH_N; i++) {
		eff[i] = own[i].key ? own[i] : ctx->defaults_seen[i];
		paths[i] = own[i].key ? path : defaults_path;
		if (own[i].key || !ctx->defaults_seen[i].key)
			continue;
		if (loader_copy(&channel_opts[i], ch, &ctx->defaults))
			return loader_nomem(ld, key);
	}
	err = loader_finish(ld, key, channel_opts, CH_N, ch, eff, path);
	if (err)
		return err;
	/* A string status channel in a stream whose defaults pack or fill
	 * numbers simply does not take those options. */
	if (ch->dtype == DTYPE_STRING) {
		static const int numeric_only[] = {CH_SCALE, CH_OFFSET, CH_FILL};
		for (size_t i = 0; i < sizeof(numeric_only) / sizeof(numeric_only[0]); i++)
			if (!own[numeric_only[i]].key)
				eff[numeric_only[i]] = (struct seen){NULL, NULL};
		ch->scale_factor = 1;
		ch->add_offset = 0;
		/* HDF5 refuses Fletcher-32 on variable-length data: the group
		 * could never be created, and its data would be lost */
		if (ch->fletcher32 && own[CH_FLETCHER32].key)
			return loader_fail(ld, own[CH_FLETCHER32].key, "%s.fletcher32: HDF5 cannot "
					   "checksum variable-length strings; only numeric "
					   "dtypes take it", path);
		ch->fletcher32 = false;
	}
	if (!eff[CH_SHUFFLE].key)
		ch->shuffle = ch->compression == SCHEMA_COMPRESSION_DEFLATE;
	if (!eff[CH_CHUNK].key)
		ch->chunk = default_chunk(ctx->stream->layout);
	ch->has_packing = eff[CH_SCALE].key || eff[CH_OFFSET].key;
	if (ctx->stream->layout == SCHEMA_LAYOUT_RECORDS) {
		ch->has_dt = true;
		ch->dt = ctx->stream->dt;
	} else {
		ch->has_dt = eff[CH_DT].key != NULL;
	}
	err = check_compression_options(ld, ch, own, ch->compression, path);
	if (!err)
		err = check_channel_layout(ld, ctx, ch, eff, key, paths);
	if (!err)
		err = check_chunk_bytes(ld, ctx, ch, eff, paths);
	if (!err)
		err = check_szip(ld, ctx, ch, eff, paths);
	if (!err)
		err = resolve_fill(ld, ch, eff[CH_FILL].value, paths[CH_FILL]);
	if (!err)
		err = schema_load_attrs(ld, eff[CH_ATTRS].value, paths[CH_ATTRS],
					SCHEMA_ATTRS_DATASET, NULL, &ch->attrs, &ch->nattrs);
	drop_inapplicable(ch);
	return err;
}

static int load_channel(struct loader *ld, struct stream_ctx *ctx, size_t index,
			yaml_node_t *key, yaml_node_t *value)
{
	struct schema_stream *stream = ctx->stream;
	struct schema_channel *ch = &stream->channels[index];
	struct seen own[CH_N] = {0};
	const char *name = loader_text(key);
	char path[192], where[160], shown[80];
	int err;

	if (!name || !loader_name_valid(name))
		return loader_fail(ld, key, "%s.channels: expected a channel name of letters, "
				   "digits, '_', '.' and '-' (at most 64, not starting with '.'), "
				   "got %s%s%s", ctx->path, name ? "'" : "",
				   name ? loader_shown(name, shown, sizeof(shown)) : loader_kind(key),
				   name ? "'" : "");
	for (size_t i = 0; i < index; i++)
		if (strcmp(stream->channels[i].name, name) == 0)
			return loader_fail(ld, key, "%s.channels: duplicate channel '%s' (first "
					   "given on line %d)", ctx->path, name,
					   stream->channels[i].pos.line);
	ch->name = schema_strdup(name);
	if (!ch->name)
		return loader_nomem(ld, key);
	ch->pos.line = (int)key->start_mark.line + 1;
	ch->pos.col = (int)key->start_mark.column + 1;
	snprintf(path, sizeof(path), "%s.channels.%s", ctx->path, name);
	snprintf(where, sizeof(where), "in channel '%s'", name);
	if (value->type != YAML_MAPPING_NODE)
		return loader_fail(ld, value, "%s: expected a mapping of channel options (use {} "
				   "for all defaults), got %s", path, loader_kind(value));
	err = loader_walk(ld, value, channel_opts, CH_N, ch, own, path, where);
	if (err)
		return err;
	return resolve_channel(ld, ctx, ch, own, key, path);
}

static int load_channels(struct loader *ld, struct stream_ctx *ctx)
{
	struct schema_stream *stream = ctx->stream;
	yaml_node_t *map = ctx->seen[ST_CHANNELS].value;
	size_t n = map_len(map);

	if (n == 0)
		return loader_fail(ld, map, "%s.channels: expected at least one channel",
				   ctx->path);
	stream->channels = schema_calloc(n, sizeof(*stream->channels));
	if (!stream->channels)
		return loader_nomem(ld, map);
	for (size_t i = 0; i < n; i++) {
		yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
		stream->nchannels++;
		int err = load_channel(ld, ctx, i, loader_node(ld, pair->key),
				       loader_node(ld, pair->value));
		if (err)
			return err;
	}
	return 0;
}

/*
 * Dataset names a layout creates next to the channels (SPEC §4): a channel
 * of the same name would collide with them.
 */
static const char *reserved_clash(const struct schema_stream *stream, const char *name)
{
	static const char *const records_names[] = {"time", "event_id", "sample_time",
						    "record_state"};
	static const char *const event_names[] = {"event_time", "event_id", "event_state"};
	static const char *const stream_suffixes[] = {"_frame_time", "_frame_start", "_frame_seq",
						      "_event_start", "_event_count"};
	static char clash[160];
	/* the event table's per-channel columns exist only with events: true */
	size_t nsuffixes = stream->events ? 5 : 3;

	if (strcmp(name, "time") == 0)
		return "time";
	if (stream->layout == SCHEMA_LAYOUT_RECORDS) {
		for (size_t i = 0; i < sizeof(records_names) / sizeof(*records_names); i++)
			if (strcmp(name, records_names[i]) == 0)
				return records_names[i];
	}
	for (size_t i = 0; stream->events && i < 3; i++)
		if (strcmp(name, event_names[i]) == 0)
			return event_names[i];
	for (size_t c = 0; c < stream->nchannels; c++) {
		const struct schema_channel *other = &stream->channels[c];
		size_t len = strlen(other->name);
		if (strncmp(name, other->name, len) != 0)
			continue;
		if (stream->layout == SCHEMA_LAYOUT_TABLE && other->own_time &&
		    strcmp(name + len, "_time") == 0) {
			snprintf(clash, sizeof(clash), "%s_time", other->name);
			return clash;
		}
		for (size_t i = 0; stream->layout == SCHEMA_LAYOUT_STREAM && i < nsuffixes; i++) {
			if (strcmp(name + len, stream_suffixes[i]) == 0) {
				snprintf(clash, sizeof(clash), "%s%s", other->name,
					 stream_suffixes[i]);
				return clash;
			}
		}
	}
	return NULL;
}

/*
 * The provenance datasets of a schema with sources (docs/engine.md,
 * "Provenance"): source_seq beside a table's or records' time (and
 * source_msg_id in records), <ch>_frame_source_seq and
 * <ch>_frame_source_msg_id in a stream channel's frame index.
 */
static const char *provenance_clash(const struct schema_stream *stream, const char *name)
{
	static const char *const stream_suffixes[] = {"_frame_source_seq",
						      "_frame_source_msg_id"};
	static char clash[160];

	if (stream->layout != SCHEMA_LAYOUT_STREAM) {
		if (!strcmp(name, "source_seq"))
			return "source_seq";
		if (stream->layout == SCHEMA_LAYOUT_RECORDS && !strcmp(name, "source_msg_id"))
			return "source_msg_id";
		return NULL;
	}
	for (size_t c = 0; c < stream->nchannels; c++) {
		const char *channel = stream->channels[c].name;
		size_t len = strlen(channel);
		if (strncmp(name, channel, len) != 0)
			continue;
		for (size_t i = 0; i < 2; i++) {
			if (!strcmp(name + len, stream_suffixes[i])) {
				snprintf(clash, sizeof(clash), "%s%s", channel, stream_suffixes[i]);
				return clash;
			}
		}
	}
	return NULL;
}

static const char *dataset_clash(const struct stream_ctx *ctx, const char *name)
{
	const char *clash = reserved_clash(ctx->stream, name);
	return clash || !ctx->provenance ? clash : provenance_clash(ctx->stream, name);
}

static int check_reserved(struct loader *ld, struct stream_ctx *ctx)
{
	const struct schema_stream *stream = ctx->stream;
	yaml_node_t *map = ctx->seen[ST_CHANNELS].value;

	for (size_t i = 0; i < stream->nchannels; i++) {
		const char *clash = dataset_clash(ctx, stream->channels[i].name);
		if (clash)
			return loader_fail(ld, loader_node(ld, map->data.mapping.pairs.start[i].key),
					   "%s.channels: channel '%s' collides with the dataset "
					   "'%s' of layout %s", ctx->path, stream->channels[i].name,
					   clash, layout_text[stream->layout]);
	}
	return 0;
}

/* ---- event fields and attributes --------------------------------------- */

/* `name: {dtype: float32, units: kg, attrs: {...}}`: an event field is a
 * dataset of its own and takes the dataset metadata a channel does. */
static int load_field_options(struct loader *ld, struct stream_ctx *ctx,
			      struct schema_event_field *field, yaml_node_t *map)
{
	struct seen seen[EF_N] = {0};
	char path[192], where[160];
	int err;

	snprintf(path, sizeof(path), "%s.event_fields.%s", ctx->path, field->name);
	snprintf(where, sizeof(where), "in event field '%s'", field->name);
	err = loader_walk(ld, map, field_opts, EF_N, field, seen, path, where);
	if (!err)
		err = loader_finish(ld, map, field_opts, EF_N, field, seen, path);
	if (!err)
		err = schema_load_attrs(ld, seen[EF_ATTRS].value, path, SCHEMA_ATTRS_DATASET, NULL,
					&field->attrs, &field->nattrs);
	return err;
}

static int load_event_fields(struct loader *ld, struct stream_ctx *ctx)
{
	struct schema_stream *stream = ctx->stream;
	yaml_node_t *map = ctx->seen[ST_EVENT_FIELDS].value;
	char shown[80];
	size_t n;

	if (!map)
		return 0;
	n = map_len(map);
	if (n == 0)
		return 0;
	stream->event_fields = schema_calloc(n, sizeof(*stream->event_fields));
	if (!stream->event_fields)
		return loader_nomem(ld, map);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *key = loader_node(ld, map->data.mapping.pairs.start[i].key);
		yaml_node_t *value = loader_node(ld, map->data.mapping.pairs.start[i].value);
		const char *name = loader_text(key), *type = loader_text(value);
		struct schema_event_field *field = &stream->event_fields[i];
		if (!name || !loader_name_valid(name))
			return loader_fail(ld, key, "%s.event_fields: expected a field name of "
					   "letters, digits, '_', '.' and '-', got %s", ctx->path,
					   name ? loader_shown(name, shown, sizeof(shown))
						: loader_kind(key));
		if (schema_find_channel(stream, name) || reserved_clash(stream, name) ||
		    (ctx->provenance && provenance_clash(stream, name)))
			return loader_fail(ld, key, "%s.event_fields: '%s' collides with a %s of "
					   "the same name", ctx->path, name,
					   schema_find_channel(stream, name) ? "channel"
									     : "layout dataset");
		for (size_t j = 0; j < i; j++)
			if (strcmp(stream->event_fields[j].name, name) == 0)
				return loader_fail(ld, key, "%s.event_fields: duplicate field '%s'",
						   ctx->path, name);
		field->name = schema_strdup(name);
		if (!field->name)
			return loader_nomem(ld, key);
		stream->nevent_fields++;
		if (value->type == YAML_MAPPING_NODE) {
			int err = load_field_options(ld, ctx, field, value);
			if (err)
				return err;
			continue;
		}
		if (!type || dtype_from_name(type, &field->dtype))
			return loader_fail(ld, value, "%s.event_fields.%s: expected a dtype (int8 "
					   "... uint64, float32, float64, string) or a mapping "
					   "{dtype, units, long_name, attrs}, got %s%s%s",
					   ctx->path, name, type ? "'" : "",
					   type ? loader_shown(type, shown, sizeof(shown))
						: loader_kind(value),
					   type ? "'" : "");
	}
	return 0;
}

static int load_attrs(struct loader *ld, struct stream_ctx *ctx)
{
	struct schema_stream *stream = ctx->stream;
	return schema_load_attrs(ld, ctx->seen[ST_ATTRS].value, ctx->path, SCHEMA_ATTRS_GROUP,
				 &stream->group, &stream->attrs, &stream->nattrs);
}

/* ---- one stream, and the rules between streams -------------------------- */

/* A table's time axis is shared by its channels: its chunk is the largest
 * of theirs, so that no channel chunk spans several time chunks. */
static uint64_t coord_chunk(const struct schema_stream *stream)
{
	uint64_t chunk = 0;

	if (stream->layout != SCHEMA_LAYOUT_TABLE)
		return 1024;
	for (size_t i = 0; i < stream->nchannels; i++)
		if (!stream->channels[i].own_time && stream->channels[i].chunk > chunk)
			chunk = stream->channels[i].chunk;
	return chunk ? chunk : 4096;
}

/* The path used in messages: streams[NAME] once the name is known to be
 * valid, streams[INDEX] before. */
static void stream_path(struct loader *ld, struct stream_ctx *ctx, yaml_node_t *node,
			size_t index)
{
	snprintf(ctx->path, sizeof(ctx->path), "streams[%zu]", index);
	for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		const char *key = loader_text(loader_node(ld, pair->key));
		const char *value = loader_text(loader_node(ld, pair->value));
		if (key && value && strcmp(key, "name") == 0 && loader_name_valid(value))
			snprintf(ctx->path, sizeof(ctx->path), "streams[%s]", value);
	}
}

static int load_stream(struct loader *ld, struct stream_ctx *ctx, yaml_node_t *node,
		       size_t index)
{
	char where[128];
	int err;

	if (node->type != YAML_MAPPING_NODE)
		return loader_fail(ld, node, "streams[%zu]: expected a mapping (name, match, "
				   "channels, ...), got %s", index, loader_kind(node));
	ctx->stream->pos.line = (int)node->start_mark.line + 1;
	ctx->stream->pos.col = (int)node->start_mark.column + 1;
	stream_path(ld, ctx, node, index);
	if (strncmp(ctx->path, "streams[", 8) == 0 && ctx->path[8] >= '0' && ctx->path[8] <= '9')
		snprintf(where, sizeof(where), "in %s", ctx->path);
	else
		snprintf(where, sizeof(where), "in stream '%.*s'", (int)strlen(ctx->path) - 9,
			 ctx->path + 8);
	err = loader_walk(ld, node, stream_opts, ST_N, ctx->stream, ctx->seen, ctx->path, where);
	if (!err)
		err = loader_finish(ld, node, stream_opts, ST_N, ctx->stream, ctx->seen, ctx->path);
	if (!err)
		err = load_match(ld, ctx);
	if (!err)
		err = load_group(ld, ctx, node);
	if (!err)
		err = check_layout(ld, ctx, node);
	if (!err)
		err = load_defaults(ld, ctx);
	if (!err)
		err = load_channels(ld, ctx);
	if (!err)
		err = check_reserved(ld, ctx);
	if (!err)
		err = load_event_fields(ld, ctx);
	if (!err)
		err = load_attrs(ld, ctx);
	if (!err)
		ctx->stream->coord_chunk = coord_chunk(ctx->stream);
	return err;
}

/*
 * Frame streams are tried in order and the first whose key matches wins,
 * so a specific key ("dust/{channel}") may come before a general one
 * ("{board}/{channel}"). A later key is dead when the earlier one matches
 * every key it would: same number of '/'-separated parts, and at each part
 * the earlier one has a placeholder or the same literal.
 */
static bool key_shadows(const char *earlier, const char *later)
{
	for (;;) {
		size_t le = strcspn(earlier, "/"), ll = strcspn(later, "/");
		if (earlier[0] != '{' &&
		    (later[0] == '{' || le != ll || memcmp(earlier, later, le) != 0))
			return false;
		if (!earlier[le] || !later[ll])
			return !earlier[le] && !later[ll];
		earlier += le + 1;
		later += ll + 1;
	}
}

static int check_between(struct loader *ld, const struct schema *schema, size_t i,
			 const struct stream_ctx *ctx)
{
	const struct schema_stream *s = &schema->streams[i];

	for (size_t j = 0; j < i; j++) {
		const struct schema_stream *o = &schema->streams[j];
		if (strcmp(s->name, o->name) == 0)
			return loader_fail(ld, ctx->seen[ST_NAME].value, "%s.name: stream '%s' is "
					   "already defined", ctx->path, s->name);
		if (!s->match_is_key && !o->match_is_key &&
		    strcmp(s->match_measurement, o->match_measurement) == 0)
			return loader_fail(ld, ctx->match_seen[MATCH_MEASUREMENT].value,
					   "%s.match.measurement: '%s' is already matched by "
					   "stream '%s'", ctx->path, s->match_measurement, o->name);
		if (s->match_is_key && o->match_is_key &&
		    key_shadows(o->match_key.text, s->match_key.text))
			return loader_fail(ld, ctx->match_seen[MATCH_KEY].value,
					   "%s.match.key: '%s' can never match: every such key "
					   "already matches '%s' of the earlier stream '%s' (streams "
					   "are tried in order; put the more specific key first)",
					   ctx->path, s->match_key.text, o->match_key.text, o->name);
		if (strcmp(s->group.text, o->group.text) == 0)
			return loader_fail(ld, ctx->seen[ST_GROUP].value ? ctx->seen[ST_GROUP].value
									 : ctx->seen[ST_NAME].value,
					   "%s.group: '%s' is also the group of stream '%s'",
					   ctx->path, s->group.text, o->name);
	}
	return 0;
}

int schema_load_streams(struct loader *ld, struct schema *schema, yaml_node_t *list)
{
	size_t n = seq_len(list);
	int err = 0;

	if (n == 0)
		return loader_fail(ld, list, "streams: expected at least one stream");
	schema->streams = schema_calloc(n, sizeof(*schema->streams));
	if (!schema->streams)
		return loader_nomem(ld, list);
	for (size_t i = 0; i < n && !err; i++) {
		struct stream_ctx ctx = {.stream = &schema->streams[i],
					 .provenance = schema->nsources > 0};
		schema->nstreams++;
		err = load_stream(ld, &ctx, loader_node(ld, list->data.sequence.items.start[i]), i);
		if (!err)
			err = check_between(ld, schema, i, &ctx);
		loader_release(channel_opts, CH_N, &ctx.defaults);
	}
	return err;
}
