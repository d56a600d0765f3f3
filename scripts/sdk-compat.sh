#!/usr/bin/env bash
# Proves Microsoft's Python Kusto clients (azure-kusto-data and azure-kusto-ingest, pinned)
# talk to kusto-sim: builds and starts kusto-sim on a port it picks itself, runs
# kusto-sim/tests/sdk_compat.py (mgmt, queries, errors) and sdk_compat_ingest.py (queued
# ingestion through Azurite's queues), stops it. The venv lives in .local/venv (gitignored).
# Needs Azurite: scripts/test.sh exports AZURITE_BLOB_ENDPOINT, AZURITE_QUEUE_ENDPOINT and
# AZURITE_CONNECTION_STRING before calling it. Exits non-zero on any failure.
set -euo pipefail

# azure-kusto-ingest is released in lockstep with azure-kusto-data and pins it exactly.
SDK_VERSION=5.0.4
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.local/venv"
: "${AZURITE_BLOB_ENDPOINT:?set AZURITE_BLOB_ENDPOINT (scripts/test.sh does)}"
: "${AZURITE_QUEUE_ENDPOINT:?set AZURITE_QUEUE_ENDPOINT (scripts/test.sh does)}"
: "${AZURITE_CONNECTION_STRING:?set AZURITE_CONNECTION_STRING (scripts/test.sh does)}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "azure-kusto-data==$SDK_VERSION" "azure-kusto-ingest==$SDK_VERSION"

cargo build --quiet -p kusto-sim --manifest-path "$root/Cargo.toml"
# Port 0: kusto-sim binds a free port itself and prints its URL as its first line, so no
# other process can take the port between a pick and the bind.
out="$root/.local/sdk-compat-sim.out"
commands="$root/.local/sdk-compat-commands.jsonl"
mkdir -p "$root/.local"
: > "$out"
rm -f "$commands"
KUSTO_SIM_COMMAND_LOG="$commands" "$root/target/debug/kusto-sim" --listen 127.0.0.1:0 --database sdkcompat \
  --storage-endpoint "$AZURITE_BLOB_ENDPOINT" --queue-endpoint "$AZURITE_QUEUE_ENDPOINT" > "$out" &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true' EXIT

url=
for _ in $(seq 1 100); do
  url=$(sed -n 's/^kusto-sim listening on //p' "$out")
  [ -n "$url" ] && break
  kill -0 "$sim_pid" 2>/dev/null || { echo "kusto-sim exited during start-up" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "kusto-sim did not report its address" >&2; exit 1; }

"$venv/bin/python" "$root/kusto-sim/tests/sdk_compat.py" "$url" sdkcompat
"$venv/bin/python" "$root/kusto-sim/tests/sdk_compat_ingest.py" "$url" sdkcompat
# What the SDKs sent must be Kusto as Microsoft's parser reads it, like every test's commands.
node "$root/scripts/validate-kql.mjs" "$commands"
