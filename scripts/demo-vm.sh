#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The second half of `make demo`: a Debian guest made, provisioned, started,
# reached and stopped by the `pegpu` command, as a user would do it:
#
#   pegpu create demo --image <guest image>   cloud-init, the pegpu-dma DKMS package
#   pegpu ssh demo -- lsmod ...               the guest driver is loaded
#   pegpu stop demo                           the stop ladder, a clean disk
#
# The guest image is built from Debian packages (scripts/image-build.sh,
# cached in $PEGPU_CACHE by its inputs), since the rig reaches the Debian
# archive but not Debian's cloud image site; on a Mac `pegpu create demo`
# downloads the official cloud image instead.  Linux: x86_64 guest under TCG.
# The instance stays in $PEGPU_HOME (default ~/.pegpu) for `pegpu start demo`
# and `pegpu ssh demo`; a second run starts it again instead of re-creating it.
#
# usage: scripts/demo-vm.sh      (root: debootstrap builds the image)
# env:   PEGPU_DEMO_NAME (default demo), PEGPU_DEMO_SUITE (default trixie)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# shellcheck source=lib/common.sh
. scripts/lib/common.sh
# shellcheck source=lib/guest-image.sh
. scripts/lib/guest-image.sh

name=${PEGPU_DEMO_NAME:-demo}
suite=${PEGPU_DEMO_SUITE:-trixie}
logs=$top/build/demo
mkdir -p "$logs"
now() { date +%s; }
step() { printf '\npegpu demo: %s\n' "$*"; }
t_all=$(now)

step "building the pegpu command"
{ [ -f build/meson/build.ninja ] || meson setup build/meson; } > "$logs/meson.log" 2>&1 &&
	meson compile -C build/meson runtime/pegpu >> "$logs/meson.log" 2>&1 ||
	pegpu_die "building pegpu failed; see $logs/meson.log"
pegpu=$top/build/meson/runtime/pegpu
eval "$(machine/qemu/build.sh 2>> "$logs/qemu-build.log")" ||
	pegpu_die "building PEGPU Machine failed; see $logs/qemu-build.log"
export PEGPU_QEMU_X86_64

if ! "$pegpu" status "$name" > /dev/null 2>&1; then
	step "building the guest image from Debian $suite packages (cached; ~5-10 min the first time)"
	t=$(now)
	pegpu_guest_image "$suite" "$logs/image-build.log" > "$logs/imgdir" ||
		pegpu_die "the image build failed; see $logs/image-build.log"
	imgdir=$(cat "$logs/imgdir")
	echo "  $imgdir/pegpu-$suite-amd64.qcow2 ($(($(now) - t)) s)"
	deb=$(guest/dkms/mkdeb.sh "$top/build/deb" 2> "$logs/mkdeb.log") ||
		pegpu_die "packaging the guest driver failed; see $logs/mkdeb.log"

	step "pegpu create $name (first boot: cloud-init, the guest driver through DKMS; ~10 min under TCG)"
	t=$(now)
	"$pegpu" create "$name" --image "$imgdir/pegpu-$suite-amd64.qcow2" --driver-deb "$deb" \
		--memory 2G --cpus 2 --timeout 2400
	echo "  provisioned in $(($(now) - t)) s"
else
	step "pegpu start $name (made by an earlier demo)"
	t=$(now)
	state=$("$pegpu" status "$name" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
	[ "$state" = running ] || "$pegpu" start "$name"
	echo "  reachable over SSH in $(($(now) - t)) s"
fi

step "pegpu ssh $name: the guest driver"
"$pegpu" ssh "$name" -- 'uname -sr; grep "^pegpu_dma " /proc/modules; /usr/sbin/dkms status pegpu-dma'

step "pegpu status $name"
"$pegpu" status "$name"

step "pegpu stop $name"
t=$(now)
"$pegpu" stop "$name"
echo "  stopped in $(($(now) - t)) s"

printf '\npegpu demo: done in %d s.  Next: pegpu start %s; pegpu ssh %s; pegpu stop %s\n' \
	"$(($(now) - t_all))" "$name" "$name" "$name"
