/* SPDX-License-Identifier: Apache-2.0 */
/* pegpu console: the instance's serial console, interactively. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "vm/vm.h"

#define ESCAPE_KEY 0x1d	/* Ctrl-] like telnet */

static int console_run(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct termios saved, raw;
	struct vm_instance in;
	bool tty = isatty(0);
	char buf[4096];
	int fd;

	if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(argc != 2 ? stderr : stdout,
			"usage: pegpu console NAME\n\nAttach to the serial console (login prompt, boot "
			"messages).  Ctrl-] detaches;\nthe VM keeps running.  `pegpu logs` shows what "
			"the console printed.\n");
		return argc != 2 ? PEGPU_EXIT_USAGE : PEGPU_EXIT_OK;
	}
	if (vm_cmd_open("console", argv[1], &in, false))
		return PEGPU_EXIT_FAIL;
	if (!instance_qemu_pid(&in)) {
		fprintf(stderr, "pegpu console: '%s' is not running\n", in.name);
		return PEGPU_EXIT_FAIL;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", in.serial_sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "pegpu console: cannot connect to %s: %s (is another console attached?)\n",
			in.serial_sock, strerror(errno));
		return PEGPU_EXIT_FAIL;
	}
	fprintf(stderr, "pegpu console: attached to '%s'; Ctrl-] detaches\r\n", in.name);
	if (tty) {
		tcgetattr(0, &saved);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = fd, .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			ssize_t n = read(0, buf, sizeof(buf));

			if (n <= 0 || (tty && memchr(buf, ESCAPE_KEY, (size_t)n)))
				break;
			if (write(fd, buf, (size_t)n) != n)
				break;
		}
		if (p[1].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n <= 0 || write(1, buf, (size_t)n) != n)
				break;
		}
	}
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	close(fd);
	fprintf(stderr, "\npegpu console: detached\n");
	return PEGPU_EXIT_OK;
}

const struct pegpu_cmd pegpu_cmd_console = {
	.name = "console",
	.summary = "attach to a VM's serial console",
	.run = console_run,
};
