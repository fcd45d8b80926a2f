/*
 * frame.h - the binary frame protocol of SPEC §3.1: an incremental decoder
 * for stream transports (TCP, Unix), a one-shot decoder for UDP datagrams,
 * and the encoder the sender (`h5rec send`, ACK replies, tests) shares.
 *
 * The decoder is pure and transport-agnostic: the network layer hands it
 * whatever byte slices the socket produced, split anywhere, and it calls back
 * once per whole, validated frame. Splitting the same bytes differently gives
 * the same frames and the same error. A frame lying whole inside the slice
 * being fed is handed out in place (its payload points into the caller's
 * slice); only a frame cut by a slice boundary is buffered: its payload in a
 * buffer the caller provides (frame_decoder_set_payload_fn), or in one of the
 * decoder's that never exceeds max_frame + FRAME_CRC_SIZE and is released
 * again after a large frame.
 *
 * Every violation of the protocol is final: the decoder records a precise
 * reason and the byte offset (counted from the connection's first byte) and
 * refuses further input; frames before it have been delivered. The daemon
 * then logs, counts by error class and closes the connection.
 *
 * Threading: a decoder is a per-connection object used from one thread (the
 * libuv loop). The datagram decoder and the encoder keep no state and may be
 * called from any thread. All functions return 0 or a negative errno code.
 */
#ifndef H5REC_FRAME_H
#define H5REC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "dtype.h"

#define FRAME_MAGIC "H5RF"
#define FRAME_VERSION 1
#define FRAME_HEADER_SIZE 40
#define FRAME_MAX_KEY 1024
#define FRAME_CRC_SIZE 4

enum frame_type {
	FRAME_DATA = 1,
	FRAME_EVENT = 2,
	FRAME_HELLO = 3,
	FRAME_ACK = 4, /* recorder to sender only */
	FRAME_DESCRIBE = 5, /* sender asks how a channel stores chunks; the
			       recorder answers with a DESCRIBE (issue 19) */
	FRAME_ERROR = 6, /* recorder to sender only: why a frame was refused */
};

#define FRAME_FLAG_CRC 0x01u           /* CRC-32C trailer present */
#define FRAME_FLAG_ACK_REQUESTED 0x02u /* sender wants ACKs */
/* DATA only: the payload is whole chunks already encoded by the channel's
 * filter pipeline (struct frame_chunks), not samples. Recorders that predate
 * it refuse the bit as a reserved one, so no recorder misreads such a frame
 * as samples. */
#define FRAME_FLAG_CHUNKS 0x04u
#define FRAME_FLAGS_KNOWN (FRAME_FLAG_CRC | FRAME_FLAG_ACK_REQUESTED | FRAME_FLAG_CHUNKS)

/* A decoded frame. key is NUL-terminated (a key never contains NUL);
 * key and payload are valid only during the callback that receives it, and
 * payload may point into the caller's slice at any alignment (copy samples
 * out with memcpy). */
struct frame {
	enum frame_type type;
	enum dtype dtype;       /* DTYPE_NONE except for DATA */
	uint8_t flags;
	uint64_t seq;
	int64_t t0;             /* ns since the Unix epoch */
	uint64_t event_id;      /* 0: not part of an event */
	const char *key;
	size_t key_len;
	const void *payload;
	size_t payload_len;
	uint64_t offset;        /* stream offset of the frame's first byte */
	uint64_t lost_before;   /* seq gap right before this frame, in frames */
};

/* Which side of the connection the decoder sits on: the recorder accepts
 * DATA, EVENT and HELLO and rejects ACK; a sender accepts only ACK. */
enum frame_peer {
	FRAME_FROM_SENDER,   /* the recorder decoding what a sender sends */
	FRAME_FROM_RECORDER, /* a sender decoding the recorder's ACKs */
};

struct frame_options {
	uint64_t max_frame;     /* largest payload accepted (limits.max_frame) */
	enum frame_peer peer;
};

/* Error classes, one counter each in `h5rec status`. */
enum frame_error_kind {
	FRAME_ERR_NONE = 0,
	FRAME_ERR_MAGIC,
	FRAME_ERR_VERSION,
	FRAME_ERR_TYPE,          /* unknown type, or a type the peer may not send */
	FRAME_ERR_DTYPE,         /* dtype > 10, or wrong for the frame type */
	FRAME_ERR_FLAGS,         /* reserved flag bits set */
	FRAME_ERR_RESERVED,      /* reserved header field not 0 */
	FRAME_ERR_KEY_LEN,       /* key_len > 1024, or empty key where one is needed */
	FRAME_ERR_KEY,           /* key holds NUL or invalid UTF-8 */
	FRAME_ERR_PAYLOAD_LEN,   /* payload_len > max_frame */
	FRAME_ERR_PAYLOAD_SIZE,  /* DATA payload not a whole number of samples */
	FRAME_ERR_EVENT_ID,      /* EVENT with event_id 0 */
	FRAME_ERR_CRC,
	FRAME_ERR_TRUNCATED,     /* stream or datagram ended inside a frame */
	FRAME_ERR_ABORTED,       /* the frame callback asked to stop */
	FRAME_ERR_NOMEM,
	FRAME_ERR_CHUNKS,        /* FRAME_FLAG_CHUNKS payload inconsistent */
};

