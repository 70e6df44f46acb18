/* SPDX-License-Identifier: Apache-2.0 */
/* The instance state machine and state.json (jansson). */
#include "state.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const state_names[VM_ST__COUNT] = {
	[VM_ST_CREATED] = "created",
	[VM_ST_PROVISIONING] = "provisioning",
	[VM_ST_STOPPED] = "stopped",
	[VM_ST_STARTING] = "starting",
	[VM_ST_RUNNING] = "running",
	[VM_ST_STOPPING] = "stopping",
	[VM_ST_CRASHED] = "crashed",
};

static const char *const event_names[VM_EV__COUNT] = {
	[VM_EV_BOOT] = "boot", [VM_EV_UP] = "up", [VM_EV_PROVISIONED] = "provisioned",
	[VM_EV_STOP] = "stop", [VM_EV_DOWN] = "down", [VM_EV_DIED] = "died",
	[VM_EV_FAIL] = "fail", [VM_EV_RECOVER] = "recover",
};

const char *vm_state_name(enum vm_state s)
{
	return (unsigned)s < VM_ST__COUNT ? state_names[s] : "unknown";
}

const char *vm_event_name(enum vm_event e)
{
	return (unsigned)e < VM_EV__COUNT ? event_names[e] : "unknown";
}

int vm_state_next(enum vm_state s, enum vm_event e, bool provisioned)
{
	/* where an instance rests when QEMU is not running */
	enum vm_state rest = provisioned ? VM_ST_STOPPED : VM_ST_CREATED;

	switch (e) {
	case VM_EV_BOOT:
		if (s == VM_ST_CREATED)
			return VM_ST_PROVISIONING;
		if (s == VM_ST_STOPPED)
			return VM_ST_STARTING;
		return -1;
	case VM_EV_UP:
		if (s == VM_ST_STARTING)
			return VM_ST_RUNNING;
		if (s == VM_ST_PROVISIONING)
			return VM_ST_PROVISIONING;	/* still waiting for cloud-init */
		return -1;
	case VM_EV_PROVISIONED:
		return s == VM_ST_PROVISIONING ? VM_ST_RUNNING : -1;
	case VM_EV_STOP:
		/* stopping a half-provisioned or half-started VM is allowed */
		if (s == VM_ST_RUNNING || s == VM_ST_STARTING || s == VM_ST_PROVISIONING ||
		    s == VM_ST_STOPPING)
			return VM_ST_STOPPING;
		return -1;
	case VM_EV_DOWN:
		return s == VM_ST_STOPPING ? (int)rest : -1;
	case VM_EV_DIED:
		if (s == VM_ST_RUNNING || s == VM_ST_STARTING || s == VM_ST_PROVISIONING ||
		    s == VM_ST_STOPPING)
			return VM_ST_CRASHED;
		return -1;
	case VM_EV_FAIL:
		if (s == VM_ST_STARTING || s == VM_ST_PROVISIONING || s == VM_ST_STOPPING)
			return rest;
		return -1;
	case VM_EV_RECOVER:
		return s == VM_ST_CRASHED ? (int)rest : -1;
	default:
		return -1;
	}
}

int vm_state_load(struct vm_state_rec *st, const char *path)
{
	json_error_t je;
	json_t *j;
	const char *s;

	memset(st, 0, sizeof(*st));
	st->state = VM_ST_CREATED;
	j = json_load_file(path, 0, &je);
	if (!j)
		return path_exists(path) ? -1 : 0;	/* no file yet: a fresh instance */
	s = json_string_value(json_object_get(j, "state"));
	for (int i = 0; s && i < VM_ST__COUNT; i++)
		if (!strcmp(s, state_names[i]))
			st->state = (enum vm_state)i;
	st->provisioned = json_is_true(json_object_get(j, "provisioned"));
	st->driver_installed = json_is_true(json_object_get(j, "driver_installed"));
	st->nvidia_installed = json_is_true(json_object_get(j, "nvidia_installed"));
	st->gpu_attached = json_is_true(json_object_get(j, "gpu_attached"));
	st->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	st->inhibitor_pid = (pid_t)json_integer_value(json_object_get(j, "inhibitor_pid"));
	st->ssh_port = (int)json_integer_value(json_object_get(j, "ssh_port"));
	st->started_at = (long)json_integer_value(json_object_get(j, "started_at"));
	s = json_string_value(json_object_get(j, "last_stop"));
	snprintf(st->last_stop, sizeof(st->last_stop), "%s", s ? s : "");
	json_decref(j);
	return 0;
}

int vm_state_save(const struct vm_state_rec *st, const char *path)
{
	json_t *j = json_pack("{s:s, s:b, s:b, s:b, s:b, s:I, s:I, s:i, s:I, s:s}",
			      "state", vm_state_name(st->state),
			      "provisioned", st->provisioned,
			      "driver_installed", st->driver_installed,
			      "nvidia_installed", st->nvidia_installed,
			      "gpu_attached", st->gpu_attached,
			      "pid", (json_int_t)st->pid,
			      "inhibitor_pid", (json_int_t)st->inhibitor_pid,
			      "ssh_port", st->ssh_port,
			      "started_at", (json_int_t)st->started_at,
			      "last_stop", st->last_stop);
	char *s;
	int r;

	if (!j)
		return -1;
	s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (!s)
		return -1;
	r = file_write_atomic(path, s, strlen(s), 0644);
	free(s);
	return r;
}
