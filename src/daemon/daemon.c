/*
 * daemon.c - h5recd's life: bind, record, stop cleanly (see daemon.h).
 *
 * Order matters at both ends. At start the engine is opened before any
 * listener is bound, so a recorder that cannot write never accepts data it
 * would lose; READY=1 is sent to systemd only once every listener is bound.
 * At stop, listeners close first, connections drain into the queue, and
 * only then is the queue closed and the writer joined: it stores everything
 * that was accepted before it closes the file.
 */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "control.h"
#include "ingest.h"
#include "ingest_frame.h"
#include "ingest_http.h"
#include "ingest_line.h"
#include "log.h"
#include "net.h"
#include "run.h"
#include "source.h"
#include "status.h"
#include "timefmt.h"
#include "writer.h"
#include "writer_queue.h"

enum { DEFAULT_GRACE_MS = 2000 };

struct daemon {
	uv_loop_t loop;
	const struct schema *schema;
	const struct daemon_options *options;
	struct writer_queue queue;
	struct ingest ingest;
	struct writer writer;
	struct net *net;
	struct sources sources;
	int draining;               /* net and sources still draining */
	struct status status;
	bool status_ready;
	struct control *control;
	uv_timer_t tick;            /* 1 Hz: rates and systemd STATUS= */
	uv_timer_t watchdog;        /* WATCHDOG=1 at half systemd's interval */
	bool timers_open;
	uv_signal_t sigterm, sigint, sighup;
	bool signals_open;
	int stop_requests;
};

static const char *transport_name(enum schema_transport t)
{
	return t == SCHEMA_TRANSPORT_TCP ? "tcp" : t == SCHEMA_TRANSPORT_UDP ? "udp" : "unix";
}

/*
 * A recorder that was killed, crashed or lost power left its last file
 * marked as open for writing. Say so at start, with what to do: this run
 * never touches that file (it starts a new one), and readers other than
 * SWMR's refuse it until h5clear clears the mark. The newest file of the
 * directory is the one the last run wrote (a recorder running now on the
 * same directory would be named too, which is worth a word as well).
 */
static void report_unclosed(const struct schema *schema)
{
	char newest[256] = "";
	struct timespec newest_mtime = {0, 0};
	const char *dir = schema->output.directory;
	DIR *d = opendir(dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		struct stat st;
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(newest) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (st.st_mtim.tv_sec > newest_mtime.tv_sec ||
		    (st.st_mtim.tv_sec == newest_mtime.tv_sec &&
		     st.st_mtim.tv_nsec > newest_mtime.tv_nsec)) {
			snprintf(newest, sizeof(newest), "%s", e->d_name);
			newest_mtime = st.st_mtim;
		}
	}
	closedir(d);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, newest);
	if (newest[0] && h5w_file_marked_open(path) == 1)
		log_msg(LOG_LEVEL_WARNING, "%s is still marked as open for writing: the recorder "
			"that wrote it stopped without closing it (killed, crashed, power lost), "
			"or another one writes it now. It holds what was flushed; this run starts "
			"a new file. SWMR readers (h5rec info, h5py swmr=True) read it as it is; "
			"for others, once no recorder writes it: h5clear -s %s", path, path);
}

