#!/bin/bash
# Spawn-mode updates into v2 builds that fail on purpose, under load from
# kvload and (when installed) memcaslap: each rolls back, luoctl exits 7
# with the right reason, the old PID serves on, no connection is dropped
# (kvload's connections and one held here stay open, 0 errors) and every
# key checks out afterwards.  A client that connected during the trial
# (accepted by the new image) is served by the old one after the
# rollback, with its data.  Then good and bad updates alternate.
# usage: rollback.sh KVCACHE KVCACHE_V2 KVLOAD LUOCTL FAULTDIR [REPEAT [ALTERNATIONS]]
#   FAULTDIR holds the kvcache-fault-* builds.
#   ROLLBACK_RECORD=FILE: one line per update and per load appended there
#   (bench/kvcache/run-rollback-stress.sh makes its figures from them).
set -u
. "$(dirname "$0")/lib.sh"
LOAD_PID= SLAP_PID=
cleanup() {
	local p
	# A bad build that committed by mistake serves under another pid.
	p=$(pid_of 2>/dev/null)
	[ -n "$p" ] && [ "$p" != "$KV_PID" ] && kill -KILL "$p" 2>/dev/null
	[ -n "$LOAD_PID" ] && kill -KILL "$LOAD_PID" 2>/dev/null
	[ -n "$SLAP_PID" ] && kill -KILL "$SLAP_PID" 2>/dev/null
	kv_cleanup
}
trap cleanup EXIT
V1=$(realpath "$1") V2=$(realpath "$2") LOAD=$3 LUOCTL=$4 FAULTS=$5
REPEAT=${6:-3} ALT=${7:-10}
NPOP=5000

kv_start "$V1" -m 1024 || fail "kvcache did not start"
NAME=kvtest-$$-$KV_PORT
"$LOAD" -p "$KV_PORT" --populate -x pop -n $NPOP -c 10 -P 16 >/dev/null ||
	fail "populate"
exec 3<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "connect"

