#!/usr/bin/env bash
# PostgreSQL load speed on one server, side by side:
#   spate --sink postgres://... (generating the events too, binary COPY, one transaction and one
#   spate_batches row per commit_rows events, 32,768 by default)  vs  psql's \copy loading the very same rows (exported from
#   spate's table as a binary COPY file) into an identical table, in one COPY.
# ROUNDS rounds, interleaved; medians and spreads of rows/s and MB/s (MB of the binary COPY
# stream, measured by exporting it), each tool's wall time from the start of its process.
# Then the outage check: a RATE events/s run of DURATION, the server stopped (fast) at STOP_AT
# for DOWN seconds and restarted; every generated event must be in the table exactly once or
# in the DLQ file (spate verify --postgres).
# Usage: scripts/compare-postgres.sh [COUNT]   ROUNDS=3 RATE=50000 DURATION=30s STOP_AT=8 DOWN=10
#   SPATE_ARGS="--threads 1" (more flags for spate's load runs), SINK_PARAMS="&commit_rows=8192"
#   OUTAGE=0 (skip the outage check)
# Needs Debian's postgresql package (initdb, pg_ctl) and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000000}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-50000}
DURATION=${DURATION:-30s}
STOP_AT=${STOP_AT:-8}
DOWN=${DOWN:-10}
SPATE=${SPATE:-${CARGO_TARGET_DIR:-target}/release/spate}
[ -x "$SPATE" ] || cargo build --release -q -p spate
PGBIN=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
TMP=$(mktemp -d)
chmod 755 "$TMP"
AS=(); [ "$(id -u)" = 0 ] && { AS=(runuser -u postgres --); chown postgres: "$TMP"; }
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
ctl() { "${AS[@]}" "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/pg.log" -w -t 60 "$@" >/dev/null; }
cleanup() { ctl -m immediate stop 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
"${AS[@]}" "$PGBIN/initdb" -D "$TMP/data" -U spate --auth=trust --no-sync >/dev/null
start() { ctl -o "-p $PORT -k $TMP -c listen_addresses=127.0.0.1" start; }
start
URL="postgres://spate@127.0.0.1:$PORT/postgres"
q() { psql -X -q -A -t -h 127.0.0.1 -p "$PORT" -U spate -d postgres -c "$1"; }
json() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(eval(sys.argv[2],{},{'d':d}))" "$@"; }
echo "server: PostgreSQL $(q 'SHOW server_version') at 127.0.0.1:$PORT (default settings); $ROUNDS rounds of $COUNT events"

rows=$TMP/rows
for r in $(seq "$ROUNDS"); do
  q "DROP TABLE IF EXISTS ev_spate, ev_psql; TRUNCATE TABLE IF EXISTS spate_batches" >/dev/null 2>&1 || true
  q "DROP TABLE IF EXISTS ev_spate, ev_psql" >/dev/null
  t0=$(date +%s.%N)
  "$SPATE" run --sink "$URL?table=ev_spate${SINK_PARAMS:-}" --source web --rate max --count "$COUNT" ${SPATE_ARGS:-} --quiet --summary-json "$TMP/s.json" 2>"$TMP/s.log" \
    || { cat "$TMP/s.log"; exit 1; }
  t1=$(date +%s.%N)
  [ "$(json "$TMP/s.json" "d['delivered']")" = "$COUNT" ] || { echo "spate delivered $(json "$TMP/s.json" "d['delivered']") of $COUNT"; exit 1; }
  q "\\copy (SELECT ts, source, id, traceparent, body FROM ev_spate) TO '$rows' (FORMAT binary)"
  bytes=$(stat -c %s "$rows")
  q "CREATE TABLE ev_psql (LIKE ev_spate)"
  t2=$(date +%s.%N)
  q "\\copy ev_psql FROM '$rows' (FORMAT binary)"
  t3=$(date +%s.%N)
  [ "$(q 'SELECT count(*) FROM ev_psql')" = "$COUNT" ] || { echo "psql loaded a different count"; exit 1; }
  python3 -c "import sys;a,b,c,d,n,by=map(float,sys.argv[1:]);print(f'spate {n/(b-a):.0f} {by/(b-a)/1e6:.1f}');print(f'psql {n/(d-c):.0f} {by/(d-c)/1e6:.1f}')" \
    "$t0" "$t1" "$t2" "$t3" "$COUNT" "$bytes" >>"$TMP/table"
  echo "round $r: $(tail -2 "$TMP/table" | tr '\n' ' ')"
done
python3 - "$TMP/table" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for tool in ("spate", "psql"):
    r = [x for x in rows if x[0] == tool]
    rs = sorted(float(x[1]) for x in r); mb = statistics.median(float(x[2]) for x in r)
    med[tool] = statistics.median(rs)
    print(f"{tool:6} {med[tool]:12,.0f} rows/s ({rs[0]:,.0f}-{rs[-1]:,.0f})  {mb:7.1f} MB/s")
print(f"spate / psql \\copy: {med['spate'] / med['psql'] * 100:.0f} %")
PY

[ "${OUTAGE:-1}" = 0 ] && exit 0
echo "== outage: $RATE events/s for $DURATION; the server stopped at ${STOP_AT}s for ${DOWN}s"
q "DROP TABLE IF EXISTS ev_out" >/dev/null
rm -f "$TMP/dlq.jsonl"
"$SPATE" run --sink "$URL?table=ev_out&dlq_file=$TMP/dlq.jsonl" --source web --rate "$RATE" --duration "$DURATION" --quiet \
  --summary-json "$TMP/o.json" 2>"$TMP/o.log" &
run=$!
sleep "$STOP_AT"; ctl -m fast stop; echo "stopped at ${STOP_AT}s"; sleep "$DOWN"; start; echo "restarted"
rc=0; wait "$run" || rc=$?
read -r G D L S F I < <(json "$TMP/o.json" "'%d %d %d %d %d %d' % (d['generated'], d['delivered'], d['dead_lettered'], d['shed'], d['failed'], d['in_flight'])")
"$SPATE" verify --postgres "$URL" --table ev_out --report-json "$TMP/v.json" >/dev/null 2>&1 || true
U=$(json "$TMP/v.json" "d['unique']"); DUP=$(json "$TMP/v.json" "d['duplicated']"); MAL=$(json "$TMP/v.json" "d['malformed']")
DL=$( [ -f "$TMP/dlq.jsonl" ] && wc -l <"$TMP/dlq.jsonl" || echo 0)
echo "spate exit $rc: generated $G = delivered $D + dead-lettered $L + shed $S + failed $F + in flight $I"
echo "verify: $U unique events in the table, $DUP duplicated, $MAL malformed; DLQ file lines $DL"
ok=$(( G == D + L + S + F + I && I == 0 && U == D && DUP == 0 && MAL == 0 && DL == L ))
echo "== outage: $([ "$ok" = 1 ] && echo "every event in the table exactly once or in the DLQ" || echo "NOT exact")"
[ "$ok" = 1 ]
