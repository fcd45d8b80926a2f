/*
 * client_tool.h - what the h5rec tool (`h5rec send`, `h5rec simulate`)
 * needs of libh5rec-client beyond its public API: a copy of every byte
 * sent (--tee), writes cut into small pieces (--write-size, to test the
 * recorder's decoder), frames without ACK requests (--no-ack), no HELLO,
 * bytes sent as they are (--raw, and lines), the HELLO counted as frame 1
 * as the tool always has, and an orderly end of the connection.
 *
 * Not installed and not exported (the version script keeps only
 * h5rec_client_*): the tool links the static build of the library.
 * Threading as for the public API: one thread at a time per client.
 */
#ifndef H5REC_CLIENT_TOOL_H
#define H5REC_CLIENT_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "h5rec/client.h"

struct client_tool_options {
	FILE *tee;          /* every byte is written here before it is sent; NULL: none */
	size_t write_size;  /* at most this many bytes per send(); 0: as many as it takes */
	bool no_acks;       /* frames ask for no ACK (and are not kept once written) */
	bool no_hello;      /* say no HELLO */
	uint64_t first_seq; /* seq of the first frame, the HELLO has the one before; 0: 1 */
};

struct client_tool_stats {
	uint64_t frames; /* frames written whole, the HELLO included */
	uint64_t bytes;  /* bytes written, of frames and raw alike */
	uint64_t acks;   /* ACK frames received */
};

/* h5rec_client_open() with these extras. */
int client_tool_open(const struct h5rec_client_options *options,
		     const struct client_tool_options *tool, struct h5rec_client **out);

/* Queue bytes to be sent as they are: encoded frames or protocol lines.
 * Over UDP each call is one datagram. They take no seq and are not kept
 * once written; ACKs for frames among them still move the durable seq. */
int client_tool_raw(struct h5rec_client *client, const void *data, size_t len);

/* Write out everything queued, end the sending side (shutdown) and wait,
 * reading ACKs, until the recorder closes the connection, so that it has
 * read all of it; at most timeout_ms (-1: no limit), after which it
 * returns 0 all the same. UDP: only the writing. */
int client_tool_finish(struct h5rec_client *client, int timeout_ms);

const struct client_tool_stats *client_tool_stats(const struct h5rec_client *client);

#endif
