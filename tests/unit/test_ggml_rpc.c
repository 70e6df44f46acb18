/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ggml RPC client against fake servers: each dialect byte for byte as the
 * real servers speak it (2.0.0, 3.x, both kinds of 4.x, 5.x, 8.x), then
 * hostile ones (wrong answer sizes, huge size prefixes, silence, closing
 * mid-answer, versions pegpu does not speak).
 *
 * The fake runs in a forked child listening on 127.0.0.1:0.  Like the real
 * servers it is strict: a request whose payload size it does not expect,
 * or a command it does not know, makes it close the connection.  It logs
 * every request it reads to a pipe ("|" per connection, "CMD:SIZE", "#DEV"
 * for a device argument, "X" where it closes on the client), always before
 * answering, so the transcript is complete when the query returns and the
 * tests compare it exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "pegpu/ggml_rpc.h"

#define GiB	(1ULL << 30)
#define HONEST	UINT64_MAX	/* a size field that tells the truth */

struct fake {
	uint8_t ver[3];
	bool caps_hello;	/* takes the 24-byte HELLO (5.x on, maybe 4.x) */
	bool empty_hello;	/* takes the empty HELLO (before 5.x) */
	bool device_arg;	/* DEVICE_COUNT, and a u32 device (3.x on) */
	uint32_t n_devices;	/* what DEVICE_COUNT answers */
	/* sizes to claim in the answers' prefixes; HONEST: the real size */
	uint64_t hello_len, count_len, mem_len;
	int silent_from;	/* 1-based connection that gets no answer; 0: none */
	uint8_t silent_on;	/* a command it reads and never answers; 0: none */
	unsigned refuse_ms;	/* wait before closing on a HELLO it does not take */
	bool cut_mem;		/* close halfway through GET_DEVICE_MEMORY's answer */
	bool drip;		/* send answers a byte at a time */
};

struct result {
	int ret;
	char err[512];
	struct ggml_rpc_info info;
	char log[512];
	long ms;		/* how long the query took */
};

static uint64_t dev_free(uint32_t d)
{
	return 70 * GiB + d * 1000003ULL;
}

static uint64_t dev_total(uint32_t d)
{
	return 80 * GiB + d * 7ULL;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- the fake server (child process) ---- */

static int log_fd;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logf_(const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(log_fd, buf, (size_t)n) != n)
		_exit(3);
}

static bool rd(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t got = recv(fd, p, n, 0);

		if (got <= 0)
			return false;
		p += got;
		n -= (size_t)got;
	}
	return true;
}

static bool wr(const struct fake *f, int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		size_t chunk = f->drip ? 1 : n;
		ssize_t got = send(fd, p, chunk, MSG_NOSIGNAL);

		if (got <= 0)
			return false;
		p += got;
		n -= (size_t)got;
		if (f->drip)
			usleep(2000);
	}
	return true;
}

static void le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Size prefix (claimed, or the truth) then the honest payload. */
static bool answer(const struct fake *f, int fd, uint64_t claim, const uint8_t *p, size_t n)
{
	uint8_t buf[8 + 64];

	le(buf, claim == HONEST ? n : claim, 8);
	memcpy(buf + 8, p, n);
	return wr(f, fd, buf, 8 + n);
}

