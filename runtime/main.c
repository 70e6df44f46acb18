/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu: dispatch to the command named by argv[1]. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Add a command: write cmd_<name>.c, declare it here, list it below. */
extern const struct pegpu_cmd pegpu_cmd_version;
extern const struct pegpu_cmd pegpu_cmd_plan;
extern const struct pegpu_cmd pegpu_cmd_serve;
extern const struct pegpu_cmd pegpu_cmd_create;
extern const struct pegpu_cmd pegpu_cmd_start;
extern const struct pegpu_cmd pegpu_cmd_stop;
extern const struct pegpu_cmd pegpu_cmd_status;
extern const struct pegpu_cmd pegpu_cmd_list;
extern const struct pegpu_cmd pegpu_cmd_ssh;
extern const struct pegpu_cmd pegpu_cmd_cp;
extern const struct pegpu_cmd pegpu_cmd_console;
extern const struct pegpu_cmd pegpu_cmd_logs;
extern const struct pegpu_cmd pegpu_cmd_port;
extern const struct pegpu_cmd pegpu_cmd_nvidia;
extern const struct pegpu_cmd pegpu_cmd_destroy;
extern const struct pegpu_cmd pegpu_cmd_doctor;
extern const struct pegpu_cmd pegpu_cmd_image;

static const struct pegpu_cmd *const commands[] = {
	&pegpu_cmd_version,
	&pegpu_cmd_plan,
	&pegpu_cmd_serve,
	&pegpu_cmd_create,
	&pegpu_cmd_start,
	&pegpu_cmd_stop,
	&pegpu_cmd_status,
	&pegpu_cmd_list,
	&pegpu_cmd_ssh,
	&pegpu_cmd_cp,
	&pegpu_cmd_console,
	&pegpu_cmd_logs,
	&pegpu_cmd_port,
	&pegpu_cmd_nvidia,
	&pegpu_cmd_destroy,
	&pegpu_cmd_doctor,
	&pegpu_cmd_image,
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: pegpu <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\n'pegpu <command> --help' explains one command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return PEGPU_EXIT_OK;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(argv[1], commands[i]->name))
			return commands[i]->run(argc - 1, argv + 1);
	fprintf(stderr, "pegpu: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return PEGPU_EXIT_USAGE;
}
