#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Bounded memory: clients that ask for huge answers and never read.

kvcache -m 64 holds one item of about 1 MB.  100 clients each send
"get big big ... big" (1,100 times, a 4.4 KB request: 1.1 GB of answer
each) and read nothing.  Values are sent from the item itself and a
connection whose unsent output is over its cap (1 MiB) is not read any
further, so kvcache's resident memory may grow by at most
PER_CONN_BOUND per client over what it was before (asserted; memory
only, never time).  Meanwhile another client is served; then a live
update carries the 100 stalled answers over, and one of the clients
reads its whole answer (every value checked byte for byte) while the
others are still stalled.  After they all leave, the item can be
replaced: no reference is left behind.

usage: bounded_memory.py KVCACHE KVCACHE_V2
"""
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvproc import report, start_kvcache, update  # noqa: E402

CLIENTS = 100
KEYS = 1100
PER_CONN_BOUND = 64 << 10  # input, output text and queue of one client
FIXED_SLACK = 8 << 20      # allocator and library noise, whole process


def rss(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise SystemExit('no VmRSS')


def start(kv, kv2, log):
    return start_kvcache(kv, kv2, log, 'kvmem-%d' % os.getpid(), ['-m', '64', '-c', '1024'])


def request(port, data, until, timeout=30):
    s = socket.create_connection(('127.0.0.1', port), 5)
    s.sendall(data)
    buf = b''
    s.settimeout(timeout)
    while not buf.endswith(until):
        d = s.recv(1 << 20)
        if not d:
            break
        buf += d
    s.close()
    return buf


def main():
    kv, kv2 = sys.argv[1], os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix='kvmem-')
    log = tmp + '/kv.log'
    p, port = start(kv, kv2, log)
    fails = []
    try:
        value = bytes((i * 7 + 3) % 251 for i in range(1000000))
        r = request(port, b'set big 0 0 %d\r\n' % len(value) + value +
                    b'\r\n', b'\r\n')
        if r != b'STORED\r\n':
            raise SystemExit('set big: %r' % r)
        before = rss(p.pid)
        req = b'get' + b' big' * KEYS + b'\r\n'
        socks = []
        for _ in range(CLIENTS):
            s = socket.create_connection(('127.0.0.1', port), 5)
            s.sendall(req)
            socks.append(s)
        # the loop serves others meanwhile (not timed: it must answer)
        r = request(port, b'set other 0 0 2\r\nok\r\nget other\r\n',
                    b'END\r\n')
        if r != b'STORED\r\nVALUE other 0 2\r\nok\r\nEND\r\n':
            fails.append('another client: %r' % r)
        time.sleep(1)
        after = rss(p.pid)
        bound = CLIENTS * PER_CONN_BOUND + FIXED_SLACK
        print('rss before %d KiB, with %d stalled clients %d KiB: +%d KiB '
              '(bound +%d KiB)' % (before >> 10, CLIENTS, after >> 10,
                                   (after - before) >> 10, bound >> 10))
        if after - before > bound:
            fails.append('rss grew by %d KiB, more than %d KiB' %
                         ((after - before) >> 10, bound >> 10))
        # a live update carries the stalled answers over
        if not update(p, log):
            fails.append('update not reported')
        after_update = rss(p.pid)
        print('rss after the update %d KiB' % (after_update >> 10))
        if after_update - before > bound:
            fails.append('rss after the update grew by %d KiB' %
                         ((after_update - before) >> 10))
        # one client reads its whole answer, checked byte for byte
        s = socks.pop()
        s.settimeout(60)
        unit = b'VALUE big 0 %d\r\n' % len(value) + value + b'\r\n'
        total = len(unit) * KEYS + 5
        got = 0
        while got < total:
            d = s.recv(1 << 20)
            if not d:
                break
            # compare with the answer expected at this offset, piecewise
            i = 0
            while i < len(d):
                if got + i >= len(unit) * KEYS:
                    ok = d[i:] == b'END\r\n'[got + i - len(unit) * KEYS:]
                    i = len(d)
                else:
                    u = (got + i) % len(unit)
                    k = min(len(d) - i, len(unit) - u)
                    ok = d[i:i + k] == unit[u:u + k]
                    i += k
                if not ok:
                    break
            if not ok:
                fails.append('answer differs near byte %d' % got)
                break
            got += len(d)
        if got != total:
            fails.append('answer %d bytes, wanted %d' % (got, total))
        s.close()
        for s in socks:
            s.close()
        time.sleep(0.5)
        r = request(port, b'delete big\r\nset big 0 0 3\r\nnew\r\n'
                    b'get big\r\n', b'END\r\n')
        if r != b'DELETED\r\nSTORED\r\nVALUE big 0 3\r\nnew\r\nEND\r\n':
            fails.append('after the clients left: %r' % r)
        r = request(port, b'stats\r\n', b'END\r\n')
        if b'STAT curr_connections 1\r\n' not in r:
            fails.append('connections left: %r' % r[:200])
    finally:
        p.terminate()
        p.wait(10)
    return report(fails, log,
                  'bounded memory: %d clients stalled on %d x 1 MB answers '
                  'each, one read after a live update, all checked'
                  % (CLIENTS, KEYS))


if __name__ == '__main__':
    sys.exit(main())
