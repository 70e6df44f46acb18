/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests: loading llama-swap style configs (tests/serve/configs/, written
 * after the examples in llama-swap's documentation), defaults, ${PORT}
 * allocation, groups, and diagnostics with line numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#ifndef SERVE_CONFIGS
#define SERVE_CONFIGS "tests/serve/configs"
#endif

static struct serve_config *load(const char *file, struct serve_diag *d)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", SERVE_CONFIGS, file);
	sv_diag_init(d, path);
	return serve_config_load_file(path, d);
}

static struct serve_config *load_str(const char *text, struct serve_diag *d)
{
	sv_diag_init(d, "inline.yaml");
	return serve_config_load_string(text, strlen(text), "inline.yaml", d);
}

static const struct serve_model *model(const struct serve_config *cfg, const char *id)
{
	long i = serve_config_index(cfg, id);

	assert_true(i >= 0);
	return &cfg->models[i];
}

static void dump_on_error(const struct serve_diag *d)
{
	if (d->n_errors)
		sv_diag_print(d, stderr);
}

static void minimal(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg = load("docs-minimal.yaml", &d);
	const struct serve_model *m;

	(void)state;
	dump_on_error(&d);
	assert_non_null(cfg);
	assert_int_equal(d.n, 0);
	/* llama-swap's defaults */
	assert_int_equal(cfg->health_check_timeout, 120);
	assert_int_equal(cfg->start_port, 5800);
	assert_int_equal(cfg->unload_timeout, 10);
	assert_int_equal(cfg->global_ttl, 0);
	m = model(cfg, "model1");
	assert_string_equal(m->cmd, "llama-server --port 5800 --model /path/to/model.gguf");
	assert_string_equal(m->proxy, "http://localhost:5800");
	assert_string_equal(m->proxy_host, "127.0.0.1");
	assert_int_equal(m->proxy_port, 5800);
	assert_string_equal(m->check_endpoint, "/health");
	assert_int_equal(m->ttl, 0);
	assert_int_equal(m->unload_timeout, 10);
	assert_int_equal(m->concurrency_limit, 10);
	assert_null(m->cmd_stop);
	assert_null(m->use_model_name);
	assert_false(m->unlisted);
	/* the implicit default group: swap and exclusive */
	assert_string_equal(cfg->groups[m->group].id, "(default)");
	assert_true(cfg->groups[m->group].swap);
	assert_true(cfg->groups[m->group].exclusive);
	assert_false(cfg->groups[m->group].persistent);
	serve_config_unref(cfg);
	sv_diag_free(&d);
}

static void multi(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg = load("docs-multi.yaml", &d);
	const struct serve_model *m;

	(void)state;
	dump_on_error(&d);
	assert_non_null(cfg);
	assert_int_equal(cfg->n_models, 3);
	/* ports follow the sorted model ids */
	assert_int_equal(model(cfg, "model1")->port, 5800);
	assert_int_equal(model(cfg, "model2")->port, 5801);
	assert_int_equal(model(cfg, "model3")->port, 5802);
	m = model(cfg, "model2");
	assert_int_equal(m->argv.n, 10);
	assert_string_equal(m->argv.v[0], "llama-server");
	assert_string_equal(m->argv.v[2], "5801");
	assert_string_equal(m->argv.v[9], "q8_0");
	assert_null(strstr(m->cmd, "comment"));
	m = model(cfg, "model3");
	assert_string_equal(m->argv.v[4], "/path/with space/third_model.gguf");
	serve_config_unref(cfg);
	sv_diag_free(&d);
}

