#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for the same time and prints, per target, the inputs run,
# the time, and the crashes (docs/fuzzing.md).
#   scripts/fuzz.sh [seconds-per-target] [target...]   (default 60 s, every target)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); its sanitizer-coverage flags are nightly-only,
# so RUSTC_BOOTSTRAP=1 lets the stable toolchain take them. Never part of `make test` or CI.
# A crash stops that target; its input is kept in fuzz/artifacts/<target>/ and named below.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
if ! cargo fuzz --version > /dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 1
fi
export RUSTC_BOOTSTRAP=1
# No sanitizer: adx-backup forbids unsafe code, and what the targets hunt (panics, overflows
# under debug assertions, failed round trips, runaway memory or time) libFuzzer sees without
# one, at about twice the speed.
sanitizer=(--sanitizer none)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
mkdir -p ../.local/fuzz
summary=()
failed=0
for target in "${targets[@]}"; do
  log=../.local/fuzz/$target.log
  # The committed seeds stay as they are; what the run finds goes to a scratch corpus.
  work=../.local/fuzz/corpus/$target
  mkdir -p "$work"
  status=0
  cargo fuzz run "${sanitizer[@]}" "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 > "$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  crashes=0
  if [ "$status" -ne 0 ]; then
    crashes=1
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  fi
  # libFuzzer states its time only when it ran to the end; a crash stops it early.
  rate=-
  if [ -n "$took" ]; then rate=$(( ${runs:-0} / (took > 0 ? took : 1) )); fi
  line=$(printf '%-18s runs %10s  time %4ss  %7s exec/s  crashes %s' "$target" "${runs:-?}" \
    "${took:--}" "$rate" "$crashes")
  if [ "$crashes" -ne 0 ]; then line="$line  (${artifact:-see $log})"; fi
  echo "$line"
  summary+=("$line")
done
echo
printf '%s\n' "${summary[@]}"
exit "$failed"
