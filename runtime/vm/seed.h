/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cloud-init NoCloud seed: user-data, meta-data and network-config,
 * generated from the instance config, written as an ISO 9660 volume
 * labelled "cidata" (written here, so macOS needs no mkisofs).
 */
#ifndef PEGPU_VM_SEED_H
#define PEGPU_VM_SEED_H

#include <stddef.h>

#include "config.h"

struct vm_seed_in {
	const struct vm_config *cfg;
	const char *instance_id;	/* changes only when the instance is re-created */
	const char *user_pubkey;	/* "ssh-ed25519 AAAA... comment" */
	const char *host_privkey;	/* the guest's host key (OpenSSH PEM) */
	const char *host_pubkey;
	const unsigned char *driver_deb;	/* pegpu-dma-dkms .deb, or NULL */
	size_t driver_deb_len;
};

char *vm_seed_user_data(const struct vm_seed_in *s);
char *vm_seed_meta_data(const struct vm_seed_in *s);
char *vm_seed_network_config(const struct vm_seed_in *s);

struct iso_file {
	const char *name;	/* short lowercase name, shown as-is by Linux */
	const void *data;
	size_t len;
};

/* A single-directory ISO 9660 image with volume id label. */
int iso_write(const char *path, const char *label, const struct iso_file *files, size_t n);

/* Base64 (RFC 4648) of len bytes, malloc'd. */
char *base64_encode(const unsigned char *p, size_t len);

/* The provisioning steps, in the order the guest runs them. */
extern const char *const vm_seed_steps[];

#endif /* PEGPU_VM_SEED_H */
