/*
 * cli_common.h - what the h5rec subcommands that talk to a recorder share:
 * finding it (an address, or the schema's listener), the options for that,
 * number parsing, the summary line and what to say when the recorder
 * refused the data.
 *
 * A sender learns what the recorder kept only from ACKs: frames over TCP
 * and Unix sockets have them, UDP and line protocol have none. The
 * summaries say which case applies rather than print a count that means
 * nothing (0 frames for lines), and point to `h5rec status` where only the
 * recorder's counters can tell.
 */
#ifndef H5REC_CLI_COMMON_H
#define H5REC_CLI_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "schema.h"
#include "sender.h"

enum {
	CLI_OPT_TOKEN = 300,
	CLI_OPT_WRITE_SIZE,
	CLI_OPT_TEE,
	CLI_OPT_NO_ACK,
	CLI_OPT_RECONNECT,
	CLI_OPT_PRECOMPRESS,
	CLI_OPT_ENCODE_THREADS,
	CLI_OPT_NATS,
	CLI_OPT_SUBJECT,
};

/* getopt_long entries for struct cli_target (short options c: and t:). */
#define CLI_TARGET_OPTIONS                                                   \
	{"config", required_argument, NULL, 'c'},                            \
	{"to", required_argument, NULL, 't'},                                \
	{"token", required_argument, NULL, CLI_OPT_TOKEN},                   \
	{"write-size", required_argument, NULL, CLI_OPT_WRITE_SIZE},         \
	{"tee", required_argument, NULL, CLI_OPT_TEE},                       \
	{"no-ack", no_argument, NULL, CLI_OPT_NO_ACK},                       \
	{"reconnect", required_argument, NULL, CLI_OPT_RECONNECT},            \
	{"precompress", no_argument, NULL, CLI_OPT_PRECOMPRESS},             \
	{"encode-threads", required_argument, NULL, CLI_OPT_ENCODE_THREADS},  \
	{"nats", required_argument, NULL, CLI_OPT_NATS},                     \
	{"subject", required_argument, NULL, CLI_OPT_SUBJECT}

struct cli_target {
	const char *schema_path;
	struct schema *schema;  /* loaded by cli_target_resolve with -c */
	const char *address;    /* --to, or from the schema */
	/* With -c: the listener at --to, else the schema's first of the
	 * protocol (whose precision the line senders use); NULL without one. */
	const struct schema_listen *listener;
	char address_buf[256];
	const char *token;
	bool no_ack;
	unsigned reconnects;    /* --reconnect: tries without progress; 0: never */
	bool precompress;       /* --precompress: encode waveforms as the recorder stores them */
	unsigned encode_threads; /* --encode-threads: 0 one per CPU; unset: 1 */
	bool encode_threads_set;
	size_t write_size;
	const char *tee_path;
	FILE *tee;
	/* --nats URLS --subject S: publish to NATS JetStream instead */
	const char *nats_url;
	const char *nats_subject;
};

/* 0: the option was one of ours; 1: not ours; -1: bad value (reported). */
int cli_target_option(struct cli_target *target, int opt, const char *arg);

/* Load the schema (-c), pick its first listener of `protocol` (stream
 * transports first) unless --to was given, open the tee file.
 * Returns 0, or 2 after printing a usage error (and freeing what it took). */
int cli_target_resolve(struct cli_target *target, enum schema_protocol protocol,
		       const char *command);

/* Connect to the target; hello: say HELLO first under this sender name
 * (with the target's token), NULL: no HELLO. */
int cli_target_connect(struct cli_target *target, const char *hello, struct sender **out,
		       char *err, size_t err_len);
void cli_target_free(struct cli_target *target);

/* "h5rec send: sent 3 frames, 1200 bytes to …; recorder reports durable up
 * to seq 3 of 3", or for bytes sent as they are (no frames counted) the
 * bytes and whatever was acknowledged. */
void cli_print_sent(FILE *out, const char *command, const struct sender *sender,
		    const struct cli_target *target);

/* "h5rec simulate: sent 20 lines (80 values), 1834 bytes to …", and that
 * line protocol has no acknowledgement: where to look instead. */
void cli_print_lines_sent(FILE *out, const char *command, unsigned long long lines,
			  unsigned long long values, const struct sender *sender,
			  const struct cli_target *target);

/*
 * Report a failed send on stderr: err (or strerror(-rc)), and when the
 * recorder closed the connection early, that it refused the data, the
 * likely causes (causes: lines of text, each starting "  - ") and where
 * the reason is (its log, `h5rec status`).
 */
void cli_report_failure(const char *command, const struct cli_target *target,
			const struct sender *sender, int rc, const char *err, const char *causes);

/* Print "h5rec COMMAND: message" to stderr; returns 2 (usage error). */
int cli_usage_error(const char *command, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int cli_parse_uint(const char *text, unsigned long long min, unsigned long long max,
		   unsigned long long *out);
int cli_parse_int64(const char *text, int64_t *out);
int cli_parse_double(const char *text, double *out);

/* Wall-clock time, ns since 1970. */
int64_t cli_now_ns(void);

#endif
