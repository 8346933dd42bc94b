#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian 12 machine with the .NET 10 SDK,
# builds the solution and runs every test (unit, actor, integration). Exit code 0 only if all pass.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the tests use: kcat (a real Kafka producer that injects records), PostgreSQL
# (the durable-session tests run against SQLite and a real PostgreSQL server) and chromium (the
# dashboard test drives it headless through Playwright, whose own browser download is not used),
# nginx (the production-topology test runs deploy/nginx.conf in front of three broker processes)
# docker-compose (its `config` validates docker-compose.yml; no Docker engine is needed) and
# prometheus (its promtool checks deploy/prometheus/prometheus.yml).
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
dpkg -s postgresql >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# PostgreSQL for the session tests: start the first cluster Debian created, then a role and a
# database for the tests (idempotent). Tests read the connection string from BROKER_TEST_PG.
if [ -z "${BROKER_TEST_PG:-}" ]; then
  if [ -z "$(pg_lsclusters --no-header)" ]; then
    as_root pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -n1)" main >/dev/null
  fi
  read -r pg_version pg_cluster pg_port pg_status _ < <(pg_lsclusters --no-header | head -n1)
  [ "$pg_status" = online ] || as_root pg_ctlcluster "$pg_version" "$pg_cluster" start
  as_psql() { as_root su postgres -c "psql -p $pg_port -v ON_ERROR_STOP=1 -qAt -c \"$1\""; }
  [ "$(as_psql "SELECT 1 FROM pg_roles WHERE rolname = 'broker'")" = 1 ] \
    || as_psql "CREATE ROLE broker LOGIN PASSWORD 'broker'"
  [ "$(as_psql "SELECT 1 FROM pg_database WHERE datname = 'broker_test'")" = 1 ] \
    || as_psql "CREATE DATABASE broker_test OWNER broker"
  export BROKER_TEST_PG="Host=127.0.0.1;Port=$pg_port;Username=broker;Password=broker;Database=broker_test"
fi

command -v dotnet >/dev/null 2>&1 || { echo "The .NET 10 SDK is required (dotnet on PATH)." >&2; exit 1; }

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build Broker.sln -c Release -nologo -clp:ErrorsOnly

results=$(mktemp -d)
status=0
for project in tests/Broker.Tests tests/Broker.Client.Tests tests/Broker.IntegrationTests; do
  # --blame-hang-timeout turns a hung test into a failure instead of a stuck run.
  dotnet test "$project" -c Release --no-build --nologo \
    --blame-hang-timeout 5m --logger "console;verbosity=normal" 2>&1 | tee "$results/$(basename "$project").log" || status=1
done

# The TypeScript client: npm ci, tsc, unit tests, end-to-end tests against broker processes of the
# build above, and its browser example in headless Chromium.
src/client-ts/test.sh 2>&1 | tee "$results/client-ts.log" || status=1

# Totals from the runners' summaries ("Passed: N", "Failed: N"; the TypeScript client's closing
# line), as one closing line.
total() { { grep -hoE "^ +$1: +[0-9]+" "$results"/*.log || true; } | awk '{s+=$2} END {print s+0}'; }
ts_total() { { grep -hoE "^client-ts: [0-9]+ passed, [0-9]+ failed" "$results"/client-ts.log || true; } | awk -v f="$1" '{s += (f == "passed" ? $2 : $4)} END {print s+0}'; }
passed=$(( $(total Passed) + $(ts_total passed) ))
failed=$(( $(total Failed) + $(ts_total failed) ))
echo
# The failing tests by name, last, so that the end of the output says what failed.
if [ "$failed" -gt 0 ]; then
  echo "Failed tests:"
  { grep -hE "^ +Failed [A-Za-z_][A-Za-z0-9_.]+" "$results"/*.log || true; } | sed -E 's/^ +/  /'
  { grep -hE "^✖ " "$results"/client-ts.log || true; } | sed -E 's/^/  client-ts: /'
fi
echo "$passed passed, $failed failed"
exit $status
