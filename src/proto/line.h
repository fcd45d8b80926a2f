/*
 * line.h - the InfluxDB line protocol of SPEC §3.2: an incremental decoder
 * for stream transports, a helper for UDP datagrams, and a field-set parser
 * for the payload of EVENT and HELLO frames.
 *
 *   weather,station=15 temperature=21.3,wind=3.2 1375204299000000000
 *
 * The decoder is pure and transport-agnostic: the network layer feeds it the
 * byte slices it read, split anywhere, and it calls back once per parsed line
 * (a "point"). Any split of the same bytes gives the same points and the same
 * bad-line reports. A line ends at a newline, except inside a quoted string
 * field value, which may hold raw newlines as in InfluxDB. A bad line is
 * reported with a reason, its line number and the byte offset of the
 * offending element, and skipped; decoding goes on with the next line. A
 * line longer than max_line (counting its "\n") is reported and skipped up
 * to its end without being buffered, so a hostile peer cannot grow memory
 * beyond max_line.
 *
 * Memory: one line buffer (at most max_line bytes) plus tag and field arrays
 * (at most one entry per four bytes of line), all reused from line to line;
 * nothing is allocated per line once they have grown to the largest line
 * seen. Strings in a point (measurement, tag keys
 * and values, field keys, string values) are unescaped, NUL-terminated and
 * point into that buffer: they are valid only during the callback.
 *
 * Threading: a decoder is a per-connection object (one per UDP socket) used
 * from one thread, the libuv loop. Functions return 0 or a negative errno.
 */
#ifndef H5REC_LINE_H
#define H5REC_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct line_tag {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len;
};

enum line_value_type {
	LINE_VALUE_FLOAT,   /* 1, 1.0, -1.5e3: a plain number is a float */
	LINE_VALUE_INT,     /* 1i */
	LINE_VALUE_UINT,    /* 1u */
	LINE_VALUE_STRING,  /* "text" */
	LINE_VALUE_BOOL,    /* t T true True TRUE f F false False FALSE */
};

struct line_field {
	const char *key;
	size_t key_len;
	enum line_value_type type;
	union {
		double f;
		int64_t i;
		uint64_t u;
		bool b;
	} value;
	const char *string;     /* LINE_VALUE_STRING: the unescaped text */
	size_t string_len;
};

/* One parsed line. */
struct line_point {
	const char *measurement;
	size_t measurement_len;
	size_t ntags;
	const struct line_tag *tags;
	size_t nfields;                 /* at least 1 */
	const struct line_field *fields;
	bool has_timestamp;             /* false: the caller uses the receive time */
	int64_t timestamp_ns;           /* converted from the listener's precision */
	uint64_t line_number;           /* 1-based, in the connection or datagram */
	uint64_t offset;                /* byte offset of the line's first byte */
	/* With options.keep_text: the line as received (see line_error). */
	const char *text;
	size_t text_len;
	bool text_cut;
};

/* Error classes, one counter each in `h5rec status`. */
enum line_error_kind {
	LINE_ERR_NONE = 0,
	LINE_ERR_TOO_LONG,      /* longer than max_line */
	LINE_ERR_ENCODING,      /* NUL byte or invalid UTF-8 */
	LINE_ERR_MEASUREMENT,   /* empty measurement */
	LINE_ERR_TAG,           /* malformed tag */
	LINE_ERR_FIELD,         /* malformed field key or missing field set */
	LINE_ERR_VALUE,         /* field value of no valid type, or out of range */
	LINE_ERR_TIMESTAMP,     /* not an integer, out of range, or trailing text */
	LINE_ERR_ABORTED,       /* the point callback asked to stop */
	LINE_ERR_NOMEM,
};

#define LINE_REASON_SIZE 256
/* How much of a bad line's text a decoder keeps for its report. */
#define LINE_TEXT_MAX 1024

struct line_error {
	enum line_error_kind kind;
	uint64_t line_number;   /* 1-based */
	uint64_t line_offset;   /* offset of the line's first byte */
	uint64_t offset;        /* offset of the offending byte or element */
	char reason[LINE_REASON_SIZE];
	/* With options.keep_text: the line as received, its first
	 * LINE_TEXT_MAX bytes (text_len is the length kept, text_cut says
	 * more followed); empty for a line longer than max_line, which is
	 * never buffered. Valid only during the callback. */
	const char *text;
	size_t text_len;
	bool text_cut;
};

