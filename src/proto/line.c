/*
 * line.c - decoder of the InfluxDB line protocol (see line.h).
 *
 * Input is cut into lines at "\n"; a line's bytes are copied into one
 * reusable buffer and parsed there, in place: every token is unescaped
 * towards its own start and NUL-terminated over the separator that ended
 * it, so a point needs no memory beyond the line itself. The copy costs
 * little for lines of sensor data and buys writable, NUL-terminated strings
 * plus identical handling of lines that arrive whole and lines that arrive
 * in pieces. A line that cannot fit is never copied: once it passes max_line
 * it is reported and the rest of it is skipped up to its end.
 *
 * A newline inside a quoted string field value belongs to the string, as
 * InfluxDB 1.x and 2.x decode it; cutting there would lose the point and
 * parse the rest of the string as lines nobody sent. So where a line ends is
 * decided by a small state machine that follows the grammar just far enough
 * to know whether a byte is inside a string ("the splitter"). It only runs
 * on lines holding a '"': the others end at the first newline, found by
 * memchr as before.
 *
 * Escaping follows InfluxDB's parser: a backslash followed by a byte the
 * token may escape (measurement: comma, space; tag keys, tag values and
 * field keys: comma, equals, space; string values: quote, backslash) stands
 * for that byte. Before any other byte it is a literal backslash, and the
 * byte after it is scanned on its own: "two\\ words" in a tag value is a
 * backslash and an escaped space, so clients that escape separators but not
 * backslashes (Windows paths) are read as they meant.
 *
 * Threading: one decoder per connection or UDP socket, used from the libuv
 * loop thread only.
 */
#include "line.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define LINE_MIN_BUFFER 256u
#define LINE_MIN_ARRAY 8u
/* Longest piece of input quoted in a reason, in bytes. */
#define QUOTE_MAX 48u

struct line_decoder {
	struct line_options options;
	size_t max_line;
	line_point_cb point_cb;
	line_error_cb error_cb;
	void *user;
	char *buf;              /* the current line, then a NUL */
	size_t cap;
	size_t have;
	bool skipping;          /* inside a line longer than max_line */
	unsigned char split;    /* the splitter's state after buf[0..scanned) */
	size_t scanned;         /* bytes of the line the splitter has seen */
	uint64_t position;      /* offset of the next input byte */
	uint64_t line_number;
	uint64_t line_offset;
	struct line_tag *tags;
	size_t tags_cap;
	struct line_field *fields;
	size_t fields_cap;
	struct line_stats stats;
	int failed;
	char text[LINE_TEXT_MAX]; /* options.keep_text: the line before parsing */
};

/* One line being parsed: s[0..len) with s[len] == 0, written in place. */
struct parse {
	struct line_decoder *decoder;
	char *s;
	size_t len;
	size_t pos;
	uint64_t line_offset;
	struct line_point point;
	struct line_error *err;
};

/* Room for QUOTE_MAX bytes each escaped as \xNN, an ellipsis and a NUL. */
struct quoted {
	char text[QUOTE_MAX * 4 + 8];
};

const char *line_error_kind_name(enum line_error_kind kind)
{
	static const char *const names[] = {
		[LINE_ERR_NONE] = "none",
		[LINE_ERR_TOO_LONG] = "too_long",
		[LINE_ERR_ENCODING] = "encoding",
		[LINE_ERR_MEASUREMENT] = "measurement",
		[LINE_ERR_TAG] = "tag",
		[LINE_ERR_FIELD] = "field",
		[LINE_ERR_VALUE] = "value",
		[LINE_ERR_TIMESTAMP] = "timestamp",
		[LINE_ERR_ABORTED] = "aborted",
		[LINE_ERR_NOMEM] = "nomem",
	};
	if ((unsigned)kind >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[kind];
}

/* Input text made safe for a log line: control bytes as \xNN, cut at a
 * character boundary after QUOTE_MAX bytes. */
static const char *quote(struct quoted *q, const char *text, size_t len)
{
	size_t n = len, out = 0;

	if (n > QUOTE_MAX) {
		n = QUOTE_MAX;
		while (n > 0 && ((unsigned char)text[n] & 0xC0u) == 0x80u)
			n--;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c == 0x7F)
			out += (size_t)snprintf(q->text + out, sizeof(q->text) - out, "\\x%02x", c);
		else
			q->text[out++] = (char)c;
	}
	if (n < len)
		out += (size_t)snprintf(q->text + out, sizeof(q->text) - out, "...");
	q->text[out] = 0;
	return q->text;
}

