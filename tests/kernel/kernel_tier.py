#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Kernel tier: boot Debian kernels on PEGPU Machine under TCG, run the
guest scenarios of guest-init.sh, read the device counters over QMP and
check what must hold.

    kernel_tier.py check --arch arm64 --scenario normal --initrd X [--json OUT]
    kernel_tier.py check --arch arm64 --scenario replay --initrd X \
        --dmatrace build/.../pegpu-dmatrace --trace replay.trace
    kernel_tier.py demo  --arch arm64 --initrd X

Paths to QEMU, firmware and kernels come from the environment variables
that machine/qemu/build.sh and scripts/fetch-kernels.sh print.  Prints one
`PASS name` / `FAIL name: why` line per check; exits 1 if any failed.
"""
import argparse
import base64
import binascii
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

COUNTERS = ["doorbells", "entries", "maps", "unmaps", "live-mappings", "mapped-bytes",
            "peak-mappings", "peak-mapped-bytes", "refusals", "errors", "faults", "resets"]
DMATEST_COUNTERS = ["faults", "bytes-read", "bytes-written", "descs"]

# Caps of the error scenario: small enough that the self-test can hit both.
ERROR_CAPS = {"max-mapped-bytes": 1 << 20, "max-mappings": 16}
DEFAULT_CAPS = {"max-mapped-bytes": 1536 << 20, "max-mappings": 65536}
SCENARIOS = ["normal", "errors", "replay", "recovery", "backpressure"]
# the backpressure cases fill these caps with 64 KiB buffers (1 + 15 mappings)
SCENARIO_CAPS = {"errors": ERROR_CAPS, "backpressure": ERROR_CAPS}
# guest reboots a scenario makes (QEMU then runs without -no-reboot)
SCENARIO_REBOOTS = {"recovery": 1}

ARCHES = {
    "arm64": {
        "qemu": "PEGPU_QEMU_AARCH64", "kernel": "PEGPU_VMLINUZ_ARM64",
        "machine": ["-M", "virt,gic-version=3", "-cpu", "max,pauth-impdef=on"],
        "console": "ttyAMA0",
    },
    "x86_64": {
        "qemu": "PEGPU_QEMU_X86_64", "kernel": "PEGPU_VMLINUZ_AMD64",
        "machine": ["-M", "q35", "-vga", "none", "-parallel", "none"],
        "console": "ttyS0",
    },
}

KV = re.compile(r"(\w+)=(\S+)")


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit(f"kernel_tier: ${name} is not set; run it through tests/kernel/run.sh "
                 "(which runs machine/qemu/build.sh and scripts/fetch-kernels.sh)")
    return v


class Qmp:
    """Minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path, deadline):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise RuntimeError("QEMU's QMP socket never appeared")
                time.sleep(0.05)
        self.sock.settimeout(30)
        self.buf = b""
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError(f"QMP {name}: {r['error'].get('desc')}")
            return r.get("return")

    def wait_event(self, name, deadline):
        if any(e["event"] == name for e in self.events):
            return True
        while time.time() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.time()))
            try:
                r = self._read()
            except (socket.timeout, TimeoutError):
                return False
            if r.get("event") == name:
                return True
        return False


