/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu logs: what the serial console printed (or QEMU's own output). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vm/vm.h"

static int logs_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "lines", required_argument, NULL, 'n' },
		{ "qemu", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_instance in;
	bool follow = false, qemu = false;
	long lines = 50;
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "fn:h", opts, NULL)) != -1) {
		switch (o) {
		case 'f': follow = true; break;
		case 'n': lines = atol(optarg); break;
		case 'q': qemu = true; break;
		case 'h':
			printf("usage: pegpu logs NAME [-n LINES] [-f] [--qemu]\n\n"
			       "Print the last LINES (default 50; 0: all) of the serial console log; -f keeps\n"
			       "following it.  --qemu prints QEMU's command line and its own messages.\n");
			return PEGPU_EXIT_OK;
		default: return PEGPU_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: pegpu logs NAME [-n LINES] [-f] [--qemu]\n");
		return PEGPU_EXIT_USAGE;
	}
	if (vm_cmd_open("logs", argv[optind], &in, false))
		return PEGPU_EXIT_FAIL;
	const char *path = qemu ? in.qemu_log : in.serial_log;
	size_t len;
	char *s = file_read(path, &len);

	if (!s) {
		fprintf(stderr, "pegpu logs: no log yet (%s): the instance has not been started\n", path);
		return PEGPU_EXIT_FAIL;
	}
	const char *p = s + len;
	long n = 0;

	while (lines > 0 && p > s && n <= lines)
		if (*--p == '\n')
			n++;
	if (lines > 0 && *p == '\n')
		p++;
	if (lines <= 0)
		p = s;
	fwrite(p, 1, len - (size_t)(p - s), stdout);
	free(s);
	if (follow) {
		FILE *f = fopen(path, "r");
		char buf[4096];

		if (!f)
			return PEGPU_EXIT_FAIL;
		fseek(f, (long)len, SEEK_SET);
		for (;;) {
			size_t r = fread(buf, 1, sizeof(buf), f);

			if (r) {
				fwrite(buf, 1, r, stdout);
				fflush(stdout);
				continue;
			}
			clearerr(f);
			sleep_s(0.3);
		}
	}
	return PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_logs = {
	.name = "logs",
	.summary = "print a VM's serial console log",
	.run = logs_run,
};
