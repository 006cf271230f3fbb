#!/bin/sh
# diskcheck.sh: stop `make test` early, with a clear message, when the disk under DIR has less than GIB GiB free.
# usage: sh tools/diskcheck.sh DIR GIB   (DIR may not exist yet: its nearest existing parent is checked)
dir=${1:-.}
need=${2:-12}
while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
free_k=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
free_g=$((free_k / 1048576))
if [ "$free_g" -lt "$need" ]; then
	echo "diskcheck: only $free_g GiB free under $dir; the tests need about $need GiB for their images." >&2
	echo "diskcheck: free some space (old pytest folders: rm -rf /tmp/pytest-of-\$USER build/pytest) and retry." >&2
	exit 1
fi
echo "diskcheck: $free_g GiB free under $dir"
