#!/bin/sh
# mkiso.sh: make a GRUB (BIOS) boot CD that loads vhdboot with a given kernel command line.
#   tools/mkiso.sh CMDLINE OUT.iso      e.g. tools/mkiso.sh "vhd=ps trace" /tmp/ps.iso
# The ELF comes from $VHDBOOT_ELF (default build/vhdboot.elf). GRUB: timeout 0,
# console on COM1 at 115200 and the screen, `multiboot /boot/vhdboot.elf CMDLINE`.
# $VHDBOOT_MODULES (optional): space-separated HOSTFILE=/ISO/PATH pairs; each file is
# copied into the ISO and loaded with `module /ISO/PATH` (a VHD served from RAM).
set -e
[ $# -eq 2 ] || { echo "usage: $0 CMDLINE OUT.iso" >&2; exit 2; }
cmdline=$1
out=$2
elf=${VHDBOOT_ELF:-$(dirname "$0")/../build/vhdboot.elf}
[ -f "$elf" ] || { echo "mkiso.sh: $elf not found (run make kernel)" >&2; exit 1; }
case $cmdline in *[\'\$\\\;\{\}]*) echo "mkiso.sh: CMDLINE must not contain ', \$, \\, ; or braces" >&2; exit 2;; esac
# Double quotes go into grub.cfg as they are (vhd="/my images/a.vhd"): GRUB then passes the word, quoted, to the kernel.
case $(printf %s "$cmdline" | tr -cd '"' | wc -c) in *[13579]) echo "mkiso.sh: unbalanced double quote in CMDLINE" >&2; exit 2;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/boot/grub"
cp "$elf" "$tmp/root/boot/vhdboot.elf"
modlines=""
for pair in ${VHDBOOT_MODULES:-}; do
	src=${pair%%=*}
	dst=${pair#*=}
	case $dst in /*) ;; *) echo "mkiso.sh: VHDBOOT_MODULES entry '$pair' is not HOSTFILE=/ISO/PATH" >&2; exit 2;; esac
	mkdir -p "$tmp/root$(dirname "$dst")"
	cp "$src" "$tmp/root$dst"
	modlines="$modlines	module $dst
"
done
cat > "$tmp/root/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry "vhdboot" {
	multiboot /boot/vhdboot.elf${cmdline:+ $cmdline}
${modlines}	boot
}
CFG
grub-mkrescue -o "$tmp/out.iso" "$tmp/root" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
mv -f "$tmp/out.iso" "$out"
