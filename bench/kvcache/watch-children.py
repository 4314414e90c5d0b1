#!/usr/bin/env python3
"""Diagnostic, not run by run-gap.sh: print, with CLOCK_MONOTONIC
nanoseconds (the clock gapclient uses; compare with its t_trigger_ns),
every change in the children of PID and their states (S, R, Z).  Used to
time libluo's teardown helper (the child that holds the old image's
address space after a live update) against the client's gaps.

    watch-children.py PID SECONDS
"""
import os, sys, time
pid = sys.argv[1]; end = time.monotonic() + float(sys.argv[2])
prev = None
while time.monotonic() < end:
    try:
        ch = open(f"/proc/{pid}/task/{pid}/children").read().split()
        st = []
        for c in ch:
            try: st.append(c + ":" + open(f"/proc/{c}/stat").read().rsplit(")",1)[1].split()[0])
            except OSError: st.append(c + ":gone")
    except OSError:
        st = ["?"]
    if st != prev:
        print(f"{time.monotonic_ns()} children {st}", flush=True); prev = st
    time.sleep(0.0005)
