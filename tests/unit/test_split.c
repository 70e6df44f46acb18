/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split planner: hand-computed placements, the exact llama-server
 * arguments, budgets that do not fit, MoE expert offload, bad requests;
 * under both of llama.cpp's -ngl rules.
 *
 * The standard dense model: 10 layers of 100 bytes, 1 byte of KV per token
 * per layer, ctx 10 (so 110 bytes a layer), input 50, output 30.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pegpu/split.h"

struct model {
	struct gguf_model_summary s;
	uint64_t w[64], x[64], kv[64];
};

static void dense(struct model *m, uint32_t n)
{
	memset(m, 0, sizeof(*m));
	m->s.n_layer = n;
	m->s.layer_bytes = m->w;
	m->s.layer_expert_bytes = m->x;
	m->s.layer_kv_bytes = m->kv;
	for (uint32_t i = 0; i < n; i++) {
		m->w[i] = 100;
		m->kv[i] = 1;
	}
	m->s.input_bytes = 50;
	m->s.output_bytes = 30;
	m->s.total_bytes = 100 * n + 80;
}

static struct split_rpc_dev dev(const char *ep, uint32_t index, uint64_t free_bytes)
{
	struct split_rpc_dev d = { .index = index, .free_bytes = free_bytes };

	snprintf(d.endpoint, sizeof(d.endpoint), "%s", ep);
	return d;
}

static char *joined(const struct split_plan *p)
{
	char *s = split_args_shell(p);

	assert_non_null(s);
	return s;
}

static void expect_args(const struct split_plan *p, const char *want)
{
	char *s = joined(p);

	if (strcmp(s, want))
		fail_msg("arguments\n  got:  %s\n  want: %s", s, want);
	free(s);
	assert_null(p->argv[p->argc]);
}

static void plan_ok(const struct split_request *r, struct split_plan *p)
{
	char err[SPLIT_ERR_LEN];
	int ret = split_plan(r, p, err, sizeof(err));

	if (ret)
		fail_msg("split_plan: %d: %s", ret, err);
}

static void test_cpu_host_one_rpc(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:50052", 0, 500) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 1 };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	plan_ok(&r, &p);
	/* RPC0: output 30 + 4 layers x 110 = 470 <= 500; a 5th would be 580 */
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.ngl, 5);
	assert_int_equal(p.n_dev, 2);
	assert_string_equal(p.dev[0].name, "CPU");
	assert_true(p.dev[0].is_host);
	assert_true(p.dev[0].has_input);
	assert_false(p.dev[0].has_output);
	assert_int_equal(p.dev[0].first_layer, 0);
	assert_int_equal(p.dev[0].n_layers, 6);
	assert_int_equal(p.dev[0].weight_bytes, 650);
	assert_int_equal(p.dev[0].kv_bytes, 60);
	assert_int_equal(p.dev[0].total_bytes, 710);
	assert_int_equal(p.dev[0].budget_bytes, 1000);
	assert_string_equal(p.dev[1].name, "RPC0");
	assert_string_equal(p.dev[1].endpoint, "10.0.0.2:50052");
	assert_int_equal(p.dev[1].first_layer, 6);
	assert_int_equal(p.dev[1].n_layers, 4);
	assert_true(p.dev[1].has_output);
	assert_int_equal(p.dev[1].weight_bytes, 430);
	assert_int_equal(p.dev[1].kv_bytes, 40);
	assert_int_equal(p.dev[1].budget_bytes, 500);
	expect_args(&p, "--rpc 10.0.0.2:50052 --device RPC0 -ngl 5 -c 10 --fit off");
	split_plan_free(&p);

	/* the reserve comes off the free memory: 400 usable -> 3 layers */
	d[0].reserve_bytes = 100;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 3);
	assert_int_equal(p.dev[1].budget_bytes, 400);
	expect_args(&p, "--rpc 10.0.0.2:50052 --device RPC0 -ngl 4 -c 10 --fit off");
	split_plan_free(&p);
}

