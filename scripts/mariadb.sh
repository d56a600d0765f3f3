#!/usr/bin/env bash
# A private MariaDB for Azurite's blob metadata, for the benchmarks at scale only: Azurite's
# default store (LokiJS) scans every blob of the account on each lookup, so a container of
# 10,000+ blobs makes the emulator, not the code measured, the figure (BENCHMARKS.md).
#   scripts/mariadb.sh start   -> starts mariadbd on 127.0.0.1:$MARIADB_PORT (3307), data in
#                                 .local/mariadb (rewritten), prints the AZURITE_DB URI
#   scripts/mariadb.sh stop    -> stops it
# Needs Debian's mariadb-server (the server binaries only; nothing is configured system-wide).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$PWD/.local/mariadb
port=${MARIADB_PORT:-3307}
user=$(id -un)

start() {
  if ! command -v mariadbd > /dev/null || ! command -v mariadb-install-db > /dev/null; then
    echo "mariadb-server is not installed (Debian: apt-get install mariadb-server)" >&2
    exit 1
  fi
  stop
  rm -rf "$dir" && mkdir -p "$dir"
  mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" \
    --auth-root-authentication-method=normal > "$dir/install.log" 2>&1
  mariadbd --no-defaults --datadir="$dir/data" --user="$user" --bind-address=127.0.0.1 \
    --port="$port" --socket="$dir/sock" --pid-file="$dir/pid" > "$dir/server.log" 2>&1 &
  for _ in $(seq 1 300); do
    if mariadb --no-defaults --socket="$dir/sock" -uroot -e 'SELECT 1' > /dev/null 2>&1; then
      mariadb --no-defaults --socket="$dir/sock" -uroot -e "CREATE DATABASE azurite_blob;
        CREATE USER 'azurite'@'127.0.0.1' IDENTIFIED BY 'azurite';
        GRANT ALL ON azurite_blob.* TO 'azurite'@'127.0.0.1';"
      echo "mysql://azurite:azurite@127.0.0.1:$port/azurite_blob"
      return 0
    fi
    sleep 0.1
  done
  echo "mariadbd did not answer within 30 s; see $dir/server.log" >&2
  exit 1
}

stop() {
  if [ -f "$dir/pid" ]; then
    local pid
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$dir/pid"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
