#!/usr/bin/env bash
# The main demo: build libluo from scratch, start kvcache (a memcached-
# compatible cache whose items live in handover memory), load 100,000
# items, put 200 clients on it and live-update it 5 times under that load
# with luoctl, alternating v1 and v2.  Prints one row per update and
# stops everything it started.
#
#   ./demo.sh [UPDATES]
set -uo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh
luo_install_deps || exit 1
updates=${1:-5}

echo "== build (meson, from scratch)"
luo_setup_build build-demo || exit 1
ninja -C build-demo >/dev/null || exit 1
bin=build-demo/examples/kvcache
luoctl=build-demo/tools/luoctl/luoctl
top=$PWD
. tests/kvcache/lib.sh
load=
trap '[ -n "$load" ] && kill "$load" 2>/dev/null; kv_cleanup' EXIT

echo
echo "== kvcache v1: 512 MiB cache in handover memory"
kv_start "$bin/kvcache" -m 512 -c 4096 || exit 1
name=kvtest-$$-$KV_PORT
sed 's/^/   /' "$KV_LOG"
"$bin/kvload" -p "$KV_PORT" --populate -x demo -n 100000 -s 1024 -c 20 \
	-P 32 | sed 's/^/   /'
echo "   pid $KV_PID, port $KV_PORT; luoctl -s $name status:"
"$luoctl" -s "$name" status | sed 's/^/   /'

echo
echo "== $updates live updates, each under 200 clients of pipelined gets and sets"
printf '%-7s %-5s %-5s %10s %12s %9s %8s %14s\n' update from to \
	"blackout" "requests" "req/s" errors "keys verified"
status=0
for i in $(seq "$updates"); do
	if [ $((i % 2)) = 1 ]; then next=$bin/kvcache-v2; else next=$bin/kvcache; fi
	from=$(printf 'version\r\nquit\r\n' |
		timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$KV_PORT; cat >&3; cat <&3" |
		tr -d '\r' | awk '/^VERSION/ {sub(/.*-/, "", $2); print $2}')
	out=$KV_DIR/load-$i.txt
	"$bin/kvload" -p "$KV_PORT" -c 200 -P 4 -n 20000 -x "run$i" -t 3 \
		>"$out" 2>&1 &
	load=$!
	sleep 1
	upd=$("$luoctl" -s "$name" update "$top/$next" 2>&1)
	rc=$?
	wait "$load"
	lrc=$?
	load=
	blackout=$(sed -n 's/.*blackout \([0-9.]*\) ms.*/\1 ms/p' <<<"$upd")
	to=$(grep "live update #$i " "$KV_LOG" | sed -n 's/.*kvcache \(v[0-9]*\).*/\1/p' | head -1)
	stats=$(grep '^kvload: mode=load' "$out")
	check=$(grep '^kvload: mode=verify' "$out")
	field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"${2:-$stats}"; }
	errors=0
	for f in errors mismatches misses conn_errors timeouts; do
		errors=$((errors + $(field $f) + $(field $f "$check")))
	done
	verified=$(sed -n 's/.*verifying the last value of \([0-9]*\) keys.*/\1/p' "$out")
	printf '%-7s %-5s %-5s %10s %12s %9s %8s %14s\n' "#$i" "${from:-?}" \
		"${to:-?}" "${blackout:-failed}" "$(field requests)" \
		"$(field throughput)" "$errors" "${verified:-0}"
	if [ $rc -ne 0 ] || [ $lrc -ne 0 ] || [ "$errors" != 0 ]; then
		echo "$upd"
		cat "$out"
		status=1
	fi
done

echo
echo "== after $updates updates: same PID, every one of the 100,000 first items checked byte for byte"
"$luoctl" -s "$name" status | sed 's/^/   /'
"$bin/kvload" -p "$KV_PORT" --verify -x demo -n 100000 -s 1024 -c 20 -P 32 |
	sed 's/^/   /' || status=1
[ "$(pgrep -f "kvcache.*$KV_PORT" | head -1)" = "$KV_PID" ] ||
	{ echo "the PID changed"; status=1; }
[ $status = 0 ] && echo "demo: all updates done with 0 errors; nothing lost"
exit $status
