/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu stop: the safe stop ladder. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "vm/vm.h"

static void stop_usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu stop NAME [--timeout SECONDS] [--force]\n"
		"\n"
		"Stop the instance safely, reporting each step:\n"
		"  1. poweroff: the guest shuts itself down (over SSH)\n"
		"  2. acpi: the virtual power button (QMP system_powerdown), then a long wait\n"
		"     (stop_timeout in pegpu.yaml, default 360 s)\n"
		"  3. kill: only when no passthrough GPU is attached, or with --force: tearing\n"
		"     PCIe passthrough down mid-flight can panic the host\n"
		"\n"
		"  --timeout SECONDS   the long wait of step 2\n"
		"  --force             allow step 3 even with the eGPU attached\n");
}

static int stop_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_stop_opts so = { 0 };
	struct vm_instance in;
	char err[2048];
	int o, rc;

	optind = 1;
	while ((o = getopt_long(argc, argv, "hf", opts, NULL)) != -1) {
		switch (o) {
		case 't': so.timeout_s = atoi(optarg); break;
		case 'f': so.force = true; break;
		case 'h': stop_usage(stdout); return PEGPU_EXIT_OK;
		default: stop_usage(stderr); return PEGPU_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		stop_usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	if (vm_cmd_open("stop", argv[optind], &in, true))
		return PEGPU_EXIT_FAIL;
	rc = vm_stop(&in, &so, err, sizeof(err));
	if (rc)
		fprintf(stderr, "pegpu stop: %s\n", err);
	else
		fprintf(stderr, "pegpu stop: '%s' stopped (%s)\n", in.name, in.st.last_stop);
	instance_close(&in);
	return rc ? PEGPU_EXIT_FAIL : PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_stop = {
	.name = "stop",
	.summary = "stop a VM safely (guest poweroff, ACPI, long wait)",
	.run = stop_run,
};
