/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plan's options and its computation (see plan_core.h): the model's
 * summary, the RPC servers' free memory, the -ngl rule, then lib/split.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan_core.h"

void plan_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void note(const struct plan_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(const struct plan_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->note)
		return;
	fputs("pegpu plan: note: ", o->note);
	va_start(ap, fmt);
	vfprintf(o->note, fmt, ap);
	va_end(ap);
	fputc('\n', o->note);
	fflush(o->note);
}

void plan_opts_init(struct plan_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->reserve = PLAN_DEFAULT_RESERVE;
	o->timeout_s = PLAN_DEFAULT_TIMEOUT_S;
	o->llama = PLAN_LLAMA_AUTO;
	o->note = stderr;
#ifdef __APPLE__
	o->host_device = "MTL0";
#endif
}

const char *plan_ngl_rule_name(enum split_ngl_rule r)
{
	return r == SPLIT_NGL_LAYERS_ONLY ? "layers-only" : "output-first";
}

int plan_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	double mul = 1;

	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -1;
	switch (*end) {
	case 'K': case 'k': mul = 1024.0; end++; break;
	case 'M': case 'm': mul = 1024.0 * 1024; end++; break;
	case 'G': case 'g': mul = 1024.0 * 1024 * 1024; end++; break;
	case 'T': case 't': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if (mul > 1 && *end == 'i')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -1;
	v *= mul;
	if (v >= 18446744073709551616.0)	/* 2^64 */
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int plan_add_rpc(struct plan_opts *o, const char *arg, char *err, size_t errlen)
{
	struct plan_rpc *r;
	char host[256], port[8], why[256];
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

	if (o->n_rpc == SPLIT_MAX_RPC_DEVS) {
		plan_set_err(err, errlen, "at most %d RPC servers", SPLIT_MAX_RPC_DEVS);
		return -1;
	}
	r = &o->rpc[o->n_rpc];
	memset(r, 0, sizeof(*r));
	if (len >= sizeof(r->endpoint)) {
		plan_set_err(err, errlen, "RPC server %s: endpoint too long", arg);
		return -1;
	}
	memcpy(r->endpoint, arg, len);
	r->endpoint[len] = '\0';
	if (ggml_rpc_parse_endpoint(r->endpoint, host, port, why, sizeof(why))) {
		plan_set_err(err, errlen, "RPC server: %s", why);
		return -1;
	}
	if (eq) {
		if (plan_parse_size(eq + 1, &r->free_bytes)) {
			plan_set_err(err, errlen, "RPC server %s: '%s' is not a size like 8G", arg, eq + 1);
			return -1;
		}
		r->has_free = true;
	}
	for (size_t i = 0; i < o->n_rpc; i++) {
		if (!strcmp(o->rpc[i].endpoint, r->endpoint)) {
			plan_set_err(err, errlen, "RPC server %s is given twice", r->endpoint);
			return -1;
		}
	}
	o->n_rpc++;
	return 0;
}

/* Memory the host could give the model now. */
static int host_available(uint64_t *out)
{
#ifdef __linux__
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long kb;

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
				fclose(f);
				*out = (uint64_t)kb * 1024;
				return 0;
			}
		}
		fclose(f);
	}
#endif
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || psz <= 0)
		return -1;
	/* total memory is all we can tell: leave a quarter to the system */
	*out = (uint64_t)pages * (uint64_t)psz / 4 * 3;
	return 0;
}

/* AUTO -> CURRENT or LEGACY, by the binary's --help when there is one. */
static int resolve_llama(struct plan_opts *o, char *err, size_t errlen)
{
	char why[SPLIT_ERR_LEN];
	bool bench = false;

	if (o->llama != PLAN_LLAMA_AUTO) {
		o->llama_how = PLAN_LLAMA_GIVEN;
		return 0;
	}
	if (!o->llama_server && !o->llama_prefix) {
		o->llama = PLAN_LLAMA_CURRENT;
		o->llama_how = PLAN_LLAMA_ASSUMED;
		return 0;
	}
	if (o->llama_prefix && !o->llama_server)
		o->llama_server = o->llama_prefix[0];
	if ((o->llama_prefix ? plan_probe_llama_argv(o->llama_prefix, PLAN_PROBE_TIMEOUT_MS,
						     &o->llama, &bench, why, sizeof(why)) :
			       plan_probe_llama_timeout(o->llama_server, PLAN_PROBE_TIMEOUT_MS,
							&o->llama, &bench, why, sizeof(why)))) {
		plan_set_err(err, errlen, "cannot tell which llama.cpp %s is: %s; say which (--llama "
			"current for builds from 2025-12-17 on, legacy for older ones)",
			o->llama_server, why);
		return -1;
	}
	o->llama_how = PLAN_LLAMA_PROBED;
	if (o->llama == PLAN_LLAMA_CURRENT) {
		note(o, "%s has --fit: llama.cpp of December 2025 or later, -ngl counts the "
		     "output layer first", o->llama_server);
	} else {
		note(o, "%s has no --fit: llama.cpp before December 2025, -ngl counts repeating "
		     "layers only", o->llama_server);
		/* llama-bench got its --fit options only in April 2026 */
		if (bench)
			note(o, "llama-bench had no --fit options until April 2026: if %s is from "
			     "2025-12-17 or later, give --llama current", o->llama_server);
	}
	return 0;
}

