#!/usr/bin/env bash
# Runs every test suite. Installs what the tests need first (Debian packages), so it works on
# a fresh Debian machine with Rust. One release build serves the tests, the binary and benches.
set -euo pipefail
cd "$(dirname "$0")/.."

# Test tools: redis-server, promtool, stunnel in front of brokers, openssl for throwaway
# certificates; and the build's own packages (scripts/deps.sh).
extra=()
command -v redis-server >/dev/null 2>&1 || extra+=(redis-server)
command -v promtool >/dev/null 2>&1 || extra+=(prometheus)
command -v stunnel4 >/dev/null 2>&1 || extra+=(stunnel4)
command -v openssl >/dev/null 2>&1 || extra+=(openssl)
# PostgreSQL for the audit tests (each starts its own cluster with initdb).
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || extra+=(postgresql)
# Python for the independent Avro decoders (fastavro, confluent-kafka) and the test registry.
command -v python3 >/dev/null 2>&1 || extra+=(python3)
python3 -c 'import ensurepip' >/dev/null 2>&1 || extra+=(python3-venv)
bash scripts/deps.sh "${extra[@]}"

echo "== Python decoders for the Avro tests (scripts/py/requirements.txt) in target/pyenv"
pyenv_dir=${CARGO_TARGET_DIR:-target}/pyenv
[ -x "$pyenv_dir/bin/python" ] || python3 -m venv "$pyenv_dir"
"$pyenv_dir/bin/pip" install -q --disable-pip-version-check -r scripts/py/requirements.txt
export SPATE_PYTHON="$PWD/$pyenv_dir/bin/python"
[ -x "$SPATE_PYTHON" ] || export SPATE_PYTHON="$pyenv_dir/bin/python"

export CARGO_TERM_COLOR=never
echo "== build (release, all targets)"
cargo build --release --workspace --all-targets --locked

echo "== clippy (warnings are errors)"
cargo clippy --release --workspace --all-targets --locked -- -D warnings

echo "== module cycles within each crate (none allowed; crates cannot form cycles at all)"
for src in engine/core/src engine/gen/src engine/limit/src engine/src control/src; do
  python3 scripts/modgraph.py "$src"
done

echo "== tests"
cargo test --release --workspace --locked -- --test-threads=2

if [ "$(id -u)" = 0 ]; then
  echo "== tests that need root (a 4 MiB tmpfs for the disk-full fault)"
  cargo test --release -p spate --test faults --locked -- --ignored disk_full
  echo "== a run under a cgroup memory limit with a stalled sink (root: it makes the cgroup)"
  SPATE_BIN=${CARGO_TARGET_DIR:-target}/release/spate scripts/memory-cgroup.sh
else
  echo "== tests that need root: skipped (not root): disk_full_for_the_file_sink, memory-cgroup.sh"
fi

echo "== loom model check of the SPSC ring"
cargo test --release -p spate-engine --features loom --lib --locked ring

echo "== benches compile"
cargo bench --workspace --no-run --locked >/dev/null

# A real Kafka-protocol broker end to end. Last, because installing
# tansu is the slowest step (cargo install, about 26 min on 2 cores, once per machine).
if [ "${SPATE_SKIP_TANSU:-0}" = 1 ]; then
  echo "== tansu end to end: skipped (SPATE_SKIP_TANSU=1)"
else
  echo "== real broker end to end: tansu 0.6.0 (memory store) on loopback"
  SPATE=${CARGO_TARGET_DIR:-target}/release/spate scripts/tansu-e2e.sh 1000000
  echo "== TLS end to end: tansu behind stunnel, TLS and mTLS, 100000 events each, verified"
  SPATE=${CARGO_TARGET_DIR:-target}/release/spate scripts/tls-e2e.sh 100000
fi

echo "== all suites passed"
