#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run-handover.sh - run the handover benchmark over all modes and sizes
#
#   sudo bench/run-handover.sh [--runs N] [--passes P]
#                              [--sizes "1 256 1024 4096"]
#                              [--modes "4k 4k-sync hugetlb thp"]
#                              [--out DIR] [BUILD_DIR]
#   bench/run-handover.sh --smoke [BUILD_DIR]
#
# Builds bench/handover_bench in BUILD_DIR (default: build-bench at the top
# of the source tree) if needed, runs every mode x size with N measured
# updates each (default 48) and prints a table.  The updates of a row are
# spread over P passes (default 6, each a new chain with one extra warm-up
# update) that go round all sizes and modes, each pass in another order,
# so that a busy spell of the machine does not land on one row only.
# Before each chain it waits (up to 5 s, 90 s in all) for the machine to be
# idle, and it records how much CPU other processes used meanwhile.  Writes
# handover.md, handover.csv (one row per mode and size), handover-runs.csv
# (one row per update) and handover-load.csv (one row per chain) into DIR
# (default bench/results).
#
# As root it reserves hugetlb pages for the hugetlb mode and sets
# /sys/kernel/mm/transparent_hugepage/shmem_enabled to "advise" for the thp
# mode, and puts both back on exit.  Without root those modes are skipped.
#
# --smoke: 1 MiB, 2 updates, 4 KiB pages only; checks that the benchmark
# ran and verified its data; writes nothing.
#
# It never judges a time: it prints and records.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build-bench
out=$src/bench/results
runs=48
passes=6
idle_budget=90
sizes="1 256 1024 4096"
modes="4k 4k-sync hugetlb thp"
smoke=0

while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--runs) runs=$2; shift ;;
	--passes) passes=$2; shift ;;
	--sizes) sizes=$2; shift ;;
	--modes) modes=$2; shift ;;
	--out) out=$2; shift ;;
	-h|--help) sed -n '3,31p' "$0"; exit 0 ;;
	-*) echo "run-handover.sh: unknown option $1" >&2; exit 2 ;;
	*) build=$1 ;;
	esac
	shift
done

say() { echo "run-handover: $*" >&2; }

build_bench() {
	local log

	if [ ! -f "$build/build.ninja" ]; then
		say "configuring $build"
		log=$(meson setup "$build" "$src" -Dbench=true -Dtests=false 2>&1) || {
			echo "$log" >&2
			say "cannot configure $build"
			exit 1
		}
	fi
	log=$(ninja -C "$build" bench/handover_bench 2>&1) || {
		echo "$log" >&2
		say "cannot build in $build (give another BUILD_DIR if it is not yours to write)"
		exit 1
	}
}

build_bench
bench=$build/bench/handover_bench

# The library is built from the working tree, which others may change
# while this runs: describe it now, as built.
if src_desc=$(git -C "$src" rev-parse --short HEAD 2>/dev/null); then
	git -C "$src" diff --quiet HEAD -- src include 2>/dev/null ||
		src_desc="$src_desc + uncommitted library changes (diff $(git -C "$src" diff HEAD -- src include | sha1sum | cut -c1-12))"
else
	src_desc="unknown (git cannot read $src as this user)"
fi

if [ $smoke = 1 ]; then
	exec "$bench" --smoke
fi

# --- system settings, put back on exit ----------------------------------
hp=/proc/sys/vm/nr_hugepages
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
hp_saved=$(cat $hp)
thp_saved=$(sed 's/.*\[\(.*\)\].*/\1/' $thp 2>/dev/null || echo "")
tmp=$(mktemp -d)

restore() {
	if [ "$(id -u)" = 0 ]; then
		echo "$hp_saved" >$hp 2>/dev/null || true
		[ -n "$thp_saved" ] && echo "$thp_saved" >$thp 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap restore EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then
	case " $modes " in *" hugetlb"*|*" thp"*)
		say "not root: skipping the hugetlb and thp modes (they need /proc/sys/vm/nr_hugepages and $thp)" ;;
	esac
	modes=$(for m in $modes; do case $m in hugetlb*|thp*) ;; *) echo "$m" ;; esac; done)
