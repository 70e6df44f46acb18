/* SPDX-License-Identifier: Apache-2.0 */
/*
 * llama.cpp RPC client: version and device memory queries (see
 * include/pegpu/ggml_rpc.h for the wire format).
 *
 * The socket is non-blocking and every step polls against one absolute
 * deadline, so a server that accepts and then says nothing (busy with its
 * one client, or not an RPC server at all) costs at most timeout_ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pegpu/ggml_rpc.h"

enum {
	CMD_GET_DEVICE_MEMORY = 11,
	CMD_HELLO = 14,		/* fixed in every protocol version */
	CMD_DEVICE_COUNT = 15,
};

#define CONN_CAPS_SIZE	24	/* HELLO payload from protocol 5 on */
#define HELLO_RSP_MAX	64	/* a larger answer is not a HELLO answer */

struct conn {
	int fd;
	int64_t deadline_ms;	/* CLOCK_MONOTONIC */
	const char *endpoint;
	int timeout_ms;
	char *err;
	size_t errlen;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ggml_rpc_parse_endpoint(const char *endpoint, char *host, char *port, char *err,
			    size_t errlen)
{
	const char *colon, *h = endpoint;
	size_t hlen;

	if (endpoint[0] == '[') {
		const char *close = strchr(endpoint, ']');

		if (!close || close[1] != ':')
			goto bad;
		h = endpoint + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(endpoint, ':');
		if (!colon || strchr(endpoint, ':') != colon)
			goto bad;
		hlen = (size_t)(colon - endpoint);
	}
	if (!hlen || hlen >= 256)
		goto bad;
	const char *p = colon + 1;
	size_t plen = strlen(p);
	unsigned long v = 0;

	if (!plen || plen > 5 || strspn(p, "0123456789") != plen)
		goto bad;
	for (size_t i = 0; i < plen; i++)
		v = v * 10 + (unsigned long)(p[i] - '0');
	if (!v || v > 65535)
		goto bad;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	snprintf(port, 8, "%lu", v);
	return 0;
bad:
	set_err(err, errlen, "'%s' is not HOST:PORT (for example 192.168.64.2:%d)", endpoint,
		GGML_RPC_DEFAULT_PORT);
	return -EINVAL;
}

/* Wait for ev on the socket until the deadline; 0, -ETIMEDOUT or -errno. */
static int wait_fd(struct conn *c, short ev)
{
	for (;;) {
		int64_t left = c->deadline_ms - now_ms();
		struct pollfd pfd = { .fd = c->fd, .events = ev };
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return 0;
	}
}

static int timeout_err(struct conn *c, const char *during)
{
	set_err(c->err, c->errlen, "RPC server %s: no answer within %d ms %s; ggml-rpc-server "
		"serves one client at a time: is a llama-server still connected to it?",
		c->endpoint, c->timeout_ms, during);
	return -ETIMEDOUT;
}

static int send_all(struct conn *c, const void *buf, size_t n, const char *during)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t got = send(c->fd, p, n, MSG_NOSIGNAL);

		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			int r = wait_fd(c, POLLOUT);

			if (r == -ETIMEDOUT)
				return timeout_err(c, during);
			if (r)
				goto fail;
			continue;
		}
		if (got < 0)
			goto fail;
		p += got;
		n -= (size_t)got;
	}
	return 0;
fail:
	set_err(c->err, c->errlen, "RPC server %s: send failed %s: %s", c->endpoint, during,
		strerror(errno));
	return -EIO;
}

/* Read exactly n bytes; -EPIPE when the server closes the connection. */
static int recv_all(struct conn *c, void *buf, size_t n, const char *during)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t got = recv(c->fd, p, n, 0);

		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			int r = wait_fd(c, POLLIN);

			if (r == -ETIMEDOUT)
				return timeout_err(c, during);
			if (r) {
				errno = -r;
				goto fail;
			}
			continue;
		}
		if (got == 0 || (got < 0 && errno == ECONNRESET)) {
			set_err(c->err, c->errlen, "RPC server %s closed the connection %s",
				c->endpoint, during);
			return -EPIPE;
		}
		if (got < 0)
			goto fail;
		p += got;
		n -= (size_t)got;
	}
	return 0;