/* One connection; returns when either side gives up on it. */
static void serve_conn(const struct fake *f, int fd, int nth)
{
	uint8_t cmd, b[32];
	uint64_t len;

	if (f->silent_from && nth >= f->silent_from)
		pause();
	if (!rd(fd, &cmd, 1) || !rd(fd, b, 8))
		return;
	len = get_le(b, 8);
	logf_(" %u:%llu", cmd, (unsigned long long)len);
	if (cmd != 14 || !((len == 24 && f->caps_hello) || (len == 0 && f->empty_hello))) {
		logf_(" X");
		usleep(f->refuse_ms * 1000);
		return;
	}
	if (len) {
		uint8_t rsp[28] = { f->ver[0], f->ver[1], f->ver[2] };

		if (!rd(fd, b, 24))
			return;
		if (!answer(f, fd, f->hello_len, rsp, sizeof(rsp)))
			return;
	} else if (!answer(f, fd, f->hello_len, f->ver, 3)) {
		return;
	}
	for (;;) {
		uint32_t dev = 0;

		if (!rd(fd, &cmd, 1))
			return;
		/* 2.x knows commands 0 to 14 only and closes at once */
		if (cmd >= (f->device_arg ? 16 : 15)) {
			logf_(" %uX", cmd);
			return;
		}
		if (!rd(fd, b, 8))
			return;
		len = get_le(b, 8);
		logf_(" %u:%llu", cmd, (unsigned long long)len);
		if (cmd == f->silent_on)
			pause();
		if (cmd == 15 && len == 0) {
			le(b, f->n_devices, 4);
			if (!answer(f, fd, f->count_len, b, 4))
				return;
		} else if (cmd == 11 && len == (f->device_arg ? 4 : 0)) {
			if (len) {
				if (!rd(fd, b, 4))
					return;
				dev = (uint32_t)get_le(b, 4);
				logf_("#%u", dev);
				if (dev >= f->n_devices) {
					logf_(" X");
					return;
				}
			}
			le(b, dev_free(dev), 8);
			le(b + 8, dev_total(dev), 8);
			if (f->cut_mem) {
				answer(f, fd, 16, b, 8);	/* half of it */
				return;
			}
			if (!answer(f, fd, f->mem_len, b, 16))
				return;
		} else {
			logf_(" X");
			return;
		}
	}
}

static void serve(const struct fake *f, int lfd)
{
	for (int nth = 1;; nth++) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			_exit(2);
		logf_(" |");
		serve_conn(f, fd, nth);
		close(fd);
	}
}

/* ---- the test side ---- */

static int listen_any(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Start f, query it with timeout_ms, stop it; the transcript into res->log. */
static void run(const struct fake *f, int timeout_ms, struct result *res)
{
	char ep[32];
	uint16_t port;
	int lfd = listen_any(&port), pfd[2];
	pid_t pid;
	ssize_t n;
	long t0;

	memset(res, 0, sizeof(*res));
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(pfd[0]);
		log_fd = pfd[1];
		serve(f, lfd);
	}
	close(lfd);
	close(pfd[1]);
	snprintf(ep, sizeof(ep), "127.0.0.1:%u", port);
	t0 = now_ms();
	res->ret = ggml_rpc_query(ep, timeout_ms, &res->info, res->err, sizeof(res->err));
	res->ms = now_ms() - t0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	n = read(pfd[0], res->log, sizeof(res->log) - 1);
	close(pfd[0]);
	res->log[n > 0 ? n : 0] = '\0';
}

static void expect_log(const struct result *res, const char *want)
{
	if (strcmp(res->log, want))
		fail_msg("server transcript\n  got:  '%s'\n  want: '%s'", res->log, want);
}

static void expect_ok(const struct result *res, uint8_t major, uint8_t minor, uint8_t patch,
		      uint32_t n_devices)
{
	if (res->ret)
		fail_msg("query: %d: %s (transcript '%s')", res->ret, res->err, res->log);
	assert_int_equal(res->info.major, major);
	assert_int_equal(res->info.minor, minor);
	assert_int_equal(res->info.patch, patch);
	assert_int_equal(res->info.n_devices, n_devices);
	for (uint32_t d = 0; d < n_devices; d++) {
		assert_int_equal(res->info.free_bytes[d], dev_free(d));
		assert_int_equal(res->info.total_bytes[d], dev_total(d));
	}
	for (uint32_t d = n_devices; d < GGML_RPC_MAX_DEVICES; d++)
		assert_int_equal(res->info.free_bytes[d], 0);
}

static void expect_err(const struct result *res, int ret, const char *text)
{
	if (res->ret != ret || !strstr(res->err, text))
		fail_msg("query: %d '%s'\n  want: %d with '%s' (transcript '%s')", res->ret,
			 res->err, ret, text, res->log);
}

/* An error that must come at once, not by running out the deadline. */
static void expect_fast_err(const struct result *res, int ret, const char *text)
{
	expect_err(res, ret, text);
	if (res->ms > 2000)
		fail_msg("took %ld ms of a 5000 ms timeout: it waited instead of failing", res->ms);
}

