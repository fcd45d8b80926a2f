/*
 * sender.c - blocking client for the frame and line protocols (see sender.h).
 *
 * ACKs are read opportunistically after every write (non-blocking) so the
 * socket's receive buffer never fills while we stream, and with a poll()
 * deadline in sender_finish(). They are decoded with the same frame decoder
 * the recorder uses, set to accept only ACK frames.
 */
#include "sender.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"
#include "frame.h"

struct sender {
	int fd;
	bool datagram;
	struct sender_options options;
	struct frame_decoder *acks;
	struct sender_stats stats;
	uint64_t next_seq;
	char *err;
	size_t err_len;
	uint8_t *buf; /* one encoded frame */
	size_t buf_cap;
};

static int fail(struct sender *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct sender *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, s->err_len, fmt, ap);
	va_end(ap);
	return code;
}

static int on_ack(void *user, const struct frame *frame)
{
	struct sender *s = user;
	s->stats.acks++;
	if (!s->stats.any_acked || frame->seq > s->stats.acked_seq)
		s->stats.acked_seq = frame->seq;
	s->stats.any_acked = true;
	return 0;
}

int sender_open(const struct sender_options *options, struct sender **out, char *err,
		size_t err_len)
{
	struct sender *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	s->fd = -1;
	s->err = err;
	s->err_len = err_len;
	s->options = *options;
	s->next_seq = 1;

	struct endpoint ep;
	int rc = endpoint_parse(options->address, &ep, err, err_len);
	if (rc)
		goto fail;
	s->datagram = ep.datagram;
	s->fd = endpoint_socket(&ep, false);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&ep.addr, ep.addr_len) != 0) {
		int code = s->fd < 0 ? -s->fd : errno;
		rc = fail(s, -code, "cannot connect to %s: %s", options->address, strerror(code));
		goto fail;
	}
	const struct frame_options ack_options = {.max_frame = 1024, .peer = FRAME_FROM_RECORDER};
	s->acks = frame_decoder_new(&ack_options, on_ack, s);
	if (!s->acks) {
		rc = fail(s, -ENOMEM, "out of memory");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	sender_close(s);
	return rc;
}

/* Read whatever ACKs have arrived, waiting up to timeout_ms (0: no wait).
 * Returns 0, 1 when the recorder has closed the connection, or < 0. */
static int read_acks(struct sender *s, int timeout_ms)
{
	uint8_t buf[4096];
	struct pollfd pfd = {.fd = s->fd, .events = POLLIN};

	if (s->datagram)
		return 0;
	while (poll(&pfd, 1, timeout_ms) > 0) {
		ssize_t n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
		if (n < 0)
			return errno == EAGAIN ? 0 : fail(s, -errno, "receive: %s", strerror(errno));
		struct frame_error ferr;
		if (frame_decoder_feed(s->acks, buf, (size_t)n, &ferr) < 0)
			return fail(s, -EPROTO, "bad reply from the recorder: %s", ferr.reason);
		timeout_ms = 0;
	}
	return 0;
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
		return fail(s, -ECONNRESET, "the recorder closed the connection after %llu bytes",
			    (unsigned long long)st->bytes);
	return fail(s, -ECONNRESET, "the recorder closed the connection after %llu frame%s (%s)",
		    (unsigned long long)st->frames, st->frames == 1 ? "" : "s", acked);
}

static int write_all(struct sender *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t piece = s->options.write_size ? s->options.write_size : len;

	if (s->options.tee && fwrite(data, 1, len, s->options.tee) != len)
		return fail(s, -EIO, "cannot write the tee file");
	if (s->datagram) {
		if (send(s->fd, data, len, 0) != (ssize_t)len)
			return fail(s, -errno, "send: %s", strerror(errno));
		s->stats.bytes += len;
		return 0;
	}
	while (len) {
		size_t n = len < piece ? len : piece;
		ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EPIPE && errno != ECONNRESET)
				return fail(s, -errno, "send: %s", strerror(errno));
			/* ACKs that came before the close still count. */
			int rc = read_acks(s, 0);
			return rc < 0 ? rc : peer_closed(s);
		}
		p += w;
		len -= (size_t)w;
		s->stats.bytes += (uint64_t)w;
	}
	int rc = read_acks(s, 0);
	return rc > 0 ? peer_closed(s) : rc;
}

