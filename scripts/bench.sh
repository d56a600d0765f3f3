#!/usr/bin/env bash
# Every benchmark, with the figures they print: handler start-up and idle memory, then the
# catalog streamed at scale against Azurite (started here if none is running), then protect
# over 10,000 tables, then backfill planning for a billion rows (no cluster needed), then restore
# planning of the catalog, restore's cost per file through kusto-sim, and --from-listing
# planning beside a bare listing.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(scripts/azurite.sh ensure)
cleanup() { if [ "$started" = started ]; then scripts/azurite.sh stop; fi; }
trap cleanup EXIT
scripts/bench-startup.sh
cargo bench --quiet --bench catalog -- "$@"
cargo bench --quiet --bench protect_scale
cargo bench --quiet --bench backfill_plan
cargo bench --quiet --bench restore_plan -- "$@"
cargo bench --quiet --bench restore_cost
cargo bench --quiet --bench listing_plan
