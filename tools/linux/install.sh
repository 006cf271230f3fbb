#!/bin/sh
# install.sh: install vhdboot-attach and the initramfs integration (initramfs-tools and/or dracut), then rebuild the initramfs.
#   sudo tools/linux/install.sh            DESTDIR=/x tools/linux/install.sh --no-update   (staging, tests)
set -e
here=$(cd "$(dirname "$0")" && pwd)
bin=${VHDBOOT_ATTACH_BUILT:-$here/../../build/linux/vhdboot-attach}
dest=${DESTDIR:-}
update=1
[ "${1:-}" = "--no-update" ] && update=0
[ -x "$bin" ] || { echo "install.sh: $bin is missing: run make linux" >&2; exit 1; }
install -D -m 0755 "$bin" "$dest/usr/local/sbin/vhdboot-attach"
did=""
if [ -d "$dest/etc/initramfs-tools" ] || [ -n "$dest" ]; then
	install -D -m 0755 "$here/initramfs-tools/hooks/vhdboot" "$dest/etc/initramfs-tools/hooks/vhdboot"
	install -D -m 0755 "$here/initramfs-tools/scripts/local-top/vhdboot" "$dest/etc/initramfs-tools/scripts/local-top/vhdboot"
	did="$did initramfs-tools"
fi
if [ -d "$dest/usr/lib/dracut/modules.d" ] || [ -n "$dest" ]; then
	install -D -m 0755 "$here/dracut/90vhdboot/module-setup.sh" "$dest/usr/lib/dracut/modules.d/90vhdboot/module-setup.sh"
	install -D -m 0755 "$here/dracut/90vhdboot/vhdboot-attach.sh" "$dest/usr/lib/dracut/modules.d/90vhdboot/vhdboot-attach.sh"
	install -D -m 0644 /dev/null "$dest/etc/dracut.conf.d/vhdboot.conf"
	echo 'add_dracutmodules+=" vhdboot "' >"$dest/etc/dracut.conf.d/vhdboot.conf"
	did="$did dracut"
fi
[ -n "$did" ] || { echo "install.sh: neither initramfs-tools nor dracut found; installed the program only" >&2; exit 0; }
echo "install.sh: installed vhdboot-attach and the$did integration"
if [ "$update" = 1 ] && [ -z "$dest" ]; then
	if command -v update-initramfs >/dev/null 2>&1; then update-initramfs -u
	elif command -v dracut >/dev/null 2>&1; then dracut -f
	fi
fi
echo "install.sh: boot with root=/dev/nbd0pN (or root=UUID=...) on the kernel command line inside the VHD"
