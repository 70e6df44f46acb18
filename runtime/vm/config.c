/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu.yaml: parse (libyaml document API), validate, emit (libyaml emitter). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "util.h"

const char *vm_arch_name(enum vm_arch a)
{
	return a == VM_ARCH_AARCH64 ? "aarch64" : "x86_64";
}

const char *vm_accel_name(enum vm_accel a)
{
	switch (a) {
	case VM_ACCEL_KVM: return "kvm";
	case VM_ACCEL_HVF: return "hvf";
	default: return "tcg";
	}
}

int vm_arch_parse(const char *s, enum vm_arch *a)
{
	if (!strcmp(s, "aarch64") || !strcmp(s, "arm64"))
		*a = VM_ARCH_AARCH64;
	else if (!strcmp(s, "x86_64") || !strcmp(s, "amd64"))
		*a = VM_ARCH_X86_64;
	else
		return -1;
	return 0;
}

int vm_accel_parse(const char *s, enum vm_accel *a)
{
	if (!strcmp(s, "tcg"))
		*a = VM_ACCEL_TCG;
	else if (!strcmp(s, "kvm"))
		*a = VM_ACCEL_KVM;
	else if (!strcmp(s, "hvf"))
		*a = VM_ACCEL_HVF;
	else
		return -1;
	return 0;
}

enum vm_arch vm_config_defaults_arch(void)
{
#if defined(__aarch64__)
	return VM_ARCH_AARCH64;
#else
	return VM_ARCH_X86_64;
#endif
}

void vm_config_defaults(struct vm_config *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name ? name : "default");
	c->arch = vm_config_defaults_arch();
#if defined(__APPLE__)
	/* the product: hvf, vmnet, the GPU behind the DriverKit driver */
	c->accel = VM_ACCEL_HVF;
	c->net = VM_NET_VMNET;
	c->cpus = 4;
	c->memory_mib = 8192;
#else
	/* KVM exists on many Linux hosts but is not assumed: --accel kvm */
	c->accel = VM_ACCEL_TCG;
	c->net = VM_NET_USER;
	c->cpus = 2;
	c->memory_mib = 2048;
#endif
	c->disk_gib = 20;
	c->mode = VM_MODE_HEADLESS;
	snprintf(c->user, sizeof(c->user), "pegpu");
	c->guest_driver = true;
	c->stop_timeout_s = 360;
}

/* "4096", "4096M", "4G" -> MiB (unit_mib: what a bare number means) */
static long parse_size(const char *s, long unit_mib)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || v <= 0 || end == s)
		return -1;
	if (!*end)
		return v * unit_mib;
	if (!strcasecmp(end, "M") || !strcasecmp(end, "MiB"))
		return v;
	if (!strcasecmp(end, "G") || !strcasecmp(end, "GiB"))
		return v * 1024;
	return -1;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *b)
{
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
		*b = true;
	else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
		*b = false;
	else
		return -1;
	return 0;
}

#define ERR(...) do { snprintf(err, errlen, __VA_ARGS__); goto out; } while (0)

