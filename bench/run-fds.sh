#!/usr/bin/env bash
# Blackout added by preserved file descriptors and by sessions: 0, 10,
# 1,000 and 10,000 descriptors (eventfds, pipes, Unix sockets, memfds in
# turn) in one session, then 1,000, 4,000 and 16,000 sessions; each row a
# chain of live updates of fd_bench into itself.  With BASE_REV, the same
# rows for that revision of the library (built beside this tree with this
# tree's fd_bench.c), interleaved, as the baseline of the same run.
# Prints the figures and writes bench/results/fds.md and fds.csv.
#
#   bench/run-fds.sh [BUILD_DIR] [RUNS] [BASE_REV]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
runs=${2:-10}
base=${3:-}
out=bench/results
mkdir -p "$out"

if [ ! -d "$build" ]; then
	meson setup "$build" >/dev/null
fi
ninja -C "$build" bench/fd_bench >/dev/null
trees=("this|$build/bench/fd_bench")
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/base" 2>/dev/null || true; rm -rf "$tmp"' EXIT
if [ -n "$base" ]; then
	git worktree add -q --detach "$tmp/base" "$base"
	cp bench/fd_bench.c "$tmp/base/bench/fd_bench.c"
	(cd "$tmp/base" && meson setup b --buildtype "$(meson introspect --buildoptions "$OLDPWD/$build" |
		python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"][0])')" >/dev/null &&
		ninja -C b bench/fd_bench >/dev/null)
	trees+=("base-$(git rev-parse --short "$base")|$tmp/base/b/bench/fd_bench")
fi

# The null system call, in the same run: the unit every per-descriptor
# cost here is made of.
syscall_ns=$(python3 - <<'PY'
import os, time
n = 200000
t = time.perf_counter_ns()
for _ in range(n):
    os.getppid()
print((time.perf_counter_ns() - t) // n)
PY
)

csv=$out/fds.csv
echo "tree,mode,fds,sessions,run,blackout_ns,freeze_to_exec_ns,exec_to_init_ns,retrieve_ns,finish_ns" >"$csv"
log=$(mktemp)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
# Interleaved: the default (each retrieved file's identity checked with
# fstat) and LUO_INIT_TRUST_CARRIER (no per-file check); trees in turn.
row() { # FDS SESSIONS MODE
	local t
	for t in "${trees[@]}"; do
		"${t#*|}" --fds "$1" --sessions "$2" --runs "$runs" --warmup 2 $3 \
			--csv "$tmp/one.csv" | tee -a "$log"
		sed "s/^/${t%%|*},/" "$tmp/one.csv" >>"$csv"
		rm -f "$tmp/one.csv"
	done
}
for n in 0 10 1000 10000; do
	for mode in "" --trust-carrier; do
		row "$n" 1 "$mode"
	done
done
for s in 1000 4000 16000; do
	row 0 "$s" ""
done
# A file in each of 16,000 sessions: 16,000 file blocks to release at finish.
row 16000 16000 --trust-carrier
load1=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$csv" "$syscall_ns" "$runs" "$load0" "$load1" >"$out/fds.md" <<'PY'
import csv, statistics, sys, platform, os, time
rows = list(csv.DictReader(open(sys.argv[1])))
sys_ns, runs, load0, load1 = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
by = {}
for r in rows:
    by.setdefault((r["tree"], r["mode"], int(r["fds"]), int(r["sessions"])), []).append(r)
trees = sorted({k[0] for k in by}, key=lambda t: t != "this")
def med(t, m, n, s, k):
    return statistics.median(int(r[k]) for r in by[(t, m, n, s)]) / 1e3
print("# Blackout added by preserved file descriptors and by sessions\n")
print(f"Machine: {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs; "
      f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load0} before, {load1} after.")
print(f"A null system call (getppid, from Python) costs {sys_ns} ns on this machine in this run.\n")
print("Command: `bench/run-fds.sh " + " ".join(sys.argv[3:4]) + "` (each line: a chain of live updates of `fd_bench` into itself; "
      f"{runs} counted runs per row after 2 warm-ups; medians in microseconds). "
      "`checked` is the default: every retrieved file's identity is checked with one fstat(); "
      "`trusted` is LUO_INIT_TRUST_CARRIER: no per-file check (identity rests on SCM_RIGHTS, "
      "the verified carrier and the check at prepare in the old image). "
      "`finish` is every session's liveupdate_session_finish() and liveupdate_finish(), after the blackout. "
      + ("Trees: `this` is this tree, `base-REV` the baseline revision built in the same run with the same fd_bench.c, rows interleaved." if len(trees) > 1 else "") + "\n")
print("| tree | mode | fds | sessions | blackout | added vs 0 fds, 1 session | per fd | freeze->exec | exec->luo_init done | retrieve all | retrieve per fd | finish |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for t in trees:
    for m in ("checked", "trusted"):
        base = med(t, m, 0, 1, "blackout_ns")
        for (n, s) in sorted((k[2], k[3]) for k in by if k[0] == t and k[1] == m):
            b = med(t, m, n, s, "blackout_ns")
            add = b - base
            per = f"{add / n:.2f}" if n else "-"
            rper = f"{med(t, m, n, s, 'retrieve_ns') / n:.2f}" if n else "-"
            print(f"| {t} | {m} | {n} | {s} | {b:.0f} | {add:.0f} | {per} | {med(t, m, n, s, 'freeze_to_exec_ns'):.0f} | "
                  f"{med(t, m, n, s, 'exec_to_init_ns'):.0f} | {med(t, m, n, s, 'retrieve_ns'):.0f} | {rper} | "
                  f"{med(t, m, n, s, 'finish_ns'):.0f} |")
print("\nSlope from 1,000 to 10,000 descriptors (the cost of one more descriptor, "
      "free of the exec's own noise at 0 fds):\n")
for t in trees:
    for m in ("checked", "trusted"):
        slope = (med(t, m, 10000, 1, "blackout_ns") - med(t, m, 1000, 1, "blackout_ns")) / 9000
        print(f"- {t}, {m}: {slope:.2f} us per descriptor "
              f"({slope * 1000 / sys_ns:.2f} null system calls)")
if len(trees) > 1:
    print("\nSessions, this tree against the baseline (blackout and finish, medians):\n")
    for s in (1000, 4000, 16000):
        a, b = med(trees[0], "checked", 0, s, "blackout_ns"), med(trees[1], "checked", 0, s, "blackout_ns")
        fa, fb = med(trees[0], "checked", 0, s, "finish_ns"), med(trees[1], "checked", 0, s, "finish_ns")
        print(f"- {s} sessions: blackout {a / 1e3:.1f} ms vs {b / 1e3:.1f} ms ({b / a:.0f}x shorter); "
              f"finish {fa / 1e3:.1f} ms vs {fb / 1e3:.1f} ms ({fb / fa:.0f}x shorter)")
PY
rm -f "$log"
cat "$out/fds.md"
