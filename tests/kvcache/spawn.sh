#!/bin/bash
# kvcache updated by luoctl in spawn mode: new images that fail
# (/bin/false, /bin/sleep 100, a failing health command, v2 killed in its
# trial) roll back with every key and both client connections intact; a
# good v2 commits after its trial and serves the same keys on the same
# connections.  The control socket runs in kvcache's event loop, so the
# transaction parks that loop in the old image until it ends.
# usage: spawn.sh KVCACHE KVCACHE_V2 LUOCTL
set -u
. "$(dirname "$0")/lib.sh"
trap kv_cleanup EXIT
BIN=$1
V2=$2
LUOCTL=$3
N=200

kv_start "$BIN" || fail "kvcache did not start"
NAME=kvtest-$$-$KV_PORT
exec 3<>/dev/tcp/127.0.0.1/"$KV_PORT" 4<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect"

ask() { # FD REQUEST: first answer line in $line
	printf '%s\r\n' "$2" >&"$1"
	read -r -t 10 line <&"$1" || fail "no answer to '$2'"
	line=${line%$'\r'}
}

for i in $(seq $N); do
	ask 3 "set k$i 0 0 ${#i}"$'\r\n'"$i"
	[ "$line" = STORED ] || fail "set k$i: $line"
done

verify() { # WHAT: every key, on both connections
	local fd v
	for i in $(seq $N); do
		fd=$((3 + i % 2))
		ask $fd "get k$i"
		[ "$line" = "VALUE k$i 0 ${#i}" ] || fail "$1: get k$i: '$line'"
		read -r -t 5 v <&$fd
		[ "${v%$'\r'}" = "$i" ] || fail "$1: k$i is '$v'"
		read -r -t 5 v <&$fd
		[ "${v%$'\r'}" = END ] || fail "$1: k$i: no END"
	done
	echo "ok: $1: $N keys on both connections"
}

pid_of() { "$LUOCTL" -s "$NAME" status | awk '$1 == "pid" { print $2 }'; }

rollback() { # WHAT REASON luoctl update args...
	local what=$1 reason=$2 code
	shift 2
	"$LUOCTL" -s "$NAME" update "$@" >"$KV_DIR/out" 2>&1
	code=$?
	[ $code -eq 7 ] || { cat "$KV_DIR/out"; fail "$what: exit $code, expected 7"; }
	grep -q "rolled back ($reason)" "$KV_DIR/out" || { cat "$KV_DIR/out"; fail "$what: not '$reason'"; }
	[ "$(pid_of)" = "$KV_PID" ] || fail "$what: pid $(pid_of), expected $KV_PID"
	verify "$what"
}

rollback "/bin/false" exited --mode spawn /bin/false
rollback "/bin/sleep 100" deadline --mode spawn --deadline 500ms /bin/sleep 100
rollback "failing health command" health --trial 2s --health false "$V2"

# v2 killed during its trial.
"$LUOCTL" -s "$NAME" update --trial 60s --health true "$V2" >"$KV_DIR/out" 2>&1 &
upd=$!
for _ in $(seq 200); do
	new=$(pgrep -P "$KV_PID" -f "$V2" | head -1)
	[ -n "$new" ] && grep -q "kvcache v2: pid $new" "$KV_LOG" && break
	sleep 0.05
done
[ -n "$new" ] || fail "no v2 started"
kill -KILL "$new"
wait $upd
code=$?
[ $code -eq 7 ] || { cat "$KV_DIR/out"; fail "v2 killed in its trial: exit $code"; }
grep -q "rolled back (killed)" "$KV_DIR/out" || { cat "$KV_DIR/out"; fail "v2 killed: reason"; }
verify "v2 killed in its trial"

"$LUOCTL" -s "$NAME" update --trial 500ms --health true "$V2" >"$KV_DIR/out" 2>&1 ||
	{ cat "$KV_DIR/out"; fail "good v2: did not commit"; }
new=$(pid_of)
[ -n "$new" ] && [ "$new" != "$KV_PID" ] || fail "after the commit pid '$new'"
kill -0 "$KV_PID" 2>/dev/null && fail "the old image $KV_PID is still running"
grep -q "kvcache v2: pid $new, live update #1 from v1: $N items" "$KV_LOG" || fail "v2 did not adopt the $N items"
KV_PID=$new
verify "good v2 committed"
echo "spawn: every failed v2 rolled back with everything; the good one committed"
