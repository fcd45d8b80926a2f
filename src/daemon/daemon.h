/*
 * daemon.h - h5recd's life: bind, record, stop cleanly.
 *
 * daemon_run() owns the libuv loop (one thread: all network I/O, signals,
 * timers) and the writer thread (all HDF5). It returns when the recorder
 * has stopped: after SIGTERM or SIGINT it stops accepting connections,
 * drains what senders have already sent (each connection until EOF or
 * until it has been quiet for the grace period), stores all of it, closes
 * the file with exact extents and returns 0. A second signal shortens the
 * wait: open connections are closed at once, and what was received is
 * still written. SIGHUP rolls the output file.
 */
#ifndef H5REC_DAEMON_H
#define H5REC_DAEMON_H

#include <stdint.h>

#include "schema.h"

struct daemon_options {
	uint64_t grace_ms;   /* quiet time that ends a draining connection; 0: 2000 */
	const char *run;     /* {run} placeholder and root attribute; NULL: none */
	const char *shard;   /* {shard} placeholder; NULL: none */
	unsigned workers;    /* compression threads; 0: one per CPU */
	unsigned writer_delay_us; /* testing: sleep this long per item written */
};

/* Run until stopped. Returns 0 after a clean stop, else a negative errno
 * (the reason has been logged). */
int daemon_run(const struct schema *schema, const struct daemon_options *options);

#endif