fail:
	set_err(c->err, c->errlen, "RPC server %s: receive failed %s: %s", c->endpoint, during,
		strerror(errno));
	return -EIO;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
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

/* One command: header + payload out, then the response size. */
static int command(struct conn *c, uint8_t cmd, const void *payload, size_t len,
		   uint64_t *rsp_len, const char *during)
{
	uint8_t hdr[9], sz[8];
	int r;

	hdr[0] = cmd;
	put_le(hdr + 1, len, 8);
	r = send_all(c, hdr, sizeof(hdr), during);
	if (!r && len)
		r = send_all(c, payload, len, during);
	if (!r)
		r = recv_all(c, sz, sizeof(sz), during);
	if (!r)
		*rsp_len = get_le(sz, 8);
	return r;
}

/* A response of exactly want bytes. */
static int fixed_response(struct conn *c, uint8_t cmd, const void *payload, size_t len,
			  void *rsp, size_t want, const char *during)
{
	uint64_t got;
	int r = command(c, cmd, payload, len, &got, during);

	if (r)
		return r;
	if (got != want) {
		set_err(c->err, c->errlen, "RPC server %s: %s answered %" PRIu64 " bytes, expected "
			"%zu: a protocol mismatch", c->endpoint, during, got, want);
		return -EPROTO;
	}
	return recv_all(c, rsp, want, during);
}

static int conn_open(struct conn *c, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	int r, last = ECONNREFUSED;

	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		set_err(c->err, c->errlen, "RPC server %s: cannot resolve '%s': %s", c->endpoint,
			host, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	c->fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);

		if (fd < 0) {
			last = errno;
			continue;
		}
		c->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);

			r = wait_fd(c, POLLOUT);
			if (r == -ETIMEDOUT) {
				close(fd);
				c->fd = -1;
				freeaddrinfo(res);
				set_err(c->err, c->errlen, "RPC server %s: connecting timed out "
					"after %d ms", c->endpoint, c->timeout_ms);
				return -ETIMEDOUT;
			}
			if (!r && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) && !soerr)
				break;
			last = r ? -r : soerr;
		} else {
			last = errno;
		}
		close(fd);
		c->fd = -1;
	}
	freeaddrinfo(res);
	if (c->fd >= 0) {
		/*
		 * Close by reset, whenever we close (a timeout, an error, even
		 * this process being killed).  A server busy with its one
		 * client keeps our connection, HELLO and all, in its accept
		 * queue; when it gets to it, answering a normally closed
		 * socket kills Debian sid's ggml-rpc-server (8.0.0) with
		 * SIGPIPE.  After a reset its first write fails with
		 * ECONNRESET and it carries on.
		 */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return 0;
	}
	set_err(c->err, c->errlen, "RPC server %s: cannot connect: %s%s", c->endpoint,
		strerror(last), last == ECONNREFUSED ?
		" (is ggml-rpc-server running and listening on that address?)" : "");
	return -last;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/*
 * Servers before protocol 5 take an empty HELLO and close the connection on
 * ours (and newer ones may change its size again).  Ask once more the old
 * way, only to name the server's version in the error message.
 */
static int legacy_version(struct conn *c, const char *host, const char *port, uint8_t v[3])
{
	char scratch[8];
	struct conn l = *c;
	uint8_t rsp[HELLO_RSP_MAX];
	uint64_t n;
	int r;

	l.err = scratch;
	l.errlen = sizeof(scratch);
	if (conn_open(&l, host, port))
		return -1;
	r = command(&l, CMD_HELLO, NULL, 0, &n, "");
	if (!r && (n < 3 || n > sizeof(rsp)))
		r = -EPROTO;
	if (!r)
		r = recv_all(&l, rsp, (size_t)n, "");
	conn_close(&l);
	if (r)
		return -1;
	memcpy(v, rsp, 3);
	return 0;
}

