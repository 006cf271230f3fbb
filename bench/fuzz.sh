#!/bin/sh
# fuzz.sh: run the libFuzzer target over generated seeds for a set time: bench/fuzz.sh [SECONDS] (default 600).
set -eu
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
BUILD=${BUILD:-build}
make -s "$BUILD/fuzz_vhd"
mkdir -p "$BUILD/fuzz-corpus" "$BUILD/fuzz-artifacts"
/usr/bin/python3 tests/fuzz/make_seeds.py "$BUILD/fuzz-seeds"
# -fork would use more cores; one process keeps the run reproducible and its memory bounded.
exec "$BUILD/fuzz_vhd" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/" "$BUILD/fuzz-corpus" "$BUILD/fuzz-seeds"
