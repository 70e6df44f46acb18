/* SPDX-License-Identifier: Apache-2.0 */
/* Instance directories, their files, the live state and crash recovery. */
#include "instance.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int vm_home(char *buf, size_t len)
{
	const char *h = getenv("PEGPU_HOME"), *home = getenv("HOME");

	if (h && *h)
		return snprintf(buf, len, "%s", h) >= (int)len ? -1 : 0;
	if (!home || !*home)
		return -1;
	return snprintf(buf, len, "%s/.pegpu", home) >= (int)len ? -1 : 0;
}

int vm_cache_dir(char *buf, size_t len)
{
	const char *c = getenv("PEGPU_CACHE"), *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	/* the same cache as scripts/lib/common.sh */
	if (c && *c)
		return snprintf(buf, len, "%s/images", c) >= (int)len ? -1 : 0;
	if (x && *x)
		return snprintf(buf, len, "%s/pegpu/images", x) >= (int)len ? -1 : 0;
	if (!home)
		return -1;
	return snprintf(buf, len, "%s/.cache/pegpu/images", home) >= (int)len ? -1 : 0;
}

#define SET(field, file) \
	(snprintf(in->field, sizeof(in->field), "%s/%s", in->dir, file) >= (int)sizeof(in->field))

int instance_paths(struct vm_instance *in, const char *name, char *err, size_t errlen)
{
	char home[PATH_MAX];
	int bad = 0;

	memset(in, 0, sizeof(*in));
	in->lock_fd = -1;
	if (!name_valid(name)) {
		snprintf(err, errlen, "'%s' is not a valid instance name: use letters, digits and '-', "
			 "starting with a letter, at most 32 characters", name);
		return -1;
	}
	snprintf(in->name, sizeof(in->name), "%s", name);
	if (vm_home(home, sizeof(home))) {
		snprintf(err, errlen, "neither PEGPU_HOME nor HOME is set");
		return -1;
	}
	if (snprintf(in->dir, sizeof(in->dir), "%s/%s", home, name) >= (int)sizeof(in->dir)) {
		snprintf(err, errlen, "instance path too long");
		return -1;
	}
	bad |= SET(cfg_path, "pegpu.yaml") | SET(state_path, "state.json") | SET(disk, "disk.qcow2");
	bad |= SET(vars, "efi-vars.fd") | SET(seed, "seed.iso") | SET(seed_dir, "cidata");
	bad |= SET(key, "id_ed25519") | SET(known_hosts, "known_hosts");
	bad |= SET(hostkey, "ssh_host_ed25519_key") | SET(serial_log, "serial.log");
	bad |= SET(qemu_log, "qemu.log") | SET(pidfile, "qemu.pid") | SET(lock, "lock");
	/* sockets: in the instance directory when the path fits sun_path */
	if (strlen(in->dir) + sizeof("/serial.sock") <= VM_SUN_PATH_MAX)
		snprintf(in->sockdir, sizeof(in->sockdir), "%s", in->dir);
	else
		snprintf(in->sockdir, sizeof(in->sockdir), "/tmp/pegpu-%u/%s", (unsigned)getuid(), name);
	bad |= snprintf(in->qmp_sock, sizeof(in->qmp_sock), "%s/qmp.sock", in->sockdir) >= (int)sizeof(in->qmp_sock);
	bad |= snprintf(in->serial_sock, sizeof(in->serial_sock), "%s/serial.sock", in->sockdir) >=
	       (int)sizeof(in->serial_sock);
	if (bad) {
		snprintf(err, errlen, "instance path too long: set PEGPU_HOME to a shorter directory");
		return -1;
	}
	return 0;
}

int instance_open(struct vm_instance *in, const char *name, char *err, size_t errlen)
{
	if (instance_paths(in, name, err, errlen))
		return -1;
	if (!path_exists(in->cfg_path)) {
		snprintf(err, errlen, "no instance named '%s' (in %s): `pegpu list` shows them, "
			 "`pegpu create %s` makes it", name, in->dir, name);
		return -1;
	}
	if (vm_config_load(&in->cfg, in->cfg_path, err, errlen))
		return -1;
	if (vm_state_load(&in->st, in->state_path)) {
		snprintf(err, errlen, "%s is not valid JSON: fix or delete it (the instance then counts "
			 "as never booted)", in->state_path);
		return -1;
	}
	return 0;
}

