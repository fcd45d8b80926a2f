/*
 * control.c - the control socket (see control.h).
 *
 * Requests are tiny and rare, so each connection reads one line into a
 * fixed buffer, answers, and is closed; a client that sends more than
 * CONTROL_MAX_REQUEST bytes without a newline is told so and dropped.
 * flush and roll are queued to the writer like data, behind everything
 * received before them, and answered when the writer's progress marks pass
 * them — so "flushed" really means that all earlier data is durable.
 *
 * Any local user allowed to connect could otherwise hold descriptors the
 * writer needs to roll, so connections are bounded in number and time.
 * When all CONTROL_MAX_CONNECTIONS are open, a new one closes the oldest
 * that has not sent its request yet (as the data listeners make room), so
 * that a pile of silent connections cannot lock `h5rec status` out: a real
 * client sends its request as it connects. Only when every connection has
 * a request in progress is the new one refused. One timer closes, every
 * CONTROL_TICK_MS, connections that have not completed a request, or not
 * taken their reply, within CONTROL_IDLE_TIMEOUT_MS; one waiting for the
 * writer is never closed, whatever the wait.
 *
 * The socket is only as trustworthy as the directory it is in: anyone who
 * can create names there can answer in the recorder's place. The rules
 * (control_check_socket in control.h) are shared by the recorder, which
 * refuses to bind where a client would refuse to listen, and the client.
 */
#include "control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

#define CONTROL_TICK_MS 1000

enum conn_state {
	CONN_READING,          /* no complete request yet */
	CONN_WAITING_DURABLE,  /* a flush queued to the writer */
	CONN_WAITING_APPLIED,  /* a roll queued to the writer */
	CONN_WAITING_RUN,      /* a run start or stop queued to the writer */
	CONN_REPLYING,         /* the reply is being written */
};

struct control_conn {
	struct control *control;
	uv_pipe_t pipe;
	char request[CONTROL_MAX_REQUEST];
	size_t len;
	bool closing;
	enum conn_state state;
	uint64_t opened_ms;
	uint64_t deadline_ms; /* closed at this uv_now() unless waiting */
	uint64_t item; /* the queued flush, roll or run request */
	struct control_conn *prev, *next;
};

