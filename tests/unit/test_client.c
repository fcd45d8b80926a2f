/*
 * test_client.c - libh5rec-client against a fake recorder on a Unix socket
 * in the same thread: what goes on the wire (HELLO with the token and the
 * seq before the first frame, DATA, gathered DATA, EVENT, flags), how ACKs
 * empty the replay buffer, what is resent after the connection is lost
 * (exactly the unacknowledged frames, with their seq), the bound of the
 * buffer, refused arguments, and giving up; pre-compressed frames encoded
 * on encoder threads go out exactly as the calling thread would have sent
 * them (same seqs, same bytes, events in their place), and an encoder's
 * error fails the client with its reason.
 *
 * The client runs non-blocking (or, for wait(), with the ACK already in
 * its socket), so one thread can play both sides without timing; with
 * encoder threads the fake reads with short polls, calling
 * h5rec_client_process() between them, since nothing but a call of the
 * owner queues a finished encoding.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "h5rec/client.h"
#include "pipeline.h"

#define MAX_FRAMES 64

struct fake {
	char path[108];
	int listener;
	int conn;
};

struct got_frame {
	enum frame_type type;
	uint64_t seq;
	uint8_t flags;
	uint64_t event_id;
	char key[64];
	uint8_t payload[4096];
	size_t payload_len;
};

struct got {
	size_t count;
	struct got_frame frames[MAX_FRAMES];
};

static int on_frame(void *user, const struct frame *frame)
{
	struct got *got = user;
	assert_true(got->count < MAX_FRAMES);
	struct got_frame *g = &got->frames[got->count++];
	g->type = frame->type;
	g->seq = frame->seq;
	g->flags = frame->flags;
	g->event_id = frame->event_id;
	assert_true(frame->key_len < sizeof(g->key) && frame->payload_len <= sizeof(g->payload));
	memcpy(g->key, frame->key, frame->key_len + 1);
	memcpy(g->payload, frame->payload, frame->payload_len);
	g->payload_len = frame->payload_len;
	return 0;
}

static void fake_listen(struct fake *f)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(f->path, sizeof(f->path), "/tmp/h5rec-test-client-%d.sock", (int)getpid());
	unlink(f->path);
	strcpy(sun.sun_path, f->path);
	f->listener = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->listener >= 0);
	assert_int_equal(bind(f->listener, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(f->listener, 8), 0);
	f->conn = -1;
}

static void fake_accept(struct fake *f)
{
	struct pollfd pfd = {.fd = f->listener, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	f->conn = accept(f->listener, NULL, NULL);
	assert_true(f->conn >= 0);
}

static void fake_stop(struct fake *f)
{
	if (f->conn >= 0)
		close(f->conn);
	if (f->listener >= 0)
		close(f->listener);
	unlink(f->path);
	f->conn = f->listener = -1;
}

/* Read from the connection until n frames have come, calling process()
 * between short polls: it writes what is queued and queues what the
 * encoder threads finished. At most 5 s. */
static void fake_read(struct fake *f, struct h5rec_client *c, size_t n, struct got *got)
{
	const struct frame_options options = {.max_frame = 1 << 20, .peer = FRAME_FROM_SENDER};
	struct frame_decoder *decoder = frame_decoder_new(&options, on_frame, got);
	uint8_t buf[4096];
	int polls = 0;

	memset(got, 0, sizeof(*got));
	while (got->count < n) {
		assert_int_equal(h5rec_client_process(c), 0);
		struct pollfd pfd = {.fd = f->conn, .events = POLLIN};
		int ready = poll(&pfd, 1, 10);
		assert_true(ready >= 0 && ++polls < 500);
		if (!ready)
			continue;
		ssize_t r = recv(f->conn, buf, sizeof(buf), 0);
		assert_true(r > 0);
		assert_int_equal(frame_decoder_feed(decoder, buf, (size_t)r, NULL), 0);
	}
	assert_int_equal(got->count, n);
	frame_decoder_free(decoder);
}

