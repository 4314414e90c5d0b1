#!/usr/bin/env bash
# The service gap a client sees while a cache is upgraded, side by side:
#   kvcache       a kvcache live update (libluo: execve, memory and
#                 connections kept)
#   mc-warm       memcached 1.6 restartable cache: -e /dev/shm/FILE, SIGUSR1
#                 (save and exit), start again with the same -e file
#   mc-restart    plain memcached restart: SIGTERM, start again (data gone)
#   criu          CRIU dump + restore of memcached (images on tmpfs)
#   idle          no trigger at all: the client's own noise floor
# for each data size, RUNS times each, plus a throughput comparison of
# kvcache and memcached -t 1 on the same load.  Prints the figures and
# writes bench/results/kvcache-gap.md, kvcache-gap.png, kvcache-gap-runs.csv
# and kvcache-gap-tput.csv.  See bench/kvcache/README.md.
#
#   bench/kvcache/run-gap.sh [--sizes "1024 4096"] [--runs 3]
#       [--systems "idle kvcache mc-warm mc-restart criu"] [--conns 4]
#       [--kvcache PATH] [--kvsrc DIR] [--build DIR] [--out DIR]
#       [--tput-size MiB] [--tput-seconds S] [--quick]
#   KV_TRIGGER   how to update kvcache; $PID, $BIN, $PORT are set, the
#                control socket is named luo-gap (luoctl -s luo-gap)
#                (default: gapclient sends SIGUSR1 to the server itself)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# ---- the trigger, run by gapclient through /bin/sh -------------------------
# run-gap.sh __trigger SYSTEM STATE_DIR
alive() { # a pid with a thread that is not a zombie (the group leader of
	# a multi-threaded server is a zombie while its other threads exit)
	[ -d "/proc/$1/task" ] || return 1
	cat /proc/"$1"/task/*/stat 2>/dev/null | awk '$3 != "Z" && $3 != "X" {a=1} END {exit !a}'
}
port_free() { # wait until nothing listens on PORT (up to 60 s)
	local i
	for ((i = 0; i < 60000; i++)); do
		[ -z "$(ss -Hltn "sport = :$1")" ] && return 0
		sleep 0.001
	done
	return 1
}
wait_dead() {
	local i
	for ((i = 0; i < 600000; i++)); do
		alive "$1" || return 0
		sleep 0.001
	done
	return 1
}
# start a server detached (reparented, so it is reaped when it exits);
# its pid goes to STATE/pid.
start_server() { # STATE LOG cmd...
	local st=$1 log=$2
	shift 2
	(setsid "$@" </dev/null >>"$log" 2>&1 & echo $! >"$st/pid")
}
if [ "${1:-}" = __trigger ]; then
	sys=$2 st=$3
	exec >>"$st/trigger.log" 2>&1 # gapclient's stdout is its JSON
	pid=$(cat "$st/pid")
	read -r -a cmd <"$st/cmd"
	case $sys in
	idle) ;;
	mc-warm | mc-restart) # gapclient has sent SIGUSR1 or SIGTERM
		wait_dead "$pid"
		port_free "$(cat "$st/port")"
		if [ "$sys" = mc-warm ]; then
			# memcached 1.6.18 refuses its memory file ("restart
			# incompatible due to setting for [stop_time]") when started
			# again within the wall-clock second it stopped in: wait
			# for the next second, and record how long that took.
			stop_s=$(sed -n 's/^Kstop_time //p' "$st/mc.mem.meta")
			w0=$(date +%s%N)
			while [ "$(date +%s)" -le "${stop_s:-0}" ]; do sleep 0.001; done
			echo $((($(date +%s%N) - w0) / 1000)) >"$st/wait_us"
		fi
		start_server "$st" "$st/server.log" "${cmd[@]}"
		;;
	criu)
		rm -rf "$st/criu"
		mkdir -p "$st/criu"
		if ! criu dump -t "$pid" --tcp-established --shell-job \
			-D "$st/criu" -o dump.log 2>"$st/criu-dump.err"; then
			echo "criu dump failed" >"$st/criu-failed"
			exit 1
		fi
		if ! criu restore -D "$st/criu" --tcp-established --shell-job -d \
			--pidfile "$st/criu.pid" -o restore.log 2>"$st/criu-restore.err"; then
			echo "criu restore failed" >"$st/criu-failed"
			exit 1
		fi
		cp "$st/criu.pid" "$st/pid"
		;;
	esac
	exit 0
fi

# ---- options ---------------------------------------------------------------
sizes="1024 4096"
runs=3
systems="idle kvcache mc-warm mc-restart criu"
conns=4
build=$repo/build-bench
kvsrc=
kvbin=
out=$repo/bench/results
tput_size=
tput_seconds=10
tput_runs=3
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) sizes=$2; shift ;;
	--runs) runs=$2; shift ;;
	--systems) systems=$2; shift ;;
	--conns) conns=$2; shift ;;
	--kvcache) kvbin=$2; shift ;;
	--kvsrc) kvsrc=$2; shift ;;
	--build) build=$2; shift ;;
	--out) out=$2; shift ;;
	--tput-size) tput_size=$2; shift ;;
	--tput-seconds) tput_seconds=$2; shift ;;
	--tput-runs) tput_runs=$2; shift ;;
	--quick) sizes="64 256"; runs=3; tput_seconds=3 ;;
	*) echo "run-gap.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
tput_size=${tput_size:-${sizes%% *}}
port=22100
port2=22101
cmdline="bench/kvcache/run-gap.sh --sizes \"$sizes\" --runs $runs --systems \"$systems\" --conns $conns"
[ -z "${KV_TRIGGER:-}" ] || cmdline="KV_TRIGGER='$KV_TRIGGER' $cmdline"
[ "$(id -u)" = 0 ] || { echo "run-gap.sh: run as root (memcached -u root, CRIU)" >&2; exit 2; }
for t in memcached gnuplot python3 cc; do
	command -v $t >/dev/null || { echo "run-gap.sh: needs $t (apt-get install memcached gnuplot-nox)" >&2; exit 2; }
done

# ---- builds ----------------------------------------------------------------
tmp=$(mktemp -d /dev/shm/luo-gap.XXXXXX) # tmpfs: memory files, CRIU images
servers=()
cleanup() {
	local p
	for p in "${servers[@]}" $(cat "$tmp"/*/pid 2>/dev/null); do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${servers[@]}" $(cat "$tmp"/*/pid 2>/dev/null); do
		local i
		for ((i = 0; i < 100; i++)); do alive "$p" || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -Wall -Wextra -std=gnu11 -pthread -o "$tmp/gapclient" "$here/gapclient.c"
