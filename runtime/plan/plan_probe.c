/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which -ngl rule a llama.cpp build follows, from its --help.
 *
 * llama.cpp #18148 (2025-12-17) made -ngl count the output layer first.
 * Nothing in a build says so directly, but --fit (#16653) came two days
 * earlier and stays, so a build with --fit has the new rule, save the
 * builds of those two days (docs/model-split.md).  llama-bench got its
 * --fit-target/--fit-ctx only in April 2026; "--fit" as an option prefix
 * covers those.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plan_core.h"

#define HELP_MAX	(1u << 20)	/* llama-server's help is ~40 KB */

extern char **environ;


static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/*
 * An option named opt, or one that starts with opt followed by '-' when
 * prefix is set ("--fit" matches "--fit-target"), but not a longer word.
 */
static bool has_option(const char *text, const char *opt, bool prefix)
{
	size_t n = strlen(opt);

	for (const char *s = strstr(text, opt); s; s = strstr(s + 1, opt)) {
		char before = s == text ? ' ' : s[-1];
		char after = s[n];

		if (word_char(before) || before == '-')
			continue;
		if (word_char(after) || (after == '-' && !prefix))
			continue;
		return true;
	}
	return false;
}

/* Spawn PREFIX... --help with stdout and stderr into *fd, in its own process group. */
static int spawn_help(char *const *prefix, pid_t *pid, int *fd, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char *argv[64];
	const char *bin = prefix[0];
	size_t n = 0;
	int p[2], r;

	while (prefix[n] && n < 62) {
		argv[n] = prefix[n];
		n++;
	}
	argv[n++] = "--help";
	argv[n] = NULL;
	sigset_t none, dfl;

	if (pipe2(p, O_CLOEXEC)) {
		plan_set_err(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	/*
	 * Its own group, so that a timeout also ends what a wrapper script
	 * started; and a clean signal state, whatever the caller (a forked
	 * daemon child) blocked or ignored.
	 */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGCHLD);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGQUIT);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	r = posix_spawnp(pid, bin, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (r) {
		close(p[0]);
		plan_set_err(err, errlen, "cannot run %s: %s", bin, strerror(r));
		return -1;
	}
	*fd = p[0];
	return 0;
}

/* Read everything until EOF or the deadline; 0, or -ETIMEDOUT. */
static int read_all(int fd, long long deadline, char **buf, size_t *len)
{
	size_t cap = 0;

	*buf = NULL;
	*len = 0;
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		char chunk[8192];
		ssize_t n;
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pf, 1, (int)left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;	/* the deadline is checked above */
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		if (*len + (size_t)n + 1 > cap && *len < HELP_MAX) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb;

			while (ncap < *len + (size_t)n + 1)
				ncap *= 2;
			nb = realloc(*buf, ncap);
			if (!nb)
				return -ENOMEM;
			*buf = nb;
			cap = ncap;
		}
		/* beyond HELP_MAX: keep draining so the child is not blocked */
		if (*len + (size_t)n + 1 <= cap) {
			memcpy(*buf + *len, chunk, (size_t)n);
			*len += (size_t)n;
			(*buf)[*len] = '\0';
		}
	}
}

/* Wait for pid until the deadline, then kill its group; the wait status or -1. */
static int reap(pid_t pid, long long deadline, bool *killed)
{
	int st = 0;

	*killed = false;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;	/* ECHILD: reaped elsewhere (SIGCHLD ignored) */
		if (now_ms() >= deadline)
			break;
		poll(NULL, 0, 10);
	}
	*killed = true;
	kill(-pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

int plan_probe_llama_timeout(const char *bin, int timeout_ms, enum plan_llama *out,
			     bool *is_bench, char *err, size_t errlen)
{
	char *const prefix[] = { (char *)bin, NULL };

	if (!bin || !*bin) {
		plan_set_err(err, errlen, "no llama-server binary given");
		return -1;
	}
	return plan_probe_llama_argv(prefix, timeout_ms, out, is_bench, err, errlen);
}

int plan_probe_llama_argv(char *const *prefix, int timeout_ms, enum plan_llama *out,
			  bool *is_bench, char *err, size_t errlen)
{
	const char *bin = prefix ? prefix[0] : NULL;
	long long deadline = now_ms() + timeout_ms;
	char *text = NULL;
	size_t len = 0;
	bool killed;
	pid_t pid;
	int fd, r, st, ret = -1;

	if (!bin || !*bin) {
		plan_set_err(err, errlen, "no llama-server binary given");
		return -1;
	}
	if (spawn_help(prefix, &pid, &fd, err, errlen))
		return -1;
	r = read_all(fd, deadline, &text, &len);
	close(fd);
	/*
	 * EOF can come before the exit: give it the rest of the deadline.
	 * A help text read in full is judged even if the process then hangs.
	 */
	st = reap(pid, r ? 0 : deadline, &killed);
	if (r == -ETIMEDOUT) {
		plan_set_err(err, errlen, "%s --help did not finish within %d ms", bin, timeout_ms);
		goto out;
	}
	if (r) {
		plan_set_err(err, errlen, "reading %s --help: %s", bin, strerror(-r));
		goto out;
	}
	if (!text || !(has_option(text, "--n-gpu-layers", false) || has_option(text, "-ngl", false))) {
		char status[48] = "";

		if (killed)
			snprintf(status, sizeof(status), ", then hung");
		else if (st >= 0 && WIFEXITED(st))
			snprintf(status, sizeof(status), ", exit status %d", WEXITSTATUS(st));
		else if (st >= 0 && WIFSIGNALED(st))
			snprintf(status, sizeof(status), ", killed by signal %d", WTERMSIG(st));
		plan_set_err(err, errlen, "%s --help printed no llama.cpp options (no -ngl%s): not "
			"llama-server?", bin, status);
		goto out;
	}
	*out = has_option(text, "--fit", true) ? PLAN_LLAMA_CURRENT : PLAN_LLAMA_LEGACY;
	if (is_bench)
		*is_bench = has_option(text, "--n-prompt", false);
	ret = 0;
out:
	free(text);
	return ret;
}

int plan_probe_llama(const char *bin, enum plan_llama *out, char *err, size_t errlen)
{
	return plan_probe_llama_timeout(bin, PLAN_PROBE_TIMEOUT_MS, out, NULL, err, errlen);
}
