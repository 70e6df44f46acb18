/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SSH into an instance with OpenSSH's own client: the instance's ed25519
 * key, and its host key recorded at create (pegpu generates the guest's
 * host key and hands it over in the cloud-init seed, so the very first
 * connection is already verified: StrictHostKeyChecking=yes, always).
 */
#ifndef PEGPU_VM_SSH_H
#define PEGPU_VM_SSH_H

#include <stdbool.h>

#include "instance.h"

/* Create id_ed25519, the guest's host key and known_hosts. */
int ssh_keys_create(struct vm_instance *in, char *err, size_t errlen);
/*
 * "ssh" or "scp" with the instance's options (no destination): callers
 * append "user@127.0.0.1" and the command, or scp's paths.
 */
int ssh_argv(const struct vm_instance *in, bool scp, bool batch, struct strv *a);
/* The login destination: user@127.0.0.1 */
int ssh_dest(const struct vm_instance *in, char *buf, size_t len);
/* Run cmd in the guest; output captured when out is non-NULL.  Returns ssh's status. */
int ssh_run(const struct vm_instance *in, const char *cmd, char **out);
/* Wait until sshd answers; 0 when it did within timeout_s. */
int ssh_wait(const struct vm_instance *in, double timeout_s);

#endif /* PEGPU_VM_SSH_H */
