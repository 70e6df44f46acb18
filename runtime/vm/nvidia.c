/* SPDX-License-Identifier: Apache-2.0 */
/* The NVIDIA install plan (see nvidia.h). */
#include "nvidia.h"

#include <stdio.h>
#include <string.h>

#define NVIDIA_REPOS "https://developer.download.nvidia.com/compute/cuda/repos"

int nvidia_plan(enum vm_arch arch, const char *distro, char *repo, size_t repolen, struct strv *cmds)
{
	/* NVIDIA names arm64 servers "sbsa" */
	const char *narch = arch == VM_ARCH_AARCH64 ? "sbsa" : "x86_64";
	int r = 0;

	strv_init(cmds);
	if (strcmp(distro, "debian12") && strcmp(distro, "debian13"))
		return -1;
	if (snprintf(repo, repolen, "%s/%s/%s/", NVIDIA_REPOS, distro, narch) >= (int)repolen)
		return -1;
	r |= strv_add(cmds, "apt-get -q update");
	/* DKMS builds the open modules against the running kernel */
	r |= strv_add(cmds, "apt-get -q install -y --no-install-recommends ca-certificates curl dkms "
			    "\"linux-headers-$(uname -r)\"");
	r |= strv_addf(cmds, "curl -fsSL -o /tmp/cuda-keyring.deb %scuda-keyring_1.1-1_all.deb", repo);
	r |= strv_add(cmds, "dpkg -i /tmp/cuda-keyring.deb");
	r |= strv_add(cmds, "apt-get -q update");
	r |= strv_add(cmds, "apt-get -q install -y nvidia-open cuda-toolkit");
	if (r) {
		strv_free(cmds);
		return -1;
	}
	return 0;
}
