#!/usr/bin/env bash
# Starts the local spate stack without Docker, on loopback only:
#   redis-server, `spate broker` (the embedded Kafka-compatible mock cluster), `spate serve`
#   (control plane + /metrics) and Prometheus (Debian's package) with deploy/prometheus.yml and
#   deploy/alerts.yml. Grafana and Zipkin need docker-compose.yml.
# Pids and logs go to the state dir; scripts/stack-down.sh stops everything it started.
#
# Env: SPATE_STACK_DIR (default target/stack), SPATE_PORT (8080), PROM_PORT (9090),
#      REDIS_PORT (6379), SPATE_BIN (default target/release/spate or $CARGO_TARGET_DIR/release/spate, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state=${SPATE_STACK_DIR:-$root/target/stack}
spate_port=${SPATE_PORT:-8080}
prom_port=${PROM_PORT:-9090}
redis_port=${REDIS_PORT:-6379}
bin=${SPATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/spate}

die() { echo "stack-up: $*" >&2; exit 1; }

alive() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

for name in redis broker spate prometheus; do
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
start spate "$bin" serve --listen "127.0.0.1:$spate_port" --config "$state/spate.yaml"
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
  tear down:    scripts/stack-down.sh
MSG