def wait_serial(path, text, count, deadline):
    """Wait until text occurs count times in the serial log."""
    while time.time() < deadline:
        try:
            with open(path, errors="replace") as f:
                if f.read().count(text) >= count:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def boot(arch, scenario, initrd, caps, timeout, workdir, reboots=0):
    a = ARCHES[arch]
    qemu = env(a["qemu"])
    sock = os.path.join(workdir, "qmp.sock")
    serial = os.path.join(workdir, f"serial-{arch}-{scenario}.log")
    dma = f"pegpu-dma,id=dma0,managed=gpu0,max-mapped-bytes={caps['max-mapped-bytes']}," \
          f"max-mappings={caps['max-mappings']}"
    argv = [qemu, "-accel", "tcg", *a["machine"], "-m", "512M", "-smp", "2",
            "-display", "none", "-monitor", "none", "-nic", "none",
            *([] if reboots else ["-no-reboot"]), "-no-shutdown",
            "-serial", f"file:{serial}", "-qmp", f"unix:{sock},server=on,wait=off",
            "-kernel", env(a["kernel"]), "-initrd", initrd,
            "-append", f"console={a['console']} panic=-1 loglevel=4 pegpu.scenario={scenario}",
            "-device", "pegpu-dmatest,id=gpu0", "-device", dma]
    if arch == "x86_64" and os.environ.get("PEGPU_SEABIOS"):
        argv[1:1] = ["-bios", os.environ["PEGPU_SEABIOS"]]
    t0 = time.time()
    stderr_path = os.path.join(workdir, "qemu.stderr")
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    res = {"argv": argv, "arch": arch, "scenario": scenario, "caps": caps}
    try:
        q = Qmp(sock, t0 + 30)
        res["resets"] = []
        for n in range(reboots):
            if not q.wait_event("RESET", t0 + timeout):
                break
            q.events = [e for e in q.events if e["event"] != "RESET"]
            # right after the reset, before the next boot's driver loads
            res["resets"].append({c: q.cmd("qom-get", path="/machine/peripheral/dma0",
                                           property=c) for c in COUNTERS})
            # SeaBIOS resets the machine once more on its way to a warm boot:
            # wait for the next boot's /init before counting further resets
            if not wait_serial(serial, "PEGPU_GUEST kernel=", n + 2, t0 + timeout):
                break
            q.events = [e for e in q.events if e["event"] != "RESET"]
        if reboots:
            # one more reboot (a panic with panic=-1, say) ends the run
            q.cmd("set-action", reboot="shutdown")
        res["shutdown"] = q.wait_event("SHUTDOWN", t0 + timeout)
        res["seconds"] = round(time.time() - t0, 1)
        # QEMU still answering after everything the guest threw at it
        res["qemu_alive"] = q.cmd("query-status") is not None and proc.poll() is None
        res["counters"] = {c: q.cmd("qom-get", path="/machine/peripheral/dma0", property=c)
                           for c in COUNTERS}
        res["dmatest"] = {c: q.cmd("qom-get", path="/machine/peripheral/gpu0", property=c)
                          for c in DMATEST_COUNTERS}
        q.cmd("quit")
    except (RuntimeError, OSError) as e:
        res["error"] = str(e)
        res.setdefault("qemu_alive", False)
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    res["qemu_rc"] = proc.returncode
    with open(serial, errors="replace") as f:
        res["serial"] = f.read()
    with open(stderr_path, errors="replace") as f:
        res["qemu_stderr"] = f.read()
    return res


def lines(serial, tag):
    """Key=value dicts of the lines that start with tag (after any prefix)."""
    out = []
    for ln in serial.splitlines():
        i = ln.find(tag + " ")
        if i >= 0:
            out.append(dict(KV.findall(ln[i + len(tag):])))
    return out


def device_peaks(text):
    """(peak mappings, peak mapped bytes) the device reported in debugfs before
    the unload's reset restarted them; None if the dump is missing."""
    m = re.search(r"device\.peak-mappings (\d+)", text)
    b = re.search(r"device\.peak-mapped-bytes (\d+)", text)
    return (int(m.group(1)), int(b.group(1))) if m and b else None


def detail(case):
    """The detail=a:1,b:2 field of a self-test case line, as a dict."""
    if not case or "detail" not in case:
        return {}
    return dict(kv.split(":", 1) for kv in case["detail"].split(",") if ":" in kv)


def runs(serial):
    """Split the normal scenario's serial log into its runs, by cluster size."""
    parts = re.split(r"PEGPU_RUN cluster_size=(\d+)", serial)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


class Checks:
    def __init__(self, prefix):
        self.prefix, self.passed, self.failed = prefix, 0, 0

    def __call__(self, name, ok, why=""):
        if ok:
            self.passed += 1
            print(f"PASS {self.prefix}{name}")
        else:
            self.failed += 1
            print(f"FAIL {self.prefix}{name}: {why}")
        sys.stdout.flush()
        return ok


