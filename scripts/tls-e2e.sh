#!/usr/bin/env bash
# End to end over TLS against a real Kafka-protocol broker: tansu 0.6.0 (memory store) on a
# plaintext loopback port, advertising a TLS port where stunnel (Debian's stunnel4) terminates
# TLS with certificates made here by scripts/tls-certs.sh (a throwaway CA; nothing shipped).
#  1. COUNT events over TLS with the broker's certificate checked against the test CA (and its
#     host name), then `spate verify` over TLS: no gaps, no duplicates.
#  2. The same with mTLS: stunnel requires a client certificate signed by the test CA; spate's
#     key is encrypted, its passphrase given as ${ENV} in the config.
#  3. Planted secrets (the key passphrase, a metrics token from a file, a SASL-looking option)
#     appear nowhere spate writes: stderr, stdout, the summary JSON, /v1/status, /metrics, the
#     DLQ file.
# Usage: scripts/tls-e2e.sh [COUNT]   (TANSU as for scripts/tansu-e2e.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-100000}
SPATE=${SPATE:-${CARGO_TARGET_DIR:-target}/release/spate}
[ -x "$SPATE" ] || cargo build --release -q -p spate
TANSU=${TANSU:-$(command -v tansu || echo /opt/tansu/bin/tansu)}
[ -x "$TANSU" ] || { echo "tls-e2e: tansu not found (scripts/tansu-e2e.sh installs it)"; exit 1; }
command -v stunnel4 >/dev/null || { echo "tls-e2e: stunnel4 not found (apt-get install stunnel4)"; exit 1; }
TMP=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(eval(sys.argv[2],{},{'d':d}))" "$@"; }
wait_port() { for _ in $(seq 100); do python3 -c "import socket;socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1"; exit 1; }

PASS=key-passphrase-planted-8812
TOKEN=metrics-token-planted-4471
KEY_PASSPHRASE=$PASS scripts/tls-certs.sh "$TMP/certs"
echo "$TOKEN" >"$TMP/token"
PLAIN=$(free_port); TLS=$(free_port); MTLS=$(free_port)

# tansu advertises the TLS port, so every connection after the bootstrap goes through stunnel
# too. Step 2 restarts stunnel on the same port, requiring client certificates.
"$TANSU" broker --listener-url "tcp://127.0.0.1:$PLAIN" --advertised-listener-url "tcp://localhost:$TLS" \
  --storage-engine memory://tansu/ >"$TMP/tansu.log" 2>&1 &
cat >"$TMP/stunnel.conf" <<CONF
foreground = yes
pid =
[kafka-tls]
accept = 127.0.0.1:$TLS
connect = 127.0.0.1:$PLAIN
cert = $TMP/certs/server.pem
key = $TMP/certs/server.key
CONF
stunnel4 "$TMP/stunnel.conf" >"$TMP/stunnel.log" 2>&1 &
wait_port "$PLAIN"; wait_port "$TLS"
for t in tls-a tls-b; do "$TANSU" topic create "$t" --broker "tcp://127.0.0.1:$PLAIN" --partitions 4 >>"$TMP/tansu.log" 2>&1; done
echo "== tansu at 127.0.0.1:$PLAIN (plaintext), stunnel TLS at localhost:$TLS"

ok=1
check_verify() { # report-json label
  local r; r=$(json "$1" "'records %d, unique %d, missing %d, duplicated %d, malformed %d' % (d['records'], d['unique'], d['missing'], d['duplicated'], d['malformed'])")
  echo "$2 verify over TLS: $r"
  [ "$(json "$1" "int(d['unique'] == $COUNT and d['missing'] == 0 and d['duplicated'] == 0 and d['malformed'] == 0)")" = 1 ] || ok=0
}

echo "== 1. $COUNT events over TLS (CA and host name checked), then spate verify over TLS"
"$SPATE" run --sink kafka --brokers "localhost:$TLS" --kafka-ca "$TMP/certs/ca.pem" --topic tls-a --rate max --count "$COUNT" \
  --summary-json "$TMP/s1.json" --quiet 2>"$TMP/s1.log" || { cat "$TMP/s1.log"; exit 1; }
