/* SPDX-License-Identifier: Apache-2.0 */
/* The instance state machine: every allowed transition, and refusals. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "state.h"

static void test_lifecycle(void **s)
{
	(void)s;
	/* create -> first boot -> provisioned -> stop -> start -> stop */
	assert_int_equal(vm_state_next(VM_ST_CREATED, VM_EV_BOOT, false), VM_ST_PROVISIONING);
	assert_int_equal(vm_state_next(VM_ST_PROVISIONING, VM_EV_UP, false), VM_ST_PROVISIONING);
	assert_int_equal(vm_state_next(VM_ST_PROVISIONING, VM_EV_PROVISIONED, false), VM_ST_RUNNING);
	assert_int_equal(vm_state_next(VM_ST_RUNNING, VM_EV_STOP, true), VM_ST_STOPPING);
	assert_int_equal(vm_state_next(VM_ST_STOPPING, VM_EV_DOWN, true), VM_ST_STOPPED);
	assert_int_equal(vm_state_next(VM_ST_STOPPED, VM_EV_BOOT, true), VM_ST_STARTING);
	assert_int_equal(vm_state_next(VM_ST_STARTING, VM_EV_UP, true), VM_ST_RUNNING);
}

static void test_refusals(void **s)
{
	(void)s;
	/* a second start of a running instance */
	assert_int_equal(vm_state_next(VM_ST_RUNNING, VM_EV_BOOT, true), -1);
	assert_int_equal(vm_state_next(VM_ST_STARTING, VM_EV_BOOT, true), -1);
	/* stopping what is stopped; provisioning twice */
	assert_int_equal(vm_state_next(VM_ST_STOPPED, VM_EV_STOP, true), -1);
	assert_int_equal(vm_state_next(VM_ST_RUNNING, VM_EV_PROVISIONED, true), -1);
	/* a crash is only recovered from the crashed state */
	assert_int_equal(vm_state_next(VM_ST_RUNNING, VM_EV_RECOVER, true), -1);
	assert_int_equal(vm_state_next(VM_ST_CREATED, VM_EV_DIED, false), -1);
}

static void test_crash_and_failure(void **s)
{
	(void)s;
	assert_int_equal(vm_state_next(VM_ST_RUNNING, VM_EV_DIED, true), VM_ST_CRASHED);
	assert_int_equal(vm_state_next(VM_ST_PROVISIONING, VM_EV_DIED, false), VM_ST_CRASHED);
	/* recovery returns to where the instance rests */
	assert_int_equal(vm_state_next(VM_ST_CRASHED, VM_EV_RECOVER, true), VM_ST_STOPPED);
	assert_int_equal(vm_state_next(VM_ST_CRASHED, VM_EV_RECOVER, false), VM_ST_CREATED);
	/* a failed start or first boot */
	assert_int_equal(vm_state_next(VM_ST_STARTING, VM_EV_FAIL, true), VM_ST_STOPPED);
	assert_int_equal(vm_state_next(VM_ST_PROVISIONING, VM_EV_FAIL, false), VM_ST_CREATED);
	/* stopping half-way through provisioning leaves it unprovisioned */
	assert_int_equal(vm_state_next(VM_ST_PROVISIONING, VM_EV_STOP, false), VM_ST_STOPPING);
	assert_int_equal(vm_state_next(VM_ST_STOPPING, VM_EV_DOWN, false), VM_ST_CREATED);
}

static void test_every_pair_is_defined(void **s)
{
	(void)s;
	/* no pair crashes or returns garbage */
	for (int st = 0; st < VM_ST__COUNT; st++)
		for (int ev = 0; ev < VM_EV__COUNT; ev++)
			for (int p = 0; p < 2; p++) {
				int n = vm_state_next((enum vm_state)st, (enum vm_event)ev, p);

				assert_true(n == -1 || (n >= 0 && n < VM_ST__COUNT));
			}
	assert_string_equal(vm_state_name(VM_ST_CRASHED), "crashed");
	assert_string_equal(vm_event_name(VM_EV_RECOVER), "recover");
}

static void test_json_roundtrip(void **s)
{
	char path[] = "/tmp/pegpu-state-XXXXXX";
	struct vm_state_rec a = { 0 }, b;
	int fd = mkstemp(path);

	(void)s;
	assert_true(fd >= 0);
	close(fd);
	a.state = VM_ST_RUNNING;
	a.provisioned = a.driver_installed = a.gpu_attached = true;
	a.pid = 4242;
	a.ssh_port = 40022;
	a.started_at = 1700000000;
	snprintf(a.last_stop, sizeof(a.last_stop), "acpi");
	assert_int_equal(vm_state_save(&a, path), 0);
	assert_int_equal(vm_state_load(&b, path), 0);
	assert_int_equal(b.state, VM_ST_RUNNING);
	assert_true(b.provisioned && b.driver_installed && b.gpu_attached && !b.nvidia_installed);
	assert_int_equal(b.pid, 4242);
	assert_int_equal(b.ssh_port, 40022);
	assert_string_equal(b.last_stop, "acpi");
	unlink(path);
	/* no file: a fresh instance */
	assert_int_equal(vm_state_load(&b, path), 0);
	assert_int_equal(b.state, VM_ST_CREATED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_crash_and_failure),
		cmocka_unit_test(test_every_pair_is_defined),
		cmocka_unit_test(test_json_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
