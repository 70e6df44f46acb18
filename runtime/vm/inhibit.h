/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keep the host awake while a VM with a passthrough GPU runs: a sleeping
 * Mac tears the Thunderbolt link down under the guest's driver.  The
 * inhibitor is a helper process that watches QEMU's pid and exits with it,
 * so it is released when QEMU exits, however QEMU exits.
 *   Linux: systemd-inhibit (inhibit_linux.c)
 *   macOS: caffeinate -i -s -w PID, an IOPM assertion (inhibit_macos.c)
 */
#ifndef PEGPU_VM_INHIBIT_H
#define PEGPU_VM_INHIBIT_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Hold a sleep inhibitor until qemu_pid exits.  Returns the helper's pid,
 * or -1 with a message in err when the host offers no way to inhibit
 * sleep (callers warn and go on: the VM itself is fine).
 */
pid_t inhibit_hold(pid_t qemu_pid, const char *why, char *err, size_t errlen);
/* Release early (the helper also exits by itself with QEMU). */
void inhibit_release(pid_t helper);

#endif /* PEGPU_VM_INHIBIT_H */
