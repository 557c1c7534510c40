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
# the limit; a budget above the limit must be refused (exit 2). Loopback only; bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPATE_BIN:-target/release/spate}
LIMIT_MB=${LIMIT_MB:-320}
SIZE=${SIZE:-262144}
STALL_S=${STALL_S:-3}
DURATION=${DURATION:-8s}

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
python3 - "$work/s.json" "$rc" "$LIMIT_MB" <<'PY'
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
