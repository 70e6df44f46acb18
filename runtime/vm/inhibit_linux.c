/* SPDX-License-Identifier: Apache-2.0 */
/* Sleep inhibitor on Linux: systemd-inhibit around a wait for QEMU's pid. */
#include "inhibit.h"

#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

pid_t inhibit_hold(pid_t qemu_pid, const char *why, char *err, size_t errlen)
{
	char *inh = path_which("systemd-inhibit"), script[128], whyarg[256];
	pid_t pid;

	if (!inh) {
		snprintf(err, errlen, "systemd-inhibit is not installed: the host may sleep while the GPU "
			 "is attached");
		return -1;
	}
	free(inh);
	/* poll rather than `tail --pid`: busybox and BSD tails lack it */
	snprintf(script, sizeof(script), "while kill -0 %d 2>/dev/null; do sleep 5; done", (int)qemu_pid);
	snprintf(whyarg, sizeof(whyarg), "--why=%s", why);
	char *argv[] = { "systemd-inhibit", "--what=sleep:idle:handle-lid-switch", "--who=pegpu",
			 whyarg, "--mode=block", "sh", "-c", script, NULL };

	pid = spawn_detached(argv);
	if (pid < 0) {
		snprintf(err, errlen, "cannot start systemd-inhibit");
		return -1;
	}
	/* systemd-inhibit exits at once when logind is not there: tell the user */
	sleep_s(0.5);
	if (waitpid(pid, NULL, WNOHANG) == pid) {
		snprintf(err, errlen, "systemd-inhibit could not take the lock (is systemd-logind running?)");
		return -1;
	}
	return pid;
}

void inhibit_release(pid_t helper)
{
	if (helper > 0)
		kill(helper, SIGTERM);
}