static struct fake v2(void)
{
	return (struct fake){ .ver = { 2, 0, 0 }, .empty_hello = true, .n_devices = 1,
			      .hello_len = HONEST, .count_len = HONEST, .mem_len = HONEST };
}

static struct fake v3(uint8_t minor, uint32_t n)
{
	struct fake f = v2();

	f.ver[0] = 3;
	f.ver[1] = minor;
	f.device_arg = true;
	f.n_devices = n;
	return f;
}

static struct fake v5up(uint8_t major, uint8_t minor, uint32_t n)
{
	struct fake f = v3(minor, n);

	f.ver[0] = major;
	f.caps_hello = true;
	f.empty_hello = false;
	return f;
}

/* ---- the dialects ---- */

static void test_v2_single_device(void **state)
{
	struct fake f = v2();
	struct result res;

	(void)state;
	run(&f, 5000, &res);
	expect_ok(&res, 2, 0, 0, 1);
	/* refused the 24-byte HELLO, then no DEVICE_COUNT, no device argument */
	expect_log(&res, " | 14:24 X | 14:0 11:0");
}

static void test_v3_devices(void **state)
{
	struct fake f = v3(6, 2);
	struct result res;

	(void)state;
	run(&f, 5000, &res);
	expect_ok(&res, 3, 6, 0, 2);
	expect_log(&res, " | 14:24 X | 14:0 15:0 11:4#0 11:4#1");
}

static void test_v4_empty_hello(void **state)
{
	struct fake f = v3(1, 3);
	struct result res;

	(void)state;
	f.ver[0] = 4;
	f.ver[2] = 1;
	run(&f, 5000, &res);
	expect_ok(&res, 4, 1, 1, 3);
	expect_log(&res, " | 14:24 X | 14:0 15:0 11:4#0 11:4#1 11:4#2");
}

static void test_v4_caps_hello(void **state)
{
	struct fake f = v5up(4, 0, 1);
	struct result res;

	(void)state;
	run(&f, 5000, &res);
	expect_ok(&res, 4, 0, 0, 1);
	expect_log(&res, " | 14:24 15:0 11:4#0");
}

static void test_v5_devices(void **state)
{
	struct fake f = v5up(5, 1, 3);
	struct result res;

	(void)state;
	run(&f, 5000, &res);
	expect_ok(&res, 5, 1, 0, 3);
	expect_log(&res, " | 14:24 15:0 11:4#0 11:4#1 11:4#2");
}

static void test_v8_devices(void **state)
{
	struct fake f = v5up(8, 0, GGML_RPC_MAX_DEVICES);
	struct result res;

	(void)state;
	run(&f, 5000, &res);
	expect_ok(&res, 8, 0, 0, GGML_RPC_MAX_DEVICES);
	assert_int_equal(res.info.free_bytes[15], 70 * GiB + 15 * 1000003ULL);
}

/* Answers trickling in a byte at a time are put together. */
static void test_drip(void **state)
{
	struct fake f = v2();
	struct result res;

	(void)state;
	f.drip = true;
	run(&f, 5000, &res);
	expect_ok(&res, 2, 0, 0, 1);
	f = v5up(8, 0, 2);
	f.drip = true;
	run(&f, 5000, &res);
	expect_ok(&res, 8, 0, 0, 2);
}

/* ---- versions pegpu does not speak ---- */

static void test_v1_mismatch(void **state)
{
	struct fake f = v2();
	struct result res;

	(void)state;
	f.ver[0] = 1;
	f.ver[1] = 2;
	f.ver[2] = 3;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "RPC server 127.0.0.1:");
	expect_err(&res, -EPROTO, " speaks RPC protocol 1.2.3, but pegpu speaks 2.x to 8.x;");
	expect_log(&res, " | 14:24 X | 14:0");
}

static void test_v9_mismatch(void **state)
{
	struct fake f = v5up(9, 0, 1);
	struct result res;

	(void)state;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "speaks RPC protocol 9.0.0, but pegpu speaks 2.x to 8.x");
	expect_log(&res, " | 14:24");
	/* the version decides before the size: a 9.x with another HELLO */
	f.hello_len = 40;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "speaks RPC protocol 9.0.0, but pegpu speaks 2.x to 8.x");
	/* and a 9.x that takes the empty HELLO */
	f = v3(0, 1);
	f.ver[0] = 9;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "speaks RPC protocol 9.0.0, but pegpu speaks 2.x to 8.x");
}

