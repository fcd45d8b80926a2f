/*
 * client.c - libh5rec-client (see include/h5rec/client.h): frames to a
 * recorder, kept until they are durable, resent after a reconnect.
 *
 * Design. Every DATA and EVENT frame is encoded once, when it is queued,
 * into a record of the replay buffer: a list in seq order. `next_out`
 * points at the first record not yet written whole to the current
 * connection. An ACK with seq S drops the records up to S from the head.
 * When the connection is lost, the socket and its ACK decoder go, and the
 * next connection starts with a fresh HELLO and `next_out` back at the
 * head: exactly the frames no ACK covered go out again, in order, with the
 * seq they had. The HELLO carries the seq before the first of them, so the
 * recorder, which tracks seq per connection (the first frame sets the
 * baseline), counts neither a gap nor a step back.
 *
 * Everything is one state machine driven by h5rec_client_process(), which
 * never waits; the blocking mode is the same machine run under poll() by
 * wait_until(). Sockets are always non-blocking, so the two modes cannot
 * drift apart.
 *
 * Giving up: a failed connect, or a connection lost while frames were
 * outstanding and no ACK came on it, is a try without progress; after
 * reconnect_attempts of them in a row the client fails for good. The
 * second case is how a refused frame shows (the recorder closes the
 * connection on a frame it cannot take), and would otherwise be resent
 * forever.
 *
 * Pre-compressed chunks (issue 19): h5rec_client_data_chunk() asks the
 * recorder once per key and connection how the channel stores its chunks
 * (a DESCRIBE frame, not kept for replay: a new connection asks again, so
 * a recorder restarted with another schema is asked afresh), encodes with
 * that pipeline (chunk_encode.c) and queues a DATA frame with the chunks
 * flag like any other. An ERROR frame from the recorder (a refused frame,
 * with its reason) is final: the same frame would be refused again.
 *
 * Encoder threads (h5rec_client_set_encode_threads()). The codec is where
 * a pre-compressing sender's time goes (a few hundred MB/s per core for
 * LZ4, tens for deflate), so a sender with cores to spare hands the
 * encoding to threads of the client, which take chunks, not frames (a
 * stream frame of many chunks is spread over them too: encode_pool.c).
 * The order of frames is the contract that matters: a frame gets its seq
 * when it enters the replay buffer, frames enter it only in call order,
 * and only from the handle's own thread: finished encodings are queued
 * oldest first, none past one still in progress, by whichever call of the
 * owner comes next (the next data_chunk, process, wait, or any call that
 * queues a frame of another kind, an EVENT, a DESCRIBE, which all first
 * queue what is pending, waiting for it when they must). So the seqs of
 * pending frames are known when they are handed over, and
 * h5rec_client_last_seq() and h5rec_client_wait() count them. DESCRIBE
 * stays on the owner: the pipeline is asked for (after what is pending has
 * been queued, as it takes a seq) and copied into the job before it is
 * handed over. The samples are copied, so the caller's buffer is free on
 * return as with every other call; the copies are bounded by
 * replay_bytes, as the replay buffer is, and a full queue holds the caller
 * back (or -EAGAIN) like a full replay buffer. An encoder's failure fails
 * the client: the frame's seq was already counted and later frames
 * numbered after it, so it cannot be dropped nor told to a caller that
 * has returned. Why a setter rather than a field of the options: the
 * options struct is part of the ABI (docs/client.md, Compatibility) and a
 * new field would mean a new soname; a function is an addition.
 *
 * Threading: the handle belongs to one thread at a time; the encoder
 * threads, when asked for, touch only the jobs handed to them
 * (encode_pool.h has the hand-off contract).
 */
#include "h5rec/client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_tool.h"
#include "dtype.h"
#include "encode_pool.h"
#include "endpoint.h"
#include "frame.h"
#include "pipeline.h"

_Static_assert((int)H5REC_INT8 == (int)DTYPE_INT8 && (int)H5REC_FLOAT64 == (int)DTYPE_FLOAT64,
	       "public dtype numbers are the wire numbers");

enum {
	DEFAULT_REPLAY_BYTES = 64 << 20,
	DEFAULT_RECONNECT_ATTEMPTS = 20,
	DEFAULT_RECONNECT_DELAY_MS = 100,
	MAX_RECONNECT_DELAY_MS = 5000,
	DEFAULT_TIMEOUT_MS = 30000,
	CONNECT_TIMEOUT_MS = 10000, /* a connect still pending then is a failed try */
	HELLO_MAX = FRAME_HEADER_SIZE + FRAME_MAX_KEY + 512 + FRAME_CRC_SIZE,
	TOKEN_MAX = 256,
	MAX_ENCODE_THREADS = 256,
	ENCODING_POLL_MS = 1, /* h5rec_client_timeout() while frames are being encoded */
};

struct record {
	struct record *next;
	uint64_t seq;   /* 0 for raw bytes */
	bool keep;      /* until an ACK covers it; else dropped once written */
	bool teed;      /* copied to the tool's tee */
	size_t len;
	uint8_t bytes[];
};

/* The recorder's DESCRIBE answer for a key, on this connection. */
struct described {
	struct described *next;
	bool asked;              /* DESCRIBE sent, no answer yet */
	bool refused;            /* error="…": the channel takes no chunks */
	struct pipeline pipeline;
	uint32_t id;
	char why[256];
	char key[];
};

enum state {
	ST_IDLE,       /* no socket: waiting to (re)connect at retry_at_ms, or until needed */
	ST_CONNECTING, /* non-blocking connect in progress */
	ST_CONNECTED,
};

