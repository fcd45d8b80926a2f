/*
 * sender_nats.c - the tools' sender to NATS JetStream (see sender_nats.h),
 * for recorders that pull from a stream (docs/scale-out.md).
 *
 * A message is what one recorder decodes on its own, so frames go as
 * whole records: the frames of one event (event id not 0) in one message,
 * a frame outside any event in a message of its own. Lines go in batches
 * of whole lines (a message per line would cost a round trip each). Every
 * message carries Nats-Msg-Id NAME:N; it is published again with the same
 * id after a timeout or an error (a leader election, a server gone, too
 * many publishes in flight), and the stream's duplicate window keeps one
 * copy. The broker's acknowledgement stands in for the recorder's ACK
 * frame: once it came, the message is stored on the stream's replicas and
 * a recorder will make it durable or leave it to another.
 *
 * Publishing waits for each acknowledgement: simple, and a failover can
 * lose nothing in flight. (Pipelining with js_PublishMsgAsync is faster;
 * it is for the benchmark to say by how much.)
 */
#include "sender_nats.h"

#include <errno.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"

/* A message is given up after this long without an acknowledgement. */
#define PUBLISH_GIVE_UP_NS (60LL * 1000000000LL)
/* Lines are published in batches of about this many bytes. */
#define LINE_BATCH 262144

