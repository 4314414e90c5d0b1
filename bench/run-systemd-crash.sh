#!/bin/bash
# kvcache under a real systemd (booted in systemd-nspawn, as the systemd
# test suite does), SIGKILLed under load, with and without the descriptor
# store: connections refused while it restarts, the time from the kill
# until it answers again, the longest time without an answer, and the
# keys that come back (the data is adopted from the arena the store kept,
# docs/systemd.md).
#
#   sudo bench/run-systemd-crash.sh [--size MIB] [--runs N] [--out DIR] [BUILD]
#
# Defaults: 1024 MiB of values (1 KiB each), 3 kills per mode, results in
# bench/results/systemd-crash.{md,csv}, build directory "build".  A client
# opens a new connection every 2 ms throughout and asks "version"; kvload
# keeps 20 connections busy (their connections die with the process: that
# is not what is measured).
set -u
cd "$(dirname "$0")/.."
SIZE=1024
RUNS=3
OUT=bench/results
B=build
while [ $# -gt 0 ]; do
	case $1 in
	--size) SIZE=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*) B=$1; shift ;;
	esac
done
BUILD=$(realpath "$B")
TEMPLATES=$PWD/systemd
KVCACHE=$BUILD/examples/kvcache/kvcache
KVLOAD=$BUILD/examples/kvcache/kvload
COUNTER=$BUILD/examples/counter
LUOCTL=$BUILD/tools/luoctl/luoctl
MC=$PWD/tests/systemd/mc.py

skip() {
	echo "cannot run: $*" >&2
	exit 77
}
fail() {
	echo "FAIL: $*" >&2
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v systemd-nspawn >/dev/null || skip "no systemd-nspawn (systemd-container)"
[ -x "$KVCACHE" ] && [ -x "$KVLOAD" ] || skip "build $B first (ninja -C $B)"

dir=$(mktemp -d /tmp/luo-systemd-bench.XXXXXX)
. tests/systemd/container.sh
trap container_stop EXIT

keys=$((SIZE * 1024))
step=$((keys / 10000 > 0 ? keys / 10000 : 1))
port=$(python3 "$MC" freeport) || skip "no free port"
container_units "$port" "-m $((SIZE * 3 / 2 + 64)) -c 1024"
container_boot

csv=$dir/rows.csv
echo "store,run,probes,refused,lost,probe_errors,longest_gap_ms,answer_ms,keys_sampled,before,after,items_before,items_recovered" >"$csv"

nrestarts() { show kvcache NRestarts; }

run_mode() { # store|nostore
	local mode=$1 run n0 probe load before after line t0 t1 items rec
	if [ "$mode" = nostore ]; then
		mkdir -p "$dir/units/kvcache.service.d"
		printf '[Service]\nEnvironment=LUO_FDSTORE=0\n' >"$dir/units/kvcache.service.d/nostore.conf"
		C systemctl daemon-reload
		C systemctl stop kvcache.service
	fi
	C systemctl start kvcache.service || { fail "start"; return 1; }
	for run in $(seq "$RUNS"); do
		python3 "$MC" wait "$port" || { fail "no answer"; return 1; }
		"$KVLOAD" -p "$port" --populate -n "$keys" -s 1000 -c 20 >/dev/null 2>&1
		before=$(python3 "$MC" count "$port" "$keys" "$step" kvl: | cut -d' ' -f1)
		"$KVLOAD" -p "$port" -c 20 -t 0 -n "$keys" -s 1000 >"$dir/load.out" 2>&1 &
		load=$!
		rm -f "$dir/stop"
		python3 "$MC" probe "$port" "$dir/stop" >"$dir/probe.out" 2>&1 &
		probe=$!
		sleep 1
		n0=$(nrestarts)
		items=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    buf += s.recv(65536)
for l in buf.decode().split("\r\n"):
    if l.startswith("STAT curr_items "):
        print(l.split()[2])
' "$port")
		t0=$(date +%s%N)
		C systemctl kill -s KILL kvcache.service
		for _ in $(seq 600); do
			[ "$(nrestarts)" -gt "$n0" ] && [ "$(show kvcache ActiveState)" = active ] && break
			sleep 0.1
		done
		python3 "$MC" wait "$port" || fail "no answer after the restart"
		t1=$(date +%s%N)
		rec=$(C journalctl -u kvcache -o cat --no-pager | grep -o "recovered after a crash: [0-9]* items" | tail -1 | grep -o "[0-9]*" | head -1)
		[ "$mode" = store ] || rec=0
		sleep 1
		touch "$dir/stop"
		wait "$probe"
		kill -TERM "$load" 2>/dev/null
		wait "$load" 2>/dev/null
		after=$(python3 "$MC" count "$port" "$keys" "$step" kvl: | cut -d' ' -f1)
		line=$(tail -1 "$dir/probe.out")
		# probes=N refused=R lost=L errors=E longest_gap_ms=G
		eval "${line// /; }"
		echo "$mode,$run,$probes,$refused,$lost,$errors,$longest_gap_ms,$(((t1 - t0) / 1000000)),$(((keys + step - 1) / step)),$before,$after,$items,${rec:-0}" | tee -a "$csv"
	done
	C systemctl stop kvcache.service
}

run_mode store
run_mode nostore

mkdir -p "$OUT"
cp "$csv" "$OUT/systemd-crash.csv"
python3 - "$csv" "$SIZE" "$RUNS" >"$OUT/systemd-crash.md" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
size, runs = sys.argv[2], sys.argv[3]
print("# kvcache SIGKILLed under systemd: the descriptor store as a backstop\n")
print("`sudo bench/run-systemd-crash.sh --size %s --runs %s`: kvcache under a"
      " real systemd 252 (systemd-nspawn), %s MiB of 1 KiB values, 20 kvload"
      " connections busy (setting and getting), a probe opening a new"
      " connection every 2 ms; `systemctl kill -s KILL`, systemd restarts"
      " the unit (`Restart=on-failure`, RestartSec 100 ms).\n" % (size, runs, size))
print("| store | run | items before the kill | items recovered | keys back (sampled) | refused | accepted, then lost | other errors | kill to the first answer (ms) | longest gap without an answer (ms) | probes |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| %s | %s | %s | %s | %s of %s | %s | %s | %s | %s | %s | %s |" % (
        "on" if r["store"] == "store" else "off", r["run"],
        r["items_before"], r["items_recovered"], r["after"], r["before"],
        r["refused"], r.get("lost", ""), r["probe_errors"], r["answer_ms"],
        r["longest_gap_ms"], r["probes"]))
print()
print("With the store the listener never closes: clients that connect while"
      " kvcache is down wait in its backlog and are answered by the restarted"
      " process, which adopts the arena the store kept (its crash record),"
      " re-validates every item and serves the data set again. What is lost:"
      " the connections (the 20 kvload ones die with the process) and what"
      " was being written at the kill. Without the store kvcache starts"
      " empty and clients are refused until it listens again. The times"
      " include systemd's 100 ms restart delay; they are figures of this"
      " machine, not targets.")
EOF
cat "$OUT/systemd-crash.md"
