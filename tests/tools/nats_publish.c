/*
 * nats_publish - the NATS tests' sender and stream maker (libnats).
 *
 *   nats_publish publish URLS SUBJECT SENDER [FIRST] < RECORDS
 *   nats_publish stream URLS NAME SUBJECT REPLICAS
 *   nats_publish drain URLS STREAM CONSUMER N
 *
 * publish: stdin holds messages as [u32 little-endian length][bytes]; each
 * is published to JetStream with Nats-Msg-Id SENDER:N (N counting from
 * FIRST, default 1), waiting for the broker's ack, and published again
 * with the same id after a timeout or an error (a leader election, a
 * server killed): the stream's duplicate window drops a second copy, so
 * every message is in the stream exactly once. Prints "published N
 * duplicates D".
 *
 * stream: create a file stream (retrying while a new cluster elects its
 * leaders), or accept one that exists.
 *
 * drain: fetch and acknowledge N messages on a new durable consumer, storing
 * nothing, and print how long it took (tests/bench/nats_bench.py's
 * baseline).
 *
 * URLS is one URL or several separated by commas. Gives up after 60 s
 * without progress.
 */
#include <nats/nats.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GIVE_UP_NS (60LL * 1000000000LL)

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int connect_js(const char *urls, natsConnection **nc, jsCtx **js)
{
	natsOptions *opts = NULL;
	const char *servers[16];
	char list[2048];
	int n = 0;
	snprintf(list, sizeof(list), "%s", urls);
	for (char *save, *url = strtok_r(list, ",", &save); url && n < 16;
	     url = strtok_r(NULL, ",", &save))
		servers[n++] = url;
	natsStatus s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, servers, n);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, 100);
	if (s == NATS_OK)
		s = natsConnection_Connect(nc, opts);
	natsOptions_Destroy(opts);
	if (s == NATS_OK)
		s = natsConnection_JetStream(js, *nc, NULL);
	if (s != NATS_OK) {
		fprintf(stderr, "nats_publish: connecting to %s: %s\n", urls, natsStatus_GetText(s));
		return 1;
	}
	return 0;
}

static int read_record(unsigned char **buf, size_t *cap, size_t *len)
{
	unsigned char hdr[4];
	size_t got = fread(hdr, 1, 4, stdin);
	if (got == 0)
		return 0;
	if (got != 4)
		return -1;
	*len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
	if (*len > *cap) {
		unsigned char *p = realloc(*buf, *len);
		if (!p)
			return -1;
		*buf = p;
		*cap = *len;
	}
	return fread(*buf, 1, *len, stdin) == *len ? 1 : -1;
}

static int publish(const char *urls, const char *subject, const char *sender, uint64_t first)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	unsigned char *buf = NULL;
	size_t cap = 0, len;
	uint64_t n = first, published = 0, duplicates = 0;
	int rc;

	if (connect_js(urls, &nc, &js))
		return 1;
	while ((rc = read_record(&buf, &cap, &len)) == 1) {
		char id[160];
		snprintf(id, sizeof(id), "%s:%llu", sender, (unsigned long long)n++);
		int64_t deadline = now_ns() + GIVE_UP_NS;
		for (;;) {
			natsMsg *msg = NULL;
			jsPubAck *ack = NULL;
			jsPubOptions po;
			jsErrCode jerr = 0;
			jsPubOptions_Init(&po);
			po.MaxWait = 2000;
			natsStatus s = natsMsg_Create(&msg, subject, NULL, (const char *)buf, (int)len);
			if (s == NATS_OK)
				s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
			if (s == NATS_OK)
				s = js_PublishMsg(&ack, js, msg, &po, &jerr);
			natsMsg_Destroy(msg);
			if (s == NATS_OK) {
				duplicates += ack->Duplicate;
				jsPubAck_Destroy(ack);
				break;
			}
			if (now_ns() > deadline) {
				fprintf(stderr, "nats_publish: %s: %s (%d), giving up\n", id,
					natsStatus_GetText(s), (int)jerr);
				return 1;
			}
			pause_ms(100);
		}
		published++;
	}
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "nats_publish: truncated record on stdin\n");
		return 1;
	}
	printf("published %llu duplicates %llu\n", (unsigned long long)published,
	       (unsigned long long)duplicates);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

