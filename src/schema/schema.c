/*
 * schema.c - loading a recorder schema: YAML text to a validated, immutable
 * struct schema (SPEC §2).
 *
 * libyaml builds the document tree; the tables below say, for each mapping
 * of the schema language, which keys exist, their types, defaults and
 * bounds (the Redis config-table idea: one place to read what is allowed).
 * schema_yaml.c walks a mapping against its table; this file adds the rules
 * that tie keys together (family needs member_size, ...) for the top level,
 * output, control, limits and listen; schema_stream.c does the streams,
 * schema_source.c the sources.
 *
 * One error is reported per load, the first one found, as
 * "FILE:LINE:COL: message" pointing at the offending value (or at the key,
 * for unknown keys). On any error the half-built model is freed here, so
 * callers get either a complete schema or nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "schema_internal.h"
#include "schema_source.h"
#include "schema_stream.h"
#include "schema_yaml.h"

/* A schema is a few KiB; anything this big is not one. */
#define SCHEMA_FILE_MAX (16u << 20)
/* Mappings and lists nested deeper than this are refused before the tree is
 * built. The language needs 5 (the top level, streams, a stream, its
 * channels, a channel); libyaml's scanner spends time proportional to the
 * depth on every token inside flow collections, so unbounded depth makes
 * loading quadratic (40,000 '[' took seconds). */
#define SCHEMA_DEPTH_MAX 64
/* sizeof(sockaddr_un.sun_path) - 1 */
#define UNIX_PATH_MAX_LEN 107

enum { TOP_NAME, TOP_OUTPUT, TOP_CONTROL, TOP_LISTEN, TOP_SOURCES, TOP_LIMITS, TOP_STREAMS,
       TOP_ATTRS, TOP_N };
static const struct opt top_opts[TOP_N] = {
	[TOP_NAME] = {"name", OPT_NAME, offsetof(struct schema, name), .flags = OPT_F_REQUIRED},
	[TOP_OUTPUT] = {"output", OPT_NODE, .kind = YAML_MAPPING_NODE},
	[TOP_CONTROL] = {"control", OPT_NODE, .kind = YAML_MAPPING_NODE},
	/* one of listen and sources is required (load_root) */
	[TOP_LISTEN] = {"listen", OPT_NODE, .kind = YAML_SEQUENCE_NODE},
	[TOP_SOURCES] = {"sources", OPT_NODE, .kind = YAML_SEQUENCE_NODE},
	[TOP_LIMITS] = {"limits", OPT_NODE, .kind = YAML_MAPPING_NODE},
	[TOP_STREAMS] = {"streams", OPT_NODE, .kind = YAML_SEQUENCE_NODE,
			 .flags = OPT_F_REQUIRED},
	[TOP_ATTRS] = {"attrs", OPT_NODE, .kind = YAML_MAPPING_NODE},
};

static const struct enum_name driver_names[] = {
	{"sec2", SCHEMA_DRIVER_SEC2},
	{"family", SCHEMA_DRIVER_FAMILY},
	{NULL, 0},
};

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)
#define DAY (86400 * SEC)

/* directory, file and swmr have computed defaults (see load_output). */
enum {
	OUT_DIRECTORY,
	OUT_FILE,
	OUT_ROLL,
	OUT_DRIVER,
	OUT_MEMBER_SIZE,
	OUT_SWMR,
	OUT_FLUSH,
	OUT_MIN_FREE,
	OUT_TIME_WINDOW,
	OUT_N
};
static const struct opt output_opts[OUT_N] = {
	[OUT_DIRECTORY] = {"directory", OPT_STRING, offsetof(struct schema_output, directory)},
	[OUT_FILE] = {"file", OPT_TEMPLATE, offsetof(struct schema_output, file)},
	[OUT_ROLL] = {"roll", OPT_NODE, .kind = YAML_MAPPING_NODE},
	[OUT_DRIVER] = {"driver", OPT_ENUM, offsetof(struct schema_output, driver), "sec2",
			.enums = driver_names},
	[OUT_MEMBER_SIZE] = {"member_size", OPT_SIZE, offsetof(struct schema_output, member_size),
			     .min = MiB, .max = SCHEMA_SIZE_MAX},
	[OUT_SWMR] = {"swmr", OPT_BOOL, offsetof(struct schema_output, swmr)},
	[OUT_FLUSH] = {"flush", OPT_DURATION, offsetof(struct schema_output, flush_ns), "1s",
		       .min = MS, .max = 3600 * SEC},
	[OUT_MIN_FREE] = {"min_free", OPT_SIZE, offsetof(struct schema_output, min_free),
			  "64MiB", .min = 0, .max = SCHEMA_SIZE_MAX},
	[OUT_TIME_WINDOW] = {"time_window", OPT_NODE, .kind = YAML_MAPPING_NODE},
};

/* Plausible timestamps around the receive time (docs/schema.md): by
 * default wide enough never to flag real back-filled data or a clock off
 * by hours (time zones), narrow enough to catch 1970 (seconds or
 * milliseconds sent to a nanosecond listener, a clock never set) and 2100. */
