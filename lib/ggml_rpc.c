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
	CMD_DEVICE_COUNT = 15,	/* from protocol 3 on */
};

#define CONN_CAPS_SIZE		24	/* HELLO payload from protocol 5 on */
#define HELLO_RSP_MAX		64	/* a larger answer is not a HELLO answer */
#define CAPS_HELLO_MIN_MAJOR	4	/* the oldest that may take the 5.x HELLO */
#define EMPTY_HELLO_MAX_MAJOR	4	/* the newest that may take the empty HELLO */

/* What follows HELLO, by the version it answered. */
enum dialect {
	DIALECT_ONE_DEVICE,	/* 2.x: GET_DEVICE_MEMORY without a device */
	DIALECT_DEVICES,	/* 3.x on: DEVICE_COUNT, GET_DEVICE_MEMORY of a u32 device */
};

struct conn {
	int fd;
	int64_t deadline_ms;	/* CLOCK_MONOTONIC */
	const char *endpoint;
	int timeout_ms;
	char *err;
	size_t errlen;
	uint8_t ver[3];		/* the server's version, once HELLO answered */
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

/* The server closed the connection (or reset it): -EPIPE. */
static int closed_err(struct conn *c, const char *during)
{
	set_err(c->err, c->errlen, "RPC server %s closed the connection %s", c->endpoint, during);
	return -EPIPE;
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
			if (r) {
				errno = -r;
				goto fail;
			}
			continue;
		}
		if (got < 0 && (errno == EPIPE || errno == ECONNRESET))
			return closed_err(c, during);
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
		if (got == 0 || (got < 0 && errno == ECONNRESET))
			return closed_err(c, during);
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

/*
 * One command: header + payload out, then the response size.  Header and
 * payload go out in one send: a server that rejects the payload size
 * closes the connection right after reading the header, and a payload
 * sent on its own could then meet a reset instead of a clean answer.
 */
static int command(struct conn *c, uint8_t cmd, const void *payload, size_t len,
		   uint64_t *rsp_len, const char *during)
{
	uint8_t req[9 + CONN_CAPS_SIZE], sz[8];
	int r;

	if (len > CONN_CAPS_SIZE)	/* nothing here sends more */
		return -EINVAL;
	req[0] = cmd;
	put_le(req + 1, len, 8);
	if (len)
		memcpy(req + 9, payload, len);
	r = send_all(c, req, 9 + len, during);
	if (!r)
		r = recv_all(c, sz, sizeof(sz), during);
	if (!r)
		*rsp_len = get_le(sz, 8);
	return r;
}

/* A response of exactly want bytes to command name. */
static int fixed_response(struct conn *c, uint8_t cmd, const char *name, const void *payload,
			  size_t len, void *rsp, size_t want)
{
	char during[48];
	uint64_t got;
	int r;

	snprintf(during, sizeof(during), "on %s", name);
	r = command(c, cmd, payload, len, &got, during);
	if (r)
		return r;
	if (got != want) {
		set_err(c->err, c->errlen, "RPC server %s (protocol %u.%u.%u): %s answered %"
			PRIu64 " bytes, expected %zu: a protocol mismatch", c->endpoint, c->ver[0],
			c->ver[1], c->ver[2], name, got, want);
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

static int mismatch(struct conn *c, const uint8_t v[3])
{
	set_err(c->err, c->errlen, "RPC server %s speaks RPC protocol %u.%u.%u, but pegpu speaks "
		"%d.x to %d.x; llama-server and ggml-rpc-server must also match each other: "
		"install both from the same llama.cpp release", c->endpoint, v[0], v[1], v[2],
		GGML_RPC_MIN_MAJOR, GGML_RPC_MAX_MAJOR);
	return -EPROTO;
}

/*
 * A version pegpu speaks, but not with the HELLO that this server took:
 * some variant of that protocol that pegpu does not know.
 */
static int wrong_hello(struct conn *c, const uint8_t v[3], bool caps)
{
	set_err(c->err, c->errlen, "RPC server %s %s pegpu's %s HELLO as RPC protocol %u.%u.%u, "
		"which %s: an unknown variant of that protocol (pegpu speaks %d.x to %d.x)",
		c->endpoint, caps ? "answered" : "closed the connection on pegpu's 5.x HELLO but "
		"answered", caps ? "5.x" : "empty", v[0], v[1], v[2], caps ?
		"takes an empty HELLO" : "should have taken the 5.x one", GGML_RPC_MIN_MAJOR,
		GGML_RPC_MAX_MAJOR);
	return -EPROTO;
}

/*
 * The answer to a HELLO, n bytes by its size prefix: first only the
 * version, into c->ver, which says what size the answer must have.
 */
static int hello_version(struct conn *c, uint64_t n, const char *during)
{
	if (n < 3 || n > HELLO_RSP_MAX) {
		set_err(c->err, c->errlen, "RPC server %s: HELLO answered %" PRIu64 " bytes: not a "
			"ggml-rpc-server, or an unknown protocol", c->endpoint, n);
		return -EPROTO;
	}
	return recv_all(c, c->ver, 3, during);
}

/*
 * The rest of a HELLO answer, when its size is the one that the version
 * answers; checked before reading, so a server that claims more than it
 * sends gets a clear error rather than a timeout.
 */
static int hello_rest(struct conn *c, uint64_t n, size_t want, const char *during)
{
	uint8_t rest[HELLO_RSP_MAX];

	if (n != want) {
		set_err(c->err, c->errlen, "RPC server %s (protocol %u.%u.%u): HELLO answered %"
			PRIu64 " bytes, expected %zu: a protocol mismatch", c->endpoint, c->ver[0],
			c->ver[1], c->ver[2], n, want);
		return -EPROTO;
	}
	return recv_all(c, rest, want - 3, during);
}

/*
 * Servers before protocol 5 read only an empty HELLO and close the
 * connection on ours.  Ask again the old way, on a new connection (the
 * server serves clients one after the other and has dropped the first),
 * under the same deadline: the answer says which dialect follows.
 */
static int empty_hello(struct conn *c, const char *host, const char *port,
		       enum dialect *d)
{
	static const char during[] = "during the empty (pre-5.x) HELLO";
	uint64_t n;
	int r;

	conn_close(c);
	r = conn_open(c, host, port);
	if (r)
		return r;
	r = command(c, CMD_HELLO, NULL, 0, &n, during);
	if (r == -EPIPE) {
		set_err(c->err, c->errlen, "RPC server %s closed the connection on pegpu's HELLO, "
			"the 5.x one and the empty one: it speaks an RPC protocol other than %d.x "
			"to %d.x (its log names the version it expects), or it is not a "
			"ggml-rpc-server", c->endpoint, GGML_RPC_MIN_MAJOR, GGML_RPC_MAX_MAJOR);
		return -EPROTO;
	}
	if (!r)
		r = hello_version(c, n, during);
	if (r)
		return r;
	if (c->ver[0] < GGML_RPC_MIN_MAJOR)
		return mismatch(c, c->ver);
	if (c->ver[0] > EMPTY_HELLO_MAX_MAJOR)
		return c->ver[0] > GGML_RPC_MAX_MAJOR ? mismatch(c, c->ver) :
			wrong_hello(c, c->ver, false);
	r = hello_rest(c, n, 3, during);
	if (!r)
		*d = c->ver[0] == 2 ? DIALECT_ONE_DEVICE : DIALECT_DEVICES;
	return r;
}

static int hello(struct conn *c, const char *host, const char *port, enum dialect *d)
{
	static const char during[] = "during HELLO";
	uint8_t caps[CONN_CAPS_SIZE] = { 0 };
	uint64_t n;
	int r;

	r = command(c, CMD_HELLO, caps, sizeof(caps), &n, during);
	if (r == -EPIPE)
		return empty_hello(c, host, port, d);
	if (!r)
		r = hello_version(c, n, during);
	if (r)
		return r;
	if (c->ver[0] < CAPS_HELLO_MIN_MAJOR)
		return c->ver[0] < GGML_RPC_MIN_MAJOR ? mismatch(c, c->ver) :
			wrong_hello(c, c->ver, true);
	if (c->ver[0] > GGML_RPC_MAX_MAJOR)
		return mismatch(c, c->ver);
	r = hello_rest(c, n, 4 + CONN_CAPS_SIZE, during);
	if (!r)
		*d = DIALECT_DEVICES;
	return r;
}

static int device_memory(struct conn *c, enum dialect d, uint32_t dev,
			 struct ggml_rpc_info *out)
{
	uint8_t req[4], rsp[16];
	int r;

	put_le(req, dev, 4);
	/* 2.x has one device and no device argument */
	r = fixed_response(c, CMD_GET_DEVICE_MEMORY, "GET_DEVICE_MEMORY", req,
			   d == DIALECT_ONE_DEVICE ? 0 : sizeof(req), rsp, sizeof(rsp));
	if (r)
		return r;
	out->free_bytes[dev] = get_le(rsp, 8);
	out->total_bytes[dev] = get_le(rsp + 8, 8);
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
	enum dialect d;
	uint8_t b4[4];
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
	r = hello(&c, host, port, &d);
	out->major = c.ver[0];		/* zero when it never said */
	out->minor = c.ver[1];
	out->patch = c.ver[2];
	if (r)
		goto out;
	if (d == DIALECT_ONE_DEVICE) {
		out->n_devices = 1;
		r = device_memory(&c, d, 0, out);
		goto out;
	}
	r = fixed_response(&c, CMD_DEVICE_COUNT, "DEVICE_COUNT", NULL, 0, b4, sizeof(b4));
	if (r)
		goto out;
	out->n_devices = (uint32_t)get_le(b4, 4);
	if (!out->n_devices || out->n_devices > GGML_RPC_MAX_DEVICES) {
		set_err(err, errlen, "RPC server %s reports %" PRIu32 " devices (1 to %d expected)",
			endpoint, out->n_devices, GGML_RPC_MAX_DEVICES);
		r = -EPROTO;
		goto out;
	}
	for (uint32_t dev = 0; dev < out->n_devices && !r; dev++)
		r = device_memory(&c, d, dev, out);
out:
	conn_close(&c);
	return r;
}
