/*
 * frame.c - decoder and encoder of the binary frame protocol (see frame.h).
 *
 * A frame is read in three parts. The 40-byte header and the key (at most
 * 1064 bytes together) are always copied into a fixed array inside the
 * decoder: that costs nothing worth measuring, lets the header be checked
 * field by field as its bytes arrive, whatever the split, and gives the key a
 * NUL terminator. The payload and trailer are the only large part: when the
 * rest of the frame lies in the slice being fed they are used in place, and
 * only a frame cut by the end of a slice has them copied. The payload then
 * goes where the user's payload function says (the recorder: straight into
 * the work item that will carry it to the writer, so a large payload is
 * copied once, not into a buffer here and again into the item), or else
 * into a buffer sized for that frame (bounded by max_frame), which is
 * released after a large one so idle connections do not hold megabytes.
 *
 * Checks run in the order of the bytes they need (magic byte by byte,
 * version, type, dtype, flags, key_len, reserved, payload_len, event_id, key,
 * CRC), which is what makes the first error the same for every split of the
 * input: a check never waits for bytes that a later-ordered check needs less.
 *
 * Threading: one decoder per connection, used from the libuv loop thread only.
 */
#include "frame.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "utf8.h"

/* Largest payload any decoder accepts: the whole frame must fit in 32 bits. */
#define FRAME_MAX_PAYLOAD \
	(UINT32_MAX - FRAME_HEADER_SIZE - FRAME_MAX_KEY - FRAME_CRC_SIZE)
/* A payload buffer larger than this is freed once its frame is delivered. */
#define FRAME_KEEP_BUFFER (4u << 20)
#define FRAME_MIN_BUFFER 4096u
#define FRAME_HEAD_SIZE (FRAME_HEADER_SIZE + FRAME_MAX_KEY)

/* Header field offsets (SPEC §3.1). */
enum {
	OFF_VERSION = 4,
	OFF_TYPE = 5,
	OFF_DTYPE = 6,
	OFF_FLAGS = 7,
	OFF_KEY_LEN = 8,
	OFF_RESERVED = 10,
	OFF_PAYLOAD_LEN = 12,
	OFF_SEQ = 16,
	OFF_T0 = 24,
	OFF_EVENT_ID = 32,
};

struct frame_decoder {
	struct frame_options options;
	frame_cb cb;
	void *user;
	uint8_t head[FRAME_HEAD_SIZE + 1]; /* header, key, NUL */
	size_t head_have;
	uint8_t *body;                     /* our buffer for a cut frame's body */
	size_t body_cap;
	size_t body_have;                  /* bytes of payload + trailer taken */
	frame_payload_fn payload_fn;
	uint8_t *payload_dst;              /* where the cut frame's payload goes */
	uint8_t *trailer_dst;              /* and its trailer */
	uint8_t trailer[FRAME_CRC_SIZE];   /* the trailer of a user-placed payload */
	uint64_t frame_offset;
	struct frame_seq seq;
	struct frame_stats stats;
	int failed;                        /* 0, or the code every call returns */
	struct frame_error error;
};

static const char *const dtype_names[] = {
	"none", "int8", "uint8", "int16", "uint16", "int32",
	"uint32", "int64", "uint64", "float32", "float64",
};
static const uint8_t dtype_sizes[] = {0, 1, 1, 2, 2, 4, 4, 8, 8, 4, 8};
static const char *const type_names[] = {"", "DATA", "EVENT", "HELLO", "ACK", "DESCRIBE",
					  "ERROR"};

