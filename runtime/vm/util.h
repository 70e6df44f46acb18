/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by the VM runtime: string vectors (argv), files,
 * processes and loopback ports.  Nothing here knows about instances.
 */
#ifndef PEGPU_VM_UTIL_H
#define PEGPU_VM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A growable NULL-terminated vector of owned strings (argv, lists). */
struct strv {
	char **v;
	size_t n, cap;
};

void strv_init(struct strv *s);
void strv_free(struct strv *s);
int strv_add(struct strv *s, const char *str);
int strv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The vector joined by sep (one allocation, caller frees). */
char *strv_join(const struct strv *s, const char *sep);

/* Whole files.  file_read returns a NUL-terminated buffer (caller frees). */
char *file_read(const char *path, size_t *len);
/* Write via a temporary file and rename: readers never see half a file. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
/* Remove a directory tree (only files and directories; refuses on "/"). */
int rm_rf(const char *path);
bool path_exists(const char *path);
bool path_is_exec(const char *path);
/* Search $PATH; returns a malloc'd path or NULL. */
char *path_which(const char *prog);

/* Processes. */
bool pid_alive(pid_t pid);
/*
 * Run argv, wait for it.  When out is non-NULL stdout (and stderr when
 * merge_err) is captured into a malloc'd string.  Returns the exit status,
 * 128+signal, or -1 when it could not run.
 */
int run_argv(char *const argv[], char **out, bool merge_err);
/* Start argv detached (own session, stdio on /dev/null); returns its pid. */
pid_t spawn_detached(char *const argv[]);

/* Loopback TCP ports. */
bool port_free(int port);
/* An unused loopback port picked by the kernel, or -1. */
int port_pick(void);

/* Monotonic seconds, for timeouts and progress. */
double now_s(void);
void sleep_s(double s);

/* Reject names that cannot be a directory or a hostname. */
bool name_valid(const char *name);

#endif /* PEGPU_VM_UTIL_H */
