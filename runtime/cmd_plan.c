/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu plan: read a GGUF model, ask each RPC server (the eGPU's
 * ggml-rpc-server) how much memory it has free, and print which layers go
 * where and the llama-server arguments that place them so.  The planning
 * itself is lib/split.c; this file is the command line and the output.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pegpu/ggml_rpc.h"
#include "pegpu/gguf.h"
#include "pegpu/split.h"

#define DEFAULT_RESERVE		(512ull << 20)
#define DEFAULT_CTX		4096u
#define DEFAULT_TIMEOUT_S	5.0

struct rpc_arg {
	char endpoint[SPLIT_ENDPOINT_LEN];
	bool has_free;
	uint64_t free_bytes;
	struct ggml_rpc_info info;	/* when queried */
};

struct plan_opts {
	const char *model;
	uint64_t host_mem;
	bool host_mem_set;
	uint64_t reserve;
	uint32_t ctx;
	const char *host_device;	/* NULL: CPU */
	bool no_expert_offload;
	double timeout_s;
	bool json;
	struct rpc_arg rpc[SPLIT_MAX_RPC_DEVS];
	size_t n_rpc;
};

static void plan_usage(FILE *f)
{
	fprintf(f,
"usage: pegpu plan MODEL.gguf [--host-mem SIZE] [--rpc HOST:PORT[=FREE]]...\n"
"                  [--ctx N] [--reserve SIZE] [--host-device NAME] [--json]\n"
"\n"
"Plan how llama.cpp splits MODEL's layers between this machine (the host)\n"
"and the eGPU, which runs llama.cpp's ggml-rpc-server inside the VM.  As\n"
"many layers as fit go to the eGPU, the fastest place; the rest stay on the\n"
"host.  Prints a table of layers and bytes per device, then the arguments to\n"
"give llama-server so that it places the layers exactly so.\n"
"\n"
"  --host-mem SIZE     memory the host may use for the model's weights and\n"
"                      KV cache (default: the memory available right now)\n"
"  --rpc HOST:PORT     an eGPU's ggml-rpc-server; pegpu asks it for its free\n"
"                      memory (stop any llama-server using it first: it\n"
"                      serves one client at a time).  Repeat for several.\n"
"  --rpc HOST:PORT=FREE  the same, with the free memory given, no query\n"
"  --ctx N             context length in tokens; sizes the KV cache\n"
"                      (default: the model's, at most %u)\n"
"  --reserve SIZE      memory kept free on each RPC device for llama.cpp's\n"
"                      compute buffers (default 512M)\n"
"  --host-device NAME  the host's own llama.cpp device, e.g. MTL0 (Metal),\n"
"                      or cpu (default: %s)\n"
"  --no-expert-offload never keep MoE expert tensors on the host (-ot)\n"
"  --timeout SECONDS   for each RPC query (default %.0f)\n"
"  --json              print the plan as JSON\n"
"\n"
"SIZE is bytes or a number with K, M, G or T (powers of 1024): 12G, 1.5T.\n"
"\n"
"Example: plan for 12 GiB of host memory and the eGPU in the VM, then start\n"
"llama-server with the arguments printed on the last line:\n"
"  pegpu plan model.gguf --host-mem 12G --rpc 192.168.64.2:50052\n"
"  llama-server -m model.gguf <the printed arguments>\n"
"\n"
"Exit status: 0 planned, 1 the model does not fit or a query failed,\n"
"2 bad command line.\n",
		DEFAULT_CTX,
#ifdef __APPLE__
		"MTL0",
#else
		"cpu",
#endif
		DEFAULT_TIMEOUT_S);
}

