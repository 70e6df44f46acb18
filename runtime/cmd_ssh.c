/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu ssh: log in to an instance, or run a command in it. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vm/ssh.h"
#include "vm/vm.h"

static int ssh_cmd_run(int argc, char **argv)
{
	struct vm_instance in;
	struct strv a;
	char dest[96];
	bool tie = false;
	int first = 2;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: pegpu ssh NAME [-t] [--] [COMMAND...]\n\n"
			"Log in to the instance as its user, or run COMMAND there (exit status is\n"
			"COMMAND's).  Uses the instance's own key and its recorded host key.\n\n"
			"  -t   give COMMAND a terminal, so that it is hung up when this ssh ends\n"
			"       (killed, or the connection lost): for servers run from the host,\n"
			"       such as ggml-rpc-server under pegpu serve's rpcServers\n");
		return argc < 2 ? PEGPU_EXIT_USAGE : PEGPU_EXIT_OK;
	}
	if (vm_cmd_open("ssh", argv[1], &in, false))
		return PEGPU_EXIT_FAIL;
	if (instance_live_state(&in) != VM_ST_RUNNING && instance_live_state(&in) != VM_ST_PROVISIONING) {
		fprintf(stderr, "pegpu ssh: '%s' is %s: `pegpu start %s` first\n", in.name,
			vm_state_name(instance_live_state(&in)), in.name);
		return PEGPU_EXIT_FAIL;
	}
	if (argc > first && !strcmp(argv[first], "-t")) {
		tie = true;
		first++;
	}
	if (argc > first && !strcmp(argv[first], "--"))
		first++;
	if (ssh_argv(&in, false, false, &a) || ssh_dest(&in, dest, sizeof(dest)))
		return PEGPU_EXIT_FAIL;
	if (tie)
		strv_add(&a, "-tt");	/* a terminal even without one here */
	else if (first >= argc && isatty(0))
		strv_add(&a, "-t");
	strv_add(&a, dest);
	for (int i = first; i < argc; i++)
		strv_add(&a, argv[i]);
	fflush(NULL);
	execvp(a.v[0], a.v);
	perror("pegpu ssh: cannot run ssh");
	return PEGPU_EXIT_FAIL;
}

const struct pegpu_cmd pegpu_cmd_ssh = {
	.name = "ssh",
	.summary = "log in to a VM or run a command in it",
	.run = ssh_cmd_run,
};
