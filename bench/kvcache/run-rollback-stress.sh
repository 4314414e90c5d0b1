#!/usr/bin/env bash
# Issue 11's repetitions of the bad updates, in full: the program of the
# kvcache-rollback test (tests/kvcache/rollback.sh) with every bad-update
# case repeated REPEAT times (20) under kvload and memcaslap, clients
# connected during the trial REPEAT times per kind, then ALT (50) good and
# bad updates alternating under one load.  The suite runs the same program
# with 3 and 10 to stay short.  Prints, per case: runs, luoctl's exit
# codes, the reasons reported, the rollback times (from the old image
# seeing the failure to serving again, as luoctl reports them), and per
# load: kvload's errors, dropped connections, wrong values and timeouts,
# memcaslap's misses and wrong values.  Writes bench/results/
# kvcache-rollback-stress.md and kvcache-rollback-stress.csv (the raw
# lines).  See bench/kvcache/README.md.
#
#   bench/kvcache/run-rollback-stress.sh [BUILD_DIR [REPEAT [ALT [OUT_DIR]]]]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
repeat=${2:-20}
alt=${3:-50}
out=${4:-$repo/bench/results}
kv=$build/examples/kvcache
for f in "$kv/kvcache" "$kv/kvcache-v2" "$kv/kvload" "$build/tools/luoctl/luoctl"; do
	[ -x "$f" ] || { echo "run-rollback-stress: $f is missing: build first (ninja -C $build)" >&2; exit 2; }
done
mkdir -p "$out"
work=$(mktemp -d /tmp/kv-rollback-stress.XXXXXX)
trap 'rm -rf "$work"' EXIT
rec=$work/records
: >"$rec"
start=$(date -u +%s)
echo "run-rollback-stress: $repeat repetitions per case, $alt alternations (log: $work/log)"
ROLLBACK_RECORD=$rec "$repo/tests/kvcache/rollback.sh" "$kv/kvcache" "$kv/kvcache-v2" \
	"$kv/kvload" "$build/tools/luoctl/luoctl" "$kv" "$repeat" "$alt" >"$work/log" 2>&1
rc=$?
secs=$(($(date -u +%s) - start))
[ $rc = 0 ] || { echo "run-rollback-stress: the test program failed (exit $rc):" >&2; grep -m5 FAIL "$work/log" >&2; }
cp "$rec" "$out/kvcache-rollback-stress.csv"

rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo" status --porcelain --untracked-files=no -- . ':!bench/results' 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
python3 - "$rec" "$out/kvcache-rollback-stress.md" "$repeat" "$alt" "$rc" "$secs" "$rev$dirty" \
	"$(nproc)" "$(command -v memcaslap >/dev/null && echo yes || echo no)" <<'EOF'
import collections, re, statistics, sys, datetime

rec, md, repeat, alt, rc, secs, rev, cpus, slap = sys.argv[1:]
updates = collections.OrderedDict()
loads = []
for line in open(rec):
    f = line.rstrip("\n").split("|")
    if f[0] == "update" and len(f) >= 5:
        u = updates.setdefault(f[1], {"codes": collections.Counter(),
                                      "reasons": collections.Counter(),
                                      "ms": []})
        u["codes"][f[2]] += 1
        u["reasons"][f[3]] += 1
        try:
            u["ms"].append(float(f[4]))
        except ValueError:
            pass
    elif f[0] == "load" and len(f) >= 3:
        loads.append(f[1:] + [""] * (4 - len(f)))


def counts(c):
    return ", ".join(f"{k} x{v}" for k, v in c.most_common())


def ms(v):
    if not v:
        return "-"
    return (f"{statistics.median(v):.2f} / {max(v):.2f}")


lines = []
p = lines.append
p("# kvcache: every bad update repeated, then good and bad alternating")
p("")
p(f"`bench/kvcache/run-rollback-stress.sh build {repeat} {alt}` on "
  f"{datetime.date.today()}, tree {rev}, {cpus} CPUs (shared), "
  f"{int(secs) // 60} min {int(secs) % 60} s; memcaslap: {slap}; "
  f"the test program exited {rc} ({'all checks passed' if rc == '0' else 'FAILED'}).")
p("")
p("Each case runs under kvload (50 connections, depth 4) and memcaslap; "
  "luoctl exits 7 for a rollback, 0 for a commit.  Time: the rollback "
  "(the old image seeing the failure to serving again) for bad updates, "
  "the blackout for good ones; median / max in ms, as luoctl reports them.")
p("")
p("| case | runs | luoctl exit codes | reasons | time ms (median / max) |")
p("|---|---|---|---|---|")
for name, u in updates.items():
    p(f"| {name} | {sum(u['codes'].values())} | {counts(u['codes'])} | "
      f"{counts(u['reasons'])} | {ms(u['ms'])} |")
p("")
p("| load over | kvload requests | errors | mismatches | misses | dropped connections | timeouts | memcaslap get / verify misses, wrong values |")
p("|---|---|---|---|---|---|---|---|")
for what, kl, sl in (l[:3] for l in loads):
    kv = dict(re.findall(r"(\w+)=(\S+)", kl))
    sm = dict(re.findall(r"(\w+): (\d+)", sl))
    slap_s = (f"{sm.get('get_misses', '-')} / {sm.get('verify_misses', '-')}, "
              f"{sm.get('verify_failed', '-')}") if sm else "-"
    p(f"| {what} | {kv.get('requests', '-')} | {kv.get('errors', '-')} | "
      f"{kv.get('mismatches', '-')} | {kv.get('misses', '-')} | "
      f"{kv.get('conn_errors', '-')} | {kv.get('timeouts', '-')} | {slap_s} |")
p("")
p("After every load the 5,000 populated keys are verified and a connection "
  "held since the start still answers, and kvload and memcaslap must be "
  "clean, for the v2s SIGKILLed at any instant of their trial too (the "
  "program fails otherwise; docs/kvcache.md, \"A kill at any instant\").")
open(md, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "run-rollback-stress: wrote $out/kvcache-rollback-stress.md and .csv"
exit $rc
