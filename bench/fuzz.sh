#!/bin/sh
# fuzz.sh: a libFuzzer campaign: bench/fuzz.sh [SECONDS [TARGET...]] (default 600 s, every tests/fuzz/fuzz_*.c), JOBS at once (2).
# Prints one line per target: executions, edges (libFuzzer's cov:), features, corpus size, crashes found.
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-600}
[ $# -gt 0 ] && shift
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
TARGETS=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|.*/fuzz_||; s|\.c$||')}
make -s $(for t in $TARGETS; do printf '%s/fuzz_%s ' "$BUILD" "$t"; done)
LOGS=$BUILD/fuzz-logs
mkdir -p "$LOGS"

# One target: seeds, then the run; the corpus persists across campaigns in $BUILD/fuzz-corpus/<target>.
run_one() {
	t=$1
	mkdir -p "$BUILD/fuzz-corpus/$t" "$BUILD/fuzz-artifacts/$t"
	rm -rf "$BUILD/fuzz-seeds/$t"
	/usr/bin/python3 tests/fuzz/seeds.py "$t" "$BUILD/fuzz-seeds/$t"
	maxlen=65536
	case $t in fat|scan) maxlen=1048576 ;; fs) maxlen=2097152 ;; esac
	dict=
	[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
	# One process per target keeps a run reproducible and its memory bounded; exit status is reported, not fatal.
	"$BUILD/fuzz_$t" -max_total_time="$SECS" -max_len=$maxlen -timeout=10 -rss_limit_mb=2048 $dict \
		-print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$t/" \
		"$BUILD/fuzz-corpus/$t" "$BUILD/fuzz-seeds/$t" >"$LOGS/$t.log" 2>&1 || true
}

running=0
for t in $TARGETS; do
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait
		running=0
	fi
done
wait

printf '%-10s %12s %8s %8s %8s %8s %s\n' target executions edges features corpus seconds crashes
for t in $TARGETS; do
	log=$LOGS/$t.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
	edges=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	crashes=$(ls "$BUILD/fuzz-artifacts/$t" | wc -l)
	printf '%-10s %12s %8s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${edges:-?}" "${ft:-?}" "${corp:-?}" "$SECS" "$crashes"
done