static void full(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg;
	const struct serve_model *m;
	json_t *j;

	(void)state;
	setenv("PEGPU_TEST_HOME", "/home/test", 1);
	setenv("PEGPU_TEST_KEY", "sk-from-env", 1);
	cfg = load("docs-full.yaml", &d);
	dump_on_error(&d);
	assert_non_null(cfg);
	assert_int_equal(d.n, 0);
	assert_int_equal(cfg->health_check_timeout, 500);
	assert_int_equal(cfg->start_port, 10001);
	assert_true(cfg->include_aliases_in_list);
	assert_int_equal(cfg->api_keys.n, 2);
	assert_string_equal(cfg->api_keys.v[1], "sk-from-env");

	m = model(cfg, "gpt-oss-120b");
	/* sorted ids: docker-llama 10001, gpt-oss-120b 10002, llama 10003,
	 * qwen-unlisted 10004; unlisted-model has no ${PORT} */
	assert_int_equal(m->port, 10002);
	assert_string_equal(m->cmd,
			    "/path/to/llama-server/llama-server-ec9e0301 --port 10002\n\n"
			    "--model /home/test/models/gpt-oss-120B.gguf\n"
			    "--ctx-size 16384\n--temperature 0.7\n");
	assert_string_equal(m->argv.v[0], "/path/to/llama-server/llama-server-ec9e0301");
	assert_int_equal(m->argv.n, 9);
	assert_string_equal(m->proxy, "http://127.0.0.1:8999");
	assert_int_equal(m->proxy_port, 8999);
	assert_string_equal(m->check_endpoint, "/custom-endpoint");
	assert_int_equal(m->ttl, 60);
	assert_int_equal(m->unload_timeout, 10);
	assert_string_equal(m->use_model_name, "openai/gpt-oss-120B");
	assert_string_equal(m->name, "gpt-oss 120B");
	assert_string_equal(m->env.v[0], "CUDA_VISIBLE_DEVICES=0,1,2");
	assert_string_equal(m->aliases.v[0], "gpt-4o-mini");
	assert_int_equal(m->concurrency_limit, 4);
	/* "model" can never be stripped */
	assert_int_equal(m->strip_params.n, 3);
	assert_string_equal(m->strip_params.v[2], "top_k");
	assert_true(json_is_real(json_object_get(m->set_params, "top_p")));
	/* metadata keeps YAML types; a value that is one macro takes its type */
	j = m->metadata;
	assert_int_equal(json_integer_value(json_object_get(j, "port")), 10002);
	assert_true(json_real_value(json_object_get(j, "temperature")) == 0.7);
	assert_string_equal(json_string_value(json_object_get(j, "note")),
			    "The gpt-oss-120b is served");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "a_list"), 2)),
			    "macros work in lists: gpt-oss-120b");

	m = model(cfg, "unlisted-model");
	assert_true(m->unlisted);
	assert_null(m->check_endpoint);		/* none */
	assert_int_equal(m->port, 0);
	assert_int_equal(m->ttl, 300);		/* globalTTL */
	assert_int_equal(m->unload_timeout, 7);	/* global unloadTimeout */

	m = model(cfg, "docker-llama");
	assert_string_equal(m->cmd_stop, "docker stop docker-llama");
	assert_string_equal(m->proxy, "http://127.0.0.1:10001");
	assert_string_equal(m->argv.v[3], "docker-llama");
	assert_string_equal(cfg->groups[m->group].id, "forever");
	assert_true(cfg->groups[m->group].persistent);
	assert_false(cfg->groups[m->group].swap);

	m = model(cfg, "llama");
	assert_int_equal(m->ttl, 0);		/* explicit 0: never */
	assert_string_equal(cfg->groups[m->group].id, "group1");
	assert_int_equal(model(cfg, "qwen-unlisted")->group, m->group);
	assert_string_equal(cfg->groups[model(cfg, "gpt-oss-120b")->group].id, "(default)");

	/* preload names may be aliases; they resolve to ids */
	assert_int_equal(cfg->preload.n, 2);
	assert_string_equal(cfg->preload.v[0], "llama");
	assert_string_equal(cfg->preload.v[1], "gpt-oss-120b");
	assert_ptr_equal(serve_config_find(cfg, "gpt-4o-mini"), model(cfg, "gpt-oss-120b"));
	assert_null(serve_config_find(cfg, "nope"));
	serve_config_unref(cfg);
	sv_diag_free(&d);
}

static void routing_groups(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg = load("docs-routing.yaml", &d);
	const struct serve_group *g;

	(void)state;
	dump_on_error(&d);
	assert_non_null(cfg);
	g = &cfg->groups[model(cfg, "m1")->group];
	assert_string_equal(g->id, "pair");
	assert_false(g->swap);
	assert_false(g->exclusive);
	assert_int_equal(model(cfg, "m2")->group, model(cfg, "m1")->group);
	assert_string_equal(cfg->groups[model(cfg, "m3")->group].id, "(default)");
	serve_config_unref(cfg);
	sv_diag_free(&d);
}