struct sender_nats {
	natsConnection *nc;
	jsCtx *js;
	char *subject;
	char *name;
	FILE *tee;
	int64_t max_payload;
	uint64_t next_frame_seq;
	uint64_t next_msg;     /* N of the next Nats-Msg-Id */
	/* the record being gathered */
	uint8_t *msg;
	size_t msg_len, msg_cap;
	uint64_t msg_event;    /* its event id; 0: a frame of its own */
	/* --raw input not yet cut into messages */
	uint8_t *raw;
	size_t raw_len, raw_cap;
	int raw_kind;          /* 0 unknown, 1 frames, 2 lines */
	struct sender_stats *stats;
	char *err;
	size_t err_len;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 65536;
	while (n < need)
		n *= 2;
	uint8_t *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* Publish BYTES as one message, again with the same id until the broker
 * acknowledges it. */
static int publish(struct sender_nats *s, const uint8_t *bytes, size_t len)
{
	char id[160];
	int64_t deadline = now_ns() + PUBLISH_GIVE_UP_NS;

	if ((int64_t)len > s->max_payload) {
		snprintf(s->err, s->err_len, "a record of %zu bytes is larger than the server's "
			 "max_payload (%lld bytes)", len, (long long)s->max_payload);
		return -EMSGSIZE;
	}
	snprintf(id, sizeof(id), "%s:%llu", s->name, (unsigned long long)s->next_msg);
	for (;;) {
		natsMsg *msg = NULL;
		jsPubAck *ack = NULL;
		jsPubOptions po;
		jsErrCode jerr = 0;
		jsPubOptions_Init(&po);
		po.MaxWait = 5000;
		natsStatus st = natsMsg_Create(&msg, s->subject, NULL, (const char *)bytes, (int)len);
		if (st == NATS_OK)
			st = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
		if (st == NATS_OK)
			st = js_PublishMsg(&ack, s->js, msg, &po, &jerr);
		natsMsg_Destroy(msg);
		if (st == NATS_OK) {
			jsPubAck_Destroy(ack);
			break;
		}
		if (now_ns() > deadline) {
			snprintf(s->err, s->err_len, "message %s to %s not acknowledged by the "
				 "broker: %s (JetStream error %d)", id, s->subject,
				 natsStatus_GetText(st), (int)jerr);
			return -ETIMEDOUT;
		}
		struct timespec pause = {0, 100 * 1000000L};
		nanosleep(&pause, NULL);
	}
	if (s->tee)
		fwrite(bytes, 1, len, s->tee);
	s->stats->bytes += len;
	s->stats->acks++;
	s->stats->any_acked = true;
	s->stats->acked_seq = s->next_msg;
	s->stats->last_seq = s->next_msg;
	s->next_msg++;
	return 0;
}

static int publish_record(struct sender_nats *s)
{
	if (!s->msg_len)
		return 0;
	int rc = publish(s, s->msg, s->msg_len);
	s->msg_len = 0;
	s->msg_event = 0;
	return rc;
}

/* Add one encoded frame of event EVENT_ID to the record being gathered:
 * a frame of another event, or of none, ends the record before it. */
static int add_frame(struct sender_nats *s, const uint8_t *frame, size_t len, uint64_t event_id)
{
	int rc = 0;
	if (s->msg_len && (!event_id || event_id != s->msg_event))
		rc = publish_record(s);
	if (!rc && grow(&s->msg, &s->msg_cap, s->msg_len + len))
		rc = -ENOMEM;
	if (rc)
		return rc;
	memcpy(s->msg + s->msg_len, frame, len);
	s->msg_len += len;
	s->msg_event = event_id;
	s->stats->frames++;
	return event_id ? 0 : publish_record(s);
}

static int encode_and_add(struct sender_nats *s, struct frame *f)
{
	size_t size = frame_encoded_size(f->key_len, f->payload_len, f->flags), written;
	uint8_t *buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	f->seq = s->next_frame_seq++;
	int rc = frame_encode(f, buf, size, &written);
	if (rc)
		snprintf(s->err, s->err_len, "cannot encode the frame for key '%s'", f->key);
	else
		rc = add_frame(s, buf, written, f->event_id);
	free(buf);
	return rc;
}

int sender_nats_data(struct sender_nats *s, const char *key, enum dtype dtype, int64_t t0,
		     uint64_t event_id, const void *samples, size_t n)
{
	struct frame f = {.type = FRAME_DATA, .dtype = dtype, .flags = FRAME_FLAG_CRC, .t0 = t0,
			  .event_id = event_id, .key = key, .key_len = strlen(key),
			  .payload = samples, .payload_len = n * dtype_size(dtype)};
	return encode_and_add(s, &f);
}

int sender_nats_event(struct sender_nats *s, const char *key, uint64_t event_id, int64_t t0,
		      const char *fields)
{
	struct frame f = {.type = FRAME_EVENT, .dtype = DTYPE_NONE, .flags = FRAME_FLAG_CRC,
			  .t0 = t0, .event_id = event_id, .key = key, .key_len = strlen(key),
			  .payload = fields, .payload_len = strlen(fields)};
	return encode_and_add(s, &f);
}

/* ---- bytes as they are ------------------------------------------------------ */

/* Whole frames at the front of the raw buffer, grouped into records; a
 * HELLO is left out (the broker authenticates senders). */
static int raw_frames(struct sender_nats *s, size_t *used)
{
	size_t at = 0;
	int rc = 0;
	while (!rc && s->raw_len - at >= FRAME_HEADER_SIZE) {
		const uint8_t *h = s->raw + at;
		if (memcmp(h, "H5RF", 4) != 0) {
			snprintf(s->err, s->err_len, "the input is not a stream of frames at byte "
				 "%zu", at);
			return -EINVAL;
		}
		size_t key_len = (size_t)h[8] | (size_t)h[9] << 8;
		size_t payload_len = (size_t)h[12] | (size_t)h[13] << 8 | (size_t)h[14] << 16 |
				     (size_t)h[15] << 24;
		size_t len = FRAME_HEADER_SIZE + key_len + payload_len + (h[7] & FRAME_FLAG_CRC ? 4 : 0);
		if (s->raw_len - at < len)
			break;
		uint64_t event_id = 0;
		for (int i = 7; i >= 0; i--)
			event_id = event_id << 8 | h[32 + i];
		if (h[5] != FRAME_HELLO)
			rc = add_frame(s, h, len, event_id);
		at += len;
	}
	*used = at;
	return rc;
}

/* Whole lines at the front of the raw buffer, in batches; at the end
 * (FINAL) the rest too. */
static int raw_lines(struct sender_nats *s, bool final, size_t *used)
{
	size_t at = 0;
	int rc = 0;
	while (!rc && at < s->raw_len && (final || s->raw_len - at >= LINE_BATCH)) {
		size_t end = s->raw_len - at > LINE_BATCH ? at + LINE_BATCH : s->raw_len;
		if (end < s->raw_len || !final) {
			while (end > at && s->raw[end - 1] != '\n')
				end--;
			if (end == at) { /* a line longer than a batch: up to its end */
				const uint8_t *nl = memchr(s->raw + at, '\n', s->raw_len - at);
				if (!nl)
					break;
				end = (size_t)(nl - s->raw) + 1;
			}
		}
		rc = publish(s, s->raw + at, end - at);
		at = end;
	}
	*used = at;
	return rc;
}

static int raw_cut(struct sender_nats *s, bool final)
{
	size_t used = 0;
	if (!s->raw_kind && s->raw_len >= 4)
		s->raw_kind = memcmp(s->raw, "H5RF", 4) == 0 ? 1 : 2;
	if (!s->raw_kind && final && s->raw_len)
		s->raw_kind = 2;
	int rc = s->raw_kind == 1 ? raw_frames(s, &used)
		 : s->raw_kind == 2 ? raw_lines(s, final, &used) : 0;
	if (used) {
		memmove(s->raw, s->raw + used, s->raw_len - used);
		s->raw_len -= used;
	}
	if (!rc && final && s->raw_len) {
		snprintf(s->err, s->err_len, "the input ends inside a frame (%zu bytes)", s->raw_len);
		rc = -EINVAL;
	}
	return rc;
}

int sender_nats_raw(struct sender_nats *s, const void *data, size_t len)
{
	if (grow(&s->raw, &s->raw_cap, s->raw_len + len))
		return -ENOMEM;
	memcpy(s->raw + s->raw_len, data, len);
	s->raw_len += len;
	return raw_cut(s, false);
}

int sender_nats_finish(struct sender_nats *s)
{
	int rc = raw_cut(s, true);
	if (!rc)
		rc = publish_record(s);
	if (!rc && natsConnection_FlushTimeout(s->nc, 10000) != NATS_OK)
		rc = -ETIMEDOUT;
	return rc;
}

/* ---- life ------------------------------------------------------------------- */

int sender_nats_open(const char *urls, const char *subject, const char *name, FILE *tee,
		     struct sender_stats *stats, struct sender_nats **out, char *err,
		     size_t err_len)
{
	struct sender_nats *s = calloc(1, sizeof(*s));
	natsOptions *opts = NULL;
	const char *servers[16];
	char list[2048];
	int n = 0;

	*out = NULL;
	if (!s || !(s->subject = strdup(subject)) || !(s->name = strdup(name))) {
		sender_nats_close(s);
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	s->tee = tee;
	s->stats = stats;
	s->err = err;
	s->err_len = err_len;
	s->next_frame_seq = 1;
	s->next_msg = 1;
	snprintf(list, sizeof(list), "%s", urls);
	for (char *save, *url = strtok_r(list, ",", &save); url && n < 16;
	     url = strtok_r(NULL, ",", &save))
		servers[n++] = url;
	natsStatus st = natsOptions_Create(&opts);
	if (st == NATS_OK)
		st = natsOptions_SetServers(opts, servers, n);
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(opts, -1);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectWait(opts, 100);
	if (st == NATS_OK)
		st = natsConnection_Connect(&s->nc, opts);
	natsOptions_Destroy(opts);
	if (st == NATS_OK)
		st = natsConnection_JetStream(&s->js, s->nc, NULL);
	if (st != NATS_OK) {
		snprintf(err, err_len, "cannot connect to %s: %s", urls, natsStatus_GetText(st));
		sender_nats_close(s);
		return -ECONNREFUSED;
	}
	s->max_payload = natsConnection_GetMaxPayload(s->nc);
	*out = s;
	return 0;
}

void sender_nats_close(struct sender_nats *s)
{
	if (!s)
		return;
	if (s->js)
		jsCtx_Destroy(s->js);
	if (s->nc)
		natsConnection_Destroy(s->nc);
	free(s->subject);
	free(s->name);
	free(s->msg);
	free(s->raw);
	free(s);
}