enum { TW_PAST, TW_FUTURE, TW_REJECT, TW_N };
static const struct opt time_window_opts[TW_N] = {
	[TW_PAST] = {"past", OPT_DURATION, offsetof(struct schema_output, time_past_ns), "3650d",
		     .min = SEC, .max = 100 * 366 * DAY},
	[TW_FUTURE] = {"future", OPT_DURATION, offsetof(struct schema_output, time_future_ns),
		       "1d", .min = SEC, .max = 100 * 366 * DAY},
	[TW_REJECT] = {"reject", OPT_BOOL, offsetof(struct schema_output, time_reject), "false"},
};

enum { ROLL_EVERY, ROLL_SIZE, ROLL_N };
static const struct opt roll_opts[ROLL_N] = {
	[ROLL_EVERY] = {"every", OPT_DURATION, offsetof(struct schema_output, roll_every_ns),
			.min = SEC, .max = 366 * DAY},
	[ROLL_SIZE] = {"size", OPT_SIZE, offsetof(struct schema_output, roll_size), .min = MiB,
		       .max = SCHEMA_SIZE_MAX},
};

enum { CONTROL_SOCKET, CONTROL_N };
static const struct opt control_opts[CONTROL_N] = {
	[CONTROL_SOCKET] = {"socket", OPT_STRING, offsetof(struct schema_control, socket)},
};

/* max_frame is capped by the frame header's 32-bit payload_len. */
enum { LIM_GROUPS, LIM_BUFFER, LIM_FRAME, LIM_LINE, LIM_CONNECTIONS, LIM_N };
static const struct opt limits_opts[LIM_N] = {
	[LIM_GROUPS] = {"max_groups", OPT_UINT, offsetof(struct schema_limits, max_groups),
			"10000", .min = 1, .max = 10000000},
	[LIM_BUFFER] = {"max_buffer", OPT_SIZE, offsetof(struct schema_limits, max_buffer),
			"512MiB", .min = MiB, .max = SCHEMA_SIZE_MAX},
	[LIM_FRAME] = {"max_frame", OPT_SIZE, offsetof(struct schema_limits, max_frame), "64MiB",
		       .min = KiB, .max = 2 * GiB},
	[LIM_LINE] = {"max_line", OPT_SIZE, offsetof(struct schema_limits, max_line), "64KiB",
		      .min = 256, .max = 64 * MiB},
	[LIM_CONNECTIONS] = {"max_connections", OPT_UINT,
			     offsetof(struct schema_limits, max_connections), "256", .min = 1,
			     .max = 100000},
};

static const struct enum_name protocol_names[] = {
	{"line", SCHEMA_PROTOCOL_LINE},
	{"frame", SCHEMA_PROTOCOL_FRAME},
	{"http", SCHEMA_PROTOCOL_HTTP},
	{"metrics", SCHEMA_PROTOCOL_METRICS},
	{NULL, 0},
};

const char *schema_protocol_name(enum schema_protocol protocol)
{
	for (const struct enum_name *e = protocol_names; e->name; e++)
		if ((int)e->value == (int)protocol)
			return e->name;
	return "unknown";
}
static const struct enum_name transport_names[] = {
	{"tcp", SCHEMA_TRANSPORT_TCP},
	{"udp", SCHEMA_TRANSPORT_UDP},
	{"unix", SCHEMA_TRANSPORT_UNIX},
	{NULL, 0},
};
static const struct enum_name precision_names[] = {
	{"ns", LINE_PRECISION_NS},
	{"us", LINE_PRECISION_US},
	{"ms", LINE_PRECISION_MS},
	{"s", LINE_PRECISION_S},
	{"m", LINE_PRECISION_M},
	{"h", LINE_PRECISION_H},
	{NULL, 0},
};

enum { LISTEN_PROTOCOL, LISTEN_TRANSPORT, LISTEN_ADDRESS, LISTEN_PRECISION, LISTEN_TOKEN,
       LISTEN_ALLOW, LISTEN_MAX_CONNECTIONS, LISTEN_MAX_PER_PEER, LISTEN_AUTH_TIMEOUT,
       LISTEN_IDLE_TIMEOUT, LISTEN_MAX_BODY, LISTEN_RETRY_AFTER,
       LISTEN_N };
