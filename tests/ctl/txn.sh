#!/bin/sh
# luoctl drives updates as transactions against the counter example:
# spawn mode commits; a trial shows in status and ends with 'commit' or
# 'rollback'; a failing health command, /bin/false and /bin/sleep 100 roll
# back (exit 7) with the old image serving; bad input gets clear errors.
#
#   txn.sh LUOCTL COUNTER_V1 COUNTER_V2 [EXIT_DELAY_SO]
#   EXIT_DELAY_SO (tests/ctl/exit_delay.c): preloaded into the counter, it
#   makes each image take 700 ms to exit.
set -u
LUOCTL=$1
V1=$2
V2=$3
DELAY_SO=${4:-}
dir=$(mktemp -d /tmp/luoctl-txn.XXXXXX)
sock=$dir/counter.sock
trap 'pkill -9 -f "counter.* --control-path $sock" 2>/dev/null; rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"

# Every command of run() goes to the counter's socket.
luoctl_cmd() {
	"$LUOCTL" -S "$sock" "$@"
}

pid_now() {
	"$LUOCTL" -S "$sock" status 2>/dev/null | awk '$1 == "pid" { print $2 }'
}

# Wait until status shows a trial (the new image serves the socket).
wait_trial() {
	for _ in $(seq 200); do
		"$LUOCTL" -S "$sock" status >"$dir/st" 2>/dev/null &&
			grep -q '^trial' "$dir/st" && return 0
		sleep 0.05
	done
	fail "no trial shown in status"
	return 1
}

if [ -n "$DELAY_SO" ]; then
	# ASan wants its runtime first; the shim only wraps _exit().
	LD_PRELOAD=$DELAY_SO EXIT_DELAY_MS=700 ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
		"$V1" --size 4 --control-path "$sock" >"$dir/log" 2>&1 &
else
	"$V1" --size 4 --control-path "$sock" >"$dir/log" 2>&1 &
fi
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
p0=$(pid_now)

run 0 "spawn mode commits" -- update --mode spawn "$V2"
expect_out "committed: pid" "spawn mode commits"
p1=$(pid_now)
[ -n "$p1" ] && [ "$p1" != "$p0" ] || fail "spawn commit: pid $p0 -> '$p1'"
# luoctl reports a spawn commit once the old image has exited (gone, or
# a zombie of this shell); the old image here takes 700 ms to exit
# (EXIT_DELAY_SO), so an early report shows.
gone() {
	! kill -0 "$1" 2>/dev/null || [ "$(cut -d' ' -f3 /proc/"$1"/stat 2>/dev/null)" = Z ]
}
gone "$p0" || fail "luoctl reported the commit while the old image $p0 still runs"
grep -q "counter v2: pid $p1, live update #1 from v1: counter=1, 4 MiB verified" "$dir/log" ||
	fail "the new image did not verify the data"

# A trial shows in status; 'commit' ends it early.
"$LUOCTL" -S "$sock" update --trial 60s "$V1" >"$dir/upd" 2>&1 &
upd=$!
wait_trial && {
	grep -q "trial        running: old image pid $p1 kept" "$dir/st" ||
		fail "status during the trial: $(cat "$dir/st")"
	run 1 "update during a trial is refused" -- update --mode spawn "$V2"
	expect_out "still in its trial" "update during a trial"
	run 0 "commit ends the trial" -- commit
	expect_out "committed: pid" "commit"
	gone "$p1" || fail "luoctl commit returned while the old image $p1 still runs"
}
wait $upd
code=$?
[ $code -eq 0 ] || { fail "update with a trial ended $code:"; cat "$dir/upd"; }
p2=$(pid_now)
[ "$p2" != "$p1" ] || fail "after the commit the pid is still $p1"

# 'rollback' during a trial: the old image serves again, exit 7.
"$LUOCTL" -S "$sock" update --trial 60s "$V2" >"$dir/upd" 2>&1 &
upd=$!
wait_trial && {
	run 0 "rollback during a trial" -- rollback testing the rollback
	expect_out "rolled back: the old image (pid $p2) serves again" "rollback"
}
wait $upd
code=$?
[ $code -eq 7 ] || { fail "rolled-back update ended $code, expected 7:"; cat "$dir/upd"; }
grep -q "rolled back (requested)" "$dir/upd" || fail "rollback reason: $(cat "$dir/upd")"
[ "$(pid_now)" = "$p2" ] || fail "after the rollback pid $(pid_now), expected $p2"

run 7 "a failing health command rolls back" -- update --trial 5s --health false "$V2"
expect_out "rolled back (health)" "health command"
run 7 "/bin/false rolls back" -- update --mode spawn /bin/false
expect_out "rolled back (exited)" "/bin/false"
run 7 "/bin/sleep 100 rolls back at the deadline" -- update --mode spawn --deadline 500ms /bin/sleep 100
expect_out "rolled back (deadline)" "/bin/sleep"
[ "$(pid_now)" = "$p2" ] || fail "after the rollbacks pid $(pid_now), expected $p2"

run 2 "a bad duration" -- update --trial 5x "$V2"
expect_out "not a duration" "bad duration"
run 2 "a zero deadline" -- update --mode spawn --deadline 0 "$V2"
run 2 "a trial in exec mode" -- update --mode exec --trial 5s "$V2"
expect_out "need --mode spawn" "trial in exec mode"
run 1 "rollback with none running" -- rollback
expect_out "no update of counter is in its trial" "rollback with none"
run 1 "commit with none running" -- commit
expect_out "nothing to commit" "commit with none"
run 0 "exec mode still works" -- update "$V1"
expect_out "updated: pid $p2" "exec mode"

# A service without a health probe: a trial needs --health.
pkill -f "counter.* --control-path $sock"
sleep 0.3
"$V1" --size 4 --no-probe --control-path "$sock" >"$dir/log2" 2>&1 &
for _ in $(seq 100); do [ -S "$sock" ] && "$LUOCTL" -S "$sock" status >/dev/null 2>&1 && break; sleep 0.05; done
run 1 "a trial for a service without a probe" -- update --trial 5s "$V2"
expect_out "needs a health probe" "trial without probe"
run 0 "the same with --health" -- update --trial 300ms --health true "$V2"

[ $failures -eq 0 ] && echo "all passed"
exit $((failures > 0))
