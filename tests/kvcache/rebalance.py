#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Slab pages move between size classes, also after a live update.

kvcache -m 4 (four 1 MiB pages): 100 sets of 100,000-byte values give
every page to one class.  A 10-byte value must still be stored (memcached
answers STORED; without page moves kvcache answered "SERVER_ERROR out of
memory storing object" for good), and so must other sizes after a live
update, a flush_all and deletes.  Every large value still there reads
back intact; stats counts the moves.

usage: rebalance.py KVCACHE KVCACHE_V2
"""
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvproc import report, start_kvcache, update  # noqa: E402


def start(kv, kv2, log):
    return start_kvcache(kv, kv2, log, 'kvreb-%d' % os.getpid(), ['-m', '4'])


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), 5)
        self.s.settimeout(20)
        self.buf = b''

    def ask(self, data, until):
        self.s.sendall(data)
        while not self.buf.endswith(until):
            d = self.s.recv(1 << 20)
            if not d:
                raise SystemExit('connection closed')
            self.buf += d
        r, self.buf = self.buf, b''
        return r


def big(i):
    return (b'%03d' % i) * 33333 + b'x'


def main():
    kv, kv2 = sys.argv[1], os.path.abspath(sys.argv[2])
    log = tempfile.mkdtemp(prefix='kvreb-') + '/kv.log'
    p, port = start(kv, kv2, log)
    fails = []

    def store(c, key, val, what):
        r = c.ask(b'set %s 0 0 %d\r\n%s\r\n' % (key, len(val), val), b'\r\n')
        if r != b'STORED\r\n':
            fails.append('%s: %r' % (what, r))

    try:
        c = Client(port)
        for i in range(100):
            store(c, b'big%d' % i, big(i), 'big%d' % i)
        store(c, b'small10', b'0123456789', 'small10 after the large ones')
        r = c.ask(b'get small10\r\n', b'END\r\n')
        if r != b'VALUE small10 0 10\r\n0123456789\r\nEND\r\n':
            fails.append('get small10: %r' % r)
        if not update(p, log):
            fails.append('update not reported')
        store(c, b'medium', b'm' * 1000, 'a 1000-byte value after the update')
        store(c, b'other', b'o' * 20000, 'a 20000-byte value')
        c.ask(b'flush_all\r\n', b'OK\r\n')
        store(c, b'after-flush', b'f' * 3000, 'a 3000-byte value after flush')
        for i in range(100):
            c.s.sendall(b'delete big%d noreply\r\n' % i)
        store(c, b'big-again', big(7), 'a large value again')
        # the large values stored again read back intact or not at all
        for i in range(100, 130):
            store(c, b'big%d' % i, big(i), 'big%d' % i)
        for i in range(100, 130):
            r = c.ask(b'get big%d\r\n' % i, b'END\r\n')
            v = big(i)
            if r != b'END\r\n' and r != b'VALUE big%d 0 %d\r\n%s\r\nEND\r\n' % (
                    i, len(v), v):
                fails.append('big%d reads back wrong' % i)
        store(c, b'small11', b'abcdefghij', 'small11 at the end')
        r = c.ask(b'stats\r\n', b'END\r\n')
        moved = [int(l.split()[2]) for l in r.split(b'\r\n')
                 if l.startswith(b'STAT slabs_moved ')]
        if not moved or moved[0] < 1:
            fails.append('no page moves counted: %r' % moved)
        print('pages moved between classes: %s' % moved)
    finally:
        p.terminate()
        p.wait(10)
    return report(fails, log,
                  'rebalance: every size stored with -m 4 after the pages '
                  'went to one class, across a live update and a flush_all')


if __name__ == '__main__':
    sys.exit(main())
