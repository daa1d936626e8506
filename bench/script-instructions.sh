#!/usr/bin/env bash
# Instructions redis-server runs per admission (callgrind: unlike CPU time, the load of a shared
# machine does not move it). Needs valgrind (apt-get install valgrind).
#   bash bench/script-instructions.sh fast|batch|queued|peers
#     the difference between a run of 1300 and one of 300 admissions of bench/script-load.ts, over 1000
#   bash bench/script-instructions.sh saturation
#     bench/saturation-load.ts (4 processes x 32 callers at 100/s): a warm-up run loads the scripts,
#     then a run of 8 s is counted, over its admissions
# REDIS_SERVER: the redis-server to run (default: the one on PATH; a build with symbols lets
# callgrind_annotate name the functions, see CALLGRIND_KEEP)
# CALLGRIND_KEEP=DIR: keep the callgrind output of each counted run there
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-fast}
server=${REDIS_SERVER:-$(command -v redis-server)}
# count NAME WARM-UP LOAD: redis-server under callgrind, WARM-UP run uncounted, LOAD counted; prints
# the instructions, the script calls (FCALL) LOAD made, then LOAD's output
count() {
  local port=$((20000 + RANDOM % 10000)) out loaded calls
  out=$(mktemp -d)/cg.out
  valgrind --tool=callgrind --callgrind-out-file="$out" "$server" --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.3; done
  export REDIS_URL="redis://127.0.0.1:$port"
  if [ -n "$2" ]; then eval "$2" >/dev/null; sleep 1; fi # the warm-up's processes gone
  callgrind_control -z "$pid" >/dev/null 2>&1
  redis-cli -p "$port" config resetstat >/dev/null
  loaded=$(eval "$3")
  callgrind_control -d "$pid" >/dev/null 2>&1
  calls=$(redis-cli -p "$port" info commandstats | sed -n 's/^cmdstat_fcall:calls=\([0-9]*\).*/\1/p')
  redis-cli -p "$port" shutdown nosave >/dev/null || true
  wait "$pid" || true
  if [ -n "${CALLGRIND_KEEP:-}" ]; then mkdir -p "$CALLGRIND_KEEP"; cp "$out.1" "$CALLGRIND_KEEP/$1.out"; fi
  echo "$(awk '/^summary/ { print $2 }' "$out.1") ${calls:-0} $loaded"
}
if [ "$mode" = saturation ]; then
  read -r total calls admissions < <(count saturation 'T=2000 NS=warm-up npx tsx bench/saturation-load.ts' 'npx tsx bench/saturation-load.ts')
  # the count moves with how many admissions a call carries, which depends on timing
  echo "saturation: $(( total / admissions )) instructions per admission in redis-server ($admissions admissions, $(( calls * 100 / admissions )) script calls per 100)"
else
  read -r small _ _ < <(count small '' "npx tsx bench/script-load.ts $mode 300 >/dev/null")
  read -r large _ _ < <(count large '' "npx tsx bench/script-load.ts $mode 1300 >/dev/null")
  echo "$mode: $(( (large - small) / 1000 )) instructions per admission in redis-server"
fi
