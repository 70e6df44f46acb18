/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sleep inhibitor on macOS: caffeinate(8) with -w holds an IOPM assertion
 * (PreventSystemSleep and PreventUserIdleSystemSleep) exactly as long as
 * QEMU lives.  A helper process instead of IOPMAssertionCreateWithName in
 * pegpu itself, because pegpu exits right after `start` while QEMU runs on.
 * Compiled only on macOS (runtime/meson.build).
 */
#include "inhibit.h"

#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>

#include "util.h"

pid_t inhibit_hold(pid_t qemu_pid, const char *why, char *err, size_t errlen)
{
	char pidarg[32];
	pid_t pid;

	(void)why;	/* caffeinate names itself in `pmset -g assertions` */
	snprintf(pidarg, sizeof(pidarg), "%d", (int)qemu_pid);
	char *argv[] = { "/usr/bin/caffeinate", "-i", "-s", "-w", pidarg, NULL };

	pid = spawn_detached(argv);
	if (pid < 0) {
		snprintf(err, errlen, "cannot start /usr/bin/caffeinate");
		return -1;
	}
	sleep_s(0.2);
	if (waitpid(pid, NULL, WNOHANG) == pid) {
		snprintf(err, errlen, "caffeinate exited at once: the Mac may sleep while the GPU is attached");
		return -1;
	}
	return pid;
}

void inhibit_release(pid_t helper)
{
	if (helper > 0)
		kill(helper, SIGTERM);
}
