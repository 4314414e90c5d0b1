#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kvcache --inherit keeps its event loop across exec-mode updates.

N idle clients and a few active ones (sets and gets, one of them stopped
on an answer larger than its socket can take, so that its registration is
modified after the update) cross 3 updates (v1 -> v2 -> v1 -> v2, by
SIGUSR1) with the clients and their epoll instance inherited: every client
is answered after each update, the answer cut by the update arrives whole,
and the new image registers no inherited client with epoll again (the
stats counter conn_epoll_adds stays at the count of clients accepted
since the update), checked also with strace -f -e epoll_ctl when strace
is installed (no EPOLL_CTL_ADD in the new image for a descriptor that is
not new).  Without --inherit the same run registers every client again
(the counter equals the clients kept): the test tells the two apart.

With --fallback, kvcache runs under a hard RLIMIT_NOFILE of 600 with
clients up to its -c: the inherited range does not fit, the files cross
on the carrier, the clients cannot all go back on their registrations'
numbers, and kvcache replaces the inherited instance and registers every
client again: every client is still kept and served.

usage: inherit.py KVCACHE KVCACHE_V2 [IDLE] [--no-inherit | --fallback]
"""
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kvproc import start_kvcache, update, report  # noqa: E402


def cmd(s, line, end=b'\r\n'):
    s.sendall(line)
    buf = b''
    deadline = time.monotonic() + 10
    while not buf.endswith(end):
        if time.monotonic() > deadline:
            raise TimeoutError('no answer to %r: %r' % (line[:40], buf[-80:]))
        d = s.recv(1 << 20)
        if not d:
            raise ConnectionError('closed on %r' % line[:40])
        buf += d
    return buf


def stats(port):
    with socket.create_connection(('127.0.0.1', port), timeout=10) as s:
        out = cmd(s, b'stats\r\n', b'END\r\n').decode()
    return {m.group(1): m.group(2)
            for m in re.finditer(r'STAT (\S+) (\S+)\r\n', out)}


def main():
    kv, kv2 = sys.argv[1], sys.argv[2]
    idle = int(sys.argv[3]) if len(sys.argv) > 3 and \
        sys.argv[3].isdigit() else 500
    inherit = '--no-inherit' not in sys.argv
    fallback = '--fallback' in sys.argv
    d = tempfile.mkdtemp()
    log = os.path.join(d, 'kvcache.log')
    fails = []
    args = ['-m', '64', '-c', str(idle + 8 if fallback else idle + 64)]
    if inherit:
        args.append('--inherit')
    env_strace = os.environ.get('KV_NO_STRACE') is None and \
        shutil.which('strace') and inherit and not fallback
    if fallback:
        resource.setrlimit(resource.RLIMIT_NOFILE, (600, 600))
    elif inherit:
        # Room for the clients (at -c + 128 and above), the library's
        # references and one inherited range below the clients, not for a
        # range above them: every update must find the same room again
        # (nothing the new image keeps may stay inside the old range).
        lim = 2 * (idle + 64) + 128 + 160
        resource.setrlimit(resource.RLIMIT_NOFILE, (lim, lim))
    p, port = start_kvcache(kv, kv2, log, 'kvinh-%d' % os.getpid(), args)
    trace = os.path.join(d, 'trace')
    tracer = None
    try:
        if env_strace:
            tracer = subprocess.Popen(
                ['strace', '-f', '-qq', '-e', 'trace=epoll_ctl,execve',
                 '-o', trace, '-p', str(p.pid)],
                stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        clients = []
        for i in range(idle):
            s = socket.create_connection(('127.0.0.1', port), timeout=10)
            clients.append(s)
        active = clients[:5]
        big = b'x' * (900 << 10)
        cmd(active[0], b'set big 0 0 %d\r\n%s\r\n' % (len(big), big))
        for i, s in enumerate(clients):
            if i % 50 == 0 or i < 5:
                cmd(s, b'set k%d 0 0 2\r\nv%d\r\n' % (i, i % 10))
        # A client that asks for the large value 16 times and reads none:
        # its output stops at the socket, its registration waits for
        # EPOLLOUT, and the update comes in between.
        stalled = socket.create_connection(('127.0.0.1', port), timeout=10)
        stalled.sendall(b'get big\r\n' * 16)
        time.sleep(0.3)
        kept = idle + 1
        for n in range(1, 4):
            if not update(p, log, n):
                fails.append('update %d not reported' % n)
                break
            st = stats(port)
            adds = int(st.get('conn_epoll_adds', '-1'))
            # The stats connection is the only client this image accepted.
            want = 1 if inherit and not fallback else kept + 1
            # --fallback: every client again, or none where each number
            # happened to be free.
            if adds != want and not (fallback and adds in (1, kept + 1)):
                fails.append('update %d: conn_epoll_adds %d, expected %d'
                             % (n, adds, want))
            for i, s in enumerate(clients):
                try:
                    if i < 5:
                        out = cmd(s, b'get k%d\r\n' % i, b'END\r\n')
                        if b'v%d' % (i % 10) not in out:
                            fails.append('client %d: %r' % (i, out))
                    elif i % 97 == n:
                        cmd(s, b'version\r\n')
                except (OSError, TimeoutError) as e:
                    fails.append('client %d after update %d: %s' % (i, n, e))
                    break
            if int(st.get('curr_connections', '0')) < kept:
                fails.append('update %d: curr_connections %s < %d'
                             % (n, st.get('curr_connections'), kept))
            if fails:
                break
        # Every idle client still served, and the stalled answer whole.
        for i, s in enumerate(clients):
            try:
                cmd(s, b'version\r\n')
            except (OSError, TimeoutError) as e:
                fails.append('client %d at the end: %s' % (i, e))
                break
        want = (b'VALUE big 0 %d\r\n' % len(big) + big + b'\r\nEND\r\n') * 16
        got = b''
        stalled.settimeout(10)
        while len(got) < len(want):
            dd = stalled.recv(1 << 20)
            if not dd:
                break
            got += dd
        if got != want:
            fails.append('stalled client: %d of %d bytes, %s' %
                         (len(got), len(want),
                          'equal so far' if want.startswith(got) else 'wrong'))
        if 'lost in the update' in open(log).read():
            fails.append('a connection was lost')
        if 'epoll_ctl:' in open(log).read():
            fails.append('an epoll_ctl() failed')
        if inherit and not fallback and re.search(
                'on the carrier this time|registering every client again',
                open(log).read()):
            fails.append('the files were not inherited')
        if fallback and 'registering every client again' not in \
                open(log).read():
            fails.append('no fallback: the test did not test it')
    finally:
        if tracer:
            time.sleep(0.3)
            tracer.terminate()
            tracer.wait()
        p.terminate()
        p.wait()
    if tracer and not fails:
        # In each new image, EPOLL_CTL_ADD on the clients' epoll instance
        # (the one added to the loop's with EV_CONNS as its data) only of
        # the client it accepted for the stats.  And the inherited range
        # does not creep upwards: the instance keeps about the same number.
        text = open(trace).read().split('execve(')[1:]
        cep_fds = []
        for n, image in enumerate(text, 1):
            m = re.search(r'epoll_ctl\(\d+, EPOLL_CTL_ADD, (\d+), '
                          r'\{events=EPOLLIN, data=\{u32=4294967292,', image)
            if not m:
                fails.append('strace: image %d: no clients epoll' % n)
                continue
            cep_fds.append(int(m.group(1)))
            adds = re.findall(r'.*epoll_ctl\(%s, EPOLL_CTL_ADD.*' %
                              m.group(1), image)
            if len(adds) != 1:
                fails.append('strace: image %d: %d clients registered '
                             'again:\n%s' % (n, len(adds),
                                              '\n'.join(adds[:10])))
        if cep_fds and max(cep_fds) > 64:
            fails.append('strace: the clients epoll at %s' % cep_fds)
        if not fails:
            print('strace: one EPOLL_CTL_ADD on the clients epoll per new '
                  'image (the stats client), %d clients' % kept)
    sys.exit(report(fails, log, 'kvcache%s: %d clients kept and served '
                    'across 3 updates' % (' --inherit' if inherit else '',
                                          kept)))


if __name__ == '__main__':
    main()
