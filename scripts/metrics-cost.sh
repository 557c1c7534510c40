#!/usr/bin/env bash
# Throughput cost of the metrics endpoint: max-rate null-sink runs with /metrics served and
# scraped every second, against the same runs without, interleaved. Prints the medians.
# Usage: scripts/metrics-cost.sh [ROUNDS] [DURATION]     (default 3 rounds of 10s each way)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DUR=${2:-10s}
SPATE=${CARGO_TARGET_DIR:-target}/release/spate
cargo build --release -q -p spate
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
run() { # off|on -> events/s
  local args=(run --sink null --rate max --duration "$DUR" --threads 1 --quiet --summary-json "$TMP/s.json")
  if [ "$1" = on ]; then
    $SPATE "${args[@]}" --metrics-listen "127.0.0.1:$port" >/dev/null 2>&1 &
    local pid=$! n=0
    while kill -0 $pid 2>/dev/null; do
      curl -s -o /dev/null "http://127.0.0.1:$port/metrics" && n=$((n + 1)) || true
      sleep 1
    done
    wait $pid
    echo "scrapes=$n" >&2
  else
    $SPATE "${args[@]}" >/dev/null 2>&1
  fi
  python3 -c "import json;print(json.load(open('$TMP/s.json'))['events_per_sec'])"
}
off=(); on=()
for _ in $(seq "$ROUNDS"); do
  off+=("$(run off)"); on+=("$(run on)")
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import sys, statistics as st
off = [float(x) for x in sys.argv[1].split()]; on = [float(x) for x in sys.argv[2].split()]
mo, mn = st.median(off), st.median(on)
print("metrics off events/s:", " ".join(f"{x:,.0f}" for x in off), f"median {mo:,.0f}")
print("metrics on  events/s:", " ".join(f"{x:,.0f}" for x in on), f"median {mn:,.0f}")
print(f"cost of metrics (scraped every 1 s): {(mo - mn) / mo * 100:+.2f} %  (target within 3 %)")
PY
