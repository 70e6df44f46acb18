#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests of `pegpu serve` against fake_upstream (see run.sh).

Each test prints "PASS name" or "FAIL name: why"; the last line is
"N passed, N failed".  Python standard library only; loopback only.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

RESULTS = []


def log(msg):
    print(msg, flush=True)


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


def wait_for(fn, timeout, what, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    raise Fail("timed out after %.1f s waiting for %s" % (timeout, what))


def request(port, method, path, body=None, headers=None, timeout=20):
    """One request; returns (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def chat(port, model, timeout=20, headers=None, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    body.update(extra)
    return request(port, "POST", "/v1/chat/completions", body, headers=headers, timeout=timeout)


def stream(port, model, timeout=30, **extra):
    """Stream a chat completion; returns (status, [(arrival wall time, event)], error or None)."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    body.update(extra)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    events, err = [], None
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            return r.status, [], r.read().decode(errors="replace")
        buf = b""
        while True:
            try:
                # read1: whatever has arrived, without waiting to fill a buffer
                piece = r.read1(65536) if hasattr(r, "read1") else r.read(1)
            except (http.client.IncompleteRead, ConnectionError) as e:
                err = "incomplete: %r" % (e,)
                break
            if not piece:
                break
            now = time.time()
            buf += piece
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                events.append((now, ev.decode(errors="replace")))
        return r.status, events, err
    finally:
        conn.close()


def data_events(events):
    out = []
    for t, ev in events:
        if ev.startswith("data: ") and ev != "data: [DONE]":
            out.append((t, json.loads(ev[6:])))
    return out


def parallel(fn, n):
    results = [None] * n

    def run(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # reported by the caller
            results[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purpose
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def procs_with(marker):
    """pids of processes whose command line contains marker."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and int(d) != os.getpid():
            if pid_alive(int(d)):
                pids.append(int(d))
    return pids


class Daemon:
    def __init__(self, env, workdir, name, config, port):
        self.env, self.workdir, self.name, self.port = env, workdir, name, port
        self.cfg = os.path.join(workdir, name + ".yaml")
        self.state = os.path.join(workdir, name + "-state")
        self.logpath = os.path.join(workdir, name + ".log")
        self.write_config(config)
        self.proc = None

    def write_config(self, text):
        with open(self.cfg, "w") as f:
            f.write(text)

    def start(self):
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [self.env.pegpu, "serve", "-c", self.cfg, "--listen", "127.0.0.1:%d" % self.port,
             "--state-dir", self.state, "--max-body-size", "1000000"], stdout=self.logf, stderr=subprocess.STDOUT,
            env=self.env.environ)
        wait_for(self.up, 5, "pegpu serve to answer /health")

    def up(self):
        if self.proc.poll() is not None:
            raise Fail("pegpu serve exited with %s; log: %s" % (self.proc.returncode, self.log()[-800:]))
        try:
            return request(self.port, "GET", "/health", timeout=1)[0] == 200
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()

    def running(self):
        st, _, body = request(self.port, "GET", "/running")
        check(st == 200, "/running answered %d" % st)
        return {m["model"]: m for m in json.loads(body)["running"]}

    def metric(self, name, **labels):
        _, _, body = request(self.port, "GET", "/metrics")
        want = ",".join('%s="%s"' % kv for kv in labels.items())
        for line in body.decode().splitlines():
            if line.startswith(name + "{" + want + "}") or (not labels and line.startswith(name + " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


MAIN_CONFIG = """\
# pegpu serve integration test config (llama-swap format)
healthCheckTimeout: 20
startPort: ${env.PORT_BASE}
logLevel: debug
macros:
  fake: ${env.FAKE}
  slow: --startup-delay 1.0
models:
  a:
    cmd: ${fake} --port ${PORT} --name ${MODEL_ID} ${slow}
    aliases: [alpha]
    name: Model A
    env: ["FAKE_PROBE=hello-${MODEL_ID}"]
  b:
    cmd: |
      # comment lines are dropped from cmd
      ${fake} --port ${PORT}
        --name b
    useModelName: upstream-b
  hidden:
    cmd: ${fake} --port ${PORT} --name hidden
    unlisted: true
  short:
    cmd: ${fake} --port ${PORT} --name short
    ttl: 1
  limited:
    cmd: ${fake} --port ${PORT} --name limited
    concurrencyLimit: 2
  p1:
    cmd: ${fake} --port ${PORT} --name p1
  x1:
    cmd: ${fake} --port ${PORT} --name x1
  x2:
    cmd: ${fake} --port ${PORT} --name x2
  stubborn:
    cmd: ${fake} --port ${PORT} --name stubborn --ignore-term
    unloadTimeout: 1
  stopcmd:
    cmd: ${fake} --port ${PORT} --name stopcmd --ignore-term
    cmdStop: kill -INT ${PID}
    unloadTimeout: 5
  broken:
    cmd: /nonexistent/llama-server --port ${PORT}
  dies:
    cmd: ${fake} --port ${PORT} --name dies --startup-delay 5 --exit-after 0.3
groups:
  forever:
    persistent: true
    swap: false
    exclusive: false
    members: [p1]
  side:
    swap: false
    exclusive: false
    members: [x1, x2]
"""


class Env:
    pass


def test(name):
    def deco(fn):
        RESULTS.append((name, fn))
        return fn
    return deco


# ---- config checks (no daemon) -------------------------------------------

@test("check_config")
def t_check_ok(env, d):
    r = subprocess.run([env.pegpu, "serve", "--check", "-c", d.cfg], capture_output=True, text=True,
                       env=env.environ, timeout=10)
    check(r.returncode == 0, "--check failed: %s" % r.stderr)
    check("12 models" in r.stdout, "--check output: %s" % r.stdout[:300])
    check("--name b" in r.stdout and "comment" not in r.stdout, "cmd comment not stripped")


@test("check_misspelled_keys")
def t_check_bad(env, d):
    path = os.path.join(env.work, "bad.yaml")
    with open(path, "w") as f:
        f.write("models:\n  m:\n    cmd: x --port ${PORT}\n    tll: 5\n"
                "    checkEndpoint: /health\nhealthcheckTimeout: 30\n")
    r = subprocess.run([env.pegpu, "serve", "--check", "-c", path], capture_output=True, text=True,
                       timeout=10)
    check(r.returncode != 0, "a misspelled key was accepted")
    check(":4: error: unknown key 'tll' in model 'm' (did you mean 'ttl'?)" in r.stderr,
          "no line-4 error for tll: %s" % r.stderr)
    check(":6: error: unknown key 'healthcheckTimeout'" in r.stderr and
          "did you mean 'healthCheckTimeout'" in r.stderr, "no line-6 error: %s" % r.stderr)


# ---- one daemon for the behaviour tests ------------------------------------

@test("health")
def t_health(env, d):
    st, _, body = request(d.port, "GET", "/health")
    check(st == 200 and body == b"OK", "got %d %r" % (st, body))


@test("models_list")
def t_models(env, d):
    st, _, body = request(d.port, "GET", "/v1/models")
    j = json.loads(body)
    ids = [m["id"] for m in j["data"]]
    check(st == 200 and j["object"] == "list", "bad list: %s" % body[:200])
    check("a" in ids and "b" in ids and "hidden" not in ids, "ids: %s" % ids)
    a = [m for m in j["data"] if m["id"] == "a"][0]
    check(a["object"] == "model" and a["name"] == "Model A", "record: %s" % a)
    check(a["meta"]["llamaswap"]["aliases"] == ["alpha"], "aliases not in meta: %s" % a)


@test("start_on_demand_and_queue")
def t_start_queue(env, d):
    t0 = time.time()
    res = parallel(lambda i: chat(d.port, "alpha"), 3)
    for r in res:
        check(not isinstance(r, Exception), "request raised %r" % (r,))
        check(r[0] == 200, "status %d: %s" % (r[0], r[2][:200]))
        check(json.loads(r[2])["served_by"] == "a", "served by %s" % r[2][:200])
    check(time.time() - t0 >= 0.9, "answered before the model's 1 s startup delay")
    check(d.log().count("starting model 'a'") == 1, "model a started %d times" %
          d.log().count("starting model 'a'"))
    check(d.metric("pegpu_serve_model_starts_total", model="a") == 1, "starts metric")


@test("stream_chunks_unbuffered")
def t_stream(env, d):
    st, evs, err = stream(d.port, "a", fake_chunks=5, fake_interval_ms=250)
    check(st == 200 and not err, "status %s err %s" % (st, err))
    data = data_events(evs)
    check(len(data) == 5 and evs[-1][1] == "data: [DONE]", "events: %d" % len(evs))
    lags = [t - j["t_sent"] for t, j in data]
    # Buffering would hold a chunk at least until the next one (250 ms
    # later): each must arrive before its successor was even sent.
    for k in range(len(data) - 1):
        check(data[k][0] < data[k + 1][1]["t_sent"],
              "chunk %d arrived after chunk %d was sent (lags %s)" %
              (k, k + 1, ["%.1f ms" % (x * 1000) for x in lags]))
    check(max(lags) < 0.2, "a chunk arrived %.3f s after it was sent" % max(lags))
    check(data[-1][0] - data[0][0] > 0.9, "chunks arrived together (%.3f s apart)" %
          (data[-1][0] - data[0][0]))
    env.notes.append("stream lag max %.1f ms" % (max(lags) * 1000))


@test("use_model_name_and_swap")
def t_swap(env, d):
    pid_a = d.running()["a"]["pid"]
    st, _, body = chat(d.port, "b")
    check(st == 200, "status %d %s" % (st, body[:200]))
    j = json.loads(body)
    check(j["model"] == "upstream-b", "upstream saw model %s" % j["model"])
    run = d.running()
    check(list(run) == ["b"], "running: %s" % list(run))
    check(not pid_alive(pid_a), "model a's process %d still alive after the swap" % pid_a)


@test("groups_persistent_exclusive")
def t_groups(env, d):
    for m in ("p1", "x1", "x2"):
        st, _, body = chat(d.port, m)
        check(st == 200, "%s: %d %s" % (m, st, body[:200]))
    run = d.running()
    check(set(run) == {"b", "p1", "x1", "x2"}, "non-exclusive groups stopped something: %s" % list(run))
    st, _, _ = chat(d.port, "a")
    check(st == 200, "a: %d" % st)
    run = d.running()
    check(set(run) == {"a", "p1"}, "exclusive start should keep only the persistent group: %s" % list(run))


@test("ttl_unload")
def t_ttl(env, d):
    st, _, _ = chat(d.port, "short")
    check(st == 200, "status %d" % st)
    check("short" in d.running(), "short not running")
    wait_for(lambda: "short" not in d.running(), 4, "ttl 1 s to unload 'short'")


@test("concurrency_limit_429")
def t_limit(env, d):
    chat(d.port, "limited")     # started, so the requests below overlap in flight
    res = parallel(lambda i: chat(d.port, "limited", fake_delay_ms=1000), 4)
    codes = sorted(r[0] for r in res if not isinstance(r, Exception))
    check(codes == [200, 200, 429, 429], "status codes %s" % codes)
    body = [r[2] for r in res if r[0] == 429][0]
    check(b"concurrencyLimit" in body, "429 does not say why: %s" % body)
    check(d.metric("pegpu_serve_rejected_total", model="limited") == 2, "rejected metric")


@test("crash_mid_stream")
def t_crash(env, d):
    chat(d.port, "b")
    pid = d.running()["b"]["pid"]
    st, evs, err = stream(d.port, "b", fake_chunks=10, fake_interval_ms=100, fake_crash_after=2)
    check(st == 200, "status %d" % st)
    check(err is None, "the stream did not end cleanly: %s" % err)
    data = [e for _, e in evs if e.startswith("data: ")]
    check(len(data) == 3, "expected 2 chunks and an error event, got %s" % data)
    last = json.loads(data[-1][6:])
    check("error" in last and "failed in the middle" in last["error"]["message"],
          "last event: %s" % data[-1])
    st, _, body = chat(d.port, "b")
    check(st == 200, "the next request failed: %d %s" % (st, body[:300]))
    check(json.loads(body)["pid"] != pid, "not restarted")
    check(d.metric("pegpu_serve_model_unexpected_exits_total", model="b") >= 1, "exit metric")


@test("crash_before_reply")
def t_crash2(env, d):
    chat(d.port, "b")
    st, _, body = chat(d.port, "b", fake_crash_after=0)
    check(st == 502, "status %d %s" % (st, body[:200]))
    check(b"exited while handling this request" in body, "message: %s" % body)
    check(d.log().count("starting model 'b'") <= 3, "the crashing request was retried")
    st, _, _ = chat(d.port, "b")
    check(st == 200, "next request: %d" % st)


@test("start_failures")
def t_startfail(env, d):
    st, _, body = chat(d.port, "broken")
    check(st == 502 and b"cannot run '/nonexistent/llama-server'" in body, "broken: %d %s" % (st, body))
    st, _, body = chat(d.port, "dies")
    check(st == 502 and b"exited while starting" in body, "dies: %d %s" % (st, body))
    check(b"last output" in body, "no output tail in: %s" % body)


@test("upstream_route")
def t_upstream(env, d):
    st, _, body = request(d.port, "GET", "/upstream/a/props?x=1")
    check(st == 200, "status %d %s" % (st, body[:200]))
    j = json.loads(body)
    check(j["name"] == "a" and j["query"] == "x=1", "props: %s" % j)
    check(j["probe"] == "hello-a", "env: did not reach the model: %s" % j)
    st, h, _ = request(d.port, "GET", "/upstream/a")
    check(st == 301 and h.get("location") == "/upstream/a/", "redirect: %d %s" % (st, h))


@test("bad_input")
def t_bad(env, d):
    st, _, body = request(d.port, "POST", "/v1/chat/completions", b"{not json")
    check(st == 400 and b"not valid JSON" in body, "bad JSON: %d %s" % (st, body))
    check("error" in json.loads(body), "not an OpenAI error object")
    st, _, body = request(d.port, "POST", "/v1/chat/completions", {"messages": []})
    check(st == 400 and b"names no model" in body, "no model: %d %s" % (st, body))
    st, _, body = chat(d.port, "alhpa")
    check(st == 404 and b"did you mean 'alpha'" in body, "unknown model: %d %s" % (st, body))
    big = b'{"model":"a","x":"' + b"x" * (2 << 20) + b'"}'
    try:
        st, _, _ = request(d.port, "POST", "/v1/chat/completions", big)
        check(st == 413, "huge body: %d" % st)
    except (ConnectionError, BrokenPipeError):
        pass    # closed while we were still sending: also a refusal
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s.sendall(b"GARBAGE \x00\x01 nonsense\r\n\r\n")
    reply = s.recv(200)
    s.close()
    check(reply.startswith(b"HTTP/1.1 400"), "garbage request: %r" % reply[:60])
    st, _, body = request(d.port, "GET", "/nope")
    check(st == 404 and b"/v1/" in body, "unknown path: %d %s" % (st, body))
    check(d.up(), "daemon died")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@test("slow_client_backpressure")
def t_backpressure(env, d):
    chat(d.port, "b")
    size = 32 << 20
    before = rss_kb(d.proc.pid)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    body = json.dumps({"model": "b", "fake_bytes": size})
    s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
    held = 0
    for _ in range(16):     # read nothing for 4 s: the model has it all ready by then
        time.sleep(0.25)
        held = max(held, rss_kb(d.proc.pid) - before)
    got = 0
    while True:
        piece = s.recv(1 << 20)
        if not piece:
            break
        got += len(piece)
        if got > size:
            break
    s.close()
    check(got > size, "reply cut short: %d bytes" % got)
    check(held < 20 * 1024, "pegpu held %d KiB of a %d MiB reply for a client that did not read"
          % (held, size >> 20))
    env.notes.append("slow client: pegpu held %d KiB of a %d MiB reply" % (held, size >> 20))


@test("client_disconnect_cancels")
def t_disconnect(env, d):
    chat(d.port, "b")
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    body = json.dumps({"model": "b", "stream": True, "fake_chunks": 50, "fake_interval_ms": 100})
    s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
    s.recv(100)
    wait_for(lambda: d.running()["b"]["inflight"] == 1, 2, "the stream to be in flight")
    s.close()
    wait_for(lambda: d.running()["b"]["inflight"] == 0, 3, "the request to end after the client left")


@test("metrics_and_logs")
def t_metrics(env, d):
    _, h, body = request(d.port, "GET", "/metrics")
    text = body.decode()
    check(h["content-type"].startswith("text/plain"), "content type %s" % h["content-type"])
    for want in ('pegpu_serve_requests_total{model="a",code="200"}',
                 'pegpu_serve_model_state{model="b",state="ready"} 1',
                 'pegpu_serve_request_duration_seconds_bucket{model="a",le="+Inf"}',
                 "pegpu_serve_model_start_failures_total{model=\"broken\"} 1"):
        check(want in text, "missing %s" % want)
    st, _, body = request(d.port, "GET", "/logs")
    check(st == 200 and b"[a] fake_upstream a: pid" in body, "upstream output not in /logs")
    # /logs/stream: a new line arrives live
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
    conn.request("GET", "/logs/stream?no-history")
    r = conn.getresponse()
    check(r.status == 200, "/logs/stream status %d" % r.status)
    request(d.port, "GET", "/unload?model=b")
    got = r.read1(4096) if hasattr(r, "read1") else r.read(64)
    conn.close()
    check(b"unloading model 'b'" in got, "live log line: %r" % got[:200])


@test("unload_all")
def t_unload(env, d):
    chat(d.port, "b")
    st, _, body = request(d.port, "GET", "/unload")
    check(st == 200 and body == b"OK", "unload: %d %s" % (st, body))
    check(d.running() == {}, "still running: %s" % list(d.running()))


@test("sigkill_after_unload_timeout")
def t_stubborn(env, d):
    chat(d.port, "stubborn")
    pid = d.running()["stubborn"]["pid"]
    t0 = time.time()
    st, _, _ = request(d.port, "GET", "/unload?model=stubborn")
    took = time.time() - t0
    check(st == 200 and not pid_alive(pid), "still alive after unload")
    check(0.8 < took < 3, "took %.2f s (unloadTimeout is 1 s)" % took)
    check("did not stop within 1 s; sending SIGKILL" in d.log(), "no SIGKILL log line")


@test("cmd_stop")
def t_cmdstop(env, d):
    chat(d.port, "stopcmd")
    pid = d.running()["stopcmd"]["pid"]
    t0 = time.time()
    st, _, _ = request(d.port, "GET", "/unload?model=stopcmd")
    check(st == 200 and not pid_alive(pid), "still alive after unload")
    # it ignores SIGTERM: only cmdStop's SIGINT can have stopped it this fast
    check(time.time() - t0 < 2, "took %.2f s" % (time.time() - t0))
    check("stopping model 'stopcmd' with cmdStop: kill -INT %d" % pid in d.log(), "no cmdStop log line")


@test("sighup_reload_keeps_streams")
def t_reload(env, d):
    chat(d.port, "b")
    pid_b = d.running()["b"]["pid"]
    box = {}
    th = threading.Thread(target=lambda: box.setdefault(
        "r", stream(d.port, "b", fake_chunks=12, fake_interval_ms=150)))
    th.start()
    wait_for(lambda: d.running().get("b", {}).get("inflight") == 1, 3, "the stream to start")
    # b's command changes and a model appears: b must finish its reply first
    cfg = MAIN_CONFIG.replace("--name b", "--name b --startup-delay 0.1").replace(
        "groups:\n", "  newcomer:\n    cmd: ${fake} --port ${PORT} --name newcomer\ngroups:\n")
    d.write_config(cfg)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in d.log(), 3, "the reload")
    th.join(10)
    st, evs, err = box["r"]
    check(st == 200 and err is None, "stream after reload: %s %s" % (st, err))
    check(len(data_events(evs)) == 12, "stream cut short: %d chunks" % len(data_events(evs)))
    wait_for(lambda: not pid_alive(pid_b), 3, "the replaced b to stop once idle")
    st, _, body = chat(d.port, "newcomer")
    check(st == 200 and json.loads(body)["served_by"] == "newcomer", "new model: %d" % st)
    # a broken config is refused and the old one keeps serving
    d.write_config(cfg.replace("groups:\n", "  oops:\n    cmdd: nothing\ngroups:\n"))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reload failed" in d.log(), 3, "the failed reload")
    check("unknown key 'cmdd' in model 'oops' (did you mean 'cmd'?)" in d.log(), "no diagnostic")
    st, _, _ = chat(d.port, "newcomer")
    check(st == 200, "old config no longer served: %d" % st)
    d.write_config(MAIN_CONFIG)
    d.proc.send_signal(signal.SIGHUP)


# ---- separate daemons -----------------------------------------------------

@test("api_keys")
def t_keys(env, _):
    cfg = ("apiKeys: [sk-test-1, \"${env.KEY2}\"]\nstartPort: ${env.PORT_BASE2}\nmodels:\n"
           "  k:\n    cmd: ${env.FAKE} --port ${PORT} --name k\n"
           "hooks:\n  on_startup:\n    preload: [k]\n")
    d = Daemon(env, env.work, "keys", cfg, env.port + 1)
    d.start()
    try:
        # hooks.on_startup.preload started k before any request
        wait_for(lambda: "preloaded model 'k'" in d.log(), 5, "the preload")
        st, _, body = request(d.port, "GET", "/running", headers={"Authorization": "Bearer sk-test-1"})
        check(st == 200 and b'"state":"ready"' in body, "preload: %d %s" % (st, body[:200]))
        st, h, body = chat(d.port, "k")
        check(st == 401 and b"Authorization: Bearer" in body, "no key: %d %s" % (st, body))
        check("www-authenticate" in h, "no WWW-Authenticate")
        st, _, _ = chat(d.port, "k", headers={"Authorization": "Bearer sk-test-1"})
        check(st == 200, "bearer: %d" % st)
        st, _, _ = chat(d.port, "k", headers={"x-api-key": "sk-from-env"})
        check(st == 200, "x-api-key from ${env.KEY2}: %d" % st)
        st, _, _ = chat(d.port, "k", headers={"Authorization": "Bearer wrong"})
        check(st == 401, "wrong key: %d" % st)
        st, _, _ = request(d.port, "GET", "/health")
        check(st == 200, "/health needs no key: %d" % st)
    finally:
        d.stop()


@test("kill9_restart_no_orphans")
def t_orphans(env, _):
    marker = "orphan-%d" % os.getpid()
    cfg = ("startPort: ${env.PORT_BASE3}\ngroups:\n  all:\n    swap: false\n    members: [direct, wrapped]\n"
           "models:\n  direct:\n    cmd: ${env.FAKE} --port ${PORT} --name %s-direct --spawn-child\n"
           "  wrapped:\n    cmd: sh -c '${env.FAKE} --port ${PORT} --name %s-wrapped & wait'\n"
           "    checkEndpoint: /health\n" % (marker, marker))
    d = Daemon(env, env.work, "orphans", cfg, env.port + 2)
    d.start()
    try:
        for m in ("direct", "wrapped"):
            st, _, body = chat(d.port, m)
            check(st == 200, "%s: %d %s" % (m, st, body[:200]))
        before = procs_with(marker)
        check(len(before) >= 3, "expected server, child and wrapped server: %s" % before)
        d.proc.kill()
        d.proc.wait()
        d.logf.close()
        time.sleep(0.3)
        survivors = procs_with(marker)
        d.start()       # same state directory: sweeps what is left
        wait_for(lambda: not procs_with(marker), 5, "leftovers to be stopped; still: %s" %
                 procs_with(marker))
        env.notes.append("after kill -9: %d of %d processes outlived the daemon; the restart swept them"
                         % (len(survivors), len(before)))
        check("leftover process" in d.log() or not survivors, "no sweep log line")
        st, _, _ = chat(d.port, "direct")
        check(st == 200, "serving after restart: %d" % st)
    finally:
        d.stop()
        for p in procs_with(marker):
            os.kill(p, signal.SIGKILL)


@test("sigterm_stops_models")
def t_sigterm(env, d):
    chat(d.port, "b")
    pid = d.running()["b"]["pid"]
    d.stop()
    check(d.proc.returncode == 0, "exit code %s" % d.proc.returncode)
    check(not pid_alive(pid), "model b outlived the daemon")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pegpu", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--configs", required=True)
    ap.add_argument("--only", help="regex of tests to run")
    args = ap.parse_args()
    env = Env()
    env.pegpu, env.notes = os.path.abspath(args.pegpu), []
    env.work = tempfile.mkdtemp(prefix="pegpu-serve-test-")
    env.port = random.randint(20000, 40000)
    env.environ = dict(os.environ, FAKE=os.path.abspath(args.fake), KEY2="sk-from-env",
                       PORT_BASE=str(env.port + 100), PORT_BASE2=str(env.port + 200),
                       PORT_BASE3=str(env.port + 300))
    d = Daemon(env, env.work, "main", MAIN_CONFIG, env.port)
    passed = failed = 0
    try:
        d.start()
    except Fail as e:
        log("FAIL start: %s" % e)
        log("0 passed, 1 failed")
        return 1
    try:
        for name, fn in RESULTS:
            if args.only and not re.search(args.only, name):
                continue
            t0 = time.time()
            try:
                fn(env, d)
                log("PASS %s (%.1f s)" % (name, time.time() - t0))
                passed += 1
            except Exception as e:  # a test's failure is reported, not raised
                msg = str(e) if isinstance(e, Fail) else "%s: %s" % (type(e).__name__, e)
                log("FAIL %s: %s" % (name, msg.replace("\n", " ")[:600]))
                failed += 1
    finally:
        d.stop()
    for n in env.notes:
        log("note: " + n)
    if failed or os.environ.get("PEGPU_TEST_KEEP"):
        log("logs kept in %s" % env.work)
    else:
        shutil.rmtree(env.work, ignore_errors=True)
    log("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