static const struct opt listen_opts[LISTEN_N] = {
	[LISTEN_PROTOCOL] = {"protocol", OPT_ENUM, offsetof(struct schema_listen, protocol),
			     .enums = protocol_names, .flags = OPT_F_REQUIRED},
	[LISTEN_TRANSPORT] = {"transport", OPT_ENUM, offsetof(struct schema_listen, transport),
			      .enums = transport_names, .flags = OPT_F_REQUIRED},
	[LISTEN_ADDRESS] = {"address", OPT_STRING, offsetof(struct schema_listen, address),
			    .flags = OPT_F_REQUIRED},
	[LISTEN_PRECISION] = {"precision", OPT_ENUM, offsetof(struct schema_listen, precision),
			      "ns", .enums = precision_names},
	[LISTEN_TOKEN] = {"token", OPT_STRING, offsetof(struct schema_listen, token)},
	[LISTEN_ALLOW] = {"allow", OPT_NODE, .kind = YAML_SEQUENCE_NODE},
	/* not given: derived from limits.max_connections (derive_listener_limits) */
	[LISTEN_MAX_CONNECTIONS] = {"max_connections", OPT_UINT,
				    offsetof(struct schema_listen, max_connections), NULL, .min = 1,
				    .max = 100000},
	[LISTEN_MAX_PER_PEER] = {"max_per_peer", OPT_UINT,
				 offsetof(struct schema_listen, max_per_peer), "64", .min = 1,
				 .max = 100000},
	[LISTEN_AUTH_TIMEOUT] = {"auth_timeout", OPT_DURATION,
				 offsetof(struct schema_listen, auth_timeout_ns), "10s",
				 .min = 100 * MS, .max = 3600 * SEC},
	[LISTEN_IDLE_TIMEOUT] = {"idle_timeout", OPT_DURATION,
				 offsetof(struct schema_listen, idle_timeout_ns), "15min",
				 .min = SEC, .max = 30 * DAY},
	/* InfluxDB 1.x's max-body-size is 25 MB; Telegraf's default batch
	 * (1000 lines) is well under 1 MiB. */
	[LISTEN_MAX_BODY] = {"max_body", OPT_SIZE, offsetof(struct schema_listen, max_body),
			     "32MiB", .min = KiB, .max = GiB},
	/* not given: no Retry-After, as InfluxDB; clients then use their own
	 * backoff (Telegraf: its next flush) */
	[LISTEN_RETRY_AFTER] = {"retry_after", OPT_DURATION,
				offsetof(struct schema_listen, retry_after_ns), NULL, .min = SEC,
				.max = 3600 * SEC},
};

static const char *const file_placeholders[] = {"name", "host", "shard", "date", "time",
						 "seq",  "run",  "member"};

/* File templates: known placeholders, a plain file name, {seq} present. */
static int check_file_template(struct loader *ld, const struct schema_output *out,
			       yaml_node_t *at)
{
	const struct schema_template *file = &out->file;
	size_t nknown = sizeof(file_placeholders) / sizeof(file_placeholders[0]);

	for (size_t i = 0; i < file->nparts; i++) {
		const struct schema_template_part *part = &file->parts[i];
		if (part->placeholder) {
			size_t k = 0;
			while (k < nknown && strcmp(part->text, file_placeholders[k]) != 0)
				k++;
			if (k == nknown)
				return loader_fail(ld, at,
						   "output.file: unknown placeholder '{%s}' (expected "
						   "{name} {host} {shard} {date} {time} {seq} {run} "
						   "{member})",
						   part->text);
		} else if (strchr(part->text, '/')) {
			return loader_fail(ld, at,
					   "output.file: expected a file name without '/' "
					   "(directories go in output.directory), got '%s'",
					   file->text);
		} else if (strchr(part->text, '%')) {
			/* HDF5's family driver takes the member number as a
			 * printf %d in the name; a literal % would be misread. */
			return loader_fail(ld, at, "output.file: '%%' is not allowed in file names");
		}
	}
	if (!schema_template_has(file, "seq"))
		return loader_fail(ld, at,
				   "output.file: the file name must contain {seq}, so that a new "
				   "file never overwrites an old one");
	return 0;
}

static int default_string(struct loader *ld, yaml_node_t *at, char **dst, const char *fmt,
			  const char *arg)
{
	char buf[256];
	snprintf(buf, sizeof(buf), fmt, arg);
	*dst = schema_strdup(buf);
	return *dst ? 0 : loader_nomem(ld, at);
}

/* Family and SWMR are exclusive in HDF5; {member} and member_size only
 * mean something with family, and family cannot work without them. */
static int check_driver(struct loader *ld, const struct schema_output *out,
			const struct seen *seen, yaml_node_t *at)
{
	yaml_node_t *file_at = seen[OUT_FILE].value ? seen[OUT_FILE].value : at;
	bool member = schema_template_has(&out->file, "member");

	if (out->driver == SCHEMA_DRIVER_FAMILY) {
		if (!seen[OUT_MEMBER_SIZE].key)
			return loader_fail(ld, seen[OUT_DRIVER].value,
					   "output.driver: family needs output.member_size (the "
					   "size of each member file)");
		if (!member)
			return loader_fail(ld, file_at,
					   "output.file: the family driver needs {member} in the "
					   "file name (the member number)");
		if (seen[OUT_SWMR].key && out->swmr)
			return loader_fail(ld, seen[OUT_SWMR].value,
					   "output.swmr: SWMR is not available with the family "
					   "driver (HDF5 allows one or the other)");
		return 0;
	}
	if (seen[OUT_MEMBER_SIZE].key)
		return loader_fail(ld, seen[OUT_MEMBER_SIZE].key,
				   "output.member_size: only used with driver: family");
	if (member)
		return loader_fail(ld, file_at,
				   "output.file: {member} is only used with driver: family");
	return 0;
}

