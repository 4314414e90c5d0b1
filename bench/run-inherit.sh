#!/bin/sh
# Exec mode with the preserved files inherited (LUO_INIT_EXEC_INHERIT)
# next to the carrier, at 1 MiB and 4 GiB and 0, 1,000 and 10,000
# preserved sockets, checked and trusted (LUO_INIT_TRUST_CARRIER), each
# row with the fork+exec floor timed in the same chain; the inherited
# rows also with every socket retrieved by one
# liveupdate_session_retrieve_all() ("-bulk").  ROUNDS rounds,
# every row once per round (rows interleaved, so that the load of the
# shared machine falls on all of them alike), RUNS updates per row and
# round.  Writes bench/results/inherit.csv and prints medians, the ratio
# to the floor and to the same variant's 0-socket figure.  See
# bench/README.md.
#
#   bench/run-inherit.sh [BUILD_DIR] [ROUNDS] [RUNS]
set -eu
build=${1:-build}
rounds=${2:-5}
runs=${3:-3}
bin=$build/bench/txn_bench
out=bench/results/inherit.csv
[ -x "$bin" ] || { echo "build $bin first (ninja -C $build)"; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

. "$(dirname "$0")/txn_chain.sh"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
want=0
for round in $(seq "$rounds"); do
	for size in 1 4096; do
		for fds in 0 1000 10000; do
			for flags in "" "--trust" "--inherit" "--inherit --trust" \
				"--inherit --bulk" "--inherit --trust --bulk"; do
				# shellcheck disable=SC2086
				"$bin" --mode exec --size $size --fds $fds --runs "$runs" $flags --out "$tmp"
				want=$((want + runs))
				wait_done $want
			done
		done
	done
	echo "round $round done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
{
	echo "mode,size_mib,fds,init_ms,ns,floor_ns"
	tr ' ' ',' <"$tmp"
} >"$out"
awk -F, "$awk_median"'NR > 1 {
	k = $1 " " $2 " " $3; n[k]++; v[k, n[k]] = $5; f[k, n[k]] = $6
	if (!(k in seen)) { seen[k] = 1; order[++m] = k }
}
END {
	printf "| %-23s | %5s | %6s | %4s | %10s | %8s | %8s | %9s |\n", "mode", "MiB", "fds", "runs", "blackout ms", "floor ms", "x floor", "x 0 fds"
	print "|---|---:|---:|---:|---:|---:|---:|---:|"
	for (i = 1; i <= m; i++) {
		k = order[i]; split(k, p, " ")
		b = med(v, k, n[k]) / 1e6; fl = med(f, k, n[k]) / 1e6
		z = p[1] " " p[2] " 0"
		zb = (z in seen) ? med(v, z, n[z]) / 1e6 : 0
		printf "| %-23s | %5s | %6s | %4d | %10.3f | %8.3f | %8.2f | %9.2f |\n", p[1], p[2], p[3], n[k], b, fl, b / fl, zb ? b / zb : 0
	}
}' "$out"
