#!/usr/bin/env bash
# The webhook binary over real TLS: gen-certs, curl with the generated CA
# against every route, the bad-input list at the HTTP level with exact
# statuses and messages, plain HTTP and TLS 1.1 on the TLS port, and a
# certificate rotation while a keep-alive client keeps sending.
set -uo pipefail
WEBHOOK="$(pwd)/$1"
DIR="$(cd "$(dirname "$0")" && pwd)"
T="${TEST_TMPDIR:-$(mktemp -d)}"
REVIEW="$DIR/testdata/golden/01_plain_vllm.review.json"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$WEBHOOK" gen-certs --out_dir="$T/certs" --extra_sans=localhost,127.0.0.1 \
  || { echo "gen-certs failed"; exit 1; }

# A bad setting stops the binary at start with a clear message.
err=$(SIDECAR_MODE=sometimes "$WEBHOOK" serve 2>&1); rc=$?
[ "$rc" = 2 ] || fail "bad config: exit $rc"
[ "$err" = 'webhook: bad configuration: --sidecar_mode (env SIDECAR_MODE): "sometimes" is not one of native, container' ] \
  || fail "bad config message: $err"
# Missing certificate files: no start.
"$WEBHOOK" serve --listen_address=127.0.0.1:0 --tls_cert_file="$T/none.crt" \
  --tls_key_file="$T/none.key" 2>/dev/null && fail "started without certificates"
"$WEBHOOK" serve --listen_address=127.0.0.1:0 --port_file="$T/port" \
  --tls_cert_file="$T/certs/tls.crt" --tls_key_file="$T/certs/tls.key" \
  --max_body_bytes=65536 --log_level=INFO 2>"$T/webhook.log" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
PORT=$(sed 's/[^0-9]//g' "$T/port")
[ -n "$PORT" ] || { echo "no port file"; cat "$T/webhook.log"; exit 1; }
URL="https://localhost:$PORT"
C=(curl -sS --cacert "$T/certs/ca.crt" --max-time 10)

# expect STATUS BODY curl-args...: exact status and body.
expect() {
  local want_status="$1" want_body="$2"; shift 2
  local got status body
  got=$("${C[@]}" -w '\n%{http_code}' "$@") || { fail "curl $*"; return; }
  status="${got##*$'\n'}"
  body="${got%$'\n'*}"
  [ "$status" = "$want_status" ] || fail "$*: status $status, want $want_status"
  [ "$body" = "$want_body"$'\n' ] || fail "$*: body [$body], want [$want_body]"
}

expect 200 "ok" "$URL/healthz"
expect 200 "ok" "$URL/readyz"
out=$("${C[@]}" -H 'Content-Type: application/json' --data-binary @"$REVIEW" "$URL/mutate")
echo "$out" | grep -q '"uid":"uid-01"' || fail "mutate: no uid in $out"
echo "$out" | grep -q '"patchType":"JSONPatch"' || fail "mutate: no patch in $out"

# A skipped pod: allowed, no patch, the reason in the log and the metrics.
out=$("${C[@]}" -H 'Content-Type: application/json' \
  --data-binary @"$DIR/testdata/golden/13_label_missing.review.json" "$URL/mutate")
[ "$out" = '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"uid-13","allowed":true}}' ] \
  || fail "skip answer: $out"

# The bad-input list.
expect 400 "invalid AdmissionReview: body is not valid JSON" \
  -H 'Content-Type: application/json' --data-binary '{"kind":' "$URL/mutate"
expect 400 "invalid AdmissionReview: kind is \"Pod\", expected \"AdmissionReview\"" \
  -H 'Content-Type: application/json' --data-binary '{"kind":"Pod"}' "$URL/mutate"
expect 400 "invalid AdmissionReview: apiVersion \"admission.k8s.io/v1beta1\" is not supported, expected \"admission.k8s.io/v1\"" \
  -H 'Content-Type: application/json' \
  --data-binary '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1"}' "$URL/mutate"
expect 400 "invalid AdmissionReview: request.uid is missing or not a non-empty string" \
  -H 'Content-Type: application/json' \
  --data-binary '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{}}' "$URL/mutate"