static int load_output(struct loader *ld, struct schema *schema, yaml_node_t *node,
		       yaml_node_t *root)
{
	struct schema_output *out = &schema->output;
	struct seen seen[OUT_N] = {0}, roll_seen[ROLL_N] = {0}, window_seen[TW_N] = {0};
	yaml_node_t *at = node ? node : root;
	int err;

	if (node) {
		err = loader_walk(ld, node, output_opts, OUT_N, out, seen, "output", "in output");
		if (err)
			return err;
	}
	yaml_node_t *roll = seen[OUT_ROLL].value;
	if (roll) {
		err = loader_walk(ld, roll, roll_opts, ROLL_N, out, roll_seen, "output.roll",
				  "in output.roll");
		if (err)
			return err;
		if (!roll_seen[ROLL_EVERY].key && !roll_seen[ROLL_SIZE].key)
			return loader_fail(ld, roll,
					   "output.roll: expected every (a duration) and/or size");
	}
	yaml_node_t *window = seen[OUT_TIME_WINDOW].value;
	if (window) {
		err = loader_walk(ld, window, time_window_opts, TW_N, out, window_seen,
				  "output.time_window", "in output.time_window");
		if (err)
			return err;
	}
	err = loader_finish(ld, window ? window : at, time_window_opts, TW_N, out, window_seen,
			    "output.time_window");
	if (!err)
		err = loader_finish(ld, at, output_opts, OUT_N, out, seen, "output");
	if (err)
		return err;
	if (!out->directory) {
		err = default_string(ld, at, &out->directory, "data/%s", schema->name);
		if (err)
			return err;
	} else if (strpbrk(out->directory, "{}")) {
		return loader_fail(ld, seen[OUT_DIRECTORY].value,
				   "output.directory: placeholders are not expanded here (only "
				   "in output.file), got '%s'", out->directory);
	}
	if (!seen[OUT_FILE].key) {
		char why[128];
		const char *def = out->driver == SCHEMA_DRIVER_FAMILY
					  ? "{name}-{date}-{time}-{seq}-{member}.h5"
					  : "{name}-{date}-{time}-{seq}.h5";
		if (schema_template_parse(def, &out->file, why, sizeof(why)))
			return loader_nomem(ld, at);
	} else {
		err = check_file_template(ld, out, seen[OUT_FILE].value);
		if (err)
			return err;
	}
	if (!seen[OUT_SWMR].key)
		out->swmr = out->driver == SCHEMA_DRIVER_SEC2;
	return check_driver(ld, out, seen, at);
}

static int load_control(struct loader *ld, struct schema *schema, yaml_node_t *node)
{
	struct seen seen[CONTROL_N] = {0};
	int err;

	if (!node)
		return 0;
	err = loader_walk(ld, node, control_opts, CONTROL_N, &schema->control, seen, "control",
			  "in control");
	if (err)
		return err;
	if (schema->control.socket && strlen(schema->control.socket) > UNIX_PATH_MAX_LEN)
		return loader_fail(ld, seen[CONTROL_SOCKET].value,
				   "control.socket: path is too long for a Unix socket (at most "
				   "%d bytes)", UNIX_PATH_MAX_LEN);
	return 0;
}

static int load_limits(struct loader *ld, struct schema *schema, yaml_node_t *node,
		       yaml_node_t *root)
{
	struct schema_limits *limits = &schema->limits;
	struct seen seen[LIM_N] = {0};
	int err;

	if (node) {
		err = loader_walk(ld, node, limits_opts, LIM_N, limits, seen, "limits",
				  "in limits");
		if (err)
			return err;
	}
	err = loader_finish(ld, node ? node : root, limits_opts, LIM_N, limits, seen, "limits");
	if (err)
		return err;
	/* One frame or line must fit in the buffer, or it could never be
	 * accepted once back-pressure starts. */
	if (limits->max_frame > limits->max_buffer)
		return loader_fail(ld, seen[LIM_FRAME].value ? seen[LIM_FRAME].value
							     : seen[LIM_BUFFER].value,
				   "limits.max_frame: must not exceed limits.max_buffer");
	if (limits->max_line > limits->max_buffer)
		return loader_fail(ld, seen[LIM_LINE].value ? seen[LIM_LINE].value
							    : seen[LIM_BUFFER].value,
				   "limits.max_line: must not exceed limits.max_buffer");
	return 0;
}

