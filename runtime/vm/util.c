/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers for the VM runtime: strv, files, processes, ports, time. */
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void strv_init(struct strv *s)
{
	s->v = NULL;
	s->n = s->cap = 0;
}

void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	strv_init(s);
}

static int strv_push(struct strv *s, char *owned)
{
	if (!owned)
		return -1;
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			free(owned);
			return -1;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = owned;
	s->v[s->n] = NULL;
	return 0;
}

int strv_add(struct strv *s, const char *str)
{
	return strv_push(s, strdup(str));
}

int strv_addf(struct strv *s, const char *fmt, ...)
{
	va_list ap;
	char *p = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -1;
	return strv_push(s, p);
}

char *strv_join(const struct strv *s, const char *sep)
{
	size_t len = 1, sl = strlen(sep);
	char *out, *p;

	for (size_t i = 0; i < s->n; i++)
		len += strlen(s->v[i]) + sl;
	out = malloc(len);
	if (!out)
		return NULL;
	p = out;
	*p = 0;
	for (size_t i = 0; i < s->n; i++) {
		size_t l = strlen(s->v[i]);

		if (i) {
			memcpy(p, sep, sl);
			p += sl;
		}
		memcpy(p, s->v[i], l);
		p += l;
	}
	*p = 0;
	return out;
}

char *file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);

			if (!nb) {
				free(buf);
				buf = NULL;
				goto out;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);

		n += r;
		if (r == 0)
			break;
	}
	buf[n] = 0;
	if (len)
		*len = n;
out:
	fclose(f);
	return buf;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, r = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	const char *p = data;
	size_t left = len;

	while (left) {
		ssize_t w = write(fd, p, left);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		p += w;
		left -= (size_t)w;
	}
	if (fsync(fd) < 0)
		goto out;
	r = 0;
out:
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -1;
	if (r)
		unlink(tmp);
	return r;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (!strcmp(path, "/") || !*path)
		return -1;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char sub[PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= (int)sizeof(sub)) {
			r = -1;
			continue;
		}
		if (rm_rf(sub) < 0)
			r = -1;
	}
	closedir(d);
	if (rmdir(path) < 0)
		r = -1;
	return r;
}

bool path_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

bool path_is_exec(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *path_which(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(prog, '/'))
		return path_is_exec(prog) ? strdup(prog) : NULL;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t l = strcspn(path, ":");

		if (l && snprintf(buf, sizeof(buf), "%.*s/%s", (int)l, path, prog) < (int)sizeof(buf) &&
		    path_is_exec(buf))
			return strdup(buf);
		path += l;
		if (*path == ':')
			path++;
	}
	return NULL;
}

bool pid_alive(pid_t pid)
{
	if (pid <= 0)
		return false;
	return kill(pid, 0) == 0 || errno == EPERM;
}

int run_argv(char *const argv[], char **out, bool merge_err)
{
	int pfd[2] = { -1, -1 }, status;
	pid_t pid;
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (out && pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		if (out) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return -1;
	}
	if (pid == 0) {
		if (out) {
			dup2(pfd[1], 1);
			if (merge_err)
				dup2(pfd[1], 2);
			close(pfd[0]);
			close(pfd[1]);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "pegpu: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (out) {
		close(pfd[1]);
		for (;;) {
			if (cap - n < 4096) {
				char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);

				if (!nb)
					break;
				buf = nb;
			}
			ssize_t r = read(pfd[0], buf + n, cap - n - 1);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			n += (size_t)r;
		}
		close(pfd[0]);
		if (buf)
			buf[n] = 0;
		*out = buf ? buf : strdup("");
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

pid_t spawn_detached(char *const argv[])
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	setsid();
	int fd = open("/dev/null", O_RDWR);

	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	execvp(argv[0], argv);
	_exit(127);
}

static int port_bind(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), r = -1;

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* no SO_REUSEADDR: a port in TIME_WAIT would fail QEMU's bind too */
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		r = ntohs(a.sin_port);
	close(fd);
	return r;
}

bool port_free(int port)
{
	return port > 0 && port < 65536 && port_bind(port) == port;
}

int port_pick(void)
{
	return port_bind(0);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

bool name_valid(const char *name)
{
	size_t l = strlen(name);

	/* a hostname label, short enough for socket paths */
	if (l == 0 || l > 32 || !isalpha((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < l; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-')
			return false;
	return name[l - 1] != '-';
}
