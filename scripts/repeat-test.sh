#!/usr/bin/env bash
# Runs one test binary (or one test of it) N times and keeps the whole output of every failed
# run, to find the cause of a test that fails now and then.
# Usage: scripts/repeat-test.sh PACKAGE TEST_FILE [N] [FILTER]
#   e.g. scripts/repeat-test.sh spate-engine kafka 30
#        scripts/repeat-test.sh spate-engine kafka 50 spill_policy
# Failed runs' output: target/repeat-test/FILE-RUN.txt; the last line sums up.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=$1 FILE=$2 N=${3:-20} FILTER=${4:-}
OUT=${CARGO_TARGET_DIR:-target}/repeat-test
mkdir -p "$OUT"
cargo test --release -q --locked -p "$PKG" --test "$FILE" --no-run
failed=0
for i in $(seq "$N"); do
  log="$OUT/$FILE-$i.txt"
  if timeout 900 cargo test --release -q --locked -p "$PKG" --test "$FILE" -- --test-threads=2 $FILTER >"$log" 2>&1; then
    rm -f "$log"
  else
    failed=$((failed + 1))
    echo "run $i failed: $log"
    grep -A8 "panicked" "$log" | head -20
  fi
done
echo "$FILE: $failed of $N runs failed"
[ "$failed" -eq 0 ]
