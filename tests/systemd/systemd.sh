#!/bin/bash
# The project's units under a real systemd: systemd booted as PID 1 of a
# container (systemd-nspawn on the host's own /usr, an empty tmpfs root),
# the units made from the installed templates with this build's paths,
# driven with systemctl through nsenter.
#
#   systemd.sh BUILD_ROOT TEMPLATE_DIR KVCACHE COUNTER LUOCTL MC_PY
#
# Checks: Type=notify start; RELOADING=1 and READY=1 seen by systemd
# (luoctl prepare / cancel); "systemctl reload" is a live update (same
# MainPID, NRestarts 0, data verified, StatusText); an update asked for by
# signal; the library's lines in the journal with their priorities;
# kvcache reloaded with its items and an open connection kept;
# "systemctl stop" clean, also after spawn-mode commits; with
# LUO_FDSTORE=connections (a drop-in) a client connection survives
# SIGKILL.  Exit 77 where it cannot run.
set -u
BUILD=$1
TEMPLATES=$2
KVCACHE=$3
COUNTER=$4
LUOCTL=$5
MC=$6

skip() {
	echo "SKIP: $*"
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v systemd-nspawn >/dev/null || skip "no systemd-nspawn (Debian: systemd-container)"
command -v nsenter >/dev/null || skip "no nsenter"
command -v python3 >/dev/null || skip "no python3"

dir=$(mktemp -d /tmp/luo-systemd-test.XXXXXX)
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

. "$(dirname "$0")/container.sh"
trap container_stop EXIT

port=$(python3 "$MC" freeport) || skip "no free port"
container_units "$port" "-m 64"
container_boot

# The units as systemd reads them: no unknown or misspelt setting.
C systemd-analyze verify --man=no /etc/systemd/system/kvcache.service \
	/etc/systemd/system/luo-counter.service >"$dir/verify.out" 2>&1 ||
	fail "systemd-analyze verify: $(cat "$dir/verify.out")"
[ -s "$dir/verify.out" ] && fail "systemd-analyze verify warns: $(cat "$dir/verify.out")"

# clean_stop_after_spawn_commit ROUND: "systemctl stop" of luo-counter
# after a spawn-mode commit ends the new main process by its own exit (no
# SIGKILL), the unit is inactive with result success, and the store and
# the control socket are released.
clean_stop_after_spawn_commit() {
	local main lines log
	main=$(show luo-counter MainPID)
	lines=$(C journalctl -u luo-counter -o cat --no-pager | wc -l)
	C systemctl stop luo-counter.service || fail "stop after a spawn commit (round $1)"
	# journald reads the service's output stream on its own time: wait
	# (bounded) for the counter's last line before judging the stop.
	for _ in $(seq 100); do
		log=$(C journalctl -u luo-counter -o cat --no-pager | tail -n +"$((lines + 1))")
		case $log in *"counter v1: pid $main stopped"*) break ;; esac
		sleep 0.1
	done
	[ "$(show luo-counter ActiveState)" = inactive ] ||
		fail "after a spawn commit, stop left the unit $(show luo-counter ActiveState) (round $1)"
	[ "$(show luo-counter Result)" = success ] ||
		fail "after a spawn commit, stop result $(show luo-counter Result) (round $1)"
	case $log in *SIGKILL* | *"Failed with result"*)
		fail "after a spawn commit, stop killed pid $main (round $1): $(echo "$log" | grep -m2 'SIGKILL\|Failed')" ;;
	esac
	echo "$log" | grep -q "counter v1: pid $main stopped" ||
		fail "pid $main did not stop by itself (round $1): $(echo "$log" | tail -5)"
	[ "$(show luo-counter NFileDescriptorStore)" = 0 ] ||
		fail "the store holds $(show luo-counter NFileDescriptorStore) descriptors after stop (round $1)"
	C "$LUOCTL" -s counter status >/dev/null 2>&1 &&
		fail "the control socket still answers after stop (round $1)"
}