static void test_does_not_fit(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:50052", 0, 500) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 700, .devs = d,
				   .n_devs = 1 };
	struct split_plan p;
	char err[SPLIT_ERR_LEN];

	(void)state;
	dense(&m, 10);
	/* the host needs 710 with 4 layers on the eGPU */
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -ENOSPC);
	if (!strstr(err, "10 bytes missing"))
		fail_msg("%s", err);
	assert_non_null(strstr(err, "4 of its 10 layers"));
	assert_null(p.argv);

	/* no RPC devices at all: the host alone needs 1000 + 100 + 80 */
	r.n_devs = 0;
	r.host_budget = 1000;
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -ENOSPC);
	if (!strstr(err, "180 bytes missing"))
		fail_msg("%s", err);
}

static void test_two_servers(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:1", 0, 300), dev("10.0.0.3:2", 0, 500) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 2 };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	plan_ok(&r, &p);
	/* RPC1 (last): output + 4 layers; RPC0: 2 layers (220 <= 300) */
	assert_int_equal(p.gpu_layers, 6);
	assert_int_equal(p.dev[0].n_layers, 4);
	assert_int_equal(p.dev[1].first_layer, 4);
	assert_int_equal(p.dev[1].n_layers, 2);
	assert_int_equal(p.dev[2].first_layer, 6);
	assert_int_equal(p.dev[2].n_layers, 4);
	expect_args(&p, "--rpc 10.0.0.2:1,10.0.0.3:2 --device RPC0,RPC1 -ngl 7 -ts 2,5 -c 10 "
		    "--fit off");
	split_plan_free(&p);

	/* the last server cannot hold the output: it is left out */
	d[1].free_bytes = 20;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 2);
	assert_false(p.dev[2].used);
	assert_string_equal(p.dev[2].name, "-");
	expect_args(&p, "--rpc 10.0.0.2:1 --device RPC0 -ngl 3 -c 10 --fit off");
	split_plan_free(&p);
}

static void test_multi_device_server(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:1", 0, 0), dev("10.0.0.2:1", 1, 500),
				     dev("10.0.0.9:7", 0, 0) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 3 };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	plan_ok(&r, &p);
	/* device names count every device of the servers named in --rpc */
	assert_int_equal(p.gpu_layers, 4);
	assert_string_equal(p.dev[2].name, "RPC1");
	expect_args(&p, "--rpc 10.0.0.2:1 --device RPC1 -ngl 5 -c 10 --fit off");
	split_plan_free(&p);
}

static void test_gpu_host(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:1", 0, 500) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 1, .host_device = "MTL0" };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	plan_ok(&r, &p);
	/* RPC first: layers 0-3 (440); MTL0 last: layers 4-9 + output */
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.ngl, 11);
	assert_string_equal(p.dev[0].name, "RPC0");
	assert_int_equal(p.dev[0].first_layer, 0);
	assert_int_equal(p.dev[0].n_layers, 4);
	assert_false(p.dev[0].has_output);
	assert_string_equal(p.dev[1].name, "MTL0");
	assert_int_equal(p.dev[1].first_layer, 4);
	assert_int_equal(p.dev[1].n_layers, 6);
	assert_true(p.dev[1].has_output);
	assert_int_equal(p.dev[1].total_bytes, 600 + 60 + 50 + 30);
	expect_args(&p, "--rpc 10.0.0.2:1 --device RPC0,MTL0 -ngl 11 -ts 4,7 -c 10 --fit off");
	split_plan_free(&p);

	r.n_devs = 0;
	r.host_budget = 1180;
	plan_ok(&r, &p);
	expect_args(&p, "--device MTL0 -ngl 11 -c 10 --fit off");
	split_plan_free(&p);
}

static void test_edges(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:1", 0, 10000) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 50, .devs = d,
				   .n_devs = 1 };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	/* everything on the eGPU; the host keeps only the input layer */
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 10);
	assert_int_equal(p.dev[0].n_layers, 0);
	assert_int_equal(p.dev[0].total_bytes, 50);
	expect_args(&p, "--rpc 10.0.0.2:1 --device RPC0 -ngl 11 -c 10 --fit off");
	split_plan_free(&p);

	/* an eGPU too small even for the output: all on the host */
	d[0].free_bytes = 29;
	r.host_budget = 1180;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 0);
	assert_true(p.dev[0].has_output);
	assert_false(p.dev[1].used);
	expect_args(&p, "-ngl 0 -c 10 --fit off");
	split_plan_free(&p);

	/* exactly the output: -ngl 1 */
	d[0].free_bytes = 30;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 0);
	assert_true(p.dev[1].has_output);
	expect_args(&p, "--rpc 10.0.0.2:1 --device RPC0 -ngl 1 -c 10 --fit off");
	split_plan_free(&p);

	/* no RPC device */
	r.n_devs = 0;
	plan_ok(&r, &p);
	assert_int_equal(p.n_dev, 1);
	expect_args(&p, "-ngl 0 -c 10 --fit off");
	split_plan_free(&p);
}

