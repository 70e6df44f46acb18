/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The launch shape: instance config + launch facts -> QEMU argv.  A pure
 * function (no files, no environment) so golden files in tests/golden/
 * pin every shape: macOS (hvf, vmnet, passthrough + pegpu-dma per GPU
 * function), Linux TCG and KVM (user networking with host forwards).
 */
#ifndef PEGPU_VM_ARGV_H
#define PEGPU_VM_ARGV_H

#include <stdbool.h>

#include "config.h"
#include "util.h"

enum vm_host { VM_HOST_LINUX, VM_HOST_MACOS };

struct vm_launch {
	enum vm_host host;
	const char *qemu;
	const char *firmware;	/* UEFI code (read-only pflash) */
	const char *vars;	/* this instance's UEFI variables (writable pflash) */
	const char *disk;
	const char *seed;	/* NULL: no seed attached */
	const char *pidfile;
	const char *qmp_sock;
	const char *serial_sock;
	const char *serial_log;
	const char *spice_sock;	/* desktop mode */
	int ssh_port;
	bool attach_gpus;	/* false: start without the eGPU (first run, --no-gpu) */
	bool daemonize;
};

/* The instance's MAC address for NIC idx (stable, derived from its name). */
void vm_mac(const char *name, int idx, char out[18]);
/* The host this binary runs on. */
enum vm_host vm_host_current(void);

int vm_argv_build(const struct vm_config *c, const struct vm_launch *l, struct strv *out);

#endif /* PEGPU_VM_ARGV_H */
