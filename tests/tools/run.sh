#!/usr/bin/env bash
# Outside tools against a running `palisade demo`: sslyze scans the TLS
# listener, schemathesis fuzzes the API described at /openapi.json. The
# server is started here on free loopback ports with a fresh data directory
# and stopped on exit; both tools are bounded in examples and time, and
# only ever aim at that server.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
bin="${PALISADE_BIN:-$target/debug/palisade}"
venv="$target/tools-venv"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/tools/requirements.txt

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
data="$(mktemp -d)"
public_port="$(free_port)"
ops_port="$(free_port)"
origin="https://127.0.0.1:$public_port"

# The fuzzer sends thousands of requests from one address: the rate limits
# are lifted for this server (they have their own tests).
lifted="1000000/s burst 1000000"
# The fuzzer keeps pooled keep-alive connections and may reuse one just as
# the server closes it for being idle, which Python reports as a TLS EOF on
# a POST it will not retry. Idle time-outs have their own tests; here the
# server keeps idle connections for the whole run.
env \
    PALISADE_SERVER__PUBLIC_ADDR="127.0.0.1:$public_port" \
    PALISADE_SERVER__OPS_ADDR="127.0.0.1:$ops_port" \
    PALISADE_SERVER__HEADER_READ_TIMEOUT_SECS=120 \
    PALISADE_SERVER__IDLE_TIMEOUT_SECS=900 \
    PALISADE_LIMITS__LOGIN_PER_ADDRESS="$lifted" \
    PALISADE_LIMITS__LOGIN_PER_ACCOUNT="$lifted" \
    PALISADE_LIMITS__SESSION_PER_ADDRESS="$lifted" \
    PALISADE_LIMITS__SEND_PER_ADDRESS="$lifted" \
    PALISADE_LIMITS__SEND_PER_CREDENTIAL="$lifted" \
    PALISADE_LIMITS__READ_PER_ADDRESS="$lifted" \
    PALISADE_LIMITS__READ_PER_CREDENTIAL="$lifted" \
    PALISADE_LIMITS__WRITE_PER_ADDRESS="$lifted" \
    PALISADE_LIMITS__WRITE_PER_CREDENTIAL="$lifted" \
    RUST_LOG=warn \
    "$bin" demo --data-dir "$data" >"$data/demo.out" 2>"$data/demo.err" &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

for _ in $(seq 1 60); do
    grep -q "Stop with Ctrl-C" "$data/demo.out" 2>/dev/null && break
    if ! kill -0 "$server" 2>/dev/null; then
        cat "$data/demo.out" "$data/demo.err" >&2
        echo "tools: the demo server exited" >&2
        exit 1
    fi
    sleep 1
done
grep -q "Stop with Ctrl-C" "$data/demo.out" || { echo "tools: demo did not start" >&2; exit 1; }
field() { sed -n "s/^ *$1: *\([^ ]*\).*/\1/p" "$data/demo.out" | head -1; }
ca="$(field "Trust this CA")"
widget_key="$(field "Widget key")"
email="$(field "Agent login")"
password="$(field "Password")"

echo "== sslyze against $origin"
"$venv/bin/sslyze" --quiet --mozilla_config=disable --sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 \
    --heartbleed --openssl_ccs --robot --reneg --compression --json_out="$data/sslyze.json" "127.0.0.1:$public_port" >/dev/null
"$venv/bin/python" tests/tools/sslyze_verdict.py "$data/sslyze.json"

echo "== schemathesis against $origin/openapi.json"
curl_json() { curl -sS --cacert "$ca" -H "content-type: application/json" "$@"; }
visitor_token="$(curl_json -d "{\"widget_key\": \"$widget_key\", \"name\": \"Fuzz\"}" \
    "$origin/v1/visitor/sessions" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
login="$(curl_json -i -d "{\"email\": \"$email\", \"password\": \"$password\"}" "$origin/v1/agent/login")"
cookie="$(printf '%s' "$login" | tr -d '\r' | sed -n 's/^set-cookie: \(palisade_session=[^;]*\).*/\1/ip' | head -1)"
csrf="$(printf '%s' "$login" | tr -d '\r' | tail -1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["csrf_token"])')"
# Logging out would end the session the other operations use.
"$venv/bin/schemathesis" run "$origin/openapi.json" \
    --tls-verify "$ca" \
    -H "Authorization: Bearer $visitor_token" \
    -H "Cookie: $cookie" \
    -H "x-csrf-token: $csrf" \
    --exclude-operation-id agentLogout \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples 40 \
    --workers 2 \
    --request-timeout 10 \
    --max-time 240 \
    --suppress-health-check all \
    --no-color
echo "tools: sslyze and schemathesis found nothing"
