/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu cp: copy files between the host and an instance (scp). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vm/ssh.h"
#include "vm/vm.h"

static void cp_usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu cp [-r] SRC... DST\n\n"
		"Copy files to or from an instance; the instance side is written NAME:PATH\n"
		"(relative paths are in the user's home directory).\n"
		"  pegpu cp ./model.gguf dev:models/\n"
		"  pegpu cp -r dev:/var/log/ ./guest-logs\n");
}

/* "NAME:path" -> name (into buf) and the path; NULL when it is a host path */
static const char *remote_part(const char *arg, char *name, size_t len)
{
	const char *colon = strchr(arg, ':'), *slash = strchr(arg, '/');

	/* "./a:b" and "/x:y" are host paths */
	if (!colon || colon == arg || (size_t)(colon - arg) >= len || (slash && slash < colon))
		return NULL;
	snprintf(name, len, "%.*s", (int)(colon - arg), arg);
	return name_valid(name) ? colon + 1 : NULL;
}

static int cp_run(int argc, char **argv)
{
	struct vm_instance in;
	char name[48] = "", n2[48], dest[96];
	struct strv a;
	bool recursive = false;
	int first = 1;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		cp_usage(stdout);
		return PEGPU_EXIT_OK;
	}
	if (argc > 1 && !strcmp(argv[1], "-r")) {
		recursive = true;
		first = 2;
	}
	if (argc - first < 2) {
		cp_usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	for (int i = first; i < argc; i++) {
		if (!remote_part(argv[i], n2, sizeof(n2)))
			continue;
		if (name[0] && strcmp(name, n2)) {
			fprintf(stderr, "pegpu cp: copy between the host and one instance (%s and %s given)\n",
				name, n2);
			return PEGPU_EXIT_USAGE;
		}
		snprintf(name, sizeof(name), "%s", n2);
	}
	if (!name[0]) {
		fprintf(stderr, "pegpu cp: no NAME:PATH argument: one side must be the instance\n");
		return PEGPU_EXIT_USAGE;
	}
	if (vm_cmd_open("cp", name, &in, false))
		return PEGPU_EXIT_FAIL;
	if (instance_live_state(&in) != VM_ST_RUNNING) {
		fprintf(stderr, "pegpu cp: '%s' is not running: `pegpu start %s` first\n", name, name);
		return PEGPU_EXIT_FAIL;
	}
	if (ssh_argv(&in, true, true, &a) || ssh_dest(&in, dest, sizeof(dest)))
		return PEGPU_EXIT_FAIL;
	strv_add(&a, "-q");
	if (recursive)
		strv_add(&a, "-r");
	for (int i = first; i < argc; i++) {
		const char *path = remote_part(argv[i], n2, sizeof(n2));

		if (path)
			strv_addf(&a, "%s:%s", dest, path);
		else
			strv_add(&a, argv[i]);
	}
	fflush(NULL);
	execvp(a.v[0], a.v);
	perror("pegpu cp: cannot run scp");
	return PEGPU_EXIT_FAIL;
}

const struct pegpu_cmd pegpu_cmd_cp = {
	.name = "cp",
	.summary = "copy files between the host and a VM",
	.run = cp_run,
};
