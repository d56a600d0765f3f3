#!/usr/bin/env bash
# Every test of the project, as CI runs it: formatting, lints, the app package (`make package`,
# its glibc floor), the Rust tests (unit, kusto-sim, and the end-to-end binary against
# Azurite + kusto-sim, the packaged binary included), Microsoft's parser over every Kusto
# command the tests sent, and a real Kusto SDK against kusto-sim.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/azurite-env.sh

started=$(scripts/azurite.sh ensure)
cleanup() { if [ "$started" = started ]; then scripts/azurite.sh stop; fi; }
trap cleanup EXIT

cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

# The Functions app zip, as `make package` builds it: the release binary against the glibc floor.
# The glibc check reads the binary's version needs; the e2e test `package` runs the zip's binary.
package=$(scripts/package.sh | tail -1)
node scripts/glibc-version.mjs target/package/app/adx-backup "$(cat target/package/glibc-floor)"
export ADXBACKUP_PACKAGE="$PWD/$package"

# Every Kusto command text the tests produce lands here, then goes through Microsoft's parser.
rm -rf .local/kql && mkdir -p .local/kql
export KUSTO_SIM_COMMAND_LOG_DIR="$PWD/.local/kql"
export ADXBACKUP_KQL_SAMPLES="$PWD/.local/kql/builder-samples.jsonl"
# The chaos test's closing line (runs and faults injected), printed at the end.
export ADXBACKUP_CHAOS_SUMMARY="$PWD/.local/chaos.txt"
rm -f "$ADXBACKUP_CHAOS_SUMMARY"
cargo test --workspace 2>&1 | tee .local/cargo-test.log
# The node scripts' own tests, and the check that every link and citation stays inside the repo.
node --test scripts/
node scripts/validate-kql.mjs .local/kql/*.jsonl

scripts/sdk-compat.sh

cat "$ADXBACKUP_CHAOS_SUMMARY"
# One closing line for the whole run, summed over every cargo test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' .local/cargo-test.log
