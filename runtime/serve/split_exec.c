/* SPDX-License-Identifier: Apache-2.0 */
/* A split model's start, in its child process (see split_exec.h). */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmdline.h"
#include "plan_core.h"
#include "pegpu/ggml_rpc.h"
#include "split_exec.h"
#include "util.h"

#define WAIT_STEP_MS	250

/* One connection attempt within timeout_ms; closed by reset, so a
 * ggml-rpc-server that gets to it later reads an error, never writes to a
 * closed peer (see lib/ggml_rpc.c). */
static bool listening(const char *endpoint, int timeout_ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[256], port[8], err[256];
	bool up = false;

	if (ggml_rpc_parse_endpoint(endpoint, host, port, err, sizeof(err)) ||
	    getaddrinfo(host, port, &hints, &res))
		return false;
	for (struct addrinfo *ai = res; ai && !up; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			up = true;
		} else if (errno == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int soerr = 0;
			socklen_t sl = sizeof(soerr);

			up = poll(&p, 1, timeout_ms) == 1 &&
			     !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) && !soerr;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	freeaddrinfo(res);
	return up;
}

/* A supervised server may be (re)starting: give it the health timeout.
 * Nobody restarts one without a cmd: it is there or not. */
static int wait_servers(const struct split_exec *x)
{
	const struct serve_split *sp = x->sm->split;
	uint64_t deadline = sv_now_ms() + (uint64_t)x->cfg->health_check_timeout * 1000u;

	for (size_t i = 0; i < sp->n_rpc; i++) {
		const struct serve_rpc_server *r = &x->cfg->rpc_servers[sp->rpc[i]];
		bool said = false;

		while (!listening(r->endpoint, 1000)) {
			if (!r->cmd) {
				fprintf(stderr, "pegpu serve: model '%s': RPC server %s is not listening; start ggml-rpc-server there, or give it a cmd: under rpcServers: so that pegpu serve runs it\n",
					x->sm->id, r->endpoint);
				return -1;
			}
			if (sv_now_ms() >= deadline) {
				fprintf(stderr, "pegpu serve: model '%s': RPC server '%s' (%s) is not listening after %d s; see its [rpc %s] lines in GET /logs\n",
					x->sm->id, r->id, r->endpoint, x->cfg->health_check_timeout,
					r->id);
				return -1;
			}
			if (!said)
				printf("pegpu serve: waiting for RPC server '%s' at %s\n", r->id, r->endpoint);
			said = true;
			fflush(stdout);
			usleep(WAIT_STEP_MS * 1000);
		}
	}
	return 0;
}

static void fill_opts(const struct split_exec *x, char *const *argv, struct plan_opts *o)
{
	const struct serve_split *sp = x->sm->split;

	plan_opts_init(o);
	o->model = sp->model_path;
	if (sp->host_memory) {
		o->host_mem = sp->host_memory;
		o->host_mem_set = true;
	}
	o->reserve = sp->reserve;
	o->ctx = sp->ctx;
	o->host_device = sp->host_device;
	o->no_expert_offload = !sp->expert_offload;
	o->timeout_s = sp->query_timeout;
	o->llama = sp->llama == SERVE_LLAMA_CURRENT ? PLAN_LLAMA_CURRENT :
		   sp->llama == SERVE_LLAMA_LEGACY ? PLAN_LLAMA_LEGACY : PLAN_LLAMA_AUTO;
	o->llama_server = argv[0];
}

/*
 * The words that run llama-server: cmd up to the first word named
 * llama-server*, so that a wrapper (env, nice, a chroot or container
 * script) is probed as it will run; all of cmd's first word otherwise.
 */
static char **llama_prefix(char *const *argv)
{
	size_t k = 0, n = 0;
	char **pre;

	for (size_t i = 0; argv[i]; i++) {
		const char *b = strrchr(argv[i], '/');

		if (!strncmp(b ? b + 1 : argv[i], "llama-server", 12)) {
			k = i;
			break;
		}
	}
	pre = sv_calloc(k + 2, sizeof(*pre));
	for (n = 0; n <= k; n++)
		pre[n] = argv[n];
	return pre;
}

char *const *sv_split_prepare(void *arg, char *const *argv)
{
	const struct split_exec *x = arg;
	const struct serve_split *sp = x->sm->split;
	struct gguf_model_summary m = { 0 };
	struct split_plan p = { 0 };
	struct sv_strv out = { 0 };
	struct plan_opts o;
	char err[SPLIT_ERR_LEN], *line;

	fill_opts(x, argv, &o);
	o.llama_prefix = llama_prefix(argv);
	o.note = stdout;
	for (size_t i = 0; i < sp->n_rpc; i++) {
		const struct serve_rpc_server *r = &x->cfg->rpc_servers[sp->rpc[i]];
		char spec[SPLIT_ENDPOINT_LEN + 32];

		if (r->free_bytes)
			snprintf(spec, sizeof(spec), "%s=%" PRIu64, r->endpoint, r->free_bytes);
		else
			snprintf(spec, sizeof(spec), "%s", r->endpoint);
		if (plan_add_rpc(&o, spec, err, sizeof(err))) {
			fprintf(stderr, "pegpu serve: model '%s': %s\n", x->sm->id, err);
			return NULL;
		}
	}
	if (wait_servers(x))
		return NULL;
	if (plan_compute(&o, &m, &p, err, sizeof(err))) {
		fprintf(stderr, "pegpu serve: model '%s': cannot place it on the host and the eGPU: %s\n",
			x->sm->id, err);
		return NULL;
	}
	printf("pegpu serve: the split of model '%s':\n", x->sm->id);
	plan_print_table(stdout, &o, &m, &p);
	for (size_t i = 0; argv[i]; i++)
		sv_strv_push(&out, argv[i]);
	for (size_t i = 0; i < p.argc; i++) {
		/* cmd's own -c wins; the plan was made for it */
		if (sp->cmd_has_ctx && !strcmp(p.argv[i], "-c") && i + 1 < p.argc) {
			i++;
			continue;
		}
		sv_strv_push(&out, p.argv[i]);
	}
	line = sv_cmdline_join(out.v);
	printf("pegpu serve: running %s\n", line);
	fflush(stdout);
	free(line);
	split_plan_free(&p);
	gguf_model_summary_free(&m);
	return out.v;	/* the process execs or exits: nothing to free */
}
