#!/usr/bin/env bash
# --from-listing planning at scale (benches/listing_plan.rs) on a preloaded Azurite: uploading
# 100,000 blobs one by one to LokiJS Azurite takes hours, so this writes Azurite's data folder
# directly (scripts/azurite-preload.mjs), starts Azurite's blob service on it with its own
# port (persisted, not in memory: the folder is what it loads), checks through Azurite that it
# serves exactly the bench's blobs, runs the bench against that container, and stops Azurite.
#   scripts/bench-listing.sh [blobs] [days]   (default 100000 100)
# The folder, rewritten on every run, is .local/azurite-listing; Azurite's log sits beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
blobs=${1:-100000}
days=${2:-100}
container=bench-listing-preloaded
dir=.local/azurite-listing
# Not 10000-10002: test.sh and bench.sh run their own Azurite there.
export AZURITE_BLOB_PORT=${LISTING_AZURITE_PORT:-10100}
export AZURITE_QUEUE_PORT=$((AZURITE_BLOB_PORT + 1))
source scripts/azurite-env.sh

rm -rf "$dir"
node scripts/azurite-preload.mjs write "$dir" "$container" "$blobs" "$days"

started=$(date +%s%N)
node node_modules/azurite/dist/src/blob/main.js --silent --disableTelemetry --skipApiVersionCheck \
  --blobHost 127.0.0.1 --blobPort "$AZURITE_BLOB_PORT" --location "$dir" > "$dir.log" 2>&1 &
pid=$!
# SIGTERM lets Azurite close (and save) cleanly; wait so the next run finds the port free.
trap 'kill "$pid" 2>/dev/null && wait "$pid" || true' EXIT
# Azurite loads both databases before it listens: answering means loaded.
until curl -s -o /dev/null "$AZURITE_BLOB_ENDPOINT?comp=list"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "azurite exited during start-up (is port $AZURITE_BLOB_PORT taken?):" >&2
    tail -n 3 "$dir.log" >&2
    exit 1
  fi
  sleep 0.1
done
ms=$(( ($(date +%s%N) - started) / 1000000 ))
echo "preload: Azurite loaded the folder and answered $((ms / 1000)).$((ms % 1000 / 100)) s after its start"

node scripts/azurite-preload.mjs check "$container" "$blobs" "$days"
LISTING_PRELOADED=$container cargo bench --quiet --bench listing_plan -- "$blobs" "$days"