struct h5rec_client {
	struct h5rec_client_options options;
	struct client_tool_options tool;
	struct client_tool_stats stats;
	char *name, *token, *address; /* our copies */
	struct endpoint endpoint;
	enum state state;
	int fd;
	struct frame_decoder *acks; /* per connection */
	uint8_t hello[HELLO_MAX];
	size_t hello_len, hello_off;
	bool hello_teed;
	bool raw_used;       /* raw bytes may hold frames of seqs not ours */
	struct record *head, *tail, *next_out;
	size_t out_off; /* bytes of next_out already written */
	size_t buffered;
	uint64_t next_seq, durable;
	uint64_t written_seq; /* the last frame written whole on this connection */
	bool acked_on_conn;  /* an ACK advanced durable on this connection */
	unsigned failures;   /* tries in a row without progress */
	int64_t retry_at_ms; /* 0: no reconnect scheduled */
	int64_t connect_deadline_ms; /* while ST_CONNECTING */
	int last_errno;      /* of the last connect or connection lost */
	uint64_t reconnects;
	bool connected_once;
	int failure;         /* final error; 0 while working */
	struct described *described; /* DESCRIBE answers on this connection */
	unsigned encode_threads; /* 0: h5rec_client_data_chunk() encodes on the caller's thread */
	struct encode_pool *pool;
	uint64_t encoding;       /* frames submitted to the pool and not yet queued */
	size_t encoding_bytes;   /* their samples (copies), bounded by replay_bytes */
	char err[256];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(struct h5rec_client *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct h5rec_client *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return code;
}

/* ---- replay buffer ---------------------------------------------------------- */

static void drop_head(struct h5rec_client *c)
{
	struct record *r = c->head;

	c->head = r->next;
	if (!c->head)
		c->tail = NULL;
	if (c->next_out == r) {
		c->next_out = r->next;
		c->out_off = 0;
	}
	c->buffered -= r->len;
	free(r);
}

/* Drop what is no longer needed from the head: frames an ACK covered, and
 * records not kept once they are written (before next_out). */
static void trim_head(struct h5rec_client *c)
{
	while (c->head && (c->head->keep ? c->head->seq <= c->durable : c->head != c->next_out))
		drop_head(c);
}

static void forget_described(struct h5rec_client *c)
{
	while (c->described) {
		struct described *d = c->described;
		c->described = d->next;
		free(d);
	}
}

static struct described *find_described(const struct h5rec_client *c, const char *key)
{
	for (struct described *d = c->described; d; d = d->next)
		if (!strcmp(d->key, key))
			return d;
	return NULL;
}

/* A new entry for KEY at the head of the connection's list, or NULL. */
static struct described *add_described(struct h5rec_client *c, const char *key, size_t key_len)
{
	struct described *d = calloc(1, sizeof(*d) + key_len + 1);

	if (d) {
		memcpy(d->key, key, key_len);
		d->next = c->described;
		c->described = d;
	}
	return d;
}

/* A DESCRIBE answer: the pipeline, or why there is none. */
static int on_describe(struct h5rec_client *c, const struct frame *frame)
{
	struct described *d = find_described(c, frame->key);
	const char *text = frame->payload;

	if (d && !d->asked)
		return 0; /* answered already (asked again): the first answer stands */
	if (!d && !(d = add_described(c, frame->key, frame->key_len)))
		return c->failure = fail(c, -ENOMEM, "out of memory");
	d->asked = false;
	if (frame->payload_len > 7 && !memcmp(text, "error=\"", 7)) {
		d->refused = true;
		snprintf(d->why, sizeof(d->why), "%.*s", (int)(frame->payload_len - 8), text + 7);
	} else if (pipeline_parse(text, frame->payload_len, &d->pipeline, &d->id)) {
		d->refused = true;
		snprintf(d->why, sizeof(d->why), "the recorder's answer is not a pipeline: %.*s",
			 (int)(frame->payload_len < 200 ? frame->payload_len : 200), text);
	}
	return 0;
}

static int on_reply(void *user, const struct frame *frame)
{
	struct h5rec_client *c = user;

	if (frame->type == FRAME_DESCRIBE)
		return on_describe(c, frame);
	if (frame->type == FRAME_ERROR) {
		c->failure = fail(c, -EPROTO, "%s: the recorder refused seq %llu (%s): %.*s",
				  c->address, (unsigned long long)frame->seq, frame->key,
				  (int)(frame->payload_len < 180 ? frame->payload_len : 180),
				  (const char *)frame->payload);
		return -EPROTO;
	}
	c->stats.acks++;
	if (frame->seq <= c->durable)
		return 0;
	/* The recorder acknowledges only what it received: an ACK beyond the
	 * last frame written whole would drop frames it never had. */
	if (frame->seq > c->written_seq && !c->raw_used) {
		c->failure = fail(c, -EPROTO, "%s: ACK for seq %llu, but only up to %llu was sent",
				  c->address, (unsigned long long)frame->seq,
				  (unsigned long long)c->written_seq);
		return -EPROTO;
	}
	c->durable = frame->seq;
	trim_head(c);
	c->acked_on_conn = true;
	c->failures = 0;
	return 0;
}

/* ---- connection ------------------------------------------------------------- */

/* The HELLO this connection starts with (none over UDP: it cannot be
 * authenticated there, docs/protocols.md §1.3). */
static int build_hello(struct h5rec_client *c)
{
	char payload[TOKEN_MAX + 16] = "";
	c->hello_len = c->hello_off = 0;
	c->hello_teed = false;
	if (c->endpoint.datagram || c->tool.no_hello)
		return 0;
	const struct record *first = c->head;
	while (first && !first->keep)
		first = first->next;
	if (c->token)
		snprintf(payload, sizeof(payload), "token=\"%s\"", c->token);
	struct frame hello = {
		.type = FRAME_HELLO, .flags = FRAME_FLAG_CRC, .key = c->name,
		.key_len = strlen(c->name), .payload = payload, .payload_len = strlen(payload),
		.seq = (first ? first->seq : c->next_seq) - 1,
	};
	return frame_encode(&hello, c->hello, sizeof(c->hello), &c->hello_len);
}

static void drop_socket(struct h5rec_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	frame_decoder_free(c->acks);
	c->acks = NULL;
	c->state = ST_IDLE;
}

/* A try that brought no progress: schedule the next or give up. */
static void try_failed(struct h5rec_client *c, int code)
{
	c->last_errno = code;
	if (++c->failures > c->options.reconnect_attempts) {
		c->failure = fail(c, -ECONNRESET,
				  "%s: gave up after %u tries without progress (last: %s); "
				  "durable up to seq %llu of %llu",
				  c->address, c->failures - 1, strerror(code),
				  (unsigned long long)c->durable,
				  (unsigned long long)(c->next_seq - 1));
		return;
	}
	unsigned shift = c->failures - 1 < 16 ? c->failures - 1 : 16;
	uint64_t delay = (uint64_t)c->options.reconnect_delay_ms << shift;
	if (delay > MAX_RECONNECT_DELAY_MS)
		delay = MAX_RECONNECT_DELAY_MS;
	c->retry_at_ms = now_ms() + (int64_t)delay;
}

/* The connection is gone (closed by the recorder, reset, or a write
 * failed): what it did not get acknowledged goes out again on the next. */
static void connection_lost(struct h5rec_client *c, int code)
{
	bool outstanding = c->head != NULL;

	drop_socket(c);
	c->next_out = c->head;
	c->out_off = 0;
	if (!c->options.reconnect_attempts) {
		c->last_errno = code;
		c->failure = fail(c, -ECONNRESET,
				  "%s: the recorder closed the connection (%s); durable up to seq "
				  "%llu of %llu", c->address, strerror(code),
				  (unsigned long long)c->durable, (unsigned long long)(c->next_seq - 1));
	} else if (outstanding && !c->acked_on_conn) {
		try_failed(c, code);
	} else {
		c->last_errno = code;
		c->retry_at_ms = outstanding ? now_ms() : 0;
	}
}

static int connected(struct h5rec_client *c)
{
	const struct frame_options ack_options = {.max_frame = 1024, .peer = FRAME_FROM_RECORDER};

	c->acks = frame_decoder_new(&ack_options, on_reply, c);
	forget_described(c);
	if (!c->acks)
		return c->failure = fail(c, -ENOMEM, "out of memory");
	c->state = ST_CONNECTED;
	c->acked_on_conn = false;
	c->written_seq = c->durable;
	c->next_out = c->head;
	c->out_off = 0;
	c->reconnects += c->connected_once;
	c->connected_once = true;
	if (build_hello(c))
		return c->failure = fail(c, -EINVAL, "cannot encode the HELLO frame");
	return 0;
}

/* Start connecting: ST_CONNECTED, ST_CONNECTING, or a failed try. */
static int start_connect(struct h5rec_client *c)
{
	c->retry_at_ms = 0;
	c->fd = endpoint_socket(&c->endpoint, true);
	if (c->fd < 0) {
		int code = -c->fd;
		c->fd = -1;
		try_failed(c, code);
		return 0;
	}
	if (connect(c->fd, (struct sockaddr *)&c->endpoint.addr, c->endpoint.addr_len) == 0)
		return connected(c);
	if (errno == EINPROGRESS) {
		c->state = ST_CONNECTING;
		c->connect_deadline_ms = now_ms() + CONNECT_TIMEOUT_MS;
		return 0;
	}
	int code = errno;
	drop_socket(c);
	try_failed(c, code);
	return 0;
}

static int finish_connect(struct h5rec_client *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
	int code = 0;
	socklen_t len = sizeof(code);

	if (poll(&pfd, 1, 0) <= 0) {
		if (now_ms() < c->connect_deadline_ms)
			return 0;
		drop_socket(c);
		try_failed(c, ETIMEDOUT);
		return 0;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &code, &len) != 0)
		code = errno;
	if (!code)
		return connected(c);
	drop_socket(c);
	try_failed(c, code);
	return 0;
}

