/*
 * ingest_line.h - the line protocol's path into the recorder: decoding per
 * connection or datagram, routing each line to its group, and batching rows
 * for the writer. Loop thread only.
 */
#ifndef H5REC_INGEST_LINE_H
#define H5REC_INGEST_LINE_H

#include "ingest.h"

/* net handler callbacks for the line protocol (arg: struct ingest *). */
void *ingest_line_open(void *arg, struct net_conn *conn, const struct net_peer *peer,
		       const struct schema_listen *listen);
int ingest_line_data(void *state, const char *buf, size_t len);
void ingest_line_eof(void *state);
void ingest_line_close(void *state);
void ingest_line_datagram(void *arg, const struct net_peer *peer,
			  const struct schema_listen *listen, const char *buf, size_t len);

/* Release the datagram decoders (from ingest_free). */
void ingest_line_udp_free(struct ingest *ingest);

#endif
