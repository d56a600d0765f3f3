#!/usr/bin/env bash
# Starts or stops Azurite (pinned in package.json) on loopback for tests and the demo.
#   scripts/azurite.sh start   -> prints nothing, writes .local/azurite-<blob port>.pid, waits
#                                 until it answers
#   scripts/azurite.sh stop    -> stops the instance this script started
#   scripts/azurite.sh ensure  -> installs Azurite if missing and starts it unless one already
#                                 answers; prints "started" when it started one (stop it later)
# Ports come from AZURITE_BLOB_PORT / AZURITE_QUEUE_PORT / AZURITE_TABLE_PORT (10000-10002).
# With AZURITE_DB set (a MySQL/MariaDB URI, e.g. mysql://user:pw@127.0.0.1:3306/azurite_blob),
# blob metadata lives in that database instead of LokiJS, whose lookups scan every blob of the
# account (BENCHMARKS.md, "protect at scale"); only the 10,000-table benchmark needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local
blob_port=${AZURITE_BLOB_PORT:-10000}
queue_port=${AZURITE_QUEUE_PORT:-10001}
table_port=${AZURITE_TABLE_PORT:-10002}
# One pid file, log and SQL-mode folder per port: the benchmarks run a second instance.
name=.local/azurite-$blob_port
pidfile=$name.pid

start() {
  if [ ! -f node_modules/azurite/dist/src/azurite.js ]; then
    echo "azurite is not installed; run 'npm ci' first" >&2
    exit 1
  fi
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "azurite already running (pid $(cat "$pidfile"))" >&2
    return 0
  fi
  # --skipApiVersionCheck: the official Rust storage crates default to an API version newer
  # than this Azurite knows (docs/functions-host.md §azurite). In-memory: every run starts empty.
  # Azurite refuses --inMemoryPersistence with SQL metadata: blob contents go to a folder.
  local persistence=(--inMemoryPersistence)
  if [ -n "${AZURITE_DB:-}" ]; then
    rm -rf "$name-sql" && mkdir -p "$name-sql"
    persistence=(--location "$name-sql")
  fi
  node node_modules/azurite/dist/src/azurite.js --silent --disableTelemetry --skipApiVersionCheck \
    --blobHost 127.0.0.1 --blobPort "$blob_port" \
    --queueHost 127.0.0.1 --queuePort "$queue_port" \
    --tableHost 127.0.0.1 --tablePort "$table_port" \
    "${persistence[@]}" > "$name.log" 2>&1 &
  pid=$!
  echo "$pid" > "$pidfile"
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      echo "azurite exited during start-up (is another instance using port $blob_port?):" >&2
      tail -n 3 "$name.log" >&2
      exit 1
    fi
    if curl -s -o /dev/null "http://127.0.0.1:$blob_port/devstoreaccount1?comp=list" &&
       curl -s -o /dev/null "http://127.0.0.1:$queue_port/devstoreaccount1?comp=list"; then
      return 0
    fi
    sleep 0.1
  done
  echo "azurite did not answer on 127.0.0.1:$blob_port within 30 s; see $name.log" >&2
  exit 1
}

answering() {
  curl -s -o /dev/null "http://127.0.0.1:$blob_port/devstoreaccount1?comp=list"
}

ensure() {
  [ -d node_modules/azurite ] || npm ci --no-audit --no-fund >&2
  if ! answering; then
    start
    echo started
  fi
}

stop() {
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  ensure) ensure ;;
  *) echo "usage: $0 start|stop|ensure" >&2; exit 2 ;;
esac
