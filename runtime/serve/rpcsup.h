/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Supervised RPC servers: the rpcServers: entries with a cmd (the eGPU's
 * ggml-rpc-server, usually run in the VM through `pegpu ssh`).  pegpu serve
 * starts them with the daemon and keeps them running:
 *
 *   - a server that exits on its own is restarted after a back-off (1 s,
 *     doubling while it keeps dying young, at most 30 s);
 *   - the split models that were using it are stopped at once, their
 *     waiting requests failed with a message that names the server, and
 *     started again once the server is back (their start waits until it
 *     listens), so both sides recover without a client doing anything;
 *   - a reload starts new servers, stops removed ones and restarts changed
 *     ones; shutdown stops them after the models that use them.
 *
 * Each runs in its own process group with the daemon's token, recorded in
 * the state directory like a model, so no server outlives a killed daemon.
 */
#ifndef PEGPU_SERVE_RPCSUP_H
#define PEGPU_SERVE_RPCSUP_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

struct daemon;

/* Match the running servers to d->cfg (startup and every reload). */
void sv_rpcsup_sync(struct daemon *d);
/* SIGCHLD: true if pid was one of ours (handled). */
bool sv_rpcsup_reaped(struct daemon *d, pid_t pid, int status);
/* Shutdown: stop every server (SIGTERM, SIGKILL after unloadTimeout). */
void sv_rpcsup_stop_all(struct daemon *d);
bool sv_rpcsup_all_stopped(const struct daemon *d);
void sv_rpcsup_kill_all(struct daemon *d, int sig);
/* Free what is left (after the loop ended). */
void sv_rpcsup_free(struct daemon *d);
/* For /running: [{name, endpoint, state, pid, restarts}] */
json_t *sv_rpcsup_json(const struct daemon *d);

#endif /* PEGPU_SERVE_RPCSUP_H */
