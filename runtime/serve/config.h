/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu serve's configuration: llama-swap's YAML format (the subset listed
 * in docs/serve.md), loaded into plain structs with every macro expanded,
 * every default applied and every cross reference checked.  A config object
 * is immutable once loaded and reference counted, so a SIGHUP reload can
 * swap in a new one while requests that started under the old one finish.
 */
#ifndef PEGPU_SERVE_CONFIG_H
#define PEGPU_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "diag.h"
#include "util.h"

/* llama-swap's defaults, kept so that its configs behave the same here. */
#define SERVE_DEFAULT_HEALTH_TIMEOUT	120
#define SERVE_MIN_HEALTH_TIMEOUT	15
#define SERVE_DEFAULT_START_PORT	5800
#define SERVE_DEFAULT_UNLOAD_TIMEOUT	10
#define SERVE_DEFAULT_CONCURRENCY	10
#define SERVE_DEFAULT_CHECK_ENDPOINT	"/health"
#define SERVE_DEFAULT_PROXY		"http://localhost:${PORT}"
#define SERVE_DEFAULT_GROUP		"(default)"

enum serve_log_to {
	SERVE_LOG_PROXY,	/* our own log lines on stdout (llama-swap's default) */
	SERVE_LOG_UPSTREAM,	/* the model servers' output on stdout */
	SERVE_LOG_BOTH,
	SERVE_LOG_NONE,
};

enum serve_log_level {
	SERVE_LOG_DEBUG,
	SERVE_LOG_INFO,
	SERVE_LOG_WARN,
	SERVE_LOG_ERROR,
};

/*
 * pegpu's own keys (docs/serve.md, "Splitting a model"): an RPC server is
 * the eGPU's ggml-rpc-server, named under rpcServers: or given by its
 * endpoint in a model's split.rpc.  With a cmd, pegpu serve runs it, keeps
 * it running and restarts what depends on it when it dies.
 */
struct serve_rpc_server {
	char *id;			/* the name, or the endpoint when unnamed */
	int line;
	char *endpoint;			/* host:port, as --rpc takes it */
	char *cmd;			/* NULL: not supervised (someone else runs it) */
	struct sv_strv argv;
	struct sv_strv env;
	uint64_t free_bytes;		/* 0: ask the server */
};

enum serve_split_llama {
	SERVE_LLAMA_AUTO,		/* ask the model's llama-server (--help) */
	SERVE_LLAMA_CURRENT,		/* -ngl counts the output layer (Dec 2025 on) */
	SERVE_LLAMA_LEGACY,		/* -ngl counts repeating layers only */
};

struct serve_split {
	size_t *rpc;			/* indexes into serve_config.rpc_servers */
	size_t n_rpc;
	char *model_path;		/* the GGUF: cmd's -m/--model */
	uint64_t host_memory;		/* 0: what is available at start */
	char *host_device;		/* NULL: the CPU */
	uint32_t ctx;			/* 0: cmd's -c, else the planner's default */
	bool cmd_has_ctx;		/* cmd sets -c itself: do not add one */
	uint64_t reserve;
	bool expert_offload;
	enum serve_split_llama llama;
	double query_timeout;		/* seconds, per RPC query */
};

struct serve_model {
	char *id;
	int line;			/* of the model's key, for messages */
	char *cmd;			/* comments stripped, macros expanded */
	struct sv_strv argv;		/* cmd split into words */
	char *cmd_stop;			/* NULL if none; may contain ${PID} */
	char *proxy;			/* http://host:port[/base] */
	char *proxy_host;		/* "localhost" is stored as 127.0.0.1 */
	int proxy_port;
	char *proxy_base;		/* "" or a path without trailing '/' */
	char *check_endpoint;		/* a path, or NULL for "none" */
	int ttl;			/* seconds idle before unloading; 0 = never */
	int unload_timeout;		/* seconds from SIGTERM/cmdStop to SIGKILL */
	struct sv_strv env;		/* "NAME=value" */
	struct sv_strv aliases;
	char *use_model_name;		/* NULL: forward the name as requested */
	bool unlisted;
	int concurrency_limit;		/* effective (> 0) */
	char *name, *description;	/* NULL if not set */
	json_t *metadata;		/* object or NULL, for /v1/models */
	struct sv_strv strip_params;	/* filters.stripParams */
	json_t *set_params;		/* filters.setParams: object or NULL */
	size_t group;			/* index into serve_config.groups */
	int port;			/* the ${PORT} given to it, 0 if none */
	struct serve_split *split;	/* NULL: runs as its cmd says */
};

struct serve_group {
	char *id;
	int line;
	bool swap;		/* members replace each other */
	bool exclusive;		/* starting a member stops other groups' models */
	bool persistent;	/* other groups never stop this group's models */
};

struct serve_config {
	unsigned refs;
	char *path;
	struct serve_model *models;	/* sorted by id */
	size_t n_models;
	struct serve_group *groups;	/* the implicit default group comes last */
	size_t n_groups;
	struct sv_strv api_keys;
	struct sv_strv preload;		/* model ids */
	struct serve_rpc_server *rpc_servers;
	size_t n_rpc_servers;
	int health_check_timeout;
	int start_port;
	int global_ttl;
	int unload_timeout;
	bool include_aliases_in_list;
	enum serve_log_to log_to_stdout;
	enum serve_log_level log_level;
};

/*
 * Load a config.  Problems go to diag (errors and warnings, each with its
 * line).  Returns a config with one reference, or NULL when diag holds at
 * least one error.
 */
struct serve_config *serve_config_load_file(const char *path, struct serve_diag *diag);
struct serve_config *serve_config_load_string(const char *text, size_t len, const char *name,
					      struct serve_diag *diag);

struct serve_config *serve_config_ref(struct serve_config *cfg);
void serve_config_unref(struct serve_config *cfg);

/* Model by id, then by alias; NULL if neither. */
const struct serve_model *serve_config_find(const struct serve_config *cfg, const char *name);
/* Index of model id, or -1. */
long serve_config_index(const struct serve_config *cfg, const char *id);

/* True when two model entries run the same process the same way, so a
 * reload may keep a running instance. */
bool serve_model_same_process(const struct serve_model *a, const struct serve_model *b);

/* Whether models a and b (possibly of different configs) use an RPC
 * server in common: it serves one client, so they never run together. */
bool serve_models_share_rpc(const struct serve_config *ca, const struct serve_model *a,
			    const struct serve_config *cb, const struct serve_model *b);

#endif /* PEGPU_SERVE_CONFIG_H */