/* ---- I/O ------------------------------------------------------------------------ */

static int read_acks(struct h5rec_client *c)
{
	uint8_t buf[4096];

	while (c->state == ST_CONNECTED) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			connection_lost(c, n == 0 ? ECONNRESET : errno);
			return 0;
		}
		struct frame_error ferr;
		if (frame_decoder_feed(c->acks, buf, (size_t)n, &ferr) < 0 && !c->failure)
			c->failure = fail(c, -EPROTO, "%s: bad reply from the recorder: %s",
					  c->address, ferr.reason);
		if (c->failure)
			return c->failure;
	}
	return 0;
}

/* The next bytes to write on this connection; 0 when all are written. */
static size_t pending(const struct h5rec_client *c, const uint8_t **p)
{
	if (c->hello_off < c->hello_len) {
		*p = c->hello + c->hello_off;
		return c->hello_len - c->hello_off;
	}
	if (!c->next_out)
		return 0;
	*p = c->next_out->bytes + c->out_off;
	return c->next_out->len - c->out_off;
}

static void advance(struct h5rec_client *c, size_t n)
{
	if (c->hello_off < c->hello_len) {
		c->hello_off += n;
		c->stats.frames += c->hello_off == c->hello_len;
		return;
	}
	struct record *r = c->next_out;
	c->out_off += n;
	if (c->out_off < r->len)
		return;
	if (r->seq) {
		c->stats.frames++;
		if (r->seq > c->written_seq)
			c->written_seq = r->seq;
	}
	c->next_out = r->next;
	c->out_off = 0;
	trim_head(c);
}

/* The tool's copy of a record (or the HELLO) as it starts going out. */
static int tee(struct h5rec_client *c)
{
	bool *teed = c->hello_off < c->hello_len ? &c->hello_teed : &c->next_out->teed;
	const void *data = c->hello_off < c->hello_len ? c->hello : c->next_out->bytes;
	size_t len = c->hello_off < c->hello_len ? c->hello_len : c->next_out->len;

	if (!c->tool.tee || *teed)
		return 0;
	*teed = true;
	if (fwrite(data, 1, len, c->tool.tee) != len)
		return c->failure = fail(c, -EIO, "cannot write the tee file");
	return 0;
}

