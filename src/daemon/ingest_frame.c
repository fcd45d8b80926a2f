/*
 * ingest_frame.c - frames from the network to writer items (see
 * ingest_frame.h).
 *
 * Every frame is validated completely on the loop thread — protocol by the
 * decoder, names by the router, shapes against the schema — so that what
 * reaches the writer can be stored without surprises, and so that an error
 * can close exactly the connection that caused it. Frames accepted before
 * the bad one have already been queued and are kept.
 *
 * ACKs: a frame with "ack requested" is remembered as (number of the last
 * item queued so far, seq). When the writer reports that every item below
 * some number is durable (flushed and fsync'd), all remembered frames below
 * it are durable too and one ACK carries the highest of their seqs. The list
 * of remembered frames is bounded: when it is full, the newest entry is
 * replaced, which can only delay an ACK, never send one too early. Items
 * carry the id of the connection they came from; when the writer could not
 * store one, that connection gets no more ACKs and is closed, so its
 * sender never takes lost data for durable.
 *
 * Payloads: a DATA frame cut by the end of a read (every large one: reads
 * are 64 KiB) is assembled by the decoder straight inside the item that
 * will carry it, allocated as soon as the frame's header is known
 * (frame_decoder_set_payload_fn); the connection holds that item until the
 * frame is delivered, and frees it if the frame is refused. The rest of
 * such a payload is read from the socket straight into the item
 * (ingest_frame_read_space), so most of its bytes are never copied in user
 * space; only the part that came with the header, in the connection's read
 * buffer, is. After a large DATA frame the next read into that buffer is
 * kept short (HEADER_READ), so that for a sender of large frames the next
 * one's header comes with little of its payload, and the rest of the
 * payload, not 64 KiB of it, goes straight into its item. A frame that
 * arrived whole in one read is copied from the read buffer into its item.
 *
 * Pre-compressed chunks (issue 19): a sender asks how a channel stores
 * its chunks with a DESCRIBE frame and gets the canonical pipeline text
 * (src/proto/pipeline.h) with its id back; DATA frames with
 * FRAME_FLAG_CHUNKS then carry chunks made for that id. What can be judged
 * from the frame (layout, dtype, id, sizes) is judged here; the chunk's
 * bytes are checked by the engine on the writer thread, which refuses a
 * corrupt one like any data it cannot store (no ACK, connection closed).
 * A sender that has sent DESCRIBE understands ERROR frames: a refusal
 * decided here, or a chunk the writer refused (ingest_frame_send_refusal),
 * is also sent to it, with the reason, before the close.
 */
#include "ingest_frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "ingest_fields.h"
#include "pipeline.h"

enum {
	ACK_PENDING_MAX = 4096,
	/* Before a token listener's HELLO is checked, no frame may be larger:
	 * a HELLO is a name and a token, and an unauthenticated peer must not
	 * make the recorder buffer payloads of max_frame. */
	PREAUTH_MAX_FRAME = 4096,
	/* Less of a payload than this left to come is read through the
	 * connection's buffer: copying it costs less than the extra read a
	 * separate one would take (the next frame's header comes with it). */
	DIRECT_READ_MIN = 16 * 1024,
	/* A payload at least this large is read mostly straight into its
	 * item, and so is the next one, probably: the read after it into the
	 * connection's buffer takes HEADER_READ bytes, room for the trailer,
	 * a header and the longest key. With smaller frames a full read
	 * brings several at once, which saves reads. */
	LARGE_PAYLOAD = 64 * 1024,
	HEADER_READ = 2048,
	/* A sender asks once per key and connection; the answers are queued
	 * for a peer that may never read them, so their number is bounded
	 * (about 1 MiB of answers at most). */
	DESCRIBE_MAX = 4096,
};

struct ack_pending {
	uint64_t item; /* durable once every item below item + 1 is */
	uint64_t seq;
};

struct ingest_frame_conn {
	struct ingest *ingest;
	struct net_conn *conn;
	const struct schema_listen *listen;
	struct frame_decoder *decoder;
	char peer[80];
	uint64_t id;        /* the source id of its items */
	bool authenticated; /* the listener's token was presented, or none needed */
	bool described;     /* it sent DESCRIBE, so it understands ERROR frames */
	unsigned describes; /* DESCRIBE frames answered (DESCRIBE_MAX) */
	bool first_frame_seen;
	bool large_frames;  /* its last DATA frame had a LARGE_PAYLOAD */
	/* ACK bookkeeping, in ingest->ack_conns while pending is in use. */
	struct ingest_frame_conn *ack_prev, *ack_next;
	bool on_ack_list;
	struct ack_pending *pending;
	size_t pending_head, pending_count;
	bool lost;         /* data from it could not be stored: no more ACKs */
	/* The item a cut DATA frame's payload is being decoded into; owned
	 * here until that frame is queued. */
	struct ingest_item *payload_item;
};

/* ---- shapes -------------------------------------------------------------- */

