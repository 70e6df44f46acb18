/* SPDX-License-Identifier: Apache-2.0 */
/* cloud-init NoCloud seed: the three documents and the ISO 9660 volume. */
#include "seed.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "argv.h"
#include "util.h"

const char *const vm_seed_steps[] = { "packages", "guest-driver", "desktop", "done", NULL };

char *base64_encode(const unsigned char *p, size_t len)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = t[(v >> 18) & 63];
		*o++ = t[(v >> 12) & 63];
		*o++ = i + 1 < len ? t[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? t[v & 63] : '=';
	}
	*o = 0;
	return out;
}

/* Emit text as a YAML literal block, indented by ind spaces. */
static void yaml_block(FILE *f, int ind, const char *text)
{
	while (*text) {
		size_t l = strcspn(text, "\n");

		fprintf(f, "%*s%.*s\n", ind, "", (int)l, text);
		text += l;
		if (*text == '\n')
			text++;
	}
}

/*
 * The first-boot script.  It reports each named step on the console
 * ("pegpu-step: NAME start|ok|failed"), which `pegpu create` follows in the
 * serial log, and keeps the details in /var/log/pegpu-provision.log, which
 * `pegpu create` shows when a step fails.
 */
static const char provision_head[] =
	"#!/bin/sh\n"
	"# pegpu first-boot provisioning (written by pegpu create; runs once, from cloud-init)\n"
	"set -u\n"
	"log=/var/log/pegpu-provision.log\n"
	"export DEBIAN_FRONTEND=noninteractive\n"
	"say() { echo \"pegpu-step: $*\" | tee -a $log > /dev/console 2>/dev/null || true; }\n"
	"run() {\n"
	"\tname=$1; shift; say \"$name start\"\n"
	"\tif \"$@\" >> $log 2>&1; then say \"$name ok\"\n"
	"\telse say \"$name failed (details: $log)\"; exit 1; fi\n"
	"}\n"
	"have() { dpkg-query -W -f='${Status}' \"$1\" 2>/dev/null | grep -q 'ok installed'; }\n"
	"# install what is missing; the archive is only asked when something is\n"
	"need() {\n"
	"\tmissing=\"\"\n"
	"\tfor p in \"$@\"; do have \"$p\" || missing=\"$missing $p\"; done\n"
	"\t[ -z \"$missing\" ] && return 0\n"
	"\tapt-get -q update && apt-get -q install -y --no-install-recommends $missing\n"
	"}\n"
	"driver() {\n"
	"\tneed dkms \"linux-headers-$(uname -r)\" || return 1\n"
	"\tapt-get -q install -y /var/lib/pegpu/pegpu-dma-dkms.deb || return 1\n"
	"\tmodprobe pegpu_dma && grep -q '^pegpu_dma ' /proc/modules\n"
	"}\n";

