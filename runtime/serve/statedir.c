/* SPDX-License-Identifier: Apache-2.0 */
/* State directory, pid lock and the orphan sweep (see statedir.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "statedir.h"
#include "util.h"

#define SWEEP_GRACE_MS 3000

struct statedir {
	char *path;
	char *records;	/* path/upstreams */
	int lock_fd;
};

static int mkdir_p(const char *path)
{
	char *p = sv_strdup(path);
	int ret = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			ret = -1;
		*s = '/';
	}
	if (mkdir(p, 0700) && errno != EEXIST)
		ret = -1;
	free(p);
	return ret;
}

struct statedir *sv_statedir_open(const char *dir, char **err)
{
	struct statedir *sd = sv_calloc(1, sizeof(*sd));
	char *pidfile = NULL, buf[32];
	int n;

	sd->lock_fd = -1;
	sd->path = sv_strdup(dir);
	sd->records = sv_asprintf("%s/upstreams", dir);
	if (mkdir_p(sd->records)) {
		*err = sv_asprintf("cannot create state directory %s: %s", sd->records, strerror(errno));
		goto fail;
	}
	pidfile = sv_asprintf("%s/serve.pid", dir);
	sd->lock_fd = open(pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sd->lock_fd < 0) {
		*err = sv_asprintf("cannot open %s: %s", pidfile, strerror(errno));
		goto fail;
	}
	/* flock, not the pid in the file, says whether a daemon is alive:
	 * the kernel drops the lock when its holder dies, even by SIGKILL. */
	if (flock(sd->lock_fd, LOCK_EX | LOCK_NB)) {
		n = (int)pread(sd->lock_fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		*err = sv_asprintf("another pegpu serve (pid %s) is using state directory %s; stop it first or give this one its own --state-dir",
				 *buf ? buf : "?", dir);
		goto fail;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(sd->lock_fd, 0) || pwrite(sd->lock_fd, buf, (size_t)n, 0) != n) {
		*err = sv_asprintf("cannot write %s: %s", pidfile, strerror(errno));
		goto fail;
	}
	free(pidfile);
	return sd;
fail:
	free(pidfile);
	sv_statedir_close(sd);
	return NULL;
}

void sv_statedir_close(struct statedir *sd)
{
	if (!sd)
		return;
	if (sd->lock_fd >= 0)
		close(sd->lock_fd);	/* releases the lock */
	free(sd->path);
	free(sd->records);
	free(sd);
}

const char *sv_statedir_path(const struct statedir *sd)
{
	return sd->path;
}

char *sv_statedir_new_token(void)
{
	unsigned char raw[16];
	char *hex = sv_malloc(sizeof(raw) * 2 + 1);
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, raw, sizeof(raw)) : -1;

	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)sizeof(raw)) {
		/* Only used to recognise our own children: pid and time are
		 * unique enough when urandom is unavailable. */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf((char *)raw, sizeof(raw), "%08lx%07lx", (long)getpid() & 0xffffffffl,
			 (long)ts.tv_nsec & 0xfffffffl);
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	return hex;
}

void sv_statedir_record(struct statedir *sd, pid_t pgid, const char *token, const char *model)
{
	char *path = sv_asprintf("%s/%ld", sd->records, (long)pgid);
	FILE *f = fopen(path, "w");

	if (f) {
		fprintf(f, "%s %s\n", token, model);
		fclose(f);
	}
	free(path);
}

void sv_statedir_forget(struct statedir *sd, pid_t pgid)
{
	char *path = sv_asprintf("%s/%ld", sd->records, (long)pgid);

	unlink(path);
	free(path);
}

#ifdef __linux__
/* The process group of pid from /proc/pid/stat, or -1. */
static pid_t proc_pgrp(pid_t pid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	long pgrp = -1;
	char state;
	long ppid;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	/* comm may hold spaces and parentheses: parse after the last ')' */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3)
		return -1;
	if (state == 'Z')
		return -1;	/* a zombie holds nothing; its parent reaps it */
	return (pid_t)pgrp;
}

static bool proc_has_token(pid_t pid, const char *token)
{
	char path[64], *want = sv_asprintf(SERVE_TOKEN_ENV "=%s", token);
	struct sv_buf env = { 0 };
	char buf[4096];
	size_t n;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
	f = fopen(path, "r");
	if (f) {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			sv_sbuf_add(&env, buf, n);
		fclose(f);
	}
	for (size_t off = 0; off < env.len; off += strlen(env.p + off) + 1) {
		if (!strcmp(env.p + off, want)) {
			found = true;
			break;
		}
	}
	free(env.p);
	free(want);
	return found;
}

/* Fill pids with the live members of pgid that carry token. */
static size_t group_members(pid_t pgid, const char *token, pid_t *pids, size_t max)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	size_t n = 0;

	if (!dir)
		return 0;
	while ((e = readdir(dir)) && n < max) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 1 || pid == getpid())
			continue;
		if (proc_pgrp((pid_t)pid) == pgid && proc_has_token((pid_t)pid, token))
			pids[n++] = (pid_t)pid;
	}
	closedir(dir);
	return n;
}
#else
/* Without /proc, trust the process group itself: it exists only while one
 * of its members lives, and a recorded pgid is recent. */
static size_t group_members(pid_t pgid, const char *token, pid_t *pids, size_t max)
{
	(void)token;
	if (max && kill(-pgid, 0) == 0) {
		pids[0] = -pgid;
		return 1;
	}
	return 0;
}
#endif

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int sweep_group(pid_t pgid, const char *token)
{
	pid_t pids[256];
	size_t n = group_members(pgid, token, pids, ARRAY_SIZE(pids));
	int signalled = (int)n;

	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGTERM);
	for (long waited = 0; n && waited < SWEEP_GRACE_MS; waited += 50) {
		sleep_ms(50);
		n = group_members(pgid, token, pids, ARRAY_SIZE(pids));
	}
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	return signalled;
}

int sv_statedir_sweep(struct statedir *sd, void (*log)(void *arg, const char *msg), void *arg)
{
	DIR *dir = opendir(sd->records);
	struct dirent *e;
	int total = 0;

	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		char *end, *path, token[80] = "", model[256] = "";
		long pgid = strtol(e->d_name, &end, 10);
		FILE *f;
		int n;

		if (*end || pgid <= 1)
			continue;
		path = sv_asprintf("%s/%s", sd->records, e->d_name);
		f = fopen(path, "r");
		if (f) {
			if (fscanf(f, "%79s %255s", token, model) < 1)
				token[0] = '\0';
			fclose(f);
		}
		if (*token) {
			n = sweep_group((pid_t)pgid, token);
			if (n && log) {
				char *msg = sv_asprintf("stopped %d leftover process%s of model '%s' (process group %ld) from a previous pegpu serve",
						      n, n == 1 ? "" : "es", model, pgid);

				log(arg, msg);
				free(msg);
			}
			total += n;
		}
		unlink(path);
		free(path);
	}
	closedir(dir);
	return total;
}
