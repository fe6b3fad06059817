#!/usr/bin/env bash
# Palisade measured side by side with the servers people would pick instead.
#
#   bench/run.sh [--quick] [chat] [https] [handshake] [idle] [postgres] [fanout]
#
# With no scenario names it runs them all, in that order. --quick runs each
# for a second or two (for trying the script out); the default is the fuller
# run whose figures go into BENCHMARKS.md.
#
# Everything runs on loopback: each server under test is started here, on
# 127.0.0.1, with its own configuration in $OUT, and stopped at the end. The
# server is pinned to one core and the load generator to the other, so a
# figure is "per server core". All servers present the same certificate,
# issued by Palisade's internal CA. Every load loop is bounded by time.
#
# Environment: BENCH_OUT (work directory, default a new /tmp directory),
# BENCH_SERVER_CPU (default 0), BENCH_LOAD_CPU (default 1), BENCH_CHAT_RATES
# (offered chat rates, space separated, e.g. "5000 20000").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_OUT:-$(mktemp -d /tmp/palisade-bench.XXXXXX)}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

QUICK=0
SCENARIOS=()
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    chat | https | handshake | idle | postgres | fanout) SCENARIOS+=("$arg") ;;
    *)
      echo "run.sh: unknown argument $arg (scenarios: chat https handshake idle postgres fanout)" >&2
      exit 2
      ;;
  esac