held() { # WHAT: the connection held here still answers
	local v
	printf 'set held 0 0 %d\r\n%s\r\n' ${#1} "$1" >&3
	read -r -t 10 v <&3 || fail "$1: the held connection does not answer"
	[ "${v%$'\r'}" = STORED ] || fail "$1: set on the held connection: '$v'"
}

load_start() { # SECONDS: kvload until stopped, memcaslap for SECONDS
	"$LOAD" -p "$KV_PORT" -c 50 -P 4 -n 20000 -t 0 >"$KV_DIR/load.out" 2>&1 &
	LOAD_PID=$!
	if command -v memcaslap >/dev/null; then
		timeout $(($1 + 30)) memcaslap -s 127.0.0.1:"$KV_PORT" -T 1 -c 8 \
			-t "$1s" -v 0.1 -b >"$KV_DIR/slap.out" 2>&1 &
		SLAP_PID=$!
	fi
	sleep 0.5
}

load_check() { # WHAT: kvload and memcaslap clean, the populated keys there
	if [ -n "$SLAP_PID" ]; then
		wait "$SLAP_PID" || fail "$1: memcaslap: $(cat "$KV_DIR/slap.out")"
		SLAP_PID=
		kv_slap_verified "$1: "
	fi
	kill -TERM "$LOAD_PID"
	wait "$LOAD_PID"
	local rc=$?
	LOAD_PID=
	grep kvload: "$KV_DIR/load.out"
	record load "$1" "$(grep -o 'mode=load .*' "$KV_DIR/load.out" | tail -1)" \
		"$(grep -E '^(get_misses|verify_misses|verify_failed):' "$KV_DIR/slap.out" 2>/dev/null | tr '\n' ' ')"
	[ $rc = 0 ] || fail "$1: kvload: errors or dropped connections: $(cat "$KV_DIR/load.out")"
	grep -q " errors=0 mismatches=0 misses=0 conn_errors=0 timeouts=0" "$KV_DIR/load.out" ||
		fail "$1: kvload: $(cat "$KV_DIR/load.out")"
	"$LOAD" -p "$KV_PORT" --verify -x pop -n $NPOP -c 10 -P 16 >"$KV_DIR/verify.out" 2>&1 ||
		fail "$1: populated keys lost or changed: $(cat "$KV_DIR/verify.out")"
	held "$1"
	echo "ok: $1: kvload and memcaslap clean, $NPOP keys verified"
}

record() { # FIELDS...: a line for ROLLBACK_RECORD, if asked for
	[ -n "${ROLLBACK_RECORD:-}" ] || return 0
	local IFS='|'
	echo "$*" >>"$ROLLBACK_RECORD"
}

record_update() { # WHAT CODE: the outcome luoctl printed into $KV_DIR/out
	local group reason ms
	group=$(sed 's/ (#[0-9]*)$//; s/^alternating #[0-9]* (\(.*\))$/alternating, bad (\1)/' <<<"$1")
	reason=$(sed -n 's/.*rolled back (\([a-z]*\)).*/\1/p' "$KV_DIR/out" | head -1)
	ms=$(sed -n 's/.*; rollback \([0-9.]*\) ms.*/\1/p' "$KV_DIR/out" | head -1)
	record update "$group" "$2" "${reason:-none}" "${ms:--}"
}

pid_of() { "$LUOCTL" -s "$NAME" status | awk '$1 == "pid" { print $2 }'; }

expect_rollback() { # WHAT REASON CODE: after a luoctl update into $KV_DIR/out
	record_update "$1" "$3"
	[ "$3" -eq 7 ] || { cat "$KV_DIR/out"; fail "$1: luoctl exit $3, expected 7 (rolled back)"; }
	grep -q "rolled back ($2" "$KV_DIR/out" || { cat "$KV_DIR/out"; fail "$1: not '$2'"; }
	"$LUOCTL" -s "$NAME" --json status >"$KV_DIR/status.json" 2>&1 ||
		fail "$1: status --json: $(cat "$KV_DIR/status.json")"
	[ "$(pid_of)" = "$KV_PID" ] || fail "$1: pid '$(pid_of)', expected $KV_PID"
	kill -0 "$KV_PID" || fail "$1: the old image is gone"
	held "$1"
}

# bad_update WHAT REASON luoctl-update-args...
bad_update() {
	local what=$1 reason=$2 code
	shift 2
	timeout 60 "$LUOCTL" -s "$NAME" update --mode spawn "$@" >"$KV_DIR/out" 2>&1
	code=$?
	expect_rollback "$what" "$reason" $code
}

# adopted_v2: the pid of the v2 that has adopted (said so in the log),
# waited for up to 10 s; empty if none.
adopted_v2() {
	local pid
	for _ in $(seq 200); do
		pid=$(pgrep -P "$KV_PID" -f "$V2" | head -1)
		[ -n "$pid" ] && grep -q "kvcache v2: pid $pid" "$KV_LOG" && {
			echo "$pid"
			return
		}
		sleep 0.05
	done
}

# killed_update WHAT: a v2 killed by the operator during its trial
killed_update() {
	local code new=
	timeout 60 "$LUOCTL" -s "$NAME" update --mode spawn --trial 60s --deadline 3s "$V2" >"$KV_DIR/out" 2>&1 &
	local upd=$!
	new=$(adopted_v2)
	[ -n "$new" ] || fail "$1: no v2 adopted"
	sleep 0.3 # serving the load
	kill -KILL "$new"
	wait $upd
	code=$?
	expect_rollback "$1" killed $code
}

conn_pid() { # FD: the pid that answers 'stats' on that connection
	local line pid=
	printf 'stats\r\n' >&"$1"
	while read -r -t 10 line <&"$1"; do
		line=${line%$'\r'}
		case $line in
		"STAT pid "*) pid=${line#STAT pid } ;;
		END) break ;;
		esac
	done
	echo "$pid"
}

# trial_client WHAT REASON kill|rollback N: a client connects during the
# trial (only the new image accepts then) and stores a key there; another
# connects and hangs up.  After the rollback the old image serves the
# first one, with its key; the second does not come back.
trial_client() {
	local what=$1 reason=$2 how=$3 code new= v k=trial-$4-$RANDOM
	timeout 60 "$LUOCTL" -s "$NAME" update --mode spawn --trial 60s --deadline 3s "$V2" >"$KV_DIR/out" 2>&1 &
	local upd=$!
	new=$(adopted_v2)
	[ -n "$new" ] || fail "$what: no v2 adopted"
	exec 5<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "$what: connect in the trial"
	printf 'version\r\n' >&5
	read -r -t 10 v <&5 || fail "$what: the client that hangs up was not answered"
	exec 5>&-
	exec 4<>/dev/tcp/127.0.0.1/"$KV_PORT" || fail "$what: connect in the trial"
	[ "$(conn_pid 4)" = "$new" ] || fail "$what: the client connected in the trial is not served by v2 ($new)"
	printf 'set %s 0 0 5\r\nvalue\r\n' "$k" >&4
	read -r -t 10 v <&4
	[ "${v%$'\r'}" = STORED ] || fail "$what: set in the trial: '$v'"
	if [ "$how" = kill ]; then
		kill -KILL "$new"
	else
		"$LUOCTL" -s "$NAME" rollback "$what" >/dev/null || fail "$what: luoctl rollback"
	fi
	wait $upd
	code=$?
	expect_rollback "$what" "$reason" $code
	[ "$(conn_pid 4)" = "$KV_PID" ] ||
		fail "$what: the client accepted by v2 is not served by the old image after the rollback"
	printf 'get %s\r\n' "$k" >&4
	read -r -t 10 v <&4
	[ "${v%$'\r'}" = "VALUE $k 0 5" ] || fail "$what: its key after the rollback: '$v'"
	read -r -t 10 v <&4 && read -r -t 10 v <&4
	printf 'set %s 0 0 3\r\nnew\r\n' "$k" >&4
	read -r -t 10 v <&4
	[ "${v%$'\r'}" = STORED ] || fail "$what: set after the rollback: '$v'"
	exec 4>&-
	# Under load, clients that reconnected in the trial come back too.
	local n want="(1 accepted by the new image)"
	n=$(grep "^kvcache v1: pid .* update rolled back" "$KV_LOG" | tail -1)
	if [ -z "$LOAD_PID" ]; then
		grep -qF "$want" <<<"$n" || fail "$what: $n; expected $want"
	else
		grep -q "([1-9][0-9]* accepted by the new image)" <<<"$n" ||
			fail "$what: $n; expected at least 1 accepted by the new image"
	fi
	echo "ok: $what: the client v2 accepted is served by the old image, its key there"
}