static void log_startup(const struct schema *schema)
{
	char listeners[1024] = "", sources[512] = "";
	size_t len = 0;
	for (size_t i = 0, at = 0; i < schema->nsources && at < sizeof(sources); i++) {
		const struct schema_source *src = &schema->sources[i];
		int n = snprintf(sources + at, sizeof(sources) - at, "%s nats %s/%s",
				 i ? "," : "; pulling from", src->stream, src->consumer);
		if (n > 0)
			at += (size_t)n;
	}
	for (size_t i = 0; i < schema->nlisten && len < sizeof(listeners); i++) {
		const struct schema_listen *l = &schema->listen[i];
		int n = snprintf(listeners + len, sizeof(listeners) - len, "%s%s/%s %s",
				 i ? ", " : "",
				 schema_protocol_name(l->protocol),
				 transport_name(l->transport), l->address);
		if (n > 0)
			len += (size_t)n;
	}
	log_msg(LOG_LEVEL_NOTICE,
		"h5recd %s: schema '%s' (%s), %zu streams; writing %s/%s, flush every %lld ms%s; "
		"listening on %s%s; max_buffer %llu bytes",
		H5REC_VERSION, schema->name, schema->path ? schema->path : "-", schema->nstreams,
		schema->output.directory, schema->output.file.text,
		(long long)(schema->output.flush_ns / 1000000),
		schema->output.driver == SCHEMA_DRIVER_FAMILY ? ", family driver"
		: schema->output.swmr			      ? ", SWMR"
							      : "",
		listeners[0] ? listeners : "nothing", sources,
		(unsigned long long)schema->limits.max_buffer);
}

/*
 * SIGTERM, SIGINT and SIGHUP reach only the loop thread: every other thread
 * (the writer, the compression pool) is started while they are blocked and
 * inherits that mask. The loop handles them, through libuv, until the
 * writer has closed the files; then they are blocked for good, so that none
 * meets the default action libuv restores when its handles close.
 */
static void block_stop_signals(bool block)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* Nothing left to do on a signal: block them (a pending one is discarded at
 * exit), then close libuv's handles. */
