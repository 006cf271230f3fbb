#!/bin/sh
# dracut initqueue/settled hook (vhdboot): attach the VHD vhdboot booted as /dev/nbd0 once; nothing without vhdboot.
[ -e /sys/block/nbd0/pid ] && exit 0
[ -e /run/vhdboot.done ] && exit 0
for m in nbd vfat nls_cp437 nls_ascii nls_utf8 efivarfs; do
	modprobe -q "$m" 2>/dev/null
done
/sbin/vhdboot-attach --wait 5 >/run/vhdboot.dev
rc=$?
case $rc in
0|2) : >/run/vhdboot.done ;;               # attached, or not booted by vhdboot
*) echo "vhdboot-attach failed (exit $rc); will retry" >&2 ;;
esac
exit 0
