/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu image build|pull|list: base images in the cache. */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vm/image.h"
#include "vm/instance.h"
#include "vm/vm.h"

static void image_usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu image build --out FILE.qcow2 [--arch amd64|arm64] [--suite trixie]\n"
		"                         [--size 3G] [--packages \"p1 p2\"] [--compress]\n"
		"       pegpu image pull [URL|PATH]\n"
		"       pegpu image list\n\n"
		"build: make a guest image from Debian packages with debootstrap (needs root),\n"
		"       for offline and reproducible setups; writes FILE.qcow2 and SHA512SUMS next\n"
		"       to it, the layout `pegpu create --image` expects (a path or an http URL).\n"
		"pull:  download and verify an image into the cache (default: Debian 13's cloud\n"
		"       image for this host), so a later create needs no network.\n"
		"list:  the cached images (named by their SHA-512).\n");
}

/* scripts/image-build.sh: installed next to the data, or in the source tree */
static int find_script(char *buf, size_t len)
{
	const char *e = getenv("PEGPU_SCRIPTS");
	char exe[PATH_MAX], dir[PATH_MAX];
	ssize_t l;

	if (e && *e)
		return snprintf(buf, len, "%s/image-build.sh", e) < (int)len && path_exists(buf) ? 0 : -1;
#ifdef PEGPU_VM_DATADIR
	if (snprintf(buf, len, "%s/image-build.sh", PEGPU_VM_DATADIR) < (int)len && path_exists(buf))
		return 0;
#endif
	l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (l <= 0)
		return -1;
	exe[l] = 0;
	snprintf(dir, sizeof(dir), "%s", dirname(exe));
	for (int up = 0; up < 5; up++) {
		if (snprintf(buf, len, "%s/scripts/image-build.sh", dir) < (int)len && path_exists(buf))
			return 0;
		snprintf(exe, sizeof(exe), "%s", dir);
		snprintf(dir, sizeof(dir), "%s", dirname(exe));
	}
	return -1;
}

static int image_run(int argc, char **argv)
{
	char cache[PATH_MAX], path[PATH_MAX], sha[129], err[2048], script[PATH_MAX];

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		image_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? PEGPU_EXIT_USAGE : PEGPU_EXIT_OK;
	}
	if (vm_cache_dir(cache, sizeof(cache))) {
		fprintf(stderr, "pegpu image: HOME is not set\n");
		return PEGPU_EXIT_FAIL;
	}
	if (!strcmp(argv[1], "build")) {
		struct strv a;

		if (find_script(script, sizeof(script))) {
			fprintf(stderr, "pegpu image: scripts/image-build.sh not found: set PEGPU_SCRIPTS to "
				"the scripts/ folder of a pegpu checkout\n");
			return PEGPU_EXIT_FAIL;
		}
		strv_init(&a);
		strv_add(&a, script);
		for (int i = 2; i < argc; i++)
			strv_add(&a, argv[i]);
		fflush(NULL);
		execv(a.v[0], a.v);
		perror("pegpu image: cannot run image-build.sh");
		return PEGPU_EXIT_FAIL;
	}
	if (!strcmp(argv[1], "pull") && argc <= 3) {
		struct vm_config c;

		vm_config_defaults(&c, "image");
		const char *url = argc == 3 ? argv[2] : image_default_url(c.arch);

		if (image_fetch(url, cache, 1, path, sizeof(path), sha, err, sizeof(err))) {
			fprintf(stderr, "pegpu image: %s\n", err);
			return PEGPU_EXIT_FAIL;
		}
		printf("%s\n", path);
		return PEGPU_EXIT_OK;
	}
	if (!strcmp(argv[1], "list") && argc == 2) {
		DIR *d = opendir(cache);
		struct dirent *e;

		if (!d)
			return PEGPU_EXIT_OK;
		while ((e = readdir(d))) {
			struct stat st;

			if (strncmp(e->d_name, "sha512-", 7))
				continue;
			snprintf(path, sizeof(path), "%s/%s", cache, e->d_name);
			if (stat(path, &st) == 0)
				printf("%-90s %8.1f MiB%s\n", path, st.st_size / 1048576.0,
				       strstr(e->d_name, ".part") ? "  (partial download)" : "");
		}
		closedir(d);
		return PEGPU_EXIT_OK;
	}
	image_usage(stderr);
	return PEGPU_EXIT_USAGE;
}

const struct pegpu_cmd pegpu_cmd_image = {
	.name = "image",
	.summary = "build, download or list base images",
	.run = image_run,
};