/* Query servers without a given free size; fill the planner's device list. */
static int collect_devices(struct plan_opts *o, struct split_rpc_dev *devs, size_t *n,
			   char *err, size_t errlen)
{
	char why[SPLIT_ERR_LEN];

	*n = 0;
	for (size_t i = 0; i < o->n_rpc; i++) {
		struct plan_rpc *r = &o->rpc[i];
		uint32_t count = 1;

		if (!r->has_free) {
			int ret = ggml_rpc_query(r->endpoint, (int)(o->timeout_s * 1000), &r->info, why,
						 sizeof(why));

			if (ret == -EPROTO) {
				plan_set_err(err, errlen, "%s; or give its free memory (%s=SIZE) to plan "
					"without asking it", why, r->endpoint);
				return -1;
			}
			if (ret) {
				plan_set_err(err, errlen, "%s", why);
				return -1;
			}
			count = r->info.n_devices;
		}
		for (uint32_t d = 0; d < count; d++) {
			struct split_rpc_dev *v;

			if (*n == SPLIT_MAX_RPC_DEVS) {
				plan_set_err(err, errlen, "more than %d RPC devices in all; llama.cpp "
					"takes no more", SPLIT_MAX_RPC_DEVS);
				return -1;
			}
			v = &devs[(*n)++];
			memset(v, 0, sizeof(*v));
			snprintf(v->endpoint, sizeof(v->endpoint), "%s", r->endpoint);
			v->index = d;
			v->free_bytes = r->has_free ? r->free_bytes : r->info.free_bytes[d];
			v->reserve_bytes = o->reserve;
		}
	}
	return 0;
}

int plan_compute(struct plan_opts *o, struct gguf_model_summary *m, struct split_plan *p,
		 char *err, size_t errlen)
{
	struct split_rpc_dev devs[SPLIT_MAX_RPC_DEVS];
	struct split_request req = { 0 };
	struct gguf *g = NULL;
	char why[SPLIT_ERR_LEN];
	size_t n_devs;
	uint32_t ctx;
	int ret = -1;

	memset(m, 0, sizeof(*m));
	memset(p, 0, sizeof(*p));
	if (!o->model) {
		plan_set_err(err, errlen, "which model? give the path of a .gguf file");
		return -1;
	}
	if (resolve_llama(o, err, errlen))
		return -1;
	if (!o->host_mem_set && host_available(&o->host_mem)) {
		plan_set_err(err, errlen, "cannot tell how much memory is free: give the host memory "
			"(--host-mem)");
		return -1;
	}
	g = gguf_open(o->model, why, sizeof(why));
	if (!g) {
		plan_set_err(err, errlen, "%s", why);
		goto out;
	}
	if (gguf_model_summary(g, m, why, sizeof(why))) {
		plan_set_err(err, errlen, "%s: %s", o->model, why);
		goto out;
	}
	ctx = o->ctx;
	if (!ctx)
		ctx = m->n_ctx_train && m->n_ctx_train < PLAN_DEFAULT_CTX ? m->n_ctx_train
									  : PLAN_DEFAULT_CTX;
	else if (m->n_ctx_train && ctx > m->n_ctx_train)
		note(o, "a context of %" PRIu32 " tokens is beyond the model's training context "
		     "of %" PRIu32, ctx, m->n_ctx_train);
	if (collect_devices(o, devs, &n_devs, err, errlen))
		goto out;

	req.model = m;
	req.ctx = ctx;
	req.host_budget = o->host_mem;
	req.host_device = o->host_device;
	req.devs = devs;
	req.n_devs = n_devs;
	req.no_expert_offload = o->no_expert_offload;
	req.ngl_rule = o->llama == PLAN_LLAMA_LEGACY ? SPLIT_NGL_LAYERS_ONLY
						     : SPLIT_NGL_OUTPUT_FIRST;
	if (split_plan(&req, p, why, sizeof(why))) {
		plan_set_err(err, errlen, "%s: %s", o->model, why);
		goto out;
	}
	ret = 0;
out:
	gguf_close(g);
	if (ret) {
		split_plan_free(p);
		gguf_model_summary_free(m);
		memset(m, 0, sizeof(*m));
		memset(p, 0, sizeof(*p));
	}
	return ret;
}