fi

# Jiffies the machine spent busy / in total so far (all CPUs).
cpu_jiffies() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }

# Wait (at most 5 s, 90 s per run in all) for a second in which other work
# used < 15% of the CPUs.
wait_idle() {
	local b0 t0 b1 t1 waited=0

	while [ $waited -lt 5 ] && [ "$idle_budget" -gt 0 ]; do
		read -r b0 t0 < <(cpu_jiffies)
		sleep 1
		read -r b1 t1 < <(cpu_jiffies)
		[ $(((b1 - b0) * 100)) -lt $(((t1 - t0) * 15)) ] && break
		waited=$((waited + 1))
		idle_budget=$((idle_budget - 1))
	done
	[ $waited = 0 ] || say "waited ${waited} s for the machine to calm down"
}

mem_avail_mib() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }
hp_total() { awk '/^HugePages_Total:/ { print $2 }' /proc/meminfo; }

# Reserve hugetlb pages for @1 MiB of data on top of what was reserved,
# once for the whole run (growing and shrinking the pool for every chain
# would cost more time than the chain).
hp_reserved=0
reserve_huge() {
	local want=$((hp_saved + $1 / 2 + 64))

	if [ $hp_reserved -lt $want ]; then
		echo $want >$hp
		hp_reserved=$(hp_total)
	fi
	[ $hp_reserved -ge $want ]
}

enable_thp() {
	case $thp_saved in
	never|deny) echo advise >$thp ;;
	esac
	! grep -q '\[never\]\|\[deny\]' $thp
}

run_one() { # mode size
	local mode=$1 size=$2 args=()

	case $mode in
	4k) args=(--pages 4k) ;;
	4k-sync) args=(--pages 4k --sync-teardown) ;;
	hugetlb) args=(--pages hugetlb) ;;
	hugetlb-sync) args=(--pages hugetlb --sync-teardown) ;;
	thp) args=(--pages thp) ;;
	thp-sync) args=(--pages thp --sync-teardown) ;;
	*) say "unknown mode $mode"; return 1 ;;
	esac
	# (MemAvailable does not count the reserved hugetlb pool.)
	if [ $((size + 1024)) -gt "$(mem_avail_mib)" ]; then
		say "$mode $size MiB: skipped, only $(mem_avail_mib) MiB available"
		return 0
	fi
	case $mode in
	hugetlb*)
		if ! reserve_huge "$size"; then
			say "$mode $size MiB: skipped, got only $(hp_total) huge pages"
			return 0
		fi ;;
	thp*)
		if ! enable_thp; then
			say "$mode: skipped, $thp refuses advise"
			return 0
		fi ;;
	esac
	wait_idle
	say "pass $pass/$passes: $mode $size MiB, $per_pass updates"
	read -r b0 t0 < <(cpu_jiffies)
	# The chain's own CPU time (one PID; floor children and teardown
	# helpers are reaped into it) against what the machine was busy.
	{ time "$bench" "${args[@]}" --size "$size" --runs "$per_pass" \
		--warmup 1 --check --raw "$tmp/handover-runs.csv" \
		>"$tmp/$mode-$size.log" 2>&1; } 2>"$tmp/time" || {
		say "$mode $size MiB failed:"
		cat "$tmp/$mode-$size.log" >&2
		return 1
	}
	read -r b1 t1 < <(cpu_jiffies)
	read -r wall user sys <"$tmp/time"
	[ -f "$tmp/handover-load.csv" ] ||
		echo "pass,mode,size_mib,wall_s,own_cpu_s,machine_busy_s,other_load_pct" >"$tmp/handover-load.csv"
	awk -v p="$pass" -v m="$mode" -v s="$size" -v w="$wall" -v o="$user" -v o2="$sys" \
		-v b=$((b1 - b0)) -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
		o += o2; busy = b / hz; other = busy - o; if (other < 0) other = 0
		printf "%s,%s,%s,%.2f,%.2f,%.2f,%.1f\n", p, m, s, w, o, busy,
			t ? other * hz * 100 / t : 0
	}' >>"$tmp/handover-load.csv"
}

