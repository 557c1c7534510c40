#!/usr/bin/env bash
# A run under a cgroup memory limit whose sink stalls: spate holds generation back near the
# limit and recovers once the sink reads again, instead of being OOM-killed. Needs root and the
# cgroup v1 memory controller (/sys/fs/cgroup/memory) or cgroup v2 with the memory controller.
#
#   scripts/memory-cgroup.sh            # LIMIT_MB=320 SIZE=262144 STALL_S=3 DURATION=8s
#
# The run takes its default budget (half of the cgroup's limit) and sends 256 KiB events as
# fast as it can to a collector that reads nothing for STALL_S seconds. Prints the run's memory
# figures and exits non-zero if the run was killed, did not balance, lost events, or peaked over
# the limit; a budget above the limit must be refused (exit 2).
#
# Then a neighbour in the same cgroup (a sidecar, another process of the container) takes
# memory for BALLAST_S seconds, up to about 85 % of the limit: spate must see the cgroup's
# usage, hold generation back (`--backpressure block`: nothing shed), resume once the
# neighbour lets go, and end balanced. Loopback only; bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPATE_BIN:-target/release/spate}
LIMIT_MB=${LIMIT_MB:-320}
SIZE=${SIZE:-262144}
STALL_S=${STALL_S:-3}
DURATION=${DURATION:-8s}
BALLAST_S=${BALLAST_S:-2}

if [ "$(id -u)" != 0 ]; then
  echo "memory-cgroup: needs root to make a cgroup; skipped" >&2
  exit 0
fi
if [ -d /sys/fs/cgroup/memory ]; then
  cg=/sys/fs/cgroup/memory/spate-memtest-$$
  mkdir "$cg"
  echo $((LIMIT_MB << 20)) > "$cg/memory.limit_in_bytes"
  # No swap to escape to: the limit is the limit.
  echo 0 > "$cg/memory.swappiness" 2>/dev/null || true
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  cg=/sys/fs/cgroup/spate-memtest-$$
  mkdir "$cg"
  echo $((LIMIT_MB << 20)) > "$cg/memory.max"
  echo 0 > "$cg/memory.swap.max" 2>/dev/null || true
else
  echo "memory-cgroup: no memory cgroup controller here; skipped" >&2
  exit 0
fi
work=$(mktemp -d)
cleanup() {
  [ -n "${listener:-}" ] && kill "$listener" 2>/dev/null || true
  rmdir "$cg" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A collector that accepts, reads nothing for STALL_S seconds, then reads everything.
python3 - "$work/port" "$STALL_S" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c, _ = s.accept()
time.sleep(float(sys.argv[2]))
c.settimeout(60)
try:
    while c.recv(1 << 20):
        pass
except OSError:
    pass
PY
listener=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")

set +e
(
  echo "$BASHPID" > "$cg/cgroup.procs"
  exec timeout -s KILL 120 "$BIN" run --sink "tcp://127.0.0.1:$port" --size "$SIZE" --rate max \
    --duration "$DURATION" --no-pin --quiet --summary-json "$work/s.json"
) 2> "$work/err"
rc=$?
(
  echo "$BASHPID" > "$cg/cgroup.procs"
  exec "$BIN" run --sink null --duration 1s --memory-budget 4GiB --quiet
) 2> "$work/err2"
over=$?
set -e
if [ "$over" != 2 ] || ! grep -q memory_budget "$work/err2"; then
  echo "memory-cgroup: a budget over the cgroup's limit was not refused (exit $over): $(cat "$work/err2")" >&2
  exit 1
fi
grep -E "memory|shed" "$work/err" || true
if [ "$rc" = 137 ]; then
  echo "memory-cgroup: killed (OOM or timeout): $(grep -h oom_kill "$cg/memory.oom_control" 2>/dev/null)" >&2
  exit 1
fi
python3 - "$work/s.json" "$rc" "$LIMIT_MB" <<'PY' || exit 1
import json, sys
s = json.load(open(sys.argv[1]))
rc, limit = int(sys.argv[2]), int(sys.argv[3])
m = s["memory"]
keys = ("delivered", "dead_lettered", "shed", "failed", "in_flight")
balanced = s["generated"] == sum(s[k] for k in keys)
print(f"memory-cgroup: exit {rc}, limit {limit} MiB, peak resident {m['peak_rss_bytes'] >> 20} MiB, "
      f"held back {m['pressed']} times, generated {s['generated']:,} = delivered {s['delivered']:,} "
      f"+ shed {s['shed']:,} + failed {s['failed']:,} + in flight {s['in_flight']:,}: "
      f"{'balanced' if balanced else 'UNBALANCED'}")
ok = rc == 0 and balanced and s["shed"] == 0 and s["failed"] == 0 and m["peak_rss_bytes"] < limit << 20
sys.exit(0 if ok else 1)
PY

# A neighbour takes memory while a steady run goes on, then lets go.
(
  echo "$BASHPID" > "$cg/cgroup.procs"
  exec timeout -s KILL 60 "$BIN" run --sink null --rate 20000 --duration 6s --backpressure block \
    --no-pin --quiet --summary-json "$work/n.json"
) 2> "$work/err3" &
run=$!
sleep 1
used_mb=$(( $(cat "$cg/memory.usage_in_bytes" 2>/dev/null || cat "$cg/memory.current") >> 20 ))
ballast_mb=$(( LIMIT_MB * 85 / 100 - used_mb ))
(
  echo "$BASHPID" > "$cg/cgroup.procs"
  exec python3 -c "import sys, time; b = b'\x01' * ($ballast_mb << 20); time.sleep(float(sys.argv[1]))" "$BALLAST_S"
) &
wait $! || true
set +e
wait "$run"
rc=$?
set -e
grep -E "memory" "$work/err3" || true
if [ "$rc" = 137 ]; then
  echo "memory-cgroup: the run beside a neighbour was killed (OOM or timeout)" >&2
  exit 1
fi
python3 - "$work/n.json" "$rc" "$LIMIT_MB" "$ballast_mb" "$work/err3" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rc, limit, ballast = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
resumed = "generation resumes" in open(sys.argv[5]).read()
m = s["memory"]
keys = ("delivered", "dead_lettered", "shed", "failed", "in_flight")
balanced = s["generated"] == sum(s[k] for k in keys)
print(f"memory-cgroup: a neighbour took {ballast} MiB of the {limit} MiB limit: exit {rc}, "
      f"held back {m['pressed']} times, {'resumed' if resumed else 'NEVER RESUMED'}, "
      f"generated {s['generated']:,} = delivered {s['delivered']:,} + shed {s['shed']:,}: "
      f"{'balanced' if balanced else 'UNBALANCED'}")
ok = rc == 0 and balanced and s["shed"] == 0 and m["pressed"] >= 1 and resumed
sys.exit(0 if ok else 1)
PY
