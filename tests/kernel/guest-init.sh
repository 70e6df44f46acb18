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
*)
	echo "PEGPU_GUEST unknown scenario '$scenario'"
	;;
esac
echo "PEGPU_GUEST_DONE"
poweroff -f
