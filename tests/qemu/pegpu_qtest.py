#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Device-level tests of pegpu-dma and pegpu-dmatest under QEMU's qtest.

No guest runs: the test plays the guest driver through the qtest socket
(PCI config space through 0xcf8/0xcfc, MMIO, guest RAM) and reads the
host-side counters over QMP.  Python 3 standard library only.

usage: pegpu_qtest.py QEMU_SYSTEM_X86_64 SEABIOS_BIN [--aarch64 QEMU_SYSTEM_AARCH64]
                     [-k PATTERN] [-v] [--keep]

One line per case, "PASS name" or "FAIL name: why", then "N passed,
N failed"; exits non-zero when anything failed.
"""

import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

# --- include/pegpu/dma_proto.h, mirrored ------------------------------------
VENDOR = 0x1234
DMA_DEVICE_ID = 0x9E90
DMATEST_DEVICE_ID = 0x9E91

DMA_MAGIC = 0x50454744
DMA_VERSION = (1 << 16) | 0
R_MAGIC, R_VERSION, R_FEATURES, R_PAGE_SHIFT = 0x000, 0x004, 0x008, 0x00C
R_MAX_BATCH, R_MAX_MAPPINGS, R_MAX_MAPPED = 0x010, 0x014, 0x018
R_IOVA_BASE, R_IOVA_SIZE = 0x020, 0x028
R_MANAGED_BDF, R_MANAGED_VALID = 0x030, 0x034
R_CONTROL, R_LAST_STATUS, R_DOORBELL, R_COUNTERS = 0x038, 0x03C, 0x040, 0x100
CTRL_RESET = 1
COUNTERS = ["doorbells", "entries", "maps", "unmaps", "live-mappings",
            "mapped-bytes", "peak-mappings", "peak-mapped-bytes", "refusals",
            "errors", "faults", "resets"]

BATCH_MAGIC = 0x48435442
OP_MAP, OP_UNMAP = 1, 2
TO_DEV, FROM_DEV, BIDIR = 1, 2, 3
(ST_OK, ST_BAD_OP, ST_BAD_FLAGS, ST_BAD_ALIGN, ST_BAD_LEN, ST_NOT_RAM,
 ST_NO_SPACE, ST_TOO_MANY, ST_NO_IOVA, ST_NOT_MAPPED, ST_LEN_MISMATCH,
 ST_BAD_BATCH, ST_BATCH_NOT_RAM, ST_BACKEND) = range(14)
ST_PENDING = 0xFFFFFFFF

DT_MAGIC = 0x50454754
T_MAGIC, T_VERSION, T_RING_IOVA, T_RING_COUNT = 0x000, 0x004, 0x008, 0x010
T_DOORBELL, T_STATUS, T_FAULTS, T_FAULT_IOVA = 0x014, 0x018, 0x020, 0x028
T_BYTES_READ, T_BYTES_WRITTEN, T_DESCS = 0x030, 0x038, 0x040
DT_COPY, DT_FILL, DT_CSUM = 1, 2, 3
DT_OK, DT_FAULT, DT_BAD_DESC, DT_RING_FAULT, DT_NO_DART = range(5)
DT_MAX_RING = 4096
DT_MAX_LEN = 64 << 20

PAGE = 16 << 10
DESC = struct.Struct("<IIQQQQQ")        # op status src dst len arg result
ENTRY = struct.Struct("<HHIQQQ")        # op flags status addr len iova
HDR = struct.Struct("<IIIIQQ")          # magic count status nr_ok cookie reserved


def fnv1a64(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# --- guest memory plan (q35, -m 256M) ---------------------------------------
RAM_SIZE = 256 << 20
BATCH_GPA = 0x00400000          # batches (64-byte aligned)
RING_GPA = 0x00600000           # dmatest descriptor ring, one DART page
DATA_GPA = 0x01000000           # data buffers from here, page aligned
BAR_DMA = 0xE0000000            # where the test places BAR0 of each device
BAR_DMATEST = 0xE0010000
BAR_DMATEST2 = 0xE0020000
DMA_SLOT, DMATEST_SLOT, DMATEST2_SLOT = 4, 5, 6


class TestFailure(Exception):
    pass


def check(cond, why):
    if not cond:
        raise TestFailure(why)


def eq(got, want, what):
    if got != want:
        def fmt(v):
            return hex(v) if isinstance(v, int) else repr(v)
        raise TestFailure("%s: got %s, want %s" % (what, fmt(got), fmt(want)))


class Qemu:
    """One QEMU under qtest, with a QMP connection."""

    def __init__(self, binary, bios, extra, workdir, name, machine=None):
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=workdir)
        self.log = os.path.join(self.dir, "qemu.log")
        self.errfile = os.path.join(self.dir, "stderr")
        qtest_path = os.path.join(self.dir, "qtest.sock")
        qmp_path = os.path.join(self.dir, "qmp.sock")
        listeners = []
        for p in (qtest_path, qmp_path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(p)
            s.listen(1)
            s.settimeout(30)
            listeners.append(s)
        if machine is None:
            machine = ["-M", "q35", "-bios", bios]
        self.argv = [binary, "-accel", "qtest", "-qtest", "unix:" + qtest_path,
                     "-qmp", "unix:" + qmp_path, "-m", "256M", "-nodefaults",
                     "-display", "none", "-d", "guest_errors", "-D", self.log
                     ] + machine + extra
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=open(self.errfile + ".out", "w"),
                                     stderr=open(self.errfile, "w"))
        try:
            self.qt, _ = listeners[0].accept()
            self.qmp_sock, _ = listeners[1].accept()
        except socket.timeout:
            self.proc.kill()
            raise TestFailure("QEMU did not connect: %s" % self.stderr())
        finally:
            for s in listeners:
                s.close()
        self.qt.settimeout(120)
        self.qmp_sock.settimeout(60)
        self.qtf = self.qt.makefile("rb")
        self.qmpf = self.qmp_sock.makefile("rb")
        self.qmp_read()                 # greeting
        self.qmp("qmp_capabilities")

    def stderr(self):
        try:
            with open(self.errfile) as f:
                return f.read().strip()
        except OSError:
            return ""

    def guest_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    # qtest ------------------------------------------------------------
    def qtest(self, cmd):
        self.qt.sendall(cmd.encode() + b"\n")
        while True:
            line = self.qtf.readline()
            if not line:
                raise TestFailure("QEMU closed the qtest socket (%r); stderr: %s"
                                  % (cmd[:60], self.stderr()[-500:]))
            line = line.decode().strip()
            if line.startswith("IRQ"):
                continue
            if not line.startswith("OK"):
                raise TestFailure("qtest %r: %s" % (cmd[:60], line))
            return line[3:]

    def outl(self, port, val):
        self.qtest("outl 0x%x 0x%x" % (port, val))

    def inl(self, port):
        return int(self.qtest("inl 0x%x" % port), 16)

    def readl(self, addr):
        return int(self.qtest("readl 0x%x" % addr), 16)

    def readq(self, addr):
        return int(self.qtest("readq 0x%x" % addr), 16)

    def writel(self, addr, val):
        self.qtest("writel 0x%x 0x%x" % (addr, val))

    def writeq(self, addr, val):
        self.qtest("writeq 0x%x 0x%x" % (addr, val))

    def memwrite(self, addr, data):
        self.qtest("b64write 0x%x 0x%x %s" % (addr, len(data),
                                               base64.b64encode(data).decode()))

    def memread(self, addr, size):
        return base64.b64decode(self.qtest("b64read 0x%x 0x%x" % (addr, size)))

    def memset(self, addr, size, val):
        self.qtest("memset 0x%x 0x%x 0x%x" % (addr, size, val))

    # QMP --------------------------------------------------------------
    def qmp_read(self):
        while True:
            line = self.qmpf.readline()
            if not line:
                raise TestFailure("QEMU closed QMP; stderr: %s" % self.stderr()[-500:])
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def qmp(self, cmd, **args):
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        self.qmp_sock.sendall(json.dumps(req).encode() + b"\n")
        rsp = self.qmp_read()
        if "error" in rsp:
            raise TestFailure("QMP %s: %s" % (cmd, rsp["error"].get("desc")))
        return rsp["return"]

    def qom(self, path, prop):
        return self.qmp("qom-get", path=path, property=prop)

    # PCI config space ---------------------------------------------------
    ecam = None     # set for machines with ECAM only (arm virt)

    @staticmethod
    def cfg_addr(slot, reg, bus=0, fn=0):
        return 0x80000000 | (bus << 16) | (slot << 11) | (fn << 8) | (reg & 0xFC)

    def cfg_read(self, slot, reg):
        if self.ecam is not None:
            return self.readl(self.ecam + (slot << 15) + (reg & 0xFFC))
        self.outl(0xCF8, self.cfg_addr(slot, reg))
        return self.inl(0xCFC)

    def cfg_write(self, slot, reg, val):
        if self.ecam is not None:
            self.writel(self.ecam + (slot << 15) + (reg & 0xFFC), val)
            return
        self.outl(0xCF8, self.cfg_addr(slot, reg))
        self.outl(0xCFC, val)

    def pci_setup(self, slot, bar, master=True):
        """Place a 64-bit BAR0 and enable memory (+ bus master)."""
        self.cfg_write(slot, 0x10, bar & 0xFFFFFFFF)
        self.cfg_write(slot, 0x14, bar >> 32)
        cmd = 0x0002 | (0x0004 if master else 0)
        self.cfg_write(slot, 0x04, cmd)

    def set_master(self, slot, on):
        cmd = self.cfg_read(slot, 0x04) & 0xFFFF
        cmd = (cmd | 4) if on else (cmd & ~4)
        self.cfg_write(slot, 0x04, cmd)

    def close(self):
        try:
            if self.alive():
                try:
                    self.qmp("quit")
                except (TestFailure, OSError):
                    pass
                self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.qt, self.qmp_sock):
            try:
                f.close()
            except OSError:
                pass


class Rig:
    """A QEMU with pegpu-dmatest 'gpu0' managed by pegpu-dma 'dma0', and an
    unattached pegpu-dmatest 'gpu1'; both BARs placed and enabled."""

    def __init__(self, env, dma_props="", name="rig"):
        dev = ["-device", "pegpu-dmatest,id=gpu0,addr=%02x.0" % DMATEST_SLOT,
               "-device", "pegpu-dma,id=dma0,managed=gpu0,addr=%02x.0%s"
               % (DMA_SLOT, ("," + dma_props) if dma_props else ""),
               "-device", "pegpu-dmatest,id=gpu1,addr=%02x.0" % DMATEST2_SLOT]
        self.q = Qemu(env.qemu, env.bios, dev, env.workdir, name)
        self.q.pci_setup(DMA_SLOT, BAR_DMA)
        self.q.pci_setup(DMATEST_SLOT, BAR_DMATEST)
        self.q.pci_setup(DMATEST2_SLOT, BAR_DMATEST2)
        self.next_data = DATA_GPA
        self.next_batch = BATCH_GPA
        self.ring_iova = None

    # pegpu-dma ----------------------------------------------------------
    def reg(self, off, size=4):
        return self.q.readl(BAR_DMA + off) if size == 4 else self.q.readq(BAR_DMA + off)

    def counter(self, name):
        return self.q.qom("/machine/peripheral/dma0", name)

    def alloc(self, size):
        """Page-aligned guest RAM for data."""
        a = self.next_data
        self.next_data += (size + PAGE - 1) // PAGE * PAGE
        check(self.next_data <= RAM_SIZE - (16 << 20), "test ran out of guest RAM")
        return a

    def batch(self, entries, gpa=None, magic=BATCH_MAGIC, count=None,
              reserved=0, ring=True):
        """Write a batch, ring the doorbell, return (hdr_status, nr_ok,
        [(status, iova)...], last_status)."""
        if gpa is None:
            gpa = BATCH_GPA
        n = len(entries) if count is None else count
        data = HDR.pack(magic, n, ST_PENDING, 0xAAAAAAAA, 0x1122334455667788, reserved)
        for e in entries:
            op, flags, addr, length, iova = (tuple(e) + (0,))[:5]
            data += ENTRY.pack(op, flags, ST_PENDING, addr, length, iova)
        self.q.memwrite(gpa, data)
        if ring:
            self.q.writeq(BAR_DMA + R_DOORBELL, gpa)
        return self.read_batch(gpa, len(entries))

    def read_batch(self, gpa, n):
        raw = self.q.memread(gpa, HDR.size + n * ENTRY.size)
        magic, count, st, nr_ok, cookie, _ = HDR.unpack_from(raw, 0)
        eq(cookie, 0x1122334455667788, "batch cookie (device must not touch it)")
        ents = []
        for i in range(n):
            op, flags, est, addr, length, iova = ENTRY.unpack_from(raw, HDR.size + i * ENTRY.size)
            ents.append((est, iova))
        return st, nr_ok, ents, self.reg(R_LAST_STATUS)

    def map(self, addr, length, flags=BIDIR):
        st, nr_ok, ents, _ = self.batch([(OP_MAP, flags, addr, length)])
        eq(st, ST_OK, "MAP [%#x,+%#x) batch status" % (addr, length))
        return ents[0][1]

    def unmap(self, iova, length):
        st, _, _, _ = self.batch([(OP_UNMAP, 0, 0, length, iova)])
        return st

    # pegpu-dmatest ------------------------------------------------------
    def treg(self, off, size=8, bar=BAR_DMATEST):
        return self.q.readl(bar + off) if size == 4 else self.q.readq(bar + off)

    def setup_ring(self):
        """One bidirectional page of descriptors, mapped once."""
        if self.ring_iova is None:
            self.ring_iova = self.map(RING_GPA, PAGE, BIDIR)
        return self.ring_iova

    def run(self, descs, bar=BAR_DMATEST, ring_iova=None, count=None):
        """Write descriptors, ring the dmatest doorbell; return (run_status,
        [(status, result)...])."""
        if ring_iova is None:
            ring_iova = self.setup_ring()
        data = b"".join(DESC.pack(op, DT_PENDING, src, dst, ln, arg, 0)
                        for (op, src, dst, ln, arg) in descs)
        if data:
            self.q.memwrite(RING_GPA, data)
        self.q.writeq(bar + T_RING_IOVA, ring_iova)
        self.q.writel(bar + T_RING_COUNT, len(descs) if count is None else count)
        self.q.writel(bar + T_DOORBELL, 1)
        st = self.q.readl(bar + T_STATUS)
        out = []
        if descs:
            raw = self.q.memread(RING_GPA, len(data))
            for i in range(len(descs)):
                _, dst_, _, _, _, _, res = DESC.unpack_from(raw, i * DESC.size)
                out.append((dst_, res))
        return st, out


DT_PENDING = 0xFFFFFFFF


# --- cases ---------------------------------------------------------------------
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def registers(env, r):
    q = r.q
    eq(q.cfg_read(DMA_SLOT, 0) & 0xFFFF, VENDOR, "pegpu-dma vendor id")
    eq(q.cfg_read(DMA_SLOT, 0) >> 16, DMA_DEVICE_ID, "pegpu-dma device id")
    eq(q.cfg_read(DMATEST_SLOT, 0) >> 16, DMATEST_DEVICE_ID, "pegpu-dmatest device id")
    eq(r.reg(R_MAGIC), DMA_MAGIC, "MAGIC")
    eq(r.reg(R_VERSION), DMA_VERSION, "VERSION")
    eq(r.reg(R_FEATURES), 7, "FEATURES")
    eq(r.reg(R_PAGE_SHIFT), 14, "PAGE_SHIFT")
    eq(r.reg(R_MAX_BATCH), 1024, "MAX_BATCH")
    eq(r.reg(R_MAX_MAPPINGS), 65536, "MAX_MAPPINGS")
    eq(r.reg(R_MAX_MAPPED, 8), 1536 << 20, "MAX_MAPPED (64-bit)")
    eq(r.reg(R_MAX_MAPPED), (1536 << 20) & 0xFFFFFFFF, "MAX_MAPPED low half")
    eq(r.reg(R_MAX_MAPPED + 4), 0, "MAX_MAPPED high half")
    check(r.reg(R_IOVA_BASE, 8) != 0, "IOVA_BASE is 0")
    check(r.reg(R_IOVA_SIZE, 8) != 0, "IOVA_SIZE is 0")
    eq(r.reg(R_MANAGED_BDF), (0 << 8) | (DMATEST_SLOT << 3), "MANAGED_BDF")
    eq(r.reg(R_MANAGED_VALID), 1, "MANAGED_VALID")
    eq(r.reg(R_LAST_STATUS), ST_OK, "LAST_STATUS at start")
    eq(r.treg(T_MAGIC, 4), DT_MAGIC, "dmatest MAGIC")
    eq(r.treg(T_VERSION, 4), DMA_VERSION, "dmatest VERSION")
    for i, name in enumerate(COUNTERS):
        eq(r.reg(R_COUNTERS + 8 * i, 8), r.counter(name), "counter %s MMIO vs QOM" % name)


@case
def map_and_iovas(env, r):
    a = r.alloc(3 * PAGE)
    b = r.alloc(PAGE)
    c = r.alloc(2 * PAGE)
    st, nr_ok, ents, last = r.batch([(OP_MAP, TO_DEV, a, 3 * PAGE),
                                     (OP_MAP, FROM_DEV, b, PAGE),
                                     (OP_MAP, BIDIR, c, 2 * PAGE)])
    eq(st, ST_OK, "batch status")
    eq(nr_ok, 3, "nr_ok")
    eq(last, ST_OK, "LAST_STATUS")
    base, size = r.reg(R_IOVA_BASE, 8), r.reg(R_IOVA_SIZE, 8)
    iovas = []
    for (est, iova), ln in zip(ents, (3 * PAGE, PAGE, 2 * PAGE)):
        eq(est, ST_OK, "entry status")
        eq(iova % PAGE, 0, "IOVA page alignment")
        check(base <= iova and iova + ln <= base + size,
              "IOVA %#x outside the window [%#x,+%#x)" % (iova, base, size))
        iovas.append((iova, ln))
    iovas.sort()
    for (i1, l1), (i2, _) in zip(iovas, iovas[1:]):
        check(i1 + l1 <= i2, "IOVA ranges overlap")
    check([i for i, _ in iovas] != sorted([a, b, c]), "IOVAs are the guest addresses")
    eq(r.counter("live-mappings"), 3, "live-mappings")
    eq(r.counter("mapped-bytes"), 6 * PAGE, "mapped-bytes")
    eq(r.reg(R_COUNTERS + 8 * 4, 8), 3, "LIVE_MAPPINGS register")
    eq(r.counter("maps"), 3, "maps")


@case
def dmatest_fill_copy_csum(env, r):
    n = 3 * PAGE + 100                   # crosses pages, not a page multiple
    src = r.alloc(4 * PAGE)
    dst = r.alloc(4 * PAGE)
    pattern = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(4 * PAGE))
    r.q.memwrite(src, pattern)
    r.q.memset(dst, 4 * PAGE, 0)
    si = r.map(src, 4 * PAGE, TO_DEV)
    di = r.map(dst, 4 * PAGE, FROM_DEV)
    rd0, wr0 = r.treg(T_BYTES_READ), r.treg(T_BYTES_WRITTEN)
    st, out = r.run([(DT_COPY, si + 5, di + 9, n, 0),
                     (DT_CSUM, si, 0, 4 * PAGE, 0),
                     (DT_FILL, 0, di + 2 * PAGE, 50, 0x5A)])
    eq(st, DT_OK, "run status")
    eq([o[0] for o in out], [DT_OK] * 3, "descriptor statuses")
    got = r.q.memread(dst, 4 * PAGE)
    want = bytearray(4 * PAGE)
    want[9:9 + n] = pattern[5:5 + n]
    want[2 * PAGE:2 * PAGE + 50] = b"\x5a" * 50
    check(got == bytes(want), "COPY/FILL result differs in guest RAM")
    eq(out[1][1], fnv1a64(pattern), "CSUM result")
    eq(r.treg(T_BYTES_READ) - rd0, n + 4 * PAGE, "BYTES_READ")
    eq(r.treg(T_BYTES_WRITTEN) - wr0, n + 50, "BYTES_WRITTEN")
    eq(r.q.qom("/machine/peripheral/gpu0", "bytes-read"), r.treg(T_BYTES_READ),
       "QOM bytes-read")
    check(r.q.qom("/machine/peripheral/gpu0", "descs") >= 3, "QOM descs")


@case
def dmatest_scattered_pages(env, r):
    """A buffer made of two separate mappings of non-adjacent guest pages:
    COPY between IOVAs lands in the right guest pages."""
    p1, p2 = r.alloc(PAGE), r.alloc(PAGE)
    r.q.memwrite(p1, b"A" * PAGE)
    r.q.memwrite(p2, b"B" * PAGE)
    i1 = r.map(p1, PAGE, BIDIR)
    i2 = r.map(p2, PAGE, BIDIR)
    st, out = r.run([(DT_COPY, i1, i2 + PAGE // 2, PAGE // 2, 0)])
    eq(st, DT_OK, "run status")
    eq(r.q.memread(p2, PAGE), b"B" * (PAGE // 2) + b"A" * (PAGE // 2), "copied bytes")


@case
def fault_unmapped_iova(env, r):
    src = r.alloc(PAGE)
    si = r.map(src, PAGE, TO_DEV)
    base, size = r.reg(R_IOVA_BASE, 8), r.reg(R_IOVA_SIZE, 8)
    bad = base + size - PAGE                 # the window's last page
    if bad == si:
        bad -= PAGE
    f0, df0 = r.treg(T_FAULTS), r.counter("faults")
    st, out = r.run([(DT_COPY, si, bad + 0x123, 64, 0),
                     (DT_CSUM, si, 0, PAGE, 0)])
    eq(st, DT_FAULT, "run status")
    eq(out[0][0], DT_FAULT, "faulting descriptor status")
    eq(out[1][0], DT_OK, "the next descriptor still runs")
    eq(r.treg(T_FAULTS) - f0, 1, "dmatest FAULTS")
    eq(r.treg(T_FAULT_IOVA), bad + 0x123, "FAULT_IOVA")
    eq(r.counter("faults") - df0, 1, "pegpu-dma faults counter")
    eq(r.q.qom("/machine/peripheral/gpu0", "faults"), r.treg(T_FAULTS), "QOM faults")
    check(("%x" % (bad + 0x123)) in r.q.guest_log().lower(),
          "fault IOVA %#x not in the guest-error log" % (bad + 0x123))
    # an IOVA below the window and IOVA 0
    st, out = r.run([(DT_CSUM, 0, 0, 16, 0), (DT_FILL, 0, 8, 16, 1)])
    eq([o[0] for o in out], [DT_FAULT, DT_FAULT], "IOVA 0 faults")
    check(r.q.alive(), "QEMU died")


@case
def direction_enforced(env, r):
    ro, wo = r.alloc(PAGE), r.alloc(PAGE)
    r.q.memset(ro, PAGE, 0x11)
    r.q.memset(wo, PAGE, 0x22)
    roi = r.map(ro, PAGE, TO_DEV)      # device may only read
    woi = r.map(wo, PAGE, FROM_DEV)    # device may only write
    f0 = r.treg(T_FAULTS)
    st, out = r.run([(DT_FILL, 0, roi, 32, 0x99),        # write to read-only
                     (DT_CSUM, woi, 0, 32, 0),           # read from write-only
                     (DT_COPY, woi, roi, 32, 0),         # both wrong
                     (DT_COPY, roi, woi, 32, 0)])        # both right
    eq([o[0] for o in out], [DT_FAULT, DT_FAULT, DT_FAULT, DT_OK], "statuses")
    eq(st, DT_FAULT, "run status")
    eq(r.treg(T_FAULTS) - f0, 3, "FAULTS")
    eq(r.q.memread(ro, 32), b"\x11" * 32, "read-only buffer unchanged")
    eq(r.q.memread(wo, 32), b"\x11" * 32, "write-only buffer got the copy")


@case
def dmatest_ring_and_desc_errors(env, r):
    src = r.alloc(PAGE)
    si = r.map(src, PAGE, BIDIR)
    st, out = r.run([(7, si, si, 16, 0), (DT_FILL, 0, si, 0, 0),
                     (DT_CSUM, si, 0, DT_MAX_LEN + 1, 0)])
    eq([o[0] for o in out], [DT_BAD_DESC] * 3, "unknown op / zero / oversized len")
    eq(st, DT_BAD_DESC, "run status")
    st, _ = r.run([], count=DT_MAX_RING + 1)
    eq(st, DT_BAD_DESC, "RING_COUNT > MAX_RING")
    st, _ = r.run([], count=0)
    eq(st, DT_OK, "empty ring")
    # a ring at an unmapped IOVA, and one mapped read-only
    base = r.reg(R_IOVA_BASE, 8)
    st, _ = r.run([], ring_iova=base + r.reg(R_IOVA_SIZE, 8) - PAGE, count=1)
    eq(st, DT_RING_FAULT, "unmapped ring")
    rog = r.alloc(PAGE)
    r.q.memwrite(rog, DESC.pack(DT_FILL, DT_PENDING, 0, si, 16, 0, 0))
    roi = r.map(rog, PAGE, TO_DEV)
    st, _ = r.run([], ring_iova=roi, count=1)
    eq(st, DT_RING_FAULT, "ring without write permission (status write-back)")
    # a ring that runs off the end of its mapping
    st, _ = r.run([], ring_iova=roi + PAGE - 24, count=1)
    eq(st, DT_RING_FAULT, "descriptor straddling the mapping's end")
    # a 32-bit write to the 64-bit RING_IOVA is ignored
    r.q.writeq(BAR_DMATEST + T_RING_IOVA, 0x123456789000)
    r.q.writel(BAR_DMATEST + T_RING_IOVA, 0x4000)
    eq(r.treg(T_RING_IOVA), 0x123456789000, "RING_IOVA after a 32-bit write")
    check(r.q.alive(), "QEMU died")


@case
def dmatest_max_len(env, r):
    buf = r.alloc(DT_MAX_LEN)
    bi = r.map(buf, DT_MAX_LEN, BIDIR)
    t0 = time.time()
    st, out = r.run([(DT_FILL, 0, bi, DT_MAX_LEN, 0x3C),
                     (DT_CSUM, bi, 0, DT_MAX_LEN, 0)])
    eq(st, DT_OK, "64 MiB FILL + CSUM")
    eq(r.q.memread(buf + DT_MAX_LEN - 16, 16), b"\x3c" * 16, "tail of the fill")
    check(time.time() - t0 < 60, "64 MiB took %.1f s" % (time.time() - t0))
    eq(r.unmap(bi, DT_MAX_LEN), ST_OK, "unmap 64 MiB")


@case
def no_dart_and_bus_master(env, r):
    st, _ = r.run([], bar=BAR_DMATEST2, ring_iova=0x4000, count=1)
    eq(st, DT_NO_DART, "unattached pegpu-dmatest")
    eq(r.treg(T_FAULTS, bar=BAR_DMATEST2), 0, "no fault counted when unattached")
    si = r.map(r.alloc(PAGE), PAGE, BIDIR)
    r.q.set_master(DMATEST_SLOT, False)
    st, _ = r.run([(DT_FILL, 0, si, 16, 1)])
    eq(st, DT_NO_DART, "bus mastering disabled")
    r.q.set_master(DMATEST_SLOT, True)
    st, _ = r.run([(DT_FILL, 0, si, 16, 1)])
    eq(st, DT_OK, "bus mastering enabled again")
    # pegpu-dma reads its batches as a bus master too
    r.q.set_master(DMA_SLOT, False)
    r.batch([(OP_MAP, BIDIR, r.alloc(PAGE), PAGE)])
    eq(r.reg(R_LAST_STATUS), ST_BATCH_NOT_RAM, "pegpu-dma without bus mastering")
    r.q.set_master(DMA_SLOT, True)


@case
def unmap_rules(env, r):
    a = r.alloc(2 * PAGE)
    ia = r.map(a, 2 * PAGE, BIDIR)
    live0 = r.counter("live-mappings")
    st, nr_ok, ents, _ = r.batch([(OP_UNMAP, 0, 0, PAGE, ia),           # wrong length
                                  (OP_UNMAP, 0, 0, 2 * PAGE, ia + PAGE),  # not the start
                                  (OP_UNMAP, 1, 0, 2 * PAGE, ia),        # flags on UNMAP
                                  (OP_UNMAP, 0, 0, 2 * PAGE, ia),        # good
                                  (OP_UNMAP, 0, 0, 2 * PAGE, ia)])       # double
    eq([e[0] for e in ents], [ST_LEN_MISMATCH, ST_NOT_MAPPED, ST_BAD_FLAGS, ST_OK,
                              ST_NOT_MAPPED], "entry statuses")
    eq(st, ST_LEN_MISMATCH, "batch status = first failure")
    eq(nr_ok, 1, "nr_ok")
    eq(r.counter("live-mappings"), live0 - 1, "live-mappings")
    # a foreign IOVA that was never handed out, and a misaligned one
    st, _, ents, _ = r.batch([(OP_UNMAP, 0, 0, PAGE, 0x7654000 * 4),
                              (OP_UNMAP, 0, 0, PAGE, ia + 0x100)])
    eq([e[0] for e in ents], [ST_NOT_MAPPED, ST_BAD_ALIGN], "foreign / misaligned IOVA")
    # the stale IOVA now faults in the device
    f0 = r.counter("faults")
    st, _ = r.run([(DT_FILL, 0, ia, 16, 1)])
    eq(st, DT_FAULT, "DMA to an unmapped IOVA")
    eq(r.counter("faults") - f0, 1, "faults")


@case
def malformed_entries(env, r):
    a = r.alloc(PAGE)
    e0 = r.counter("errors")
    st, nr_ok, ents, _ = r.batch([
        (9, BIDIR, a, PAGE),                        # unknown op
        (0, BIDIR, a, PAGE),                        # op 0
        (OP_MAP, 0, a, PAGE),                       # no direction
        (OP_MAP, 0x8 | BIDIR, a, PAGE),             # unknown flag
        (OP_MAP, BIDIR, a + 0x1000, PAGE),          # addr not page aligned
        (OP_MAP, BIDIR, a, PAGE + 1),               # len not a page multiple
        (OP_MAP, BIDIR, a, 0),                      # zero length
        (OP_MAP, BIDIR, 0xFFFFFFFFFFFFC000, 2 * PAGE),  # wraps
        (OP_MAP, BIDIR, RAM_SIZE, PAGE),            # beyond RAM (256M)
        (OP_MAP, BIDIR, RAM_SIZE - PAGE, 2 * PAGE),  # straddles the end of RAM
        (OP_MAP, BIDIR, 0xC0000, PAGE),             # pc.rom (ROM, not RAM)
        (OP_MAP, BIDIR, BAR_DMA, PAGE),             # our own MMIO BAR
        (OP_MAP, BIDIR, 0xFFFC0000, 2 * PAGE),      # BIOS ROM
        (OP_MAP, TO_DEV, a, PAGE),                  # good: a failure stops nothing
    ])
    want = [ST_BAD_OP, ST_BAD_OP, ST_BAD_FLAGS, ST_BAD_FLAGS, ST_BAD_ALIGN, ST_BAD_ALIGN,
            ST_BAD_LEN, ST_BAD_LEN, ST_NOT_RAM, ST_NOT_RAM, ST_NOT_RAM, ST_NOT_RAM,
            ST_NOT_RAM, ST_OK]
    eq([e[0] for e in ents], want, "entry statuses")
    eq(st, ST_BAD_OP, "batch status")
    eq(nr_ok, 1, "nr_ok")
    eq(ents[-1][1] % PAGE, 0, "good entry got an IOVA")
    eq(r.counter("errors") - e0, 13, "errors counter")
    check(r.q.alive(), "QEMU died")


@case
def malformed_batches(env, r):
    a = r.alloc(PAGE)
    good = [(OP_MAP, BIDIR, a, PAGE)]
    maps0 = r.counter("maps")
    st, _, ents, last = r.batch(good, magic=0xDEADBEEF)
    eq((st, last, ents[0][0]), (ST_BAD_BATCH, ST_BAD_BATCH, ST_PENDING), "bad magic")
    st, _, _, last = r.batch(good, count=0)
    eq((st, last), (ST_BAD_BATCH, ST_BAD_BATCH), "count 0")
    st, _, _, last = r.batch(good, count=0xFFFFFFFF)
    eq((st, last), (ST_BAD_BATCH, ST_BAD_BATCH), "huge count")
    st, _, _, last = r.batch(good, count=1025)
    eq((st, last), (ST_BAD_BATCH, ST_BAD_BATCH), "count = MAX_BATCH + 1")
    st, _, _, last = r.batch(good, reserved=1)
    eq((st, last), (ST_BAD_BATCH, ST_BAD_BATCH), "reserved != 0")
    # misaligned: the header cannot be trusted, LAST_STATUS only
    st, _, _, last = r.batch(good, gpa=BATCH_GPA + 0x1000 + 8)
    eq((st, last), (ST_PENDING, ST_BAD_ALIGN), "misaligned batch")
    # outside RAM, in MMIO, in the legacy hole: nothing to read
    for gpa, what in ((RAM_SIZE + 0x40000, "beyond RAM"), (BAR_DMA, "own BAR"),
                      (0xC0000, "pc.rom"), (0xFEC00000, "IOAPIC"),
                      (0xFFFFFFFFFFFFFFC0, "top of the space")):
        r.q.writeq(BAR_DMA + R_DOORBELL, gpa)
        eq(r.reg(R_LAST_STATUS), ST_BATCH_NOT_RAM, "batch %s" % what)
    # header in RAM, entries run past its end
    tail = RAM_SIZE - 64
    st, _, _, last = r.batch([], gpa=tail, count=2)
    eq(last, ST_BATCH_NOT_RAM, "entries beyond the end of RAM")
    eq(r.counter("maps"), maps0, "nothing mapped by malformed batches")
    # a 32-bit write to DOORBELL does nothing; writes to RO registers too
    d0 = r.counter("doorbells")
    r.q.writel(BAR_DMA + R_DOORBELL, BATCH_GPA)
    r.q.writel(BAR_DMA + R_DOORBELL + 4, 0)
    eq(r.counter("doorbells"), d0, "doorbells after 32-bit writes")
    r.q.writel(BAR_DMA + R_MAGIC, 0)
    r.q.writeq(BAR_DMA + R_MAX_MAPPED, 0)
    r.q.writeq(BAR_DMA + R_COUNTERS, 0)
    r.q.writel(BAR_DMA + 0x800, 1)
    eq(r.reg(R_MAGIC), DMA_MAGIC, "MAGIC after a write")
    eq(r.reg(R_MAX_MAPPED, 8), 1536 << 20, "MAX_MAPPED after a write")
    eq(r.reg(R_COUNTERS, 8), r.counter("doorbells"), "DOORBELLS counter after a write")
    eq(r.reg(0x800), 0, "reserved register")
    check("DOORBELL" in r.q.guest_log(), "32-bit DOORBELL write not logged")
    # and the device still works
    st, nr_ok, _, _ = r.batch(good)
    eq((st, nr_ok), (ST_OK, 1), "good batch after the bad ones")
    check(r.q.alive(), "QEMU died")


@case
def max_batch_full(env, r):
    a = r.alloc(PAGE)
    ents = [(OP_MAP, TO_DEV, a, PAGE)] * 1024
    st, nr_ok, out, _ = r.batch(ents)
    eq((st, nr_ok), (ST_OK, 1024), "1024 MAPs of one page in one batch")
    iovas = set(e[1] for e in out)
    eq(len(iovas), 1024, "distinct IOVAs")
    st, nr_ok, out, _ = r.batch([(OP_UNMAP, 0, 0, PAGE, i) for i in sorted(iovas)])
    eq((st, nr_ok), (ST_OK, 1024), "1024 UNMAPs")


@case
def control_reset(env, r):
    a = r.alloc(PAGE)
    ia = r.map(a, PAGE, BIDIR)
    check(r.counter("live-mappings") > 0, "nothing live before the reset")
    res0 = r.counter("resets")
    r.q.writel(BAR_DMA + R_CONTROL, CTRL_RESET)
    eq(r.counter("live-mappings"), 0, "live-mappings after CONTROL.RESET")
    eq(r.counter("mapped-bytes"), 0, "mapped-bytes after CONTROL.RESET")
    eq(r.counter("peak-mappings"), 0, "peak-mappings after CONTROL.RESET")
    eq(r.counter("resets") - res0, 1, "resets")
    check(r.counter("maps") > 0, "totals survive the reset")
    r.ring_iova = None
    st, _ = r.run([(DT_FILL, 0, ia, 16, 1)])
    eq(st, DT_FAULT, "stale IOVA after CONTROL.RESET")
    eq(r.unmap(ia, PAGE), ST_NOT_MAPPED, "UNMAP after CONTROL.RESET")


@case
def system_reset(env, r):
    r.map(r.alloc(PAGE), PAGE, BIDIR)
    r.map(r.alloc(PAGE), PAGE, TO_DEV)
    check(r.counter("live-mappings") >= 2, "mappings before system_reset")
    res0 = r.counter("resets")
    r.q.qmp("system_reset")
    deadline = time.time() + 10
    while r.counter("live-mappings") != 0 and time.time() < deadline:
        time.sleep(0.05)
    eq(r.counter("live-mappings"), 0, "live-mappings after system_reset")
    check(r.counter("resets") > res0, "resets counter did not move")
    eq(r.q.qom("/machine/peripheral/gpu0", "faults"), 0, "dmatest faults after reset")
    # the firmware is not running under qtest: place the BARs again
    r.q.pci_setup(DMA_SLOT, BAR_DMA)
    r.q.pci_setup(DMATEST_SLOT, BAR_DMATEST)
    r.ring_iova = None
    st, _ = r.run([(DT_FILL, 0, r.map(r.alloc(PAGE), PAGE, BIDIR), 8, 2)])
    eq(st, DT_OK, "device usable after system_reset")


@case
def caps_refused(env, _):
    r = Rig(env, "max-mapped-bytes=128K,max-mappings=3,max-batch=8", name="caps")
    try:
        eq(r.reg(R_MAX_MAPPINGS), 3, "MAX_MAPPINGS")
        eq(r.reg(R_MAX_BATCH), 8, "MAX_BATCH")
        eq(r.reg(R_MAX_MAPPED, 8), 128 << 10, "MAX_MAPPED")
        a = r.alloc(4 * PAGE)
        st, nr_ok, ents, _ = r.batch([(OP_MAP, BIDIR, a, 4 * PAGE),
                                      (OP_MAP, BIDIR, a, 4 * PAGE),
                                      (OP_MAP, BIDIR, a, PAGE)])
        eq([e[0] for e in ents], [ST_OK, ST_OK, ST_NO_SPACE], "byte cap")
        eq((st, nr_ok), (ST_NO_SPACE, 2), "batch status, nr_ok")
        st, nr_ok, ents, _ = r.batch([(OP_UNMAP, 0, 0, 4 * PAGE, ents[1][1]),
                                      (OP_MAP, BIDIR, a, PAGE),
                                      (OP_MAP, BIDIR, a, PAGE),
                                      (OP_MAP, BIDIR, a, PAGE)])
        eq([e[0] for e in ents], [ST_OK, ST_OK, ST_OK, ST_TOO_MANY], "mapping cap")
        eq(st, ST_TOO_MANY, "batch status")
        eq(r.counter("refusals"), 2, "refusals")
        eq(r.counter("live-mappings"), 3, "live-mappings")
        eq(r.counter("mapped-bytes"), 6 * PAGE, "mapped-bytes")
        eq(r.counter("peak-mapped-bytes"), 128 << 10, "peak-mapped-bytes")
        st, _, _, _ = r.batch([(OP_MAP, BIDIR, a, PAGE)] * 9)
        eq(st, ST_BAD_BATCH, "count > max-batch=8")
        check(r.q.alive(), "QEMU died")
        eq(r.q.qmp("query-status")["status"], "running", "VM status")
    finally:
        r.q.close()


@case
def iova_seed(env, _):
    got = []
    for seed in (1, 2):
        r = Rig(env, "iova-seed=%d" % seed, name="seed%d" % seed)
        try:
            got.append(r.map(DATA_GPA, PAGE, BIDIR))
        finally:
            r.q.close()
    check(got[0] != got[1], "iova-seed=1 and 2 gave the same first IOVA %#x" % got[0])


@case
def realize_errors(env, _):
    def start_fails(props, want):
        argv = [env.qemu, "-accel", "qtest", "-M", "q35", "-nodefaults", "-display", "none",
                "-bios", env.bios, "-device", "pegpu-dmatest,id=gpu0",
                "-device", "pegpu-dma,id=dma0" + props]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=30)
        check(p.returncode != 0, "QEMU started with pegpu-dma%s" % props)
        check(want in p.stderr, "pegpu-dma%s: %r not in %r" % (props, want, p.stderr.strip()))
    start_fails(",backend=dext", "macOS")
    start_fails(",backend=nope", "unknown backend")
    start_fails(",max-batch=0", "max-batch")
    start_fails(",max-batch=65537", "max-batch")
    start_fails(",max-mappings=0", "max-mappings")
    start_fails(",max-mapped-bytes=1000", "max-mapped-bytes")
    start_fails(",managed=nosuchdev", "nosuchdev")


@case
def firmware_found(env, _):
    """The binary finds SeaBIOS, option ROMs and NIC ROMs by itself (build.sh
    links trixie's firmware into its data directory): no -bios, no -L."""
    argv = [env.qemu, "-accel", "qtest", "-M", "q35", "-nodefaults", "-display", "none",
            "-option-rom", "linuxboot_dma.bin", "-device", "virtio-net-pci", "-qmp", "stdio"]
    p = subprocess.run(argv, input='{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n',
                       capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, "exit status (stderr: %s)" % p.stderr.strip()[-300:])
    for bad in ("rom:", "could not load", "Could not open", "failed to find romfile"):
        check(bad not in p.stderr, "firmware missing: %s" % p.stderr.strip()[-300:])


@case
def migration_blocked(env, r):
    try:
        r.q.qmp("migrate", uri="exec:cat > /dev/null")
        raise TestFailure("migration was not blocked")
    except TestFailure as e:
        check("DART" in str(e) or "migrat" in str(e).lower(),
              "unexpected migrate error: %s" % e)
    check(r.q.alive(), "QEMU died")


@case
def random_batches_and_rings(env, r):
    """Seeded random MAP/UNMAP batches and dmatest rings, mostly invalid:
    QEMU must stay up and the device's books must match ours."""
    import random
    rnd = random.Random(0x9E6)
    r.q.writel(BAR_DMA + R_CONTROL, CTRL_RESET)
    r.ring_iova = None
    r.setup_ring()                              # one more live mapping
    live = {}                                   # iova -> len, per the statuses
    pool = r.alloc(64 * PAGE)
    for _ in range(150):
        ents = []
        for _ in range(rnd.randint(1, 12)):
            kind = rnd.random()
            if kind < 0.45:
                addr = pool + rnd.randrange(64) * PAGE
                if rnd.random() < 0.2:
                    addr = rnd.choice([rnd.getrandbits(64), rnd.randrange(1 << 32),
                                       addr + rnd.randrange(1, PAGE)])
                ln = rnd.choice([PAGE, 2 * PAGE, 3 * PAGE, 0, PAGE + 512,
                                 rnd.getrandbits(40) * PAGE])
                ents.append((OP_MAP, rnd.choice([1, 2, 3, 3, 0, 4, 0xFFFF]), addr, ln))
            elif kind < 0.8 and live:
                iova = rnd.choice(sorted(live))
                ln = live[iova] if rnd.random() < 0.8 else rnd.choice([PAGE, 5 * PAGE])
                ents.append((OP_UNMAP, 0, 0, ln, iova))
            else:
                ents.append((rnd.randrange(0x10000), rnd.randrange(0x10000),
                             rnd.getrandbits(64), rnd.getrandbits(64), rnd.getrandbits(64)))
        st, nr_ok, out, _ = r.batch(ents)
        check(st != ST_PENDING, "batch left PENDING")
        eq(nr_ok, sum(1 for e in out if e[0] == ST_OK), "nr_ok")
        for (op, _, _, ln, *rest), (est, iova) in zip(ents, out):
            if est != ST_OK:
                continue
            if op == OP_MAP:
                check(iova not in live, "IOVA %#x handed out twice" % iova)
                live[iova] = ln
            else:
                del live[rest[0] if rest else iova]
        eq(r.counter("live-mappings"), len(live) + 1, "live-mappings")
        eq(r.counter("mapped-bytes"), sum(live.values()) + PAGE, "mapped-bytes")
        if rnd.random() < 0.3:
            iovas = sorted(live) + [0, rnd.getrandbits(32), rnd.getrandbits(64)]
            descs = [(rnd.choice([1, 2, 3, 3, 0, 9]), rnd.choice(iovas) + rnd.randrange(64),
                      rnd.choice(iovas) + rnd.randrange(64), rnd.choice([1, 100, PAGE, 3 * PAGE]),
                      rnd.randrange(256)) for _ in range(rnd.randint(1, 8))]
            st, _ = r.run(descs)
            check(st in (DT_OK, DT_FAULT, DT_BAD_DESC), "dmatest status %d" % st)
        check(r.q.alive(), "QEMU died")
    for iova, ln in sorted(live.items()):
        eq(r.unmap(iova, ln), ST_OK, "final UNMAP")
    eq(r.counter("live-mappings"), 1, "live-mappings at the end (the ring)")


@case
def counters_consistent(env, r):
    vals = {n: r.counter(n) for n in COUNTERS}
    for i, n in enumerate(COUNTERS):
        eq(r.reg(R_COUNTERS + 8 * i, 8), vals[n], "MMIO counter %s" % n)
        eq(r.reg(R_COUNTERS + 8 * i), vals[n] & 0xFFFFFFFF, "MMIO counter %s low" % n)
    check(vals["peak-mappings"] >= vals["live-mappings"], "peak < live")
    check(vals["entries"] >= vals["maps"] + vals["unmaps"], "entries < maps + unmaps")
    check(r.q.alive(), "QEMU died")


def aarch64_virt(env, _):
    """The same devices in qemu-system-aarch64 -M virt: ECAM config space,
    one MAP batch, a FILL + CSUM through the DART, counters over QMP."""
    ram, ecam, bar_dma, bar_dt = 0x40000000, 0x3F000000, 0x10000000, 0x10010000
    q = Qemu(env.aarch64, None,
             ["-device", "pegpu-dmatest,id=gpu0,addr=03.0",
              "-device", "pegpu-dma,id=dma0,managed=gpu0,addr=02.0"],
             env.workdir, "aarch64", machine=["-M", "virt,highmem=off"])
    try:
        q.ecam = ecam
        eq(q.cfg_read(2, 0), (DMA_DEVICE_ID << 16) | VENDOR, "pegpu-dma ids")
        eq(q.cfg_read(3, 0), (DMATEST_DEVICE_ID << 16) | VENDOR, "pegpu-dmatest ids")
        q.pci_setup(2, bar_dma)
        q.pci_setup(3, bar_dt)
        eq(q.readl(bar_dma + R_MAGIC), DMA_MAGIC, "MAGIC")
        eq(q.readl(bar_dma + R_MANAGED_BDF), 3 << 3, "MANAGED_BDF")
        batch, ring, buf = ram + (4 << 20), ram + (6 << 20), ram + (16 << 20)
        q.memwrite(batch, HDR.pack(BATCH_MAGIC, 2, ST_PENDING, 0, 0, 0) +
                   ENTRY.pack(OP_MAP, BIDIR, ST_PENDING, ring, PAGE, 0) +
                   ENTRY.pack(OP_MAP, BIDIR, ST_PENDING, buf, 2 * PAGE, 0))
        q.writeq(bar_dma + R_DOORBELL, batch)
        raw = q.memread(batch, HDR.size + 2 * ENTRY.size)
        eq(HDR.unpack_from(raw)[2:4], (ST_OK, 2), "batch status, nr_ok")
        ring_iova = ENTRY.unpack_from(raw, HDR.size)[5]
        buf_iova = ENTRY.unpack_from(raw, HDR.size + ENTRY.size)[5]
        q.memwrite(ring, DESC.pack(DT_FILL, DT_PENDING, 0, buf_iova + 8, PAGE, 0xA5, 0) +
                   DESC.pack(DT_CSUM, DT_PENDING, buf_iova, 0, 2 * PAGE, 0, 0))
        q.memset(buf, 2 * PAGE, 0)
        q.writeq(bar_dt + T_RING_IOVA, ring_iova)
        q.writel(bar_dt + T_RING_COUNT, 2)
        q.writel(bar_dt + T_DOORBELL, 1)
        eq(q.readl(bar_dt + T_STATUS), DT_OK, "dmatest run status")
        want = bytes(8) + b"\xa5" * PAGE + bytes(PAGE - 8)
        eq(q.memread(buf, 2 * PAGE) == want, True, "FILL landed in guest RAM")
        res = DESC.unpack_from(q.memread(ring, 2 * DESC.size), DESC.size)[6]
        eq(res, fnv1a64(want), "CSUM result")
        eq(q.qom("/machine/peripheral/dma0", "live-mappings"), 2, "live-mappings")
        q.qmp("system_reset")
        deadline = time.time() + 10
        while q.qom("/machine/peripheral/dma0", "live-mappings") and time.time() < deadline:
            time.sleep(0.05)
        eq(q.qom("/machine/peripheral/dma0", "live-mappings"), 0, "after system_reset")
    finally:
        q.close()


class Env:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("qemu")
    ap.add_argument("bios")
    ap.add_argument("--aarch64", metavar="QEMU_SYSTEM_AARCH64",
                    help="also run the arm virt case with this binary")
    ap.add_argument("-k", default="", help="run only cases whose name contains this")
    ap.add_argument("-v", action="store_true", help="print tracebacks and QEMU logs")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    env = Env()
    env.qemu, env.bios, env.aarch64 = args.qemu, args.bios, args.aarch64
    cases = CASES + ([aarch64_virt] if env.aarch64 else [])
    env.workdir = tempfile.mkdtemp(prefix="pegpu-qtest-")
    passed = failed = 0
    rig = None
    try:
        for fn in cases:
            name = fn.__name__
            if args.k not in name:
                continue
            # a case whose second parameter is "_" starts its own QEMUs
            needs_rig = fn.__code__.co_varnames[1] != "_"
            try:
                if needs_rig and (rig is None or not rig.q.alive()):
                    rig = Rig(env)
                fn(env, rig if needs_rig else None)
                if needs_rig:
                    check(rig.q.alive(), "QEMU exited: %s" % rig.q.stderr()[-300:])
                print("PASS %s" % name, flush=True)
                passed += 1
            except Exception as e:     # noqa: BLE001 - one line per case
                why = str(e) if isinstance(e, TestFailure) else "%s: %s" % (type(e).__name__, e)
                print("FAIL %s: %s" % (name, why), flush=True)
                if args.v:
                    traceback.print_exc()
                    if rig is not None:
                        sys.stderr.write(rig.q.guest_log()[-3000:])
                failed += 1
                if rig is not None and not rig.q.alive():
                    rig = None
    finally:
        if rig is not None:
            rig.q.close()
        if failed or args.keep:
            print("work directory (logs): %s" % env.workdir, file=sys.stderr)
        else:
            shutil.rmtree(env.workdir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
