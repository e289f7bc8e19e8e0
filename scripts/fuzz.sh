#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each: FUZZ_SECONDS (default 60) per
# target, all targets unless some are named. Findings land in fuzz/artifacts/TARGET/; replay
# one with `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a TARGET fuzz/artifacts/TARGET/FILE`,
# then add it to fuzz/seeds/TARGET/ so that tests/no_panic.rs keeps checking it.
#
# cargo-fuzz needs a nightly compiler; RUSTC_BOOTSTRAP=1 lets the stable one act as one.
# Sanitizer none: the code under test forbids unsafe; -a keeps debug assertions and overflow
# checks on in the optimised build, so an arithmetic overflow is a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
targets=${*:-decimal csv_import json_document}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  echo "=== fuzzing $t for ${secs}s"
  cargo fuzz run -s none -a "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
done
