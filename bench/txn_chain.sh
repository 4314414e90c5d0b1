# SPDX-License-Identifier: MIT
# Sourced by run-txn.sh and run-inherit.sh.  A txn_bench chain ends in
# another process (the last image of the chain writes the rows), so the
# script waits, bounded, until $tmp holds the rows it expects.
#
#   wait_done LINES
wait_done() {
	for _ in $(seq 1200); do
		[ "$(wc -l <"$tmp")" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "$(basename "$0"): a chain did not finish" >&2
	exit 1
}

# awk_median: an awk function med(a, k, c), the median of a[k, 1..c];
# prepended to the summary programs.
awk_median='function med(a, k, c,   i, j, t, x) {
	for (i = 1; i <= c; i++) x[i] = a[k, i]
	for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++)
		if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
	return x[int((c + 1) / 2)]
}
'
