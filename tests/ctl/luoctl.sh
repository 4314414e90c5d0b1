#!/bin/sh
# Every luoctl command against a real service (the counter example serving
# its control socket), including a refused peer (another uid) and a
# service that dies in the middle of a command.
#
#   luoctl.sh LUOCTL COUNTER_V1 COUNTER_V2 FAKE_SERVICE COMPLETION
set -u
LUOCTL=$1
V1=$2
V2=$3
FAKE=$4
COMPLETION=$5
dir=$(mktemp -d /tmp/luoctl-test.XXXXXX)
sock=$dir/counter.sock
pids=""
trap 'for p in $pids; do kill -9 $p 2>/dev/null; done; rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"

start_counter() { # SOCKET LOG [counter options]
	s=$1
	log=$2
	shift 2
	"$V1" --size 4 --control-path "$s" "$@" >"$log" 2>&1 &
	pid=$!
	pids="$pids $pid"
	wait_socket "$s"
	# The file appears at bind(), the service answers after listen().
	for _ in $(seq 100); do
		"$LUOCTL" -S "$s" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
}

state_is() {
	"$LUOCTL" -S "$sock" --json status | grep -q "\"state\": \"$1\"" ||
		fail "state is not $1: $("$LUOCTL" -S "$sock" status 2>&1 | grep state)"
}

# --- usage and reachability ---
run 2 "no service named" -- status
run 3 "nothing at the path" -- -S "$dir/none.sock" status
expect_out "no service listens at $dir/none.sock" "unreachable message"
run 2 "unknown command" -- -S "$dir/none.sock" frobnicate
expect_out "unknown command 'frobnicate'" "unknown command named"
run 2 "wrong arguments" -- -S "$dir/none.sock" status extra
expect_out "usage: luoctl .* status" "wrong arguments: that command's usage"
run 0 "--version" -- --version
expect_out "^luoctl [0-9][0-9.]* (control protocol 1)" "--version"
run 2 "--timeout abc" -- -S "$dir/none.sock" --timeout abc status
expect_out "number of seconds greater than 0, not 'abc'" "--timeout abc"
run 2 "--timeout 0" -- -S "$dir/none.sock" --timeout 0 status
run 2 "--timeout -1" -- -S "$dir/none.sock" --timeout -1 status

# --- services that answer badly ---
fake() { # MODE: a fake service on $dir/fake.sock
	"$FAKE" "$1" "$dir/fake.sock" &
	pids="$pids $!"
	wait_socket "$dir/fake.sock"
}
fake drip
# One byte every 0.5 s: the whole command still ends at --timeout.
run 6 "a reply dripping a byte at a time" -- -S "$dir/fake.sock" --timeout 3 status
expect_out "no answer from service .* in time" "drip: timeout message"
rm -f "$dir/fake.sock"
fake bigline
run 5 "a 70 MiB reply line" -- -S "$dir/fake.sock" status
expect_out "longer than 67108864 bytes" "over-long line: capped"
rm -f "$dir/fake.sock"
fake again
# An EAGAIN answer means the request was not run: sent again, once more
# connected (a luoctl that gives up exits 1).
run 0 "a request answered EAGAIN is sent again" -- -S "$dir/fake.sock" status
expect_out "pid          2" "EAGAIN: the second answer shown"
rm -f "$dir/fake.sock"
fake sparse
run 0 "a status without its fields" -- -S "$dir/fake.sock" status
expect_no "(null)" "missing fields"
expect_out "pid          -" "missing field shown as -"
rm -f "$dir/fake.sock"

start_counter "$sock" "$dir/counter.log" --control test --no-finish
cpid=$pid

# --- status, listings ---
run 0 "status" -- -S "$sock" status
expect_out "state        normal" "status"
expect_out "live updates 0" "status counter"
run 0 "status --json" -- -S "$sock" --json status
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["state"]=="normal" and r["num"]==0 and r["name"]=="test"' "$dir/out" ||
	fail "status --json is not the expected JSON"
run 0 "sessions" -- -S "$sock" sessions
expect_out "luo.control  outgoing" "sessions lists the control session"
run 0 "files" -- -S "$sock" files
expect_out "socket-v1" "files lists the listener"
run 0 "files --json" -- -S "$sock" --json files
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r[0]["handler"]=="socket-v1"' "$dir/out" ||
	fail "files --json"
run 0 "subsystems" -- -S "$sock" subsystems
expect_out "counter" "subsystems lists the counter"