static int token_valid(const char *token)
{
	if (strlen(token) > SCHEMA_TOKEN_MAX)
		return 0;
	for (const char *p = token; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

/* A dual-stack listener ([::]) sees an IPv4 client as ::ffff:a.b.c.d, and
 * net_allowed() matches such a peer against the IPv4 rules. A rule written
 * in the mapped form names that same IPv4 network, so it is stored as one;
 * left IPv6 it would pass `h5rec check` and never match anyone. Host bits
 * are already refused, so a mapped rule always has a prefix of 96 or more. */
static void unmap_allow(struct schema_allow *allow)
{
	static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

	if (allow->family != AF_INET6 || allow->prefix_len < 96 ||
	    memcmp(allow->addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) != 0)
		return;
	memmove(allow->addr, allow->addr + sizeof(v4_mapped_prefix), 4);
	memset(allow->addr + 4, 0, sizeof(allow->addr) - 4);
	allow->family = AF_INET;
	allow->prefix_len -= 96;
}

static int load_allow(struct loader *ld, struct schema_listen *listen, yaml_node_t *list,
		      const char *path)
{
	size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);

	if (listen->transport == SCHEMA_TRANSPORT_UNIX)
		return loader_fail(ld, list,
				   "%s.allow: not used with transport unix (file permissions "
				   "decide who may connect)", path);
	if (n == 0)
		return loader_fail(ld, list,
				   "%s.allow: expected a list of addresses or networks (leave "
				   "allow out to accept every client)", path);
	listen->allow = schema_calloc(n, sizeof(*listen->allow));
	if (!listen->allow)
		return loader_nomem(ld, list);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = loader_node(ld, list->data.sequence.items.start[i]);
		const char *text = loader_text(item);
		char why[200];
		if (!text)
			return loader_fail(ld, item, "%s.allow[%zu]: expected an address or network, "
					   "got %s", path, i, loader_kind(item));
		int err = schema_parse_allow(text, &listen->allow[i], why, sizeof(why));
		if (err == -ENOMEM)
			return loader_nomem(ld, item);
		if (err)
			return loader_fail(ld, item, "%s.allow[%zu]: %s", path, i, why);
		unmap_allow(&listen->allow[i]);
		listen->nallow++;
	}
	return 0;
}

static int load_address(struct loader *ld, struct schema_listen *listen, yaml_node_t *at,
			const char *path)
{
	char why[200], shown[80];

	if (listen->transport == SCHEMA_TRANSPORT_UNIX) {
		if (strlen(listen->address) > UNIX_PATH_MAX_LEN)
			return loader_fail(ld, at, "%s.address: path is too long for a Unix socket "
					   "(at most %d bytes)", path, UNIX_PATH_MAX_LEN);
		listen->path = schema_strdup(listen->address);
		return listen->path ? 0 : loader_nomem(ld, at);
	}
	int err = schema_parse_hostport(listen->address, &listen->host, &listen->port, why,
					sizeof(why));
	if (err == -ENOMEM)
		return loader_nomem(ld, at);
	if (err)
		return loader_fail(ld, at,
				   "%s.address: expected IPV4:PORT, [IPV6]:PORT or PORT, got '%s' "
				   "(%s)", path, loader_shown(listen->address, shown, sizeof(shown)),
				   why);
	return 0;
}

static int load_one_listen(struct loader *ld, struct schema_listen *listen, yaml_node_t *item,
			   const char *path, yaml_node_t **address)
{
	struct seen seen[LISTEN_N] = {0};
	char where[64];
	int err;

	snprintf(where, sizeof(where), "in %s", path);
	if (item->type != YAML_MAPPING_NODE)
		return loader_fail(ld, item, "%s: expected a mapping (protocol, transport, "
				   "address), got %s", path, loader_kind(item));
	listen->pos.line = (int)item->start_mark.line + 1;
	listen->pos.col = (int)item->start_mark.column + 1;
	err = loader_walk(ld, item, listen_opts, LISTEN_N, listen, seen, path, where);
	if (!err)
		err = loader_finish(ld, item, listen_opts, LISTEN_N, listen, seen, path);
	if (!err) {
		*address = seen[LISTEN_ADDRESS].value;
		err = load_address(ld, listen, *address, path);
	}
	if (err)
		return err;
	if (seen[LISTEN_PRECISION].key && listen->protocol != SCHEMA_PROTOCOL_LINE)
		return loader_fail(ld, seen[LISTEN_PRECISION].key,
				   "%s.precision: only line listeners take a precision (frame "
				   "timestamps are always ns; an HTTP request names its own)", path);
	if ((listen->protocol == SCHEMA_PROTOCOL_HTTP || listen->protocol == SCHEMA_PROTOCOL_METRICS) &&
	    listen->transport == SCHEMA_TRANSPORT_UDP)
		return loader_fail(ld, seen[LISTEN_TRANSPORT].value,
				   "%s.transport: %s listeners speak HTTP, which needs a connection: "
				   "use tcp or unix", path, schema_protocol_name(listen->protocol));
	if (seen[LISTEN_MAX_BODY].key && listen->protocol != SCHEMA_PROTOCOL_HTTP)
		return loader_fail(ld, seen[LISTEN_MAX_BODY].key,
				   "%s.max_body: only http listeners take a max_body", path);
	if (seen[LISTEN_RETRY_AFTER].key && listen->protocol != SCHEMA_PROTOCOL_HTTP)
		return loader_fail(ld, seen[LISTEN_RETRY_AFTER].key,
				   "%s.retry_after: only http listeners take a retry_after", path);
	if (seen[LISTEN_TOKEN].key) {
		if (listen->protocol != SCHEMA_PROTOCOL_FRAME &&
		    listen->protocol != SCHEMA_PROTOCOL_HTTP)
			return loader_fail(ld, seen[LISTEN_TOKEN].key,
					   "%s.token: only frame and http listeners take a token "
					   "(checked in the HELLO frame or the Authorization header)",
					   path);
		if (listen->transport == SCHEMA_TRANSPORT_UDP)
			return loader_fail(ld, seen[LISTEN_TOKEN].key,
					   "%s.token: UDP has no connection to present a token "
					   "on; use tcp or unix, or an allow list", path);
		if (!token_valid(listen->token))
			return loader_fail(ld, seen[LISTEN_TOKEN].value,
					   "%s.token: expected at most " SCHEMA_TOKEN_MAX_TEXT " printable characters "
					   "without spaces, quotes or backslashes", path);
	}
	if (listen->transport == SCHEMA_TRANSPORT_UDP) {
		static const int stream_only[] = {LISTEN_MAX_CONNECTIONS, LISTEN_MAX_PER_PEER,
						  LISTEN_AUTH_TIMEOUT, LISTEN_IDLE_TIMEOUT};
		for (size_t i = 0; i < sizeof(stream_only) / sizeof(stream_only[0]); i++)
			if (seen[stream_only[i]].key)
				return loader_fail(ld, seen[stream_only[i]].key,
						   "%s.%s: UDP has no connections", path,
						   listen_opts[stream_only[i]].name);
	}
	if (seen[LISTEN_MAX_PER_PEER].key && listen->transport == SCHEMA_TRANSPORT_UNIX)
		return loader_fail(ld, seen[LISTEN_MAX_PER_PEER].key,
				   "%s.max_per_peer: a Unix socket's peers have no address "
				   "(its file permissions say who may connect)", path);
	if (seen[LISTEN_ALLOW].value)
		return load_allow(ld, listen, seen[LISTEN_ALLOW].value, path);
	return 0;
}

