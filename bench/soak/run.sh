#!/usr/bin/env bash
# Builds the chaos soak (Release, with the broker it runs) and runs it; arguments go to the soak.
#
#   bench/soak/run.sh                            # short mode, as CI runs it (SQLite, or BROKER_TEST_PG's PostgreSQL)
#   BROKER_SOAK_PG="Host=127.0.0.1;Port=5432;Username=broker;Password=broker;Database=broker_soak" \
#     bench/soak/run.sh --mode long --minutes 30 # every fault at random for 30 minutes, PostgreSQL stopped and started
#
# Writes bench/results/soak-latest.md (--out) and prints it; --json FILE for the figures as JSON.
# Exit code: 0 when every "must be 0" is 0, 1 when one is not, 2 when the run could not be made.
# Ctrl+C stops the run: the soak stops every process it started (and starts a PostgreSQL it stopped).
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build -c Release -nologo -clp:ErrorsOnly bench/soak/Broker.Soak.csproj >/dev/null
exec dotnet bench/soak/bin/Release/net10.0/Broker.Soak.dll "$@"
