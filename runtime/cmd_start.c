/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu start: boot an instance (checks preconditions first). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli.h"
#include "vm/vm.h"

static void start_usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu start NAME [--no-gpu] [--no-wait] [--timeout SECONDS]\n"
		"\n"
		"Boot the instance and wait until SSH answers.  Start refuses, and says why, when\n"
		"the instance already runs, QEMU or its firmware is missing, a forwarded host port\n"
		"is taken, or the eGPU would attach before the guest driver (and the NVIDIA stack,\n"
		"when wanted) is installed.\n"
		"\n"
		"  --no-gpu            leave the eGPU detached this time\n"
		"  --no-wait           return once QEMU runs, without waiting for SSH\n"
		"  --timeout SECONDS   how long to wait for SSH (default 600)\n");
}

static int start_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-gpu", no_argument, NULL, 'g' },
		{ "no-wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_start_opts so = { .wait_ssh = true, .timeout_s = 600 };
	struct vm_instance in;
	char err[2048];
	int o, rc;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'g': so.no_gpu = true; break;
		case 'w': so.wait_ssh = false; break;
		case 't': so.timeout_s = atof(optarg); break;
		case 'h': start_usage(stdout); return PEGPU_EXIT_OK;
		default: start_usage(stderr); return PEGPU_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		start_usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	if (vm_cmd_open("start", argv[optind], &in, true))
		return PEGPU_EXIT_FAIL;
	if (!in.st.provisioned) {
		/* a create that never finished its first boot: boot and follow it again */
		struct stat st;
		long off = stat(in.serial_log, &st) == 0 ? (long)st.st_size : 0;

		so.no_gpu = true;
		rc = vm_start(&in, &so, err, sizeof(err)) ||
		     vm_provision_wait(&in, off, so.timeout_s > 0 ? so.timeout_s : 1800, err, sizeof(err));
	} else {
		rc = vm_start(&in, &so, err, sizeof(err));
	}
	if (rc)
		fprintf(stderr, "pegpu start: %s\n", err);
	instance_close(&in);
	return rc ? PEGPU_EXIT_FAIL : PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_start = {
	.name = "start",
	.summary = "boot a VM and wait for SSH",
	.run = start_run,
};