def common_checks(ck, res):
    s = res["serial"]
    ck("boot", "PEGPU_GUEST " in s, "the guest never ran /init; see the serial log")
    ck("guest-done", "PEGPU_GUEST_DONE" in s, "the guest did not finish its scenario")
    ck("powered-off", res.get("shutdown", False), "no SHUTDOWN event within the time limit")
    ck("qemu-alive", res.get("qemu_alive", False) and not res.get("error"),
       res.get("error", "QEMU stopped answering QMP"))
    bad = [m for m in ("Oops", "BUG:", "WARNING:", "Call trace", "Kernel panic") if m in s]
    ck("no-kernel-errors", not bad, f"the guest log has {bad}")
    failed_steps = [d for d in lines(s, "PEGPU_STEP") if d.get("rc") != "0"]
    ck("steps", not failed_steps, f"failed steps {failed_steps}")
    c = res.get("counters", {})
    ck("no-live-mappings", c.get("live-mappings") == 0 and c.get("mapped-bytes") == 0,
       f"device has {c.get('live-mappings')} live mappings, {c.get('mapped-bytes')} bytes")
    rel = re.findall(r"released, device live mappings (\d+)", s)
    ck("unload-releases-all", rel and all(r == "0" for r in rel),
       f"unload reported live mappings {rel}")


def check_normal(ck, res):
    common_checks(ck, res)
    c = res.get("counters", {})
    ck("no-faults", c.get("faults") == 0 and res.get("dmatest", {}).get("faults") == 0,
       f"faults: device {c.get('faults')}, dmatest {res.get('dmatest', {}).get('faults')}")
    ck("no-refusals-or-errors", c.get("refusals") == 0 and c.get("errors") == 0,
       f"refusals {c.get('refusals')}, errors {c.get('errors')}")
    summary = {}
    for cs, text in runs(res["serial"]).items():
        tag = f"cluster{cs // 1024}k/" if cs else "nocluster/"
        st = lines(text, "PEGPU_SELFTEST")
        ok = len(st) == 1 and st[0].get("result") == "PASS" and st[0].get("failed") == "0"
        ck(tag + "selftest", ok, f"summary {st}")
        if not st:
            continue
        s = st[0]
        summary[cs] = s
        cases = lines(text, "PEGPU_SELFTEST_CASE")
        bad = [d.get("name") for d in cases if d.get("result") != "PASS"]
        ck(tag + "cases", cases and not bad, f"failed cases {bad}")
        ck(tag + "bytes-verified", int(s.get("bytes_verified", 0)) > 8 << 20,
           f"only {s.get('bytes_verified')} bytes verified")
        ck(tag + "live-at-end", s.get("live_at_end") == "0", f"live_at_end={s.get('live_at_end')}")
        peaks = device_peaks(text)
        caps = res["caps"]
        ck(tag + "caps-never-exceeded", peaks and peaks[0] <= caps["max-mappings"]
           and peaks[1] <= caps["max-mapped-bytes"], f"device peaks {peaks} vs caps {caps}")
        by_name = {d.get("name"): d for d in cases}
        # a scatterlist of 256 scattered entries is mapped with exactly one doorbell
        sg = detail(by_name.get("sg_scattered"))
        ck(tag + "sg-one-doorbell", sg.get("entries") == "256" and sg.get("map_doorbells") == "1",
           f"sg_scattered detail {sg or 'missing'}")
        if cs:
            # 64 4 KiB buffers in one cluster: one MAP; maps that hit the live
            # cluster ring no doorbell at all
            cp = detail(by_name.get("cluster_pack"))
            ck(tag + "cluster-hit-no-doorbell",
               cp.get("maps") == "1" and cp.get("next_63_map_doorbells") == "0"
               and cp.get("remap_doorbells") == "0", f"cluster_pack detail {cp or 'missing'}")
    if 262144 in summary and 0 in summary:
        a, b = summary[262144], summary[0]
        ck("coalescing-reduces-peak-mappings",
           int(a["peak_mappings"]) < int(b["peak_mappings"]),
           f"peak mappings {a['peak_mappings']} with clusters vs {b['peak_mappings']} without")
        ck("coalescing-reduces-maps", int(a["maps"]) < int(b["maps"]),
           f"MAPs {a['maps']} with clusters vs {b['maps']} without")
    else:
        ck("both-runs", False, "missing the run with or without coalescing")
    return summary


