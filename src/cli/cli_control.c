/*
 * cli_control.c - `h5rec status`, `h5rec flush` and `h5rec roll`: one
 * request on a running recorder's control socket (see control.h), found
 * from its schema (-c) or given (--socket).
 *
 * An answer is believed only from a socket nobody else could have put
 * there (control_check_socket), and only from a listener running as the
 * socket's owner, root or this user (SO_PEERCRED), which also closes the
 * window between the check and the connect.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "control.h"
#include "schema.h"

static void usage(FILE *out, const char *command)
{
	fprintf(out,
		"usage: h5rec %s [-c SCHEMA | --socket PATH]%s\n", command,
		strcmp(command, "status") == 0 ? " [--groups] [--json]" : "");
	if (strcmp(command, "status") == 0)
		fprintf(out, "Show what a running h5recd is doing: uptime, listeners, connections,\n"
			     "per-stream rates, totals, errors by class, the open file, buffer fill,\n"
			     "last flush and last error.\n");
	else if (strcmp(command, "flush") == 0)
		fprintf(out, "Make everything a running h5recd has received durable now; returns\n"
			     "once it is flushed and fsync'd.\n");
	else
		fprintf(out, "Close a running h5recd's current file (exact extents, final\n"
			     "attributes); the next data starts a new file. Returns once closed.\n");
	fprintf(out,
		"\n"
		"  -c, --config SCHEMA   find the recorder's socket from its schema\n"
		"  -s, --socket PATH     the control socket itself\n"
		"%s"
		"  -h, --help            this text\n"
		"\n"
		"Without -c or --socket: the one recorder whose socket is in /run/h5rec,\n"
		"$XDG_RUNTIME_DIR (h5rec-NAME.sock) or /tmp/h5rec-UID.\n",
		strcmp(command, "status") == 0
			? "  -g, --groups          every group (station, board) instead: when its\n"
			  "                        last line or frame arrived, the longest silent\n"
			  "                        first, and how many\n"
			  "  -j, --json            one JSON object\n"
			: "");
}

void cli_status_usage(FILE *out)
{
	usage(out, "status");
}

void cli_flush_usage(FILE *out)
{
	usage(out, "flush");
}

void cli_roll_usage(FILE *out)
{
	usage(out, "roll");
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect to PATH if it may be believed; the socket, or -1 once said why. */
static int connect_checked(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char why[1024];
	uid_t owner;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "h5rec: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	int rc = control_check_socket(path, &owner, why, sizeof(why));
	if (rc == -EPERM) {
		fprintf(stderr, "h5rec: not talking to %s: %s\n", path, why);
		return -1;
	}
	if (rc) {
		fprintf(stderr, "h5rec: no recorder at %s: %s\n", path, strerror(-rc));
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "h5rec: no recorder at %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct ucred peer = {.uid = (uid_t)-1};
	socklen_t peer_len = sizeof(peer);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0 ||
	    (peer.uid != owner && peer.uid != 0 && peer.uid != geteuid())) {
		fprintf(stderr, "h5rec: not talking to %s: it is served by uid %d, not by its "
				"owner (uid %u), root or you\n",
			path, (int)peer.uid, (unsigned)owner);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The control sockets of running recorders in the places a recorder binds
 * without control.socket (control_socket_path): sockets that accept a
 * connection. Fills up to CAP paths; returns how many were found.
 */
static size_t find_recorders(char (*found)[4096], size_t cap)
{
	char dirs[3][4096];
	size_t ndirs = 0, n = 0;
	snprintf(dirs[ndirs++], sizeof(dirs[0]), "/run/h5rec");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && xdg[0] == '/')
		snprintf(dirs[ndirs++], sizeof(dirs[0]), "%s", xdg);
	snprintf(dirs[ndirs++], sizeof(dirs[0]), "/tmp/h5rec-%u", (unsigned)getuid());
	for (size_t i = 0; i < ndirs; i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			continue;
		bool xdg_dir = xdg && i == 1;
		for (struct dirent *e; (e = readdir(d));) {
			size_t len = strlen(e->d_name);
			if (len < 6 || strcmp(e->d_name + len - 5, ".sock") ||
			    (xdg_dir && strncmp(e->d_name, "h5rec-", 6)))
				continue;
			char path[4096];
			struct sockaddr_un sun = {.sun_family = AF_UNIX};
			struct stat st;
			int w = snprintf(path, sizeof(path), "%s/%s", dirs[i], e->d_name);
			if (w < 0 || (size_t)w >= sizeof(sun.sun_path) || lstat(path, &st) ||
			    !S_ISSOCK(st.st_mode))
				continue;
			strcpy(sun.sun_path, path);
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			bool live = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
			if (fd >= 0)
				close(fd);
			if (live && n < cap)
				snprintf(found[n], sizeof(found[0]), "%s", path);
			n += live;
		}
		closedir(d);
	}
	return n;
}

/* Send one request and copy the reply to stdout; 0 if it is no error. */
static int request(const char *path, const char *line, int timeout_ms)
{
	int fd = connect_checked(path);
	if (fd < 0)
		return 1;
	size_t len = strlen(line);
	if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, "h5rec: %s: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	char buf[65536];
	bool error = false, first = true;
	int64_t deadline = mono_ms() + timeout_ms;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			fprintf(stderr, "h5rec: no complete reply from %s within %d s\n", path,
				timeout_ms / 1000);
			close(fd);
			return 1;
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		if (first)
			error = n >= 6 && memcmp(buf, "error:", 6) == 0;
		first = false;
		fwrite(buf, 1, (size_t)n, error ? stderr : stdout);
	}
	close(fd);
	if (first) {
		fprintf(stderr, "h5rec: the recorder closed the connection without a reply\n");
		return 1;
	}
	return error ? 1 : 0;
}

