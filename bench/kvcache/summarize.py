#!/usr/bin/env python3
"""Summarize bench/kvcache/run-gap.sh: runs CSV + throughput CSV -> markdown
and gnuplot data.  Usage: summarize.py RUNS.csv TPUT.csv OUT.md PLOT.dat,
with a JSON object of run facts on stdin.  Prints nothing; never judges."""
import csv, json, os, platform, statistics, sys, time

runs_csv, tput_csv, out_md, plot_dat = sys.argv[1:5]
facts = json.load(sys.stdin)
rows = list(csv.DictReader(open(runs_csv)))
tput = list(csv.DictReader(open(tput_csv)))

ORDER = ["kvcache", "mc-warm", "mc-restart", "criu", "idle"]
NAMES = {
    "kvcache": "kvcache live update (libluo)",
    "mc-warm": "memcached -e restartable (SIGUSR1 + start)",
    "mc-restart": "memcached plain restart (SIGTERM + start)",
    "criu": "CRIU dump + restore of memcached",
    "idle": "no trigger (client noise floor)",
}


def f(x):
    return float(x) if x not in ("", None) else None


groups = {}
for r in rows:
    groups.setdefault((r["system"], int(r["size_mib"])), []).append(r)
sizes = sorted({k[1] for k in groups})
systems = [s for s in ORDER if any(k[0] == s for k in groups)]


def stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt(t, nd=1):
    if t is None:
        return "-"
    return f"{t[0]:.{nd}f} ({t[1]:.{nd}f} .. {t[2]:.{nd}f})"


def cpu():
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                return l.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def meminfo():
    for l in open("/proc/meminfo"):
        if l.startswith("MemTotal"):
            return int(l.split()[1]) / 1048576
    return 0


med_gap = {}
lines = []
P = lines.append
P("# Service gap during an upgrade: kvcache vs memcached vs CRIU\n")
P("Produced by `bench/kvcache/run-gap.sh`; see `bench/kvcache/README.md` for "
  "what each column means.  One run of the script; every row is measured in "
  "that run, on the same machine, one after the other.\n")
