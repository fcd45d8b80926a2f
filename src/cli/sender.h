/*
 * sender.h - the sending side of `h5rec send` and `h5rec simulate`: the
 * tool's view of libh5rec-client. Connect, say HELLO, send frames, bytes
 * as they are (lines, pre-encoded frames), and follow the recorder's ACKs.
 *
 * A sender blocks: the tools have nothing else to do while they wait.
 * Frames carry a CRC-32C trailer; with acks on, every frame asks for an ACK
 * and sender_finish() waits until the recorder reports the last frame
 * durable. Everything sent can be copied to a "tee" file, byte for byte,
 * so a test can replay or check exactly what went out. The HELLO is frame
 * 1 (seq 1), as the tools have always numbered it.
 *
 * The recorder answers a frame it cannot take by closing the connection
 * (SPEC §3.1); the reason is only in its log. By default the sender does
 * not reconnect, so that such a refusal is reported, not resent: it
 * notices the close wherever it happens, returns -ECONNRESET and sets
 * stats.closed, so the caller can tell "refused" apart from a network
 * error and say what the ACKs covered. With `reconnects` it resends what
 * was not acknowledged after the recorder restarts (docs/client.md).
 *
 * Functions return 0 or a negative errno and fill the message buffer given
 * at sender_open() with the reason.
 */
#ifndef H5REC_SENDER_H
#define H5REC_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dtype.h"

struct sender_options {
	const char *address;  /* "tcp:HOST:PORT", "udp:HOST:PORT", "unix:PATH" */
	const char *hello;    /* say HELLO first with this sender name; NULL: no HELLO */
	const char *token;    /* the listener's token, in the HELLO */
	bool acks;            /* request ACKs (frames over stream transports) */
	unsigned reconnects;  /* tries without progress before giving up; 0: never reconnect */
	size_t write_size;    /* split every write into pieces of at most this; 0: whole */
	FILE *tee;            /* copy of every byte sent; NULL: none */
	int64_t ack_timeout_ms; /* sender_finish's wait; 0: 10000 */
	bool precompress;     /* DATA frames as chunks encoded with the channel's
				 pipeline (h5rec_client_data_chunk) */
	unsigned encode_threads; /* encode them on this many threads; 0, 1: this one */
	/* NATS JetStream instead of a recorder (sender_nats.h): the URLs and
	 * the subject; hello names the sender in Nats-Msg-Id. address is then
	 * only what messages show. */
	const char *nats_url;
	const char *nats_subject;
};

struct sender_stats {
	uint64_t frames;
	uint64_t bytes;
	uint64_t acks;
	uint64_t last_seq;    /* seq of the last frame sent */
	uint64_t acked_seq;   /* highest seq the recorder reported durable */
	uint64_t reconnects;
	bool any_acked;
	bool closed;          /* the recorder closed the connection early */
};

struct sender;

/* Connect (and say HELLO). err (at least 256 bytes) receives messages for
 * the life of the sender. */
int sender_open(const struct sender_options *options, struct sender **out, char *err,
		size_t err_len);

/* A DATA frame of n samples of type dtype. */
int sender_data(struct sender *sender, const char *key, enum dtype dtype, int64_t t0,
		uint64_t event_id, const void *samples, size_t n);

/* An EVENT frame; fields is a line-protocol field set. */
int sender_event(struct sender *sender, const char *key, uint64_t event_id, int64_t t0,
		 const char *fields);

/* Bytes as they are (lines, or a pre-encoded frame stream). */
int sender_raw(struct sender *sender, const void *data, size_t len);

/* Wait for the ACK of the last frame (when acks are on), then close the
 * sending side and wait for the recorder to close. -ETIMEDOUT if the ACK
 * does not come within ack_timeout_ms; -ECONNRESET (stats.closed) if the
 * recorder closes before it has acknowledged every frame. */
int sender_finish(struct sender *sender);

const struct sender_stats *sender_stats(const struct sender *sender);
void sender_close(struct sender *sender);

#endif
