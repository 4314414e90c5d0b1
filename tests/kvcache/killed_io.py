#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A v2 killed right after a read() or a write() on a client's socket.

  killed_io.py KVCACHE LUOCTL FAULTY

FAULTY (kvcache-fault-kill-read or -kill-write) SIGKILLs itself right
after its 20th read from a client (the bytes counted in the connection's
record, still in the socket) or its 20th write to one (written, not yet
counted), during a spawn-mode trial.  Twice: once with a client the old
image had accepted before the update, once with a client that connected
during the trial (accepted by FAULTY, handed back at the rollback).  Each
client sends requests one at a time, among them incr (run twice it would
show) and checks every reply byte for byte: after the rollback the old
image answers each request exactly once, the stream never repeats or
loses an answer, and nothing is left over at the end.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvproc import report, start_kvcache  # noqa: E402


class Client:
    """One connection, one request at a time, every reply checked."""

    def __init__(self, port, tag):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=10)
        self.tag = tag
        self.buf = b''
        self.count = 0
        self.step = 0

    def expect(self, req, want):
        self.s.sendall(req)
        while len(self.buf) < len(want):
            try:
                got = self.s.recv(65536)
            except socket.timeout:
                raise AssertionError('%s: no answer to %r (have %r)' %
                                     (self.tag, req, self.buf))
            if not got:
                raise AssertionError('%s: connection closed after %r' %
                                     (self.tag, req))
            self.buf += got
        if self.buf[:len(want)] != want:
            raise AssertionError('%s: %r answered %r, expected %r' %
                                 (self.tag, req, self.buf[:len(want) + 40],
                                  want))
        self.buf = self.buf[len(want):]

    def one(self):
        """The next request of a set/get/incr cycle."""
        i = self.step
        self.step += 1
        key = b'%s-%d' % (self.tag.encode(), i // 3)
        val = b'v%d-' % i + b'x' * (i % 50)
        if i % 3 == 0:
            self.val = val
            self.expect(b'set %s 0 0 %d\r\n%s\r\n' % (key, len(val), val),
                        b'STORED\r\n')
        elif i % 3 == 1:
            v = self.val
            self.expect(b'get %s\r\n' % key,
                        b'VALUE %s 0 %d\r\n%s\r\nEND\r\n' % (key, len(v), v))
        else:
            self.count += 1
            self.expect(b'incr %s-n 1\r\n' % self.tag.encode(),
                        b'%d\r\n' % self.count)

    def leftover(self):
        self.s.settimeout(0.3)
        try:
            extra = self.s.recv(65536)
        except socket.timeout:
            extra = b''
        self.s.settimeout(10)
        return self.buf + extra


def main():
    kv, luoctl, faulty = sys.argv[1:4]
    tmp = tempfile.mkdtemp()
    log = os.path.join(tmp, 'kvcache.log')
    name = 'kvtest-killedio-%d' % os.getpid()
    p, port = start_kvcache(kv, kv, log, name, [])
    fails = []
    try:
        old = Client(port, 'old')
        for k in ('old', 'new'):
            old.expect(b'set %s-n 0 0 1\r\n0\r\n' % k.encode(),
                       b'STORED\r\n')
        for _ in range(6):
            old.one()
        for who in ('old', 'new'):
            seen = open(log).read().count('kvcache v2: pid')
            upd = subprocess.Popen(
                [luoctl, '-s', name, 'update', '--mode', 'spawn',
                 '--trial', '60s', '--deadline', '5s', faulty],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(200):
                if open(log).read().count('kvcache v2: pid') > seen:
                    break
                time.sleep(0.05)
            else:
                fails.append('%s: the faulty v2 did not adopt' % who)
                upd.kill()
                break
            c = old if who == 'old' else Client(port, 'new')
            if who == 'new':
                c.expect(b'set new-n 0 0 1\r\n0\r\n', b'STORED\r\n')
            try:
                for _ in range(60):
                    c.one()
            except AssertionError as e:
                fails.append(str(e))
                upd.kill()
                break
            out = upd.communicate(timeout=60)[0].decode()
            if upd.returncode != 7 or 'rolled back (killed' not in out:
                fails.append('%s: luoctl exit %d: %s' %
                             (who, upd.returncode, out.strip()))
            if 'test fault: SIGKILL right after' not in open(log).read():
                fails.append('%s: the fault did not fire' % who)
            extra = c.leftover()
            if extra:
                fails.append('%s: %d bytes nobody asked for: %r' %
                             (who, len(extra), extra[:80]))
            if p.poll() is not None:
                fails.append('the old image exited')
                break
            print('ok: client of the %s image: %d requests, each answered '
                  'once, across the kill' % (who, c.step))
    finally:
        p.terminate()
        p.wait()
    return report(fails, log, 'killed_io: every reply exact across the kill')


if __name__ == '__main__':
    sys.exit(main())
