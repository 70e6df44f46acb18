/* SPDX-License-Identifier: Apache-2.0 */
/* ssh/scp wrappers with a per-instance key and a recorded host key. */
#include "ssh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int keygen(const char *path, const char *comment)
{
	char *argv[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", (char *)comment,
			 "-f", (char *)path, NULL };
	char *out = NULL;
	int r;

	unlink(path);
	r = run_argv(argv, &out, true);
	free(out);
	return r;
}

int ssh_keys_create(struct vm_instance *in, char *err, size_t errlen)
{
	char comment[64], pub[PATH_MAX], *hk = NULL, *line = NULL;
	size_t len;
	int r = -1;

	snprintf(comment, sizeof(comment), "pegpu-%s", in->name);
	if (keygen(in->key, comment) || keygen(in->hostkey, comment)) {
		snprintf(err, errlen, "ssh-keygen failed: is openssh-client installed?");
		goto out;
	}
	if (snprintf(pub, sizeof(pub), "%s.pub", in->hostkey) >= (int)sizeof(pub))
		goto out;
	hk = file_read(pub, &len);
	if (!hk) {
		snprintf(err, errlen, "cannot read %s", pub);
		goto out;
	}
	hk[strcspn(hk, "\n")] = 0;
	/* "alias type key": HostKeyAlias makes the entry independent of the port */
	if (asprintf(&line, "pegpu-%s %s\n", in->name, hk) < 0)
		goto out;
	if (file_write_atomic(in->known_hosts, line, strlen(line), 0600)) {
		snprintf(err, errlen, "cannot write %s", in->known_hosts);
		goto out;
	}
	r = 0;
out:
	free(hk);
	free(line);
	return r;
}

int ssh_argv(const struct vm_instance *in, bool scp, bool batch, struct strv *a)
{
	int r = 0;

	strv_init(a);
	r |= strv_add(a, scp ? "scp" : "ssh");
	r |= strv_add(a, "-i") | strv_add(a, in->key);
	r |= strv_add(a, "-o") | strv_add(a, "IdentitiesOnly=yes");
	r |= strv_add(a, "-o") | strv_addf(a, "UserKnownHostsFile=%s", in->known_hosts);
	r |= strv_add(a, "-o") | strv_add(a, "GlobalKnownHostsFile=/dev/null");
	r |= strv_add(a, "-o") | strv_add(a, "StrictHostKeyChecking=yes");
	r |= strv_add(a, "-o") | strv_addf(a, "HostKeyAlias=pegpu-%s", in->name);
	r |= strv_add(a, "-o") | strv_add(a, "ConnectTimeout=10");
	r |= strv_add(a, "-o") | strv_add(a, "ServerAliveInterval=10");
	r |= strv_add(a, "-o") | strv_add(a, "LogLevel=ERROR");
	if (batch)
		r |= strv_add(a, "-o") | strv_add(a, "BatchMode=yes");
	r |= strv_add(a, scp ? "-P" : "-p") | strv_addf(a, "%d", in->st.ssh_port);
	if (r)
		strv_free(a);
	return r ? -1 : 0;
}

int ssh_dest(const struct vm_instance *in, char *buf, size_t len)
{
	return snprintf(buf, len, "%s@127.0.0.1", in->cfg.user) >= (int)len ? -1 : 0;
}

int ssh_run(const struct vm_instance *in, const char *cmd, char **out)
{
	struct strv a;
	char dest[96];
	int r;

	if (ssh_argv(in, false, true, &a) || ssh_dest(in, dest, sizeof(dest)))
		return -1;
	strv_add(&a, "-n");
	strv_add(&a, dest);
	strv_add(&a, cmd);
	r = run_argv(a.v, out, out != NULL);
	strv_free(&a);
	return r;
}

int ssh_wait(const struct vm_instance *in, double timeout_s)
{
	double end = now_s() + timeout_s;

	while (now_s() < end) {
		char *out = NULL;
		int r = ssh_run(in, "true", &out);

		free(out);
		if (r == 0)
			return 0;
		if (!instance_qemu_pid(in))
			return -1;	/* QEMU is gone: waiting longer will not help */
		sleep_s(1);
	}
	return -1;
}
