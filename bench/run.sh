#!/usr/bin/env bash
# Builds Release, starts one broker on 127.0.0.1:18080 (embedded log on 19092), runs the bench
# scenarios against it and writes bench/results/latest.md. Stops exactly the broker it started.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${HTTP_PORT:-18080}
KAFKA_PORT=${KAFKA_PORT:-19092}
OUT=bench/results/latest.md
TMP=bench/results/tmp            # git-ignored: server log, raw outputs
mkdir -p "$TMP"

echo "building (Release)..."
dotnet build -c Release src/Broker.Server/Broker.Server.csproj -v q -nologo >/dev/null
dotnet build -c Release bench/Broker.Bench/Broker.Bench.csproj -v q -nologo >/dev/null

if curl -fs "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1; then
  echo "something already answers on port $HTTP_PORT; set HTTP_PORT" >&2; exit 1
fi

BROKER_HTTP_PORT=$HTTP_PORT BROKER_EMBEDDED_KAFKA_PORT=$KAFKA_PORT \
  dotnet src/Broker.Server/bin/Release/net10.0/Broker.Server.dll >"$TMP/server.log" 2>&1 &
BROKER_PID=$!
stop_broker() {
  if kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID"
    for _ in $(seq 1 30); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$BROKER_PID" 2>/dev/null && kill -KILL "$BROKER_PID"
  fi
  true
}
trap stop_broker EXIT

for _ in $(seq 1 60); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$BROKER_PID" 2>/dev/null || { echo "broker exited; see $TMP/server.log" >&2; exit 1; }
  sleep 0.5
done
curl -fs "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || { echo "broker not healthy after 30s" >&2; exit 1; }

BENCH="dotnet bench/Broker.Bench/bin/Release/net10.0/Broker.Bench.dll"
{
  echo "# Broker bench results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $(git rev-parse --short HEAD) ($(git rev-parse --abbrev-ref HEAD))"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr), .NET $(dotnet --version)"
  echo "- broker: one node, Release, default hocon/broker.conf, embedded in-memory Kafka-protocol log"
  echo "- client and broker share the same cores: numbers are conservative"
  echo
} >"$OUT"

run() {
  echo "running: $*"
  # A scenario with problems exits 1; keep going and record it.
  $BENCH "$@" --port "$HTTP_PORT" >>"$OUT" || echo "  (problems reported)"
}
run publish --publishers 4 --messages 5000 --size 100 --window 32
run publish --publishers 1 --messages 2000 --size 100 --window 1
run fanout --subscribers 1000 --rate 50 --seconds 10 --size 100
run fanout --subscribers 100 --rate 500 --seconds 10 --size 100
run replay --count 2000 --clients 20 --size 100 --timeout 60
run replay --count 5000 --clients 50 --size 100 --timeout 60
run replay --count 5000 --clients 50 --size 100 --timeout 60 --warm 1

{
  echo "### broker log: warnings and errors"
  echo
  echo '```'
  grep -E ' (warn|fail|crit):' "$TMP/server.log" | grep -v 'IN MEMORY ONLY' | cut -c1-300 | head -40 || true
  echo '```'
} >>"$OUT"
echo "wrote $OUT"
