/* SPDX-License-Identifier: Apache-2.0 */
/* A child's output into the log ring, line by line (see logpipe.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"
#include "logpipe.h"
#include "util.h"

struct logpipe {
	struct daemon *d;
	int fd;
	struct event *ev;
	struct sv_buf partial;
	char *prefix;
	sv_logpipe_line_fn on_line;
	void *arg;
};

static void emit_line(struct logpipe *lp, const char *line, size_t len)
{
	struct daemon *d = lp->d;
	char *text;

	if (len && line[len - 1] == '\r')
		len--;
	text = sv_asprintf("[%s] %.*s", lp->prefix, (int)len, line);
	sv_logring_add(d->log, LOG_UPSTREAM, text, strlen(text));
	if (d->cfg->log_to_stdout == SERVE_LOG_UPSTREAM || d->cfg->log_to_stdout == SERVE_LOG_BOTH)
		printf("%s\n", text);
	free(text);
	if (lp->on_line)
		lp->on_line(lp->arg, line, len);
}

static void logpipe_read(evutil_socket_t fd, short what, void *arg)
{
	struct logpipe *lp = arg;
	char buf[16384];
	ssize_t n;

	(void)what;
	n = read(fd, buf, sizeof(buf));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		event_del(lp->ev);	/* EOF: every writer is gone */
		return;
	}
	sv_sbuf_add(&lp->partial, buf, (size_t)n);
	for (;;) {
		char *nl = memchr(lp->partial.p, '\n', lp->partial.len);
		size_t used;

		if (!nl) {
			if (lp->partial.len < 8192)
				break;
			nl = lp->partial.p + lp->partial.len - 1;	/* cut a huge line */
		}
		used = (size_t)(nl - lp->partial.p) + 1;
		emit_line(lp, lp->partial.p, used - (*nl == '\n'));
		memmove(lp->partial.p, lp->partial.p + used, lp->partial.len - used);
		lp->partial.len -= used;
	}
}

void sv_logpipe_drain(struct logpipe *lp)
{
	for (int i = 0; i < 64; i++) {	/* at most 1 MiB */
		int pending = 0;

		if (ioctl(lp->fd, FIONREAD, &pending) || pending <= 0)
			break;
		logpipe_read(lp->fd, EV_READ, lp);
	}
}

struct logpipe *sv_logpipe_new(struct daemon *d, int fd, const char *prefix,
			       sv_logpipe_line_fn on_line, void *arg)
{
	struct logpipe *lp = sv_calloc(1, sizeof(*lp));

	lp->d = d;
	lp->fd = fd;
	lp->prefix = sv_strdup(prefix);
	lp->on_line = on_line;
	lp->arg = arg;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	lp->ev = event_new(d->base, fd, EV_READ | EV_PERSIST, logpipe_read, lp);
	event_add(lp->ev, NULL);
	return lp;
}

void sv_logpipe_free(struct logpipe *lp)
{
	if (!lp)
		return;
	/* take what is already written before closing */
	sv_logpipe_drain(lp);
	if (lp->partial.len)
		emit_line(lp, lp->partial.p, lp->partial.len);
	event_free(lp->ev);
	close(lp->fd);
	free(lp->partial.p);
	free(lp->prefix);
	free(lp);
}
