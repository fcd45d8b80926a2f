/*
 * source_nats.c - the NATS JetStream backend of sources (see source.h).
 *
 * Every recorder of a schema pulls from one durable pull consumer, so the
 * broker shares the messages out among them, and a message one of them
 * does not acknowledge within the consumer's AckWait goes to another:
 * that is how a recorder that dies loses nothing.
 *
 * Threads. Debian's C client (libnats 3.4) offers only a blocking pull
 * (natsSubscription_FetchRequest), and its libuv adapter would make the
 * JetStream calls on the loop thread, where they time out; so each source
 * has two threads of its own:
 *
 * - the fetch thread asks source_wait_room() before each fetch (it waits
 *   while the hand-off or the writer queue is full) and hands what a
 *   fetch returns to the loop (source_deliver);
 * - the settle thread sends the acks, naks, terms and "in progress" the
 *   loop queues (settle() never blocks the loop: a publish can wait for
 *   the connection's buffer), in order, and frees the messages.
 *
 * The client's own threads (reader, flusher, reconnection) do the rest;
 * it reconnects to any of `servers` for as long as the recorder runs.
 * Creating the stream and the consumer, at start on the loop thread, is
 * the only blocking call made there: the recorder is not recording yet.
 */
#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "source.h"

/* JetStream API errors (jsErrCode) that mean "already there". */
#define JS_STREAM_NAME_IN_USE 10058

/* A message given back is delivered again after this long. */
#define NAK_DELAY_MS 1000

/* After a fetch failed (no connection, no leader), wait this long. */
#define FETCH_RETRY_MS 250

/* A message: until it is decoded, the client's (its bytes); then only
 * the subject its acknowledgement goes to. Acks, naks and in-progress are
 * JetStream's protocol on that subject, as the client's own natsMsg_Ack
 * sends them. */
struct nats_msg {
	struct source_msg base; /* first */
	natsMsg *msg;
	char reply[];
};

struct settle_op {
	enum source_settle how;
	struct source_msg *msg;
};

struct nats_state {
	struct source *src;
	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub;
	pthread_t fetcher, settler;
	bool fetcher_started, settler_started, fetcher_joined;

	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t work;
	struct settle_op *ops;
	size_t nops, ops_cap;
	bool closing;
	/* one for each thread that logs */
	struct log_ratelimit fetch_log, settle_log;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void say(char *err, size_t errlen, const char *what, natsStatus s, jsErrCode jerr)
{
	const char *detail = nats_GetLastError(NULL);
	if (jerr)
		snprintf(err, errlen, "%s: %s (JetStream error %d)%s%s", what, natsStatus_GetText(s),
			 (int)jerr, detail ? ": " : "", detail ? detail : "");
	else
		snprintf(err, errlen, "%s: %s%s%s", what, natsStatus_GetText(s),
			 detail ? ": " : "", detail ? detail : "");
}

/* ---- fetching ---------------------------------------------------------------- */

static struct source_msg *wrap(natsMsg *m)
{
	const char *reply = natsMsg_GetReply(m);
	if (!reply)
		return NULL; /* not a JetStream message: nothing to acknowledge */
	struct nats_msg *nm = calloc(1, sizeof(*nm) + strlen(reply) + 1);
	jsMsgMetaData *meta = NULL;
	if (!nm)
		return NULL;
	struct source_msg *msg = &nm->base;
	nm->msg = m;
	strcpy(nm->reply, reply);
	msg->data = natsMsg_GetData(m);
	msg->len = (size_t)natsMsg_GetDataLength(m);
	msg->deliveries = 1;
	/* provenance: the publisher's id (SENDER:N from h5rec send --nats) */
	const char *id = NULL;
	if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK)
		id = NULL;
	source_msg_set_id(msg, id);
	if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
		msg->stream_seq = meta->Sequence.Stream;
		msg->deliveries = meta->NumDelivered;
		msg->lag = meta->NumPending;
		jsMsgMetaData_Destroy(meta);
	}
	return msg;
}

