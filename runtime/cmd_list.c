/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu list: every instance, one line each (or a JSON array). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vm/vm.h"

static int list_run(int argc, char **argv)
{
	struct strv names;
	bool json = argc > 1 && !strcmp(argv[1], "--json");
	json_t *arr = json_array();

	if (argc > 2 || (argc == 2 && !json)) {
		fprintf(stderr, "usage: pegpu list [--json]\n");
		return PEGPU_EXIT_USAGE;
	}
	if (instance_list(&names)) {
		fprintf(stderr, "pegpu list: cannot read the instances directory\n");
		return PEGPU_EXIT_FAIL;
	}
	if (!json)
		printf("%-20s %-13s %-8s %5s %8s %9s  %s\n", "NAME", "STATE", "ARCH", "CPUS", "MEMORY", "SSH", "GPU");
	for (size_t i = 0; i < names.n; i++) {
		struct vm_instance in;
		char err[1024];

		if (instance_open(&in, names.v[i], err, sizeof(err))) {
			if (!json)
				printf("%-20s %-13s %s\n", names.v[i], "broken", err);
			continue;
		}
		json_t *j = vm_status_json(&in);

		if (json) {
			json_array_append(arr, j);
		} else {
			enum vm_state s = instance_live_state(&in);
			char ssh[16] = "-";

			if (s == VM_ST_RUNNING || s == VM_ST_PROVISIONING)
				snprintf(ssh, sizeof(ssh), "%d", in.st.ssh_port);
			printf("%-20s %-13s %-8s %5d %6dMi %9s  %s\n", in.name, vm_state_name(s),
			       vm_arch_name(in.cfg.arch), in.cfg.cpus, in.cfg.memory_mib, ssh,
			       !in.cfg.n_gpus ? "-" : json_is_true(json_object_get(j, "gpu_attached")) ?
			       "attached" : "detached");
		}
		json_decref(j);
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	}
	json_decref(arr);
	strv_free(&names);
	return PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_list = {
	.name = "list",
	.summary = "list VMs and their state",
	.run = list_run,
};
