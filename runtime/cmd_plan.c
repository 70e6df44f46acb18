/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu plan: read a GGUF model, ask each RPC server (the eGPU's
 * ggml-rpc-server) how much memory it has free, and print which layers go
 * where and the llama-server arguments that place them so.  This file is
 * the command line; the plan itself is runtime/plan/ (shared with pegpu
 * serve) and lib/split.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plan_core.h"

struct cli_opts {
	struct plan_opts plan;
	bool json;
};

static void plan_usage(FILE *f)
{
	fprintf(f,
"usage: pegpu plan MODEL.gguf [--host-mem SIZE] [--rpc HOST:PORT[=FREE]]...\n"
"                  [--ctx N] [--reserve SIZE] [--host-device NAME]\n"
"                  [--llama-server PATH | --llama current|legacy] [--json]\n"
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
"  --llama-server PATH the llama-server that will get the arguments: its\n"
"                      --help tells which -ngl rule it follows\n"
"  --llama RULE        current, legacy or auto (default auto: probe\n"
"                      --llama-server, else assume current).  Since llama.cpp\n"
"                      of 2025-12-17, -ngl N offloads the output layer first;\n"
"                      before (legacy), only N repeating layers, output last\n"
"  --timeout SECONDS   for each RPC query (default %.0f)\n"
"  --json              print the plan as JSON\n"
"\n"
"SIZE is bytes or a number with K, M, G or T (powers of 1024): 12G, 1.5T.\n"
"\n"
"Example: plan for 12 GiB of host memory and the eGPU in the VM, then start\n"
"llama-server with the arguments printed on the last line:\n"
"  pegpu plan model.gguf --host-mem 12G --rpc 192.168.64.2:50052 \\\n"
"      --llama-server $(command -v llama-server)\n"
"  llama-server -m model.gguf <the printed arguments>\n"
"\n"
"Exit status: 0 planned, 1 the model does not fit or a query failed,\n"
"2 bad command line.\n",
		PLAN_DEFAULT_CTX,
#ifdef __APPLE__
		"MTL0",
#else
		"cpu",
#endif
		PLAN_DEFAULT_TIMEOUT_S);
}

static int parse_plan_opts(int argc, char **argv, struct cli_opts *co)
{
	enum { O_HOST = 256, O_RPC, O_CTX, O_RESERVE, O_HOSTDEV, O_NOEXP, O_TIMEOUT, O_JSON,
	       O_LLAMA, O_LLAMA_SERVER };
	static const struct option lo[] = {
		{ "host-mem", required_argument, NULL, O_HOST },
		{ "rpc", required_argument, NULL, O_RPC },
		{ "ctx", required_argument, NULL, O_CTX },
		{ "reserve", required_argument, NULL, O_RESERVE },
		{ "host-device", required_argument, NULL, O_HOSTDEV },
		{ "no-expert-offload", no_argument, NULL, O_NOEXP },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "json", no_argument, NULL, O_JSON },
		{ "llama", required_argument, NULL, O_LLAMA },
		{ "llama-server", required_argument, NULL, O_LLAMA_SERVER },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct plan_opts *o = &co->plan;
	char err[SPLIT_ERR_LEN];
	int c;

	memset(co, 0, sizeof(*co));
	plan_opts_init(o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'h':
			plan_usage(stdout);
			return 1;
		case O_HOST:
			if (plan_parse_size(optarg, &o->host_mem)) {
				fprintf(stderr, "pegpu plan: --host-mem: '%s' is not a size like 12G\n",
					optarg);
				return -1;
			}
			o->host_mem_set = true;
			break;
		case O_RPC:
			if (plan_add_rpc(o, optarg, err, sizeof(err))) {
				fprintf(stderr, "pegpu plan: --rpc: %s\n", err);
				return -1;
			}
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
			if (plan_parse_size(optarg, &o->reserve)) {
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
			co->json = true;
			break;
		case O_LLAMA:
			if (!strcmp(optarg, "current")) {
				o->llama = PLAN_LLAMA_CURRENT;
			} else if (!strcmp(optarg, "legacy")) {
				o->llama = PLAN_LLAMA_LEGACY;
			} else if (!strcmp(optarg, "auto")) {
				o->llama = PLAN_LLAMA_AUTO;
			} else {
				fprintf(stderr, "pegpu plan: --llama: '%s' is not current, legacy or "
					"auto\n", optarg);
				return -1;
			}
			break;
		case O_LLAMA_SERVER:
			if (!*optarg) {
				fprintf(stderr, "pegpu plan: --llama-server: give the path of "
					"llama-server\n");
				return -1;
			}
			o->llama_server = optarg;
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

static int plan_run(int argc, char **argv)
{
	struct cli_opts co;
	struct gguf_model_summary m;
	struct split_plan p;
	char err[SPLIT_ERR_LEN];
	int ret = PEGPU_EXIT_FAIL, r;

	r = parse_plan_opts(argc, argv, &co);
	if (r)
		return r > 0 ? PEGPU_EXIT_OK : PEGPU_EXIT_USAGE;
	if (plan_compute(&co.plan, &m, &p, err, sizeof(err))) {
		fprintf(stderr, "pegpu plan: %s\n", err);
		goto out;
	}
	if (co.json) {
		json_t *j = plan_to_json(&co.plan, &m, &p);

		if (!j || json_dumpf(j, stdout, JSON_INDENT(2))) {
			fprintf(stderr, "pegpu plan: cannot write JSON\n");
			json_decref(j);
			goto out;
		}
		putchar('\n');
		json_decref(j);
	} else {
		plan_print_table(stdout, &co.plan, &m, &p);
	}
	ret = PEGPU_EXIT_OK;
out:
	split_plan_free(&p);
	gguf_model_summary_free(&m);
	return ret;
}

const struct pegpu_cmd pegpu_cmd_plan = {
	.name = "plan",
	.summary = "plan a model's split between the host and the eGPU (llama.cpp RPC)",
	.run = plan_run,
};
