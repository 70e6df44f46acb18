/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cloud-init seed: user-data passes cloud-init's own schema check
 * (`cloud-init schema`, the host's cloud-init), says what it must (key
 * login only, the recorded host key, the driver package), and the ISO
 * 9660 volume reads back as "cidata" with the three files.
 */
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

#include "seed.h"
#include "util.h"

static const char hostkey[] =
	"-----BEGIN OPENSSH PRIVATE KEY-----\n"
	"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
	"-----END OPENSSH PRIVATE KEY-----\n";

static struct vm_seed_in seed_in(struct vm_config *c, bool desktop)
{
	static const unsigned char deb[] = "!<arch>\ndebian-binary   fake";

	vm_config_defaults(c, "dev");
	snprintf(c->packages[c->n_packages++], sizeof(c->packages[0]), "htop");
	if (desktop)
		c->mode = VM_MODE_DESKTOP;
	return (struct vm_seed_in){
		.cfg = c, .instance_id = "pegpu-dev-1", .user_pubkey = "ssh-ed25519 AAAAC3Nza user@host",
		.host_privkey = hostkey, .host_pubkey = "ssh-ed25519 AAAAC3Nzb pegpu-dev",
		.driver_deb = deb, .driver_deb_len = sizeof(deb) - 1,
	};
}

static void schema_check(const char *ud)
{
	char path[] = "/tmp/pegpu-ud-XXXXXX", *out = NULL;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, ud, strlen(ud)), (ssize_t)strlen(ud));
	close(fd);
	char *argv[] = { "cloud-init", "schema", "--config-file", path, NULL };
	char *ci = path_which("cloud-init");

	if (!ci)
		fail_msg("cloud-init is not installed: scripts/deps.sh installs it (the schema check needs it)");
	free(ci);
	int rc = run_argv(argv, &out, true);

	unlink(path);
	if (rc != 0 || !strstr(out, "Valid"))
		fail_msg("cloud-init schema rejected the generated user-data (rc %d):\n%s\n---\n%s", rc, out, ud);
	free(out);
}

static void test_user_data(void **s)
{
	struct vm_config c;
	struct vm_seed_in in = seed_in(&c, false);
	char *ud = vm_seed_user_data(&in);

	(void)s;
	assert_non_null(ud);
	assert_memory_equal(ud, "#cloud-config\n", 14);
	/* key login only, host key handed over, driver package embedded */
	assert_non_null(strstr(ud, "lock_passwd: true"));
	assert_non_null(strstr(ud, "ssh_pwauth: false"));
	assert_null(strstr(ud, " passwd:"));
	assert_null(strstr(ud, "chpasswd"));
	assert_non_null(strstr(ud, "- \"ssh-ed25519 AAAAC3Nza user@host\""));
	assert_non_null(strstr(ud, "    -----BEGIN OPENSSH PRIVATE KEY-----\n"));
	assert_non_null(strstr(ud, "ed25519_public: \"ssh-ed25519 AAAAC3Nzb pegpu-dev\""));
	assert_non_null(strstr(ud, "path: /var/lib/pegpu/pegpu-dma-dkms.deb"));
	assert_non_null(strstr(ud, "content: ITxhcmNoPgpkZWJpYW4tYmluYXJ5ICAgZmFrZQ=="));
	assert_non_null(strstr(ud, "run packages need htop\n"));
	assert_non_null(strstr(ud, "run guest-driver driver\n"));
	assert_null(strstr(ud, "run desktop"));
	assert_non_null(strstr(ud, "growpart:"));
	schema_check(ud);
	free(ud);
}

static void test_user_data_desktop_no_driver(void **s)
{
	struct vm_config c;
	struct vm_seed_in in = seed_in(&c, true);
	char *ud;

	(void)s;
	c.guest_driver = false;
	in.driver_deb = NULL;
	ud = vm_seed_user_data(&in);
	assert_non_null(strstr(ud, "run desktop need xorg xfce4 lightdm"));
	assert_null(strstr(ud, "path: /var/lib/pegpu/pegpu-dma-dkms.deb"));
	assert_null(strstr(ud, "run guest-driver"));
	schema_check(ud);
	free(ud);
}

