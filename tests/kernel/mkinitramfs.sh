#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# usage: mkinitramfs.sh BUSYBOX OUT.cpio.gz INIT [MODULE.ko ...]
# A busybox initramfs: INIT becomes /init, modules go to /lib/pegpu.
set -eu
bb=$1 out=$2 init=$3
shift 3
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/bin" "$d/proc" "$d/sys" "$d/dev" "$d/tmp" "$d/lib/pegpu"
cp "$bb" "$d/bin/busybox"
cp "$init" "$d/init"
chmod 755 "$d/init"
for m in "$@"; do cp "$m" "$d/lib/pegpu/"; done
(cd "$d" && find . | sort | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
