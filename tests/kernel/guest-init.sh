#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
# /init of the kernel tier's initramfs: load pegpu's modules in the order a
# real guest does, run the scenario named on the kernel command line
# (pegpu.scenario=...), print everything the host checks between markers,
# and power off.  The host side is tests/kernel/kernel_tier.py.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
M=/lib/pegpu

scenario=normal
for a in $(cat /proc/cmdline); do
	case $a in pegpu.scenario=*) scenario=${a#pegpu.scenario=} ;; esac
done
echo "PEGPU_GUEST kernel=$(uname -r) arch=$(uname -m) scenario=$scenario"

# step NAME CMD...: run, report rc, print the kernel log it produced
step() {
	name=$1; shift
	"$@"
	echo "PEGPU_STEP name=$name rc=$?"
	dmesg -c | grep -E 'PEGPU_|pegpu|Oops|BUG|WARNING|Call trace|panic' | sed 's/^\[[ 0-9.]*\] //'
}

dump_debugfs() {
	for f in /sys/kernel/debug/pegpu_dma/*/stats; do
		[ -r "$f" ] || continue
		echo "PEGPU_DEBUGFS_BEGIN $1"; cat "$f"; echo "PEGPU_DEBUGFS_END"
	done
}

# dump_trace TAG [BYTES]: read pegpu_dma's debugfs trace (until the ring is
# drained, or one read of BYTES) and print what came in base64
dump_trace() {
	for f in /sys/kernel/debug/pegpu_dma/*/trace; do
		[ -r "$f" ] || continue
		if [ -n "${2:-}" ]; then
			dd if="$f" of=/tmp/rec.trace bs="$2" count=1 2>/dev/null
		else
			cat "$f" > /tmp/rec.trace
		fi
		echo "PEGPU_TRACE_BEGIN tag=$1 bytes=$(wc -c < /tmp/rec.trace)"
		base64 /tmp/rec.trace
		echo "PEGPU_TRACE_END"
	done
}

# devregs TAG: pegpu-dma's counters straight from BAR0 (devmem), no driver
# needed: what the device itself reports, e.g. before any driver loads.
# Sets dev_maps to its MAP total.
devregs() {
	dev_maps=
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x9e90 ] || continue
		# memory decoding on (pci_enable_device) without binding a driver
		[ "$(cat "$d/enable")" = 0 ] && echo 1 > "$d/enable"
		bar=$(($(head -n 1 "$d/resource" | cut -d' ' -f1)))
		line="PEGPU_DEVREGS tag=$1"
		n=0
		for c in doorbells entries maps unmaps live mapped peak_maps peak_bytes refusals errors faults resets; do
			v=$(($(devmem $((bar + 0x100 + 8 * n)) 64)))
			line="$line $c=$v"
			[ $c = maps ] && dev_maps=$v
			n=$((n + 1))
		done
		echo "$line"
	done
}

dmesg -c >/dev/null
case $scenario in
normal)
	for cs in 262144 0; do
		echo "PEGPU_RUN cluster_size=$cs"
		step load_dma insmod $M/pegpu_dma.ko cluster_size=$cs
		step selftest insmod $M/pegpu_dmatest.ko
		dump_debugfs cluster_size=$cs
		step unload_test rmmod pegpu_dmatest
		step unload_dma rmmod pegpu_dma
	done
	;;
errors)
	# precheck=1: the driver refuses before asking (the default);
	# precheck=0: the requests reach the device, which must refuse them
	for pc in 1 0; do
		echo "PEGPU_RUN precheck=$pc"
		step load_dma insmod $M/pegpu_dma.ko precheck=$pc
		step selftest insmod $M/pegpu_dmatest.ko expect_refusal=1
		dump_debugfs precheck=$pc
		step unload_test rmmod pegpu_dmatest
		step unload_dma rmmod pegpu_dma
	done
	# a hostile guest: malformed batches straight to the device's registers
	step badbatch insmod $M/pegpu_badbatch.ko
	step unload_badbatch rmmod pegpu_badbatch
	;;
replay)
	# a generated trace (tests/kernel/run.sh, pegpu-dmatrace gen) replayed
	# through the DMA API while pegpu_dma records what it sees; the host
	# replays the recording in user space and compares the counts
	step load_dma insmod $M/pegpu_dma.ko
	step replay insmod $M/pegpu_dmatest.ko replay=pegpu/replay.trace
	dump_trace replay
	dump_debugfs replay
	step unload_test rmmod pegpu_dmatest
	step unload_dma rmmod pegpu_dma
	;;
recovery)
	# boot 1 leaves mappings live across an unload/reload and then a
	# reboot; boot 2 must find the device empty before any driver loads.
	# The device's total MAP count survives resets and tells the boots apart.
	devregs boot
	if [ "$dev_maps" = 0 ]; then
		echo "PEGPU_RECOVERY boot=1"
		step load_dma insmod $M/pegpu_dma.ko
		step leak insmod $M/pegpu_dmatest.ko selftest=0 leak=8
		dump_debugfs leaked
		step unload_test rmmod pegpu_dmatest
		step unload_dma rmmod pegpu_dma
		devregs unloaded
		step reload_dma insmod $M/pegpu_dma.ko
		dump_debugfs reloaded
		step leak_again insmod $M/pegpu_dmatest.ko selftest=0 leak=8
		dump_debugfs leaked_again
		echo "PEGPU_RECOVERY reboot"
		reboot -f
		sleep 60
	fi
	echo "PEGPU_RECOVERY boot=2"
	step load_dma insmod $M/pegpu_dma.ko
	dump_debugfs reset
	step replay insmod $M/pegpu_dmatest.ko replay=pegpu/replay.trace verify_every=16
	step unload_test rmmod pegpu_dmatest
	step unload_dma rmmod pegpu_dma
	;;
backpressure)
	# tiny caps (the host starts the device so), every buffer its own
	# mapping, maps that may sleep wait up to 1 s for capacity, and a
	# 16-record trace ring that the cases overflow
	step load_dma insmod $M/pegpu_dma.ko cluster_size=0 wait_ms=1000 trace_records=16
	step backpressure insmod $M/pegpu_dmatest.ko backpressure=1
	dump_debugfs backpressure
	step unload_test rmmod pegpu_dmatest
	# drop accounting: read 4 records of the full ring, record more (after
	# a gap: a DROP first) until it overflows again, then read the rest;
	# some leak= maps exceed the caps: they must fail without waiting
	dump_trace head 192
	echo 0 > /sys/module/pegpu_dma/parameters/wait_ms
	step leak insmod $M/pegpu_dmatest.ko selftest=0 leak=12
	dump_trace rest
	dump_debugfs traced
	step unload_leak rmmod pegpu_dmatest
	step unload_dma rmmod pegpu_dma
	;;
*)
	echo "PEGPU_GUEST unknown scenario '$scenario'"
	;;
esac
echo "PEGPU_GUEST_DONE"
poweroff -f