static void close_signals(struct daemon *d)
{
	if (!d->signals_open)
		return;
	d->signals_open = false;
	block_stop_signals(true);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void close_timers(struct daemon *d)
{
	if (!d->timers_open)
		return;
	d->timers_open = false;
	uv_close((uv_handle_t *)&d->tick, NULL);
	uv_close((uv_handle_t *)&d->watchdog, NULL);
}

static void close_control(struct daemon *d)
{
	if (d->control)
		control_close(d->control);
	d->control = NULL;
	d->ingest.on_progress = NULL;
}

/* The writer has applied everything and closed the files. */
static void on_writer_finished(void *arg)
{
	struct daemon *d = arg;
	close_signals(d);
	close_timers(d);
	/* The ingest's async handles stay open until daemon_run has joined
	 * the writer, which may still be signalling them. */
	uv_stop(&d->loop);
}

/* Every connection has finished: nothing more can arrive. The loop keeps
 * running while the writer stores the rest and closes the files, so that a
 * second SIGTERM can still cut a wait for disk space short, and the
 * watchdog and the STATUS line go on. */
static void on_drained(void *arg)
{
	struct daemon *d = arg;
	if (--d->draining > 0)
		return; /* the connections, or the sources, still have data */
	log_msg(LOG_LEVEL_INFO, "all connections drained; writing the rest");
	net_close(d->net);
	d->net = NULL;
	d->ingest.net = NULL;
	d->status.net = NULL;
	close_control(d);
	d->ingest.on_writer_finished = on_writer_finished;
	d->ingest.on_writer_finished_arg = d;
	writer_finish(&d->writer);
}

static void request_roll(struct daemon *d)
{
	struct ingest_item *item = ingest_item_new(INGEST_ITEM_ROLL, 0, NULL);
	if (item)
		ingest_push(&d->ingest, item);
	log_msg(LOG_LEVEL_NOTICE, "SIGHUP: rolling to a new file");
}

static void on_signal(uv_signal_t *handle, int signum)
{
	struct daemon *d = handle->data;

	if (signum == SIGHUP) {
		if (d->stop_requests)
			log_msg(LOG_LEVEL_NOTICE, "SIGHUP while stopping: no roll");
		else
			request_roll(d);
		return;
	}
	if (d->stop_requests++ == 0) {
		uint64_t grace = d->options->grace_ms ? d->options->grace_ms : DEFAULT_GRACE_MS;
		log_msg(LOG_LEVEL_NOTICE, "%s: stopping; draining connections (grace %llu ms)",
			strsignal(signum), (unsigned long long)grace);
		sd_notify(0, "STOPPING=1");
		if (d->control)
			control_stopping(d->control);
		writer_stopping(&d->writer, false);
		/* sources stop fetching and hand over what they fetched; their
		 * messages are acked once the writer has stored them */
		d->draining = 2;
		sources_drain(&d->sources, on_drained, d);
		net_drain(d->net, grace, on_drained, d);
	} else if (d->net) {
		log_msg(LOG_LEVEL_NOTICE, "%s again: closing connections now", strsignal(signum));
		writer_stopping(&d->writer, true);
		net_close_connections(d->net);
	} else {
		log_msg(LOG_LEVEL_NOTICE, "%s again: closing the files without waiting for disk space",
			strsignal(signum));
		writer_stopping(&d->writer, true);
	}
}

static int start_signals(struct daemon *d)
{
	uv_signal_t *handles[] = {&d->sigterm, &d->sigint, &d->sighup};
	int signals[] = {SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < 3; i++) {
		uv_signal_init(&d->loop, handles[i]);
		handles[i]->data = d;
	}
	d->signals_open = true;
	for (size_t i = 0; i < 3; i++) {
		int err = uv_signal_start(handles[i], on_signal, signals[i]);
		if (err)
			return err;
	}
	/* Blocked since daemon_run began; one sent while starting is taken now. */
	block_stop_signals(false);
	return 0;
}

static void on_tick(uv_timer_t *timer)
{
	struct daemon *d = timer->data;
	char summary[512];
	status_sample(&d->status, uv_now(&d->loop));
	status_summary(&d->status, summary, sizeof(summary));
	sd_notifyf(0, "STATUS=%s", summary);
}

static void on_watchdog(uv_timer_t *timer)
{
	(void)timer;
	sd_notify(0, "WATCHDOG=1");
}

static int start_timers(struct daemon *d)
{
	uint64_t watchdog_usec = 0;
	uv_timer_init(&d->loop, &d->tick);
	uv_timer_init(&d->loop, &d->watchdog);
	d->tick.data = d->watchdog.data = d;
	d->timers_open = true;
	int err = uv_timer_start(&d->tick, on_tick, 1000, 1000);
	/* Under systemd with WatchdogSec=, ping at half the interval so one
	 * late tick is not fatal; the loop must be alive for it to run. */
	if (!err && sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec >= 2000) {
		uint64_t every_ms = watchdog_usec / 2000;
		err = uv_timer_start(&d->watchdog, on_watchdog, 0, every_ms);
		log_msg(LOG_LEVEL_INFO, "systemd watchdog: pinging every %llu ms",
			(unsigned long long)every_ms);
	}
	return err;
}

static int start_control(struct daemon *d)
{
	char path[4096], err[512];
	int rc = control_socket_path(d->schema, true, path, sizeof(path));
	if (rc) {
		log_msg(LOG_LEVEL_ERROR, "no place for the control socket: %s", strerror(-rc));
		return rc;
	}
	rc = control_start(&d->loop, path, &d->status, &d->ingest, &d->control, err, sizeof(err));
	if (rc) {
		log_msg(LOG_LEVEL_ERROR, "%s", err);
		return rc;
	}
	d->ingest.on_progress = control_progress;
	d->ingest.on_progress_arg = d->control;
	log_msg(LOG_LEVEL_INFO, "control socket %s", path);
	return 0;
}

/* Run the loop until every handle is closed, whatever state it is in. */
static void finish_loop(struct daemon *d)
{
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d->loop) == UV_EBUSY)
		log_msg(LOG_LEVEL_WARNING, "event loop closed with handles still open");
}

/*
 * The engine creates the output directory and the first file only when
 * data arrives; check now that it will be able to, so that a recorder that
 * cannot write refuses to start instead of accepting data it would lose.
 * The first existing directory on the way up must be writable.
 */