static void write_out(struct h5rec_client *c)
{
	const uint8_t *p;
	size_t len;

	while (c->state == ST_CONNECTED && (len = pending(c, &p)) > 0) {
		if (tee(c))
			return;
		if (c->tool.write_size && len > c->tool.write_size && !c->endpoint.datagram)
			len = c->tool.write_size;
		ssize_t w = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w < 0 && c->endpoint.datagram) {
			/* a datagram is sent whole or not at all: count it gone */
			fail(c, 0, "%s: datagram of seq %llu not sent: %s", c->address,
			     (unsigned long long)c->next_out->seq, strerror(errno));
			advance(c, len);
			continue;
		}
		if (w < 0) {
			connection_lost(c, errno);
			return;
		}
		c->stats.bytes += (uint64_t)w;
		advance(c, (size_t)w);
	}
}

/* h5rec_client_process() but for the frames the encoder threads finished:
 * what the library calls inside its own functions, which may be queueing
 * one of those frames already. */
static int step(struct h5rec_client *c)
{
	if (c->failure)
		return c->failure;
	/* ACKs first: a close read here is reconnected from at once. */
	if (c->state == ST_CONNECTED && !c->endpoint.datagram)
		read_acks(c);
	if (c->state == ST_IDLE && c->retry_at_ms && now_ms() >= c->retry_at_ms && !c->failure)
		start_connect(c);
	if (c->state == ST_CONNECTING)
		finish_connect(c);
	if (c->state == ST_CONNECTED && !c->failure)
		write_out(c);
	return c->failure;
}

static int queue_encoded(struct h5rec_client *c, bool wait_room);

int h5rec_client_process(struct h5rec_client *c)
{
	int rc = step(c);

	if (!rc && c->encoding)
		rc = queue_encoded(c, false);
	return rc;
}

/* ---- waiting (blocking mode) ---------------------------------------------------- */

typedef bool (*wait_done_fn)(const struct h5rec_client *c, uint64_t arg);

/* The socket's timed work (h5rec_client_timeout() without the encoders). */
static int io_timeout(const struct h5rec_client *c)
{
	int64_t at = c->state == ST_CONNECTING ? c->connect_deadline_ms
		   : c->state == ST_IDLE ? c->retry_at_ms : 0;
	if (c->failure || !at)
		return -1;
	int64_t left = at - now_ms();
	return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Run the state machine under poll() until DONE, the socket and the
 * encoder threads' fd at once: an encoding that finishes wakes the wait
 * as an ACK does. The fd is cleared before DONE is asked, so a job that
 * finishes after that makes the poll return. */
static int wait_until(struct h5rec_client *c, wait_done_fn done, uint64_t arg, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	for (;;) {
		if (c->pool)
			encode_pool_clear(c->pool);
		int rc = step(c);
		if (rc)
			return rc;
		if (done(c, arg))
			return 0;
		int wait = io_timeout(c);
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			if (wait < 0 || wait > left)
				wait = (int)left;
		}
		struct pollfd pfd[2] = {
			{.fd = c->fd, .events = (short)h5rec_client_events(c)},
			{.fd = c->pool ? encode_pool_fd(c->pool) : -1, .events = POLLIN},
		};
		if (c->fd < 0 && wait < 0)
			wait = c->options.reconnect_delay_ms ? (int)c->options.reconnect_delay_ms : 1;
		poll(pfd, 2, wait);
	}
}

/* A frame larger than the whole bound is taken into an empty buffer. */
static bool has_room(const struct h5rec_client *c, uint64_t size)
{
	return c->buffered == 0 || c->buffered + size <= c->options.replay_bytes;
}

static bool is_durable(const struct h5rec_client *c, uint64_t seq)
{
	return c->durable >= seq;
}

static bool not_connecting(const struct h5rec_client *c, uint64_t unused)
{
	(void)unused;
	return c->state != ST_CONNECTING;
}

/* ---- queueing frames --------------------------------------------------------------- */

static int make_room(struct h5rec_client *c, size_t size)
{
	if (has_room(c, size))
		return 0;
	if (c->options.nonblocking) {
		int rc = step(c);
		if (rc)
			return rc;
		return has_room(c, size) ? 0 : fail(c, -EAGAIN, "replay buffer full");
	}
	int rc = wait_until(c, has_room, size, (int)c->options.timeout_ms);
	if (rc == -ETIMEDOUT)
		fail(c, rc, "no room in the replay buffer within %u ms: durable up to seq %llu",
		     c->options.timeout_ms, (unsigned long long)c->durable);
	return rc;
}

static int append(struct h5rec_client *c, struct record *r)
{
	r->next = NULL;
	r->teed = false;
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	if (!c->next_out && c->state == ST_CONNECTED) {
		c->next_out = r;
		c->out_off = 0;
	}
	c->buffered += r->len;
	if (c->state == ST_IDLE && !c->retry_at_ms)
		c->retry_at_ms = now_ms();
	return step(c);
}

/* The flags a frame goes out with: the CRC always, an ACK request where
 * ACKs come, the chunks flag as the caller set it. */
static uint8_t frame_flags(const struct h5rec_client *c, uint8_t flags)
{
	bool acks = !c->endpoint.datagram && !c->tool.no_acks;

	return (uint8_t)((flags & FRAME_FLAG_CHUNKS) | FRAME_FLAG_CRC |
			 (acks ? FRAME_FLAG_ACK_REQUESTED : 0));
}

static int queue_frame(struct h5rec_client *c, struct frame *frame, const struct iovec *iov,
		       int iovcnt)
{
	c->err[0] = '\0';
	if (c->failure)
		return c->failure;
	frame->key_len = strlen(frame->key);
	if (frame->key_len > FRAME_MAX_KEY)
		return fail(c, -EINVAL, "key of %zu bytes: at most %d", frame->key_len, FRAME_MAX_KEY);
	frame->seq = c->next_seq;
	frame->flags = frame_flags(c, frame->flags);
	size_t size = frame_encoded_size(frame->key_len, frame->payload_len, frame->flags);
	int rc = make_room(c, size);
	if (rc)
		return rc;
	struct record *r = malloc(sizeof(*r) + size);
	if (!r)
		return fail(c, -ENOMEM, "out of memory");
	rc = frame_encode_iov(frame, iov, iovcnt, r->bytes, size, &r->len);
	if (rc) {
		free(r);
		return fail(c, -EINVAL, "frame '%s' is not valid (key, dtype, size or event_id)",
			    frame->key);
	}
	r->seq = c->next_seq++;
	/* Nothing is ever resent without reconnecting: then keep nothing. */
	r->keep = (frame->flags & FRAME_FLAG_ACK_REQUESTED) && c->options.reconnect_attempts;
	return append(c, r);
}

