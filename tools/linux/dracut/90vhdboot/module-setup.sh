#!/bin/bash
# dracut module (vhdboot): vhdboot-attach and its modules; attaches from the initqueue once udev settled (docs/handover.md).

# The program's path: $VHDBOOT_ATTACH, else where install.sh puts it (/usr/local/sbin, which dracut's own
# PATH leaves out), else /usr/sbin or /sbin. Nothing printed and 1 when there is none.
vhdboot_attach_path() {
	local p
	for p in "${VHDBOOT_ATTACH:-}" /usr/local/sbin/vhdboot-attach /usr/sbin/vhdboot-attach /sbin/vhdboot-attach; do
		if [ -n "$p" ] && [ -x "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
check() {
	vhdboot_attach_path >/dev/null || return 1
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
	inst_binary "$(vhdboot_attach_path)" /sbin/vhdboot-attach
	inst_hook initqueue/settled 50 "$moddir/vhdboot-attach.sh"
}