static int check_output_directory(const char *directory)
{
	char path[4096];
	struct stat st;
	int n = snprintf(path, sizeof(path), "%s", directory);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	for (;;) {
		if (stat(path, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return -ENOTDIR;
			return access(path, W_OK | X_OK) == 0 ? 0 : -errno;
		}
		if (errno != ENOENT)
			return -errno;
		char *slash = strrchr(path, '/');
		if (!slash)
			return access(".", W_OK | X_OK) == 0 ? 0 : -errno;
		if (slash == path)
			slash[1] = '\0'; /* up to "/" */
		else
			*slash = '\0';
	}
}

/* Descriptors kept beyond the connections and listeners: the output file
 * and its directory (fsync), the control socket's connections, libuv's
 * epoll, eventfd and signal pipe, the log. */
#define DESCRIPTOR_RESERVE 64

/*
 * Every connection limits.max_connections allows must leave descriptors
 * for the files: run out, and the next file cannot be created (that is
 * held, not lost, but it stops the recording). So the soft RLIMIT_NOFILE
 * is raised to the hard limit when it is below what the schema needs, and
 * a hard limit below it is refused with what to change.
 */
static int check_descriptors(const struct schema *schema)
{
	uint64_t need = schema->limits.max_connections + schema->nlisten + DESCRIPTOR_RESERVE;
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
		return 0; /* cannot tell: the accept loop copes with EMFILE */
	if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= need)
		return 0;
	if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need) {
		log_msg(LOG_LEVEL_ERROR, "limits.max_connections (%llu) needs %llu file "
			"descriptors with %zu listeners and a reserve of %d for files, but "
			"RLIMIT_NOFILE allows %llu: raise it (LimitNOFILE= in the systemd unit, "
			"ulimit -n) or lower limits.max_connections",
			(unsigned long long)schema->limits.max_connections,
			(unsigned long long)need, schema->nlisten, DESCRIPTOR_RESERVE,
			(unsigned long long)lim.rlim_max);
		return -EMFILE;
	}
	rlim_t was = lim.rlim_cur;
	lim.rlim_cur = lim.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
		log_msg(LOG_LEVEL_ERROR, "raising RLIMIT_NOFILE from %llu to %llu: %s",
			(unsigned long long)was, (unsigned long long)lim.rlim_cur, strerror(errno));
		return -errno;
	}
	log_msg(LOG_LEVEL_INFO, "RLIMIT_NOFILE raised from %llu to %llu (limits.max_connections "
		"%llu needs %llu)", (unsigned long long)was, (unsigned long long)lim.rlim_cur,
		(unsigned long long)schema->limits.max_connections, (unsigned long long)need);
	return 0;
}