/* Short stable name of an error class ("too_long", "value", …). */
const char *line_error_kind_name(enum line_error_kind kind);

/* The unit of a line's timestamp (a listener's `precision`); the units of
 * InfluxDB's v1 write API. */
enum line_precision {
	LINE_PRECISION_NS,
	LINE_PRECISION_US,
	LINE_PRECISION_MS,
	LINE_PRECISION_S,
	LINE_PRECISION_M,       /* minutes */
	LINE_PRECISION_H,       /* hours */
};

/* The schema's name of a precision ("ns", …, "m", "h"). */
const char *line_precision_name(enum line_precision precision);

struct line_options {
	uint64_t max_line;                 /* bytes of one line, with its "\n" */
	enum line_precision precision;     /* unit of timestamps */
	/* Keep each line's text until it is parsed, for error reports that
	 * quote it (HTTP's "unable to parse '...'"): a copy of up to
	 * LINE_TEXT_MAX bytes per line, so only where it is shown. */
	bool keep_text;
};

/* Called once per good line, in input order. Return 0 to go on; a negative
 * value stops decoding: the feed returns it and the decoder is finished. */
typedef int (*line_point_cb)(void *user, const struct line_point *point);

/* Called once per bad line; decoding continues with the next line. */
typedef void (*line_error_cb)(void *user, const struct line_error *err);

struct line_stats {
	uint64_t bytes;         /* bytes consumed */
	uint64_t lines;         /* lines ended, comments and blank ones included */
	uint64_t points;        /* good lines delivered */
	uint64_t bad_lines;     /* lines reported bad, too long ones included */
	uint64_t too_long;
	uint64_t comments;      /* "#" lines */
	uint64_t blank;         /* empty or whitespace-only lines */
};

struct line_decoder;

/* Create a decoder; NULL when out of memory. bad_line may be NULL. */
struct line_decoder *line_decoder_new(const struct line_options *options,
				      line_point_cb point, line_error_cb bad_line,
				      void *user);
void line_decoder_free(struct line_decoder *decoder);

/*
 * Feed the next len bytes of the stream. Lines it completes are parsed and
 * reported; an unfinished line is kept for the next call. Bad lines are not
 * errors of the feed. Returns 0, -ENOMEM, or the point callback's negative
 * value; after such an error every call returns the same code.
 */
int line_decoder_feed(struct line_decoder *decoder, const void *data, size_t len);

/* The stream has ended: a last line without "\n" is decoded as a line. */
int line_decoder_finish(struct line_decoder *decoder);

/*
 * Decode one UDP datagram of whole lines (the last one may lack its "\n").
 * Line numbers and offsets restart at each datagram; the decoder forgets any
 * earlier state, including an earlier callback error. Returns like feed.
 */
int line_decode_datagram(struct line_decoder *decoder, const void *data, size_t len);

/* Start a new stream: line numbers and offsets restart, a partial line and
 * an earlier callback error are forgotten (an HTTP request body). */
void line_decoder_reset(struct line_decoder *decoder);

/* The unit of the timestamps decoded from now on, so that one decoder can
 * serve datagrams of listeners with different precisions. */
void line_decoder_set_precision(struct line_decoder *decoder, enum line_precision precision);

/*
 * Parse a bare field set, such as the payload of an EVENT frame
 * (`mass=3.8e-17,velocity=9646.3,run="Run3"`), into point (no measurement,
 * no tags, no timestamp; offsets count from the start of text). It uses the
 * decoder's buffers: the result is valid until the decoder is used again.
 * Returns 0, -EINVAL with *err filled when the text is not a valid field set
 * (or is longer than max_line), or -ENOMEM.
 */
int line_parse_field_set(struct line_decoder *decoder, const void *text, size_t len,
			 struct line_point *point, struct line_error *err);

const struct line_stats *line_decoder_stats(const struct line_decoder *decoder);

/* Bytes allocated for the line buffer; never above max_line. */
size_t line_decoder_buffer_capacity(const struct line_decoder *decoder);

#endif
