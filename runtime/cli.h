/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pegpu command line: one file per command (cmd_<name>.c), each
 * exporting a struct pegpu_cmd that main.c lists.  Exit codes are shared by
 * every command and documented in docs/cli.md.
 */
#ifndef PEGPU_CLI_H
#define PEGPU_CLI_H

enum pegpu_exit {
	PEGPU_EXIT_OK = 0,
	PEGPU_EXIT_FAIL = 1,	/* the operation failed; the message says why */
	PEGPU_EXIT_USAGE = 2,	/* bad command line */
};

struct pegpu_cmd {
	const char *name;
	const char *summary;	/* one line for `pegpu help` */
	/* argv[0] is the command name; returns an enum pegpu_exit */
	int (*run)(int argc, char **argv);
};

#endif /* PEGPU_CLI_H */