char *vm_seed_user_data(const struct vm_seed_in *s)
{
	const struct vm_config *c = s->cfg;
	char *buf = NULL, *b64 = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "#cloud-config\n");
	fprintf(f, "# written by pegpu create for instance '%s' (docs/instances.md)\n", c->name);
	fprintf(f, "hostname: %s\n", c->name);
	/* sudo resolves the hostname */
	fprintf(f, "manage_etc_hosts: true\n");
	fprintf(f, "users:\n");
	fprintf(f, "  - name: %s\n", c->user);
	fprintf(f, "    groups: [sudo]\n");
	fprintf(f, "    shell: /bin/bash\n");
	fprintf(f, "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n");
	/* key login only: no password exists anywhere */
	fprintf(f, "    lock_passwd: true\n");
	fprintf(f, "    ssh_authorized_keys:\n");
	fprintf(f, "      - \"%s\"\n", s->user_pubkey);
	fprintf(f, "disable_root: true\n");
	fprintf(f, "ssh_pwauth: false\n");
	/* the host key pegpu recorded in known_hosts at create */
	fprintf(f, "ssh_deletekeys: true\n");
	/* ed25519 is given below, so nothing is generated */
	fprintf(f, "ssh_genkeytypes: [ed25519]\n");
	fprintf(f, "ssh_keys:\n");
	fprintf(f, "  ed25519_private: |\n");
	yaml_block(f, 4, s->host_privkey);
	fprintf(f, "  ed25519_public: \"%s\"\n", s->host_pubkey);
	fprintf(f, "growpart:\n  mode: auto\n  devices: [\"/\"]\n");
	fprintf(f, "resize_rootfs: true\n");
	fprintf(f, "write_files:\n");
	fprintf(f, "  - path: /usr/local/lib/pegpu/provision.sh\n");
	fprintf(f, "    permissions: \"0755\"\n");
	fprintf(f, "    content: |\n");
	yaml_block(f, 6, provision_head);
	if (c->n_packages) {
		fprintf(f, "      run packages need");
		for (size_t i = 0; i < c->n_packages; i++)
			fprintf(f, " %s", c->packages[i]);
		fprintf(f, "\n");
	}
	if (c->guest_driver)
		fprintf(f, "      run guest-driver driver\n");
	if (c->mode == VM_MODE_DESKTOP)
		/* XFCE on Xorg, started by lightdm on the virtual display */
		fprintf(f, "      run desktop need xorg xfce4 lightdm dbus-x11\n");
	/* later boots skip cloud-init: under emulation its four Python stages
	 * cost minutes, and pegpu never changes the seed after create */
	fprintf(f, "      touch /etc/cloud/cloud-init.disabled\n");
	fprintf(f, "      say \"done\"\n");
	if (c->guest_driver && s->driver_deb) {
		b64 = base64_encode(s->driver_deb, s->driver_deb_len);
		if (!b64)
			goto fail;
		fprintf(f, "  - path: /var/lib/pegpu/pegpu-dma-dkms.deb\n");
		fprintf(f, "    encoding: b64\n");
		fprintf(f, "    permissions: \"0644\"\n");
		fprintf(f, "    content: %s\n", b64);
		/* the package loads pegpu_dma at boot, before GPU drivers (guest/dkms) */
	}
	fprintf(f, "runcmd:\n");
	fprintf(f, "  - [/usr/local/lib/pegpu/provision.sh]\n");
	fprintf(f, "final_message: \"pegpu-step: cloud-init finished after $UPTIME s\"\n");
	if (fclose(f))
		goto fail_closed;
	free(b64);
	return buf;
fail:
	fclose(f);
fail_closed:
	free(b64);
	free(buf);
	return NULL;
}

char *vm_seed_meta_data(const struct vm_seed_in *s)
{
	char *p = NULL;

	if (asprintf(&p, "instance-id: %s\nlocal-hostname: %s\n", s->instance_id, s->cfg->name) < 0)
		return NULL;
	return p;
}

char *vm_seed_network_config(const struct vm_seed_in *s)
{
	char m0[18], m1[18], *p = NULL;
	int r;

	vm_mac(s->cfg->name, 0, m0);
	vm_mac(s->cfg->name, 1, m1);
	if (s->cfg->net == VM_NET_VMNET)
		/* nic1 only carries loopback forwards: no routes or DNS from it */
		r = asprintf(&p, "version: 2\nethernets:\n"
			     "  nic0:\n    match:\n      macaddress: \"%s\"\n    dhcp4: true\n"
			     "  nic1:\n    match:\n      macaddress: \"%s\"\n    dhcp4: true\n"
			     "    dhcp4-overrides:\n      use-routes: false\n      use-dns: false\n", m0, m1);
	else
		r = asprintf(&p, "version: 2\nethernets:\n"
			     "  nic0:\n    match:\n      macaddress: \"%s\"\n    dhcp4: true\n", m0);
	return r < 0 ? NULL : p;
}

/* --- ISO 9660 ----------------------------------------------------------- */

#define ISO_SECTOR 2048

static void put16b(uint8_t *p, uint16_t v)	/* both-endian */
{
	p[0] = v & 0xff; p[1] = v >> 8; p[2] = v >> 8; p[3] = v & 0xff;
}

static void put32b(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (v >> (8 * i)) & 0xff;
		p[7 - i] = (v >> (8 * i)) & 0xff;
	}
}

static void pad(uint8_t *p, size_t len, const char *s)
{
	size_t l = strlen(s);

	memset(p, ' ', len);
	memcpy(p, s, l < len ? l : len);
}

/* One directory record; returns its length. */
static size_t dirrec(uint8_t *p, uint32_t extent, uint32_t size, bool dir, const uint8_t *name,
		     size_t nlen, const struct tm *tm)
{
	size_t len = 33 + nlen + (nlen % 2 == 0);	/* records have even length */

	memset(p, 0, len);
	p[0] = (uint8_t)len;
	put32b(p + 2, extent);
	put32b(p + 10, size);
	p[18] = (uint8_t)tm->tm_year;
	p[19] = (uint8_t)(tm->tm_mon + 1);
	p[20] = (uint8_t)tm->tm_mday;
	p[21] = (uint8_t)tm->tm_hour;
	p[22] = (uint8_t)tm->tm_min;
	p[23] = (uint8_t)tm->tm_sec;
	p[25] = dir ? 2 : 0;
	put16b(p + 28, 1);
	p[32] = (uint8_t)nlen;
	memcpy(p + 33, name, nlen);
	return len;
}

