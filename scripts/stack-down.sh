#!/usr/bin/env bash
# Stops what scripts/stack-up.sh started (by the pids it recorded), newest first: Prometheus,
# spate serve (drains its run), the broker, PostgreSQL, Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${SPATE_STACK_DIR:-$(pwd)/target/stack}

stop() {
  local name=$1 pidfile="$state/$1.pid" pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    echo "== stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    # spate serve drains its run on SIGTERM; the engine gives a drain 30 s at most.
    for ((i = 0; i < 400; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "== $name did not exit in 40 s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

for name in prometheus spate broker postgres redis; do
  stop "$name"
done
echo "== down (logs kept in $state)"