def check_errors(ck, res):
    common_checks(ck, res)
    s = res["serial"]
    parts = re.split(r"PEGPU_RUN precheck=(\d)", s)
    pruns = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    caps = res["caps"]
    for pc, why in (("1", "driver-refuses"), ("0", "device-refuses")):
        st = lines(pruns.get(pc, ""), "PEGPU_SELFTEST")
        ck(f"{why}/refusal-selftest", len(st) == 1 and st[0].get("result") == "PASS",
           f"summary {st}")
        peaks = device_peaks(pruns.get(pc, ""))
        ck(f"{why}/caps-never-exceeded", peaks and peaks[0] <= caps["max-mappings"]
           and peaks[1] <= caps["max-mapped-bytes"], f"device peaks {peaks} vs caps {caps}")
    bb = lines(s, "PEGPU_BADBATCH")
    ck("badbatch", len(bb) == 1 and bb[0].get("result") == "PASS", f"summary {bb}")
    cases = lines(s, "PEGPU_BADBATCH_CASE")
    bad = [d.get("name") for d in cases if d.get("result") != "PASS"]
    ck("badbatch-cases", len(cases) >= 10 and not bad, f"{len(cases)} cases, failed {bad}")
    c = res.get("counters", {})
    # precheck=0 sent over-cap requests: the device refused them, counted them
    ck("device-refusals-counted", c.get("refusals", 0) > 0, f"refusals={c.get('refusals')}")
    ck("errors-counted", c.get("errors", 0) >= len(cases) - 1, f"errors={c.get('errors')}")


def debugfs(text, tag):
    """The debugfs stats dump tagged tag (guest-init.sh dump_debugfs), as a
    name -> int dict; {} if it is missing."""
    m = re.search(r"PEGPU_DEBUGFS_BEGIN " + re.escape(tag) + r"\n(.*?)PEGPU_DEBUGFS_END", text,
                  re.S)
    out = {}
    for ln in (m.group(1).splitlines() if m else []):
        f = ln.split()
        if len(f) == 2:
            try:
                out[f[0]] = int(f[1], 0)
            except ValueError:
                pass
    return out


B64 = re.compile(r"^[A-Za-z0-9+/=]+$")


def trace_blob(serial, tag):
    """The binary trace guest-init.sh printed in base64 (dump_trace tag), or None."""
    m = re.search(r"PEGPU_TRACE_BEGIN tag=" + re.escape(tag) + r" bytes=(\d+)\n(.*?)PEGPU_TRACE_END",
                  serial, re.S)
    if not m:
        return None
    text = "".join(ln.strip() for ln in m.group(2).splitlines() if B64.match(ln.strip()))
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return blob if len(blob) == int(m.group(1)) else None


def dmatrace_replay(tool, path, *args):
    """Run pegpu-dmatrace replay; its key=value line as a dict of ints (and why)."""
    try:
        p = subprocess.run([tool, "replay", path, *args], capture_output=True, text=True,
                           timeout=120)
    except OSError as e:
        return {"error": str(e)}
    kv = dict(KV.findall(p.stdout))
    out = {k: int(v) if v.isdigit() else v for k, v in kv.items()}
    if p.returncode or not out:
        out["error"] = f"rc={p.returncode} {p.stderr.strip()[-300:]}"
    return out


def replay_recording(tool, blob, st):
    """Replay a trace the guest recorded with the guest's configuration (debugfs st)."""
    fd, path = tempfile.mkstemp(prefix="pegpu-rec-", suffix=".trace")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        return dmatrace_replay(tool, path, "--cluster", str(st.get("limits.cluster_size", 0)),
                               "--max-mappings", str(st.get("limits.max_mappings", 0)),
                               "--max-mapped-bytes", str(st.get("limits.max_mapped_bytes", 0)),
                               "--max-batch", str(st.get("limits.max_batch", 0)))
    finally:
        os.unlink(path)


