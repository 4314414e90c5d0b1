#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kvcache SIGKILLed under load comes back with its data (no systemd).

The test plays the service manager: it owns $NOTIFY_SOCKET, keeps what
the library stores there (FDSTORE=1, FDNAME=, the descriptors attached;
FDSTOREREMOVE=1), and after the kill starts kvcache again as systemd
does, with LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES.

  crash.py KVCACHE load [KILLS]   writers under load, SIGKILL at random
                                  times; every value read back afterwards
                                  is one that was STORED (or the one in
                                  flight), keys come back, no client is
                                  refused meanwhile
  crash.py KVCACHE corrupt CASE   the crash record damaged in the kept
                                  arena (checksum, bounds, count,
                                  truncated): one log line, a fresh start
  crash.py KVCACHE updated        a live update first (SIGUSR1, exec
                                  mode), then SIGKILL: the crash record
                                  went over with the arena
  crash.py KVCACHE delta FAULTY   FAULTY (kvcache-fault-kill-delta) dies
                                  inside an in-place incr; the restarted
                                  kvcache drops that half-written value
  crash.py KVCACHE connections     LUO_FDSTORE=connections: clients
                                  connected before the SIGKILL are served
                                  after it on the same connection (one
                                  sent a request during the outage, it is
                                  answered); one closed before is removed
                                  from the store; one in the middle of a
                                  request is closed
"""
import array
import fcntl
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import zlib

DEADLINE = 30.0


def fail(msg):
    print('FAIL: ' + msg, flush=True)
    sys.exit(1)


class Manager:
    """The notify socket and the descriptor store, as systemd keeps them."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.store = {}
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.messages = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        fdsize = array.array('i').itemsize
        while True:
            try:
                msg, anc, _, _ = self.sock.recvmsg(
                    4096, socket.CMSG_SPACE(16 * fdsize))
            except OSError:
                return
            fds = []
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array('i')
                    a.frombytes(data[:len(data) - len(data) % fdsize])
                    fds += list(a)
            # As systemd's: the store's copies are not inherited by the
            # service (a connection must end when the service closes it).
            for f in fds:
                os.set_inheritable(f, False)
            text = msg.decode(errors='replace')
            fields = dict(l.split('=', 1) for l in text.split('\n') if '=' in l)
            with self.lock:
                self.messages.append(text)
                name = fields.get('FDNAME')
                if fields.get('FDSTORE') == '1' and name and fds:
                    # systemd keeps one copy of a descriptor it holds.
                    old = self.store.get(name, [])
                    new = fds[0]
                    same = [f for f in old
                            if os.fstat(f).st_ino == os.fstat(new).st_ino]
                    if same:
                        os.close(new)
                    else:
                        self.store[name] = old + [new]
                    fds = fds[1:]
                if fields.get('FDSTOREREMOVE') == '1' and name:
                    for f in self.store.pop(name, []):
                        os.close(f)
            for f in fds:  # BARRIER=1's pipe and the like
                os.close(f)
            if fields.get('READY') == '1':
                self.ready.set()

    def fds(self):
        with self.lock:
            return [(n, f) for n, fl in sorted(self.store.items()) for f in fl]


def start(kv, mgr, port, log, name, extra_env=None, restart=False):
    env = dict(os.environ, NOTIFY_SOCKET=mgr.path, LUO_FDSTORE='1')
    env.pop('LISTEN_FDS', None)
    pass_fds = []
    if restart:
        kept = mgr.fds()
        # Another order than they were stored in: found by name.
        random.shuffle(kept)
        env['LISTEN_FDS'] = str(len(kept))
        env['LISTEN_FDNAMES'] = ':'.join(n for n, _ in kept)
        pass_fds = [f for _, f in kept]
    env.update(extra_env or {})
    high = [os.dup(f) for f in pass_fds]

    def child():
        for i, f in enumerate(high):
            os.dup2(f, 3 + i)

    mgr.ready.clear()
    p = subprocess.Popen(
        ['sh', '-c', 'LISTEN_PID=$$ exec "$0" "$@"', kv, '-l', '127.0.0.1',
         '-p', str(port), '-m', '128', '--name', name],
        env=env, stdout=log, stderr=subprocess.STDOUT, close_fds=False,
        preexec_fn=child)
    for f in high:
        os.close(f)
    if not mgr.ready.wait(DEADLINE):
        p.kill()
        fail('kvcache did not send READY=1')
    return p


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port), timeout=20)
        self.buf = b''

    def line(self):
        while b'\r\n' not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError('closed')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError('closed')
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, data):
        self.s.sendall(data)
        return self.line()

    def set(self, key, val):
        return self.cmd(b'set %s 0 0 %d\r\n%s\r\n' % (key, len(val), val))

    def get(self, key):
        self.s.sendall(b'get %s\r\n' % key)
        head = self.line()
        if head == b'END':
            return None
        data = self.exact(int(head.split()[3]) + 2)[:-2]
        if self.line() != b'END':
            raise RuntimeError('get: no END')
        return data

    def close(self):
        self.s.close()