sed 's/"containers": \[/"containers": 7, "x": [/' "$REVIEW" > "$T/badtypes.json"
expect 400 "invalid AdmissionReview: request.object.spec.containers: expected array, got number" \
  -H 'Content-Type: application/json' --data-binary @"$T/badtypes.json" "$URL/mutate"
head -c 70000 /dev/zero | tr '\0' ' ' > "$T/big.json"
expect 413 "request body too large: the limit is 65536 bytes" -H 'Expect: 100-continue' \
  -H 'Content-Type: application/json' --data-binary @"$T/big.json" "$URL/mutate"
expect 415 "unsupported Content-Type \"text/plain\": expected application/json" \
  -H 'Content-Type: text/plain' --data-binary @"$REVIEW" "$URL/mutate"
expect 404 "not found: /validate (the webhook serves POST /mutate)" \
  -H 'Content-Type: application/json' --data-binary @"$REVIEW" "$URL/validate"
expect 405 "method GET not allowed on /mutate; use POST" "$URL/mutate"
expect 405 "method PUT not allowed on /mutate; use POST" -X PUT "$URL/mutate"

# Plain HTTP on the TLS port: no HTTP answer, the server lives on.
if curl -sS --max-time 5 "http://localhost:$PORT/healthz" >"$T/plain.out" 2>&1; then
  fail "plain HTTP got an answer: $(cat "$T/plain.out")"
fi
# TLS 1.1 is refused (TLS 1.2 minimum).
if "${C[@]}" --tlsv1.1 --tls-max 1.1 "$URL/healthz" >/dev/null 2>&1; then
  fail "TLS 1.1 accepted"
fi
expect 200 "ok" "$URL/healthz"

# Certificate rotation under a keep-alive client.
serial() { openssl x509 -noout -serial; }
served_serial() {
  openssl s_client -connect "127.0.0.1:$PORT" -servername localhost </dev/null 2>/dev/null | serial
}
old=$(serial < "$T/certs/tls.crt")
[ "$(served_serial)" = "$old" ] || fail "served certificate is not tls.crt"
/usr/bin/python3 "$DIR/https_keepalive.py" "$PORT" "$T/certs/ca.crt" "$REVIEW" "$T/stop" \
  >"$T/keepalive.out" 2>&1 &
KA=$!
sleep 1
"$WEBHOOK" gen-certs --out_dir="$T/certs" --extra_sans=localhost,127.0.0.1 --reuse_ca \
  || fail "gen-certs --reuse_ca"
new=$(serial < "$T/certs/tls.crt")
[ "$new" != "$old" ] || fail "rotation did not change the serial"
rotated=0
for _ in $(seq 50); do
  if [ "$(served_serial)" = "$new" ]; then rotated=1; break; fi
  sleep 0.2
done
[ "$rotated" = 1 ] || fail "new certificate not served after rotation"
expect 200 "ok" "$URL/healthz"
sleep 1
touch "$T/stop"
wait "$KA" || fail "keep-alive client: $(cat "$T/keepalive.out")"
echo "keep-alive client: $(cat "$T/keepalive.out")"

# Metrics saw the traffic.
m=$("${C[@]}" "$URL/metrics")
echo "$m" | grep -q '^vllm_profiler_webhook_injected_total [1-9]' || fail "metrics: injected"
echo "$m" | grep -q '^vllm_profiler_webhook_skipped_total{reason="label_not_matched"} 1$' || fail "metrics: skipped"
grep -q "skipped downstream-llm-d/vllm-0 uid=uid-13 reason=label_not_matched" "$T/webhook.log" \
  || fail "no skip reason in the log"
echo "$m" | grep -q '^vllm_profiler_webhook_errors_total{reason="invalid_json"} 1$' || fail "metrics: invalid_json"
echo "$m" | grep -q '^vllm_profiler_webhook_errors_total{reason="unsupported_media_type"} 1$' || fail "metrics: 415"

# Clean shutdown on SIGTERM.
kill -TERM "$PID"
wait "$PID"; rc=$?
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q "webhook: listening https=" "$T/webhook.log" || fail "no listening line"
trap - EXIT

if [ "$fails" -ne 0 ]; then
  echo "--- webhook log"; tail -30 "$T/webhook.log"
  echo "$fails failure(s)"; exit 1
fi
echo "https_test: all checks passed"
