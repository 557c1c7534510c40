#!/usr/bin/env bash
# End to end against a real Kafka-protocol broker: tansu 0.6.0 (memory store) on loopback.
#  1. Produce 1,000,000 events and audit them with `spate verify`: no gaps, no duplicates.
#  2. A 30 s run at 50,000/s; the broker is killed (-9) at 8 s and restarted at 12 s. A restarted
#     memory broker forgets everything it had, so the check is: every generated event is
#     accounted for (delivered + dead-lettered + shed + failed, nothing in flight, every
#     dead-lettered event a line of the DLQ file), and the restarted broker holds exactly the
#     events acknowledged after the restart.
#     With the idempotent producer (step 2) the restarted broker no longer knows the producer
#     id; spate replaces the producer and goes on.
#  3. The same with --no-idempotence.
#  4. Avro against tansu's schema validation (`--schema-registry file://DIR`, a `{topic}.avsc` per
#     topic whose `value` field is the record schema): tansu reads each record value as an Avro
#     object container (not a bare datum, not Confluent framing), so spate sends one-record
#     containers (`--avro-framing container`): all accepted and verified. Then records tansu
#     must refuse with INVALID_RECORD: bare datums (`--avro-framing raw`) and records of another
#     schema (`app` events to the `web` topic); none may be stored, every one accounted for.
# Usage: scripts/tansu-e2e.sh [COUNT]
#   TANSU=path/to/tansu, else `tansu` on PATH or /opt/tansu/bin/tansu. If none, it is installed
#   with cargo (tansu 0.6.0 with the memory store: about 26 minutes on 2 cores, once).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000000}
SPATE=${SPATE:-${CARGO_TARGET_DIR:-target}/release/spate}
[ -x "$SPATE" ] || cargo build --release -q -p spate
TANSU=${TANSU:-$(command -v tansu || echo /opt/tansu/bin/tansu)}
if [ ! -x "$TANSU" ]; then
  echo "tansu-e2e: installing tansu 0.6.0 (memory store) into /opt/tansu (about 26 min on 2 cores)"
  cargo install tansu@0.6.0 --features dynostore --locked --root /opt/tansu
  TANSU=/opt/tansu/bin/tansu
