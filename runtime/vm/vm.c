/* SPDX-License-Identifier: Apache-2.0 */
/* Start (preconditions, launch), first-boot provisioning, the stop ladder. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "inhibit.h"
#include "qmp.h"
#include "ssh.h"

void vm_step(double t0, const char *step, const char *fmt, ...)
{
	/* one clock per command: create's steps continue through vm_start's */
	static double first;
	va_list ap;

	if (!first)
		first = t0;
	fprintf(stderr, "pegpu: [%4.0fs] %-12s ", now_s() - first, step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int vm_cmd_open(const char *cmd, const char *name, struct vm_instance *in, bool lock)
{
	char err[1024];

	if (instance_open(in, name, err, sizeof(err)) || (lock && instance_lock(in, err, sizeof(err)))) {
		fprintf(stderr, "pegpu %s: %s\n", cmd, err);
		return -1;
	}
	if (lock && instance_recover(in))
		fprintf(stderr, "pegpu %s: '%s' had crashed (QEMU was gone); its state is cleaned up\n",
			cmd, name);
	return 0;
}

int vm_find_qemu(const struct vm_config *c, char *buf, size_t len)
{
	const char *env = getenv(c->arch == VM_ARCH_AARCH64 ? "PEGPU_QEMU_AARCH64" : "PEGPU_QEMU_X86_64");
	char prog[64], *p;

	if (c->qemu[0])
		return path_is_exec(c->qemu) && snprintf(buf, len, "%s", c->qemu) < (int)len ? 0 : -1;
	if (env && *env)
		return path_is_exec(env) && snprintf(buf, len, "%s", env) < (int)len ? 0 : -1;
	snprintf(prog, sizeof(prog), "qemu-system-%s", vm_arch_name(c->arch));
	p = path_which(prog);
	if (!p)
		return -1;
	snprintf(buf, len, "%s", p);
	free(p);
	return 0;
}

int vm_find_qemu_img(const char *qemu, char *buf, size_t len)
{
	char tmp[PATH_MAX], *p;

	snprintf(tmp, sizeof(tmp), "%s", qemu);
	snprintf(buf, len, "%s/qemu-img", dirname(tmp));
	if (path_is_exec(buf))
		return 0;
	p = path_which("qemu-img");
	if (!p)
		return -1;
	snprintf(buf, len, "%s", p);
	free(p);
	return 0;
}

int vm_find_firmware(const struct vm_config *c, const char *qemu, char *code, size_t clen,
		     char *vars, size_t vlen)
{
	char qdir[PATH_MAX], tmp[PATH_MAX], share[PATH_MAX];
	/* pairs of (code, vars template); "%s" is QEMU's own share/qemu */
	static const char *const x86[] = {
		"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd",
		"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd",
		"%s/edk2-x86_64-code.fd", "%s/edk2-i386-vars.fd",
		"/opt/homebrew/share/qemu/edk2-x86_64-code.fd", "/opt/homebrew/share/qemu/edk2-i386-vars.fd",
		NULL,
	};
	static const char *const arm[] = {
		"%s/edk2-aarch64-code.fd", "%s/edk2-arm-vars.fd",
		"/opt/homebrew/share/qemu/edk2-aarch64-code.fd", "/opt/homebrew/share/qemu/edk2-arm-vars.fd",
		"/usr/local/share/qemu/edk2-aarch64-code.fd", "/usr/local/share/qemu/edk2-arm-vars.fd",
		"/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd",
		NULL,
	};
	const char *const *t = c->arch == VM_ARCH_AARCH64 ? arm : x86;

	vars[0] = 0;
	if (c->firmware[0]) {
		snprintf(code, clen, "%s", c->firmware);
		return path_exists(code) ? 0 : -1;
	}
	snprintf(tmp, sizeof(tmp), "%s", qemu);
	snprintf(qdir, sizeof(qdir), "%s", dirname(tmp));
	snprintf(share, sizeof(share), "%s/../share/qemu", qdir);
	for (; *t; t += 2) {
		snprintf(code, clen, t[0], share);
		if (!path_exists(code))
			continue;
		snprintf(vars, vlen, t[1], share);
		if (!path_exists(vars))
			vars[0] = 0;
		return 0;
	}
	return -1;
}

int vm_find_driver_deb(char *buf, size_t len)
{
	const char *e = getenv("PEGPU_DRIVER_DEB"), *d = getenv("PEGPU_DATADIR");

	if (e && *e)
		return snprintf(buf, len, "%s", e) < (int)len && path_exists(buf) ? 0 : -1;
	if (d && *d && snprintf(buf, len, "%s/pegpu-dma-dkms.deb", d) < (int)len && path_exists(buf))
		return 0;
#ifdef PEGPU_VM_DATADIR
	if (snprintf(buf, len, "%s/pegpu-dma-dkms.deb", PEGPU_VM_DATADIR) < (int)len && path_exists(buf))
		return 0;
#endif
	return -1;
}

/* UEFI variables: a copy of the template, or zeros the size of the code. */
static int ensure_vars(const char *vars, const char *code, const char *tmpl)
{
	struct stat st;
	char *data;
	size_t len;
	int r;

	if (path_exists(vars))
		return 0;
	if (tmpl[0]) {
		data = file_read(tmpl, &len);
		if (!data)
			return -1;
	} else {
		if (stat(code, &st))
			return -1;
		len = (size_t)st.st_size;
		data = calloc(1, len);
		if (!data)
			return -1;
	}
	r = file_write_atomic(vars, data, len, 0644);
	free(data);
	return r;
}

#if defined(__linux__)
/* A GPU function for vfio-pci: present and bound to vfio-pci? */
static int gpu_check_linux(const char *addr, char *err, size_t errlen)
{
	char p[PATH_MAX], link[PATH_MAX];
	ssize_t l;

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s", addr);
	if (!path_exists(p)) {
		snprintf(err, errlen, "GPU function %s is not on the PCI bus: is the eGPU plugged in "
			 "and powered?", addr);
		return -1;
	}
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver", addr);
	l = readlink(p, link, sizeof(link) - 1);
	link[l > 0 ? l : 0] = 0;
	if (l <= 0 || strcmp(strrchr(link, '/') ? strrchr(link, '/') + 1 : link, "vfio-pci")) {
		snprintf(err, errlen, "GPU function %s is not bound to vfio-pci (docs/guide-linux.md: "
			 "driverctl set-override %s vfio-pci)", addr, addr);
		return -1;
	}
	return 0;
}
#endif

int vm_preflight(struct vm_instance *in, const struct vm_start_opts *o, char *err, size_t errlen)
{
	const struct vm_config *c = &in->cfg;
	char qemu[PATH_MAX], code[PATH_MAX], vars[PATH_MAX];
	pid_t pid = instance_qemu_pid(in);

	if (pid) {
		snprintf(err, errlen, "'%s' is already running (QEMU pid %d): `pegpu stop %s` first",
			 in->name, (int)pid, in->name);
		return -1;
	}
	if (vm_find_qemu(c, qemu, sizeof(qemu))) {
		snprintf(err, errlen, "QEMU for %s was not found: build PEGPU Machine (make qemu) and set "
			 "PEGPU_QEMU_%s, or set qemu: in %s", vm_arch_name(c->arch),
			 c->arch == VM_ARCH_AARCH64 ? "AARCH64" : "X86_64", in->cfg_path);
		return -1;
	}
	if (vm_find_firmware(c, qemu, code, sizeof(code), vars, sizeof(vars))) {
		snprintf(err, errlen, "no UEFI firmware for %s: install %s, or set firmware: in %s",
			 vm_arch_name(c->arch), c->arch == VM_ARCH_AARCH64 ? "qemu-efi-aarch64 (Linux) or "
			 "QEMU's edk2-aarch64-code.fd (macOS)" : "ovmf", in->cfg_path);
		return -1;
	}
	if (!path_exists(in->disk)) {
		snprintf(err, errlen, "the disk %s is missing: the instance is broken; `pegpu destroy %s` "
			 "and create it again", in->disk, in->name);
		return -1;
	}
	if (c->accel == VM_ACCEL_KVM && access("/dev/kvm", R_OK | W_OK)) {
		snprintf(err, errlen, "accel kvm needs read-write /dev/kvm (%s): add yourself to the kvm "
			 "group, or set accel: tcg", strerror(errno));
		return -1;
	}
	if (c->accel == VM_ACCEL_HVF && vm_host_current() != VM_HOST_MACOS) {
		snprintf(err, errlen, "accel hvf exists only on macOS: set accel: tcg or kvm in %s", in->cfg_path);
		return -1;
	}
	for (size_t i = 0; i < c->n_ports; i++) {
		if (!port_free(c->ports[i].host)) {
			snprintf(err, errlen, "host port %d (forwarded to guest port %d) is taken by another "
				 "program: free it, or `pegpu port rm %s %d`", c->ports[i].host,
				 c->ports[i].guest, in->name, c->ports[i].host);
			return -1;
		}
	}
	if (c->n_gpus && !o->no_gpu) {
		if (!in->st.provisioned || (c->guest_driver && !in->st.driver_installed)) {
			snprintf(err, errlen, "the eGPU attaches only once the guest driver is installed: "
				 "`pegpu start %s --no-gpu` and let provisioning finish first", in->name);
			return -1;
		}
		if (c->nvidia && !in->st.nvidia_installed) {
			snprintf(err, errlen, "the NVIDIA driver is wanted but not installed yet: "
				 "`pegpu start %s --no-gpu`, then `pegpu nvidia install %s`", in->name, in->name);
			return -1;
		}
#if defined(__linux__)
		for (size_t i = 0; i < c->n_gpus; i++)
			if (gpu_check_linux(c->gpus[i].host, err, errlen))
				return -1;
#endif
	}
	return 0;
}

static void print_restart_ritual(const char *name)
{
	fprintf(stderr,
		"\nThe eGPU did not attach.  A clean restart of the enclosure usually fixes it:\n"
		"  1. pegpu stop %s          (if it still runs)\n"
		"  2. unplug the enclosure's Thunderbolt cable\n"
		"  3. wait 10 seconds\n"
		"  4. plug it back in\n"
		"  5. wait until the GPU is listed again (about 20 s; macOS: System Information > PCI)\n"
		"  6. pegpu start %s\n", name, name);
}

/* Interactive: walk the user through the ritual; true when they did it. */
static bool guide_restart_ritual(const char *name)
{
	static const char *const steps[] = {
		"Unplug the enclosure's Thunderbolt cable, then press Enter",
		"Wait 10 seconds, plug it back in, then press Enter",
		NULL,
	};
	char line[16];

	print_restart_ritual(name);
	if (!isatty(0) || !isatty(2))
		return false;
	fprintf(stderr, "\nLet's do it now (Ctrl-C to stop).\n");
	for (int i = 0; steps[i]; i++) {
		fprintf(stderr, "  %s: ", steps[i]);
		if (!fgets(line, sizeof(line), stdin))
			return false;
	}
	fprintf(stderr, "  Waiting 20 s for the GPU to come back...\n");
	sleep_s(20);
	return true;
}

/*
 * After QEMU was killed, the qcow2 overlay may hold leaked clusters (space
 * allocated, never referenced: harmless, but `qemu-img check` reports them
 * forever).  Reclaim them before the next boot; stop on real corruption,
 * which only a person with a backup should repair.
 */
static int check_after_crash(struct vm_instance *in, const char *qemu, double t0, char *err,
			     size_t errlen)
{
	char img[PATH_MAX], *out = NULL;
	char *argv[] = { img, "check", "-q", "-r", "leaks", in->disk, NULL };
	int rc;

	if (vm_find_qemu_img(qemu, img, sizeof(img))) {
		vm_step(t0, "disk", "qemu-img not found: the disk was not checked after the crash");
		return 0;
	}
	rc = run_argv(argv, &out, true);
	if (rc == 0) {
		vm_step(t0, "disk", "checked after the crash (qemu-img check -r leaks): clean");
	} else if (rc == 2) {
		snprintf(err, errlen, "%s is corrupt after the crash (qemu-img check: %s); copy it "
			 "somewhere safe, then repair it with `qemu-img check -r all %s`", in->disk,
			 out && *out ? out : "errors", in->disk);
		free(out);
		return -1;
	} else {
		vm_step(t0, "disk", "warning: qemu-img check exited %d: %s", rc, out ? out : "");
	}
	free(out);
	return 0;
}

int vm_start(struct vm_instance *in, const struct vm_start_opts *o, char *err, size_t errlen)
{
	const struct vm_config *c = &in->cfg;
	char qemu[PATH_MAX], code[PATH_MAX], tmpl[PATH_MAX], spice[PATH_MAX + 16], *out = NULL, *pids;
	struct vm_launch l = { 0 };
	struct strv argv;
	double t0 = now_s();
	bool gpus, crashed;
	int rc, r = -1, tries = 0;

again:
	/* vm_cmd_open may have cleaned the crash up already: last_stop says */
	crashed = instance_live_state(in) == VM_ST_CRASHED || !strcmp(in->st.last_stop, "crashed");
	if (instance_recover(in))
		vm_step(t0, "recover", "cleaned up after a QEMU that had died (%s)", in->st.last_stop);
	if (vm_preflight(in, o, err, errlen))
		return -1;
	vm_find_qemu(c, qemu, sizeof(qemu));
	if (crashed && check_after_crash(in, qemu, t0, err, errlen))
		return -1;
	vm_find_firmware(c, qemu, code, sizeof(code), tmpl, sizeof(tmpl));
	gpus = c->n_gpus && !o->no_gpu;
	if (mkdir_p(in->sockdir, 0700) || ensure_vars(in->vars, code, tmpl)) {
		snprintf(err, errlen, "cannot prepare %s: %s", in->dir, strerror(errno));
		return -1;
	}
	in->st.ssh_port = port_pick();
	snprintf(spice, sizeof(spice), "%s/spice.sock", in->sockdir);
	l = (struct vm_launch){
		.host = vm_host_current(), .qemu = qemu, .firmware = code, .vars = in->vars,
		.disk = in->disk, .seed = path_exists(in->seed) ? in->seed : NULL,
		.pidfile = in->pidfile, .qmp_sock = in->qmp_sock, .serial_sock = in->serial_sock,
		.serial_log = in->serial_log, .spice_sock = spice, .ssh_port = in->st.ssh_port,
		.attach_gpus = gpus, .daemonize = true,
	};
	if (vm_argv_build(c, &l, &argv)) {
		snprintf(err, errlen, "cannot build the QEMU command line");
		return -1;
	}
	if (instance_transition(in, VM_EV_BOOT, err, errlen)) {
		strv_free(&argv);
		return -1;
	}
	vm_step(t0, "qemu", "%s (%s, %s, %d CPUs, %d MiB%s)", qemu, vm_arch_name(c->arch),
		vm_accel_name(c->accel), c->cpus, c->memory_mib, gpus ? ", eGPU attached" : "");
	unlink(in->pidfile);
	rc = run_argv(argv.v, &out, true);
	{
		char *cmd = strv_join(&argv, " "), *log = NULL;

		if (cmd && asprintf(&log, "%s\n%s", cmd, out ? out : "") >= 0)
			file_write_atomic(in->qemu_log, log, strlen(log), 0644);
		free(cmd);
		free(log);
	}
	strv_free(&argv);
	if (rc != 0) {
		char e2[256];

		instance_transition(in, VM_EV_FAIL, e2, sizeof(e2));
		snprintf(err, errlen, "QEMU refused to start (exit %d): %s(full command: %s)", rc,
			 out && *out ? out : "no message ", in->qemu_log);
		bool gpu_err = gpus && out && (strstr(out, "pegpu-passthrough") || strstr(out, "vfio"));

		free(out);
		if (gpu_err && tries++ == 0 && guide_restart_ritual(in->name))
			goto again;
		return -1;
	}
	free(out);
	pids = file_read(in->pidfile, NULL);
	in->st.pid = pids ? (pid_t)atoi(pids) : 0;
	free(pids);
	in->st.started_at = (long)time(NULL);
	in->st.inhibitor_pid = 0;
	in->st.gpu_attached = gpus;
	if (gpus) {
		char e2[256];
		pid_t h = inhibit_hold(in->st.pid, "a passthrough GPU is attached to a pegpu VM", e2, sizeof(e2));

		if (h > 0)
			in->st.inhibitor_pid = h;
		else
			vm_step(t0, "inhibit", "warning: %s", e2);
	}
	instance_save_state(in);
	vm_step(t0, "qemu", "running (pid %d); serial log %s", (int)in->st.pid, in->serial_log);
	if (!in->st.provisioned || !o->wait_ssh)
		return 0;
	if (ssh_wait(in, o->timeout_s > 0 ? o->timeout_s : 600)) {
		snprintf(err, errlen, "the guest did not answer on SSH within %.0f s%s; see `pegpu logs %s`",
			 o->timeout_s > 0 ? o->timeout_s : 600,
			 instance_qemu_pid(in) ? "" : " and QEMU exited", in->name);
		if (!instance_qemu_pid(in))
			instance_recover(in);
		return -1;
	}
	r = instance_transition(in, VM_EV_UP, err, errlen);
	vm_step(t0, "ssh", "ready: pegpu ssh %s", in->name);
	return r;
}

/* --- provisioning --------------------------------------------------------- */

static void print_excerpt(const char *title, const char *text, int lines)
{
	const char *p = text + strlen(text);
	int n = 0;

	while (p > text && n <= lines)
		if (*--p == '\n')
			n++;
	if (*p == '\n')
		p++;
	fprintf(stderr, "---- %s ----\n", title);
	while (*p) {
		size_t l = strcspn(p, "\n");

		fprintf(stderr, "  guest| %.*s\n", (int)l, p);
		p += l;
		if (*p)
			p++;
	}
	fprintf(stderr, "----\n");
}

static void show_failure_log(struct vm_instance *in)
{
	char *out = NULL;

	if (ssh_run(in, "sudo tail -n 25 /var/log/pegpu-provision.log 2>/dev/null || "
		    "sudo tail -n 25 /var/log/cloud-init-output.log", &out) == 0 && out && *out) {
		print_excerpt("the guest's provisioning log (last lines)", out, 25);
	} else {
		free(out);
		out = file_read(in->serial_log, NULL);
		if (out)
			print_excerpt("the serial console (last lines)", out, 25);
	}
	free(out);
}

int vm_provision_wait(struct vm_instance *in, long serial_off, double timeout_s, char *err, size_t errlen)
{
	double t0 = now_s(), end = t0 + timeout_s;
	bool saw_kernel = false, saw_ci = false, done = false;
	char line[1024];
	size_t ll = 0;
	FILE *f = NULL;
	char *out = NULL;
	int rc;

	while (!done) {
		int ch;

		if (now_s() > end) {
			snprintf(err, errlen, "provisioning did not finish within %.0f s", timeout_s);
			goto fail;
		}
		if (!f) {
			f = fopen(in->serial_log, "r");
			if (f)
				fseek(f, serial_off, SEEK_SET);
		}
		if (!f || (ch = fgetc(f)) == EOF) {
			if (f)
				clearerr(f);
			if (!instance_qemu_pid(in)) {
				snprintf(err, errlen, "QEMU exited during the first boot (see `pegpu logs %s`)",
					 in->name);
				goto fail;
			}
			sleep_s(0.3);
			continue;
		}
		if (ch != '\n' && ch != '\r') {
			if (ll < sizeof(line) - 1)
				line[ll++] = (char)ch;
			continue;
		}
		line[ll] = 0;
		ll = 0;
		if (!saw_kernel && strstr(line, "Linux version")) {
			saw_kernel = true;
			vm_step(t0, "kernel", "booting");
		} else if (!saw_ci && strstr(line, "cloud-init") && strstr(line, "running 'init")) {
			saw_ci = true;
			vm_step(t0, "cloud-init", "configuring user, SSH keys, hostname, disk size");
		}
		const char *m = strstr(line, "pegpu-step: ");

		if (!m)
			continue;
		m += strlen("pegpu-step: ");
		if (!strncmp(m, "done", 4)) {
			vm_step(t0, "done", "first boot finished");
			done = true;
		} else if (!strncmp(m, "cloud-init finished", 19)) {
			/* cloud-init ended without our script saying done: it failed earlier */
			snprintf(err, errlen, "cloud-init finished but the provisioning script did not run "
				 "to the end");
			goto fail;
		} else {
			char step[64];
			const char *sp = strchr(m, ' ');

			snprintf(step, sizeof(step), "%.*s", sp ? (int)(sp - m) : (int)strlen(m), m);
			vm_step(t0, step, "%s", sp ? sp + 1 : "");
			if (sp && !strncmp(sp + 1, "failed", 6)) {
				snprintf(err, errlen, "provisioning step '%s' failed in the guest", step);
				goto fail;
			}
		}
	}
	fclose(f);
	f = NULL;
	if (ssh_wait(in, 300)) {
		snprintf(err, errlen, "the guest finished provisioning but does not answer on SSH");
		goto fail;
	}
	rc = ssh_run(in, "cloud-init status --wait --long", &out);
	/* 2: finished with recoverable errors (deprecations and such): warn, go on */
	if (rc != 0 && rc != 2) {
		snprintf(err, errlen, "cloud-init reports an error (status %d):\n%s", rc, out ? out : "");
		goto fail;
	}
	if (rc == 2)
		vm_step(t0, "cloud-init", "finished with warnings (`pegpu ssh %s cloud-init status --long`)", in->name);
	free(out);
	out = NULL;
	if (in->cfg.guest_driver) {
		if (ssh_run(in, "grep -q '^pegpu_dma ' /proc/modules", NULL)) {
			snprintf(err, errlen, "the guest driver pegpu_dma is not loaded after provisioning");
			goto fail;
		}
		in->st.driver_installed = true;
		vm_step(t0, "guest-driver", "pegpu_dma loaded (DKMS)");
	}
	in->st.provisioned = true;
	vm_step(t0, "ssh", "ready: pegpu ssh %s", in->name);
	return instance_transition(in, VM_EV_PROVISIONED, err, errlen);
fail:
	if (f)
		fclose(f);
	free(out);
	show_failure_log(in);
	return -1;
}

/* --- the stop ladder ------------------------------------------------------ */

static bool wait_exit(pid_t pid, double secs)
{
	double end = now_s() + secs;

	while (now_s() < end) {
		if (!pid_alive(pid))
			return true;
		sleep_s(0.5);
	}
	return !pid_alive(pid);
}

static int qmp_simple(struct vm_instance *in, const char *cmd, char *err, size_t errlen)
{
	struct qmp q;
	json_t *r;

	if (qmp_connect(&q, in->qmp_sock, 10, err, errlen))
		return -1;
	r = qmp_execute(&q, cmd, NULL, err, errlen);
	qmp_close(&q);
	if (!r)
		return -1;
	json_decref(r);
	return 0;
}

static int finish_stop(struct vm_instance *in, const char *how, char *err, size_t errlen)
{
	snprintf(in->st.last_stop, sizeof(in->st.last_stop), "%s", how);
	inhibit_release(in->st.inhibitor_pid);
	in->st.inhibitor_pid = 0;
	in->st.pid = 0;
	in->st.gpu_attached = false;
	unlink(in->pidfile);
	unlink(in->qmp_sock);
	unlink(in->serial_sock);
	return instance_transition(in, VM_EV_DOWN, err, errlen);
}

int vm_stop(struct vm_instance *in, const struct vm_stop_opts *o, char *err, size_t errlen)
{
	double t0 = now_s(), t;
	int wait = o->timeout_s > 0 ? o->timeout_s : in->cfg.stop_timeout_s;
	bool passthrough = in->st.gpu_attached;
	char e2[512];
	pid_t pid;

	if (instance_recover(in))
		vm_step(t0, "recover", "QEMU had already died; state cleaned up");
	pid = instance_qemu_pid(in);
	if (!pid) {
		snprintf(err, errlen, "'%s' is not running", in->name);
		return -1;
	}
	if (instance_transition(in, VM_EV_STOP, err, errlen))
		return -1;

	/* 1: the guest powers itself off: services stop, disks sync */
	if (in->st.ssh_port && ssh_run(in, "sudo systemctl poweroff --no-block", NULL) == 0) {
		vm_step(t0, "poweroff", "asked the guest over SSH");
		if (wait_exit(pid, wait < 120 ? wait : 120)) {
			vm_step(t0, "poweroff", "QEMU exited after %.0f s", now_s() - t0);
			return finish_stop(in, "poweroff", err, errlen);
		}
		vm_step(t0, "poweroff", "the guest is still up after %.0f s", now_s() - t0);
	} else {
		vm_step(t0, "poweroff", "SSH does not answer: skipping");
	}

	/* 2: ACPI power button, then the long wait */
	t = now_s();
	if (qmp_simple(in, "system_powerdown", e2, sizeof(e2)) == 0) {
		vm_step(t0, "acpi", "power button pressed (QMP system_powerdown); waiting up to %d s", wait);
		if (wait_exit(pid, wait)) {
			vm_step(t0, "acpi", "QEMU exited after %.0f s", now_s() - t);
			return finish_stop(in, "acpi", err, errlen);
		}
	} else {
		vm_step(t0, "acpi", "QMP failed (%s)", e2);
	}

	/* 3: kill, only when that cannot take the host down or the user insists */
	if (passthrough && !o->force) {
		snprintf(err, errlen, "the guest did not power off within %d s and a passthrough GPU is "
			 "attached: pegpu will not kill QEMU, because tearing down PCIe passthrough "
			 "mid-flight can panic the host.  Wait, try `pegpu console %s`, or `pegpu stop %s "
			 "--force` to kill it anyway", wait, in->name, in->name);
		in->st.state = VM_ST_RUNNING;
		instance_save_state(in);
		return -1;
	}
	if (qmp_simple(in, "quit", e2, sizeof(e2)) == 0 && wait_exit(pid, 10)) {
		vm_step(t0, "quit", "QEMU quit (QMP)");
		return finish_stop(in, "killed", err, errlen);
	}
	kill(pid, SIGTERM);
	if (!wait_exit(pid, 10)) {
		kill(pid, SIGKILL);
		wait_exit(pid, 10);
	}
	vm_step(t0, "kill", "QEMU killed");
	return finish_stop(in, "killed", err, errlen);
}