static void fake_ack(struct fake *f, uint64_t seq)
{
	struct frame ack = {.type = FRAME_ACK, .seq = seq, .key = ""};
	uint8_t buf[64];
	size_t len;
	assert_int_equal(frame_encode(&ack, buf, sizeof(buf), &len), 0);
	assert_int_equal(send(f->conn, buf, len, 0), (ssize_t)len);
}

static struct h5rec_client *open_client(struct fake *f, int nonblocking, unsigned attempts)
{
	struct h5rec_client_options o;
	struct h5rec_client *c;
	char address[128];

	snprintf(address, sizeof(address), "unix:%s", f->path);
	h5rec_client_options_init(&o);
	o.address = address;
	o.name = "tester";
	o.token = "t0k";
	o.nonblocking = nonblocking;
	o.reconnect_attempts = attempts;
	o.reconnect_delay_ms = 1;
	assert_int_equal(h5rec_client_open(&o, &c), 0);
	fake_accept(f);
	return c;
}

static const int16_t samples[6] = {1, -2, 3, -4, 5, -6};

static void queue_data(struct h5rec_client *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(h5rec_client_data(c, "b1/adc0", H5REC_INT16, 1000, 0, samples, 6), 0);
}

static void test_frames_on_the_wire(void **state)
{
	(void)state;
	struct fake f;
	struct got got;
	fake_listen(&f);
	struct h5rec_client *c = open_client(&f, 1, 5);

	queue_data(c, 1);
	struct iovec pieces[2] = {{(void *)samples, 4}, {(void *)(samples + 2), 8}};
	assert_int_equal(h5rec_client_datav(c, "b1/adc0", H5REC_INT16, 2000, 7, pieces, 2), 0);
	assert_int_equal(h5rec_client_event(c, "dust", 9, 3000, "mass=1.5"), 0);
	assert_int_equal(h5rec_client_last_seq(c), 3);
	fake_read(&f, c, 4, &got);

	assert_int_equal(got.frames[0].type, FRAME_HELLO);
	assert_int_equal(got.frames[0].seq, 0);
	assert_string_equal(got.frames[0].key, "tester");
	assert_int_equal(got.frames[0].payload_len, strlen("token=\"t0k\""));
	assert_memory_equal(got.frames[0].payload, "token=\"t0k\"", got.frames[0].payload_len);
	assert_int_equal(got.frames[0].flags, FRAME_FLAG_CRC);
	for (size_t i = 1; i < 4; i++) {
		assert_int_equal(got.frames[i].seq, i);
		assert_int_equal(got.frames[i].flags, FRAME_FLAG_CRC | FRAME_FLAG_ACK_REQUESTED);
	}
	assert_int_equal(got.frames[1].type, FRAME_DATA);
	assert_memory_equal(got.frames[1].payload, samples, sizeof(samples));
	assert_int_equal(got.frames[2].payload_len, 12);
	assert_memory_equal(got.frames[2].payload, samples, 12); /* gathered in order */
	assert_int_equal(got.frames[2].event_id, 7);
	assert_int_equal(got.frames[3].type, FRAME_EVENT);
	assert_string_equal(got.frames[3].key, "dust");
	h5rec_client_close(c);
	fake_stop(&f);
}

/* ACKs empty the buffer; after the connection is lost, a new one gets the
 * HELLO (seq just before the first kept frame) and exactly the frames no
 * ACK covered, with their seq. */
