#!/bin/sh
# dracut initqueue/settled hook (vhdboot): attach the VHD vhdboot booted as /dev/mapper/vhdboot80 (device-mapper; /dev/nbd0 with vhdboot.nbd or root=/dev/nbd0pN) once; nothing without vhdboot.
# dracut sources its hooks: no `exit` here (it would end init), and only shell builtins plus what dracut's base installs.
vhdboot_attach_once() {
	[ -e /sys/block/nbd0/pid ] && return 0
	[ -e /dev/mapper/vhdboot80 ] && return 0
	[ -e /run/vhdboot.done ] && return 0
	local m force="" cmdline="" rc
	for m in nbd dm_mod vfat nls_cp437 nls_ascii nls_utf8 exfat ntfs3 efivarfs; do
		modprobe -q "$m" 2>/dev/null
	done
	read -r cmdline </proc/cmdline
	case " $cmdline " in
	*" vhdboot.nbd "* | *" vhdboot.nbd="* | *" root=/dev/nbd"*) force="--nbd" ;;   # root=/dev/nbd0pN: NBD only (no dm maps)
	esac
	/sbin/vhdboot-attach --wait 5 $force >/run/vhdboot.dev
	rc=$?
	case $rc in
	0) : >/run/vhdboot.done; echo "vhdboot: the image is $(read -r d </run/vhdboot.dev; echo "$d")" >&2 ;;
	2) : >/run/vhdboot.done ;;                 # not booted by vhdboot
	*) echo "vhdboot-attach failed (exit $rc); will retry" >&2 ;;
	esac
	return 0
}
vhdboot_attach_once
