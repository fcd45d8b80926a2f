/*
 * sender.c - the tools' blocking sender on libh5rec-client (see sender.h).
 *
 * Everything goes through the client, lines and raw bytes too, so the
 * tools and integrators share one implementation of connecting, encoding,
 * ACKs and replay; what only the tools need (tee, small writes, no ACKs,
 * the HELLO as frame 1) is client_tool.h. This file turns the client's
 * state into the tools' statistics and messages.
 */
#include "sender.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client_tool.h"
#include "endpoint.h"
#include "sender_nats.h"

struct sender {
	struct h5rec_client *client;
	struct sender_nats *nats; /* instead of client: to a broker */
	struct sender_options options;
	struct sender_stats stats;
	char *err;
	size_t err_len;
};

static void update_stats(struct sender *s)
{
	const struct client_tool_stats *t = client_tool_stats(s->client);

	s->stats.frames = t->frames;
	s->stats.bytes = t->bytes;
	s->stats.acks = t->acks;
	s->stats.any_acked = t->acks > 0;
	s->stats.last_seq = h5rec_client_last_seq(s->client);
	s->stats.acked_seq = h5rec_client_durable_seq(s->client);
	s->stats.reconnects = h5rec_client_reconnects(s->client);
}

/*
 * The recorder closed the connection before we were done: it refused
 * something (SPEC §3.1). What it acknowledged before is all it promises
 * to keep, so say exactly that.
 */
static int peer_closed(struct sender *s)
{
	const struct sender_stats *st = &s->stats;
	char acked[96] = "none of them acknowledged";

	s->stats.closed = true;
	if (st->any_acked)
		snprintf(acked, sizeof(acked), "durable up to seq %llu of %llu",
			 (unsigned long long)st->acked_seq, (unsigned long long)st->last_seq);
	if (!st->frames)
		snprintf(s->err, s->err_len, "the recorder closed the connection after %llu bytes",
			 (unsigned long long)st->bytes);
	else
		snprintf(s->err, s->err_len,
			 "the recorder closed the connection after %llu frame%s (%s)",
			 (unsigned long long)st->frames, st->frames == 1 ? "" : "s", acked);
	return -ECONNRESET;
}

/* The result of a client call, with the tools' words for it. */
static int result(struct sender *s, int rc)
{
	update_stats(s);
	if (rc == -ECONNRESET)
		return peer_closed(s);
	if (rc)
		snprintf(s->err, s->err_len, "%s", h5rec_client_error(s->client));
	return rc;
}

int sender_open(const struct sender_options *options, struct sender **out, char *err,
		size_t err_len)
{
	struct sender *s = calloc(1, sizeof(*s));
	struct h5rec_client_options client_options;
	const struct client_tool_options tool = {
		.tee = options->tee,
		.write_size = options->write_size,
		.no_acks = !options->acks,
		.no_hello = !options->hello,
		.first_seq = options->hello ? 2 : 1,
	};

	*out = NULL;
	if (!s) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	s->err = err;
	s->err_len = err_len;
	s->options = *options;
	if (options->nats_url) {
		int rc = sender_nats_open(options->nats_url, options->nats_subject,
					  options->hello ? options->hello : "h5rec", options->tee,
					  &s->stats, &s->nats, err, err_len);
		if (rc) {
			free(s);
			return rc;
		}
		*out = s;
		return 0;
	}
	h5rec_client_options_init(&client_options);
	client_options.address = options->address;
	client_options.name = options->hello;
	client_options.token = options->token;
	client_options.reconnect_attempts = options->reconnects;
	/* back-pressure from the recorder may last: wait for it as a blocking
	 * socket would */
	client_options.timeout_ms = INT_MAX;
	struct endpoint endpoint; /* for the reason a bad address is one */
	int rc = endpoint_parse(options->address, &endpoint, err, err_len);
	if (!rc) {
		rc = client_tool_open(&client_options, &tool, &s->client);
		if (rc)
			snprintf(err, err_len, "cannot connect to %s: %s", options->address,
				 strerror(-rc));
	}
	if (!rc && options->encode_threads > 1) {
		rc = h5rec_client_set_encode_threads(s->client, options->encode_threads);
		if (rc) {
			snprintf(err, err_len, "%s", h5rec_client_error(s->client));
			h5rec_client_close(s->client);
		}
	}
	if (rc) {
		free(s);
		return rc;
	}
	*out = s;
	return result(s, 0);
}

int sender_data(struct sender *s, const char *key, enum dtype dtype, int64_t t0,
		uint64_t event_id, const void *samples, size_t n)
{
	if (s->nats)
		return sender_nats_data(s->nats, key, dtype, t0, event_id, samples, n);
	if (s->options.precompress)
		return result(s, h5rec_client_data_chunk(s->client, key, (enum h5rec_dtype)dtype,
							 t0, event_id, samples, n));
	return result(s, h5rec_client_data(s->client, key, (enum h5rec_dtype)dtype, t0, event_id,
					   samples, n));
}

int sender_event(struct sender *s, const char *key, uint64_t event_id, int64_t t0,
		 const char *fields)
{
	if (s->nats)
		return sender_nats_event(s->nats, key, event_id, t0, fields);
	return result(s, h5rec_client_event(s->client, key, event_id, t0, fields));
}

int sender_raw(struct sender *s, const void *data, size_t len)
{
	if (s->nats)
		return sender_nats_raw(s->nats, data, len);
	return result(s, client_tool_raw(s->client, data, len));
}

int sender_finish(struct sender *s)
{
	int64_t timeout = s->options.ack_timeout_ms ? s->options.ack_timeout_ms : 10000;
	int rc = 0;

	if (s->nats)
		return sender_nats_finish(s->nats);
	update_stats(s);
	/* The HELLO asks for no ACK: wait only when frames followed it. */
	bool frames = s->stats.last_seq >= (s->options.hello ? 2u : 1u);
	if (s->options.acks && frames && strncmp(s->options.address, "udp:", 4) != 0) {
		rc = h5rec_client_wait(s->client, 0, (int)timeout);
		update_stats(s);
		if (rc == -ETIMEDOUT) {
			snprintf(s->err, s->err_len,
				 "no ACK for seq %llu within %lld ms (last acked: %llu)",
				 (unsigned long long)s->stats.last_seq, (long long)timeout,
				 (unsigned long long)s->stats.acked_seq);
			return rc;
		}
		if (rc)
			return result(s, rc);
	}
	return result(s, client_tool_finish(s->client, (int)timeout));
}

const struct sender_stats *sender_stats(const struct sender *s)
{
	return &s->stats;
}

void sender_close(struct sender *s)
{
	if (!s)
		return;
	sender_nats_close(s->nats);
	h5rec_client_close(s->client);
	free(s);
}
