#!/usr/bin/env python3
"""http_attack.py: the two attacks of tests/http_limits.sh on a monitor.

    http_attack.py flood PORT N       opens N idle TCP connections and holds
                                      them until SIGTERM, a new one for each
                                      the server closes (at most RECONNECTS
                                      a second: a monitor held at its limit,
                                      not a SYN flood, which fills the
                                      kernel's accept queue whatever jobd
                                      does)
    http_attack.py slowloris PORT S   sends a request's first line, then a
                                      header line every S seconds, never the
                                      blank line; reconnects when closed

Both print a status line when something changes (flushed, for the test to
read): "flood: N connected, N closed by the server, N failed", and
"slowloris: closed after 3.02 s" for each connection the server closed.
Connections go to 127.0.0.1 only.
"""
import resource
import selectors
import signal
import socket
import sys
import time


def stop(*_):
    sys.exit(0)


RECONNECTS = 200


def flood(port, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        n = min(n, hard - 64)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 64), hard))
    sel = selectors.DefaultSelector()

    def connect():
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE)

    for _ in range(n):
        connect()
    connected = closed = failed = owed = 0
    last = None
    budget, then = 0.0, time.monotonic()
    while True:
        now = time.monotonic()
        budget = min(RECONNECTS, budget + (now - then) * RECONNECTS)
        then = now
        while owed and budget >= 1:
            connect()
            owed -= 1
            budget -= 1
        for key, mask in sel.select(timeout=0.02):
            s = key.fileobj
            if mask & selectors.EVENT_WRITE:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    failed += 1
                    sel.unregister(s)
                    s.close()
                    continue
                connected += 1
                sel.modify(s, selectors.EVENT_READ)
            elif mask & selectors.EVENT_READ:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    # Closed by the server: another takes its place, so
                    # the flood holds N connections for as long as it runs.
                    closed += 1
                    sel.unregister(s)
                    s.close()
                    owed += 1
        status = (connected, closed, failed)
        if status != last:
            print("flood: %d connected, %d closed by the server, %d failed"
                  % status, flush=True)
            last = status


def slowloris(port, interval):
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port))
        except OSError as e:
            print("slowloris: cannot connect: %s" % e, flush=True)
            return
        start = time.monotonic()
        s.settimeout(interval)
        try:
            s.sendall(b"GET /api/counts HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            i = 0
            while True:
                try:
                    if not s.recv(4096):
                        break
                except socket.timeout:
                    i += 1
                    s.sendall(b"X-Trickle-%d: 1\r\n" % i)
        except OSError:
            pass
        s.close()
        print("slowloris: closed after %.2f s" % (time.monotonic() - start),
              flush=True)


def main():
    signal.signal(signal.SIGTERM, stop)
    mode, port, arg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "flood":
        flood(port, int(arg))
    else:
        slowloris(port, float(arg))


if __name__ == "__main__":
    main()