#define FRAME_REASON_SIZE 192

struct frame_error {
	enum frame_error_kind kind;
	uint64_t offset;        /* stream (or datagram) offset of the offending byte */
	uint64_t frame_offset;  /* offset of the first byte of that frame */
	char reason[FRAME_REASON_SIZE];
};

/* Short stable name of an error class ("magic", "crc", …) for counters. */
const char *frame_error_kind_name(enum frame_error_kind kind);

/* Bytes per sample of a frame dtype byte; 0 for none or unknown. Kept here
 * rather than calling dtype_size() so the codec links on its own (fuzzing,
 * the sender). */
size_t frame_dtype_sample_size(unsigned dtype);

/* Called once per valid frame, in stream order. Return 0 to go on; a negative
 * value stops decoding: the feed returns it and the decoder is finished. */
typedef int (*frame_cb)(void *user, const struct frame *frame);

/*
 * Sequence tracking for one sender. The first frame sets the baseline
 * (whatever its seq). A seq above the expected one counts the gap as lost
 * frames. A seq at or below the last one (a repeat, a reordered datagram or
 * a sender that restarted its counter) is accepted, counted in `backwards`,
 * and becomes the new baseline: the frame's data is valid, and following
 * the sender keeps later gaps meaningful.
 */
struct frame_seq {
	bool started;
	uint64_t expected;
	uint64_t lost;
	uint64_t backwards;
};

/* Record seq; returns the number of frames lost right before it. */
uint64_t frame_seq_observe(struct frame_seq *tracker, uint64_t seq);

struct frame_stats {
	uint64_t bytes;         /* bytes consumed */
	uint64_t frames;        /* frames delivered */
	uint64_t lost;          /* frames missing by seq */
	uint64_t seq_backwards; /* frames whose seq did not advance */
	uint64_t crc_checked;   /* frames that carried a verified CRC */
};

struct frame_decoder;

/* Create a decoder for one connection; NULL when out of memory. A max_frame
 * above what a 32-bit frame can hold is taken as that maximum. */
struct frame_decoder *frame_decoder_new(const struct frame_options *options,
					frame_cb cb, void *user);
void frame_decoder_free(struct frame_decoder *decoder);

/* The largest payload accepted from the next frame on (a connection that
 * has not proven itself yet is held to a small one). */
void frame_decoder_set_max_frame(struct frame_decoder *decoder, uint64_t max_frame);

/*
 * Where the payload of a frame cut by the end of a slice is assembled, so
 * that a caller who keeps payloads anyway can have them written once, into
 * their final place. Called with the decoder's `user`, once per such frame
 * with a non-empty payload, as soon as its header and key are complete and
 * valid; `frame` is filled in except payload (NULL) and lost_before (0).
 * Return a buffer of at least frame->payload_len bytes, or NULL to let the
 * decoder buffer the payload itself. The buffer remains the caller's: the
 * decoder writes the payload into it, and nothing else, until the frame is
 * delivered (frame->payload then points to it) or decoding fails; it never
 * frees it, and it does not use it after that frame.
 */
typedef void *(*frame_payload_fn)(void *user, const struct frame *frame);
void frame_decoder_set_payload_fn(struct frame_decoder *decoder, frame_payload_fn fn);

/*
 * Where the next bytes of the stream can be put in place, so that a caller
 * can read them from its socket straight there: inside the payload of a cut
 * frame being assembled, the rest of that payload. Returns its size and
 * sets *dst, or returns 0 (anywhere else, or after an error). Bytes put
 * there must then be fed from that very address, frame_decoder_feed(
 * decoder, *dst, n, err), which takes them without a copy; any other feed
 * works as usual, and the space is valid only until it.
 */
size_t frame_decoder_read_space(const struct frame_decoder *decoder, void **dst);

/*
 * Feed the next len bytes of the stream. Calls cb for every frame completed
 * by them, then buffers an incomplete tail. Returns 0; -EPROTO on a protocol
 * error, -ENOMEM, or the callback's negative value, with *err filled (err may
 * be NULL). After an error every further call returns the same code and
 * error without looking at its input.
 */
int frame_decoder_feed(struct frame_decoder *decoder, const void *data, size_t len,
		       struct frame_error *err);