/*
 * MoE: 4 layers of 1000 bytes, 800 of them experts, 2 of 8 experts used
 * (a quarter of an expert tensor read per token), no KV, no input/output.
 */
static void moe(struct model *m)
{
	dense(m, 4);
	m->s.n_expert = 8;
	m->s.n_expert_used = 2;
	m->s.input_bytes = m->s.output_bytes = 0;
	for (int i = 0; i < 4; i++) {
		m->w[i] = 1000;
		m->x[i] = 800;
		m->kv[i] = 0;
	}
	m->s.total_bytes = 4000;
}

static void test_moe(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("h:1", 0, 1000) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 10000, .devs = d,
				   .n_devs = 1 };
	struct split_plan p;
	char *s;

	(void)state;
	moe(&m);
	/*
	 * Whole layers: 1 on the eGPU, the host reads 3 x (200 + 800/4) = 1200
	 * per token.  Experts of all 4 layers home: 4 x 200 on the eGPU, the
	 * host reads 4 x 800/4 = 800.  The latter wins.
	 */
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.expert_first, 0);
	assert_int_equal(p.expert_count, 4);
	assert_int_equal(p.dev[0].n_layers, 0);
	assert_int_equal(p.dev[0].expert_bytes, 3200);
	assert_int_equal(p.dev[0].weight_bytes, 3200);
	assert_int_equal(p.dev[1].weight_bytes, 800);
	expect_args(&p, "--rpc h:1 --device RPC0 -ngl 5 -ot "
		    "'blk\\.(0|1|2|3)\\.ffn_[a-z_]+_exps\\.=CPU' -c 10 --fit off");
	/* the raw argument has no quotes */
	for (size_t i = 0; i < p.argc; i++)
		if (!strcmp(p.argv[i], "-ot"))
			assert_string_equal(p.argv[i + 1],
					    "blk\\.(0|1|2|3)\\.ffn_[a-z_]+_exps\\.=CPU");
	split_plan_free(&p);

	/*
	 * 1600 free: layer 3 whole (1000) + dense parts of 0-2 (600); the host
	 * reads 3 x 200 = 600 < 800 (all experts home).
	 */
	d[0].free_bytes = 1600;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.expert_count, 3);
	s = joined(&p);
	assert_non_null(strstr(s, "-ot 'blk\\.(0|1|2)\\.ffn_[a-z_]+_exps\\.=CPU'"));
	free(s);
	split_plan_free(&p);

	/* refused: whole layers only */
	d[0].free_bytes = 1000;
	r.no_expert_offload = true;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 1);
	assert_int_equal(p.expert_count, 0);
	expect_args(&p, "--rpc h:1 --device RPC0 -ngl 2 -c 10 --fit off");
	split_plan_free(&p);

	/* experts home need host memory: with 3000 the host cannot take all
	 * four layers' experts (3200), so it takes the best that fits */
	r.no_expert_offload = false;
	r.host_budget = 3000;
	plan_ok(&r, &p);
	assert_true(p.dev[0].total_bytes <= 3000);
	assert_int_equal(p.gpu_layers, 1);
	split_plan_free(&p);
}

static void test_gpu_host_moe(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("h:1", 0, 1000) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 10000, .devs = d,
				   .n_devs = 1, .host_device = "MTL0" };
	struct split_plan p;

	(void)state;
	moe(&m);
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.expert_count, 4);
	expect_args(&p, "--rpc h:1 --device RPC0,MTL0 -ngl 5 -ts 4,1 -ot "
		    "'blk\\.(0|1|2|3)\\.ffn_[a-z_]+_exps\\.=CPU' -c 10 --fit off");
	split_plan_free(&p);
}

