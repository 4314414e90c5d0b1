#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""include/luo/abi.h names exactly what a real handover holds.

Usage: handover_names.py E2E_HANDOVER DTC ABI_H

Builds a real handover (e2e-handover gen dtc: sessions, FLBs, subsystems,
devices, a client subtree), has the stock dtc decode its root and LUO FDTs,
and checks that every node and property found is named in abi.h, and the
reverse: every node name, property name and compatible string abi.h
defines is in the handover.  The names the service chooses are the
placeholders of abi.h: CLIENT nodes of the root FDT and NAME properties of
the subsystems node.
"""
import os
import re
import subprocess
import sys
import tempfile


def abi_names(path):
    text = open(path).read()
    d = dict(re.findall(r'#define\s+(\w+)\s+"([^"]*)"', text))
    d.pop("LUO_HANDOVER_ENV", None)  # an environment variable, not FDT
    return d


def parse_dts(path):
    """(node path, property or None, value) for every line of a dts."""
    items, stack = [], []
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("/dts-v1/"):
            continue
        m = re.match(r"^(\S+)\s*\{$", line)
        if m:
            stack.append(m.group(1) if m.group(1) != "/" else "")
            items.append(("/".join(stack) or "/", None, None))
            continue
        if line == "};":
            stack.pop()
            continue
        m = re.match(r"^([^\s=;{}]+)(?:\s*=\s*(.*))?;$", line)
        if not m:
            raise SystemExit(f"{path}: cannot read line: {line}")
        items.append(("/".join(stack) or "/", m.group(1), m.group(2) or ""))
    return items


def main():
    e2e, dtc, abi_h = sys.argv[1:4]
    if not dtc:
        print("handover-names: SKIP: dtc is not installed")
        return 77
    names = abi_names(abi_h)
    known = set(names.values())
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LUO_E2E_DTS_DIR=tmp)
        r = subprocess.run([e2e, "gen", "dtc", dtc], env=env,
                           capture_output=True, text=True)
        if r.returncode:
            print(r.stdout, r.stderr)
            raise SystemExit(f"e2e-handover gen dtc failed ({r.returncode})")
        root = parse_dts(os.path.join(tmp, "root.dts"))
        luo = parse_dts(os.path.join(tmp, "luo.dts"))
    seen, bad = set(), 0

    def check(blob, what, name):
        nonlocal bad
        seen.add(name)
        if name not in known:
            print(f"handover-names: {blob}: {what} '{name}' is not named "
                  "in luo/abi.h")
            bad = 1

    entry = names["LUO_FDT_KHO_ENTRY_NAME"]
    for node, prop, val in root:
        parts = [n for n in node.split("/") if n]
        if len(parts) == 1 and parts[0] != entry:  # a CLIENT node
            if prop is not None:
                check("root", f"client {parts[0]}: property", prop)
            continue
        for n in parts:
            check("root", "node", n)
        if prop is not None:
            check("root", "property", prop)
            if prop == names["LUO_FDT_COMPATIBLE_PROP"]:
                check("root", "compatible", val.strip('"'))
    for node, prop, val in luo:
        parts = [n for n in node.split("/") if n]
        for n in parts:
            check("LUO", "node", n)
        if prop is None:
            continue
        if parts == [names["LUO_SUBSYSTEMS_NODE"]] and \
                prop != names["LUO_FDT_COMPATIBLE_PROP"]:
            continue  # a NAME property: one per subsystem
        check("LUO", f"{node}: property", prop)
        if prop == names["LUO_FDT_COMPATIBLE_PROP"]:
            check("LUO", f"{node}: compatible", val.strip('"'))
    for macro, value in sorted(names.items()):
        if value not in seen:
            print(f"handover-names: luo/abi.h defines {macro} \"{value}\", "
                  "which the handover does not hold")
            bad = 1
    if not bad:
        print(f"handover-names: ok: {len(seen)} names, each in luo/abi.h, "
              f"and all {len(names)} of luo/abi.h in the handover")
    return bad


if __name__ == "__main__":
    sys.exit(main())