static void test_meta_and_network(void **s)
{
	struct vm_config c;
	struct vm_seed_in in = seed_in(&c, false);
	char *md = vm_seed_meta_data(&in), *nc;

	(void)s;
	assert_string_equal(md, "instance-id: pegpu-dev-1\nlocal-hostname: dev\n");
	c.net = VM_NET_USER;
	nc = vm_seed_network_config(&in);
	assert_non_null(strstr(nc, "version: 2"));
	assert_null(strstr(nc, "nic1"));
	free(nc);
	c.net = VM_NET_VMNET;
	nc = vm_seed_network_config(&in);
	assert_non_null(strstr(nc, "nic1"));
	assert_non_null(strstr(nc, "use-routes: false"));
	free(nc);
	free(md);
}

/* An ISO 9660 reader written for the test: find name in the root directory. */
static char *iso_get(const unsigned char *img, size_t len, const char *name)
{
	const unsigned char *pvd = img + 16 * 2048, *root = pvd + 156;
	uint32_t ext = root[2] | root[3] << 8 | root[4] << 16 | (uint32_t)root[5] << 24;
	const unsigned char *d = img + (size_t)ext * 2048;

	for (size_t off = 0; off < 2048 && d[off];) {
		const unsigned char *r = d + off;
		char n[64] = "";
		size_t nl = r[32];

		for (size_t i = 0; i < nl && i < sizeof(n) - 1; i++)
			n[i] = (char)((r[33 + i] >= 'A' && r[33 + i] <= 'Z') ? r[33 + i] + 32 : r[33 + i]);
		n[nl < sizeof(n) ? nl : sizeof(n) - 1] = 0;
		char *semi = strchr(n, ';');

		if (semi)
			*semi = 0;
		if (!strcmp(n, name)) {
			uint32_t fe = r[2] | r[3] << 8 | r[4] << 16 | (uint32_t)r[5] << 24;
			uint32_t fl = r[10] | r[11] << 8 | r[12] << 16 | (uint32_t)r[13] << 24;

			assert_true((size_t)fe * 2048 + fl <= len);
			return strndup((const char *)img + (size_t)fe * 2048, fl);
		}
		off += r[0];
	}
	return NULL;
}

static void test_iso(void **s)
{
	char path[] = "/tmp/pegpu-seed-XXXXXX", *blk = NULL, *got;
	int fd = mkstemp(path);
	size_t len;
	const char *ud = "#cloud-config\nhostname: dev\n";
	struct iso_file f[] = {
		{ "meta-data", "instance-id: x\n", 15 },
		{ "network-config", "version: 2\n", 11 },
		{ "user-data", ud, strlen(ud) },
	};

	(void)s;
	close(fd);
	assert_int_equal(iso_write(path, "cidata", f, 3), 0);
	unsigned char *img = (unsigned char *)file_read(path, &len);

	assert_non_null(img);
	assert_int_equal(len % 2048, 0);
	assert_memory_equal(img + 16 * 2048 + 1, "CD001", 5);
	got = iso_get(img, len, "user-data");
	assert_non_null(got);
	assert_string_equal(got, ud);
	free(got);
	got = iso_get(img, len, "meta-data");
	assert_string_equal(got, "instance-id: x\n");
	free(got);
	/* what cloud-init's NoCloud looks for: an iso9660 volume labelled cidata */
	char *argv[] = { "blkid", "-p", "-o", "export", path, NULL };

	assert_int_equal(run_argv(argv, &blk, true), 0);
	assert_non_null(strstr(blk, "TYPE=iso9660"));
	assert_non_null(strstr(blk, "LABEL=cidata"));
	free(blk);
	free(img);
	unlink(path);
}

static void test_base64(void **s)
{
	char *b;

	(void)s;
	b = base64_encode((const unsigned char *)"", 0);
	assert_string_equal(b, "");
	free(b);
	b = base64_encode((const unsigned char *)"f", 1);
	assert_string_equal(b, "Zg==");
	free(b);
	b = base64_encode((const unsigned char *)"fo", 2);
	assert_string_equal(b, "Zm8=");
	free(b);
	b = base64_encode((const unsigned char *)"foobar", 6);
	assert_string_equal(b, "Zm9vYmFy");
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_data),
		cmocka_unit_test(test_user_data_desktop_no_driver),
		cmocka_unit_test(test_meta_and_network),
		cmocka_unit_test(test_iso),
		cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
