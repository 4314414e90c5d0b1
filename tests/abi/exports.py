#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libluo.so exports exactly the functions declared in include/luo/.

Usage: exports.py LIBLUO_SO INCLUDE_DIR

Lists the dynamic symbols with `nm -D --defined-only`; fails on any name
not declared in a public header (an internal symbol a program could
silently replace) and on any public function the library does not export.
"""
import pathlib
import re
import subprocess
import sys


def declared(include_dir):
    names = set()
    for h in sorted(pathlib.Path(include_dir).glob("luo/*.h")):
        text = h.read_text()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        text = re.sub(r"^\s*#[^\n]*(\\\n[^\n]*)*", " ", text, flags=re.M)
        names.update(re.findall(r"\b((?:luo|liveupdate|kho)_\w+)\s*\(", text))
    return names


def exported(so):
    out = subprocess.run(["nm", "-D", "--defined-only", so], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 3 or f[1] == "A":  # the version node itself
            continue
        names.add(f[2].split("@")[0])
    return names


def main():
    so, inc = sys.argv[1], sys.argv[2]
    pub, exp = declared(inc), exported(so)
    bad = 0
    for n in sorted(exp - pub):
        print(f"{so}: exports {n}, which no header in include/luo/ declares")
        bad = 1
    for n in sorted(pub - exp):
        print(f"{so}: does not export {n}, declared in include/luo/ "
              "(add it to src/libluo.map)")
        bad = 1
    if not bad:
        print(f"ok: {len(exp)} exported symbols, all of them the public API")
    return bad


if __name__ == "__main__":
    sys.exit(main())
