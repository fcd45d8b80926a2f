/*
 * cli_send.c - `h5rec send`: samples from files or stdin to a recorder as
 * DATA frames, an event as an EVENT frame with its waveforms, or a
 * pre-encoded byte stream (frames or lines) sent as it is; with ACKs.
 *
 * The recorder refuses a frame it cannot take by closing the connection,
 * and says why only in its log (SPEC §3.1). So with the schema at hand
 * (-c) everything the recorder would check of what we are about to send is
 * checked here first, with the recorder's own router: the key, the
 * channel, the layout, whole waveforms for records, the event's fields.
 * What is left (another schema running, a token) is explained when the
 * connection is closed early.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "line.h"
#include "router.h"
#include "sender.h"

void cli_send_usage(FILE *out)
{
	fprintf(out,
		"usage: h5rec send [options] -k KEY -d TYPE [FILE|-]\n"
		"       h5rec send [options] -k KEY [-k KEY...] -d TYPE FILE [FILE...]\n"
		"       h5rec send [options] --event KEY --event-id N --fields FIELDS\n"
		"                  [-k KEY -d TYPE FILE...]\n"
		"       h5rec send [options] --raw [FILE|-]\n"
		"Send samples (raw binary, native little-endian) as DATA frames, or an event,\n"
		"and wait until the recorder acknowledges them as durable.\n"
		"\n"
		"  -c, --config SCHEMA      take the address (and token) from the schema's first\n"
		"                           frame listener, and check keys, channels, waveform\n"
		"                           length and event fields before sending\n"
		"  -t, --to ADDRESS         tcp:HOST:PORT, udp:HOST:PORT or unix:PATH\n"
		"  -k, --key KEY            frame key, e.g. dust/first_detector or b1/adc0; give\n"
		"                           several with as many FILEs, in the same order\n"
		"  -d, --dtype TYPE         sample type of the FILEs: int8..uint64, float32, float64\n"
		"  -n, --samples-per-frame N  samples per DATA frame (default 65536; with -c, a\n"
		"                           records stream's `samples`: one waveform per frame)\n"
		"      --t0 NS              time of the first sample, ns since 1970 (default now)\n"
		"      --dt SECONDS         sample interval, advances t0 from frame to frame\n"
		"  -e, --event-id N         event id of every frame (records layout, or a stream\n"
		"                           with events: true)\n"
		"      --event KEY          first send an EVENT frame with this key (the records\n"
		"                           stream's name, e.g. dust; a stream group's key without\n"
		"                           the channel, e.g. board1), --event-id and --t0\n"
		"      --fields FIELDS      the event's fields, e.g. 'mass=3.8e-17,velocity=9646.3'\n"
		"      --name NAME          sender name in the HELLO frame (default h5rec-send)\n"
		"      --token TOKEN        the listener's token\n"
		"      --raw                send FILE's bytes as they are (encoded frames or lines)\n"
		"      --write-size N       split writes into pieces of N bytes (testing)\n"
		"      --tee FILE           also write every byte sent to FILE\n"
		"      --no-ack             do not request or wait for ACKs\n"
		"      --reconnect N        when the connection is lost, connect again and resend\n"
		"                           what was not acknowledged; give up after N tries in a\n"
		"                           row without progress (default 0: report it and stop)\n"
		"      --precompress        encode each frame's samples (one waveform) with the\n"
		"                           channel's filter pipeline here; the recorder stores\n"
		"                           the chunk as it is\n"
		"      --encode-threads N   with --precompress: encode on N threads, frames still\n"
		"                           sent in order (default 1; 0: one per CPU)\n"
		"      --nats URLS          publish to NATS JetStream instead of a recorder\n"
		"                           (nats://HOST:PORT, several comma-separated): a message\n"
		"                           per record (an event with its frames, or a frame) or\n"
		"                           batch of lines, resent until the broker acknowledges it\n"
		"      --subject SUBJECT    the subject to publish to, with --nats\n"
		"  -h, --help               this text\n");
}

enum { OPT_T0 = 256, OPT_DT, OPT_NAME, OPT_RAW, OPT_EVENT, OPT_FIELDS };

/* Keys one command sends; each is a file of samples. */
#define SEND_MAX_INPUTS 64

