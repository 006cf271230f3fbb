#!/bin/sh
# install-deps.sh: install the Debian packages vhdboot needs, only those missing (idempotent).
set -e
PKGS="make gcc nasm gcc-i686-linux-gnu binutils-i686-linux-gnu grub-pc-bin grub-common xorriso mtools
qemu-system-x86 qemu-utils libvhdi-utils syslinux syslinux-common dosfstools fdisk python3 python3-pytest python3-pytest-xdist
libcmocka-dev clang libclang-rt-14-dev memtest86+ libc6-dev e2fsprogs initramfs-tools dracut-core kmod
gnu-efi ovmf grub-efi-amd64-bin
exfatprogs exfat-fuse fuse3 util-linux ntfs-3g attr"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