gc=$tmp/gapclient

kvnote=
if [[ " $systems " == *" kvcache "* ]] && [ -z "$kvbin" ]; then
	# the merged tree first, else a separate source tree (--kvsrc)
	for src in "$repo" $kvsrc; do
		[ -d "$src/examples/kvcache" ] || continue
		b=$build
		[ "$src" = "$repo" ] || b=$repo/build-kvsrc
		if [ ! -d "$b" ]; then
			meson setup "$b" "$src" >"$tmp/kvbuild.log" 2>&1 || true
		fi
		if ninja -C "$b" examples/kvcache/kvcache >>"$tmp/kvbuild.log" 2>&1; then
			kvbin=$b/examples/kvcache/kvcache
			dirty=
			[ -z "$(git -C "$src" status --porcelain examples/kvcache 2>/dev/null)" ] || dirty=", with uncommitted changes"
			kvnote="built from $src ($(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')$dirty)"
			break
		fi
		kvnote="kvcache did not build from $src: $(grep -m1 -i error "$tmp/kvbuild.log" || tail -1 "$tmp/kvbuild.log")"
	done
	[ -n "$kvbin" ] || kvnote=${kvnote:-"no examples/kvcache in $repo${kvsrc:+ or $kvsrc}"}
fi
[ -z "$kvbin" ] || kvnote=${kvnote:-"$kvbin"}

