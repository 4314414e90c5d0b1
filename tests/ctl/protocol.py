#!/usr/bin/env python3
"""The control protocol's edges, on raw sockets, against the counter example
(docs/control-protocol.md): every line gets exactly one answer, NUL bytes
never cut a request short, pipelined requests survive an update, no close
is seen as a reset, and a peer the old image accepted before a spawn-mode
update is not left waiting through the trial.

    protocol.py COUNTER_V1 COUNTER_V2
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

V1, V2 = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg)


class Peer:
    """A control connection read line by line; a reset is recorded."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect(path)
        self.buf = b""
        self.reset = False
        self.timedout = False
        self.greeting = self.line()

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        """The next line without its newline; None at end of file."""
        while b"\n" not in self.buf:
            try:
                chunk = self.s.recv(65536)
            except ConnectionResetError:
                self.reset = True
                chunk = b""
            except socket.timeout:
                self.timedout = True
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("ascii", "replace")

    def reply(self):
        """Lines up to and including the final ok/error; None at EOF."""
        lines = []
        while True:
            line = self.line()
            if line is None:
                return None
            lines.append(line)
            if line == "ok" or line.startswith("error "):
                return lines

    def close(self):
        self.s.close()


def field(reply, key):
    """KEY's value in the first line of a status reply."""
    for word in (reply[0].split() if reply else []):
        if word.startswith(key + "="):
            return word[len(key) + 1:]
    return None


def final(reply):
    return reply[-1] if reply else "(end of file)"


tmp = tempfile.mkdtemp(prefix="luo-proto.")
sock = os.path.join(tmp, "c.sock")
log = open(os.path.join(tmp, "counter.log"), "w")
proc = subprocess.Popen(
    [V1, "--size", "4", "--control-path", sock, "--control", "proto"],
    stdout=log, stderr=subprocess.STDOUT)