/* What the schema requires of a DATA frame beyond its key. */
static int check_data_shape(struct ingest *ingest, const struct route *route,
			    const struct frame *frame, const char *peer)
{
	const struct schema_stream *stream = route->stream;
	size_t nsamples = frame->payload_len / dtype_size(frame->dtype);

	if (stream->layout == SCHEMA_LAYOUT_TABLE) {
		ingest_error(ingest, INGEST_BAD_DATA,
			     "%s: frame at offset %llu: stream '%s' has the table layout, "
			     "which takes lines, not DATA frames",
			     peer, (unsigned long long)frame->offset, stream->name);
		return -EPROTO;
	}
	if (stream->layout == SCHEMA_LAYOUT_RECORDS && nsamples != stream->samples &&
	    !(frame->flags & FRAME_FLAG_CHUNKS)) {
		ingest_error(ingest, INGEST_BAD_DATA,
			     "%s: frame at offset %llu, key '%s': waveform of %zu samples, "
			     "stream '%s' records %llu",
			     peer, (unsigned long long)frame->offset, frame->key, nsamples,
			     stream->name, (unsigned long long)stream->samples);
		return -EPROTO;
	}
	if (stream->channels[route->channel].dtype == DTYPE_STRING) {
		ingest_error(ingest, INGEST_BAD_DATA,
			     "%s: frame at offset %llu: channel '%s' holds strings",
			     peer, (unsigned long long)frame->offset,
			     stream->channels[route->channel].name);
		return -EPROTO;
	}
	return 0;
}

static enum ingest_counter route_counter(enum router_status status)
{
	switch (status) {
	case ROUTER_NO_CHANNEL:
		return INGEST_UNKNOWN_CHANNEL;
	case ROUTER_BAD_VALUE:
	case ROUTER_MISSING_TAG:
		return INGEST_BAD_PLACEHOLDER;
	case ROUTER_WRONG_KIND:
		return INGEST_BAD_DATA;
	default:
		return INGEST_UNKNOWN_STREAM;
	}
}

/* Route and register the group; on failure count, log and return < 0. */
static int frame_group(struct ingest *ingest, const struct frame *frame, const char *peer,
		       struct route *route, uint32_t *group)
{
	char reason[256];
	enum router_status st =
		frame->type == FRAME_EVENT
			? router_event_key(ingest->schema, frame->key, route, reason, sizeof(reason))
			: router_data_key(ingest->schema, frame->key, route, reason, sizeof(reason));
	if (st != ROUTER_OK) {
		ingest_error(ingest, route_counter(st), "%s: frame at offset %llu: %s", peer,
			     (unsigned long long)frame->offset, reason);
		return -EPROTO;
	}
	int err = ingest_group_id(ingest, route, peer, group);
	if (err == -EMLINK) {
		ingest_error(ingest, INGEST_GROUP_LIMIT,
			     "%s: frame at offset %llu: key '%s' needs a new group, and the file "
			     "holds limits.max_groups (%llu) groups",
			     peer, (unsigned long long)frame->offset, frame->key,
			     (unsigned long long)ingest->schema->limits.max_groups);
		return err;
	}
	return err;
}

/* ---- pre-compressed chunks ------------------------------------------------ */

/* How CHANNEL of STREAM stores its chunks, as a sender must encode them;
 * -EINVAL with the reason when it takes no pre-compressed chunks. */
static int channel_pipeline(const struct schema_stream *stream, size_t channel,
			    struct pipeline *p, char *why, size_t why_len)
{
	const struct schema_channel *ch = &stream->channels[channel];

	bool records = stream->layout == SCHEMA_LAYOUT_RECORDS;

	if (stream->layout == SCHEMA_LAYOUT_TABLE) {
		snprintf(why, why_len, "stream '%s' has layout table; pre-compressed chunks are "
			 "taken for layouts records and stream", stream->name);
		return -EINVAL;
	}
	if ((records && ch->chunk != 1) || ch->dtype == DTYPE_STRING ||
	    ch->compression == SCHEMA_COMPRESSION_SZIP) {
		snprintf(why, why_len, "channel '%s' %s", ch->name,
			 ch->compression != SCHEMA_COMPRESSION_SZIP
				 ? "stores several records per chunk (needs chunk: 1)"
				 : "is compressed with szip, which is not taken pre-compressed");
		return -EINVAL;
	}
	*p = (struct pipeline){
		.layout = records ? PIPELINE_RECORDS : PIPELINE_STREAM,
		.dtype = ch->dtype,
		.chunk = records ? stream->samples : ch->chunk,
		.shuffle = ch->shuffle,
		.codec = ch->compression == SCHEMA_COMPRESSION_LZ4       ? PIPELINE_LZ4
			 : ch->compression == SCHEMA_COMPRESSION_DEFLATE ? PIPELINE_DEFLATE
									 : PIPELINE_NONE,
		.level = ch->level,
		.lz4_block = ch->lz4_block_size,
		.fletcher32 = ch->fletcher32,
	};
	return 0;
}