/* The stream has ended: -EPROTO (FRAME_ERR_TRUNCATED) if it ended inside a
 * frame, else 0 (or the earlier error). */
int frame_decoder_finish(struct frame_decoder *decoder, struct frame_error *err);

const struct frame_stats *frame_decoder_stats(const struct frame_decoder *decoder);

/* Bytes currently allocated for buffering a cut frame (for tests and
 * `h5rec status`). */
size_t frame_decoder_buffer_capacity(const struct frame_decoder *decoder);

/*
 * Decode one UDP datagram holding one or more whole frames. The datagram is
 * validated completely before any frame is delivered: on any error (including
 * a partial frame) nothing is delivered, the function returns -EPROTO and
 * *err holds offsets within the datagram, and the caller drops it. seq may be
 * NULL; else it is that sender's tracker (the caller keeps one per peer).
 */
int frame_decode_datagram(const struct frame_options *options, struct frame_seq *seq,
			  const void *data, size_t len, frame_cb cb, void *user,
			  struct frame_error *err);

/* Encoded size of a frame with these lengths and flags. */
size_t frame_encoded_size(size_t key_len, size_t payload_len, unsigned flags);

/*
 * Write the 40-byte header of frame (its key_len and payload_len give the
 * length fields; key and payload are not read). The frame must be one the
 * decoder of the receiving side accepts, apart from limits: -EINVAL if not.
 */
int frame_encode_header(const struct frame *frame, uint8_t header[FRAME_HEADER_SIZE]);

/* The CRC-32C trailer value of a frame made of these three parts; for
 * senders that write header, key and payload with writev. */
uint32_t frame_crc(const uint8_t header[FRAME_HEADER_SIZE], const void *key,
		   size_t key_len, const void *payload, size_t payload_len);

/*
 * Encode a whole frame (header, key, payload, trailer when flags has
 * FRAME_FLAG_CRC) into out. Stores the size in *written.
 * Errors: -EINVAL (invalid frame), -ENOSPC (out too small).
 */
int frame_encode(const struct frame *frame, void *out, size_t out_len, size_t *written);

/*
 * The same, with the payload gathered from iov[0..iovcnt) (frame->payload
 * is not read; frame->payload_len must be the sum of the pieces, else
 * -EINVAL). For senders whose samples lie in several buffers.
 */
int frame_encode_iov(const struct frame *frame, const struct iovec *iov, int iovcnt, void *out,
		     size_t out_len, size_t *written);

/*
 * A pre-compressed DATA payload (FRAME_FLAG_CHUNKS), all integers
 * little-endian:
 *
 *   0      4   pipeline id: the `id` of the recorder's DESCRIBE answer for
 *              this channel; the recorder refuses chunks made for another
 *   4      4   count of chunks, at least 1
 *   8   16*n   per chunk: stored size (4, at least 1), HDF5 filter mask (4),
 *              uncompressed size in bytes (8, a non-zero whole number of
 *              samples of the frame's dtype)
 *   …          the chunks' stored bytes, back to back, in table order
 *
 * The stored sizes add up to the rest of the payload exactly.
 */
#define FRAME_CHUNKS_HEAD 8
#define FRAME_CHUNK_ENTRY 16
#define FRAME_CHUNKS_MAX 65536u

struct frame_chunk {
	const void *data;
	uint32_t stored_size;
	uint32_t filter_mask;
	uint64_t raw_size;
};

struct frame_chunks {
	uint32_t pipeline_id;
	uint32_t count;
	const uint8_t *table;
	const uint8_t *data;
};

/* Validate a FRAME_FLAG_CHUNKS payload of SAMPLE_SIZE-byte samples and
 * describe it in *out. -EPROTO (FRAME_ERR_CHUNKS, offsets from the payload's
 * first byte plus AT) on any inconsistency. */
int frame_chunks_open(const void *payload, size_t len, size_t sample_size, uint64_t at,
		      struct frame_chunks *out, struct frame_error *err);

/* Chunk I (< count) of a payload frame_chunks_open() accepted; *offset
 * runs over the stored bytes: start it at 0 and pass it for I = 0, 1, … */
void frame_chunks_get(const struct frame_chunks *chunks, uint32_t i, size_t *offset,
		      struct frame_chunk *out);

/* Write the table of a chunk payload: the 8-byte head and COUNT entries,
 * FRAME_CHUNKS_HEAD + COUNT * FRAME_CHUNK_ENTRY bytes. */
void frame_chunks_put_head(uint8_t *out, uint32_t pipeline_id, uint32_t count);
void frame_chunks_put_entry(uint8_t *out, uint32_t i, uint32_t stored_size,
			    uint32_t filter_mask, uint64_t raw_size);

#endif
