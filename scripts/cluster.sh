#!/usr/bin/env bash
# Starts a standalone Broker.DevKafka (in-memory Kafka-protocol log) and N broker nodes on loopback
# that form one Akka.NET cluster. Stops exactly the processes it started on Ctrl+C / SIGTERM / exit.
#
#   scripts/cluster.sh [N=3]
#
# Node i (1..N): WebSocket ws://127.0.0.1:$((HTTP_BASE+i-1))/ws, admin API http://127.0.0.1:$((ADMIN_BASE+i-1)),
# Akka.Remote 127.0.0.1:$((REMOTE_BASE+i-1)).
# Environment: HTTP_BASE (8080), ADMIN_BASE (9080), REMOTE_BASE (4053), KAFKA_PORT (9092), KAFKA_ADMIN_PORT (10092),
# LOG_DIR (./data/cluster), CONFIG (Debug|Release, default Release).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-3}
http_base=${HTTP_BASE:-8080}
admin_base=${ADMIN_BASE:-9080}
remote_base=${REMOTE_BASE:-4053}
kafka_port=${KAFKA_PORT:-9092}
admin_port=${KAFKA_ADMIN_PORT:-10092}
log_dir=${LOG_DIR:-./data/cluster}
config=${CONFIG:-Release}
mkdir -p "$log_dir"

dotnet build -c "$config" -nologo -clp:ErrorsOnly src/Broker.Server >/dev/null
bin_server="src/Broker.Server/bin/$config/net10.0/Broker.Server.dll"
bin_kafka="src/Broker.Server/bin/$config/net10.0/Broker.DevKafka.dll"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "cluster stopped"
}
trap cleanup EXIT INT TERM

wait_port() { # host port what
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$3 did not open $1:$2" >&2; return 1
}

dotnet "$bin_kafka" --port "$kafka_port" --admin-port "$admin_port" >"$log_dir/devkafka.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$kafka_port" "Broker.DevKafka"

seeds=""
for i in $(seq 1 "$n"); do seeds+="${seeds:+,}akka.tcp://broker@127.0.0.1:$((remote_base + i - 1))"; done

for i in $(seq 1 "$n"); do
  BROKER_HTTP_PORT=$((http_base + i - 1)) \
  BROKER_ADMIN_PORT=$((admin_base + i - 1)) \
  BROKER_CLUSTER_PORT=$((remote_base + i - 1)) \
  BROKER_SEEDS="$seeds" \
  BROKER_KAFKA_BOOTSTRAP="127.0.0.1:$kafka_port" \
  BROKER_TOPIC_CREATION=devkafka \
  BROKER_DEVKAFKA_ADMIN="127.0.0.1:$admin_port" \
    dotnet "$bin_server" >"$log_dir/node$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$n"); do wait_port 127.0.0.1 $((http_base + i - 1)) "node $i"; done

echo "Kafka-protocol log (in memory): 127.0.0.1:$kafka_port"
for i in $(seq 1 "$n"); do echo "node $i: ws://127.0.0.1:$((http_base + i - 1))/ws  (log: $log_dir/node$i.log)"; done
echo "Ctrl+C stops the cluster."
wait -n "${pids[@]}" || true
echo "a process of the cluster exited; stopping the rest" >&2