# ---- helpers ---------------------------------------------------------------
wait_port() { # PORT [seconds [PID]]: until it answers (and PID lives)
	local i n=$((${2:-120} * 100))
	for ((i = 0; i < n; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		[ -z "${3:-}" ] || alive "$3" || return 1
		sleep 0.01
	done
	return 1
}
# Other processes' CPU use (% of all CPUs) over one second, while our
# servers are idle; waits up to 5 s for a second under 25%.
busy_pct() {
	local i a b
	for ((i = 0; i < 5; i++)); do
		a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
		sleep 1
		b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
		pct=$(echo "$a $b" | awk '{u=$3-$1; t=u+$4-$2; printf "%.0f", t ? 100*u/t : 0}')
		[ "$pct" -lt 25 ] && break
	done
	echo "$pct"
}
mem_mib() { echo $(($1 * 5 / 4 + 64)); } # -m for SIZE MiB of 4 KiB values

server_cmd() { # SYSTEM SIZE PORT STATE
	local m
	m=$(mem_mib "$2")
	case $1 in
	kvcache) echo "$kvbin -p $3 -l 127.0.0.1 -m $m -c 1024 -v --name luo-gap" ;;
	mc-warm) echo "memcached -u root -t 1 -U 0 -p $3 -l 127.0.0.1 -m $m -c 1024 -e $4/mc.mem" ;;
	*) echo "memcached -u root -t 1 -U 0 -p $3 -l 127.0.0.1 -m $m -c 1024" ;;
	esac
}
start() { # SYSTEM SIZE PORT STATE
	local st=$4
	mkdir -p "$st"
	server_cmd "$1" "$2" "$3" "$st" >"$st/cmd"
	echo "$3" >"$st/port"
	echo "$kvbin" >"$st/bin"
	read -r -a c <"$st/cmd"
	port_free "$3" || { echo "port $3 still busy:"; ss -ltnp "sport = :$3"; exit 1; }
	start_server "$st" "$st/server.log" "${c[@]}"
	servers+=("$(cat "$st/pid")")
	wait_port "$3" 120 "$(cat "$st/pid")" || { echo "server $1 did not come up:"; tail "$st/server.log"; exit 1; }
}
stop() { # STATE
	local p
	p=$(cat "$1/pid")
	kill -TERM "$p" 2>/dev/null || true
	wait_dead "$p" || kill -KILL "$p" 2>/dev/null || true
	port_free "$(cat "$1/port")" || true
	rm -f "$1"/mc.mem*
	rm -rf "$1/criu"
}
jget() { # JSON KEY (the last line of JSON)
	python3 -c 'import json,sys; print(json.loads(sys.argv[1].strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"
}

runs_csv=$tmp/runs.csv
echo "system,size_mib,run,gap_ms,recover_ms,first_ok_ms,gap_from_trigger_ms,trigger_cmd_ms,warm_wait_ms,dropped_conns,conns,reconnects,errors,bad,keys,before_ok,after_ok,recovered,other_busy_pct,updated,note" >"$runs_csv"
notes=$tmp/notes
: >"$notes"

t_start=$(date +%s)
echo "run-gap: sizes $sizes MiB, $runs runs, systems $systems, $conns connections"
echo "kvcache: ${kvbin:-not available} ($kvnote)"

