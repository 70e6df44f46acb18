/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu: dispatch to the command named by argv[1]. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Add a command: write cmd_<name>.c, declare it here, list it below. */
extern const struct pegpu_cmd pegpu_cmd_version;

static const struct pegpu_cmd *const commands[] = {
	&pegpu_cmd_version,
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
