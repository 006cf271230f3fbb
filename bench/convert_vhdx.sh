#!/bin/bash
# convert_vhdx.sh: time vhdtool convert against qemu-img convert (raw -> dynamic VHDX -> raw) on a 1 GiB image.
#   bench/convert_vhdx.sh [REPS] REPS timed runs per command (default 5), after one untimed warm-up
# Env: BENCH_DIR (default build/bench), VHDTOOL (default build/vhdtool), SIZE_MIB (default 1024).
# Prints the median time and throughput (virtual bytes / s) of each command and vhdtool/qemu ratios
# (target <= 1.0, issue 11); exits non-zero if any converted result differs from the source.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-5}
DIR=${BENCH_DIR:-build/bench}
VHDTOOL=${VHDTOOL:-build/vhdtool}
SIZE_MIB=${SIZE_MIB:-1024}
[ -x "$VHDTOOL" ] || make -s tool
command -v qemu-img >/dev/null || { echo "convert_vhdx.sh: qemu-img missing (tools/install-deps.sh)" >&2; exit 2; }
mkdir -p "$DIR"
SRC=$DIR/src-vhdx.raw

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

# Both tools with their default VHDX layout (32 MiB blocks, 1 MiB log): the same virtual disk.
time_cmd "vhdtool raw->vhdx-dynamic" "$VHDTOOL" convert -O vhdx-dynamic "$SRC" "$DIR/t.vhdx"
time_cmd "qemu-img raw->vhdx-dynamic" qemu-img convert -f raw -O vhdx -o subformat=dynamic "$SRC" "$DIR/q.vhdx"
# Back to raw: both read the same input (qemu-img's image).
time_cmd "vhdtool vhdx-dynamic->raw" "$VHDTOOL" convert -O raw "$DIR/q.vhdx" "$DIR/t.raw"
time_cmd "qemu-img vhdx-dynamic->raw" qemu-img convert -f vhdx -O raw "$DIR/q.vhdx" "$DIR/q.raw"

status=0
same() {
	if cmp -s "$1" "$2"; then echo "identical: $3"; else echo "DIFFERENT: $3 ($1 vs $2)"; status=1; fi
}
same "$SRC" "$DIR/t.raw" "vhdtool vhdx->raw of qemu's image == source"
same "$SRC" "$DIR/q.raw" "qemu-img vhdx->raw == source"
"$VHDTOOL" convert -O raw "$DIR/t.vhdx" "$DIR/tt.raw"
same "$SRC" "$DIR/tt.raw" "vhdtool's own VHDX back to raw == source"
qemu-img convert -f vhdx -O raw "$DIR/t.vhdx" "$DIR/qt.raw"
same "$SRC" "$DIR/qt.raw" "qemu-img reading vhdtool's VHDX == source"
qemu-img check -f vhdx "$DIR/t.vhdx" >/dev/null || { echo "qemu-img check rejects vhdtool's VHDX"; status=1; }
echo "file sizes: vhdtool $(stat -c %s "$DIR/t.vhdx") B, qemu-img $(stat -c %s "$DIR/q.vhdx") B"

for step in "raw->vhdx-dynamic" "vhdx-dynamic->raw"; do
	printf 'ratio vhdtool/qemu-img %-18s %.2f (target <= 1.0)\n' "$step" \
		"$(awk -v a="${MEDIAN["vhdtool $step"]}" -v b="${MEDIAN["qemu-img $step"]}" 'BEGIN {print a / b}')"
done
rm -f "$DIR"/t.vhdx "$DIR"/q.vhdx "$DIR"/t.raw "$DIR"/q.raw "$DIR"/tt.raw "$DIR"/qt.raw
exit $status
