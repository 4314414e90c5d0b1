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
                                  truncated; intent-checksum, intent-bounds:
                                  an armed intent record that does not
                                  check out): one log line, a fresh start
  crash.py KVCACHE updated        a live update first (SIGUSR1, exec
                                  mode), then SIGKILL: the crash record
                                  went over with the arena
  crash.py KVCACHE delta FAULTY   FAULTY (kvcache-fault-kill-delta) dies
                                  inside an in-place incr; the restarted
                                  kvcache drops that half-written value
  crash.py KVCACHE header FAULTY  FAULTY (kvcache-fault-kill-header) dies
                                  at one of 5 kill points inside the
                                  allocation or free of a connection's
                                  buffers; every key comes back
  crash.py KVCACHE connections     LUO_FDSTORE=connections: clients
                                  connected before the SIGKILL are served
                                  after it on the same connection (one
                                  sent a request during the outage, it is
                                  answered); one closed before is removed
                                  from the store; one in the middle of a
                                  request is closed
"""
import fcntl
import os
import random
import struct
import sys
import tempfile
import termios
import time

from crashlib import (DEADLINE, Conn, Manager, Prober, Writers, answers,
                      check_value, fail, free_port, start)


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
INTENT_MAGIC = 0x544e45544e49554c  # struct kho_intent, armed


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
    elif case in ('intent-checksum', 'intent-bounds'):
        # An armed intent record (struct kho_intent at 64): its checksum
        # wrong, or a write it names past the memfd's end.
        size = os.fstat(arena).st_size
        entry = struct.pack('<QQ64s', size + 4096, 0, bytes(64))
        rec = bytearray(struct.pack('<QIIQ', INTENT_MAGIC, 1, 0, 7) + entry)
        struct.pack_into('<I', rec, 12, crc32c(bytes(rec)))
        if case == 'intent-checksum':
            rec[-1] ^= 0xff
            struct.pack_into('<Q', rec, 24, 4096)  # inside, but unchecked
        os.pwrite(arena, bytes(rec), 64)
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


# Kill points of one accept's and one close's changes (the buffers'
# allocation and free): before the record is armed, right after, in the
# middle of the header writes, at the end.
POINTS = (1, 23, 31, 52, 75)


def header(kv, faulty, work, out):
    """SIGKILL inside a change of block headers: every key back."""
    for point in POINTS:
        mgr = Manager(os.path.join(work, 'notify%d' % point))
        port = free_port()
        p = start(faulty, mgr, port, out, 'crash-header',
                  {'KV_KHO_POINT': str(point)})
        c = Conn(port)
        for i in range(1000):  # the 1000th request arms the kill point
            c.set(b'key%d' % i, b'value%d' % i)
        # Connections come and go (buffers allocated and freed) until the
        # kill point is reached.
        for _ in range(200):
            if p.poll() is not None:
                break
            try:
                k = Conn(port)
                # Killed at this accept: the listener is in the store,
                # nobody answers; do not wait for the default 20 s.
                k.s.settimeout(1)
                k.set(b'churn', b'x' * 3000)
                k.close()
            except (OSError, EOFError):
                pass
        c.close()
        p.wait()
        if p.returncode != -9:
            fail('point %d: the faulty build did not die by SIGKILL (%s)' %
                 (point, p.returncode))
        p = start(kv, mgr, port, out, 'crash-header',
                  {'LUO_LOG_LEVEL': 'info'}, restart=True)
        c = Conn(port)
        got = sum(c.get(b'key%d' % i) == b'value%d' % i for i in range(1000))
        ok = c.set(b'after', b'ok') == b'STORED' and c.get(b'after') == b'ok'
        c.close()
        p.kill()
        p.wait()
        log = open(out.name).read()
        if got != 1000 or not ok:
            print(log)
            fail('point %d: %d of 1000 keys back, serving %s' %
                 (point, got, ok))
        print('kill point %d: 1000 of 1000 keys back' % point)
    log = open(out.name).read()
    print(log)
    if log.count('recovered after a crash') != len(POINTS):
        fail('kvcache did not recover after every kill')
    if 'finished that change' not in log:
        fail('no kill landed inside a change of block headers')


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
            elif mode == 'header':
                header(kv, sys.argv[3], work, out)
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