/* A version that takes the other HELLO than its major says. */
static void test_wrong_hello_for_version(void **state)
{
	struct fake f = v5up(3, 0, 1);
	struct result res;

	(void)state;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "answered pegpu's 5.x HELLO as RPC protocol 3.0.0, which "
			"takes an empty HELLO");
	f = v3(0, 1);
	f.ver[0] = 6;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "closed the connection on pegpu's 5.x HELLO but answered "
			"pegpu's empty HELLO as RPC protocol 6.0.0");
}

static void test_closes_on_both_hellos(void **state)
{
	struct fake f = v2();
	struct result res;

	(void)state;
	f.empty_hello = false;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "closed the connection on pegpu's HELLO, the 5.x one and "
			"the empty one: it speaks an RPC protocol other than 2.x to 8.x");
	expect_log(&res, " | 14:24 X | 14:0 X");
}

/* ---- wrong sizes ---- */

static void test_hello_wrong_size(void **state)
{
	struct fake f = v5up(8, 0, 1);
	struct result res;

	(void)state;
	f.hello_len = 27;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "(protocol 8.0.0): HELLO answered 27 bytes, expected 28");
	/* claims more than it sends: an error at once, not a wait */
	f.hello_len = 29;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "(protocol 8.0.0): HELLO answered 29 bytes, expected 28");
	f = v2();
	f.hello_len = 4;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "(protocol 2.0.0): HELLO answered 4 bytes, expected 3");
	f.hello_len = 2;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "HELLO answered 2 bytes: not a ggml-rpc-server");
}

static void test_count_wrong_size(void **state)
{
	struct fake f = v3(0, 1);
	struct result res;

	(void)state;
	f.count_len = 8;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "(protocol 3.0.0): DEVICE_COUNT answered 8 bytes, "
			"expected 4: a protocol mismatch");
	f = v5up(5, 0, 1);
	f.count_len = 0;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "DEVICE_COUNT answered 0 bytes, expected 4");
}

static void test_memory_wrong_size(void **state)
{
	struct fake f = v2();
	struct result res;

	(void)state;
	f.mem_len = 8;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "(protocol 2.0.0): GET_DEVICE_MEMORY answered 8 bytes, "
			"expected 16");
	f = v5up(8, 0, 2);
	f.mem_len = 24;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "GET_DEVICE_MEMORY answered 24 bytes, expected 16");
}

static void test_huge_size(void **state)
{
	struct fake f = v5up(8, 0, 1);
	struct result res;

	(void)state;
	f.hello_len = 1ULL << 62;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "HELLO answered 4611686018427387904 bytes: not a "
			"ggml-rpc-server");
	f = v2();
	f.hello_len = UINT64_MAX - 1;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "HELLO answered 18446744073709551614 bytes");
	f = v3(0, 1);
	f.mem_len = UINT64_MAX - 1;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "GET_DEVICE_MEMORY answered 18446744073709551614 bytes");
}

static void test_device_count_range(void **state)
{
	struct fake f = v5up(8, 0, 0);
	struct result res;

	(void)state;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "reports 0 devices (1 to 16 expected)");
	f.n_devices = GGML_RPC_MAX_DEVICES + 1;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPROTO, "reports 17 devices (1 to 16 expected)");
}

static void test_closes_mid_answer(void **state)
{
	struct fake f = v3(0, 1);
	struct result res;

	(void)state;
	f.cut_mem = true;
	run(&f, 5000, &res);
	expect_fast_err(&res, -EPIPE, "closed the connection on GET_DEVICE_MEMORY");
}

/* ---- silence: the deadline holds across every step ---- */

static void expect_timeout(const struct result *res, const char *text)
{
	expect_err(res, -ETIMEDOUT, text);
	/* 300 ms, with room for a busy machine but not for a second deadline */
	if (res->ms < 280 || res->ms > 550)
		fail_msg("timed out after %ld ms, want about 300", res->ms);
}