static const char *scalar(yaml_document_t *d, yaml_node_t *n)
{
	(void)d;
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int copy_str(char *dst, size_t len, const char *s)
{
	return snprintf(dst, len, "%s", s) >= (int)len ? -1 : 0;
}

/* One mapping pair of the top level. */
static int parse_key(struct vm_config *c, yaml_document_t *d, const char *k, yaml_node_t *vn,
		     char *err, size_t errlen)
{
	const char *v = scalar(d, vn);
	long n;
	int r = -1;

	if (!strcmp(k, "image")) {
		if (!vn || vn->type != YAML_MAPPING_NODE)
			ERR("image: expected a mapping with url, sha512, path");
		for (yaml_node_pair_t *p = vn->data.mapping.pairs.start; p < vn->data.mapping.pairs.top; p++) {
			const char *ik = scalar(d, yaml_document_get_node(d, p->key));
			const char *iv = scalar(d, yaml_document_get_node(d, p->value));

			if (!ik || !iv)
				ERR("image: keys and values must be plain strings");
			if (!strcmp(ik, "url") ? copy_str(c->image_url, sizeof(c->image_url), iv) :
			    !strcmp(ik, "sha512") ? copy_str(c->image_sha512, sizeof(c->image_sha512), iv) :
			    !strcmp(ik, "path") ? copy_str(c->image_path, sizeof(c->image_path), iv) : -2)
				ERR("image.%s: unknown key or value too long", ik);
		}
		return 0;
	}
	if (!strcmp(k, "packages") || !strcmp(k, "ports") || !strcmp(k, "gpus")) {
		if (vn && vn->type == YAML_SCALAR_NODE && !*v)
			return 0;	/* "packages:" with nothing after it */
		if (!vn || vn->type != YAML_SEQUENCE_NODE)
			ERR("%s: expected a list", k);
		for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top; it++) {
			yaml_node_t *in = yaml_document_get_node(d, *it);
			const char *iv = scalar(d, in);

			if (!strcmp(k, "packages")) {
				if (!iv || c->n_packages >= VM_MAX_PACKAGES ||
				    copy_str(c->packages[c->n_packages], sizeof(c->packages[0]), iv))
					ERR("packages: each entry is a package name (at most %d)", VM_MAX_PACKAGES);
				c->n_packages++;
			} else if (!strcmp(k, "gpus")) {
				/* "- 0000:03:00.0" or "- host: 0000:03:00.0" */
				if (!iv && in && in->type == YAML_MAPPING_NODE && in->data.mapping.pairs.start < in->data.mapping.pairs.top &&
				    !strcmp(scalar(d, yaml_document_get_node(d, in->data.mapping.pairs.start->key)) ?: "", "host"))
					iv = scalar(d, yaml_document_get_node(d, in->data.mapping.pairs.start->value));
				if (!iv || c->n_gpus >= VM_MAX_GPUS ||
				    copy_str(c->gpus[c->n_gpus].host, sizeof(c->gpus[0].host), iv))
					ERR("gpus: each entry names one GPU function (host: ADDRESS)");
				c->n_gpus++;
			} else {
				long h = 0, g = 0;

				if (!in || in->type != YAML_MAPPING_NODE || c->n_ports >= VM_MAX_PORTS)
					ERR("ports: each entry is {host: PORT, guest: PORT}");
				for (yaml_node_pair_t *p = in->data.mapping.pairs.start; p < in->data.mapping.pairs.top; p++) {
					const char *pk = scalar(d, yaml_document_get_node(d, p->key));
					const char *pv = scalar(d, yaml_document_get_node(d, p->value));

					if (!pk || !pv)
						ERR("ports: host and guest must be numbers");
					if (!strcmp(pk, "host") ? parse_int(pv, 1, 65535, &h) :
					    !strcmp(pk, "guest") ? parse_int(pv, 1, 65535, &g) : -1)
						ERR("ports: '%s: %s' is not a port (1-65535)", pk, pv);
				}
				if (!h || !g)
					ERR("ports: each entry needs both host and guest");
				if (vm_config_port_add(c, (int)h, (int)g) < 0)
					ERR("ports: host port %ld is listed twice", h);
			}
		}
		return 0;
	}
	if (!v)
		ERR("%s: expected a single value", k);
	if (!strcmp(k, "name")) {
		if (!name_valid(v) || copy_str(c->name, sizeof(c->name), v))
			ERR("name: '%s' is not a valid instance name (letters, digits, '-', at most 32)", v);
	} else if (!strcmp(k, "arch")) {
		if (vm_arch_parse(v, &c->arch))
			ERR("arch: '%s' is not aarch64 or x86_64", v);
	} else if (!strcmp(k, "accel")) {
		if (vm_accel_parse(v, &c->accel))
			ERR("accel: '%s' is not hvf, kvm or tcg", v);
	} else if (!strcmp(k, "cpus")) {
		if (parse_int(v, 1, 256, &n))
			ERR("cpus: '%s' is not a number from 1 to 256", v);
		c->cpus = (int)n;
	} else if (!strcmp(k, "memory")) {
		if ((n = parse_size(v, 1)) < 256)
			ERR("memory: '%s' is not a size of at least 256 MiB (e.g. 4096 or 4G)", v);
		c->memory_mib = (int)n;
	} else if (!strcmp(k, "disk")) {
		if ((n = parse_size(v, 1024)) < 2048)
			ERR("disk: '%s' is not a size of at least 2 GiB (e.g. 20 or 20G)", v);
		c->disk_gib = (int)(n / 1024);
	} else if (!strcmp(k, "network")) {
		if (!strcmp(v, "user"))
			c->net = VM_NET_USER;
		else if (!strcmp(v, "vmnet"))
			c->net = VM_NET_VMNET;
		else
			ERR("network: '%s' is not user or vmnet", v);
	} else if (!strcmp(k, "mode")) {
		if (!strcmp(v, "headless"))
			c->mode = VM_MODE_HEADLESS;
		else if (!strcmp(v, "desktop"))
			c->mode = VM_MODE_DESKTOP;
		else
			ERR("mode: '%s' is not headless or desktop", v);
	} else if (!strcmp(k, "user")) {
		if (!name_valid(v) || copy_str(c->user, sizeof(c->user), v))
			ERR("user: '%s' is not a valid user name", v);
	} else if (!strcmp(k, "qemu")) {
		if (copy_str(c->qemu, sizeof(c->qemu), v))
			ERR("qemu: path too long");
	} else if (!strcmp(k, "firmware")) {
		if (copy_str(c->firmware, sizeof(c->firmware), v))
			ERR("firmware: path too long");
	} else if (!strcmp(k, "guest_driver")) {
		if (parse_bool(v, &c->guest_driver))
			ERR("guest_driver: '%s' is not true or false", v);
	} else if (!strcmp(k, "nvidia")) {
		if (parse_bool(v, &c->nvidia))
			ERR("nvidia: '%s' is not true or false", v);
	} else if (!strcmp(k, "stop_timeout")) {
		if (parse_int(v, 1, 86400, &n))
			ERR("stop_timeout: '%s' is not a number of seconds", v);
		c->stop_timeout_s = (int)n;
	} else {
		ERR("unknown key '%s' (docs/instances.md lists the keys)", k);
	}
	r = 0;
out:
	return r;
}

