/*
 * h5recd.c - the recorder daemon's entry point: options, schema, run.
 *
 * It stays in the foreground and logs to stderr; under systemd, journald
 * takes the log and sd_notify reports readiness (see daemon.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "daemon.h"
#include "h5w.h"
#include "log.h"
#include "schema.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: h5recd -c SCHEMA [options]\n"
		"Record the streams a schema describes into HDF5 files.\n"
		"\n"
		"  -c, --config SCHEMA     the recorder schema (YAML); required\n"
		"  -l, --log-level LEVEL   error, warning, notice, info (default) or debug\n"
		"  -g, --grace MS          on SIGTERM, wait up to MS milliseconds of quiet per\n"
		"                          connection before closing it (default 2000)\n"
		"  -r, --run NAME          run name: fills {run} in file names and the root\n"
		"                          attribute 'run'\n"
		"  -w, --workers N         compression threads (default: one per CPU)\n"
		"      --shard NAME        fills {shard} in file names: recorders that share an\n"
		"                          output directory each give their own\n"
		"      --test-writer-delay-us N  testing only: slow the writer by N us per item,\n"
		"                          to exercise back-pressure\n"
		"  -V, --version           print the version\n"
		"  -h, --help              this text\n"
		"\n"
		"Signals: TERM/INT stop after draining senders (a second one stops at once,\n"
		"still writing what was received); HUP starts a new file.\n");
}

static int parse_uint(const char *text, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"log-level", required_argument, NULL, 'l'},
		{"grace", required_argument, NULL, 'g'},
		{"run", required_argument, NULL, 'r'},
		{"workers", required_argument, NULL, 'w'},
		{"shard", required_argument, NULL, 'S'},
		{"test-writer-delay-us", required_argument, NULL, 'D'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct daemon_options run = {0};
	const char *config = NULL;
	unsigned long long number;
	enum log_level level;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:l:g:r:w:Vh", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'l':
			if (log_level_from_name(optarg, &level)) {
				fprintf(stderr, "h5recd: unknown log level '%s'\n", optarg);
				return 2;
			}
			log_set_level(level);
			break;
		case 'g':
			if (parse_uint(optarg, 3600000, &number)) {
				fprintf(stderr, "h5recd: --grace takes milliseconds, got '%s'\n", optarg);
				return 2;
			}
			run.grace_ms = number ? number : 1;
			break;
		case 'r':
			if (!schema_placeholder_value_valid(optarg, strlen(optarg))) {
				fprintf(stderr, "h5recd: --run must be 1-64 of [A-Za-z0-9_.-]\n");
				return 2;
			}
			run.run = optarg;
			break;
		case 'S':
			if (!schema_placeholder_value_valid(optarg, strlen(optarg))) {
				fprintf(stderr, "h5recd: --shard must be 1-64 of [A-Za-z0-9_.-]\n");
				return 2;
			}
			run.shard = optarg;
			break;
		case 'w':
			if (parse_uint(optarg, 256, &number)) {
				fprintf(stderr, "h5recd: --workers takes 0..256, got '%s'\n", optarg);
				return 2;
			}
			run.workers = (unsigned)number;
			break;
		case 'D':
			if (parse_uint(optarg, 10000000, &number)) {
				fprintf(stderr, "h5recd: bad --test-writer-delay-us '%s'\n", optarg);
				return 2;
			}
			run.writer_delay_us = (unsigned)number;
			break;
		case 'V':
			printf("h5recd %s\n", H5REC_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config || optind != argc) {
		usage(stderr);
		return 2;
	}

	struct schema *schema = NULL;
	struct schema_error err;
	if (schema_load_file(config, &schema, &err) < 0) {
		fprintf(stderr, "%s\n", err.message);
		return 2;
	}
	/* recorders sharing a directory would write the same names */
	if (schema_template_has(&schema->output.file, "shard") && !run.shard) {
		fprintf(stderr, "h5recd: %s: output.file uses {shard}: give --shard NAME, each "
			"recorder that shares the directory its own\n", config);
		schema_free(schema);
		return 2;
	}
	int rc = daemon_run(schema, &run);
	schema_free(schema);
	/*
	 * After a clean stop in which HDF5 closed every file, the process
	 * ends as any other (exit handlers: HDF5's own, LeakSanitizer's in a
	 * sanitizer build, gcov's). After a failed stop, or when HDF5 could
	 * not close a file (one abandoned or ended after a write error, which
	 * a clean stop may follow), leave without exit handlers: HDF5's would
	 * try to close those files again and crashes on them. A sanitizer
	 * build still checks for leaks first.
	 */
	if (rc == 0 && !h5w_unclosed_files())
		exit(0);
	fflush(NULL);
#ifdef __SANITIZE_ADDRESS__
	__lsan_do_leak_check();
#endif
	_exit(rc == 0 ? 0 : 1);
}