/*
 * llama.cpp before #18148 (SPLIT_NGL_LAYERS_ONLY): -ngl G offloads the last
 * G repeating layers and keeps the output on the CPU; only -ngl n + 1
 * offloads the output, with every layer.  No --fit, no --device, -ts always.
 */
static void test_legacy_partial(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:50052", 0, 550) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 1 };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	/* output-first: output 30 + 4 x 110 = 470; a 5th layer would be 580 */
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.ngl, 5);
	assert_int_equal(p.ngl_rule, SPLIT_NGL_OUTPUT_FIRST);
	assert_true(p.dev[1].has_output);
	split_plan_free(&p);

	/* layers-only: no room kept for the output, 5 x 110 = 550 fit */
	r.ngl_rule = SPLIT_NGL_LAYERS_ONLY;
	plan_ok(&r, &p);
	assert_int_equal(p.ngl_rule, SPLIT_NGL_LAYERS_ONLY);
	assert_int_equal(p.gpu_layers, 5);
	assert_int_equal(p.ngl, 5);
	assert_int_equal(p.n_dev, 2);
	/* the host: input 50, layers 0-4 (500 + KV 50), output 30 */
	assert_true(p.dev[0].is_host);
	assert_true(p.dev[0].has_input);
	assert_true(p.dev[0].has_output);
	assert_int_equal(p.dev[0].first_layer, 0);
	assert_int_equal(p.dev[0].n_layers, 5);
	assert_int_equal(p.dev[0].weight_bytes, 580);
	assert_int_equal(p.dev[0].kv_bytes, 50);
	assert_int_equal(p.dev[0].total_bytes, 630);
	/* RPC0: layers 5-9, no output */
	assert_string_equal(p.dev[1].name, "RPC0");
	assert_true(p.dev[1].used);
	assert_false(p.dev[1].has_output);
	assert_int_equal(p.dev[1].first_layer, 5);
	assert_int_equal(p.dev[1].n_layers, 5);
	assert_int_equal(p.dev[1].weight_bytes, 500);
	assert_int_equal(p.dev[1].kv_bytes, 50);
	assert_int_equal(p.dev[1].total_bytes, 550);
	expect_args(&p, "--rpc 10.0.0.2:50052 -ngl 5 -ts 5 -c 10");
	split_plan_free(&p);

	/* a device that holds the output but no layer stays out: -ngl 0 */
	d[0].free_bytes = 100;
	r.host_budget = 1180;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 0);
	assert_int_equal(p.ngl, 0);
	assert_true(p.dev[0].has_output);
	assert_false(p.dev[1].used);
	assert_false(p.dev[1].has_output);
	assert_int_equal(p.dev[0].total_bytes, 1180);
	expect_args(&p, "-ngl 0 -c 10");
	split_plan_free(&p);
}

static void test_legacy_everything(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:1", 0, 10000) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 50, .devs = d,
				   .n_devs = 1, .ngl_rule = SPLIT_NGL_LAYERS_ONLY };
	struct split_plan p;
	char err[SPLIT_ERR_LEN];

	(void)state;
	dense(&m, 10);
	/* all 10 layers and the output: -ngl 11, the host keeps the input */
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 10);
	assert_int_equal(p.ngl, 11);
	assert_false(p.dev[0].has_output);
	assert_int_equal(p.dev[0].n_layers, 0);
	assert_int_equal(p.dev[0].total_bytes, 50);
	assert_true(p.dev[1].has_output);
	assert_int_equal(p.dev[1].first_layer, 0);
	assert_int_equal(p.dev[1].n_layers, 10);
	assert_int_equal(p.dev[1].weight_bytes, 1030);
	assert_int_equal(p.dev[1].kv_bytes, 100);
	expect_args(&p, "--rpc 10.0.0.2:1 -ngl 11 -ts 11 -c 10");
	split_plan_free(&p);

	/*
	 * 1100 free: every layer (10 x 110) but not the output as well.
	 * -ngl 10 offloads all repeating layers and keeps the output home,
	 * which the 50-byte host budget cannot take (80 needed)...
	 */
	d[0].free_bytes = 1100;
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -ENOSPC);
	if (!strstr(err, "30 bytes missing"))
		fail_msg("%s", err);
	/* ...and an 80-byte one can */
	r.host_budget = 80;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 10);
	assert_int_equal(p.ngl, 10);
	assert_true(p.dev[0].has_output);
	assert_int_equal(p.dev[0].weight_bytes, 80);
	assert_false(p.dev[1].has_output);
	assert_int_equal(p.dev[1].total_bytes, 1100);
	expect_args(&p, "--rpc 10.0.0.2:1 -ngl 10 -ts 10 -c 10");
	split_plan_free(&p);
}