int iso_write(const char *path, const char *label, const struct iso_file *files, size_t n)
{
	/* layout: 16 system sectors, PVD, terminator, L and M path tables, root dir, files */
	const uint32_t pvd = 16, term = 17, lpt = 18, mpt = 19, root = 20;
	uint32_t next = 21, total;
	uint32_t *extent = calloc(n ? n : 1, sizeof(*extent));
	uint8_t *img = NULL, *d;
	time_t now = time(NULL);
	struct tm tm;
	char stamp[64];
	size_t off;
	int r = -1;

	if (!extent)
		return -1;
	gmtime_r(&now, &tm);
	for (size_t i = 0; i < n; i++) {
		extent[i] = next;
		next += (uint32_t)((files[i].len + ISO_SECTOR - 1) / ISO_SECTOR);
	}
	total = next;
	img = calloc(total, ISO_SECTOR);
	if (!img)
		goto out;

	/* root directory: ".", "..", then the files (names in the order given) */
	d = img + (size_t)root * ISO_SECTOR;
	off = dirrec(d, root, ISO_SECTOR, true, (const uint8_t *)"\0", 1, &tm);
	off += dirrec(d + off, root, ISO_SECTOR, true, (const uint8_t *)"\1", 1, &tm);
	for (size_t i = 0; i < n; i++) {
		char name[40];
		size_t nl = (size_t)snprintf(name, sizeof(name), "%s;1", files[i].name);

		/* Linux shows names without Rock Ridge lowercased, ";1" dropped */
		for (size_t k = 0; k < nl; k++)
			if (name[k] >= 'a' && name[k] <= 'z')
				name[k] = (char)(name[k] - 'a' + 'A');
		if (off + 33 + nl + 1 > ISO_SECTOR || nl >= sizeof(name))
			goto out;
		off += dirrec(d + off, extent[i], (uint32_t)files[i].len, false, (const uint8_t *)name, nl, &tm);
		memcpy(img + (size_t)extent[i] * ISO_SECTOR, files[i].data, files[i].len);
	}

	/* path tables: the root only (10 bytes) */
	d = img + (size_t)lpt * ISO_SECTOR;
	d[0] = 1; d[2] = root & 0xff; d[3] = (root >> 8) & 0xff; d[6] = 1;
	d = img + (size_t)mpt * ISO_SECTOR;
	d[0] = 1; d[5] = root & 0xff; d[4] = (root >> 8) & 0xff; d[7] = 1;

	/* primary volume descriptor */
	d = img + (size_t)pvd * ISO_SECTOR;
	d[0] = 1;
	memcpy(d + 1, "CD001", 5);
	d[6] = 1;
	pad(d + 8, 32, "LINUX");
	pad(d + 40, 32, label);
	put32b(d + 80, total);
	put16b(d + 120, 1);
	put16b(d + 124, 1);
	put16b(d + 128, ISO_SECTOR);
	put32b(d + 132, 10);
	d[140] = lpt & 0xff; d[141] = (lpt >> 8) & 0xff;
	d[151] = mpt & 0xff; d[150] = (mpt >> 8) & 0xff;
	dirrec(d + 156, root, ISO_SECTOR, true, (const uint8_t *)"\0", 1, &tm);
	pad(d + 190, 128, "");
	pad(d + 318, 128, "");
	pad(d + 446, 128, "");
	pad(d + 574, 128, "PEGPU");
	pad(d + 702, 37 * 3, "");
	snprintf(stamp, sizeof(stamp), "%04d%02d%02d%02d%02d%02d00", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	memcpy(d + 813, stamp, 16);
	memcpy(d + 830, stamp, 16);
	memset(d + 847, '0', 16);
	memset(d + 864, '0', 16);
	d[881] = 1;
	/* terminator */
	d = img + (size_t)term * ISO_SECTOR;
	d[0] = 255;
	memcpy(d + 1, "CD001", 5);
	d[6] = 1;

	r = file_write_atomic(path, img, (size_t)total * ISO_SECTOR, 0600);
out:
	free(img);
	free(extent);
	return r;
}