/* ---- pre-compressed frames ------------------------------------------------------------ */

static size_t job_payload_len(const struct encode_job *job)
{
	size_t len = FRAME_CHUNKS_HEAD + (size_t)job->nchunks * FRAME_CHUNK_ENTRY;

	for (uint32_t i = 0; i < job->nchunks; i++)
		len += job->chunks[i].len;
	return len;
}

/* Queue an encoded job as one DATA frame with the chunks flag: the chunk
 * table, then each chunk, gathered without another copy. */
static int queue_job(struct h5rec_client *c, const struct encode_job *job)
{
	uint32_t n = job->nchunks;
	size_t table_len = FRAME_CHUNKS_HEAD + (size_t)n * FRAME_CHUNK_ENTRY;
	uint8_t *table = malloc(table_len);
	struct iovec *iov = calloc((size_t)n + 1, sizeof(*iov));
	int rc = table && iov ? 0 : fail(c, -ENOMEM, "out of memory");

	for (uint32_t i = 0; !rc && i < n; i++) {
		frame_chunks_put_entry(table, i, (uint32_t)job->chunks[i].len, 0, job->raw_len);
		iov[i + 1] = (struct iovec){.iov_base = job->chunks[i].bytes,
					    .iov_len = job->chunks[i].len};
	}
	if (!rc) {
		frame_chunks_put_head(table, job->pipeline_id, n);
		iov[0] = (struct iovec){.iov_base = table, .iov_len = table_len};
		struct frame frame = {.type = FRAME_DATA, .dtype = job->dtype, .t0 = job->t0,
				      .event_id = job->event_id, .key = job->key,
				      .flags = FRAME_FLAG_CHUNKS, .payload_len = job_payload_len(job)};
		rc = queue_frame(c, &frame, iov, (int)n + 1);
	}
	free(iov);
	free(table);
	return rc;
}

/* The oldest frame in the encoder threads is done (or there is none). */
static bool encoded_ready(const struct h5rec_client *c, uint64_t unused)
{
	(void)unused;
	return !c->encoding || encode_pool_peek(c->pool) != NULL;
}

/*
 * Queue the frames the encoder threads have finished, oldest first, and
 * none after one still being encoded: so frames take their seq in call
 * order, whichever encoding finishes first. WAIT_ROOM: wait for room in
 * the replay buffer as a queueing call does (-EAGAIN, -ETIMEDOUT, and the
 * frame stays first in line); else stop where there is none, without
 * waiting, as h5rec_client_process() must.
 *
 * An encoder's error is final: the call that handed the frame over has
 * returned 0, and later frames were counted with the seqs after it
 * (h5rec_client_last_seq()), so it can neither be reported to its caller
 * nor left out.
 */
static int queue_encoded(struct h5rec_client *c, bool wait_room)
{
	struct encode_job *job;

	while (c->encoding && !c->failure && (job = encode_pool_peek(c->pool)) != NULL) {
		int rc = job->rc;
		if (rc) {
			c->failure = fail(c, rc, "%s: encoding chunk %u of the frame to be seq %llu "
					  "failed on an encoder thread (%s); nothing after seq %llu "
					  "is sent", job->key, job->failed_chunk,
					  (unsigned long long)c->next_seq, strerror(-rc),
					  (unsigned long long)(c->next_seq - 1));
		} else {
			size_t size = frame_encoded_size(strlen(job->key), job_payload_len(job),
							 frame_flags(c, FRAME_FLAG_CHUNKS));
			if (!wait_room && !has_room(c, size))
				return 0;
			rc = queue_job(c, job);
			if (rc == -EAGAIN || rc == -ETIMEDOUT)
				return rc;
			if (rc && !c->failure)
				c->failure = rc; /* its seq was promised: the client cannot go on */
		}
		encode_pool_pop(c->pool);
		c->encoding--;
		c->encoding_bytes -= job->raw_len * job->nchunks;
		encode_job_free(job);
	}
	return c->failure;
}

/* Queue what the encoder threads hold up to and including seq UNTIL,
 * waiting for them (at most TIMEOUT_MS, -1: no limit); a non-blocking
 * client gets -EAGAIN while any of it is still being encoded. Every call
 * that queues a frame of another kind, or asks the recorder something,
 * does this first: nothing may overtake a frame whose seq is counted. */
static int drain_encoded(struct h5rec_client *c, uint64_t until, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	while (c->encoding && c->next_seq <= until) {
		int rc = queue_encoded(c, true);
		if (rc)
			return rc;
		if (!c->encoding || c->next_seq > until)
			break;
		if (c->options.nonblocking)
			return fail(c, -EAGAIN, "%llu frames still being encoded: call again after "
				    "h5rec_client_process()", (unsigned long long)c->encoding);
		int64_t left = deadline < 0 ? -1 : deadline - now_ms();
		if (deadline >= 0 && left <= 0)
			left = 0;
		rc = wait_until(c, encoded_ready, 0, (int)left);
		if (rc == -ETIMEDOUT)
			return fail(c, rc, "the encoder threads did not finish seq %llu within %d ms",
				    (unsigned long long)c->next_seq, timeout_ms);
		if (rc)
			return rc;
	}
	return 0;
}

static int drain_all(struct h5rec_client *c)
{
	return drain_encoded(c, UINT64_MAX, (int)c->options.timeout_ms);
}

