/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pegpu serve's state directory: a lock file with the daemon's pid (one
 * daemon per directory) and one record per model process group it started.
 *
 * No orphans after the daemon is killed, two layers:
 *   1. On Linux every model process gets PR_SET_PDEATHSIG(SIGTERM): when
 *      the daemon dies, even by SIGKILL, the kernel stops its direct
 *      children at once, freeing GPU memory and ports without waiting for
 *      a restart.  It only reaches direct children, and macOS has no such
 *      call.
 *   2. At startup the daemon sweeps the records left by its predecessor:
 *      every process still in a recorded process group is stopped
 *      (SIGTERM, then SIGKILL), which catches grandchildren (a wrapper
 *      script's server) and macOS.  On Linux a process is only touched if
 *      its environment carries the recorded PEGPU_SERVE_TOKEN, so a
 *      process group id reused by an unrelated program is left alone.
 */
#ifndef PEGPU_SERVE_STATEDIR_H
#define PEGPU_SERVE_STATEDIR_H

#include <sys/types.h>

#define SERVE_TOKEN_ENV "PEGPU_SERVE_TOKEN"

struct statedir;

/* Create dir if needed and lock it; NULL with *err set (caller frees). */
struct statedir *sv_statedir_open(const char *dir, char **err);
void sv_statedir_close(struct statedir *sd);
const char *sv_statedir_path(const struct statedir *sd);

/*
 * Stop what a previous daemon left running.  log is called once per group
 * swept.  Returns the number of processes signalled.
 */
int sv_statedir_sweep(struct statedir *sd, void (*log)(void *arg, const char *msg), void *arg);

void sv_statedir_record(struct statedir *sd, pid_t pgid, const char *token, const char *model);
void sv_statedir_forget(struct statedir *sd, pid_t pgid);

/* A fresh random token (32 hex digits; caller frees). */
char *sv_statedir_new_token(void);

#endif /* PEGPU_SERVE_STATEDIR_H */
