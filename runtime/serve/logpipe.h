/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A child's output, read line by line from a pipe on the daemon's loop and
 * kept in the log ring as "[prefix] line" (and on stdout when logToStdout
 * asks for upstream output).  The owner may also see each line, to keep the
 * last words of a process for its error messages.
 */
#ifndef PEGPU_SERVE_LOGPIPE_H
#define PEGPU_SERVE_LOGPIPE_H

#include <stddef.h>

struct daemon;
struct logpipe;

typedef void (*sv_logpipe_line_fn)(void *arg, const char *line, size_t len);

/* Read fd (the read end; taken over) until EOF.  on_line may be NULL. */
struct logpipe *sv_logpipe_new(struct daemon *d, int fd, const char *prefix,
			       sv_logpipe_line_fn on_line, void *arg);
/* Read whatever is already in the pipe (it is non-blocking). */
void sv_logpipe_drain(struct logpipe *lp);
/* Drain, emit a last partial line, close.  NULL is fine. */
void sv_logpipe_free(struct logpipe *lp);

#endif /* PEGPU_SERVE_LOGPIPE_H */