run 0 "devices" -- -S "$sock" devices
expect_out "counter/buffer" "devices lists the counter's devices"
run 1 "request a device without live update callbacks" -- -S "$sock" device counter/stats requested 1
expect_out "without live update callbacks" "refused request says why"
run 1 "request a missing device" -- -S "$sock" device counter/none requested 1
expect_out "no registered device" "missing device"
run 0 "request a device" -- -S "$sock" device counter/buffer requested 1
run 0 "devices --json" -- -S "$sock" --json devices
python3 -c '
import json, sys
d = {r["path"]: r for r in json.load(open(sys.argv[1]))}
assert d["counter/buffer"]["requested"] is True, d
assert d["counter/stats"]["requested"] is False, d
' "$dir/out" || fail "devices --json after a request: $(cat "$dir/out")"

# --- the state machine by hand ---
run 1 "dump in normal" -- -S "$sock" dump
expect_out "no outgoing handover" "dump in normal"
run 1 "freeze in normal" -- -S "$sock" freeze
expect_out "prepare' first" "freeze in normal says what to do"
run 0 "prepare" -- -S "$sock" prepare
state_is prepared
run 1 "prepare twice" -- -S "$sock" prepare
expect_out "in state prepared" "prepare twice"
run 0 "dump outgoing" -- -S "$sock" dump --blob LUO
if command -v dtc >/dev/null; then
	dtc -I dts -O dtb -o "$dir/luo.dtb" "$dir/out" 2>"$dir/dtc.err" ||
		fail "dtc cannot read luoctl's dump: $(cat "$dir/dtc.err")"
fi
expect_out 'compatible = "luo-v2"' "dump shows the LUO FDT"
run 0 "freeze" -- -S "$sock" freeze
state_is frozen
run 1 "finish while frozen" -- -S "$sock" finish
expect_out "luoctl -s test cancel" "finish while frozen names the way out"
run 0 "cancel" -- -S "$sock" cancel
state_is normal

# --- updates ---
run 2 "update to a missing file" -- -S "$sock" update "$dir/missing"
printf 'data\n' >"$dir/plain"
chmod 0644 "$dir/plain"
run 1 "update to a non-executable" -- -S "$sock" update "$dir/plain"
expect_out "cannot execute" "non-executable"
printf 'not a program\n' >"$dir/garbage"
chmod +x "$dir/garbage"
run 1 "update to a bad executable" -- -S "$sock" update "$dir/garbage"
expect_out "old image keeps serving" "exec failure"
state_is normal

run 0 "update" -- -S "$sock" update "$V2"
for st in prepare freeze exec boot ready; do
	expect_out "  $st " "update prints stage $st"
done
expect_out "live update #1" "update reports the counter"
kill -0 "$cpid" || fail "the service is gone after the update"
grep -q "counter v2: pid $cpid, live update #1" "$dir/counter.log" ||
	fail "the new image did not take over: $(cat "$dir/counter.log")"
state_is updated
grep -q "device counter/buffer reclaimed" "$dir/counter.log" ||
	fail "the requested device was not reclaimed: $(cat "$dir/counter.log")"
run 0 "devices after update" -- -S "$sock" devices
grep -E "^counter/buffer +counter +buffer +yes +(yes|no) +yes +yes" "$dir/out" >/dev/null ||
	fail "devices after update: $(cat "$dir/out")"
run 1 "device request while updated" -- -S "$sock" device counter/buffer requested 0
expect_out "in state updated" "device request outside normal"
run 0 "sessions after update" -- -S "$sock" sessions
expect_out "luo.control  incoming" "incoming control session listed"
run 0 "dump incoming" -- -S "$sock" dump incoming --blob LUO
expect_out 'exec-ns' "incoming dump"
run 0 "finish" -- -S "$sock" finish
state_is normal
run 0 "status after" -- -S "$sock" status
expect_out "live updates 1" "status counter after update"
expect_out "blackout" "status shows the blackout"

run 0 "update --finish with arguments" -- -S "$sock" update --finish "$V1" \
	--size 4 --control test --control-path "$sock" --no-finish
expect_out "finish done" "update --finish finished"
state_is normal
run 0 "status after two" -- -S "$sock" status
expect_out "live updates 2" "two updates"

# --- a service that dies in the middle of a command ---
run 5 "update into a program that exits" -- -S "$sock" update /bin/true
expect_out "never answered" "dead service message"
expect_out "the service is gone" "dead service: says it is gone"
expect_no "status'" "dead service: no status to suggest"
sleep 0.2
kill -0 "$cpid" 2>/dev/null && fail "the service should be gone"

# complete_s USER-ARGS...: what bash completes for "luoctl -s k", run as
# "setpriv USER-ARGS" (or as is, with none).
complete_s() {
	"$@" bash -c '
		_init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
		complete() { :; }
		. "$1"
		COMP_WORDS=(luoctl -s "$2"); COMP_CWORD=2
		_luoctl
		echo "${COMPREPLY[*]}"' sh "$COMPLETION" "$cprefix"
}

