/*
 * net.c - listeners and connections on the libuv loop (see net.h).
 *
 * Every handle lives inside a struct of ours whose memory is released only
 * in the handle's close callback; struct net itself is freed when the last
 * of its handles has closed, so net_close() may be called from any callback.
 *
 * Each stream connection owns one fixed read buffer (NET_READ_SIZE): libuv
 * reads into it and the handler decodes straight from it, so nothing is
 * copied on the way in and a connection costs a bounded amount of memory
 * however fast its peer sends. A handler that is assembling something
 * large (a frame payload) may instead name where the next read goes
 * (read_space), so those bytes land in their final place in one read.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

enum {
	NET_READ_SIZE = 64 * 1024,
	NET_DATAGRAM_SIZE = 64 * 1024, /* larger than any UDP payload */
	NET_BACKLOG = 128,
	NET_DRAIN_TICK_MS = 50,
	NET_TIMEOUT_TICK_MS = 250,
	NET_READ_SPACE_MAX = 1 << 30, /* one read into a handler's space */
};

struct net_listener {
	struct net *net;
	const struct schema_listen *schema;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_udp_t udp;
	} h;
	bool bound;       /* handle initialised: must be closed */
	bool unlink_path; /* we created the Unix socket file */
	struct net_listener_stats stats;
	char *datagram;   /* UDP receive buffer */
};

struct net_conn {
	struct net *net;
	struct net_listener *listener;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	struct net_peer peer;
	void *state;       /* the handler's, NULL until open() succeeded */
	struct net_conn *prev, *next;
	bool closing;
	bool reading;
	bool trusted;      /* proved itself (token, or first byte) */
	uint64_t connected_ms;
	uint64_t last_activity_ms;
	char buf[NET_READ_SIZE];
};

struct net {
	uv_loop_t *loop;
	uint64_t max_connections;   /* limits.max_connections */
	struct log_ratelimit refusals; /* a flood of refusals must not flood the log */
	struct net_handler handlers[SCHEMA_NPROTOCOLS];
	size_t nlisteners;
	struct net_listener *listeners;
	struct net_conn *conns;
	size_t nconns;
	size_t open_handles; /* freed when this reaches 0 after net_close */
	bool closing;
	bool paused;
	uint64_t paused_since_ns;
	uint64_t paused_total_ns;
	bool draining;
	uv_timer_t drain_timer;
	bool drain_timer_open;
	uv_timer_t timeout_timer;    /* auth_timeout and idle_timeout */
	bool timeout_timer_open;
	uint64_t grace_ms;
	void (*drain_done)(void *arg);
	void *drain_arg;
};

static void net_maybe_free(struct net *net)
{
	if (net->closing && net->open_handles == 0) {
		for (size_t i = 0; i < net->nlisteners; i++)
			free(net->listeners[i].datagram);
		free(net->listeners);
		free(net);
	}
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct net *net = handle->data;
	net->open_handles--;
	net_maybe_free(net);
}

