/* SPDX-License-Identifier: Apache-2.0 */
/* Recent log lines and live subscribers (see logring.h). */
#include <stdlib.h>
#include <string.h>

#include "logring.h"
#include "util.h"

#define LINE_MAX_BYTES 8192

struct log_line {
	enum log_src src;
	size_t len;
	char *text;	/* with a trailing '\n' */
};

struct logring {
	struct log_line *lines;
	size_t max, head, n;	/* head: index of the oldest line */
	struct log_sub *subs;
	struct log_sub *walking_next;	/* see sv_logring_add */
};

struct logring *sv_logring_new(size_t max_lines)
{
	struct logring *l = sv_calloc(1, sizeof(*l));

	l->max = max_lines ? max_lines : 1;
	l->lines = sv_calloc(l->max, sizeof(*l->lines));
	return l;
}

void sv_logring_free(struct logring *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->max; i++)
		free(l->lines[i].text);
	free(l->lines);
	free(l);
}

void sv_logring_add(struct logring *l, enum log_src src, const char *line, size_t len)
{
	struct log_line *slot;
	struct log_sub *s;

	if (len > LINE_MAX_BYTES)
		len = LINE_MAX_BYTES;
	if (l->n == l->max) {
		slot = &l->lines[l->head];
		l->head = (l->head + 1) % l->max;
	} else {
		slot = &l->lines[(l->head + l->n) % l->max];
		l->n++;
	}
	free(slot->text);
	slot->text = sv_malloc(len + 1);
	memcpy(slot->text, line, len);
	slot->text[len] = '\n';
	slot->len = len + 1;
	slot->src = src;

	/* A subscriber whose client is too slow unsubscribes itself from
	 * its callback; remember the next one before calling. */
	for (s = l->subs; s; s = l->walking_next) {
		l->walking_next = s->next;
		if (s->srcmask & (int)src)
			s->line(s, slot->text, slot->len);
	}
	l->walking_next = NULL;
}

void sv_logring_each(struct logring *l, int srcmask,
		     void (*fn)(void *arg, const char *line, size_t len),
		     void *arg)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct log_line *ln = &l->lines[(l->head + i) % l->max];

		if (ln->src & srcmask)
			fn(arg, ln->text, ln->len);
	}
}

void sv_logring_subscribe(struct logring *l, struct log_sub *s)
{
	s->prev = NULL;
	s->next = l->subs;
	if (l->subs)
		l->subs->prev = s;
	l->subs = s;
}

void sv_logring_unsubscribe(struct logring *l, struct log_sub *s)
{
	if (l->walking_next == s)
		l->walking_next = s->next;
	if (s->prev)
		s->prev->next = s->next;
	else if (l->subs == s)
		l->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}
