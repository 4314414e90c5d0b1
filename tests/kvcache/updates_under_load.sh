#!/bin/bash
# Live updates under load: kvload keeps 200 pipelined connections busy
# with checksummed sets and gets while kvcache updates itself N times
# (alternating v1/v2).  Zero errors, zero connection errors, every value
# of the load and of a pre-populated key set checked afterwards.  With
# memcaslap installed it runs alongside as a second, independent client
# verifying a tenth of its gets.
# Odd updates are asked for with SIGUSR1, even ones with luoctl through
# the control socket when LUOCTL is given.
# usage: updates_under_load.sh KVCACHE KVCACHE_V2 KVLOAD [UPDATES [LUOCTL]]
set -u
. "$(dirname "$0")/lib.sh"
trap kv_cleanup EXIT

V1=$1 V2=$2 LOAD=$3 N=${4:-10} LUOCTL=${5:-}
# KV_ARGS: more options for kvcache (the --inherit variant).
# shellcheck disable=SC2086
kv_start "$V1" -m 256 --update-to "$V2" ${KV_ARGS:-} || fail "kvcache did not start"

"$LOAD" -p "$KV_PORT" --populate -x pop -n 20000 -c 20 -P 16 || fail "populate"
secs=$((N * 6 / 10 + 3))
"$LOAD" -p "$KV_PORT" -c 200 -P 4 -n 100000 -t "$secs" >"$KV_DIR/load.out" 2>&1 &
load=$!
slap=
if command -v memcaslap >/dev/null; then
	timeout $((secs + 30)) memcaslap -s 127.0.0.1:"$KV_PORT" -T 1 -c 16 \
		-t "${secs}s" -v 0.1 -b >"$KV_DIR/slap.out" 2>&1 &
	slap=$!
fi
sleep 1
for i in $(seq "$N"); do
	if [ -n "$LUOCTL" ] && [ $((i % 2)) = 0 ]; then
		target=$V1
		[ $((i % 4)) = 0 ] || target=$V2
		"$LUOCTL" -s "kvtest-$$-$KV_PORT" update "$target" >"$KV_DIR/luoctl.out" 2>&1 ||
			fail "luoctl update: $(cat "$KV_DIR/luoctl.out")"
		kv_wait_update "$i" || fail "update $i"
	else
		kv_update "$i" || fail "update $i"
	fi
	sleep 0.5
done
wait "$load"
rc=$?
cat "$KV_DIR/load.out"
[ $rc = 0 ] || fail "kvload reported errors"
"$LOAD" -p "$KV_PORT" --verify -x pop -n 20000 -c 20 -P 16 || fail "populated keys changed"
if [ -n "$slap" ]; then
	wait "$slap" || fail "memcaslap: $(cat "$KV_DIR/slap.out")"
	grep -E "^(cmd_|get_misses|verify_|Run time)" "$KV_DIR/slap.out"
	kv_slap_verified
fi
grep "live update #" "$KV_LOG"
[ "$(grep -c 'live update #' "$KV_LOG")" = "$N" ] || fail "not $N updates"
if grep -q "lost in the update\|cannot preserve" "$KV_LOG"; then
	fail "a connection was lost"
fi
echo "updates-under-load: $N live updates, no error, every key verified"
