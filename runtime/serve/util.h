/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by pegpu serve's files: allocation that never returns
 * NULL (a daemon that cannot allocate a few bytes has nothing sensible left
 * to do but say so and stop), a growable string vector, and a monotonic
 * clock in milliseconds.
 */
#ifndef PEGPU_SERVE_UTIL_H
#define PEGPU_SERVE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

void *sv_malloc(size_t n);
void *sv_calloc(size_t n, size_t size);
void *sv_realloc(void *p, size_t n);
char *sv_strdup(const char *s);
char *sv_strndup(const char *s, size_t n);
char *sv_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *sv_vasprintf(const char *fmt, va_list ap);

/* A NULL-terminated vector of owned strings. */
struct sv_strv {
	char **v;
	size_t n;
	size_t cap;
};

void sv_strv_push(struct sv_strv *s, const char *str);	/* copies str */
void sv_strv_push_owned(struct sv_strv *s, char *str);	/* takes str */
void sv_strv_free(struct sv_strv *s);
bool sv_strv_contains(const struct sv_strv *s, const char *str);
bool sv_strv_equal(const struct sv_strv *a, const struct sv_strv *b);

/* Growable byte buffer for building strings. */
struct sv_buf {
	char *p;
	size_t len;
	size_t cap;
};

void sv_sbuf_add(struct sv_buf *b, const char *s, size_t n);
void sv_sbuf_adds(struct sv_buf *b, const char *s);
void sv_sbuf_addf(struct sv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *sv_sbuf_take(struct sv_buf *b);	/* returns the NUL-terminated string; resets b */

uint64_t sv_now_ms(void);		/* CLOCK_MONOTONIC */
double sv_now_s(void);		/* CLOCK_MONOTONIC, seconds with fraction */

/* Replace every occurrence of pat in s by rep; returns a new string. */
char *sv_str_replace_all(const char *s, const char *pat, const char *rep);
bool sv_str_has_prefix(const char *s, const char *prefix);

/* Constant-time comparison for secrets (API keys). */
bool sv_secret_equal(const char *a, const char *b);

#endif /* PEGPU_SERVE_UTIL_H */
