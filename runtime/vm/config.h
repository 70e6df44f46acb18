/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An instance's configuration: <instance>/pegpu.yaml.  What the user chose
 * (create flags, later `pegpu port add`), never what happens at run time
 * (that is state.json, see state.h).  docs/instances.md documents the keys.
 */
#ifndef PEGPU_VM_CONFIG_H
#define PEGPU_VM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define VM_MAX_PORTS 64
#define VM_MAX_GPUS 8
#define VM_MAX_PACKAGES 64

enum vm_arch { VM_ARCH_AARCH64, VM_ARCH_X86_64 };
enum vm_accel { VM_ACCEL_TCG, VM_ACCEL_KVM, VM_ACCEL_HVF };
enum vm_net { VM_NET_USER, VM_NET_VMNET };
enum vm_mode { VM_MODE_HEADLESS, VM_MODE_DESKTOP };

struct vm_port {
	int host;	/* loopback port on the host */
	int guest;	/* port in the guest */
};

struct vm_gpu {
	char host[64];	/* Linux: PCI address for vfio-pci; macOS: dext device id */
};

struct vm_config {
	char name[40];
	enum vm_arch arch;
	enum vm_accel accel;
	int cpus;
	int memory_mib;
	int disk_gib;
	enum vm_net net;
	enum vm_mode mode;
	char user[32];
	char image_url[1024];	/* where the base image came from */
	char image_sha512[129];	/* its checksum, from the published SHA512SUMS */
	char image_path[1024];	/* the verified cache file the overlay is based on */
	char qemu[1024];	/* QEMU binary; empty: find it (docs/instances.md) */
	char firmware[1024];	/* UEFI code; empty: find it */
	bool guest_driver;	/* install pegpu-dma (DKMS) at provisioning */
	bool nvidia;		/* the NVIDIA stack is wanted before the GPU attaches */
	int stop_timeout_s;	/* the stop ladder's long wait */
	size_t n_packages;
	char packages[VM_MAX_PACKAGES][64];
	size_t n_ports;
	struct vm_port ports[VM_MAX_PORTS];
	size_t n_gpus;
	struct vm_gpu gpus[VM_MAX_GPUS];
};

/* This host's native guest architecture. */
enum vm_arch vm_config_defaults_arch(void);
/* Defaults for this host (arch, accel, network). */
void vm_config_defaults(struct vm_config *c, const char *name);
/* Load and validate; on error writes a message to err and returns -1. */
int vm_config_load(struct vm_config *c, const char *path, char *err, size_t errlen);
int vm_config_parse(struct vm_config *c, const char *yaml, size_t len, char *err, size_t errlen);
/* Serialise (YAML) into a malloc'd string / write atomically. */
char *vm_config_emit(const struct vm_config *c);
int vm_config_save(const struct vm_config *c, const char *path);
/* Check the values make sense together; message into err. */
int vm_config_validate(const struct vm_config *c, char *err, size_t errlen);

const char *vm_arch_name(enum vm_arch a);	/* "aarch64" / "x86_64" */
const char *vm_accel_name(enum vm_accel a);
int vm_arch_parse(const char *s, enum vm_arch *a);
int vm_accel_parse(const char *s, enum vm_accel *a);

/* Ports: -1 when the host port is already forwarded. */
int vm_config_port_add(struct vm_config *c, int host, int guest);
int vm_config_port_rm(struct vm_config *c, int host);

#endif /* PEGPU_VM_CONFIG_H */
