#!/usr/bin/env bash
# Build libluo from scratch and show a live update: the counter example
# keeps a counter and 64 MiB in handover memory and replaces its own
# binary, alternating between two versions, checking every byte each time.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
luo_install_deps

echo "== build"
luo_setup_build build
ninja -C build >/dev/null
bin=build/examples

echo
echo "== 10 live updates in a row, v1 <-> v2, same PID"
"$bin/counter" --updates 10 --next "$bin/counter-v2"

echo
echo "== a running service, updated on demand (SIGUSR1)"
log=$(mktemp)
"$bin/counter" --next "$bin/counter-v2" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
# Wait until the service has printed N lines (it is up), at most 10 s.
wait_lines() {
	for _ in $(seq 100); do
		[ "$(grep -c '^counter' "$log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "the counter did not answer in time" >&2
	return 1
}
wait_lines 1
for i in 1 2 3; do
	kill -USR1 $pid
	wait_lines $((i + 1))
done
kill -TERM $pid
wait $pid || true
cat "$log"
echo
echo "The process kept PID $pid throughout; each update checked all 64 MiB."
