/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The launch shapes: instance config -> QEMU argv, compared one argument
 * per line with tests/golden/argv-*.txt.  A difference is either a bug or
 * a deliberate change of shape: then rerun with PEGPU_UPDATE_GOLDEN=1 and
 * review the golden diff like code.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "argv.h"
#include "config.h"

#define DIR "/home/ada/.pegpu/dev"

static const struct vm_launch base_launch = {
	.host = VM_HOST_LINUX,
	.qemu = "/opt/pegpu/bin/qemu-system-x86_64",
	.firmware = "/usr/share/OVMF/OVMF_CODE_4M.fd",
	.vars = DIR "/efi-vars.fd",
	.disk = DIR "/disk.qcow2",
	.seed = DIR "/seed.iso",
	.pidfile = DIR "/qemu.pid",
	.qmp_sock = DIR "/qmp.sock",
	.serial_sock = DIR "/serial.sock",
	.serial_log = DIR "/serial.log",
	.spice_sock = DIR "/spice.sock",
	.ssh_port = 40022,
	.attach_gpus = true,
	.daemonize = true,
};

static void golden(const char *name, const struct vm_config *c, const struct vm_launch *l)
{
	char path[1024], *want = NULL;
	struct strv a;
	FILE *f;
	long len;

	assert_int_equal(vm_argv_build(c, l, &a), 0);
	char *got = strv_join(&a, "\n");

	assert_non_null(got);
	snprintf(path, sizeof(path), "%s/argv-%s.txt", GOLDEN_DIR, name);
	if (getenv("PEGPU_UPDATE_GOLDEN")) {
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "%s\n", got);
		fclose(f);
	}
	f = fopen(path, "r");
	if (!f)
		fail_msg("%s missing: run with PEGPU_UPDATE_GOLDEN=1 once and review it", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	want = calloc(1, (size_t)len + 1);
	assert_int_equal(fread(want, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	if (len && want[len - 1] == '\n')
		want[len - 1] = 0;
	if (strcmp(got, want))
		fail_msg("argv for %s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want);
	free(want);
	free(got);
	strv_free(&a);
}

static struct vm_config linux_cfg(enum vm_arch arch, enum vm_accel accel)
{
	struct vm_config c;

	vm_config_defaults(&c, "dev");
	c.arch = arch;
	c.accel = accel;
	c.net = VM_NET_USER;
	c.cpus = 2;
	c.memory_mib = 2048;
	vm_config_port_add(&c, 8080, 80);
	vm_config_port_add(&c, 50052, 50052);
	return c;
}

static struct vm_config mac_cfg(void)
{
	struct vm_config c;

	vm_config_defaults(&c, "dev");
	c.arch = VM_ARCH_AARCH64;
	c.accel = VM_ACCEL_HVF;
	c.net = VM_NET_VMNET;
	c.cpus = 6;
	c.memory_mib = 16384;
	vm_config_port_add(&c, 8080, 80);
	c.n_gpus = 2;	/* an eGPU's VGA and audio functions */
	snprintf(c.gpus[0].host, sizeof(c.gpus[0].host), "0x100000a1c");
	snprintf(c.gpus[1].host, sizeof(c.gpus[1].host), "0x100000a1d");
	return c;
}

static void test_linux_tcg_x86_64(void **s)
{
	struct vm_config c = linux_cfg(VM_ARCH_X86_64, VM_ACCEL_TCG);

	(void)s;
	golden("linux-tcg-x86_64", &c, &base_launch);
}

static void test_linux_tcg_aarch64(void **s)
{
	struct vm_config c = linux_cfg(VM_ARCH_AARCH64, VM_ACCEL_TCG);
	struct vm_launch l = base_launch;

	(void)s;
	l.qemu = "/opt/pegpu/bin/qemu-system-aarch64";
	l.firmware = "/usr/share/AAVMF/AAVMF_CODE.fd";
	golden("linux-tcg-aarch64", &c, &l);
}

static void test_linux_kvm_vfio(void **s)
{
	struct vm_config c = linux_cfg(VM_ARCH_X86_64, VM_ACCEL_KVM);

	(void)s;
	c.n_gpus = 1;
	snprintf(c.gpus[0].host, sizeof(c.gpus[0].host), "0000:03:00.0");
	golden("linux-kvm-vfio", &c, &base_launch);
}

static void test_macos_hvf_gpu(void **s)
{
	struct vm_config c = mac_cfg();
	struct vm_launch l = base_launch;

	(void)s;
	l.host = VM_HOST_MACOS;
	l.qemu = "/Applications/PEGPU Machine.app/Contents/MacOS/qemu-system-aarch64";
	l.firmware = "/opt/homebrew/share/qemu/edk2-aarch64-code.fd";
	l.seed = NULL;
	golden("macos-hvf-gpu", &c, &l);
}

static void test_macos_first_run(void **s)
{
	struct vm_config c = mac_cfg();
	struct vm_launch l = base_launch;

	(void)s;
	/* first boot: provisioning, no eGPU, no preallocation */
	l.host = VM_HOST_MACOS;
	l.qemu = "/Applications/PEGPU Machine.app/Contents/MacOS/qemu-system-aarch64";
	l.firmware = "/opt/homebrew/share/qemu/edk2-aarch64-code.fd";
	l.attach_gpus = false;
	golden("macos-hvf-first-run", &c, &l);
}

static void test_macos_desktop(void **s)
{
	struct vm_config c = mac_cfg();
	struct vm_launch l = base_launch;

	(void)s;
	c.mode = VM_MODE_DESKTOP;
	l.host = VM_HOST_MACOS;
	l.qemu = "/Applications/PEGPU Machine.app/Contents/MacOS/qemu-system-aarch64";
	l.firmware = "/opt/homebrew/share/qemu/edk2-aarch64-code.fd";
	l.seed = NULL;
	golden("macos-hvf-desktop", &c, &l);
}

static void test_mac_stable(void **s)
{
	char a[18], b[18], c[18];

	(void)s;
	vm_mac("dev", 0, a);
	vm_mac("dev", 0, b);
	vm_mac("dev", 1, c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_memory_equal(a, "52:54:00:", 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linux_tcg_x86_64),
		cmocka_unit_test(test_linux_tcg_aarch64),
		cmocka_unit_test(test_linux_kvm_vfio),
		cmocka_unit_test(test_macos_hvf_gpu),
		cmocka_unit_test(test_macos_first_run),
		cmocka_unit_test(test_macos_desktop),
		cmocka_unit_test(test_mac_stable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
