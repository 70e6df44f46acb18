/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu nvidia install: NVIDIA's open driver and CUDA in the guest. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vm/nvidia.h"
#include "vm/ssh.h"
#include "vm/vm.h"

static void nvidia_usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu nvidia install NAME [--dry-run] [--yes] [--distro debian12|debian13]\n\n"
		"Install NVIDIA's open kernel driver (nvidia-open, DKMS) and the CUDA toolkit in\n"
		"the VM from NVIDIA's Debian repository.  Shows the repository, packages and\n"
		"every command first and asks before running them.  Run it while the eGPU is\n"
		"detached (`pegpu start NAME --no-gpu`); the GPU attaches on the next start.\n\n"
		"  --dry-run   print the plan only\n"
		"  --yes       do not ask\n"
		"  --distro    the guest's Debian release (default: read from the running guest)\n");
}

static int nvidia_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "yes", no_argument, NULL, 'y' },
		{ "distro", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool dry = false, yes = false, running;
	char distro[32] = "", repo[256], *out = NULL;
	struct vm_instance in;
	struct strv cmds;
	int o, rc = PEGPU_EXIT_FAIL;

	optind = 1;
	while ((o = getopt_long(argc, argv, "hy", opts, NULL)) != -1) {
		switch (o) {
		case 'n': dry = true; break;
		case 'y': yes = true; break;
		case 'd': snprintf(distro, sizeof(distro), "%s", optarg); break;
		case 'h': nvidia_usage(stdout); return PEGPU_EXIT_OK;
		default: nvidia_usage(stderr); return PEGPU_EXIT_USAGE;
		}
	}
	if (optind != argc - 2 || strcmp(argv[optind], "install")) {
		nvidia_usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	if (vm_cmd_open("nvidia", argv[optind + 1], &in, !dry))
		return PEGPU_EXIT_FAIL;
	running = instance_live_state(&in) == VM_ST_RUNNING;
	if (!distro[0] && running &&
	    ssh_run(&in, ". /etc/os-release && echo debian$VERSION_ID", &out) == 0 && out) {
		out[strcspn(out, "\r\n")] = 0;
		snprintf(distro, sizeof(distro), "%s", out);
	}
	free(out);
	if (!distro[0]) {
		snprintf(distro, sizeof(distro), "debian13");
		fprintf(stderr, "pegpu nvidia: '%s' is not running; assuming %s\n", in.name, distro);
	}
	if (nvidia_plan(in.cfg.arch, distro, repo, sizeof(repo), &cmds)) {
		fprintf(stderr, "pegpu nvidia: NVIDIA publishes no repository for %s (debian12 and "
			"debian13 are known)\n", distro);
		goto out;
	}
	printf("repository: %s\n", repo);
	printf("packages:   nvidia-open (open kernel modules, built by DKMS), cuda-toolkit\n");
	printf("commands (as root in '%s'):\n", in.name);
	for (size_t i = 0; i < cmds.n; i++)
		printf("  %s\n", cmds.v[i]);
	if (dry) {
		rc = PEGPU_EXIT_OK;
		goto out_cmds;
	}
	if (!running) {
		fprintf(stderr, "pegpu nvidia: '%s' is not running: `pegpu start %s --no-gpu` first\n",
			in.name, in.name);
		goto out_cmds;
	}
	if (in.st.gpu_attached) {
		fprintf(stderr, "pegpu nvidia: the eGPU is attached: install with it detached "
			"(`pegpu stop %s`, `pegpu start %s --no-gpu`)\n", in.name, in.name);
		goto out_cmds;
	}
	if (!yes) {
		char line[16];

		printf("Run these commands? [y/N] ");
		fflush(stdout);
		if (!isatty(0) || !fgets(line, sizeof(line), stdin) || (line[0] != 'y' && line[0] != 'Y')) {
			fprintf(stderr, "pegpu nvidia: nothing installed%s\n", isatty(0) ? "" :
				" (not a terminal: pass --yes)");
			goto out_cmds;
		}
	}
	for (size_t i = 0; i < cmds.n; i++) {
		char *cmd = NULL;

		fprintf(stderr, "pegpu nvidia: [%zu/%zu] %s\n", i + 1, cmds.n, cmds.v[i]);
		if (asprintf(&cmd, "sudo sh -c '%s'", cmds.v[i]) < 0)
			goto out_cmds;
		int r = ssh_run(&in, cmd, NULL);

		free(cmd);
		if (r) {
			fprintf(stderr, "pegpu nvidia: the command failed (status %d); nothing else was run\n", r);
			goto out_cmds;
		}
	}
	in.st.nvidia_installed = true;
	instance_save_state(&in);
	fprintf(stderr, "pegpu nvidia: installed; `pegpu stop %s && pegpu start %s` attaches the eGPU\n",
		in.name, in.name);
	rc = PEGPU_EXIT_OK;
out_cmds:
	strv_free(&cmds);
out:
	instance_close(&in);
	return rc;
}

const struct pegpu_cmd pegpu_cmd_nvidia = {
	.name = "nvidia",
	.summary = "install NVIDIA's driver and CUDA in a VM (shows the plan first)",
	.run = nvidia_run,
};
