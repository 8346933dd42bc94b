#!/usr/bin/env bash
# Builds Release, starts one broker on 127.0.0.1:18080 (embedded log on 19092), runs the bench
# scenarios against it; then stops it and starts a second broker on 18081 (embedded log on 19093)
# whose namespace "mp.>" has 4 partitions, and runs publish, fanout and replay with 64 keys on it.
# Writes bench/results/latest.md. Stops exactly the brokers it started.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${HTTP_PORT:-18080}
KAFKA_PORT=${KAFKA_PORT:-19092}
MP_HTTP_PORT=${MP_HTTP_PORT:-18081}     # the second broker (multi-partition namespace)
MP_KAFKA_PORT=${MP_KAFKA_PORT:-19093}
OUT=bench/results/latest.md
TMP=bench/results/tmp            # git-ignored: server logs, config, raw outputs
mkdir -p "$TMP"

echo "building (Release)..."
dotnet build -c Release src/Broker.Server/Broker.Server.csproj -v q -nologo >/dev/null
dotnet build -c Release bench/Broker.Bench/Broker.Bench.csproj -v q -nologo >/dev/null

for port in "$HTTP_PORT" "$MP_HTTP_PORT"; do
  if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    echo "something already answers on port $port; set HTTP_PORT / MP_HTTP_PORT" >&2; exit 1
  fi
done

# The broker this script runs now ("" when none). The brokers run one after the other.
BROKER_PID=""
stop_broker() {
  if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID"
    for _ in $(seq 1 30); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$BROKER_PID" 2>/dev/null && kill -KILL "$BROKER_PID"
  fi
  [[ -n "$BROKER_PID" ]] && { wait "$BROKER_PID" 2>/dev/null || true; }   # reap it (ports free again)
  BROKER_PID=""
  true
}
trap stop_broker EXIT

# start_broker HTTP_PORT KAFKA_PORT LOG [CONFIG_FILE]: starts a broker (admin API on a free port, so
# that it does not take 9080) and waits until it is healthy.
start_broker() {
  local http=$1 kafka=$2 log=$3 conf=${4:-}
  BROKER_CONFIG=$conf BROKER_HTTP_PORT=$http BROKER_EMBEDDED_KAFKA_PORT=$kafka BROKER_ADMIN_PORT=0 \
    dotnet src/Broker.Server/bin/Release/net10.0/Broker.Server.dll >"$log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 60); do
    curl -fs "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && break
    kill -0 "$BROKER_PID" 2>/dev/null || { echo "broker exited; see $log" >&2; exit 1; }
    sleep 0.5
  done
  curl -fs "http://127.0.0.1:$http/healthz" >/dev/null || { echo "broker not healthy after 30s; see $log" >&2; exit 1; }
}

BENCH="dotnet bench/Broker.Bench/bin/Release/net10.0/Broker.Bench.dll"
PORT=$HTTP_PORT
run() {
  echo "running: $*"
  # A scenario with problems exits 1; keep going and record it.
  $BENCH "$@" --port "$PORT" >>"$OUT" || echo "  (problems reported)"
}

start_broker "$HTTP_PORT" "$KAFKA_PORT" "$TMP/server.log"
{
  echo "# Broker bench results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $(git rev-parse --short HEAD) ($(git rev-parse --abbrev-ref HEAD))"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr), .NET $(dotnet --version)"
  echo "- broker: one node, Release, embedded in-memory Kafka-protocol log; default hocon/broker.conf"
  echo "  (single-partition topics), then a fresh broker with a 4-partition namespace (last section)"
  echo "- client and broker share the same cores: numbers are conservative"
  echo
  echo "## 1 partition, no keys"
  echo
} >"$OUT"
run publish --publishers 4 --messages 5000 --size 100 --window 32
run publish --publishers 1 --messages 2000 --size 100 --window 1
run fanout --subscribers 1000 --rate 50 --seconds 10 --size 100
run fanout --subscribers 100 --rate 500 --seconds 10 --size 100
run replay --count 2000 --clients 20 --size 100 --timeout 60
run replay --count 5000 --clients 50 --size 100 --timeout 60
run replay --count 5000 --clients 50 --size 100 --timeout 60 --warm 1
stop_broker

# Multi-partition topics: broker topics mp.… map to 4-partition topics of a fresh embedded log.
MP_CONF="$PWD/$TMP/mp.conf"
cat >"$MP_CONF" <<'CONF'
broker.namespaces = [ { pattern = "mp.>", partitions = 4 } ]
CONF
start_broker "$MP_HTTP_PORT" "$MP_KAFKA_PORT" "$TMP/server-mp.log" "$MP_CONF"
{
  echo "## 4 partitions, 64 keys"
  echo
  echo "A fresh broker with \`broker.namespaces = [ { pattern = \"mp.>\", partitions = 4 } ]\` (BROKER_CONFIG):"
  echo "topics \`mp.…\` have 4 partitions; publish i carries the key \`k{i % 64}\`, so order is checked per key"
  echo "(missing and duplicated messages over all of them)."
  echo
} >>"$OUT"
PORT=$MP_HTTP_PORT
run publish --publishers 4 --messages 5000 --size 100 --window 32 --prefix mp --keys 64
run fanout --subscribers 100 --rate 500 --seconds 10 --size 100 --prefix mp --keys 64
run replay --count 5000 --clients 50 --size 100 --timeout 60 --prefix mp --keys 64
stop_broker

{
  echo "## broker logs: warnings and errors"
  echo
  for log in "$TMP/server.log" "$TMP/server-mp.log"; do
    echo "### $(basename "$log")"
    echo
    echo '```'
    grep -E ' (warn|fail|crit):' "$log" | grep -v 'IN MEMORY ONLY' | cut -c1-300 | head -40 || true
    echo '```'
    echo
  done
} >>"$OUT"
echo "wrote $OUT"
