/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration diagnostics (see diag.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "util.h"

void sv_diag_init(struct serve_diag *d, const char *file)
{
	memset(d, 0, sizeof(*d));
	d->file = sv_strdup(file ? file : "config");
}

void sv_diag_free(struct serve_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	free(d->file);
	memset(d, 0, sizeof(*d));
}

void sv_diag_add(struct serve_diag *d, enum diag_severity sev, int line, const char *fmt, ...)
{
	va_list ap;

	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = sv_realloc(d->v, d->cap * sizeof(*d->v));
	}
	va_start(ap, fmt);
	d->v[d->n].msg = sv_vasprintf(fmt, ap);
	va_end(ap);
	d->v[d->n].severity = sev;
	d->v[d->n].line = line;
	d->v[d->n].seq = d->n;
	d->n++;
	if (sev == DIAG_ERROR)
		d->n_errors++;
	else
		d->n_warnings++;
}

char *sv_diag_format(const struct serve_diag *d, size_t i)
{
	const struct diag_entry *e = &d->v[i];
	const char *sev = e->severity == DIAG_ERROR ? "error" : "warning";

	if (e->line > 0)
		return sv_asprintf("%s:%d: %s: %s", d->file, e->line, sev, e->msg);
	return sv_asprintf("%s: %s: %s", d->file, sev, e->msg);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct diag_entry *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void sv_diag_sort(struct serve_diag *d)
{
	if (d->n > 1)
		qsort(d->v, d->n, sizeof(*d->v), cmp_entry);
}

void sv_diag_print(const struct serve_diag *d, FILE *f)
{
	for (size_t i = 0; i < d->n; i++) {
		char *s = sv_diag_format(d, i);

		fprintf(f, "%s\n", s);
		free(s);
	}
}

int sv_diag_has(const struct serve_diag *d, enum diag_severity sev, int line, const char *needle)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].severity == sev && (line <= 0 || d->v[i].line == line) &&
		    strstr(d->v[i].msg, needle))
			return 1;
	return 0;
}
