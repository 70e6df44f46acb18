/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split planner (see include/pegpu/split.h and docs/model-split.md).
 *
 * llama.cpp places layers by position: with -ngl N the last N slots (the
 * n_layer repeating layers followed by the output layer) go to the devices
 * in list order, split by -ts, and everything before them stays on the CPU.
 * So a plan is a cut: on a CPU host, layers [0, n - G) stay on the host and
 * [n - G, n) + output go to the RPC devices in order; on a GPU host (Metal)
 * the RPC devices come first in the device list and the host device last,
 * with the output.  llama.cpp before December 2025 (SPLIT_NGL_LAYERS_ONLY)
 * offloads the output only with every layer (-ngl n + 1); otherwise -ngl G
 * offloads just the last G layers, so on a CPU host the output stays home
 * unless the whole model goes to the RPC devices.
 *
 * Policy: the eGPU is far faster than the host, so the plan that leaves
 * the fewest bytes for the host to read per token wins, which for a dense
 * model means as many layers on the RPC devices as fit.  For MoE models
 * the planner also tries keeping the experts (ffn_*_exps) of the lowest
 * RPC layers on the host (-ot ...=CPU): only n_expert_used/n_expert of an
 * expert tensor is read per token, so trading experts for whole layers
 * often moves more per-token work to the GPU.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pegpu/split.h"

/* The buffer type llama.cpp's -ot names for host memory. */
#define HOST_BUFT "CPU"

struct cand {
	bool ok;			/* fits the host budget */
	uint32_t e;			/* experts of layers < e on the host */
	uint32_t g;			/* repeating layers on RPC devices */
	bool out_on_rpc;
	int last;			/* index of the RPC device with the output, or -1 */
	uint32_t count[SPLIT_MAX_RPC_DEVS];	/* layers per RPC device */
	uint64_t used[SPLIT_MAX_RPC_DEVS];	/* bytes per RPC device */
	uint64_t host_total;
	double host_read;		/* bytes the host reads per token */
};

