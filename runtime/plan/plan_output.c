/* SPDX-License-Identifier: Apache-2.0 */
/* The plan as a table (for people and model logs) and as JSON (see plan_core.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_core.h"

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

static const char *how_name(enum plan_llama_how h)
{
	switch (h) {
	case PLAN_LLAMA_PROBED:
		return "probed";
	case PLAN_LLAMA_ASSUMED:
		return "assumed";
	default:
		return "given";
	}
}

/* One line on the -ngl rule: which, and how it was chosen. */
static void print_rule(FILE *f, const struct plan_opts *o, const struct split_plan *p)
{
	bool legacy = p->ngl_rule == SPLIT_NGL_LAYERS_ONLY;

	fprintf(f, "llama.cpp: %s -ngl rule (%s)", plan_ngl_rule_name(p->ngl_rule),
		legacy ? "before December 2025: -ngl counts repeating layers only"
		       : "December 2025 on: -ngl counts the output layer first");
	switch (o->llama_how) {
	case PLAN_LLAMA_PROBED:
		fprintf(f, ", from %s --help\n", o->llama_server);
		break;
	case PLAN_LLAMA_ASSUMED:
		fprintf(f, ",\n           assumed: for an older llama.cpp give --llama legacy "
			"or --llama-server PATH\n");
		break;
	default:
		fprintf(f, "\n");
		break;
	}
}

void plan_print_table(FILE *f, const struct plan_opts *o, const struct gguf_model_summary *m,
		      const struct split_plan *p)
{
	char a[32], b[32], c[32], d[32], l[64];
	uint64_t kvt = 0;
	bool out_rpc = false;
	char *cmd;

	for (uint32_t i = 0; i < m->n_layer; i++)
		kvt += m->layer_kv_bytes[i];
	human(m->total_bytes, a, sizeof(a));
	fprintf(f, "model:   %s\n         %s, %" PRIu32 " layers, n_embd %" PRIu32 ", %" PRIu32
		" heads (%" PRIu32 " KV)", o->model, m->arch, m->n_layer, m->n_embd, m->n_head,
		m->n_head_kv);
	if (m->n_expert)
		fprintf(f, ", %" PRIu32 " experts (%" PRIu32 " used)", m->n_expert,
			m->n_expert_used);
	fprintf(f, ", %s of weights\n", a);
	human(kvt * p->ctx, a, sizeof(a));
	fprintf(f, "context: %" PRIu32 " tokens (KV cache %s, f16)\n", p->ctx, a);
	print_rule(f, o, p);
	fprintf(f, "\n%-7s %-22s %-26s %11s %11s %11s %11s\n", "device", "endpoint", "layers",
		"weights", "KV cache", "total", "budget");
	for (size_t i = 0; i < p->n_dev; i++) {
		const struct split_dev_plan *x = &p->dev[i];

		human(x->weight_bytes, a, sizeof(a));
		human(x->kv_bytes, b, sizeof(b));
		human(x->total_bytes, c, sizeof(c));
		human(x->budget_bytes, d, sizeof(d));
		layers_str(x, l, sizeof(l));
		fprintf(f, "%-7s %-22s %-26s %11s %11s %11s %11s\n", x->name,
			x->is_host ? "(host)" : x->endpoint, l, a, b, c, d);
		out_rpc |= !x->is_host && x->has_output;
	}
	fprintf(f, "\n%" PRIu32 " of %" PRIu32 " layers%s on the eGPU", p->gpu_layers,
		p->n_layer, out_rpc ? " and the output layer" : "");
	if (p->expert_count)
		fprintf(f, "; MoE experts of layers %" PRIu32 "-%" PRIu32 " kept on the host",
			p->expert_first, p->expert_first + p->expert_count - 1);
	fprintf(f, ".\n\nllama-server arguments:\n");
	cmd = split_args_shell(p);
	fprintf(f, "  %s\n", cmd ? cmd : "(out of memory)");
	free(cmd);
}

json_t *plan_to_json(const struct plan_opts *o, const struct gguf_model_summary *m,
		     const struct split_plan *p)
{
	json_t *root = json_object(), *model = json_object(), *devs = json_array();
	json_t *args = json_array(), *ex = json_object();
	uint64_t kvt = 0;
	char *cmd = split_args_shell(p);

	if (!root || !model || !devs || !args || !ex) {
		json_decref(root);
		json_decref(model);
		json_decref(devs);
		json_decref(args);
		json_decref(ex);
		free(cmd);
		return NULL;
	}
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
	json_object_set_new(root, "ngl_rule", json_string(plan_ngl_rule_name(p->ngl_rule)));
	json_object_set_new(root, "ngl_rule_source", json_string(how_name(o->llama_how)));
	json_object_set_new(root, "llama_server",
			    o->llama_how == PLAN_LLAMA_PROBED ? json_string(o->llama_server)
							      : json_null());

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
			const struct plan_rpc *ra = &o->rpc[r];
			char ver[16];

			if (strcmp(ra->endpoint, x->endpoint) || ra->has_free)
				continue;
			snprintf(ver, sizeof(ver), "%u.%u.%u", ra->info.major, ra->info.minor,
				 ra->info.patch);
			json_object_set_new(d, "protocol", json_string(ver));
		}
		json_array_append_new(devs, d);
	}
	json_object_set_new(root, "devices", devs);
	json_object_set_new(root, "gpu_layers", json_integer(p->gpu_layers));
	json_object_set_new(root, "ngl", json_integer(p->ngl));
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