/* A listener's max_connections not given: all of limits.max_connections
 * with one stream listener, three quarters of it with more, so that a flood
 * on one cannot shut the others out. */
static void derive_listener_limits(struct schema *schema)
{
	size_t streams = 0;
	for (size_t i = 0; i < schema->nlisten; i++)
		streams += schema->listen[i].transport != SCHEMA_TRANSPORT_UDP;
	for (size_t i = 0; i < schema->nlisten; i++) {
		struct schema_listen *l = &schema->listen[i];
		uint64_t all = schema->limits.max_connections;
		if (!l->max_connections)
			l->max_connections = streams > 1 ? (all * 3 + 3) / 4 : all;
		if (l->max_connections > all)
			l->max_connections = all;
	}
}

static bool same_endpoint(const struct schema_listen *a, const struct schema_listen *b)
{
	if (a->transport != b->transport)
		return false;
	if (a->transport == SCHEMA_TRANSPORT_UNIX)
		return strcmp(a->path, b->path) == 0;
	return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static int load_listen(struct loader *ld, struct schema *schema, yaml_node_t *list)
{
	size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);

	if (n == 0)
		return loader_fail(ld, list, "listen: expected at least one listener");
	schema->listen = schema_calloc(n, sizeof(*schema->listen));
	if (!schema->listen)
		return loader_nomem(ld, list);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = loader_node(ld, list->data.sequence.items.start[i]);
		yaml_node_t *address = NULL;
		char path[32];
		snprintf(path, sizeof(path), "listen[%zu]", i);
		schema->nlisten++;
		int err = load_one_listen(ld, &schema->listen[i], item, path, &address);
		if (err)
			return err;
		for (size_t j = 0; j < i; j++) {
			if (same_endpoint(&schema->listen[i], &schema->listen[j]))
				return loader_fail(ld, address,
						   "%s.address: '%s' is already used by listen[%zu]",
						   path, schema->listen[i].address, j);
		}
	}
	return 0;
}

/* Every listener must feed some stream and every stream some listener:
 * either mismatch means data that can never be recorded. */
static int check_protocols(struct loader *ld, const struct schema *schema, yaml_node_t *listen,
			   yaml_node_t *sources)
{
	static const char *const names[] = {"line", "frame"};

	for (int protocol = SCHEMA_PROTOCOL_LINE; protocol <= SCHEMA_PROTOCOL_FRAME; protocol++) {
		size_t listener = schema->nlisten;
		const struct schema_stream *stream = NULL;
		size_t source = schema->nsources;
		for (size_t i = 0; i < schema->nlisten && listener == schema->nlisten; i++)
			if ((int)schema->listen[i].protocol == protocol ||
			    (protocol == SCHEMA_PROTOCOL_LINE &&
			     schema->listen[i].protocol == SCHEMA_PROTOCOL_HTTP))
				listener = i;
		for (size_t i = 0; i < schema->nsources && source == schema->nsources; i++)
			if ((int)schema->sources[i].protocol == protocol)
				source = i;
		for (size_t i = 0; i < schema->nstreams && !stream; i++)
			if ((protocol == SCHEMA_PROTOCOL_FRAME) == schema->streams[i].match_is_key)
				stream = &schema->streams[i];
		if (listener < schema->nlisten && !stream)
			return loader_fail(ld, loader_node(ld, listen->data.sequence.items.start[listener]),
					   "listen[%zu]: no stream takes %s protocol data (give a "
					   "stream a match.%s)", listener, names[protocol],
					   protocol == SCHEMA_PROTOCOL_LINE ? "measurement" : "key");
		if (source < schema->nsources && !stream)
			return loader_fail(ld, loader_node(ld, sources->data.sequence.items.start[source]),
					   "sources[%zu]: no stream takes %s protocol data (give a "
					   "stream a match.%s)", source, names[protocol],
					   protocol == SCHEMA_PROTOCOL_LINE ? "measurement" : "key");
		if (stream && listener == schema->nlisten && source == schema->nsources)
			return loader_fail(ld, listen ? listen : sources,
					   "%s: stream '%s' takes %s protocol data but no "
					   "listener has protocol: %s%s%s",
					   listen ? "listen" : "sources", stream->name, names[protocol],
					   names[protocol],
					   protocol == SCHEMA_PROTOCOL_LINE ? " or http" : "",
					   schema->nsources ? ", and no source takes it" : "");
	}
	return 0;
}