int h5rec_client_datav(struct h5rec_client *c, const char *key, enum h5rec_dtype dtype,
		       int64_t t0, uint64_t event_id, const struct iovec *iov, int iovcnt)
{
	size_t total = 0, sample = frame_dtype_sample_size((unsigned)dtype);

	if (!key || iovcnt < 0 || (iovcnt && !iov))
		return fail(c, -EINVAL, "no key or a bad iovec");
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (!sample || total % sample)
		return fail(c, -EINVAL, "%zu bytes are not a whole number of samples of dtype %d",
			    total, (int)dtype);
	int rc = drain_all(c);
	if (rc)
		return rc;
	struct frame frame = {.type = FRAME_DATA, .dtype = (enum dtype)dtype, .t0 = t0,
			      .event_id = event_id, .key = key, .payload_len = total};
	return queue_frame(c, &frame, iov, iovcnt);
}

int h5rec_client_data(struct h5rec_client *c, const char *key, enum h5rec_dtype dtype,
		      int64_t t0, uint64_t event_id, const void *samples, size_t count)
{
	size_t sample = frame_dtype_sample_size((unsigned)dtype);

	if (!sample || count > SIZE_MAX / sample)
		return fail(c, -EINVAL, "bad dtype %d or sample count", (int)dtype);
	struct iovec iov = {.iov_base = (void *)samples, .iov_len = count * sample};
	return h5rec_client_datav(c, key, dtype, t0, event_id, &iov, 1);
}

/* Ask the recorder how KEY's channel stores chunks: a DESCRIBE frame,
 * written once and not kept (its answer belongs to this connection), and
 * an entry that waits for the answer, so that a caller asking again before
 * it came (non-blocking, or after a timeout) does not send another. */
static int ask_describe(struct h5rec_client *c, const char *key)
{
	size_t key_len = strlen(key);
	struct frame ask = {.type = FRAME_DESCRIBE, .key = key, .key_len = key_len,
			    .seq = c->next_seq, .flags = FRAME_FLAG_CRC};
	size_t size = frame_encoded_size(ask.key_len, 0, ask.flags);
	struct record *r = malloc(sizeof(*r) + size);

	if (!r)
		return fail(c, -ENOMEM, "out of memory");
	if (frame_encode(&ask, r->bytes, size, &r->len)) {
		free(r);
		return fail(c, -EINVAL, "key '%s' is not valid", key);
	}
	r->seq = c->next_seq++;
	r->keep = false;
	int rc = append(c, r);
	if (rc)
		return rc;
	/* after append(), whose writing may have reconnected (emptying the
	 * list: the entry belongs to the connection now up), or read the
	 * answer already */
	if (find_described(c, key))
		return 0;
	struct described *d = add_described(c, key, key_len);
	if (!d)
		return fail(c, -ENOMEM, "out of memory");
	d->asked = true;
	return 0;
}

/* Answered, or the connection it was asked on is gone (a recorder that
 * predates DESCRIBE closes it: type 5 is a protocol error there). */
static bool has_described(const struct h5rec_client *c, uint64_t key)
{
	const struct described *d = find_described(c, (const char *)(uintptr_t)key);
	return (d && !d->asked) || c->state != ST_CONNECTED;
}

/* The DESCRIBE answer for KEY, asked for and waited for when missing.
 * The DESCRIBE takes a seq: the frames still being encoded go first. */
static int describe(struct h5rec_client *c, const char *key, const struct described **out)
{
	int rc = 0;
	const struct described *d = find_described(c, key);

	if (d && d->asked && c->state != ST_CONNECTED)
		d = NULL; /* asked on a connection that is gone: ask on the next */
	if (!d) {
		rc = drain_all(c);
		if (rc)
			return rc;
		if (c->state != ST_CONNECTED || c->endpoint.datagram)
			return fail(c, c->endpoint.datagram ? -ENOTSUP : -EAGAIN,
				    "pre-compressed chunks need a connection to ask the recorder");
		rc = ask_describe(c, key);
		if (rc)
			return rc;
		d = find_described(c, key);
	}
	if (d->asked) {
		if (c->options.nonblocking)
			return fail(c, -EAGAIN, "waiting for the recorder to say how '%s' stores "
				    "chunks: call again after h5rec_client_process()", key);
		rc = wait_until(c, has_described, (uint64_t)(uintptr_t)key,
				(int)c->options.timeout_ms);
		if (rc)
			return rc == -ETIMEDOUT ? fail(c, rc, "no DESCRIBE answer for '%s'", key)
						: rc;
		d = find_described(c, key);
		if (!d || d->asked)
			return fail(c, -EPROTO, "%s: the recorder closed the connection instead "
				    "of saying how '%s' stores chunks (a recorder older than "
				    "pre-compressed chunks does)", c->address, key);
	}
	*out = d;
	if ((*out)->refused)
		return fail(c, -EINVAL, "%s: %s", key, (*out)->why);
	return 0;
}

/* Encode JOB's chunks on the calling thread and queue its frame. */
static int encode_here(struct h5rec_client *c, struct encode_job *job)
{
	int rc = 0;

	for (uint32_t i = 0; !rc && i < job->nchunks; i++) {
		rc = encode_job_run(job, i);
		if (rc)
			rc = fail(c, rc, "%s: encoding chunk %u failed (%s)", job->key, i,
				  strerror(-rc));
	}
	if (!rc)
		rc = queue_job(c, job);
	encode_job_free(job);
	return rc;
}

/*
 * Room for BYTES more samples with the encoder threads. What waits there
 * is bounded by replay_bytes of samples, as the replay buffer is (a frame
 * larger than that is taken when nothing else waits): a blocking client
 * waits for the oldest to finish and be queued, which itself waits for
 * room in the replay buffer, so a slow recorder holds the caller back
 * through both; a non-blocking client gets -EAGAIN.
 */
