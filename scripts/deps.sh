#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install everything pegpu needs on a Debian 12 (bookworm) host, then fetch
# the guest kernels into the cache.  Safe to run again: it only installs
# what is missing.  Packages from other suites (trixie's QEMU source,
# arm64 kernels) never touch the host's apt state: they go through the
# private apt config in "$PEGPU_CACHE/apt" (scripts/lib/common.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"

pkgs=(
	# user space: compilers, meson, unit tests, fuzzing
	build-essential pkg-config meson ninja-build libcmocka-dev clang libclang-rt-14-dev
	# kernel modules: pinned headers, kbuild, the arm64 cross compiler, BTF
	"linux-headers-$PEGPU_KABI-cloud-amd64" bc kmod dwarves gcc-aarch64-linux-gnu
	# PEGPU Machine (QEMU) build dependencies
	libglib2.0-dev libpixman-1-dev python3-venv flex bison libslirp-dev zlib1g-dev libfdt-dev
	bzip2 xz-utils dpkg-dev
	# guests: initramfs, images, SSH
	busybox-static cpio e2fsprogs qemu-utils openssh-client
	# runtime: config, JSON, event loop + HTTP, downloads
	libyaml-dev libjansson-dev libevent-dev libcurl4-openssl-dev
	# download and verify
	ca-certificates curl
	# VM runtime: guest images (image-build.sh), UEFI firmware, cloud-init's schema check
	debootstrap fdisk mtools ovmf cloud-init
	# tests/llama: the sid chroot for llama.cpp (debootstrap, above), JSON checks, fake RPC servers
	python3
)

[ -r /etc/debian_version ] || pegpu_die "this script is for Debian 12 (bookworm); see docs/building.md for other hosts"

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	pegpu_log "installing ${#missing[@]} packages: ${missing[*]}"
	pegpu_as_root env DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
	pegpu_as_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends "${missing[@]}" >&2 ||
		pegpu_die "apt-get install failed; the packages needed are: ${missing[*]}"
	# cloud-init is here for its schema check of the user-data pegpu generates,
	# not to configure this host: when we brought it in, keep it from running
	# at boot (its documented off switch).  A host that had it already is left alone.
	case " ${missing[*]} " in
	*" cloud-init "*) pegpu_as_root sh -c 'mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled' ;;
	esac
else
	pegpu_log "host packages: all present"
fi

"$here/fetch-kernels.sh" >/dev/null
pegpu_log "dependencies ready (cache: $PEGPU_CACHE)"
