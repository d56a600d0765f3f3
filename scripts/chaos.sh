#!/usr/bin/env bash
# The chaos runner (docs/chaos.md): RUNS seeds from SEED, each the whole pipeline (protect,
# backfill, continuous export, harvest, restore into a second cluster) through the handler
# process with random faults, compared row for row at the end. A failing seed prints its
# event trace and how to rerun it.
#   scripts/chaos.sh [seed] [runs]   (default 1 50)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/azurite-env.sh
started=$(scripts/azurite.sh ensure)
cleanup() { if [ "$started" = started ]; then scripts/azurite.sh stop; fi; }
trap cleanup EXIT
CHAOS_SEED=${1:-1} CHAOS_RUNS=${2:-50} \
  cargo test --test e2e chaos::many_runs -- --ignored --nocapture 2>&1 |
  grep -E '^(chaos|test result|thread|rerun|event trace|  *[0-9.]+s )' 