static int make_encode_room(struct h5rec_client *c, size_t bytes)
{
	int rc = queue_encoded(c, false);

	while (!rc && c->encoding && c->encoding_bytes + bytes > c->options.replay_bytes) {
		if (c->options.nonblocking) {
			rc = fail(c, -EAGAIN, "%zu bytes of samples wait for the encoder threads: "
				  "call again after h5rec_client_process()", c->encoding_bytes);
			break;
		}
		rc = wait_until(c, encoded_ready, 0, (int)c->options.timeout_ms);
		if (rc == -ETIMEDOUT)
			rc = fail(c, rc, "the encoder threads did not finish seq %llu within %u ms",
				  (unsigned long long)c->next_seq, c->options.timeout_ms);
		if (!rc)
			rc = queue_encoded(c, true);
	}
	return rc;
}

/* Hand a frame's samples, copied, to the encoder threads. */
static int encode_on_threads(struct h5rec_client *c, const char *key, const struct pipeline *p,
			     uint32_t pipeline_id, enum dtype dtype, int64_t t0, uint64_t event_id,
			     const void *samples, uint32_t nchunks)
{
	size_t bytes = (size_t)p->chunk * frame_dtype_sample_size((unsigned)dtype) * nchunks;
	int rc = make_encode_room(c, bytes);

	if (rc)
		return rc;
	struct encode_job *job = encode_job_new(key, p, pipeline_id, dtype, t0, event_id, samples,
						nchunks, true);
	if (!job)
		return fail(c, -ENOMEM, "out of memory");
	encode_pool_submit(c->pool, job);
	c->encoding++;
	c->encoding_bytes += bytes;
	return 0;
}

int h5rec_client_data_chunk(struct h5rec_client *c, const char *key, enum h5rec_dtype dtype,
			    int64_t t0, uint64_t event_id, const void *samples, size_t count)
{
	size_t sample = frame_dtype_sample_size((unsigned)dtype);
	const struct described *d = NULL;

	c->err[0] = '\0';
	if (c->failure)
		return c->failure;
	if (!key || !sample || count > SIZE_MAX / sample)
		return fail(c, -EINVAL, "no key, or a bad dtype %d or sample count", (int)dtype);
	int rc = describe(c, key, &d);
	if (rc)
		return rc;
	uint64_t chunk = d->pipeline.chunk;
	bool records = d->pipeline.layout == PIPELINE_RECORDS;
	if ((enum dtype)dtype != d->pipeline.dtype || !count || count % chunk ||
	    (records && count != chunk) || count / chunk > FRAME_CHUNKS_MAX)
		return fail(c, -EINVAL, "%s: the channel stores chunks of %llu %s samples%s, "
			    "not %zu samples of dtype %d", key, (unsigned long long)chunk,
			    dtype_name(d->pipeline.dtype), records ? " (one per frame)" : "",
			    count, (int)dtype);
	/* Copies: waiting for room may reconnect, which forgets D. */
	struct pipeline pipeline = d->pipeline;
	uint32_t pipeline_id = d->id, nchunks = (uint32_t)(count / chunk);
	if (c->pool)
		return encode_on_threads(c, key, &pipeline, pipeline_id, (enum dtype)dtype, t0,
					 event_id, samples, nchunks);
	struct encode_job *job = encode_job_new(key, &pipeline, pipeline_id, (enum dtype)dtype, t0,
						event_id, samples, nchunks, false);
	if (!job)
		return fail(c, -ENOMEM, "out of memory");
	return encode_here(c, job);
}

int h5rec_client_event(struct h5rec_client *c, const char *key, uint64_t event_id, int64_t t0,
		       const char *fields)
{
	if (!key || !fields)
		return fail(c, -EINVAL, "no key or fields");
	int rc = drain_all(c);
	if (rc)
		return rc;
	struct iovec iov = {.iov_base = (void *)fields, .iov_len = strlen(fields)};
	struct frame frame = {.type = FRAME_EVENT, .t0 = t0, .event_id = event_id, .key = key,
			      .payload_len = iov.iov_len};
	return queue_frame(c, &frame, &iov, 1);
}

int h5rec_client_set_encode_threads(struct h5rec_client *c, unsigned threads)
{
	c->err[0] = '\0';
	if (c->failure)
		return c->failure;
	if (threads > MAX_ENCODE_THREADS)
		return fail(c, -EINVAL, "%u encoder threads: at most %d", threads,
			    MAX_ENCODE_THREADS);
	if (threads < 2)
		threads = 0;
	if (threads == c->encode_threads)
		return 0;
	int rc = drain_all(c);
	if (rc)
		return rc;
	encode_pool_stop(c->pool);
	c->pool = NULL;
	c->encode_threads = 0;
	if (threads) {
		rc = encode_pool_start(threads, &c->pool);
		if (rc)
			return fail(c, rc, "cannot start %u encoder threads: %s", threads,
				    strerror(-rc));
	}
	c->encode_threads = threads;
	return 0;
}

/* ---- life ------------------------------------------------------------------------------ */

void h5rec_client_options_init(struct h5rec_client_options *o)
{
	memset(o, 0, sizeof(*o));
	o->replay_bytes = DEFAULT_REPLAY_BYTES;
	o->reconnect_attempts = DEFAULT_RECONNECT_ATTEMPTS;
	o->reconnect_delay_ms = DEFAULT_RECONNECT_DELAY_MS;
	o->timeout_ms = DEFAULT_TIMEOUT_MS;
}

static int copy_options(struct h5rec_client *c, const struct h5rec_client_options *o)
{
	c->options = *o;
	if (!c->options.replay_bytes)
		c->options.replay_bytes = DEFAULT_REPLAY_BYTES;
	if (!c->options.reconnect_delay_ms)
		c->options.reconnect_delay_ms = DEFAULT_RECONNECT_DELAY_MS;
	if (!c->options.timeout_ms)
		c->options.timeout_ms = DEFAULT_TIMEOUT_MS;
	c->address = strdup(o->address);
	c->name = strdup(o->name ? o->name : "h5rec-client");
	c->token = o->token ? strdup(o->token) : NULL;
	if (!c->address || !c->name || (o->token && !c->token))
		return -ENOMEM;
	if (strlen(c->name) > FRAME_MAX_KEY || (c->token && strlen(c->token) > TOKEN_MAX))
		return -EINVAL;
	return 0;
}