int vm_config_parse(struct vm_config *c, const char *yaml, size_t len, char *err, size_t errlen)
{
	yaml_parser_t p;
	yaml_document_t d;
	yaml_node_t *root;
	int r = -1;

	vm_config_defaults(c, NULL);
	if (!yaml_parser_initialize(&p)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&p, &d)) {
		snprintf(err, errlen, "YAML error at line %zu: %s", p.problem_mark.line + 1,
			 p.problem ? p.problem : "unknown");
		yaml_parser_delete(&p);
		return -1;
	}
	root = yaml_document_get_root_node(&d);
	if (!root || root->type != YAML_MAPPING_NODE)
		ERR("expected a mapping of keys (docs/instances.md)");
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
		const char *k = scalar(&d, yaml_document_get_node(&d, pr->key));

		if (!k)
			ERR("keys must be plain strings");
		if (parse_key(c, &d, k, yaml_document_get_node(&d, pr->value), err, errlen))
			goto out;
	}
	r = vm_config_validate(c, err, errlen);
out:
	yaml_document_delete(&d);
	yaml_parser_delete(&p);
	return r;
}

int vm_config_load(struct vm_config *c, const char *path, char *err, size_t errlen)
{
	size_t len;
	char *s = file_read(path, &len);
	int r;

	if (!s) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	r = vm_config_parse(c, s, len, err, errlen);
	if (r) {
		size_t l = strlen(err);

		snprintf(err + l, errlen - l, " (in %s)", path);
	}
	free(s);
	return r;
}

int vm_config_validate(const struct vm_config *c, char *err, size_t errlen)
{
	if (!name_valid(c->name)) {
		snprintf(err, errlen, "'%s' is not a valid instance name: use letters, digits and '-', "
			 "starting with a letter, at most 32 characters", c->name);
		return -1;
	}
	if (c->accel == VM_ACCEL_HVF && c->arch != VM_ARCH_AARCH64) {
		snprintf(err, errlen, "accel hvf runs aarch64 guests only (arch is %s)", vm_arch_name(c->arch));
		return -1;
	}
	if (c->net == VM_NET_VMNET && c->accel != VM_ACCEL_HVF) {
		snprintf(err, errlen, "network vmnet exists only on macOS (accel hvf); use network: user");
		return -1;
	}
	if (c->n_gpus && !c->guest_driver && c->accel == VM_ACCEL_HVF) {
		snprintf(err, errlen, "a GPU behind Apple's DART needs the guest driver: set guest_driver: true");
		return -1;
	}
	return 0;
}

int vm_config_port_add(struct vm_config *c, int host, int guest)
{
	for (size_t i = 0; i < c->n_ports; i++)
		if (c->ports[i].host == host)
			return -1;
	if (c->n_ports >= VM_MAX_PORTS)
		return -1;
	c->ports[c->n_ports++] = (struct vm_port){ .host = host, .guest = guest };
	return 0;
}

int vm_config_port_rm(struct vm_config *c, int host)
{
	for (size_t i = 0; i < c->n_ports; i++) {
		if (c->ports[i].host != host)
			continue;
		memmove(&c->ports[i], &c->ports[i + 1], (c->n_ports - i - 1) * sizeof(c->ports[0]));
		c->n_ports--;
		return 0;
	}
	return -1;
}

/* --- emitting ----------------------------------------------------------- */

struct emit_buf {
	char *s;
	size_t n, cap;
};

static int emit_write(void *data, unsigned char *buf, size_t size)
{
	struct emit_buf *b = data;

	if (b->n + size + 1 > b->cap) {
		size_t cap = (b->n + size + 1) * 2;
		char *ns = realloc(b->s, cap);

		if (!ns)
			return 0;
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->n, buf, size);
	b->n += size;
	b->s[b->n] = 0;
	return 1;
}

