/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The split plan as `pegpu plan` prints it and `pegpu serve` uses it at a
 * split model's start: options, which -ngl rule the llama.cpp build
 * follows, the RPC servers' free memory, the planner (lib/split.c), and
 * the table and JSON.  docs/model-split.md explains the plan.
 */
#ifndef PEGPU_PLAN_CORE_H
#define PEGPU_PLAN_CORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pegpu/ggml_rpc.h"
#include "pegpu/gguf.h"
#include "pegpu/split.h"

#define PLAN_DEFAULT_RESERVE	(512ull << 20)
#define PLAN_DEFAULT_CTX	4096u
#define PLAN_DEFAULT_TIMEOUT_S	5.0
/* llama-server --help initialises its backends first: CUDA can take seconds */
#define PLAN_PROBE_TIMEOUT_MS	10000

/*
 * Which llama.cpp gets the arguments: CURRENT has -ngl count the output
 * layer first (llama.cpp since 2025-12-17, #18148), LEGACY only the
 * repeating layers (SPLIT_NGL_LAYERS_ONLY).  AUTO probes llama_server.
 */
enum plan_llama { PLAN_LLAMA_AUTO = 0, PLAN_LLAMA_CURRENT, PLAN_LLAMA_LEGACY };

/* How plan_compute() came by the rule. */
enum plan_llama_how {
	PLAN_LLAMA_GIVEN = 0,		/* CURRENT or LEGACY in the options */
	PLAN_LLAMA_PROBED,		/* AUTO: from llama_server --help */
	PLAN_LLAMA_ASSUMED,		/* AUTO without llama_server: CURRENT */
};

struct plan_rpc {
	char endpoint[SPLIT_ENDPOINT_LEN];	/* host:port */
	bool has_free;				/* free_bytes given: no query */
	uint64_t free_bytes;
	struct ggml_rpc_info info;		/* the server's answer, when queried */
};

struct plan_opts {
	const char *model;		/* .gguf path */
	uint64_t host_mem;		/* bytes for weights + KV on the host */
	bool host_mem_set;		/* false: MemAvailable now (plan_compute sets host_mem) */
	uint64_t reserve;		/* kept free on each RPC device */
	uint32_t ctx;			/* 0: the model's, at most PLAN_DEFAULT_CTX */
	const char *host_device;	/* NULL: CPU */
	bool no_expert_offload;
	double timeout_s;		/* per RPC query */
	enum plan_llama llama;		/* which -ngl rule; plan_compute resolves AUTO */
	const char *llama_server;	/* binary to probe when AUTO (PATH is searched); NULL: CURRENT */
	/* or, when set, the words that run it (a wrapper and its arguments,
	 * ending with llama-server): probed as PREFIX... --help */
	char *const *llama_prefix;
	struct plan_rpc rpc[SPLIT_MAX_RPC_DEVS];
	size_t n_rpc;
	/* non-fatal notes, one line each ("pegpu plan: note: ..."); NULL: dropped */
	FILE *note;
	enum plan_llama_how llama_how;	/* set by plan_compute */
};

/* Print a message into err (errlen bytes; NULL is fine), for this library's callers. */
void plan_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Defaults: reserve, timeout, AUTO, notes to stderr, MTL0 host on __APPLE__. */
void plan_opts_init(struct plan_opts *o);

/* "12G", "1.5T", "512M", "4096" (K/M/G/T are powers of 1024): bytes; -1 if bad. */
int plan_parse_size(const char *s, uint64_t *out);

/* Add an RPC server, "host:port[=FREE]"; 0, or -1 with a message. */
int plan_add_rpc(struct plan_opts *o, const char *arg, char *err, size_t errlen);

/*
 * Probe a llama-server (or llama-bench) binary: run `BIN --help` (PATH is
 * searched, no shell, stdin /dev/null, killed with its process group after
 * PLAN_PROBE_TIMEOUT_MS) and look for the --fit options, which came two
 * days before the -ngl change: present -> PLAN_LLAMA_CURRENT, absent ->
 * PLAN_LLAMA_LEGACY.  -1 with a message when it cannot be run or prints
 * no llama.cpp help.  The caller must not ignore SIGCHLD.
 */
int plan_probe_llama(const char *bin, enum plan_llama *out, char *err, size_t errlen);
/* The same with a timeout; *is_bench (may be NULL) says it looked like llama-bench. */
int plan_probe_llama_timeout(const char *bin, int timeout_ms, enum plan_llama *out,
			     bool *is_bench, char *err, size_t errlen);
/* The same for a command prefix (NULL-terminated): PREFIX... --help. */
int plan_probe_llama_argv(char *const *prefix, int timeout_ms, enum plan_llama *out,
			  bool *is_bench, char *err, size_t errlen);

/*
 * Resolve AUTO, read the GGUF, query RPC servers without a given free
 * size, plan.  0, or -1 with a one-line message in err (what failed, what
 * to do).  m and p are filled on success and zeroed on failure; free them
 * with gguf_model_summary_free() and split_plan_free() either way.  Notes
 * (ctx beyond the training context, the probe's result) go to o->note.
 */
int plan_compute(struct plan_opts *o, struct gguf_model_summary *m, struct split_plan *p,
		 char *err, size_t errlen);

/* The table, a summary line and the llama-server arguments. */
void plan_print_table(FILE *f, const struct plan_opts *o, const struct gguf_model_summary *m,
		      const struct split_plan *p);
json_t *plan_to_json(const struct plan_opts *o, const struct gguf_model_summary *m,
		     const struct split_plan *p);

/* "output-first", "layers-only" */
const char *plan_ngl_rule_name(enum split_ngl_rule r);

#endif /* PEGPU_PLAN_CORE_H */
