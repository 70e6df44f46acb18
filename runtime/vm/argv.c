/* SPDX-License-Identifier: Apache-2.0 */
/* config -> QEMU argv: the launch shapes (tests/golden/ pins them). */
#include "argv.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum vm_host vm_host_current(void)
{
#if defined(__APPLE__)
	return VM_HOST_MACOS;
#else
	return VM_HOST_LINUX;
#endif
}

void vm_mac(const char *name, int idx, char out[18])
{
	uint32_t h = 2166136261u;	/* FNV-1a: stable across hosts and versions */

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ (uint32_t)idx) * 16777619u;
	/* 52:54:00 is QEMU's locally administered prefix */
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

/* -netdev user,...: the SSH forward and the configured ports, all on loopback */
static int add_user_netdev(struct strv *a, const struct vm_config *c, const struct vm_launch *l,
			   const char *id, bool restrict_net)
{
	char buf[4096];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "user,id=%s%s,hostfwd=tcp:127.0.0.1:%d-:22", id,
			     restrict_net ? ",restrict=on" : "", l->ssh_port);
	for (size_t i = 0; i < c->n_ports && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",hostfwd=tcp:127.0.0.1:%d-:%d",
				      c->ports[i].host, c->ports[i].guest);
	if (n >= sizeof(buf))
		return -1;
	return strv_add(a, "-netdev") | strv_add(a, buf);
}