static int mismatch(struct conn *c, const uint8_t v[3])
{
	set_err(c->err, c->errlen, "RPC server %s speaks RPC protocol %u.%u.%u, but pegpu speaks "
		"%d.x to %d.x; llama-server and ggml-rpc-server must also match each other: "
		"install both from the same llama.cpp release", c->endpoint, v[0], v[1], v[2],
		GGML_RPC_MIN_MAJOR, GGML_RPC_MAX_MAJOR);
	return -EPROTO;
}

static int hello(struct conn *c, const char *host, const char *port, struct ggml_rpc_info *out)
{
	uint8_t caps[CONN_CAPS_SIZE] = { 0 }, rsp[HELLO_RSP_MAX], v[3];
	uint64_t n;
	int r;

	r = command(c, CMD_HELLO, caps, sizeof(caps), &n, "during HELLO");
	if (r == -EPIPE) {
		/* it refused our HELLO: find out what it speaks, if it says */
		if (!legacy_version(c, host, port, v))
			return mismatch(c, v);
		set_err(c->err, c->errlen, "RPC server %s closed the connection on pegpu's HELLO: "
			"it speaks an RPC protocol other than %d.x to %d.x (its log names the "
			"version it expects), or it is not a ggml-rpc-server", c->endpoint,
			GGML_RPC_MIN_MAJOR, GGML_RPC_MAX_MAJOR);
		return -EPROTO;
	}
	if (r)
		return r;
	if (n < 3 || n > sizeof(rsp)) {
		set_err(c->err, c->errlen, "RPC server %s: HELLO answered %" PRIu64 " bytes: not a "
			"ggml-rpc-server, or an unknown protocol", c->endpoint, n);
		return -EPROTO;
	}
	r = recv_all(c, rsp, (size_t)n, "during HELLO");
	if (r)
		return r;
	out->major = rsp[0];
	out->minor = rsp[1];
	out->patch = rsp[2];
	if (out->major < GGML_RPC_MIN_MAJOR || out->major > GGML_RPC_MAX_MAJOR)
		return mismatch(c, rsp);
	if (n != 4 + CONN_CAPS_SIZE) {
		set_err(c->err, c->errlen, "RPC server %s (protocol %u.%u.%u): HELLO answered %"
			PRIu64 " bytes, expected %d", c->endpoint, rsp[0], rsp[1], rsp[2], n,
			4 + CONN_CAPS_SIZE);
		return -EPROTO;
	}
	return 0;
}

int ggml_rpc_query(const char *endpoint, int timeout_ms, struct ggml_rpc_info *out, char *err,
		   size_t errlen)
{
	struct conn c = {
		.fd = -1,
		.endpoint = endpoint,
		.timeout_ms = timeout_ms,
		.err = err,
		.errlen = errlen,
	};
	char host[256], port[8];
	uint8_t b4[4], b16[16];
	int r;

	memset(out, 0, sizeof(*out));
	r = ggml_rpc_parse_endpoint(endpoint, host, port, err, errlen);
	if (r)
		return r;
	if (timeout_ms <= 0)
		timeout_ms = c.timeout_ms = 1;
	c.deadline_ms = now_ms() + timeout_ms;
	r = conn_open(&c, host, port);
	if (r)
		return r;
	r = hello(&c, host, port, out);
	if (r)
		goto out;
	r = fixed_response(&c, CMD_DEVICE_COUNT, NULL, 0, b4, 4, "answering DEVICE_COUNT");
	if (r)
		goto out;
	out->n_devices = (uint32_t)get_le(b4, 4);
	if (!out->n_devices || out->n_devices > GGML_RPC_MAX_DEVICES) {
		set_err(err, errlen, "RPC server %s reports %" PRIu32 " devices (1 to %d expected)",
			endpoint, out->n_devices, GGML_RPC_MAX_DEVICES);
		r = -EPROTO;
		goto out;
	}
	for (uint32_t d = 0; d < out->n_devices; d++) {
		put_le(b4, d, 4);
		r = fixed_response(&c, CMD_GET_DEVICE_MEMORY, b4, 4, b16, 16,
				   "answering GET_DEVICE_MEMORY");
		if (r)
			goto out;
		out->free_bytes[d] = get_le(b16, 8);
		out->total_bytes[d] = get_le(b16 + 8, 8);
	}
out:
	conn_close(&c);
	return r;
}
