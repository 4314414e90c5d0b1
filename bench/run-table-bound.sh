#!/bin/sh
# An upper bound for any smaller file table: the exec-mode target row
# (4 GiB, inherited, trusted, retrieved at once) at 0 and 10,000 sockets,
# from two builds of the committed tree (git archive HEAD, the same
# options): as it is, and with bench/no-table-work.patch applied, by
# which the new image does no per-file table work at all (the arena
# check neither maps nor checksums the table, the parse reads no entry,
# the retrieval reads no token; it accepts any table, so it is only ever
# built here).  The two builds' rows alternate: ROUNDS rounds of RUNS
# updates per row.  Writes bench/results/table-bound.csv and prints
# medians and each build's ratio of 10,000 to 0 sockets.  See
# bench/README.md.
#
#   bench/run-table-bound.sh [ROUNDS] [RUNS]
set -eu
rounds=${1:-8}
runs=${2:-3}
out=bench/results/table-bound.csv
tree=$(mktemp -d)
tmp=$(mktemp)
all=$(mktemp)
trap 'rm -rf "$tree" "$tmp" "$all"' EXIT

# Both from the same sources and options, so that only the patch differs.
for variant in tree no-table-work; do
	mkdir "$tree/$variant"
	git archive HEAD | tar -x -C "$tree/$variant"
done
(cd "$tree/no-table-work" &&
	patch -s -p1 <"$OLDPWD/bench/no-table-work.patch") || {
	echo "bench/no-table-work.patch no longer applies: redo it for this tree"
	exit 1
}
for variant in tree no-table-work; do
	meson setup "$tree/$variant/build" "$tree/$variant" \
		--buildtype=debugoptimized >/dev/null
	ninja -C "$tree/$variant/build" bench/txn_bench >/dev/null
done

. "$(dirname "$0")/txn_chain.sh"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
	for variant in tree no-table-work; do
		bin=$tree/$variant/build/bench/txn_bench
		for fds in 0 10000; do
			: >"$tmp"
			"$bin" --mode exec --size 4096 --fds $fds --runs "$runs" \
				--inherit --trust --bulk --out "$tmp"
			wait_done "$runs"
			sed "s/^/$variant /" "$tmp" >>"$all"
		done
	done
	echo "round $round done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
{
	echo "build,mode,size_mib,fds,init_ms,ns,floor_ns"
	tr ' ' ',' <"$all"
} >"$out"
awk -F, "$awk_median"'NR > 1 {
	k = $1 " " $4; n[k]++; v[k, n[k]] = $6
	if (!(k in seen)) { seen[k] = 1; order[++m] = k }
}
END {
	printf "| %-13s | %6s | %4s | %11s | %7s |\n", "build", "fds", "runs", "blackout ms", "x 0 fds"
	print "|---|---:|---:|---:|---:|"
	for (i = 1; i <= m; i++) {
		k = order[i]; split(k, p, " ")
		b = med(v, k, n[k]) / 1e6; z = p[1] " 0"
		printf "| %-13s | %6s | %4d | %11.3f | %7.2f |\n", p[1], p[2], n[k], b, b / (med(v, z, n[z]) / 1e6)
	}
}' "$out"
