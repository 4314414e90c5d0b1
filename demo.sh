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
sleep 0.3
for i in 1 2 3; do
	kill -USR1 $pid
	sleep 0.3
done
kill -TERM $pid
wait $pid || true
cat "$log"
echo
echo "The process kept PID $pid throughout; each update checked all 64 MiB."