static int ev_scalar(yaml_emitter_t *e, const char *v)
{
	yaml_event_t ev;

	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v), 1, 1,
				     YAML_ANY_SCALAR_STYLE);
	return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int ev_kv(yaml_emitter_t *e, const char *k, const char *v)
{
	return ev_scalar(e, k) || ev_scalar(e, v) ? -1 : 0;
}

static int ev_kvi(yaml_emitter_t *e, const char *k, long v)
{
	char b[32];

	snprintf(b, sizeof(b), "%ld", v);
	return ev_kv(e, k, b);
}

static int ev_start(yaml_emitter_t *e, bool seq)
{
	yaml_event_t ev;

	if (seq)
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
	else
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
	return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int ev_end(yaml_emitter_t *e, bool seq)
{
	yaml_event_t ev;

	if (seq)
		yaml_sequence_end_event_initialize(&ev);
	else
		yaml_mapping_end_event_initialize(&ev);
	return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int emit_body(yaml_emitter_t *e, const struct vm_config *c)
{
	yaml_event_t ev;
	int r = 0;

	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	r |= !yaml_emitter_emit(e, &ev);
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	r |= !yaml_emitter_emit(e, &ev);
	r |= ev_start(e, false);
	r |= ev_kv(e, "name", c->name);
	r |= ev_kv(e, "arch", vm_arch_name(c->arch));
	r |= ev_kv(e, "accel", vm_accel_name(c->accel));
	r |= ev_kvi(e, "cpus", c->cpus);
	r |= ev_kvi(e, "memory", c->memory_mib);
	r |= ev_kvi(e, "disk", c->disk_gib);
	r |= ev_kv(e, "network", c->net == VM_NET_VMNET ? "vmnet" : "user");
	r |= ev_kv(e, "mode", c->mode == VM_MODE_DESKTOP ? "desktop" : "headless");
	r |= ev_kv(e, "user", c->user);
	r |= ev_scalar(e, "image");
	r |= ev_start(e, false);
	r |= ev_kv(e, "url", c->image_url);
	r |= ev_kv(e, "sha512", c->image_sha512);
	r |= ev_kv(e, "path", c->image_path);
	r |= ev_end(e, false);
	if (c->qemu[0])
		r |= ev_kv(e, "qemu", c->qemu);
	if (c->firmware[0])
		r |= ev_kv(e, "firmware", c->firmware);
	r |= ev_kv(e, "guest_driver", c->guest_driver ? "true" : "false");
	r |= ev_kv(e, "nvidia", c->nvidia ? "true" : "false");
	r |= ev_kvi(e, "stop_timeout", c->stop_timeout_s);
	r |= ev_scalar(e, "packages");
	r |= ev_start(e, true);
	for (size_t i = 0; i < c->n_packages; i++)
		r |= ev_scalar(e, c->packages[i]);
	r |= ev_end(e, true);
	r |= ev_scalar(e, "ports");
	r |= ev_start(e, true);
	for (size_t i = 0; i < c->n_ports; i++) {
		r |= ev_start(e, false);
		r |= ev_kvi(e, "host", c->ports[i].host);
		r |= ev_kvi(e, "guest", c->ports[i].guest);
		r |= ev_end(e, false);
	}
	r |= ev_end(e, true);
	r |= ev_scalar(e, "gpus");
	r |= ev_start(e, true);
	for (size_t i = 0; i < c->n_gpus; i++) {
		r |= ev_start(e, false);
		r |= ev_kv(e, "host", c->gpus[i].host);
		r |= ev_end(e, false);
	}
	r |= ev_end(e, true);
	r |= ev_end(e, false);
	yaml_document_end_event_initialize(&ev, 1);
	r |= !yaml_emitter_emit(e, &ev);
	yaml_stream_end_event_initialize(&ev);
	r |= !yaml_emitter_emit(e, &ev);
	return r ? -1 : 0;
}

char *vm_config_emit(const struct vm_config *c)
{
	struct emit_buf b = { 0 };
	yaml_emitter_t e;
	const char *hdr = "# pegpu instance configuration (docs/instances.md).\n"
			  "# Edit while the instance is stopped; `pegpu port add` edits ports.\n";

	if (!yaml_emitter_initialize(&e))
		return NULL;
	yaml_emitter_set_output(&e, emit_write, &b);
	yaml_emitter_set_unicode(&e, 1);
	emit_write(&b, (unsigned char *)hdr, strlen(hdr));
	if (emit_body(&e, c)) {
		free(b.s);
		b.s = NULL;
	}
	yaml_emitter_delete(&e);
	return b.s;
}

int vm_config_save(const struct vm_config *c, const char *path)
{
	char *s = vm_config_emit(c);
	int r;

	if (!s)
		return -1;
	r = file_write_atomic(path, s, strlen(s), 0644);
	free(s);
	return r;
}
