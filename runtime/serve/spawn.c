/* SPDX-License-Identifier: Apache-2.0 */
/* fork + exec into a new process group (see spawn.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "spawn.h"
#include "statedir.h"

static void close_from(int lowfd)
{
#if defined(__linux__) && defined(SYS_close_range)
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = lowfd; fd < max; fd++)
		close(fd);
}

pid_t sv_spawn(char *const *argv, const struct sv_strv *env, const char *token, int out_fd,
	       sv_spawn_prepare_fn prepare, void *arg, char **err)
{
	int ep[2], child_errno = 0;
	pid_t parent = getpid(), pid;
	ssize_t n;

	if (pipe2(ep, O_CLOEXEC)) {
		*err = sv_asprintf("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		*err = sv_asprintf("fork: %s", strerror(errno));
		close(ep[0]);
		close(ep[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t all;
		int nullfd;

		setpgid(0, 0);
#ifdef __linux__
		/* See statedir.h: the kernel stops us if the daemon dies. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
#else
		(void)parent;
#endif
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);	/* the daemon ignores SIGPIPE */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		nullfd = open("/dev/null", O_RDONLY);
		if (nullfd >= 0 && nullfd != 0) {
			dup2(nullfd, 0);
			close(nullfd);
		}
		dup2(out_fd, 1);
		dup2(out_fd, 2);
		if (ep[1] != 3) {
			dup2(ep[1], 3);
			fcntl(3, F_SETFD, FD_CLOEXEC);
		}
		close_from(4);
		for (size_t i = 0; env && i < env->n; i++)
			putenv(env->v[i]);
		setenv(SERVE_TOKEN_ENV, token, 1);
		if (prepare) {
			close(3);	/* the daemon stops waiting here */
			argv = prepare(arg, argv);
			if (!argv)
				_exit(1);
			execvp(argv[0], argv);
			fprintf(stderr, "pegpu serve: cannot run '%s': %s\n", argv[0],
				strerror(errno));
			_exit(127);
		}
		execvp(argv[0], argv);
		child_errno = errno;
		n = write(3, &child_errno, sizeof(child_errno));
		(void)n;
		_exit(127);
	}
	setpgid(pid, pid);	/* also here: no window where it is in our group */
	close(ep[1]);
	do {
		n = read(ep[0], &child_errno, sizeof(child_errno));
	} while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == (ssize_t)sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		*err = sv_asprintf("cannot run '%s': %s", argv[0], strerror(child_errno));
		return -1;
	}
	return pid;
}

