#!/usr/bin/env bash
# Tests of the TypeScript client: installs its npm packages (npm ci, from package-lock.json),
# compiles it, and runs the unit tests (fake server; the committed bundle is what the sources
# build), the end-to-end tests against real broker processes (kill -9 and restart, drain, slow
# consumer, sessions) and the README's browser example in headless Chromium.
# Expects the .NET solution built in Release (dotnet build Broker.sln -c Release) and Node >= 20;
# installs Debian's chromium if it is missing. Exit code 0 only if every test passed.
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null 2>&1 || { echo "Node.js >= 20 is required (node on PATH)." >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "Node.js >= 20 is required (found $(node --version))." >&2; exit 1; }
if [ ! -x /usr/bin/chromium ]; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  echo "Installing: chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npx tsc -p tsconfig.json

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# One run, one file at a time: each end-to-end file starts its own log and broker processes.
# Every test has its own timeout; the whole run is bounded too (SIGTERM stops the brokers it started).
timeout 900 node --test --test-reporter=spec --test-concurrency=1 test/unit/ test/e2e/ test/browser/ 2>&1 | tee "$log" || status=1
count() { { grep -oE "^ℹ $1 [0-9]+" "$log" || true; } | awk '{s+=$3} END {print s+0}'; }
echo "client-ts: $(count pass) passed, $(count fail) failed"
exit $status
