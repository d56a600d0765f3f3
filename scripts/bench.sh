#!/usr/bin/env bash
# Every benchmark, with the figures they print: handler start-up and idle memory, then the
# catalog streamed at scale, then protect over 10,000 tables, against Azurite (started here if
# none is running).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(scripts/azurite.sh ensure)
cleanup() { if [ "$started" = started ]; then scripts/azurite.sh stop; fi; }
trap cleanup EXIT
scripts/bench-startup.sh
cargo bench --quiet --bench catalog -- "$@"
cargo bench --quiet --bench protect_scale
