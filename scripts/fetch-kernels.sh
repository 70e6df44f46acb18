#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Download and unpack the guest kernels and headers the kernel tier needs,
# into "$PEGPU_CACHE/kernels" (outside the checkout; reused when present):
#   - Debian 6.1 with the pinned ABI: arm64 image + headers, amd64 cloud image
#     (the amd64 headers come from the host's apt: scripts/deps.sh);
#   - busybox-static for arm64 (the amd64 one is the host's);
#   - bookworm-backports 6.12 amd64 headers + kbuild, to compile-check the
#     module against the newer DMA API.
# Prints shell assignments (PEGPU_KDIR_*, PEGPU_VMLINUZ_*, PEGPU_BUSYBOX_*).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"

K=$PEGPU_KABI
root=$PEGPU_CACHE/kernels
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9

unpack() {	# unpack <dir> <package...>: download with the private apt config, dpkg -x
	local dir=$1; shift
	local tmp
	tmp=$(mktemp -d "$root/.dl.XXXXXX")
	( cd "$tmp" && APT_CONFIG=$apt apt-get -q download "$@" >&2 ) ||
		{ rm -rf "$tmp"; pegpu_die "could not download $*; run scripts/deps.sh and check the network"; }
	mkdir -p "$dir"
	for f in "$tmp"/*.deb; do dpkg -x "$f" "$dir"; done
	rm -rf "$tmp"
}

# Debian's per-flavour header Makefile includes the common headers by
# absolute path; point it at the copy unpacked beside it.
fix_common() {
	sed -i "s#^include /usr/src/#include $(dirname "$1")/#" "$1/Makefile"
}

apt=""
need_apt() { [ -n "$apt" ] || apt=$(pegpu_apt_private); }

a64=$root/$K/arm64
if [ ! -e "$a64/.done" ]; then
	need_apt
	pegpu_log "fetching arm64 kernel $K, headers and busybox"
	rm -rf "$a64"
	unpack "$a64" "linux-image-$K-arm64-unsigned:arm64" "linux-headers-$K-arm64:arm64" \
		"linux-headers-$K-common" "busybox-static:arm64"
	# the arm64 headers' scripts are host tools: use the host's kbuild (amd64)
	kb=$(readlink "$a64/usr/src/linux-headers-$K-arm64/scripts" | sed 's#.*/\(linux-kbuild-[^/]*\)/.*#\1#')
	[ -d "/usr/lib/$kb" ] || pegpu_die "/usr/lib/$kb is missing: run scripts/deps.sh"
	mkdir -p "$a64/usr/lib"
	ln -sfn "/usr/lib/$kb" "$a64/usr/lib/$kb"
	fix_common "$a64/usr/src/linux-headers-$K-arm64"
	touch "$a64/.done"
fi

x64=$root/$K/amd64
if [ ! -e "$x64/.done" ]; then
	need_apt
	pegpu_log "fetching amd64 kernel $K"
	rm -rf "$x64"
	unpack "$x64" "linux-image-$K-cloud-amd64-unsigned"
	touch "$x64/.done"
fi

new=$root/6.12/amd64
if [ ! -e "$new/.done" ]; then
	need_apt
	# the newest 6.12 built for bookworm's libc (bookworm-backports)
	v=$(APT_CONFIG=$apt apt-cache search --names-only '^linux-kbuild-6\.12\.[0-9]+\+deb12$' |
		awk '{print $1}' | sed 's/^linux-kbuild-//' | sort -V | tail -1)
	[ -n "$v" ] || pegpu_die "no bookworm-backports 6.12 kbuild found in the private apt lists"
	pegpu_log "fetching amd64 headers $v"
	rm -rf "$new"
	unpack "$new" "linux-headers-$v-cloud-amd64" "linux-headers-$v-common" "linux-kbuild-$v"
	fix_common "$new/usr/src/linux-headers-$v-cloud-amd64"
	printf '%s\n' "$v" > "$new/version"
	touch "$new/.done"
fi
nv=$(cat "$new/version")

cat <<EOT
PEGPU_KDIR_ARM64=$a64/usr/src/linux-headers-$K-arm64
PEGPU_KDIR_AMD64=/usr/src/linux-headers-$K-cloud-amd64
PEGPU_KDIR_AMD64_NEW=$new/usr/src/linux-headers-$nv-cloud-amd64
PEGPU_VMLINUZ_ARM64=$a64/boot/vmlinuz-$K-arm64
PEGPU_VMLINUZ_AMD64=$x64/boot/vmlinuz-$K-cloud-amd64
PEGPU_BUSYBOX_ARM64=$a64/bin/busybox
PEGPU_BUSYBOX_AMD64=/bin/busybox
EOT