def value(key, seq):
    body = b'%s|%d|%s' % (key, seq, b'x' * random.randint(50, 3000))
    return body + b'|%08x' % zlib.crc32(body)


def check_value(key, data):
    """The value's key and sequence number, or None if it is corrupt."""
    try:
        body, crc = data.rsplit(b'|', 1)
        k, seq, _ = body.split(b'|', 2)
    except ValueError:
        return None
    if k != key or b'%08x' % zlib.crc32(body) != crc:
        return None
    return int(seq)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Writers:
    """Each writer owns its keys: what it was told STORED is exact."""

    def __init__(self, port, n, keys, base=0, acked=None, inflight=None):
        self.base = base
        self.stop = threading.Event()
        # key -> set of seqs answered STORED; key -> seq sent, unanswered
        self.acked = {} if acked is None else acked
        self.inflight = {} if inflight is None else inflight
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run,
                                         args=(port, t, keys), daemon=True)
                        for t in range(n)]
        for t in self.threads:
            t.start()

    def run(self, port, t, keys):
        rnd = random.Random(t)
        try:
            c = Conn(port)
        except OSError:
            return
        seq = self.base
        while not self.stop.is_set():
            key = b'w%dk%d' % (t, rnd.randrange(keys))
            seq += 1
            with self.lock:
                self.inflight[key] = seq
            try:
                r = c.set(key, value(key, seq))
            except (OSError, EOFError):
                return
            if r != b'STORED':
                fail('set %r: %r' % (key, r))
            with self.lock:
                self.acked.setdefault(key, set()).add(seq)
                del self.inflight[key]

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(DEADLINE)


class Prober:
    """New connections every 2 ms while the service is down: none refused."""

    def __init__(self, port):
        self.port = port
        self.refused = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                s = socket.create_connection(('127.0.0.1', self.port), 5)
                s.close()
            except ConnectionRefusedError:
                self.refused += 1
            except OSError:
                pass
            time.sleep(0.002)

    def join(self):
        self.stop.set()
        self.t.join()


