#!/usr/bin/env bash
# Scale-out on one machine: 1, 2 and 3 instances sharing one global rate through Redis and one
# (embedded) Kafka cluster: bench/scenarios/redis-3-instances.yaml with --instances 1, 2, 3.
# Starts its own redis-server on a free loopback port. Prints aggregate rate, its error against
# the global rate, each instance's share, and Redis calls per 1,000 events.
# Usage: scripts/scale-out.sh [DURATION]     (default 35s per run, 5 s of it warm-up)
#   GLOBAL=30000 COUNTS="3" scripts/scale-out.sh 15s   other global rate / instance counts
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-35s}
GLOBAL=${GLOBAL:-60000}
COUNTS=${COUNTS:-1 2 3}
BENCH=${CARGO_TARGET_DIR:-target}/release/spate-bench
command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 2; }
cargo build --release -q -p spate-bench
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
RPID=$!
trap 'kill $RPID 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
sed -e "s#redis://127.0.0.1:6379#redis://127.0.0.1:$PORT#" -e "s/duration: 65s/duration: $DUR/" \
  -e "s/global_rate: 60000/global_rate: $GLOBAL/" \
  bench/scenarios/redis-3-instances.yaml >"$TMP/scenario.yaml"
for n in $COUNTS; do
  redis-cli -p "$PORT" flushall >/dev/null
  $BENCH soak "$TMP/scenario.yaml" --instances "$n" --report "$TMP/r$n.json" 2>"$TMP/r$n.log" || { cat "$TMP/r$n.log"; exit 1; }
done
python3 - "$TMP" $COUNTS <<'PY'
import json, sys
tmp = sys.argv[1]
counts = [int(c) for c in sys.argv[2:]]
print(f"{'instances':>9} {'events/s':>10} {'error':>8} {'shares':>24} {'Redis calls':>12} {'per 1k ev':>10} {'p99 ack ms':>11}")
for n in counts:
    r = json.load(open(f"{tmp}/r{n}.json"))
    tot = sum(t["generated"] for t in r["instance_totals"])
    shares = " ".join(f"{t['generated'] / tot * 100:.1f}%" for t in r["instance_totals"])
    lat = r["latency_ms"]["p99"] if r["latency_ms"] else float("nan")
    print(f"{n:>9} {r['events_per_sec']:>10.0f} {r['rate_error_pct']:>+7.3f}% {shares:>24} {r['redis_calls']:>12} "
          f"{r['redis_calls'] / max(tot, 1) * 1000:>10.3f} {lat:>11.1f}")
PY
