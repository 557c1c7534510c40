#!/usr/bin/env bash
# Side-by-side Kafka throughput on one broker, one machine, the same events:
#   spate (with its two per-record headers, and without)  vs  a bare rdkafka producer loop (the
#   librdkafka ceiling; also with the same two headers, for like-for-like)  vs  kcat -P  vs
#   librdkafka's own examples/rdkafka_performance (built here from the sources rdkafka-sys bundles,
#   against the same static librdkafka spate links; the figure users quote).
# Each tool runs ROUNDS times, interleaved (ABCDE ABCDE ...), so drift on a shared machine hits
# all of them alike; the table gives the median and the spread (min-max) of each. CPU is each
# tool's own process (user + system, from /usr/bin/time on that process); events/s is acked
# events over that process's wall time, start-up and teardown included, for every tool.
# Usage: scripts/compare-kafka.sh [COUNT] [BROKERS]     ROUNDS=5 by default
#   BROKERS unset: a standalone `spate broker` (librdkafka's mock cluster) on loopback.
# Needs kcat (apt-get install kcat).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-2000000}
BROKERS=${2:-}
ROUNDS=${ROUNDS:-5}
SPATE=${CARGO_TARGET_DIR:-target}/release/spate
BENCH=${CARGO_TARGET_DIR:-target}/release/spate-bench
cargo build --release -q -p spate -p spate-bench
command -v kcat >/dev/null || { echo "kcat missing: apt-get install -y kcat" >&2; exit 2; }
TMP=$(mktemp -d)
cleanup() { [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
if [ -z "$BROKERS" ]; then
  $SPATE broker --topic cmp-spate,cmp-bare,cmp-kcat,cmp-perf --partitions 8 --bootstrap-file "$TMP/bootstrap" >/dev/null 2>"$TMP/broker.log" &
  BPID=$!
  for _ in $(seq 100); do [ -s "$TMP/bootstrap" ] && break; sleep 0.1; done
  BROKERS=$(cat "$TMP/bootstrap")
  echo "broker: spate broker (librdkafka mock cluster) at $BROKERS; $ROUNDS rounds of $COUNT events per tool, interleaved"
fi

# rdkafka_performance from librdkafka's examples/, linked like spate (ssl, curl, zstd).
PERF=""
OUT=$(ls -td "${CARGO_TARGET_DIR:-target}"/release/build/rdkafka-sys-*/out 2>/dev/null | while read -r d; do [ -f "$d/src/librdkafka.a" ] && echo "$d" && break; done)
ZSTD=$(ls "${CARGO_TARGET_DIR:-target}"/release/build/zstd-sys-*/out/libzstd.a 2>/dev/null | head -1)
if [ -n "$OUT" ] && [ -n "$ZSTD" ] && gcc -O2 -o "$TMP/rdkafka_performance" "$OUT/examples/rdkafka_performance.c" -I"$OUT/src" \
    "$OUT/src/librdkafka.a" "$ZSTD" -lm -lcurl -lssl -lcrypto -lz -ldl -lpthread -lrt 2>"$TMP/perf-build.log"; then
  PERF="$TMP/rdkafka_performance"
else
  echo "rdkafka_performance could not be built (see below); its row is left out" >&2; cat "$TMP/perf-build.log" >&2 || true
fi

# The same events for every tool: spate writes them to a file once (the bare loop cycles
# through the first 100k of them, kcat reads them all).
$SPATE run --sink "file:$TMP/events.jsonl" --rate max --count "$COUNT" --quiet 2>/dev/null
size=$(( $(stat -c %s "$TMP/events.jsonl") / COUNT - 1 ))

# One line per run into $TMP/results: tool wall user sys acked p99 (p99 "-" when unknown).
timed() { /usr/bin/time -f "%e %U %S" -o "$TMP/time" "$@"; }
record() { echo "$1 $(cat "$TMP/time") $2 $3" >>"$TMP/results"; }
json() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(eval(sys.argv[2],{},{'d':d}))" "$@"; }

for r in $(seq "$ROUNDS"); do
  timed $SPATE run --sink kafka --brokers "$BROKERS" --topic cmp-spate --rate max --count "$COUNT" \
    --summary-json "$TMP/s.json" --quiet 2>"$TMP/s.log" || { cat "$TMP/s.log"; exit 1; }
  record spate "$(json "$TMP/s.json" "d['delivered']")" "$(json "$TMP/s.json" "(d['latency_ms'] or {}).get('p99', '-')")"
  echo "$(json "$TMP/s.json" "(d['warmup_latency_ms'] or {}).get('p99', '-')") $(json "$TMP/s.json" "d['first_ack_ms']")" >>"$TMP/start"
  timed $SPATE run --sink kafka --brokers "$BROKERS" --topic cmp-spate --rate max --count "$COUNT" --no-headers \
    --summary-json "$TMP/s.json" --quiet 2>"$TMP/s.log" || { cat "$TMP/s.log"; exit 1; }
  record spate-no-headers "$(json "$TMP/s.json" "d['delivered']")" "$(json "$TMP/s.json" "(d['latency_ms'] or {}).get('p99', '-')")"
  timed $BENCH bare-producer --brokers "$BROKERS" --topic cmp-bare --count "$COUNT" --payloads "$TMP/events.jsonl" >"$TMP/b.json" 2>"$TMP/b.log"
  record bare-loop "$COUNT" -
  echo "bare-loop $(json "$TMP/b.json" "d['seconds']")" >>"$TMP/self"
  timed $BENCH bare-producer --brokers "$BROKERS" --topic cmp-bare --count "$COUNT" --payloads "$TMP/events.jsonl" --headers >"$TMP/b.json" 2>"$TMP/b.log"
  record bare-loop-headers "$COUNT" -
  echo "bare-loop-headers $(json "$TMP/b.json" "d['seconds']")" >>"$TMP/self"
  timed kcat -P -b "$BROKERS" -t cmp-kcat -l -X acks=all -X enable.idempotence=true -X compression.type=lz4 -X linger.ms=5 "$TMP/events.jsonl" >/dev/null
  record kcat "$COUNT" -
  if [ -n "$PERF" ]; then
    # -D: librdkafka copies each payload, as spate does; same acks, idempotence, codec, linger.
    timed "$PERF" -P -t cmp-perf -b "$BROKERS" -s "$size" -c "$COUNT" -a -1 -D -q -X enable.idempotence=true \
      -X compression.type=lz4 -X linger.ms=5 >"$TMP/perf.log" 2>&1 || { cat "$TMP/perf.log"; exit 1; }
    record rdkafka_performance "$COUNT" -
    echo "rdkafka_performance $(grep -o 'in [0-9]*ms' "$TMP/perf.log" | tail -1 | tr -dc 0-9 | awk '{print $1/1000}')" >>"$TMP/self"
  fi
  echo "round $r of $ROUNDS done"
done

python3 - "$TMP/results" "$COUNT" "$TMP/self" "$size" "$TMP/start" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
n, size = int(sys.argv[2]), int(sys.argv[4])
own = {}
for t, secs in (l.split() for l in open(sys.argv[3])):
    own.setdefault(t, []).append(n / float(secs))
tools = [t for t in ["spate", "spate-no-headers", "bare-loop", "bare-loop-headers", "kcat", "rdkafka_performance"] if t in {r[0] for r in rows}]
eps, cpu, p99 = {t: [] for t in tools}, {t: [] for t in tools}, {t: [] for t in tools}
for t, wall, usr, sys_, acked, p in rows:
    eps[t].append(int(acked) / float(wall))
    cpu[t].append((float(usr) + float(sys_)) / n * 1e6)
    if p != "-":
        p99[t].append(float(p))
med = {t: statistics.median(eps[t]) for t in tools}
print(f"{'tool':<20}{'events/s (median)':>18}{'spread':>24}{'MB/s':>8}{'CPU us/ev':>11}{'p99 ack ms':>12}")
for t in tools:
    p = f"{statistics.median(p99[t]):.1f}" if p99[t] else "n/a"
    print(f"{t:<20}{med[t]:>18,.0f}{f'{min(eps[t]):,.0f}-{max(eps[t]):,.0f}':>24}{med[t]*size/1e6:>8.1f}{statistics.median(cpu[t]):>11.3f}{p:>12}")
print(f"event size {size} bytes; {n} events per run; {len(eps['spate'])} runs per tool, interleaved (wall time includes start-up and the final flush)")
for t in ("bare-loop", "bare-loop-headers", "rdkafka_performance"):
    if t in own:
        print(f"{t} timed by itself (first produce to last ack, no start-up or teardown): median {statistics.median(own[t]):,.0f} events/s")
start = [l.split() for l in open(sys.argv[5])]
warm = [float(w) for w, _ in start if w not in ("-", "None")]
first = [float(f) for _, f in start if f not in ("-", "None")]
print(f"spate start: first ack after {statistics.median(first):.0f} ms (median; {min(first):.0f}-{max(first):.0f}); "
      f"warm-up (first 1 s) p99 ack {statistics.median(warm) if warm else float('nan'):.1f} ms, kept out of the p99 column")
# The ceiling is the bare loop timed by itself: its process exits slowly (about 1 s of system
# time tearing down, measured), which would flatter every ratio against its process wall.
ceil, ceil_h = statistics.median(own["bare-loop"]), statistics.median(own["bare-loop-headers"])
print(f"like for like: spate (process wall) / bare loop with the same headers (self-timed) = {med['spate']/ceil_h*100:.1f} %   (target >= 95 % at 5M, >= 90 % at 1M)")
print(f"without headers: spate --no-headers / bare loop (self-timed) = {med['spate-no-headers']/ceil*100:.1f} %   (target >= 98 %)")
print(f"spate (headers) / kcat -P = {med['spate']/med['kcat']:.2f}x   (target >= 1.1x); without headers {med['spate-no-headers']/med['kcat']:.2f}x")
PY
