/*
 * control.c - the control socket (see control.h).
 *
 * Requests are tiny and rare, so each connection reads one line into a
 * fixed buffer, answers, and is closed; a client that sends more than
 * CONTROL_MAX_REQUEST bytes without a newline is told so and dropped.
 * flush and roll are queued to the writer like data, behind everything
 * received before them, and answered when the writer's progress marks pass
 * them — so "flushed" really means that all earlier data is durable.
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

enum wait_kind { WAIT_NONE, WAIT_DURABLE, WAIT_APPLIED };

struct control_conn {
	struct control *control;
	uv_pipe_t pipe;
	char request[CONTROL_MAX_REQUEST];
	size_t len;
	bool closing;
	enum wait_kind wait;
	uint64_t item; /* the queued flush or roll */
	struct control_conn *prev, *next;
};

struct control {
	uv_loop_t *loop;
	uv_pipe_t server;
	char path[108];
	struct status *status;
	struct ingest *ingest;
	struct control_conn *conns;
	unsigned open_handles;
	bool closing;
	bool stopping;
	bool bound; /* the socket file is ours to remove */
};

/* ---- paths ------------------------------------------------------------------ */

static bool writable_dir(const char *dir)
{
	struct stat st;
	return dir && *dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && access(dir, W_OK) == 0;
}

static bool socket_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Our private directory in /tmp: created 0700, and refused unless it is a
 * real directory we own (never follow a symlink someone else planted). */
