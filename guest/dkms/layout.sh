#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Lay out the pegpu-dma DKMS source tree: DEST/dkms.conf plus the kmod
# sources with the checkout's shape, which guest/kmod/Kbuild relies on
# (../../include, ../../lib/coalesce.c):
#   DEST/dkms.conf
#   DEST/guest/kmod/{Kbuild,*.c,*.h}
#   DEST/include/pegpu/*.h
#   DEST/lib/coalesce.c
# usage: guest/dkms/layout.sh DEST VERSION
# DEST is what `dkms add` expects as /usr/src/pegpu-dma-VERSION.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ $# -eq 2 ] || { echo "usage: $0 DEST VERSION" >&2; exit 2; }
dest=$1 ver=$2
for f in "$top/guest/kmod/Kbuild" "$top/lib/coalesce.c"; do
	[ -f "$f" ] || { echo "pegpu: $f is missing: the guest driver sources are incomplete" >&2; exit 1; }
done
rm -rf "$dest"
mkdir -p "$dest/guest/kmod" "$dest/include/pegpu" "$dest/lib"
cp -p "$top"/guest/kmod/Kbuild "$top"/guest/kmod/*.c "$top"/guest/kmod/*.h "$dest/guest/kmod/"
cp -p "$top"/include/pegpu/*.h "$dest/include/pegpu/"
cp -p "$top/lib/coalesce.c" "$dest/lib/"
sed "s/@VERSION@/$ver/" "$here/dkms.conf.in" > "$dest/dkms.conf"
