#!/usr/bin/python3
"""A keep-alive HTTPS client for https_test.sh: POSTs an AdmissionReview
over ONE TLS connection until STOP_FILE exists, checking every answer.

Usage: https_keepalive.py PORT CA_FILE BODY_FILE STOP_FILE
Prints "requests=N failures=F connections=C" and exits non-zero when any
request failed or the connection was replaced.
"""
import http.client
import os
import ssl
import sys
import time


def main():
    port, ca, body_file, stop = sys.argv[1:5]
    body = open(body_file, "rb").read()
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("localhost", int(port), context=ctx,
                                       timeout=10)
    requests = failures = 0
    sockets = set()
    deadline = time.time() + 60
    while not os.path.exists(stop) and time.time() < deadline:
        try:
            conn.request("POST", "/mutate", body,
                         {"Content-Type": "application/json"})
            sockets.add(id(conn.sock))
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or b'"patchType":"JSONPatch"' not in data:
                failures += 1
                print(f"bad answer {resp.status}: {data[:200]!r}")
        except Exception as e:  # noqa: BLE001 - any failure is reported
            failures += 1
            print(f"request failed: {e!r}")
            conn.close()
        requests += 1
        time.sleep(0.01)
    print(f"requests={requests} failures={failures} connections={len(sockets)}")
    sys.exit(0 if failures == 0 and len(sockets) == 1 and requests > 10 else 1)


if __name__ == "__main__":
    main()
