# SPDX-License-Identifier: MIT
"""The pieces of crash.py's cases: a service manager that keeps the store
(Manager), kvcache started as systemd starts it (start), a text-protocol
client (Conn), the values writers store and their check, writers and a
prober under load."""
import array
import os
import random
import socket
import subprocess
import sys
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


