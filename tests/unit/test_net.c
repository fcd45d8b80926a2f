/* test_net.c - listeners, connections, allow lists, back-pressure pause and
 * graceful drain of net.c, on real loopback sockets in one libuv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

/* ---- a recording handler ---------------------------------------------- */

struct recorder {
	char received[1 << 20];
	size_t nreceived;
	int opened, eofs, closes, datagrams;
	char last_peer[80];
	bool echo;      /* write every chunk back */
	bool fail_next; /* return an error from the next data() */
	size_t space_len;   /* offer this much room of space[] to read into */
	char space[3000];
	size_t in_space;    /* data() calls with bytes read into space[] */
	bool owes_reply;    /* what owes_reply() says */
	struct net_conn *last_conn; /* the last one opened */
};

static struct recorder rec;

static void *h_open(void *arg, struct net_conn *conn, const struct net_peer *peer,
		    const struct schema_listen *listen)
{
	(void)arg;
	(void)listen;
	rec.opened++;
	rec.last_conn = conn;
	snprintf(rec.last_peer, sizeof(rec.last_peer), "%s", peer->name);
	return conn;
}

static bool h_owes_reply(void *state)
{
	(void)state;
	return rec.owes_reply;
}

static size_t h_read_space(void *state, char **buf)
{
	(void)state;
	*buf = rec.space;
	return rec.space_len;
}

static int h_data(void *state, const char *buf, size_t len)
{
	if (rec.fail_next)
		return -EPROTO;
	if (buf == rec.space) {
		assert_true(len <= rec.space_len);
		rec.in_space++;
	}
	assert_true(rec.nreceived + len <= sizeof(rec.received));
	memcpy(rec.received + rec.nreceived, buf, len);
	rec.nreceived += len;
	if (rec.echo)
		assert_int_equal(net_conn_write(state, buf, len), 0);
	return 0;
}

static void h_eof(void *state)
{
	(void)state;
	rec.eofs++;
}

static void h_close(void *state)
{
	(void)state;
	rec.closes++;
}

static void h_datagram(void *arg, const struct net_peer *peer, const struct schema_listen *listen,
		       const char *buf, size_t len)
{
	(void)arg;
	(void)listen;
	rec.datagrams++;
	snprintf(rec.last_peer, sizeof(rec.last_peer), "%s", peer->name);
	memcpy(rec.received + rec.nreceived, buf, len);
	rec.nreceived += len;
}

static const struct net_handler handlers[SCHEMA_NPROTOCOLS] = {
	{.open = h_open, .data = h_data, .read_space = h_read_space, .owes_reply = h_owes_reply,
	 .eof = h_eof, .close = h_close, .datagram = h_datagram},
	{.open = h_open, .data = h_data, .read_space = h_read_space, .owes_reply = h_owes_reply,
	 .eof = h_eof, .close = h_close, .datagram = h_datagram},
};

/* ---- fixtures --------------------------------------------------------- */

struct fixture {
	uv_loop_t loop;
	struct schema schema;
	struct schema_listen listen;
	struct schema_allow allow;
	char host[32];
	char path[108];
	char address[128];
	struct net *net;
};

/* A port the kernel just handed out and released: free for our listener
 * unless another process grabs it in the next microseconds. */
static uint16_t free_port(int type)
{
	int fd = socket(AF_INET, type, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	close(fd);
	return ntohs(addr.sin_port);
}

static struct fixture *fixture_new(enum schema_transport transport)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->listen.protocol = SCHEMA_PROTOCOL_LINE;
	f->listen.transport = transport;
	f->listen.pos.line = 7;
	if (transport == SCHEMA_TRANSPORT_UNIX) {
		snprintf(f->path, sizeof(f->path), "/tmp/h5rec-test-net-%d.sock", (int)getpid());
		unlink(f->path);
		f->listen.path = f->path;
		f->listen.address = f->path;
	} else {
		snprintf(f->host, sizeof(f->host), "127.0.0.1");
		f->listen.host = f->host;
		f->listen.port = free_port(transport == SCHEMA_TRANSPORT_UDP ? SOCK_DGRAM : SOCK_STREAM);
		snprintf(f->address, sizeof(f->address), "127.0.0.1:%u", f->listen.port);
		f->listen.address = f->address;
	}
	f->schema.nlisten = 1;
	f->schema.listen = &f->listen;
	f->schema.limits.max_connections = 100;
	f->listen.max_connections = 100;
	f->listen.max_per_peer = 100;
	f->listen.auth_timeout_ns = INT64_C(10000000000);
	f->listen.idle_timeout_ns = INT64_C(900000000000);
	return f;
}

