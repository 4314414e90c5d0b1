#!/usr/bin/env bash
# Build libluo from scratch and run the whole test suite twice: a normal
# build, then one under AddressSanitizer + UndefinedBehaviorSanitizer.
# Ends with one line "N passed, N failed"; exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
luo_install_deps

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

status=0
run_suite() {
	local dir=$1 mult=$2
	shift 2
	echo "== $dir: configure and build"
	luo_setup_build "$dir" "$@"
	ninja -C "$dir"
	echo "== $dir: test"
	meson test -C "$dir" --print-errorlogs --num-processes 2 \
		--timeout-multiplier "$mult" || status=1
}

# Build directories of their own: `build` stays the user's.
run_suite build-test 1
run_suite build-test-asan 3 -Db_sanitize=address,undefined -Db_lundef=false

python3 scripts/summary.py build-test build-test-asan
exit $status
