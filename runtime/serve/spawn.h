/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting the daemon's children: model servers, cmdStop commands and
 * supervised RPC servers, each in its own process group.
 */
#ifndef PEGPU_SERVE_SPAWN_H
#define PEGPU_SERVE_SPAWN_H

#include <sys/types.h>

#include "util.h"

/*
 * Runs in the child before exec, after the daemon has already been told
 * that the start worked, so it may take its time (plan a split, wait for a
 * server).  Returns the argv to exec, or NULL once it has printed why not to
 * stderr (the log); the child then exits with status 1.
 */
typedef char *const *(*sv_spawn_prepare_fn)(void *arg, char *const *argv);

/*
 * fork + exec argv in a new process group with env added to ours.  Output
 * goes to out_fd.  Returns the pid, or -1 with *err set when the program
 * could not be started at all (exec's error comes back through a
 * close-on-exec pipe, so "no such file" is reported here, not as an exit).
 * With prepare, a failing exec is reported on the child's stderr and its
 * exit status 127 instead.
 */
pid_t sv_spawn(char *const *argv, const struct sv_strv *env, const char *token, int out_fd,
	       sv_spawn_prepare_fn prepare, void *arg, char **err);

#endif /* PEGPU_SERVE_SPAWN_H */
