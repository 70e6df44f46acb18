/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu status: one instance in detail (text or JSON). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vm/vm.h"

json_t *vm_status_json(const struct vm_instance *in)
{
	const struct vm_config *c = &in->cfg;
	enum vm_state live = instance_live_state(in);
	json_t *ports = json_array(), *gpus = json_array();

	for (size_t i = 0; i < c->n_ports; i++)
		json_array_append_new(ports, json_pack("{s:i, s:i}", "host", c->ports[i].host,
						       "guest", c->ports[i].guest));
	for (size_t i = 0; i < c->n_gpus; i++)
		json_array_append_new(gpus, json_string(c->gpus[i].host));
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:b, s:b, s:b, s:b, s:I, s:i, s:s, s:o, s:o, s:s}",
			 "name", in->name, "state", vm_state_name(live),
			 "arch", vm_arch_name(c->arch), "accel", vm_accel_name(c->accel),
			 "cpus", c->cpus, "memory_mib", c->memory_mib, "disk_gib", c->disk_gib,
			 "provisioned", in->st.provisioned, "driver_installed", in->st.driver_installed,
			 "nvidia_installed", in->st.nvidia_installed, "gpu_attached",
			 live == VM_ST_RUNNING && in->st.gpu_attached,
			 "pid", (json_int_t)(live == VM_ST_CRASHED ? 0 : in->st.pid),
			 "ssh_port", in->st.ssh_port, "last_stop", in->st.last_stop,
			 "ports", ports, "gpus", gpus, "dir", in->dir);
}

static int status_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_instance in;
	bool json = false;
	int o;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'j': json = true; break;
		case 'h':
			printf("usage: pegpu status NAME [--json]\n\nShow an instance's state, resources, "
			       "ports and GPU.  A QEMU that died shows as 'crashed'; the next start, stop "
			       "or destroy cleans up after it.\n");
			return PEGPU_EXIT_OK;
		default: return PEGPU_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: pegpu status NAME [--json]\n");
		return PEGPU_EXIT_USAGE;
	}
	if (vm_cmd_open("status", argv[optind], &in, false))
		return PEGPU_EXIT_FAIL;
	json_t *j = vm_status_json(&in);

	if (json) {
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		printf("name:      %s\n", in.name);
		printf("state:     %s%s\n", json_string_value(json_object_get(j, "state")),
		       in.st.provisioned ? "" : " (not provisioned yet)");
		printf("machine:   %s, %s, %d CPUs, %d MiB RAM, %d GiB disk\n", vm_arch_name(in.cfg.arch),
		       vm_accel_name(in.cfg.accel), in.cfg.cpus, in.cfg.memory_mib, in.cfg.disk_gib);
		if (json_integer_value(json_object_get(j, "pid")))
			printf("qemu:      pid %d, SSH on 127.0.0.1:%d\n", (int)in.st.pid, in.st.ssh_port);
		printf("driver:    pegpu_dma %s; NVIDIA %s\n", in.st.driver_installed ? "installed" : "not installed",
		       in.st.nvidia_installed ? "installed" : in.cfg.nvidia ? "wanted, not installed" : "not wanted");
		for (size_t i = 0; i < in.cfg.n_gpus; i++)
			printf("gpu:       %s (%s)\n", in.cfg.gpus[i].host,
			       json_is_true(json_object_get(j, "gpu_attached")) ? "attached" : "detached");
		for (size_t i = 0; i < in.cfg.n_ports; i++)
			printf("port:      127.0.0.1:%d -> guest %d\n", in.cfg.ports[i].host, in.cfg.ports[i].guest);
		if (in.st.last_stop[0])
			printf("last stop: %s\n", in.st.last_stop);
		printf("dir:       %s\n", in.dir);
	}
	json_decref(j);
	instance_close(&in);
	return PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_status = {
	.name = "status",
	.summary = "show one VM's state, resources, ports and GPU",
	.run = status_run,
};