static void set_error(struct net_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_error(struct net_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* ---- addresses and peers ---------------------------------------------- */

static void peer_from_sockaddr(struct net_peer *peer, const struct sockaddr *addr)
{
	char host[INET6_ADDRSTRLEN] = "?";

	memset(&peer->addr, 0, sizeof(peer->addr));
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		memcpy(&peer->addr, in, sizeof(*in));
		uv_ip4_name(in, host, sizeof(host));
		snprintf(peer->name, sizeof(peer->name), "%s:%u", host, ntohs(in->sin_port));
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
		memcpy(&peer->addr, in6, sizeof(*in6));
		uv_ip6_name(in6, host, sizeof(host));
		snprintf(peer->name, sizeof(peer->name), "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		peer->addr.ss_family = addr->sa_family;
		snprintf(peer->name, sizeof(peer->name), "unknown");
	}
}

static bool prefix_matches(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool net_allowed(const struct schema_listen *listen, const struct sockaddr *addr)
{
	static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
	const uint8_t *bytes;
	int family = addr->sa_family;

	if (listen->nallow == 0)
		return true;
	if (family == AF_INET) {
		bytes = (const uint8_t *)&((const struct sockaddr_in *)addr)->sin_addr;
	} else if (family == AF_INET6) {
		bytes = (const uint8_t *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
		/* An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d
		 * and must match IPv4 rules. */
		if (memcmp(bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
			family = AF_INET;
			bytes += sizeof(v4_mapped_prefix);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < listen->nallow; i++) {
		const struct schema_allow *allow = &listen->allow[i];
		if (allow->family == family && prefix_matches(allow->addr, bytes, allow->prefix_len))
			return true;
	}
	return false;
}

static int resolve_ip(const struct schema_listen *listen, struct sockaddr_storage *addr)
{
	memset(addr, 0, sizeof(*addr));
	if (strchr(listen->host, ':'))
		return uv_ip6_addr(listen->host, listen->port, (struct sockaddr_in6 *)addr);
	return uv_ip4_addr(listen->host, listen->port, (struct sockaddr_in *)addr);
}

/* ---- connections ----------------------------------------------------- */

static uint64_t now_ms(const struct net *net)
{
	return uv_now(net->loop);
}

static void on_conn_closed(uv_handle_t *handle)
{
	struct net_conn *conn = handle->data;
	struct net *net = conn->net;

	if (conn->state)
		net->handlers[conn->listener->schema->protocol].close(conn->state);
	conn->listener->stats.open--;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		net->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	net->nconns--;
	free(conn);
	net->open_handles--;
	net_maybe_free(net);
}

void net_conn_close(struct net_conn *conn)
{
	if (conn->closing)
		return;
	conn->closing = true;
	uv_close(&conn->h.handle, on_conn_closed);
}

void net_conn_trust(struct net_conn *conn)
{
	conn->trusted = true;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct net_conn *conn = handle->data;
	const struct net_handler *handler =
		&conn->net->handlers[conn->listener->schema->protocol];
	char *space;
	size_t len;
	(void)suggested;
	if (handler->read_space && conn->state &&
	    (len = handler->read_space(conn->state, &space)) > 0) {
		*buf = uv_buf_init(space, len < NET_READ_SPACE_MAX ? (unsigned)len
								  : NET_READ_SPACE_MAX);
		return;
	}
	len = sizeof(conn->buf);
	if (handler->read_limit && conn->state) {
		size_t limit = handler->read_limit(conn->state);
		if (limit && limit < len)
			len = limit;
	}
	*buf = uv_buf_init(conn->buf, (unsigned)len);
}

static bool never_paused(const struct net_conn *conn)
{
	return conn->net->handlers[conn->listener->schema->protocol].never_paused;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct net_conn *conn = stream->data;
	const struct net_handler *handler =
		&conn->net->handlers[conn->listener->schema->protocol];

	if (nread > 0) {
		conn->listener->stats.bytes += (uint64_t)nread;
		conn->last_activity_ms = now_ms(conn->net);
		if (!conn->listener->schema->token)
			conn->trusted = true; /* without a token, sending is proving */
		if (handler->data(conn->state, buf->base, (size_t)nread) < 0)
			net_conn_close(conn);
	} else if (nread == UV_EOF) {
		handler->eof(conn->state);
		net_conn_close(conn);
	} else if (nread < 0) {
		conn->listener->stats.read_errors++;
		log_msg(LOG_LEVEL_WARNING, "%s: read error: %s", conn->peer.name,
			uv_strerror((int)nread));
		net_conn_close(conn);
	}
}

static void conn_set_reading(struct net_conn *conn, bool reading)
{
	if (conn->closing || conn->reading == reading)
		return;
	int err = reading ? uv_read_start(&conn->h.stream, on_alloc, on_read)
			  : uv_read_stop(&conn->h.stream);
	if (err) {
		log_msg(LOG_LEVEL_ERROR, "%s: cannot %s reading: %s", conn->peer.name,
			reading ? "start" : "stop", uv_strerror(err));
		net_conn_close(conn);
		return;
	}
	conn->reading = reading;
}

static int conn_peer(struct net_conn *conn)
{
	if (conn->listener->schema->transport == SCHEMA_TRANSPORT_UNIX) {
		conn->peer.addr.ss_family = AF_UNIX;
		snprintf(conn->peer.name, sizeof(conn->peer.name), "unix:%s",
			 conn->listener->schema->path);
		return 0;
	}
	struct sockaddr_storage addr;
	int len = sizeof(addr);
	int err = uv_tcp_getpeername(&conn->h.tcp, (struct sockaddr *)&addr, &len);
	if (err)
		return err;
	peer_from_sockaddr(&conn->peer, (struct sockaddr *)&addr);
	return 0;
}

static bool same_address(const struct net_peer *a, const struct net_peer *b)
{
	if (a->addr.ss_family != b->addr.ss_family)
		return false;
	if (a->addr.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)&b->addr)->sin_addr.s_addr;
	if (a->addr.ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
			       &((const struct sockaddr_in6 *)&b->addr)->sin6_addr,
			       sizeof(struct in6_addr));
	return false; /* Unix sockets: no address */
}

/* Connections other than NEW: all, of NEW's listener, of NEW's address on
 * it; and the oldest untrusted one of each of those sets. */
struct crowd {
	size_t all, listener, peer;
	struct net_conn *old_all, *old_listener, *old_peer;
};

static void count_crowd(struct net *net, struct net_conn *new, struct crowd *c)
{
	*c = (struct crowd){0};
	for (struct net_conn *conn = net->conns; conn; conn = conn->next) {
		if (conn == new || conn->closing)
			continue;
		bool mine = conn->listener == new->listener;
		bool peer = mine && same_address(&conn->peer, &new->peer);
		c->all++;
		c->listener += mine;
		c->peer += peer;
		if (conn->trusted)
			continue;
		/* the list is newest first: the last untrusted one seen is the oldest */
		c->old_all = conn;
		if (mine)
			c->old_listener = conn;
		if (peer)
			c->old_peer = conn;
	}
}

/*
 * Does NEW fit within the connection limits? Where it does not, the oldest
 * untrusted connection in the way is closed to make room. Returns NULL when
 * NEW may stay, else the name of the limit that refuses it.
 */
static const char *make_room(struct net *net, struct net_conn *new)
{
	const struct schema_listen *l = new->listener->schema;
	struct crowd c;
	for (;;) {
		count_crowd(net, new, &c);
		struct net_conn *victim;
		const char *limit;
		if (c.all >= net->max_connections) {
			victim = c.old_all;
			limit = "limits.max_connections";
		} else if (c.listener >= l->max_connections) {
			victim = c.old_listener;
			limit = "the listener's max_connections";
		} else if (l->transport == SCHEMA_TRANSPORT_TCP && c.peer >= l->max_per_peer) {
			victim = c.old_peer;
			limit = "max_per_peer";
		} else {
			return NULL;
		}
		if (!victim)
			return limit;
		victim->listener->stats.evicted++;
		log_ratelimited(&net->refusals, (int64_t)uv_hrtime(), LOG_LEVEL_WARNING,
				"%s: closed on %s after %.1f s without proving itself, to make "
				"room for %s (%s reached)", victim->peer.name,
				victim->listener->schema->address,
				(double)(now_ms(net) - victim->connected_ms) / 1000, new->peer.name,
				limit);
		net_conn_close(victim);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct net_listener *listener = server->data;
	struct net *net = listener->net;
	const struct schema_listen *schema = listener->schema;

	if (status < 0) {
		log_msg(LOG_LEVEL_WARNING, "listener %s: accept failed: %s", schema->address,
			uv_strerror(status));
		return;
	}
	struct net_conn *conn = calloc(1, sizeof(*conn));
	if (!conn) {
		log_msg(LOG_LEVEL_ERROR, "listener %s: out of memory accepting", schema->address);
		return;
	}
	conn->net = net;
	conn->listener = listener;
	conn->h.handle.data = conn;
	int err = schema->transport == SCHEMA_TRANSPORT_UNIX
			  ? uv_pipe_init(net->loop, &conn->h.pipe, 0)
			  : uv_tcp_init(net->loop, &conn->h.tcp);
	if (err) {
		free(conn);
		return;
	}
	net->open_handles++;
	conn->next = net->conns;
	if (net->conns)
		net->conns->prev = conn;
	net->conns = conn;
	net->nconns++;
	listener->stats.open++;
	conn->connected_ms = conn->last_activity_ms = now_ms(net);

	err = uv_accept(server, &conn->h.stream);
	if (!err)
		err = conn_peer(conn);
	if (err) {
		log_msg(LOG_LEVEL_WARNING, "listener %s: accept failed: %s", schema->address,
			uv_strerror(err));
		net_conn_close(conn);
		return;
	}
	if (!net_allowed(schema, (struct sockaddr *)&conn->peer.addr)) {
		listener->stats.refused++;
		log_ratelimited(&net->refusals, (int64_t)uv_hrtime(), LOG_LEVEL_WARNING,
				"%s: refused on %s: not in the allow list", conn->peer.name,
				schema->address);
		net_conn_close(conn);
		return;
	}
	const char *limit = make_room(net, conn);
	if (limit) {
		listener->stats.refused++;
		log_ratelimited(&net->refusals, (int64_t)uv_hrtime(), LOG_LEVEL_WARNING,
				"%s: refused on %s: %s reached", conn->peer.name, schema->address,
				limit);
		net_conn_close(conn);
		return;
	}
	const struct net_handler *handler = &net->handlers[schema->protocol];
	conn->state = handler->open(handler->arg, conn, &conn->peer, schema);
	if (!conn->state) {
		listener->stats.refused++;
		net_conn_close(conn);
		return;
	}
	listener->stats.accepted++;
	if (schema->transport == SCHEMA_TRANSPORT_TCP)
		uv_tcp_nodelay(&conn->h.tcp, 1); /* ACK replies must not wait */
	conn_set_reading(conn, !net->paused || never_paused(conn));
}

struct net_write {
	uv_write_t req;
	char data[];
};

static void on_written(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows up as a read error or EOF */
	free(req->data);
}

int net_conn_write(struct net_conn *conn, const void *buf, size_t len)
{
	if (conn->closing)
		return -ENOTCONN;
	struct net_write *w = malloc(sizeof(*w) + len);
	if (!w)
		return -ENOMEM;
	memcpy(w->data, buf, len);
	w->req.data = w;
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	int err = uv_write(&w->req, &conn->h.stream, &b, 1, on_written);
	if (err) {
		free(w);
		return err;
	}
	return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status; /* ECANCELED when the connection closed first */
	free(req);
}

int net_conn_shutdown(struct net_conn *conn)
{
	if (conn->closing)
		return -ENOTCONN;
	uv_shutdown_t *req = malloc(sizeof(*req));
	if (!req)
		return -ENOMEM;
	int err = uv_shutdown(req, &conn->h.stream, on_shutdown);
	if (err)
		free(req);
	return err;
}

/* Is CONN busy without sending: held by back-pressure, or waiting for
 * the replies the handler owes it? */
static bool held(const struct net *net, struct net_conn *conn)
{
	const struct net_handler *handler = &net->handlers[conn->listener->schema->protocol];
	return (net->paused && !handler->never_paused) || (handler->owes_reply && conn->state && handler->owes_reply(conn->state));
}

/* Every NET_TIMEOUT_TICK_MS: connections that did not prove themselves
 * within auth_timeout, or were silent for idle_timeout, are closed. */
static void on_timeout_tick(uv_timer_t *timer)
{
	struct net *net = timer->data;
	uint64_t now = now_ms(net);
	for (struct net_conn *conn = net->conns; conn; conn = conn->next) {
		const struct schema_listen *l = conn->listener->schema;
		if (conn->closing)
			continue;
		if ((net->paused && !never_paused(conn)) || (conn->trusted && held(net, conn))) {
			/* reading is paused (nothing can be proven meanwhile), or
			 * the connection waits for its ACKs */
			conn->last_activity_ms = now;
			if (!conn->trusted)
				conn->connected_ms += NET_TIMEOUT_TICK_MS;
			continue;
		}
		uint64_t ms = conn->trusted ? now - conn->last_activity_ms : now - conn->connected_ms;
		uint64_t limit = (uint64_t)(conn->trusted ? l->idle_timeout_ns : l->auth_timeout_ns) /
				 1000000;
		if (ms < limit)
			continue;
		conn->listener->stats.timed_out++;
		log_ratelimited(&net->refusals, (int64_t)uv_hrtime(), LOG_LEVEL_WARNING,
				"%s: closed on %s: %s for %.1f s (%s)", conn->peer.name, l->address,
				conn->trusted ? "silent" : "not proven itself",
				(double)ms / 1000, conn->trusted ? "idle_timeout" : "auth_timeout");
		net_conn_close(conn);
	}
}

/* ---- datagrams --------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct net_listener *listener = handle->data;
	(void)suggested;
	*buf = uv_buf_init(listener->datagram, NET_DATAGRAM_SIZE);
}

static void on_udp_recv(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf,
			const struct sockaddr *addr, unsigned flags)
{
	struct net_listener *listener = udp->data;
	struct net_peer peer;

	if (nread < 0) {
		listener->stats.read_errors++;
		return;
	}
	if (!addr) /* libuv: nothing more to read right now */
		return;
	if (!net_allowed(listener->schema, addr)) {
		listener->stats.refused++;
		return;
	}
	peer_from_sockaddr(&peer, addr);
	listener->stats.datagrams++;
	listener->stats.bytes += (uint64_t)nread;
	if (flags & UV_UDP_PARTIAL) {
		/* Cannot happen with a 64 KiB buffer; a truncated datagram
		 * must never be decoded as if whole. */
		listener->stats.read_errors++;
		return;
	}
	const struct net_handler *handler = &listener->net->handlers[listener->schema->protocol];
	handler->datagram(handler->arg, &peer, listener->schema, buf->base, (size_t)nread);
}

/* ---- listeners --------------------------------------------------------- */

int net_clear_stale_socket(const char *path, struct net_error *err)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		set_error(err, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	if (live) {
		set_error(err, "%s: another process is listening on this socket", path);
		return -EADDRINUSE;
	}
	unlink(path);
	return 0;
}

static int bind_unix(struct net_listener *listener, struct net_error *err)
{
	const char *path = listener->schema->path;
	int rc = net_clear_stale_socket(path, err);
	if (rc)
		return rc;
	rc = uv_pipe_init(listener->net->loop, &listener->h.pipe, 0);
	if (rc)
		return rc;
	listener->bound = true;
	rc = uv_pipe_bind(&listener->h.pipe, path);
	if (rc)
		return rc;
	listener->unlink_path = true;
	return uv_listen(&listener->h.stream, NET_BACKLOG, on_connection);
}

static int bind_tcp(struct net_listener *listener)
{
	struct sockaddr_storage addr;
	int rc = resolve_ip(listener->schema, &addr);
	if (rc)
		return rc;
	rc = uv_tcp_init(listener->net->loop, &listener->h.tcp);
	if (rc)
		return rc;
	listener->bound = true;
	rc = uv_tcp_bind(&listener->h.tcp, (struct sockaddr *)&addr, 0);
	if (rc)
		return rc;
	return uv_listen(&listener->h.stream, NET_BACKLOG, on_connection);
}

static int bind_udp(struct net_listener *listener)
{
	struct sockaddr_storage addr;
	int rc = resolve_ip(listener->schema, &addr);
	if (rc)
		return rc;
	listener->datagram = malloc(NET_DATAGRAM_SIZE);
	if (!listener->datagram)
		return UV_ENOMEM;
	rc = uv_udp_init(listener->net->loop, &listener->h.udp);
	if (rc)
		return rc;
	listener->bound = true;
	rc = uv_udp_bind(&listener->h.udp, (struct sockaddr *)&addr, 0);
	if (rc)
		return rc;
	return uv_udp_recv_start(&listener->h.udp, on_udp_alloc, on_udp_recv);
}

static int bind_listener(struct net_listener *listener, struct net_error *err)
{
	int rc;
	err->message[0] = '\0';
	switch (listener->schema->transport) {
	case SCHEMA_TRANSPORT_TCP:
		rc = bind_tcp(listener);
		break;
	case SCHEMA_TRANSPORT_UDP:
		rc = bind_udp(listener);
		break;
	case SCHEMA_TRANSPORT_UNIX:
		rc = bind_unix(listener, err);
		break;
	default:
		rc = UV_EINVAL;
	}
	if (listener->bound) {
		listener->h.handle.data = listener;
		listener->net->open_handles++;
	}
	return rc;
}

static void close_listener(struct net_listener *listener)
{
	if (!listener->bound)
		return;
	listener->bound = false;
	/* data must point at the net for on_handle_closed. */
	listener->h.handle.data = listener->net;
	uv_close(&listener->h.handle, on_handle_closed);
	if (listener->unlink_path) {
		unlink(listener->schema->path);
		listener->unlink_path = false;
	}
}

int net_start(uv_loop_t *loop, const struct schema *schema,
	      const struct net_handler handlers[SCHEMA_NPROTOCOLS], struct net **out, struct net_error *err)
{
	struct net *net = calloc(1, sizeof(*net));
	if (!net) {
		set_error(err, "out of memory");
		return -ENOMEM;
	}
	net->loop = loop;
	net->max_connections = schema->limits.max_connections;
	net->refusals = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000000000, 10);
	memcpy(net->handlers, handlers, sizeof(net->handlers));
	net->listeners = calloc(schema->nlisten ? schema->nlisten : 1, sizeof(*net->listeners));
	if (!net->listeners) {
		free(net);
		set_error(err, "out of memory");
		return -ENOMEM;
	}
	net->nlisteners = schema->nlisten;
	uv_timer_init(loop, &net->timeout_timer);
	net->timeout_timer.data = net;
	net->timeout_timer_open = true;
	net->open_handles++;
	uv_timer_start(&net->timeout_timer, on_timeout_tick, NET_TIMEOUT_TICK_MS,
		       NET_TIMEOUT_TICK_MS);
	for (size_t i = 0; i < schema->nlisten; i++) {
		struct net_listener *listener = &net->listeners[i];
		listener->net = net;
		listener->schema = &schema->listen[i];
		int rc = bind_listener(listener, err);
		if (rc) {
			if (!err->message[0])
				set_error(err, "cannot listen on %s (line %d): %s",
					  listener->schema->address, listener->schema->pos.line,
					  uv_strerror(rc));
			net_close(net);
			return rc;
		}
	}
	*out = net;
	return 0;
}

/* ---- back-pressure, drain, close --------------------------------------- */

void net_set_paused(struct net *net, bool paused)
{
	if (net->paused == paused)
		return;
	net->paused = paused;
	uint64_t now = uv_hrtime();
	if (paused)
		net->paused_since_ns = now;
	else
		net->paused_total_ns += now - net->paused_since_ns;
	for (struct net_conn *conn = net->conns; conn; conn = conn->next) {
		if (never_paused(conn))
			continue;
		conn_set_reading(conn, !paused);
		/* Time spent held by back-pressure is not quiet time: a
		 * draining sender that we stopped must not be cut off. */
		conn->last_activity_ms = now_ms(net);
	}
}

bool net_paused(const struct net *net)
{
	return net->paused;
}

uint64_t net_paused_ns(const struct net *net)
{
	uint64_t total = net->paused_total_ns;
	if (net->paused)
		total += uv_hrtime() - net->paused_since_ns;
	return total;
}

static void on_drain_tick(uv_timer_t *timer)
{
	struct net *net = timer->data;
	uint64_t now = now_ms(net);

	for (struct net_conn *conn = net->conns; conn; conn = conn->next) {
		if (held(net, conn))
			conn->last_activity_ms = now;
		else if (now - conn->last_activity_ms >= net->grace_ms)
			net_conn_close(conn);
	}
	if (net->nconns == 0 && net->drain_done) {
		void (*done)(void *) = net->drain_done;
		net->drain_done = NULL;
		uv_timer_stop(timer);
		done(net->drain_arg);
	}
}

void net_drain(struct net *net, uint64_t grace_ms, void (*done)(void *arg), void *arg)
{
	if (net->draining)
		return;
	net->draining = true;
	net->grace_ms = grace_ms;
	net->drain_done = done;
	net->drain_arg = arg;
	for (size_t i = 0; i < net->nlisteners; i++)
		close_listener(&net->listeners[i]);
	uv_timer_init(net->loop, &net->drain_timer);
	net->drain_timer.data = net;
	net->drain_timer_open = true;
	net->open_handles++;
	/* First tick at once: with no connection open we are done. */
	uv_timer_start(&net->drain_timer, on_drain_tick, 0, NET_DRAIN_TICK_MS);
}

void net_close_connections(struct net *net)
{
	for (struct net_conn *conn = net->conns; conn; conn = conn->next)
		net_conn_close(conn);
}

size_t net_listener_count(const struct net *net)
{
	return net->nlisteners;
}

const struct schema_listen *net_listener_schema(const struct net *net, size_t index)
{
	return net->listeners[index].schema;
}

const struct net_listener_stats *net_listener_stats(const struct net *net, size_t index)
{
	return &net->listeners[index].stats;
}

void net_close(struct net *net)
{
	if (net->closing)
		return;
	net->closing = true;
	for (size_t i = 0; i < net->nlisteners; i++)
		close_listener(&net->listeners[i]);
	net_close_connections(net);
	if (net->drain_timer_open) {
		net->drain_timer_open = false;
		uv_close((uv_handle_t *)&net->drain_timer, on_handle_closed);
	}
	if (net->timeout_timer_open) {
		net->timeout_timer_open = false;
		uv_close((uv_handle_t *)&net->timeout_timer, on_handle_closed);
	}
	net_maybe_free(net);
}
