#!/usr/bin/env bash
# Kafka throughput of the same `web` events as JSON lines and as Avro datums, on one broker:
# spate runs each format ROUNDS times, interleaved (json avro json avro ...), so drift on a shared
# machine hits both alike; the table gives the median and the spread (min-max) of events/s, MB/s
# of record values and the p99 ack latency.
# Usage: scripts/compare-formats.sh [COUNT] [BROKERS]     ROUNDS=5, FORMATS="json avro" by default
#   BROKERS unset: a standalone `spate broker` (librdkafka's mock cluster) on loopback.
#   EXTRA: more `spate run` flags for every run (e.g. "--trace-context none").
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000000}
BROKERS=${2:-}
ROUNDS=${ROUNDS:-5}
FORMATS=${FORMATS:-json avro}
SPATE=${SPATE:-${CARGO_TARGET_DIR:-target}/release/spate}
[ -x "$SPATE" ] || cargo build --release -q -p spate
TMP=$(mktemp -d)
cleanup() { [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
if [ -z "$BROKERS" ]; then
  topics=$(for f in $FORMATS; do printf 'fmt-%s,' "$f"; done)
  $SPATE broker --topic "${topics%,}" --partitions 8 --bootstrap-file "$TMP/bootstrap" >/dev/null 2>"$TMP/broker.log" &
  BPID=$!
  for _ in $(seq 100); do [ -s "$TMP/bootstrap" ] && break; sleep 0.1; done
  BROKERS=$(cat "$TMP/bootstrap")
  echo "broker: spate broker (librdkafka mock cluster) at $BROKERS; $ROUNDS rounds of $COUNT events per format, interleaved"
fi
json() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(eval(sys.argv[2],{},{'d':d}))" "$@"; }
for r in $(seq "$ROUNDS"); do
  for f in $FORMATS; do
    # shellcheck disable=SC2086
    $SPATE run --sink kafka --brokers "$BROKERS" --topic "fmt-$f" --format "$f" --source web --rate max --count "$COUNT" \
      --duration 300s --warmup 0s ${EXTRA:-} --summary-json "$TMP/s.json" --quiet 2>"$TMP/s.log" || { cat "$TMP/s.log"; exit 1; }
    json "$TMP/s.json" "'$f %d %.0f %.1f %s' % (d['delivered'], d['events_per_sec'], d['mb_per_sec'], (d['latency_ms'] or {}).get('p99', 0))" >>"$TMP/rows"
  done
  echo "round $r done"
done
python3 - "$TMP/rows" "$FORMATS" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
print(f"{'format':8} {'events/s median':>16} {'(min-max)':>24} {'MB/s':>8} {'p99 ack ms':>11} {'bytes/event':>12}")
for f in sys.argv[2].split():
    r = [x for x in rows if x[0] == f]
    eps = sorted(float(x[2]) for x in r); mbs = statistics.median(float(x[3]) for x in r)
    p99 = statistics.median(float(x[4]) for x in r)
    med = statistics.median(eps)
    print(f"{f:8} {med:16,.0f} {f'({eps[0]:,.0f}-{eps[-1]:,.0f})':>24} {mbs:8.1f} {p99:11.1f} {mbs * 1e6 / med:12.1f}")
PY