echo "spate: delivered $(json "$TMP/s1.json" "d['delivered']") of $(json "$TMP/s1.json" "d['generated']"), $(json "$TMP/s1.json" "round(d['events_per_sec'])") events/s"
"$SPATE" verify --brokers "localhost:$TLS" --kafka-ca "$TMP/certs/ca.pem" --topic tls-a --expect "$COUNT" --timeout 10s \
  --report-json "$TMP/v1.json" >/dev/null 2>"$TMP/v1.log" || true
check_verify "$TMP/v1.json" "1."

echo "== 2. the same with mTLS (client certificate required; encrypted key, passphrase from \${ENV})"
# Restart stunnel with client certificates required on the advertised port.
kill %2 2>/dev/null || true; wait %2 2>/dev/null || true
printf 'CAfile = %s\nrequireCert = yes\nverifyChain = yes\n' "$TMP/certs/ca.pem" >>"$TMP/stunnel.conf"
stunnel4 "$TMP/stunnel.conf" >>"$TMP/stunnel.log" 2>&1 &
wait_port "$TLS"
cat >"$TMP/mtls.yaml" <<YAML
sink: kafka
kafka:
  brokers: localhost:$TLS
  topic: tls-b
  tls:
    ca_file: $TMP/certs/ca.pem
    cert_file: $TMP/certs/client.pem
    key_file: $TMP/certs/client-enc.key
    key_password: \${SPATE_E2E_KEY_PASS}
YAML
MPORT=$(free_port)
SPATE_E2E_KEY_PASS=$PASS "$SPATE" run --config "$TMP/mtls.yaml" --rate 50000 --count "$COUNT" --metrics-listen "127.0.0.1:$MPORT" \
  --metrics-token-file "$TMP/token" --dlq-file "$TMP/dlq.jsonl" --summary-json "$TMP/s2.json" --progress 1 \
  >"$TMP/s2.out" 2>"$TMP/s2.log" &
RUN=$!
sleep 1
curl -s -H "Authorization: Bearer $TOKEN" "127.0.0.1:$MPORT/v1/status" >"$TMP/status.json" || true
curl -s -H "Authorization: Bearer $TOKEN" "127.0.0.1:$MPORT/metrics" >"$TMP/metrics.txt" || true
wait $RUN || { cat "$TMP/s2.log"; exit 1; }
echo "spate: delivered $(json "$TMP/s2.json" "d['delivered']") of $(json "$TMP/s2.json" "d['generated']") over mTLS"
SPATE_E2E_KEY_PASS=$PASS "$SPATE" verify --config "$TMP/mtls.yaml" --topic tls-b --expect "$COUNT" --timeout 10s \
  --report-json "$TMP/v2.json" >/dev/null 2>"$TMP/v2.log" || true
check_verify "$TMP/v2.json" "2."
# Without the client certificate the same listener refuses spate: one message, exit 2.
set +e
"$SPATE" run --sink kafka --brokers "localhost:$TLS" --kafka-ca "$TMP/certs/ca.pem" --topic tls-b --count 10 --quiet 2>"$TMP/nocert.log"
rc=$?
set -e
echo "without a client certificate: exit $rc: $(head -c 160 "$TMP/nocert.log")"
[ $rc = 2 ] && grep -q "kafka.tls.cert_file" "$TMP/nocert.log" || ok=0

echo "== 3. planted secrets in what spate wrote"
[ -s "$TMP/status.json" ] && [ -s "$TMP/metrics.txt" ] || { echo "status or metrics not captured"; ok=0; }
touch "$TMP/dlq.jsonl"
found=0
for secret in "$PASS" "$TOKEN"; do
  for f in "$TMP/s2.out" "$TMP/s2.log" "$TMP/s2.json" "$TMP/status.json" "$TMP/metrics.txt" "$TMP/dlq.jsonl" "$TMP/v2.log" "$TMP/nocert.log"; do
    if grep -qF "$secret" "$f"; then echo "FOUND ${secret:0:12}... in $(basename "$f")"; found=1; fi
  done
done
echo "planted secrets found: $found (files: stdout, stderr, summary, status, metrics, DLQ, verify log)"
[ $found = 0 ] || ok=0

[ $ok = 1 ] && echo "== TLS end to end: passed" || { echo "== TLS end to end: FAILED"; tail -5 "$TMP/stunnel.log"; exit 1; }
