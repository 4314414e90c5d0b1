#!/bin/sh
# Spawn mode vs exec mode blackout, next to the fork+exec floor measured
# in the same run, and the rollback time; writes bench/results/txn.csv and
# prints a table (medians).  See bench/README.md.
#
#   bench/run-txn.sh [BUILD_DIR] [RUNS]
set -eu
build=${1:-build}
runs=${2:-7}
bin=$build/bench/txn_bench
out=bench/results/txn.csv
[ -x "$bin" ] || { echo "build $bin first (ninja -C $build)"; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

. "$(dirname "$0")/txn_chain.sh"

want=0
for size in 1 4096; do
	for fds in 0 1000 10000; do
		for mode in exec spawn; do
			"$bin" --mode $mode --size $size --fds $fds --runs "$runs" --out "$tmp"
			want=$((want + runs))
			wait_done $want
		done
	done
done
# Without the per-file identity check at retrieval (LUO_INIT_TRUST_CARRIER).
for size in 1 4096; do
	for mode in exec spawn; do
		"$bin" --mode $mode --size $size --fds 10000 --runs "$runs" --trust --out "$tmp"
		want=$((want + runs))
		wait_done $want
	done
done
# A new image that spends 1 s initialising before it adopts.
for mode in exec spawn; do
	"$bin" --mode $mode --size 4096 --fds 10000 --runs 3 --init-delay 1000 --out "$tmp"
	want=$((want + 3))
	wait_done $want
done
for size in 1 4096; do
	"$bin" --rollback --size $size --fds 10000 --runs "$runs" --out "$tmp" 2>/dev/null
	want=$((want + runs))
	wait_done $want
done
{
	echo "mode,size_mib,fds,init_ms,ns,floor_ns"
	tr ' ' ',' <"$tmp"
} >"$out"
awk -F, "$awk_median"'NR > 1 {
	k = $1 " " $2 " " $3 " " $4; n[k]++; v[k, n[k]] = $5; f[k, n[k]] = $6
	if (!(k in seen)) { seen[k] = 1; order[++m] = k }
}
END {
	printf "%-9s %8s %6s %5s %12s %12s\n", "mode", "MiB", "fds", "init", "median ms", "floor ms"
	for (i = 1; i <= m; i++) {
		k = order[i]; split(k, p, " ")
		printf "%-9s %8s %6s %5s %12.3f %12.3f\n", p[1], p[2], p[3], p[4],
			med(v, k, n[k]) / 1e6, med(f, k, n[k]) / 1e6
	}
}' "$out"
