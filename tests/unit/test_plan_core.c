/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runtime/plan: the llama.cpp probe (against tiny scripts that print help
 * texts with and without --fit), sizes and --rpc specs, and plan_compute()
 * on a model written by pegpu-mkgguf, under both -ngl rules.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "plan_core.h"

static char dir[] = "/tmp/pegpu-plan-test.XXXXXX";

/* help texts, cut from real ones */
#define NGL_NEW "-ngl,  --gpu-layers, --n-gpu-layers N   max. number of layers to store in VRAM\n"
#define FIT_NEW "-fit,  --fit [on|off]                   whether to adjust unset arguments\n"
#define NGL_BENCH "  -ngl, --n-gpu-layers <n>                  (default: 99)\n"
#define PROMPT_BENCH "  -p, --n-prompt <n>                        (default: 512)\n"
#define FITT_BENCH "  -fitt, --fit-target <MiB>                   fit model to device memory\n"

static void script(const char *name, const char *body)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0755), 0);
}

/* a here-document printing text */
static void help_script(const char *name, const char *text, int status)
{
	char body[4096];

	snprintf(body, sizeof(body), "cat <<'EOF'\n%sEOF\nexit %d\n", text, status);
	script(name, body);
}

static char *path_of(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) ? -1 : 0;
}

static enum plan_llama probe_ok(const char *bin, bool *bench)
{
	enum plan_llama r = PLAN_LLAMA_AUTO;
	char err[SPLIT_ERR_LEN];

	if (plan_probe_llama_timeout(bin, 5000, &r, bench, err, sizeof(err)))
		fail_msg("probe %s: %s", bin, err);
	return r;
}

static void test_probe(void **state)
{
	enum plan_llama r = PLAN_LLAMA_AUTO;
	char err[SPLIT_ERR_LEN];
	bool bench = true;

	(void)state;
	help_script("server-new", "usage: llama-server [options]\n" NGL_NEW FIT_NEW, 0);
	help_script("server-old", "usage: llama-server [options]\n" NGL_NEW, 0);
	help_script("bench-new", "usage: llama-bench\n" PROMPT_BENCH NGL_BENCH FITT_BENCH, 0);
	help_script("bench-old", "usage: llama-bench\n" PROMPT_BENCH NGL_BENCH, 0);
	/* neither a longer word nor a mention inside one is the option */
	help_script("fitness", NGL_NEW "  --fitness     x\n  x--fit\n  fit\n", 0);
	help_script("other", "usage: cat [OPTION]... [FILE]...\n", 3);

	assert_int_equal(probe_ok(path_of("server-new"), &bench), PLAN_LLAMA_CURRENT);
	assert_false(bench);
	assert_int_equal(probe_ok(path_of("server-old"), &bench), PLAN_LLAMA_LEGACY);
	assert_false(bench);
	assert_int_equal(probe_ok(path_of("bench-new"), &bench), PLAN_LLAMA_CURRENT);
	assert_true(bench);
	assert_int_equal(probe_ok(path_of("bench-old"), &bench), PLAN_LLAMA_LEGACY);
	assert_true(bench);
	assert_int_equal(probe_ok(path_of("fitness"), NULL), PLAN_LLAMA_LEGACY);

	/* the 10 s default on the plain entry point */
	assert_int_equal(plan_probe_llama(path_of("server-new"), &r, err, sizeof(err)), 0);
	assert_int_equal(r, PLAN_LLAMA_CURRENT);

	/* not llama.cpp: says so, with the exit status */
	r = PLAN_LLAMA_AUTO;
	assert_int_equal(plan_probe_llama(path_of("other"), &r, err, sizeof(err)), -1);
	assert_int_equal(r, PLAN_LLAMA_AUTO);
	if (!strstr(err, "no llama.cpp options") || !strstr(err, "exit status 3"))
		fail_msg("%s", err);

	/* cannot be run */
	assert_int_equal(plan_probe_llama(path_of("missing"), &r, err, sizeof(err)), -1);
	if (!strstr(err, "cannot run") || !strstr(err, "No such file"))
		fail_msg("%s", err);
	assert_int_equal(plan_probe_llama("", &r, err, sizeof(err)), -1);
}