# --- the counter example ---
C systemctl start luo-counter.service || fail "start luo-counter"
wait_prop luo-counter ActiveState active
pid=$(show luo-counter MainPID)
C systemctl show -p StatusText --value luo-counter | grep -q "serving (state normal), 0 live updates" ||
	fail "StatusText after start: $(show luo-counter StatusText)"

# RELOADING=1 at prepare: systemd shows the unit reloading; READY=1 at
# cancel brings it back.
C "$LUOCTL" -s counter prepare >/dev/null || fail "luoctl prepare"
wait_prop luo-counter ActiveState reloading
C "$LUOCTL" -s counter cancel >/dev/null || fail "luoctl cancel"
wait_prop luo-counter ActiveState active

# systemctl reload: a live update through ExecReload.
C systemctl reload luo-counter.service || fail "systemctl reload luo-counter"
[ "$(show luo-counter ActiveState)" = active ] ||
	fail "after the reload: $(show luo-counter ActiveState)"
[ "$(show luo-counter MainPID)" = "$pid" ] ||
	fail "MainPID changed in the reload: $pid -> $(show luo-counter MainPID)"
[ "$(show luo-counter NRestarts)" = 0 ] || fail "NRestarts is $(show luo-counter NRestarts)"
C "$LUOCTL" -s counter --json status | grep -q '"num": 1' ||
	fail "the reload was not live update #1: $(C "$LUOCTL" -s counter status)"
C journalctl -u luo-counter -o cat --no-pager | grep -q "live update #1 from v1: counter=1, 64 MiB verified" ||
	fail "the new image did not verify the data"
C journalctl -u luo-counter -o cat --no-pager | grep -q "^Reloaded " ||
	fail "systemd logged no completed reload"
show luo-counter StatusText | grep -q "serving (state normal), 1 live update, last blackout " ||
	fail "StatusText after the reload: $(show luo-counter StatusText)"

# An update systemd did not ask for (SIGUSR1): RELOADING=1, then READY=1.
C systemctl kill --kill-who=main -s USR1 luo-counter.service || fail "systemctl kill -s USR1"
for _ in $(seq 200); do
	C "$LUOCTL" -s counter --json status 2>/dev/null | grep -q '"num": 2' && break
	sleep 0.1
done
wait_prop luo-counter ActiveState active
[ "$(show luo-counter MainPID)" = "$pid" ] || fail "MainPID changed in the signalled update"
show luo-counter StatusText | grep -q ", 2 live updates, last blackout " ||
	fail "StatusText after the signalled update: $(show luo-counter StatusText)"

# The library's lines reach the journal with their priorities: an error
# (an exec that fails) at err, an info line (adopted) at info only.
# (A directory passes the X_OK check and fails the exec.)
C "$LUOCTL" -s counter update /usr/lib >"$dir/out" 2>&1 &&
	fail "an update into a directory succeeded: $(cat "$dir/out")"
wait_prop luo-counter ActiveState active
C journalctl -u luo-counter -p err -o cat --no-pager | grep -q "^luo: error: exec of '/usr/lib' failed" ||
	fail "no error line at priority err: $(C journalctl -u luo-counter -p err -o cat --no-pager | tail -3)"
C journalctl -u luo-counter -p info -o cat --no-pager | grep -q "^luo: info: live update #1 adopted" ||
	fail "no info line at priority info"
C journalctl -u luo-counter -p notice -o cat --no-pager | grep -q "luo: info:" &&
	fail "an info line logged above priority info"
C journalctl -u luo-counter -o cat --no-pager | grep -q "<[0-9]>luo:" &&
	fail "a priority prefix reached the journal unparsed"

# A reload whose update fails: systemctl reload fails, the old image
# serves on (same MainPID, active, no restart).
printf '[Service]\nExecReload=\nExecReload=%s -s counter update /usr/lib\n' "$LUOCTL" \
	>"$dir/units/luo-counter.service.d/failing-reload.conf"
