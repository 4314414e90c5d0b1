#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh [BUILD_DIR] - kvcache v1 updates into v2 under load, same PID,
# every client connection and every item kept.
#
# Uses the kvcache, kvcache-v2, kvload and luoctl of BUILD_DIR (default
# build-kv at the top of the tree; configured and built if missing) and
# a free port in 21000-21999.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-kv}
[ -d "$build" ] || meson setup "$build" "$top" >/dev/null
ninja -C "$build" examples/kvcache/kvcache examples/kvcache/kvcache-v2 \
	examples/kvcache/kvload tools/luoctl/luoctl >/dev/null || exit 1
bin=$build/examples/kvcache
luoctl=$build/tools/luoctl/luoctl
. "$top/tests/kvcache/lib.sh"
trap kv_cleanup EXIT

say() { printf '\n== %s\n' "$*"; }
ask() { # one request on a new connection, first lines of the answer
	exec 7<>/dev/tcp/127.0.0.1/"$KV_PORT"
	printf '%s\r\nquit\r\n' "$1" >&7
	timeout 2 cat <&7 | tr -d '\r' | grep -E "${2:-.}"
	exec 7<&-
}

say "kvcache v1, 256 MiB of items in handover memory"
kv_start "$bin/kvcache" -m 256 || exit 1
NAME=kvtest-$$-$KV_PORT
cat "$KV_LOG"
"$bin/kvload" -p "$KV_PORT" --populate -x demo -n 50000 -c 20 -P 16
ask version
ask stats 'curr_items|pid|live_updates'

say "200 clients under load; luoctl updates kvcache into v2 meanwhile"
"$bin/kvload" -p "$KV_PORT" -c 200 -P 4 -n 100000 -t 4 &
load=$!
sleep 1.5
"$luoctl" -s "$NAME" update "$bin/kvcache-v2"
wait $load
grep "live update" "$KV_LOG"

say "same PID, new version, every populated item checked byte for byte"
ask version
ask stats 'curr_items|pid|live_updates|blackout'
"$bin/kvload" -p "$KV_PORT" --verify -x demo -n 50000 -c 20 -P 16
