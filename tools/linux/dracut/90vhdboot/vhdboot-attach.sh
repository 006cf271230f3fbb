#!/bin/sh
# dracut initqueue/settled hook (vhdboot): attach the VHD vhdboot booted as /dev/nbd0 (a fixed one as /dev/mapper/vhdboot80) once; nothing without vhdboot.
[ -e /sys/block/nbd0/pid ] && exit 0
[ -e /dev/mapper/vhdboot80 ] && exit 0
[ -e /run/vhdboot.done ] && exit 0
for m in nbd dm_mod vfat exfat ntfs3 nls_cp437 nls_ascii nls_utf8 efivarfs; do
	modprobe -q "$m" 2>/dev/null
done
force=""
grep -qw vhdboot.nbd /proc/cmdline && force="--nbd"   # a fixed image through NBD too (root=/dev/nbd0pN)
/sbin/vhdboot-attach --wait 5 $force >/run/vhdboot.dev
rc=$?
case $rc in
0|2) : >/run/vhdboot.done ;;               # attached, or not booted by vhdboot
*) echo "vhdboot-attach failed (exit $rc); will retry" >&2 ;;
esac
exit 0
