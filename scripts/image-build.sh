#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/image-build.sh: build a pegpu guest disk image from Debian packages
# (what `pegpu image build` runs).  The result has the shape of Debian's
# official "generic" cloud images, so the runtime treats both alike:
#   - a GPT disk: an EFI system partition and an ext4 root (last, so
#     cloud-init's growpart can grow it to the instance's disk size);
#   - booted by UEFI firmware (OVMF / AAVMF / QEMU's edk2) through a
#     standalone GRUB that loads /vmlinuz and /initrd.img from the root, so
#     kernel upgrades inside the guest keep working;
#   - cloud-init (NoCloud), openssh-server, growpart, and everything the
#     guest driver's DKMS package needs (dkms, compiler, kernel headers), so
#     an instance provisions without network access.
# No loop devices or mounts: the filesystems are written straight into the
# disk file (mkfs.ext4 -d, mtools).
#
# usage: scripts/image-build.sh --out FILE.qcow2 [--arch amd64|arm64]
#            [--suite trixie] [--size 3G] [--packages "p1 p2"] [--compress]
#            [--keep-root]
# Writes FILE.qcow2 and SHA512SUMS next to it (the layout Debian publishes,
# so a local HTTP server can serve the directory to `pegpu create --image`).
# Needs root (debootstrap, chroot).  Building for another architecture needs
# qemu-user-static with binfmt_misc registered.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib/common.sh
. "$here/lib/common.sh"

arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
suite=trixie
size=3G
out=""
extra=""
compress=0
keep_root=0
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift 2 ;;
	--arch) arch=$2; shift 2 ;;
	--suite) suite=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--packages) extra=$2; shift 2 ;;
	--compress) compress=1; shift ;;
	--keep-root) keep_root=1; shift ;;
	-h|--help) sed -n '3,26s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) pegpu_die "unknown option '$1' (see --help)" ;;
	esac
done
[ -n "$out" ] || pegpu_die "--out FILE.qcow2 is required"
case $arch in
amd64) efi=x86_64-efi; efiname=BOOTX64.EFI; console=ttyS0 ;;
arm64) efi=arm64-efi; efiname=BOOTAA64.EFI; console=ttyAMA0 ;;
*) pegpu_die "--arch must be amd64 or arm64, not '$arch'" ;;
esac
[ "$(id -u)" = 0 ] || pegpu_die "building an image needs root (debootstrap and chroot): run it with sudo"
for t in debootstrap sfdisk mformat mcopy mkfs.ext4 qemu-img sha512sum; do
	command -v "$t" >/dev/null || pegpu_die "'$t' is missing: run scripts/deps.sh (packages debootstrap fdisk mtools e2fsprogs qemu-utils)"
done

out=$(realpath -m "$out")
outdir=$(dirname "$out")
mkdir -p "$outdir"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pegpu-image.XXXXXX")
root=$work/root
cleanup() {
	# debootstrap may leave proc/sys mounted when it fails half-way
	for m in proc sys dev/pts dev; do umount -l "$root/$m" 2>/dev/null || true; done
	[ "$keep_root" = 1 ] && { pegpu_log "root tree kept in $root"; return; }
	rm -rf "$work"
}
trap cleanup EXIT

t0=$(date +%s)
step() { pegpu_log "[$(($(date +%s) - t0))s] $*"; }

mirror=$(pegpu_mirror)
pkgs="systemd-sysv udev kmod dbus iproute2 netplan.io openssh-server sudo ca-certificates
	cloud-init cloud-guest-utils fdisk e2fsprogs initramfs-tools zstd less
	linux-image-$arch linux-headers-$arch dkms make gcc grub-efi-$arch-bin $extra"
step "debootstrap $suite ($arch) from the host's Debian mirror"
debootstrap --arch="$arch" --variant=minbase --include="$(echo $pkgs | tr ' ' ',')" \
	"$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 ||
	{ tail -30 "$work/debootstrap.log" >&2; pegpu_die "debootstrap failed (log above)"; }