try:
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    else:
        fail("no control socket")
        sys.exit(1)

    p = Peer(sock)
    if not p.greeting or not p.greeting.startswith("luo 1 proto "):
        fail("greeting: %r" % p.greeting)

    # Lines that used to get no answer at all, or ran "status".
    for what, data, want in [
        ("an empty line", b"\n", "error EINVAL"),
        ("a line of spaces", b"   \n", "error EINVAL"),
        ("a NUL-first line", b"\0status\n", "error EINVAL"),
        ("status NUL junk", b"status\0junk\n", "error EINVAL"),
        ("status %00 junk", b"status%00junk\n", "error EINVAL"),
        ("a bad escape", b"status%zz\n", "error EINVAL"),
    ]:
        p.send(data)
        r = p.reply()
        if not r or len(r) != 1 or not r[0].startswith(want):
            fail("%s: got %r, expected one '%s' line" % (what, r, want))

    # Pipelined requests: one answer each, in order.
    p.send(b"status\n\nstatus\n")
    answers = [final(p.reply()) for _ in range(3)]
    if answers[0] != "ok" or not answers[1].startswith("error EINVAL") or \
            answers[2] != "ok":
        fail("three pipelined lines: %r" % answers)

    # An over-long line: one error, and the connection stays usable.
    p.send(b"x" * 70000 + b"\nstatus\n")
    r1, r2 = p.reply(), p.reply()
    if not r1 or not r1[-1].startswith("error E2BIG"):
        fail("over-long line: %r" % r1)
    if final(r2) != "ok":
        fail("after an over-long line: %r" % r2)
    if p.reset:
        fail("over-long line: the peer saw a reset")

    # A last line without its newline: answered, then end of file.
    p.send(b"status")
    p.s.shutdown(socket.SHUT_WR)
    r = p.reply()
    if not r or not r[-1].startswith("error EINVAL"):
        fail("a request cut by end of file: %r" % r)
    if p.line() is not None or p.reset:
        fail("after the cut request: no clean end of file (reset %s)" %
             p.reset)
    p.close()

    # A peer that stops reading: its later requests wait in its socket
    # (one reply at a time), so it is still connected when the update
    # execs; it must see its data and end of file, not a reset.
    idle = Peer(sock)
    slow = Peer(sock)
    slow.s.setblocking(False)
    sent = 0
    try:
        for _ in range(40):
            slow.s.send(b"status\n" * 1000)
            sent += 1
    except BlockingIOError:
        pass
    slow.s.settimeout(20)
    time.sleep(0.5)  # let the service fill the socket; no assertion on it

    # An update and a status in one write: both answered, the status by
    # the new image.
    u = Peer(sock)
    u.send(("update args %s --size 4 --control-path %s --control proto\n"
            "status\n" % (V2, sock)).encode())
    r = u.reply()
    if not r or r[-1] != "ok":
        fail("update: %r" % r)
    else:
        stages = [l.split()[1] for l in r if l.startswith("stage ")]
        if stages != ["prepare", "freeze", "exec", "boot", "ready"]:
            fail("update stages: %r" % stages)
    r = u.reply()
    if not r or r[-1] != "ok" or "num=1" not in r[0]:
        fail("status sent with the update was lost: %r" % r)
    if u.reset:
        fail("the update's connection saw a reset")

    # The others: end of file after what was sent, never a reset.
    if idle.line() is not None or idle.reset:
        fail("an idle peer at the exec: no clean end of file (reset %s)" %
             idle.reset)
    n = 0
    while slow.line() is not None:
        n += 1
    if slow.reset:
        fail("a peer with unread requests at the exec saw a reset "
             "(after %d lines)" % n)
    for peer in (idle, slow, u):
        peer.close()

    # A spawn-mode update with a trial: the old image's loop runs the
    # update, so a peer it accepted earlier gets its answer, or a clean
    # end of file, now (it reconnects to the new image), not after the
    # trial.
    old = Peer(sock)
    for _ in range(400):  # the image the exec started finishes on its own
        old.send(b"status\n")
        r = old.reply()
        if final(r) != "ok" or field(r, "state") == "normal":
            break
        time.sleep(0.05)
    if final(r) != "ok" or field(r, "state") != "normal":
        fail("status before the spawn update: %r" % r)
    old_pid = field(r, "pid")
    u = Peer(sock)
    u.send(("update args mode=spawn trial_ms=60000 %s --size 4 "
            "--control-path %s --control proto\n" % (V2, sock)).encode())
    stages = []
    while "adopted" not in stages:
        line = u.line()
        if line is None or not line.startswith("stage "):
            fail("spawn update before adoption: %r after %r" %
                 (line, stages))
            break
        stages.append(line.split()[1])
    try:
        old.send(b"status\n")
    except BrokenPipeError:
        pass  # closed for reading: the end of file follows
    lines = []
    while True:
        line = old.line()
        if line is None:
            break
        lines.append(line)
    if old.timedout:
        fail("a peer of the old image waits through the spawn trial: "
             "no answer and no end of file in 20 s (got %r)" % lines)
    if old.reset:
        fail("a peer of the old image at the spawn update saw a reset")
    old.close()
    # The new image answers during the trial; a rollback ends it and the
    # old image serves again.
    t = Peer(sock)
    t.send(b"status\n")
    r = t.reply()
    if final(r) != "ok" or field(r, "pid") == old_pid or \
            field(r, "trial") != "running":
        fail("status during the trial, from the new image: %r" % r)
    t.send(b"rollback testing\n")
    if final(t.reply()) != "ok":
        fail("rollback during the trial")
    t.close()
    r = u.reply()
    if not r or not r[-1].startswith("error ECANCELED"):
        fail("spawn update after the rollback: %r" % r)
    u.close()
    a = Peer(sock)
    a.send(b"status\n")
    r = a.reply()
    if final(r) != "ok" or field(r, "pid") != old_pid:
        fail("after the rollback the old image (pid %s) serves: %r" %
             (old_pid, r))
    a.close()
finally:
    proc.kill()
    proc.wait()
    log.close()
    if failures:
        print(open(os.path.join(tmp, "counter.log")).read())
    shutil.rmtree(tmp)

if failures:
    print("protocol: %d failures" % failures)
    sys.exit(1)
print("protocol: all checks passed")