__attribute__((format(printf, 4, 5)))
static int parse_error(struct parse *ps, enum line_error_kind kind, size_t at,
		       const char *fmt, ...)
{
	struct line_error *err = ps->err;
	va_list ap;

	err->kind = kind;
	err->line_number = ps->point.line_number;
	err->line_offset = ps->line_offset;
	err->offset = ps->line_offset + at;
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- text checks ---- */

/* Tokens become C strings and HDF5 names: no NUL, UTF-8 only. */
static int check_encoding(struct parse *ps)
{
	const unsigned char *s = (const unsigned char *)ps->s;

	for (size_t i = 0; i < ps->len;) {
		size_t step = utf8_sequence_length(s + i, ps->len - i);
		if (s[i] == 0)
			return parse_error(ps, LINE_ERR_ENCODING, i, "NUL byte at byte %zu of the line",
					   i);
		if (step == 0)
			return parse_error(ps, LINE_ERR_ENCODING, i,
					   "invalid UTF-8 at byte %zu of the line (0x%02x)", i, s[i]);
		i += step;
	}
	return 0;
}

/* The bytes that end tokens or may be escaped in them, as bit sets: token
 * scanning tests every byte, and a switch beats strchr by far there. */
enum {
	SEP_COMMA = 1u,
	SEP_SPACE = 2u,
	SEP_EQUALS = 4u,
	SEP_ALL = SEP_COMMA | SEP_SPACE | SEP_EQUALS,
};

static unsigned separator_bit(char c)
{
	switch (c) {
	case ',':
		return SEP_COMMA;
	case ' ':
		return SEP_SPACE;
	case '=':
		return SEP_EQUALS;
	default:
		return 0;
	}
}

/*
 * Unescape in place the token at ps->pos, which ends at an unescaped byte of
 * `stops` or at the end of the line. Leaves ps->pos on that byte, stores it
 * in *stop (0 at the end), then NUL-terminates the token, possibly over the
 * stop byte, which is why callers go by *stop and not by ps->s[ps->pos].
 */
static char *scan_token(struct parse *ps, unsigned stops, unsigned escapable,
			size_t *token_len, char *stop)
{
	char *s = ps->s;
	size_t start = ps->pos, r = ps->pos, w = ps->pos;

	while (r < ps->len && !(separator_bit(s[r]) & stops)) {
		if (s[r] == '\\' && r + 1 < ps->len && (separator_bit(s[r + 1]) & escapable))
			r++;
		s[w++] = s[r++];
	}
	*stop = r < ps->len ? s[r] : 0;
	s[w] = 0;
	ps->pos = r;
	*token_len = w - start;
	return s + start;
}

static void skip_spaces(struct parse *ps)
{
	while (ps->pos < ps->len && ps->s[ps->pos] == ' ')
		ps->pos++;
}

/* ---- arrays reused from line to line ---- */

/* Double an array of *cap elements (or start one); returns the new array,
 * or NULL with the old one untouched. */
static void *grow_array(void *array, size_t *cap, size_t elem_size)
{
	size_t new_cap = *cap ? *cap * 2 : LINE_MIN_ARRAY;
	void *grown = realloc(array, new_cap * elem_size);

	if (grown)
		*cap = new_cap;
	return grown;
}

static struct line_tag *new_tag(struct parse *ps)
{
	struct line_decoder *decoder = ps->decoder;

	if (ps->point.ntags == decoder->tags_cap) {
		struct line_tag *grown =
			grow_array(decoder->tags, &decoder->tags_cap, sizeof(*grown));
		if (!grown)
			return NULL;
		decoder->tags = grown;
	}
	return &decoder->tags[ps->point.ntags++];
}

static struct line_field *new_field(struct parse *ps)
{
	struct line_decoder *decoder = ps->decoder;

	if (ps->point.nfields == decoder->fields_cap) {
		struct line_field *grown =
			grow_array(decoder->fields, &decoder->fields_cap, sizeof(*grown));
		if (!grown)
			return NULL;
		decoder->fields = grown;
	}
	return &decoder->fields[ps->point.nfields++];
}

/* ---- numbers ---- */

static bool all_digits(const char *text, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (text[i] < '0' || text[i] > '9')
			return false;
	return true;
}

/* Decimal digits to uint64: -EINVAL if not all digits, -ERANGE on overflow. */
static int parse_uint64(const char *text, size_t n, uint64_t *value)
{
	uint64_t v = 0;

	if (!all_digits(text, n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (__builtin_mul_overflow(v, 10u, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(text[i] - '0'), &v))
			return -ERANGE;
	}
	*value = v;
	return 0;
}

/* Optional '-' then decimal digits: -EINVAL or -ERANGE as parse_uint64. */
static int parse_int64(const char *text, size_t n, int64_t *value)
{
	size_t sign = n > 0 && text[0] == '-';
	uint64_t magnitude;
	int rc = parse_uint64(text + sign, n - sign, &magnitude);

	if (rc)
		return rc;
	if (magnitude > (uint64_t)INT64_MAX + sign)
		return -ERANGE;
	*value = sign && magnitude ? -(int64_t)(magnitude - 1) - 1 : (int64_t)magnitude;
	return 0;
}

/* Syntax check of [-](digits[.digits]|.digits)[(e|E)[+|-]digits]: strtod
 * alone would also take "inf", "nan", hex floats and leading spaces. */
static bool is_float_syntax(const char *text, size_t n)
{
	size_t i = 0, mantissa_digits = 0, exponent_digits = 0;

	if (i < n && text[i] == '-')
		i++;
	for (; i < n && text[i] >= '0' && text[i] <= '9'; i++)
		mantissa_digits++;
	if (i < n && text[i] == '.')
		for (i++; i < n && text[i] >= '0' && text[i] <= '9'; i++)
			mantissa_digits++;
	if (mantissa_digits == 0)
		return false;
	if (i < n && (text[i] == 'e' || text[i] == 'E')) {
		i++;
		if (i < n && (text[i] == '+' || text[i] == '-'))
			i++;
		for (; i < n && text[i] >= '0' && text[i] <= '9'; i++)
			exponent_digits++;
		if (exponent_digits == 0)
			return false;
	}
	return i == n;
}

static bool parse_bool(const char *text, bool *value)
{
	static const char *const truths[] = {"t", "T", "true", "True", "TRUE"};
	static const char *const falsehoods[] = {"f", "F", "false", "False", "FALSE"};

	if (text[0] != 't' && text[0] != 'T' && text[0] != 'f' && text[0] != 'F')
		return false;
	for (size_t i = 0; i < 5; i++) {
		if (strcmp(text, truths[i]) == 0 || strcmp(text, falsehoods[i]) == 0) {
			*value = strcmp(text, truths[i]) == 0;
			return true;
		}
	}
	return false;
}

/* ---- the grammar ---- */

static int parse_measurement(struct parse *ps, char *stop)
{
	size_t at = ps->pos;

	ps->point.measurement = scan_token(ps, SEP_COMMA | SEP_SPACE, SEP_COMMA | SEP_SPACE,
					   &ps->point.measurement_len, stop);
	if (ps->point.measurement_len == 0)
		return parse_error(ps, LINE_ERR_MEASUREMENT, at, "empty measurement");
	return 0;
}

static int parse_tag(struct parse *ps, char *stop)
{
	struct quoted q;
	size_t at = ps->pos, key_len, value_len;
	char *key = scan_token(ps, SEP_ALL, SEP_ALL, &key_len, stop);
	char *value;
	struct line_tag *tag;

	if (key_len == 0)
		return parse_error(ps, LINE_ERR_TAG, at, "empty tag key");
	if (*stop != '=')
		return parse_error(ps, LINE_ERR_TAG, ps->pos, "tag '%s': missing '='",
				   quote(&q, key, key_len));
	at = ++ps->pos;
	value = scan_token(ps, SEP_ALL, SEP_ALL, &value_len, stop);
	if (*stop == '=')
		return parse_error(ps, LINE_ERR_TAG, ps->pos, "tag '%s': unescaped '=' in value",
				   quote(&q, key, key_len));
	if (value_len == 0)
		return parse_error(ps, LINE_ERR_TAG, at, "tag '%s': empty value",
				   quote(&q, key, key_len));
	tag = new_tag(ps);
	if (!tag)
		return -ENOMEM;
	*tag = (struct line_tag){key, key_len, value, value_len};
	return 0;
}

static int parse_string_value(struct parse *ps, struct line_field *field, char *stop)
{
	struct quoted q;
	char *s = ps->s;
	size_t at = ps->pos, r = ps->pos + 1, w = ps->pos;

	while (r < ps->len && s[r] != '"') {
		if (s[r] == '\\' && r + 1 < ps->len && (s[r + 1] == '"' || s[r + 1] == '\\'))
			r++;
		s[w++] = s[r++];
	}
	if (r >= ps->len)
		return parse_error(ps, LINE_ERR_VALUE, at, "field '%s': unterminated string",
				   quote(&q, field->key, field->key_len));
	s[w] = 0;
	ps->pos = r + 1;
	*stop = ps->pos < ps->len ? s[ps->pos] : 0;
	if (*stop != 0 && *stop != ',' && *stop != ' ')
		return parse_error(ps, LINE_ERR_VALUE, ps->pos,
				   "field '%s': unexpected text after the string",
				   quote(&q, field->key, field->key_len));
	field->type = LINE_VALUE_STRING;
	field->string = s + at;
	field->string_len = w - at;
	return 0;
}

static int parse_suffixed_integer(struct parse *ps, struct line_field *field,
				  const char *text, size_t n, size_t at)
{
	struct quoted q, qv;
	bool is_unsigned = text[n - 1] == 'u';
	int rc = is_unsigned ? parse_uint64(text, n - 1, &field->value.u)
			     : parse_int64(text, n - 1, &field->value.i);

	field->type = is_unsigned ? LINE_VALUE_UINT : LINE_VALUE_INT;
	if (rc == -ERANGE)
		return parse_error(ps, LINE_ERR_VALUE, at, "field '%s': %s '%s' out of range",
				   quote(&q, field->key, field->key_len),
				   is_unsigned ? "unsigned integer" : "integer", quote(&qv, text, n));
	if (rc)
		return parse_error(ps, LINE_ERR_VALUE, at, "field '%s': invalid %s '%s'",
				   quote(&q, field->key, field->key_len),
				   is_unsigned ? "unsigned integer" : "integer", quote(&qv, text, n));
	return 0;
}

static int parse_float_value(struct parse *ps, struct line_field *field, const char *text,
			     size_t n, size_t at)
{
	struct quoted q, qv;
	bool starts_numeric = strchr("-.0123456789", text[0]) != NULL;

	if (!is_float_syntax(text, n))
		return parse_error(ps, LINE_ERR_VALUE, at, "field '%s': invalid %s '%s'",
				   quote(&q, field->key, field->key_len),
				   starts_numeric ? "number" : "value", quote(&qv, text, n));
	field->type = LINE_VALUE_FLOAT;
	field->value.f = strtod(text, NULL);
	if (isinf(field->value.f))
		return parse_error(ps, LINE_ERR_VALUE, at, "field '%s': number '%s' out of range",
				   quote(&q, field->key, field->key_len), quote(&qv, text, n));
	return 0;
}

static int parse_value(struct parse *ps, struct line_field *field, char *stop)
{
	struct quoted q;
	size_t at = ps->pos, n;
	char *text;

	if (ps->pos < ps->len && ps->s[ps->pos] == '"')
		return parse_string_value(ps, field, stop);
	text = scan_token(ps, SEP_COMMA | SEP_SPACE, 0, &n, stop);
	if (n == 0)
		return parse_error(ps, LINE_ERR_VALUE, at, "field '%s': missing value",
				   quote(&q, field->key, field->key_len));
	if (parse_bool(text, &field->value.b)) {
		field->type = LINE_VALUE_BOOL;
		return 0;
	}
	if ((text[n - 1] == 'i' || text[n - 1] == 'u') && strchr("-0123456789", text[0]))
		return parse_suffixed_integer(ps, field, text, n, at);
	return parse_float_value(ps, field, text, n, at);
}

static int parse_field(struct parse *ps, char *stop)
{
	struct quoted q;
	size_t at = ps->pos, key_len;
	char *key = scan_token(ps, SEP_ALL, SEP_ALL, &key_len, stop);
	struct line_field *field;

	if (key_len == 0)
		return parse_error(ps, LINE_ERR_FIELD, at, "empty field key");
	if (*stop != '=')
		return parse_error(ps, LINE_ERR_FIELD, ps->pos, "field '%s': missing '='",
				   quote(&q, key, key_len));
	ps->pos++;
	field = new_field(ps);
	if (!field)
		return -ENOMEM;
	*field = (struct line_field){.key = key, .key_len = key_len};
	return parse_value(ps, field, stop);
}

/* field=value[,field=value...]; *stop is the byte that ended the set. */
static int parse_field_set(struct parse *ps, char *stop)
{
	for (;;) {
		int rc = parse_field(ps, stop);
		if (rc)
			return rc;
		if (*stop != ',')
			return 0;
		ps->pos++;
	}
}

/* Past a separating space (perhaps already overwritten by a NUL) and any
 * further spaces; false at the end of the line. */
static bool skip_separator(struct parse *ps, char stop)
{
	if (stop != ' ')
		return false;
	ps->pos++;
	skip_spaces(ps);
	return ps->pos < ps->len;
}

static const int64_t precision_factor[] = {
	[LINE_PRECISION_NS] = 1,
	[LINE_PRECISION_US] = 1000,
	[LINE_PRECISION_MS] = 1000000,
	[LINE_PRECISION_S] = 1000000000,
	[LINE_PRECISION_M] = 60 * INT64_C(1000000000),
	[LINE_PRECISION_H] = 3600 * INT64_C(1000000000),
};

const char *line_precision_name(enum line_precision precision)
{
	static const char *const names[] = {
		[LINE_PRECISION_NS] = "ns", [LINE_PRECISION_US] = "us", [LINE_PRECISION_MS] = "ms",
		[LINE_PRECISION_S] = "s",   [LINE_PRECISION_M] = "m",   [LINE_PRECISION_H] = "h",
	};
	if ((unsigned)precision >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[precision];
}

static int parse_timestamp(struct parse *ps)
{
	struct quoted q;
	enum line_precision precision = ps->decoder->options.precision;
	size_t at = ps->pos, n;
	char stop;
	char *text = scan_token(ps, SEP_SPACE, 0, &n, &stop);
	int64_t value;
	int rc = parse_int64(text, n, &value);

	if (rc == -EINVAL)
		return parse_error(ps, LINE_ERR_TIMESTAMP, at, "invalid timestamp '%s'",
				   quote(&q, text, n));
	if (rc || __builtin_mul_overflow(value, precision_factor[precision],
					 &ps->point.timestamp_ns))
		return parse_error(ps, LINE_ERR_TIMESTAMP, at,
				   "timestamp '%s' (%s) out of range for int64 nanoseconds",
				   quote(&q, text, n), line_precision_name(precision));
	ps->point.has_timestamp = true;
	if (skip_separator(ps, stop))
		return parse_error(ps, LINE_ERR_TIMESTAMP, ps->pos,
				   "unexpected text after the timestamp");
	return 0;
}

/* measurement[,tag=value...] field=value[,field=value...] [timestamp] */
static int parse_point(struct parse *ps)
{
	char stop;
	int rc = parse_measurement(ps, &stop);

	while (!rc && stop == ',') {
		ps->pos++;
		rc = parse_tag(ps, &stop);
	}
	if (rc)
		return rc;
	if (!skip_separator(ps, stop))
		return parse_error(ps, LINE_ERR_FIELD, ps->pos, "no field set");
	rc = parse_field_set(ps, &stop);
	if (rc)
		return rc;
	return skip_separator(ps, stop) ? parse_timestamp(ps) : 0;
}

/* ---- where a line ends ---- */

/*
 * The splitter's states. A string can start only after a field key's '=',
 * so a '"' in the measurement, a tag or a field key is a plain byte (as in
 * InfluxDB: `m,t="a f=1` is a tag value `"a`), and the key part ends at the
 * first space not escaped by a backslash. On every line the parser accepts,
 * the splitter sees strings exactly where the parser does; a bad line only
 * has to end somewhere, and ends at the first newline outside what the
 * splitter took for a string.
 */
enum split_state {
	SPLIT_START,            /* blanks before the measurement */
	SPLIT_KEY,              /* measurement and tags */
	SPLIT_KEY_ESCAPE,       /* after a backslash there */
	SPLIT_GAP,              /* spaces before the field set */
	SPLIT_FIELD_KEY,
	SPLIT_FIELD_KEY_ESCAPE,
	SPLIT_VALUE_START,      /* right after a field key's '=' */
	SPLIT_VALUE,            /* a value that is not a string */
	SPLIT_STRING,
	SPLIT_STRING_ESCAPE,
	SPLIT_STRING_END,       /* right after a string's closing quote */
	SPLIT_REST,             /* timestamp, comment or bad line: up to the newline */
};

static bool split_in_string(unsigned char state)
{
	return state == SPLIT_STRING || state == SPLIT_STRING_ESCAPE;
}

/*
 * Feed one byte to the splitter; true when it is the newline that ends the
 * line. A backslash escapes a space in the key part and '=' in a field key
 * (so "\\ " is a literal backslash, then an escaped space), never a
 * newline.
 */
static bool split_step(unsigned char *state, char c)
{
	if (c == '\n' && !split_in_string(*state))
		return true;
	switch ((enum split_state)*state) {
	case SPLIT_START:
		if (c == '#')
			*state = SPLIT_REST;
		else if (c != ' ' && c != '\t')
			*state = c == '\\' ? SPLIT_KEY_ESCAPE : SPLIT_KEY;
		break;
	case SPLIT_KEY:
		if (c == '\\')
			*state = SPLIT_KEY_ESCAPE;
		else if (c == ' ')
			*state = SPLIT_GAP;
		break;
	case SPLIT_KEY_ESCAPE:
		if (c != '\\')
			*state = SPLIT_KEY;
		break;
	case SPLIT_GAP:
		if (c == ' ')
			break;
		*state = SPLIT_FIELD_KEY;
		return split_step(state, c);
	case SPLIT_FIELD_KEY:
		if (c == '\\')
			*state = SPLIT_FIELD_KEY_ESCAPE;
		else if (c == '=')
			*state = SPLIT_VALUE_START;
		else if (c == ',' || c == ' ')
			*state = SPLIT_REST;
		break;
	case SPLIT_FIELD_KEY_ESCAPE:
		if (c != '\\')
			*state = SPLIT_FIELD_KEY;
		break;
	case SPLIT_VALUE_START:
		if (c == '"') {
			*state = SPLIT_STRING;
			break;
		}
		*state = SPLIT_VALUE;
		return split_step(state, c);
	case SPLIT_VALUE:
		if (c == ',')
			*state = SPLIT_FIELD_KEY;
		else if (c == ' ')
			*state = SPLIT_REST;
		break;
	case SPLIT_STRING:
		if (c == '\\')
			*state = SPLIT_STRING_ESCAPE;
		else if (c == '"')
			*state = SPLIT_STRING_END;
		break;
	case SPLIT_STRING_ESCAPE:
		*state = SPLIT_STRING;
		break;
	case SPLIT_STRING_END:
		*state = c == ',' ? SPLIT_FIELD_KEY : SPLIT_REST;
		break;
	case SPLIT_REST:
		break;
	}
	return false;
}

/* Run the splitter over the buffered bytes it has not seen: they hold no
 * '"' and no newline (see line_extent), but move it through the grammar. */
static void split_catch_up(struct line_decoder *decoder)
{
	for (; decoder->scanned < decoder->have; decoder->scanned++)
		split_step(&decoder->split, decoder->buf[decoder->scanned]);
}

/* The bytes that move the splitter out of its longer states, as bit sets
 * looked up by byte: one test per byte in split_run. */
enum {
	SPLIT_BYTE_SPACE = 1u,
	SPLIT_BYTE_BACKSLASH = 2u,
	SPLIT_BYTE_NEWLINE = 4u,
	SPLIT_BYTE_EQUALS = 8u,
	SPLIT_BYTE_COMMA = 16u,
};

static const unsigned char split_byte[256] = {
	[' '] = SPLIT_BYTE_SPACE,     ['\\'] = SPLIT_BYTE_BACKSLASH, ['\n'] = SPLIT_BYTE_NEWLINE,
	['='] = SPLIT_BYTE_EQUALS,    [','] = SPLIT_BYTE_COMMA,
};

static size_t run_until(const char *p, size_t len, unsigned stops)
{
	size_t n = 0;

	while (n < len && !(split_byte[(unsigned char)p[n]] & stops))
		n++;
	return n;
}

/* How many bytes from p on leave the splitter's state as it is: a line
 * with strings goes through the splitter in runs, not byte by byte. */
static size_t split_run(unsigned char state, const char *p, size_t len)
{
	const char *found;
	size_t n;

	switch ((enum split_state)state) {
	case SPLIT_KEY:
		return run_until(p, len, SPLIT_BYTE_SPACE | SPLIT_BYTE_BACKSLASH | SPLIT_BYTE_NEWLINE);
	case SPLIT_FIELD_KEY:
		return run_until(p, len, SPLIT_BYTE_SPACE | SPLIT_BYTE_BACKSLASH | SPLIT_BYTE_NEWLINE |
						 SPLIT_BYTE_EQUALS | SPLIT_BYTE_COMMA);
	case SPLIT_VALUE:
		return run_until(p, len, SPLIT_BYTE_SPACE | SPLIT_BYTE_NEWLINE | SPLIT_BYTE_COMMA);
	case SPLIT_STRING:
		found = memchr(p, '"', len);
		n = found ? (size_t)(found - p) : len;
		found = memchr(p, '\\', n);
		return found ? (size_t)(found - p) : n;
	case SPLIT_REST:
		found = memchr(p, '\n', len);
		return found ? (size_t)(found - p) : len;
	default:
		return 0;
	}
}

static size_t split_scan(struct line_decoder *decoder, const char *input, size_t len,
			 bool *newline)
{
	size_t n = 0;

	split_catch_up(decoder);
	for (;;) {
		n += split_run(decoder->split, input + n, len - n);
		if (n == len || split_step(&decoder->split, input[n]))
			break;
		n++;
	}
	*newline = n < len;
	decoder->scanned += n;
	return n;
}

/*
 * How many bytes of input belong to the current line, its newline not
 * counted; *newline says whether that newline is there. A line with no '"'
 * ends at its first newline, which memchr finds, and the splitter waits: it
 * catches up on the buffered bytes only if a later '"' makes it matter.
 * Bytes that will not be buffered (a line passing max_line) go through the
 * splitter at once, as they cannot be looked at again.
 */
static size_t line_extent(struct line_decoder *decoder, const char *input, size_t len,
			  bool *newline)
{
	const char *end = memchr(input, '\n', len);
	size_t n = end ? (size_t)(end - input) : len;

	if (!split_in_string(decoder->split) && !decoder->skipping &&
	    n < decoder->max_line - decoder->have && !memchr(input, '"', n)) {
		*newline = end != NULL;
		return n;
	}
	return split_scan(decoder, input, len, newline);
}

/* ---- the decoder ---- */

struct line_decoder *line_decoder_new(const struct line_options *options,
				      line_point_cb point, line_error_cb bad_line,
				      void *user)
{
	struct line_decoder *decoder = calloc(1, sizeof(*decoder));

	if (!decoder)
		return NULL;
	decoder->options = *options;
	/* At least room for the NUL of an empty line; at most what size_t holds. */
	decoder->max_line = options->max_line < 1 ? 1
			    : options->max_line > SIZE_MAX / 2 ? SIZE_MAX / 2
							       : (size_t)options->max_line;
	decoder->point_cb = point;
	decoder->error_cb = bad_line;
	decoder->user = user;
	decoder->line_number = 1;
	return decoder;
}

void line_decoder_free(struct line_decoder *decoder)
{
	if (!decoder)
		return;
	free(decoder->buf);
	free(decoder->tags);
	free(decoder->fields);
	free(decoder);
}

const struct line_stats *line_decoder_stats(const struct line_decoder *decoder)
{
	return &decoder->stats;
}

size_t line_decoder_buffer_capacity(const struct line_decoder *decoder)
{
	return decoder->cap;
}

/* need <= max_line always: a line is at most max_line - 1 bytes plus a NUL. */
static int reserve_line(struct line_decoder *decoder, size_t need)
{
	size_t cap = decoder->cap ? decoder->cap * 2 : LINE_MIN_BUFFER;
	char *grown;

	if (need <= decoder->cap)
		return 0;
	if (cap < need)
		cap = need;
	if (cap > decoder->max_line)
		cap = decoder->max_line;
	grown = realloc(decoder->buf, cap);
	if (!grown)
		return -ENOMEM;
	decoder->buf = grown;
	decoder->cap = cap;
	return 0;
}

static void report_bad_line(struct line_decoder *decoder, const struct line_error *err)
{
	decoder->stats.bad_lines++;
	if (decoder->error_cb)
		decoder->error_cb(decoder->user, err);
}

static void report_too_long(struct line_decoder *decoder)
{
	struct line_error err = {
		.kind = LINE_ERR_TOO_LONG,
		.line_number = decoder->line_number,
		.line_offset = decoder->line_offset,
		.offset = decoder->line_offset + decoder->max_line - 1,
	};

	snprintf(err.reason, sizeof(err.reason),
		 "line longer than max_line (%zu bytes with its newline)", decoder->max_line);
	decoder->stats.too_long++;
	report_bad_line(decoder, &err);
}

/* Where parsing starts, or len for a line with nothing to parse. */
static size_t skip_leading_blanks(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

static int parse_buffered_line(struct line_decoder *decoder, struct parse *ps)
{
	int rc = check_encoding(ps);

	if (!rc)
		rc = parse_point(ps);
	ps->point.tags = decoder->tags;
	ps->point.fields = decoder->fields;
	return rc;
}

/* Parse buf[0..have) as one line and report it. */
static int process_line(struct line_decoder *decoder)
{
	struct line_error err;
	struct parse ps = {
		.decoder = decoder,
		.s = decoder->buf,
		.len = decoder->have,
		.line_offset = decoder->line_offset,
		.point = {.line_number = decoder->line_number, .offset = decoder->line_offset},
		.err = &err,
	};
	int rc;

	if (ps.len > 0 && ps.s[ps.len - 1] == '\r')
		ps.len--;
	if (ps.s)
		ps.s[ps.len] = 0;
	ps.pos = skip_leading_blanks(ps.s, ps.len);
	if (ps.pos == ps.len) {
		decoder->stats.blank++;
		return 0;
	}
	if (ps.s[ps.pos] == '#') {
		decoder->stats.comments++;
		return 0;
	}
	err.text = NULL;
	err.text_len = 0;
	err.text_cut = false;
	if (decoder->options.keep_text) {
		err.text_len = ps.len < LINE_TEXT_MAX ? ps.len : LINE_TEXT_MAX;
		err.text_cut = err.text_len < ps.len;
		memcpy(decoder->text, ps.s, err.text_len);
		err.text = decoder->text;
	}
	rc = parse_buffered_line(decoder, &ps);
	if (rc == -EINVAL) {
		report_bad_line(decoder, &err);
		return 0;
	}
	if (rc)
		return rc;
	decoder->stats.points++;
	ps.point.text = err.text;
	ps.point.text_len = err.text_len;
	ps.point.text_cut = err.text_cut;
	return decoder->point_cb ? decoder->point_cb(decoder->user, &ps.point) : 0;
}

static void start_line(struct line_decoder *decoder)
{
	decoder->skipping = false;
	decoder->have = 0;
	decoder->split = SPLIT_START;
	decoder->scanned = 0;
}

/* The newline (or the end of input) after a line: parse it unless it was
 * too long, and move on to the next. */
static int end_line(struct line_decoder *decoder)
{
	int rc = decoder->skipping ? 0 : process_line(decoder);

	decoder->stats.lines++;
	start_line(decoder);
	decoder->line_number++;
	decoder->line_offset = decoder->position;
	return rc;
}

/* Append n bytes of the current line, or drop them once it is too long. */
static int append_to_line(struct line_decoder *decoder, const char *data, size_t n)
{
	int rc;

	if (decoder->skipping)
		return 0;
	if (n >= decoder->max_line - decoder->have) {
		report_too_long(decoder);
		decoder->skipping = true;
		decoder->have = 0;
		decoder->scanned = 0;
		return 0;
	}
	rc = reserve_line(decoder, decoder->have + n + 1);
	if (rc)
		return rc;
	memcpy(decoder->buf + decoder->have, data, n);
	decoder->have += n;
	return 0;
}

static int decoder_fail(struct line_decoder *decoder, int code)
{
	decoder->failed = code;
	return code;
}

int line_decoder_feed(struct line_decoder *decoder, const void *data, size_t len)
{
	const char *input = data;

	while (!decoder->failed && len > 0) {
		bool newline;
		size_t n = line_extent(decoder, input, len, &newline);
		int rc = append_to_line(decoder, input, n);

		n += newline;
		input += n;
		len -= n;
		decoder->position += n;
		decoder->stats.bytes += n;
		if (!rc && newline)
			rc = end_line(decoder);
		if (rc)
			decoder_fail(decoder, rc);
	}
	return decoder->failed;
}

int line_decoder_finish(struct line_decoder *decoder)
{
	int rc;

	if (decoder->failed || (decoder->have == 0 && !decoder->skipping))
		return decoder->failed;
	rc = end_line(decoder);
	return rc ? decoder_fail(decoder, rc) : 0;
}

void line_decoder_reset(struct line_decoder *decoder)
{
	decoder->failed = 0;
	start_line(decoder);
	decoder->position = 0;
	decoder->line_number = 1;
	decoder->line_offset = 0;
}

int line_decode_datagram(struct line_decoder *decoder, const void *data, size_t len)
{
	int rc;

	line_decoder_reset(decoder);
	rc = line_decoder_feed(decoder, data, len);
	return rc ? rc : line_decoder_finish(decoder);
}

void line_decoder_set_precision(struct line_decoder *decoder, enum line_precision precision)
{
	decoder->options.precision = precision;
}

int line_parse_field_set(struct line_decoder *decoder, const void *text, size_t len,
			 struct line_point *point, struct line_error *err)
{
	struct parse ps = {
		.decoder = decoder,
		.len = len,
		.point = {.line_number = 1},
		.err = err,
	};
	char stop;
	int rc;

	if (len >= decoder->max_line)
		return parse_error(&ps, LINE_ERR_TOO_LONG, decoder->max_line - 1,
				   "field set longer than max_line (%zu bytes)", decoder->max_line);
	rc = reserve_line(decoder, len + 1);
	if (rc)
		return rc;
	ps.s = decoder->buf;
	if (len)
		memcpy(ps.s, text, len);
	ps.s[len] = 0;
	rc = check_encoding(&ps);
	if (!rc)
		rc = parse_field_set(&ps, &stop);
	if (!rc && skip_separator(&ps, stop))
		rc = parse_error(&ps, LINE_ERR_FIELD, ps.pos, "unexpected text after the field set");
	ps.point.fields = decoder->fields;
	*point = ps.point;
	return rc;
}
