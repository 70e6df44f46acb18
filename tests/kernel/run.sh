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
	"$top/tests/kernel/mkinitramfs.sh" "$bb" "$initrd" "$top/tests/kernel/guest-init.sh" \
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
	for sc in ${PEGPU_SCENARIOS:-normal errors}; do
		r=$(python3 "$top/tests/kernel/kernel_tier.py" check --arch "$arch" --scenario "$sc" \
			--initrd "$initrd" --json "$out/$arch-$sc.json" --keep "$out/serial-$arch-$sc.log" 2>&1)
		rc=$?
		printf '%s\n' "$r" | grep -v '^kernel_tier:'
		np=$(printf '%s\n' "$r" | grep -c '^PASS ')
		nf=$(printf '%s\n' "$r" | grep -c '^FAIL ')
		passed=$((passed + np)) failed=$((failed + nf))
		[ "$rc" != 0 ] && [ "$nf" = 0 ] && fail "kernel/$arch/$sc" "kernel_tier.py exited $rc"
	done
done
finish