# debugfs stats (left) that a user-space replay of the recording (right) must reproduce
REPLAY_SAME = [("device.maps", "maps"), ("device.unmaps", "unmaps"),
               ("device.doorbells", "doorbells"), ("device.entries", "entries"),
               ("device.live-mappings", "live_mappings"),
               ("device.peak-mappings", "peak_mappings"),
               ("device.peak-mapped-bytes", "peak_mapped_bytes"),
               ("coalescer.hits", "hits"), ("coalescer.misses", "misses")]


def check_selftest_summary(ck, text, tag):
    """One PEGPU_SELFTEST summary that passed, every case line passed."""
    st = lines(text, "PEGPU_SELFTEST")
    ck(tag + "summary", len(st) == 1 and st[0].get("result") == "PASS", f"summary {st}")
    cases = lines(text, "PEGPU_SELFTEST_CASE")
    bad = [(d.get("name"), d.get("detail")) for d in cases if d.get("result") != "PASS"]
    ck(tag + "cases", cases and not bad, f"failed cases {bad}")
    return {d.get("name"): d for d in cases}


def check_replay(ck, res, tool, trace):
    """A generated trace replayed in the guest; the guest's own recording,
    replayed in user space, must give the counts the guest's debugfs shows."""
    common_checks(ck, res)
    s = res["serial"]
    c = res.get("counters", {})
    ck("no-faults", c.get("faults") == 0 and res.get("dmatest", {}).get("faults") == 0,
       f"faults: device {c.get('faults')}, dmatest {res.get('dmatest', {}).get('faults')}")
    ck("no-refusals-or-errors", c.get("refusals") == 0 and c.get("errors") == 0,
       f"refusals {c.get('refusals')}, errors {c.get('errors')}")
    check_selftest_summary(ck, s, "")
    rp = lines(s, "PEGPU_REPLAY")
    r = rp[0] if len(rp) == 1 else {}
    want = dmatrace_replay(tool, trace) if tool and trace else {"error": "no --dmatrace/--trace"}
    ck("replay-complete", r.get("result") == "PASS" and r.get("map_failures") == "0"
       and r.get("calls") == str(want.get("trace_maps")) and r.get("unknown_unmaps") == "0"
       and r.get("dup_ids") == "0",
       f"guest {r or 'no PEGPU_REPLAY line'}, input trace has {want.get('trace_maps')} calls "
       f"{want.get('error', '')}")
    ck("replay-all-kinds", all(int(r.get(k, 0)) > 0 for k in ("single", "sg", "coherent")),
       f"kinds single={r.get('single')} sg={r.get('sg')} coherent={r.get('coherent')}")
    ck("replay-data-verified", int(r.get("verified", 0)) >= int(r.get("calls", 0)) // 8 > 0,
       f"verified {r.get('verified')} of {r.get('calls')} calls")
    ck("replay-nothing-left", r.get("live_at_end") == "0", f"live_at_end={r.get('live_at_end')}")

    st = debugfs(s, "replay")
    ck("trace-recorded", st.get("trace.capacity", 0) > 0 and st.get("trace.dropped") == 0
       and st.get("trace.queued") == 0,
       f"trace.capacity {st.get('trace.capacity')} dropped {st.get('trace.dropped')} "
       f"queued {st.get('trace.queued')} (the dump must drain the ring)")
    blob = trace_blob(s, "replay")
    if not ck("trace-dumped", blob is not None, "no complete PEGPU_TRACE block in the serial log"):
        return
    got = replay_recording(tool, blob, st)
    res["recorded_replay"] = got
    ck("recording-replays", got.get("consistent") == 1 and not got.get("error"),
       f"pegpu-dmatrace replay: {got}")
    # every call of the input trace, plus the self-test's ring and scratch buffer
    ck("recording-complete", got.get("trace_events") == st.get("trace.recorded")
       and got.get("dropped") == 0 and got.get("skipped_failed") == 0
       and got.get("unknown_unmaps") == 0 and got.get("dup_maps") == 0
       and got.get("calls", 0) >= int(r.get("calls", 0)) + 2,
       f"recorded {got.get('trace_events')} events of {st.get('trace.recorded')}, calls "
       f"{got.get('calls')} (replayed {r.get('calls')}), dropped {got.get('dropped')}, unknown "
       f"unmaps {got.get('unknown_unmaps')}, duplicate ids {got.get('dup_maps')}")
    diff = [f"{a}={st.get(a)} vs {b}={got.get(b)}" for a, b in REPLAY_SAME
            if st.get(a) is None or st.get(a) != got.get(b)]
    ck("recording-replays-to-same-counts", not diff, "; ".join(diff))