static int send_frame(struct sender *s, struct frame *frame)
{
	frame->seq = s->next_seq;
	frame->flags = FRAME_FLAG_CRC | (s->options.acks && !s->datagram ? FRAME_FLAG_ACK_REQUESTED : 0);
	size_t need = frame_encoded_size(frame->key_len, frame->payload_len, frame->flags);
	if (need > s->buf_cap) {
		uint8_t *buf = realloc(s->buf, need);
		if (!buf)
			return fail(s, -ENOMEM, "out of memory");
		s->buf = buf;
		s->buf_cap = need;
	}
	size_t len;
	int rc = frame_encode(frame, s->buf, s->buf_cap, &len);
	if (rc)
		return fail(s, rc, "cannot encode frame '%s'", frame->key);
	rc = write_all(s, s->buf, len);
	if (rc)
		return rc;
	s->stats.last_seq = s->next_seq++;
	s->stats.frames++;
	return 0;
}

int sender_hello(struct sender *s, const char *name, const char *token)
{
	char payload[512] = "";
	if (token)
		snprintf(payload, sizeof(payload), "token=\"%s\"", token);
	struct frame frame = {.type = FRAME_HELLO, .key = name, .key_len = strlen(name),
			      .payload = payload, .payload_len = strlen(payload)};
	return send_frame(s, &frame);
}

int sender_data(struct sender *s, const char *key, enum dtype dtype, int64_t t0,
		uint64_t event_id, const void *samples, size_t n)
{
	struct frame frame = {.type = FRAME_DATA, .dtype = dtype, .t0 = t0, .event_id = event_id,
			      .key = key, .key_len = strlen(key), .payload = samples,
			      .payload_len = n * dtype_size(dtype)};
	return send_frame(s, &frame);
}

int sender_event(struct sender *s, const char *key, uint64_t event_id, int64_t t0,
		 const char *fields)
{
	struct frame frame = {.type = FRAME_EVENT, .t0 = t0, .event_id = event_id, .key = key,
			      .key_len = strlen(key), .payload = fields,
			      .payload_len = strlen(fields)};
	return send_frame(s, &frame);
}

int sender_raw(struct sender *s, const void *data, size_t len)
{
	return write_all(s, data, len);
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sender_finish(struct sender *s)
{
	int64_t timeout = s->options.ack_timeout_ms ? s->options.ack_timeout_ms : 10000;
	int64_t deadline = monotonic_ms() + timeout;

	if (s->options.acks && !s->datagram && s->stats.frames) {
		while (!s->stats.any_acked || s->stats.acked_seq < s->stats.last_seq) {
			int64_t left = deadline - monotonic_ms();
			if (left <= 0)
				return fail(s, -ETIMEDOUT,
					    "no ACK for seq %llu within %lld ms (last acked: %llu)",
					    (unsigned long long)s->stats.last_seq, (long long)timeout,
					    (unsigned long long)s->stats.acked_seq);
			int rc = read_acks(s, (int)left);
			if (rc)
				return rc > 0 ? peer_closed(s) : rc;
		}
	}
	if (s->datagram)
		return 0;
	shutdown(s->fd, SHUT_WR);
	/* Wait for the recorder to close its side: everything sent was read. */
	uint8_t buf[256];
	struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
	while (monotonic_ms() < deadline && poll(&pfd, 1, (int)(deadline - monotonic_ms())) > 0) {
		ssize_t n = recv(s->fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return 0;
		struct frame_error ferr;
		frame_decoder_feed(s->acks, buf, (size_t)n, &ferr);
	}
	return 0;
}

const struct sender_stats *sender_stats(const struct sender *s)
{
	return &s->stats;
}

void sender_close(struct sender *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	frame_decoder_free(s->acks);
	free(s->buf);
	free(s);
}
