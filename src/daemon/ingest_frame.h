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

/* net handler callbacks for the frame protocol (arg: struct ingest *). */
void *ingest_frame_open(void *arg, struct net_conn *conn, const struct net_peer *peer,
			const struct schema_listen *listen);
int ingest_frame_data(void *state, const char *buf, size_t len);
size_t ingest_frame_read_space(void *state, char **buf);
bool ingest_frame_owes_acks(void *state);
void ingest_frame_eof(void *state);
void ingest_frame_close(void *state);
void ingest_frame_datagram(void *arg, const struct net_peer *peer,
			   const struct schema_listen *listen, const char *buf, size_t len);

/* Close every connection with a pending ACK on an item the writer could
 * not store (progress_note_failed): its sender must not take it as durable. */
void ingest_frame_drop_failed(struct ingest *ingest);

/* Send ACK frames to every connection whose acknowledged frames are now
 * all below the durable item number. */
void ingest_frame_send_acks(struct ingest *ingest, uint64_t durable_item);

#endif