good_update() { # TARGET
	local new
	timeout 60 "$LUOCTL" -s "$NAME" update --mode spawn --trial 1s --deadline 3s "$1" >"$KV_DIR/out" 2>&1 ||
		{ cat "$KV_DIR/out"; fail "good update into $1 did not commit"; }
	record update "alternating, good" 0 committed \
		"$(sed -n 's/.*blackout \([0-9.]*\) ms.*/\1/p' "$KV_DIR/out" | head -1)"
	new=$(pid_of)
	[ -n "$new" ] && [ "$new" != "$KV_PID" ] || fail "after the commit pid '$new'"
	for _ in $(seq 50); do
		kill -0 "$KV_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$KV_PID" 2>/dev/null && fail "the old image $KV_PID still runs after the commit"
	KV_PID=$new
	held "good update into $1"
}

T="--trial 2s --deadline 3s"
# name | seconds of load per repetition | reason | update arguments
cases=(
	"exit 3 at start|1|exited|$T $FAULTS/kvcache-fault-exit-start"
	"SIGSEGV at start|1|killed|$T $FAULTS/kvcache-fault-segv-start"
	"SIGSEGV on the 1000th request|2|killed|$T $FAULTS/kvcache-fault-segv-request"
	"refuses the handover|1|requested|$T $FAULTS/kvcache-fault-refuse"
	"/bin/false|1|exited|$T /bin/false"
	"fails its health probe|1|health|$T $FAULTS/kvcache-fault-health"
	"hangs before luo_init()|4|deadline|$T $FAULTS/kvcache-fault-hang-before-init"
	"hangs after adopting|6|deadline|$T $FAULTS/kvcache-fault-hang-adopted"
	"/bin/sleep 100|4|deadline|$T /bin/sleep 100"
)
for c in "${cases[@]}"; do
	IFS='|' read -r what secs reason args <<<"$c"
	load_start $((secs * REPEAT + 2))
	for r in $(seq "$REPEAT"); do
		# shellcheck disable=SC2086
		bad_update "$what (#$r)" "$reason" $args
	done
	load_check "$what, $REPEAT times"
done

load_start $((2 * REPEAT + 2))
for r in $(seq "$REPEAT"); do
	killed_update "v2 SIGKILLed in its trial (#$r)"
done
load_check "v2 SIGKILLed in its trial, $REPEAT times"

# Quiet first: exactly the one client comes back, not the one that hung up.
trial_client "client accepted by a v2 SIGKILLed in its trial, no load" killed kill 0
trial_client "client accepted by a v2 rolled back by luoctl, no load" requested rollback 0
load_start $((2 * REPEAT + 2))
for r in $(seq "$REPEAT"); do
	trial_client "client accepted by a v2 SIGKILLed in its trial (#$r)" killed kill "$r"
	trial_client "client accepted by a v2 rolled back by luoctl (#$r)" requested rollback "$r"
done
load_check "clients accepted in the trial, $REPEAT times"

# Good and bad in turn, under one load.
bad=("exited|$T $FAULTS/kvcache-fault-exit-start"
	"killed|$T $FAULTS/kvcache-fault-segv-request"
	"health|$T $FAULTS/kvcache-fault-health"
	"requested|$T $FAULTS/kvcache-fault-refuse"
	"exited|$T /bin/false")
load_start $((ALT * 2 + 2))
target=$V2
for i in $(seq "$ALT"); do
	if [ $((i % 2)) = 1 ]; then
		good_update "$target"
		[ "$target" = "$V2" ] && target=$V1 || target=$V2
	else
		IFS='|' read -r reason args <<<"${bad[$(((i / 2) % ${#bad[@]}))]}"
		# shellcheck disable=SC2086
		bad_update "alternating #$i ($reason)" "$reason" $args
	fi
done
load_check "$ALT alternating good and bad updates"
grep "rolled back\|live update #" "$KV_LOG" | tail -5
echo "rollback: every bad update rolled back with every key and connection"