/* A FRAME_FLAG_CHUNKS frame for ROUTE: chunks made for the channel's
 * pipeline id, in its dtype, each one whole chunk (records: one chunk, the
 * waveform). -EPROTO with the reason. */
static int check_chunks(const struct route *route, const struct frame *frame,
			struct frame_chunk *chunk, char *why, size_t why_len)
{
	const struct schema_stream *stream = route->stream;
	struct frame_chunks chunks;
	struct pipeline p;
	size_t at = 0;

	if (channel_pipeline(stream, route->channel, &p, why, why_len))
		return -EPROTO;
	if (frame_chunks_open(frame->payload, frame->payload_len, dtype_size(frame->dtype), 0,
			      &chunks, NULL))
		return -EPROTO; /* the decoder checked it already */
	if (chunks.pipeline_id != pipeline_id(&p)) {
		char text[PIPELINE_TEXT_MAX];
		pipeline_format(&p, text, sizeof(text));
		snprintf(why, why_len, "pipeline mismatch: chunks made for pipeline id %u, "
			 "channel '%s' stores %s", chunks.pipeline_id,
			 stream->channels[route->channel].name, text);
		return -EPROTO;
	}
	if (frame->dtype != p.dtype || (p.layout == PIPELINE_RECORDS && chunks.count != 1)) {
		snprintf(why, why_len, "%s: chunks of dtype %s%s (got %u of %s)", frame->key,
			 dtype_name(p.dtype),
			 p.layout == PIPELINE_RECORDS ? ", one per frame (a waveform)" : "",
			 chunks.count, dtype_name(frame->dtype));
		return -EPROTO;
	}
	for (uint32_t i = 0; i < chunks.count; i++) {
		frame_chunks_get(&chunks, i, &at, chunk);
		if (chunk->raw_size != p.chunk * dtype_size(p.dtype)) {
			snprintf(why, why_len, "%s: chunk %u of %llu bytes uncompressed, a chunk "
				 "of stream '%s' is %llu", frame->key, i,
				 (unsigned long long)chunk->raw_size, stream->name,
				 (unsigned long long)(p.chunk * dtype_size(p.dtype)));
			return -EPROTO;
		}
	}
	return 0;
}

/* ---- items --------------------------------------------------------------- */

/* The bytes a DATA item holds after the item: the payload, and for
 * pre-compressed chunks the key too (chunk_item). */
static size_t data_item_extra(const struct frame *frame)
{
	return frame->payload_len + (frame->flags & FRAME_FLAG_CHUNKS ? frame->key_len + 1 : 0);
}

/* READY, when not NULL, is an item of data_item_extra() that already
 * holds the payload (the decoder put it there); it is used rather than a
 * copy. */
static struct ingest_item *data_item(const struct frame *frame, const struct route *route,
				     uint32_t group, const char *peer, struct ingest_item *ready)
{
	struct ingest_item *item =
		ready ? ready : ingest_item_new(INGEST_ITEM_DATA, data_item_extra(frame), peer);
	if (!item)
		return NULL;
	item->u.data.group = group;
	item->u.data.channel = (uint32_t)route->channel;
	item->u.data.dtype = frame->dtype;
	item->u.data.t0 = frame->t0;
	item->u.data.seq = frame->seq;
	item->u.data.event_id = frame->event_id;
	item->u.data.nsamples = frame->payload_len / dtype_size(frame->dtype);
	item->u.data.samples = item + 1;
	item->u.data.encoded = false;
	item->u.data.key = NULL;
	if (!ready)
		memcpy(item->u.data.samples, frame->payload, frame->payload_len);
	return item;
}

/* The item of a pre-compressed frame: the payload (chunk table and
 * chunks) as data_item() keeps it; the writer reads the table again.
 * CHUNK is one of its chunks (all are of one size). */
static struct ingest_item *chunk_item(const struct frame *frame, const struct route *route,
				      uint32_t group, const char *peer, struct ingest_item *ready,
				      const struct frame_chunk *chunk)
{
	struct ingest_item *item = data_item(frame, route, group, peer, ready);
	struct frame_chunks chunks;
	if (!item)
		return NULL;
	frame_chunks_open(frame->payload, frame->payload_len, dtype_size(frame->dtype), 0, &chunks,
			  NULL);
	item->u.data.encoded = true;
	item->u.data.stored = frame->payload_len;
	char *key = (char *)(item + 1) + frame->payload_len;
	memcpy(key, frame->key, frame->key_len);
	key[frame->key_len] = 0;
	item->u.data.key = key;
	item->u.data.nsamples =
		(size_t)(chunk->raw_size / dtype_size(frame->dtype)) * chunks.count;
	return item;
}