done
[ ${#SCENARIOS[@]} -eq 0 ] && SCENARIOS=(chat https handshake idle postgres fanout)

# Durations (seconds) and sizes: quick, or full.
if [ "$QUICK" = 1 ]; then
  CHAT_SECS=3 CHAT_WARMUP=1 CHAT_RATES="2000" CHAT_VISITORS=50
  CEILING_SECS=1 HTTP_SECS=3 HANDSHAKE_SECS=2 IDLE_CONNS=200 PG_RATES="1000"
  FANOUT_SECS=3 FANOUT_SUBSCRIBERS=50 FANOUT_PUBLISHERS=5 FANOUT_RATES="50"
else
  CHAT_SECS=15 CHAT_WARMUP=3 CHAT_RATES="5000 10000 20000" CHAT_VISITORS=200
  CEILING_SECS=5 HTTP_SECS=10 HANDSHAKE_SECS=10 IDLE_CONNS=2000 PG_RATES="2000 5000 10000"
  FANOUT_SECS=10 FANOUT_SUBSCRIBERS=200 FANOUT_PUBLISHERS=20 FANOUT_RATES="100 400"
fi

CHAT_RATES=${BENCH_CHAT_RATES:-$CHAT_RATES}

PALISADE_PORT=18443 PALISADE_OPS_PORT=19090
NGINX_PORT=18444 HAPROXY_PORT=18445 ECHO_PORT=18446 PG_PORT=18432
NATS_PORT=18448 NATS_WS_PORT=18447
PGBIN=${BENCH_PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

BIN=$OUT/bin
RESULTS=$OUT/results.tsv
mkdir -p "$BIN"
: >"$RESULTS"

STARTED=()
stop_all() {
  for pid in "${STARTED[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  STARTED=()
}
trap stop_all EXIT

log() { echo "== $*" >&2; }

# Waits until something listens on 127.0.0.1:$1 (at most 20 s).
wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "run.sh: nothing listens on port $1" >&2
  return 1
}

on_server() { taskset -c "$SERVER_CPU" "$@"; }
on_load() { taskset -c "$LOAD_CPU" "$@"; }

# record SCENARIO METRIC UNIT PALISADE PEER PEER_VALUE BETTER(higher|lower)
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# ----------------------------------------------------------------- set-up

"$ROOT/bench/install-peers.sh"

log "building release binaries"
(cd "$ROOT" && cargo build --release --locked -p palisade -p palisade-bench)
for b in palisade palisade-bench bench-echo; do cp "$CARGO_TARGET_DIR/release/$b" "$BIN/"; done
BENCH=$BIN/palisade-bench

# Starts `palisade demo` on a fresh data directory that reuses the TLS
# material of the first one, so every server presents one certificate.
# Sets PALISADE_PID, WIDGET_KEY, AGENT_PASSWORD.
start_palisade() {
  local data=$OUT/palisade-$1
  rm -rf "$data"
  mkdir -p "$data"
  [ -d "$OUT/tls" ] && cp -a "$OUT/tls" "$data/tls"
  # A benchmark measures capacity, not quotas: the per-client rate limits
  # (which one generator address and a few visitors would hit) are off.
  PALISADE_DATABASE__URL=${2:-sqlite://$data/palisade.db?mode=rwc} \
    PALISADE_LIMITS__SEND_PER_ADDRESS=off PALISADE_LIMITS__SEND_PER_CREDENTIAL=off \
    PALISADE_LIMITS__SEND_PER_TENANT=off PALISADE_LIMITS__WS_MESSAGES_PER_CONNECTION=off \
    PALISADE_LIMITS__SESSION_PER_ADDRESS=off PALISADE_LIMITS__SESSION_PER_TENANT=off \
    PALISADE_LIMITS__READ_PER_ADDRESS=off PALISADE_LIMITS__WRITE_PER_ADDRESS=off \
    PALISADE_LIMITS__READ_PER_CREDENTIAL=off PALISADE_LIMITS__READ_PER_TENANT=off \
    PALISADE_LIMITS__LOGIN_PER_ADDRESS=off PALISADE_SERVER__MAX_CONNECTIONS_PER_ADDRESS=100000 \
    PALISADE_SERVER__PUBLIC_ADDR=127.0.0.1:$PALISADE_PORT \
    PALISADE_SERVER__OPS_ADDR=127.0.0.1:$PALISADE_OPS_PORT \
    PALISADE_LOG__LEVEL=warn PALISADE_LOG__FORMAT=text \
    taskset -c "$SERVER_CPU" "$BIN/palisade" demo --data-dir "$data" >"$data.out" 2>"$data.err" &
  PALISADE_PID=$!
  STARTED+=("$PALISADE_PID")
  for _ in $(seq 1 200); do
    grep -q "Widget key:" "$data.out" 2>/dev/null && break
    sleep 0.1
  done
  WIDGET_KEY=$(awk '/Widget key:/ {print $3}' "$data.out")
  AGENT_PASSWORD=$(awk '/Password:/ {print $2}' "$data.out")
  if [ -z "$WIDGET_KEY" ]; then
    cat "$data.err" >&2
    echo "run.sh: palisade did not start" >&2
    exit 1
  fi
  [ -d "$OUT/tls" ] || cp -a "$data/tls" "$OUT/tls"
}

stop_palisade() {
  kill "$PALISADE_PID" 2>/dev/null || true
  wait "$PALISADE_PID" 2>/dev/null || true
}

# The shared certificate, in the forms nginx and haproxy read.
prepare_certs() {
  CA=$OUT/tls/ca.pem
  CERT=$OUT/tls/server.pem
  KEY=$OUT/tls/server-key.pem
  cat "$CERT" "$KEY" >"$OUT/haproxy.pem"
  chmod 600 "$OUT/haproxy.pem"
}

start_nginx() {
  mkdir -p "$OUT/nginx/logs"
  cat >"$OUT/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
error_log $OUT/nginx/logs/error.log warn;
pid $OUT/nginx/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $OUT/nginx/tmp;
  proxy_temp_path $OUT/nginx/tmp;
  fastcgi_temp_path $OUT/nginx/tmp;
  uwsgi_temp_path $OUT/nginx/tmp;
  scgi_temp_path $OUT/nginx/tmp;
  types { text/javascript js; }
  server {
    listen 127.0.0.1:$NGINX_PORT ssl http2;
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $OUT/www;
  }
}
EOF
  mkdir -p "$OUT/nginx/tmp"
  taskset -c "$SERVER_CPU" nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" \
    2>>"$OUT/nginx/logs/stderr" &
  NGINX_PID=$!
  STARTED+=("$NGINX_PID")
  wait_port "$NGINX_PORT"
}

start_haproxy() {
  cat >"$OUT/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 9000
defaults
  mode http
  timeout client 30s
  timeout connect 5s
  timeout server 30s
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT ssl crt $OUT/haproxy.pem alpn h2,http/1.1
  http-request return status 200 content-type "text/javascript; charset=utf-8" \
    file $OUT/www/widget/loader.js
EOF
  taskset -c "$SERVER_CPU" haproxy -W -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.out" 2>&1 &
  HAPROXY_PID=$!
  STARTED+=("$HAPROXY_PID")
  wait_port "$HAPROXY_PORT"
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

json() { jq -r "$1" <<<"$2"; }

# What the figures were measured on, for BENCHMARKS.md.
describe_machine() {
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "kernel: $(uname -r)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "palisade: $(git -C "$ROOT" rev-parse --short HEAD) (release build)"
  echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2)"
  echo "haproxy: $(haproxy -v | head -1 | cut -d' ' -f3)"
  echo "wrk: $(dpkg-query -W -f='${Version}' wrk 2>/dev/null)"
  echo "openssl (nginx, haproxy, wrk): $(openssl version | cut -d' ' -f2)"
  echo "postgresql: $("$PGBIN/postgres" --version | awk '{print $3}')"
  echo "nats-server: $(nats-server --version 2>/dev/null | awk '{print $2}')"
}
describe_machine | tee "$OUT/machine.txt" >&2

# ------------------------------------------------------------- scenarios

scenario_chat() {
  log "chat: SQLite ceiling (the same rows, batched, synchronous=FULL WAL)"
  local best=0 line
  while read -r line; do
    local rate batch
    rate=$(json .rows_per_s "$line")
    batch=$(json .batch "$line")
    record "chat-sqlite" "ceiling rows/s, bare insert, batch $batch" "rows/s" "" \
      "sqlite (no server)" "$rate" higher
    best=$(awk -v a="$best" -v b="$rate" 'BEGIN {print (b > a) ? b : a}')
  done < <(on_server "$BENCH" sqlite-ceiling --dir "$OUT" --statements insert \
    --batch 1,64,512 --duration "$CEILING_SECS")
  local writer
  writer=$(on_server "$BENCH" sqlite-ceiling --dir "$OUT" --statements writer \
    --batch 512 --duration "$CEILING_SECS")
  record "chat-sqlite" "ceiling rows/s, Palisade's statements, batch 512" "rows/s" "" \
    "sqlite (no server)" "$(json .rows_per_s "$writer")" higher

  for rate in $CHAT_RATES; do
    # A fresh Palisade per rate: the demo owner sets up its second factor
    # on its first sign-in only, which is what the generator does.
    start_palisade "chat-$rate"
    log "chat: Palisade at $rate msgs/s offered"
    local report
    report=$(PALISADE_BENCH_AGENT_PASSWORD=$AGENT_PASSWORD on_load "$BENCH" chat \
      --url "https://127.0.0.1:$PALISADE_PORT" --ca "$OUT/tls/ca.pem" --widget-key "$WIDGET_KEY" \
      --visitors "$CHAT_VISITORS" --rate "$rate" --duration "$CHAT_SECS" --warmup "$CHAT_WARMUP" --drain 10 \
      --server-pid "$PALISADE_PID")
    echo "$report" >>"$OUT/chat.jsonl"
    local peer="" peer_value=""
    if [ "$rate" = "${CHAT_RATES##* }" ]; then peer="SQLite ceiling, best batch" peer_value=$best; fi
    record "chat-sqlite" "acked msgs/s at $rate offered" "msgs/s" "$(json .acked_per_s "$report")" "$peer" "$peer_value" higher
    record "chat-sqlite" "ack p50 at $rate offered" "µs" "$(json .ack.p50_us "$report")" "" "" lower
    record "chat-sqlite" "ack p99 at $rate offered" "µs" "$(json .ack.p99_us "$report")" "" "" lower
    record "chat-sqlite" "ack p99.9 at $rate offered" "µs" "$(json .ack.p999_us "$report")" "" "" lower
    record "chat-sqlite" "delivery p99 at $rate offered" "µs" "$(json .delivery.p99_us "$report")" "" "" lower
    record "chat-sqlite" "errors at $rate offered" "count" "$(json .errors "$report")" "" "" lower
    record "chat-sqlite" "unanswered 10 s after the last send, at $rate offered" "count" "$(json .unanswered "$report")" "" "" lower
    record "chat-sqlite" "server cores busy at $rate offered" "cores" "$(json .server_cores "$report")" "" "" lower
    stop_palisade
  done
}

# wrk's Requests/sec against a URL, one thread, $1 connections.
wrk_rps() {
  on_load wrk -t1 -c"$1" -d"${HTTP_SECS}s" "$2" | awk '/Requests\/sec/ {print $2}'
}

scenario_https() {
  start_palisade https
  prepare_certs
  mkdir -p "$OUT/www/widget"
  curl -sf --cacert "$CA" "https://127.0.0.1:$PALISADE_PORT/widget/loader.js" -o "$OUT/www/widget/loader.js"
  start_nginx
  start_haproxy
  local path=/widget/loader.js
  declare -A port=([palisade]=$PALISADE_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT)
  declare -A rps
  for server in palisade nginx haproxy; do
    log "https: wrk max rate, $server"
    rps[$server]=$(wrk_rps 64 "https://127.0.0.1:${port[$server]}$path")
  done
  record "https" "max requests/s (wrk, 64 conns, $(wc -c <"$OUT/www/widget/loader.js") B body)" "req/s" "${rps[palisade]}" nginx "${rps[nginx]}" higher
  record "https" "max requests/s (wrk, 64 conns)" "req/s" "${rps[palisade]}" haproxy "${rps[haproxy]}" higher

  # Latency at half of Palisade's maximum, the same offered rate for all.
  local half
  half=$(awk -v r="${rps[palisade]}" 'BEGIN {printf "%d", r / 2}')
  declare -A p50 p99
  for server in palisade nginx haproxy; do
    log "https: open-loop $half req/s, $server"
    local report
    report=$(on_load "$BENCH" https --url "https://127.0.0.1:${port[$server]}" --ca "$CA" --path "$path" \
      --connections 64 --rate "$half" --duration "$HTTP_SECS" --warmup 1)
    p50[$server]=$(json .latency.p50_us "$report")
    p99[$server]=$(json .latency.p99_us "$report")
    echo "$report" >>"$OUT/https-$server.jsonl"
  done
  for peer in nginx haproxy; do
    record "https" "p50 at $half req/s (half Palisade's max)" "µs" "${p50[palisade]}" "$peer" "${p50[$peer]}" lower
    record "https" "p99 at $half req/s (half Palisade's max)" "µs" "${p99[palisade]}" "$peer" "${p99[$peer]}" lower
  done
  stop_pid "$NGINX_PID"
  stop_pid "$HAPROXY_PID"
  stop_palisade
}

scenario_handshake() {
  start_palisade handshake
  prepare_certs
  mkdir -p "$OUT/www/widget"
  [ -f "$OUT/www/widget/loader.js" ] || echo "ok" >"$OUT/www/widget/loader.js"
  start_nginx
  start_haproxy
  declare -A port=([palisade]=$PALISADE_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT)
  declare -A pid=([palisade]=$PALISADE_PID [nginx]=$NGINX_PID [haproxy]=$HAPROXY_PID)
  declare -A per_s per_core
  for server in palisade nginx haproxy; do
    log "handshake: $server"
    local report
    report=$(on_load "$BENCH" handshake --url "https://127.0.0.1:${port[$server]}" --ca "$CA" \
      --concurrency 32 --duration "$HANDSHAKE_SECS" --sources 8 --server-pid "${pid[$server]}")
    per_s[$server]=$(json .per_s "$report")
    per_core[$server]=$(json .per_server_core_s "$report")
    echo "$report" >>"$OUT/handshake-$server.jsonl"
  done
  for peer in nginx haproxy; do
    record "handshake" "full handshakes/s (generator-bound)" "1/s" "${per_s[palisade]}" "$peer" "${per_s[$peer]}" higher
    record "handshake" "full handshakes per server CPU-second" "1/s" "${per_core[palisade]}" "$peer" "${per_core[$peer]}" higher
  done
  stop_pid "$NGINX_PID"
  stop_pid "$HAPROXY_PID"
  stop_palisade
}

scenario_idle() {
  start_palisade idle
  prepare_certs
  log "idle: $IDLE_CONNS Palisade visitor sockets"
  local palisade echo
  palisade=$(on_load "$BENCH" idle --url "https://127.0.0.1:$PALISADE_PORT" --ca "$CA" \
    --server-pid "$PALISADE_PID" --connections "$IDLE_CONNS" --kind palisade --widget-key "$WIDGET_KEY")
  stop_palisade
  taskset -c "$SERVER_CPU" "$BIN/bench-echo" --listen "127.0.0.1:$ECHO_PORT" --cert "$CERT" --key "$KEY" 2>"$OUT/echo.err" &
  local echo_pid=$!
  STARTED+=("$echo_pid")
  wait_port "$ECHO_PORT"
  log "idle: $IDLE_CONNS bench-echo sockets"
  echo=$(on_load "$BENCH" idle --url "https://127.0.0.1:$ECHO_PORT" --ca "$CA" \
    --server-pid "$echo_pid" --connections "$IDLE_CONNS" --kind echo)
  stop_pid "$echo_pid"
  record "idle" "server RSS per idle TLS WebSocket ($IDLE_CONNS open)" "bytes" \
    "$(json .bytes_per_connection "$palisade")" "tokio-tungstenite echo (default buffers)" \
    "$(json .bytes_per_connection "$echo")" lower
}

# A private PostgreSQL cluster in $OUT (owned by the postgres user, trust
# authentication, listening on 127.0.0.1 only), pinned to the server core.
start_postgres() {
  local dir=$OUT/pg
  install -d -o postgres -g postgres "$dir"
  setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log"
  taskset -c "$SERVER_CPU" setpriv --reuid=postgres --regid=postgres --init-groups \
    "$PGBIN/postgres" -D "$dir/data" -p "$PG_PORT" -k "$dir" -c listen_addresses=127.0.0.1 \
    -c fsync=on -c synchronous_commit=on -c max_connections=200 >"$dir/server.log" 2>&1 &
  PG_PID=$!
  STARTED+=("$PG_PID")
  wait_port "$PG_PORT"
  psql -qAt -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE palisade" >/dev/null
}

scenario_postgres() {
  start_postgres
  local rate report db=palisade
  for rate in $PG_RATES; do
    # A fresh database and Palisade per rate (see scenario_chat).
    db="palisade_$rate"
    psql -qAt -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE $db" >/dev/null
    start_palisade "postgres-$rate" "postgres://postgres@127.0.0.1:$PG_PORT/$db"
    log "postgres: Palisade at $rate msgs/s offered"
    report=$(PALISADE_BENCH_AGENT_PASSWORD=$AGENT_PASSWORD on_load "$BENCH" chat \
      --url "https://127.0.0.1:$PALISADE_PORT" --ca "$OUT/tls/ca.pem" --widget-key "$WIDGET_KEY" \
      --visitors "$CHAT_VISITORS" --rate "$rate" --duration "$CHAT_SECS" --warmup "$CHAT_WARMUP" --drain 10 \
      --server-pid "$PALISADE_PID")
    echo "$report" >>"$OUT/postgres.jsonl"
    record "chat-postgres" "acked msgs/s at $rate offered" "msgs/s" "$(json .acked_per_s "$report")" "" "" higher
    record "chat-postgres" "ack p99 at $rate offered" "µs" "$(json .ack.p99_us "$report")" "" "" lower
    record "chat-postgres" "errors at $rate offered" "count" "$(json .errors "$report")" "" "" lower
    record "chat-postgres" "unanswered 10 s after the last send, at $rate offered" "count" "$(json .unanswered "$report")" "" "" lower
    stop_palisade
  done

  # pgbench: the same single-row insert into Palisade's messages table, one
  # commit per row, at the same durability, 64 clients.
  local ids tenant conversation tps
  ids=$(psql -qAt -F ' ' -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" \
    -c "SELECT tenant_id, id FROM conversations LIMIT 1")
  read -r tenant conversation <<<"$ids"
  {
    echo "\\set seq random(1000000000, 9000000000000)"
    echo "INSERT INTO messages (id, tenant_id, conversation_id, seq, client_msg_id, author_kind," \
      "author_id, body, created_at) VALUES (gen_random_uuid()::text, :tenant, :conversation," \
      ":seq, 'p-' || :seq, 'visitor', NULL, repeat('x', 100), 0);"
  } >"$OUT/pgbench-insert.sql"
  log "postgres: pgbench single-row inserts"
  tps=$(on_load "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 64 -j 1 -T "$CHAT_SECS" \
    -D tenant="'$tenant'" -D conversation="'$conversation'" -f "$OUT/pgbench-insert.sql" "$db" \
    | tee "$OUT/pgbench.out" | awk '/^tps/ {print $3}')
  record "chat-postgres" "pgbench single-row inserts/s (64 clients, no Palisade)" "rows/s" "" \
    "PostgreSQL alone" "$tps" higher
  stop_pid "$PG_PID"
}

# nats-server with its WebSocket listener over TLS (the shared certificate)
# and its client port, both on 127.0.0.1; one core, like every server here.
start_nats() {
  mkdir -p "$OUT/nats"
  cat >"$OUT/nats/nats.conf" <<EOF
listen: 127.0.0.1:$NATS_PORT
pid_file: "$OUT/nats/nats.pid"
websocket {
  listen: "127.0.0.1:$NATS_WS_PORT"
  compression: false
  tls {
    cert_file: "$CERT"
    key_file: "$KEY"
  }
}
EOF
  GOMAXPROCS=1 taskset -c "$SERVER_CPU" nats-server -c "$OUT/nats/nats.conf" >"$OUT/nats/out.log" 2>&1 &
  NATS_PID=$!
  STARTED+=("$NATS_PID")
  wait_port "$NATS_WS_PORT"
}

# Room fan-out: N subscriber sockets receive every broadcast of M concurrent
# publishers. Palisade's subscribers are agent sockets of the demo tenant and
# its publishers visitors (each message is committed to SQLite before it fans
# out); nats-server's are WebSocket clients of one subject (nothing stored).
scenario_fanout() {
  start_palisade fanout
  prepare_certs
  start_nats
  local rate palisade nats
  for rate in $FANOUT_RATES; do
    # A fresh Palisade per rate: the generator signs the owner in through
    # its first second factor, which only a fresh data directory offers.
    stop_palisade
    start_palisade "fanout-$rate"
    local args=(--subscribers "$FANOUT_SUBSCRIBERS" --publishers "$FANOUT_PUBLISHERS" --rate "$rate"
      --duration "$FANOUT_SECS" --warmup 1 --drain 5)
    log "fanout: Palisade, $FANOUT_SUBSCRIBERS subscribers, $rate broadcasts/s"
    palisade=$(PALISADE_BENCH_AGENT_PASSWORD=$AGENT_PASSWORD on_load "$BENCH" fanout --kind palisade \
      --url "https://127.0.0.1:$PALISADE_PORT" --ca "$CA" --widget-key "$WIDGET_KEY" \
      --server-pid "$PALISADE_PID" "${args[@]}")
    log "fanout: nats-server, $FANOUT_SUBSCRIBERS subscribers, $rate broadcasts/s"
    nats=$(on_load "$BENCH" fanout --kind nats --url "https://127.0.0.1:$NATS_WS_PORT" --ca "$CA" \
      --server-pid "$NATS_PID" "${args[@]}")
    echo "$palisade" >>"$OUT/fanout-palisade.jsonl"
    echo "$nats" >>"$OUT/fanout-nats.jsonl"
    local what="$FANOUT_SUBSCRIBERS subscribers, $FANOUT_PUBLISHERS publishers, $rate broadcasts/s"
    local peer="nats-server (WebSocket)"
    record "fanout" "deliveries/s, $what" "1/s" "$(json .deliveries_per_s "$palisade")" \
      "$peer" "$(json .deliveries_per_s "$nats")" higher
    record "fanout" "delivery p50, $what" "µs" "$(json .delivery.p50_us "$palisade")" \
      "$peer" "$(json .delivery.p50_us "$nats")" lower
    record "fanout" "delivery p99, $what" "µs" "$(json .delivery.p99_us "$palisade")" \
      "$peer" "$(json .delivery.p99_us "$nats")" lower
    record "fanout" "missing deliveries, $what" "count" "$(json .missing "$palisade")" \
      "$peer" "$(json .missing "$nats")" lower
    record "fanout" "server cores busy, $what" "cores" "$(json .server_cores "$palisade")" \
      "$peer" "$(json .server_cores "$nats")" lower
  done
  stop_pid "$NATS_PID"
  stop_palisade
}

# ------------------------------------------------------------------ report

for s in "${SCENARIOS[@]}"; do
  "scenario_$s"
done

{
  echo
  echo "| scenario | metric | Palisade | peer | peer's figure | Palisade ÷ peer |"
  echo "| --- | --- | ---: | --- | ---: | ---: |"
  awk -F'\t' '
    function show(v, unit) {
      if (v == "") return "";
      if (unit == "µs") return (v >= 1000) ? sprintf("%.2f ms", v / 1000) : sprintf("%d µs", v);
      if (unit == "bytes") return sprintf("%.1f KiB", v / 1024);
      if (unit == "count") return sprintf("%d", v);
      if (unit == "cores") return sprintf("%.2f", v);
      return sprintf("%.0f %s", v, unit);
    }
    {
      ratio = "";
      if ($4 != "" && $6 != "" && $6 + 0 > 0) ratio = sprintf("%.2f", $4 / $6);
      printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, show($4, $3), $5, show($6, $3), ratio;
    }' "$RESULTS"
  echo
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Raw reports: $OUT"
} | tee "$OUT/table.md"
