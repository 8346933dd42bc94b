#!/usr/bin/env bash
# A broker cluster on one machine: a standalone Broker.DevKafka (in-memory Kafka-protocol log) and
# N broker nodes on loopback that form one Akka.NET cluster. It prints every process's PID, keeps
# the other nodes running when one dies (kill -9 a node to see a fail-over), restarts a node on
# request, and on Ctrl+C / SIGTERM / exit stops the nodes first (SIGTERM: they close their clients
# with 1001 and leave the cluster) and the Kafka-protocol log last. It stops exactly the processes
# it started.
#
#   scripts/cluster.sh [N=3]          start the cluster (stays in the foreground)
#   scripts/cluster.sh restart <i>    from another terminal: stop node i if it runs, start it again
#   scripts/cluster.sh status         from another terminal: each process's PID and whether it runs
#
# Node i (1..N): WebSocket ws://127.0.0.1:$((HTTP_BASE+i-1))/ws, admin API http://127.0.0.1:$((ADMIN_BASE+i-1)),
# Akka.Remote 127.0.0.1:$((REMOTE_BASE+i-1)).
# Environment: HTTP_BASE (8080), ADMIN_BASE (9080), REMOTE_BASE (4053), KAFKA_PORT (9092), KAFKA_ADMIN_PORT (10092),
# LOG_DIR (./data/cluster: logs, and the PID files `restart` and `status` use), CONFIG (Debug|Release, default Release).
set -euo pipefail
cd "$(dirname "$0")/.."

http_base=${HTTP_BASE:-8080}
admin_base=${ADMIN_BASE:-9080}
remote_base=${REMOTE_BASE:-4053}
kafka_port=${KAFKA_PORT:-9092}
admin_port=${KAFKA_ADMIN_PORT:-10092}
log_dir=${LOG_DIR:-./data/cluster}
config=${CONFIG:-Release}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# ---- commands for a cluster that runs (in another terminal) --------------------------------------
case "${1:-}" in
  restart)
    i=${2:?usage: scripts/cluster.sh restart <node number>}
    main=$(cat "$log_dir/cluster.pid" 2>/dev/null || true)
    alive "$main" || { echo "no cluster.sh runs with LOG_DIR=$log_dir" >&2; exit 1; }
    echo "$i" >>"$log_dir/restart.requests"
    kill -USR1 "$main"
    echo "asked cluster.sh (pid $main) to restart node $i; it prints the new PID"
    exit 0
    ;;
  status)
    main=$(cat "$log_dir/cluster.pid" 2>/dev/null || true)
    alive "$main" || { echo "no cluster.sh runs with LOG_DIR=$log_dir" >&2; exit 1; }
    for f in "$log_dir"/devkafka.pid "$log_dir"/node*.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f"); name=$(basename "$f" .pid)
      if alive "$pid"; then echo "$name: pid $pid running"; else echo "$name: pid $pid not running"; fi
    done
    exit 0
    ;;
esac

n=${1:-3}
mkdir -p "$log_dir"
dotnet build -c "$config" -nologo -clp:ErrorsOnly src/Broker.Server >/dev/null
bin_server="src/Broker.Server/bin/$config/net10.0/Broker.Server.dll"
bin_kafka="src/Broker.Server/bin/$config/net10.0/Broker.DevKafka.dll"

kafka_pid=""
declare -A node_pids=()

# Stops one process: SIGTERM, then SIGKILL if it has not exited within 30 s.
stop_pid() {
  local pid=$1
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  trap - EXIT INT TERM USR1
  echo "stopping the nodes, then the Kafka-protocol log"
  # The nodes first, all at once (each closes its clients and leaves the cluster), while the log is
  # still there for what they flush.
  for i in "${!node_pids[@]}"; do alive "${node_pids[$i]}" && kill -TERM "${node_pids[$i]}" 2>/dev/null || true; done
  for i in $(printf '%s\n' "${!node_pids[@]}" | sort -n); do
    stop_pid "${node_pids[$i]}"
    echo "stopped node $i (pid ${node_pids[$i]})"
  done
  if [ -n "$kafka_pid" ]; then
    stop_pid "$kafka_pid"
    echo "stopped the Kafka-protocol log (pid $kafka_pid)"
  fi
  rm -f "$log_dir/cluster.pid" "$log_dir/restart.requests"
  echo "cluster stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_port() { # host port what pid
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    alive "$4" || { echo "$3 exited before it opened $1:$2" >&2; return 1; }
    sleep 0.1
  done
  echo "$3 did not open $1:$2" >&2; return 1
}

