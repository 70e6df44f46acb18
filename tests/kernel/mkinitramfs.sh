#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# usage: mkinitramfs.sh [--firmware FILE]... BUSYBOX OUT.cpio.gz INIT [MODULE.ko ...]
# A busybox initramfs: INIT becomes /init, modules go to /lib/pegpu,
# firmware files (e.g. the trace pegpu_dmatest.ko replays) to
# /lib/firmware/pegpu/, where request_firmware() finds them.
set -eu
fw=""
while [ "${1:-}" = --firmware ]; do
	fw="$fw $2"
	shift 2
done
bb=$1 out=$2 init=$3
shift 3
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/bin" "$d/proc" "$d/sys" "$d/dev" "$d/tmp" "$d/lib/pegpu" "$d/lib/firmware/pegpu"
cp "$bb" "$d/bin/busybox"
cp "$init" "$d/init"
chmod 755 "$d/init"
for m in "$@"; do cp "$m" "$d/lib/pegpu/"; done
for f in $fw; do cp "$f" "$d/lib/firmware/pegpu/"; done
(cd "$d" && find . | sort | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
