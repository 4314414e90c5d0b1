#!/usr/bin/env python3
"""Sum up meson's test logs of several build directories in one line."""
import json
import sys

passed = failed = skipped = 0
for d in sys.argv[1:]:
    try:
        with open(f"{d}/meson-logs/testlog.json") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except OSError:
        print(f"{d}: no test log", file=sys.stderr)
        failed += 1
        continue
    p = sum(r["result"] in ("OK", "EXPECTEDFAIL") for r in rows)
    s = sum(r["result"] == "SKIP" for r in rows)
    f_ = len(rows) - p - s
    for r in rows:
        if r["result"] not in ("OK", "EXPECTEDFAIL", "SKIP"):
            print(f"FAILED: {d}: {r['name']} ({r['result']})")
    print(f"{d}: {p} passed, {f_} failed, {s} skipped")
    passed, failed, skipped = passed + p, failed + f_, skipped + s
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
