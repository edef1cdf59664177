"""The parent steps (the probe connects, gRPC runs), then forks a child that
steps too. The child must run untouched (exit 0, same results) and say once
why it is not profiled. Prints a JSON report.

usage: fork_after_connect.py WORKLOAD_DIR
"""
import json
import os
import sys

sys.path.insert(0, sys.argv[1])
import run_workload  # noqa: E402

results, _ = run_workload.run(6)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    child, _ = run_workload.run(6)
    os.write(w, json.dumps(child).encode())
    os._exit(0)
os.close(w)
data = b""
while True:
    chunk = os.read(r, 65536)
    if not chunk:
        break
    data += chunk
_, status = os.waitpid(pid, 0)
print(json.dumps({"parent": results, "child": json.loads(data or b"null"),
                  "child_status": status}))
