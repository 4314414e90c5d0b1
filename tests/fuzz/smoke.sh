#!/bin/sh
# fuzz-smoke: a bounded libFuzzer run seeded from the committed corpus.
#   smoke.sh FUZZER CORPUS [RUNS [SECONDS]]
# New inputs go to a temporary directory, never into the source tree; on a
# failure the directory is kept (crash inputs in artifacts/) and named.
set -u
fuzzer=$1 corpus=$2 runs=${3:-20000} secs=${4:-60}
work=$(mktemp -d "${TMPDIR:-/tmp}/luo-fuzz-smoke.XXXXXX") || exit 1
mkdir "$work/new" "$work/artifacts"
"$fuzzer" -runs="$runs" -max_total_time="$secs" -timeout=10 \
	-rss_limit_mb=4096 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/new" "$corpus" \
	>"$work/log" 2>&1
rc=$?
tail -n 60 "$work/log"
if [ $rc -ne 0 ] || [ -n "$(ls -A "$work/artifacts")" ]; then
	echo "fuzz-smoke: FAILED (exit $rc); log and crash inputs kept in $work" >&2
	ls -l "$work/artifacts" >&2
	exit 1
fi
rm -rf "$work"