static void anchors(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg;
	const struct serve_model *m;

	(void)state;
	/* top-level x- keys hold anchors and are skipped */
	cfg = load("anchors.yaml", &d);
	dump_on_error(&d);
	assert_non_null(cfg);
	assert_int_equal(d.n, 0);
	m = model(cfg, "small");
	assert_int_equal(m->ttl, 120);
	assert_string_equal(m->check_endpoint, "/v1/models");
	assert_string_equal(m->env.v[0], "GGML_CUDA_ENABLE_UNIFIED_MEMORY=1");
	m = model(cfg, "large");
	assert_int_equal(m->ttl, 30);				/* own key wins */
	assert_string_equal(m->check_endpoint, "/v1/models");	/* merged */
	serve_config_unref(cfg);
	sv_diag_free(&d);

	/* an anchor on a model itself */
	cfg = load_str("macros:\n  common_ttl: 5\nmodels:\n"
		       "  small: &base\n    ttl: 120\n    checkEndpoint: /v1/models\n"
		       "    cmd: srv --port ${PORT} -m small.gguf\n"
		       "  large:\n    <<: *base\n    ttl: 30\n    cmd: srv --port ${PORT} -m large.gguf\n",
		       &d);
	dump_on_error(&d);
	assert_non_null(cfg);
	m = model(cfg, "large");
	assert_int_equal(m->ttl, 30);				/* own key wins */
	assert_string_equal(m->check_endpoint, "/v1/models");	/* merged */
	assert_string_equal(m->argv.v[4], "large.gguf");
	serve_config_unref(cfg);
	sv_diag_free(&d);
}

static void unsupported(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg = load("unsupported.yaml", &d);

	(void)state;
	assert_null(cfg);
	assert_true(sv_diag_has(&d, DIAG_WARNING, 4, "'logTimeFormat' in the top level is a llama-swap setting pegpu serve ignores"));
	assert_true(sv_diag_has(&d, DIAG_WARNING, 5, "sendLoadingState"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 6, "'peers' in the top level is not supported"));
	assert_true(sv_diag_has(&d, DIAG_WARNING, 13, "capabilities"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 15, "'matrix' in the top level is not supported"));
	assert_int_equal(d.n_errors, 2);
	assert_int_equal(d.n_warnings, 3);
	sv_diag_free(&d);
}

static void misspelled(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg = load("misspelled.yaml", &d);

	(void)state;
	assert_null(cfg);
	assert_true(sv_diag_has(&d, DIAG_ERROR, 2, "unknown key 'healthCheckTimout' in the top level (did you mean 'healthCheckTimeout'?)"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 6, "unknown key 'tll' in model 'llama' (did you mean 'ttl'?)"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 7, "(did you mean 'checkEndpoint'?)"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 8, "(did you mean 'aliases'?)"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 10, "unknown macro ${ctx}"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 11, "uses ${PORT}, but the model's cmd does not"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 14, "unknown key 'swp' in group 'g' (did you mean 'swap'?)"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 15, "model 'lama', which is not defined under models: (did you mean 'llama'?)"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 18, "preload names model 'nothere'"));
	sv_diag_free(&d);
}

