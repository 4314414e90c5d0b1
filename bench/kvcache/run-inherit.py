#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kvcache's exec-mode blackout with idle clients: carrier vs --inherit.

    bench/kvcache/run-inherit.py [--build DIR] [--conns "0 1000 4000 9500"]
        [--rounds 4] [--updates 3] [--out DIR]

For every client count and variant, in rounds (each round runs every row
once, the rows interleaved, so that the machine's load falls on all of
them alike): start kvcache (-m 64, -c clients + 64, -v), connect the idle
clients, let it update into itself UPDATES times (SIGUSR1) and read the
blackout it reports for each update (from the old image's freeze until
the new image serves again, from liveupdate_get_timing()) with its parts
(-v: freeze to exec, exec to adopted, descriptors retrieved and finish).
Variants: carrier (default), carrier --trust-carrier, --inherit (clients
and their epoll instance inherited), --inherit --trust-carrier, and the
last without putting the clients back on their registrations' numbers
(inherit-trust-norenum, KVCACHE_BENCH_NO_RENUMBER: the cost of that).  After
the last update, the stats counter conn_epoll_adds says how many clients
the new image registered with epoll.  Prints a table of medians, with
the ratio to the same variant at 0 clients, and writes
kvcache-inherit-table.md and kvcache-inherit.csv into DIR
(bench/results); the reading is kvcache-inherit.md.
"""
import argparse
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = {
    'carrier': [],
    'carrier-trust': ['--trust-carrier'],
    'inherit': ['--inherit'],
    'inherit-trust': ['--inherit', '--trust-carrier'],
    # Not for clients that ever need a modified registration: the cost of
    # putting each client back on its registration's number (one F_DUPFD
    # and one close() per client) is the difference to inherit-trust.
    'inherit-trust-norenum': ['--inherit', '--trust-carrier'],
}
ENV = {'inherit-trust-norenum': {'KVCACHE_BENCH_NO_RENUMBER': '1'}}
BLACKOUT = re.compile(r'live update #(\d+) .* blackout ([0-9.]+) ms')
PARTS = re.compile(r'blackout: freeze to exec ([0-9.]+) ms, exec to adopted '
                   r'([0-9.]+) ms, descriptors retrieved and finish '
                   r'\+([0-9.]+) ms')


def stat(port, name):
    with socket.create_connection(('127.0.0.1', port), timeout=30) as s:
        s.sendall(b'stats\r\n')
        buf = b''
        while not buf.endswith(b'END\r\n'):
            d = s.recv(65536)
            if not d:
                break
            buf += d
    m = re.search(rb'STAT %s (\d+)' % name.encode(), buf)
    return int(m.group(1)) if m else -1


def one_row(kv, conns, variant, updates, tmp):
    log = os.path.join(tmp, 'kv.log')
    for _ in range(20):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        p = subprocess.Popen(
            [kv, '-l', '127.0.0.1', '-p', str(port), '-m', '64', '-c',
             str(conns + 64), '-v', '--name', 'kvinhb-%d' % os.getpid()] +
            VARIANTS[variant], stdout=open(log, 'w'),
            env=dict(os.environ, **ENV.get(variant, {})),
            stderr=subprocess.STDOUT)
        for _ in range(200):
            if 'fresh start' in open(log).read() or p.poll() is not None:
                break
            time.sleep(0.02)
        if 'fresh start' in open(log).read():
            break
        p.kill()
        p.wait()
    else:
        raise SystemExit('kvcache did not start:\n' + open(log).read())
    clients = []
    res = []
    try:
        for _ in range(conns):
            clients.append(socket.create_connection(('127.0.0.1', port),
                                                    timeout=30))
        for _ in range(1000):
            if stat(port, 'curr_connections') >= conns + 1:
                break
            time.sleep(0.02)
        time.sleep(0.2)
        for n in range(1, updates + 1):
            os.kill(p.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                text = open(log).read()
                got = [m for m in BLACKOUT.finditer(text)
                       if int(m.group(1)) == n]
                if got:
                    break
                time.sleep(0.02)
            else:
                raise SystemExit('update %d not reported:\n%s' %
                                 (n, open(log).read()[-3000:]))
            parts = PARTS.findall(text)
            fr, ea, rf = (float(x) for x in parts[-1]) if parts else (0, 0, 0)
            kept = stat(port, 'curr_connections') - 1
            # less the two stats clients of this update
            adds = stat(port, 'conn_epoll_adds') - 2
            res.append((float(got[0].group(2)), fr, ea, rf, kept, adds))
            time.sleep(0.2)
        if 'lost in the update' in open(log).read():
            raise SystemExit('a client was lost:\n' + open(log).read())
        if VARIANTS[variant] and '--inherit' in VARIANTS[variant] and \
                re.search('on the carrier this time|registering every client '
                          'again', open(log).read()):
            raise SystemExit('not inherited after all:\n' +
                             open(log).read()[-3000:])
    finally:
        for s in clients:
            s.close()
        p.terminate()
        p.wait()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='build')
    ap.add_argument('--conns', default='0 1000 4000 9500')
    ap.add_argument('--rounds', type=int, default=4)
    ap.add_argument('--updates', type=int, default=3)
    ap.add_argument('--variants', default=' '.join(VARIANTS))
    ap.add_argument('--out', default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', 'results'))
    a = ap.parse_args()
    kv = os.path.join(a.build, 'examples/kvcache/kvcache')
    subprocess.run(['ninja', '-C', a.build, 'examples/kvcache/kvcache'],
                   check=True, stdout=subprocess.DEVNULL)
    # kvcache holds two descriptors per client (its own and the library's
    # reference): raise the soft limit as far as the hard one goes.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = [int(x) for x in a.conns.split()]
    variants = a.variants.split()
    tmp = tempfile.mkdtemp()
    rows = {(c, v): [] for c in conns for v in variants}
    t0 = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    load0 = open('/proc/loadavg').read().split()[:3]
    for r in range(a.rounds):
        for c in conns:
            for v in variants:
                rows[(c, v)] += one_row(kv, c, v, a.updates, tmp)
                print('round %d %6d %-14s %s ms' % (
                    r + 1, c, v, ' '.join('%.2f' % x[0]
                                          for x in rows[(c, v)][-a.updates:])),
                    flush=True)
    load1 = open('/proc/loadavg').read().split()[:3]
    med = {k: statistics.median(x[0] for x in v) for k, v in rows.items()}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'kvcache-inherit.csv'), 'w') as f:
        f.write('clients,variant,blackout_ms,freeze_to_exec_ms,'
                'exec_to_adopted_ms,retrieved_ms,clients_kept,epoll_adds\n')
        for (c, v), xs in rows.items():
            for x in xs:
                f.write('%d,%s,%.3f,%.3f,%.3f,%.3f,%d,%d\n' % ((c, v) + x))
    lines = [
        '| variant | clients | runs | blackout ms | x 0 clients | '
        'freeze to exec | exec to adopted | retrieved + finish | '
        'clients registered again |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for v in variants:
        for c in conns:
            xs = rows[(c, v)]
            m = [statistics.median(x[i] for x in xs) for i in range(1, 4)]
            lines.append('| %s | %d | %d | %.3f | %.2f | %.3f | %.3f | %.3f '
                         '| %d |' % (v, c, len(xs), med[(c, v)],
                                     med[(c, v)] / med[(conns[0], v)], *m,
                                     max(x[5] for x in xs)))
    table = '\n'.join(lines)
    print(table)
    with open(os.path.join(a.out, 'kvcache-inherit-table.md'), 'w') as f:
        f.write('<!-- %s, load average %s then %s, %d rounds x %d updates -->\n'
                % (t0, ' '.join(load0), ' '.join(load1), a.rounds,
                   a.updates) + table + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
