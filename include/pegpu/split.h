/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split planner: which of a model's layers go to the eGPU (llama.cpp RPC
 * devices) and which stay on the host, and the llama-server arguments that
 * make llama.cpp do exactly that.  docs/model-split.md explains the policy
 * and the llama.cpp placement rules it relies on.
 */
#ifndef PEGPU_SPLIT_H
#define PEGPU_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pegpu/gguf.h"

#define SPLIT_MAX_RPC_DEVS	16	/* llama.cpp's GGML_RPC_MAX_SERVERS */
#define SPLIT_ENDPOINT_LEN	128
#define SPLIT_ERR_LEN		512

/* One device of an RPC server (a server may expose several). */
struct split_rpc_dev {
	char endpoint[SPLIT_ENDPOINT_LEN];	/* host:port, as given to --rpc */
	uint32_t index;				/* device number on that server */
	uint64_t free_bytes;
	uint64_t reserve_bytes;			/* kept free: compute buffers */
};

/*
 * What llama.cpp's -ngl N means.  There are n_layer + 1 slots: the
 * repeating layers, then the output layer.
 */
enum split_ngl_rule {
	/*
	 * Since llama.cpp #18148 (2025-12-17): the last N slots go to the
	 * devices, so the output layer is the first one offloaded.
	 */
	SPLIT_NGL_OUTPUT_FIRST = 0,
	/*
	 * Before: N <= n_layer offloads the last N repeating layers and keeps
	 * the output layer on the CPU; only N = n_layer + 1 offloads it too.
	 * Such builds also lack --fit (added 2025-12-15) and, before October
	 * 2025, named RPC devices RPC[host:port], not RPC0: the arguments
	 * then name no devices (see split_plan()).
	 */
	SPLIT_NGL_LAYERS_ONLY,
};

struct split_request {
	const struct gguf_model_summary *model;
	uint32_t ctx;			/* context length (tokens) the KV cache holds */
	uint64_t host_budget;		/* bytes the host may use: weights + KV */
	/*
	 * NULL: the host computes on the CPU, which llama.cpp never puts in
	 * its device list (the Linux rig).  Otherwise the host's own GPU
	 * device name, e.g. "MTL0" on a Mac: it then joins the device list,
	 * last.
	 */
	const char *host_device;
	/* Every device of every server, grouped by server in --rpc order. */
	const struct split_rpc_dev *devs;
	size_t n_devs;
	bool no_expert_offload;		/* never move MoE experts to the host */
	enum split_ngl_rule ngl_rule;	/* of the llama.cpp that gets the arguments */
};

struct split_dev_plan {
	char name[32];			/* "RPC0", "CPU", "MTL0"; "-" when unused */
	char endpoint[SPLIT_ENDPOINT_LEN];	/* "" for the host */
	bool is_host;
	bool used;			/* named in the arguments */
	uint32_t first_layer;		/* layers [first_layer, first_layer + n_layers) */
	uint32_t n_layers;
	bool has_output;		/* holds the output layer too */
	bool has_input;			/* token_embd: always the host */
	uint64_t weight_bytes;		/* layers + output/input + moved experts */
	uint64_t expert_bytes;		/* of which MoE experts moved here (host) */
	uint64_t kv_bytes;
	uint64_t total_bytes;		/* weight_bytes + kv_bytes */
	uint64_t budget_bytes;		/* host: the budget; RPC: free - reserve */
};

struct split_plan {
	/* In layer order: host first when it is the CPU, else RPC first. */
	struct split_dev_plan dev[SPLIT_MAX_RPC_DEVS + 1];
	size_t n_dev;
	uint32_t n_layer;
	uint32_t gpu_layers;		/* repeating layers on RPC devices */
	uint32_t ngl;			/* the -ngl value */
	/* MoE experts of layers [expert_first, expert_first + expert_count)
	 * stay on the host although their layers are on RPC devices. */
	uint32_t expert_first, expert_count;
	uint32_t ctx;
	enum split_ngl_rule ngl_rule;	/* the request's */
	char **argv;			/* llama-server arguments, NULL-terminated */
	size_t argc;
};

/*
 * Plan; 0 on success.  -ENOSPC when the model cannot fit (err says how
 * many bytes are missing), -EINVAL on a bad request, -ENOMEM.
 *
 * With SPLIT_NGL_LAYERS_ONLY the arguments have no --fit and no --device:
 * llama.cpp's default device list (the RPC devices in --rpc order, then
 * local GPUs) is used, and whenever a server is named, -ts gives each of
 * its devices a share (0 for unused ones; local GPUs beyond the listed
 * shares get none), so the placement holds whatever that build calls its
 * devices.  On a GPU host the host device must be the only local GPU.
 */
int split_plan(const struct split_request *req, struct split_plan *out, char *err,
	       size_t errlen);
void split_plan_free(struct split_plan *p);

/* The arguments as one line for a POSIX shell (quoted); malloc'd. */
char *split_args_shell(const struct split_plan *p);

#endif /* PEGPU_SPLIT_H */