seeds=""
for i in $(seq 1 "$n"); do seeds+="${seeds:+,}akka.tcp://broker@127.0.0.1:$((remote_base + i - 1))"; done

start_node() { # i
  local i=$1
  BROKER_HTTP_PORT=$((http_base + i - 1)) \
  BROKER_ADMIN_PORT=$((admin_base + i - 1)) \
  BROKER_CLUSTER_PORT=$((remote_base + i - 1)) \
  BROKER_SEEDS="$seeds" \
  BROKER_KAFKA_BOOTSTRAP="127.0.0.1:$kafka_port" \
  BROKER_TOPIC_CREATION=devkafka \
  BROKER_DEVKAFKA_ADMIN="127.0.0.1:$admin_port" \
    dotnet "$bin_server" >>"$log_dir/node$i.log" 2>&1 &
  node_pids[$i]=$!
  echo "${node_pids[$i]}" >"$log_dir/node$i.pid"
  echo "node $i: pid ${node_pids[$i]}  ws://127.0.0.1:$((http_base + i - 1))/ws  admin http://127.0.0.1:$((admin_base + i - 1))  (log: $log_dir/node$i.log)"
}

restart_requested=0
trap 'restart_requested=1' USR1
echo $$ >"$log_dir/cluster.pid"
: >"$log_dir/restart.requests"

dotnet "$bin_kafka" --port "$kafka_port" --admin-port "$admin_port" >"$log_dir/devkafka.log" 2>&1 &
kafka_pid=$!
echo "$kafka_pid" >"$log_dir/devkafka.pid"
wait_port 127.0.0.1 "$kafka_port" "Broker.DevKafka" "$kafka_pid"
echo "Kafka-protocol log (in memory): 127.0.0.1:$kafka_port, pid $kafka_pid"

for i in $(seq 1 "$n"); do : >"$log_dir/node$i.log"; start_node "$i"; done
for i in $(seq 1 "$n"); do wait_port 127.0.0.1 $((http_base + i - 1)) "node $i" "${node_pids[$i]}"; done

echo "Ctrl+C stops the cluster. kill -9 <pid> of a node shows a fail-over; 'scripts/cluster.sh restart <i>' brings it back."

declare -A reported=()
while true; do
  # Returns when a child exits, or at once when a restart was asked for (the USR1 trap).
  wait -n || true
  if [ "$restart_requested" = 1 ]; then
    restart_requested=0
    requests=$(cat "$log_dir/restart.requests" 2>/dev/null || true)
    : >"$log_dir/restart.requests"
    for i in $requests; do
      if [ -z "${node_pids[$i]+x}" ]; then echo "no node $i (1..$n)" >&2; continue; fi
      if alive "${node_pids[$i]}"; then
        echo "stopping node $i (pid ${node_pids[$i]}) to restart it"
        stop_pid "${node_pids[$i]}"
      fi
      unset "reported[$i]"
      start_node "$i"
    done
  fi
  if ! alive "$kafka_pid"; then
    echo "the Kafka-protocol log (pid $kafka_pid) exited: the nodes cannot work without it; stopping them" >&2
    exit 1
  fi
  for i in "${!node_pids[@]}"; do
    pid=${node_pids[$i]}
    if ! alive "$pid" && [ -z "${reported[$i]+x}" ]; then
      reported[$i]=1
      echo "node $i (pid $pid) exited; the other nodes keep running. Restart it: scripts/cluster.sh restart $i" >&2
    fi
  done
done
