#!/bin/bash
# dracut module (vhdboot): vhdboot-attach and its modules; attaches from the initqueue once udev settled (docs/handover.md).
check() {
	require_binaries vhdboot-attach || return 1
	return 255                              # only when asked for (add_dracutmodules+=" vhdboot ")
}
depends() {
	return 0
}
installkernel() {
	instmods nbd dm_mod vfat fat nls_cp437 nls_ascii nls_utf8 nls_iso8859-1 efivarfs
	instmods exfat ntfs3 || :               # exFAT and NTFS hosts, where the kernel has them (6.1's Debian kernels: no ntfs3)
}
install() {
	inst_binary vhdboot-attach /sbin/vhdboot-attach
	inst_hook initqueue/settled 50 "$moddir/vhdboot-attach.sh"
}
