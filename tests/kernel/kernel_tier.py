#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Kernel tier: boot Debian kernels on PEGPU Machine under TCG, run the
guest scenarios of guest-init.sh, read the device counters over QMP and
check what must hold.

    kernel_tier.py check --arch arm64 --scenario normal --initrd X [--json OUT]
    kernel_tier.py demo  --arch arm64 --initrd X

Paths to QEMU, firmware and kernels come from the environment variables
that machine/qemu/build.sh and scripts/fetch-kernels.sh print.  Prints one
`PASS name` / `FAIL name: why` line per check; exits 1 if any failed.
"""
import argparse
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


def boot(arch, scenario, initrd, caps, timeout, workdir):
    a = ARCHES[arch]
    qemu = env(a["qemu"])
    sock = os.path.join(workdir, "qmp.sock")
    serial = os.path.join(workdir, f"serial-{arch}-{scenario}.log")
    dma = f"pegpu-dma,id=dma0,managed=gpu0,max-mapped-bytes={caps['max-mapped-bytes']}," \
          f"max-mappings={caps['max-mappings']}"
    argv = [qemu, "-accel", "tcg", *a["machine"], "-m", "512M", "-smp", "2",
            "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot", "-no-shutdown",
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
    ap.add_argument("--scenario", choices=["normal", "errors"], default="normal")
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--timeout", type=int, default=240)
    ap.add_argument("--json", help="write the full result here")
    ap.add_argument("--keep", help="copy the serial log here")
    args = ap.parse_args()

    caps = ERROR_CAPS if args.scenario == "errors" else DEFAULT_CAPS
    work = tempfile.mkdtemp(prefix="pegpu-kt-")
    try:
        res = boot(args.arch, args.scenario, args.initrd, caps, args.timeout, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    if args.keep:
        with open(args.keep, "w") as f:
            f.write(res["serial"])
    ck = Checks(f"kernel/{args.arch}/{args.scenario}/")
    summary = check_normal(ck, res) if args.scenario == "normal" else check_errors(ck, res)
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
