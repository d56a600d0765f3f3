#!/usr/bin/env bash
# Every benchmark, with the figures they print: handler start-up and idle memory, then the
# catalog streamed at scale against Azurite (started here if none is running), then protect
# over 10,000 tables, then one harvest catching up 14 days of export runs (three tables, 36,000
# files), then backfill planning for a billion rows (no cluster needed), then restore planning
# of the catalog, a restore of 12,000 files end to end (the e2e test too slow for `make test`,
# with its timings), restore's cost per file through kusto-sim, and --from-listing planning
# beside a bare listing.
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
cargo bench --quiet --bench restore_plan -- "$@"
cargo test --quiet --test e2e restore_roundtrip::twelve_thousand -- --ignored --nocapture 2>&1 |
  grep -E '^(12,000 files|test result)'
cargo bench --quiet --bench restore_cost
cargo bench --quiet --bench listing_plan