C systemctl daemon-reload
C systemctl reload luo-counter.service 2>/dev/null && fail "a failing update reloaded successfully"
[ "$(show luo-counter ActiveState)" = active ] || fail "not active after a failed reload: $(show luo-counter ActiveState)"
[ "$(show luo-counter MainPID)" = "$pid" ] || fail "MainPID changed in a failed reload"
[ "$(show luo-counter NRestarts)" = 0 ] || fail "restarted after a failed reload"
show luo-counter StatusText | grep -q "serving, the last live update was cancelled" ||
	fail "StatusText after a failed reload: $(show luo-counter StatusText)"
rm "$dir/units/luo-counter.service.d/failing-reload.conf"
C systemctl daemon-reload

C systemctl stop luo-counter.service || fail "systemctl stop luo-counter"
[ "$(show luo-counter ActiveState)" = inactive ] || fail "not inactive after stop"
[ "$(show luo-counter Result)" = success ] || fail "stop result: $(show luo-counter Result)"
[ "$(show luo-counter ExecMainStatus)" = 0 ] || fail "exit status $(show luo-counter ExecMainStatus)"

# Spawn mode under systemd, on a fresh start of the unit.
C systemctl start luo-counter.service || fail "start luo-counter again"
wait_prop luo-counter ActiveState active
pid=$(show luo-counter MainPID)
# Spawn mode under systemd: a rollback keeps the old MainPID; a commit
# moves MainPID to the new process (MAINPID= before the old one exits),
# and the unit never restarts.
C "$LUOCTL" -s counter update --mode spawn /bin/false >"$dir/out" 2>&1
code=$?
[ "$code" = 7 ] || fail "spawn update into /bin/false exited $code, expected 7 (rolled back): $(cat "$dir/out")"
wait_prop luo-counter ActiveState active
[ "$(show luo-counter MainPID)" = "$pid" ] || fail "MainPID changed in a rolled-back spawn update"
C "$LUOCTL" -s counter update --mode spawn "$COUNTER" >"$dir/out" 2>&1 ||
	fail "spawn update of the counter: $(cat "$dir/out")"
newpid=
for _ in $(seq 200); do
	newpid=$(show luo-counter MainPID)
	[ "$newpid" != "$pid" ] && [ "$(show luo-counter ActiveState)" = active ] && break
	sleep 0.1
done
[ "$newpid" != "$pid" ] || fail "MainPID did not follow the committed spawn update"
[ "$(show luo-counter ActiveState)" = active ] || fail "not active after the spawn commit: $(show luo-counter ActiveState)"
[ "$(show luo-counter NRestarts)" = 0 ] || fail "restarted in the spawn update"
C "$LUOCTL" -s counter --json status >"$dir/st.json" 2>&1 || fail "status after the spawn commit"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["pid"] == int(sys.argv[2]) else 1)' \
	"$dir/st.json" "$newpid" || fail "MainPID $newpid is not the serving counter: $(cat "$dir/st.json")"
clean_stop_after_spawn_commit 1

# --- systemctl stop after a spawn-mode commit ---
# The main process is then not systemd's child; without the units'
# ExecStop= systemd 252 follows SIGTERM with SIGKILL at once: always a
# SIGKILL in the journal, the result 'signal' in about half the runs.
for round in 2 3 4; do
	C systemctl start luo-counter.service || fail "start luo-counter (stop round $round)"
	wait_prop luo-counter ActiveState active
	pid=$(show luo-counter MainPID)
	C "$LUOCTL" -s counter update --mode spawn "$COUNTER" >"$dir/out" 2>&1 ||
		fail "spawn update (stop round $round): $(cat "$dir/out")"
	for _ in $(seq 200); do
		[ "$(show luo-counter MainPID)" != "$pid" ] &&
			[ "$(show luo-counter ActiveState)" = active ] && break
		sleep 0.1
	done
	clean_stop_after_spawn_commit "$round"
done