static void test_silent_server(void **state)
{
	struct fake f = v5up(8, 0, 1);
	struct result res;

	(void)state;
	f.silent_from = 1;
	run(&f, 300, &res);
	expect_timeout(&res, "no answer within 300 ms during HELLO; ggml-rpc-server serves one "
		       "client at a time");
	expect_log(&res, " |");
}

/*
 * Closed the first HELLO after 200 ms, then silent: one deadline for both
 * connections, so about 300 ms in all, not 500.
 */
static void test_silent_after_reconnect(void **state)
{
	struct fake f = v2();
	struct result res;

	(void)state;
	f.silent_from = 2;
	f.refuse_ms = 200;
	run(&f, 300, &res);
	expect_timeout(&res, "no answer within 300 ms during the empty (pre-5.x) HELLO");
	if (res.ms > 450)
		fail_msg("%ld ms: the second connection got a deadline of its own", res.ms);
	expect_log(&res, " | 14:24 X |");
}

/* Answered HELLO and DEVICE_COUNT, silent on GET_DEVICE_MEMORY. */
static void test_silent_after_hello(void **state)
{
	struct fake f = v5up(8, 0, 2);
	struct result res;

	(void)state;
	f.silent_on = 11;
	run(&f, 300, &res);
	expect_timeout(&res, "no answer within 300 ms on GET_DEVICE_MEMORY");
	expect_log(&res, " | 14:24 15:0 11:4");
	f = v2();
	f.silent_on = 11;
	run(&f, 300, &res);
	expect_timeout(&res, "no answer within 300 ms on GET_DEVICE_MEMORY");
	expect_log(&res, " | 14:24 X | 14:0 11:0");
}

static void test_refused(void **state)
{
	struct result res;
	char ep[32];
	uint16_t port;
	int lfd = listen_any(&port);

	(void)state;
	close(lfd);
	snprintf(ep, sizeof(ep), "127.0.0.1:%u", port);
	res.ret = ggml_rpc_query(ep, 2000, &res.info, res.err, sizeof(res.err));
	expect_err(&res, -ECONNREFUSED, "cannot connect: Connection refused (is ggml-rpc-server "
		   "running");
}

static void test_parse_endpoint(void **state)
{
	char host[256], port[8], err[256];

	(void)state;
	assert_int_equal(ggml_rpc_parse_endpoint("192.168.64.2:50052", host, port, err,
						 sizeof(err)), 0);
	assert_string_equal(host, "192.168.64.2");
	assert_string_equal(port, "50052");
	assert_int_equal(ggml_rpc_parse_endpoint("[::1]:7", host, port, err, sizeof(err)), 0);
	assert_string_equal(host, "::1");
	assert_string_equal(port, "7");
	assert_int_equal(ggml_rpc_parse_endpoint("::1:7", host, port, err, sizeof(err)), -EINVAL);
	assert_int_equal(ggml_rpc_parse_endpoint("h:0", host, port, err, sizeof(err)), -EINVAL);
	assert_int_equal(ggml_rpc_parse_endpoint("h:65536", host, port, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(ggml_rpc_parse_endpoint("h", host, port, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'h' is not HOST:PORT"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2_single_device),
		cmocka_unit_test(test_v3_devices),
		cmocka_unit_test(test_v4_empty_hello),
		cmocka_unit_test(test_v4_caps_hello),
		cmocka_unit_test(test_v5_devices),
		cmocka_unit_test(test_v8_devices),
		cmocka_unit_test(test_drip),
		cmocka_unit_test(test_v1_mismatch),
		cmocka_unit_test(test_v9_mismatch),
		cmocka_unit_test(test_wrong_hello_for_version),
		cmocka_unit_test(test_closes_on_both_hellos),
		cmocka_unit_test(test_hello_wrong_size),
		cmocka_unit_test(test_count_wrong_size),
		cmocka_unit_test(test_memory_wrong_size),
		cmocka_unit_test(test_huge_size),
		cmocka_unit_test(test_device_count_range),
		cmocka_unit_test(test_closes_mid_answer),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_silent_after_reconnect),
		cmocka_unit_test(test_silent_after_hello),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_parse_endpoint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
