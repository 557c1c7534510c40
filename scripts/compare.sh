#!/usr/bin/env bash
# Every side-by-side comparison in one run, same machine, same event size per pair:
#   Kafka: spate vs a bare rdkafka loop (with and without headers) vs kcat -P  (compare-kafka.sh)
#   TCP:   spate's TCP sink vs syslog-ng's loggen into one receiver           (compare-tcp.sh)
# Needs: apt-get install -y kcat syslog-ng-core time
# Usage: scripts/compare.sh [COUNT]     (default 2000000 events each)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-2000000}
echo "### Kafka"
scripts/compare-kafka.sh "$COUNT"
echo
echo "### TCP"
scripts/compare-tcp.sh "$COUNT" 200
