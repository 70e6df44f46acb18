/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by pegpu serve's files (see util.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

static void oom(void)
{
	fputs("pegpu serve: out of memory\n", stderr);
	abort();
}

void *sv_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *sv_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *sv_realloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *sv_strdup(const char *s)
{
	return sv_strndup(s, strlen(s));
}

char *sv_strndup(const char *s, size_t n)
{
	char *p = sv_malloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *sv_vasprintf(const char *fmt, va_list ap)
{
	char *p;

	/* vasprintf: one pass, and no vsnprintf(NULL, 0, ...) for UBSan's
	 * instrumentation to mistake for a null format string */
	if (vasprintf(&p, fmt, ap) < 0)
		oom();
	return p;
}

char *sv_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = sv_vasprintf(fmt, ap);
	va_end(ap);
	return p;
}

void sv_strv_push_owned(struct sv_strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->v = sv_realloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

void sv_strv_push(struct sv_strv *s, const char *str)
{
	sv_strv_push_owned(s, sv_strdup(str));
}

void sv_strv_free(struct sv_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

bool sv_strv_contains(const struct sv_strv *s, const char *str)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], str))
			return true;
	return false;
}

bool sv_strv_equal(const struct sv_strv *a, const struct sv_strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

void sv_sbuf_add(struct sv_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = sv_realloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sv_sbuf_adds(struct sv_buf *b, const char *s)
{
	sv_sbuf_add(b, s, strlen(s));
}

void sv_sbuf_addf(struct sv_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = sv_vasprintf(fmt, ap);
	va_end(ap);
	sv_sbuf_adds(b, p);
	free(p);
}

char *sv_sbuf_take(struct sv_buf *b)
{
	char *p = b->p ? b->p : sv_strdup("");

	memset(b, 0, sizeof(*b));
	return p;
}

uint64_t sv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

double sv_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *sv_str_replace_all(const char *s, const char *pat, const char *rep)
{
	struct sv_buf b = { 0 };
	size_t plen = strlen(pat);
	const char *hit;

	if (!plen)
		return sv_strdup(s);
	while ((hit = strstr(s, pat))) {
		sv_sbuf_add(&b, s, (size_t)(hit - s));
		sv_sbuf_adds(&b, rep);
		s = hit + plen;
	}
	sv_sbuf_adds(&b, s);
	return sv_sbuf_take(&b);
}

bool sv_str_has_prefix(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

bool sv_secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	/* Walk the whole expected key whatever the input, so the time taken
	 * says nothing about how many leading bytes matched. */
	for (size_t i = 0; i < lb; i++)
		diff |= (unsigned char)(b[i] ^ (i < la ? a[i] : 0));
	return diff == 0;
}