def check_recovery(ck, res, tool, trace):
    """Mappings left live survive neither an unload/reload of pegpu_dma nor a
    guest reboot: the device is empty before any driver loads again."""
    common_checks(ck, res)
    s = res["serial"]
    parts = s.split("PEGPU_RECOVERY reboot")
    boot1 = parts[0]
    boot2 = parts[1] if len(parts) == 2 else ""
    ck("two-boots", "PEGPU_RECOVERY boot=1" in boot1 and "PEGPU_RECOVERY boot=2" in boot2
       and len(res.get("resets", [])) == 1,
       f"boot 1 {'PEGPU_RECOVERY boot=1' in boot1}, boot 2 {'PEGPU_RECOVERY boot=2' in boot2}, "
       f"QMP resets {len(res.get('resets', []))}")
    regs = {d.get("tag"): d for d in lines(s, "PEGPU_DEVREGS")}
    first = lines(boot1, "PEGPU_DEVREGS")
    ck("boot1-fresh-device", first and first[0].get("tag") == "boot" and first[0].get("maps") == "0",
       f"boot 1 registers {first[:1]}")
    leaked = debugfs(boot1, "leaked")
    n_leak = leaked.get("device.live-mappings", 0)
    ck("mappings-left-live", n_leak >= 3 and leaked.get("coalescer.live_buffers", 0) >= 8,
       f"after leak=8: device live mappings {n_leak}, "
       f"buffers {leaked.get('coalescer.live_buffers')}")
    drained = re.findall(r"unmapped (\d+) mappings left by", boot1)
    ck("unload-drains-leaks", drained[:1] == [str(n_leak)],
       f"unload drained {drained}, {n_leak} were live")
    un = regs.get("unloaded", {})
    ck("device-empty-after-unload", un.get("live") == "0" and un.get("mapped") == "0",
       f"registers after unload {un or 'missing'}")
    rl = debugfs(boot1, "reloaded")
    ck("reload-starts-empty", rl and rl.get("device.live-mappings") == 0
       and rl.get("coalescer.live_records") == 0, f"after reload {rl or 'no dump'}")
    again = debugfs(boot1, "leaked_again").get("device.live-mappings", 0)
    ck("live-at-reboot", again >= 3, f"{again} mappings live when the guest rebooted")
    after = (res.get("resets") or [{}])[0]
    ck("reset-releases-all", after.get("live-mappings") == 0 and after.get("mapped-bytes") == 0,
       f"QMP right after the reset: {after or 'no RESET event'}")
    b2 = lines(boot2, "PEGPU_DEVREGS")
    b2 = b2[0] if b2 else {}
    ck("boot2-empty-before-driver", b2.get("live") == "0" and b2.get("mapped") == "0"
       and int(b2.get("maps", 0)) > 0 and int(b2.get("resets", 0)) > int(first[0].get("resets", 0)
                                                                       if first else 0),
       f"boot 2 registers before any driver {b2 or 'missing'}, boot 1's {first[:1]}")
    check_selftest_summary(ck, boot2, "boot2-")
    rp = lines(boot2, "PEGPU_REPLAY")
    ck("boot2-replay", len(rp) == 1 and rp[0].get("result") == "PASS"
       and rp[0].get("map_failures") == "0", f"replay after the reboot {rp}")


