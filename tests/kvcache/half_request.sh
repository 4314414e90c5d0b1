#!/bin/bash
# A request half received when the update begins completes afterwards on
# the same connection; so does a pipelined batch whose output was pending;
# the connection, the data set and the stats counters survive.  First an
# update whose exec fails (the target is missing): cancelled, nothing lost.
# usage: half_request.sh KVCACHE KVCACHE_V2
set -u
. "$(dirname "$0")/lib.sh"
trap kv_cleanup EXIT

V1=$1 V2=$2
KV_DIR=$(mktemp -d)
cp "$V2" "$KV_DIR/target"
kv_start "$V1" --update-to "$KV_DIR/target" || fail "kvcache did not start"

exec 3<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect"
rm "$KV_DIR/target"
kill -USR1 "$KV_PID"
for _ in $(seq 50); do
	grep -q "still serving" "$KV_LOG" && break
	sleep 0.1
done
grep -q "update into .* failed: No such file or directory; still serving" "$KV_LOG" ||
	fail "no failed update reported"
cp "$V2" "$KV_DIR/target"
# A whole set, then a set whose data is cut in the middle, then half a
# command line.
printf 'set k1 7 0 5\r\nhello\r\nset big 3 0 10\r\n01234' >&3
read -r -t 5 line <&3 || fail "no answer to the first set"
[ "$line" = $'STORED\r' ] || fail "first set: $line"
kv_update 1 || fail "update"
printf '56789\r\nget k1 big\r\nver' >&3
for want in STORED 'VALUE k1 7 5' hello 'VALUE big 3 10' 0123456789 END; do
	read -r -t 5 line <&3 || fail "no answer after the update (wanted $want)"
	[ "$line" = "$want"$'\r' ] || fail "after the update: '$line', wanted '$want'"
done
kv_update 2 || fail "second update"
printf 'sion\r\n' >&3
read -r -t 5 line <&3 || fail "no version"
[ "$line" = $'VERSION 1.6.0-kvcache-v2\r' ] || fail "version: $line"
# A binary protocol request (version) cut in the middle of its header, on
# a connection of its own (as memcached, the first byte chooses the
# protocol of a connection).
exec 4<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect (binary)"
printf '\x80\x0b\x00\x00\x00\x00\x00\x00\x00\x00' >&4
kv_update 3 || fail "third update"
printf '\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00' >&4
# (bash drops the NULs of the header: read up to the version's last byte)
read -r -t 5 -d 2 line <&4 || fail "no binary answer"
[[ "$line" == $'\x81\x0b'*$'\x07'*"1.6.0-kvcache-v" ]] || fail "binary version: $(printf '%q' "$line")"
exec 4<&-
printf 'stats\r\nquit\r\n' >&3
stats=$(timeout 5 cat <&3)
echo "$stats" | grep -q "STAT live_updates 3" || fail "stats: $stats"
echo "$stats" | grep -q "STAT curr_items 2" || fail "stats: $stats"
echo "$stats" | grep -q "STAT cmd_set 2" || fail "stats: $stats"
exec 3<&-
cat "$KV_LOG"
echo "half-request: completed across the update, connection and data kept"