static int make_stream(const char *urls, const char *name, const char *subject, int replicas)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	const char *subjects[] = {subject};
	int64_t deadline = now_ns() + GIVE_UP_NS;

	if (connect_js(urls, &nc, &js))
		return 1;
	for (;;) {
		jsStreamConfig sc;
		jsStreamInfo *si = NULL;
		jsErrCode jerr = 0;
		jsStreamConfig_Init(&sc);
		sc.Name = name;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = replicas;
		natsStatus s = js_AddStream(&si, js, &sc, NULL, &jerr);
		if (s == NATS_OK) {
			jsStreamInfo_Destroy(si);
			break;
		}
		if (js_GetStreamInfo(&si, js, name, NULL, NULL) == NATS_OK) {
			jsStreamInfo_Destroy(si);
			break;
		}
		if (now_ns() > deadline) {
			fprintf(stderr, "nats_publish: stream %s: %s (%d)\n", name,
				natsStatus_GetText(s), (int)jerr);
			return 1;
		}
		pause_ms(200);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return 0;
}

/* Fetch and ack N messages on a new durable pull consumer: what the broker
 * delivers when nothing is stored (the baseline of tests/bench/nats_bench). */
static int drain(const char *urls, const char *stream, const char *consumer, long n)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	long got = 0;
	unsigned long long bytes = 0;

	if (connect_js(urls, &nc, &js))
		return 1;
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = consumer;
	cc.AckPolicy = js_AckExplicit;
	cc.MaxAckPending = 1024;
	natsStatus s = js_AddConsumer(NULL, js, stream, &cc, NULL, &jerr);
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = consumer;
	if (s == NATS_OK)
		s = js_PullSubscribe(&sub, js, NULL, consumer, NULL, &so, &jerr);
	if (s != NATS_OK) {
		fprintf(stderr, "nats_publish: drain: %s (%d)\n", natsStatus_GetText(s), (int)jerr);
		return 1;
	}
	int64_t start = now_ns(), deadline = start + GIVE_UP_NS;
	while (got < n && now_ns() < deadline) {
		jsFetchRequest req;
		natsMsgList list = {0};
		jsFetchRequest_Init(&req);
		/* no more than are left: a fetch for more waits out its expiry */
		req.Batch = n - got < 64 ? (int)(n - got) : 64;
		req.MaxBytes = 8 << 20;
		req.Expires = 1000000000;
		natsSubscription_FetchRequest(&list, sub, &req);
		for (int i = 0; i < list.Count; i++) {
			bytes += (unsigned long long)natsMsg_GetDataLength(list.Msgs[i]);
			natsMsg_Ack(list.Msgs[i], NULL);
			got++;
		}
		natsMsgList_Destroy(&list);
	}
	natsConnection_Flush(nc);
	printf("drained %ld bytes %llu seconds %.3f\n", got, bytes, (double)(now_ns() - start) / 1e9);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return got == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "publish") == 0)
		return publish(argv[2], argv[3], argv[4],
			       argc > 5 ? strtoull(argv[5], NULL, 10) : 1);
	if (argc == 6 && strcmp(argv[1], "stream") == 0)
		return make_stream(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (argc == 6 && strcmp(argv[1], "drain") == 0)
		return drain(argv[2], argv[3], argv[4], atol(argv[5]));
	fprintf(stderr, "usage: nats_publish publish URLS SUBJECT SENDER [FIRST] < RECORDS\n"
			"       nats_publish stream URLS NAME SUBJECT REPLICAS\n"
			"       nats_publish drain URLS STREAM CONSUMER N\n");
	return 2;
}