struct ctx {
	const struct split_request *req;
	const struct gguf_model_summary *m;
	uint32_t n;
	uint64_t *kv;			/* [n] KV bytes for the context */
	uint64_t budget[SPLIT_MAX_RPC_DEVS];
	double expert_ratio;		/* share of an expert tensor read per token */
	bool cpu_host;
	bool layers_only;		/* SPLIT_NGL_LAYERS_ONLY */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Saturating: sizes are far below 2^64, a saturated sum never fits. */
static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Bytes layer i needs on an RPC device when experts of layers < e stay home. */
static uint64_t rpc_cost(const struct ctx *c, uint32_t i, uint32_t e)
{
	uint64_t w = c->m->layer_bytes[i];

	if (i < e)
		w -= c->m->layer_expert_bytes[i];
	return sat_add(w, c->kv[i]);
}

static void host_account(const struct ctx *c, struct cand *k)
{
	const struct gguf_model_summary *m = c->m;
	uint32_t lo, hi;	/* host layers [lo, hi) */
	uint64_t t;
	double rd = 0;

	t = sat_add(m->input_bytes, m->other_bytes);
	if (c->cpu_host) {
		lo = 0;
		hi = c->n - k->g;
	} else {
		lo = k->g;
		hi = c->n;
	}
	for (uint32_t i = lo; i < hi; i++) {
		uint64_t x = m->layer_expert_bytes[i];

		t = sat_add(t, sat_add(m->layer_bytes[i], c->kv[i]));
		rd += (double)(m->layer_bytes[i] - x) + (double)x * c->expert_ratio;
	}
	/* experts of RPC layers below e */
	for (uint32_t i = 0; i < c->n; i++) {
		if ((i >= lo && i < hi) || i >= k->e)
			continue;
		t = sat_add(t, m->layer_expert_bytes[i]);
		rd += (double)m->layer_expert_bytes[i] * c->expert_ratio;
	}
	if (!k->out_on_rpc) {
		t = sat_add(t, m->output_bytes);
		rd += (double)m->output_bytes;
	}
	k->host_total = t;
	k->host_read = rd;
	k->ok = t <= c->req->host_budget;
}

/* CPU host: RPC devices take the last layers, the last used one the output. */
static void fill_cpu_host_output(const struct ctx *c, struct cand *k)
{
	size_t nd = c->req->n_devs;
	uint32_t cur = c->n;

	k->last = -1;
	for (size_t d = nd; d-- > 0;) {
		if (c->budget[d] >= c->m->output_bytes) {
			k->last = (int)d;
			break;
		}
	}
	if (k->last < 0)
		return;		/* no device holds the output: -ngl 0 */
	k->out_on_rpc = true;
	for (int d = k->last; d >= 0; d--) {
		uint64_t used = d == k->last ? c->m->output_bytes : 0;

		while (cur > 0 && rpc_cost(c, cur - 1, k->e) <= c->budget[d] - used) {
			used += rpc_cost(c, cur - 1, k->e);
			cur--;
			k->count[d]++;
		}
		k->used[d] = used;
	}
	k->g = c->n - cur;
}

/*
 * CPU host, output on the host: every RPC device takes as many of the last
 * layers as fit, from the last device back.  Only the layers-only rule
 * can place this (-ngl G), so no device has to keep room for the output.
 */
static void fill_cpu_host_layers(const struct ctx *c, struct cand *k)
{
	uint32_t cur = c->n;

	k->last = -1;
	k->out_on_rpc = false;
	for (size_t d = c->req->n_devs; d-- > 0;) {
		uint64_t used = 0;

		k->count[d] = 0;
		while (cur > 0 && rpc_cost(c, cur - 1, k->e) <= c->budget[d] - used) {
			used += rpc_cost(c, cur - 1, k->e);
			cur--;
			k->count[d]++;
		}
		k->used[d] = used;
	}
	k->g = c->n - cur;
}

/* GPU host: RPC devices take the first layers, the host the rest + output. */
static void fill_gpu_host(const struct ctx *c, struct cand *k)
{
	uint32_t cur = 0;

	k->last = -1;
	for (size_t d = 0; d < c->req->n_devs; d++) {
		uint64_t used = 0;

		while (cur < c->n && rpc_cost(c, cur, k->e) <= c->budget[d] - used) {
			used += rpc_cost(c, cur, k->e);
			cur++;
			k->count[d]++;
		}
		k->used[d] = used;
	}
	k->g = cur;
}

static void evaluate(const struct ctx *c, uint32_t e, struct cand *k)
{
	memset(k, 0, sizeof(*k));
	k->e = e;
	if (c->cpu_host) {
		fill_cpu_host_output(c, k);
		/*
		 * The layers-only rule offloads the output with every layer or
		 * not at all: short of the whole model, the output stays home
		 * and its room on the last device goes to layers.
		 */
		if (c->layers_only && k->g < c->n)
			fill_cpu_host_layers(c, k);
	} else {
		fill_gpu_host(c, k);
	}
	host_account(c, k);
}

/* Better: fits, then reads less on the host, then more GPU layers, then smaller e. */
static bool better(const struct cand *a, const struct cand *b)
{
	if (a->ok != b->ok)
		return a->ok;
	if (!a->ok)
		return a->host_total < b->host_total;
	if (a->host_read != b->host_read)
		return a->host_read < b->host_read;
	if (a->g != b->g)
		return a->g > b->g;
	return a->e < b->e;
}

static int check_request(const struct split_request *req, char *err, size_t errlen)
{
	const struct gguf_model_summary *m = req->model;

	if (!m || !m->n_layer || !m->layer_bytes || !m->layer_expert_bytes || !m->layer_kv_bytes) {
		set_err(err, errlen, "no model summary");
		return -EINVAL;
	}
	if (!req->ctx) {
		set_err(err, errlen, "the context length must be at least 1 token");
		return -EINVAL;
	}
	if (req->n_devs > SPLIT_MAX_RPC_DEVS) {
		set_err(err, errlen, "%zu RPC devices; llama.cpp takes at most %d",
			req->n_devs, SPLIT_MAX_RPC_DEVS);
		return -EINVAL;
	}
	if (req->ngl_rule != SPLIT_NGL_OUTPUT_FIRST && req->ngl_rule != SPLIT_NGL_LAYERS_ONLY) {
		set_err(err, errlen, "unknown -ngl rule %d", (int)req->ngl_rule);
		return -EINVAL;
	}
	if (req->host_device && (!*req->host_device || strlen(req->host_device) >= 32 ||
				 strpbrk(req->host_device, ", \t"))) {
		set_err(err, errlen, "bad host device name '%s'", req->host_device);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < m->n_layer; i++) {
		if (m->layer_expert_bytes[i] > m->layer_bytes[i]) {
			set_err(err, errlen, "layer %" PRIu32 ": expert bytes exceed layer bytes", i);
			return -EINVAL;
		}
	}
	for (size_t d = 0; d < req->n_devs; d++) {
		const struct split_rpc_dev *v = &req->devs[d];
		size_t len = strnlen(v->endpoint, sizeof(v->endpoint));

		if (!len || len == sizeof(v->endpoint) || strpbrk(v->endpoint, ", \t")) {
			set_err(err, errlen, "RPC device %zu: bad endpoint", d);
			return -EINVAL;
		}
		/* a server's devices are listed together, numbered from 0 */
		bool same = d > 0 && !strcmp(req->devs[d - 1].endpoint, v->endpoint);
		uint32_t want = same ? req->devs[d - 1].index + 1 : 0;

		if (v->index != want) {
			set_err(err, errlen, "RPC device %zu (%s): expected device number %" PRIu32
				", got %" PRIu32 " (list each server's devices together, in order)",
				d, v->endpoint, want, v->index);
			return -EINVAL;
		}
		for (size_t o = 0; !same && o < d; o++) {
			if (!strcmp(req->devs[o].endpoint, v->endpoint)) {
				set_err(err, errlen, "RPC server %s is listed twice", v->endpoint);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* ---- the argument vector ---- */

struct argv_buf {
	char **v;
	size_t n, cap;
	bool oom;
};

static void arg_add(struct argv_buf *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void arg_add(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		char **v = realloc(a->v, cap * sizeof(*v));

		if (!v) {
			a->oom = true;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		a->oom = true;
		s = NULL;
	}
	va_end(ap);
	if (!s)
		return;
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* Append to a growing string. */
static void str_cat(char **s, size_t *len, const char *add, bool *oom)
{
	size_t n = strlen(add);
	char *p;

	if (*oom)
		return;
	p = realloc(*s, *len + n + 1);
	if (!p) {
		*oom = true;
		return;
	}
	memcpy(p + *len, add, n + 1);
	*s = p;
	*len += n;
}

static int build_args(const struct ctx *c, const struct cand *k, struct split_plan *p)
{
	const struct split_request *req = c->req;
	struct argv_buf a = { 0 };
	char *rpc = NULL, *dev = NULL, *ts = NULL;
	size_t rpc_len = 0, dev_len = 0, ts_len = 0, n_listed = 0;
	bool oom = false;
	char num[32];

	/* --rpc: servers with a used device; names count all their devices */
	uint32_t global = 0;

	for (size_t d = 0; d < req->n_devs;) {
		size_t end = d;
		bool any = false;

		while (end < req->n_devs && !strcmp(req->devs[end].endpoint, req->devs[d].endpoint))
			end++;
		for (size_t i = d; i < end; i++)
			any |= k->count[i] > 0 || k->last == (int)i;
		if (any) {
			if (rpc_len)
				str_cat(&rpc, &rpc_len, ",", &oom);
			str_cat(&rpc, &rpc_len, req->devs[d].endpoint, &oom);
			for (size_t i = d; i < end; i++, global++) {
				struct split_dev_plan *dp = &p->dev[i + (c->cpu_host ? 1 : 0)];
				bool used = k->count[i] > 0 || k->last == (int)i;

				/*
				 * Without --device (layers-only) every device of
				 * a named server is in llama.cpp's list: an unused
				 * one gets a share of 0.
				 */
				if (!used && !c->layers_only)
					continue;
				snprintf(num, sizeof(num), "%s%" PRIu32, ts_len ? "," : "",
					 k->count[i] + (k->last == (int)i ? 1 : 0));
				str_cat(&ts, &ts_len, num, &oom);
				n_listed++;
				if (!used)
					continue;
				snprintf(dp->name, sizeof(dp->name), "RPC%" PRIu32, global);
				dp->used = true;
				if (dev_len)
					str_cat(&dev, &dev_len, ",", &oom);
				str_cat(&dev, &dev_len, dp->name, &oom);
			}
		}
		d = end;
	}
	if (!c->cpu_host) {
		if (dev_len)
			str_cat(&dev, &dev_len, ",", &oom);
		str_cat(&dev, &dev_len, req->host_device, &oom);
		snprintf(num, sizeof(num), "%s%" PRIu32, ts_len ? "," : "", c->n - k->g + 1);
		str_cat(&ts, &ts_len, num, &oom);
		n_listed++;
	}

	if (rpc_len) {
		arg_add(&a, "--rpc");
		arg_add(&a, "%s", rpc);
	}
	/*
	 * Builds with the layers-only rule may name their devices otherwise
	 * (RPC[host:port] before October 2025, Metal for MTL0): leave the
	 * default list, which the -ts below covers.
	 */
	if (dev_len && !c->layers_only) {
		arg_add(&a, "--device");
		arg_add(&a, "%s", dev);
	}
	arg_add(&a, "-ngl");
	arg_add(&a, "%" PRIu32, p->ngl);
	/*
	 * With layers-only, -ts even for one device: a local GPU that the
	 * default list holds after it must get no share.
	 */
	if (n_listed > 1 || (c->layers_only && rpc_len)) {
		arg_add(&a, "-ts");
		arg_add(&a, "%s", ts);
	}
	if (p->expert_count) {
		char *re = NULL;
		size_t re_len = 0;

		str_cat(&re, &re_len, "blk\\.(", &oom);
		for (uint32_t i = 0; i < p->expert_count; i++) {
			snprintf(num, sizeof(num), "%s%" PRIu32, i ? "|" : "", p->expert_first + i);
			str_cat(&re, &re_len, num, &oom);
		}
		str_cat(&re, &re_len, ")\\.ffn_[a-z_]+_exps\\.=" HOST_BUFT, &oom);
		arg_add(&a, "-ot");
		if (!oom)
			arg_add(&a, "%s", re);
		free(re);
	}
	arg_add(&a, "-c");
	arg_add(&a, "%" PRIu32, c->req->ctx);
	/* automatic fitting (on by default) would move layers; older builds have no --fit */
	if (!c->layers_only) {
		arg_add(&a, "--fit");
		arg_add(&a, "off");
	}
	free(rpc);
	free(dev);
	free(ts);
	p->argv = a.v;
	p->argc = a.n;
	if (a.oom || oom)
		return -ENOMEM;
	return 0;
}

/* ---- the plan ---- */

static void fill_table(const struct ctx *c, const struct cand *k, struct split_plan *p)
{
	const struct split_request *req = c->req;
	const struct gguf_model_summary *m = c->m;
	size_t host = c->cpu_host ? 0 : req->n_devs;
	size_t base = c->cpu_host ? 1 : 0;
	uint32_t first = c->cpu_host ? c->n - k->g : 0;
	struct split_dev_plan *h = &p->dev[host];

	p->n_dev = req->n_devs + 1;
	p->n_layer = c->n;
	p->gpu_layers = k->g;
	p->ctx = req->ctx;
	p->ngl_rule = req->ngl_rule;
	/*
	 * CPU host: with the output offloaded, the G layers and the output
	 * (with layers-only that means every layer: n + 1); without it, the
	 * output-first rule has G = 0 and the layers-only rule -ngl G.
	 */
	if (c->cpu_host)
		p->ngl = k->out_on_rpc ? k->g + 1 : k->g;
	else
		p->ngl = c->n + 1;

	/* experts kept home: RPC layers below e */
	uint32_t rlo = c->cpu_host ? c->n - k->g : 0, rhi = c->cpu_host ? c->n : k->g;
	uint32_t ehi = k->e < rhi ? k->e : rhi;

	p->expert_count = ehi > rlo ? ehi - rlo : 0;
	p->expert_first = p->expert_count ? rlo : 0;

	for (size_t d = 0; d < req->n_devs; d++) {
		struct split_dev_plan *dp = &p->dev[base + d];

		snprintf(dp->name, sizeof(dp->name), "-");
		snprintf(dp->endpoint, sizeof(dp->endpoint), "%s", req->devs[d].endpoint);
		dp->first_layer = first;
		dp->n_layers = k->count[d];
		dp->has_output = k->last == (int)d;
		for (uint32_t i = first; i < first + k->count[d]; i++) {
			dp->kv_bytes += c->kv[i];
			dp->weight_bytes += rpc_cost(c, i, k->e) - c->kv[i];
		}
		if (dp->has_output)
			dp->weight_bytes += m->output_bytes;
		dp->total_bytes = dp->weight_bytes + dp->kv_bytes;
		dp->budget_bytes = c->budget[d];
		first += k->count[d];
	}

	snprintf(h->name, sizeof(h->name), "%s", c->cpu_host ? "CPU" : req->host_device);
	h->is_host = true;
	h->used = true;
	h->has_input = true;
	h->first_layer = c->cpu_host ? 0 : k->g;
	h->n_layers = c->n - k->g;
	h->has_output = !k->out_on_rpc;
	h->weight_bytes = m->input_bytes + m->other_bytes;
	for (uint32_t i = h->first_layer; i < h->first_layer + h->n_layers; i++) {
		h->weight_bytes += m->layer_bytes[i];
		h->kv_bytes += c->kv[i];
	}
	for (uint32_t i = p->expert_first; i < p->expert_first + p->expert_count; i++)
		h->expert_bytes += m->layer_expert_bytes[i];
	h->weight_bytes += h->expert_bytes;
	if (h->has_output)
		h->weight_bytes += m->output_bytes;
	h->total_bytes = h->weight_bytes + h->kv_bytes;
	h->budget_bytes = req->host_budget;
}

/* "8182272 bytes (7.80 MiB)" */
static const char *bytes_str(uint64_t b, char *s, size_t n)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = -1;

	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(s, n, "%" PRIu64 " bytes", b);
	else
		snprintf(s, n, "%" PRIu64 " bytes (%.2f %s)", b, v, unit[u]);
	return s;
}

static void explain_missing(const struct ctx *c, const struct cand *k, char *err, size_t errlen)
{
	char miss[48], need[48], kvs[48], rpcs[48], host[48], budget[48];
	uint64_t rpc = 0, kv = 0;

	for (size_t d = 0; d < c->req->n_devs; d++)
		rpc += c->budget[d];
	for (uint32_t i = 0; i < c->n; i++)
		kv += c->kv[i];
	set_err(err, errlen, "the model does not fit: %s missing on the host. It needs %s "
		"(weights and a %" PRIu32 "-token KV cache of %s); the RPC devices can hold %"
		PRIu32 " of its %" PRIu32 " layers in their %s, which leaves %s for the host, "
		"whose budget is %s. Lower --ctx, raise the host budget, or add eGPU memory.",
		bytes_str(k->host_total - c->req->host_budget, miss, sizeof(miss)),
		bytes_str(c->m->total_bytes + (c->m->output_tied ? c->m->input_bytes : 0) + kv,
			  need, sizeof(need)),
		c->req->ctx, bytes_str(kv, kvs, sizeof(kvs)), k->g, c->n,
		bytes_str(rpc, rpcs, sizeof(rpcs)), bytes_str(k->host_total, host, sizeof(host)),
		bytes_str(c->req->host_budget, budget, sizeof(budget)));
}

int split_plan(const struct split_request *req, struct split_plan *out, char *err,
	       size_t errlen)
{
	struct ctx c = { .req = req, .m = req->model };
	struct cand best, k;
	uint32_t e_max = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = check_request(req, err, errlen);
	if (ret)
		return ret;
	c.n = c.m->n_layer;
	c.cpu_host = !req->host_device;
	c.layers_only = req->ngl_rule == SPLIT_NGL_LAYERS_ONLY;
	c.kv = calloc(c.n, sizeof(*c.kv));
	if (!c.kv) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < c.n; i++) {
		if (c.m->layer_kv_bytes[i] > UINT64_MAX / req->ctx) {
			set_err(err, errlen, "the KV cache size overflows");
			ret = -EINVAL;
			goto out;
		}
		c.kv[i] = c.m->layer_kv_bytes[i] * req->ctx;
		if (c.m->layer_expert_bytes[i] && !req->no_expert_offload)
			e_max = c.n;
	}
	for (size_t d = 0; d < req->n_devs; d++) {
		const struct split_rpc_dev *v = &req->devs[d];

		c.budget[d] = v->free_bytes > v->reserve_bytes ? v->free_bytes - v->reserve_bytes : 0;
	}
	c.expert_ratio = 1.0;
	if (c.m->n_expert && c.m->n_expert_used)
		c.expert_ratio = (double)c.m->n_expert_used / c.m->n_expert;

	/* every expert cut-off: n + 1 candidates, each O(n + devices) */
	evaluate(&c, 0, &best);
	for (uint32_t e = 1; e <= e_max; e++) {
		evaluate(&c, e, &k);
		if (better(&k, &best))
			best = k;
	}
	if (!best.ok) {
		explain_missing(&c, &best, err, errlen);
		ret = -ENOSPC;
		goto out;
	}
	fill_table(&c, &best, out);
	ret = build_args(&c, &best, out);
	if (ret) {
		set_err(err, errlen, "out of memory");
		split_plan_free(out);
	}
out:
	free(c.kv);
	return ret;
}

void split_plan_free(struct split_plan *p)
{
	for (size_t i = 0; p->argv && i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	p->argv = NULL;
	p->argc = 0;
}

static bool shell_safe(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "_./:,=+-@%", *s))
			return false;
	}
	return true;
}

char *split_args_shell(const struct split_plan *p)
{
	char *s = NULL;
	size_t len = 0;
	bool oom = false;

	str_cat(&s, &len, "", &oom);
	for (size_t i = 0; i < p->argc; i++) {
		const char *a = p->argv[i];

		if (i)
			str_cat(&s, &len, " ", &oom);
		if (shell_safe(a)) {
			str_cat(&s, &len, a, &oom);
			continue;
		}
		str_cat(&s, &len, "'", &oom);
		for (const char *q = a; *q; q++) {
			char one[2] = { *q, 0 };

			str_cat(&s, &len, *q == '\'' ? "'\\''" : one, &oom);
		}
		str_cat(&s, &len, "'", &oom);
	}
	if (oom) {
		free(s);
		return NULL;
	}
	return s;
}
