#!/usr/bin/env bash
# Starts the local spate stack without Docker, on loopback only:
#   redis-server, PostgreSQL (a cluster of its own in the state dir, for the audit trail),
#   `spate broker` (the embedded Kafka-compatible mock cluster), `spate serve` (control plane +
#   /metrics, every run audited in PostgreSQL) and Prometheus (Debian's package) with
#   deploy/prometheus.yml and deploy/alerts.yml. Grafana and Zipkin need docker-compose.yml.
# Pids and logs go to the state dir; scripts/stack-down.sh stops everything it started.
#
# Env: SPATE_STACK_DIR (default target/stack), SPATE_PORT (8080), PROM_PORT (9090),
#      REDIS_PORT (6379), PG_PORT (5432), SPATE_BIN (default target/release/spate or $CARGO_TARGET_DIR/release/spate, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state=${SPATE_STACK_DIR:-$root/target/stack}
spate_port=${SPATE_PORT:-8080}
prom_port=${PROM_PORT:-9090}
redis_port=${REDIS_PORT:-6379}
pg_port=${PG_PORT:-5432}
bin=${SPATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/spate}

die() { echo "stack-up: $*" >&2; exit 1; }

alive() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

for name in redis postgres broker spate prometheus; do
  if alive "$name"; then
    die "$name is already running (pid $(cat "$state/$name.pid")); run scripts/stack-down.sh first"
  fi
done
mkdir -p "$state"

if [ ! -x "$bin" ]; then
  echo "== building spate (release)"
  cargo build --release -p spate --locked
fi

# Starts a command in the background with its own log and pid file.
start() {
  local name=$1; shift
  nohup "$@" >"$state/$name.log" 2>&1 &
  echo $! >"$state/$name.pid"
}

# Waits up to $2 seconds for a TCP port on loopback to accept connections.
wait_port() {
  local port=$1 secs=$2 name=$3 i
  for ((i = 0; i < secs * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    alive "$name" || die "$name exited; see $state/$name.log"
    sleep 0.1
  done
  die "$name did not listen on 127.0.0.1:$port within ${secs}s; see $state/$name.log"
}

if command -v redis-server >/dev/null 2>&1; then
  echo "== redis on 127.0.0.1:$redis_port"
  start redis redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no
  wait_port "$redis_port" 10 redis
else
  echo "== redis-server not installed: skipped (apt-get install redis-server)"
fi

# PostgreSQL for the audit trail: Debian's binaries are off PATH, in /usr/lib/postgresql/N/bin.
# As root the server runs as the postgres user (PostgreSQL refuses root).
pgbin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)")
audit=""
if [ -x "$pgbin/initdb" ]; then
  echo "== postgres on 127.0.0.1:$pg_port (audit trail: spate_runs, spate_run_changes)"
  as=(); [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  mkdir -p "$state/pg"; [ "$(id -u)" = 0 ] && chown postgres: "$state/pg"
  if [ ! -s "$state/pg/data/PG_VERSION" ]; then
    "${as[@]}" "$pgbin/initdb" -D "$state/pg/data" -U spate --auth=trust >"$state/postgres-init.log" 2>&1 || die "initdb failed; see $state/postgres-init.log"
  fi
  "${as[@]}" "$pgbin/pg_ctl" -D "$state/pg/data" -l "$state/pg/postgres.log" -w -t 30 \
    -o "-p $pg_port -k $state/pg -c listen_addresses=127.0.0.1" start >/dev/null || die "postgres did not start; see $state/pg/postgres.log"
  head -1 "$state/pg/data/postmaster.pid" >"$state/postgres.pid"
  audit="postgres://spate@127.0.0.1:$pg_port/postgres"
else
  echo "== postgres not installed: skipped, runs are not audited (apt-get install postgresql)"
fi

echo "== spate broker (embedded Kafka-compatible mock cluster)"
rm -f "$state/bootstrap"
start broker "$bin" broker --topic logs.web,logs.app,logs.payment --bootstrap-file "$state/bootstrap"
for ((i = 0; i < 100; i++)); do
  [ -s "$state/bootstrap" ] && break
  alive broker || die "spate broker exited; see $state/broker.log"
  sleep 0.1
done
[ -s "$state/bootstrap" ] || die "spate broker did not write its address; see $state/broker.log"
bootstrap=$(cat "$state/bootstrap")

# The base config runs POST /v1/start bodies against the local broker.
cat >"$state/spate.yaml" <<YAML
sink: kafka
format: json
rate: 10000
sources: {web: 70, app: 20, payment: 10}
kafka:
  brokers: "$bootstrap"
  topic: "logs.{source}"
  key: trace_id
YAML

echo "== spate serve on 127.0.0.1:$spate_port (Kafka at $bootstrap)"
start spate "$bin" serve --listen "127.0.0.1:$spate_port" --config "$state/spate.yaml" ${audit:+--audit "$audit"}
wait_port "$spate_port" 20 spate

if command -v prometheus >/dev/null 2>&1; then
  echo "== prometheus on 127.0.0.1:$prom_port"
  cp deploy/alerts.yml "$state/alerts.yml"
  sed -e "s/\"spate:8080\"/\"127.0.0.1:$spate_port\"/" -e "s/\"localhost:9090\"/\"127.0.0.1:$prom_port\"/" \
    deploy/prometheus.yml >"$state/prometheus.yml"
  start prometheus prometheus --config.file="$state/prometheus.yml" \
    --storage.tsdb.path="$state/prometheus-data" --web.listen-address="127.0.0.1:$prom_port"
  wait_port "$prom_port" 30 prometheus
else
  echo "== prometheus not installed: skipped (apt-get install prometheus)"
fi

cat <<MSG
== up (state, logs and pids in $state)
  start a run:  curl -XPOST 127.0.0.1:$spate_port/v1/start -H 'Content-Type: application/json' -d '{"rate": 20000, "duration": "5m"}'
  retune:       curl -XPUT  127.0.0.1:$spate_port/v1/rate  -H 'Content-Type: application/json' -d '{"rate": 50000}'
  status:       curl 127.0.0.1:$spate_port/v1/status
  stop:         curl -XPOST 127.0.0.1:$spate_port/v1/stop -H 'Content-Type: application/json'
  prometheus:   http://127.0.0.1:$prom_port/alerts
  audit:        psql -h 127.0.0.1 -p $pg_port -U spate postgres -c 'SELECT run_id, origin, started_at, exit_status FROM spate_runs'

  tear down:    scripts/stack-down.sh
MSG
