/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small client for llama.cpp's RPC server (ggml-rpc-server): enough to ask
 * it for its protocol version, its devices and their free memory, which the
 * split planner needs.  It never loads or computes anything.
 *
 * Wire format (little-endian), as spoken by ggml's RPC backend:
 *   request:  u8 command, u64 payload size, payload
 *   response: u64 payload size, payload
 * The first command on a connection must be HELLO (command 14 in every
 * version).  A server closes the connection on a payload size it does not
 * expect and on a command it does not know.  By protocol major:
 *   2.x  (llama.cpp of June 2025): HELLO takes an empty payload and answers
 *        u8 major, minor, patch.  One device per server: GET_DEVICE_MEMORY
 *        (11) takes an empty payload and answers u64 free, u64 total.  No
 *        DEVICE_COUNT.
 *   3.x  HELLO as 2.x.  DEVICE_COUNT (15) takes an empty payload and
 *        answers a u32; GET_DEVICE_MEMORY takes a u32 device and answers
 *        u64 free, u64 total.
 *   4.x  as 3.x, with either HELLO (which one is not known).
 *   5.x to 8.x: HELLO takes 24 bytes of transport capabilities (zero:
 *        plain TCP) and answers u8 major, minor, patch, a pad byte and 24
 *        bytes of capabilities; DEVICE_COUNT and GET_DEVICE_MEMORY as 3.x.
 * The client sends the 5.x HELLO; a server that closes the connection on
 * it is asked again on a new connection with the empty HELLO.  The version
 * answered picks what follows; a version outside 2.x to 8.x is refused
 * with an error naming it.  Every answer's size is checked exactly.
 * Checked against protocol 2.0.0 (a June-2025 llama.cpp rpc-server), 5.1
 * (ggml's source) and 8.0.0 (Debian sid's ggml 0.27 ggml-rpc-server); 3.x
 * and 4.x only against the unit test's fake servers.
 *
 * The server serves one client at a time: while a llama-server is
 * connected, a query waits and then times out.  Every call has a deadline,
 * so nothing here can hang.
 */
#ifndef PEGPU_GGML_RPC_H
#define PEGPU_GGML_RPC_H

#include <stddef.h>
#include <stdint.h>

#define GGML_RPC_MIN_MAJOR	2
#define GGML_RPC_MAX_MAJOR	8
#define GGML_RPC_MAX_DEVICES	16
#define GGML_RPC_DEFAULT_PORT	50052

struct ggml_rpc_info {
	uint8_t major, minor, patch;	/* the server's protocol version */
	uint32_t n_devices;
	uint64_t free_bytes[GGML_RPC_MAX_DEVICES];
	uint64_t total_bytes[GGML_RPC_MAX_DEVICES];
};

/*
 * Split "host:port" ("[v6addr]:port" for IPv6) into its parts; 0 or
 * -EINVAL with a message.  host must hold 256 bytes and port 8.
 */
int ggml_rpc_parse_endpoint(const char *endpoint, char *host, char *port, char *err,
			    size_t errlen);

/*
 * Connect to endpoint, check the protocol version, and read every device's
 * memory (n_devices is 1 for a 2.x server), all within timeout_ms, however
 * many connections the HELLO takes.  0 on success; otherwise a negative errno
 * (-ETIMEDOUT, -ECONNREFUSED, -EPROTO for a protocol mismatch, ...) with a
 * message in err saying what to do.
 */
int ggml_rpc_query(const char *endpoint, int timeout_ms, struct ggml_rpc_info *out, char *err,
		   size_t errlen);

#endif /* PEGPU_GGML_RPC_H */
