/*
 * sender.h - the client side of the wire protocols, for `h5rec send`,
 * `h5rec simulate` and the tests: connect, say HELLO, send frames or lines,
 * and follow the recorder's ACKs.
 *
 * A sender is a plain blocking socket: the tools that use it have nothing
 * else to do while they wait. Frames carry a CRC-32C trailer; with acks on,
 * every frame asks for an ACK and sender_finish() waits until the recorder
 * reports the last frame durable. Everything sent can be copied to a "tee"
 * file, byte for byte, so a test can replay or check exactly what went out.
 *
 * The recorder answers a frame it cannot take by closing the connection
 * (SPEC §3.1); the reason is only in its log. The sender notices the close
 * wherever it happens (a write, an ACK read, the final wait), returns
 * -ECONNRESET and sets stats.closed, so the caller can tell "refused" apart
 * from a network error and say what the ACKs covered.
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
	bool acks;            /* request ACKs (frames over stream transports) */
	size_t write_size;    /* split every write into pieces of at most this; 0: whole */
	FILE *tee;            /* copy of every byte sent; NULL: none */
	int64_t ack_timeout_ms; /* sender_finish's wait; 0: 10000 */
};

struct sender_stats {
	uint64_t frames;
	uint64_t bytes;
	uint64_t acks;
	uint64_t last_seq;    /* seq of the last frame sent */
	uint64_t acked_seq;   /* highest seq the recorder reported durable */
	bool any_acked;
	bool closed;          /* the recorder closed the connection early */
};

struct sender;

/* Connect. err (at least 256 bytes) receives messages for the life of the
 * sender. */
int sender_open(const struct sender_options *options, struct sender **out, char *err,
		size_t err_len);

/* HELLO with the sender's name and, if not NULL, the listener's token. */
int sender_hello(struct sender *sender, const char *name, const char *token);

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