static void test_legacy_two_servers(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:1", 0, 300), dev("10.0.0.3:2", 0, 550) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 2, .ngl_rule = SPLIT_NGL_LAYERS_ONLY };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	/* RPC1 (last): layers 5-9 (550); RPC0: layers 3-4 (220); host 0-2 + output */
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 7);
	assert_int_equal(p.ngl, 7);
	assert_int_equal(p.dev[0].n_layers, 3);
	assert_true(p.dev[0].has_output);
	assert_int_equal(p.dev[0].total_bytes, 50 + 330 + 30);
	assert_string_equal(p.dev[1].name, "RPC0");
	assert_int_equal(p.dev[1].first_layer, 3);
	assert_int_equal(p.dev[1].n_layers, 2);
	assert_false(p.dev[1].has_output);
	assert_string_equal(p.dev[2].name, "RPC1");
	assert_int_equal(p.dev[2].first_layer, 5);
	assert_int_equal(p.dev[2].n_layers, 5);
	assert_false(p.dev[2].has_output);
	assert_int_equal(p.dev[2].total_bytes, 550);
	expect_args(&p, "--rpc 10.0.0.2:1,10.0.0.3:2 -ngl 7 -ts 2,5 -c 10");
	split_plan_free(&p);

	/* output-first with the same memory: RPC1 keeps 30 for the output */
	r.ngl_rule = SPLIT_NGL_OUTPUT_FIRST;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 6);
	expect_args(&p, "--rpc 10.0.0.2:1,10.0.0.3:2 --device RPC0,RPC1 -ngl 7 -ts 2,5 -c 10 "
		    "--fit off");
	split_plan_free(&p);

	/* everything fits: RPC1 takes the output and 4 layers, RPC0 6 layers */
	r.ngl_rule = SPLIT_NGL_LAYERS_ONLY;
	d[0].free_bytes = 660;
	d[1].free_bytes = 470;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 10);
	assert_int_equal(p.ngl, 11);
	assert_false(p.dev[0].has_output);
	assert_int_equal(p.dev[1].n_layers, 6);
	assert_int_equal(p.dev[2].first_layer, 6);
	assert_int_equal(p.dev[2].n_layers, 4);
	assert_true(p.dev[2].has_output);
	assert_int_equal(p.dev[2].total_bytes, 470);
	expect_args(&p, "--rpc 10.0.0.2:1,10.0.0.3:2 -ngl 11 -ts 6,5 -c 10");
	split_plan_free(&p);
}

static void test_legacy_multi_device_server(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:1", 0, 0), dev("10.0.0.2:1", 1, 500),
				     dev("10.0.0.9:7", 0, 0) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 3, .ngl_rule = SPLIT_NGL_LAYERS_ONLY };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	/*
	 * Without --device both devices of 10.0.0.2:1 are in llama.cpp's
	 * list: the empty one gets a share of 0.
	 */
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.ngl, 4);
	assert_string_equal(p.dev[1].name, "-");
	assert_false(p.dev[1].used);
	assert_string_equal(p.dev[2].name, "RPC1");
	assert_int_equal(p.dev[2].first_layer, 6);
	assert_false(p.dev[3].used);
	expect_args(&p, "--rpc 10.0.0.2:1 -ngl 4 -ts 0,4 -c 10");
	split_plan_free(&p);
}

