#!/bin/bash
# memccapable (libmemcached-tools) against kvcache, ASCII (-a) and binary
# (-b) protocol: every test must pass before a live update, after one into
# the v2 build, and after another.  Skipped (77) without memccapable.
# usage: memccapable.sh KVCACHE KVCACHE_V2
set -u
. "$(dirname "$0")/lib.sh"
command -v memccapable >/dev/null || { echo "memccapable not installed: skipping"; exit 77; }
trap kv_cleanup EXIT

V1=$1 V2=$2
kv_start "$V1" --update-to "$V2" || fail "kvcache did not start"

run_capable() {
	local out mode
	for mode in -a -b; do
		out=$(timeout 60 memccapable -h 127.0.0.1 -p "$KV_PORT" $mode 2>&1)
		echo "memccapable $mode $1: $(echo "$out" | grep -c '\[pass\]') passed; $(echo "$out" | tail -1)"
		echo "$out" | grep -q "All tests passed" || fail "memccapable $mode $1: $out"
	done
}

# A multi-get of 300 keys answers every one of them, as memcached does.
multiget() {
	local req="" i
	for i in $(seq 300); do
		req+="set mk$i 0 0 ${#i}\r\n$i\r\n"
	done
	req+="get"
	for i in $(seq 300); do req+=" mk$i"; done
	req+="\r\nquit\r\n"
	exec 7<>/dev/tcp/127.0.0.1/"$KV_PORT"
	printf "$req" >&7
	n=$(timeout 5 cat <&7 | tr -d '\r' | grep -c '^VALUE mk')
	exec 7<&-
	[ "$n" = 300 ] || fail "multi-get of 300 keys $1: $n values"
}

multiget "before any update"
run_capable "before any update"
kv_update 1 || fail "update 1"
grep -q "kvcache v2: .*live update #1 from v1" "$KV_LOG" || fail "v2 did not take over"
run_capable "after the update into v2"
multiget "after an update"
kv_update 2 || fail "update 2"
run_capable "after a second update"
cat "$KV_LOG"
echo "memccapable: all ASCII and binary tests pass before and after live updates"