static int load_root(struct loader *ld, struct schema *schema, yaml_node_t *root)
{
	struct seen seen[TOP_N] = {0};
	int err;

	if (root->type != YAML_MAPPING_NODE)
		return loader_fail(ld, root, "expected a mapping of name, output, listen, streams, "
				   "got %s", loader_kind(root));
	err = loader_walk(ld, root, top_opts, TOP_N, schema, seen, "", "at the top level");
	if (!err)
		err = loader_finish(ld, root, top_opts, TOP_N, schema, seen, "");
	if (!err)
		err = load_output(ld, schema, seen[TOP_OUTPUT].value, root);
	if (!err)
		err = load_control(ld, schema, seen[TOP_CONTROL].value);
	if (!err)
		err = load_limits(ld, schema, seen[TOP_LIMITS].value, root);
	if (!err && !seen[TOP_LISTEN].value && !seen[TOP_SOURCES].value)
		err = loader_fail(ld, root, "missing required key 'listen' at the top level "
				  "(or 'sources': a recorder needs at least one of them)");
	if (!err && seen[TOP_LISTEN].value)
		err = load_listen(ld, schema, seen[TOP_LISTEN].value);
	if (!err && seen[TOP_SOURCES].value)
		err = schema_load_sources(ld, schema, seen[TOP_SOURCES].value);
	if (!err)
		err = schema_load_streams(ld, schema, seen[TOP_STREAMS].value);
	if (!err)
		err = check_protocols(ld, schema, seen[TOP_LISTEN].value, seen[TOP_SOURCES].value);
	if (!err)
		err = schema_load_attrs(ld, seen[TOP_ATTRS].value, "", SCHEMA_ATTRS_ROOT, NULL,
					&schema->attrs, &schema->nattrs);
	if (!err)
		derive_listener_limits(schema);
	return err;
}

static int syntax_error(struct loader *ld, const yaml_parser_t *parser)
{
	yaml_mark_t mark = parser->problem_mark;
	const char *problem = parser->problem ? parser->problem : "cannot parse";

	if (parser->error == YAML_MEMORY_ERROR)
		return loader_fail_mark(ld, mark, "out of memory"), -ENOMEM;
	if (parser->context)
		return loader_fail_mark(ld, mark, "YAML syntax error: %s %s", problem,
					parser->context);
	return loader_fail_mark(ld, mark, "YAML syntax error: %s", problem);
}

/*
 * Refuse nesting deeper than SCHEMA_DEPTH_MAX, at the first mapping or list
 * past the bound, before yaml_parser_load builds anything. libyaml's event
 * API scans lazily, so this pass reads only up to that node (plus libyaml's
 * short lookahead) and no nesting costs more than SCHEMA_DEPTH_MAX levels
 * do. It stops quietly at a syntax error or lack of memory: the load that
 * follows meets the same problem at the same place, no deeper than here,
 * and reports it as it always has.
 */
static int check_depth(struct loader *ld, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_event_t event;
	unsigned depth = 0;
	int err = 0;

	if (!yaml_parser_initialize(&parser))
		return loader_fail_mark(ld, (yaml_mark_t){0, 0, 0}, "out of memory"), -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!err && yaml_parser_parse(&parser, &event)) {
		yaml_event_type_t type = event.type;
		if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
			if (++depth > SCHEMA_DEPTH_MAX)
				err = loader_fail_mark(ld, event.start_mark,
						       "mappings and lists nested more than %d "
						       "deep (a schema needs 5)",
						       SCHEMA_DEPTH_MAX);
		} else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
			depth--;
		}
		yaml_event_delete(&event);
		if (type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&parser);
	return err;
}

/* Parse with libyaml; exactly one document is allowed. */
static int parse_document(struct loader *ld, const char *text, size_t len, bool *have_doc)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	int err = check_depth(ld, text, len);

	if (err)
		return err;
	if (!yaml_parser_initialize(&parser))
		return loader_fail_mark(ld, (yaml_mark_t){0, 0, 0}, "out of memory"), -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &ld->doc)) {
		err = syntax_error(ld, &parser);
		goto out;
	}
	*have_doc = true;
	if (!yaml_document_get_root_node(&ld->doc)) {
		err = loader_fail_mark(ld, (yaml_mark_t){0, 0, 0}, "the schema is empty");
		goto out;
	}
	if (!yaml_parser_load(&parser, &extra)) {
		err = syntax_error(ld, &parser);
		goto out;
	}
	yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
	if (extra_root)
		err = loader_fail(ld, extra_root,
				  "expected one YAML document, found a second one here");
	yaml_document_delete(&extra);