static struct ingest_item *event_item(struct ingest *ingest, const struct frame *frame,
				      const struct route *route, uint32_t group, const char *peer)
{
	char reason[256];
	struct ingest_item *item = ingest_fields_item(ingest, route->stream, frame->payload,
						      frame->payload_len, peer, reason,
						      sizeof(reason));
	if (!item) {
		ingest_error(ingest, INGEST_BAD_DATA, "%s: EVENT frame at offset %llu: %s", peer,
			     (unsigned long long)frame->offset, reason);
		return NULL;
	}
	item->u.event.group = group;
	item->u.event.event_id = frame->event_id;
	item->u.event.time = frame->t0;
	return item;
}

/* Turn one valid DATA or EVENT frame from connection `source` (0: UDP)
 * into an item; NULL closes the sender (the reason is logged). *ready: an
 * item already holding the DATA payload (see data_item), or NULL; when it
 * is used, *ready is set to NULL, else it stays the caller's. */
static struct ingest_item *frame_item(struct ingest *ingest, const struct frame *frame,
				      const char *peer, uint64_t source,
				      struct ingest_item **ready, char *why, size_t why_len)
{
	struct route route;
	struct frame_chunk chunk;
	uint32_t group;
	struct ingest_item *item;

	if (frame_group(ingest, frame, peer, &route, &group))
		return NULL;
	if (frame->type == FRAME_EVENT) {
		item = event_item(ingest, frame, &route, group, peer);
	} else if (frame->flags & FRAME_FLAG_CHUNKS) {
		if (check_data_shape(ingest, &route, frame, peer))
			return NULL;
		if (check_chunks(&route, frame, &chunk, why, why_len)) {
			ingest_error(ingest, INGEST_BAD_DATA, "%s: frame at offset %llu: %s", peer,
				     (unsigned long long)frame->offset, why);
			return NULL;
		}
		item = chunk_item(frame, &route, group, peer, *ready, &chunk);
		if (item == *ready)
			*ready = NULL;
		if (item) {
			ingest_count_samples(ingest, route.stream, item->u.data.nsamples);
			ingest_count(ingest, INGEST_BYTES, frame->payload_len);
		}
	} else {
		if (check_data_shape(ingest, &route, frame, peer))
			return NULL;
		item = data_item(frame, &route, group, peer, *ready);
		if (item == *ready)
			*ready = NULL;
		if (item) {
			ingest_count_samples(ingest, route.stream, item->u.data.nsamples);
			ingest_count(ingest, INGEST_BYTES, frame->payload_len);
		}
	}
	if (item)
		item->source = source;
	return item;
}

/* ---- HELLO and tokens ----------------------------------------------------- */

/* Token comparison in time independent of where the two differ. */
static bool same_token(const char *given, const char *token)
{
	size_t a = strlen(given), b = strlen(token);
	unsigned char diff = a != b;
	for (size_t i = 0; i < b; i++)
		diff |= (unsigned char)(token[i] ^ given[i < a ? i : 0]);
	return !diff;
}

static int check_hello(struct ingest_frame_conn *fc, const struct frame *frame)
{
	struct ingest *ingest = fc->ingest;
	char token[SCHEMA_TOKEN_MAX + 2]; /* one more than a token may hold: a
					     longer one given does not match */

	if (fc->first_frame_seen) {
		ingest_error(ingest, INGEST_PROTOCOL_ERRORS,
			     "%s: HELLO at offset %llu is not the first frame", fc->peer,
			     (unsigned long long)frame->offset);
		return -EPROTO;
	}
	/* The sender's name makes later messages about it readable. */
	char named[sizeof(fc->peer)];
	snprintf(named, sizeof(named), "%.40s (%.30s)", frame->key, fc->peer);
	memcpy(fc->peer, named, sizeof(fc->peer));
	if (!fc->listen->token)
		return 0;
	int found = ingest_fields_string(ingest, frame->payload, frame->payload_len, "token", token,
					 sizeof(token));
	if (found != 1 || !same_token(token, fc->listen->token)) {
		ingest_error(ingest, INGEST_AUTH_FAILURES, "%s: HELLO with %s token", fc->peer,
			     found == 1 ? "a wrong" : "no");
		return -EACCES;
	}
	fc->authenticated = true;
	frame_decoder_set_max_frame(fc->decoder, ingest->schema->limits.max_frame);
	net_conn_trust(fc->conn);
	return 0;
}

/* ---- ACKs ----------------------------------------------------------------- */

static void ack_list_add(struct ingest_frame_conn *fc)
{
	struct ingest *ingest = fc->ingest;
	if (fc->on_ack_list)
		return;
	fc->ack_prev = NULL;
	fc->ack_next = ingest->ack_conns;
	if (ingest->ack_conns)
		ingest->ack_conns->ack_prev = fc;
	ingest->ack_conns = fc;
	fc->on_ack_list = true;
}

static void ack_list_remove(struct ingest_frame_conn *fc)
{
	if (!fc->on_ack_list)
		return;
	if (fc->ack_prev)
		fc->ack_prev->ack_next = fc->ack_next;
	else
		fc->ingest->ack_conns = fc->ack_next;
	if (fc->ack_next)
		fc->ack_next->ack_prev = fc->ack_prev;
	fc->on_ack_list = false;
}