# @2... rotated left by @1 places.
rotate() {
	local n=$1

	shift
	n=$((n % $#))
	set -- "${@:$((n + 1))}" "${@:1:$n}"
	echo "$@"
}

case " $modes " in *" hugetlb"*)
	reserve_huge "$(echo $sizes | tr ' ' '\n' | sort -n | tail -1)" ||
		say "could reserve only $(hp_total) huge pages; larger hugetlb rows will be skipped" ;;
esac
per_pass=$(((runs + passes - 1) / passes))
runs=$((per_pass * passes))
TIMEFORMAT='%R %U %S'
start=$(date +%s)
# Each pass starts at another size and mode: no row always follows the same.
for pass in $(seq "$passes"); do
	for size in $(rotate $((pass - 1)) $sizes); do
		for mode in $(rotate $((pass - 1)) $modes); do
			run_one "$mode" "$size"
		done
	done
done
elapsed=$(($(date +%s) - start))
[ -f "$tmp/handover-runs.csv" ] || { say "no results"; exit 1; }
"$bench" --summarize --csv "$tmp/handover.csv" "$tmp/handover-runs.csv" \
	>"$tmp/summary.log"

# --- report ---------------------------------------------------------------
# Columns of handover.csv by name, for awk.
AWK_COLS='NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }'

table() { # markdown table of the summary (@1), other load from @2
	awk -F, '
	FNR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	function v(n) { return $c[n] }
	FILENAME == ARGV[1] {
		k = v("mode") " " v("size_mib"); ls[k] += v("other_load_pct"); ln[k]++
		if (v("other_load_pct") > lmax[k]) lmax[k] = v("other_load_pct")
		next
	}
	BEGIN {
		print "| size MiB | mode | floor med | freeze->ready min | med | max | prepare->ready med | ratio to floor | paired ratio med | minflt med (max) | RSS KiB | freeze->exec | exec->main | main->init | init->ready | finish->old mm gone | huge MiB | other load % mean (max) |"
		print "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	}
	{
		k = v("mode") " " v("size_mib")
		printf "| %d | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f | %d (%d) | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %d | %.0f (%.0f) |\n",
			v("size_mib"), v("mode"), v("floor_ms_med"),
			v("freeze_ready_ms_min"), v("freeze_ready_ms_med"),
			v("freeze_ready_ms_max"), v("prepare_ready_ms_med"),
			v("freeze_ready_ms_med") / v("floor_ms_med"),
			v("floor_ratio_med"), v("minflt_med"), v("minflt_max"),
			v("rss_kb_med"), v("freeze_exec_ms_med"),
			v("exec_main_ms_med"), v("main_init_ms_med"),
			v("init_ready_ms_med"), v("finish_teardown_ms_med"),
			v("huge_mapped_mib"), ln[k] ? ls[k] / ln[k] : 0, lmax[k]
	}' "$2" "$1"
}

targets() { # per mode: ratio range, flatness, slope per GiB
	awk -F, "$AWK_COLS"'
	function v(n) { return $c[n] }
	{
		m = v("mode"); s = v("size_mib") / 1024; t = v("freeze_ready_ms_med")
		if (!(m in n)) order[++nm] = m
		n[m]++; sx[m] += s; sy[m] += t; sxx[m] += s * s; sxy[m] += s * t
		e = v("exec_main_ms_med"); sye[m] += e; sxye[m] += s * e
		d = v("finish_teardown_ms_med"); syd[m] += d; sxyd[m] += s * d
		f = v("minflt_med"); syf[m] += f; sxyf[m] += s * f
		r = t / v("floor_ms_med")
		if (n[m] == 1 || s < lo_s[m]) { lo_s[m] = s; lo_t[m] = t }
		if (n[m] == 1 || s > hi_s[m]) { hi_s[m] = s; hi_t[m] = t }
		if (n[m] == 1 || t < tmin[m]) tmin[m] = t
		if (n[m] == 1 || t > tmax[m]) tmax[m] = t
		if (n[m] == 1 || r > rmax[m]) rmax[m] = r
		if (n[m] == 1 || r < rmin[m]) rmin[m] = r
	}
	function slope(m, sy_, sxy_,   q) {
		q = n[m] * sxx[m] - sx[m] * sx[m]
		return q ? (n[m] * sxy_ - sx[m] * sy_) / q : 0
	}
	END {
		for (k = 1; k <= nm; k++) {
			m = order[k]
			printf "- **%s**: freeze->ready median %.3f .. %.3f ms over %.0f .. %.0f MiB; ratio to floor %.2f .. %.2f",
				m, tmin[m], tmax[m], lo_s[m] * 1024, hi_s[m] * 1024, rmin[m], rmax[m]
			if (m ~ /^(hugetlb|thp)/)
				printf " (target <= 2.00: %s)", rmax[m] <= 2 ? "met" : "missed"
			printf "; spread (max - min) / min %.1f%%", tmin[m] ? (tmax[m] - tmin[m]) * 100 / tmin[m] : 0
			if (m ~ /^(hugetlb|thp)/)
				printf " (target flat within 20%%: %s)", tmax[m] <= 1.2 * tmin[m] ? "met" : "missed"
			if (hi_s[m] > lo_s[m])
				printf "; slope %.3f ms/GiB (fit), %.3f ms/GiB ((t%.0fM - t%.0fM) / %.2f GiB); exec->main slope %.3f ms/GiB; finish->old mm gone slope %.3f ms/GiB; minflt slope %.1f faults/GiB",
					slope(m, sy[m], sxy[m]),
					(hi_t[m] - lo_t[m]) / (hi_s[m] - lo_s[m]),
					hi_s[m] * 1024, lo_s[m] * 1024, hi_s[m] - lo_s[m],
					slope(m, sye[m], sxye[m]), slope(m, syd[m], sxyd[m]),
					slope(m, syf[m], sxyf[m])
			print ""
		}
	}' "$1"
}

machine() {
	echo "- kernel: $(uname -r) ($(uname -m))"
	echo "- CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), nproc $(nproc)"
	echo "- memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "- THP: enabled $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null), shmem_enabled $thp_saved (advise during the thp rows)"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- source: $src_desc (as built at the start)"
	echo "- command: \`bench/run-handover.sh --runs $runs --passes $passes --sizes \"$sizes\" --modes \"$(echo $modes)\"\` as $(id -un), ${elapsed} s"
}

report_md() {
	cat <<EOF
# Handover benchmark results

Produced by \`bench/run-handover.sh\`; see \`bench/README.md\` for what each
column means.  Times in ms; medians over $runs updates per row, taken in
$passes passes over all rows (each pass starts a new chain with one
warm-up update, not counted).  The floor is a plain fork + exec of the
same binary with a fresh \`luo_init()\`, timed right before every update;
"ratio to floor" divides the medians, "paired ratio" is the median of each
update divided by its own floor.

## Machine

$(machine)

## Results

$(table "$tmp/handover.csv" "$tmp/handover-load.csv")

Phase columns are medians of each phase on its own, so they need not add
up to the freeze->ready median exactly.  "other load" is the share of the
machine's CPU time that other processes used while the row's chains ran
(\`handover-load.csv\`, per chain); this VM is shared, and busy spells
slow down the update and its floor alike.  "exec" is the library's exec_ns
stamp, taken right before it seals the handover and calls execve().

## Against the targets

$(targets "$tmp/handover.csv")

## Analysis

_Not written for this run yet._

Raw figures: \`handover.csv\` (one row per mode and size: min, median, max
of every column), \`handover-runs.csv\` (every update) and
\`handover-load.csv\` (every chain: wall time, own CPU, other load).
EOF
}

mkdir -p "$out"
cp "$tmp/handover.csv" "$tmp/handover-runs.csv" "$tmp/handover-load.csv" "$out/"
report_md >"$out/handover.md"
echo
table "$out/handover.csv" "$out/handover-load.csv" | sed '2d; s/^| //; s/ |$//; s/ | /\t/g' |
	column -t -s "$(printf '\t')"
echo
targets "$out/handover.csv"
echo
say "done in ${elapsed} s; wrote $out/handover.md, handover.csv, handover-runs.csv, handover-load.csv"
