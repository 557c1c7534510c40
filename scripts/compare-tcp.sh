#!/usr/bin/env bash
# Side-by-side TCP throughput, one receiver, same message size: spate's TCP sink vs syslog-ng's
# loggen (Debian package syslog-ng-core). Both are measured at the receiving end
# (`spate-bench tcp-count`: lines and bytes from first byte to last).
# Usage: scripts/compare-tcp.sh [COUNT] [SIZE]      (default 2000000 messages of 200 bytes)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-2000000}
SIZE=${2:-200}
SPATE=${CARGO_TARGET_DIR:-target}/release/spate
BENCH=${CARGO_TARGET_DIR:-target}/release/spate-bench
command -v loggen >/dev/null || { echo "loggen missing: apt-get install -y syslog-ng-core" >&2; exit 2; }
cargo build --release -q -p spate -p spate-bench
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

measure() { # name command... (the command gets PORT in its environment)
  local name=$1; shift
  local port; port=$(free_port)
  $BENCH tcp-count --listen "127.0.0.1:$port" --expect "$COUNT" --idle 3s >"$TMP/$name.json" 2>/dev/null &
  local rx=$!
  sleep 0.3
  PORT=$port "$@" >"$TMP/$name.out" 2>&1 || { cat "$TMP/$name.out"; exit 1; }
  wait $rx
}

# loggen: BSD-syslog lines over TCP (--stream), as fast as it goes on one connection.
measure loggen sh -c 'loggen --inet --stream --rate 1000000000 --size '"$SIZE"' --number '"$COUNT"' 127.0.0.1 $PORT'
# loggen's --number is per connection: two connections send COUNT between them.
measure loggen2 sh -c 'loggen --inet --stream --rate 1000000000 --size '"$SIZE"' --number '"$((COUNT / 2))"' --active-connections 2 127.0.0.1 $PORT'
# spate: RFC 3164 lines of its syslog source padded to about the same size (some are longer), newline framing, default threads.
measure spate sh -c "$SPATE run --sink tcp://127.0.0.1:\$PORT --source syslog --format rfc3164 --size $SIZE --rate max --count $COUNT --quiet"
measure spate1 sh -c "$SPATE run --sink tcp://127.0.0.1:\$PORT --source syslog --format rfc3164 --size $SIZE --rate max --count $COUNT --threads 1 --quiet"

python3 - "$TMP" "$COUNT" <<'PY'
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
rows = [("loggen", "loggen"), ("loggen2", "loggen, 2 conns"), ("spate", "spate (2 workers)"), ("spate1", "spate --threads 1")]
r = {k: json.load(open(f"{tmp}/{k}.json")) for k, _ in rows}
print(f"{'tool':<20}{'msgs received':>14}{'msg/s':>13}{'MB/s':>9}{'bytes/msg':>11}")
for k, name in rows:
    d = r[k]
    print(f"{name:<20}{d['lines']:>14,}{d['lines_per_sec']:>13,.0f}{d['mb_per_sec']:>9.1f}{d['bytes']/max(d['lines'],1):>11.1f}")
best = max(r["loggen"]["lines_per_sec"], r["loggen2"]["lines_per_sec"])
for k, name in rows[2:]:
    print(f"{name} / best loggen = {r[k]['lines_per_sec']/best:.2f}x  (target >= 3x)")
PY