static int remember_for_ack(struct ingest_frame_conn *fc, uint64_t seq)
{
	uint64_t item = fc->ingest->next_item - 1; /* the last item queued */
	if (!fc->pending) {
		fc->pending = calloc(ACK_PENDING_MAX, sizeof(*fc->pending));
		if (!fc->pending)
			return -ENOMEM;
	}
	ack_list_add(fc);
	if (fc->pending_count == ACK_PENDING_MAX) {
		size_t last = (fc->pending_head + fc->pending_count - 1) % ACK_PENDING_MAX;
		fc->pending[last] = (struct ack_pending){.item = item, .seq = seq};
		return 0;
	}
	size_t at = (fc->pending_head + fc->pending_count) % ACK_PENDING_MAX;
	fc->pending[at] = (struct ack_pending){.item = item, .seq = seq};
	fc->pending_count++;
	return 0;
}

static void send_ack(struct ingest_frame_conn *fc, uint64_t seq)
{
	struct frame ack = {.type = FRAME_ACK, .dtype = DTYPE_NONE, .seq = seq, .key = ""};
	uint8_t buf[FRAME_HEADER_SIZE];
	size_t len;
	if (frame_encode(&ack, buf, sizeof(buf), &len) == 0)
		net_conn_write(fc->conn, buf, len);
}

void ingest_frame_drop_failed(struct ingest *ingest, const uint64_t *failed, size_t nfailed,
			      bool overflow)
{
	for (struct ingest_frame_conn *fc = ingest->ack_conns; fc && (nfailed || overflow);
	     fc = fc->ack_next) {
		bool hit = overflow;
		for (size_t i = 0; i < nfailed && !hit; i++)
			hit = failed[i] == fc->id;
		if (!hit || fc->lost)
			continue;
		fc->lost = true;
		log_msg(LOG_LEVEL_ERROR,
			"%s: frames sent on this connection could not be stored; closing it so "
			"that the sender does not take them as durable", fc->peer);
		net_conn_close(fc->conn);
	}
}

static void send_reply(struct ingest_frame_conn *fc, enum frame_type type, const struct frame *to,
		       const char *text);

void ingest_frame_send_refusal(struct ingest *ingest, const struct progress_refusal *refusal)
{
	for (struct ingest_frame_conn *fc = ingest->ack_conns; fc; fc = fc->ack_next) {
		if (fc->id != refusal->source || fc->lost)
			continue;
		struct frame to = {.seq = refusal->seq, .key = refusal->key,
				   .key_len = strlen(refusal->key)};
		send_reply(fc, FRAME_ERROR, &to, refusal->reason);
		return;
	}
}

void ingest_frame_send_acks(struct ingest *ingest, uint64_t durable_item)
{
	for (struct ingest_frame_conn *fc = ingest->ack_conns; fc; fc = fc->ack_next) {
		if (fc->lost)
			continue;
		bool any = false;
		uint64_t seq = 0;
		while (fc->pending_count && fc->pending[fc->pending_head].item < durable_item) {
			seq = fc->pending[fc->pending_head].seq;
			any = true;
			fc->pending_head = (fc->pending_head + 1) % ACK_PENDING_MAX;
			fc->pending_count--;
		}
		if (any)
			send_ack(fc, seq);
	}
}

/* ---- DESCRIBE and ERROR ---------------------------------------------------- */

static void send_reply(struct ingest_frame_conn *fc, enum frame_type type, const struct frame *to,
		       const char *text)
{
	size_t len = strlen(text);
	struct frame reply = {.type = type, .dtype = DTYPE_NONE, .seq = to->seq,
			      .key = to->key, .key_len = to->key_len, .payload = text,
			      .payload_len = len};
	size_t size = frame_encoded_size(to->key_len, len, 0), written;
	uint8_t *buf = malloc(size);
	if (buf && frame_encode(&reply, buf, size, &written) == 0)
		net_conn_write(fc->conn, buf, written);
	free(buf);
}

/* Tell a sender that speaks DESCRIBE (or sends pre-compressed chunks,
 * which it learnt from DESCRIBE) why its frame is refused. */
static void send_error(struct ingest_frame_conn *fc, const struct frame *frame, const char *why)
{
	if ((fc->described || (frame->flags & FRAME_FLAG_CHUNKS)) && why[0])
		send_reply(fc, FRAME_ERROR, frame, why);
}

/* DESCRIBE: how the key's channel stores chunks (the canonical text of
 * pipeline.h), or error="why" when it takes none. -EPROTO past
 * DESCRIBE_MAX on one connection. */