const char *frame_error_kind_name(enum frame_error_kind kind)
{
	static const char *const names[] = {
		[FRAME_ERR_NONE] = "none",
		[FRAME_ERR_MAGIC] = "magic",
		[FRAME_ERR_VERSION] = "version",
		[FRAME_ERR_TYPE] = "type",
		[FRAME_ERR_DTYPE] = "dtype",
		[FRAME_ERR_FLAGS] = "flags",
		[FRAME_ERR_RESERVED] = "reserved",
		[FRAME_ERR_KEY_LEN] = "key_len",
		[FRAME_ERR_KEY] = "key",
		[FRAME_ERR_PAYLOAD_LEN] = "payload_len",
		[FRAME_ERR_PAYLOAD_SIZE] = "payload_size",
		[FRAME_ERR_EVENT_ID] = "event_id",
		[FRAME_ERR_CRC] = "crc",
		[FRAME_ERR_TRUNCATED] = "truncated",
		[FRAME_ERR_ABORTED] = "aborted",
		[FRAME_ERR_NOMEM] = "nomem",
		[FRAME_ERR_CHUNKS] = "chunks",
	};
	if ((unsigned)kind >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[kind];
}

size_t frame_dtype_sample_size(unsigned dtype)
{
	return dtype < sizeof(dtype_sizes) ? dtype_sizes[dtype] : 0;
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

__attribute__((format(printf, 5, 6)))
static int set_error(struct frame_error *err, enum frame_error_kind kind,
		     uint64_t frame_offset, uint64_t offset, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -EPROTO;
	err->kind = kind;
	err->frame_offset = frame_offset;
	err->offset = offset;
	va_start(ap, fmt);
	vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
	va_end(ap);
	return -EPROTO;
}

/* ---- validation, shared by the stream decoder, the datagram decoder and
 * the encoder ---- */

static int check_magic(const uint8_t *head, size_t have, uint64_t at,
		       struct frame_error *err)
{
	for (size_t i = 0; i < 4 && i < have; i++) {
		if (head[i] != (uint8_t)FRAME_MAGIC[i])
			return set_error(err, FRAME_ERR_MAGIC, at, at + i,
					 "bad magic: byte %zu is 0x%02x, expected '%c' of \"H5RF\"",
					 i, head[i], FRAME_MAGIC[i]);
	}
	return 0;
}

static int check_type(uint8_t type, enum frame_peer peer, uint64_t at,
		      struct frame_error *err)
{
	uint64_t off = at + OFF_TYPE;

	if (type < FRAME_DATA || type > FRAME_ERROR)
		return set_error(err, FRAME_ERR_TYPE, at, off, "unknown frame type %u", type);
	if (peer == FRAME_FROM_SENDER && (type == FRAME_ACK || type == FRAME_ERROR))
		return set_error(err, FRAME_ERR_TYPE, at, off,
				 "%s frame from a sender (%s goes from recorder to sender only)",
				 type_names[type], type_names[type]);
	if (peer == FRAME_FROM_RECORDER && type != FRAME_ACK && type != FRAME_DESCRIBE &&
	    type != FRAME_ERROR)
		return set_error(err, FRAME_ERR_TYPE, at, off,
				 "%s frame from the recorder (only ACK, DESCRIBE or ERROR expected)",
				 type_names[type]);
	return 0;
}

/* DATA carries samples and must say of what; EVENT and HELLO carry a
 * line-protocol field set and ACK nothing, so their dtype must be 0. */
static int check_dtype(uint8_t type, uint8_t dtype, uint64_t at, struct frame_error *err)
{
	uint64_t off = at + OFF_DTYPE;

	if (dtype > DTYPE_FLOAT64)
		return set_error(err, FRAME_ERR_DTYPE, at, off, "unknown dtype %u (0..10)", dtype);
	if (type == FRAME_DATA && dtype == DTYPE_NONE)
		return set_error(err, FRAME_ERR_DTYPE, at, off, "DATA frame with dtype 0 (none)");
	if (type != FRAME_DATA && dtype != DTYPE_NONE)
		return set_error(err, FRAME_ERR_DTYPE, at, off,
				 "%s frame with dtype %u (%s); it must be 0", type_names[type],
				 dtype, dtype_names[dtype]);
	return 0;
}

/* DATA names a channel and EVENT a stream: an empty key can never route. */
static int check_key_len(uint8_t type, uint16_t key_len, uint64_t at,
			 struct frame_error *err)
{
	uint64_t off = at + OFF_KEY_LEN;

	if (key_len > FRAME_MAX_KEY)
		return set_error(err, FRAME_ERR_KEY_LEN, at, off, "key_len %u above %u",
				 key_len, FRAME_MAX_KEY);
	if (key_len == 0 && (type == FRAME_DATA || type == FRAME_EVENT || type == FRAME_DESCRIBE))
		return set_error(err, FRAME_ERR_KEY_LEN, at, off, "%s frame with an empty key",
				 type_names[type]);
	return 0;
}

static int check_payload_len(const uint8_t *head, uint64_t max_frame, uint64_t at,
			     struct frame_error *err)
{
	uint32_t payload_len = get_le32(head + OFF_PAYLOAD_LEN);
	uint64_t off = at + OFF_PAYLOAD_LEN;
	size_t sample_size = frame_dtype_sample_size(head[OFF_DTYPE]);

	if (payload_len > max_frame)
		return set_error(err, FRAME_ERR_PAYLOAD_LEN, at, off,
				 "payload_len %u above max_frame %llu", payload_len,
				 (unsigned long long)max_frame);
	if (head[OFF_TYPE] == FRAME_DATA && !(head[OFF_FLAGS] & FRAME_FLAG_CHUNKS) &&
	    payload_len % sample_size != 0)
		return set_error(err, FRAME_ERR_PAYLOAD_SIZE, at, off,
				 "DATA payload_len %u is not a whole number of %s samples (%zu bytes)",
				 payload_len, dtype_names[head[OFF_DTYPE]], sample_size);
	return 0;
}

/* The fields after the magic, each checked once all its bytes are there. */
static int check_fields(const uint8_t *head, size_t have, const struct frame_options *options,
			uint64_t at, struct frame_error *err)
{
	int rc = 0;

	if (have > OFF_VERSION && head[OFF_VERSION] != FRAME_VERSION)
		return set_error(err, FRAME_ERR_VERSION, at, at + OFF_VERSION,
				 "unsupported version %u (expected %u)", head[OFF_VERSION],
				 FRAME_VERSION);
	if (have > OFF_TYPE && (rc = check_type(head[OFF_TYPE], options->peer, at, err)))
		return rc;
	if (have > OFF_DTYPE && (rc = check_dtype(head[OFF_TYPE], head[OFF_DTYPE], at, err)))
		return rc;
	if (have > OFF_FLAGS && (head[OFF_FLAGS] & ~FRAME_FLAGS_KNOWN))
		return set_error(err, FRAME_ERR_FLAGS, at, at + OFF_FLAGS,
				 "reserved flag bits 0x%02x set",
				 (unsigned)(head[OFF_FLAGS] & ~FRAME_FLAGS_KNOWN));
	if (have > OFF_FLAGS && (head[OFF_FLAGS] & FRAME_FLAG_CHUNKS) && head[OFF_TYPE] != FRAME_DATA)
		return set_error(err, FRAME_ERR_FLAGS, at, at + OFF_FLAGS,
				 "chunks flag (0x04) on a %s frame (DATA only)",
				 type_names[head[OFF_TYPE]]);
	if (have >= OFF_RESERVED &&
	    (rc = check_key_len(head[OFF_TYPE], get_le16(head + OFF_KEY_LEN), at, err)))
		return rc;
	if (have >= OFF_PAYLOAD_LEN && get_le16(head + OFF_RESERVED) != 0)
		return set_error(err, FRAME_ERR_RESERVED, at, at + OFF_RESERVED,
				 "reserved field is 0x%04x (must be 0)",
				 get_le16(head + OFF_RESERVED));
	if (have >= OFF_SEQ && (rc = check_payload_len(head, options->max_frame, at, err)))
		return rc;
	if (have >= FRAME_HEADER_SIZE && head[OFF_TYPE] == FRAME_EVENT &&
	    get_le64(head + OFF_EVENT_ID) == 0)
		return set_error(err, FRAME_ERR_EVENT_ID, at, at + OFF_EVENT_ID,
				 "EVENT frame with event_id 0");
	return 0;
}

/* Check the first `have` bytes of a header; fields not yet complete wait. */
static int check_header_prefix(const uint8_t *head, size_t have,
			       const struct frame_options *options, uint64_t at,
			       struct frame_error *err)
{
	int rc = check_magic(head, have, at, err);

	return rc ? rc : check_fields(head, have, options, at, err);
}

static int check_key(const uint8_t *key, size_t key_len, uint64_t at,
		     struct frame_error *err)
{
	uint64_t key_at = at + FRAME_HEADER_SIZE;

	for (size_t i = 0; i < key_len;) {
		size_t step = utf8_sequence_length(key + i, key_len - i);
		if (key[i] == 0)
			return set_error(err, FRAME_ERR_KEY, at, key_at + i,
					 "key holds a NUL byte at key byte %zu", i);
		if (step == 0)
			return set_error(err, FRAME_ERR_KEY, at, key_at + i,
					 "key is not valid UTF-8 at key byte %zu (0x%02x)", i,
					 key[i]);
		i += step;
	}
	return 0;
}

static size_t trailer_size(const uint8_t *head)
{
	return (head[OFF_FLAGS] & FRAME_FLAG_CRC) ? FRAME_CRC_SIZE : 0;
}

/* head holds header and key. */
static int check_crc(const uint8_t *head, const uint8_t *payload, const uint8_t *trailer,
		     uint64_t at, struct frame_error *err)
{
	size_t key_len = get_le16(head + OFF_KEY_LEN);
	size_t payload_len = get_le32(head + OFF_PAYLOAD_LEN);
	uint32_t expected, computed;

	if (!trailer_size(head))
		return 0;
	expected = get_le32(trailer);
	computed = frame_crc(head, head + FRAME_HEADER_SIZE, key_len, payload, payload_len);
	if (expected != computed)
		return set_error(err, FRAME_ERR_CRC, at,
				 at + FRAME_HEADER_SIZE + key_len + payload_len,
				 "CRC-32C mismatch: trailer 0x%08x, computed 0x%08x", expected,
				 computed);
	return 0;
}

/* A FRAME_FLAG_CHUNKS payload must hold what it says, checked after the
 * CRC (a corrupt table is reported as the CRC error it is). */
static int check_chunk_payload(const uint8_t *head, const uint8_t *payload, uint64_t at,
			       struct frame_error *err)
{
	struct frame_chunks chunks;

	if (!(head[OFF_FLAGS] & FRAME_FLAG_CHUNKS))
		return 0;
	int rc = frame_chunks_open(payload, get_le32(head + OFF_PAYLOAD_LEN),
				   frame_dtype_sample_size(head[OFF_DTYPE]),
				   at + FRAME_HEADER_SIZE + get_le16(head + OFF_KEY_LEN), &chunks, err);
	if (rc && err)
		err->frame_offset = at;
	return rc;
}

static void fill_frame(struct frame *frame, const uint8_t *head, const uint8_t *payload,
		       uint64_t at)
{
	frame->type = (enum frame_type)head[OFF_TYPE];
	frame->dtype = (enum dtype)head[OFF_DTYPE];
	frame->flags = head[OFF_FLAGS];
	frame->seq = get_le64(head + OFF_SEQ);
	frame->t0 = (int64_t)get_le64(head + OFF_T0);
	frame->event_id = get_le64(head + OFF_EVENT_ID);
	frame->key = (const char *)head + FRAME_HEADER_SIZE;
	frame->key_len = get_le16(head + OFF_KEY_LEN);
	frame->payload = payload;
	frame->payload_len = get_le32(head + OFF_PAYLOAD_LEN);
	frame->offset = at;
	frame->lost_before = 0;
}

uint64_t frame_seq_observe(struct frame_seq *tracker, uint64_t seq)
{
	uint64_t lost = 0;

	if (tracker->started && seq > tracker->expected)
		lost = seq - tracker->expected;
	else if (tracker->started && seq < tracker->expected)
		tracker->backwards++;
	tracker->lost = tracker->lost + lost < tracker->lost ? UINT64_MAX : tracker->lost + lost;
	tracker->started = true;
	tracker->expected = seq + 1;
	return lost;
}

/* ACK seq is the recorder's durable point, not a frame counter; an ERROR's
 * is the refused frame's. */
static void track_seq(struct frame_seq *tracker, struct frame *frame)
{
	if (tracker && frame->type != FRAME_ACK && frame->type != FRAME_ERROR)
		frame->lost_before = frame_seq_observe(tracker, frame->seq);
}

static uint64_t clamp_max_frame(uint64_t max_frame)
{
	return max_frame > FRAME_MAX_PAYLOAD ? FRAME_MAX_PAYLOAD : max_frame;
}

/* ---- the stream decoder ---- */

struct frame_decoder *frame_decoder_new(const struct frame_options *options,
					frame_cb cb, void *user)
{
	struct frame_decoder *decoder = calloc(1, sizeof(*decoder));

	if (!decoder)
		return NULL;
	decoder->options = *options;
	decoder->options.max_frame = clamp_max_frame(options->max_frame);
	decoder->cb = cb;
	decoder->user = user;
	return decoder;
}

void frame_decoder_set_max_frame(struct frame_decoder *decoder, uint64_t max_frame)
{
	decoder->options.max_frame = clamp_max_frame(max_frame);
}

void frame_decoder_free(struct frame_decoder *decoder)
{
	if (!decoder)
		return;
	free(decoder->body);
	free(decoder);
}

void frame_decoder_set_payload_fn(struct frame_decoder *decoder, frame_payload_fn fn)
{
	decoder->payload_fn = fn;
}

size_t frame_decoder_read_space(const struct frame_decoder *decoder, void **dst)
{
	size_t payload_len;

	if (decoder->failed || !decoder->payload_dst)
		return 0;
	payload_len = get_le32(decoder->head + OFF_PAYLOAD_LEN);
	if (decoder->body_have >= payload_len)
		return 0;
	*dst = decoder->payload_dst + decoder->body_have;
	return payload_len - decoder->body_have;
}

const struct frame_stats *frame_decoder_stats(const struct frame_decoder *decoder)
{
	return &decoder->stats;
}

size_t frame_decoder_buffer_capacity(const struct frame_decoder *decoder)
{
	return decoder->body_cap;
}

static int decoder_fail(struct frame_decoder *decoder, int code)
{
	decoder->failed = code;
	return code;
}

/* Copy up to `want` bytes of the input into dst; returns how many. Input
 * that was read into dst already (frame_decoder_read_space) stays put. */
static size_t take(struct frame_decoder *decoder, uint8_t *dst, size_t want,
		   const uint8_t **data, size_t *len)
{
	size_t n = want < *len ? want : *len;

	if (n && dst != *data)
		memcpy(dst, *data, n);
	*data += n;
	*len -= n;
	decoder->stats.bytes += n;
	return n;
}

/* Header, then key, into decoder->head. Returns 1 when both are complete,
 * 0 when more input is needed, or a negative code. */
static int read_head(struct frame_decoder *decoder, const uint8_t **data, size_t *len)
{
	size_t need, got;

	if (decoder->head_have == 0)
		decoder->frame_offset = decoder->stats.bytes;
	if (decoder->head_have < FRAME_HEADER_SIZE) {
		got = take(decoder, decoder->head + decoder->head_have,
			   FRAME_HEADER_SIZE - decoder->head_have, data, len);
		decoder->head_have += got;
		if (got && check_header_prefix(decoder->head, decoder->head_have,
					       &decoder->options, decoder->frame_offset,
					       &decoder->error))
			return -EPROTO;
		if (decoder->head_have < FRAME_HEADER_SIZE)
			return 0;
	}
	need = FRAME_HEADER_SIZE + get_le16(decoder->head + OFF_KEY_LEN);
	if (decoder->head_have < need) {
		decoder->head_have += take(decoder, decoder->head + decoder->head_have,
					   need - decoder->head_have, data, len);
		if (decoder->head_have < need)
			return 0;
		if (check_key(decoder->head + FRAME_HEADER_SIZE, need - FRAME_HEADER_SIZE,
			      decoder->frame_offset, &decoder->error))
			return -EPROTO;
	}
	decoder->head[need] = 0;
	return 1;
}

static size_t body_size(const uint8_t *head)
{
	return (size_t)get_le32(head + OFF_PAYLOAD_LEN) + trailer_size(head);
}

static int reserve_body(struct frame_decoder *decoder, size_t size)
{
	size_t cap;

	if (decoder->body_cap >= size)
		return 0;
	cap = decoder->body_cap * 2;
	if (cap < FRAME_MIN_BUFFER)
		cap = FRAME_MIN_BUFFER;
	if (cap < size || cap > decoder->options.max_frame + FRAME_CRC_SIZE)
		cap = size;
	free(decoder->body);
	decoder->body = malloc(cap);
	decoder->body_cap = decoder->body ? cap : 0;
	if (!decoder->body) {
		set_error(&decoder->error, FRAME_ERR_NOMEM, decoder->frame_offset,
			  decoder->stats.bytes, "out of memory buffering a %zu-byte payload",
			  size);
		return -ENOMEM;
	}
	return 0;
}

/* Where a cut frame's payload and trailer go: the user's buffer when its
 * payload function gives one, else ours. */
static int place_body(struct frame_decoder *decoder)
{
	size_t payload_len = get_le32(decoder->head + OFF_PAYLOAD_LEN);
	uint8_t *dst = NULL;
	int rc;

	if (decoder->payload_fn && payload_len > 0) {
		struct frame frame;
		fill_frame(&frame, decoder->head, NULL, decoder->frame_offset);
		dst = decoder->payload_fn(decoder->user, &frame);
	}
	if (dst) {
		decoder->payload_dst = dst;
		decoder->trailer_dst = decoder->trailer;
		return 0;
	}
	if ((rc = reserve_body(decoder, body_size(decoder->head))))
		return rc;
	decoder->payload_dst = decoder->body;
	decoder->trailer_dst = decoder->body + payload_len;
	return 0;
}

/* Payload and trailer: in place when all of it is in the input, else
 * assembled where place_body() said. Returns 1 with *payload and *trailer
 * set when complete, 0 for more input, or a negative code. */
static int read_body(struct frame_decoder *decoder, const uint8_t **data, size_t *len,
		     const uint8_t **payload, const uint8_t **trailer)
{
	size_t payload_len = get_le32(decoder->head + OFF_PAYLOAD_LEN);
	size_t need = body_size(decoder->head);
	int rc;

	if (decoder->body_have == 0 && *len >= need) {
		*payload = *data;
		*trailer = *data + payload_len;
		*data += need;
		*len -= need;
		decoder->stats.bytes += need;
		return 1;
	}
	if (*len == 0)
		return 0; /* the next slice may hold the whole body */
	if (decoder->body_have == 0 && (rc = place_body(decoder)))
		return rc;
	if (decoder->body_have < payload_len)
		decoder->body_have += take(decoder, decoder->payload_dst + decoder->body_have,
					   payload_len - decoder->body_have, data, len);
	if (decoder->body_have >= payload_len)
		decoder->body_have += take(decoder,
					   decoder->trailer_dst + (decoder->body_have - payload_len),
					   need - decoder->body_have, data, len);
	if (decoder->body_have < need)
		return 0;
	*payload = decoder->payload_dst;
	*trailer = decoder->trailer_dst;
	return 1;
}

static void reset_for_next_frame(struct frame_decoder *decoder)
{
	decoder->head_have = 0;
	decoder->body_have = 0;
	decoder->payload_dst = NULL;
	decoder->trailer_dst = NULL;
	if (decoder->body_cap > FRAME_KEEP_BUFFER) {
		free(decoder->body);
		decoder->body = NULL;
		decoder->body_cap = 0;
	}
}

static int deliver(struct frame_decoder *decoder, const uint8_t *payload,
		   const uint8_t *trailer)
{
	struct frame frame;
	int rc;

	if (check_crc(decoder->head, payload, trailer, decoder->frame_offset, &decoder->error) ||
	    check_chunk_payload(decoder->head, payload, decoder->frame_offset, &decoder->error))
		return -EPROTO;
	fill_frame(&frame, decoder->head, payload, decoder->frame_offset);
	track_seq(&decoder->seq, &frame);
	decoder->stats.lost = decoder->seq.lost;
	decoder->stats.seq_backwards = decoder->seq.backwards;
	decoder->stats.frames++;
	if (trailer_size(decoder->head))
		decoder->stats.crc_checked++;
	rc = decoder->cb ? decoder->cb(decoder->user, &frame) : 0;
	reset_for_next_frame(decoder);
	if (rc < 0)
		set_error(&decoder->error, FRAME_ERR_ABORTED, frame.offset, decoder->stats.bytes,
			  "stopped by the frame callback (%d)", rc);
	return rc < 0 ? rc : 0;
}

static void copy_error(const struct frame_decoder *decoder, struct frame_error *err)
{
	if (err)
		*err = decoder->error;
}

int frame_decoder_feed(struct frame_decoder *decoder, const void *data, size_t len,
		       struct frame_error *err)
{
	const uint8_t *input = data;
	const uint8_t *payload, *trailer;
	int rc = 0;

	while (!decoder->failed) {
		if (len == 0 && decoder->head_have == 0)
			return 0;
		rc = read_head(decoder, &input, &len);
		if (rc == 1)
			rc = read_body(decoder, &input, &len, &payload, &trailer);
		if (rc == 1)
			rc = deliver(decoder, payload, trailer);
		else if (rc == 0)
			return 0;
		if (rc < 0)
			decoder_fail(decoder, rc);
	}
	copy_error(decoder, err);
	return decoder->failed;
}

int frame_decoder_finish(struct frame_decoder *decoder, struct frame_error *err)
{
	size_t have = decoder->head_have + decoder->body_have;
	size_t total;

	if (decoder->failed || have == 0) {
		copy_error(decoder, err);
		return decoder->failed;
	}
	total = decoder->head_have < FRAME_HEADER_SIZE
			? FRAME_HEADER_SIZE
			: FRAME_HEADER_SIZE + get_le16(decoder->head + OFF_KEY_LEN) +
				  body_size(decoder->head);
	set_error(&decoder->error, FRAME_ERR_TRUNCATED, decoder->frame_offset,
		  decoder->stats.bytes, "stream ended inside a frame (%zu of %s%zu bytes)",
		  have, decoder->head_have < FRAME_HEADER_SIZE ? "the header's " : "", total);
	decoder_fail(decoder, -EPROTO);
	copy_error(decoder, err);
	return decoder->failed;
}

/* ---- the datagram decoder ---- */

/* Validate the frame starting at data[0..len), `at` bytes into the datagram:
 * copies header and key into head, points *body at its payload and stores
 * its size. verify_crc is false on the delivery pass, which re-reads frames
 * that were already verified. */
static int parse_whole_frame(const uint8_t *data, size_t len,
			     const struct frame_options *options, uint64_t at,
			     bool verify_crc, uint8_t *head, const uint8_t **body,
			     size_t *size, struct frame_error *err)
{
	size_t head_size, total;
	int rc = check_header_prefix(data, len < FRAME_HEADER_SIZE ? len : FRAME_HEADER_SIZE,
				     options, at, err);

	if (rc)
		return rc;
	head_size = len < FRAME_HEADER_SIZE ? 0 : FRAME_HEADER_SIZE + get_le16(data + OFF_KEY_LEN);
	if (head_size && len >= head_size &&
	    (rc = check_key(data + FRAME_HEADER_SIZE, head_size - FRAME_HEADER_SIZE, at, err)))
		return rc;
	total = head_size ? head_size + body_size(data) : FRAME_HEADER_SIZE;
	if (len < total)
		return set_error(err, FRAME_ERR_TRUNCATED, at, at + len,
				 "datagram ends inside a frame (%zu of %zu bytes)", len, total);
	memcpy(head, data, head_size);
	head[head_size] = 0;
	*body = data + head_size;
	*size = total;
	if (!verify_crc)
		return 0;
	rc = check_crc(head, *body, *body + get_le32(head + OFF_PAYLOAD_LEN), at, err);
	return rc ? rc : check_chunk_payload(head, *body, at, err);
}

static int deliver_datagram(const struct frame_options *options, struct frame_seq *seq,
			    const uint8_t *data, size_t len, frame_cb cb, void *user,
			    struct frame_error *err)
{
	uint8_t head[FRAME_HEAD_SIZE + 1];
	const uint8_t *body = NULL;
	struct frame frame;
	size_t size = 0;
	int rc;

	for (size_t at = 0; at < len; at += size) {
		(void)parse_whole_frame(data + at, len - at, options, at, false, head, &body,
					&size, NULL);
		fill_frame(&frame, head, body, at);
		track_seq(seq, &frame);
		rc = cb ? cb(user, &frame) : 0;
		if (rc < 0) {
			set_error(err, FRAME_ERR_ABORTED, at, at + size,
				  "stopped by the frame callback (%d)", rc);
			return rc;
		}
	}
	return 0;
}

int frame_decode_datagram(const struct frame_options *options, struct frame_seq *seq,
			  const void *data, size_t len, frame_cb cb, void *user,
			  struct frame_error *err)
{
	struct frame_options clamped = *options;
	uint8_t head[FRAME_HEAD_SIZE + 1];
	const uint8_t *bytes = data;
	const uint8_t *body = NULL;
	size_t size = 0;
	int rc;

	clamped.max_frame = clamp_max_frame(options->max_frame);
	if (len == 0)
		return set_error(err, FRAME_ERR_TRUNCATED, 0, 0, "empty datagram");
	for (size_t at = 0; at < len; at += size) {
		rc = parse_whole_frame(bytes + at, len - at, &clamped, at, true, head, &body,
				       &size, err);
		if (rc)
			return rc;
	}
	return deliver_datagram(&clamped, seq, bytes, len, cb, user, err);
}

/* ---- the encoder ---- */

size_t frame_encoded_size(size_t key_len, size_t payload_len, unsigned flags)
{
	return FRAME_HEADER_SIZE + key_len + payload_len +
	       ((flags & FRAME_FLAG_CRC) ? FRAME_CRC_SIZE : 0);
}

int frame_encode_header(const struct frame *frame, uint8_t header[FRAME_HEADER_SIZE])
{
	struct frame_options receiver = {
		.max_frame = FRAME_MAX_PAYLOAD,
		.peer = frame->type == FRAME_ACK || frame->type == FRAME_ERROR ? FRAME_FROM_RECORDER
									 : FRAME_FROM_SENDER,
	};

	if (frame->type < FRAME_DATA || frame->type > FRAME_ERROR ||
	    (unsigned)frame->dtype > DTYPE_FLOAT64 || frame->key_len > FRAME_MAX_KEY ||
	    frame->payload_len > FRAME_MAX_PAYLOAD)
		return -EINVAL;
	memcpy(header, FRAME_MAGIC, 4);
	header[OFF_VERSION] = FRAME_VERSION;
	header[OFF_TYPE] = (uint8_t)frame->type;
	header[OFF_DTYPE] = (uint8_t)frame->dtype;
	header[OFF_FLAGS] = frame->flags;
	put_le16(header + OFF_KEY_LEN, (uint16_t)frame->key_len);
	put_le16(header + OFF_RESERVED, 0);
	put_le32(header + OFF_PAYLOAD_LEN, (uint32_t)frame->payload_len);
	put_le64(header + OFF_SEQ, frame->seq);
	put_le64(header + OFF_T0, (uint64_t)frame->t0);
	put_le64(header + OFF_EVENT_ID, frame->event_id);
	/* The receiver's own checks, so encoder and decoder cannot disagree. */
	if (check_header_prefix(header, FRAME_HEADER_SIZE, &receiver, 0, NULL))
		return -EINVAL;
	return 0;
}

uint32_t frame_crc(const uint8_t header[FRAME_HEADER_SIZE], const void *key,
		   size_t key_len, const void *payload, size_t payload_len)
{
	uint32_t crc = crc32c_update(0, header, FRAME_HEADER_SIZE);

	crc = crc32c_update(crc, key, key_len);
	return crc32c_update(crc, payload, payload_len);
}

int frame_encode_iov(const struct frame *frame, const struct iovec *iov, int iovcnt, void *out,
		     size_t out_len, size_t *written)
{
	uint8_t header[FRAME_HEADER_SIZE];
	uint8_t *dst = out;
	size_t size;
	int rc = frame_encode_header(frame, header);

	if (rc)
		return rc;
	if (check_key((const uint8_t *)frame->key, frame->key_len, 0, NULL))
		return -EINVAL;
	size = frame_encoded_size(frame->key_len, frame->payload_len, frame->flags);
	if (out_len < size)
		return -ENOSPC;
	memcpy(dst, header, FRAME_HEADER_SIZE);
	if (frame->key_len)
		memcpy(dst + FRAME_HEADER_SIZE, frame->key, frame->key_len);
	uint8_t *payload = dst + FRAME_HEADER_SIZE + frame->key_len, *at = payload;
	for (int i = 0; i < iovcnt; i++) {
		size_t n = iov[i].iov_len;
		if ((size_t)(at - payload) + n > frame->payload_len)
			return -EINVAL;
		if (n)
			memcpy(at, iov[i].iov_base, n);
		at += n;
	}
	if ((size_t)(at - payload) != frame->payload_len)
		return -EINVAL;
	if (frame->flags & FRAME_FLAG_CRC)
		put_le32(dst + size - FRAME_CRC_SIZE,
			 frame_crc(header, frame->key, frame->key_len, payload, frame->payload_len));
	*written = size;
	return 0;
}

int frame_encode(const struct frame *frame, void *out, size_t out_len, size_t *written)
{
	struct iovec one = {.iov_base = (void *)frame->payload, .iov_len = frame->payload_len};

	return frame_encode_iov(frame, &one, 1, out, out_len, written);
}

/* ---- pre-compressed chunks ---- */

int frame_chunks_open(const void *payload, size_t len, size_t sample_size, uint64_t at,
		      struct frame_chunks *out, struct frame_error *err)
{
	const uint8_t *p = payload;
	uint64_t stored = 0;
	uint32_t count;

	if (len < FRAME_CHUNKS_HEAD)
		return set_error(err, FRAME_ERR_CHUNKS, at, at,
				 "chunk payload of %zu bytes, shorter than its 8-byte head", len);
	count = get_le32(p + 4);
	if (count == 0 || count > FRAME_CHUNKS_MAX)
		return set_error(err, FRAME_ERR_CHUNKS, at, at + 4,
				 "chunk count %u (1..%u)", count, FRAME_CHUNKS_MAX);
	if ((len - FRAME_CHUNKS_HEAD) / FRAME_CHUNK_ENTRY < count)
		return set_error(err, FRAME_ERR_CHUNKS, at, at + 4,
				 "chunk table of %u entries does not fit a %zu-byte payload",
				 count, len);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *e = p + FRAME_CHUNKS_HEAD + (size_t)i * FRAME_CHUNK_ENTRY;
		uint64_t off = at + (uint64_t)(e - p);
		uint32_t size = get_le32(e);
		uint64_t raw = get_le64(e + 8);
		if (size == 0)
			return set_error(err, FRAME_ERR_CHUNKS, at, off, "chunk %u: stored size 0", i);
		if (raw == 0 || !sample_size || raw % sample_size)
			return set_error(err, FRAME_ERR_CHUNKS, at, off + 8,
					 "chunk %u: uncompressed size %llu is not a whole, "
					 "non-zero number of %zu-byte samples", i,
					 (unsigned long long)raw, sample_size);
		stored += size;
	}
	size_t data_at = FRAME_CHUNKS_HEAD + (size_t)count * FRAME_CHUNK_ENTRY;
	if (stored != len - data_at)
		return set_error(err, FRAME_ERR_CHUNKS, at, at + data_at,
				 "chunks' stored sizes add up to %llu bytes, the payload holds %zu",
				 (unsigned long long)stored, len - data_at);
	out->pipeline_id = get_le32(p);
	out->count = count;
	out->table = p + FRAME_CHUNKS_HEAD;
	out->data = p + data_at;
	return 0;
}

void frame_chunks_get(const struct frame_chunks *chunks, uint32_t i, size_t *offset,
		      struct frame_chunk *out)
{
	const uint8_t *e = chunks->table + (size_t)i * FRAME_CHUNK_ENTRY;

	out->stored_size = get_le32(e);
	out->filter_mask = get_le32(e + 4);
	out->raw_size = get_le64(e + 8);
	out->data = chunks->data + *offset;
	*offset += out->stored_size;
}

void frame_chunks_put_head(uint8_t *out, uint32_t pipeline_id, uint32_t count)
{
	put_le32(out, pipeline_id);
	put_le32(out + 4, count);
}

void frame_chunks_put_entry(uint8_t *out, uint32_t i, uint32_t stored_size,
			    uint32_t filter_mask, uint64_t raw_size)
{
	uint8_t *e = out + FRAME_CHUNKS_HEAD + (size_t)i * FRAME_CHUNK_ENTRY;

	put_le32(e, stored_size);
	put_le32(e + 4, filter_mask);
	put_le64(e + 8, raw_size);
}