struct send_input {
	const char *key;
	const char *path;     /* "-": stdin */
	size_t per_frame;     /* samples per DATA frame */
	bool whole;           /* a records stream: every frame one whole waveform */
};

struct send_args {
	struct cli_target target;
	struct send_input inputs[SEND_MAX_INPUTS];
	size_t ninputs;
	enum dtype dtype;
	size_t per_frame;
	bool per_frame_set;
	int64_t t0;
	double dt;
	uint64_t event_id;
	const char *event_key;
	const char *fields;
	const char *name;
	bool raw;
	const char *raw_input;
	char err[512];
};

/* ---- sending ---------------------------------------------------------------- */

/* Fill buf with up to `want` bytes; short only at the end of the input. */
static size_t read_frame(FILE *in, uint8_t *buf, size_t want)
{
	size_t filled = 0;
	while (filled < want && !feof(in) && !ferror(in))
		filled += fread(buf + filled, 1, want - filled, in);
	return filled;
}

static int send_samples(struct sender *sender, FILE *in, const struct send_input *input,
			struct send_args *a)
{
	size_t size = dtype_size(a->dtype), want = input->per_frame * size;
	uint8_t *buf = malloc(want);
	int64_t t0 = a->t0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (!rc) {
		size_t filled = read_frame(in, buf, want), samples = filled / size;
		if (ferror(in)) {
			rc = -EIO;
			snprintf(a->err, sizeof(a->err), "reading %s: %s", input->path, strerror(errno));
		} else if (filled % size) {
			rc = -EINVAL;
			snprintf(a->err, sizeof(a->err), "%s ends inside a sample (%zu stray bytes)",
				 input->path, filled % size);
		} else if (input->whole && samples && samples < input->per_frame) {
			/* The recorder would refuse it and close the connection. */
			rc = -EINVAL;
			snprintf(a->err, sizeof(a->err),
				 "%s ends with part of a waveform (%zu of %zu samples): not sent",
				 input->path, samples, input->per_frame);
		} else if (samples) {
			rc = sender_data(sender, input->key, a->dtype, t0, a->event_id, buf, samples);
			t0 += (int64_t)((double)samples * a->dt * 1e9);
		}
		if (filled < want)
			break;
	}
	free(buf);
	return rc;
}

static int send_input(struct sender *sender, const struct send_input *input, struct send_args *a)
{
	FILE *in = strcmp(input->path, "-") == 0 ? stdin : fopen(input->path, "rb");
	if (!in) {
		int code = errno;
		snprintf(a->err, sizeof(a->err), "%s: %s", input->path, strerror(code));
		return -code;
	}
	int rc = send_samples(sender, in, input, a);
	if (in != stdin)
		fclose(in);
	return rc;
}