static int describe(struct ingest_frame_conn *fc, const struct frame *frame)
{
	char reason[256], text[PIPELINE_TEXT_MAX + 300];
	struct route route;
	struct pipeline p;

	fc->described = true;
	if (++fc->describes > DESCRIBE_MAX) {
		ingest_error(fc->ingest, INGEST_PROTOCOL_ERRORS,
			     "%s: more than %d DESCRIBE frames on one connection", fc->peer,
			     DESCRIBE_MAX);
		return -EPROTO;
	}
	if (router_data_key(fc->ingest->schema, frame->key, &route, reason, sizeof(reason)) ==
		    ROUTER_OK &&
	    channel_pipeline(route.stream, route.channel, &p, reason, sizeof(reason)) == 0) {
		pipeline_format(&p, text, sizeof(text));
	} else {
		for (char *c = reason; *c; c++)
			if (*c == '"' || *c == '\\')
				*c = '\'';
		snprintf(text, sizeof(text), "error=\"%s\"", reason);
	}
	send_reply(fc, FRAME_DESCRIBE, frame, text);
	return 0;
}

/* ---- decoding ------------------------------------------------------------- */

/* A seq gap before this frame: count every missing frame, log once. */
static void count_lost(struct ingest *ingest, const char *peer, const struct frame *frame)
{
	if (!frame->lost_before)
		return;
	ingest_error(ingest, INGEST_LOST_FRAMES, "%s: %llu frames missing before seq %llu", peer,
		     (unsigned long long)frame->lost_before, (unsigned long long)frame->seq);
	ingest_count(ingest, INGEST_LOST_FRAMES, frame->lost_before - 1);
}

/* The decoder's payload function: a cut DATA frame is decoded into the
 * item that will carry it. Other frames (and senders that still owe a
 * token) use the decoder's buffer. */
static void *payload_into_item(void *user, const struct frame *frame)
{
	struct ingest_frame_conn *fc = user;

	if (frame->type != FRAME_DATA || !fc->authenticated)
		return NULL;
	ingest_item_free(fc->payload_item);
	fc->payload_item = ingest_item_new(INGEST_ITEM_DATA, data_item_extra(frame), fc->peer);
	return fc->payload_item ? fc->payload_item + 1 : NULL;
}

/* The item the decoder assembled this frame's payload in, if it did. */
static struct ingest_item *assembled_item(struct ingest_frame_conn *fc, const struct frame *frame)
{
	if (fc->payload_item && frame->payload == (const void *)(fc->payload_item + 1))
		return fc->payload_item;
	return NULL;
}

static void drop_payload_item(struct ingest_frame_conn *fc)
{
	ingest_item_free(fc->payload_item);
	fc->payload_item = NULL;
}

static int on_frame(void *user, const struct frame *frame)
{
	struct ingest_frame_conn *fc = user;
	struct ingest *ingest = fc->ingest;

	count_lost(ingest, fc->peer, frame);
	ingest_count(ingest, INGEST_FRAMES, 1);

	int err = 0;
	if (frame->type == FRAME_HELLO) {
		err = check_hello(fc, frame);
	} else if (!fc->authenticated) {
		ingest_error(ingest, INGEST_AUTH_FAILURES,
			     "%s: listener %s requires a HELLO frame with its token first",
			     fc->peer, fc->listen->address);
		err = -EACCES;
	} else if (frame->type == FRAME_DESCRIBE) {
		err = describe(fc, frame);
	} else {
		char why[512] = "";
		if (frame->type == FRAME_DATA) /* an EVENT between waveforms changes nothing */
			fc->large_frames = frame->payload_len >= LARGE_PAYLOAD;
		struct ingest_item *ready = assembled_item(fc, frame);
		if (ready)
			fc->payload_item = NULL; /* now ours here */
		struct ingest_item *item =
			frame_item(ingest, frame, fc->peer, fc->id, &ready, why, sizeof(why));
		ingest_item_free(ready); /* NULL when the item took it */
		if (!item) {
			send_error(fc, frame, why);
			return -EPROTO;
		}
		ingest_push(ingest, item);
	}
	fc->first_frame_seen = true;
	if (!err && (frame->flags & FRAME_FLAG_ACK_REQUESTED))
		err = remember_for_ack(fc, frame->seq);
	return err;
}

static void *ingest_frame_open(void *arg, struct net_conn *conn, const struct net_peer *peer,
			const struct schema_listen *listen)
{
	struct ingest *ingest = arg;
	struct ingest_frame_conn *fc = calloc(1, sizeof(*fc));
	if (!fc)
		return NULL;
	const struct frame_options options = {.max_frame = ingest->schema->limits.max_frame,
					      .peer = FRAME_FROM_SENDER};
	fc->decoder = frame_decoder_new(&options, on_frame, fc);
	if (!fc->decoder) {
		free(fc);
		return NULL;
	}
	frame_decoder_set_payload_fn(fc->decoder, payload_into_item);
	if (listen->token)
		frame_decoder_set_max_frame(fc->decoder, PREAUTH_MAX_FRAME);
	fc->ingest = ingest;
	fc->id = ingest->next_source++;
	fc->conn = conn;
	fc->listen = listen;
	fc->authenticated = listen->token == NULL;
	snprintf(fc->peer, sizeof(fc->peer), "%s", peer->name);
	return fc;
}