void instance_close(struct vm_instance *in)
{
	if (in->lock_fd >= 0)
		close(in->lock_fd);
	in->lock_fd = -1;
}

int instance_lock(struct vm_instance *in, char *err, size_t errlen)
{
	in->lock_fd = open(in->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (in->lock_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", in->lock, strerror(errno));
		return -1;
	}
	if (flock(in->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "another pegpu command is working on '%s' right now; wait for it "
			 "to finish", in->name);
		close(in->lock_fd);
		in->lock_fd = -1;
		return -1;
	}
	return 0;
}

int instance_save_state(struct vm_instance *in)
{
	return vm_state_save(&in->st, in->state_path);
}

int instance_save_config(struct vm_instance *in)
{
	return vm_config_save(&in->cfg, in->cfg_path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int instance_list(struct strv *names)
{
	char home[PATH_MAX], p[PATH_MAX];
	DIR *d;
	struct dirent *e;

	strv_init(names);
	if (vm_home(home, sizeof(home)))
		return -1;
	d = opendir(home);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d))) {
		if (!name_valid(e->d_name))
			continue;
		if (snprintf(p, sizeof(p), "%s/%s/pegpu.yaml", home, e->d_name) < (int)sizeof(p) &&
		    path_exists(p))
			strv_add(names, e->d_name);
	}
	closedir(d);
	if (names->n)
		qsort(names->v, names->n, sizeof(char *), cmp_str);
	return 0;
}

/* Is pid the QEMU of this instance (and not a recycled pid)? */
static bool pid_is_ours(pid_t pid, const char *pidfile)
{
#if defined(__linux__)
	char p[64], *cmd;
	size_t len;
	bool ours = false;

	snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
	cmd = file_read(p, &len);
	if (!cmd)
		return false;
	/* cmdline is NUL-separated: look for the -pidfile argument */
	for (size_t i = 0; i < len; i += strlen(cmd + i) + 1)
		if (!strcmp(cmd + i, pidfile))
			ours = true;
	free(cmd);
	return ours;
#else
	(void)pidfile;
	return pid_alive(pid);
#endif
}

pid_t instance_qemu_pid(const struct vm_instance *in)
{
	char *s = file_read(in->pidfile, NULL);
	pid_t pid = s ? (pid_t)atoi(s) : 0;

	free(s);
	if (pid <= 0 || !pid_alive(pid) || !pid_is_ours(pid, in->pidfile))
		return 0;
	return pid;
}

enum vm_state instance_live_state(const struct vm_instance *in)
{
	enum vm_state s = in->st.state;

	if ((s == VM_ST_RUNNING || s == VM_ST_STARTING || s == VM_ST_PROVISIONING ||
	     s == VM_ST_STOPPING) && !instance_qemu_pid(in))
		return VM_ST_CRASHED;
	return s;
}

bool instance_recover(struct vm_instance *in)
{
	bool stale = false;

	if (instance_live_state(in) == VM_ST_CRASHED) {
		in->st.state = (enum vm_state)vm_state_next(VM_ST_CRASHED, VM_EV_RECOVER, in->st.provisioned);
		snprintf(in->st.last_stop, sizeof(in->st.last_stop), "crashed");
		stale = true;
	}
	/* leftovers of a QEMU that is gone, whatever the state said */
	if (!instance_qemu_pid(in)) {
		if (path_exists(in->pidfile) || path_exists(in->qmp_sock) || path_exists(in->serial_sock))
			stale = true;
		unlink(in->pidfile);
		unlink(in->qmp_sock);
		unlink(in->serial_sock);
		if (in->st.inhibitor_pid > 0 && pid_alive(in->st.inhibitor_pid))
			kill(in->st.inhibitor_pid, SIGTERM);
		in->st.inhibitor_pid = 0;
		in->st.pid = 0;
		in->st.gpu_attached = false;
	}
	if (stale)
		instance_save_state(in);
	return stale;
}

int instance_transition(struct vm_instance *in, enum vm_event ev, char *err, size_t errlen)
{
	int next = vm_state_next(in->st.state, ev, in->st.provisioned);

	if (next < 0) {
		snprintf(err, errlen, "'%s' is %s: cannot %s it now", in->name,
			 vm_state_name(in->st.state), vm_event_name(ev));
		return -1;
	}
	in->st.state = (enum vm_state)next;
	return instance_save_state(in);
}
