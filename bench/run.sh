#!/usr/bin/env bash
# Runs the broker and its two peers side by side on this machine and writes bench/results/latest.md:
#   - ceiling: bench/Ceiling, a bare-Kestrel server with the broker's JSON protocol and in-memory fanout;
#   - nats:    Debian's nats-server with WebSocket on (installed with apt-get when missing);
#   - broker:  a Release build of src/Broker.Server with the embedded log.
# Each target gets its own server process (a fresh one for idle, topics and lastn), started and
# stopped here; the load tool (bench/Broker.Bench) runs the same scenarios against each.
#
# usage: bench/run.sh [SCENARIO ...]      all scenarios when none is named
#        bench/run.sh --readme            print the README performance section from bench/results/latest/
# scenarios: fanout fanout-max many-topics publish ack-latency compress overload idle topics lastn replay
# environment:
#   TARGETS="ceiling nats broker"   which targets (in this order)
#   MULTIPLEX=auto|on|off   broker namespace `mx.>` multiplexed onto Kafka topic broker.mx (auto: on when
#                           hocon/broker.conf documents `multiplex`); off = plain per-topic mapping
#   COMPRESSION=auto|on|off broker.websocket.compression = on (auto: when hocon/broker.conf has the key)
#   BATCH=1                 also run the broker with ?batch=1 (fanout, fanout-max, overload); 0 = not
#   IDLE_TIMEOUT=150        seconds the broker's idle scenario may take (today's broker opens ~30 topics/s)
set -euo pipefail
cd "$(dirname "$0")/.."

RESULTS=bench/results/latest     # committed: one JSON per target and scenario, plus meta.json
OUT=bench/results/latest.md
TMP=bench/results/tmp            # git-ignored: server logs, configs, databases
BENCH_DLL=bench/Broker.Bench/bin/Release/net10.0/Broker.Bench.dll

if [[ "${1:-}" == "--readme" ]]; then
  exec dotnet "$BENCH_DLL" report --dir "$RESULTS" --readme
fi

ALL_SCENARIOS=(fanout fanout-max many-topics publish ack-latency compress overload idle topics lastn replay)
SCENARIOS=("$@")
[[ ${#SCENARIOS[@]} -eq 0 ]] && SCENARIOS=("${ALL_SCENARIOS[@]}")
for s in "${SCENARIOS[@]}"; do
  [[ " ${ALL_SCENARIOS[*]} " == *" $s "* ]] || { echo "unknown scenario '$s' (${ALL_SCENARIOS[*]})" >&2; exit 2; }
done
want() { [[ " ${SCENARIOS[*]} " == *" $1 "* ]]; }
read -r -a TARGET_LIST <<<"${TARGETS:-ceiling nats broker}"
BATCH=${BATCH:-1}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-150}

# 10,000 idle connections need 10,000+ descriptors in the server and in the load tool.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open files limit: $(ulimit -n)"

if [[ " ${TARGET_LIST[*]} " == *" nats "* ]] && ! command -v nats-server >/dev/null; then
  echo "installing nats-server (apt-get)..."
  apt-get install -y nats-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y nats-server >/dev/null; }
fi

mkdir -p "$TMP" "$RESULTS"
echo "building (Release)..."
for project in src/Broker.Server/Broker.Server.csproj bench/Broker.Bench/Broker.Bench.csproj bench/Ceiling/Ceiling.csproj; do
  dotnet build -c Release "$project" -v q -nologo >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; exit 1; }
done
BENCH=(dotnet "$BENCH_DLL")

MULTIPLEX=${MULTIPLEX:-auto}
[[ "$MULTIPLEX" == auto ]] && { grep -q 'multiplex' hocon/broker.conf && MULTIPLEX=on || MULTIPLEX=off; }
COMPRESSION=${COMPRESSION:-auto}
[[ "$COMPRESSION" == auto ]] && { grep -qE '^\s*compression\s*=' hocon/broker.conf && COMPRESSION=on || COMPRESSION=off; }