/* "12G", "1.5T", "512M", "4096": bytes; -1 on anything else. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	double mul = 1;

	errno = 0;
	if (!*s || *s == '-' || *s == '+')
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

static int parse_rpc(const char *arg, struct plan_opts *o)
{
	struct rpc_arg *r;
	char host[256], port[8], err[256];
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

	if (o->n_rpc == SPLIT_MAX_RPC_DEVS) {
		fprintf(stderr, "pegpu plan: at most %d --rpc servers\n", SPLIT_MAX_RPC_DEVS);
		return -1;
	}
	r = &o->rpc[o->n_rpc];
	memset(r, 0, sizeof(*r));
	if (len >= sizeof(r->endpoint)) {
		fprintf(stderr, "pegpu plan: --rpc %s: endpoint too long\n", arg);
		return -1;
	}
	memcpy(r->endpoint, arg, len);
	r->endpoint[len] = '\0';
	if (ggml_rpc_parse_endpoint(r->endpoint, host, port, err, sizeof(err))) {
		fprintf(stderr, "pegpu plan: --rpc: %s\n", err);
		return -1;
	}
	if (eq) {
		if (parse_size(eq + 1, &r->free_bytes)) {
			fprintf(stderr, "pegpu plan: --rpc %s: '%s' is not a size like 8G\n", arg,
				eq + 1);
			return -1;
		}
		r->has_free = true;
	}
	for (size_t i = 0; i < o->n_rpc; i++) {
		if (!strcmp(o->rpc[i].endpoint, r->endpoint)) {
			fprintf(stderr, "pegpu plan: --rpc %s is given twice\n", r->endpoint);
			return -1;
		}
	}
	o->n_rpc++;
	return 0;
}

static int parse_plan_opts(int argc, char **argv, struct plan_opts *o)
{
	enum { O_HOST = 256, O_RPC, O_CTX, O_RESERVE, O_HOSTDEV, O_NOEXP, O_TIMEOUT, O_JSON };
	static const struct option lo[] = {
		{ "host-mem", required_argument, NULL, O_HOST },
		{ "rpc", required_argument, NULL, O_RPC },
		{ "ctx", required_argument, NULL, O_CTX },
		{ "reserve", required_argument, NULL, O_RESERVE },
		{ "host-device", required_argument, NULL, O_HOSTDEV },
		{ "no-expert-offload", no_argument, NULL, O_NOEXP },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->reserve = DEFAULT_RESERVE;
	o->timeout_s = DEFAULT_TIMEOUT_S;
#ifdef __APPLE__
	o->host_device = "MTL0";
#endif
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'h':
			plan_usage(stdout);
			return 1;
		case O_HOST:
			if (parse_size(optarg, &o->host_mem)) {
				fprintf(stderr, "pegpu plan: --host-mem: '%s' is not a size like 12G\n",
					optarg);
				return -1;
			}
			o->host_mem_set = true;
			break;
		case O_RPC:
			if (parse_rpc(optarg, o))
				return -1;
			break;
		case O_CTX: {
			unsigned long long v;

			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || *optarg == '-' || !v || v > UINT32_MAX) {
				fprintf(stderr, "pegpu plan: --ctx: '%s' is not a token count\n", optarg);
				return -1;
			}
			o->ctx = (uint32_t)v;
			break;
		}
		case O_RESERVE:
			if (parse_size(optarg, &o->reserve)) {
				fprintf(stderr, "pegpu plan: --reserve: '%s' is not a size like 512M\n",
					optarg);
				return -1;
			}
			break;
		case O_HOSTDEV:
			o->host_device = strcmp(optarg, "cpu") && strcmp(optarg, "CPU") ? optarg : NULL;
			if (o->host_device && (!*optarg || strlen(optarg) >= 32 ||
					       strpbrk(optarg, ", \t"))) {
				fprintf(stderr, "pegpu plan: --host-device: bad name '%s'\n", optarg);
				return -1;
			}
			break;
		case O_NOEXP:
			o->no_expert_offload = true;
			break;
		case O_TIMEOUT:
			errno = 0;
			o->timeout_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->timeout_s > 0) ||
			    o->timeout_s > 3600) {
				fprintf(stderr, "pegpu plan: --timeout: '%s' is not a number of seconds "
					"up to 3600\n", optarg);
				return -1;
			}
			break;
		case O_JSON:
			o->json = true;
			break;
		default:
			fprintf(stderr, "Try 'pegpu plan --help'.\n");
			return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "pegpu plan: %s\nTry 'pegpu plan --help'.\n",
			optind >= argc ? "which model? give the path of a .gguf file"
				       : "give exactly one model file");
		return -1;
	}
	o->model = argv[optind];
	return 0;
}

/* ---- output ---- */

