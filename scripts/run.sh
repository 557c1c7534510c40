#!/usr/bin/env bash
# Builds and runs spate with the given arguments, installing the build's Debian packages first
# if they are missing (scripts/deps.sh). E.g. scripts/run.sh run --sink kafka --duration 10s
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
exec cargo run --release -q -p spate -- "$@"
