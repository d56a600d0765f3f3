#!/usr/bin/env bash
# Every benchmark, with the figures they print: handler start-up and idle memory, then the
# catalog streamed at scale against Azurite (started here if none is running), then protect
# over 10,000 tables, then one harvest catching up 14 days of export runs (three tables, 36,000
# files), then backfill planning for a billion rows (no cluster needed), then restore planning
# of catalogs of 100,000, 1,000,000 and 10,000,000 artifacts (on a second Azurite whose blob
# metadata is in a private MariaDB when mariadb-server is installed: scripts/mariadb.sh), a
# restore of 12,000 files end to end (the e2e test too slow for `make test`, with its
# timings), restore's cost per file through kusto-sim, and --from-listing planning over
# 100,000 blobs beside a bare listing: uploaded into the MariaDB-backed Azurite, and preloaded
# into an Azurite of its own from a data file (scripts/bench-listing.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(scripts/azurite.sh ensure)
cleanup() { if [ "$started" = started ]; then scripts/azurite.sh stop; fi; }
trap cleanup EXIT
scripts/bench-startup.sh
cargo bench --quiet --bench catalog -- "$@"
cargo bench --quiet --bench protect_scale
cargo bench --quiet --bench harvest_backlog
cargo bench --quiet --bench backfill_plan
plan_sizes=("100 1000" "1000 1000" "10000 1000")
if db=$(scripts/mariadb.sh start); then
  (
    export AZURITE_DB=$db AZURITE_BLOB_PORT=10200 AZURITE_QUEUE_PORT=10201 AZURITE_TABLE_PORT=10202
    source scripts/azurite-env.sh
    trap 'scripts/azurite.sh stop; scripts/mariadb.sh stop' EXIT
    scripts/azurite.sh start
    for size in "${plan_sizes[@]}"; do cargo bench --quiet --bench restore_plan -- $size; done
    # Writes here are indexed lookups, as in Blob Storage, so planning from a listing is
    # compared with a bare listing on equal terms (uploading 100,000 blobs takes ~8 minutes).
    cargo bench --quiet --bench listing_plan -- 100000 100
  )
else
  echo "restore planning: without MariaDB, on the in-memory Azurite, whose lookups scan the account (the 10,000,000 figure then measures the emulator)"
  for size in "${plan_sizes[@]}"; do cargo bench --quiet --bench restore_plan -- $size; done
fi
cargo test --quiet --test e2e restore_roundtrip::twelve_thousand -- --ignored --nocapture 2>&1 |
  grep -E '^(12,000 files|test result)'
cargo bench --quiet --bench restore_cost
scripts/bench-listing.sh
