/*
 * schema.h - the validated in-memory model of one recorder schema (SPEC §2).
 *
 * A schema is loaded once at startup from YAML (libyaml does the parsing) and
 * is immutable afterwards, so any thread may read it without locking. Every
 * value in the model is resolved: defaults are applied, sizes and durations
 * are converted to bytes and nanoseconds, templates are split into parts,
 * and every semantic rule of SPEC §2 has been checked. Code that consumes a
 * struct schema never has to re-validate it.
 *
 * Errors follow the project convention: functions return 0 or a negative
 * errno-style code, and a rejected schema fills a struct schema_error with
 * one "FILE:LINE:COL: message" line naming the key and what was expected.
 */
#ifndef H5REC_SCHEMA_H
#define H5REC_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "line.h"

/* A position in the schema source, 1-based, for messages about it. */
struct schema_pos {
	int line;
	int col;
};

/* A template such as "weather-{date}-{seq}.h5" or "dust/{channel}", split
 * into literal text and placeholder names. */
struct schema_template_part {
	bool placeholder; /* true: text is a placeholder name without braces */
	char *text;
};

struct schema_template {
	char *text; /* the template as written */
	size_t nparts;
	struct schema_template_part *parts;
};

/* Most placeholders in one group or frame-key template (the loader rejects
 * more), so routing can keep the values in a fixed array. */
#define SCHEMA_MAX_PLACEHOLDERS 16

/* Does the template use placeholder NAME? */
bool schema_template_has(const struct schema_template *tmpl, const char *name);

/*
 * Expand a template. values[i] is the value of placeholder names[i]; every
 * placeholder in the template must be among names. Writes a NUL-terminated
 * string to out. Returns the length written, -ENOENT when a placeholder has
 * no value, -ENOSPC when out is too small.
 */
long schema_template_expand(const struct schema_template *tmpl,
			    const char *const *names, const char *const *values,
			    size_t nvalues, char *out, size_t outlen);

/*
 * Does a placeholder value from the network qualify (SPEC §2):
 * [A-Za-z0-9_.-]{1,64}, not starting with '.'? Values that fail never become
 * part of a path, a group or a file name.
 */
bool schema_placeholder_value_valid(const char *value, size_t len);

enum schema_driver { SCHEMA_DRIVER_SEC2, SCHEMA_DRIVER_FAMILY };

struct schema_output {
	char *directory;
	struct schema_template file;   /* placeholders: name date time seq run member */
	int64_t roll_every_ns;         /* 0: no time-based rolling */
	uint64_t roll_size;            /* bytes; 0: no size-based rolling */
	enum schema_driver driver;     /* default sec2 */
	uint64_t member_size;          /* family only, bytes */
	bool swmr;                     /* default: true for sec2, false for family */
	int64_t flush_ns;              /* default 1 s */
	uint64_t min_free;             /* bytes kept free on the file system; 0: off */
	/* output.time_window: a row whose time is more than time_past_ns
	 * before or time_future_ns after its receive time is implausible
	 * (seconds sent to a ns listener read as 1970): counted per group,
	 * and dropped when time_reject. */
	int64_t time_past_ns;          /* default 3650 d */
	int64_t time_future_ns;        /* default 1 d */
	bool time_reject;              /* default false: count only */
};

struct schema_control {
	char *socket; /* NULL: the default chain of SPEC §7 */
};

/* What a listener speaks: line protocol, frames, InfluxDB's HTTP write API
 * (line protocol in POST bodies, plus /ping, /health and /metrics), or only
 * the Prometheus /metrics page (for a port that faces operators, not
 * sensors). */
enum schema_protocol {
	SCHEMA_PROTOCOL_LINE,
	SCHEMA_PROTOCOL_FRAME,
	SCHEMA_PROTOCOL_HTTP,
	SCHEMA_PROTOCOL_METRICS,
	SCHEMA_NPROTOCOLS
};

/* The schema's name of a protocol ("line", "frame", "http", "metrics"). */
const char *schema_protocol_name(enum schema_protocol protocol);
enum schema_transport { SCHEMA_TRANSPORT_TCP, SCHEMA_TRANSPORT_UDP, SCHEMA_TRANSPORT_UNIX };

/* One client network from an `allow` list: an address with a prefix length
 * ("127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"). */
struct schema_allow {
	int family;            /* AF_INET or AF_INET6 */
	uint8_t addr[16];      /* network byte order; 4 bytes used for AF_INET */
	unsigned prefix_len;   /* 0..32 or 0..128 */
	char *text;            /* as written */
};

/* A listener's token: at most this many printable characters. */
#define SCHEMA_TOKEN_MAX 256
#define SCHEMA_TOKEN_MAX_TEXT "256"

