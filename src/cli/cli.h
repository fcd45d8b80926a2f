/*
 * cli.h - subcommands of the h5rec tool. Each takes the arguments after its
 * name (argv[0] is the subcommand) and returns the process exit code:
 * 0 success, 1 failure of the operation (e.g. an invalid schema), 2 usage.
 */
#ifndef H5REC_CLI_H
#define H5REC_CLI_H

#include <stdio.h>

int cli_check(int argc, char **argv);
void cli_check_usage(FILE *out);
int cli_status(int argc, char **argv);
void cli_status_usage(FILE *out);
int cli_flush(int argc, char **argv);
void cli_flush_usage(FILE *out);
int cli_roll(int argc, char **argv);
void cli_roll_usage(FILE *out);
int cli_run(int argc, char **argv);
void cli_run_usage(FILE *out);
int cli_export(int argc, char **argv);
void cli_export_usage(FILE *out);
int cli_vds(int argc, char **argv);
void cli_vds_usage(FILE *out);
int cli_info(int argc, char **argv);
void cli_info_usage(FILE *out);
int cli_send(int argc, char **argv);
void cli_send_usage(FILE *out);
int cli_simulate(int argc, char **argv);
void cli_simulate_usage(FILE *out);

#endif
