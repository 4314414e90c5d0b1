#!/bin/bash
# Driven by luoctl: while an update is prepared kvcache keeps serving its
# clients but accepts nobody; a client connecting then waits in the listen
# backlog (never refused) and is served after a cancel, or by the new image
# after the update (SIGUSR1 while prepared goes on from there).  Clients that leave while prepared are let go (the
# sweep after a cancel, the new image after an update): the session holds
# exactly the listener and the open clients afterwards.
# usage: prepared.sh KVCACHE KVCACHE_V2 LUOCTL
set -u
. "$(dirname "$0")/lib.sh"
trap kv_cleanup EXIT

V1=$1 V2=$2 LUOCTL=$3
kv_start "$V1" || fail "kvcache did not start"
NAME=kvtest-$$-$KV_PORT
ctl() { "$LUOCTL" -s "$NAME" "$@" || fail "luoctl $*"; }
files() { # files in the kvcache session
	"$LUOCTL" -s "$NAME" sessions | awk '$1 == "kvcache" { print $3 }'
}
ask() { # ask FD REQUEST EXPECTED-LINE
	printf '%s\r\n' "$2" >&"$1"
	read -r -t 5 line <&"$1" || fail "no answer to '$2'"
	[ "$line" = "$3"$'\r' ] || fail "'$2': got '$line', wanted '$3'"
}

exec 3<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect A"
exec 4<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect B"
printf 'set k 0 0 2\r\nhi\r\n' >&3
read -r -t 5 line <&3 && [ "$line" = $'STORED\r' ] || fail "set: $line"
ask 4 "version" "VERSION 1.6.0-kvcache-v1"
[ "$(files)" = 3 ] || fail "session should hold 3 files, has $(files)"

ctl prepare >/dev/null
ask 3 "get k" "VALUE k 0 2" # still serving while prepared
read -r -t 1 line <&3 && read -r -t 1 line <&3 || fail "rest of get"
exec 4>&- # B leaves while prepared
exec 5<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect C while prepared was refused"
printf 'version\r\n' >&5
read -r -t 0.5 line <&5 && fail "C was served while prepared: $line"
ctl cancel >/dev/null
read -r -t 5 line <&5 || fail "C not served after the cancel"
[ "$line" = $'VERSION 1.6.0-kvcache-v1\r' ] || fail "C: $line"
ask 3 "version" "VERSION 1.6.0-kvcache-v1" # a loop turn: the sweep ran
[ "$(files)" = 3 ] || fail "after cancel: session should hold 3 files (listener, A, C), has $(files)"

ctl prepare >/dev/null
exec 6<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect D while prepared was refused"
printf 'get k\r\n' >&6
exec 3>&- # A leaves while prepared
kill -USR1 "$KV_PID" # from prepared: freeze and exec
kv_wait_update 1 || fail "update"
for want in 'VALUE k 0 2' hi END; do
	read -r -t 5 line <&6 || fail "D not served by the new image"
	[ "$line" = "$want"$'\r' ] || fail "D: $line"
done
ask 5 "version" "VERSION 1.6.0-kvcache-v1"
[ "$(files)" = 3 ] || fail "after the update: session should hold 3 files (listener, C, D), has $(files)"
ctl update "$V2" >/dev/null
kv_wait_update 2 || fail "update through luoctl"
ask 5 "version" "VERSION 1.6.0-kvcache-v2"
[ "$(files)" = 3 ] || fail "after the update: session should hold 3 files (listener, C, D), has $(files)"
exec 5>&- 6>&-
cat "$KV_LOG"
echo "prepared: served while prepared, nobody refused, leavers let go"
