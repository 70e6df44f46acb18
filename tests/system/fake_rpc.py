#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for ggml-rpc-server inside the test guest (Debian trixie has no
llama.cpp package): it answers the queries pegpu makes (HELLO with transport
capabilities, DEVICE_COUNT, GET_DEVICE_MEMORY) as protocol 8.0.0 does, one
client at a time, for the system tier's check that pegpu serve supervises an
RPC server in the VM through `pegpu ssh -t`.

usage: fake_rpc.py HOST PORT FREE_BYTES TOTAL_BYTES
"""
import socket
import struct
import sys


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        part = c.recv(n - len(b))
        if not part:
            raise EOFError
        b += part
    return b


def serve(c, free, total):
    while True:
        cmd, size = struct.unpack("<BQ", recv_exact(c, 9))
        payload = recv_exact(c, size) if size else b""
        if cmd == 14 and size == 24:		# HELLO
            rsp = bytes([8, 0, 0, 0]) + bytes(24)
        elif cmd == 15 and size == 0:		# DEVICE_COUNT
            rsp = struct.pack("<I", 1)
        elif cmd == 11 and size == 4 and struct.unpack("<I", payload)[0] == 0:
            rsp = struct.pack("<QQ", free, total)	# GET_DEVICE_MEMORY
        else:
            return				# the real server drops the client
        c.sendall(struct.pack("<Q", len(rsp)) + rsp)


def main():
    host, port, free, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(8)
    print(f"fake ggml-rpc-server 8.0.0 on {host}:{port}", flush=True)
    while True:
        c, peer = s.accept()
        try:
            serve(c, free, total)
        except (EOFError, OSError):
            pass
        finally:
            c.close()


if __name__ == "__main__":
    main()