static void test_legacy_does_not_fit(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:50052", 0, 500) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 700, .devs = d,
				   .n_devs = 1, .ngl_rule = SPLIT_NGL_LAYERS_ONLY };
	struct split_plan p;
	char err[SPLIT_ERR_LEN];

	(void)state;
	dense(&m, 10);
	/*
	 * 4 layers on RPC0 (440); the host needs input 50 + 6 x 110 + the
	 * output 30 = 740 (output-first: 710, as the output went to RPC0).
	 */
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -ENOSPC);
	if (!strstr(err, "40 bytes missing"))
		fail_msg("%s", err);
	assert_non_null(strstr(err, "4 of its 10 layers"));
	assert_non_null(strstr(err, "740 bytes"));
	assert_non_null(strstr(err, "Lower --ctx"));
	assert_null(p.argv);
	r.host_budget = 740;
	plan_ok(&r, &p);
	assert_int_equal(p.dev[0].total_bytes, 740);
	split_plan_free(&p);
}

static void test_legacy_gpu_host(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("10.0.0.2:1", 0, 500) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 1, .host_device = "MTL0",
				   .ngl_rule = SPLIT_NGL_LAYERS_ONLY };
	struct split_plan p;

	(void)state;
	dense(&m, 10);
	/* the same placement as output-first; the host's GPU is last by default */
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.ngl, 11);
	assert_int_equal(p.dev[0].n_layers, 4);
	assert_false(p.dev[0].has_output);
	assert_true(p.dev[1].has_output);
	assert_int_equal(p.dev[1].total_bytes, 600 + 60 + 50 + 30);
	expect_args(&p, "--rpc 10.0.0.2:1 -ngl 11 -ts 4,7 -c 10");
	split_plan_free(&p);

	r.n_devs = 0;
	r.host_budget = 1180;
	plan_ok(&r, &p);
	expect_args(&p, "-ngl 11 -c 10");
	split_plan_free(&p);
}

/*
 * MoE with an output layer: the moe() model plus 100 bytes of output.  With
 * 850 free, the dense parts of all 4 layers (800) fit but not the output
 * too: layers-only offloads all 4 layers (-ngl 4 = every repeating layer),
 * keeps the output and every expert home; output-first's -ngl 4 means the
 * output and layers 1-3, with layer 0 whole on the host.
 */
static void test_legacy_moe(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("h:1", 0, 850) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 10000, .devs = d,
				   .n_devs = 1, .ngl_rule = SPLIT_NGL_LAYERS_ONLY };
	struct split_plan p;

	(void)state;
	moe(&m);
	m.s.output_bytes = 100;
	m.s.total_bytes = 4100;
	/*
	 * Host reads per token: all experts home 4 x 800 / 4 + output 100 =
	 * 900; whole layers cannot go (a layer is 1000 > 850): 4 x 400 + 100.
	 */
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.ngl, 4);
	assert_int_equal(p.expert_first, 0);
	assert_int_equal(p.expert_count, 4);
	assert_int_equal(p.dev[0].n_layers, 0);
	assert_true(p.dev[0].has_output);
	assert_int_equal(p.dev[0].expert_bytes, 3200);
	assert_int_equal(p.dev[0].weight_bytes, 3300);
	assert_false(p.dev[1].has_output);
	assert_int_equal(p.dev[1].weight_bytes, 800);
	expect_args(&p, "--rpc h:1 -ngl 4 -ts 4 -ot "
		    "'blk\\.(0|1|2|3)\\.ffn_[a-z_]+_exps\\.=CPU' -c 10");
	split_plan_free(&p);

	r.ngl_rule = SPLIT_NGL_OUTPUT_FIRST;
	plan_ok(&r, &p);
	assert_int_equal(p.gpu_layers, 3);
	assert_int_equal(p.ngl, 4);
	assert_int_equal(p.expert_first, 1);
	assert_int_equal(p.expert_count, 3);
	assert_int_equal(p.dev[0].weight_bytes, 1000 + 2400);
	assert_int_equal(p.dev[1].weight_bytes, 600 + 100);
	expect_args(&p, "--rpc h:1 --device RPC0 -ngl 4 -ot "
		    "'blk\\.(1|2|3)\\.ffn_[a-z_]+_exps\\.=CPU' -c 10 --fit off");
	split_plan_free(&p);

	/* 900 free: dense parts and the output fit, so -ngl 5 offloads it too */
	r.ngl_rule = SPLIT_NGL_LAYERS_ONLY;
	d[0].free_bytes = 900;
	plan_ok(&r, &p);
	assert_int_equal(p.ngl, 5);
	assert_true(p.dev[1].has_output);
	assert_false(p.dev[0].has_output);
	assert_int_equal(p.dev[0].weight_bytes, 3200);
	expect_args(&p, "--rpc h:1 -ngl 5 -ts 5 -ot "
		    "'blk\\.(0|1|2|3)\\.ffn_[a-z_]+_exps\\.=CPU' -c 10");
	split_plan_free(&p);
}

