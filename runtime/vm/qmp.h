/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal synchronous QMP client over the instance's unix socket: enough
 * to ask for status, power the guest down (ACPI), quit, and run the few
 * human-monitor commands QMP lacks (hostfwd_add/remove).
 */
#ifndef PEGPU_VM_QMP_H
#define PEGPU_VM_QMP_H

#include <jansson.h>

struct qmp {
	int fd;
	char buf[65536];
	size_t len;
};

/* Connect, read the greeting, negotiate capabilities.  timeout_s bounds each read. */
int qmp_connect(struct qmp *q, const char *path, double timeout_s, char *err, size_t errlen);
void qmp_close(struct qmp *q);
/*
 * Execute cmd with args (stolen reference, may be NULL).  Returns the
 * "return" value (new reference) or NULL with the QMP error in err.
 * Asynchronous events that arrive meanwhile are skipped.
 */
json_t *qmp_execute(struct qmp *q, const char *cmd, json_t *args, char *err, size_t errlen);
/* human-monitor-command; returns its output (malloc'd) or NULL. */
char *qmp_hmp(struct qmp *q, const char *cmdline, char *err, size_t errlen);

#endif /* PEGPU_VM_QMP_H */
