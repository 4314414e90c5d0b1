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