static void test_replay_after_close(void **state)
{
	(void)state;
	struct fake f;
	struct got got;
	fake_listen(&f);
	struct h5rec_client *c = open_client(&f, 1, 5);

	queue_data(c, 5);
	fake_read(&f, c, 6, &got);
	size_t all = h5rec_client_buffered(c);
	fake_ack(&f, 3);
	struct pollfd pfd = {.fd = h5rec_client_fd(c), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(h5rec_client_process(c), 0);
	assert_int_equal(h5rec_client_durable_seq(c), 3);
	assert_int_equal(h5rec_client_buffered(c), all / 5 * 2);
	assert_int_equal(h5rec_client_wait(c, 3, 0), 0);
	assert_int_equal(h5rec_client_wait(c, 4, 0), -EAGAIN);

	close(f.conn); /* the recorder went away */
	f.conn = -1;
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(h5rec_client_process(c), 0); /* notices, reconnects */
	fake_accept(&f);
	fake_read(&f, c, 3, &got);
	assert_int_equal(got.frames[0].type, FRAME_HELLO);
	assert_int_equal(got.frames[0].seq, 3);
	assert_int_equal(got.frames[1].seq, 4);
	assert_int_equal(got.frames[2].seq, 5);
	assert_int_equal(h5rec_client_reconnects(c), 1);

	fake_ack(&f, 5);
	h5rec_client_close(c);

	/* A blocking client with the ACK already in its socket. */
	c = open_client(&f, 0, 5);
	queue_data(c, 2);
	fake_read(&f, c, 3, &got);
	fake_ack(&f, 2);
	assert_int_equal(h5rec_client_wait(c, 0, 5000), 0);
	assert_int_equal(h5rec_client_buffered(c), 0);
	h5rec_client_close(c);
	fake_stop(&f);
}

static void test_buffer_is_bounded(void **state)
{
	(void)state;
	struct fake f;
	struct h5rec_client_options o;
	struct h5rec_client *c;
	char address[128];
	struct got got;

	fake_listen(&f);
	snprintf(address, sizeof(address), "unix:%s", f.path);
	h5rec_client_options_init(&o);
	o.address = address;
	o.nonblocking = 1;
	size_t one = frame_encoded_size(strlen("b1/adc0"), sizeof(samples), FRAME_FLAG_CRC);
	o.replay_bytes = 2 * one;
	assert_int_equal(h5rec_client_open(&o, &c), 0);
	fake_accept(&f);

	queue_data(c, 2);
	assert_int_equal(h5rec_client_data(c, "b1/adc0", H5REC_INT16, 0, 0, samples, 6), -EAGAIN);
	assert_int_equal(h5rec_client_last_seq(c), 2);
	int16_t big[64] = {0}; /* larger than the bound: only into an empty buffer */
	assert_int_equal(h5rec_client_data(c, "b1/adc0", H5REC_INT16, 0, 0, big, 64), -EAGAIN);
	fake_read(&f, c, 3, &got);
	fake_ack(&f, 1);
	struct pollfd pfd = {.fd = h5rec_client_fd(c), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(h5rec_client_data(c, "b1/adc0", H5REC_INT16, 0, 0, samples, 6), 0);
	assert_int_equal(h5rec_client_last_seq(c), 3);
	fake_read(&f, c, 1, &got);
	fake_ack(&f, 3);
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(h5rec_client_data(c, "b1/adc0", H5REC_INT16, 0, 0, big, 64), 0);
	assert_int_equal(h5rec_client_buffered(c),
			 frame_encoded_size(strlen("b1/adc0"), sizeof(big), FRAME_FLAG_CRC));
	h5rec_client_close(c);
	fake_stop(&f);
}

static void test_refused_arguments(void **state)
{
	(void)state;
	struct fake f;
	fake_listen(&f);
	struct h5rec_client *c = open_client(&f, 1, 5);
	char long_key[1100];

	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	assert_int_equal(h5rec_client_data(c, "", H5REC_INT16, 0, 0, samples, 6), -EINVAL);
	assert_int_equal(h5rec_client_data(c, long_key, H5REC_INT16, 0, 0, samples, 6), -EINVAL);
	assert_int_equal(h5rec_client_data(c, "k", (enum h5rec_dtype)11, 0, 0, samples, 6), -EINVAL);
	assert_int_equal(h5rec_client_data(c, "k\xc0", H5REC_INT16, 0, 0, samples, 6), -EINVAL);
	assert_int_equal(h5rec_client_event(c, "dust", 0, 0, "mass=1"), -EINVAL);
	struct iovec odd = {(void *)samples, 3};
	assert_int_equal(h5rec_client_datav(c, "k", H5REC_INT16, 0, 0, &odd, 1), -EINVAL);
	assert_true(strlen(h5rec_client_error(c)) > 0);
	assert_int_equal(h5rec_client_last_seq(c), 0);
	assert_int_equal(h5rec_client_buffered(c), 0);
	h5rec_client_close(c);
	fake_stop(&f);

	struct h5rec_client_options o;
	h5rec_client_options_init(&o);
	o.address = "tcp:localhost:7600"; /* hosts are numeric */
	assert_int_equal(h5rec_client_open(&o, &c), -EINVAL);
	assert_null(c);
	o.address = "unix:/nonexistent/h5rec.sock";
	assert_int_equal(h5rec_client_open(&o, &c), -ENOENT);
}

/* Tries without progress end in -ECONNRESET, and stay so. */
static void test_gives_up(void **state)
{
	(void)state;
	struct fake f;
	struct got got;
	fake_listen(&f);
	struct h5rec_client *c = open_client(&f, 0, 2);

	queue_data(c, 1);
	fake_read(&f, c, 2, &got);
	fake_stop(&f); /* closed, and no listener to come back to */
	assert_int_equal(h5rec_client_wait(c, 0, 10000), -ECONNRESET);
	assert_non_null(strstr(h5rec_client_error(c), "gave up after 2 tries"));
	assert_int_equal(h5rec_client_data(c, "b1/adc0", H5REC_INT16, 0, 0, samples, 6),
			 -ECONNRESET);
	h5rec_client_close(c);

	/* reconnect_attempts 0: the first lost connection is the end. */
	fake_listen(&f);
	c = open_client(&f, 1, 0);
	queue_data(c, 1);
	fake_read(&f, c, 2, &got);
	fake_ack(&f, 1);
	close(f.conn);
	f.conn = -1;
	struct pollfd pfd = {.fd = h5rec_client_fd(c), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	int rc = h5rec_client_process(c);
	while (rc == 0 && h5rec_client_fd(c) >= 0) {
		assert_int_equal(poll(&pfd, 1, 5000), 1);
		rc = h5rec_client_process(c);
	}
	assert_int_equal(rc, -ECONNRESET);
	assert_int_equal(h5rec_client_durable_seq(c), 1);
	h5rec_client_close(c);
	fake_stop(&f);
}

/* An ACK for a frame never sent is the recorder's mistake, not a reason
 * to drop frames. */
static void test_ack_beyond_what_was_sent(void **state)
{
	(void)state;
	struct fake f;
	struct got got;
	fake_listen(&f);
	struct h5rec_client *c = open_client(&f, 1, 5);

	queue_data(c, 1);
	fake_read(&f, c, 2, &got);
	fake_ack(&f, 2);
	struct pollfd pfd = {.fd = h5rec_client_fd(c), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(h5rec_client_process(c), -EPROTO);
	assert_int_equal(h5rec_client_durable_seq(c), 0);
	assert_non_null(strstr(h5rec_client_error(c), "ACK for seq 2"));
	h5rec_client_close(c);
	fake_stop(&f);
}

/* UDP: one datagram per frame, no HELLO, nothing kept, no waiting for ACKs. */
static void test_udp(void **state)
{
	(void)state;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct h5rec_client_options o;
	struct h5rec_client *c;
	char address[64];
	uint8_t buf[512];
	struct got got = {0};

	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(address, sizeof(address), "udp:127.0.0.1:%d", ntohs(sin.sin_port));
	h5rec_client_options_init(&o);
	o.address = address;
	assert_int_equal(h5rec_client_open(&o, &c), 0);
	queue_data(c, 2);
	assert_int_equal(h5rec_client_buffered(c), 0);
	assert_int_equal(h5rec_client_wait(c, 0, 0), -ENOTSUP);
	const struct frame_options options = {.max_frame = 1 << 20, .peer = FRAME_FROM_SENDER};
	for (int i = 0; i < 2; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		assert_true(n > 0);
		assert_int_equal(frame_decode_datagram(&options, NULL, buf, (size_t)n, on_frame,
						       &got, NULL), 0);
	}
	assert_int_equal(got.count, 2);
	assert_int_equal(got.frames[0].type, FRAME_DATA);
	assert_int_equal(got.frames[0].seq, 1);
	assert_int_equal(got.frames[1].seq, 2);
	assert_int_equal(got.frames[0].flags, FRAME_FLAG_CRC);
	h5rec_client_close(c);
	close(fd);
}

/* ---- pre-compressed frames on encoder threads ---------------------------------- */

enum { CHUNK = 512, STREAM_CHUNKS = 3, EVENTS = 10 };

/* Answer a DESCRIBE for KEY with P (as the recorder's canonical text). */
static void fake_describe(struct fake *f, const char *key, uint64_t seq, const struct pipeline *p)
{
	char text[PIPELINE_TEXT_MAX];
	size_t text_len = pipeline_format(p, text, sizeof(text));
	struct frame answer = {.type = FRAME_DESCRIBE, .seq = seq, .key = key,
			       .key_len = strlen(key), .payload = text, .payload_len = text_len};
	uint8_t buf[512];
	size_t len;

	assert_true(text_len > 0);
	assert_int_equal(frame_encode(&answer, buf, sizeof(buf), &len), 0);
	assert_int_equal(send(f->conn, buf, len, 0), (ssize_t)len);
}

/* The first data_chunk() of KEY asks (-EAGAIN, non-blocking); the fake
 * reads the DESCRIBE (after the HELLO when FIRST) and answers it. */
static void describe_key(struct fake *f, struct h5rec_client *c, const char *key,
			 const struct pipeline *p, const int16_t *wave, bool first)
{
	struct got got;

	assert_int_equal(h5rec_client_data_chunk(c, key, H5REC_INT16, 0, 0, wave, p->chunk),
			 -EAGAIN);
	fake_read(f, c, first ? 2 : 1, &got);
	const struct got_frame *ask = &got.frames[got.count - 1];
	assert_int_equal(ask->type, FRAME_DESCRIBE);
	assert_string_equal(ask->key, key);
	fake_describe(f, key, ask->seq, p);
	struct pollfd pfd = {.fd = h5rec_client_fd(c), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(h5rec_client_process(c), 0);
}

static const struct pipeline records_lz4 = {
	.layout = PIPELINE_RECORDS, .dtype = DTYPE_INT16, .chunk = CHUNK,
	.shuffle = true, .codec = PIPELINE_LZ4, .fletcher32 = true};
static const struct pipeline stream_deflate = {
	.layout = PIPELINE_STREAM, .dtype = DTYPE_INT16, .chunk = CHUNK,
	.codec = PIPELINE_DEFLATE, .level = 1};

static void make_wave(int16_t *out, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (int16_t)((int)((i * 7 + seed * 131) % 200) - 100 + (int)((i * seed) % 5));
}

/* A non-blocking call that may have to wait for the encoder threads. */
#define UNTIL_DONE(c, call)                                                    \
	do {                                                                   \
		int rc_;                                                       \
		int tries_ = 0;                                                \
		while ((rc_ = (call)) == -EAGAIN && ++tries_ < 50000) {        \
			assert_int_equal(h5rec_client_process(c), 0);          \
			usleep(100);                                           \
		}                                                              \
		assert_int_equal(rc_, 0);                                      \
	} while (0)

/* Events, records waveforms and stream frames of three chunks, in turn,
 * on THREADS encoder threads; GOT: the frames after the DESCRIBEs. */
static void send_mixed(unsigned threads, struct got *got)
{
	struct fake f;
	int16_t wave[CHUNK * STREAM_CHUNKS];
	fake_listen(&f);
	struct h5rec_client *c = open_client(&f, 1, 5);

	assert_int_equal(h5rec_client_set_encode_threads(c, threads), 0);
	make_wave(wave, CHUNK, 99);
	describe_key(&f, c, "dust/a", &records_lz4, wave, true);
	describe_key(&f, c, "adc/x", &stream_deflate, wave, false);
	for (unsigned i = 1; i <= EVENTS; i++) {
		char fields[32];
		snprintf(fields, sizeof(fields), "mass=%u.5", i);
		UNTIL_DONE(c, h5rec_client_event(c, "dust", i, 1000 * i, fields));
		make_wave(wave, CHUNK, i);
		UNTIL_DONE(c, h5rec_client_data_chunk(c, "dust/a", H5REC_INT16, 1000 * i, i, wave,
						      CHUNK));
		make_wave(wave, CHUNK * STREAM_CHUNKS, 100 + i);
		UNTIL_DONE(c, h5rec_client_data_chunk(c, "adc/x", H5REC_INT16, 1000 * i, 0, wave,
						      CHUNK * STREAM_CHUNKS));
	}
	/* the frames still with the encoders count already */
	assert_int_equal(h5rec_client_last_seq(c), 2 + 3 * EVENTS);
	fake_read(&f, c, 3 * EVENTS, got);
	h5rec_client_close(c);
	fake_stop(&f);
}

static void test_encode_threads_keep_order_and_bytes(void **state)
{
	(void)state;
	static struct got here, threads;

	send_mixed(0, &here);
	send_mixed(4, &threads);
	for (size_t k = 0; k < 3 * EVENTS; k++) {
		const struct got_frame *a = &here.frames[k], *b = &threads.frames[k];
		assert_int_equal(b->seq, 3 + k);
		assert_int_equal(b->type, k % 3 == 0 ? FRAME_EVENT : FRAME_DATA);
		assert_string_equal(b->key, k % 3 == 0 ? "dust" : k % 3 == 1 ? "dust/a" : "adc/x");
		assert_int_equal(b->event_id, k % 3 == 2 ? 0 : k / 3 + 1);
		assert_int_equal(a->seq, b->seq);
		assert_int_equal(a->flags, b->flags);
		assert_string_equal(a->key, b->key);
		assert_int_equal(a->payload_len, b->payload_len);
		assert_memory_equal(a->payload, b->payload, a->payload_len);
	}
}

/* A pipeline the encoder cannot run (an LZ4 block size beyond LZ4's
 * limit, which no recorder's schema allows): on the calling thread the
 * call fails; on encoder threads the call has returned 0, so the next
 * call fails, for good, saying which key and seq. */
static void test_encoder_error_fails_the_client(void **state)
{
	(void)state;
	struct pipeline bad = records_lz4;
	int16_t wave[CHUNK];
	bad.lz4_block = UINT32_MAX;
	make_wave(wave, CHUNK, 1);

	for (unsigned threads = 0; threads <= 2; threads += 2) {
		struct fake f;
		fake_listen(&f);
		struct h5rec_client *c = open_client(&f, 1, 5);
		assert_int_equal(h5rec_client_set_encode_threads(c, threads), 0);
		describe_key(&f, c, "dust/a", &bad, wave, true);
		int rc = h5rec_client_data_chunk(c, "dust/a", H5REC_INT16, 1, 1, wave, CHUNK);
		if (!threads) {
			assert_int_equal(rc, -EINVAL);
			assert_non_null(strstr(h5rec_client_error(c), "encoding chunk 0 failed"));
			assert_int_equal(h5rec_client_process(c), 0); /* not final */
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(h5rec_client_last_seq(c), 2);
			for (int i = 0; i < 5000 && (rc = h5rec_client_process(c)) == 0; i++)
				usleep(1000);
			assert_int_equal(rc, -EINVAL);
			assert_non_null(strstr(h5rec_client_error(c), "dust/a: encoding chunk 0 of "
								     "the frame to be seq 2 failed on "
								     "an encoder thread"));
			assert_int_equal(h5rec_client_event(c, "dust", 1, 1, "mass=1"), -EINVAL);
		}
		h5rec_client_close(c);
		fake_stop(&f);
	}
}

/* A non-blocking caller that calls again before the DESCRIBE answer came
 * gets -EAGAIN again, and the key is asked once: no second DESCRIBE, and
 * no seq spent on one (until this was fixed each call sent another). */
static void test_describe_asked_once_while_waiting(void **state)
{
	(void)state;
	struct fake f;
	struct got got;
	int16_t wave[CHUNK];
	make_wave(wave, CHUNK, 7);
	fake_listen(&f);
	struct h5rec_client *c = open_client(&f, 1, 5);

	for (int i = 0; i < 3; i++) {
		assert_int_equal(h5rec_client_data_chunk(c, "dust/a", H5REC_INT16, 5, 1, wave,
							 CHUNK),
				 -EAGAIN);
		assert_non_null(strstr(h5rec_client_error(c), "waiting for the recorder"));
		assert_int_equal(h5rec_client_process(c), 0);
	}
	fake_read(&f, c, 2, &got);
	assert_int_equal(got.frames[0].type, FRAME_HELLO);
	assert_int_equal(got.frames[1].type, FRAME_DESCRIBE);
	uint64_t asked = got.frames[1].seq;
	fake_describe(&f, "dust/a", asked, &records_lz4);
	struct pollfd pfd = {.fd = h5rec_client_fd(c), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(h5rec_client_process(c), 0);
	assert_int_equal(h5rec_client_data_chunk(c, "dust/a", H5REC_INT16, 5, 1, wave, CHUNK), 0);
	fake_read(&f, c, 1, &got);
	assert_int_equal(got.frames[0].type, FRAME_DATA);
	assert_int_equal(got.frames[0].seq, asked + 1);
	h5rec_client_close(c);
	fake_stop(&f);
}

/* Frames still being encoded when the client closes are dropped with the
 * threads (LeakSanitizer and valgrind check nothing is left). */
static void test_close_with_frames_encoding(void **state)
{
	(void)state;
	struct fake f;
	int16_t wave[CHUNK * STREAM_CHUNKS];
	fake_listen(&f);
	struct h5rec_client *c = open_client(&f, 1, 5);

	assert_int_equal(h5rec_client_set_encode_threads(c, 300), -EINVAL);
	assert_int_equal(h5rec_client_set_encode_threads(c, 3), 0);
	make_wave(wave, CHUNK * STREAM_CHUNKS, 5);
	describe_key(&f, c, "adc/x", &stream_deflate, wave, true);
	for (int i = 0; i < 20; i++)
		UNTIL_DONE(c, h5rec_client_data_chunk(c, "adc/x", H5REC_INT16, i, 0, wave,
						      CHUNK * STREAM_CHUNKS));
	h5rec_client_close(c);
	fake_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_on_the_wire),
		cmocka_unit_test(test_replay_after_close),
		cmocka_unit_test(test_buffer_is_bounded),
		cmocka_unit_test(test_refused_arguments),
		cmocka_unit_test(test_gives_up),
		cmocka_unit_test(test_ack_beyond_what_was_sent),
		cmocka_unit_test(test_udp),
		cmocka_unit_test(test_encode_threads_keep_order_and_bytes),
		cmocka_unit_test(test_encoder_error_fails_the_client),
		cmocka_unit_test(test_close_with_frames_encoding),
		cmocka_unit_test(test_describe_asked_once_while_waiting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
