/*
 * send_frames.c - an example of libh5rec-client: a digitizer that sends
 * blocks of int16 samples, and now and then an event with its waveform,
 * and leaves reconnecting and resending to the library.
 *
 * Build against an installed library:
 *
 *   cc send_frames.c $(pkg-config --cflags --libs h5rec-client) -o send_frames
 *
 * Run:  send_frames ADDRESS FRAMES [--pause K] [--sync]
 *
 * Frame i carries 64 samples of channel "b1/adc0", each equal to i, so a
 * reader can see that every frame is in the file once. Every 10th frame is
 * followed by an event of the records stream "dust" (mass = its number)
 * with a 100-sample waveform of "dust/a". With --pause K the program stops
 * after frame K and waits for a line on stdin (the time to restart the
 * recorder, say); with --sync it first waits until the recorder holds
 * frames 1..K durably. At the end it waits for every frame to be durable.
 * The listener's token, if it wants one, is taken from $H5REC_TOKEN.
 */
#include <h5rec/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES 64
#define WAVEFORM 100
#define T0 1767225600000000000LL /* 2026-01-01T00:00:00Z */

static int fail(struct h5rec_client *client, const char *what, int rc)
{
	fprintf(stderr, "send_frames: %s: %s (%s)\n", what, strerror(-rc),
		client ? h5rec_client_error(client) : "");
	h5rec_client_close(client);
	return 1;
}

/* One block of samples. Odd blocks go out as two pieces, as from a ring
 * buffer that wrapped: the library gathers them, no copy of ours. */
static int send_block(struct h5rec_client *client, long i)
{
	int16_t samples[SAMPLES];
	int64_t t0 = T0 + i * SAMPLES * 1000; /* dt = 1 µs */

	for (int s = 0; s < SAMPLES; s++)
		samples[s] = (int16_t)i;
	if (i % 2 == 0)
		return h5rec_client_data(client, "b1/adc0", H5REC_INT16, t0, 0, samples, SAMPLES);
	struct iovec pieces[2] = {
		{.iov_base = samples, .iov_len = 24 * sizeof(int16_t)},
		{.iov_base = samples + 24, .iov_len = (SAMPLES - 24) * sizeof(int16_t)},
	};
	return h5rec_client_datav(client, "b1/adc0", H5REC_INT16, t0, 0, pieces, 2);
}

static int send_event(struct h5rec_client *client, long number)
{
	float waveform[WAVEFORM];
	char fields[64];
	int64_t t0 = T0 + number * 1000000000LL;
	uint64_t event_id = (uint64_t)number;

	snprintf(fields, sizeof(fields), "mass=%ld", number);
	int rc = h5rec_client_event(client, "dust", event_id, t0, fields);
	if (rc)
		return rc;
	for (int s = 0; s < WAVEFORM; s++)
		waveform[s] = (float)number;
	return h5rec_client_data(client, "dust/a", H5REC_FLOAT32, t0, event_id, waveform, WAVEFORM);
}

static int pause_here(struct h5rec_client *client, long frames, int sync)
{
	char line[16];

	if (sync) {
		int rc = h5rec_client_wait(client, 0, 60000);
		if (rc)
			return rc;
	}
	printf("paused after %ld blocks: last seq %llu, durable up to %llu\n", frames,
	       (unsigned long long)h5rec_client_last_seq(client),
	       (unsigned long long)h5rec_client_durable_seq(client));
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		clearerr(stdin); /* end of input: go on all the same */
	return 0;
}

int main(int argc, char **argv)
{
	struct h5rec_client_options options;
	struct h5rec_client *client = NULL;
	long frames, pause_at = -1;
	int sync = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: send_frames ADDRESS FRAMES [--pause K] [--sync]\n");
		return 2;
	}
	frames = atol(argv[2]);
	for (int a = 3; a < argc; a++) {
		if (strcmp(argv[a], "--pause") == 0 && a + 1 < argc)
			pause_at = atol(argv[++a]);
		else if (strcmp(argv[a], "--sync") == 0)
			sync = 1;
	}
	h5rec_client_options_init(&options);
	options.address = argv[1];
	options.name = "send_frames";
	options.token = getenv("H5REC_TOKEN");
	int rc = h5rec_client_open(&options, &client);
	if (rc)
		return fail(NULL, "connect", rc);
	for (long i = 0; i < frames; i++) {
		rc = send_block(client, i);
		if (!rc && i % 10 == 9)
			rc = send_event(client, i / 10 + 1);
		if (!rc && i + 1 == pause_at)
			rc = pause_here(client, i + 1, sync);
		if (rc)
			return fail(client, "send", rc);
	}
	rc = h5rec_client_wait(client, 0, 120000);
	if (rc)
		return fail(client, "wait for ACKs", rc);
	printf("sent %llu frames, durable up to seq %llu, %llu reconnects\n",
	       (unsigned long long)h5rec_client_last_seq(client),
	       (unsigned long long)h5rec_client_durable_seq(client),
	       (unsigned long long)h5rec_client_reconnects(client));
	h5rec_client_close(client);
	return 0;
}
