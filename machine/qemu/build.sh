#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# machine/qemu/build.sh: build PEGPU Machine, a pinned QEMU 10.0.x with the
# pegpu devices (pegpu-dma, pegpu-dmatest) compiled in as hw/misc/pegpu/.
#
# usage: machine/qemu/build.sh
#
# Everything lives outside the checkout, under $PEGPU_CACHE/qemu/:
#   dl/                 the pinned QEMU source (Debian trixie source package,
#                       or the upstream release tarball on macOS), checksummed
#   pydeps-<ver>/       trixie's meson + pycotap (arch:all debs, dpkg -x)
#   firmware-<key>/     trixie's SeaBIOS (bookworm's stalls ~32 s at x86 boot),
#                       qemu-system-data (linuxboot_dma.bin, kvmvapic.bin, ...)
#                       and ipxe-qemu (NIC option ROMs): Debian's +ds source has
#                       no firmware, so these are linked into the build's data
#                       directory and the binaries find them without -L
#   tree-<key>/         an extracted, patched, configured QEMU tree; <key>
#                       hashes the QEMU version, this script, our Kconfig,
#                       meson.build, device .mak files and configure flags
#
# Our .c/.h files and the device core from lib/ are copied into the tree on
# every run, but only when their contents changed, so an edit costs ninja a
# few seconds.  A fresh tree costs ~4-5 min on a 2-core machine.
#
# Progress goes to stderr.  On success stdout carries exactly one line of
# shell assignments, for callers to eval:
#   PEGPU_QEMU_AARCH64=... PEGPU_QEMU_X86_64=... PEGPU_SEABIOS=...
#
# Environment: PEGPU_CACHE (see scripts/lib/common.sh), PEGPU_JOBS (ninja
# jobs, default nproc), PEGPU_VERBOSE=1 (stream configure/ninja output).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

# --- pins --------------------------------------------------------------------
# Change these together; the Debian ones come from `apt-cache showsrc qemu`
# with the private apt config (scripts/lib/common.sh: pegpu_apt_private).
QEMU_VERSION=10.0.13
DEB_QEMU_VERSION=1:10.0.13+ds-0+deb13u1
DEB_QEMU_ORIG=qemu_10.0.13+ds.orig.tar.xz
DEB_QEMU_ORIG_SHA256=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
DEB_QEMU_DSC=qemu_10.0.13+ds-0+deb13u1.dsc
DEB_QEMU_DSC_SHA256=a426c892e5369058c3423816c8625bc8010bb5a58ece57261f62b64ee4d765ad
DEB_MESON_VERSION=1.7.0-1		# QEMU 10 wants meson >= 1.5; bookworm has 1.0
DEB_PYCOTAP_VERSION=1.3.1-2
DEB_SEABIOS_VERSION=1.16.3-2
DEB_QEMU_DATA_VERSION=$DEB_QEMU_VERSION	# qemu-system-data: option ROMs
DEB_IPXE_VERSION=1.21.1+git20250501.dad20602+dfsg-1
# macOS: the upstream release tarball.  Its sha256 must be pinned here
# before the macOS branch is used (copy it from the release's .sig-checked
# download page or `shasum -a 256` of a tarball whose GPG signature you
# verified); an empty pin makes the macOS build refuse to run.
UPSTREAM_TARBALL=qemu-$QEMU_VERSION.tar.xz
UPSTREAM_URL=https://download.qemu.org/$UPSTREAM_TARBALL
UPSTREAM_SHA256=${PEGPU_QEMU_UPSTREAM_SHA256:-}

# our sources, relative to the checkout root
OUR_BUILD_FILES="machine/qemu/build.sh machine/qemu/Kconfig machine/qemu/meson.build
	machine/qemu/devices-aarch64.mak machine/qemu/devices-x86_64.mak"
LIB_FILES="lib/dart_emu.c lib/dma_dev.c lib/dma_backend_emu.c"