out:
	yaml_parser_delete(&parser);
	return err;
}

int schema_load_string(const char *text, size_t len, const char *display_name,
		       struct schema **out, struct schema_error *err)
{
	struct loader ld = {.file = display_name ? display_name : "<schema>", .err = err};
	bool have_doc = false;
	int rc;

	*out = NULL;
	err->message[0] = '\0';
	struct schema *schema = schema_calloc(1, sizeof(*schema));
	if (!schema) {
		snprintf(err->message, sizeof(err->message), "%s: out of memory", ld.file);
		return -ENOMEM;
	}
	schema->path = schema_strdup(ld.file);
	schema->source = schema_malloc(len + 1);
	if (!schema->path || !schema->source) {
		snprintf(err->message, sizeof(err->message), "%s: out of memory", ld.file);
		rc = -ENOMEM;
		goto out;
	}
	memcpy(schema->source, text, len);
	schema->source[len] = '\0';
	schema->source_len = len;
	if (memchr(text, '\0', len)) {
		rc = loader_fail_mark(&ld, (yaml_mark_t){0, 0, 0},
				      "the schema contains a NUL byte (not a text file?)");
		goto out;
	}
	rc = parse_document(&ld, text, len, &have_doc);
	if (!rc)
		rc = load_root(&ld, schema, yaml_document_get_root_node(&ld.doc));
out:
	if (have_doc)
		yaml_document_delete(&ld.doc);
	if (rc) {
		schema_free(schema);
		return rc;
	}
	*out = schema;
	return 0;
}

/* Read a whole file of at most SCHEMA_FILE_MAX bytes; works for pipes too. */
static int read_file(FILE *f, char **text, size_t *len)
{
	size_t cap = 0, used = 0;
	char *buf = NULL;

	errno = 0;
	for (;;) {
		if (used == cap) {
			if (cap > SCHEMA_FILE_MAX) {
				free(buf);
				return -EFBIG;
			}
			cap = cap ? cap * 2 : 64 * 1024;
			char *grown = schema_realloc(buf, cap + 1);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
		}
		size_t n = fread(buf + used, 1, cap - used, f);
		used += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		int rc = errno ? -errno : -EIO;
		free(buf);
		return rc;
	}
	if (used > SCHEMA_FILE_MAX) {
		free(buf);
		return -EFBIG;
	}
	*text = buf;
	*len = used;
	return 0;
}

int schema_load_file(const char *path, struct schema **out, struct schema_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		rc = -errno;
		snprintf(err->message, sizeof(err->message), "%s: cannot open: %s", path,
			 strerror(-rc));
		return rc;
	}
	rc = read_file(f, &text, &len);
	fclose(f);
	if (rc == -EFBIG)
		snprintf(err->message, sizeof(err->message),
			 "%s: larger than %u bytes, not a schema", path, SCHEMA_FILE_MAX);
	else if (rc)
		snprintf(err->message, sizeof(err->message), "%s: cannot read: %s", path,
			 strerror(-rc));
	if (rc)
		return rc;
	rc = schema_load_string(text, len, path, out, err);
	free(text);
	return rc;
}

static void listen_release(struct schema_listen *listen)
{
	loader_release(listen_opts, LISTEN_N, listen);
	free(listen->host);
	free(listen->path);
	for (size_t i = 0; i < listen->nallow; i++)
		free(listen->allow[i].text);
	free(listen->allow);
}

void schema_free(struct schema *schema)
{
	if (!schema)
		return;
	for (size_t i = 0; i < schema->nlisten; i++)
		listen_release(&schema->listen[i]);
	free(schema->listen);
	for (size_t i = 0; i < schema->nsources; i++)
		schema_source_release(&schema->sources[i]);
	free(schema->sources);
	for (size_t i = 0; i < schema->nstreams; i++)
		schema_stream_release(&schema->streams[i]);
	free(schema->streams);
	schema_attrs_free(schema->attrs, schema->nattrs);
	loader_release(output_opts, OUT_N, &schema->output);
	loader_release(control_opts, CONTROL_N, &schema->control);
	free(schema->name);
	free(schema->path);
	free(schema->source);
	free(schema);
}

const struct schema_stream *schema_find_stream(const struct schema *schema, const char *name)
{
	for (size_t i = 0; i < schema->nstreams; i++)
		if (strcmp(schema->streams[i].name, name) == 0)
			return &schema->streams[i];
	return NULL;
}

const struct schema_channel *schema_find_channel(const struct schema_stream *stream,
						 const char *name)
{
	for (size_t i = 0; i < stream->nchannels; i++)
		if (strcmp(stream->channels[i].name, name) == 0)
			return &stream->channels[i];
	return NULL;
}