rm -f "$RESULTS"/*.json "$TMP"/*.log "$TMP"/*.err "$TMP"/*.conf
rm -rf "$TMP"/broker-*
BROKER_CONF="$PWD/$TMP/broker.conf"
{
  echo "# written by bench/run.sh"
  [[ "$COMPRESSION" == on ]] && echo "broker.websocket.compression = on"
  [[ "$MULTIPLEX" == on ]] && echo 'broker.namespaces = [ { pattern = "mx.>", kafka-topic = "broker.mx", multiplex = true, partitions = 12 } ]'
  # The bench measures capacity: the default quotas (broker.limits, e.g. 5,000 publishes/s per
  # connection, 1,000 new connections/s, per-address caps — every bench client has the same
  # address) would answer rate_limited or refuse connections long before it. 0 turns a limit off.
  echo 'broker.limits { connections-per-ip = 0, connections-per-second = 0, connections-per-subject = 0, publishes-per-second = 0, publish-bytes-per-second = 0, subject-publishes-per-second = 0, subject-publish-bytes-per-second = 0, subscribes-per-second = 0, topic-creations-per-minute = 0 }'
  true
} >"$BROKER_CONF"

# ---- servers ------------------------------------------------------------------------------
SERVER_PID=""; PORT=""; KAFKA_PORT=""; SERVER_N=0
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID"
  fi
  [[ -n "$SERVER_PID" ]] && { wait "$SERVER_PID" 2>/dev/null || true; }
  SERVER_PID=""
  true
}
trap stop_server EXIT

wait_http() { # URL SECONDS LOG: waits for an HTTP answer
  local url=$1 seconds=$2 log=$3
  for _ in $(seq 1 $((seconds * 4))); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" != 000 ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited; see $log" >&2; tail -5 "$log" >&2; return 1; }
    sleep 0.25
  done
  echo "server not answering after ${seconds}s; see $log" >&2
  return 1
}

# start_server TARGET: starts a fresh server of that target on free ports (sets SERVER_PID, PORT, KAFKA_PORT).
start_server() {
  local target=$1
  SERVER_N=$((SERVER_N + 1))
  PORT=$("${BENCH[@]}" free-port)
  local log="$TMP/$target-$SERVER_N.log"
  case "$target" in
    ceiling)
      dotnet bench/Ceiling/bin/Release/net10.0/Ceiling.dll --port "$PORT" >"$log" 2>&1 &
      SERVER_PID=$!
      wait_http "http://127.0.0.1:$PORT/healthz" 30 "$log" ;;
    nats)
      local conf="$TMP/nats-$SERVER_N.conf"
      cat >"$conf" <<CONF
# loopback only; limits high enough that nats-server is not throttled by them
host: 127.0.0.1
port: -1
max_payload: 8MB
max_pending: 256MB
max_connections: 1000000
max_subscriptions: 0
write_deadline: "30s"
ping_interval: "10m"
websocket {
  host: 127.0.0.1
  port: $PORT
  no_tls: true
}
CONF
      nats-server -c "$conf" >"$log" 2>&1 &
      SERVER_PID=$!
      for _ in $(seq 1 120); do grep -q 'Server is ready' "$log" && break; sleep 0.25; done
      grep -q 'Server is ready' "$log" || { echo "nats-server not ready; see $log" >&2; tail -5 "$log" >&2; return 1; } ;;
    broker)
      KAFKA_PORT=$("${BENCH[@]}" free-port)
      mkdir -p "$TMP/broker-$SERVER_N"
      BROKER_CONFIG=$BROKER_CONF BROKER_HTTP_PORT=$PORT BROKER_EMBEDDED_KAFKA_PORT=$KAFKA_PORT BROKER_ADMIN_PORT=0 \
        BROKER_DB_PATH="$TMP/broker-$SERVER_N/broker.db" \
        dotnet src/Broker.Server/bin/Release/net10.0/Broker.Server.dll >"$log" 2>&1 &
      SERVER_PID=$!
      wait_http "http://127.0.0.1:$PORT/healthz" 60 "$log" ;;
  esac
}

# bench TARGET LABEL SCENARIO [ARGS...]: one load-tool run, its JSON in $RESULTS/TARGET.LABEL.json.
bench() {
  local target=$1 label=$2 scenario=$3; shift 3
  echo "  $target: $label"
  "${BENCH[@]}" "$scenario" --target "$target" --port "$PORT" --server-pid "$SERVER_PID" --label "$label" --json "$@" \
    >"$RESULTS/$target.$label.json" 2>"$TMP/$target.$label.err" || echo "    (problems reported)"
}

skip() { # TARGET LABEL SCENARIO WHY: a result that says why it was not run
  printf '{"scenario":"%s","target":"%s","label":"%s","params":{},"metrics":{"note":"%s"},"problems":[]}\n' "$3" "$1" "$2" "$4" >"$RESULTS/$1.$2.json"
}

START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for target in "${TARGET_LIST[@]}"; do
  echo "== $target"
  # Load scenarios share one server process; the most disruptive (overload) comes last.
  if want fanout || want fanout-max || want many-topics || want publish || want ack-latency || want compress || want overload; then
    start_server "$target"
    want fanout && bench "$target" fanout fanout --rate 120 --seconds 10
    want fanout && [[ $target == broker && $BATCH == 1 ]] && bench broker fanout-batch fanout --rate 120 --seconds 10 --batch 1
    want fanout-max && bench "$target" fanout-max fanout-max --timeout 240
    want fanout-max && [[ $target == broker && $BATCH == 1 ]] && bench broker fanout-max-batch fanout-max --timeout 240 --batch 1
    want many-topics && bench "$target" many-topics many-topics --prefix mx --timeout 300
    want publish && bench "$target" publish-1 publish --publishers 1 --messages 200000 --window 1024 --seconds 10
    want publish && bench "$target" publish-10 publish --publishers 10 --messages 100000 --window 1024 --seconds 10
    want ack-latency && bench "$target" ack-latency ack-latency --rate 1000 --seconds 10
    if want compress && [[ $target != nats ]]; then
      bench "$target" fanout-json fanout --rate 120 --seconds 10 --payload json
      bench "$target" fanout-json-deflate fanout --rate 120 --seconds 10 --payload json --compress 1
    fi
    want overload && bench "$target" overload fanout --rate 2000 --seconds 5 --drain 10 --lenient 1 --window 10000
    want overload && [[ $target == broker && $BATCH == 1 ]] && bench broker overload-batch fanout --rate 2000 --seconds 5 --drain 10 --lenient 1 --window 10000 --batch 1
    stop_server
  fi
  if want idle; then
    start_server "$target"
    timeout=120; [[ $target == broker ]] && timeout=$IDLE_TIMEOUT
    bench "$target" idle idle --connections 10000 --prefix mx --timeout "$timeout"
    stop_server
  fi
  if want topics; then
    if [[ $target == broker && $MULTIPLEX != on ]]; then
      skip broker topics topics "not run: needs a multiplexed namespace (100,000 Kafka topics otherwise)"
    else
      start_server "$target"
      bench "$target" topics topics --connections 100 --per-connection 1000 --prefix mx --timeout 180
      stop_server
    fi
  fi
  if [[ $target == broker ]] && { want lastn || want replay; }; then
    start_server broker
    want replay && bench broker replay replay --count 5000 --clients 50 --timeout 90
    want lastn && bench broker lastn lastn --prefix mx --kafka-port "$KAFKA_PORT" --kafka-topic broker.mx --partitions 12 --timeout 240
    stop_server
  fi
done

cat >"$RESULTS/meta.json" <<META
{
  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
  "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown) ($(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo 'not a git checkout'))$(git diff --quiet HEAD -- src bench ':!bench/results' 2>/dev/null || echo ', with uncommitted changes')",
  "machine": "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr), .NET $(dotnet --version)",
  "nats": "$(command -v nats-server >/dev/null && nats-server --version | sed 's/nats-server: /nats-server /' || echo 'nats-server (not installed)')",
  "load_before": "$LOAD_BEFORE",
  "load_after": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "targets": "${TARGET_LIST[*]}",
  "scenarios": "${SCENARIOS[*]}",
  "seconds": $(( $(date +%s) - START )),
  "multiplex": "$MULTIPLEX",
  "compression": "$COMPRESSION",
  "broker_config": "$(grep -v '^#' "$BROKER_CONF" | sed 's/"/\\"/g' | paste -sd ';' - | sed 's/^$/(none: defaults)/')"
}
META
"${BENCH[@]}" report --dir "$RESULTS" >"$OUT"
{
  echo "## Server logs: warnings and errors"
  echo
  found=0
  for log in "$TMP"/broker-*.log "$TMP"/ceiling-*.log "$TMP"/nats-*.log; do
    [[ -f "$log" ]] || continue
    lines=$(grep -E ' (warn|fail|crit):|\[(ERR|WRN)\]|Unhandled|Exception' "$log" | grep -v 'IN MEMORY ONLY\|not configured with TLS' | cut -c1-300 | head -20 || true)
    [[ -z "$lines" ]] && continue
    found=1
    echo "### $(basename "$log")"; echo; echo '```'; echo "$lines"; echo '```'; echo
  done
  [[ $found == 1 ]] || { echo "none"; echo; }
} >>"$OUT"
echo "wrote $OUT ($(( $(date +%s) - START )) s)"