static int private_tmp_dir(char *dir, size_t len, bool create)
{
	snprintf(dir, len, "/tmp/h5rec-%u", (unsigned)getuid());
	if (create && mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (lstat(dir, &st) != 0)
		return create ? -errno : 0;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

int control_socket_path(const struct schema *schema, bool create, char *out, size_t len)
{
	char candidates[3][4096], dir[64];
	bool usable[3];
	size_t n = 0;
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (schema->control.socket) {
		int w = snprintf(out, len, "%s", schema->control.socket);
		return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
	}
	usable[n] = writable_dir("/run/h5rec");
	snprintf(candidates[n++], sizeof(candidates[0]), "/run/h5rec/%s.sock", schema->name);
	if (xdg && *xdg) {
		usable[n] = writable_dir(xdg);
		snprintf(candidates[n++], sizeof(candidates[0]), "%s/h5rec-%s.sock", xdg,
			 schema->name);
	}
	int err = private_tmp_dir(dir, sizeof(dir), create);
	if (err && create)
		return err;
	usable[n] = true;
	snprintf(candidates[n++], sizeof(candidates[0]), "%s/%s.sock", dir, schema->name);

	size_t server_pick = 0;
	while (!usable[server_pick])
		server_pick++;
	size_t pick = server_pick;
	int rc = 0;
	if (!create) {
		/* The first place where a recorder's socket exists; if none
		 * does, the place a recorder started by this user would use. */
		for (pick = 0; pick < n && !socket_exists(candidates[pick]); pick++)
			;
		if (pick == n) {
			pick = server_pick;
			rc = -ENOENT;
		}
	}
	int w = snprintf(out, len, "%s", candidates[pick]);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : rc;
}

/* ---- connections ------------------------------------------------------------ */

static void maybe_free(struct control *control)
{
	if (control->closing && control->open_handles == 0)
		free(control);
}

static void on_conn_closed(uv_handle_t *handle)
{
	struct control_conn *conn = handle->data;
	struct control *control = conn->control;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		control->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	free(conn);
	control->open_handles--;
	maybe_free(control);
}

static void conn_close(struct control_conn *conn)
{
	if (conn->closing)
		return;
	conn->closing = true;
	uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
}

struct reply {
	uv_write_t req;
	struct control_conn *conn;
	char text[];
};

static void on_replied(uv_write_t *req, int status)
{
	struct reply *reply = req->data;
	(void)status;
	conn_close(reply->conn);
	free(reply);
}

/* Send text and close the connection once it is written. */
static void reply(struct control_conn *conn, const char *text, size_t len)
{
	struct reply *r = malloc(sizeof(*r) + len);
	if (!r) {
		conn_close(conn);
		return;
	}
	memcpy(r->text, text, len);
	r->req.data = r;
	r->conn = conn;
	uv_buf_t buf = uv_buf_init(r->text, (unsigned)len);
	if (uv_write(&r->req, (uv_stream_t *)&conn->pipe, &buf, 1, on_replied)) {
		free(r);
		conn_close(conn);
	}
}

static void reply_string(struct control_conn *conn, const char *text)
{
	reply(conn, text, strlen(text));
}

static void reply_status(struct control_conn *conn, bool json)
{
	struct status *status = conn->control->status;
	uint64_t now = uv_now(conn->control->loop);
	size_t need = (json ? status_json : status_text)(status, now, NULL, 0) + 1;
	char *text = malloc(need);
	if (!text) {
		reply_string(conn, "error: out of memory\n");
		return;
	}
	(json ? status_json : status_text)(status, now, text, need);
	reply(conn, text, strlen(text));
	free(text);
}

/* Queue a flush or roll behind everything received so far. */
static void queue_request(struct control_conn *conn, enum ingest_item_kind kind)
{
	struct control *control = conn->control;
	if (control->stopping) {
		reply_string(conn, "error: the recorder is stopping\n");
		return;
	}
	struct ingest_item *item = ingest_item_new(kind, 0, "control socket");
	if (!item) {
		reply_string(conn, "error: out of memory\n");
		return;
	}
	/* Once pushed the item is the writer thread's, which may apply and
	 * free it before ingest_push returns: note its number beforehand. */
	conn->item = control->ingest->next_item;
	ingest_push(control->ingest, item);
	conn->wait = kind == INGEST_ITEM_FLUSH ? WAIT_DURABLE : WAIT_APPLIED;
	log_msg(LOG_LEVEL_NOTICE, "control socket: %s requested",
		kind == INGEST_ITEM_FLUSH ? "flush" : "roll");
}

static void dispatch(struct control_conn *conn)
{
	char *line = conn->request;
	line[strcspn(line, "\r\n")] = '\0';
	if (strcmp(line, "status") == 0)
		reply_status(conn, false);
	else if (strcmp(line, "status json") == 0)
		reply_status(conn, true);
	else if (strcmp(line, "flush") == 0)
		queue_request(conn, INGEST_ITEM_FLUSH);
	else if (strcmp(line, "roll") == 0)
		queue_request(conn, INGEST_ITEM_ROLL);
	else {
		char text[CONTROL_MAX_REQUEST + 96];
		snprintf(text, sizeof(text),
			 "error: unknown request '%.64s' (status, status json, flush, roll)\n", line);
		reply_string(conn, text);
	}
}

void control_progress(void *arg, uint64_t applied, uint64_t durable)
{
	struct control *control = arg;
	for (struct control_conn *conn = control->conns; conn; conn = conn->next) {
		if (conn->wait == WAIT_DURABLE && durable > conn->item) {
			conn->wait = WAIT_NONE;
			reply_string(conn, "flushed\n");
		} else if (conn->wait == WAIT_APPLIED && applied > conn->item) {
			conn->wait = WAIT_NONE;
			reply_string(conn, "rolled\n");
		}
	}
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct control_conn *conn = handle->data;
	(void)suggested;
	*buf = uv_buf_init(conn->request + conn->len,
			   (unsigned)(sizeof(conn->request) - 1 - conn->len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct control_conn *conn = stream->data;
	(void)buf;
	if (nread < 0) {
		if (conn->wait == WAIT_NONE || nread != UV_EOF)
			conn_close(conn);
		return;
	}
	conn->len += (size_t)nread;
	conn->request[conn->len] = '\0';
	if (strchr(conn->request, '\n')) {
		uv_read_stop(stream);
		dispatch(conn);
	} else if (conn->len == sizeof(conn->request) - 1) {
		uv_read_stop(stream);
		reply_string(conn, "error: request too long\n");
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct control *control = server->data;
	if (status < 0)
		return;
	struct control_conn *conn = calloc(1, sizeof(*conn));
	if (!conn)
		return;
	conn->control = control;
	uv_pipe_init(control->loop, &conn->pipe, 0);
	conn->pipe.data = conn;
	control->open_handles++;
	conn->next = control->conns;
	if (control->conns)
		control->conns->prev = conn;
	control->conns = conn;
	if (uv_accept(server, (uv_stream_t *)&conn->pipe) ||
	    uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read))
		conn_close(conn);
}

/* ---- lifecycle -------------------------------------------------------------- */

static void on_server_closed(uv_handle_t *handle)
{
	struct control *control = handle->data;
	control->open_handles--;
	maybe_free(control);
}

int control_start(uv_loop_t *loop, const char *path, struct status *status,
		  struct ingest *ingest, struct control **out, char *err, size_t err_len)
{
	struct net_error nerr = {.message = ""};
	struct control *control = calloc(1, sizeof(*control));
	if (!control) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	if (strlen(path) >= sizeof(control->path)) {
		snprintf(err, err_len, "control socket path too long: %s", path);
		free(control);
		return -ENAMETOOLONG;
	}
	int rc = net_clear_stale_socket(path, &nerr);
	if (rc) {
		snprintf(err, err_len, "control socket: %s", nerr.message);
		free(control);
		return rc;
	}
	control->loop = loop;
	control->status = status;
	control->ingest = ingest;
	snprintf(control->path, sizeof(control->path), "%s", path);
	uv_pipe_init(loop, &control->server, 0);
	control->server.data = control;
	control->open_handles = 1;
	rc = uv_pipe_bind(&control->server, path);
	control->bound = rc == 0;
	if (!rc)
		rc = uv_listen((uv_stream_t *)&control->server, 16, on_connection);
	/* Operators in the recorder's group may use it; nobody else. */
	if (!rc && chmod(path, 0660) != 0)
		rc = -errno;
	if (rc) {
		snprintf(err, err_len, "control socket %s: %s", path, uv_strerror(rc));
		control_close(control);
		return rc;
	}
	*out = control;
	return 0;
}

void control_stopping(struct control *control)
{
	control->stopping = true;
}

void control_close(struct control *control)
{
	if (control->closing)
		return;
	control->closing = true;
	for (struct control_conn *conn = control->conns; conn; conn = conn->next)
		conn_close(conn);
	uv_close((uv_handle_t *)&control->server, on_server_closed);
	if (control->bound)
		unlink(control->path);
}
