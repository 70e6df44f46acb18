/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu destroy: delete an instance (its disk, keys, everything). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vm/vm.h"

static int destroy_run(int argc, char **argv)
{
	struct vm_instance in;
	bool force = false;
	const char *name = NULL;
	char err[2048];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
			force = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: pegpu destroy NAME [--force]\n\nDelete the instance: its disk, "
			       "seed, keys and logs (the cached base image stays).\nA running instance "
			       "is refused; --force stops it first (the stop ladder, with\nkilling "
			       "allowed as a last resort).\n");
			return PEGPU_EXIT_OK;
		} else if (!name)
			name = argv[i];
		else
			name = "";
	}
	if (!name || !*name) {
		fprintf(stderr, "usage: pegpu destroy NAME [--force]\n");
		return PEGPU_EXIT_USAGE;
	}
	if (vm_cmd_open("destroy", name, &in, true))
		return PEGPU_EXIT_FAIL;
	if (instance_qemu_pid(&in)) {
		struct vm_stop_opts so = { .force = true, .timeout_s = 60 };

		if (!force) {
			fprintf(stderr, "pegpu destroy: '%s' is running: `pegpu stop %s` first, or --force\n",
				name, name);
			return PEGPU_EXIT_FAIL;
		}
		if (vm_stop(&in, &so, err, sizeof(err))) {
			fprintf(stderr, "pegpu destroy: %s\n", err);
			return PEGPU_EXIT_FAIL;
		}
	}
	instance_close(&in);
	if (strcmp(in.sockdir, in.dir))
		rm_rf(in.sockdir);
	if (rm_rf(in.dir)) {
		fprintf(stderr, "pegpu destroy: could not remove all of %s\n", in.dir);
		return PEGPU_EXIT_FAIL;
	}
	fprintf(stderr, "pegpu destroy: '%s' removed\n", name);
	return PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_destroy = {
	.name = "destroy",
	.summary = "delete a VM and its files",
	.run = destroy_run,
};
