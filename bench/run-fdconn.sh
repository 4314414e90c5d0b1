#!/bin/bash
# The hot-path cost of LUO_FDSTORE=connections: kvcache accepts per second
# with the store keeping listeners only (LUO_FDSTORE=1) and with every
# connection stored too (LUO_FDSTORE=connections: one FDSTORE=1 message
# with the socket per accept, one FDSTOREREMOVE=1 per close).  A small
# receiver plays systemd (it keeps each descriptor until removed), so the
# figure is the service's cost, not systemd's.
#
#   bench/run-fdconn.sh [BUILD] [RUNS] [CONNS]
#
# Defaults: build, 5 runs per mode, 20000 connections per run (each:
# connect, "version", answer, close; 4 client processes).  Results in
# bench/results/fdconn.{md,csv}.
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
RUNS=${2:-5}
CONNS=${3:-20000}
exec python3 - "$(realpath "$B")/examples/kvcache/kvcache" "$RUNS" "$CONNS" "$B" <<'PY'
import multiprocessing as mp, os, socket, statistics, subprocess, sys, tempfile, time, array

kv, runs, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def manager(path, ready):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    store = {}
    sz = array.array('i').itemsize
    ready.set()
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16 * sz))
        fds = []
        for lv, ty, data in anc:
            a = array.array('i'); a.frombytes(data[:len(data) - len(data) % sz]); fds += list(a)
        f = dict(l.split('=', 1) for l in msg.decode().split('\n') if '=' in l)
        name = f.get('FDNAME')
        if f.get('FDSTORE') == '1' and name and fds:
            store.setdefault(name, []).append(fds.pop(0))
        if f.get('FDSTOREREMOVE') == '1' and name:
            for x in store.pop(name, []): os.close(x)
        for x in fds: os.close(x)

def client(port, n, out):
    t0 = time.monotonic()
    for _ in range(n):
        c = socket.create_connection(('127.0.0.1', port))
        c.sendall(b'version\r\n')
        while not c.recv(100).endswith(b'\r\n'): pass
        c.close()
    out.put(time.monotonic() - t0)

def one(mode, work, i):
    path = os.path.join(work, 'n%s%d' % (mode, i))
    ready = mp.Event()
    m = mp.Process(target=manager, args=(path, ready), daemon=True); m.start(); ready.wait()
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    env = dict(os.environ, NOTIFY_SOCKET=path, LUO_FDSTORE=mode)
    p = subprocess.Popen([kv, '-l', '127.0.0.1', '-p', str(port), '-m', '64',
                          '--name', 'bench-fdconn-%d' % os.getpid()], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try: socket.create_connection(('127.0.0.1', port)).close(); break
        except OSError: time.sleep(0.02)
    q = mp.Queue(); k = 4
    cs = [mp.Process(target=client, args=(port, conns // k, q)) for _ in range(k)]
    t0 = time.monotonic()
    for c in cs: c.start()
    for c in cs: c.join()
    dt = time.monotonic() - t0
    p.kill(); p.wait(); m.kill()
    return conns / dt

rows = []
with tempfile.TemporaryDirectory() as work:
    for i in range(runs):
        for mode in ('1', 'connections'):  # alternated: the machine's noise hits both
            r = one(mode, work, i)
            rows.append((mode, i, r))
            print('LUO_FDSTORE=%-11s run %d: %.0f accepts/s' % (mode, i, r), flush=True)
os.makedirs('bench/results', exist_ok=True)
with open('bench/results/fdconn.csv', 'w') as f:
    f.write('mode,run,accepts_per_s\n')
    for m, i, r in rows: f.write('%s,%d,%.0f\n' % (m, i, r))
med = {m: statistics.median(r for mm, _, r in rows if mm == m) for m in ('1', 'connections')}
lines = ['# kvcache accepts per second, LUO_FDSTORE=1 against LUO_FDSTORE=connections', '',
         '`bench/run-fdconn.sh %s %d %d` (%d connections per run, 4 client processes, connect + "version" + close each; a receiver plays systemd and keeps the descriptors; %d cores, load %.1f at the start).' % (sys.argv[4], runs, conns, conns, os.cpu_count(), os.getloadavg()[0]), '',
         '| mode | runs (accepts/s) | median |', '|---|---|---|']
for m in ('1', 'connections'):
    lines.append('| LUO_FDSTORE=%s | %s | %.0f |' % (m, ' '.join('%.0f' % r for mm, _, r in rows if mm == m), med[m]))
lines += ['', 'Median cost of storing every connection: %.1f %% of the accept rate.' % (100 * (1 - med['connections'] / med['1']))]
open('bench/results/fdconn.md', 'w').write('\n'.join(lines) + '\n')
print('\n'.join(lines))
PY
