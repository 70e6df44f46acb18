/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Instance directories: $PEGPU_HOME/<name>/ (default ~/.pegpu/<name>), the
 * files in them (docs/instances.md) and the live view of the instance.
 */
#ifndef PEGPU_VM_INSTANCE_H
#define PEGPU_VM_INSTANCE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "state.h"
#include "util.h"

/* macOS limits a unix socket path to 104 bytes (sun_path), Linux to 108. */
#define VM_SUN_PATH_MAX 104

struct vm_instance {
	char name[40];
	char dir[PATH_MAX];
	char sockdir[PATH_MAX];		/* dir, or a short one under /tmp when dir is too long */
	char cfg_path[PATH_MAX];	/* pegpu.yaml */
	char state_path[PATH_MAX];	/* state.json */
	char disk[PATH_MAX];		/* disk.qcow2: overlay on the cached base image */
	char vars[PATH_MAX];		/* efi-vars.fd: this instance's UEFI variables */
	char seed[PATH_MAX];		/* seed.iso: the cloud-init NoCloud seed */
	char seed_dir[PATH_MAX];	/* cidata/: the seed's files, for reading */
	char key[PATH_MAX];		/* id_ed25519: the key pegpu logs in with */
	char known_hosts[PATH_MAX];	/* the guest's host key, recorded at create */
	char hostkey[PATH_MAX];		/* ssh_host_ed25519_key: handed to the guest via the seed */
	char serial_log[PATH_MAX];
	char qemu_log[PATH_MAX];	/* QEMU's own stderr */
	char pidfile[PATH_MAX];
	char qmp_sock[PATH_MAX];
	char serial_sock[PATH_MAX];
	char lock[PATH_MAX];
	struct vm_config cfg;
	struct vm_state_rec st;
	int lock_fd;
};

/* $PEGPU_HOME, or ~/.pegpu */
int vm_home(char *buf, size_t len);
/* The cache of base images: $PEGPU_CACHE/images, or ~/.cache/pegpu/images */
int vm_cache_dir(char *buf, size_t len);

/* Fill the paths for name (nothing is read or created). */
int instance_paths(struct vm_instance *in, const char *name, char *err, size_t errlen);
/* Paths + config + state; fails with a helpful message when there is none. */
int instance_open(struct vm_instance *in, const char *name, char *err, size_t errlen);
void instance_close(struct vm_instance *in);
/* Serialise commands on one instance (flock); fails when another holds it. */
int instance_lock(struct vm_instance *in, char *err, size_t errlen);
int instance_save_state(struct vm_instance *in);
int instance_save_config(struct vm_instance *in);
/* Names of all instances, sorted. */
int instance_list(struct strv *names);

/* QEMU's pid from the pidfile when that process is alive and ours, else 0. */
pid_t instance_qemu_pid(const struct vm_instance *in);
/*
 * The live state: the persisted one, or VM_ST_CRASHED when it says QEMU
 * runs but it does not.
 */
enum vm_state instance_live_state(const struct vm_instance *in);
/*
 * Notice a crash and clean up after it: stale pidfile and sockets, the
 * sleep inhibitor, the state.  Returns true when something was recovered.
 */
bool instance_recover(struct vm_instance *in);
/* Apply an event; refuses (with a message) transitions the table forbids. */
int instance_transition(struct vm_instance *in, enum vm_event ev, char *err, size_t errlen);

#endif /* PEGPU_VM_INSTANCE_H */
