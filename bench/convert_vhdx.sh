#!/bin/bash
# convert_vhdx.sh: the VHDX run of bench/convert.sh (kept so `bench/convert_vhdx.sh [REPS]` still works).
exec bash "$(dirname "$0")/convert.sh" vhdx "$@"