static void test_bad_requests(void **state)
{
	struct model m;
	struct split_rpc_dev d[] = { dev("a:1", 0, 500), dev("a:1", 2, 500) };
	struct split_request r = { .model = &m.s, .ctx = 10, .host_budget = 1000, .devs = d,
				   .n_devs = 2 };
	struct split_plan p;
	char err[SPLIT_ERR_LEN];

	(void)state;
	dense(&m, 10);
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "expected device number 1"));

	d[1] = dev("b:1", 0, 500);
	d[0] = dev("b:1", 0, 500);
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "expected device number 1"));

	struct split_rpc_dev d3[] = { dev("a:1", 0, 1), dev("b:1", 0, 1), dev("a:1", 0, 1) };

	r.devs = d3;
	r.n_devs = 3;
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "listed twice"));

	r.n_devs = 0;
	r.ctx = 0;
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);

	r.ctx = 10;
	r.host_device = "MTL0,RPC0";
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);

	r.host_device = NULL;
	m.kv[3] = UINT64_MAX / 5;
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "overflows"));

	m.kv[3] = 1;
	m.x[2] = 101;
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);

	struct split_rpc_dev bad[] = { dev("a b:1", 0, 1) };

	m.x[2] = 0;
	r.ngl_rule = (enum split_ngl_rule)7;
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "-ngl rule"));

	r.ngl_rule = SPLIT_NGL_OUTPUT_FIRST;
	r.devs = bad;
	r.n_devs = 1;
	assert_int_equal(split_plan(&r, &p, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bad endpoint"));
}

/* A model with real proportions: the planner is linear, not exponential. */
static void test_large(void **state)
{
	struct model m;
	struct split_rpc_dev d[SPLIT_MAX_RPC_DEVS];
	struct split_request r = { .model = &m.s, .ctx = 4096, .host_budget = 64ull << 30,
				   .devs = d, .n_devs = SPLIT_MAX_RPC_DEVS };
	struct split_plan p;

	(void)state;
	dense(&m, 64);
	for (int i = 0; i < 64; i++) {
		m.w[i] = 400ull << 20;
		m.x[i] = 300ull << 20;
		m.kv[i] = 2048;
	}
	m.s.n_expert = 64;
	m.s.n_expert_used = 8;
	m.s.output_bytes = 1ull << 30;
	for (int i = 0; i < SPLIT_MAX_RPC_DEVS; i++) {
		char ep[32];

		snprintf(ep, sizeof(ep), "10.0.0.%d:50052", i + 1);
		d[i] = dev(ep, 0, 2ull << 30);
		d[i].reserve_bytes = 256ull << 20;
	}
	plan_ok(&r, &p);
	assert_true(p.gpu_layers > 0);
	uint64_t total = 0;

	for (size_t i = 0; i < p.n_dev; i++) {
		assert_true(p.dev[i].total_bytes <= p.dev[i].budget_bytes);
		total += p.dev[i].n_layers;
	}
	assert_int_equal(total, 64);
	split_plan_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_host_one_rpc),
		cmocka_unit_test(test_does_not_fit),
		cmocka_unit_test(test_two_servers),
		cmocka_unit_test(test_multi_device_server),
		cmocka_unit_test(test_gpu_host),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_moe),
		cmocka_unit_test(test_gpu_host_moe),
		cmocka_unit_test(test_legacy_partial),
		cmocka_unit_test(test_legacy_everything),
		cmocka_unit_test(test_legacy_two_servers),
		cmocka_unit_test(test_legacy_multi_device_server),
		cmocka_unit_test(test_legacy_does_not_fit),
		cmocka_unit_test(test_legacy_gpu_host),
		cmocka_unit_test(test_legacy_moe),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_large),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