static void fetch_failed(struct nats_state *st, natsStatus s)
{
	log_ratelimited(&st->fetch_log, now_ns(), LOG_LEVEL_WARNING,
			"source %s: fetch failed: %s%s%s; retrying", st->src->name,
			natsStatus_GetText(s), nats_GetLastError(NULL) ? ": " : "",
			nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
	struct timespec pause = {0, FETCH_RETRY_MS * 1000000L};
	nanosleep(&pause, NULL);
}

static void *fetch_thread(void *arg)
{
	struct nats_state *st = arg;
	struct source *src = st->src;
	const struct schema_source *cfg = src->config;

	bool one_whole = false;
	while (source_wait_room(src)) {
		jsFetchRequest req;
		natsMsgList list = {0};
		jsFetchRequest_Init(&req);
		req.Batch = one_whole ? 1 : (int)cfg->fetch_batch;
		req.MaxBytes = one_whole ? 0 : (int64_t)cfg->fetch_max_bytes;
		req.Expires = cfg->fetch_expires_ns;
		natsStatus s = natsSubscription_FetchRequest(&list, st->sub, &req);
		int got = list.Count;
		for (int i = 0; i < list.Count; i++) {
			struct source_msg *msg = wrap(list.Msgs[i]);
			if (!msg)
				continue; /* left in the list: destroyed, redelivered */
			list.Msgs[i] = NULL;
			source_deliver(src, msg);
		}
		natsMsgList_Destroy(&list);
		/* A timeout is a fetch that found nothing; '409 Message Size
		 * Exceeds MaxBytes' ends a batch, and a batch cut short by an
		 * error still delivered what it had. When it ends a batch
		 * before its first message, that message is larger than
		 * fetch.max_bytes: asking again the same way would never get
		 * it, nor anything behind it. The next fetch asks for that one
		 * message without a byte limit (the server's max_payload bounds
		 * it), then fetching goes on as configured. */
		bool cut = s != NATS_OK && s != NATS_TIMEOUT && got == 0;
		if (cut && !one_whole && req.MaxBytes > 0) {
			one_whole = true;
			continue;
		}
		one_whole = false;
		if (cut)
			fetch_failed(st, s);
	}
	source_fetch_done(src);
	return NULL;
}

/* ---- settling ------------------------------------------------------------------ */

static void settle_one(struct nats_state *st, const struct settle_op *op)
{
	struct nats_msg *nm = (struct nats_msg *)op->msg;
	/* a nak is redelivered after a delay (ns), not at once: a disk that
	 * failed a write is unlikely to take the same data a moment later,
	 * and another recorder may */
	char nak[64];
	snprintf(nak, sizeof(nak), "-NAK {\"delay\": %lld}", (long long)NAK_DELAY_MS * 1000000);
	const char *body = op->how == SOURCE_ACK    ? "+ACK"
			   : op->how == SOURCE_NAK  ? nak
			   : op->how == SOURCE_TERM ? "+TERM"
						    : "+WPI";
	natsStatus s = natsConnection_PublishString(st->nc, nm->reply, body);
	if (s != NATS_OK)
		log_ratelimited(&st->settle_log, now_ns(), LOG_LEVEL_WARNING,
				"source %s: %s of message %llu not sent (%s): the broker "
				"delivers it again after ack_wait", st->src->name,
				op->how == SOURCE_ACK ? "ack" : op->how == SOURCE_NAK ? "nak"
				: op->how == SOURCE_TERM ? "term" : "in-progress",
				(unsigned long long)op->msg->stream_seq, natsStatus_GetText(s));
	if (op->how == SOURCE_IN_PROGRESS)
		return;
	natsMsg_Destroy(nm->msg); /* still there when it was never decoded */
	free(nm);
}

static void nats_taken(struct source *src, struct source_msg *msg)
{
	struct nats_msg *nm = (struct nats_msg *)msg;
	(void)src;
	natsMsg_Destroy(nm->msg);
	nm->msg = NULL;
	msg->data = NULL;
}

static void *settle_thread(void *arg)
{
	struct nats_state *st = arg;
	struct settle_op *batch = NULL;
	size_t cap = 0;

	for (;;) {
		pthread_mutex_lock(&st->lock);
		while (!st->nops && !st->closing)
			pthread_cond_wait(&st->work, &st->lock);
		if (!st->nops) {
			pthread_mutex_unlock(&st->lock);
			break;
		}
		/* swap the queue for the (empty) batch array */
		struct settle_op *ops = st->ops;
		size_t n = st->nops, ops_cap = st->ops_cap;
		st->ops = batch;
		st->ops_cap = cap;
		st->nops = 0;
		pthread_mutex_unlock(&st->lock);
		for (size_t i = 0; i < n; i++)
			settle_one(st, &ops[i]);
		batch = ops;
		cap = ops_cap;
	}
	free(batch);
	return NULL;
}

static void nats_settle(struct source *src, struct source_msg *msg, enum source_settle how)
{
	struct nats_state *st = src->state;
	pthread_mutex_lock(&st->lock);
	if (st->nops == st->ops_cap) {
		size_t cap = st->ops_cap ? st->ops_cap * 2 : 256;
		struct settle_op *ops = realloc(st->ops, cap * sizeof(*ops));
		if (!ops) {
			pthread_mutex_unlock(&st->lock);
			/* not settled: the broker redelivers it after ack_wait */
			if (how != SOURCE_IN_PROGRESS) {
				natsMsg_Destroy(((struct nats_msg *)msg)->msg);
				free(msg);
			}
			return;
		}
		st->ops = ops;
		st->ops_cap = cap;
	}
	st->ops[st->nops++] = (struct settle_op){.how = how, .msg = msg};
	pthread_cond_signal(&st->work);
	pthread_mutex_unlock(&st->lock);
}

/* ---- the stream and the consumer ------------------------------------------------ */

static int ensure_stream(struct nats_state *st, char *err, size_t errlen)
{
	const struct schema_source *cfg = st->src->config;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;

	natsStatus s = js_GetStreamInfo(&si, st->js, cfg->stream, NULL, &jerr);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (s != NATS_NOT_FOUND || !cfg->nsubjects) {
		say(err, errlen, s == NATS_NOT_FOUND ? "the stream does not exist (give its "
			"subjects for the recorder to create it)" : "looking up the stream", s, jerr);
		return -EIO;
	}
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = cfg->stream;
	sc.Subjects = (const char **)cfg->subjects;
	sc.SubjectsLen = (int)cfg->nsubjects;
	sc.Storage = js_FileStorage;
	sc.Replicas = (int64_t)cfg->replicas;
	jerr = 0;
	s = js_AddStream(&si, st->js, &sc, NULL, &jerr);
	if (s == NATS_OK) {
		log_msg(LOG_LEVEL_NOTICE, "source %s: created stream %s (%llu replicas)",
			st->src->name, cfg->stream, (unsigned long long)cfg->replicas);
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (jerr == JS_STREAM_NAME_IN_USE)
		return 0; /* another recorder created it meanwhile */
	say(err, errlen, "creating the stream", s, jerr);
	return -EIO;
}

/* The durable consumer all recorders share: created by the first one; a
 * consumer that exists keeps its settings (said in the log when they
 * differ from the schema's). */
static int ensure_consumer(struct nats_state *st, char *err, size_t errlen)
{
	const struct schema_source *cfg = st->src->config;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	jsConsumerConfig cc;

	jsConsumerConfig_Init(&cc);
	cc.Durable = cfg->consumer;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.AckWait = cfg->ack_wait_ns;
	cc.MaxAckPending = (int64_t)cfg->max_ack_pending;
	natsStatus s = js_AddConsumer(&ci, st->js, cfg->stream, &cc, NULL, &jerr);
	if (s == NATS_OK) {
		jsConsumerInfo_Destroy(ci);
		return 0;
	}
	jsErrCode add_err = jerr;
	jerr = 0;
	if (js_GetConsumerInfo(&ci, st->js, cfg->stream, cfg->consumer, NULL, &jerr) == NATS_OK) {
		if (ci->Config->AckWait != cc.AckWait || ci->Config->MaxAckPending != cc.MaxAckPending)
			log_msg(LOG_LEVEL_WARNING, "source %s: the consumer exists with other "
				"settings (ack_wait %lld ms, max_ack_pending %lld), which it keeps",
				st->src->name, (long long)(ci->Config->AckWait / 1000000),
				(long long)ci->Config->MaxAckPending);
		jsConsumerInfo_Destroy(ci);
		return 0;
	}
	say(err, errlen, "creating the consumer", s, add_err);
	return -EIO;
}

/* ---- the table ---------------------------------------------------------------------- */

static int connect_broker(struct nats_state *st, char *err, size_t errlen)
{
	const struct schema_source *cfg = st->src->config;
	char name[128];
	natsStatus s = natsOptions_Create(&st->opts);
	snprintf(name, sizeof(name), "h5recd %s", st->src->ingest->schema->name);
	if (s == NATS_OK)
		s = natsOptions_SetServers(st->opts, (const char **)cfg->servers, (int)cfg->nservers);
	if (s == NATS_OK)
		s = natsOptions_SetName(st->opts, name);
	if (s == NATS_OK) /* reconnect for as long as the recorder runs */
		s = natsOptions_SetMaxReconnect(st->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(st->opts, 250);
	if (s == NATS_OK && cfg->credentials)
		s = natsOptions_SetUserCredentialsFromFiles(st->opts, cfg->credentials, NULL);
	if (s != NATS_OK) {
		say(err, errlen, "client options", s, 0);
		return -EINVAL;
	}
	s = natsConnection_Connect(&st->nc, st->opts);
	if (s == NATS_OK) {
		jsOptions jo;
		jsOptions_Init(&jo);
		jo.Wait = 5000;
		s = natsConnection_JetStream(&st->js, st->nc, &jo);
	}
	if (s != NATS_OK) {
		say(err, errlen, "connecting", s, 0);
		return -ECONNREFUSED;
	}
	return 0;
}

static int subscribe(struct nats_state *st, char *err, size_t errlen)
{
	const struct schema_source *cfg = st->src->config;
	jsSubOptions so;
	jsErrCode jerr = 0;

	jsSubOptions_Init(&so);
	so.Stream = cfg->stream;
	so.Consumer = cfg->consumer;
	natsStatus s = js_PullSubscribe(&st->sub, st->js, NULL, cfg->consumer, NULL, &so, &jerr);
	if (s != NATS_OK) {
		say(err, errlen, "subscribing to the consumer", s, jerr);
		return -EIO;
	}
	return 0;
}

static void state_free(struct nats_state *st)
{
	if (st->sub)
		natsSubscription_Destroy(st->sub);
	if (st->js)
		jsCtx_Destroy(st->js);
	if (st->nc)
		natsConnection_Destroy(st->nc);
	if (st->opts)
		natsOptions_Destroy(st->opts);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->work);
	free(st->ops);
	free(st);
}

static int nats_start(struct source *src, char *err, size_t errlen)
{
	struct nats_state *st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	st->src = src;
	st->fetch_log = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000000000, 5);
	st->settle_log = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000000000, 5);
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->work, NULL);
	src->state = st;
	int rc = connect_broker(st, err, errlen);
	if (!rc)
		rc = ensure_stream(st, err, errlen);
	if (!rc)
		rc = ensure_consumer(st, err, errlen);
	if (!rc)
		rc = subscribe(st, err, errlen);
	if (!rc) {
		rc = -pthread_create(&st->settler, NULL, settle_thread, st);
		st->settler_started = rc == 0;
	}
	if (!rc) {
		rc = -pthread_create(&st->fetcher, NULL, fetch_thread, st);
		st->fetcher_started = rc == 0;
	}
	if (rc && !err[0])
		snprintf(err, errlen, "starting a thread: %s", strerror(-rc));
	return rc;
}