struct schema_listen {
	struct schema_pos pos;
	enum schema_protocol protocol;
	enum schema_transport transport;
	char *address;                  /* as written */
	char *host;                     /* tcp/udp: numeric address; unix: NULL */
	uint16_t port;                  /* tcp/udp; 0 for unix */
	char *path;                     /* unix: socket path; NULL otherwise */
	enum line_precision precision;  /* line protocol; default ns */
	char *token;                    /* frame HELLO or HTTP token; NULL: none required */
	uint64_t max_body;              /* http: decoded bytes of one request body */
	int64_t retry_after_ns;         /* http: Retry-After of a 503; 0: none */
	size_t nallow;                  /* 0: every client allowed */
	struct schema_allow *allow;
	/* Connections (stream transports): how many this listener takes (default
	 * all of limits.max_connections with one stream listener, three
	 * quarters of it with more), how many from one address (tcp; default
	 * 64), how long one may take to prove itself (its HELLO with the token,
	 * or its first byte; default 10 s) and stay silent afterwards (default
	 * 15 min). */
	uint64_t max_connections;
	uint64_t max_per_peer;
	int64_t auth_timeout_ns;
	int64_t idle_timeout_ns;
};

/* A source the recorder pulls from, beside its listeners (`sources`).
 * Messages carry exactly what a listener of `protocol` would read: frames
 * (one self-contained record per message) or a batch of lines. Only the
 * NATS JetStream backend exists; others (Kafka) add a kind. */
enum schema_source_kind { SCHEMA_SOURCE_NATS };

struct schema_source {
	struct schema_pos pos;
	enum schema_source_kind kind;
	enum schema_protocol protocol;   /* line or frame */
	enum line_precision precision;   /* line; default ns */
	size_t nservers;
	char **servers;                  /* nats://host:port URLs */
	char *stream;                    /* the JetStream stream */
	char *consumer;                  /* durable pull consumer, shared by the
					    recorders of a schema */
	size_t nsubjects;
	char **subjects;                 /* the stream's subjects, when the
					    recorder creates it; NULL: must exist */
	uint64_t replicas;               /* of a stream the recorder creates; 1 */
	uint64_t fetch_batch;            /* messages per fetch; default 64 */
	uint64_t fetch_max_bytes;        /* bytes per fetch; default 8 MiB */
	int64_t fetch_expires_ns;        /* how long one fetch waits; 1 s */
	int64_t ack_wait_ns;             /* redelivery after; default 60 s */
	uint64_t max_ack_pending;        /* unacked messages; default 1024 */
	char *credentials;               /* a .creds file; NULL: none */
};

struct schema_limits {
	uint64_t max_groups; /* default 10000 */
	uint64_t max_buffer; /* bytes, default 512 MiB */
	uint64_t max_frame;  /* bytes of frame payload, default 64 MiB */
	uint64_t max_line;   /* bytes of one line, default 64 KiB */
	uint64_t max_connections; /* open stream connections, all listeners; default 256 */
};

enum schema_layout { SCHEMA_LAYOUT_TABLE, SCHEMA_LAYOUT_RECORDS, SCHEMA_LAYOUT_STREAM };
enum schema_compression {
	SCHEMA_COMPRESSION_NONE,
	SCHEMA_COMPRESSION_DEFLATE,
	SCHEMA_COMPRESSION_LZ4,
	SCHEMA_COMPRESSION_SZIP,
};
/* szip's coding (HDF5's H5_SZIP_NN_OPTION_MASK / H5_SZIP_EC_OPTION_MASK). */
enum schema_szip_coding { SCHEMA_SZIP_NN, SCHEMA_SZIP_EC };
enum schema_unknown_fields { SCHEMA_UNKNOWN_DROP, SCHEMA_UNKNOWN_ERROR };
/* How pre-compressed chunks from senders are checked before they are
 * stored (issue 19): their checksum and structure only, or decoded whole. */
enum schema_verify_chunks { SCHEMA_VERIFY_CHECK, SCHEMA_VERIFY_DECODE };

/* A number in the type of the channel it belongs to (fill values). */
union schema_number {
	int64_t i;  /* signed integer dtypes */
	uint64_t u; /* unsigned integer dtypes */
	double f;   /* float dtypes */
};

/* A static attribute from an `attrs` mapping (top level: the root group;
 * a stream: its groups; a channel or event field: its dataset). Plain YAML
 * integers become int64 attributes, plain reals float64, everything else
 * (quoted, true/false, …) a string attribute holding the text; a list of
 * plain numbers becomes a 1-D int64 attribute, or float64 when any of them
 * is a real. */
enum schema_attr_type {
	SCHEMA_ATTR_STRING,
	SCHEMA_ATTR_INT,
	SCHEMA_ATTR_FLOAT,
	SCHEMA_ATTR_INTS,
	SCHEMA_ATTR_FLOATS,
};