# --- a refused peer: another uid ---
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	udir=$dir/uid
	chmod 0755 "$dir"
	mkdir -m 0777 "$udir"
	usock=$udir/c.sock
	setpriv --reuid 12345 --regid 12345 --clear-groups \
		"$V1" --size 4 --control-path "$usock" >"$dir/uid.log" 2>&1 &
	pids="$pids $!"
	wait_socket "$usock"
	# Let anyone connect: the refusal must come from SO_PEERCRED.
	chmod 0666 "$usock"
	setpriv --reuid 23456 --regid 23456 --clear-groups \
		"$LUOCTL" -S "$usock" status >"$dir/out" 2>&1
	got=$?
	[ "$got" -eq 4 ] || fail "other uid: exit $got, expected 4: $(cat "$dir/out")"
	expect_out "uid 23456 may not control" "other uid refused"
	grep -q "refused a peer with uid 23456" "$dir/uid.log" ||
		fail "the refusal was not logged: $(cat "$dir/uid.log")"
	setpriv --reuid 12345 --regid 12345 --clear-groups \
		"$LUOCTL" -S "$usock" status >"$dir/out" 2>&1 ||
		fail "the service's own uid was refused: $(cat "$dir/out")"
	run 0 "root is served" -- -S "$usock" status
	# Without the 0666: the socket is 0600, connect() is refused.
	chmod 0600 "$usock"
	setpriv --reuid 23456 --regid 23456 --clear-groups \
		"$LUOCTL" -S "$usock" status >"$dir/out" 2>&1
	got=$?
	[ "$got" -eq 4 ] || fail "permission denied: exit $got, expected 4: $(cat "$dir/out")"
	expect_out "permission denied" "a permission problem says so"
	expect_no "is it running" "a permission problem is not a dead service"

	# Another user's service on its default path (no XDG_RUNTIME_DIR):
	# root finds it by name, and lists it.
	uname=luoctl-test-$$
	env -u XDG_RUNTIME_DIR setpriv --reuid 12345 --regid 12345 \
		--clear-groups "$V1" --size 4 --control "$uname" \
		>"$dir/uname.log" 2>&1 &
	upid=$!
	pids="$pids $upid"
	wait_socket "/tmp/luo-12345/$uname.sock"
	run 0 "root: -s finds another user's service" -- -s "$uname" status
	expect_out "service      $uname" "root -s NAME of uid 12345"
	# Bash completes the name, for that user (its /tmp/luo-UID) and root.
	# The script is read from a copy: the source tree may sit below a
	# directory that uid 12345 cannot enter.
	cprefix=luoctl-te
	cp "$COMPLETION" "$dir/completion" && chmod 0644 "$dir/completion" &&
		COMPLETION=$dir/completion
	got=$(complete_s env -u XDG_RUNTIME_DIR setpriv --reuid 12345 \
		--regid 12345 --clear-groups)
	case " $got " in *" $uname "*) ;; *) fail "completion as uid 12345: '$got'" ;; esac
	got=$(complete_s)
	case " $got " in *" $uname "*) ;; *) fail "completion as root: '$got'" ;; esac
	# A stale socket file: listed with --all only.
	python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
		"/run/luo/luoctl-stale-$$.sock" 2>/dev/null
	run 0 "list --all" -- list --all
	expect_out "luoctl-stale-$$ .*not running" "list --all shows a stale socket"
	run 0 "list" -- list
	expect_no "luoctl-stale-$$" "list leaves stale sockets out"
	rm -f "/run/luo/luoctl-stale-$$.sock"
	grep -E "^$uname +$upid +normal +0 +12345 +/tmp/luo-12345/$uname.sock" \
		"$dir/out" >/dev/null || fail "list lacks $uname: $(cat "$dir/out")"
	kill "$upid"
else
	echo "refused-peer part skipped: needs root and setpriv"
fi

# --- stop: SIGTERM, back once the service has ended and been reaped ---
start_counter "$dir/stop.sock" "$dir/stop.log"
spid=$pid
run 0 "stop" -- -S "$dir/stop.sock" --json --timeout 20 stop
expect_out "\"command\": \"stop\", \"pid\": $spid, \"ok\": true" "stop --json"
kill -0 "$spid" 2>/dev/null && fail "stop returned before pid $spid had ended and been reaped"
grep -q "counter v1: pid $spid stopped" "$dir/stop.log" ||
	fail "the counter did not end by its SIGTERM handler: $(cat "$dir/stop.log")"
run 3 "stop once stopped" -- -S "$dir/stop.sock" stop

if [ "$failures" -ne 0 ]; then
	echo "luoctl: $failures failures"
	exit 1
fi
echo "luoctl: all checks passed"