fi
TMP=$(mktemp -d)
TPID=
cleanup() { [ -n "$TPID" ] && kill -9 "$TPID" 2>/dev/null; kill $(jobs -p) 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT=$(free_port)
B=127.0.0.1:$PORT
json() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(eval(sys.argv[2],{},{'d':d}))" "$@"; }

start_tansu() {
  "$TANSU" broker --listener-url "tcp://$B" --advertised-listener-url "tcp://$B" \
    --storage-engine memory://tansu/ >>"$TMP/tansu.log" 2>&1 &
  TPID=$!
  for _ in $(seq 100); do
    if python3 -c "import socket;socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "tansu did not start:"; cat "$TMP/tansu.log"; exit 1
}
topic() { "$TANSU" topic create "$1" --broker "tcp://$B" --partitions 8 >>"$TMP/tansu.log" 2>&1; }

echo "== tansu $("$TANSU" --version 2>/dev/null || echo 0.6.0) at $B (memory store)"
start_tansu

echo "== 1. $COUNT events, then spate verify"
topic e2e-count
/usr/bin/env time -f "%e s wall" "$SPATE" run --sink kafka --brokers "$B" --topic e2e-count --rate max --count "$COUNT" \
  --summary-json "$TMP/s1.json" --quiet 2>"$TMP/s1.log" || { cat "$TMP/s1.log"; exit 1; }
tail -1 "$TMP/s1.log"
echo "spate: generated $(json "$TMP/s1.json" "d['generated']"), delivered $(json "$TMP/s1.json" "d['delivered']"), $(json "$TMP/s1.json" "round(d['events_per_sec'])") events/s, p99 ack $(json "$TMP/s1.json" "d['latency_ms']['p99']") ms"
"$SPATE" verify --brokers "$B" --topic e2e-count --expect "$COUNT" --timeout 10s --report-json "$TMP/v1.json" >/dev/null 2>"$TMP/v1.log" || true
echo "verify: $(json "$TMP/v1.json" "'records %d, unique %d, missing %d, duplicated %d, malformed %d' % (d['records'], d['unique'], d['missing'], d['duplicated'], d['malformed'])")"
ok1=$(json "$TMP/v1.json" "int(d['unique'] == $COUNT and d['missing'] == 0 and d['duplicated'] == 0 and d['malformed'] == 0)")

# One run at 50,000/s for 30 s; the broker is killed at 8 s and restarted (empty) at 12 s.
# Prints and checks the accounting; sets ON (events on the restarted broker), BEFORE, D, L.
restart_run() { # topic extra-flags...
  local t=$1; shift
  topic "$t"
  local mport; mport=$(free_port)
  rm -f "$TMP/dlq.jsonl"
  "$SPATE" run --sink kafka --brokers "$B" --topic "$t" --rate 50000 --duration 30s "$@" \
    --metrics-listen "127.0.0.1:$mport" --dlq-file "$TMP/dlq.jsonl" --summary-json "$TMP/s2.json" --quiet 2>"$TMP/s2.log" &
  local run=$!
  sleep 8
  kill -9 "$TPID"; wait "$TPID" 2>/dev/null || true; TPID=
  sleep 1 # acks already on the wire are counted; none can come after this
  curl -s "127.0.0.1:$mport/v1/status" >"$TMP/at-kill.json"
  BEFORE=$(json "$TMP/at-kill.json" "d['totals']['delivered']")
  echo "acked before the kill: $BEFORE (the restarted memory broker will not have these)"
  sleep 3
  start_tansu
  topic "$t"
  RC=0; wait "$run" || RC=$?
  # 0: all delivered; 3: some records (possibly written at the kill) dead-lettered.
  echo "spate exit code: $RC"
  [ "$RC" = 0 ] || [ "$RC" = 3 ] || { echo "spate run failed:"; cat "$TMP/s2.log"; }
  grep -m3 "warning" "$TMP/s2.log" | cut -c1-220 || true
  read -r G D L S F I BR < <(json "$TMP/s2.json" "'%d %d %d %d %d %d %d' % (d['generated'], d['delivered'], d['dead_lettered'], d['shed'], d['failed'], d['in_flight'], d['breaker_transitions'])")
  echo "spate: generated $G = delivered $D + dead-lettered $L + shed $S + failed $F + in flight $I; breaker transitions $BR"
  DLQ_LINES=$( [ -f "$TMP/dlq.jsonl" ] && wc -l <"$TMP/dlq.jsonl" || echo 0)
  "$SPATE" verify --brokers "$B" --topic "$t" --timeout 10s --report-json "$TMP/v2.json" >/dev/null 2>"$TMP/v2.log" || true
  ON=$(json "$TMP/v2.json" "d['unique']")
  DUP=$(json "$TMP/v2.json" "d['duplicated']")
  MAL=$(json "$TMP/v2.json" "d['malformed']")
  echo "DLQ file lines: $DLQ_LINES; the restarted broker holds $ON unique events (duplicated $DUP, malformed $MAL); acked after the restart: $((D - BEFORE))"
  BAL=$(( G == D + L + S + F + I && I == 0 && F == 0 && DLQ_LINES == L && DUP == 0 && MAL == 0 && (RC == 0 || RC == 3) ))
}

echo "== 2. idempotent producer (the default): 50,000/s for 30 s; broker killed at 8 s, restarted empty at 12 s"
restart_run e2e-restart
ok2=$BAL
# A restarted memory broker has forgotten the producer id and answers UnknownProducerId; spate
# starts a new producer and delivery resumes. What the new broker holds must be exactly what
# was acked after the restart (records possibly written at the kill are in the DLQ file).
ok2=$(( ok2 && ON == D - BEFORE && D > BEFORE ))

echo "== 3. --no-idempotence: the same outage"
restart_run e2e-restart-plain --no-idempotence
ok3=$(( BAL && ON == D - BEFORE ))

echo "== 4. Avro: tansu validating every record against a schema file (a second tansu, own port)"
kill -9 "$TPID" 2>/dev/null; wait "$TPID" 2>/dev/null || true; TPID=
mkdir -p "$TMP/schema"
"$SPATE" schema --source web --trace-context traceparent >"$TMP/web.avsc"
python3 -c "import json,sys;print(json.dumps({'type':'record','name':'tansu_value','fields':[{'name':'value','type':json.load(open(sys.argv[1]))}]}))" "$TMP/web.avsc" >"$TMP/schema/e2e-avro.avsc"
PORT=$(free_port); B=127.0.0.1:$PORT
( cd "$TMP" && exec "$TANSU" broker --listener-url "tcp://$B" --advertised-listener-url "tcp://$B" \
    --storage-engine memory://tansu/ --schema-registry file://./schema >>"$TMP/tansu.log" 2>&1 ) &
TPID=$!
for _ in $(seq 100); do python3 -c "import socket;socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null && break; sleep 0.1; done
topic e2e-avro
AVRO_N=100000
"$SPATE" run --sink kafka --brokers "$B" --topic e2e-avro --format avro --avro-framing container --source web --rate max \
  --count "$AVRO_N" --summary-json "$TMP/s4.json" --quiet 2>"$TMP/s4.log" || { cat "$TMP/s4.log"; exit 1; }
"$SPATE" verify --brokers "$B" --topic e2e-avro --json false --expect "$AVRO_N" --timeout 10s --report-json "$TMP/v4.json" >/dev/null 2>"$TMP/v4.log" || true
echo "containers: delivered $(json "$TMP/s4.json" "d['delivered']") of $AVRO_N; verify: $(json "$TMP/v4.json" "'unique %d, missing %d, duplicated %d' % (d['unique'], d['missing'], d['duplicated'])")"
ok4=$(json "$TMP/v4.json" "int(d['unique'] == $AVRO_N and d['missing'] == 0 and d['duplicated'] == 0)")
ok4=$(( ok4 && $(json "$TMP/s4.json" "int(d['delivered'] == $AVRO_N)") ))
refused() { # label flags...: 1,000 records tansu must refuse; prints and checks the accounting
  local label=$1; shift
  rm -f "$TMP/dlq4.jsonl"
  local rc=0
  "$SPATE" run --sink kafka --brokers "$B" --topic e2e-avro --format avro --rate max --count 1000 --no-idempotence \
    --dlq-file "$TMP/dlq4.jsonl" --summary-json "$TMP/s5.json" --quiet "$@" 2>"$TMP/s5.log" || rc=$?
  read -r G D L F I < <(json "$TMP/s5.json" "'%d %d %d %d %d' % (d['generated'], d['delivered'], d['dead_lettered'], d['failed'], d['in_flight'])")
  local why; why=$(grep -o -m1 "InvalidRecord[^\"]*" "$TMP/dlq4.jsonl" 2>/dev/null | head -1 | cut -c1-80 || true)
  echo "$label: exit $rc; generated $G = delivered $D + dead-lettered $L + failed $F + in flight $I; DLQ reason: ${why:-none}"
  [ "$D" = 0 ] && [ "$G" = $((D + L + F + I)) ] && [ "$I" = 0 ] && [ "$rc" != 0 ] && [ -n "$why" ]
}
refused "bare datums (--avro-framing raw)" --avro-framing raw --source web || ok4=0
refused "app records to the web topic" --avro-framing container --source app || ok4=0
"$SPATE" verify --brokers "$B" --topic e2e-avro --json false --timeout 5s --report-json "$TMP/v5.json" >/dev/null 2>&1 || true
echo "after the refused runs the topic still holds $(json "$TMP/v5.json" "d['unique']") events"
ok4=$(( ok4 && $(json "$TMP/v5.json" "int(d['unique'] == $AVRO_N and d['records'] == $AVRO_N)") ))

echo "== result: 1M verify $([ "$ok1" = 1 ] && echo clean || echo NOT clean); restart, idempotent: accounting $([ "$ok2" = 1 ] && echo exact || echo NOT exact); restart, not idempotent: accounting $([ "$ok3" = 1 ] && echo exact || echo NOT exact); avro schema validation $([ "$ok4" = 1 ] && echo "accepted and refused as it should" || echo NOT as it should)"
[ "$ok1" = 1 ] && [ "$ok2" = 1 ] && [ "$ok3" = 1 ] && [ "$ok4" = 1 ]
