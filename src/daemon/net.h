/*
 * net.h - listeners and connections on the libuv loop.
 *
 * net turns the schema's `listen` entries into bound TCP, UDP and Unix
 * stream sockets, accepts clients, reads from them and hands the bytes to a
 * protocol handler (frame or line decoder) chosen per listener. It knows
 * nothing about the protocols.
 *
 * Who gets a connection: each listener's `allow` list, then three limits --
 * limits.max_connections over all listeners, the listener's own
 * max_connections (so a flood on one cannot shut out the others) and its
 * max_per_peer connections from one address. A connection is untrusted
 * until it proves itself: a listener with a token trusts it once the
 * handler says the HELLO was right (net_conn_trust), others on its first
 * byte. At a limit, the oldest untrusted connection in the way is closed
 * to make room (idle sockets cannot keep senders out); only when there is
 * none is the new one refused. An untrusted connection is closed after the
 * listener's auth_timeout, a trusted one after idle_timeout of silence
 * (time held by back-pressure, or waiting for ACKs, is not silence).
 *
 * Threading: everything here runs on the one loop thread; nothing blocks.
 *
 * Back-pressure: net_set_paused(true) stops reading every stream connection
 * whose handler is not never_paused (the kernel's socket buffers then fill
 * and TCP slows the senders);
 * net_set_paused(false) resumes. UDP cannot be slowed: datagrams keep
 * arriving and the handler decides (the daemon counts them as drops).
 *
 * Lifetimes (libuv's rule): the memory of a connection is freed in its
 * close callback, after the handler's close() has been called; a handler
 * must not touch a net_conn after close().
 */
#ifndef H5REC_NET_H
#define H5REC_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "schema.h"

struct net;
struct net_conn;

/* Who is on the other end: "127.0.0.1:40112", "[::1]:40112" or "unix:PATH". */
struct net_peer {
	char name[80];
	struct sockaddr_storage addr; /* ss_family AF_UNIX for Unix sockets */
};

/*
 * A protocol backend. One handler serves every listener of its protocol;
 * `arg` is passed back to open() and datagram().
 */
struct net_handler {
	void *arg;
	/* Its connections are never paused by back-pressure: the protocol
	 * answers "busy" itself (HTTP's 503), because its clients time out a
	 * request that is held and send the whole batch again. */
	bool never_paused;
	/* A stream connection was accepted; return its decoder state (NULL
	 * refuses the connection, which is then closed). */
	void *(*open)(void *arg, struct net_conn *conn, const struct net_peer *peer,
		      const struct schema_listen *listen);
	/* Bytes arrived. Return 0 to go on, or a negative code to close the
	 * connection (the handler has logged why). */
	int (*data)(void *state, const char *buf, size_t len);
	/* Optional: where the connection's next read should land, when the
	 * handler can take bytes in place (into the payload it is assembling)
	 * rather than have them copied out of the connection's read buffer.
	 * Return the room there and set *buf, or 0 for the read buffer. The
	 * bytes read are then passed to data() at that address. */
	size_t (*read_space)(void *state, char **buf);
	/* Optional: at most how many bytes the next read into the read buffer
	 * should take (0: the whole buffer). A handler that expects a large
	 * payload next reads only its header there, so that read_space can
	 * give the payload's own memory for the rest. */
	size_t (*read_limit)(void *state);
	/* Optional: does the handler still owe the peer replies (ACKs of data
	 * not yet durable)? A draining connection that is owed replies is not
	 * quiet, however long they take: its sender is waiting for us, and
	 * cutting it off would make it report data as lost that is stored. */
	bool (*owes_reply)(void *state);
	/* The peer closed its side (EOF). The connection is closed next. */
	void (*eof)(void *state);
	/* The connection is gone; free state. Called exactly once per open(). */
	void (*close)(void *state);
	/* A UDP datagram arrived (whole: UDP never splits one). */
	void (*datagram)(void *arg, const struct net_peer *peer, const struct schema_listen *listen,
			 const char *buf, size_t len);
};

/* Counters of one listener, for status. */
struct net_listener_stats {
	uint64_t accepted;       /* connections (stream) */
	uint64_t refused;        /* by `allow`, a connection limit, or the handler */
	uint64_t evicted;        /* untrusted, closed to make room for a new one */
	uint64_t timed_out;      /* untrusted after auth_timeout, or idle too long */
	uint64_t open;           /* connections now open */
	uint64_t bytes;          /* bytes received */
	uint64_t datagrams;      /* UDP */
	uint64_t read_errors;    /* connections ended by a socket error */
};

struct net_error {
	char message[512];
};

/*
 * Bind every listener of the schema and start accepting. handlers[p] serves
 * protocol p (enum schema_protocol). On failure err says which listener and
 * why, and what was bound is closed (released once the loop runs again).
 * *out is freed by net_close(). The schema must outlive the net.
 */
int net_start(uv_loop_t *loop, const struct schema *schema,
	      const struct net_handler handlers[SCHEMA_NPROTOCOLS], struct net **out, struct net_error *err);

/* Stop or resume reading from every stream connection (back-pressure). */
void net_set_paused(struct net *net, bool paused);
bool net_paused(const struct net *net);
/* Total time spent paused, in ns, including a pause in progress. */
uint64_t net_paused_ns(const struct net *net);

/* Queue bytes to send on a connection (ACK replies). The data is copied.
 * Returns 0 or a negative errno (-ENOTCONN once the connection is closing). */
int net_conn_write(struct net_conn *conn, const void *buf, size_t len);
/* Send a FIN once what is queued has been written; reading goes on, so
 * that a peer still sending sees the reply rather than a reset (HTTP's
 * lingering close). Returns 0 or a negative errno. */
int net_conn_shutdown(struct net_conn *conn);
/* Close one connection (after a protocol error). */
void net_conn_close(struct net_conn *conn);
/* The connection proved itself (its HELLO held the listener's token). */
void net_conn_trust(struct net_conn *conn);

/*
 * Graceful stop (SIGTERM): close the listeners, keep reading open
 * connections until each reaches EOF or has been quiet for grace_ms, then
 * call done(arg) once no connection is left. Back-pressure still holds
 * while draining, and a connection held by it does not count as quiet: the
 * caller keeps the writer going, so the pause ends and the sender is heard.
 */
void net_drain(struct net *net, uint64_t grace_ms, void (*done)(void *arg), void *arg);

/* Shorten a drain in progress: close every connection now. */
void net_close_connections(struct net *net);

size_t net_listener_count(const struct net *net);
const struct schema_listen *net_listener_schema(const struct net *net, size_t index);
const struct net_listener_stats *net_listener_stats(const struct net *net, size_t index);

/* Close everything; the struct is freed once libuv has closed all handles
 * (run the loop until it returns). */
void net_close(struct net *net);

/*
 * Make a Unix socket path free to bind: a socket file left behind by a
 * recorder that died is removed; one that a live process still listens on
 * is an error (-EADDRINUSE), not something to steal; anything that is not a
 * socket is never removed (-EEXIST). Returns 0 when the path is free.
 */
int net_clear_stale_socket(const char *path, struct net_error *err);

/* Does addr fall inside one of the allow entries (or is the list empty)? */
bool net_allowed(const struct schema_listen *listen, const struct sockaddr *addr);

#endif
