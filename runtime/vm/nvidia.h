/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The NVIDIA stack for the guest: NVIDIA's own Debian repository (CUDA
 * keyring), the open kernel modules (nvidia-open, built by DKMS) and the
 * CUDA toolkit.  The plan is a pure function so `pegpu nvidia install
 * --dry-run` and the unit tests see exactly what would run.
 */
#ifndef PEGPU_VM_NVIDIA_H
#define PEGPU_VM_NVIDIA_H

#include <stddef.h>

#include "config.h"
#include "util.h"

/*
 * distro: "debian12" or "debian13" (from the guest's /etc/os-release).
 * Fills repo (the repository URL) and cmds (shell commands run as root in
 * the guest, in order).  -1 for a distro NVIDIA does not publish.
 */
int nvidia_plan(enum vm_arch arch, const char *distro, char *repo, size_t repolen, struct strv *cmds);

#endif /* PEGPU_VM_NVIDIA_H */
