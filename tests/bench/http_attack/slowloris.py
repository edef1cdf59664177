#!/usr/bin/env python3
"""Fresh-client success while silent connections hold every slot.

The attack of issue 12: ATTACKERS connections that send nothing; each one
the server closes is reopened at once. Meanwhile a fresh client sends
GET /healthz every 100 ms (new connection, 5 s timeout) and counts answers.
Loopback only.

Usage: slowloris.py PORT [--tls] [--attackers 1100] [--seconds 10]
       [--write-first]   # also: 8 MiB POST written whole before reading
"""
import argparse
import http.client
import selectors
import socket
import ssl
import sys
import threading
import time


def attacker(port, n, stop, stats):
    sel = selectors.DefaultSelector()

    def open_one():
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_READ)
        stats["opened"] += 1

    for _ in range(n):
        open_one()
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            try:
                data = s.recv(1)
            except OSError:
                data = b""
            if not data:  # The server closed it: reopen.
                sel.unregister(s)
                s.close()
                stats["closed_by_server"] += 1
                open_one()
    for key in list(sel.get_map().values()):
        key.fileobj.close()


def fresh(port, tls, write_first):
    ctx = ssl._create_unverified_context() if tls else None
    cls = http.client.HTTPSConnection if tls else http.client.HTTPConnection
    kw = {"context": ctx} if tls else {}
    c = cls("127.0.0.1", port, timeout=5, **kw)
    try:
        if write_first:
            c.request("POST", "/mutate", body=b"x" * (8 << 20),
                      headers={"Content-Type": "application/json"})
            return c.getresponse().status == 413
        c.request("GET", "/healthz")
        return c.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--attackers", type=int, default=1100)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--write-first", action="store_true")
    a = ap.parse_args()
    stop = threading.Event()
    stats = {"opened": 0, "closed_by_server": 0}
    t = threading.Thread(target=attacker,
                         args=(a.port, a.attackers, stop, stats))
    t.start()
    time.sleep(1.0)  # Let the attack fill the slots.
    ok = tries = 0
    end = time.time() + a.seconds
    while time.time() < end:
        tries += 1
        ok += fresh(a.port, a.tls, False)
        time.sleep(0.1)
    wf_ok = wf_tries = 0
    if a.write_first:
        for _ in range(3):
            wf_tries += 1
            wf_ok += fresh(a.port, a.tls, True)
    stop.set()
    t.join()
    print("fresh /healthz %d/%d during %d silent connections (%s); attacker "
          "opened %d, server closed %d%s" %
          (ok, tries, a.attackers, "TLS" if a.tls else "plain",
           stats["opened"], stats["closed_by_server"],
           "; write-first 8 MiB POST saw 413 %d/%d" % (wf_ok, wf_tries)
           if a.write_first else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