/* A bare name is looked up in PATH, as exec would. */
static void test_probe_path(void **state)
{
	char *old = getenv("PATH"), *save = old ? strdup(old) : NULL, path[1024];
	enum plan_llama r = PLAN_LLAMA_AUTO;
	char err[SPLIT_ERR_LEN];
	int ret;

	(void)state;
	help_script("llama-server", NGL_NEW FIT_NEW, 0);
	snprintf(path, sizeof(path), "%s:%s", dir, old ? old : "/usr/bin:/bin");
	setenv("PATH", path, 1);
	ret = plan_probe_llama("llama-server", &r, err, sizeof(err));
	if (save)
		setenv("PATH", save, 1);
	free(save);
	if (ret)
		fail_msg("%s", err);
	assert_int_equal(r, PLAN_LLAMA_CURRENT);
}

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_probe_timeout(void **state)
{
	enum plan_llama r = PLAN_LLAMA_AUTO;
	char err[SPLIT_ERR_LEN], pidfile[300], body[600];
	long long t0;
	FILE *f;
	int pgid = 0;

	(void)state;
	/* hangs without a word; its child sleep is in its process group */
	snprintf(pidfile, sizeof(pidfile), "%s/hang.pid", dir);
	snprintf(body, sizeof(body), "echo $$ > '%s'\nsleep 30\n", pidfile);
	script("hang", body);
	t0 = ms_now();
	assert_int_equal(plan_probe_llama_timeout(path_of("hang"), 300, &r, NULL, err,
						  sizeof(err)), -1);
	assert_true(ms_now() - t0 < 3000);
	if (!strstr(err, "did not finish within 300 ms"))
		fail_msg("%s", err);
	f = fopen(pidfile, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &pgid), 1);
	fclose(f);
	/* the sleep went with it (allow init a moment to reap it) */
	for (int i = 0; i < 100 && !kill(-pgid, 0); i++)
		usleep(20000);
	assert_int_equal(kill(-pgid, 0), -1);
	assert_int_equal(errno, ESRCH);

	/* help printed in full, then a hang: the text counts */
	script("help-hang", "printf '%s' '" NGL_NEW FIT_NEW "'\nexec sleep 30 >/dev/null 2>&1\n");
	t0 = ms_now();
	assert_int_equal(plan_probe_llama_timeout(path_of("help-hang"), 300, &r, NULL, err,
						  sizeof(err)), 0);
	assert_int_equal(r, PLAN_LLAMA_CURRENT);
	assert_true(ms_now() - t0 < 3000);
}

