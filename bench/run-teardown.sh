#!/usr/bin/env bash
# How the old image's arena mapping is best torn down: bench/teardown_bench
# for every way (HOW) and page size, interleaved over passes, at SIZE MiB.
# "slice-pause" is the previous library's way, "whole" (huge pages) and
# "slice" (4 KiB pages) the current one.  Writes bench/results/teardown.md
# and teardown.csv.  As root it reserves hugetlb pages and sets
# shmem_enabled to advise for the thp rows, and restores both.
#
#   bench/run-teardown.sh [BUILD_DIR] [PASSES] [SIZE_MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
passes=${2:-5}
size=${3:-4096}
out=bench/results
mkdir -p "$out"
[ -d "$build" ] || meson setup "$build" >/dev/null
ninja -C "$build" bench/teardown_bench >/dev/null
bin=$build/bench/teardown_bench

pages="4k"
if [ "$(id -u)" = 0 ]; then
	hp=/proc/sys/vm/nr_hugepages
	thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
	old_hp=$(cat $hp)
	old_thp=$(sed 's/.*\[\(.*\)\].*/\1/' $thp)
	trap 'echo "$old_hp" >$hp; echo "$old_thp" >$thp' EXIT
	echo $((size / 2 + 64)) >$hp
	echo advise >$thp
	pages="4k hugetlb thp"
else
	echo "run-teardown.sh: not root: 4k pages only" >&2
fi

csv=$out/teardown.csv
echo "pages,how,mib,linger_us,max_fault_us,p99_fault_us,faults" >"$csv"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for pass in $(seq "$passes"); do
	for p in $pages; do
		for how in whole slice-pause slice slice-yield; do
			"$bin" --size "$size" --pages "$p" --how "$how" --runs 1 |
				sed "s/^/$p,/" | tee -a "$csv"
		done
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$csv" "$passes" "$size" "$load0" "$load1" >"$out/teardown.md" <<'PY'
import csv, os, platform, statistics, sys, time
rows = list(csv.DictReader(open(sys.argv[1])))
passes, size, load0, load1 = sys.argv[2:6]
by = {}
for r in rows:
    by.setdefault((r["pages"], r["how"]), []).append(r)
print("# Tearing down the old arena mapping\n")
print(f"Machine: {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs; "
      f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load0} before, {load1} after.\n")
print(f"Command: `bench/run-teardown.sh BUILD {passes} {size}`: {size} MiB arena, {passes} passes over every row "
      "in turn.  A stand-in for the teardown helper maps the memfd in full, then on \"go\" unmaps it HOW and exits; "
      "a stand-in for the new image maps the same memfd and faults one page after the other meanwhile.  "
      "**linger**: go until the helper is reaped (the old address space is gone).  **max fault** and **p99 fault**: "
      "the new image's slowest and 99th-percentile page touch while it lingers.  Medians over the passes (max fault: "
      "median of the per-pass maxima, and the worst).  `slice-pause` (16 MiB slices, 0.2 ms sleep between) was the "
      "library's way; now huge pages (hugetlb, THP) use `whole` and 4 KiB pages `slice` (16 MiB slices, nothing between).\n")
print("| pages | how | linger ms | max fault ms (median) | max fault ms (worst) | p99 fault us | faults |")
print("|---|---|---:|---:|---:|---:|---:|")
for (p, how), rs in by.items():
    m = lambda k: statistics.median(float(r[k]) for r in rs)
    worst = max(float(r["max_fault_us"]) for r in rs)
    print(f"| {p} | {how} | {m('linger_us') / 1e3:.1f} | {m('max_fault_us') / 1e3:.2f} | {worst / 1e3:.2f} | "
          f"{m('p99_fault_us'):.1f} | {m('faults'):.0f} |")
PY
cat "$out/teardown.md"
