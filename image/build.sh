#!/usr/bin/env bash
# Builds the Kerf appliance image: a GPT disk with
#   esp     systemd-boot, the kernel and initrd of slot A
#   root-a  minbase Debian with systemd and networking, kerfd, kerf, the shim
#   root-b  empty, reserved for A/B updates
#   var     kerfd's state: keys, tokens, store, broker data
# kerfd runs as user kerf; tenant workers as kerf-worker, which cannot read
# the state (tenants.worker.user in rootfs/etc/kerf/kerfd.yaml).
# No Docker and no loop mounts: mmdebstrap into a directory, mke2fs -d,
# mkfs.vfat -C and mcopy, sfdisk, and dd into place. Needs root (for
# mmdebstrap's root mode) and: mmdebstrap mke2fs mkfs.vfat mcopy sfdisk.
#
#   image/build.sh                   # writes _build/image/kerf.img (+ .bmap)
#   KERNEL=linux-image-cloud-amd64 image/build.sh   # smaller, for VMs
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
out=${IMAGE_OUT:-$top/_build/image}
work=$out/work
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
kernel=${KERNEL:-linux-image-amd64}
esp_mb=${ESP_MB:-256}
root_mb=${ROOT_MB:-2048}
var_mb=${VAR_MB:-512}
cmdline_extra=${KERF_CMDLINE:-}

# Fixed partition UUIDs: the boot entry names root-a by PARTUUID.
uuid_esp=6b3c1d2e-0a1f-4c5d-9e8f-4b3a2c1d0e01
uuid_root_a=6b3c1d2e-0a1f-4c5d-9e8f-4b3a2c1d0e02
uuid_root_b=6b3c1d2e-0a1f-4c5d-9e8f-4b3a2c1d0e03
uuid_var=6b3c1d2e-0a1f-4c5d-9e8f-4b3a2c1d0e04

die() { echo "image: $*" >&2; exit 1; }
for t in mmdebstrap mke2fs mkfs.vfat mcopy mmd sfdisk; do
	command -v "$t" >/dev/null || die "$t is missing (apt-get install mmdebstrap e2fsprogs dosfstools mtools fdisk)"
done
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap --mode=root)"
for b in kerfd kerf; do
	[ -x "$top/bin/$b" ] || die "bin/$b is missing: run make build first"
done

# Never recurse into file systems mounted under the work tree (a build that
# was interrupted inside mmdebstrap can leave /proc, /sys or /dev there).
clean_work() {
	if [ -d "$work" ]; then
		{ findmnt -rn -o TARGET | grep -F "$work/" || true; } | sort -r | while read -r m; do umount -l "$m"; done
		rm -rf --one-file-system "$work"
	fi
}
trap clean_work EXIT
clean_work
mkdir -p "$work"
root=$work/root

echo "image: root file system ($suite, $kernel)"
mmdebstrap --mode=root --variant=minbase \
	--include="systemd,systemd-sysv,udev,dbus,kmod,iproute2,ca-certificates,$kernel,initramfs-tools,e2fsprogs,systemd-boot-efi" \
	--customize-hook='useradd --root "$1" --system --user-group --home-dir /var/lib/kerf --shell /usr/sbin/nologin kerf' \
	--customize-hook='useradd --root "$1" --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kerf-worker' \
	"$suite" "$root" "deb $mirror $suite main" >"$work/mmdebstrap.log" 2>&1 ||
	{ tail -20 "$work/mmdebstrap.log"; die "mmdebstrap failed (log: $work/mmdebstrap.log)"; }

echo "image: Kerf into the root file system"
cp -a "$here/rootfs/." "$root/"
install -m 0755 "$top/bin/kerfd" "$top/bin/kerf" "$top/bin/kerf-bench" "$root/usr/bin/"
mkdir -p "$root/usr/lib/kerf" "$root/var/lib/kerf" "$root/boot/efi" "$root/usr/share/doc/kerf"
if [ -f "$top/bin/libcuda.so.1" ]; then
	install -m 0755 "$top/bin/libcuda.so.1" "$root/usr/lib/kerf/"
	ln -sf libcuda.so.1 "$root/usr/lib/kerf/libnvidia-ml.so.1" # the tenant's NVML: the same library
else
	echo "image: warning: bin/libcuda.so.1 not built; tenants on the node will have no shim" >&2
fi
cp "$top/README.md" "$root/usr/share/doc/kerf/"
chroot "$root" systemctl enable systemd-networkd.service kerf-firstboot.service kerfd.service serial-getty@ttyS0.service >/dev/null 2>&1 ||
	die "enabling units failed"
echo kerf >"$root/etc/hostname"

echo "image: ESP with systemd-boot"
vmlinuz=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
[ -f "$vmlinuz" ] && [ -f "$initrd" ] || die "no kernel or initrd in the root file system"
esp=$work/esp.img
rm -f "$esp"
mkfs.vfat -C -n KERF-ESP "$esp" $((esp_mb * 1024)) >/dev/null
cat >"$work/loader.conf" <<CONF
default kerf-a.conf
timeout 0
console-mode keep
CONF
cat >"$work/kerf-a.conf" <<CONF
title   Kerf (slot A)
linux   /kerf-a/vmlinuz
initrd  /kerf-a/initrd.img
options root=PARTUUID=$uuid_root_a rw console=tty0 console=ttyS0,115200 $cmdline_extra
CONF
boot_efi=$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/kerf-a
mcopy -i "$esp" "$boot_efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$boot_efi" ::/EFI/systemd/systemd-bootx64.efi
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/kerf-a.conf" ::/loader/entries/kerf-a.conf
mcopy -i "$esp" "$vmlinuz" ::/kerf-a/vmlinuz
mcopy -i "$esp" "$initrd" ::/kerf-a/initrd.img

echo "image: file systems"
kerf_uid=$(chroot "$root" id -u kerf)
kerf_gid=$(chroot "$root" id -g kerf)
mke2fs -q -t ext4 -L kerf-root-a -d "$root" "$work/root-a.img" "${root_mb}M"
mke2fs -q -t ext4 -L kerf-var -E root_owner="$kerf_uid:$kerf_gid" "$work/var.img" "${var_mb}M"

echo "image: GPT disk"
mkdir -p "$out"
img=$out/kerf.img
rm -f "$img"
total_mb=$((1 + esp_mb + 2 * root_mb + var_mb + 1))
truncate -s "${total_mb}M" "$img"
sfdisk -q "$img" <<GPT
label: gpt
first-lba: 2048
start=1MiB, size=${esp_mb}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp, uuid=$uuid_esp
size=${root_mb}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=root-a, uuid=$uuid_root_a
size=${root_mb}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=root-b, uuid=$uuid_root_b
size=${var_mb}MiB, type=4D21B016-B534-45C2-A9FB-5C16E091FD2D, name=var, uuid=$uuid_var
GPT
put() { dd if="$1" of="$img" bs=1M seek="$2" conv=notrunc,sparse status=none; }
put "$esp" 1
put "$work/root-a.img" $((1 + esp_mb))
put "$work/var.img" $((1 + esp_mb + 2 * root_mb))
if command -v bmaptool >/dev/null; then
	bmaptool create -o "$img.bmap" "$img"
fi
(cd "$out" && sha256sum kerf.img >kerf.img.sha256)
echo "image: $img ($(du -h --apparent-size "$img" | cut -f1) apparent, $(du -h "$img" | cut -f1) on disk)"
