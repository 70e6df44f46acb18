#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Serve a directory on 127.0.0.1 with HTTP Range support, for the system tier:
the image built on the machine is fetched through pegpu's real download code.

usage: http_server.py DIR PORTFILE [--cut-once NAME:BYTES]
  PORTFILE   the chosen port is written here once the server listens
  --cut-once the first GET of NAME stops after BYTES bytes (the connection is
             closed mid-body), so the client must resume with a Range request
"""
import http.server
import os
import re
import sys
import threading

root, portfile = sys.argv[1], sys.argv[2]
cut = {}
if len(sys.argv) > 4 and sys.argv[3] == '--cut-once':
    name, n = sys.argv[4].rsplit(':', 1)
    cut[name] = int(n)
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        sys.stderr.write('http: ' + (fmt % args) + '\n')

    def do_GET(self):
        name = os.path.basename(self.path.split('?')[0])
        path = os.path.join(root, name)
        if not name or not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        rng = self.headers.get('Range')
        if rng:
            m = re.match(r'bytes=(\d+)-(\d*)$', rng)
            if not m or int(m.group(1)) >= size:
                self.send_response(416)
                self.send_header('Content-Range', 'bytes */%d' % size)
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            start = int(m.group(1))
            if m.group(2):
                end = min(int(m.group(2)), size - 1)
            self.send_response(206)
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, size))
        else:
            self.send_response(200)
        self.send_header('Content-Length', str(end - start + 1))
        self.send_header('Accept-Ranges', 'bytes')
        self.end_headers()
        with lock:
            limit = cut.pop(name, None)
        left = end - start + 1 if limit is None else min(limit, end - start + 1)
        with open(path, 'rb') as f:
            f.seek(start)
            while left > 0:
                buf = f.read(min(1 << 20, left))
                if not buf:
                    break
                try:
                    self.wfile.write(buf)
                except (BrokenPipeError, ConnectionResetError):
                    return
                left -= len(buf)
        if limit is not None:
            self.close_connection = True   # the client sees a short body


srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
with open(portfile + '.tmp', 'w') as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + '.tmp', portfile)
srv.serve_forever()
