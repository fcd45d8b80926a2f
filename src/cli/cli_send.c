/*
 * cli_send.c - `h5rec send`: samples from a file or stdin to a recorder as
 * DATA frames, with ACKs; or a pre-encoded byte stream (frames or lines)
 * sent as it is.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "sender.h"

void cli_send_usage(FILE *out)
{
	fprintf(out,
		"usage: h5rec send [options] [FILE|-]\n"
		"Send samples (raw binary, native little-endian) as DATA frames and wait\n"
		"until the recorder acknowledges them as durable.\n"
		"\n"
		"  -c, --config SCHEMA      take the address (and token) from the schema's first\n"
		"                           frame listener\n"
		"  -t, --to ADDRESS         tcp:HOST:PORT, udp:HOST:PORT or unix:PATH\n"
		"  -k, --key KEY            frame key, e.g. dust/first_detector or b1/adc0\n"
		"  -d, --dtype TYPE         sample type of FILE: int8..uint64, float32, float64\n"
		"  -n, --samples-per-frame N  samples per DATA frame (default 65536)\n"
		"      --t0 NS              time of the first sample, ns since 1970 (default now)\n"
		"      --dt SECONDS         sample interval, advances t0 from frame to frame\n"
		"  -e, --event-id N         event id of every frame (records layout)\n"
		"      --name NAME          sender name in the HELLO frame (default h5rec-send)\n"
		"      --token TOKEN        the listener's token\n"
		"      --raw                send FILE's bytes as they are (encoded frames or lines)\n"
		"      --write-size N       split writes into pieces of N bytes (testing)\n"
		"      --tee FILE           also write every byte sent to FILE\n"
		"      --no-ack             do not request or wait for ACKs\n"
		"  -h, --help               this text\n");
}

struct send_args {
	struct cli_target target;
	const char *key;
	enum dtype dtype;
	size_t per_frame;
	int64_t t0;
	double dt;
	uint64_t event_id;
	const char *name;
	bool raw;
	const char *input;
};

static int send_samples(struct sender *sender, FILE *in, const struct send_args *a)
{
	size_t size = dtype_size(a->dtype), filled = 0;
	uint8_t *buf = malloc(a->per_frame * size);
	int64_t t0 = a->t0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		size_t n = fread(buf + filled, 1, a->per_frame * size - filled, in);
		filled += n;
		if (filled < a->per_frame * size && !feof(in) && !ferror(in))
			continue;
		size_t samples = filled / size;
		if (samples) {
			rc = sender_data(sender, a->key, a->dtype, t0, a->event_id, buf, samples);
			if (rc)
				break;
			t0 += (int64_t)((double)samples * a->dt * 1e9);
		}
		if (filled % size) {
			fprintf(stderr, "h5rec send: input ends inside a sample (%zu stray bytes)\n",
				filled % size);
			rc = -EINVAL;
			break;
		}
		filled = 0;
		if (feof(in) || ferror(in))
			break;
	}
	if (ferror(in)) {
		fprintf(stderr, "h5rec send: reading %s: %s\n", a->input, strerror(errno));
		rc = -EIO;
	}
	free(buf);
	return rc;
}

static int send_raw(struct sender *sender, FILE *in)
{
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		int rc = sender_raw(sender, buf, n);
		if (rc)
			return rc;
	}
	return ferror(in) ? -EIO : 0;
}

static int parse_args(int argc, char **argv, struct send_args *a)
{
	enum { OPT_T0 = 256, OPT_DT, OPT_NAME, OPT_RAW };
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
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned long long number;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:t:k:d:n:e:h", options, NULL)) != -1) {
		int rc = cli_target_option(&a->target, opt, optarg);
		if (rc == 0)
			continue;
		if (rc < 0)
			return 2;
		switch (opt) {
		case 'k':
			a->key = optarg;
			break;
		case 'd':
			if (dtype_from_name(optarg, &a->dtype) || a->dtype == DTYPE_STRING)
				return cli_usage_error("send", "unknown numeric dtype '%s'", optarg);
			break;
		case 'n':
			if (cli_parse_uint(optarg, 1, 1ull << 28, &number))
				return cli_usage_error("send", "bad --samples-per-frame '%s'", optarg);
			a->per_frame = (size_t)number;
			break;
		case OPT_T0:
			if (cli_parse_int64(optarg, &a->t0))
				return cli_usage_error("send", "bad --t0 '%s'", optarg);
			break;
		case OPT_DT:
			if (cli_parse_double(optarg, &a->dt) || a->dt < 0)
				return cli_usage_error("send", "bad --dt '%s'", optarg);
			break;
		case 'e':
			if (cli_parse_uint(optarg, 0, UINT64_MAX, &number))
				return cli_usage_error("send", "bad --event-id '%s'", optarg);
			a->event_id = number;
			break;
		case OPT_NAME:
			a->name = optarg;
			break;
		case OPT_RAW:
			a->raw = true;
			break;
		case 'h':
			cli_send_usage(stdout);
			return 1;
		default:
			cli_send_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 < argc)
		return cli_usage_error("send", "one input file at most");
	a->input = optind < argc ? argv[optind] : "-";
	if (!a->raw && (!a->key || a->dtype == DTYPE_NONE))
		return cli_usage_error("send", "--key and --dtype are required (or --raw)");
	return 0;
}

int cli_send(int argc, char **argv)
{
	struct send_args a = {.per_frame = 65536, .t0 = cli_now_ns(), .name = "h5rec-send"};
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (cli_target_resolve(&a.target, SCHEMA_PROTOCOL_FRAME, "send"))
		return 2;

	FILE *in = strcmp(a.input, "-") == 0 ? stdin : fopen(a.input, "rb");
	if (!in) {
		fprintf(stderr, "h5rec send: %s: %s\n", a.input, strerror(errno));
		cli_target_free(&a.target);
		return 1;
	}
	struct sender *sender = NULL;
	char err[512] = "";
	rc = cli_target_connect(&a.target, &sender, err, sizeof(err));
	if (!rc && !a.raw && (a.target.token || !a.target.no_ack))
		rc = sender_hello(sender, a.name, a.target.token);
	if (!rc)
		rc = a.raw ? send_raw(sender, in) : send_samples(sender, in, &a);
	if (!rc)
		rc = sender_finish(sender);
	if (in != stdin)
		fclose(in);
	if (rc) {
		fprintf(stderr, "h5rec send: %s\n", err[0] ? err : strerror(-rc));
	} else {
		cli_print_sent(stdout, "send", sender, &a.target);
	}
	sender_close(sender);
	cli_target_free(&a.target);
	return rc ? 1 : 0;
}
