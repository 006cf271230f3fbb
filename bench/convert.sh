#!/bin/bash
# convert.sh: time vhdtool convert against qemu-img convert (raw -> dynamic VHD or VHDX -> raw) on a 1 GiB image.
#   bench/convert.sh [vhd|vhdx] [REPS]   FORMAT (default vhd); REPS timed runs per command (default 5),
#                                        after one untimed warm-up. bench/convert_vhdx.sh [REPS] = vhdx here.
# Env: BENCH_DIR (default build/bench), VHDTOOL (default build/vhdtool), SIZE_MIB (default 1024).
# Prints the median time and throughput (virtual bytes / s) of each command and vhdtool/qemu ratios
# (target <= 1.5 for VHD, <= 1.0 for VHDX, issue 11); exits non-zero if any converted result differs from the source.
set -euo pipefail
cd "$(dirname "$0")/.."
FMT=vhd
case ${1:-} in vhd | vhdx) FMT=$1; shift ;; esac
REPS=${1:-5}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/convert.sh [vhd|vhdx] [REPS]  (REPS a positive number, not '$REPS')" >&2; exit 2; }
DIR=${BENCH_DIR:-build/bench}
VHDTOOL=${VHDTOOL:-build/vhdtool}
SIZE_MIB=${SIZE_MIB:-1024}
[ -x "$VHDTOOL" ] || make -s tool
command -v qemu-img >/dev/null || { echo "convert.sh: qemu-img missing (tools/install-deps.sh)" >&2; exit 2; }
mkdir -p "$DIR"
# Per format: output suffix, vhdtool's -O, qemu-img's -O and -f, the step name, the target ratio.
if [ "$FMT" = vhd ]; then
	SRC=$DIR/src.raw EXT=vhd VT_OUT=dynamic STEP=dynamic TARGET=1.5
	# force_size=on keeps the virtual size at exactly SIZE (no CHS round-up), so both tools produce the
	# same virtual disk; it does not change how qemu converts.
	Q_FMT=vpc Q_OPTS=subformat=dynamic,force_size=on
else
	# Both tools with their default VHDX layout (32 MiB blocks, 1 MiB log): the same virtual disk.
	SRC=$DIR/src-vhdx.raw EXT=vhdx VT_OUT=vhdx-dynamic STEP=vhdx-dynamic TARGET=1.0
	Q_FMT=vhdx Q_OPTS=subformat=dynamic
fi

# 30% of the 2 MiB blocks hold random data, the rest are zero; fixed seed, so every run converts
# the same bytes. Written sparse: the zero blocks are holes, as a real sparse-ish disk would be.
/usr/bin/python3 - "$SRC" "$SIZE_MIB" <<'EOF'
import random, sys
path, size_mib = sys.argv[1], int(sys.argv[2])
blk = 2 << 20
n = size_mib * (1 << 20) // blk
rnd = random.Random(20240601)
full = sorted(rnd.sample(range(n), round(n * 0.3)))
with open(path, "wb") as fh:
    fh.truncate(n * blk)
    for b in full:
        fh.seek(b * blk)
        fh.write(rnd.randbytes(blk))
print("source: %d MiB, %d of %d 2 MiB blocks with random data" % (size_mib, len(full), n))
EOF
BYTES=$(stat -c %s "$SRC")

# time_cmd NAME CMD...: one untimed warm-up, then REPS timed runs; records the median in MEDIAN[NAME].
declare -A MEDIAN
time_cmd() {
	local name=$1; shift
	"$@" >/dev/null
	local times=()
	for ((i = 0; i < REPS; i++)); do
		local t0 t1
		t0=$(date +%s.%N)
		"$@" >/dev/null
		t1=$(date +%s.%N)
		times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')")
	done
	MEDIAN[$name]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
	printf '%-34s median %8.3f s  %8.1f MiB/s   (runs: %s)\n' "$name" "${MEDIAN[$name]}" \
		"$(awk -v b="$BYTES" -v t="${MEDIAN[$name]}" 'BEGIN {print b / 1048576 / t}')" "$(printf '%.3f ' "${times[@]}")"
}

time_cmd "vhdtool raw->$STEP" "$VHDTOOL" convert -O "$VT_OUT" "$SRC" "$DIR/t.$EXT"
time_cmd "qemu-img raw->$STEP" qemu-img convert -f raw -O "$Q_FMT" -o "$Q_OPTS" "$SRC" "$DIR/q.$EXT"
# Back to raw: both read the same input (qemu-img's image, which both read correctly).
time_cmd "vhdtool $STEP->raw" "$VHDTOOL" convert -O raw "$DIR/q.$EXT" "$DIR/t.raw"
time_cmd "qemu-img $STEP->raw" qemu-img convert -f "$Q_FMT" -O raw "$DIR/q.$EXT" "$DIR/q.raw"

status=0
same() {
	if cmp -s "$1" "$2"; then echo "identical: $3"; else echo "DIFFERENT: $3 ($1 vs $2)"; status=1; fi
}
same "$SRC" "$DIR/t.raw" "vhdtool $STEP->raw of qemu's image == source"
same "$SRC" "$DIR/q.raw" "qemu-img $STEP->raw == source"
"$VHDTOOL" convert -O raw "$DIR/t.$EXT" "$DIR/tt.raw"
same "$SRC" "$DIR/tt.raw" "vhdtool's own $STEP image back to raw == source"
if [ "$FMT" = vhd ]; then
	# current_size: read vhdtool's footer size, not a CHS-rounded one.
	qemu-img convert --image-opts "driver=vpc,force_size_calc=current_size,file.filename=$DIR/t.vhd" -O raw "$DIR/qt.raw"
else
	qemu-img convert -f vhdx -O raw "$DIR/t.vhdx" "$DIR/qt.raw"
	qemu-img check -f vhdx "$DIR/t.vhdx" >/dev/null || { echo "qemu-img check rejects vhdtool's VHDX"; status=1; }
fi
same "$SRC" "$DIR/qt.raw" "qemu-img reading vhdtool's $STEP image == source"
echo "file sizes: vhdtool $(stat -c %s "$DIR/t.$EXT") B, qemu-img $(stat -c %s "$DIR/q.$EXT") B"

for step in "raw->$STEP" "$STEP->raw"; do
	printf 'ratio vhdtool/qemu-img %-18s %.2f (target <= %s)\n' "$step" \
		"$(awk -v a="${MEDIAN["vhdtool $step"]}" -v b="${MEDIAN["qemu-img $step"]}" 'BEGIN {print a / b}')" "$TARGET"
done
rm -f "$DIR/t.$EXT" "$DIR/q.$EXT" "$DIR"/t.raw "$DIR"/q.raw "$DIR"/tt.raw "$DIR"/qt.raw
exit $status
