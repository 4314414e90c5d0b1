#!/bin/sh
# run-fuzz.sh [SECONDS [LIBFUZZER-ARGS...]]
#
# Fuzz the incoming handover for SECONDS (default 600) with libFuzzer.
# Sets up the clang fuzzing build (default BUILD=build-fuzz at the top of
# the tree: -Dfuzzing=true, ASan and UBSan) if it does not exist, builds
# fuzz_handover and runs it from tests/fuzz/corpus.  New inputs go to
# WORK/corpus (default BUILD/fuzz-work), never into the source tree; crash,
# timeout and leak inputs go to tests/fuzz/regressions/.  Extra arguments
# go to libFuzzer, e.g. -jobs=2 -workers=2.  The harness's LUO_FUZZ_ALLOW
# (see fuzz_handover.c) and LUO_FUZZ_VERBOSE pass through.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-600}
[ $# -gt 0 ] && shift
build=${BUILD:-$root/build-fuzz}
work=${WORK:-$build/fuzz-work}

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false -Dbench=false
fi
ninja -C "$build" tests/fuzz/fuzz_handover
mkdir -p "$work/corpus" "$here/regressions"
cd "$work"
exec "$build/tests/fuzz/fuzz_handover" -max_total_time="$secs" \
	-timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
	-artifact_prefix="$here/regressions/" "$@" "$work/corpus" "$here/corpus"