static void errors_inline(void **state)
{
	static const struct {
		const char *yaml;
		int line;
		const char *msg;
	} cases[] = {
		{ "models:\n  m:\n    cmd: [a, b]\n", 3, "cmd must be a single value, not a list" },
		{ "models:\n  m:\n    proxy: http://127.0.0.1:1\n", 2, "has no cmd:" },
		{ "models:\n  m:\n    cmd: srv\n", 2, "does not use ${PORT} and it sets no proxy:" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    ttl: soon\n", 4, "must be a whole number, not 'soon'" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    unlisted: maybe\n", 4, "must be true or false" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    proxy: https://x:1\n", 4, "uses https" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    checkEndpoint: health\n", 4, "must be a path starting with /" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    env: [NOEQUALS]\n", 4, "must look like NAME=value" },
		{ "models:\n  m:\n    cmd: \"srv 'open --port ${PORT}\"\n", 3, "unterminated single quote" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT} ${env.PEGPU_T_SURELY_UNSET}\n", 3, "PEGPU_T_SURELY_UNSET is not set" },
		{ "macros:\n  PORT: 1\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n", 2, "reserved" },
		{ "macros:\n  a: ${b}\n  b: x\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n", 2, "declared after it (line 3)" },
		{ "macros:\n  a: [1]\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n", 2, "must be a single value" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    aliases: [n]\n  n:\n    cmd: srv --port ${PORT}\n", 2, "alias 'n' is also a model id" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    aliases: [x]\n  n:\n    cmd: srv --port ${PORT}\n    aliases: [x]\n", 5, "aliases must be unique" },
		{ "groups:\n  g1:\n    members: [m]\n  g2:\n    members: [m]\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n", 5, "is in group 'g1' and in group 'g2'" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    cmd: again\n", 4, "'cmd' is set twice" },
		{ "models:\n  m:\n    cmd: srv --port ${PORT}\n    cmdStop: kill ${PORT} ${PID}\n    name: ${PID}\n", 5, "only cmdStop may use" },
		{ "models: [a, b]\n", 1, "models must be a mapping" },
		{ "models:\n  m:\n    cmd: x\n  bad: [\n", 0, "YAML syntax" },
		{ "", 0, "config is empty" },
		{ "startPort: 0\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n", 1, "must be 1 or more" },
		{ "logToStdout: sometimes\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n", 1, "one of proxy, upstream, both, none" },
		{ "routing:\n  router:\n    use: matrix\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n", 3, "matrix is not supported" },
		{ "apiKeys: [\"a b\"]\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n", 1, "contains a blank" },
		{ "x-a: &a [1,1,1,1,1,1,1,1,1,1]\nx-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
		  "x-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nx-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
		  "x-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nx-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
		  "x-g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nx-h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
		  "models:\n  m:\n    cmd: srv --port ${PORT}\n    metadata:\n      bomb: *h\n", 0,
		  "too large" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct serve_diag d;
		struct serve_config *cfg = load_str(cases[i].yaml, &d);

		if (cfg || !sv_diag_has(&d, DIAG_ERROR, cases[i].line, cases[i].msg)) {
			fprintf(stderr, "case %zu: wanted line %d '%s', got:\n", i, cases[i].line,
				cases[i].msg);
			sv_diag_print(&d, stderr);
			fail();
		}
		sv_diag_free(&d);
	}
}

static void warnings_inline(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg;

	(void)state;
	cfg = load_str("healthCheckTimeout: 5\nmodels:\n  m:\n    cmd: srv --port ${PORT}\n"
		       "    concurrencyLimit: 0\n", &d);
	assert_non_null(cfg);
	assert_true(sv_diag_has(&d, DIAG_WARNING, 1, "below the minimum of 15"));
	assert_int_equal(cfg->health_check_timeout, 15);
	assert_int_equal(cfg->models[0].concurrency_limit, 10);
	serve_config_unref(cfg);
	sv_diag_free(&d);
}

static void same_process(void **state)
{
	struct serve_diag d;
	struct serve_config *a, *b;

	(void)state;
	a = load_str("models:\n  m:\n    cmd: srv --port ${PORT}\n    ttl: 5\n"
		     "  n:\n    cmd: srv --port ${PORT} -x\n", &d);
	sv_diag_free(&d);
	b = load_str("models:\n  m:\n    cmd: srv --port ${PORT}\n    ttl: 50\n"
		     "  n:\n    cmd: srv --port ${PORT} -y\n", &d);
	sv_diag_free(&d);
	assert_true(serve_model_same_process(&a->models[0], &b->models[0]));
	assert_false(serve_model_same_process(&a->models[1], &b->models[1]));
	serve_config_unref(a);
	serve_config_unref(b);
}

/* pegpu's split keys: parsed, defaults, the planner's flags kept out of cmd. */
static void split_keys(void **state)
{
	struct serve_diag d;
	struct serve_config *cfg = load("split.yaml", &d);
	const struct serve_model *m;
	const struct serve_split *sp;

	(void)state;
	dump_on_error(&d);
	assert_non_null(cfg);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(cfg->n_rpc_servers, 3);	/* two named, one by endpoint */
	assert_string_equal(cfg->rpc_servers[0].id, "egpu");
	assert_string_equal(cfg->rpc_servers[0].endpoint, "192.168.64.2:50052");
	assert_int_equal(cfg->rpc_servers[0].argv.n, 12);
	assert_string_equal(cfg->rpc_servers[0].argv.v[0], "pegpu");
	assert_string_equal(cfg->rpc_servers[0].env.v[0], "GGML_RPC_DEBUG=0");
	assert_int_equal(cfg->rpc_servers[0].free_bytes, 0);
	assert_null(cfg->rpc_servers[1].cmd);
	assert_int_equal(cfg->rpc_servers[1].free_bytes, 6ull << 30);
	assert_string_equal(cfg->rpc_servers[2].endpoint, "127.0.0.1:50060");
	assert_null(cfg->rpc_servers[2].cmd);

	m = model(cfg, "big");
	sp = m->split;
	assert_non_null(sp);
	assert_int_equal(sp->n_rpc, 1);
	assert_int_equal(sp->rpc[0], 0);
	assert_string_equal(sp->model_path, "/models/big.gguf");
	assert_int_equal(sp->host_memory, 12ull << 30);
	assert_int_equal(sp->reserve, 1ull << 30);
	assert_int_equal(sp->ctx, 8192);		/* from cmd's -c */
	assert_true(sp->cmd_has_ctx);
	assert_true(sp->expert_offload);
	assert_int_equal(sp->llama, SERVE_LLAMA_AUTO);

	m = model(cfg, "moe");
	sp = m->split;
	assert_int_equal(sp->n_rpc, 3);
	assert_int_equal(sp->rpc[1], 1);
	assert_int_equal(sp->rpc[2], 2);
	assert_string_equal(sp->model_path, "/models/moe.gguf");	/* --model=PATH */
	assert_string_equal(sp->host_device, "MTL0");
	assert_int_equal(sp->ctx, 4096);
	assert_false(sp->cmd_has_ctx);
	assert_false(sp->expert_offload);
	assert_int_equal(sp->llama, SERVE_LLAMA_LEGACY);
	assert_true(sp->query_timeout == 9);

	assert_null(model(cfg, "small")->split);
	/* big and moe share egpu: one client at a time */
	assert_true(serve_models_share_rpc(cfg, model(cfg, "big"), cfg, model(cfg, "moe")));
	assert_false(serve_models_share_rpc(cfg, model(cfg, "big"), cfg, model(cfg, "small")));
	serve_config_unref(cfg);
	sv_diag_free(&d);
}

static void split_errors(void **state)
{
	static const char text[] =
		"rpcServers:\n"				/* 1 */
		"  a:\n"				/* 2 */
		"    endpoint: nowhere\n"		/* 3 */
		"    free: lots\n"			/* 4 */
		"  b:\n"				/* 5 */
		"    cmd: ggml-rpc-server\n"		/* 6 */
		"  c:\n"				/* 7 */
		"    endpoint: 10.0.0.1:1\n"		/* 8 */
		"    tag: x\n"				/* 9 */
		"models:\n"				/* 10 */
		"  m1:\n"				/* 11 */
		"    cmd: llama-server --port ${PORT} -hf org/model -ngl 99 --rpc=x:1\n"	/* 12 */
		"    split:\n"				/* 13 */
		"      rpc: [c, zzz, c]\n"		/* 14 */
		"      hostMemory: 0\n"			/* 15 */
		"      llama: old\n"			/* 16 */
		"      reserv: 1G\n"			/* 17 */
		"  m2:\n"				/* 18 */
		"    cmd: llama-server --port ${PORT} -m x.gguf -c 100\n"	/* 19 */
		"    split:\n"				/* 20 */
		"      ctx: 200\n"			/* 21 */
		"  m3:\n"				/* 22 */
		"    cmd: llama-server --port ${PORT} -m x.gguf\n"	/* 23 */
		"    split:\n"				/* 24 */
		"      rpc: 10.0.0.1\n";		/* 25 */
	struct serve_diag d;
	struct serve_config *cfg = load_str(text, &d);

	(void)state;
	assert_null(cfg);
	assert_true(sv_diag_has(&d, DIAG_ERROR, 3, "'nowhere' is not an RPC endpoint"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 4, "must be a size like 12G"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 5, "has no endpoint:"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 9, "unknown key 'tag'"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 14, "'zzz' is neither a name under rpcServers"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 14, "'c' is listed twice"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 15, "hostMemory must be more than 0"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 16, "llama"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 17, "unknown key 'reserv'"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 14, "cmd has no -m PATH"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 14, "cmd sets -ngl"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 14, "cmd sets --rpc"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 21, "has no rpc:"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 21, "ctx: 200 differs from cmd's -c 100"));
	assert_true(sv_diag_has(&d, DIAG_ERROR, 25, "'10.0.0.1' is neither"));
	sv_diag_free(&d);
}

/* A reload that changes a split's placement settings restarts the model. */
static void split_same_process(void **state)
{
	struct serve_diag d;
	struct serve_config *a, *b;

	(void)state;
	a = load_str("models:\n  m:\n    cmd: s --port ${PORT} -m x.gguf\n"
		     "    split: {rpc: [\"h:1\"], hostMemory: 4G}\n", &d);
	assert_non_null(a);
	sv_diag_free(&d);
	b = load_str("models:\n  m:\n    cmd: s --port ${PORT} -m x.gguf\n"
		     "    split: {rpc: [\"h:1\"], hostMemory: 8G}\n", &d);
	assert_non_null(b);
	sv_diag_free(&d);
	assert_false(serve_model_same_process(&a->models[0], &b->models[0]));
	assert_true(serve_model_same_process(&a->models[0], &a->models[0]));
	serve_config_unref(a);
	serve_config_unref(b);
}

/* Damaged configs (random bytes changed, removed, inserted) must give
 * diagnostics, never a crash: a cheap fuzz pass over the examples. */
static void mutations(void **state)
{
	static const char *const files[] = { "docs-full.yaml", "misspelled.yaml", "anchors.yaml",
					     "split.yaml", NULL };
	static const char inject[] = "{}[]:-&*!|>'\"#$\n ";
	unsigned seed = 12345;

	(void)state;
	setenv("PEGPU_TEST_HOME", "/home/test", 1);
	setenv("PEGPU_TEST_KEY", "sk-from-env", 1);
	for (const char *const *f = files; *f; f++) {
		char path[512], orig[16384], buf[16384];
		FILE *fp;
		size_t n;

		snprintf(path, sizeof(path), "%s/%s", SERVE_CONFIGS, *f);
		fp = fopen(path, "rb");
		assert_non_null(fp);
		n = fread(orig, 1, sizeof(orig) - 64, fp);
		fclose(fp);
		for (int it = 0; it < 400; it++) {
			size_t len = n;
			struct serve_diag d;
			struct serve_config *cfg;

			memcpy(buf, orig, n);
			for (int k = 1 + (int)(seed % 4); k > 0; k--) {
				size_t pos;

				seed = seed * 1103515245u + 12345u;
				pos = (seed >> 8) % len;
				switch ((seed >> 4) % 3) {
				case 0:
					buf[pos] = inject[(seed >> 16) % (sizeof(inject) - 1)];
					break;
				case 1:
					memmove(buf + pos, buf + pos + 1, len - pos - 1);
					len--;
					break;
				default:
					memmove(buf + pos + 1, buf + pos, len - pos);
					buf[pos] = (char)(seed >> 20);
					len++;
					break;
				}
			}
			sv_diag_init(&d, "mutated.yaml");
			cfg = serve_config_load_string(buf, len, "mutated.yaml", &d);
			assert_true(cfg != NULL || d.n_errors > 0);
			serve_config_unref(cfg);
			sv_diag_free(&d);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minimal),
		cmocka_unit_test(multi),
		cmocka_unit_test(full),
		cmocka_unit_test(routing_groups),
		cmocka_unit_test(anchors),
		cmocka_unit_test(unsupported),
		cmocka_unit_test(misspelled),
		cmocka_unit_test(errors_inline),
		cmocka_unit_test(warnings_inline),
		cmocka_unit_test(same_process),
		cmocka_unit_test(split_keys),
		cmocka_unit_test(split_errors),
		cmocka_unit_test(split_same_process),
		cmocka_unit_test(mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
