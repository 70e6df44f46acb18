/* SPDX-License-Identifier: Apache-2.0 */
/* QMP client: one JSON object per line over a unix socket. */
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static double qmp_timeout_s = 10;

/* Next complete line as a JSON object (new reference), or NULL. */
static json_t *qmp_read(struct qmp *q, char *err, size_t errlen)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);

		if (nl) {
			json_error_t je;
			size_t l = (size_t)(nl - q->buf) + 1;
			json_t *j = json_loadb(q->buf, l, 0, &je);

			memmove(q->buf, q->buf + l, q->len - l);
			q->len -= l;
			if (!j) {
				snprintf(err, errlen, "QEMU sent invalid JSON on QMP: %s", je.text);
				return NULL;
			}
			return j;
		}
		if (q->len == sizeof(q->buf)) {
			snprintf(err, errlen, "QMP message too long");
			return NULL;
		}
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int pr = poll(&p, 1, (int)(qmp_timeout_s * 1000));

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			snprintf(err, errlen, "QEMU did not answer on QMP within %.0f s", qmp_timeout_s);
			return NULL;
		}
		ssize_t r = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "QEMU closed the QMP connection");
			return NULL;
		}
		q->len += (size_t)r;
	}
}

int qmp_connect(struct qmp *q, const char *path, double timeout_s, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	json_t *greet, *ret;

	q->fd = -1;
	q->len = 0;
	qmp_timeout_s = timeout_s > 0 ? timeout_s : 10;
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "QMP socket path too long: %s", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	q->fd = socket(AF_UNIX, SOCK_STREAM, 0);	/* no SOCK_CLOEXEC on macOS */
	if (q->fd >= 0)
		fcntl(q->fd, F_SETFD, FD_CLOEXEC);
	if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(err, errlen, "cannot connect to QMP at %s: %s", path, strerror(errno));
		qmp_close(q);
		return -1;
	}
	greet = qmp_read(q, err, errlen);
	if (!greet || !json_object_get(greet, "QMP")) {
		if (greet)
			snprintf(err, errlen, "no QMP greeting on %s", path);
		json_decref(greet);
		qmp_close(q);
		return -1;
	}
	json_decref(greet);
	ret = qmp_execute(q, "qmp_capabilities", NULL, err, errlen);
	if (!ret) {
		qmp_close(q);
		return -1;
	}
	json_decref(ret);
	return 0;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

json_t *qmp_execute(struct qmp *q, const char *cmd, json_t *args, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s}", "execute", cmd);
	char *s;
	size_t off = 0, len;

	if (args)
		json_object_set_new(req, "arguments", args);
	s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!s)
		return NULL;
	len = strlen(s);
	while (off < len) {
		ssize_t w = write(q->fd, s + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "QMP write failed: %s", strerror(errno));
			free(s);
			return NULL;
		}
		off += (size_t)w;
	}
	free(s);
	if (write(q->fd, "\n", 1) != 1) {
		snprintf(err, errlen, "QMP write failed: %s", strerror(errno));
		return NULL;
	}
	for (;;) {
		json_t *j = qmp_read(q, err, errlen), *r;

		if (!j)
			return NULL;
		if (json_object_get(j, "event")) {
			json_decref(j);
			continue;
		}
		r = json_object_get(j, "return");
		if (r) {
			json_incref(r);
			json_decref(j);
			return r;
		}
		const char *desc = json_string_value(json_object_get(json_object_get(j, "error"), "desc"));

		snprintf(err, errlen, "QEMU refused %s: %s", cmd, desc ? desc : "unknown error");
		json_decref(j);
		return NULL;
	}
}

char *qmp_hmp(struct qmp *q, const char *cmdline, char *err, size_t errlen)
{
	json_t *r = qmp_execute(q, "human-monitor-command",
				json_pack("{s:s}", "command-line", cmdline), err, errlen);
	char *out;

	if (!r)
		return NULL;
	out = strdup(json_string_value(r) ? json_string_value(r) : "");
	json_decref(r);
	return out;
}
