/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu port add|rm|list: forward loopback ports to the guest.  Ports live
 * in pegpu.yaml (so every start re-creates them in QEMU's argv) and, while
 * the VM runs, are added to or removed from QEMU at once over QMP.  QEMU
 * owns the forward, not a pegpu process: it survives pegpu exiting or
 * restarting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vm/qmp.h"
#include "vm/vm.h"

static void port_usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu port add NAME HOST:GUEST\n"
		"       pegpu port rm NAME HOST\n"
		"       pegpu port list NAME [--json]\n\n"
		"Forward 127.0.0.1:HOST on this machine to port GUEST in the VM.  Forwards are kept\n"
		"in the instance's pegpu.yaml and applied at once when the VM runs.\n");
}

/* hostfwd_add/remove on the netdev that carries forwards (argv.c) */
static int port_live(struct vm_instance *in, bool add, int host, int guest, char *err, size_t errlen)
{
	const char *netdev = in->cfg.net == VM_NET_VMNET ? "fwd0" : "net0";
	char cmd[128], *out;
	struct qmp q;
	int r = -1;

	if (add)
		snprintf(cmd, sizeof(cmd), "hostfwd_add %s tcp:127.0.0.1:%d-:%d", netdev, host, guest);
	else
		snprintf(cmd, sizeof(cmd), "hostfwd_remove %s tcp:127.0.0.1:%d", netdev, host);
	if (qmp_connect(&q, in->qmp_sock, 10, err, errlen))
		return -1;
	out = qmp_hmp(&q, cmd, err, errlen);
	qmp_close(&q);
	if (!out)
		return -1;
	/* HMP answers in prose: nothing on a good add, "... removed" on a good remove */
	if ((add && !*out) || (!add && strstr(out, "removed")))
		r = 0;
	else
		snprintf(err, errlen, "QEMU: %s", out);
	free(out);
	return r;
}

static int port_run(int argc, char **argv)
{
	struct vm_instance in;
	char err[1024];
	bool running;
	int h = 0, g = 0, rc = PEGPU_EXIT_FAIL;
	char extra;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		port_usage(stdout);
		return PEGPU_EXIT_OK;
	}
	if (argc < 3) {
		port_usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	const char *verb = argv[1];

	if (!strcmp(verb, "list")) {
		bool json = argc == 4 && !strcmp(argv[3], "--json");

		if (argc != 3 && !json) {
			port_usage(stderr);
			return PEGPU_EXIT_USAGE;
		}
		if (vm_cmd_open("port", argv[2], &in, false))
			return PEGPU_EXIT_FAIL;
		if (json)
			printf("[");
		for (size_t i = 0; i < in.cfg.n_ports; i++) {
			if (json)
				printf("%s{\"host\": %d, \"guest\": %d}", i ? ", " : "", in.cfg.ports[i].host,
				       in.cfg.ports[i].guest);
			else
				printf("127.0.0.1:%d -> %d\n", in.cfg.ports[i].host, in.cfg.ports[i].guest);
		}
		if (json)
			printf("]\n");
		return PEGPU_EXIT_OK;
	}
	if (strcmp(verb, "add") && strcmp(verb, "rm")) {
		port_usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	if (argc != 4 || (!strcmp(verb, "add") ?
			  sscanf(argv[3], "%d:%d%c", &h, &g, &extra) != 2 || g < 1 || g > 65535 :
			  sscanf(argv[3], "%d%c", &h, &extra) != 1) || h < 1 || h > 65535) {
		port_usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	if (vm_cmd_open("port", argv[2], &in, true))
		return PEGPU_EXIT_FAIL;
	running = instance_qemu_pid(&in) != 0;
	if (!strcmp(verb, "add")) {
		if (vm_config_port_add(&in.cfg, h, g)) {
			fprintf(stderr, "pegpu port: host port %d is already forwarded (or too many ports): "
				"`pegpu port rm %s %d` first\n", h, in.name, h);
			goto out;
		}
		if (!port_free(h)) {
			fprintf(stderr, "pegpu port: 127.0.0.1:%d is taken by another program\n", h);
			goto out;
		}
		if (running && port_live(&in, true, h, g, err, sizeof(err))) {
			fprintf(stderr, "pegpu port: %s\n", err);
			goto out;
		}
	} else {
		if (vm_config_port_rm(&in.cfg, h)) {
			fprintf(stderr, "pegpu port: host port %d is not forwarded for '%s'\n", h, in.name);
			goto out;
		}
		if (running && port_live(&in, false, h, 0, err, sizeof(err)))
			fprintf(stderr, "pegpu port: warning: %s (the next start will not forward it)\n", err);
	}
	if (instance_save_config(&in)) {
		fprintf(stderr, "pegpu port: cannot write %s\n", in.cfg_path);
		goto out;
	}
	if (!strcmp(verb, "add"))
		printf("127.0.0.1:%d -> %s:%d%s\n", h, in.name, g, running ? "" : " (from the next start)");
	else
		printf("removed 127.0.0.1:%d\n", h);
	rc = PEGPU_EXIT_OK;
out:
	instance_close(&in);
	return rc;
}

const struct pegpu_cmd pegpu_cmd_port = {
	.name = "port",
	.summary = "forward host ports to a VM (add, rm, list)",
	.run = port_run,
};
