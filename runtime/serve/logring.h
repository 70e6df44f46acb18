/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The last few thousand log lines, from pegpu serve itself ("proxy") and
 * from the model servers it runs ("upstream"), for GET /logs, plus the
 * subscribers that GET /logs/stream feeds line by line.
 */
#ifndef PEGPU_SERVE_LOGRING_H
#define PEGPU_SERVE_LOGRING_H

#include <stddef.h>

enum log_src {
	LOG_PROXY = 1,
	LOG_UPSTREAM = 2,
};

struct log_sub {
	int srcmask;
	void (*line)(struct log_sub *s, const char *line, size_t len);	/* with '\n' */
	struct log_sub *prev, *next;
};

struct logring;

struct logring *sv_logring_new(size_t max_lines);
void sv_logring_free(struct logring *l);
/* Add one line (no newline; longer lines are cut at 8 KiB). */
void sv_logring_add(struct logring *l, enum log_src src, const char *line, size_t len);
/* Call fn for each kept line of the sources in srcmask, oldest first. */
void sv_logring_each(struct logring *l, int srcmask,
		     void (*fn)(void *arg, const char *line, size_t len),
		     void *arg);
void sv_logring_subscribe(struct logring *l, struct log_sub *s);
void sv_logring_unsubscribe(struct logring *l, struct log_sub *s);

#endif /* PEGPU_SERVE_LOGRING_H */
