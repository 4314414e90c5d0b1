#!/bin/sh
# Two commits side by side on the exec-mode target row (4 GiB, inherited,
# trusted, retrieved at once) at 0 and 10,000 sockets: each built from
# git archive with the same options, their rows alternating, ROUNDS
# rounds of RUNS updates per row.  Besides the blackout it keeps the new
# image's luo_init() share of it (txn_bench --phases, "init"), where a
# change to the adoption of a handover shows first.  Writes
# bench/results/compare.csv (the two commits named in its rows) and
# prints medians and each commit's ratio of 10,000 to 0 sockets.  See
# bench/README.md.
#
#   bench/run-compare.sh OLD NEW [ROUNDS] [RUNS]
set -eu
[ $# -ge 2 ] || {
	echo "usage: $0 OLD NEW [ROUNDS] [RUNS]  (two commits)" >&2
	exit 2
}
old=$(git rev-parse --short "$1")
new=$(git rev-parse --short "$2")
rounds=${3:-8}
runs=${4:-3}
out=bench/results/compare.csv
tree=$(mktemp -d)
tmp=$(mktemp)
err=$(mktemp)
all=$(mktemp)
trap 'rm -rf "$tree" "$tmp" "$err" "$all"' EXIT

for c in "$old" "$new"; do
	mkdir "$tree/$c"
	git archive "$c" | tar -x -C "$tree/$c"
	meson setup "$tree/$c/build" "$tree/$c" --buildtype=debugoptimized \
		>/dev/null
	ninja -C "$tree/$c/build" bench/txn_bench >/dev/null
done

. "$(dirname "$0")/txn_chain.sh"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
	for c in "$old" "$new"; do
		for fds in 0 10000; do
			: >"$tmp"
			: >"$err"
			"$tree/$c/build/bench/txn_bench" --mode exec --size 4096 \
				--fds $fds --runs "$runs" --inherit --trust --bulk \
				--phases --out "$tmp" 2>"$err"
			wait_done "$runs"
			# Each update's row, with its init phase (in order).
			grep -o ' init [0-9.]*' "$err" | cut -d' ' -f3 |
				paste -d' ' "$tmp" - | sed "s/^/$c /" >>"$all"
		done
	done
	echo "round $round done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
{
	echo "commit,mode,size_mib,fds,init_ms,ns,floor_ns,luo_init_us"
	tr ' ' ',' <"$all"
} >"$out"
awk -F, "$awk_median"'NR > 1 {
	k = $1 " " $4; n[k]++; v[k, n[k]] = $6; u[k, n[k]] = $8
	if (!(k in seen)) { seen[k] = 1; order[++m] = k }
}
END {
	printf "| %-9s | %6s | %4s | %11s | %7s | %12s |\n", "commit", "fds", "runs", "blackout ms", "x 0 fds", "luo_init us"
	print "|---|---:|---:|---:|---:|---:|"
	for (i = 1; i <= m; i++) {
		k = order[i]; split(k, p, " ")
		b = med(v, k, n[k]) / 1e6; z = p[1] " 0"
		printf "| %-9s | %6s | %4d | %11.3f | %7.2f | %12.1f |\n", p[1], p[2], n[k], b, b / (med(v, z, n[z]) / 1e6), med(u, k, n[k])
	}
}' "$out"
