/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration diagnostics: every problem found while loading a config is
 * collected (not just the first), each with its line, so one run of
 * `pegpu serve --check` shows everything to fix.
 */
#ifndef PEGPU_SERVE_DIAG_H
#define PEGPU_SERVE_DIAG_H

#include <stdio.h>

enum diag_severity {
	DIAG_WARNING,	/* accepted, but the user should know (e.g. an ignored key) */
	DIAG_ERROR,	/* the config is refused */
};

struct diag_entry {
	enum diag_severity severity;
	int line;	/* 1-based; 0 when the problem has no single place */
	char *msg;
	size_t seq;	/* order found, to keep sorting stable */
};

struct serve_diag {
	char *file;	/* shown before each line number */
	struct diag_entry *v;
	size_t n, cap;
	unsigned n_errors, n_warnings;
};

void sv_diag_init(struct serve_diag *d, const char *file);
void sv_diag_free(struct serve_diag *d);
void sv_diag_add(struct serve_diag *d, enum diag_severity sev, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define sv_diag_error(d, line, ...) sv_diag_add((d), DIAG_ERROR, (line), __VA_ARGS__)
#define sv_diag_warn(d, line, ...) sv_diag_add((d), DIAG_WARNING, (line), __VA_ARGS__)

/* Order entries by line (the config loader does this when it is done). */
void sv_diag_sort(struct serve_diag *d);
/* "file:line: error: message", one per line. */
void sv_diag_print(const struct serve_diag *d, FILE *f);
/* The n-th entry formatted the same way; caller frees. */
char *sv_diag_format(const struct serve_diag *d, size_t i);
/* True if some entry's message contains needle (for tests). */
int sv_diag_has(const struct serve_diag *d, enum diag_severity sev, int line, const char *needle);

#endif /* PEGPU_SERVE_DIAG_H */
