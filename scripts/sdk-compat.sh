#!/usr/bin/env bash
# Proves a real Microsoft Kusto client (Python azure-kusto-data, pinned) talks to kusto-sim:
# builds and starts kusto-sim on a port of its choosing, runs kusto-sim/tests/sdk_compat.py, stops it.
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
# kusto-sim binds port 0 itself and prints the address it got, so no other process can take
# the port between choosing it and listening on it. No storage is touched: only mgmt
# commands, queries and errors are exercised.
announce=$(mktemp)
KUSTO_SIM_COMMAND_LOG= "$root/target/debug/kusto-sim" --listen 127.0.0.1:0 --database sdkcompat >"$announce" &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; rm -f "$announce"' EXIT

url=
for _ in $(seq 1 300); do
  url=$(sed -n 's/^kusto-sim listening on //p' "$announce")
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "kusto-sim did not report its address within 30 s" >&2
  exit 1
fi

"$venv/bin/python" "$root/kusto-sim/tests/sdk_compat.py" "$url" sdkcompat