HOST_OS=$(uname -s)
case $HOST_OS in
# Debian's source has no blobs (firmware comes from trixie's debs instead);
# the upstream tarball has them, and macOS guests need its edk2.
Linux)	HOST_FLAGS="--disable-install-blobs";;
Darwin)	HOST_FLAGS="--enable-hvf";;
*)	pegpu_die "unsupported host OS '$HOST_OS' (Linux or macOS)";;
esac
CONFIGURE_FLAGS="--target-list=aarch64-softmmu,x86_64-softmmu
	--without-default-features --without-default-devices
	--with-devices-aarch64=pegpu --with-devices-x86_64=pegpu
	--enable-tcg --enable-slirp --enable-fdt=system --disable-docs
	$HOST_FLAGS"
CONFIGURE_FLAGS=$(echo $CONFIGURE_FLAGS)	# one line, single spaces

JOBS=${PEGPU_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
QCACHE=$PEGPU_CACHE/qemu
T0=$(date +%s)

step() { pegpu_log "qemu: $* [$(( $(date +%s) - T0 )) s]"; }

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
	else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# Check a downloaded file against its pin; fail clearly on a mismatch.
verify_sha256() {
	local f=$1 want=$2 got
	[ -f "$f" ] || pegpu_die "$f is missing after the download"
	got=$(sha256_of "$f")
	if [ "$got" != "$want" ]; then
		pegpu_die "checksum mismatch for $(basename "$f"):
  expected $want (pinned in machine/qemu/build.sh)
  got      $got
The archive served a different file for the pinned version.  Do not build from it: remove
$f and retry, or move the pins in build.sh deliberately."
	fi
}

# Run a long command with its output in a log file (or streamed with
# PEGPU_VERBOSE=1); show the log's tail when it fails.
run_logged() {
	local log=$1; shift
	: >"$log"
	if [ "${PEGPU_VERBOSE:-0}" = 1 ]; then
		"$@" 2>&1 | tee -a "$log" >&2 || { pegpu_die "'$1' failed; log: $log"; }
		return 0
	fi
	if ! "$@" >>"$log" 2>&1; then
		tail -n 40 "$log" >&2
		pegpu_die "'$1' failed; full log: $log"
	fi
}

# --- locking -------------------------------------------------------------------
# One build at a time per cache: held until the script exits.
take_lock() {
	local owner
	mkdir -p "$QCACHE"
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$QCACHE/.lock"
		if ! flock -n 9; then
			pegpu_log "qemu: another build holds $QCACHE/.lock; waiting"
			flock 9
		fi
	else
		# macOS has no flock(1): a lock directory, taken over if its owner died
		while ! mkdir "$QCACHE/.lock.d" 2>/dev/null; do
			owner=$(cat "$QCACHE/.lock.d/pid" 2>/dev/null || true)
			if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
				rm -rf "$QCACHE/.lock.d"
				continue
			fi
			pegpu_log "qemu: another build (pid ${owner:-?}) holds $QCACHE/.lock.d; waiting"
			sleep 5
		done
		echo $$ >"$QCACHE/.lock.d/pid"
		trap 'rm -rf "$QCACHE/.lock.d"' EXIT
	fi
}

# --- build dependencies ------------------------------------------------------------
ensure_build_deps() {
	local p missing=""
	if [ "$HOST_OS" = Darwin ]; then
		for p in ninja pkg-config python3 curl; do
			command -v $p >/dev/null 2>&1 || missing="$missing $p"
		done
		[ -z "$missing" ] || pegpu_die "missing tools:$missing; install them with Homebrew:
  brew install ninja pkg-config glib pixman libslirp dtc"
		return 0
	fi
	for p in build-essential ninja-build libglib2.0-dev libpixman-1-dev python3-venv \
		 flex bison pkg-config libslirp-dev zlib1g-dev libfdt-dev bzip2 xz-utils; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		pegpu_log "qemu: installing missing build dependencies:$missing"
		pegpu_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends $missing >&2 ||
			pegpu_die "could not install the QEMU build dependencies:$missing
  install them by hand: apt-get install$missing"
	fi
}

# --- sources -------------------------------------------------------------------
APT_CONF=""
# as root, apt would warn that it cannot drop to _apt for our cache dirs
APT_OPTS=""
[ "$(id -u)" != 0 ] || APT_OPTS="-o APT::Sandbox::User=root"
apt_conf() {
	[ -n "$APT_CONF" ] || APT_CONF=$(pegpu_apt_private)
	printf '%s\n' "$APT_CONF"
}

# Prints the path of the verified source tarball.
fetch_qemu_source() {
	local dl=$QCACHE/dl
	mkdir -p "$dl"
	if [ "$HOST_OS" = Darwin ]; then
		[ -n "$UPSTREAM_SHA256" ] || pegpu_die "the upstream tarball's sha256 is not pinned:
  set UPSTREAM_SHA256 in machine/qemu/build.sh (or PEGPU_QEMU_UPSTREAM_SHA256) to the
  sha256 of $UPSTREAM_URL after checking its GPG signature"
		if [ ! -f "$dl/$UPSTREAM_TARBALL" ]; then
			step "downloading $UPSTREAM_URL"
			curl -fL --retry 3 -o "$dl/$UPSTREAM_TARBALL.part" "$UPSTREAM_URL" >&2 ||
				pegpu_die "download of $UPSTREAM_URL failed"
			mv "$dl/$UPSTREAM_TARBALL.part" "$dl/$UPSTREAM_TARBALL"
		fi
		verify_sha256 "$dl/$UPSTREAM_TARBALL" "$UPSTREAM_SHA256"
		printf '%s\n' "$dl/$UPSTREAM_TARBALL"
		return 0
	fi
	if [ ! -f "$dl/$DEB_QEMU_ORIG" ] || [ ! -f "$dl/$DEB_QEMU_DSC" ]; then
		step "downloading Debian source qemu=$DEB_QEMU_VERSION (trixie)"
		local conf
		conf=$(apt_conf)
		( cd "$dl" && APT_CONFIG=$conf apt-get $APT_OPTS source -d -q "qemu=$DEB_QEMU_VERSION" >&2 ) ||
			pegpu_die "apt-get source -d qemu=$DEB_QEMU_VERSION failed.  If the mirror has
  moved on to a newer trixie update, see \`APT_CONFIG=$conf apt-cache showsrc qemu\`
  and move the pins at the top of machine/qemu/build.sh deliberately."
	fi
	verify_sha256 "$dl/$DEB_QEMU_DSC" "$DEB_QEMU_DSC_SHA256"
	verify_sha256 "$dl/$DEB_QEMU_ORIG" "$DEB_QEMU_ORIG_SHA256"
	grep -q "$DEB_QEMU_ORIG_SHA256 [0-9]* $DEB_QEMU_ORIG" "$dl/$DEB_QEMU_DSC" ||
		pegpu_die "$DEB_QEMU_DSC does not list $DEB_QEMU_ORIG with the pinned sha256"
	printf '%s\n' "$dl/$DEB_QEMU_ORIG"
}

# apt-get download NAME=VERSION into DIR and dpkg -x it into DIR/root.
fetch_deb() {
	local dir=$1 pkg=$2 ver=$3 conf
	[ -f "$dir/.$pkg.done" ] && return 0
	mkdir -p "$dir/root"
	conf=$(apt_conf)
	step "downloading $pkg=$ver (trixie)"
	( cd "$dir" && rm -f "${pkg}"_*.deb &&
	  APT_CONFIG=$conf apt-get $APT_OPTS download -q "$pkg=$ver" >&2 ) ||
		pegpu_die "apt-get download $pkg=$ver failed (private config $conf)"
	dpkg -x "$dir/${pkg}_"*.deb "$dir/root"
	touch "$dir/.$pkg.done"
}

# Copy SRC to DST only when the contents differ (untouched files keep their
# mtimes, so ninja rebuilds just what changed).
CHANGED=""
sync_file() {
	local src=$1 dst=$2
	if ! cmp -s "$src" "$dst"; then
		mkdir -p "$(dirname "$dst")"
		cp "$src" "$dst.tmp" && mv "$dst.tmp" "$dst"
		CHANGED="$CHANGED $src"
	fi
}

# Our sources into hw/misc/pegpu/: device files, the device core, headers.
sync_sources() {
	local d=$SRC/hw/misc/pegpu f
	CHANGED=""
	for f in machine/qemu/*.c machine/qemu/*.h machine/qemu/Kconfig machine/qemu/meson.build; do
		[ -f "$f" ] || continue
		sync_file "$f" "$d/$(basename "$f")"
	done
	for f in $LIB_FILES; do
		sync_file "$f" "$d/lib/$(basename "$f")"
	done
	for f in include/pegpu/*.h; do
		sync_file "$f" "$d/include/pegpu/$(basename "$f")"
	done
	[ -z "$CHANGED" ] || step "copied changed sources:$CHANGED"
}

# Link the firmware from trixie's debs into the data directory that the
# binaries search when run from the build tree (build/qemu-bundle/<prefix>/
# share/qemu), so -kernel boots (linuxboot_dma.bin) and NICs (efi-*.rom)
# work without -L.  What QEMU installed there itself is left alone.
link_firmware() {
	local datadir f dst
	datadir=$(find "$BUILD/qemu-bundle" -type d -path '*/share/qemu' 2>/dev/null | head -n 1)
	[ -n "$datadir" ] || pegpu_die "no share/qemu under $BUILD/qemu-bundle after the build"
	for f in "$FIRMWARE"/root/usr/share/seabios/* "$FIRMWARE"/root/usr/share/qemu/* \
		 "$FIRMWARE"/root/usr/lib/ipxe/qemu/*; do
		[ -f "$f" ] || continue		# directories, dangling links
		dst=$datadir/$(basename "$f")
		if [ -e "$dst" ] || [ -L "$dst" ]; then
			case $(readlink "$dst" 2>/dev/null) in
			"$QCACHE"/firmware-*) ;;	# ours, maybe from older debs
			*) continue;;
			esac
		fi
		ln -sfn "$(readlink -f "$f")" "$dst"
	done
}

make_tree() {
	local tarball=$1 q
	step "new tree $TREE"
	rm -rf "$TREE"
	mkdir -p "$TREE"
	step "extracting $(basename "$tarball")"
	tar -xf "$tarball" -C "$TREE"
	[ -d "$SRC" ] || pegpu_die "$(basename "$tarball") did not unpack to qemu-$QEMU_VERSION/"
	q=$(cat "$SRC/VERSION")
	[ "$q" = "$QEMU_VERSION" ] || pegpu_die "the tarball is QEMU $q, expected $QEMU_VERSION"

	if [ "$HOST_OS" = Linux ]; then
		# Debian's +ds source has no firmware blobs: unpack edk2 only when
		# blobs are installed (configure --disable-install-blobs).
		sed -i "s/^    unpack_edk2_blobs = bzip2.found()\$/    unpack_edk2_blobs = bzip2.found() and get_option('install_blobs')/" \
			"$SRC/meson.build"
		grep -q "unpack_edk2_blobs = bzip2.found() and get_option('install_blobs')" "$SRC/meson.build" ||
			pegpu_die "could not patch meson.build for the missing firmware blobs (QEMU $q)"
	fi

	# hook hw/misc/pegpu/ into the build: one line each
	mkdir -p "$SRC/hw/misc/pegpu"
	printf "\nsubdir('pegpu')\n" >>"$SRC/hw/misc/meson.build"
	printf '\nsource pegpu/Kconfig\n' >>"$SRC/hw/misc/Kconfig"

	cp machine/qemu/devices-x86_64.mak "$SRC/configs/devices/x86_64-softmmu/pegpu.mak"
	cp machine/qemu/devices-aarch64.mak "$SRC/configs/devices/aarch64-softmmu/pegpu.mak"
	if grep -q '^config ARM_GICV3_TCG' "$SRC/hw/intc/Kconfig"; then
		echo CONFIG_ARM_GICV3_TCG=y >>"$SRC/configs/devices/aarch64-softmmu/pegpu.mak"
	fi
	sync_sources

	step "configuring ($CONFIGURE_FLAGS)"
	mkdir -p "$BUILD"
	# shellcheck disable=SC2086
	(cd "$BUILD" && run_logged "$BUILD/pegpu-configure.log" ../configure "$PYTHON_FLAG" $CONFIGURE_FLAGS)
	touch "$TREE/.configured"
}

# --- main ------------------------------------------------------------------------
# Everything runs from main, so bash has read the whole script before it
# starts: editing build.sh while a build runs cannot derail that build.
main() {
	local f tarball old b

	take_lock
	cd "$ROOT"
	for f in $OUR_BUILD_FILES; do
		[ -f "$f" ] || pegpu_die "$f is missing from the checkout"
	done
	for f in $LIB_FILES; do
		[ -f "$f" ] || pegpu_die "$f is missing: PEGPU Machine compiles the device core from lib/"
	done

	KEY=$(pegpu_hash "qemu $QEMU_VERSION $DEB_QEMU_VERSION $UPSTREAM_SHA256" "$HOST_OS $(uname -m)" \
		"$CONFIGURE_FLAGS" $OUR_BUILD_FILES)
	TREE=$QCACHE/tree-$KEY
	SRC=$TREE/qemu-$QEMU_VERSION
	BUILD=$SRC/build
	PYDEPS=$QCACHE/pydeps-meson$DEB_MESON_VERSION-pycotap$DEB_PYCOTAP_VERSION
	FIRMWARE=$QCACHE/firmware-$(pegpu_hash "seabios $DEB_SEABIOS_VERSION" \
		"qemu-system-data $DEB_QEMU_DATA_VERSION" "ipxe-qemu $DEB_IPXE_VERSION")

	ensure_build_deps

	if [ "$HOST_OS" = Linux ]; then
		fetch_deb "$PYDEPS" meson "$DEB_MESON_VERSION"
		fetch_deb "$PYDEPS" python3-pycotap "$DEB_PYCOTAP_VERSION"
		fetch_deb "$FIRMWARE" seabios "$DEB_SEABIOS_VERSION"
		fetch_deb "$FIRMWARE" qemu-system-data "$DEB_QEMU_DATA_VERSION"
		fetch_deb "$FIRMWARE" ipxe-qemu "$DEB_IPXE_VERSION"
		export PYTHONPATH=$PYDEPS/root/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}
		PYTHON_FLAG=--python=/usr/bin/python3
		SEABIOS=$FIRMWARE/root/usr/share/seabios/bios-256k.bin
	else
		PYTHON_FLAG=--python=$(command -v python3)
		SEABIOS=$SRC/pc-bios/bios-256k.bin	# the upstream tarball ships it
	fi

	if [ ! -f "$TREE/.configured" ]; then
		tarball=$(fetch_qemu_source)
		make_tree "$tarball"
		# keep the two newest trees (another checkout may use the other one)
		for old in $(ls -dt "$QCACHE"/tree-* 2>/dev/null | tail -n +3); do
			step "removing old tree $old"
			rm -rf "$old"
		done
	else
		step "reusing configured tree $TREE"
		sync_sources
	fi
	touch "$TREE"

	step "building with ninja -j$JOBS"
	(cd "$BUILD" && run_logged "$BUILD/pegpu-ninja.log" ninja -j"$JOBS" qemu-system-aarch64 qemu-system-x86_64)

	[ "$HOST_OS" != Linux ] || link_firmware

	for b in "$BUILD/qemu-system-aarch64" "$BUILD/qemu-system-x86_64" "$SEABIOS"; do
		[ -f "$b" ] || pegpu_die "$b is missing after the build"
	done
	step "done"
	printf 'PEGPU_QEMU_AARCH64=%q PEGPU_QEMU_X86_64=%q PEGPU_SEABIOS=%q\n' \
		"$BUILD/qemu-system-aarch64" "$BUILD/qemu-system-x86_64" "$SEABIOS"
}

main "$@"; exit
