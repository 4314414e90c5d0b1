#!/bin/bash
# The new image never trusts the handover blindly.  The old image damages
# what it hands over (KVCACHE_TEST_CORRUPT, a test-only hook in the
# subsystem's prepare) and the new one must refuse or cut exactly that,
# say so, and go on serving:
#   store-magic, store-size, root: the store is refused; an empty cache
#     serves on the same port;
#   buckets: hash chains pointing at odd, mid-chunk or out-of-region
#     offsets are cut: those items are lost, nothing crashes, new sets work;
#   conn-lengths, conn-buffer: that connection is dropped with a message,
#     the other one is kept.
# usage: corrupt.sh KVCACHE
set -u
. "$(dirname "$0")/lib.sh"
trap kv_cleanup EXIT
BIN=$1

expect() { # FD REQUEST EXPECTED-LINE...
	local fd=$1 req=$2 want line
	shift 2
	printf '%s\r\n' "$req" >&"$fd"
	for want in "$@"; do
		read -r -t 5 line <&"$fd" || fail "$mode: no answer to '$req'"
		[ "$line" = "$want"$'\r' ] || fail "$mode: '$req': got '$line', wanted '$want'"
	done
}

for mode in store-magic store-size root buckets conn-lengths conn-buffer; do
	KV_DIR=
	KVCACHE_TEST_CORRUPT=$mode kv_start "$BIN" || fail "$mode: kvcache did not start"
	exec 3<>/dev/tcp/127.0.0.1/"$KV_PORT" 4<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect"
	for i in $(seq 30); do
		expect 3 "set k$i 0 0 2"$'\r\n'"v$((i % 10))" STORED
	done
	expect 4 "get k1" "VALUE k1 0 2" v1 END
	case $mode in
	store-*|root)
		kill -USR1 "$KV_PID"
		for _ in $(seq 100); do
			grep -q "fresh start after a refused handover" "$KV_LOG" && break
			sleep 0.05
		done
		grep -q "refusing the handover; starting with an empty cache" "$KV_LOG" ||
			fail "$mode: not refused"
		exec 5<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "$mode: no listener after refusal"
		expect 5 "get k1" END
		expect 5 "set k1 0 0 1"$'\r\n'"x" STORED
		exec 5<&-
		;;
	buckets)
		kv_update 1 || fail "$mode: no update"
		for i in 1 2 3 17 30; do
			expect 3 "get k$i" END
		done
		expect 3 "set k1 0 0 1"$'\r\n'"x" STORED
		expect 4 "get k1" "VALUE k1 0 1" x END
		grep -q "chain cut there" "$KV_LOG" || fail "$mode: no chain cut"
		;;
	conn-*)
		kv_update 1 || fail "$mode: no update"
		grep -q "connection [0-9]* lost in the update" "$KV_LOG" || fail "$mode: not dropped"
		# The first accepted connection (A) was damaged; B is kept.
		expect 4 "get k30" "VALUE k30 0 2" v0 END
		;;
	esac
	exec 3<&- 4<&-
	echo "$mode: handled"
	grep -E "refusing|lost|corrupt|check out|chain cut" "$KV_LOG"
	kv_cleanup
	KV_PID=
done
echo "corrupt: every damaged handover refused or cut, the service kept serving"