def answers(port):
    """Wait until "version" is answered; return the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < DEADLINE:
        try:
            c = Conn(port)
            if c.cmd(b'version\r\n').startswith(b'VERSION'):
                c.close()
                return time.monotonic() - t0
        except (OSError, EOFError):
            time.sleep(0.01)
    fail('kvcache does not answer again')


def load(kv, kills, work, out):
    mgr = Manager(os.path.join(work, 'notify'))
    port = free_port()
    p = start(kv, mgr, port, out, 'crash-load')
    w = Writers(port, 4, 3000)
    total_back = 0
    for k in range(kills):
        time.sleep(random.uniform(0.3, 1.2))
        prober = Prober(port)
        t_kill = time.monotonic()
        p.kill()  # SIGKILL, at a random point of the load
        p.wait()
        w.join()
        with mgr.lock:
            seen = len(mgr.messages)
        p = start(kv, mgr, port, out, 'crash-load', restart=True)
        answers(port)
        with mgr.lock:
            status = [m for m in mgr.messages[seen:] if 'READY=1' in m]
        # A crash is no live update: no blackout to report.
        if not status or 'blackout' in status[-1]:
            fail('the restarted READY=1: %r' % status)
        took = time.monotonic() - t_kill
        prober.join()
        c = Conn(port)
        back = corrupt = 0
        for key, seqs in w.acked.items():
            data = c.get(key)
            if data is None:
                continue
            seq = check_value(key, data)
            if seq is None or (seq not in seqs and
                               seq != w.inflight.get(key)):
                corrupt += 1
                print('corrupt or never stored: %r = %r...' % (key, data[:60]))
            back += 1
        c.close()
        print('kill %d: %d of %d keys back, %d corrupt, %d refused, '
              'answered after %.3f s' % (k + 1, back, len(w.acked), corrupt,
                                         prober.refused, took), flush=True)
        if corrupt:
            fail('values that were never STORED were served')
        # At most the key each writer was replacing may be gone.
        if back < len(w.acked) - 4:
            fail('%d of %d keys came back' % (back, len(w.acked)))
        if prober.refused:
            fail('%d connections refused' % prober.refused)
        total_back += back
        w = Writers(port, 4, 3000, (k + 1) * 10**8, w.acked, w.inflight)
    w.join()
    p.kill()
    p.wait()
    log = open(out.name).read()
    if log.count('recovered after a crash') != kills:
        fail('kvcache did not say it recovered %d times' % kills)


# CRC32C (Castagnoli), as the library's record uses.
_T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


HDR = struct.Struct('<QIIIIQQQQII')  # struct kho_arena_header
SLOT_SIZE = 8 + 4 + 4 + 8 + 8 + 32 * 72 + 4 + 4  # struct kho_crash_slot


def corrupt(kv, case, work, out):
    mgr = Manager(os.path.join(work, 'notify'))
    port = free_port()
    p = start(kv, mgr, port, out, 'crash-corrupt')
    c = Conn(port)
    for i in range(200):
        c.set(b'key%d' % i, b'value%d' % i)
    c.close()
    p.kill()
    p.wait()
    arena = dict(mgr.fds())['luo.arena']
    h = list(HDR.unpack(os.pread(arena, HDR.size, 0)))
    rec = h[8]
    if not rec:
        fail('the arena header names no crash record')
    if case == 'checksum':
        for s in range(2):
            os.pwrite(arena, b'\xff', rec + s * SLOT_SIZE + 40)
    elif case == 'count':
        for s in range(2):
            off = rec + s * SLOT_SIZE
            slot = bytearray(os.pread(arena, SLOT_SIZE, off))
            struct.pack_into('<I', slot, 12, 1000)
            struct.pack_into('<I', slot, SLOT_SIZE - 4, 0)
            struct.pack_into('<I', slot, SLOT_SIZE - 4, crc32c(bytes(slot)))
            os.pwrite(arena, bytes(slot), off)
    elif case == 'bounds':
        h[8] = h[6] + 4096  # past the arena's end
        h[10] = 0
        h[10] = crc32c(HDR.pack(*h))
        os.pwrite(arena, HDR.pack(*h), 0)
    elif case == 'truncated':
        os.ftruncate(arena, 4096)
    else:
        fail('unknown case ' + case)
    p = start(kv, mgr, port, out, 'crash-corrupt', restart=True)
    c = Conn(port)
    got = sum(c.get(b'key%d' % i) is not None for i in range(200))
    if c.set(b'after', b'ok') != b'STORED' or c.get(b'after') != b'ok':
        fail('the fresh start does not serve')
    c.close()
    p.kill()
    p.wait()
    log = open(out.name).read()
    print(log)
    if got:
        fail('%d keys of a damaged arena were served' % got)
    if 'does not check out' not in log or 'fresh start' not in log:
        fail('no log line about the damaged crash record')


def updated(kv, work, out):
    mgr = Manager(os.path.join(work, 'notify'))
    port = free_port()
    p = start(kv, mgr, port, out, 'crash-updated')
    c = Conn(port)
    for i in range(500):
        c.set(b'key%d' % i, b'value%d' % i)
    mgr.ready.clear()
    p.send_signal(10)  # SIGUSR1: a live update into itself
    if not mgr.ready.wait(DEADLINE):
        fail('no READY=1 after the live update')
    if c.get(b'key7') != b'value7':
        fail('the live update lost a key')
    c.set(b'after-update', b'yes')
    c.close()
    p.kill()
    p.wait()
    p = start(kv, mgr, port, out, 'crash-updated', restart=True)
    c = Conn(port)
    got = sum(c.get(b'key%d' % i) == b'value%d' % i for i in range(500))
    after = c.get(b'after-update')
    c.close()
    p.kill()
    p.wait()
    log = open(out.name).read()
    print(log)
    if 'live update #1' not in log:
        fail('kvcache did not report the live update')
    if got != 500 or after != b'yes':
        fail('%d of 500 keys back, after-update %r' % (got, after))
    if 'recovered after a crash' not in log:
        fail('kvcache did not report the recovery')


def delta(kv, faulty, work, out):
    mgr = Manager(os.path.join(work, 'notify'))
    port = free_port()
    p = start(faulty, mgr, port, out, 'crash-delta')
    c = Conn(port)
    for i in range(100):
        c.set(b'key%d' % i, b'value%d' % i)
    # Every digit changes with each incr, so half a write is a new number.
    c.set(b'ctr', b'1000000000000')
    answered = {b'1000000000000'}
    try:
        for _ in range(100):
            r = c.cmd(b'incr ctr 11111111111\r\n')
            answered.add(r.strip())
    except (OSError, EOFError):
        pass
    p.wait()
    if p.returncode != -9:
        fail('the faulty build did not die by SIGKILL (%s)' % p.returncode)
    p = start(kv, mgr, port, out, 'crash-delta', restart=True)
    c = Conn(port)
    ctr = c.get(b'ctr')
    got = sum(c.get(b'key%d' % i) == b'value%d' % i for i in range(100))
    c.close()
    p.kill()
    p.wait()
    print(open(out.name).read())
    if ctr is not None and ctr.strip() not in answered:
        fail('a half-written incr was served: %r' % ctr)
    if got != 100:
        fail('%d of 100 other keys back' % got)
    if '1 half-written item dropped' not in open(out.name).read():
        fail('kvcache did not say it dropped the half-written item')


def conn_names(mgr):
    with mgr.lock:
        return {n for n in mgr.store if n.startswith('luo.s.kvcache.')}


def wait_names(mgr, want):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if conn_names(mgr) == want:
            return True
        time.sleep(0.02)
    return False


def wait_count(mgr, listener, n):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if len(conn_names(mgr) - listener) == n:
            return True
        time.sleep(0.02)
    return False


def _connections(kv, work, out, procs):
    env = {'LUO_FDSTORE': 'connections'}
    mgr = Manager(os.path.join(work, 'notify'))
    port = free_port()
    p = start(kv, mgr, port, out, 'crash-conns', extra_env=env)
    procs.append(p)
    listener = conn_names(mgr)
    idle = []
    for i in range(10):
        c = Conn(port)
        if c.set(b'k%d' % i, b'v%d' % i) != b'STORED':
            fail('set before the crash')
        idle.append(c)
    # Half a request: read by kvcache, never finished.
    if not wait_count(mgr, listener, 10):
        fail('%d connections in the store, expected 10' %
             len(conn_names(mgr) - listener))
    idle_names = conn_names(mgr)
    mid = Conn(port)
    mid.s.sendall(b'set half 0 0 10\r\nabc')
    if not wait_count(mgr, listener, 11):
        fail('%d connections in the store, expected 11: %s' %
             (len(conn_names(mgr) - listener), sorted(conn_names(mgr))))
    # The store's copy of kvcache's end: its input queue empties once
    # kvcache has read the half request (no sleep).
    mid_name = (conn_names(mgr) - idle_names).pop()
    with mgr.lock:
        (mid_fd,) = mgr.store[mid_name]
    end = time.monotonic() + DEADLINE
    while True:
        queued = struct.unpack('i', fcntl.ioctl(
            mid_fd, termios.FIONREAD, b'\0\0\0\0'))[0]
        if queued == 0:
            break
        if time.monotonic() > end:
            fail('kvcache did not read the half request')
        time.sleep(0.01)
    before = conn_names(mgr)
    gone = Conn(port)
    gone.set(b'gone', b'1')
    if not wait_count(mgr, listener, 12):
        fail('the new connection was not stored')
    gone.close()
    if not wait_names(mgr, before):
        fail('a closed connection stayed in the store: %s' %
             sorted(conn_names(mgr) - before))
    p.kill()
    p.wait()
    # Sent while nobody serves: it waits in the kept socket.
    idle[0].s.sendall(b'get k0\r\n')
    p = start(kv, mgr, port, out, 'crash-conns', extra_env=env,
              restart=True)
    procs.append(p)
    head = idle[0].line()
    if head != b'VALUE k0 0 2' or idle[0].exact(4) != b'v0\r\n' or \
            idle[0].line() != b'END':
        fail('the request sent during the outage: %r' % head)
    for i, c in enumerate(idle):
        if c.get(b'k%d' % i) != b'v%d' % i:
            fail('client %d not served after the crash' % i)
        if c.set(b'after%d' % i, b'yes') != b'STORED':
            fail('client %d cannot store after the crash' % i)
    try:
        mid.s.settimeout(DEADLINE)
        rest = mid.s.recv(100)
    except ConnectionResetError:
        rest = b''
    if rest:
        fail('the client cut mid-request got %r instead of the end' % rest)
    # The kept connections are in the new image's store again.
    if not wait_count(mgr, listener, 10):
        fail('%d connections in the store after the crash, expected 10' %
             len(conn_names(mgr) - listener))
    p.kill()
    p.wait()
    log = open(out.name).read()
    print(log)
    if '10 connections resumed' not in log:
        fail('kvcache did not report 10 connections resumed')


def connections(kv, work, out):
    procs = []
    try:
        _connections(kv, work, out, procs)
    finally:
        for p in procs:  # a failed check leaves none running
            if p.poll() is None:
                p.kill()
                p.wait()


def main():
    kv, mode = sys.argv[1], sys.argv[2]
    random.seed(os.getpid())
    with tempfile.TemporaryDirectory() as work:
        out = open(os.path.join(work, 'kvcache.log'), 'w')
        try:
            if mode == 'load':
                load(kv, int(sys.argv[3]) if len(sys.argv) > 3 else 3, work,
                     out)
            elif mode == 'corrupt':
                corrupt(kv, sys.argv[3], work, out)
            elif mode == 'updated':
                updated(kv, work, out)
            elif mode == 'delta':
                delta(kv, sys.argv[3], work, out)
            elif mode == 'connections':
                connections(kv, work, out)
            else:
                fail('unknown mode ' + mode)
        except SystemExit:
            if mode == 'load':
                print(open(out.name).read()[-4000:])
            raise
    print('PASS')


if __name__ == '__main__':
    main()
