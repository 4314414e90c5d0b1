#!/usr/bin/env bash
# CPUID instructions executed by one exec of kvcache (`kvcache -V`: load,
# constructors, exit) and by the CRC unit test (which computes CRCs), for
# this tree and for a baseline revision built beside it, counted with gdb
# (bench/cpuid_count.py); and what one CPUID costs on this machine.
# Writes bench/results/cpuid.md.
#
#   bench/run-cpuid.sh [BUILD_DIR] [BASE_REV]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
base=${2:-}
out=bench/results
mkdir -p "$out"
command -v gdb >/dev/null || { echo "run-cpuid.sh: needs gdb" >&2; exit 1; }

[ -d "$build" ] || meson setup "$build" >/dev/null
ninja -C "$build" examples/kvcache/kvcache tests/unit/test_crc bench/cpuid_cost >/dev/null

count() { # PROGRAM ARGS... -> "TOTAL|where:n, ..."
	gdb -q -batch -x bench/cpuid_count.py --args "$@" 2>/dev/null |
		awk '/^cpuid total/ {t=$3} /^cpuid +[0-9]/ {w = w sep $3 ": " $2; sep="; "} END {print t "|" w}'
}

tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/base" 2>/dev/null || true; rm -rf "$tmp"' EXIT
rows=()
if [ -n "$base" ]; then
	git worktree add -q --detach "$tmp/base" "$base"
	(cd "$tmp/base" && meson setup b -Dtests=true >/dev/null &&
		ninja -C b examples/kvcache/kvcache tests/unit/test_crc >/dev/null)
	rows+=("base $(git rev-parse --short "$base")|$tmp/base/b")
fi
rows+=("this tree $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo +changes)|$build")

cost=$("$build/bench/cpuid_cost")
{
	echo "# CPUID instructions per exec"
	echo
	echo "Machine: $(hostname), Linux $(uname -r), $(nproc) CPUs; $(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "One CPUID costs ${cost} ns here (bench/cpuid_cost: median of 21 x 2,000; it traps to the hypervisor)."
	echo
	echo "Command: \`bench/run-cpuid.sh ${1:-build-bench} ${base}\`; each count is"
	echo "\`gdb -q -batch -x bench/cpuid_count.py --args PROGRAM ARGS\`: a breakpoint on every CPUID"
	echo "of every mapped object, from the first instruction to exit.  ld.so's own CPU detection"
	echo "(glibc, the same in every program) is named after the nearest exported symbol by objdump."
	echo
	echo "| tree | program | CPUID total | outside ld.so | where |"
	echo "|---|---|---:|---:|---|"
	for r in "${rows[@]}"; do
		name=${r%%|*} dir=${r#*|}
		for prog in "examples/kvcache/kvcache -V" "tests/unit/test_crc"; do
			# shellcheck disable=SC2086
			res=$(count "$dir"/$prog)
			total=${res%%|*} where=${res#*|}
			ld=$(echo "$where" | tr ';' '\n' | awk -F': ' '/ld-linux/ {s += $2} END {print s + 0}')
			echo "| $name | \`${prog}\` | $total | $((total - ld)) | $where |"
		done
	done
} >"$out/cpuid.md"
cat "$out/cpuid.md"
