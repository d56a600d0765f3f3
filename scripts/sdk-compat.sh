#!/usr/bin/env bash
# Proves a real Microsoft Kusto client (Python azure-kusto-data, pinned) talks to kusto-sim:
# builds and starts kusto-sim on a free port, runs kusto-sim/tests/sdk_compat.py, stops it.
# The venv lives in .local/venv (gitignored). Exits non-zero on any failure.
set -euo pipefail

SDK_VERSION=5.0.4
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.local/venv"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "azure-kusto-data==$SDK_VERSION"

cargo build --quiet -p kusto-sim --manifest-path "$root/Cargo.toml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# No storage is touched: only mgmt commands, queries and errors are exercised.
KUSTO_SIM_COMMAND_LOG= "$root/target/debug/kusto-sim" --listen "127.0.0.1:$port" --database sdkcompat &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.1
done

"$venv/bin/python" "$root/kusto-sim/tests/sdk_compat.py" "http://127.0.0.1:$port" sdkcompat