struct schema_attr {
	char *name;
	enum schema_attr_type type;
	char *text;     /* STRING: the value; lists: NULL */
	int64_t i;      /* INT */
	double f;       /* FLOAT (INT: the same value) */
	size_t count;   /* INTS, FLOATS: elements (at least one) */
	int64_t *ints;  /* INTS */
	double *floats; /* FLOATS (INTS: the same values) */
};

/* A channel with every option resolved: the channel's own value, else the
 * stream's `defaults`, else the built-in default (docs/schema.md). */
struct schema_channel {
	struct schema_pos pos;
	char *name;
	enum dtype dtype;
	char *units;                 /* NULL: none */
	char *long_name;             /* NULL: none */
	bool has_dt;
	double dt;                   /* seconds, > 0 when has_dt */
	bool has_packing;            /* scale_factor or add_offset given */
	double scale_factor;         /* default 1 */
	double add_offset;           /* default 0 */
	uint64_t chunk;              /* elements along axis 0 per chunk (rows,
					records or samples, by layout) */
	enum schema_compression compression; /* default none */
	int level;                   /* deflate level 1..9, default 4 */
	uint32_t lz4_block_size;     /* lz4 block size in bytes; 0 = whole chunk */
	int szip_pixels_per_block;   /* szip: even, 2..32, default 32 */
	enum schema_szip_coding szip_coding; /* szip: default nn */
	bool shuffle;                /* default: true with deflate, else false */
	bool fletcher32;             /* default false */
	enum schema_verify_chunks verify_chunks; /* default check */
	bool has_fill;
	union schema_number fill;    /* default: NaN for floats, 0 for integers */
	bool own_time;               /* table layout only */
	size_t nattrs;               /* dataset attributes from `attrs` */
	struct schema_attr *attrs;
};

/* An event field, written `name: dtype` or `name: {dtype, units,
 * long_name, attrs}`. */
struct schema_event_field {
	char *name;
	enum dtype dtype;
	char *units;                 /* NULL: none */
	char *long_name;             /* NULL: none */
	size_t nattrs;
	struct schema_attr *attrs;
};

struct schema_stream {
	struct schema_pos pos;
	char *name;
	/* Exactly one of the two matches is set; it decides the protocol. */
	char *match_measurement;         /* line protocol streams */
	bool match_is_key;               /* frame streams: match_key is valid */
	struct schema_template match_key; /* e.g. "dust/{channel}" */
	struct schema_template group;    /* e.g. "/{station}" */
	enum schema_layout layout;
	size_t nattrs;
	struct schema_attr *attrs;
	enum schema_unknown_fields unknown_fields; /* default drop (counted) */
	/* records layout */
	uint64_t samples;                /* samples per waveform */
	double dt;                       /* seconds between samples */
	/* records, and stream with events: how long an event waits for the
	 * rest of its frames; its EVENT frame's fields */
	int64_t record_timeout_ns;       /* default 1 s */
	bool events;                     /* stream layout: keep an event table */
	size_t nevent_fields;
	struct schema_event_field *event_fields;
	size_t nchannels;
	struct schema_channel *channels;
	/* Rows per chunk of the stream's shared 1-D datasets: table `time`
	 * (the largest chunk of the channels on that axis, 4096 if none);
	 * records `time`, `event_id` and event fields, stream
	 * `<channel>_frame_*`: 1024. (A table own_time channel's
	 * `<channel>_time` uses the channel's own chunk.) */
	uint64_t coord_chunk;
};

struct schema {
	char *path;         /* file it came from, as given */
	char *source;       /* the full source text (stored in every file) */
	size_t source_len;
	char *name;
	struct schema_output output;
	struct schema_control control;
	size_t nlisten;
	struct schema_listen *listen;
	size_t nsources;
	struct schema_source *sources;
	struct schema_limits limits;
	size_t nstreams;
	struct schema_stream *streams;
	size_t nattrs;      /* root group attributes from the top-level `attrs` */
	struct schema_attr *attrs;
};

struct schema_error {
	char message[1024]; /* "FILE:LINE:COL: message" */
};

/* Load and validate a schema file. On success *out owns everything and is
 * released with schema_free(). On failure returns a negative code and fills
 * err; *out is left NULL. */
int schema_load_file(const char *path, struct schema **out, struct schema_error *err);

/* The same from memory; display_name stands for the file in messages. */
int schema_load_string(const char *text, size_t len, const char *display_name,
		       struct schema **out, struct schema_error *err);

void schema_free(struct schema *schema);

/* Lookups; NULL when absent. */
const struct schema_stream *schema_find_stream(const struct schema *schema, const char *name);
const struct schema_channel *schema_find_channel(const struct schema_stream *stream,
						 const char *name);

/* Why NAME cannot be a root attribute of the files (the recorder writes
 * it, or HDF5 or netCDF own it), or NULL when it can: for the schema's
 * top-level attrs and a run's (h5rec run start --attr). */
const char *schema_root_attr_reserved(const char *name);

#endif
