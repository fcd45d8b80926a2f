/*
 * cli_common.c - shared parts of the subcommands that talk to a recorder
 * (see cli_common.h).
 */
#include "cli_common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "h5rec %s: ", command);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 2;
}

int cli_parse_uint(const char *text, unsigned long long min, unsigned long long max,
		   unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_int64(const char *text, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || end == text || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_double(const char *text, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

int64_t cli_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cli_target_option(struct cli_target *target, int opt, const char *arg)
{
	unsigned long long number;
	switch (opt) {
	case 'c':
		target->schema_path = arg;
		return 0;
	case 't':
		target->address = arg;
		return 0;
	case CLI_OPT_TOKEN:
		target->token = arg;
		return 0;
	case CLI_OPT_WRITE_SIZE:
		if (cli_parse_uint(arg, 1, 1ull << 30, &number)) {
			fprintf(stderr, "h5rec: bad --write-size '%s'\n", arg);
			return -1;
		}
		target->write_size = (size_t)number;
		return 0;
	case CLI_OPT_TEE:
		target->tee_path = arg;
		return 0;
	case CLI_OPT_NO_ACK:
		target->no_ack = true;
		return 0;
	case CLI_OPT_PRECOMPRESS:
		target->precompress = true;
		return 0;
	case CLI_OPT_ENCODE_THREADS:
		if (cli_parse_uint(arg, 0, 256, &number)) {
			fprintf(stderr, "h5rec: bad --encode-threads '%s' (0..256)\n", arg);
			return -1;
		}
		target->encode_threads = (unsigned)number;
		target->encode_threads_set = true;
		return 0;
	case CLI_OPT_RECONNECT:
		if (cli_parse_uint(arg, 0, 1000, &number)) {
			fprintf(stderr, "h5rec: bad --reconnect '%s' (0..1000)\n", arg);
			return -1;
		}
		target->reconnects = (unsigned)number;
		return 0;
	case CLI_OPT_NATS:
		target->nats_url = arg;
		return 0;
	case CLI_OPT_SUBJECT:
		target->nats_subject = arg;
		return 0;
	}
	return 1;
}

static void listener_address(const struct schema_listen *l, char *out, size_t len)
{
	if (l->transport == SCHEMA_TRANSPORT_UNIX) {
		snprintf(out, len, "unix:%s", l->path);
		return;
	}
	bool v6 = strchr(l->host, ':') != NULL;
	snprintf(out, len, "%s:%s%s%s:%u", l->transport == SCHEMA_TRANSPORT_TCP ? "tcp" : "udp",
		 v6 ? "[" : "", l->host, v6 ? "]" : "", l->port);
}

/* The schema's first listener of the protocol, stream transports first. */
static const struct schema_listen *pick_listener(const struct schema *schema,
						 enum schema_protocol protocol)
{
	const struct schema_listen *udp = NULL;
	for (size_t i = 0; i < schema->nlisten; i++) {
		const struct schema_listen *l = &schema->listen[i];
		if (l->protocol != protocol)
			continue;
		if (l->transport != SCHEMA_TRANSPORT_UDP)
			return l;
		if (!udp)
			udp = l;
	}
	return udp;
}

/* The schema's listener of the protocol at ADDRESS (as --to gave it). */
static const struct schema_listen *listener_at(const struct schema *schema,
					       enum schema_protocol protocol, const char *address)
{
	char text[256];
	for (size_t i = 0; i < schema->nlisten; i++) {
		const struct schema_listen *l = &schema->listen[i];
		listener_address(l, text, sizeof(text));
		if (l->protocol == protocol && strcmp(text, address) == 0)
			return l;
	}
	return NULL;
}

/* --nats: a broker, not a listener; the schema (-c) only checks. */
static int resolve_nats(struct cli_target *target, const char *command)
{
	if (!target->nats_subject)
		return cli_usage_error(command, "--nats needs --subject SUBJECT");
	if (target->address)
		return cli_usage_error(command, "--nats and --to: give one");
	if (target->reconnects || target->write_size || target->token)
		return cli_usage_error(command, "--reconnect, --write-size and --token are for "
					       "recorders, not --nats (which always resends)");
	if (target->schema_path) {
		struct schema_error err;
		if (schema_load_file(target->schema_path, &target->schema, &err)) {
			fprintf(stderr, "%s\n", err.message);
			return 2;
		}
	}
	snprintf(target->address_buf, sizeof(target->address_buf), "%s (subject %s)",
		 target->nats_url, target->nats_subject);
	target->address = target->address_buf;
	return 0;
}

/* --encode-threads: 1 unless given (the tool often shares its machine with
 * the recorder, whose cores come first), 0 for one per CPU. */
static int resolve_encode_threads(struct cli_target *target, const char *command)
{
	if (!target->encode_threads_set) {
		target->encode_threads = 1;
		return 0;
	}
	if (!target->precompress)
		return cli_usage_error(command, "--encode-threads is for --precompress");
	if (!target->encode_threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		target->encode_threads = cpus < 1 ? 1 : cpus > 256 ? 256 : (unsigned)cpus;
	}
	return 0;
}

static int resolve(struct cli_target *target, enum schema_protocol protocol, const char *command)
{
	int rc = resolve_encode_threads(target, command);
	if (rc)
		return rc;
	if (target->nats_url || target->nats_subject) {
		if (!target->nats_url)
			return cli_usage_error(command, "--subject belongs to --nats URL");
		if (target->precompress)
			return cli_usage_error(command, "--precompress asks a recorder how it stores "
					       "a channel, and --nats sends to no recorder");
		rc = resolve_nats(target, command);
		if (rc || !target->tee_path)
			return rc;
		target->tee = fopen(target->tee_path, "wb");
		return target->tee ? 0 : cli_usage_error(command, "%s: %s", target->tee_path,
							 strerror(errno));
	}
	if (target->schema_path) {
		struct schema_error err;
		if (schema_load_file(target->schema_path, &target->schema, &err)) {
			fprintf(stderr, "%s\n", err.message);
			return 2;
		}
		const struct schema_listen *l = pick_listener(target->schema, protocol);
		/* --to may reach a listener under another name (a tunnel, a
		 * hostname's address): then the schema's choice is the best guess
		 * of what it expects. */
		target->listener = target->address
					   ? listener_at(target->schema, protocol, target->address)
					   : NULL;
		if (!target->listener)
			target->listener = l;
		if (!target->address) {
			if (!l)
				return cli_usage_error(command, "%s has no %s listener",
						       target->schema_path,
						       schema_protocol_name(protocol));
			listener_address(l, target->address_buf, sizeof(target->address_buf));
			target->address = target->address_buf;
			if (!target->token)
				target->token = l->token;
		}
	}
	if (!target->address)
		return cli_usage_error(command, "say where to send: --to ADDRESS or -c SCHEMA");
	if (target->tee_path) {
		target->tee = fopen(target->tee_path, "wb");
		if (!target->tee)
			return cli_usage_error(command, "%s: %s", target->tee_path, strerror(errno));
	}
	return 0;
}

int cli_target_resolve(struct cli_target *target, enum schema_protocol protocol,
		       const char *command)
{
	int rc = resolve(target, protocol, command);
	if (rc)
		cli_target_free(target);
	return rc;
}

int cli_target_connect(struct cli_target *target, const char *hello, struct sender **out,
		       char *err, size_t err_len)
{
	/* Nats-Msg-Id is NAME:N: a name of this run, so that another run
	 * within the stream's duplicate window is not taken for a resend */
	char name[200];
	if (target->nats_url) {
		char host[64] = "";
		struct timespec ts;
		gethostname(host, sizeof(host) - 1);
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(name, sizeof(name), "%s-%s-%ld-%lld", hello ? hello : "h5rec", host,
			 (long)getpid(), (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
		hello = name;
	}
	const struct sender_options options = {.address = target->address,
					       .hello = hello,
					       .token = target->token,
					       .acks = !target->no_ack,
					       .reconnects = target->reconnects,
					       .precompress = target->precompress,
					       .encode_threads = target->encode_threads,
					       .write_size = target->write_size,
					       .tee = target->tee,
					       .nats_url = target->nats_url,
					       .nats_subject = target->nats_subject};
	return sender_open(&options, out, err, err_len);
}

void cli_target_free(struct cli_target *target)
{
	if (target->tee)
		fclose(target->tee);
	target->tee = NULL;
	schema_free(target->schema);
	target->schema = NULL;
}

void cli_print_sent(FILE *out, const char *command, const struct sender *sender,
		    const struct cli_target *target)
{
	const struct sender_stats *st = sender_stats(sender);
	if (st->frames)
		fprintf(out, "h5rec %s: sent %llu frames, %llu bytes to %s", command,
			(unsigned long long)st->frames, (unsigned long long)st->bytes,
			target->address);
	else
		fprintf(out, "h5rec %s: sent %llu bytes as they are to %s", command,
			(unsigned long long)st->bytes, target->address);
	if (st->reconnects)
		fprintf(out, " (connected again %llu time%s, resending what was not "
			     "acknowledged)", (unsigned long long)st->reconnects,
			st->reconnects == 1 ? "" : "s");
	if (target->nats_url)
		fprintf(out, "; the broker acknowledged %llu message%s (recorders acknowledge them "
			     "to it once durable)", (unsigned long long)st->acked_seq,
			st->acked_seq == 1 ? "" : "s");
	else if (st->any_acked)
		fprintf(out, "; recorder reports durable up to seq %llu of %llu",
			(unsigned long long)st->acked_seq, (unsigned long long)st->last_seq);
	else if (!st->frames)
		fprintf(out, "; nothing was acknowledged (line protocol has no acknowledgement, "
			     "nor frames without the ack flag: `h5rec status` shows what the "
			     "recorder took)");
	else if (strncmp(target->address, "udp:", 4) == 0)
		fprintf(out, "; UDP has no acknowledgement: `h5rec status` shows what the "
			     "recorder took");
	fprintf(out, "\n");
}

/* "h5rec status -c SCHEMA", or without a schema the bare command. */
static void status_command(const struct cli_target *target, char *out, size_t len)
{
	snprintf(out, len, "h5rec status%s%s", target->schema_path ? " -c " : "",
		 target->schema_path ? target->schema_path : "");
}

void cli_print_lines_sent(FILE *out, const char *command, unsigned long long lines,
			  unsigned long long values, const struct sender *sender,
			  const struct cli_target *target)
{
	char status[300];
	status_command(target, status, sizeof(status));
	fprintf(out,
		"h5rec %s: sent %llu lines (%llu values), %llu bytes to %s\n"
		"h5rec %s: line protocol has no acknowledgement: `%s` shows what the recorder "
		"took (lines) and rejected (bad_lines, bad_placeholders, unknown_streams, "
		"unknown_fields)\n",
		command, lines, values, (unsigned long long)sender_stats(sender)->bytes,
		target->address, command, status);
}

void cli_report_failure(const char *command, const struct cli_target *target,
			const struct sender *sender, int rc, const char *err, const char *causes)
{
	char status[300];
	fprintf(stderr, "h5rec %s: %s\n", command, err && err[0] ? err : strerror(-rc));
	if (!sender || !sender_stats(sender)->closed)
		return;
	status_command(target, status, sizeof(status));
	fprintf(stderr,
		"h5rec %s: the recorder refused the data: it closes the connection of a sender "
		"whose frame it cannot take, and logs why. Likely causes:\n%s"
		"The recorder's log says which; `%s` counts them (unknown_streams, "
		"unknown_channels, bad_data, bad_placeholders, auth_failures, group_limit).\n",
		command, causes, status);
}
