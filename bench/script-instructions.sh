#!/usr/bin/env bash
# Instructions redis-server runs per admission (callgrind: unlike CPU time, the load of a shared
# machine does not move it): the difference between a run of 1300 and one of 300 admissions of
# bench/script-load.ts, over 1000. Needs valgrind (apt-get install valgrind).
#   bash bench/script-instructions.sh fast|batch|queued|peers
# REDIS_SERVER: the redis-server to run (default: the one on PATH; a build with symbols lets
# callgrind_annotate name the functions, see CALLGRIND_KEEP)
# CALLGRIND_KEEP=DIR: keep the callgrind output of both runs there (small.out, large.out)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-fast}
server=${REDIS_SERVER:-$(command -v redis-server)}
count() {
  local port=$((20000 + RANDOM % 10000)) out
  out=$(mktemp -d)/cg.out
  valgrind --tool=callgrind --callgrind-out-file="$out" "$server" --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.3; done
  callgrind_control -z "$pid" >/dev/null
  REDIS_URL="redis://127.0.0.1:$port" npx tsx bench/script-load.ts "$mode" "$1" >/dev/null
  callgrind_control -d "$pid" >/dev/null
  redis-cli -p "$port" shutdown nosave >/dev/null || true
  wait "$pid" || true
  if [ -n "${CALLGRIND_KEEP:-}" ]; then mkdir -p "$CALLGRIND_KEEP"; cp "$out.1" "$CALLGRIND_KEEP/$2.out"; fi
  awk '/^summary/ { print $2 }' "$out.1"
}
small=$(count 300 small)
large=$(count 1300 large)
echo "$mode: $(( (large - small) / 1000 )) instructions per admission in redis-server"