# --- kvcache: items and an open connection kept across systemctl reload ---
C systemctl start kvcache.service || fail "start kvcache"
python3 "$MC" wait "$port" || fail "kvcache does not answer on port $port"
pid=$(show kvcache MainPID)
python3 "$MC" set "$port" 1000 || fail "storing 1000 items"
python3 "$MC" hold "$port" "$dir/reloaded" &
holder=$!
sleep 0.2 # let it connect and store before the reload (not a timing check)
C systemctl reload kvcache.service || fail "systemctl reload kvcache"
touch "$dir/reloaded"
wait "$holder" || fail "the connection opened before the reload did not work after it"
[ "$(show kvcache MainPID)" = "$pid" ] || fail "kvcache MainPID changed"
[ "$(show kvcache NRestarts)" = 0 ] || fail "kvcache NRestarts $(show kvcache NRestarts)"
[ "$(show kvcache ActiveState)" = active ] || fail "kvcache not active after the reload"
python3 "$MC" check "$port" 1000 || fail "items lost in the reload"
C journalctl -u kvcache -o cat --no-pager | grep -q "live update #1 from v1: 100[01] items" ||
	fail "kvcache did not report the update"
# SIGKILL: systemd restarts the unit and hands back the listener it kept
# in its descriptor store; connections meanwhile wait in its backlog.
[ "$(show kvcache NFileDescriptorStore)" -ge 3 ] ||
	fail "the store holds $(show kvcache NFileDescriptorStore) descriptors, expected the arena and two listeners"
python3 "$MC" probe "$port" "$dir/restarted" >"$dir/probe.out" 2>&1 &
prober=$!
# Under load: a writer replacing 500 keys over and over when it dies.
python3 "$MC" load "$port" 500 "$dir/restarted" &
loader=$!
for _ in $(seq 300); do
	[ -e "$dir/restarted.loading" ] && break
	sleep 0.1
done
[ -e "$dir/restarted.loading" ] || fail "the writer did not start"
sleep 0.3 # let it probe the running service first (not a timing check)
C systemctl kill -s KILL kvcache.service || fail "systemctl kill -s KILL"
for _ in $(seq 200); do
	[ "$(show kvcache NRestarts)" = 1 ] && [ "$(show kvcache ActiveState)" = active ] && break
	sleep 0.1
done
[ "$(show kvcache NRestarts)" = 1 ] || fail "kvcache was not restarted: NRestarts $(show kvcache NRestarts)"
wait_prop kvcache ActiveState active
python3 "$MC" wait "$port" || fail "kvcache does not answer after the restart"
sleep 0.3 # and the restarted one (not a timing check)
touch "$dir/restarted"
wait "$prober" || fail "connections failed across the crash: $(cat "$dir/probe.out")"
wait "$loader"
[ $? = 3 ] || fail "the writer was not cut by the kill (not under load)"
echo "across SIGKILL: $(tail -1 "$dir/probe.out")"
# The data came back: every key set before, none of the writer's half done.
python3 "$MC" check "$port" 1000 || fail "items lost in the crash"
back=$(python3 "$MC" checkload "$port" 500) || fail "a value that was never stored came back after the crash"
echo "across SIGKILL: $back of the writer's keys back"
[ "${back%% *}" -ge 490 ] || fail "only $back of the writer's keys came back"
C journalctl -u kvcache -o cat --no-pager | grep -q "recovered after a crash: 1[0-9][0-9][0-9] items" ||
	fail "kvcache did not report a recovery after the crash"
[ "$(show kvcache MainPID)" != "$pid" ] || fail "the MainPID did not change in the restart"
C journalctl -u kvcache -o cat --no-pager | grep -q "luo: info: the service manager handed back 3 descriptors" ||
	fail "the restarted kvcache did not take the stored listener"
C "$LUOCTL" -s kvcache status >/dev/null || fail "no control socket after the restart"

