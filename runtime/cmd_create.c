/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu create: a new instance from a verified base image, provisioned on
 * first boot by cloud-init (user, SSH keys, packages, the guest driver).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vm/image.h"
#include "vm/instance.h"
#include "vm/seed.h"
#include "vm/ssh.h"
#include "vm/vm.h"

static void create_usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu create NAME [options]\n"
		"\n"
		"Create a Debian VM named NAME, boot it and provision it with cloud-init: a user\n"
		"with an SSH key made for this instance, the pegpu guest driver (DKMS), and the\n"
		"packages you ask for.  The eGPU stays detached until provisioning has finished.\n"
		"\n"
		"options:\n"
		"  --image URL|PATH   base image (default: Debian 13's official generic cloud\n"
		"                     image); SHA512SUMS next to it must list it\n"
		"  --arch ARCH        aarch64 or x86_64 (default: this host's)\n"
		"  --accel ACCEL      hvf (macOS), kvm or tcg (Linux default: tcg)\n"
		"  --cpus N           virtual CPUs\n"
		"  --memory SIZE      RAM, e.g. 8G or 4096 (MiB)\n"
		"  --disk SIZE        disk size, e.g. 40G (the root filesystem grows to it)\n"
		"  --user NAME        login user in the guest (default: pegpu)\n"
		"  --package PKG      install a Debian package at first boot (repeatable)\n"
		"  --port HOST:GUEST  forward 127.0.0.1:HOST to the guest's GUEST port (repeatable)\n"
		"  --gpu ADDRESS      a GPU function to pass through once provisioned (repeatable;\n"
		"                     Linux: PCI address bound to vfio-pci; macOS: the dext's id)\n"
		"  --nvidia           the NVIDIA stack is wanted: the GPU attaches only after\n"
		"                     `pegpu nvidia install`\n"
		"  --desktop          XFCE on Xorg, shown over SPICE (default: headless)\n"
		"  --no-guest-driver  do not install pegpu-dma (only for VMs without an eGPU)\n"
		"  --driver-deb PATH  the pegpu-dma-dkms package to install (default: the installed one)\n"
		"  --timeout SECONDS  give up on first boot after this long (default 1800)\n"
		"  --no-start         only prepare the instance; `pegpu start` boots it later\n"
		"  --json             print the result as JSON on stdout\n");
}

enum { OPT_IMAGE = 256, OPT_ARCH, OPT_ACCEL, OPT_CPUS, OPT_MEMORY, OPT_DISK, OPT_USER, OPT_PACKAGE,
       OPT_PORT, OPT_GPU, OPT_NVIDIA, OPT_DESKTOP, OPT_NO_DRIVER, OPT_DEB, OPT_TIMEOUT, OPT_NO_START,
       OPT_JSON };

static const struct option create_opts[] = {
	{ "image", required_argument, NULL, OPT_IMAGE },
	{ "arch", required_argument, NULL, OPT_ARCH },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "user", required_argument, NULL, OPT_USER },
	{ "package", required_argument, NULL, OPT_PACKAGE },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "gpu", required_argument, NULL, OPT_GPU },
	{ "nvidia", no_argument, NULL, OPT_NVIDIA },
	{ "desktop", no_argument, NULL, OPT_DESKTOP },
	{ "no-guest-driver", no_argument, NULL, OPT_NO_DRIVER },
	{ "driver-deb", required_argument, NULL, OPT_DEB },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "no-start", no_argument, NULL, OPT_NO_START },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* One option through the YAML parser that reads pegpu.yaml: both validate alike. */
static int set_opt(struct vm_config *c, const char *key, const char *val)
{
	char doc[512], err[512];
	struct vm_config one;

	snprintf(doc, sizeof(doc), "%s: \"%s\"\n", key, val);
	if (strchr(val, '"') || vm_config_parse(&one, doc, strlen(doc), err, sizeof(err))) {
		fprintf(stderr, "pegpu create: --%s %s: %s\n", key, val, strchr(val, '"') ? "bad value" : err);
		return -1;
	}
	if (!strcmp(key, "cpus"))
		c->cpus = one.cpus;
	else if (!strcmp(key, "memory"))
		c->memory_mib = one.memory_mib;
	else if (!strcmp(key, "disk"))
		c->disk_gib = one.disk_gib;
	else if (!strcmp(key, "user"))
		snprintf(c->user, sizeof(c->user), "%s", one.user);
	return 0;
}

