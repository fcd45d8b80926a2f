/*
 * h5recd.c - the recorder daemon's entry point.
 *
 * Today it loads and validates the schema given with -c and reports what it
 * would record; network ingest is built on the storage engine (issue 5) and
 * lands here next.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "schema.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: h5recd -c SCHEMA\n"
		     "  -c, --config SCHEMA   the recorder schema (YAML)\n"
		     "  -h, --help            this text\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
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
		return 1;
	}
	fprintf(stderr, "h5recd: schema '%s' is valid (%zu listeners, %zu streams); "
			"network ingest is not built yet\n",
		schema->name, schema->nlisten, schema->nstreams);
	schema_free(schema);
	return 1;
}
