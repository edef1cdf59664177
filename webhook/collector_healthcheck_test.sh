#!/usr/bin/env bash
# vp-healthcheck against a stand-in HTTP server: healthy, unhealthy (500),
# nothing listening, no port file, garbage port file. Exact messages.
set -uo pipefail
HC="$(pwd)/$1"
T="${TEST_TMPDIR:-$(mktemp -d)}"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() {  # want_rc want_stderr args...
  local want_rc="$1" want_err="$2"; shift 2
  local err rc
  err=$("$HC" "$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" = "$want_rc" ] || fail "$*: rc $rc, want $want_rc ($err)"
  [ "$err" = "$want_err" ] || fail "$*: stderr [$err], want [$want_err]"
}
cat > "$T/server.py" <<'PY'
import http.server, json, sys
status = int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump({"grpc_port": 1, "http_port": s.server_address[1]}, f)
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
serve() {
  rm -f "$T/ports.json"
  /usr/bin/python3 "$T/server.py" "$T/ports.json" "$1" & PID=$!
  for _ in $(seq 100); do [ -s "$T/ports.json" ] && break; sleep 0.05; done
}
check 1 "vp-healthcheck: $T/none.json: No such file or directory (collector not listening yet)" --port_file="$T/none.json"
serve 200
check 0 "" --port_file="$T/ports.json"
PORT=$(/usr/bin/python3 -c "import json;print(json.load(open('$T/ports.json'))['http_port'])")
kill $PID; wait $PID 2>/dev/null
check 1 "vp-healthcheck: connect 127.0.0.1:$PORT: Connection refused" --port_file="$T/ports.json"
serve 500
check 1 "vp-healthcheck: GET /healthz: HTTP/1.0 500 Internal Server Error" --port_file="$T/ports.json"
kill $PID; wait $PID 2>/dev/null
echo '{"grpc_port":1}' > "$T/bad.json"
check 1 "vp-healthcheck: $T/bad.json: no http_port in \"{\"grpc_port\":1}
\"" --port_file="$T/bad.json"
check 1 "vp-healthcheck: unknown argument --x (usage: --port_file=PATH)" --x
[ "$fails" = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "collector_healthcheck_test: all checks passed"