static int send_raw(struct sender *sender, struct send_args *a)
{
	FILE *in = strcmp(a->raw_input, "-") == 0 ? stdin : fopen(a->raw_input, "rb");
	char buf[65536];
	size_t n;
	int rc = 0;

	if (!in) {
		int code = errno;
		snprintf(a->err, sizeof(a->err), "%s: %s", a->raw_input, strerror(code));
		return -code;
	}
	while (!rc && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		rc = sender_raw(sender, buf, n);
	if (!rc && ferror(in))
		rc = -EIO;
	if (in != stdin)
		fclose(in);
	return rc;
}

static int send_all(struct sender *sender, struct send_args *a)
{
	int rc = 0;
	if (a->raw)
		return send_raw(sender, a);
	if (a->event_key)
		rc = sender_event(sender, a->event_key, a->event_id, a->t0, a->fields);
	for (size_t i = 0; i < a->ninputs && !rc; i++)
		rc = send_input(sender, &a->inputs[i], a);
	return rc;
}

/* ---- checks before sending ------------------------------------------------------ */

/* Say why the schema rules out what we were asked to send; the exit status. */
static int refuse(const struct send_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int refuse(const struct send_args *a, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "h5rec send: %s: ", a->target.schema_path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; nothing sent\n");
	return 1;
}

/* A records stream takes one whole waveform per frame: use its length, and
 * refuse a file that does not hold whole waveforms. */
static int check_waveforms(struct send_args *a, struct send_input *input,
			   const struct schema_stream *stream)
{
	size_t samples = (size_t)stream->samples;
	struct stat st;

	if (a->per_frame_set && a->per_frame != samples)
		return refuse(a, "stream '%s' records whole waveforms of %zu samples, one per "
			      "frame: the recorder would refuse --samples-per-frame %zu (with -c, "
			      "leave it out)", stream->name, samples, a->per_frame);
	input->per_frame = samples;
	input->whole = true;
	if (strcmp(input->path, "-") != 0 && stat(input->path, &st) == 0 && S_ISREG(st.st_mode) &&
	    (size_t)st.st_size % (samples * dtype_size(a->dtype)) != 0)
		return refuse(a, "%s holds %.1f waveforms of %zu %s samples (stream '%s'): "
			      "not a whole number", input->path,
			      (double)st.st_size / (double)(samples * dtype_size(a->dtype)), samples,
			      dtype_name(a->dtype), stream->name);
	return 0;
}

static int check_key(struct send_args *a, struct send_input *input)
{
	struct route route;
	char reason[256];

	if (router_data_key(a->target.schema, input->key, &route, reason, sizeof(reason)) != ROUTER_OK)
		return refuse(a, "%s", reason);
	const struct schema_stream *stream = route.stream;
	const struct schema_channel *channel = &stream->channels[route.channel];
	if (stream->layout == SCHEMA_LAYOUT_TABLE)
		return refuse(a, "key '%s': stream '%s' has the table layout, which takes lines, "
			      "not DATA frames", input->key, stream->name);
	if (channel->dtype == DTYPE_STRING)
		return refuse(a, "key '%s': channel '%s' holds strings", input->key, channel->name);
	if (stream->layout == SCHEMA_LAYOUT_RECORDS)
		return check_waveforms(a, input, stream);
	return 0;
}

/* Do the event's fields fit the stream's event_fields as the recorder
 * checks them (ingest_fields.c)? An undeclared field is dropped by the
 * recorder, or refuses the event with `unknown_fields: error`. */
static int check_fields(struct send_args *a, const struct schema_stream *stream,
			const struct line_point *point)
{
	for (size_t i = 0; i < point->nfields; i++) {
		const struct line_field *field = &point->fields[i];
		const struct schema_event_field *declared = NULL;
		for (size_t f = 0; f < stream->nevent_fields && !declared; f++)
			if (strcmp(stream->event_fields[f].name, field->key) == 0)
				declared = &stream->event_fields[f];
		if (!declared && stream->unknown_fields == SCHEMA_UNKNOWN_ERROR)
			return refuse(a, "stream '%s' has no event field '%s' (unknown_fields: error)",
				      stream->name, field->key);
		if (!declared)
			fprintf(stderr, "h5rec send: warning: stream '%s' has no event field '%s': "
					"the recorder drops it\n", stream->name, field->key);
		else if ((field->type == LINE_VALUE_STRING) != (declared->dtype == DTYPE_STRING))
			return refuse(a, "event field '%s' is %s, stream '%s' declares %s",
				      field->key, field->type == LINE_VALUE_STRING ? "a string"
										    : "a number",
				      stream->name, dtype_name(declared->dtype));
	}
	return 0;
}

/* Parse --fields as the recorder will; with a stream, check them too. */
static int check_event(struct send_args *a, const struct schema_stream *stream)
{
	const struct line_options options = {.max_line = 65536, .precision = LINE_PRECISION_NS};
	struct line_decoder *decoder = line_decoder_new(&options, NULL, NULL, NULL);
	struct line_point point;
	struct line_error err;
	int rc;

	if (!decoder)
		return cli_usage_error("send", "out of memory");
	rc = line_parse_field_set(decoder, a->fields, strlen(a->fields), &point, &err);
	if (rc)
		rc = cli_usage_error("send", "--fields '%s': %s at byte %llu", a->fields,
				     rc == -EINVAL ? err.reason : "out of memory",
				     (unsigned long long)err.offset);
	else if (stream)
		rc = check_fields(a, stream, &point);
	line_decoder_free(decoder);
	return rc;
}

/* Everything the recorder would refuse that the schema tells, and inputs
 * that cannot be read: 0, or the exit status after saying why. */
static int check_before_sending(struct send_args *a)
{
	const struct schema_stream *stream = NULL;
	int rc = 0;

	for (size_t i = 0; i < a->ninputs; i++) {
		const char *path = a->inputs[i].path;
		if (strcmp(path, "-") != 0 && access(path, R_OK) != 0) {
			fprintf(stderr, "h5rec send: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	if (a->event_key && a->target.schema) {
		struct route route;
		char reason[256];
		if (router_event_key(a->target.schema, a->event_key, &route, reason,
				     sizeof(reason)) != ROUTER_OK)
			return refuse(a, "%s", reason);
		stream = route.stream;
	}
	if (a->event_key)
		rc = check_event(a, stream);
	for (size_t i = 0; i < a->ninputs && !rc && a->target.schema; i++)
		rc = check_key(a, &a->inputs[i]);
	return rc;
}

/* ---- arguments ------------------------------------------------------------------- */

/* Pair the keys with the FILE arguments; 0 or the usage exit status. */
static int pair_inputs(struct send_args *a, int nfiles, char **files)
{
	size_t stdin_uses = 0;
	if (a->raw) {
		if (a->ninputs || a->event_key || nfiles > 1)
			return cli_usage_error("send", "--raw sends one input as it is: no --key, "
						       "--event or second FILE");
		a->raw_input = nfiles ? files[0] : "-";
		return 0;
	}
	if (!a->ninputs && !a->event_key)
		return cli_usage_error("send", "--key and --dtype are required (or --event, or --raw)");
	if (a->ninputs && a->dtype == DTYPE_NONE)
		return cli_usage_error("send", "--dtype is required with --key");
	/* One key without a FILE reads stdin, as before there were several. */
	bool from_stdin = a->ninputs == 1 && nfiles == 0;
	if ((size_t)nfiles != a->ninputs && !from_stdin)
		return cli_usage_error("send", "%zu keys and %d files: give one FILE per --key, in "
					       "the same order", a->ninputs, nfiles);
	for (size_t i = 0; i < a->ninputs; i++) {
		a->inputs[i].path = from_stdin ? "-" : files[i];
		a->inputs[i].per_frame = a->per_frame;
		stdin_uses += strcmp(a->inputs[i].path, "-") == 0;
	}
	if (stdin_uses > 1)
		return cli_usage_error("send", "stdin ('-') can be read only once");
	if (a->event_key && (!a->fields || !a->event_id))
		return cli_usage_error("send", "--event needs --fields and a non-zero --event-id");
	if (a->fields && !a->event_key)
		return cli_usage_error("send", "--fields belongs to --event KEY");
	return 0;
}

static int parse_option(struct send_args *a, int opt, const char *arg)
{
	unsigned long long number;

	switch (opt) {
	case 'k':
		if (a->ninputs == SEND_MAX_INPUTS)
			return cli_usage_error("send", "at most %d keys", SEND_MAX_INPUTS);
		a->inputs[a->ninputs++].key = arg;
		return 0;
	case 'd':
		if (dtype_from_name(arg, &a->dtype) || a->dtype == DTYPE_STRING)
			return cli_usage_error("send", "unknown numeric dtype '%s'", arg);
		return 0;
	case 'n':
		if (cli_parse_uint(arg, 1, 1ull << 28, &number))
			return cli_usage_error("send", "bad --samples-per-frame '%s'", arg);
		a->per_frame = (size_t)number;
		a->per_frame_set = true;
		return 0;
	case OPT_T0:
		return cli_parse_int64(arg, &a->t0) ? cli_usage_error("send", "bad --t0 '%s'", arg) : 0;
	case OPT_DT:
		if (cli_parse_double(arg, &a->dt) || a->dt < 0)
			return cli_usage_error("send", "bad --dt '%s'", arg);
		return 0;
	case 'e':
		if (cli_parse_uint(arg, 0, UINT64_MAX, &number))
			return cli_usage_error("send", "bad --event-id '%s'", arg);
		a->event_id = number;
		return 0;
	case OPT_EVENT:
		a->event_key = arg;
		return 0;
	case OPT_FIELDS:
		a->fields = arg;
		return 0;
	case OPT_NAME:
		a->name = arg;
		return 0;
	case OPT_RAW:
		a->raw = true;
		return 0;
	case 'h':
		cli_send_usage(stdout);
		return 1;
	}
	cli_send_usage(stderr);
	return 2;
}

static int parse_args(int argc, char **argv, struct send_args *a)
{
	static const struct option options[] = {
		CLI_TARGET_OPTIONS,
		{"key", required_argument, NULL, 'k'},
		{"dtype", required_argument, NULL, 'd'},
		{"samples-per-frame", required_argument, NULL, 'n'},
		{"t0", required_argument, NULL, OPT_T0},
		{"dt", required_argument, NULL, OPT_DT},
		{"event-id", required_argument, NULL, 'e'},
		{"name", required_argument, NULL, OPT_NAME},
		{"raw", no_argument, NULL, OPT_RAW},
		{"event", required_argument, NULL, OPT_EVENT},
		{"fields", required_argument, NULL, OPT_FIELDS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "c:t:k:d:n:e:h", options, NULL)) != -1) {
		int rc = cli_target_option(&a->target, opt, optarg);
		if (rc < 0)
			return 2;
		if (rc > 0 && (rc = parse_option(a, opt, optarg)) != 0)
			return rc;
	}
	return pair_inputs(a, argc - optind, argv + optind);
}

/* ---- command ------------------------------------------------------------------------ */

static const char refusal_causes[] =
	"  - a records stream takes whole waveforms: --samples-per-frame must be the\n"
	"    stream's `samples` (with -c, h5rec send uses it)\n"
	"  - the key matches no frame stream, or names a channel the stream does not declare\n"
	"  - the stream has the table layout (it takes lines), or the channel holds strings\n"
	"  - the event's key or fields do not fit the records stream or the stream with\n"
	"    events (event_fields)\n"
	"  - the listener wants a token (--token) or another one\n";

int cli_send(int argc, char **argv)
{
	struct send_args a = {.per_frame = 65536, .t0 = cli_now_ns(), .name = "h5rec-send"};
	struct sender *sender = NULL;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (cli_target_resolve(&a.target, SCHEMA_PROTOCOL_FRAME, "send"))
		return 2;
	rc = check_before_sending(&a);
	if (rc) {
		cli_target_free(&a.target);
		return rc;
	}
	bool hello = !a.raw && (a.target.token || !a.target.no_ack);
	rc = cli_target_connect(&a.target, hello ? a.name : NULL, &sender, a.err, sizeof(a.err));
	if (!rc)
		rc = send_all(sender, &a);
	if (!rc)
		rc = sender_finish(sender);
	if (rc) {
		char causes[sizeof(refusal_causes) + 160];
		snprintf(causes, sizeof(causes), "%s%s", refusal_causes,
			 a.target.schema ? "  - the recorder runs another schema than the one given "
					   "with -c (these checks passed for it)\n"
					 : "Give the recorder's schema with -c to check all this "
					   "before sending.\n");
		cli_report_failure("send", &a.target, sender, rc, a.err, causes);
	} else {
		cli_print_sent(stdout, "send", sender, &a.target);
	}
	sender_close(sender);
	cli_target_free(&a.target);
	return rc ? 1 : 0;
}
