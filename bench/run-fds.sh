#!/usr/bin/env bash
# Blackout added by preserved file descriptors: 0, 10, 1,000 and 10,000
# descriptors (eventfds, pipes, Unix sockets, memfds in turn), each a
# chain of live updates of fd_bench into itself.  Prints the figures and
# writes bench/results/fds.md and bench/results/fds.csv.
#
#   bench/run-fds.sh [BUILD_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
runs=${2:-10}
out=bench/results
mkdir -p "$out"

if [ ! -d "$build" ]; then
	meson setup "$build" >/dev/null
fi
ninja -C "$build" bench/fd_bench >/dev/null
bin=$build/bench/fd_bench

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
echo "mode,fds,run,blackout_ns,freeze_to_exec_ns,exec_to_init_ns,retrieve_ns" >"$csv"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Interleaved: the default (each retrieved file's identity checked with
# fstat) and LUO_INIT_TRUST_CARRIER (no per-file check).
for n in 0 10 1000 10000; do
	for mode in "" --trust-carrier; do
		"$bin" --fds "$n" --runs "$runs" --warmup 2 $mode \
			--csv "$(realpath "$csv")" | tee -a "$log"
	done
done

python3 - "$csv" "$syscall_ns" >"$out/fds.md" <<'PY'
import csv, statistics, sys, platform, os, time
rows = list(csv.DictReader(open(sys.argv[1])))
sys_ns = int(sys.argv[2])
by = {}
for r in rows:
    by.setdefault((r["mode"], int(r["fds"])), []).append(r)
def med(m, n, k):
    return statistics.median(int(r[k]) for r in by[(m, n)]) / 1e3
print("# Blackout added by preserved file descriptors\n")
print(f"Machine: {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs; "
      f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
print(f"A null system call (getppid, from Python) costs {sys_ns} ns on this machine in this run.\n")
print("Command: `bench/run-fds.sh` (each line: a chain of live updates of `fd_bench` into itself; "
      f"{len(by[('checked', 0)])} counted runs per size after 2 warm-ups; medians in microseconds). "
      "`checked` is the default: every retrieved file's identity is checked with one fstat(); "
      "`trusted` is LUO_INIT_TRUST_CARRIER: no per-file check (identity rests on SCM_RIGHTS, "
      "the verified carrier and the check at prepare in the old image).\n")
print("| mode | fds | blackout | added vs 0 fds | per fd | freeze->exec | exec->luo_init done | retrieve all | retrieve per fd |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for m in ("checked", "trusted"):
    base = med(m, 0, "blackout_ns")
    for n in sorted(k[1] for k in by if k[0] == m):
        b = med(m, n, "blackout_ns")
        add = b - base
        per = f"{add / n:.2f}" if n else "-"
        rper = f"{med(m, n, 'retrieve_ns') / n:.2f}" if n else "-"
        print(f"| {m} | {n} | {b:.0f} | {add:.0f} | {per} | {med(m, n, 'freeze_to_exec_ns'):.0f} | "
              f"{med(m, n, 'exec_to_init_ns'):.0f} | {med(m, n, 'retrieve_ns'):.0f} | {rper} |")
print("\nSlope from 1,000 to 10,000 descriptors (the cost of one more descriptor, "
      "free of the exec's own noise at 0 fds):\n")
for m in ("checked", "trusted"):
    slope = (med(m, 10000, "blackout_ns") - med(m, 1000, "blackout_ns")) / 9000
    print(f"- {m}: {slope:.2f} us per descriptor "
          f"({slope * 1000 / sys_ns:.2f} null system calls)")
PY
cat "$out/fds.md"
