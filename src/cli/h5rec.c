/*
 * h5rec.c - the h5rec command-line tool: a table of subcommands.
 *
 * Each subcommand lives in its own cli_<name>.c and is listed once in the
 * table below, which is also what `h5rec --help` prints. Exit codes are the
 * same for all: 0 ok, 1 the operation failed, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
	const char *name;
	const char *args;
	const char *summary;
	int (*run)(int argc, char **argv);
	void (*usage)(FILE *out);
};

static const struct command commands[] = {
	{"check", "SCHEMA", "validate a schema and print the resolved layout", cli_check,
	 cli_check_usage},
	{"info", "FILE", "show what a recorded file holds", cli_info, cli_info_usage},
	{"export", "IN OUT", "rewrite a closed records file in another layout (--layout book)",
	 cli_export, cli_export_usage},
	{"vds", "OUT IN..", "one master of virtual datasets over several recorders' files",
	 cli_vds, cli_vds_usage},
	{"status", "", "show what a running recorder is doing", cli_status, cli_status_usage},
	{"flush", "", "make everything a running recorder received durable now", cli_flush,
	 cli_flush_usage},
	{"roll", "", "close a running recorder's file; the next data starts a new one",
	 cli_roll, cli_roll_usage},
	{"run", "", "start or stop a run on a running recorder (run start NAME, run stop)",
	 cli_run, cli_run_usage},
	{"send", "[FILE]", "send samples (or encoded frames/lines) to a recorder", cli_send,
	 cli_send_usage},
	{"simulate", "SETUP", "generate weather, accelerator or digitizer data and send it",
	 cli_simulate, cli_simulate_usage},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: h5rec COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-9s %-7s %s\n", commands[i].name, commands[i].args,
			commands[i].summary);
	fprintf(out, "\n'h5rec COMMAND --help' describes one command; "
		     "'h5rec -V' (--version) prints the version.\n"
		     "Exit status: 0 ok, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			for (size_t i = 0; i < NCOMMANDS; i++) {
				if (strcmp(argv[2], commands[i].name) == 0) {
					commands[i].usage(stdout);
					return 0;
				}
			}
		}
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("h5rec %s\n", H5REC_VERSION);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "h5rec: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
