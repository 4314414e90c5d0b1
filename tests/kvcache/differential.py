#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Differential test: kvcache against Debian's memcached, byte for byte.

Starts memcached and kvcache on free loopback ports with the same options,
sends both the same request streams (text and binary protocol, one fresh
connection per case) and compares the replies byte for byte.  Only the
version string and the values of statistics (their names and order are
compared) are normalised; every other deliberate difference is named in
ALLOWED with its reason (docs/kvcache.md explains them).
The request streams are in differential_streams.py.

Modes:
  plain     every case once, no update
  cut       every case once per request, with a live update of kvcache
            (SIGUSR1) while that request is half sent
  updates4  all cases in one run with 4 live updates fired at spread-out
            points while the stream is being sent
  load      as updates4, while background clients set and get their own
            keys on kvcache (values checked, no connection may drop); cas
            values are not compared then (the load uses cas ids too), nor
            the slab and item statistics (which hold the load's items)

Exit status: 0 if every reply matched, 1 on any difference, 77 if
memcached is not installed.
"""
import argparse
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

# The request streams: a table of its own (differential_streams.py).
from differential_streams import (B_NOOP_SENTINEL, NOOP, PAUSE, SENT_OPAQUE,
                                  STAT, T_SENTINEL, VERSION, binary_cases,
                                  text_cases)

# Deliberate differences, by case name: the reason is printed with the case.
ALLOWED = {
    'multiget-600000-hits-one-write':
        'memcached 1.6.18 stops sending values after about 60,000 hits in '
        'one get (and still ends with END); kvcache sends every one',
    'multiget-600000-hits-two-segments':
        'the same, the line arriving in two segments',
    'stats-conns':
        'stats conns is not implemented (kvcache answers ERROR); its names '
        'are descriptor numbers anyway',
}

# Statistics only kvcache has, after memcached's: dropped before comparing.
KVCACHE_ONLY_STATS = {
    b'live_updates': 'live updates of this process (kvcache only)',
    b'live_update_last_blackout_us': 'the last update\'s blackout',
    b'conn_epoll_adds': 'clients this image registered with epoll',
}

# ---------------------------------------------------------------- servers

def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, name, argv, log, ready):
        self.name, self.log = name, log
        for _ in range(20):
            self.port = free_port()
            a = [x.replace('PORT', str(self.port)) for x in argv]
            self.proc = subprocess.Popen(a, stdout=open(log, 'w'),
                                         stderr=subprocess.STDOUT)
            for _ in range(100):
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(('127.0.0.1', self.port),
                                             0.2).close()
                    if ready():
                        return
                except OSError:
                    pass
                time.sleep(0.05)
            self.stop()
        raise SystemExit('%s did not start: %s' % (name, open(log).read()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class KvServer(Server):
    def __init__(self, argv, log):
        super().__init__('kvcache', argv, log,
                         lambda: 'fresh start' in open(log).read())
        self.updates = 0

    def update_start(self):
        self.updates += 1
        os.kill(self.proc.pid, signal.SIGUSR1)

    def update_wait(self):
        want = 'live update #%d ' % self.updates
        for _ in range(400):
            if want in open(self.log).read():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.025)
        raise SystemExit('kvcache: update #%d not reported:\n%s' %
                         (self.updates, open(self.log).read()))


# ---------------------------------------------------------------- exchange

def recv_until(s, done, timeout=8):
    """Read until done(buffer) or EOF; returns (bytes, closed)."""
    buf = b''
    end = time.monotonic() + timeout
    while not done(buf):
        left = end - time.monotonic()
        if left <= 0:
            return buf, False
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            d = s.recv(1 << 20)
        except ConnectionResetError:
            return buf, True
        if not d:
            return buf, True
        buf += d
    return buf, False


def text_done(buf):
    return buf.endswith(b'MN\r\n')


def bin_done(buf):
    return len(buf) >= 24 and buf[-24] == 0x81 and buf[-23] == NOOP and \
        struct.unpack('>I', buf[-12:-8])[0] == SENT_OPAQUE


def stream_bytes(case):
    data = [r for r in case.reqs if r is not PAUSE]
    if case.end == 'sentinel':
        data.append(B_NOOP_SENTINEL if case.binary else T_SENTINEL)
    return data


def exchange(port, case, cut=None, on_cut=None, after_cut=None):
    """Send a case; cut=(request index, byte) splits the stream there."""
    s = socket.create_connection(('127.0.0.1', port), 5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(True)
    got = b''
    reqs = list(case.reqs)
    if case.end == 'sentinel':
        reqs.append(B_NOOP_SENTINEL if case.binary else T_SENTINEL)
    sender_err = []

    def send_all():
        try:
            idx = 0
            for r in reqs:
                if r is PAUSE:
                    time.sleep(0.1)
                    continue
                if cut is not None and idx == cut[0]:
                    s.sendall(r[:cut[1]])
                    time.sleep(0.02)
                    on_cut()
                    after_cut()
                    s.sendall(r[cut[1]:])
                else:
                    s.sendall(r)
                idx += 1
        except OSError as e:
            sender_err.append(e)

    th = threading.Thread(target=send_all)
    th.start()
    done = (lambda b: False) if case.end == 'close' else \
        (bin_done if case.binary else text_done)
    got, closed = recv_until(s, done)
    th.join()
    s.close()
    return got + (b'<closed>' if closed else b'')


def normalise(data, binary):
    """Version strings and statistics values differ by nature."""
    data = re.sub(rb'VERSION [^\r\n]*\r\n', b'VERSION *\r\n', data)
    data = re.sub(rb'STAT ([^ \r\n]+) [^\r\n]*\r\n', rb'STAT \1 *\r\n', data)
    if not binary:
        return data
    out, i = b'', 0
    while i + 24 <= len(data) and data[i] == 0x81:
        op, kl, el = data[i + 1], struct.unpack('>H', data[i + 2:i + 4])[0], \
            data[i + 4]
        bl = struct.unpack('>I', data[i + 8:i + 12])[0]
        body = data[i + 24:i + 24 + bl]
        hdr = bytearray(data[i:i + 24])
        if (op == VERSION or op == STAT) and bl > kl + el:
            body = body[:el + kl] + b'*'
            hdr[8:12] = struct.pack('>I', len(body))
        out += bytes(hdr) + body
        i += 24 + bl
    return out + data[i:]


def flush(port):
    s = socket.create_connection(('127.0.0.1', port), 5)
    s.sendall(b'flush_all\r\n')
    recv_until(s, lambda b: b.endswith(b'\r\n'), 5)
    s.close()


def show(b):
    r = repr(b)
    return r if len(r) < 600 else r[:300] + ' ... ' + r[-300:]


def drop_own_stats(data, binary):
    for name in KVCACHE_ONLY_STATS:
        data = re.sub(rb'STAT ' + name + rb' [^\r\n]*\r\n', b'', data)
        if binary:
            hdr = struct.pack('>BBH', 0x81, STAT, len(name))
            i = data.find(hdr)
            while i >= 0:
                bl = struct.unpack('>I', data[i + 8:i + 12])[0]
                if data[i + 24:i + 24 + len(name)] == name:
                    data = data[:i] + data[i + 24 + bl:]
                    i = data.find(hdr, i)
                else:
                    i = data.find(hdr, i + 1)
    return data


def drop_cas(data, binary):
    """Under load other clients use cas ids too: compare without them."""
    if not binary:
        return re.sub(rb'(VALUE [^ \r\n]+ \d+ \d+) \d+\r\n', rb'\1 *\r\n',
                      data)
    out, i = bytearray(data), 0
    while i + 24 <= len(out) and out[i] == 0x81:
        out[i + 16:i + 24] = bytes(8)
        i += 24 + struct.unpack('>I', bytes(out[i + 8:i + 12]))[0]
    return bytes(out)


UNDER_LOAD = False


def compare(name, want, got, binary, failures):
    w = normalise(want, binary)
    g = normalise(drop_own_stats(got, binary), binary)
    if UNDER_LOAD:
        w, g = drop_cas(w, binary), drop_cas(g, binary)
    if w == g:
        return True
    if name in ALLOWED:
        print('  %s: differs as allowed (%s)' % (name, ALLOWED[name]))
        return True
    failures.append(name)
    print('FAIL %s:\n  memcached: %s\n  kvcache:   %s' % (name, show(w),
                                                            show(g)))
    return False


# ---------------------------------------------------------------- special

def check_conn_limit(args, tmp, failures):
    """-c: the connection over the limit gets memcached's message."""
    mc = Server('memcached', mc_argv(args, ['-c', '32']), tmp + '/mc-c.log',
                lambda: True)
    kv = KvServer(kv_argv(args, ['-c', '32'], 'c'), tmp + '/kv-c.log')
    replies = []
    try:
        for srv in (mc, kv):
            socks, msg = [], b'<none>'
            for _ in range(80):
                s = socket.create_connection(('127.0.0.1', srv.port), 5)
                socks.append(s)
                r, _, _ = select.select([s], [], [], 0.3)
                if r:
                    msg, _ = recv_until(s, lambda b: False, 2)
                    break
            replies.append(msg)
            for s in socks:
                s.close()
    finally:
        mc.stop()
        kv.stop()
    compare('conn-limit', replies[0], replies[1], False, failures)


def check_large_items(args, tmp, failures):
    """-m 64 holds 100 values of 573,440 bytes (chained chunks), as in
    memcached, also across a live update; a 10-byte value after filling
    -m 4 with 100,000-byte ones is stored (pages move between classes)."""
    for mem, n, size, extra in (('64', 100, 573440, None),
                                ('4', 100, 100000, b'small10')):
        mc = Server('memcached', mc_argv(args, ['-m', mem]),
                    tmp + '/mc-big.log', lambda: True)
        kv = KvServer(kv_argv(args, ['-m', mem], 'big'), tmp + '/kv-big.log')
        out = []
        try:
            for srv in (mc, kv):
                s = socket.create_connection(('127.0.0.1', srv.port), 5)
                got = b''
                for i in range(n):
                    v = (b'%05d' % i) * (size // 5)
                    s.sendall(b'set big%d 0 0 %d\r\n%s\r\n' % (i, len(v), v))
                    r, _ = recv_until(s, lambda b: b.endswith(b'\r\n'))
                    got += r
                if srv is kv:
                    kv.update_start()
                    kv.update_wait()
                if extra:
                    s.sendall(b'set %s 0 0 10\r\n0123456789\r\nget %s\r\n'
                              % (extra, extra))
                    r, _ = recv_until(s, lambda b: b.endswith(b'END\r\n'))
                    got += r
                else:
                    for i in range(n):
                        s.sendall(b'get big%d\r\n' % i)
                        r, _ = recv_until(s, lambda b: b.endswith(b'END\r\n'))
                        got += r
                s.close()
                out.append(got)
        finally:
            mc.stop()
            kv.stop()
        compare('large-items-m%s' % mem, out[0], out[1], False, failures)


def check_bad_listen(args, tmp, failures):
    """A bad -l leaves no control socket file behind."""
    log = tmp + '/kv-bad-l.log'
    p = subprocess.run([args.kvcache, '-v', '-l', '999.0.0.1', '-p', '0',
                        '--name', 'kvdiff-badl-%d' % os.getpid()],
                       stdout=open(log, 'w'), stderr=subprocess.STDOUT,
                       timeout=20)
    text = open(log).read()
    m = re.search(r'control socket (\S+)', text)
    if p.returncode == 0 or (m and os.path.exists(m.group(1))):
        failures.append('bad-listen')
        print('FAIL bad-listen: exit %d, log:\n%s' % (p.returncode, text))


# ---------------------------------------------------------------- load

class Load:
    """Clients setting and reading back their own keys on kvcache."""

    def __init__(self, port, n=8):
        self.port, self.stop, self.errors, self.ops = port, False, [], 0
        self.threads = [threading.Thread(target=self.run, args=(i,))
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def run(self, i):
        try:
            s = socket.create_connection(('127.0.0.1', self.port), 5)
            rnd = random.Random(i)
            k = 0
            while not self.stop:
                k += 1
                key = b'load:%d:%d' % (i, k % 50)
                val = b'%d-%d-' % (i, k) + b'v' * rnd.randrange(1, 3000)
                s.sendall(b'set %s 0 0 %d\r\n%s\r\nget %s\r\n' %
                          (key, len(val), val, key))
                want_hit = b'STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n' % (
                    key, len(val), val)
                want_miss = b'STORED\r\nEND\r\n'  # flushed meanwhile
                buf, closed = recv_until(
                    s, lambda b: b.endswith(b'END\r\n'), 30)
                if closed or buf not in (want_hit, want_miss):
                    self.errors.append('client %d: %s' % (i, show(buf)))
                    return
                self.ops += 1
            s.close()
        except OSError as e:
            self.errors.append('client %d: %s' % (i, e))

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


# ---------------------------------------------------------------- main

def mc_argv(args, extra):
    a = [args.memcached, '-U', '0', '-l', '127.0.0.1', '-p', 'PORT', '-t',
         '1', '-I', '1m', '-c', '1024'] + \
        ([] if '-m' in extra else ['-m', '64'])
    if os.geteuid() == 0:
        a += ['-u', 'root']
    return a + extra


def kv_argv(args, extra, tag):
    return [args.kvcache, '-U', '0', '-l', '127.0.0.1', '-p', 'PORT', '-t',
            '1', '-I', '1m', '-c', '1024', '--update-to',
            args.kvcache_v2, '--name', 'kvdiff-%d-%s' % (os.getpid(), tag)
            ] + ([] if '-m' in extra else ['-m', '64']) + extra


def largest_value():
    # memcached's item header with cas (56 bytes), the key "a" and its NUL,
    # the value's "\r\n": what fits in -I 1m.
    return (1 << 20) - 56 - 2 - 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--memcached', default=shutil.which('memcached'))
    ap.add_argument('--kvcache', required=True)
    ap.add_argument('--kvcache-v2', required=True)
    ap.add_argument('--mode', default='plain',
                    choices=['plain', 'cut', 'updates4', 'load'])
    ap.add_argument('--only', help='regular expression of case names')
    args = ap.parse_args()
    if not args.memcached or not os.access(args.memcached, os.X_OK):
        print('memcached is not installed: skipping')
        return 77
    args.kvcache_v2 = os.path.abspath(args.kvcache_v2)
    tmp = tempfile.mkdtemp(prefix='kvdiff-')
    big = largest_value()
    tc, bc = text_cases(big), binary_cases(big)
    # the statistics cases first (see text_cases)
    # (items first: memcached's crawler reclaims flushed items at its own
    # pace, so "stats items" must not follow a case that left one)
    cases = [c for c in tc + bc if 'stat' in c.name and 'items' in c.name] + \
        [c for c in tc + bc if 'stat' in c.name and 'items' not in c.name] + \
        [c for c in tc + bc if 'stat' not in c.name]
    if args.only:
        cases = [c for c in cases if re.search(args.only, c.name)]
    if args.mode == 'load':
        # the load's own items are in kvcache's slab and item statistics
        global UNDER_LOAD
        UNDER_LOAD = True
        cases = [c for c in cases if not re.search('stat.*(items|slabs)',
                                                   c.name)]
    failures = []
    mc = Server('memcached', mc_argv(args, []), tmp + '/mc.log',
                lambda: True)
    kv = KvServer(kv_argv(args, [], 'main'), tmp + '/kv.log')
    load = Load(kv.port) if args.mode == 'load' else None
    runs = 0
    try:
        # (case, cut) pairs: each run is one connection per server
        plan = []
        for c in cases:
            if args.mode == 'cut':
                if not c.cut:
                    continue
                data = [r for r in c.reqs if r is not PAUSE]
                for i, r in enumerate(data):
                    plan.append((c, (i, max(1, len(r) // 2))))
            else:
                plan.append((c, None))
        fire = set()
        if args.mode in ('updates4', 'load'):
            fire = {len(plan) * k // 5 for k in range(1, 5)}
        for n, (c, cut) in enumerate(plan):
            name = c.name if cut is None else '%s@%d' % (c.name, cut[0])
            flush(mc.port)
            flush(kv.port)
            if n in fire:
                # an update fired while this case's stream is sent
                data = [r for r in c.reqs if r is not PAUSE]
                cut = (len(data) // 2, max(1, len(data[len(data) // 2]) // 2))
                name += '+update'
            want = exchange(mc.port, c, cut, lambda: None, lambda: None)
            got = exchange(kv.port, c, cut, kv.update_start,
                           kv.update_wait if cut else None)
            runs += 1
            compare(name, want, got, c.binary, failures)
        if args.mode == 'plain':
            check_conn_limit(args, tmp, failures)
            check_large_items(args, tmp, failures)
            check_bad_listen(args, tmp, failures)
    finally:
        if load:
            load.finish()
        mc.stop()
        kv.stop()
    if load:
        print('load: %d set+get pairs, %d errors' % (load.ops,
                                                     len(load.errors)))
        for e in load.errors[:5]:
            print('  ' + e)
        if load.errors or not load.ops:
            failures.append('load')
    print('%s: %d runs, %d updates, %d differences%s' %
          (args.mode, runs, kv.updates, len(failures),
           ': ' + ' '.join(failures) if failures else ''))
    if kv.proc.returncode not in (0, -signal.SIGTERM):
        print('kvcache exited with %s' % kv.proc.returncode)
        failures.append('exit')
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