/*
 * The socket to ask: --socket PATH, the one found from -c SCHEMA, or the
 * one recorder running with its socket in a default place. PATH (4096)
 * holds it. Returns 0, or the exit status after saying why.
 */
static int resolve_socket(const char *command, const char *config, const char **socket_path,
			  char *path)
{
	if (!config && !*socket_path) {
		char found[8][4096];
		size_t n = find_recorders(found, 8);
		if (n == 0) {
			fprintf(stderr, "h5rec %s: no running recorder found in /run/h5rec, "
				"$XDG_RUNTIME_DIR or /tmp/h5rec-%u; give -c SCHEMA or --socket PATH\n",
				command, (unsigned)getuid());
			return 1;
		}
		if (n > 1) {
			fprintf(stderr, "h5rec %s: %zu recorders are running; name one with "
				"-c SCHEMA or --socket PATH:\n", command, n);
			for (size_t i = 0; i < n && i < 8; i++)
				fprintf(stderr, "  --socket %s\n", found[i]);
			return 2;
		}
		snprintf(path, 4096, "%s", found[0]);
		*socket_path = path;
	}
	if (config) {
		struct schema *schema;
		struct schema_error err;
		if (schema_load_file(config, &schema, &err)) {
			fprintf(stderr, "%s\n", err.message);
			return 1;
		}
		int rc = control_socket_path(schema, false, path, 4096);
		schema_free(schema);
		if (rc == -ENAMETOOLONG) {
			fprintf(stderr, "h5rec %s: control socket path too long\n", command);
			return 1;
		}
		*socket_path = path; /* -ENOENT: connecting will say so */
	}
	return 0;
}

static int run(int argc, char **argv, const char *command)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"groups", no_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL, *socket_path = NULL;
	bool json = false, groups = false, is_status = strcmp(command, "status") == 0;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:s:jgh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'j':
			if (!is_status) {
				usage(stderr, command);
				return 2;
			}
			json = true;
			break;
		case 'g':
			if (!is_status) {
				usage(stderr, command);
				return 2;
			}
			groups = true;
			break;
		case 'h':
			usage(stdout, command);
			return 0;
		default:
			usage(stderr, command);
			return 2;
		}
	}
	if (optind != argc || (config && socket_path)) {
		fprintf(stderr, "h5rec %s: give either -c SCHEMA or --socket PATH\n", command);
		return 2;
	}
	char path[4096];
	int rc = resolve_socket(command, config, &socket_path, path);
	if (rc)
		return rc;
	const char *line = is_status ? (groups ? (json ? "status groups json\n" : "status groups\n")
					       : (json ? "status json\n" : "status\n"))
				     : strcmp(command, "flush") == 0 ? "flush\n" : "roll\n";
	/* flush and roll wait behind queued data: give them time. */
	return request(socket_path, line, is_status ? 10000 : 120000);
}

