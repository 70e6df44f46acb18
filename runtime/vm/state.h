/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An instance's life cycle.  The persisted state (state.json) says what the
 * runtime last did; the live state also looks at the QEMU process, so a
 * crash (SIGKILL, host reboot) shows up as "crashed" and is recovered on
 * the next command.  vm_state_next() is the whole transition table: pure,
 * unit-tested, and the only place that decides what may follow what.
 */
#ifndef PEGPU_VM_STATE_H
#define PEGPU_VM_STATE_H

#include <stdbool.h>
#include <sys/types.h>

enum vm_state {
	VM_ST_CREATED,		/* directory, disk and seed exist; never booted to the end */
	VM_ST_PROVISIONING,	/* first boot: cloud-init is running */
	VM_ST_STOPPED,
	VM_ST_STARTING,
	VM_ST_RUNNING,
	VM_ST_STOPPING,
	VM_ST_CRASHED,		/* live view only: QEMU died while the state said it ran */
	VM_ST__COUNT
};

enum vm_event {
	VM_EV_BOOT,		/* QEMU is being started */
	VM_EV_UP,		/* QEMU runs and the guest answered (SSH) */
	VM_EV_PROVISIONED,	/* first boot finished without errors */
	VM_EV_STOP,		/* the stop ladder began */
	VM_EV_DOWN,		/* QEMU exited after a stop */
	VM_EV_DIED,		/* QEMU is gone without a stop */
	VM_EV_FAIL,		/* starting or provisioning failed; QEMU was stopped */
	VM_EV_RECOVER,		/* a crash was noticed and cleaned up */
	VM_EV__COUNT
};

struct vm_state_rec {
	enum vm_state state;
	bool provisioned;	/* first boot finished once */
	bool driver_installed;	/* pegpu-dma loaded in the guest */
	bool nvidia_installed;	/* `pegpu nvidia install` finished */
	bool gpu_attached;	/* this run of QEMU has the passthrough GPU */
	pid_t pid;		/* QEMU, while starting/running/stopping */
	pid_t inhibitor_pid;	/* the sleep inhibitor helper, if any */
	int ssh_port;		/* loopback port forwarded to the guest's sshd */
	long started_at;	/* wall clock, seconds */
	char last_stop[32];	/* how the last run ended: poweroff, acpi, killed, crashed */
};

const char *vm_state_name(enum vm_state s);
const char *vm_event_name(enum vm_event e);
/*
 * The state after event e in state s (provisioned says whether the
 * instance finished its first boot), or -1 when e is not allowed in s.
 */
int vm_state_next(enum vm_state s, enum vm_event e, bool provisioned);

/* state.json */
int vm_state_load(struct vm_state_rec *st, const char *path);
int vm_state_save(const struct vm_state_rec *st, const char *path);

#endif /* PEGPU_VM_STATE_H */