static void human(uint64_t b, char *s, size_t n)
{
	if (b >= (1ull << 30))
		snprintf(s, n, "%.2f GiB", (double)b / (1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(s, n, "%.2f MiB", (double)b / (1ull << 20));
	else if (b >= 1024)
		snprintf(s, n, "%.2f KiB", (double)b / 1024);
	else
		snprintf(s, n, "%" PRIu64 " B", b);
}

static void layers_str(const struct split_dev_plan *d, char *s, size_t n)
{
	int k;

	if (d->n_layers)
		k = snprintf(s, n, "%" PRIu32 "-%" PRIu32 " (%" PRIu32 ")", d->first_layer,
			     d->first_layer + d->n_layers - 1, d->n_layers);
	else
		k = snprintf(s, n, "none");
	if (k < 0 || (size_t)k >= n)
		return;
	snprintf(s + k, n - (size_t)k, "%s%s%s", d->has_input ? " +input" : "",
		 d->has_output ? " +output" : "", d->expert_bytes ? " +experts" : "");
}

static void print_table(const struct plan_opts *o, const struct gguf_model_summary *m,
			const struct split_plan *p)
{
	char a[32], b[32], c[32], d[32], l[64];
	uint64_t kvt = 0;
	char *cmd;

	for (uint32_t i = 0; i < m->n_layer; i++)
		kvt += m->layer_kv_bytes[i];
	human(m->total_bytes, a, sizeof(a));
	printf("model:   %s\n         %s, %" PRIu32 " layers, n_embd %" PRIu32 ", %" PRIu32
	       " heads (%" PRIu32 " KV)", o->model, m->arch, m->n_layer, m->n_embd, m->n_head,
	       m->n_head_kv);
	if (m->n_expert)
		printf(", %" PRIu32 " experts (%" PRIu32 " used)", m->n_expert, m->n_expert_used);
	printf(", %s of weights\n", a);
	human(kvt * p->ctx, a, sizeof(a));
	printf("context: %" PRIu32 " tokens (KV cache %s, f16)\n\n", p->ctx, a);
	printf("%-7s %-22s %-26s %11s %11s %11s %11s\n", "device", "endpoint", "layers",
	       "weights", "KV cache", "total", "budget");
	for (size_t i = 0; i < p->n_dev; i++) {
		const struct split_dev_plan *x = &p->dev[i];

		human(x->weight_bytes, a, sizeof(a));
		human(x->kv_bytes, b, sizeof(b));
		human(x->total_bytes, c, sizeof(c));
		human(x->budget_bytes, d, sizeof(d));
		layers_str(x, l, sizeof(l));
		printf("%-7s %-22s %-26s %11s %11s %11s %11s\n", x->name,
		       x->is_host ? "(host)" : x->endpoint, l, a, b, c, d);
	}
	bool out_rpc = false;

	for (size_t i = 0; i < p->n_dev; i++)
		out_rpc |= !p->dev[i].is_host && p->dev[i].has_output;
	printf("\n%" PRIu32 " of %" PRIu32 " layers%s on the eGPU", p->gpu_layers, p->n_layer,
	       out_rpc ? " and the output layer" : "");
	if (p->expert_count)
		printf("; MoE experts of layers %" PRIu32 "-%" PRIu32 " kept on the host",
		       p->expert_first, p->expert_first + p->expert_count - 1);
	printf(".\n\nllama-server arguments:\n");
	cmd = split_args_shell(p);
	printf("  %s\n", cmd ? cmd : "(out of memory)");
	free(cmd);
}

static json_t *plan_json(const struct plan_opts *o, const struct gguf_model_summary *m,
			 const struct split_plan *p)
{
	json_t *root = json_object(), *model = json_object(), *devs = json_array();
	json_t *args = json_array();
	uint64_t kvt = 0;
	char *cmd = split_args_shell(p);

	for (uint32_t i = 0; i < m->n_layer; i++)
		kvt += m->layer_kv_bytes[i];
	json_object_set_new(model, "path", json_string(o->model));
	json_object_set_new(model, "arch", json_string(m->arch));
	json_object_set_new(model, "n_layer", json_integer(m->n_layer));
	json_object_set_new(model, "n_embd", json_integer(m->n_embd));
	json_object_set_new(model, "n_head", json_integer(m->n_head));
	json_object_set_new(model, "n_head_kv", json_integer(m->n_head_kv));
	json_object_set_new(model, "n_ctx_train", json_integer(m->n_ctx_train));
	json_object_set_new(model, "n_vocab", json_integer(m->n_vocab));
	json_object_set_new(model, "n_expert", json_integer(m->n_expert));
	json_object_set_new(model, "n_expert_used", json_integer(m->n_expert_used));
	json_object_set_new(model, "weight_bytes", json_integer((json_int_t)m->total_bytes));
	json_object_set_new(model, "kv_bytes_per_token", json_integer((json_int_t)kvt));
	json_object_set_new(root, "model", model);
	json_object_set_new(root, "ctx", json_integer(p->ctx));

	for (size_t i = 0; i < p->n_dev; i++) {
		const struct split_dev_plan *x = &p->dev[i];
		json_t *d = json_object();

		json_object_set_new(d, "name", json_string(x->name));
		json_object_set_new(d, "host", json_boolean(x->is_host));
		json_object_set_new(d, "endpoint", x->is_host ? json_null() : json_string(x->endpoint));
		json_object_set_new(d, "used", json_boolean(x->used));
		json_object_set_new(d, "first_layer", json_integer(x->first_layer));
		json_object_set_new(d, "n_layers", json_integer(x->n_layers));
		json_object_set_new(d, "input", json_boolean(x->has_input));
		json_object_set_new(d, "output", json_boolean(x->has_output));
		json_object_set_new(d, "weight_bytes", json_integer((json_int_t)x->weight_bytes));
		json_object_set_new(d, "expert_bytes", json_integer((json_int_t)x->expert_bytes));
		json_object_set_new(d, "kv_bytes", json_integer((json_int_t)x->kv_bytes));
		json_object_set_new(d, "total_bytes", json_integer((json_int_t)x->total_bytes));
		json_object_set_new(d, "budget_bytes", json_integer((json_int_t)x->budget_bytes));
		/* what the server said, for RPC devices that were queried */
		for (size_t r = 0; !x->is_host && r < o->n_rpc; r++) {
			const struct rpc_arg *ra = &o->rpc[r];

			if (strcmp(ra->endpoint, x->endpoint) || ra->has_free)
				continue;
			char ver[16];

			snprintf(ver, sizeof(ver), "%u.%u.%u", ra->info.major, ra->info.minor,
				 ra->info.patch);
			json_object_set_new(d, "protocol", json_string(ver));
		}
		json_array_append_new(devs, d);
	}
	json_object_set_new(root, "devices", devs);
	json_object_set_new(root, "gpu_layers", json_integer(p->gpu_layers));
	json_object_set_new(root, "ngl", json_integer(p->ngl));
	json_t *ex = json_object();

	json_object_set_new(ex, "first_layer", json_integer(p->expert_first));
	json_object_set_new(ex, "n_layers", json_integer(p->expert_count));
	json_object_set_new(root, "experts_on_host", ex);
	for (size_t i = 0; i < p->argc; i++)
		json_array_append_new(args, json_string(p->argv[i]));
	json_object_set_new(root, "args", args);
	json_object_set_new(root, "command", cmd ? json_string(cmd) : json_null());
	free(cmd);
	return root;
}

/* ---- the command ---- */

/* Query servers without a given free size; fill the planner's device list. */
static int collect_devices(struct plan_opts *o, struct split_rpc_dev *devs, size_t *n)
{
	char err[512];

	*n = 0;
	for (size_t i = 0; i < o->n_rpc; i++) {
		struct rpc_arg *r = &o->rpc[i];
		uint32_t count = 1;

		if (!r->has_free) {
			int ret = ggml_rpc_query(r->endpoint, (int)(o->timeout_s * 1000), &r->info, err,
						 sizeof(err));

			if (ret) {
				fprintf(stderr, "pegpu plan: %s\n", err);
				return -1;
			}
			count = r->info.n_devices;
		}
		for (uint32_t d = 0; d < count; d++) {
			struct split_rpc_dev *v;

			if (*n == SPLIT_MAX_RPC_DEVS) {
				fprintf(stderr, "pegpu plan: more than %d RPC devices in all\n",
					SPLIT_MAX_RPC_DEVS);
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

static int plan_run(int argc, char **argv)
{
	struct plan_opts o;
	struct gguf_model_summary m = { 0 };
	struct split_rpc_dev devs[SPLIT_MAX_RPC_DEVS];
	struct split_plan p = { 0 };
	struct split_request req = { 0 };
	struct gguf *g = NULL;
	char err[SPLIT_ERR_LEN];
	size_t n_devs;
	int ret = PEGPU_EXIT_FAIL, r;

	r = parse_plan_opts(argc, argv, &o);
	if (r)
		return r > 0 ? PEGPU_EXIT_OK : PEGPU_EXIT_USAGE;
	if (!o.host_mem_set && host_available(&o.host_mem)) {
		fprintf(stderr, "pegpu plan: cannot tell how much memory is free: give --host-mem\n");
		return PEGPU_EXIT_USAGE;
	}
	g = gguf_open(o.model, err, sizeof(err));
	if (!g) {
		fprintf(stderr, "pegpu plan: %s\n", err);
		goto out;
	}
	if (gguf_model_summary(g, &m, err, sizeof(err))) {
		fprintf(stderr, "pegpu plan: %s: %s\n", o.model, err);
		goto out;
	}
	if (!o.ctx) {
		o.ctx = m.n_ctx_train && m.n_ctx_train < DEFAULT_CTX ? m.n_ctx_train : DEFAULT_CTX;
	} else if (m.n_ctx_train && o.ctx > m.n_ctx_train) {
		fprintf(stderr, "pegpu plan: note: --ctx %" PRIu32 " is beyond the model's training "
			"context of %" PRIu32 " tokens\n", o.ctx, m.n_ctx_train);
	}
	if (collect_devices(&o, devs, &n_devs))
		goto out;

	req.model = &m;
	req.ctx = o.ctx;
	req.host_budget = o.host_mem;
	req.host_device = o.host_device;
	req.devs = devs;
	req.n_devs = n_devs;
	req.no_expert_offload = o.no_expert_offload;
	if (split_plan(&req, &p, err, sizeof(err))) {
		fprintf(stderr, "pegpu plan: %s: %s\n", o.model, err);
		goto out;
	}
	if (o.json) {
		json_t *j = plan_json(&o, &m, &p);

		if (!j || json_dumpf(j, stdout, JSON_INDENT(2)) ) {
			fprintf(stderr, "pegpu plan: cannot write JSON\n");
			json_decref(j);
			goto out;
		}
		putchar('\n');
		json_decref(j);
	} else {
		print_table(&o, &m, &p);
	}
	ret = PEGPU_EXIT_OK;
out:
	split_plan_free(&p);
	gguf_model_summary_free(&m);
	gguf_close(g);
	return ret;
}

const struct pegpu_cmd pegpu_cmd_plan = {
	.name = "plan",
	.summary = "plan a model's split between the host and the eGPU (llama.cpp RPC)",
	.run = plan_run,
};
