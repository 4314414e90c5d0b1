#!/usr/bin/env python3
# A small memcached text-protocol client for the systemd tests.
#
#   mc.py freeport                 print a free loopback port (22000-22999)
#   mc.py set PORT N               store key0..keyN-1
#   mc.py check PORT N             every key reads back with its value
#   mc.py hold PORT FILE           one connection: set a key, wait (at most
#                                  60 s) for FILE to exist, then read the key
#                                  on the same connection
#   mc.py wait PORT                until the port answers "version" (30 s)
#   mc.py probe PORT FILE          connect, ask "version", again, until FILE
#                                  exists; fails if any was refused or failed
#                                  otherwise, or more than one was accepted
#                                  and then lost (the one in flight when the
#                                  process died); prints the longest gap
#   mc.py count PORT N STEP [PFX]  how many of keys PFX0, PFXSTEP, ... < N
#                                  exist: "FOUND ASKED"
#   mc.py load PORT N FILE         set ld0..ldN-1 over and over (their
#                                  values larger than value(i)), creating
#                                  FILE.loading after 100 sets, until FILE
#                                  exists (exit 0) or the service dies
#                                  (exit 3); 60 s at most
#   mc.py checkload PORT N         every ld key there has its value:
#                                  "FOUND N"; fails on any other value
import os
import random
import socket
import sys
import time


def value(i):
    return ("value-%d-" % i) + "x" * (i % 200)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def set(self, key, val):
        data = val.encode()
        self.s.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(data), data))
        reply = self.line()
        if reply != b"STORED":
            raise RuntimeError("set %s: %r" % (key, reply))

    def get(self, key):
        self.s.sendall(b"get %s\r\n" % key.encode())
        head = self.line()
        if head == b"END":
            return None
        parts = head.split()
        data = self.exact(int(parts[3]) + 2)[:-2]
        if self.line() != b"END":
            raise RuntimeError("get %s: no END" % key)
        return data.decode()


def main():
    cmd = sys.argv[1]
    if cmd == "freeport":
        for _ in range(50):
            port = random.randint(22000, 22999)
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                s.close()
            print(port)
            return 0
        return 1
    port = int(sys.argv[2])
    if cmd == "wait":
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                c = Conn(port)
                c.s.sendall(b"version\r\n")
                if c.line().startswith(b"VERSION"):
                    return 0
            except OSError:
                time.sleep(0.1)
        return 1
    if cmd == "probe":
        # A new connection each time until FILE exists (60 s at most):
        # count the refused ones and any other failure.
        probes = refused = lost = errors = 0
        last_ok = None
        longest = 0.0
        deadline = time.monotonic() + 60
        while not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:
            probes += 1
            try:
                c = Conn(port)
                c.s.sendall(b"version\r\n")
                if not c.line().startswith(b"VERSION"):
                    errors += 1
                else:
                    now = time.monotonic()
                    if last_ok is not None:
                        longest = max(longest, now - last_ok)
                    last_ok = now
                c.s.close()
            except ConnectionRefusedError:
                refused += 1
            except (EOFError, ConnectionResetError, BrokenPipeError):
                # Accepted by the process that then died: one at most,
                # since the probes go one at a time.
                lost += 1
            except OSError as e:
                errors += 1
                print("probe: %r" % e, file=sys.stderr)
            time.sleep(0.002)
        print("probes=%d refused=%d lost=%d errors=%d longest_gap_ms=%.1f"
              % (probes, refused, lost, errors, longest * 1000))
        return 0 if probes and not refused and not errors and lost <= 1 else 1
    if cmd == "set":
        c = Conn(port)
        for i in range(int(sys.argv[3])):
            c.set("key%d" % i, value(i))
        return 0
    if cmd == "count":
        # How many of every STEP-th key of kvload's keys 0..N-1 are there.
        c = Conn(port)
        n, step = int(sys.argv[3]), int(sys.argv[4])
        prefix = sys.argv[5] if len(sys.argv) > 5 else "k"
        found = asked = 0
        for i in range(0, n, step):
            asked += 1
            c.s.sendall(b"get %s%d\r\n" % (prefix.encode(), i))
            head = c.line()
            if head != b"END":
                c.exact(int(head.split()[3]) + 2)
                c.line()
                found += 1
        print("%d %d" % (found, asked))
        return 0
    if cmd == "load":
        c = Conn(port)
        n = int(sys.argv[3])
        deadline = time.monotonic() + 60
        i = 0
        while not os.path.exists(sys.argv[4]) and time.monotonic() < deadline:
            try:
                c.set("ld%d" % (i % n), value(i % n) * 8)
            except (OSError, EOFError) as e:
                print("load: cut after %d sets: %r" % (i, e), file=sys.stderr)
                return 3  # the service was killed under it
            i += 1
            if i == 100:
                open(sys.argv[4] + ".loading", "w").close()
        print("load: %d sets, not cut" % i, file=sys.stderr)
        return 0
    if cmd == "checkload":
        c = Conn(port)
        n = int(sys.argv[3])
        found = bad = 0
        for i in range(n):
            got = c.get("ld%d" % i)
            if got is None:
                continue
            found += 1
            if got != value(i) * 8:
                bad += 1
                print("ld%d: %r" % (i, got[:60]), file=sys.stderr)
        print("%d %d" % (found, n))
        return 1 if bad else 0
    if cmd == "check":
        c = Conn(port)
        bad = 0
        for i in range(int(sys.argv[3])):
            got = c.get("key%d" % i)
            if got != value(i):
                bad += 1
                if bad < 5:
                    print("key%d: %r" % (i, got), file=sys.stderr)
        if bad:
            print("%d of %s keys wrong" % (bad, sys.argv[3]), file=sys.stderr)
        return 1 if bad else 0
    if cmd == "hold":
        c = Conn(port)
        c.set("held", "across-the-reload")
        deadline = time.monotonic() + 60
        while not os.path.exists(sys.argv[3]):
            if time.monotonic() > deadline:
                print("hold: %s never appeared" % sys.argv[3], file=sys.stderr)
                return 1
            time.sleep(0.05)
        got = c.get("held")
        if got != "across-the-reload":
            print("hold: read back %r" % got, file=sys.stderr)
            return 1
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
