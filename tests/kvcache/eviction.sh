#!/bin/bash
# -m is a hard limit: with 4 MiB and 30 MB written, the LRU evicts, the
# item memory never grows past the limit, and this holds across a live
# update (the slab pages, the LRU lists and the counters are handed over);
# the most recent writes are all there.
# usage: eviction.sh KVCACHE KVLOAD
set -u
. "$(dirname "$0")/lib.sh"
trap kv_cleanup EXIT
BIN=$1 LOAD=$2

kv_start "$BIN" -m 4 || fail "kvcache did not start"
stat() {
	exec 5<>/dev/tcp/127.0.0.1/"$KV_PORT"
	printf 'stats\r\nstats slabs\r\nquit\r\n' >&5
	timeout 5 cat <&5 | tr -d '\r' | awk -v k="$1" '$2 == k { print $3 }'
	exec 5<&-
}
"$LOAD" -p "$KV_PORT" --populate -x old -n 100000 -c 10 -P 16 -s 200 >/dev/null || fail "populate"
ev1=$(stat evictions)
[ "$ev1" -gt 50000 ] || fail "only $ev1 evictions"
kv_update 1 || fail "update"
"$LOAD" -p "$KV_PORT" --populate -x mid -n 50000 -c 10 -P 16 -s 200 >/dev/null || fail "populate after the update"
"$LOAD" -p "$KV_PORT" --populate -x new -n 2000 -c 10 -P 16 -s 200 >/dev/null || fail "populate new"
"$LOAD" -p "$KV_PORT" --verify -x new -n 2000 -c 10 -P 16 -s 200 || fail "recent items evicted"
ev2=$(stat evictions)
[ "$ev2" -gt "$ev1" ] || fail "no evictions after the update ($ev1 then $ev2)"
[ "$(stat total_malloced)" -le $((4 << 20)) ] || fail "item memory grew past -m: $(stat total_malloced)"
[ "$(stat bytes)" -le $((4 << 20)) ] || fail "bytes past -m: $(stat bytes)"
echo "eviction: $ev2 evictions, $(stat curr_items) items in $(stat total_malloced) bytes, across an update"