def check_backpressure(ck, res, tool):
    """Tiny caps: sleepable maps wait for an unmap and succeed, or give up
    after wait_ms; atomic ones fail at once."""
    common_checks(ck, res)
    s = res["serial"]
    c = res.get("counters", {})
    ck("no-faults", c.get("faults") == 0 and res.get("dmatest", {}).get("faults") == 0,
       f"faults: device {c.get('faults')}, dmatest {res.get('dmatest', {}).get('faults')}")
    cases = check_selftest_summary(ck, s, "")
    want = ["bp_setup", "bp_atomic_no_wait", "bp_wait_coherent", "bp_wait_streaming",
            "bp_timeout"]
    ck("all-cases-ran", all(n in cases for n in want), f"cases {sorted(cases)}")
    st = debugfs(s, "backpressure")
    stream = st.get("limits.wait_streaming")
    co = detail(cases.get("bp_wait_coherent"))
    ck("sleepable-alloc-waited", 100 <= int(co.get("coherent_waited_ms", -1)) < 1000,
       f"bp_wait_coherent detail {co}")
    sm = detail(cases.get("bp_wait_streaming"))
    if stream:
        ck("sleepable-map-waited", 100 <= int(sm.get("single_waited_ms", -1)) < 1000
           and 100 <= int(sm.get("sg_waited_ms", -1)) < 1000, f"bp_wait_streaming detail {sm}")
    else:
        # no CONFIG_PREEMPT_COUNT: streaming maps cannot tell a spinlock is held
        ck("streaming-map-never-waits", sm.get("streaming_waits") == "0",
           f"bp_wait_streaming detail {sm}")
    at = detail(cases.get("bp_atomic_no_wait"))
    ck("atomic-fails-at-once", at.get("nowait") == "3" and at.get("fill") == "15",
       f"bp_atomic_no_wait detail {at}")
    ck("timeout", 750 <= int(detail(cases.get("bp_timeout")).get("gave_up_after_ms", -1)),
       f"bp_timeout detail {detail(cases.get('bp_timeout'))}")
    waits = 4 if stream else 2
    ck("counters", st.get("driver.bp_waits") == waits and st.get("driver.bp_wait_ok") == waits - 1
       and st.get("driver.bp_timeouts") == 1 and st.get("driver.bp_nowait", 0) >= 3,
       f"bp_waits {st.get('driver.bp_waits')} (want {waits}), ok {st.get('driver.bp_wait_ok')}, "
       f"timeouts {st.get('driver.bp_timeouts')}, nowait {st.get('driver.bp_nowait')}")
    peaks = device_peaks(s)
    caps = res["caps"]
    ck("caps-never-exceeded", peaks and peaks[0] <= caps["max-mappings"]
       and peaks[1] <= caps["max-mapped-bytes"], f"device peaks {peaks} vs caps {caps}")

    # the 16-record trace ring overflowed twice around a partial read: the
    # two reads together are one stream with a DROP at each gap, and every
    # event is either in it or counted in a DROP
    head, rest = trace_blob(s, "head"), trace_blob(s, "rest")
    tr = debugfs(s, "traced")
    if not ck("trace-reads", head is not None and len(head) == 64 + 4 * 32 and rest is not None
              and len(rest) >= 64, f"head {head and len(head)} bytes, rest {rest and len(rest)}"):
        return
    got = replay_recording(tool, head + rest[64:], tr)
    ck("trace-drops-marked", got.get("consistent") == 1 and got.get("trace_drop_records") == 2
       and got.get("dropped") == tr.get("trace.dropped") and tr.get("trace.dropped", 0) > 0,
       f"stream: {got.get('trace_drop_records')} DROP records for {got.get('dropped')} events, "
       f"debugfs trace.dropped {tr.get('trace.dropped')}, replay {got.get('consistent')} "
       f"{got.get('error', '')}")
    ck("trace-lossless", got.get("trace_events", 0) - got.get("trace_drop_records", 0)
       == tr.get("trace.recorded") and tr.get("trace.queued") == 0,
       f"{got.get('trace_events')} records ({got.get('trace_drop_records')} DROPs) read, "
       f"debugfs trace.recorded {tr.get('trace.recorded')} queued {tr.get('trace.queued')}")