static void report_decode_error(struct ingest_frame_conn *fc, const struct frame_error *err)
{
	struct ingest *ingest = fc->ingest;
	if (err->kind == FRAME_ERR_ABORTED || err->kind == FRAME_ERR_NONE)
		return; /* our own callback stopped it and has said why */
	if (!fc->authenticated) {
		ingest_error(ingest, INGEST_AUTH_FAILURES,
			     "%s: before its HELLO with the token: %s at byte %llu: %s", fc->peer,
			     frame_error_kind_name(err->kind), (unsigned long long)err->offset,
			     err->reason);
		return;
	}
	if ((size_t)err->kind < sizeof(ingest->protocol_errors_by_kind) / sizeof(uint64_t))
		ingest->protocol_errors_by_kind[err->kind]++;
	ingest_error(ingest, INGEST_PROTOCOL_ERRORS, "%s: %s at byte %llu (frame at %llu): %s",
		     fc->peer, frame_error_kind_name(err->kind), (unsigned long long)err->offset,
		     (unsigned long long)err->frame_offset, err->reason);
}

static int ingest_frame_data(void *state, const char *buf, size_t len)
{
	struct ingest_frame_conn *fc = state;
	struct frame_error err = {0};
	int rc = frame_decoder_feed(fc->decoder, buf, len, &err);
	if (rc < 0)
		report_decode_error(fc, &err);
	return rc;
}

static size_t ingest_frame_read_space(void *state, char **buf)
{
	struct ingest_frame_conn *fc = state;
	void *space;
	size_t len = frame_decoder_read_space(fc->decoder, &space);
	if (len < DIRECT_READ_MIN)
		return 0;
	*buf = space;
	return len;
}

static size_t ingest_frame_read_limit(void *state)
{
	const struct ingest_frame_conn *fc = state;
	return fc->large_frames ? HEADER_READ : 0;
}

/* Frames that asked for an ACK and have not had it: while there are any,
 * a draining recorder keeps the connection (see net_handler.owes_reply).
 * A connection whose data could not be stored is owed nothing: it is
 * being closed. */
static bool ingest_frame_owes_acks(void *state)
{
	struct ingest_frame_conn *fc = state;
	return fc->pending_count > 0 && !fc->lost;
}

static void ingest_frame_eof(void *state)
{
	struct ingest_frame_conn *fc = state;
	struct frame_error err = {0};
	if (frame_decoder_finish(fc->decoder, &err) < 0)
		report_decode_error(fc, &err);
}

static void ingest_frame_close(void *state)
{
	struct ingest_frame_conn *fc = state;
	ack_list_remove(fc);
	frame_decoder_free(fc->decoder);
	drop_payload_item(fc);
	free(fc->pending);
	free(fc);
}

/* ---- UDP -------------------------------------------------------------------- */

/*
 * Sequence tracking for UDP senders, by source address and port: a sender
 * has no connection, so its seq history is kept here. The table is bounded;
 * when it is full the least recently heard sender is forgotten, which only
 * means its next datagram starts a new baseline.
 */
enum { UDP_SENDERS_MAX = 256 };

struct ingest_udp_sender {
	struct sockaddr_storage addr;
	struct frame_seq seq;
	uint64_t last_heard;
};

static bool same_sender(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
	return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
}

static struct frame_seq *udp_sender_seq(struct ingest *ingest, const struct net_peer *peer)
{
	struct ingest_udp_sender *oldest = NULL;
	if (!ingest->udp_senders) {
		ingest->udp_senders = calloc(UDP_SENDERS_MAX, sizeof(*ingest->udp_senders));
		if (!ingest->udp_senders)
			return NULL;
	}
	uint64_t now = ++ingest->udp_clock;
	for (size_t i = 0; i < UDP_SENDERS_MAX; i++) {
		struct ingest_udp_sender *s = &ingest->udp_senders[i];
		if (s->last_heard && same_sender(&s->addr, &peer->addr)) {
			s->last_heard = now;
			return &s->seq;
		}
		if (!oldest || s->last_heard < oldest->last_heard)
			oldest = s;
	}
	*oldest = (struct ingest_udp_sender){.addr = peer->addr, .last_heard = now};
	return &oldest->seq;
}

struct datagram_ctx {
	struct ingest *ingest;
	const struct schema_listen *listen;
	const char *peer;
};

static int on_datagram_frame(void *user, const struct frame *frame)
{
	struct datagram_ctx *ctx = user;
	ingest_count(ctx->ingest, INGEST_FRAMES, 1);
	count_lost(ctx->ingest, ctx->peer, frame);
	if (frame->type == FRAME_HELLO || frame->type == FRAME_DESCRIBE)
		return 0; /* no session on UDP: nothing to remember, no one to answer */
	char why[512];
	struct ingest_item *ready = NULL;
	struct ingest_item *item =
		frame_item(ctx->ingest, frame, ctx->peer, 0, &ready, why, sizeof(why));
	if (!item)
		return -EPROTO;
	ingest_push_datagram_item(ctx->ingest, item);
	return 0;
}

