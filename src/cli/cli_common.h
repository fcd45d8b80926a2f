/*
 * cli_common.h - what the h5rec subcommands that talk to a recorder share:
 * finding it (an address, or the schema's listener), the options for that,
 * number parsing and the summary line.
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
};

/* getopt_long entries for struct cli_target (short options c: and t:). */
#define CLI_TARGET_OPTIONS                                                   \
	{"config", required_argument, NULL, 'c'},                            \
	{"to", required_argument, NULL, 't'},                                \
	{"token", required_argument, NULL, CLI_OPT_TOKEN},                   \
	{"write-size", required_argument, NULL, CLI_OPT_WRITE_SIZE},         \
	{"tee", required_argument, NULL, CLI_OPT_TEE},                       \
	{"no-ack", no_argument, NULL, CLI_OPT_NO_ACK}

struct cli_target {
	const char *schema_path;
	struct schema *schema;  /* loaded by cli_target_resolve with -c */
	const char *address;    /* --to, or from the schema */
	char address_buf[256];
	const char *token;
	bool no_ack;
	size_t write_size;
	const char *tee_path;
	FILE *tee;
};

/* 0: the option was one of ours; 1: not ours; -1: bad value (reported). */
int cli_target_option(struct cli_target *target, int opt, const char *arg);

/* Load the schema (-c), pick its first listener of `protocol` (stream
 * transports first) unless --to was given, open the tee file.
 * Returns 0, or 2 after printing a usage error. */
int cli_target_resolve(struct cli_target *target, enum schema_protocol protocol,
		       const char *command);

int cli_target_connect(struct cli_target *target, struct sender **out, char *err,
		       size_t err_len);
void cli_target_free(struct cli_target *target);

/* "h5rec send: sent 3 frames (1.2 MB) to tcp:…; durable up to seq 3" */
void cli_print_sent(FILE *out, const char *command, const struct sender *sender,
		    const struct cli_target *target);

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
