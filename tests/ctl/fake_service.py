#!/usr/bin/env python3
"""A misbehaving control service for luoctl's tests: it greets, reads one
request, then answers badly.  Exits after one client, or after 60 s.

    fake_service.py drip|bigline|sparse|again PATH

drip:    sends a reply one byte every 0.5 s (for up to 30 s);
bigline: sends one 70 MiB line, more than any reply may be;
sparse:  answers with rows that lack every field but one;
again:   answers the first request EAGAIN and closes, as a service does
         when it starts its new image; answers the next client's request.
"""
import os
import signal
import socket
import sys
import time

mode, path = sys.argv[1], sys.argv[2]
signal.alarm(60)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path + ".tmp")
os.rename(path + ".tmp", path)  # appears ready to be connected to
srv.listen(1)
c, _ = srv.accept()
c.sendall(b"luo 1 fake %d\n" % os.getpid())
c.recv(4096)
if mode == "again":
    c.sendall(b"error EAGAIN the service is starting its new image and "
              b"closes this connection; reconnect and send the request "
              b"again\n")
    c.shutdown(socket.SHUT_WR)
    c.close()
    c, _ = srv.accept()
    c.sendall(b"luo 1 fake %d\n" % os.getpid())
    c.recv(4096)
try:
    if mode == "drip":
        for b in b"data name=fake pid=1 state=normal num=0\nok\n"[:60]:
            c.sendall(bytes([b]))
            time.sleep(0.5)
    elif mode == "again":
        c.sendall(b"data name=fake pid=2 state=updated num=1\nok\n")
    elif mode == "sparse":
        c.sendall(b"data name=fake\nok\n")
        c.recv(4096)
    elif mode == "bigline":
        chunk = b"a" * (1 << 20)
        c.sendall(b"data hex=")
        for _ in range(70):
            c.sendall(chunk)
        c.sendall(b"\nok\n")
except (BrokenPipeError, ConnectionResetError):
    pass
c.close()
try:
    os.unlink(path)
except FileNotFoundError:
    pass
