# SPDX-License-Identifier: MIT
"""Start kvcache on a free loopback port for the Python kvcache tests."""
import os
import signal
import socket
import subprocess
import time


def start_kvcache(kv, kv2, log, name, args):
    """Start KV (updating into KV2) with ARGS; return (process, port).

    The port is found free by binding it first; another process may take
    it in between, so up to 20 ports are tried.  Waits until kvcache says
    it serves ("fresh start" in LOG).
    """
    for _ in range(20):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        p = subprocess.Popen([kv, '-l', '127.0.0.1', '-p', str(port)] +
                             args + ['--update-to', kv2, '--name', name],
                             stdout=open(log, 'w'), stderr=subprocess.STDOUT)
        for _ in range(100):
            if 'fresh start' in open(log).read():
                return p, port
            if p.poll() is not None:
                break
            time.sleep(0.05)
        p.kill()
        p.wait()
    raise SystemExit('kvcache did not start:\n' + open(log).read())


def update(p, log, n=1):
    """SIGUSR1 to P: True once LOG reports live update #N (10 s at most)."""
    os.kill(p.pid, signal.SIGUSR1)
    for _ in range(400):
        if 'live update #%d ' % n in open(log).read():
            return True
        time.sleep(0.025)
    return False


def report(fails, log, ok):
    """The end of a test: 1 with FAIL and kvcache's LOG, else OK and 0."""
    if fails:
        print('FAIL: ' + '; '.join(fails))
        print(open(log).read())
        return 1
    print(ok)
    return 0
