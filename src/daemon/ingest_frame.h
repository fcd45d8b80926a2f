/*
 * ingest_frame.h - the frame protocol's path into the recorder: decoding
 * per connection, HELLO tokens, routing DATA and EVENT frames to groups and
 * channels, and ACK replies carrying the highest durable seq of a sender.
 * Loop thread only.
 */
#ifndef H5REC_INGEST_FRAME_H
#define H5REC_INGEST_FRAME_H

#include "ingest.h"

struct ingest_frame_conn;

/* The frame protocol's net handler (arg: INGEST). */
struct net_handler ingest_frame_handler(struct ingest *ingest);

/* Close every connection with a pending ACK on an item the writer could
 * not store (FAILED, the sources progress_take_failed gave; ALL: every
 * one): its sender must not take it as durable. */
void ingest_frame_drop_failed(struct ingest *ingest, const uint64_t *failed, size_t nfailed,
			      bool all);

/* Tell the sender of a frame the writer refused why (an ERROR frame), if
 * it still waits for ACKs; ingest_frame_drop_failed closes it next. */
void ingest_frame_send_refusal(struct ingest *ingest, const struct progress_refusal *refusal);

/* Send ACK frames to every connection whose acknowledged frames are now
 * all below the durable item number. */
void ingest_frame_send_acks(struct ingest *ingest, uint64_t durable_item);

/* A complete buffer of frames from a message of a source (source.h),
 * decoded and routed as the same bytes on a frame connection; its items
 * carry SOURCE. HELLO frames are ignored (the broker authenticated the
 * sender). Returns 0; -EPROTO when a frame was refused as every recorder
 * would refuse it (protocol, routing, shapes); -EAGAIN when it was refused
 * for now (limits.max_groups in this file, out of memory). Refusals are
 * counted and logged; the frames before it are queued. */
int ingest_frame_message(struct ingest *ingest, const char *peer, uint64_t source,
			 const void *buf, size_t len);

#endif
