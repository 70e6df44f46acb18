/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu doctor: check this host can run pegpu VMs, and say how to fix what is missing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vm/argv.h"
#include "vm/vm.h"

struct tally {
	int fail, warn;
};

static void check(struct tally *t, int level, const char *what, const char *detail)
{
	/* level: 0 ok, 1 warning, 2 failure */
	printf("%-5s %-22s %s\n", level == 0 ? "ok" : level == 1 ? "warn" : "FAIL", what, detail);
	if (level == 1)
		t->warn++;
	if (level == 2)
		t->fail++;
}

static void check_tool(struct tally *t, const char *tool, int level, const char *fix)
{
	char *p = path_which(tool), msg[PATH_MAX + 64];

	snprintf(msg, sizeof(msg), "%s", p ? p : fix);
	check(t, p ? 0 : level, tool, msg);
	free(p);
}

static int doctor_run(int argc, char **argv)
{
	struct tally t = { 0 };
	struct vm_config c;
	char qemu[PATH_MAX], code[PATH_MAX], vars[PATH_MAX], buf[PATH_MAX + 128], home[PATH_MAX];

	if (argc > 1) {
		printf("usage: pegpu doctor\n\nCheck QEMU, firmware, tools, acceleration and directories; "
		       "exit 1 when something\nneeded is missing (each line says how to fix it).\n");
		return strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? PEGPU_EXIT_USAGE : PEGPU_EXIT_OK;
	}
	vm_config_defaults(&c, "doctor");
	for (int a = 0; a < 2; a++) {
		c.arch = a ? VM_ARCH_X86_64 : VM_ARCH_AARCH64;
		bool native = c.arch == vm_config_defaults_arch();
		char label[32];

		snprintf(label, sizeof(label), "qemu (%s)", vm_arch_name(c.arch));
		if (vm_find_qemu(&c, qemu, sizeof(qemu))) {
			snprintf(buf, sizeof(buf), "not found: `make qemu` builds PEGPU Machine; set "
				 "PEGPU_QEMU_%s", a ? "X86_64" : "AARCH64");
			check(&t, native ? 2 : 1, label, buf);
			continue;
		}
		check(&t, 0, label, qemu);
		snprintf(label, sizeof(label), "firmware (%s)", vm_arch_name(c.arch));
		if (vm_find_firmware(&c, qemu, code, sizeof(code), vars, sizeof(vars)))
			check(&t, native ? 2 : 1, label, a ? "install ovmf" :
			      "install qemu-efi-aarch64 (Linux); macOS: QEMU's edk2-aarch64-code.fd");
		else
			check(&t, 0, label, code);
		if (!vm_find_qemu_img(qemu, buf, sizeof(buf)))
			check(&t, 0, "qemu-img", buf);
		else
			check(&t, 2, "qemu-img", "install qemu-utils");
	}
	check_tool(&t, "ssh", 2, "install openssh-client");
	check_tool(&t, "scp", 2, "install openssh-client");
	check_tool(&t, "ssh-keygen", 2, "install openssh-client");
	if (vm_host_current() == VM_HOST_MACOS) {
		check_tool(&t, "caffeinate", 1, "missing: the Mac may sleep under a running GPU VM");
		check(&t, 0, "accel", "hvf (Hypervisor.framework)");
		check(&t, 1, "SIP / driver", "check by hand: `csrutil status` (SIP off until the driver is "
		      "signed) and `systemextensionsctl list` (pegpu driver [activated enabled]); "
		      "docs/guide-macos.md");
	} else {
		check_tool(&t, "systemd-inhibit", 1, "missing: the host may sleep while a GPU is attached");
		check(&t, access("/dev/kvm", R_OK | W_OK) ? 1 : 0, "accel",
		      access("/dev/kvm", R_OK | W_OK) ? "tcg only (/dev/kvm not usable); fine, slower" :
		      "/dev/kvm usable: --accel kvm is possible");
	}
	if (vm_find_driver_deb(buf, sizeof(buf)) == 0)
		check(&t, 0, "guest driver package", buf);
	else
		check(&t, 1, "guest driver package", "pegpu-dma-dkms .deb not found: guest/dkms/mkdeb.sh "
		      "builds it; set PEGPU_DRIVER_DEB (needed by `pegpu create` unless --no-guest-driver)");
	if (vm_home(home, sizeof(home)) == 0 && (mkdir_p(home, 0700) == 0 && access(home, W_OK) == 0))
		check(&t, 0, "instances", home);
	else
		check(&t, 2, "instances", "cannot create $PEGPU_HOME (default ~/.pegpu)");
	if (vm_cache_dir(buf, sizeof(buf)) == 0 && mkdir_p(buf, 0755) == 0 && access(buf, W_OK) == 0)
		check(&t, 0, "image cache", buf);
	else
		check(&t, 2, "image cache", "cannot create $PEGPU_CACHE/images (default ~/.cache/pegpu/images)");
	printf("\n%d problem(s), %d warning(s)\n", t.fail, t.warn);
	return t.fail ? PEGPU_EXIT_FAIL : PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_doctor = {
	.name = "doctor",
	.summary = "check this host can run pegpu VMs",
	.run = doctor_run,
};