static int write_seed(struct vm_instance *in, const char *deb_path, char *err, size_t errlen)
{
	char pub[PATH_MAX], hpub[PATH_MAX], iid[96], p[PATH_MAX];
	char *upk = NULL, *hpk = NULL, *hpriv = NULL, *ud = NULL, *md = NULL, *nc = NULL;
	unsigned char *deb = NULL;
	size_t deblen = 0;
	int r = -1;

	snprintf(pub, sizeof(pub), "%s.pub", in->key);
	snprintf(hpub, sizeof(hpub), "%s.pub", in->hostkey);
	upk = file_read(pub, NULL);
	hpk = file_read(hpub, NULL);
	hpriv = file_read(in->hostkey, NULL);
	if (!upk || !hpk || !hpriv) {
		snprintf(err, errlen, "cannot read the SSH keys in %s", in->dir);
		goto out;
	}
	upk[strcspn(upk, "\n")] = 0;
	hpk[strcspn(hpk, "\n")] = 0;
	if (deb_path) {
		deb = (unsigned char *)file_read(deb_path, &deblen);
		if (!deb) {
			snprintf(err, errlen, "cannot read %s: %s", deb_path, strerror(errno));
			goto out;
		}
	}
	/* a new instance-id per create: cloud-init runs once per id */
	snprintf(iid, sizeof(iid), "pegpu-%s-%lx%04x", in->name, (long)time(NULL), (unsigned)getpid() & 0xffff);
	struct vm_seed_in s = { .cfg = &in->cfg, .instance_id = iid, .user_pubkey = upk,
				.host_privkey = hpriv, .host_pubkey = hpk, .driver_deb = deb,
				.driver_deb_len = deblen };

	ud = vm_seed_user_data(&s);
	md = vm_seed_meta_data(&s);
	nc = vm_seed_network_config(&s);
	if (!ud || !md || !nc || mkdir_p(in->seed_dir, 0700))
		goto out;
	/* the seed's files stay readable in cidata/ for debugging */
	snprintf(p, sizeof(p), "%s/user-data", in->seed_dir);
	r = file_write_atomic(p, ud, strlen(ud), 0600);
	snprintf(p, sizeof(p), "%s/meta-data", in->seed_dir);
	r |= file_write_atomic(p, md, strlen(md), 0600);
	snprintf(p, sizeof(p), "%s/network-config", in->seed_dir);
	r |= file_write_atomic(p, nc, strlen(nc), 0600);
	struct iso_file files[] = {
		{ "meta-data", md, strlen(md) },
		{ "network-config", nc, strlen(nc) },
		{ "user-data", ud, strlen(ud) },
	};

	r |= iso_write(in->seed, "cidata", files, 3);
	if (r)
		snprintf(err, errlen, "cannot write the cloud-init seed %s", in->seed);
out:
	free(upk);
	free(hpk);
	free(hpriv);
	free(ud);
	free(md);
	free(nc);
	free(deb);
	return r;
}

