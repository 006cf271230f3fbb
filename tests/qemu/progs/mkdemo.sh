#!/bin/sh
# mkdemo.sh: build the `make run` demo image: a 64 MiB dynamic VHD (build/vhdtool) holding the demo guest and a marker sector.
#   usage: sh tests/qemu/progs/mkdemo.sh [OUT.vhd]    (default build/demo.vhd; BUILD= overrides build/)
set -eu
BUILD=${BUILD:-build}
OUT=${1:-$BUILD/demo.vhd}
VHDTOOL=${VHDTOOL:-$BUILD/vhdtool}
DEMO_BIN=$BUILD/guest/demo.bin
MARKER_LBA=40000            # inside the 64 MiB disk, in a block of its own (the rest stays unallocated)

for f in "$VHDTOOL" "$DEMO_BIN"; do
	[ -e "$f" ] || { echo "mkdemo.sh: $f is missing (run make first)" >&2; exit 1; }
done

# byte N of a little-endian dword, as a printf octal escape
le_byte() { printf '\\%03o' $(( ($1 >> $2) & 255 )); }

tmp=$OUT.tmp
rm -f "$tmp"
"$VHDTOOL" create -t dynamic -s 64M -f "$tmp" >/dev/null
# the guest, with its parameter sector (LBA 1) = "DEMO" + the marker's LBA
{
	head -c 512 "$DEMO_BIN"
	printf 'DEMO'
	printf "$(le_byte $MARKER_LBA 0)$(le_byte $MARKER_LBA 8)$(le_byte $MARKER_LBA 16)$(le_byte $MARKER_LBA 24)"
	head -c 504 /dev/zero
	tail -c +1025 "$DEMO_BIN"
} | "$VHDTOOL" write "$tmp" 0
text="Hello from sector $MARKER_LBA of $(basename "$OUT") (tests/qemu/progs/mkdemo.sh)"
{ printf '%s' "$text"; head -c $((512 - ${#text})) /dev/zero; } | "$VHDTOOL" write "$tmp" $MARKER_LBA
mv "$tmp" "$OUT"
echo "mkdemo.sh: $OUT: 64 MiB dynamic VHD, demo guest at LBA 0, marker at LBA $MARKER_LBA"