step "configuring the guest"
cat > "$root/etc/fstab" <<EOT
LABEL=pegpu-root / ext4 rw,discard,errors=remount-ro 0 1
LABEL=ESP /boot/efi vfat umask=0077,nofail 0 2
EOT
mkdir -p "$root/boot/efi"
echo pegpu > "$root/etc/hostname"
# every instance must get its own machine-id, host keys and cloud-init run
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
rm -rf "$root/var/lib/cloud"
# NoCloud only: probing for other clouds costs seconds under emulation
cat > "$root/etc/cloud/cloud.cfg.d/90-pegpu.cfg" <<EOT
# pegpu: instances are provisioned from a NoCloud seed (cidata)
datasource_list: [ NoCloud, None ]
EOT
# keep /vmlinuz and /initrd.img pointing at the newest kernel: GRUB boots them
printf 'do_symlinks = yes\n' > "$root/etc/kernel-img.conf"
# the guest installs packages from the same mirror the image came from
echo "deb $mirror $suite main" > "$root/etc/apt/sources.list"
# timers that wake apt and man-db steal CPU from provisioning under emulation
for u in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
	chroot "$root" systemctl disable "$u" >/dev/null 2>&1 || true
done
kver=$(basename "$(readlink -f "$root/vmlinuz" 2>/dev/null || ls "$root"/boot/vmlinuz-* | tail -1)")
[ -e "$root/vmlinuz" ] || { ln -sf "boot/$kver" "$root/vmlinuz"; ln -sf "boot/initrd.img-${kver#vmlinuz-}" "$root/initrd.img"; }

step "standalone GRUB ($efi)"
cat > "$root/tmp/grub-embed.cfg" <<EOT
set timeout=0
search --no-floppy --label --set=root pegpu-root
linux /vmlinuz root=LABEL=pegpu-root ro console=tty0 console=$console,115200
initrd /initrd.img
boot
EOT
chroot "$root" grub-mkstandalone -O "$efi" -o /tmp/$efiname \
	--modules="part_gpt part_msdos ext2 search_label linux normal" \
	"boot/grub/grub.cfg=/tmp/grub-embed.cfg" >/dev/null
mv "$root/tmp/$efiname" "$work/$efiname"
rm -f "$root/tmp/grub-embed.cfg" "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_Packages

step "writing the disk (GPT: ESP + ext4 root)"
raw=$work/disk.raw
truncate -s "$size" "$raw"
sfdisk -q "$raw" > /dev/null <<EOT
label: gpt
start=1MiB, size=63MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP
start=64MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
EOT
esp_off=$((1024 * 1024))
root_off=$((64 * 1024 * 1024))
root_kib=$(( ($(stat -c %s "$raw") - root_off) / 1024 - 1024 ))	# the backup GPT lives in the last MiB
mformat -i "$raw@@$esp_off" -T $((63 * 2048)) -h 64 -s 32 -v ESP ::
mmd -i "$raw@@$esp_off" ::/EFI ::/EFI/BOOT
mcopy -i "$raw@@$esp_off" "$work/$efiname" ::/EFI/BOOT/$efiname
mkfs.ext4 -q -L pegpu-root -d "$root" -E offset=$root_off "$raw" "${root_kib}k"

step "converting to qcow2"
rm -f "$out"
copt=(); [ "$compress" = 1 ] && copt=(-c)
qemu-img convert "${copt[@]}" -f raw -O qcow2 "$raw" "$out"
base=$(basename "$out")
(cd "$outdir" && { grep -v "  $base\$" SHA512SUMS 2>/dev/null || true; sha512sum "$base"; } > SHA512SUMS.new &&
	mv SHA512SUMS.new SHA512SUMS)
step "done: $out ($(du -h "$out" | cut -f1), kernel ${kver#vmlinuz-}); checksums in $outdir/SHA512SUMS"