P("## Machine and run\n")
la = open("/proc/loadavg").read().split()[:3]
P(f"- kernel: {platform.release()} ({platform.machine()}); CPU: {cpu()}, nproc {os.cpu_count()}; memory {meminfo():.1f} GiB")
P(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the end {' '.join(la)}")
P(f"- source: {facts['source']}; {facts['memcached']}; {facts['criu_version']}")
P(f"- kvcache: {facts['kvnote']}")
P(f"- command: `{facts['cmdline']}` as root, {facts['seconds']} s")
busy = [f(r["other_busy_pct"]) for r in rows if f(r["other_busy_pct"]) is not None]
if busy:
    P(f"- other processes' CPU use in the second before each measurement: "
      f"mean {statistics.mean(busy):.0f}%, max {max(busy):.0f}% of 2 CPUs "
      f"(the script waits up to 5 s for a second under 25%)")
P(f"- client: {facts['conns']} connections, one thread each, get (random preloaded key, value checked) "
  "and set (own small keys) back to back; servers single-threaded (`memcached -t 1`, kvcache has one event thread)\n")

P("## Service gap\n")
P("Times in ms: median (min .. max) over the runs.  **gap**: the longest "
  "interval in which no connection got any successful response, counted "
  "from the last success before the trigger.  **back after**: from the "
  "trigger until service came back (the end of that gap).  **keys "
  "recovered**: preloaded keys that read back with the right value after "
  "the upgrade, median (min).  **dropped**: connections that had to "
  "reconnect, median (max), of the client's connections.  **x kvcache**: "
  "gap median over kvcache's gap median at that size.\n")
P("| size MiB | system | runs | gap ms | back after ms | x kvcache | keys recovered | dropped | other load % mean (max) |")
P("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for size in sizes:
    for s in systems:
        g = groups.get((s, size))
        if not g:
            continue
        ok = [r for r in g if r["gap_ms"] != ""]
        if not ok:
            P(f"| {size} | {NAMES[s]} | 0 | failed | - | - | - | - | - |")
            continue
        gap = stats([f(r["gap_ms"]) for r in ok])
        rec = stats([f(r["recover_ms"]) for r in ok])
        med_gap[(s, size)] = gap
        kv = med_gap.get(("kvcache", size))
        ratio = f"{gap[0] / kv[0]:.1f}" if kv and s != "kvcache" and kv[0] > 0 else ("1" if s == "kvcache" else "-")
        fr = [f(r["recovered"]) for r in ok]
        dr = [int(r["dropped_conns"]) for r in ok]
        bz = [f(r["other_busy_pct"]) for r in ok]
        upd = "" if all(r["updated"] in ("yes", "-") for r in ok) else " (update not confirmed in the log)"
        recs = "-" if s == "idle" else fmt(rec, 2)
        P(f"| {size} | {NAMES[s]}{upd} | {len(ok)} | {fmt(gap, 2)} | {recs} | {ratio} | "
          f"{statistics.median(fr) * 100:.1f}% ({min(fr) * 100:.1f}%) of {ok[0]['keys']} | "
          f"{statistics.median(dr):.0f} ({max(dr)}) of {ok[0]['conns']} | "
          f"{statistics.mean(bz):.0f} ({max(bz):.0f}) |")
P("")
for size in sizes:
    w = stats([f(r.get("warm_wait_ms")) for r in groups.get(("mc-warm", size), [])])
    if w:
        P(f"- mc-warm, {size} MiB: of the gap, {fmt(w, 0)} ms went into waiting "
          "for the next wall-clock second before starting memcached again "
          "(memcached 1.6.18 refuses its memory file if started within the "
          "second it stopped in: `[restart] restart incompatible due to "
          "setting for [stop_time]`).")
P("")
if facts["notes"].strip():
    P("## Notes from the run\n")
    P(facts["notes"].rstrip())
    if facts.get("criu_check"):
        P(f"- `criu check` on this machine: `{facts['criu_check'].strip()}`")
    P("")

P("## Throughput: kvcache vs memcached -t 1\n")
if tput:
    P(f"Same data set ({facts['tput_size']} MiB of 4 KiB values, preloaded), "
      "each server single-threaded, runs alternating between the servers. "
      "**gapclient-pipelined**: 4 connections, 16 requests in flight each, "
      f"10% sets, {facts['tput_seconds']} s per run.  **memcslap-get**: "
      "Debian's memcslap, 4 threads of blocking gets, no pipelining "
      "(it first sets its own 20,000 keys of its own values).  ops/s median (min .. max); ratio = "
      "kvcache median / memcached median.\n")
    P("| tool | system | runs | ops/s | ratio to memcached |")
    P("|---|---|---:|---:|---:|")
    tools = sorted({r["tool"] for r in tput})
    for t in tools:
        mc = stats([f(r["ops_per_s"]) for r in tput if r["tool"] == t and r["system"] == "memcached"])
        for s in ("kvcache", "memcached"):
            st = stats([f(r["ops_per_s"]) for r in tput if r["tool"] == t and r["system"] == s])
            if not st:
                continue
            ratio = f"{st[0] / mc[0]:.2f}" if mc else "-"
            n = sum(1 for r in tput if r["tool"] == t and r["system"] == s)
            P(f"| {t} | {s} | {n} | {fmt(st, 0)} | {ratio} |")
    P("")
P("## Analysis\n")
P("(to be written by hand after each run)\n")
open(out_md, "w").write("\n".join(lines) + "\n")

with open(plot_dat, "w") as o:
    for s in systems:
        pts = [(size, med_gap[(s, size)]) for size in sizes if (s, size) in med_gap]
        if not pts:
            continue
        o.write(f'"{s}"\n')
        for size, (m, lo, hi) in pts:
            o.write(f"{size} {max(m, 1e-3)} {max(lo, 1e-3)} {max(hi, 1e-3)}\n")
        o.write("\n\n")
