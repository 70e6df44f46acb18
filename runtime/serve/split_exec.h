/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A split model's start, in its own child process (sv_spawn's prepare
 * hook): wait for its RPC servers to listen, plan the split with the free
 * memory they report now, print the plan to the model's log, and return
 * llama-server's argv with the planner's arguments appended.  Doing this in
 * the child keeps the daemon's loop free while a slow RPC query runs, and a
 * plan that cannot be made fails the start with its reason in the log.
 */
#ifndef PEGPU_SERVE_SPLIT_EXEC_H
#define PEGPU_SERVE_SPLIT_EXEC_H

#include "config.h"

struct split_exec {
	const struct serve_config *cfg;
	const struct serve_model *sm;
};

/* sv_spawn_prepare_fn for split models; arg is a struct split_exec. */
char *const *sv_split_prepare(void *arg, char *const *argv);

#endif /* PEGPU_SERVE_SPLIT_EXEC_H */
