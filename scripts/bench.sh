#!/usr/bin/env bash
# Every benchmark, with the figures they print: handler start-up and idle memory, then the
# catalog streamed at scale against Azurite (started here if none is running).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules/azurite ] || npm ci --no-audit --no-fund
started=""
cleanup() { if [ -n "$started" ]; then scripts/azurite.sh stop; fi; }
trap cleanup EXIT
if ! curl -s -o /dev/null "http://127.0.0.1:${AZURITE_BLOB_PORT:-10000}/devstoreaccount1?comp=list"; then
  scripts/azurite.sh start
  started=1
fi
scripts/bench-startup.sh
cargo bench --quiet --bench catalog -- "$@"