static void fixture_start(struct fixture *f)
{
	struct net_error err;
	int rc = net_start(&f->loop, &f->schema, handlers, &f->net, &err);
	if (rc)
		fail_msg("net_start: %s", err.message);
}

static void fixture_free(struct fixture *f)
{
	if (f->net)
		net_close(f->net);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle closed */
	if (f->path[0]) {
		struct stat st;
		assert_int_not_equal(lstat(f->path, &st), 0); /* socket file removed */
	}
	free(f);
}

/* Run the loop for about ms milliseconds. */
static void run_for(struct fixture *f, uint64_t ms)
{
	uint64_t until = uv_now(&f->loop) + ms;
	while (uv_now(&f->loop) < until) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
		uv_update_time(&f->loop);
	}
}

/* A plain blocking client socket, non-blocking after connect so the test
 * never hangs on it. */
static int client_connect(struct fixture *f)
{
	int fd;
	if (f->listen.transport == SCHEMA_TRANSPORT_UNIX) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			close(fd);
			return -1;
		}
	} else {
		struct sockaddr_in addr = {.sin_family = AF_INET,
					   .sin_port = htons(f->listen.port),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
			close(fd);
			return -1;
		}
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

/* ---- tests ------------------------------------------------------------ */

static void test_allow_matching(void **state)
{
	(void)state;
	struct schema_allow rules[2] = {
		{.family = AF_INET, .addr = {10, 1, 0, 0}, .prefix_len = 16},
		{.family = AF_INET6, .addr = {0xfd, 0}, .prefix_len = 8},
	};
	struct schema_listen listen = {.nallow = 2, .allow = rules};
	struct sockaddr_in in = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

	inet_pton(AF_INET, "10.1.255.3", &in.sin_addr);
	assert_true(net_allowed(&listen, (struct sockaddr *)&in));
	inet_pton(AF_INET, "10.2.0.1", &in.sin_addr);
	assert_false(net_allowed(&listen, (struct sockaddr *)&in));
	inet_pton(AF_INET6, "fd12::1", &in6.sin6_addr);
	assert_true(net_allowed(&listen, (struct sockaddr *)&in6));
	inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
	assert_false(net_allowed(&listen, (struct sockaddr *)&in6));
	/* IPv4 client on a dual-stack socket matches IPv4 rules. */
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr);
	assert_true(net_allowed(&listen, (struct sockaddr *)&in6));
	/* A prefix that is not a multiple of 8. */
	rules[0] = (struct schema_allow){.family = AF_INET, .addr = {192, 168, 0, 0}, .prefix_len = 23};
	inet_pton(AF_INET, "192.168.1.200", &in.sin_addr);
	assert_true(net_allowed(&listen, (struct sockaddr *)&in));
	inet_pton(AF_INET, "192.168.2.1", &in.sin_addr);
	assert_false(net_allowed(&listen, (struct sockaddr *)&in));
	listen.nallow = 0; /* no list: everyone */
	assert_true(net_allowed(&listen, (struct sockaddr *)&in));
}