int client_tool_open(const struct h5rec_client_options *o, const struct client_tool_options *tool,
		     struct h5rec_client **out)
{
	*out = NULL;
	if (!o || !o->address)
		return -EINVAL;
	struct h5rec_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	if (tool)
		c->tool = *tool;
	c->next_seq = c->tool.first_seq ? c->tool.first_seq : 1;
	int rc = copy_options(c, o);
	if (!rc)
		rc = endpoint_parse(c->address, &c->endpoint, c->err, sizeof(c->err));
	if (!rc)
		rc = start_connect(c);
	if (!rc && c->state == ST_CONNECTING && !o->nonblocking)
		rc = wait_until(c, not_connecting, 0, (int)c->options.timeout_ms);
	if (!rc && c->state == ST_IDLE)
		rc = -c->last_errno; /* the first connect failed: say so now */
	if (!rc)
		rc = h5rec_client_process(c);
	if (rc) {
		h5rec_client_close(c);
		return rc;
	}
	c->failures = 0;
	*out = c;
	return 0;
}

int h5rec_client_open(const struct h5rec_client_options *o, struct h5rec_client **out)
{
	return client_tool_open(o, NULL, out);
}

void h5rec_client_close(struct h5rec_client *c)
{
	if (!c)
		return;
	encode_pool_stop(c->pool);
	drop_socket(c);
	forget_described(c);
	while (c->head)
		drop_head(c);
	free(c->address);
	free(c->name);
	free(c->token);
	free(c);
}

/* ---- state ------------------------------------------------------------------------------ */

int h5rec_client_wait(struct h5rec_client *c, uint64_t seq, int timeout_ms)
{
	int64_t start = now_ms();

	c->err[0] = '\0';
	if (c->endpoint.datagram)
		return fail(c, -ENOTSUP, "UDP has no ACKs");
	if (!seq || seq > h5rec_client_last_seq(c))
		seq = h5rec_client_last_seq(c);
	if (c->options.nonblocking) {
		int rc = h5rec_client_process(c);
		return rc ? rc : is_durable(c, seq) ? 0 : -EAGAIN;
	}
	/* a frame still with the encoder threads is queued first */
	int rc = drain_encoded(c, seq, timeout_ms);
	if (rc)
		return rc;
	int left = timeout_ms < 0 ? -1 : (int)(timeout_ms - (now_ms() - start));
	rc = wait_until(c, is_durable, seq, left < 0 && timeout_ms >= 0 ? 0 : left);
	if (rc == -ETIMEDOUT)
		fail(c, rc, "seq %llu not durable within %d ms (durable up to %llu)",
		     (unsigned long long)seq, timeout_ms, (unsigned long long)c->durable);
	return rc;
}

/* Frames with the encoder threads count: nothing takes a seq before them
 * (drain_encoded()), so theirs are the next ones in call order. */
uint64_t h5rec_client_last_seq(const struct h5rec_client *c)
{
	return c->next_seq - 1 + c->encoding;
}

uint64_t h5rec_client_durable_seq(const struct h5rec_client *c)
{
	return c->durable;
}

int h5rec_client_fd(const struct h5rec_client *c)
{
	return c->fd;
}

int h5rec_client_events(const struct h5rec_client *c)
{
	const uint8_t *p;

	if (c->state == ST_CONNECTING)
		return POLLOUT;
	if (c->state != ST_CONNECTED)
		return 0;
	return POLLIN | (pending(c, &p) ? POLLOUT : 0);
}

int h5rec_client_timeout(const struct h5rec_client *c)
{
	int left = io_timeout(c);

	/* The program polls one fd, the socket: an encoding that finishes
	 * cannot wake it, so it looks again soon. */
	if (c->encoding && !c->failure && (left < 0 || left > ENCODING_POLL_MS))
		return ENCODING_POLL_MS;
	return left;
}

size_t h5rec_client_buffered(const struct h5rec_client *c)
{
	return c->buffered;
}

uint64_t h5rec_client_reconnects(const struct h5rec_client *c)
{
	return c->reconnects;
}

const char *h5rec_client_error(const struct h5rec_client *c)
{
	return c->err;
}

/* ---- for the h5rec tool (client_tool.h) ---------------------------------------------- */

int client_tool_raw(struct h5rec_client *c, const void *data, size_t len)
{
	c->err[0] = '\0';
	if (c->failure)
		return c->failure;
	int rc = drain_all(c);
	if (!rc)
		rc = make_room(c, len);
	if (rc)
		return rc;
	struct record *r = malloc(sizeof(*r) + len);
	if (!r)
		return fail(c, -ENOMEM, "out of memory");
	memcpy(r->bytes, data, len);
	r->len = len;
	r->seq = 0;
	r->keep = false;
	c->raw_used = true;
	return append(c, r);
}

static bool all_written(const struct h5rec_client *c, uint64_t unused)
{
	const uint8_t *p;
	(void)unused;
	return c->state == ST_CONNECTED && !pending(c, &p);
}

int client_tool_finish(struct h5rec_client *c, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int rc = drain_encoded(c, UINT64_MAX, timeout_ms);
	uint8_t buf[256];

	if (!rc)
		rc = wait_until(c, all_written, 0,
				deadline < 0 ? -1 : (int)(now_ms() < deadline ? deadline - now_ms() : 0));

	if (rc || c->endpoint.datagram)
		return rc;
	shutdown(c->fd, SHUT_WR);
	/* The recorder closes its side once it has read everything. */
	for (;;) {
		int64_t left = deadline < 0 ? -1 : deadline - now_ms();
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		if ((deadline >= 0 && left <= 0) || poll(&pfd, 1, (int)left) <= 0)
			return 0;
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return 0;
		frame_decoder_feed(c->acks, buf, (size_t)n, NULL);
	}
}

const struct client_tool_stats *client_tool_stats(const struct h5rec_client *c)
{
	return &c->stats;
}
