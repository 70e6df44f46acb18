/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting, provisioning and stopping instances: what `create`, `start`,
 * `stop` and `destroy` share.  Everything here reports progress on stderr
 * and explains a refusal in err.
 */
#ifndef PEGPU_VM_VM_H
#define PEGPU_VM_VM_H

#include <jansson.h>
#include <stdbool.h>

#include "instance.h"

struct vm_start_opts {
	bool no_gpu;		/* leave the eGPU detached this time */
	bool wait_ssh;		/* return when SSH answers */
	double timeout_s;	/* for SSH (and provisioning) */
};

struct vm_stop_opts {
	bool force;		/* kill QEMU even while a passthrough GPU is attached */
	int timeout_s;		/* the long wait after ACPI powerdown; 0: the config's */
};

/* QEMU for the instance's architecture (config, environment, PATH). */
int vm_find_qemu(const struct vm_config *c, char *buf, size_t len);
/* UEFI code and a template for the variables store. */
int vm_find_firmware(const struct vm_config *c, const char *qemu, char *code, size_t clen,
		     char *vars, size_t vlen);
/* qemu-img next to QEMU, or from PATH. */
int vm_find_qemu_img(const char *qemu, char *buf, size_t len);
/* The pegpu-dma-dkms package that provisioning installs. */
int vm_find_driver_deb(char *buf, size_t len);

/*
 * Everything start needs, checked before QEMU runs: returns 0, or -1 with
 * the reason (and what to do) in err.
 */
int vm_preflight(struct vm_instance *in, const struct vm_start_opts *o, char *err, size_t errlen);
/* Preflight, launch QEMU (daemonized), hold the inhibitor, wait for SSH. */
int vm_start(struct vm_instance *in, const struct vm_start_opts *o, char *err, size_t errlen);
/*
 * First boot: follow the named steps in the serial log until the guest
 * says "done" or a step fails (then print the guest's log excerpt).
 */
int vm_provision_wait(struct vm_instance *in, long serial_off, double timeout_s, char *err, size_t errlen);
/* The stop ladder. */
int vm_stop(struct vm_instance *in, const struct vm_stop_opts *o, char *err, size_t errlen);

/*
 * For commands: open (and optionally lock) the instance, notice a crash.
 * Prints "pegpu CMD: <why>" and returns non-zero when it cannot.
 */
int vm_cmd_open(const char *cmd, const char *name, struct vm_instance *in, bool lock);

/* An instance as JSON (`pegpu status --json`, `pegpu list --json`). */
json_t *vm_status_json(const struct vm_instance *in);

/* Progress line: "pegpu: [ 12s] step  message" */
void vm_step(double t0, const char *step, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* PEGPU_VM_VM_H */