static void test_tcp_bytes_eof_and_echo(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	fixture_start(f);
	rec.echo = true;

	int fd = client_connect(f);
	assert_true(fd >= 0);
	char data[200000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	size_t sent = 0, echoed = 0;
	char back[65536];
	/* Send everything while reading the echo, as a real client would. */
	for (int round = 0; round < 5000 && (sent < sizeof(data) || echoed < sizeof(data)); round++) {
		ssize_t n = send(fd, data + sent, sizeof(data) - sent, MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		run_for(f, 1);
		while ((n = recv(fd, back, sizeof(back), 0)) > 0) {
			assert_memory_equal(back, data + echoed, (size_t)n);
			echoed += (size_t)n;
		}
	}
	assert_int_equal(sent, sizeof(data));
	assert_int_equal(echoed, sizeof(data));
	assert_int_equal(rec.nreceived, sizeof(data));
	assert_memory_equal(rec.received, data, sizeof(data));
	assert_non_null(strstr(rec.last_peer, "127.0.0.1:"));
	assert_int_equal(net_listener_stats(f->net, 0)->bytes, sizeof(data));

	close(fd);
	run_for(f, 50);
	assert_int_equal(rec.opened, 1);
	assert_int_equal(rec.eofs, 1);
	assert_int_equal(rec.closes, 1);
	assert_int_equal(net_listener_stats(f->net, 0)->open, 0);
	fixture_free(f);
}

/* A handler that offers room gets its bytes read there, at most that many
 * per read, and in order; with no room offered the connection's buffer is
 * used. */
static void test_reads_land_in_handler_space(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	fixture_start(f);
	rec.space_len = sizeof(rec.space);

	int fd = client_connect(f);
	assert_true(fd >= 0);
	char data[100000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 11 + 5);
	size_t sent = 0;
	for (int round = 0; round < 5000 && sent < sizeof(data); round++) {
		ssize_t n = send(fd, data + sent, sizeof(data) - sent, MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		run_for(f, 1);
	}
	for (int round = 0; round < 1000 && rec.nreceived < sizeof(data); round++)
		run_for(f, 1);
	assert_int_equal(rec.nreceived, sizeof(data));
	assert_memory_equal(rec.received, data, sizeof(data));
	assert_true(rec.in_space >= sizeof(data) / sizeof(rec.space));

	rec.space_len = 0;
	size_t before = rec.in_space;
	assert_int_equal(send(fd, data, 5000, MSG_NOSIGNAL), 5000);
	for (int round = 0; round < 1000 && rec.nreceived < sizeof(data) + 5000; round++)
		run_for(f, 1);
	assert_int_equal(rec.nreceived, sizeof(data) + 5000);
	assert_memory_equal(rec.received + sizeof(data), data, 5000);
	assert_int_equal(rec.in_space, before);
	close(fd);
	run_for(f, 50);
	fixture_free(f);
}

static void test_handler_error_closes_only_that_connection(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	fixture_start(f);

	int good = client_connect(f);
	int bad = client_connect(f);
	run_for(f, 20);
	assert_int_equal(rec.opened, 2);
	rec.fail_next = true;
	assert_int_equal(send(bad, "x", 1, 0), 1);
	run_for(f, 50);
	assert_int_equal(rec.closes, 1);
	/* The server closed the bad one: the client sees EOF. */
	char c;
	assert_int_equal(recv(bad, &c, 1, 0), 0);
	/* The other connection still works. */
	rec.fail_next = false;
	assert_int_equal(send(good, "ok", 2, 0), 2);
	run_for(f, 50);
	assert_int_equal(rec.nreceived, 2);
	assert_memory_equal(rec.received, "ok", 2);
	close(good);
	close(bad);
	fixture_free(f);
}

static void test_pause_holds_data_until_resume(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	fixture_start(f);

	int fd = client_connect(f);
	run_for(f, 20);
	net_set_paused(f->net, true);
	assert_true(net_paused(f->net));
	assert_int_equal(send(fd, "held", 4, 0), 4);
	run_for(f, 100);
	assert_int_equal(rec.nreceived, 0);
	/* A connection accepted while paused does not read either. */
	int late = client_connect(f);
	assert_int_equal(send(late, "late", 4, 0), 4);
	run_for(f, 50);
	assert_int_equal(rec.opened, 2);
	assert_int_equal(rec.nreceived, 0);
	assert_true(net_paused_ns(f->net) >= 100 * 1000 * 1000ull);

	net_set_paused(f->net, false);
	run_for(f, 50);
	assert_int_equal(rec.nreceived, 8);
	uint64_t paused = net_paused_ns(f->net);
	run_for(f, 20);
	assert_int_equal(net_paused_ns(f->net), paused); /* stopped counting */
	close(fd);
	close(late);
	fixture_free(f);
}

static void test_allow_list_refuses_connection(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	f->allow = (struct schema_allow){.family = AF_INET, .addr = {10, 0, 0, 0}, .prefix_len = 8};
	f->listen.allow = &f->allow;
	f->listen.nallow = 1;
	fixture_start(f);

	int fd = client_connect(f);
	assert_true(fd >= 0);
	run_for(f, 50);
	char c;
	assert_int_equal(recv(fd, &c, 1, 0), 0); /* closed by the recorder */
	assert_int_equal(rec.opened, 0);
	assert_int_equal(net_listener_stats(f->net, 0)->refused, 1);
	close(fd);
	fixture_free(f);
}

/* FD's peer (the recorder) closed it: recv() sees the end of the stream. */
static void assert_closed_by_peer(int fd)
{
	char byte;
	assert_int_equal(recv(fd, &byte, 1, 0), 0);
}

static void test_connection_limit(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	f->schema.limits.max_connections = 2;
	fixture_start(f);

	int a = client_connect(f), b = client_connect(f);
	/* both prove themselves (first byte), so neither makes room */
	assert_int_equal(send(a, "x", 1, 0), 1);
	assert_int_equal(send(b, "x", 1, 0), 1);
	run_for(f, 50);
	int c = client_connect(f);
	run_for(f, 50);
	assert_int_equal(rec.opened, 2);
	assert_int_equal(net_listener_stats(f->net, 0)->refused, 1);
	assert_closed_by_peer(c); /* the third was closed */
	/* A slot freed is a slot again. */
	close(a);
	run_for(f, 50);
	int d = client_connect(f);
	run_for(f, 50);
	assert_int_equal(rec.opened, 3);
	assert_int_equal(net_listener_stats(f->net, 0)->open, 2);
	close(b);
	close(c);
	close(d);
	fixture_free(f);
}

/* Sockets that never sent anything cannot keep a sender out: at a limit
 * the oldest untrusted connection in the way is closed to make room. */
static void test_silent_connections_make_room(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	f->schema.limits.max_connections = 3;
	f->listen.max_connections = 3;
	fixture_start(f);
	int idle[3];
	for (int i = 0; i < 3; i++) {
		idle[i] = client_connect(f);
		run_for(f, 20);
	}
	int sender = client_connect(f);
	run_for(f, 50);
	assert_int_equal(send(sender, "data", 4, 0), 4);
	run_for(f, 50);
	assert_int_equal(rec.nreceived, 4);
	assert_closed_by_peer(idle[0]); /* the oldest went */
	assert_int_equal(net_listener_stats(f->net, 0)->evicted, 1);
	assert_int_equal(net_listener_stats(f->net, 0)->refused, 0);
	assert_int_equal(net_listener_stats(f->net, 0)->open, 3);
	for (int i = 0; i < 3; i++)
		close(idle[i]);
	close(sender);
	fixture_free(f);
}

/* max_per_peer: one address gets so many; with all of them proven, the
 * next from it is refused. */
static void test_per_peer_limit(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	f->listen.max_per_peer = 2;
	fixture_start(f);
	int a = client_connect(f), b = client_connect(f);
	assert_int_equal(send(a, "x", 1, 0), 1);
	assert_int_equal(send(b, "x", 1, 0), 1);
	run_for(f, 50);
	int c = client_connect(f);
	run_for(f, 50);
	assert_closed_by_peer(c);
	assert_int_equal(net_listener_stats(f->net, 0)->refused, 1);
	assert_int_equal(net_listener_stats(f->net, 0)->open, 2);
	close(a);
	close(b);
	close(c);
	fixture_free(f);
}

/* A connection that has not proven itself within auth_timeout is closed;
 * on a listener with a token, bytes are not proof (the handler's
 * net_conn_trust is); a proven one is closed after idle_timeout of
 * silence, but not while the handler owes it replies. */
static void test_auth_and_idle_timeouts(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	char token[] = "secret";
	f->listen.token = token;
	f->listen.auth_timeout_ns = INT64_C(300000000);
	f->listen.idle_timeout_ns = INT64_C(600000000);
	fixture_start(f);
	int silent = client_connect(f), talker = client_connect(f);
	run_for(f, 50);
	assert_int_equal(send(talker, "bytes", 5, 0), 5);
	int trusted = client_connect(f);
	run_for(f, 50);
	net_conn_trust(rec.last_conn); /* as ingest_frame.c does after a HELLO */
	rec.owes_reply = true; /* owed replies (ACKs) are not silence, once trusted */
	run_for(f, 900);
	assert_closed_by_peer(silent);
	assert_closed_by_peer(talker); /* bytes without the token prove nothing */
	assert_int_equal(net_listener_stats(f->net, 0)->timed_out, 2);
	char byte;
	assert_int_equal(recv(trusted, &byte, 1, MSG_DONTWAIT), -1); /* still open */
	rec.owes_reply = false;
	run_for(f, 900);
	assert_closed_by_peer(trusted);
	assert_int_equal(net_listener_stats(f->net, 0)->timed_out, 3);
	close(silent);
	close(talker);
	close(trusted);
	fixture_free(f);
}

static void test_udp_datagrams(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_UDP);
	fixture_start(f);

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons(f->listen.port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(sendto(fd, "a b=1\n", 6, 0, (struct sockaddr *)&addr, sizeof(addr)), 6);
	assert_int_equal(sendto(fd, "c d=2\n", 6, 0, (struct sockaddr *)&addr, sizeof(addr)), 6);
	run_for(f, 50);
	assert_int_equal(rec.datagrams, 2);
	assert_int_equal(rec.nreceived, 12);
	assert_memory_equal(rec.received, "a b=1\nc d=2\n", 12);
	assert_non_null(strstr(rec.last_peer, "127.0.0.1:"));
	assert_int_equal(net_listener_stats(f->net, 0)->datagrams, 2);
	close(fd);
	fixture_free(f);
}

static void test_unix_socket_and_stale_path(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_UNIX);
	/* A socket file left by a dead recorder is reused. */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->path);
	assert_int_equal(bind(stale, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(stale);
	fixture_start(f);

	int fd = client_connect(f);
	assert_true(fd >= 0);
	assert_int_equal(send(fd, "frame", 5, 0), 5);
	run_for(f, 50);
	assert_int_equal(rec.nreceived, 5);
	char expect[128];
	snprintf(expect, sizeof(expect), "unix:%s", f->path);
	assert_string_equal(rec.last_peer, expect);

	/* A second recorder on the same live path is refused. */
	struct net *second;
	struct net_error err;
	assert_int_equal(net_start(&f->loop, &f->schema, handlers, &second, &err), -EADDRINUSE);
	assert_non_null(strstr(err.message, "another process is listening"));
	uv_run(&f->loop, UV_RUN_NOWAIT);
	close(fd);
	fixture_free(f);
}

static void test_unix_path_that_is_not_a_socket(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_UNIX);
	int fd = open(f->path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	struct net_error err;
	assert_int_equal(net_start(&f->loop, &f->schema, handlers, &f->net, &err), -EEXIST);
	assert_non_null(strstr(err.message, "is not a socket"));
	f->net = NULL;
	unlink(f->path); /* ours, not net's: must still exist */
	f->path[0] = '\0';
	fixture_free(f);
}

static void test_port_in_use_names_the_listener(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	fixture_start(f);
	struct net *second;
	struct net_error err;
	assert_int_equal(net_start(&f->loop, &f->schema, handlers, &second, &err), UV_EADDRINUSE);
	assert_non_null(strstr(err.message, f->address));
	assert_non_null(strstr(err.message, "line 7"));
	fixture_free(f);
}

static int drained;

static void on_drained(void *arg)
{
	(void)arg;
	drained++;
}

static void test_drain_waits_for_quiet_connections(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	fixture_start(f);
	drained = 0;

	int busy = client_connect(f);
	int idle = client_connect(f);
	run_for(f, 20);
	net_drain(f->net, 200, on_drained, NULL);
	/* New connections are refused once draining. */
	run_for(f, 20);
	assert_int_equal(client_connect(f), -1);

	/* The busy sender keeps talking past the grace period and is heard. */
	for (int i = 0; i < 6; i++) {
		assert_int_equal(send(busy, "more", 4, 0), 4);
		run_for(f, 60);
	}
	assert_int_equal(rec.nreceived, 24);
	assert_int_equal(rec.closes, 1); /* the idle one */
	assert_int_equal(drained, 0);
	run_for(f, 300);
	assert_int_equal(rec.closes, 2);
	assert_int_equal(drained, 1);
	close(busy);
	close(idle);
	fixture_free(f);
}

/* A sender waiting for replies we owe is not quiet: draining keeps it past
 * the grace period until nothing is owed, then the grace period runs. */
static void test_drain_keeps_connections_owed_replies(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(SCHEMA_TRANSPORT_TCP);
	fixture_start(f);
	drained = 0;

	int waiting = client_connect(f);
	assert_true(waiting >= 0);
	assert_int_equal(send(waiting, "data", 4, 0), 4);
	run_for(f, 20);
	rec.owes_reply = true;
	net_drain(f->net, 100, on_drained, NULL);
	run_for(f, 400);
	assert_int_equal(rec.closes, 0);
	assert_int_equal(drained, 0);

	rec.owes_reply = false;
	run_for(f, 50);
	assert_int_equal(rec.closes, 0); /* the grace period starts now */
	run_for(f, 250);
	assert_int_equal(rec.closes, 1);
	assert_int_equal(drained, 1);
	close(waiting);
	fixture_free(f);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR); /* refusals are expected here */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allow_matching),
		cmocka_unit_test(test_tcp_bytes_eof_and_echo),
		cmocka_unit_test(test_reads_land_in_handler_space),
		cmocka_unit_test(test_handler_error_closes_only_that_connection),
		cmocka_unit_test(test_pause_holds_data_until_resume),
		cmocka_unit_test(test_allow_list_refuses_connection),
		cmocka_unit_test(test_connection_limit),
		cmocka_unit_test(test_silent_connections_make_room),
		cmocka_unit_test(test_per_peer_limit),
		cmocka_unit_test(test_auth_and_idle_timeouts),
		cmocka_unit_test(test_udp_datagrams),
		cmocka_unit_test(test_unix_socket_and_stale_path),
		cmocka_unit_test(test_unix_path_that_is_not_a_socket),
		cmocka_unit_test(test_port_in_use_names_the_listener),
		cmocka_unit_test(test_drain_waits_for_quiet_connections),
		cmocka_unit_test(test_drain_keeps_connections_owed_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