# ---- the gap matrix ----------------------------------------------------------
criu_dead=
for size in $sizes; do
	for sys in $systems; do
		if [ "$sys" = kvcache ] && [ -z "$kvbin" ]; then
			echo "$size MiB kvcache: not measured ($kvnote)"
			continue
		fi
		if [ "$sys" = criu ] && [ -n "$criu_dead" ]; then
			echo "$size MiB criu: skipped (failed before: see notes)"
			echo "criu,$size,1,,,,,,,,,,,,,,,,,no,failed (see notes)" >>"$runs_csv"
			continue
		fi
		st=$tmp/$sys-$size
		srv=$sys
		[ "$sys" = idle ] && srv=mc-restart
		loaded=
		for ((r = 1; r <= runs; r++)); do
			if [ -z "$loaded" ]; then
				[ -f "$st/pid" ] && stop "$st"
				start "$srv" "$size" "$port" "$st"
				if ! "$gc" load -p $port --bytes "${size}M" --conns 2 >"$st/load.json"; then
					echo "load failed; $sys server log:"; tail -5 "$st/server.log"
					ss -ltnp | grep ":$port " || true
					exit 1
				fi
				before=$(jget "$(${gc} verify -p $port --bytes "${size}M")" ok)
				loaded=1
			else
				before=$after
			fi
			busy=$(busy_pct)
			pid0=$(cat "$st/pid")
			ul0=$(grep -c 'live update #' "$st/server.log" || true)
			rm -f "$st/wait_us"
			# The signal is sent by gapclient itself, right after it
			# takes the trigger time; the rest of the procedure (wait
			# for the exit, start again; CRIU; KV_TRIGGER) follows.
			trig=(--trigger "'$here/run-gap.sh' __trigger $sys '$st'")
			case $sys in
			idle) trig=(--trigger true) ;;
			kvcache)
				if [ -n "${KV_TRIGGER:-}" ]; then
					trig=(--trigger "PID=$pid0 BIN='$kvbin' PORT=$port; export PID BIN PORT; { $KV_TRIGGER; } >>'$st/trigger.log' 2>&1")
				else
					trig=(--pid "$pid0" --signal "$(kill -l USR1)")
				fi ;;
			mc-warm) trig+=(--pid "$pid0" --signal "$(kill -l USR1)") ;;
			mc-restart) trig+=(--pid "$pid0" --signal "$(kill -l TERM)") ;;
			esac
			j=$("$gc" gap -p $port --bytes "${size}M" --conns "$conns" \
				"${trig[@]}" --warmup-ms 1000 \
				--tail-ms 1500 --max-s 600 2>"$st/gaps.log")
			cat "$st/gaps.log" >>"$tmp/gaps.log"
			status=$(jget "$j" trigger_status)
			note=
			updated=yes
			if [ "$sys" = criu ] && [ "$status" != 0 ]; then
				err=$({ grep -h -m3 'Error' "$st/criu/dump.log" "$st/criu/restore.log" "$st"/criu-*.err 2>/dev/null || true; } | awk '!seen[$0]++' | head -5 | tr '\n' ' ' | tr ',' ';')
				echo "- **criu** ($size MiB): \`criu dump\` failed; the server kept running, no gap measured. First errors from its log: \`$err\`" >>"$notes"
				echo "criu,$size,$r,,,,,,,,,,,,,,,,,no,criu failed" >>"$runs_csv"
				echo "$size MiB criu: FAILED: $err"
				criu_dead=1
				stop "$st"
				break
			fi
			if [ "$sys" = kvcache ]; then
				ul1=$(grep -c 'live update #' "$st/server.log" || true)
				[ "$ul1" -gt "$ul0" ] || updated="no?"
				[ "$(cat "$st/pid")" = "$pid0" ] && alive "$pid0" || note="pid changed or gone"
			fi
			[ "$sys" = idle ] && updated=-
			wait_port $port 600 || true
			after=$(jget "$("$gc" verify -p $port --bytes "${size}M")" ok)
			keys=$((size * 1048576 / 4096))
			rec=$(echo "$after $keys" | awk '{printf "%.4f", $1/$2}')
			echo "$sys,$size,$r,$(jget "$j" gap_ms),$(jget "$j" recover_ms),$(jget "$j" first_ok_after_trigger_ms),$(jget "$j" gap_from_trigger_ms),$(jget "$j" trigger_cmd_ms),$(awk '{printf "%.3f", $1/1000}' "$st/wait_us" 2>/dev/null),$(jget "$j" dropped_conns),$conns,$(jget "$j" reconnects),$(jget "$j" errors),$(jget "$j" bad),$keys,$before,$after,$rec,$busy,$updated,$note" >>"$runs_csv"
			printf '%5s MiB %-10s run %d: gap %9.3f ms  back after %9.3f ms  dropped %s/%s  keys %s/%s  other load %s%%%s\n' \
				"$size" "$sys" "$r" "$(jget "$j" gap_ms)" "$(jget "$j" recover_ms)" \
				"$(jget "$j" dropped_conns)" "$conns" "$after" "$keys" "$busy" "${note:+  ($note)}"
			# lost data must be loaded again before the next run
			[ "$after" = "$before" ] || loaded=
			[ "$sys" = mc-restart ] && loaded=
		done
		[ -f "$st/pid" ] && stop "$st"
	done
done

# ---- throughput: kvcache vs memcached -t 1, same load --------------------------
tput_csv=$tmp/tput.csv
echo "system,run,tool,conns,depth,set_pct,ops_per_s,other_busy_pct" >"$tput_csv"
if [ -n "$kvbin" ]; then
	tp_sys="kvcache memcached"
