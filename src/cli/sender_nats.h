/*
 * sender_nats.h - the tools' sender to NATS JetStream (sender_nats.c):
 * what sender.c does when a sender is opened with nats_url. Records and
 * line batches become messages with Nats-Msg-Id NAME:N, published until
 * the broker acknowledges them. Blocking, like the rest of the tools'
 * sending; functions return 0 or a negative errno with ERR filled.
 */
#ifndef H5REC_SENDER_NATS_H
#define H5REC_SENDER_NATS_H

#include <stdint.h>
#include <stdio.h>

#include "dtype.h"
#include "sender.h"

struct sender_nats;

/* URLS: one nats:// URL or several, comma-separated. STATS is updated as
 * messages are acknowledged (last_seq, acked_seq count messages). */
int sender_nats_open(const char *urls, const char *subject, const char *name, FILE *tee,
		     struct sender_stats *stats, struct sender_nats **out, char *err,
		     size_t err_len);
int sender_nats_data(struct sender_nats *s, const char *key, enum dtype dtype, int64_t t0,
		     uint64_t event_id, const void *samples, size_t n);
int sender_nats_event(struct sender_nats *s, const char *key, uint64_t event_id, int64_t t0,
		      const char *fields);
int sender_nats_raw(struct sender_nats *s, const void *data, size_t len);
/* Publish what is gathered and wait until the broker has it. */
int sender_nats_finish(struct sender_nats *s);
void sender_nats_close(struct sender_nats *s);

#endif