struct control {
	uv_loop_t *loop;
	uv_pipe_t server;
	uv_timer_t tick;
	char path[108];
	struct status *status;
	struct ingest *ingest;
	struct control_conn *conns;
	unsigned active; /* connections not closing */
	unsigned open_handles;
	struct log_ratelimit refusals; /* a flood of connections must not flood the log */
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

/* Our private directory in /tmp, created 0700 for the server. Whether an
 * existing one is really ours is control_start's question. */
static int private_tmp_dir(char *dir, size_t len, bool create)
{
	snprintf(dir, len, "/tmp/h5rec-%u", (unsigned)getuid());
	if (create && mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
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

/* ---- whom to trust -------------------------------------------------------------- */

/* Whose directory may hold a socket the user believes (control.h). */
enum trust {
	TRUST_OWN,    /* a per-user place: the user's only */
	TRUST_SYSTEM, /* the user's, root's, or given by root to its owner */
	TRUST_ANY,    /* root naming a path: any one user's private directory */
};

static int refuse(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EPERM;
}

static int stat_failed(char *why, size_t len, const char *path)
{
	int err = errno;
	snprintf(why, len, "%s: %s", path, strerror(err));
	return -err;
}

static bool others_can_write(const struct stat *st)
{
	return (st->st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

/* The directory part of PATH, without trailing slashes ("." for a bare
 * name, "/" for the root). */
static int dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	int w = !slash ? snprintf(dir, len, ".")
		       : snprintf(dir, len, "%.*s", (int)(slash - path), path);
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	while (w > 1 && dir[w - 1] == '/')
		dir[--w] = '\0';
	if (w == 0)
		snprintf(dir, len, "/");
	return 0;
}

/* Is DIR one of the per-user places of the default chain? */
static bool personal_place(const char *dir)
{
	char mine[64], xdg[4096];
	snprintf(mine, sizeof(mine), "/tmp/h5rec-%u", (unsigned)getuid());
	if (strcmp(dir, mine) == 0)
		return true;
	const char *env = getenv("XDG_RUNTIME_DIR");
	if (!env || !*env)
		return false;
	int w = snprintf(xdg, sizeof(xdg), "%s", env);
	while (w > 1 && xdg[w - 1] == '/')
		xdg[--w] = '\0';
	return strcmp(dir, xdg) == 0;
}

/* The directory above DIR must not let anyone but root, UID or DIR's owner
 * rename DIR away and put another in its place. */
static int check_parent(const char *dir, const struct stat *st, uid_t uid,
			struct stat *parent, char *why, size_t len)
{
	char up[4100];
	snprintf(up, sizeof(up), "%s/..", dir);
	if (stat(up, parent) != 0)
		return stat_failed(why, len, up);
	uid_t owner = parent->st_uid;
	if (owner != 0 && owner != uid && owner != st->st_uid)
		return refuse(why, len,
			      "the directory above %s belongs to uid %u, who could replace it",
			      dir, (unsigned)owner);
	if (others_can_write(parent) && !(parent->st_mode & S_ISVTX))
		return refuse(why, len,
			      "the directory above %s can be written by other users (mode "
			      "%04o), who could replace it", dir,
			      (unsigned)(parent->st_mode & 07777));
	return 0;
}

/* May UID believe what DIR holds, with TRUST? *OWNER: DIR's owner. */
static int check_dir(const char *dir, uid_t uid, enum trust trust, uid_t *owner, char *why,
		     size_t len)
{
	struct stat st, parent;
	if (lstat(dir, &st) != 0)
		return stat_failed(why, len, dir);
	if (S_ISLNK(st.st_mode))
		return refuse(why, len, "%s is a symbolic link (owner uid %u), not a directory",
			      dir, (unsigned)st.st_uid);
	if (!S_ISDIR(st.st_mode))
		return refuse(why, len, "%s is not a directory", dir);
	if (others_can_write(&st))
		return refuse(why, len,
			      "%s (owner uid %u, mode %04o) can be written by other users, "
			      "who could put their own socket there", dir, (unsigned)st.st_uid,
			      (unsigned)(st.st_mode & 07777));
	int rc = check_parent(dir, &st, uid, &parent, why, len);
	if (rc)
		return rc;
	bool given_by_root = parent.st_uid == 0 && !others_can_write(&parent);
	bool trusted = st.st_uid == uid ||
		       (trust != TRUST_OWN && (st.st_uid == 0 || given_by_root)) ||
		       trust == TRUST_ANY;
	if (!trusted)
		return refuse(why, len, "%s belongs to uid %u, not to uid %u%s: another local "
			      "user may have created it to answer in the recorder's place", dir,
			      (unsigned)st.st_uid, (unsigned)uid,
			      trust == TRUST_OWN ? " whose place it is" : " or root");
	*owner = st.st_uid;
	return 0;
}

int control_check_socket(const char *path, uid_t *owner, char *why, size_t why_len)
{
	char dir[4096];
	uid_t uid = geteuid(), dir_owner;
	struct stat st;
	if (dir_of(path, dir, sizeof(dir)))
		return refuse(why, why_len, "%s: path too long", path);
	enum trust trust = personal_place(dir) ? TRUST_OWN : uid == 0 ? TRUST_ANY : TRUST_SYSTEM;
	int rc = check_dir(dir, uid, trust, &dir_owner, why, why_len);
	if (rc)
		return rc;
	if (lstat(path, &st) != 0)
		return stat_failed(why, why_len, path);
	if (!S_ISSOCK(st.st_mode))
		return refuse(why, why_len, "%s is not a socket", path);
	if (st.st_uid != uid && st.st_uid != 0 && st.st_uid != dir_owner)
		return refuse(why, why_len,
			      "%s belongs to uid %u, not to uid %u, root or the owner of its "
			      "directory (uid %u)", path, (unsigned)st.st_uid, (unsigned)uid,
			      (unsigned)dir_owner);
	*owner = st.st_uid;
	return 0;
}

/* The recorder's side: bind only where its clients would listen. */
static int check_bind_dir(const char *path, char *err, size_t err_len)
{
	char dir[4096], why[400];
	uid_t uid = geteuid(), owner;
	if (dir_of(path, dir, sizeof(dir))) {
		snprintf(err, err_len, "control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	int rc = check_dir(dir, uid, personal_place(dir) ? TRUST_OWN : TRUST_SYSTEM, &owner,
			   why, sizeof(why));
	if (rc == -EPERM)
		snprintf(err, err_len, "control socket %s refused: %s. Remove or fix that "
			 "directory, or set control.socket in the schema to a directory that "
			 "only uid %u can write", path, why, (unsigned)uid);
	else if (rc)
		snprintf(err, err_len, "control socket %s: %s", path, why);
	return rc;
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
	conn->control->active--;
	uv_close((uv_handle_t *)&conn->pipe, on_conn_closed);
}

static uint64_t now_ms(const struct control *control)
{
	return uv_now(control->loop);
}

static void warn_client(struct control *control, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A warning about what a client did, through the rate limit: many clients
 * can do it many times. */
static void warn_client(struct control *control, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_ratelimited(&control->refusals, (int64_t)uv_hrtime(), LOG_LEVEL_WARNING,
			"control socket: %s", text);
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

/* Send text and close the connection once it is written; a client that
 * does not take it within the idle timeout is closed anyway. */
static void reply(struct control_conn *conn, const char *text, size_t len)
{
	struct reply *r = malloc(sizeof(*r) + len);
	if (!r) {
		conn_close(conn);
		return;
	}
	conn->state = CONN_REPLYING;
	conn->deadline_ms = now_ms(conn->control) + CONTROL_IDLE_TIMEOUT_MS;
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

static size_t render_status(const struct status *status, uint64_t now, bool json, bool groups,
			    char *buf, size_t len)
{
	if (groups)
		return status_groups(status, now, json, buf, len);
	return (json ? status_json : status_text)(status, now, buf, len);
}

/* The writer thread updates what the status shows while it is rendered, so
 * the size one rendering needed is no promise for the next: render until
 * the text fits, with room to spare for what grew in between. */
static void reply_status(struct control_conn *conn, bool json, bool groups)
{
	struct status *status = conn->control->status;
	uint64_t now = uv_now(conn->control->loop);
	size_t cap = 8192;
	char *text = NULL;
	for (;;) {
		char *grown = realloc(text, cap);
		if (!grown) {
			free(text);
			reply_string(conn, "error: out of memory\n");
			return;
		}
		text = grown;
		size_t need = render_status(status, now, json, groups, text, cap);
		if (need < cap)
			break;
		cap = need + need / 4 + 256;
	}
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
	conn->state = kind == INGEST_ITEM_FLUSH ? CONN_WAITING_DURABLE : CONN_WAITING_APPLIED;
	log_msg(LOG_LEVEL_NOTICE, "control socket: %s requested",
		kind == INGEST_ITEM_FLUSH ? "flush" : "roll");
}

/* "run start NAME[\tKEY=VALUE]..." or "run stop": checked here, applied
 * by the writer behind everything received so far, answered once applied
 * with what the writer said (control_progress). */
static void queue_run(struct control_conn *conn, const char *args)
{
	struct control *control = conn->control;
	struct run_state state;
	char why[256];
	bool stop = strcmp(args, "stop") == 0;
	if (control->stopping) {
		reply_string(conn, "error: the recorder is stopping\n");
		return;
	}
	if (!stop && strncmp(args, "start ", 6) != 0) {
		reply_string(conn, "error: expected 'run start NAME[\\tKEY=VALUE]...' or "
				   "'run stop'\n");
		return;
	}
	if (!stop && run_parse(args + 6, &state, why, sizeof(why))) {
		char text[400];
		snprintf(text, sizeof(text), "error: %s\n", why);
		reply_string(conn, text);
		return;
	}
	struct ingest_item *item = ingest_item_new(INGEST_ITEM_RUN, stop ? 0 : sizeof(state),
						   "control socket");
	if (!item) {
		reply_string(conn, "error: out of memory\n");
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	item->u.run.time = now.tv_sec * INT64_C(1000000000) + now.tv_nsec;
	if (!stop) {
		state.start = item->u.run.time;
		item->u.run.state = (struct run_state *)(item + 1);
		*item->u.run.state = state;
	}
	conn->item = control->ingest->next_item; /* before the writer may free it */
	ingest_push(control->ingest, item);
	conn->state = CONN_WAITING_RUN;
	log_msg(LOG_LEVEL_NOTICE, "control socket: run %s requested", stop ? "stop" : "start");
}

static void dispatch(struct control_conn *conn)
{
	char *line = conn->request;
	line[strcspn(line, "\r\n")] = '\0';
	if (strcmp(line, "status") == 0)
		reply_status(conn, false, false);
	else if (strcmp(line, "status json") == 0)
		reply_status(conn, true, false);
	else if (strcmp(line, "status groups") == 0)
		reply_status(conn, false, true);
	else if (strcmp(line, "status groups json") == 0)
		reply_status(conn, true, true);
	else if (strcmp(line, "flush") == 0)
		queue_request(conn, INGEST_ITEM_FLUSH);
	else if (strcmp(line, "roll") == 0)
		queue_request(conn, INGEST_ITEM_ROLL);
	else if (strncmp(line, "run ", 4) == 0)
		queue_run(conn, line + 4);
	else {
		char text[CONTROL_MAX_REQUEST + 96];
		snprintf(text, sizeof(text),
			 "error: unknown request '%.64s' (status, status json, status groups, "
			 "status groups json, flush, roll, run start, run stop)\n", line);
		reply_string(conn, text);
	}
}

void control_progress(void *arg, uint64_t applied, uint64_t durable)
{
	struct control *control = arg;
	for (struct control_conn *conn = control->conns; conn; conn = conn->next) {
		if (conn->state == CONN_WAITING_DURABLE && durable > conn->item)
			reply_string(conn, "flushed\n");
		else if (conn->state == CONN_WAITING_APPLIED && applied > conn->item)
			reply_string(conn, "rolled\n");
		else if (conn->state == CONN_WAITING_RUN && applied > conn->item) {
			char text[700];
			if (!writer_run_reply(control->status->writer, conn->item, text, sizeof(text)))
				snprintf(text, sizeof(text), "error: the answer was lost (another run "
					 "request came first); h5rec status shows the run\n");
			reply_string(conn, text);
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

/*
 * Room for NEW, just accepted: within the limit, or by closing the oldest
 * connection that has not sent its request (the list is newest first).
 * False when every other connection has a request in progress.
 */
static bool make_room(struct control *control, struct control_conn *new)
{
	if (control->active <= CONTROL_MAX_CONNECTIONS)
		return true;
	struct control_conn *oldest = NULL;
	for (struct control_conn *conn = new->next; conn; conn = conn->next)
		if (!conn->closing && conn->state == CONN_READING)
			oldest = conn;
	if (!oldest)
		return false;
	warn_client(control, "%d connections open: closed one that sent no request in %.1f s, "
		    "to make room", CONTROL_MAX_CONNECTIONS,
		    (double)(now_ms(control) - oldest->opened_ms) / 1000);
	conn_close(oldest);
	return true;
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
	conn->opened_ms = now_ms(control);
	conn->deadline_ms = conn->opened_ms + CONTROL_IDLE_TIMEOUT_MS;
	uv_pipe_init(control->loop, &conn->pipe, 0);
	conn->pipe.data = conn;
	control->open_handles++;
	control->active++;
	conn->next = control->conns;
	if (control->conns)
		control->conns->prev = conn;
	control->conns = conn;
	/* Accepted even when it is to be refused, so that the backlog drains. */
	if (uv_accept(server, (uv_stream_t *)&conn->pipe)) {
		conn_close(conn);
		return;
	}
	if (!make_room(control, conn)) {
		warn_client(control, "refused a connection: %d requests in progress",
			    CONTROL_MAX_CONNECTIONS);
		conn_close(conn);
		return;
	}
	if (uv_read_start((uv_stream_t *)&conn->pipe, on_alloc, on_read))
		conn_close(conn);
}

/* Every CONTROL_TICK_MS: close connections past their deadline, unless
 * they wait for the writer. */
static void on_tick(uv_timer_t *timer)
{
	struct control *control = timer->data;
	uint64_t now = now_ms(control);
	for (struct control_conn *conn = control->conns; conn; conn = conn->next) {
		if (conn->closing || conn->state == CONN_WAITING_DURABLE ||
		    conn->state == CONN_WAITING_APPLIED || conn->state == CONN_WAITING_RUN ||
		    now < conn->deadline_ms)
			continue;
		warn_client(control, "closed a connection after %.1f s: %s within %d s",
			    (double)(now - conn->opened_ms) / 1000,
			    conn->state == CONN_READING ? "no complete request"
							: "reply not taken",
			    CONTROL_IDLE_TIMEOUT_MS / 1000);
		conn_close(conn);
	}
}

/* ---- lifecycle -------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *handle)
{
	struct control *control = handle->data;
	control->open_handles--;
	maybe_free(control);
}

static int listen_on(struct control *control, const char *path)
{
	int rc = uv_pipe_bind(&control->server, path);
	control->bound = rc == 0;
	if (!rc)
		rc = uv_listen((uv_stream_t *)&control->server, 16, on_connection);
	/* Operators in the recorder's group may use it; nobody else. */
	if (!rc && chmod(path, 0660) != 0)
		rc = -errno;
	if (!rc)
		rc = uv_timer_start(&control->tick, on_tick, CONTROL_TICK_MS, CONTROL_TICK_MS);
	return rc;
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
	int rc = check_bind_dir(path, err, err_len);
	if (rc) {
		free(control);
		return rc;
	}
	rc = net_clear_stale_socket(path, &nerr);
	if (rc) {
		snprintf(err, err_len, "control socket: %s", nerr.message);
		free(control);
		return rc;
	}
	control->loop = loop;
	control->status = status;
	control->ingest = ingest;
	control->refusals = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000000000, 10);
	snprintf(control->path, sizeof(control->path), "%s", path);
	uv_pipe_init(loop, &control->server, 0);
	uv_timer_init(loop, &control->tick);
	control->server.data = control->tick.data = control;
	control->open_handles = 2;
	/* housekeeping: the timer alone must not keep the loop running */
	uv_unref((uv_handle_t *)&control->tick);
	rc = listen_on(control, path);
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
	uv_close((uv_handle_t *)&control->tick, on_handle_closed);
	uv_close((uv_handle_t *)&control->server, on_handle_closed);
	if (control->bound)
		unlink(control->path);
}