else
	tp_sys="memcached"
	echo "throughput: kvcache not available, memcached only"
fi
i=0
for s in $tp_sys; do
	st=$tmp/tput-$s
	srv=$s
	[ "$s" = memcached ] && srv=mc-restart
	p=$((port + i))
	i=$((i + 1))
	start "$srv" "$tput_size" "$p" "$st"
	"$gc" load -p "$p" --bytes "${tput_size}M" --conns 2 >/dev/null
	echo "$p" >"$st/tport"
done
for ((r = 1; r <= tput_runs; r++)); do
	for s in $tp_sys; do
		p=$(cat "$tmp/tput-$s/tport")
		busy=$(busy_pct)
		j=$("$gc" bench -p "$p" --bytes "${tput_size}M" --conns 4 --depth 16 --set-pct 10 --seconds "$tput_seconds")
		echo "$s,$r,gapclient-pipelined,4,16,10,$(jget "$j" ops_per_s),$busy" >>"$tput_csv"
		printf 'throughput %-10s run %d: %s ops/s (gapclient, 4 conns x 16 pipelined, 10%% sets)  other load %s%%\n' "$s" "$r" "$(jget "$j" ops_per_s)" "$busy"
		# memcslap: plain blocking gets, 4 threads, no pipelining
		# "Time to get 78715 keys by 4 threads: 2.518 seconds."
		ms=$(memcslap -s "127.0.0.1:$p" -t get -c 4 -e 20000 -N 2>&1 | sed -n 's/^Time to get *\([0-9]*\) keys by.*: *\([0-9.]*\) seconds.*/\1 \2/p' || true)
		if [ -n "$ms" ]; then
			ops=$(echo "$ms" | awk '{printf "%.0f", $1/$2}')
			echo "$s,$r,memcslap-get,4,1,0,$ops,$busy" >>"$tput_csv"
			printf 'throughput %-10s run %d: %s ops/s (memcslap get -c 4)\n' "$s" "$r" "$ops"
		fi
	done
done
for s in $tp_sys; do stop "$tmp/tput-$s"; done
t_end=$(date +%s)

# ---- results ---------------------------------------------------------------------
mkdir -p "$out"
cp "$runs_csv" "$out/kvcache-gap-runs.csv"
cp "$tput_csv" "$out/kvcache-gap-tput.csv"
cp "$tmp/gaps.log" "$out/kvcache-gap-gaps.log" 2>/dev/null || true
criu_check=$(cd "$tmp" && { timeout 60 criu check 2>&1 || true; } | grep Error | awk '!seen[$0]++' | head -5 | tr '\n' ' ' || true)
python3 "$here/summarize.py" "$out/kvcache-gap-runs.csv" "$out/kvcache-gap-tput.csv" \
	"$out/kvcache-gap.md" "$tmp/plot.dat" <<EOF
{"cmdline": $(printf '%s' "$cmdline" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),
 "seconds": $((t_end - t_start)),
 "kvnote": $(printf '%s' "$kvnote" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),
 "criu_version": "$(criu --version 2>/dev/null | head -1)",
 "criu_check": $(printf '%s' "$criu_check" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),
 "memcached": "$(memcached -V)",
 "source": "$(git -C "$repo" rev-parse --short HEAD)",
 "notes": $(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$notes"),
 "tput_size": $tput_size, "tput_seconds": $tput_seconds, "conns": $conns}
EOF
gnuplot <<EOF
set terminal pngcairo size 900,560 font "sans,10"
set output "$out/kvcache-gap.png"
set title "Service gap seen by a polling client during an upgrade (median, min..max of $runs)"
set xlabel "data set (MiB)"
set ylabel "longest gap without a response (ms)"
set logscale y
set logscale x 2
set grid
set key outside right
set xtics ($(echo $sizes | sed 's/\([0-9]*\)/"\1" \1/g; s/ "/, "/g'))
set offsets graph 0.1, graph 0.1, 0, 0
plot for [i=0:*] "$tmp/plot.dat" index i using 1:2:3:4 with yerrorlines lw 2 title columnheader(1)
EOF
cat "$out/kvcache-gap.md"
echo "wrote $out/kvcache-gap.md, kvcache-gap.png, kvcache-gap-runs.csv, kvcache-gap-tput.csv"
