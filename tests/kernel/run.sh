#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kernel tier: build PEGPU Machine and the guest modules, compile-check the
# module against a newer kernel, boot arm64 and x86_64 Debian kernels under
# TCG and run the DMA scenarios (tests/kernel/kernel_tier.py does the checks).
#
#   tests/kernel/run.sh                 all arches, all scenarios
#   tests/kernel/run.sh demo            arm64 self-test with a summary table
#   PEGPU_ARCHES=arm64 PEGPU_SCENARIOS=errors tests/kernel/run.sh
#
# Scenarios: normal (self-test, with and without coalescing), errors (tiny
# caps, device refusals, malformed batches), replay (a generated DMA trace
# replayed in the guest while pegpu_dma records; the recording replayed in
# user space must give the guest's counts), recovery (mappings left live
# across an unload/reload and a reboot), backpressure (maps waiting for
# capacity under tiny caps, and trace drops).  replay, recovery and
# backpressure need tools/pegpu-dmatrace, built here with meson in $out/meson.
#
# Prints PASS/FAIL lines and ends with "N passed, N failed".
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib/common.sh"
mode=${1:-check}
arches=${PEGPU_ARCHES:-arm64 x86_64}
out=${PEGPU_TEST_OUT:-$top/build/kernel-tier}
mkdir -p "$out"
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }

eval "$("$top/scripts/fetch-kernels.sh")" || { fail kernel/fetch "scripts/fetch-kernels.sh failed"; finish; }
if q=$("$top/machine/qemu/build.sh" 2>"$out/qemu-build.log"); then
	eval "$q"
	export PEGPU_QEMU_AARCH64 PEGPU_QEMU_X86_64 PEGPU_SEABIOS
else
	tail -30 "$out/qemu-build.log"
	fail kernel/qemu-build "machine/qemu/build.sh failed; log: $out/qemu-build.log"
	finish
fi
export PEGPU_VMLINUZ_ARM64 PEGPU_VMLINUZ_AMD64
scenarios=${PEGPU_SCENARIOS:-normal errors replay recovery backpressure}

# The trace the replay scenarios play in the guest: one small seeded
# nvidia-loading run (375 DMA API calls, 1506 events; every kind) in a
# 64 MiB model RAM, so it fits the guest's replay arena (16 MiB used).
dmatrace=$out/meson/tools/pegpu-dmatrace/pegpu-dmatrace
trace=$out/replay.trace
fwargs=()
need_tool=no
case " $scenarios " in *" replay "*|*" recovery "*|*" backpressure "*) need_tool=yes ;; esac
[ "$mode" = demo ] && need_tool=no
if [ "$need_tool" = yes ]; then
	if { [ -f "$out/meson/build.ninja" ] ||
	     meson setup "$out/meson" "$top" -Dtests=false >"$out/meson-setup.log" 2>&1; } &&
	   meson compile -C "$out/meson" tools/pegpu-dmatrace/pegpu-dmatrace >"$out/meson-build.log" 2>&1 &&
	   "$dmatrace" gen nvidia-loading --seed 7 --set ram_mib=64 --set nv_fw_kib=1024 \
		--set nv_pinned=128 --set nv_coherent=8 --set nv_bursts=4 --set nv_burst_min=32 \
		--set nv_burst_max=160 --set nv_load_ms=200 --set nv_life_ms=20 -o "$trace" \
		2>"$out/trace-gen.log"; then
		pass kernel/dmatrace
		fwargs=(--firmware "$trace")
	else
		tail -20 "$out/meson-setup.log" "$out/meson-build.log" "$out/trace-gen.log" 2>/dev/null
		fail kernel/dmatrace "pegpu-dmatrace did not build or generate the replay trace; logs in $out"
	fi
fi

# build_kmod NAME KDIR [make args]: the three modules into $out/kmod/NAME
build_kmod() {
	local name=$1 kdir=$2; shift 2
	rm -rf "$out/kmod/$name"
	if make -s -C "$top/guest/kmod" KDIR="$kdir" OUT="$out/kmod/$name" "$@" \
		>"$out/kmod-$name.log" 2>&1; then
		pass "kernel/build/$name"
	else
		tail -20 "$out/kmod-$name.log"
		fail "kernel/build/$name" "module build failed; log: $out/kmod-$name.log"
		return 1
	fi
}

if [ "$mode" != demo ]; then
	# the newer DMA API (6.10+: alloc_pages_op, ...) must keep compiling
	build_kmod amd64-6.12 "$PEGPU_KDIR_AMD64_NEW"
fi

for arch in $arches; do
	case $arch in
	arm64) kd=$PEGPU_KDIR_ARM64 bb=$PEGPU_BUSYBOX_ARM64
	       margs=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-) ;;
	x86_64) kd=$PEGPU_KDIR_AMD64 bb=$PEGPU_BUSYBOX_AMD64 margs=() ;;
	*) fail "kernel/$arch" "unknown arch (arm64, x86_64)"; continue ;;
	esac
	build_kmod "$arch" "$kd" "${margs[@]}" || continue
	m=$out/kmod/$arch
	initrd=$out/initrd-$arch.gz
	"$top/tests/kernel/mkinitramfs.sh" "${fwargs[@]}" "$bb" "$initrd" "$top/tests/kernel/guest-init.sh" \
		"$m/pegpu_dma.ko" "$m/pegpu_dmatest.ko" "$m/pegpu_badbatch.ko" ||
		{ fail "kernel/$arch/initramfs" "mkinitramfs failed"; continue; }
	if [ "$mode" = demo ]; then
		python3 "$top/tests/kernel/kernel_tier.py" demo --arch "$arch" --initrd "$initrd" \
			--json "$out/demo-$arch.json" --keep "$out/serial-demo-$arch.log" |
			grep -v '^PASS '
		rc=${PIPESTATUS[0]}
		[ "$rc" = 0 ] && pass "kernel/$arch/demo" || fail "kernel/$arch/demo" "see above"
		continue
	fi
	for sc in $scenarios; do
		r=$(python3 "$top/tests/kernel/kernel_tier.py" check --arch "$arch" --scenario "$sc" \
			--initrd "$initrd" --json "$out/$arch-$sc.json" --keep "$out/serial-$arch-$sc.log" \
			--dmatrace "$dmatrace" --trace "$trace" 2>&1)
		rc=$?
		printf '%s\n' "$r" | grep -v '^kernel_tier:'
		np=$(printf '%s\n' "$r" | grep -c '^PASS ')
		nf=$(printf '%s\n' "$r" | grep -c '^FAIL ')
		passed=$((passed + np)) failed=$((failed + nf))
		[ "$rc" != 0 ] && [ "$nf" = 0 ] && fail "kernel/$arch/$sc" "kernel_tier.py exited $rc"
	done
done
finish