int cli_status(int argc, char **argv)
{
	return run(argc, argv, "status");
}

int cli_flush(int argc, char **argv)
{
	return run(argc, argv, "flush");
}

int cli_roll(int argc, char **argv)
{
	return run(argc, argv, "roll");
}

void cli_run_usage(FILE *out)
{
	fprintf(out,
		"usage: h5rec run start NAME [--attr KEY=VALUE]... [-c SCHEMA | --socket PATH]\n"
		"       h5rec run stop [-c SCHEMA | --socket PATH]\n"
		"Start a run on a running h5recd: it closes the current file, and every file\n"
		"from the next on is the run's ({run} in file names; root attributes run,\n"
		"run_start, run_end and the given ones), until 'run stop' writes\n"
		"run_end into the run's last file and closes it. A restart during a run goes\n"
		"on with it. NAME: 1-64 of [A-Za-z0-9_.-].\n"
		"\n"
		"  -a, --attr KEY=VALUE  a root attribute of every file of the run (at most\n"
		"                        16; integers and numbers are stored as such)\n"
		"  -c, --config SCHEMA   find the recorder's socket from its schema\n"
		"  -s, --socket PATH     the control socket itself\n"
		"  -h, --help            this text\n");
}

int cli_run(int argc, char **argv)
{
	static const struct option options[] = {
		{"attr", required_argument, NULL, 'a'},
		{"config", required_argument, NULL, 'c'},
		{"socket", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL, *socket_path = NULL;
	char line[CONTROL_MAX_REQUEST];
	size_t len = 0;
	int opt;
	bool attrs = false;

	line[0] = '\0';
	while ((opt = getopt_long(argc, argv, "a:c:s:h", options, NULL)) != -1) {
		switch (opt) {
		case 'a':
			if (!strchr(optarg, '=') || strpbrk(optarg, "\t\n")) {
				fprintf(stderr, "h5rec run: --attr %s: expected KEY=VALUE (no tab or "
					"newline)\n", optarg);
				return 2;
			}
			if (len < sizeof(line))
				len += (size_t)snprintf(line + len, sizeof(line) - len, "\t%s", optarg);
			attrs = true;
			break;
		case 'c':
			config = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'h':
			cli_run_usage(stdout);
			return 0;
		default:
			cli_run_usage(stderr);
			return 2;
		}
	}
	const char *rest = optind < argc ? argv[optind] : NULL;
	bool start = rest && strcmp(rest, "start") == 0 && optind + 2 == argc;
	bool stop = rest && strcmp(rest, "stop") == 0 && optind + 1 == argc && !attrs;
	if ((!start && !stop) || (config && socket_path)) {
		cli_run_usage(stderr);
		return 2;
	}
	char request_line[CONTROL_MAX_REQUEST + 80];
	int n = start ? snprintf(request_line, sizeof(request_line), "run start %s%s\n",
				 argv[optind + 1], line)
		      : snprintf(request_line, sizeof(request_line), "run stop\n");
	if (n < 0 || (size_t)n >= CONTROL_MAX_REQUEST || len >= sizeof(line) ||
	    strpbrk(start ? argv[optind + 1] : "", "\t\n")) {
		fprintf(stderr, "h5rec run: the request is too long or the name has a tab or "
			"newline\n");
		return 2;
	}
	char path[4096];
	int rc = resolve_socket("run", config, &socket_path, path);
	if (rc)
		return rc;
	/* a run rolls behind everything queued: give it time */
	return request(socket_path, request_line, 120000);
}