# A new image that dies at once in exec mode (/bin/false): the same
# backstop, restarted by systemd with the listener the store kept.
pid=$(show kvcache MainPID)
rm -f "$dir/restarted"
python3 "$MC" probe "$port" "$dir/restarted" >"$dir/probe.out" 2>&1 &
prober=$!
sleep 0.3 # (not a timing check)
C "$LUOCTL" -s kvcache update /bin/false >"$dir/out" 2>&1
code=$?
[ "$code" = 5 ] || fail "luoctl update into /bin/false exited $code, expected 5 (lost): $(cat "$dir/out")"
for _ in $(seq 200); do
	[ "$(show kvcache NRestarts)" = 2 ] && [ "$(show kvcache ActiveState)" = active ] && break
	sleep 0.1
done
[ "$(show kvcache NRestarts)" = 2 ] || fail "kvcache was not restarted after /bin/false: NRestarts $(show kvcache NRestarts), $(show kvcache ActiveState)"
python3 "$MC" wait "$port" || fail "kvcache does not answer after /bin/false"
sleep 0.3 # (not a timing check)
touch "$dir/restarted"
wait "$prober" || fail "connections failed across a new image that died: $(cat "$dir/probe.out")"
echo "across a new image that died: $(tail -1 "$dir/probe.out")"
python3 "$MC" check "$port" 1000 || fail "items lost when the new image died"
[ "$(show kvcache MainPID)" != "$pid" ] || fail "the MainPID did not change"

# LUO_FDSTORE=connections in a drop-in: a client connection opened before
# a SIGKILL is served on after the restart (the store kept its socket).
mkdir -p "$dir/units/kvcache.service.d"
printf '[Service]\nEnvironment=LUO_FDSTORE=connections\nFileDescriptorStoreMax=64\n' \
	>"$dir/units/kvcache.service.d/connections.conf"
C systemctl daemon-reload
C systemctl restart kvcache.service || fail "restart kvcache with LUO_FDSTORE=connections"
python3 "$MC" wait "$port" || fail "kvcache does not answer with LUO_FDSTORE=connections"
pid=$(show kvcache MainPID)
rm -f "$dir/held"
python3 "$MC" hold "$port" "$dir/held" &
holder=$!
for _ in $(seq 200); do # the held connection and its FDSTORE=1 (not a timing check)
	[ "$(show kvcache NFileDescriptorStore)" -ge 4 ] && break
	sleep 0.1
done
[ "$(show kvcache NFileDescriptorStore)" -ge 4 ] ||
	fail "the store holds $(show kvcache NFileDescriptorStore) descriptors, expected the connection too"
C systemctl kill -s KILL kvcache.service || fail "systemctl kill -s KILL (connections)"
for _ in $(seq 200); do
	[ "$(show kvcache MainPID)" != "$pid" ] && [ "$(show kvcache MainPID)" != 0 ] &&
		[ "$(show kvcache ActiveState)" = active ] && break
	sleep 0.1
done
[ "$(show kvcache ActiveState)" = active ] || fail "kvcache not restarted after SIGKILL (connections)"
python3 "$MC" wait "$port" || fail "kvcache does not answer after SIGKILL (connections)"
touch "$dir/held"
wait "$holder" || fail "the connection opened before the SIGKILL did not work after it (LUO_FDSTORE=connections)"
C journalctl -u kvcache -o cat --no-pager | grep -q "recovered after a crash: .* 1 connection resumed" ||
	fail "kvcache did not report the resumed connection"
rm "$dir/units/kvcache.service.d/connections.conf"
C systemctl daemon-reload

C systemctl stop kvcache.service || fail "systemctl stop kvcache"
[ "$(show kvcache Result)" = success ] || fail "kvcache stop result: $(show kvcache Result)"
[ "$(show kvcache NFileDescriptorStore)" = 0 ] ||
	fail "the store still holds $(show kvcache NFileDescriptorStore) descriptors after stop"

if [ "$failures" -ne 0 ]; then
	echo "--- journal ---"
	C journalctl --no-pager -u luo-counter -u kvcache | tail -60
	echo "$failures check(s) failed"
	exit 1
fi
echo "systemd: all checks passed"
exit 0
