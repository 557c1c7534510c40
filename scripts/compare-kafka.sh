#!/usr/bin/env bash
# Side-by-side Kafka throughput on one broker, one machine, same event size:
#   spate  vs  a bare rdkafka producer loop (the librdkafka ceiling)  vs  kcat -P from a file.
# Usage: scripts/compare-kafka.sh [COUNT] [BROKERS]
#   BROKERS unset: a standalone `spate broker` (librdkafka's mock cluster) on loopback.
# Prints events/s acked, MB/s, CPU per event and ratios. Needs kcat (apt-get install kcat).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-2000000}
BROKERS=${2:-}
SPATE=${CARGO_TARGET_DIR:-target}/release/spate
BENCH=${CARGO_TARGET_DIR:-target}/release/spate-bench
cargo build --release -q -p spate -p spate-bench
command -v kcat >/dev/null || { echo "kcat missing: apt-get install -y kcat" >&2; exit 2; }
TMP=$(mktemp -d)
cleanup() { [ -n "${BPID:-}" ] && kill "$BPID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
if [ -z "$BROKERS" ]; then
  $SPATE broker --topic cmp-spate,cmp-bare,cmp-kcat --partitions 8 --bootstrap-file "$TMP/bootstrap" >/dev/null 2>"$TMP/broker.log" &
  BPID=$!
  for _ in $(seq 100); do [ -s "$TMP/bootstrap" ] && break; sleep 0.1; done
  BROKERS=$(cat "$TMP/bootstrap")
  echo "broker: spate broker (librdkafka mock cluster) at $BROKERS"
fi

cpu_of() { # command... -> prints "wall user sys" (seconds) on fd 3
  /usr/bin/time -f "%e %U %S" -o "$TMP/time" "$@"
  cat "$TMP/time"
}

# The same events for every tool: spate writes them to a file once (the bare loop cycles
# through the first 100k of them, kcat reads them all).
$SPATE run --sink "file:$TMP/events.jsonl" --rate max --count "$COUNT" --quiet 2>/dev/null

# spate: json web events, max rate, acks=all, idempotence, lz4 (its defaults)
cpu_of $SPATE run --sink kafka --brokers "$BROKERS" --topic cmp-spate --rate max --count "$COUNT" \
  --summary-json "$TMP/spate.json" --quiet 2>"$TMP/spate.log" >"$TMP/spate.time" || { cat "$TMP/spate.log"; exit 1; }
read -r S_WALL S_USR S_SYS < "$TMP/time"
SIZE=$(python3 -c "import json;d=json.load(open('$TMP/spate.json'));print(round(d['bytes']/d['generated'])-1)")
S_ACK=$(python3 -c "import json;print(json.load(open('$TMP/spate.json'))['delivered'])")
S_P99=$(python3 -c "import json;l=json.load(open('$TMP/spate.json'))['latency_ms'];print(l['p99'] if l else 'n/a')")

# spate again without the two per-record headers (traceparent, spate-id), as the others send none
cpu_of $SPATE run --sink kafka --brokers "$BROKERS" --topic cmp-spate --rate max --count "$COUNT" --no-headers \
  --summary-json "$TMP/spate-nh.json" --quiet 2>"$TMP/spate-nh.log" >"$TMP/spate.time" || { cat "$TMP/spate-nh.log"; exit 1; }
read -r H_WALL H_USR H_SYS < "$TMP/time"
H_ACK=$(python3 -c "import json;print(json.load(open('$TMP/spate-nh.json'))['delivered'])")
H_P99=$(python3 -c "import json;l=json.load(open('$TMP/spate-nh.json'))['latency_ms'];print(l['p99'] if l else 'n/a')")

# bare rdkafka loop, same payload size and client settings
$BENCH bare-producer --brokers "$BROKERS" --topic cmp-bare --count "$COUNT" --payloads "$TMP/events.jsonl" >"$TMP/bare.json" 2>"$TMP/bare.log" &
BARE=$!
/usr/bin/time -f "%e %U %S" -o "$TMP/time" tail --pid=$BARE -f /dev/null
wait $BARE
B_WALL=$(python3 -c "import json;print(json.load(open('$TMP/bare.json'))['seconds'])")
B_CPU=$(python3 -c "import json;print(json.load(open('$TMP/bare.json'))['cpu_us_per_event'])")

# the same loop with spate's two headers on every record (pre-built values): like for like
$BENCH bare-producer --brokers "$BROKERS" --topic cmp-bare --count "$COUNT" --payloads "$TMP/events.jsonl" --headers >"$TMP/bareh.json" 2>"$TMP/bareh.log"
BH_WALL=$(python3 -c "import json;print(json.load(open('$TMP/bareh.json'))['seconds'])")
BH_CPU=$(python3 -c "import json;print(json.load(open('$TMP/bareh.json'))['cpu_us_per_event'])")

# kcat -P from a file of the same events (written by spate above)
cpu_of kcat -P -b "$BROKERS" -t cmp-kcat -l -X acks=all -X enable.idempotence=true -X compression.type=lz4 -X linger.ms=5 "$TMP/events.jsonl" >/dev/null
read -r K_WALL K_USR K_SYS < "$TMP/time"
K_SIZE=$(python3 -c "import os;print(round(os.path.getsize('$TMP/events.jsonl')/$COUNT)-1)")

python3 - "$COUNT" "$SIZE" "$K_SIZE" "$S_WALL" "$S_USR" "$S_SYS" "$S_ACK" "$S_P99" "$B_WALL" "$B_CPU" "$K_WALL" "$K_USR" "$K_SYS" \
  "$H_WALL" "$H_USR" "$H_SYS" "$H_ACK" "$H_P99" "$BH_WALL" "$BH_CPU" <<'PY'
import sys
n, size, ksize = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sw, su, ss, sack, sp99 = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
bw, bcpu = float(sys.argv[9]), float(sys.argv[10])
kw, ku, ks = float(sys.argv[11]), float(sys.argv[12]), float(sys.argv[13])
hw, hu, hs, hack, hp99 = float(sys.argv[14]), float(sys.argv[15]), float(sys.argv[16]), int(sys.argv[17]), sys.argv[18]
bhw, bhcpu = float(sys.argv[19]), float(sys.argv[20])
rows = [
  ("spate", sack / sw, size, (su + ss) / n * 1e6, sp99),
  ("spate --no-headers", hack / hw, size, (hu + hs) / n * 1e6, hp99),
  ("bare rdkafka loop", n / bw, size, bcpu, "n/a"),
  ("bare loop + headers", n / bhw, size, bhcpu, "n/a"),
  ("kcat -P", n / kw, ksize, (ku + ks) / n * 1e6, "n/a"),
]
print(f"{'tool':<20}{'events/s acked':>16}{'MB/s':>9}{'CPU us/event':>14}{'p99 ack ms':>12}")
for name, eps, sz, cpu, p99 in rows:
    print(f"{name:<20}{eps:>16,.0f}{eps*sz/1e6:>9.1f}{cpu:>14.3f}{p99:>12}")
print(f"event size {size} bytes; {n} events each (wall time includes start-up and the final flush)")
print(f"spate / bare rdkafka = {rows[0][1]/rows[2][1]*100:.1f} %   (target >= 90 %); without headers {rows[1][1]/rows[2][1]*100:.1f} %")
print(f"like for like: spate / bare loop with the same headers = {rows[0][1]/rows[3][1]*100:.1f} %")
print(f"spate / kcat -P      = {rows[0][1]/rows[4][1]:.2f}x  (goal: >= 1.1x with headers); without headers {rows[1][1]/rows[4][1]:.2f}x")
PY