def fmt_bytes(n):
    n = int(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def print_summary(res, summary):
    s = res["serial"]
    g = lines(s, "PEGPU_GUEST")
    kernel = g[0].get("kernel", "?") if g else "?"
    print()
    print(f"PEGPU Machine DMA self-test: {res['arch']} guest, Linux {kernel}, QEMU TCG, "
          f"emulated DART ({fmt_bytes(res['caps']['max-mapped-bytes'])}, "
          f"{res['caps']['max-mappings']} mappings), {res.get('seconds', '?')} s")
    rows = [("self-test", "result"), ("cases", "cases"), ("bytes moved and verified", "bytes_verified"),
            ("MAP entries sent", "maps"), ("doorbells", "doorbells"),
            ("peak live DART mappings", "peak_mappings"), ("peak mapped bytes", "peak_mapped_bytes"),
            ("live mappings at end", "live_at_end")]
    cols = [(262144, "256 KiB clusters"), (0, "no coalescing")]
    # DMA API calls the driver saw (debugfs), and doorbells per call
    for cs, text in runs(s).items():
        d = dict(re.findall(r"^driver\.(\w+) (\d+)", text, re.M))
        if cs in summary and d:
            calls = sum(int(d.get(k, 0)) for k in ("map_calls", "sg_calls", "unmap_calls"))
            summary[cs]["calls"] = str(calls)
            summary[cs]["per_call"] = f"{int(summary[cs]['doorbells']) / max(calls, 1):.3f}"
    rows[3:3] = [("DMA API calls (map, sg, unmap)", "calls")]
    rows[6:6] = [("doorbells per DMA API call", "per_call")]
    print(f"  {'':32}" + "".join(f"{h:>20}" for _, h in cols))
    for label, key in rows:
        vals = []
        for cs, _ in cols:
            v = summary.get(cs, {}).get(key, "-")
            if key == "peak_mapped_bytes" and v != "-":
                v = fmt_bytes(v)
            vals.append(f"{v:>20}")
        print(f"  {label:32}" + "".join(vals))
    c = res.get("counters", {})
    print(f"  device totals (QMP): {c.get('doorbells')} doorbells, {c.get('maps')} maps, "
          f"{c.get('unmaps')} unmaps, {c.get('faults')} faults, {c.get('refusals')} refusals; "
          f"live now {c.get('live-mappings')} mappings / {c.get('mapped-bytes')} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["check", "demo"])
    ap.add_argument("--arch", choices=sorted(ARCHES), required=True)
    ap.add_argument("--scenario", choices=SCENARIOS, default="normal")
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--json", help="write the full result here")
    ap.add_argument("--keep", help="copy the serial log here")
    ap.add_argument("--dmatrace", help="tools/pegpu-dmatrace binary (replay, recovery)")
    ap.add_argument("--trace", help="the trace the guest replays (replay, recovery)")
    args = ap.parse_args()

    caps = SCENARIO_CAPS.get(args.scenario, DEFAULT_CAPS)
    work = tempfile.mkdtemp(prefix="pegpu-kt-")
    try:
        res = boot(args.arch, args.scenario, args.initrd, caps, args.timeout, work,
                   SCENARIO_REBOOTS.get(args.scenario, 0))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    if args.keep:
        with open(args.keep, "w") as f:
            f.write(res["serial"])
    ck = Checks(f"kernel/{args.arch}/{args.scenario}/")
    summary = {}
    if args.scenario == "normal":
        summary = check_normal(ck, res)
    elif args.scenario == "errors":
        check_errors(ck, res)
    elif args.scenario == "replay":
        check_replay(ck, res, args.dmatrace, args.trace)
    elif args.scenario == "recovery":
        check_recovery(ck, res, args.dmatrace, args.trace)
    else:
        check_backpressure(ck, res, args.dmatrace)
    if ck.failed:
        print("---- last lines of the serial log ----")
        print("\n".join(res["serial"].splitlines()[-40:]))
        if res.get("qemu_stderr"):
            print("---- QEMU stderr ----")
            print(res["qemu_stderr"][-3000:])
    if args.mode == "demo" and args.scenario == "normal":
        print_summary(res, summary)
    print(f"kernel_tier: {ck.passed} passed, {ck.failed} failed ({args.arch}/{args.scenario})")
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
