/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu serve: the model manager and OpenAI-compatible proxy (runtime/serve/,
 * docs/serve.md).  This file only reads the command line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "serve/cmdline.h"
#include "serve/config.h"
#include "serve/daemon.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pegpu serve [--config FILE] [--listen HOST:PORT] [--state-dir DIR]\n"
		"                   [--max-body-size BYTES]\n"
		"       pegpu serve --check [--config FILE]\n"
		"\n"
		"Serve local models through an OpenAI-compatible API, starting and stopping\n"
		"their servers on demand.  The config is llama-swap's YAML format\n"
		"(docs/serve.md lists what is supported).\n"
		"\n"
		"  -c, --config FILE       config file (default: config.yaml)\n"
		"  -l, --listen HOST:PORT  address to serve on (default: %s)\n"
		"      --state-dir DIR     pid lock and process records\n"
		"                          (default: $PEGPU_HOME/serve or ~/.pegpu/serve)\n"
		"      --max-body-size N   largest request body in bytes (default: %u)\n"
		"      --check             check the config, print the models it defines, exit\n"
		"\n"
		"Signals: SIGHUP reloads the config, SIGTERM/SIGINT stop every model and exit.\n",
		SERVE_DEFAULT_LISTEN, SERVE_DEFAULT_MAX_BODY);
}

/* --check: every diagnostic, then what each model would run. */
static int check(const char *path)
{
	struct serve_diag dg;
	struct serve_config *cfg;

	sv_diag_init(&dg, path);
	cfg = serve_config_load_file(path, &dg);
	sv_diag_print(&dg, stderr);
	if (!cfg) {
		fprintf(stderr, "%s: %u error%s, %u warning%s\n", path, dg.n_errors,
			dg.n_errors == 1 ? "" : "s", dg.n_warnings, dg.n_warnings == 1 ? "" : "s");
		sv_diag_free(&dg);
		return PEGPU_EXIT_FAIL;
	}
	printf("%s: %zu model%s, %u warning%s\n", path, cfg->n_models, cfg->n_models == 1 ? "" : "s",
	       dg.n_warnings, dg.n_warnings == 1 ? "" : "s");
	for (size_t i = 0; i < cfg->n_models; i++) {
		const struct serve_model *sm = &cfg->models[i];
		const struct serve_group *g = &cfg->groups[sm->group];
		char *cmd = sv_cmdline_join(sm->argv.v);

		printf("\n%s\n  cmd:   %s\n  proxy: %s  check: %s  ttl: %d s  group: %s%s%s%s\n", sm->id,
		       cmd, sm->proxy, sm->check_endpoint ? sm->check_endpoint : "none", sm->ttl, g->id,
		       g->swap ? " (swap" : " (no swap", g->exclusive ? ", exclusive" : "",
		       g->persistent ? ", persistent)" : ")");
		free(cmd);
	}
	serve_config_unref(cfg);
	sv_diag_free(&dg);
	return PEGPU_EXIT_OK;
}

static int serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "max-body-size", required_argument, NULL, 'b' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_opts o = { .config_path = "config.yaml" };
	bool only_check = false;
	char *end;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:l:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config_path = optarg;
			break;
		case 'l':
			o.listen = optarg;
			break;
		case 's':
			o.state_dir = optarg;
			break;
		case 'b':
			o.max_body = strtoul(optarg, &end, 10);
			if (*end || !o.max_body) {
				fprintf(stderr, "pegpu serve: --max-body-size wants a number of bytes, not '%s'\n",
					optarg);
				return PEGPU_EXIT_USAGE;
			}
			break;
		case 'k':
			only_check = true;
			break;
		case 'h':
			usage(stdout);
			return PEGPU_EXIT_OK;
		default:
			usage(stderr);
			return PEGPU_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pegpu serve: unexpected argument '%s'\n\n", argv[optind]);
		usage(stderr);
		return PEGPU_EXIT_USAGE;
	}
	if (only_check)
		return check(o.config_path);
	return serve_run(&o) ? PEGPU_EXIT_FAIL : PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_serve = {
	.name = "serve",
	.summary = "serve local models through an OpenAI-compatible API (llama-swap config)",
	.run = serve_main,
};
