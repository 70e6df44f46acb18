/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu.yaml: parsing, validation with helpful errors, emit/parse round trip. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

static const char full[] =
	"name: gpu1\n"
	"arch: aarch64\n"
	"accel: hvf\n"
	"cpus: 6\n"
	"memory: 16G\n"
	"disk: 64\n"
	"network: vmnet\n"
	"mode: desktop\n"
	"user: ada\n"
	"image:\n"
	"  url: https://example.org/images/debian-13-generic-arm64.qcow2\n"
	"  sha512: abcd\n"
	"  path: /cache/sha512-abcd.qcow2\n"
	"guest_driver: true\n"
	"nvidia: yes\n"
	"stop_timeout: 600\n"
	"packages: [htop, llama.cpp-tools]\n"
	"ports:\n"
	"  - {host: 8080, guest: 80}\n"
	"  - host: 50052\n"
	"    guest: 50052\n"
	"gpus:\n"
	"  - host: \"0x100000a1c\"\n"
	"  - 0x100000a1d\n";

static void test_parse_full(void **s)
{
	struct vm_config c;
	char err[512] = "";

	(void)s;
	assert_int_equal(vm_config_parse(&c, full, strlen(full), err, sizeof(err)), 0);
	assert_string_equal(c.name, "gpu1");
	assert_int_equal(c.arch, VM_ARCH_AARCH64);
	assert_int_equal(c.accel, VM_ACCEL_HVF);
	assert_int_equal(c.cpus, 6);
	assert_int_equal(c.memory_mib, 16384);
	assert_int_equal(c.disk_gib, 64);
	assert_int_equal(c.net, VM_NET_VMNET);
	assert_int_equal(c.mode, VM_MODE_DESKTOP);
	assert_string_equal(c.user, "ada");
	assert_string_equal(c.image_sha512, "abcd");
	assert_true(c.guest_driver && c.nvidia);
	assert_int_equal(c.stop_timeout_s, 600);
	assert_int_equal(c.n_packages, 2);
	assert_string_equal(c.packages[1], "llama.cpp-tools");
	assert_int_equal(c.n_ports, 2);
	assert_int_equal(c.ports[1].host, 50052);
	assert_int_equal(c.n_gpus, 2);
	assert_string_equal(c.gpus[1].host, "0x100000a1d");
}

static void test_roundtrip(void **s)
{
	struct vm_config a, b;
	char err[512] = "", *y;

	(void)s;
	assert_int_equal(vm_config_parse(&a, full, strlen(full), err, sizeof(err)), 0);
	y = vm_config_emit(&a);
	assert_non_null(y);
	assert_int_equal(vm_config_parse(&b, y, strlen(y), err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	free(y);
}

static void expect_error(const char *yaml, const char *needle)
{
	struct vm_config c;
	char err[512] = "";

	assert_int_equal(vm_config_parse(&c, yaml, strlen(yaml), err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error for <<%s>> was '%s', expected it to mention '%s'", yaml, err, needle);
}

static void test_errors(void **s)
{
	(void)s;
	expect_error("name: x\ncolour: blue\n", "unknown key 'colour'");
	expect_error("name: 1abc\n", "not a valid instance name");
	expect_error("name: a\nmemory: lots\n", "memory");
	expect_error("name: a\nmemory: 100\n", "at least 256 MiB");
	expect_error("name: a\ncpus: 0\n", "cpus");
	expect_error("name: a\narch: riscv64\n", "aarch64 or x86_64");
	expect_error("name: a\nports:\n  - {host: 70000, guest: 80}\n", "not a port");
	expect_error("name: a\nports:\n  - {host: 80, guest: 80}\n  - {host: 80, guest: 81}\n", "listed twice");
	expect_error("name: a\narch: x86_64\naccel: hvf\n", "aarch64 guests only");
	expect_error("name: a\naccel: tcg\nnetwork: vmnet\n", "only on macOS");
	expect_error("name: a\n  bad: indentation\n", "YAML error");
	expect_error("- a list\n", "mapping");
}

static void test_ports(void **s)
{
	struct vm_config c;

	(void)s;
	vm_config_defaults(&c, "p");
	assert_int_equal(vm_config_port_add(&c, 8080, 80), 0);
	assert_int_equal(vm_config_port_add(&c, 8080, 81), -1);
	assert_int_equal(vm_config_port_add(&c, 9090, 90), 0);
	assert_int_equal(vm_config_port_rm(&c, 8080), 0);
	assert_int_equal(c.n_ports, 1);
	assert_int_equal(c.ports[0].host, 9090);
	assert_int_equal(vm_config_port_rm(&c, 8080), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
