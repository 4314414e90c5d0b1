# SPDX-License-Identifier: MIT
# gdb script: count the CPUID instructions a program executes, from its
# first instruction to its exit, in every object it maps (the program,
# ld.so, every shared library), and say which functions ran them.
#
#   gdb -q -batch -x bench/cpuid_count.py --args PROGRAM ARGS...
#
# Every CPUID in the mapped objects (found with objdump) gets a
# breakpoint; objects are scanned at the first instruction and again at
# every shared-library event.  Prints "cpuid total N" and one line per
# function.  Needs objdump.
import collections
import re
import subprocess

import gdb

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set breakpoint pending off")

scanned = set()
sites = {}  # address -> function
hits = collections.Counter()


def cpuid_sites(path):
    """(file offset, function) of every cpuid in @path."""
    out = subprocess.run(["objdump", "-d", "-F", "--no-show-raw-insn", path],
                         capture_output=True, text=True).stdout
    func, fvaddr, foff = None, 0, 0
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.+)> \(File Offset: 0x([0-9a-f]+)\):", line)
        if m:
            fvaddr, func, foff = int(m.group(1), 16), m.group(2), int(m.group(3), 16)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+cpuid\b", line)
        if m and func:
            yield int(m.group(1), 16) - fvaddr + foff, func


def scan():
    maps = gdb.execute("info proc mappings", to_string=True)
    for line in maps.splitlines():
        f = line.split()
        if len(f) < 6 or not f[-1].startswith("/") or "x" not in f[4]:
            continue
        start, end, off, path = int(f[0], 16), int(f[1], 16), int(f[3], 16), f[-1]
        if (path, start) in scanned:
            continue
        scanned.add((path, start))
        for foff, func in cpuid_sites(path):
            if off <= foff < off + (end - start):
                addr = start + foff - off
                if addr not in sites:
                    sites[addr] = f"{path.rsplit('/', 1)[-1]}:{func}"
                    gdb.execute(f"break *{addr:#x}", to_string=True)


gdb.execute("starti", to_string=True)
gdb.execute("set stop-on-solib-events 1")
scan()
while True:
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error:
        break
    try:
        pc = int(gdb.parse_and_eval("$pc"))
    except gdb.error:
        break  # exited
    if pc in sites:
        hits[sites[pc]] += 1
    else:
        scan()  # a library was loaded
print(f"cpuid total {sum(hits.values())}")
for where, n in sorted(hits.items(), key=lambda x: -x[1]):
    print(f"cpuid {n:4d} {where}")
