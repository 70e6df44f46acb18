#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build pegpu-dma-dkms_VERSION_all.deb, the package through which guests get
# the pegpu DMA driver (what `pegpu create` installs at first boot):
#   /usr/src/pegpu-dma-VERSION/   the DKMS tree (layout.sh)
#   /etc/modules-load.d/pegpu-dma.conf   load pegpu_dma at every boot
#   /etc/modprobe.d/pegpu-dma.conf       ... and before any GPU driver
# postinst registers it with DKMS and builds it for the installed kernels
# that have headers (the running kernel must succeed); prerm removes it.
# usage: guest/dkms/mkdeb.sh OUTDIR      (prints the .deb's path)
# Needs dpkg-deb (Debian's dpkg); VERSION is the project's (meson.build).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
command -v dpkg-deb >/dev/null || { echo "pegpu: dpkg-deb is missing (package dpkg)" >&2; exit 1; }
ver=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -1)
[ -n "$ver" ] || { echo "pegpu: no version in meson.build" >&2; exit 1; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg=$work/pkg
"$here/layout.sh" "$pkg/usr/src/pegpu-dma-$ver" "$ver"
mkdir -p "$pkg/DEBIAN" "$pkg/etc/modules-load.d" "$pkg/etc/modprobe.d"
echo pegpu_dma > "$pkg/etc/modules-load.d/pegpu-dma.conf"
cat > "$pkg/etc/modprobe.d/pegpu-dma.conf" <<EOT
# pegpu: the GPU's DMA goes through pegpu_dma, so it loads before GPU drivers
softdep nvidia pre: pegpu_dma
softdep nouveau pre: pegpu_dma
EOT
cat > "$pkg/DEBIAN/control" <<EOT
Package: pegpu-dma-dkms
Version: $ver
Architecture: all
Section: kernel
Priority: optional
Maintainer: pegpu developers <pegpu@localhost>
Depends: dkms, make, gcc
Description: pegpu guest DMA driver (DKMS)
 pegpu_dma maps a passed-through GPU's DMA buffers one by one through the
 pegpu-dma paravirtual device, inside the limits of Apple's DART, so an
 NVIDIA eGPU works in a VM on an Apple Silicon Mac.
EOT
printf '/etc/modules-load.d/pegpu-dma.conf\n/etc/modprobe.d/pegpu-dma.conf\n' > "$pkg/DEBIAN/conffiles"
cat > "$pkg/DEBIAN/postinst" <<EOT
#!/bin/sh
set -e
[ "\$1" = configure ] || exit 0
dkms status -m pegpu-dma -v $ver 2>/dev/null | grep -q . || dkms add -m pegpu-dma -v $ver
running=\$(uname -r)
for d in /lib/modules/*/build; do
	[ -e "\$d" ] || continue
	k=\$(basename "\$(dirname "\$d")")
	if ! dkms install -m pegpu-dma -v $ver -k "\$k"; then
		# another kernel's failure must not block the package; the running one's must
		[ "\$k" = "\$running" ] && exit 1
		echo "pegpu-dma: could not build for kernel \$k (skipped)" >&2
	fi
done
exit 0
EOT
cat > "$pkg/DEBIAN/prerm" <<EOT
#!/bin/sh
set -e
dkms remove -m pegpu-dma -v $ver --all >/dev/null 2>&1 || true
exit 0
EOT
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm"
deb=$out/pegpu-dma-dkms_${ver}_all.deb
dpkg-deb --root-owner-group -Zxz -b "$pkg" "$deb" >/dev/null
echo "$deb"