static void nats_stop_fetching(struct source *src)
{
	/* the fetch thread sees src->stopping before its next fetch */
	(void)src;
}

static void nats_join(struct source *src)
{
	struct nats_state *st = src->state;
	if (st->fetcher_started && !st->fetcher_joined) {
		pthread_join(st->fetcher, NULL);
		st->fetcher_joined = true;
	}
}

static void nats_close(struct source *src)
{
	struct nats_state *st = src->state;
	nats_join(src);
	if (st->settler_started) {
		pthread_mutex_lock(&st->lock);
		st->closing = true;
		pthread_cond_signal(&st->work);
		pthread_mutex_unlock(&st->lock);
		pthread_join(st->settler, NULL);
	}
	/* the acks are publishes: see them out before the connection goes */
	if (st->nc && natsConnection_FlushTimeout(st->nc, 5000) != NATS_OK)
		log_msg(LOG_LEVEL_WARNING, "source %s: the last acks may not have reached the "
			"broker: it will deliver those messages again", src->name);
	state_free(st);
}

static bool nats_connected(struct source *src)
{
	struct nats_state *st = src->state;
	return st->nc && natsConnection_Status(st->nc) == NATS_CONN_STATUS_CONNECTED;
}

const struct source_backend source_nats = {
	.name = "nats",
	.start = nats_start,
	.stop_fetching = nats_stop_fetching,
	.join = nats_join,
	.taken = nats_taken,
	.settle = nats_settle,
	.close = nats_close,
	.connected = nats_connected,
};