static void ingest_frame_datagram(void *arg, const struct net_peer *peer,
			   const struct schema_listen *listen, const char *buf, size_t len)
{
	struct ingest *ingest = arg;
	struct datagram_ctx ctx = {.ingest = ingest, .listen = listen, .peer = peer->name};
	const struct frame_options options = {.max_frame = ingest->schema->limits.max_frame,
					      .peer = FRAME_FROM_SENDER};
	struct frame_error err = {0};
	bool full;

	/* A token cannot be presented without a session: such a listener
	 * takes no datagrams at all (the schema loader refuses tokens on UDP
	 * listeners; this keeps the rule if that ever changes). */
	if (listen->token) {
		ingest_error(ingest, INGEST_AUTH_FAILURES,
			     "%s: datagram dropped: listener %s requires a token", peer->name,
			     listen->address);
		return;
	}
	writer_queue_buffered(ingest->queue, &full);
	if (full) {
		ingest_error(ingest, INGEST_UDP_DROPS, "%s: datagram dropped: buffers full",
			     peer->name);
		return;
	}
	if (frame_decode_datagram(&options, udp_sender_seq(ingest, peer), buf, len, on_datagram_frame,
				  &ctx, &err) < 0 &&
	    err.kind != FRAME_ERR_ABORTED) {
		ingest_count(ingest, INGEST_UDP_DROPS, 1);
		ingest_error(ingest, INGEST_PROTOCOL_ERRORS,
			     "%s: datagram dropped: %s at byte %llu: %s", peer->name,
			     frame_error_kind_name(err.kind), (unsigned long long)err.offset,
			     err.reason);
	}
}

/* ---- messages from a source ------------------------------------------------- */

struct message_ctx {
	struct ingest *ingest;
	const char *peer;
	uint64_t source;
	bool transient; /* a refusal another file or recorder may not make */
};

/* Errors that every recorder of the schema makes, every time, for the
 * same bytes; group_limit (this file is full) and a lack of memory pass. */
static uint64_t permanent_errors(const struct ingest *ingest)
{
	static const enum ingest_counter classes[] = {
		INGEST_PROTOCOL_ERRORS, INGEST_UNKNOWN_STREAM, INGEST_UNKNOWN_CHANNEL,
		INGEST_UNKNOWN_FIELD,   INGEST_BAD_PLACEHOLDER, INGEST_BAD_DATA,
	};
	uint64_t sum = 0;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		sum += ingest->counters[classes[i]];
	return sum;
}

static int on_message_frame(void *user, const struct frame *frame)
{
	struct message_ctx *ctx = user;
	ingest_count(ctx->ingest, INGEST_FRAMES, 1);
	if (frame->type == FRAME_HELLO || frame->type == FRAME_DESCRIBE)
		return 0; /* the broker authenticated the sender; no one to answer */
	char why[512];
	struct ingest_item *ready = NULL;
	uint64_t before = permanent_errors(ctx->ingest);
	struct ingest_item *item = frame_item(ctx->ingest, frame, ctx->peer, ctx->source, &ready,
					      why, sizeof(why));
	if (!item) {
		ctx->transient = permanent_errors(ctx->ingest) == before;
		return -EPROTO;
	}
	ingest_push(ctx->ingest, item);
	return 0;
}

int ingest_frame_message(struct ingest *ingest, const char *peer, uint64_t source,
			 const void *buf, size_t len)
{
	struct message_ctx ctx = {.ingest = ingest, .peer = peer, .source = source};
	const struct frame_options options = {.max_frame = ingest->schema->limits.max_frame,
					      .peer = FRAME_FROM_SENDER};
	struct frame_error err = {0};

	/* Sequence numbers are not tracked: the recorders sharing a consumer
	 * each see a part of a sender's frames, and the broker, not the seq,
	 * says what was lost (nothing acknowledged ever is). */
	int rc = frame_decode_datagram(&options, NULL, buf, len, on_message_frame, &ctx, &err);
	if (rc < 0 && err.kind != FRAME_ERR_ABORTED) {
		if ((size_t)err.kind < sizeof(ingest->protocol_errors_by_kind) / sizeof(uint64_t))
			ingest->protocol_errors_by_kind[err.kind]++;
		ingest_error(ingest, INGEST_PROTOCOL_ERRORS, "%s: %s at byte %llu: %s", peer,
			     frame_error_kind_name(err.kind), (unsigned long long)err.offset,
			     err.reason);
	}
	if (rc < 0)
		return ctx.transient ? -EAGAIN : -EPROTO;
	return 0;
}

struct net_handler ingest_frame_handler(struct ingest *ingest)
{
	return (struct net_handler){
		.arg = ingest,
		.open = ingest_frame_open,
		.data = ingest_frame_data,
		.read_space = ingest_frame_read_space,
		.read_limit = ingest_frame_read_limit,
		.owes_reply = ingest_frame_owes_acks,
		.eof = ingest_frame_eof,
		.close = ingest_frame_close,
		.datagram = ingest_frame_datagram,
	};
}