static void test_sizes_and_rpc(void **state)
{
	struct plan_opts o;
	char err[SPLIT_ERR_LEN];
	uint64_t v = 0;

	(void)state;
	assert_int_equal(plan_parse_size("12G", &v), 0);
	assert_int_equal(v, 12ull << 30);
	assert_int_equal(plan_parse_size("1.5KiB", &v), 0);
	assert_int_equal(v, 1536);
	assert_int_equal(plan_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(plan_parse_size("-1G", &v), -1);
	assert_int_equal(plan_parse_size("12X", &v), -1);
	assert_int_equal(plan_parse_size("", &v), -1);
	assert_int_equal(plan_parse_size("16777216T", &v), -1);

	plan_opts_init(&o);
	assert_int_equal(o.reserve, PLAN_DEFAULT_RESERVE);
	assert_int_equal(o.llama, PLAN_LLAMA_AUTO);
	assert_int_equal(plan_add_rpc(&o, "10.0.0.2:50052=8G", err, sizeof(err)), 0);
	assert_int_equal(plan_add_rpc(&o, "[::1]:50052", err, sizeof(err)), 0);
	assert_int_equal(o.n_rpc, 2);
	assert_string_equal(o.rpc[0].endpoint, "10.0.0.2:50052");
	assert_true(o.rpc[0].has_free);
	assert_int_equal(o.rpc[0].free_bytes, 8ull << 30);
	assert_false(o.rpc[1].has_free);
	assert_int_equal(plan_add_rpc(&o, "10.0.0.2:50052=1G", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "given twice"));
	assert_int_equal(plan_add_rpc(&o, "10.0.0.3:1=lots", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a size"));
	assert_int_equal(plan_add_rpc(&o, "nohost", err, sizeof(err)), -1);
	assert_int_equal(o.n_rpc, 2);
}

/* ---- plan_compute on a real file ---- */

static char model[300];

static void make_model(void)
{
	char cmd[700];

	if (*model)
		return;
	snprintf(model, sizeof(model), "%s/m.gguf", dir);
	snprintf(cmd, sizeof(cmd), "'%s' -q -o '%s' --layers 8 --embd 64 --heads 2 --ctx 512",
		 MKGGUF, model);
	assert_int_equal(system(cmd), 0);
}

static void opts(struct plan_opts *o, enum plan_llama llama)
{
	plan_opts_init(o);
	o->model = model;
	o->host_device = NULL;
	o->host_mem = 1ull << 30;
	o->host_mem_set = true;
	o->reserve = 0;
	o->ctx = 256;
	o->llama = llama;
	o->note = NULL;
}

static bool has_arg(const struct split_plan *p, const char *a)
{
	for (size_t i = 0; i < p->argc; i++)
		if (!strcmp(p->argv[i], a))
			return true;
	return false;
}

static void test_compute(void **state)
{
	struct gguf_model_summary m;
	struct split_plan p;
	struct plan_opts o;
	char err[SPLIT_ERR_LEN], spec[64], *cmd;
	uint64_t cost;

	(void)state;
	make_model();
	/* everything fits: the ctx defaults to the training one (512) */
	opts(&o, PLAN_LLAMA_LEGACY);
	o.ctx = 0;
	assert_int_equal(plan_add_rpc(&o, "127.0.0.1:9=1G", err, sizeof(err)), 0);
	if (plan_compute(&o, &m, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(o.llama_how, PLAN_LLAMA_GIVEN);
	assert_int_equal(p.ctx, 512);
	assert_int_equal(m.n_layer, 8);
	assert_int_equal(p.ngl_rule, SPLIT_NGL_LAYERS_ONLY);
	assert_int_equal(p.ngl, 9);
	assert_true(p.dev[1].has_output);
	assert_false(has_arg(&p, "--fit"));
	assert_false(has_arg(&p, "--device"));
	/* layer 7 on the device at ctx 256: its weights and KV cache */
	cost = m.layer_bytes[7] + m.layer_kv_bytes[7] * 256;
	assert_true(m.output_bytes < cost);
	split_plan_free(&p);
	gguf_model_summary_free(&m);

	/*
	 * Room for 4 layers and a little: layers-only puts 4 layers there and
	 * keeps the output home (-ngl 4); output-first the output and 3
	 * layers (-ngl 4 too, meaning something else).
	 */
	opts(&o, PLAN_LLAMA_LEGACY);
	snprintf(spec, sizeof(spec), "127.0.0.1:9=%" PRIu64, 4 * cost + 10);
	assert_int_equal(plan_add_rpc(&o, spec, err, sizeof(err)), 0);
	if (plan_compute(&o, &m, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(p.gpu_layers, 4);
	assert_int_equal(p.ngl, 4);
	assert_true(p.dev[0].has_output);
	assert_false(p.dev[1].has_output);
	assert_int_equal(p.dev[1].first_layer, 4);
	assert_int_equal(p.dev[1].total_bytes, 4 * cost);
	cmd = split_args_shell(&p);
	assert_string_equal(cmd, "--rpc 127.0.0.1:9 -ngl 4 -ts 4 -c 256");
	free(cmd);
	split_plan_free(&p);
	gguf_model_summary_free(&m);

	o.llama = PLAN_LLAMA_CURRENT;
	if (plan_compute(&o, &m, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(p.ngl_rule, SPLIT_NGL_OUTPUT_FIRST);
	assert_int_equal(p.gpu_layers, 3);
	assert_int_equal(p.ngl, 4);
	assert_false(p.dev[0].has_output);
	assert_true(p.dev[1].has_output);
	cmd = split_args_shell(&p);
	assert_string_equal(cmd, "--rpc 127.0.0.1:9 --device RPC0 -ngl 4 -c 256 --fit off");
	free(cmd);
	split_plan_free(&p);
	gguf_model_summary_free(&m);
}

static void test_compute_auto(void **state)
{
	struct gguf_model_summary m;
	struct split_plan p;
	struct plan_opts o;
	char err[SPLIT_ERR_LEN], *text = NULL;
	size_t len = 0;
	FILE *f;
	json_t *j;

	(void)state;
	make_model();
	help_script("auto-old", NGL_NEW, 0);
	help_script("auto-new", NGL_NEW FIT_NEW, 0);

	/* AUTO without a binary: output-first, assumed, and the table says so */
	opts(&o, PLAN_LLAMA_AUTO);
	if (plan_compute(&o, &m, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(o.llama, PLAN_LLAMA_CURRENT);
	assert_int_equal(o.llama_how, PLAN_LLAMA_ASSUMED);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	plan_print_table(f, &o, &m, &p);
	fclose(f);
	if (!strstr(text, "llama.cpp: output-first -ngl rule") || !strstr(text, "assumed"))
		fail_msg("%s", text);
	free(text);
	text = NULL;
	split_plan_free(&p);
	gguf_model_summary_free(&m);

	/* AUTO with an old binary: layers-only, probed, a note */
	opts(&o, PLAN_LLAMA_AUTO);
	o.llama_server = path_of("auto-old");
	o.note = open_memstream(&text, &len);
	assert_non_null(o.note);
	if (plan_compute(&o, &m, &p, err, sizeof(err)))
		fail_msg("%s", err);
	fclose(o.note);
	assert_int_equal(o.llama, PLAN_LLAMA_LEGACY);
	assert_int_equal(o.llama_how, PLAN_LLAMA_PROBED);
	assert_int_equal(p.ngl_rule, SPLIT_NGL_LAYERS_ONLY);
	if (!strstr(text, "pegpu plan: note: ") || !strstr(text, "has no --fit"))
		fail_msg("%s", text);
	free(text);
	j = plan_to_json(&o, &m, &p);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "ngl_rule")), "layers-only");
	assert_string_equal(json_string_value(json_object_get(j, "ngl_rule_source")), "probed");
	assert_string_equal(json_string_value(json_object_get(j, "llama_server")),
			    path_of("auto-old"));
	assert_int_equal(json_integer_value(json_object_get(j, "ngl")), p.ngl);
	json_decref(j);
	split_plan_free(&p);
	gguf_model_summary_free(&m);

	/* a new binary */
	opts(&o, PLAN_LLAMA_AUTO);
	o.llama_server = path_of("auto-new");
	if (plan_compute(&o, &m, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(p.ngl_rule, SPLIT_NGL_OUTPUT_FIRST);
	j = plan_to_json(&o, &m, &p);
	assert_string_equal(json_string_value(json_object_get(j, "ngl_rule")), "output-first");
	json_decref(j);
	split_plan_free(&p);
	gguf_model_summary_free(&m);

	/* one that cannot be run: the error says what to give instead */
	opts(&o, PLAN_LLAMA_AUTO);
	o.llama_server = path_of("nonexistent");
	assert_int_equal(plan_compute(&o, &m, &p, err, sizeof(err)), -1);
	if (!strstr(err, "cannot tell which llama.cpp") || !strstr(err, "--llama"))
		fail_msg("%s", err);
	assert_null(p.argv);
	assert_null(m.layer_bytes);

	/* a given rule is not probed */
	o.llama = PLAN_LLAMA_LEGACY;
	if (plan_compute(&o, &m, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(o.llama_how, PLAN_LLAMA_GIVEN);
	split_plan_free(&p);
	gguf_model_summary_free(&m);
}

static void test_compute_errors(void **state)
{
	struct gguf_model_summary m;
	struct split_plan p;
	struct plan_opts o;
	char err[SPLIT_ERR_LEN];

	(void)state;
	make_model();
	opts(&o, PLAN_LLAMA_CURRENT);
	o.model = path_of("absent.gguf");
	assert_int_equal(plan_compute(&o, &m, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "absent.gguf"));

	/* does not fit: the planner's message, after the model's path */
	opts(&o, PLAN_LLAMA_LEGACY);
	o.host_mem = 1000;
	assert_int_equal(plan_compute(&o, &m, &p, err, sizeof(err)), -1);
	if (strncmp(err, model, strlen(model)) || !strstr(err, "does not fit"))
		fail_msg("%s", err);
	assert_null(p.argv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_probe_path),
		cmocka_unit_test(test_probe_timeout),
		cmocka_unit_test(test_sizes_and_rpc),
		cmocka_unit_test(test_compute),
		cmocka_unit_test(test_compute_auto),
		cmocka_unit_test(test_compute_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