static int create_run(int argc, char **argv)
{
	struct vm_instance in;
	struct vm_config *c = &in.cfg;
	struct vm_config opt;
	const char *image = NULL, *deb = NULL, *name;
	char err[2048], cache[PATH_MAX], base[PATH_MAX], qemu[PATH_MAX], qimg[PATH_MAX];
	char debpath[PATH_MAX], sizearg[32], *out = NULL;
	double timeout = 1800, t0 = now_s();
	bool no_start = false, json = false, set_accel = false;
	struct strv pkgs, ports, gpus;
	int o, rc = PEGPU_EXIT_FAIL;
	long serial_off = 0;
	struct stat st;

	strv_init(&pkgs);
	strv_init(&ports);
	strv_init(&gpus);
	vm_config_defaults(&opt, "x");
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", create_opts, NULL)) != -1) {
		switch (o) {
		case OPT_IMAGE: image = optarg; break;
		case OPT_ARCH:
			if (vm_arch_parse(optarg, &opt.arch))
				goto bad;
			break;
		case OPT_ACCEL:
			if (vm_accel_parse(optarg, &opt.accel))
				goto bad;
			set_accel = true;
			break;
		case OPT_CPUS: if (set_opt(&opt, "cpus", optarg)) goto bad; break;
		case OPT_MEMORY: if (set_opt(&opt, "memory", optarg)) goto bad; break;
		case OPT_DISK: if (set_opt(&opt, "disk", optarg)) goto bad; break;
		case OPT_USER: if (set_opt(&opt, "user", optarg)) goto bad; break;
		case OPT_PACKAGE: strv_add(&pkgs, optarg); break;
		case OPT_PORT: strv_add(&ports, optarg); break;
		case OPT_GPU: strv_add(&gpus, optarg); break;
		case OPT_NVIDIA: opt.nvidia = true; break;
		case OPT_DESKTOP: opt.mode = VM_MODE_DESKTOP; break;
		case OPT_NO_DRIVER: opt.guest_driver = false; break;
		case OPT_DEB: deb = optarg; break;
		case OPT_TIMEOUT: timeout = atof(optarg); break;
		case OPT_NO_START: no_start = true; break;
		case OPT_JSON: json = true; break;
		case 'h': create_usage(stdout); return PEGPU_EXIT_OK;
		default: goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	name = argv[optind];
	if (instance_paths(&in, name, err, sizeof(err)))
		goto fail_msg;
	if (path_exists(in.dir)) {
		snprintf(err, sizeof(err), "'%s' already exists (%s): `pegpu start %s`, or `pegpu destroy "
			 "%s` first", name, in.dir, name, name);
		goto fail_msg;
	}
	/* the config: host defaults, then the options */
	vm_config_defaults(c, name);
	c->arch = opt.arch;
	if (set_accel)
		c->accel = opt.accel;
	if (c->accel == VM_ACCEL_HVF && c->arch != VM_ARCH_AARCH64)
		c->accel = VM_ACCEL_TCG;	/* an x86_64 guest on a Mac is emulated */
	if (c->accel != VM_ACCEL_HVF)
		c->net = VM_NET_USER;	/* vmnet needs macOS */
	c->cpus = opt.cpus;
	c->memory_mib = opt.memory_mib;
	c->disk_gib = opt.disk_gib;
	snprintf(c->user, sizeof(c->user), "%s", opt.user);
	c->nvidia = opt.nvidia;
	c->mode = opt.mode;
	c->guest_driver = opt.guest_driver;
	for (size_t i = 0; i < pkgs.n; i++) {
		const char *p = pkgs.v[i];

		if (c->n_packages >= VM_MAX_PACKAGES || strlen(p) >= sizeof(c->packages[0]) ||
		    strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789+.-:=~") != strlen(p)) {
			snprintf(err, sizeof(err), "--package '%s' is not a Debian package name", p);
			goto fail_msg;
		}
		snprintf(c->packages[c->n_packages++], sizeof(c->packages[0]), "%s", p);
	}
	for (size_t i = 0; i < ports.n; i++) {
		int h, g;
		char extra;

		if (sscanf(ports.v[i], "%d:%d%c", &h, &g, &extra) != 2 || h < 1 || h > 65535 || g < 1 ||
		    g > 65535 || vm_config_port_add(c, h, g)) {
			snprintf(err, sizeof(err), "--port '%s' is not HOST:GUEST (or the host port is repeated)",
				 ports.v[i]);
			goto fail_msg;
		}
	}
	for (size_t i = 0; i < gpus.n && i < VM_MAX_GPUS; i++)
		snprintf(c->gpus[c->n_gpus++].host, sizeof(c->gpus[0].host), "%s", gpus.v[i]);
	if (vm_config_validate(c, err, sizeof(err)))
		goto fail_msg;
	if (c->guest_driver) {
		if (deb)
			snprintf(debpath, sizeof(debpath), "%s", deb);
		if (deb ? !path_exists(debpath) : vm_find_driver_deb(debpath, sizeof(debpath)) != 0) {
			snprintf(err, sizeof(err), "the guest driver package (pegpu-dma-dkms .deb) was not "
				 "found%s%s: build it with guest/dkms/mkdeb.sh and pass --driver-deb, or set "
				 "PEGPU_DRIVER_DEB (--no-guest-driver for a VM without an eGPU)",
				 deb ? " at " : "", deb ? deb : "");
			goto fail_msg;
		}
	}
	if (vm_find_qemu(c, qemu, sizeof(qemu)) || vm_find_qemu_img(qemu, qimg, sizeof(qimg))) {
		snprintf(err, sizeof(err), "QEMU for %s (and qemu-img) not found: `pegpu doctor` explains",
			 vm_arch_name(c->arch));
		goto fail_msg;
	}

	/* image: download or reuse, always verified */
	snprintf(c->image_url, sizeof(c->image_url), "%s", image ? image : image_default_url(c->arch));
	vm_step(t0, "image", "%s", c->image_url);
	if (vm_cache_dir(cache, sizeof(cache)) ||
	    image_fetch(c->image_url, cache, 1, base, sizeof(base), c->image_sha512, err, sizeof(err)))
		goto fail_msg;
	snprintf(c->image_path, sizeof(c->image_path), "%s", base);
	vm_step(t0, "image", "verified (sha512 %.16s...), cached at %s", c->image_sha512, base);

	if (mkdir_p(in.dir, 0700) || instance_save_config(&in) || instance_save_state(&in)) {
		snprintf(err, sizeof(err), "cannot write %s: %s", in.dir, strerror(errno));
		goto fail_msg;
	}
	if (instance_lock(&in, err, sizeof(err)))
		goto fail_msg;

	/* disk: a qcow2 overlay, so instances share the cached base */
	snprintf(sizearg, sizeof(sizearg), "%dG", c->disk_gib);
	{
		const char *fmt = strstr(base, ".qcow2") ? "qcow2" : "raw";
		char *a[] = { qimg, "create", "-q", "-f", "qcow2", "-F", (char *)fmt, "-b", base, in.disk,
			      sizearg, NULL };

		if (run_argv(a, &out, true)) {
			snprintf(err, sizeof(err), "qemu-img create failed: %s", out ? out : "");
			goto fail_destroy_hint;
		}
		free(out);
		out = NULL;
	}
	vm_step(t0, "disk", "%s: %s overlay on the base image", in.disk, sizearg);

	/* keys + seed */
	if (ssh_keys_create(&in, err, sizeof(err)) ||
	    write_seed(&in, c->guest_driver ? debpath : NULL, err, sizeof(err)))
		goto fail_destroy_hint;
	vm_step(t0, "seed", "cloud-init NoCloud seed %s (user %s, key %s)", in.seed, c->user, in.key);
	if (no_start) {
		vm_step(t0, "created", "`pegpu start %s` boots and provisions it", name);
		rc = PEGPU_EXIT_OK;
		goto done;
	}

	/* first boot: without the eGPU, whatever is configured */
	serial_off = stat(in.serial_log, &st) == 0 ? (long)st.st_size : 0;
	struct vm_start_opts so = { .no_gpu = true, .wait_ssh = false, .timeout_s = timeout };

	if (vm_start(&in, &so, err, sizeof(err)))
		goto fail_destroy_hint;
	if (vm_provision_wait(&in, serial_off, timeout, err, sizeof(err)))
		goto fail_destroy_hint;
	vm_step(t0, "ready", "'%s' is provisioned and running: pegpu ssh %s", name, name);
	rc = PEGPU_EXIT_OK;
done:
	if (json)
		printf("{\"name\": \"%s\", \"state\": \"%s\", \"ssh_port\": %d, \"dir\": \"%s\", "
		       "\"seconds\": %.1f}\n", name, vm_state_name(in.st.state), in.st.ssh_port, in.dir,
		       now_s() - t0);
	instance_close(&in);
	strv_free(&pkgs);
	strv_free(&ports);
	strv_free(&gpus);
	return rc;
fail_destroy_hint:
	fprintf(stderr, "pegpu create: %s\n", err);
	fprintf(stderr, "pegpu create: the instance is left as it is for inspection (`pegpu logs %s`); "
		"`pegpu destroy --force %s` removes it\n", name, name);
	free(out);
	goto done;
fail_msg:
	fprintf(stderr, "pegpu create: %s\n", err);
	goto done;
bad:
	fprintf(stderr, "pegpu create: bad value '%s' for an option (see --help)\n", optarg);
	strv_free(&pkgs);
	strv_free(&ports);
	strv_free(&gpus);
	return PEGPU_EXIT_USAGE;
usage:
	create_usage(stderr);
	strv_free(&pkgs);
	strv_free(&ports);
	strv_free(&gpus);
	return PEGPU_EXIT_USAGE;
}

const struct pegpu_cmd pegpu_cmd_create = {
	.name = "create",
	.summary = "create and provision a VM (image, disk, cloud-init, guest driver)",
	.run = create_run,
};