static int start(struct daemon *d)
{
	struct h5w_error herr;
	struct net_error nerr;
	struct net_handler handlers[SCHEMA_NPROTOCOLS];
	/* the engine copies what it keeps before writer_start returns */
	struct h5w_options engine_options = {.run = d->options->run,
					     .shard = d->options->shard,
					     .workers = d->options->workers};
	int err = check_output_directory(d->schema->output.directory);
	if (err) {
		log_msg(LOG_LEVEL_ERROR, "output directory %s cannot be written: %s",
			d->schema->output.directory, strerror(-err));
		return err;
	}
	struct run_state resumed;
	struct h5w_attr run_attrs[RUN_MAX_ATTRS];
	struct h5w_run run;
	/* a run going on when the last recorder stopped goes on (run.h) */
	int found = run_state_load(d->schema, &resumed);
	if (found < 0)
		log_msg(LOG_LEVEL_WARNING, "the state of the last run cannot be read (%s): "
			"no run is resumed", strerror(-found));
	if (found == 1 && d->options->run) {
		log_msg(LOG_LEVEL_WARNING, "run %s was going on when the recorder stopped; "
			"--run %s replaces it", resumed.name, d->options->run);
	} else if (found == 1) {
		char started[TIME_ISO8601_MAX];
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		time_iso8601(resumed.start, 0, started, sizeof(started));
		run_to_engine(&resumed, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, run_attrs,
			      &run);
		engine_options.run_state = &run;
		log_msg(LOG_LEVEL_WARNING, "the recorder restarted during run %s (started %s): "
			"the run goes on, and its next file records run_restarted", resumed.name,
			started);
	}
	err = writer_queue_init(&d->queue, d->schema->limits.max_buffer, 0,
				ingest_queue_drained, &d->ingest);
	if (err)
		return err;
	err = ingest_init(&d->ingest, &d->loop, d->schema, &d->queue);
	if (err)
		return err;
	err = writer_start(&d->writer, d->schema, &engine_options, &d->queue, &d->ingest,
			   d->options->writer_delay_us, &herr);
	if (err) {
		log_msg(LOG_LEVEL_ERROR, "cannot start the storage engine: %s", herr.message);
		return err;
	}
	handlers[SCHEMA_PROTOCOL_LINE] = ingest_line_handler(&d->ingest);
	handlers[SCHEMA_PROTOCOL_FRAME] = ingest_frame_handler(&d->ingest);
	handlers[SCHEMA_PROTOCOL_HTTP] = ingest_http_handler(&d->ingest);
	handlers[SCHEMA_PROTOCOL_METRICS] = ingest_http_handler(&d->ingest);
	err = net_start(&d->loop, d->schema, handlers, &d->net, &nerr);
	if (err) {
		log_msg(LOG_LEVEL_ERROR, "%s", nerr.message);
		return err;
	}
	d->ingest.net = d->net;
	err = sources_start(&d->sources, &d->loop, &d->ingest);
	if (err)
		return err;
	err = status_init(&d->status, d->schema, &d->ingest, &d->writer, &d->queue,
			  uv_now(&d->loop));
	if (err)
		return err;
	d->status_ready = true;
	d->status.net = d->net;
	d->ingest.status = &d->status; /* /metrics and /health */
	err = start_control(d);
	if (!err)
		err = start_timers(d);
	if (!err)
		err = start_signals(d);
	return err;
}

int daemon_run(const struct schema *schema, const struct daemon_options *options)
{
	static struct daemon d; /* large (the ingest's arrays); one per process */
	memset(&d, 0, sizeof(d));
	d.schema = schema;
	d.options = options;
	signal(SIGPIPE, SIG_IGN); /* a vanished peer is an error code, not a death */
	signal(SIGXFSZ, SIG_IGN); /* a file size limit is EFBIG from write(), reported */

	int err = check_descriptors(schema);
	if (err)
		return err;
	err = uv_loop_init(&d.loop);
	if (err) {
		log_msg(LOG_LEVEL_ERROR, "cannot create the event loop: %s", uv_strerror(err));
		return err;
	}
	log_startup(schema);
	report_unclosed(schema);
	block_stop_signals(true); /* before start() makes the writer's threads */
	err = start(&d);
	if (err == 0) {
		sd_notify(0, "READY=1");
		log_msg(LOG_LEVEL_NOTICE, "recording");
		uv_run(&d.loop, UV_RUN_DEFAULT);
	} else if (d.net) {
		net_close(d.net);
	}
	close_signals(&d);
	close_timers(&d);
	close_control(&d);
	/* Join the writer before closing the handles it signals. */
	int close_err = writer_stop(&d.writer);
	/* after the writer: its last marks have acked what it stored; what
	 * is still held goes back to the broker */
	sources_close(&d.sources);
	ingest_close(&d.ingest);
	finish_loop(&d);
	sources_free(&d.sources);
	ingest_free(&d.ingest);
	if (d.status_ready)
		status_free(&d.status);
	writer_queue_destroy(&d.queue);
	if (err == 0 && close_err == 0)
		log_msg(LOG_LEVEL_NOTICE, "stopped cleanly");
	return err ? err : close_err;
}