int vm_argv_build(const struct vm_config *c, const struct vm_launch *l, struct strv *a)
{
	bool arm = c->arch == VM_ARCH_AARCH64;
	bool gpus = l->attach_gpus && c->n_gpus > 0;
	char mac[18];
	int r = 0;

	strv_init(a);
	r |= strv_add(a, l->qemu);
	r |= strv_add(a, "-name") | strv_addf(a, "pegpu-%s", c->name);
	/* nothing implicit: every device below is chosen here */
	r |= strv_add(a, "-nodefaults");

	/* machine, accelerator, CPU */
	r |= strv_add(a, "-machine");
	if (!arm)
		r |= strv_add(a, "q35");
	else if (c->accel == VM_ACCEL_HVF && gpus)
		/* GPU DMA targets guest RAM: allocate all of it up front */
		r |= strv_add(a, "virt,highmem=on,memory-backend=ram0");
	else if (c->accel == VM_ACCEL_HVF)
		r |= strv_add(a, "virt,highmem=on");
	else if (c->accel == VM_ACCEL_KVM)
		r |= strv_add(a, "virt,gic-version=host");
	else
		r |= strv_add(a, "virt,gic-version=3");
	r |= strv_add(a, "-accel") | strv_add(a, vm_accel_name(c->accel));
	r |= strv_add(a, "-cpu");
	if (c->accel != VM_ACCEL_TCG)
		r |= strv_add(a, "host");
	else
		/* pauth-impdef: pointer auth that TCG emulates fast (boot ~3x faster) */
		r |= strv_add(a, arm ? "max,pauth-impdef=on" : "max");
	r |= strv_add(a, "-smp") | strv_addf(a, "%d", c->cpus);
	r |= strv_add(a, "-m") | strv_addf(a, "%dM", c->memory_mib);
	if (arm && c->accel == VM_ACCEL_HVF && gpus)
		r |= strv_add(a, "-object") |
		     strv_addf(a, "memory-backend-ram,id=ram0,size=%dM,prealloc=on", c->memory_mib);

	/* UEFI: the shared firmware read-only, the instance's variables writable */
	r |= strv_add(a, "-drive") | strv_addf(a, "if=pflash,format=raw,unit=0,readonly=on,file=%s", l->firmware);
	r |= strv_add(a, "-drive") | strv_addf(a, "if=pflash,format=raw,unit=1,file=%s", l->vars);

	/* disks */
	r |= strv_add(a, "-drive") |
	     strv_addf(a, "if=none,id=disk0,file=%s,format=qcow2,cache=writeback,discard=unmap", l->disk);
	r |= strv_add(a, "-device") | strv_add(a, "virtio-blk-pci,drive=disk0,bootindex=0");
	if (l->seed) {
		r |= strv_add(a, "-drive") | strv_addf(a, "if=none,id=seed,file=%s,format=raw,readonly=on", l->seed);
		r |= strv_add(a, "-device") | strv_add(a, "virtio-blk-pci,drive=seed");
	}

	/* network: romfile= because the guest never network-boots */
	if (c->net == VM_NET_VMNET) {
		vm_mac(c->name, 0, mac);
		r |= strv_add(a, "-netdev") | strv_add(a, "vmnet-shared,id=net0");
		r |= strv_add(a, "-device") | strv_addf(a, "virtio-net-pci,netdev=net0,mac=%s,romfile=", mac);
		/* a second NIC only for loopback forwards (SSH, ports); restrict=on
		 * keeps the guest's own traffic on vmnet */
		vm_mac(c->name, 1, mac);
		r |= add_user_netdev(a, c, l, "fwd0", true);
		r |= strv_add(a, "-device") | strv_addf(a, "virtio-net-pci,netdev=fwd0,mac=%s,romfile=", mac);
	} else {
		vm_mac(c->name, 0, mac);
		r |= add_user_netdev(a, c, l, "net0", false);
		r |= strv_add(a, "-device") | strv_addf(a, "virtio-net-pci,netdev=net0,mac=%s,romfile=", mac);
	}
	r |= strv_add(a, "-device") | strv_add(a, "virtio-rng-pci");

	/* the eGPU: one root port per function */
	for (size_t i = 0; gpus && i < c->n_gpus; i++) {
		r |= strv_add(a, "-device") | strv_addf(a, "pcie-root-port,id=rp%zu,chassis=%zu", i, i + 1);
		if (l->host == VM_HOST_MACOS) {
			/* DART cannot be shown to the guest: pegpu-dma maps its DMA */
			r |= strv_add(a, "-device") |
			     strv_addf(a, "pegpu-passthrough,id=gpu%zu,host=%s,bus=rp%zu", i, c->gpus[i].host, i);
			r |= strv_add(a, "-device") | strv_addf(a, "pegpu-dma,id=dma%zu,backend=dext,managed=gpu%zu", i, i);
		} else {
			/* a Linux host's IOMMU handles DMA: plain VFIO */
			r |= strv_add(a, "-device") | strv_addf(a, "vfio-pci,id=gpu%zu,host=%s,bus=rp%zu", i, c->gpus[i].host, i);
		}
	}

	/* display */
	if (c->mode == VM_MODE_DESKTOP) {
		r |= strv_add(a, "-device") | strv_add(a, "virtio-gpu-pci");
		r |= strv_add(a, "-device") | strv_add(a, "qemu-xhci");
		r |= strv_add(a, "-device") | strv_add(a, "usb-kbd");
		r |= strv_add(a, "-device") | strv_add(a, "usb-tablet");
		r |= strv_add(a, "-spice") | strv_addf(a, "unix=on,addr=%s,disable-ticketing=on", l->spice_sock);
		r |= strv_add(a, "-display") | strv_add(a, "none");
	} else {
		r |= strv_add(a, "-display") | strv_add(a, "none");
	}

	/* serial console: a socket for `pegpu console`, logged for `pegpu logs` */
	r |= strv_add(a, "-chardev") |
	     strv_addf(a, "socket,id=ser0,path=%s,server=on,wait=off,logfile=%s,logappend=on",
		       l->serial_sock, l->serial_log);
	r |= strv_add(a, "-serial") | strv_add(a, "chardev:ser0");
	r |= strv_add(a, "-qmp") | strv_addf(a, "unix:%s,server=on,wait=off", l->qmp_sock);
	r |= strv_add(a, "-pidfile") | strv_add(a, l->pidfile);
	if (l->daemonize)
		r |= strv_add(a, "-daemonize");
	if (r) {
		strv_free(a);
		return -1;
	}
	return 0;
}
