#!/usr/bin/env bash
# Instructions redis-server runs per admission at saturation (callgrind: the load of a shared
# machine does not move it): bench/saturation-load.ts (4 processes x 32 callers at 100/s) once
# to load the scripts and warm up, then the count is zeroed and a second run of 8 s is counted.
# Needs valgrind (apt-get install valgrind).
#   bash bench/saturation-instructions.sh
# REDIS_SERVER: the redis-server to run (default: the one on PATH; a build with symbols lets
# callgrind_annotate name the functions); CALLGRIND_KEEP=FILE keeps the callgrind output
set -euo pipefail
cd "$(dirname "$0")/.."
server=${REDIS_SERVER:-$(command -v redis-server)}
port=$((20000 + RANDOM % 10000))
out=$(mktemp -d)/cg.out
valgrind --tool=callgrind --callgrind-out-file="$out" "$server" --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.3; done
REDIS_URL="redis://127.0.0.1:$port" T=2000 NS=warm-up npx tsx bench/saturation-load.ts >/dev/null
sleep 1 # the warm-up's processes gone
callgrind_control -z "$pid" >/dev/null 2>&1
admissions=$(REDIS_URL="redis://127.0.0.1:$port" npx tsx bench/saturation-load.ts)
callgrind_control -d "$pid" >/dev/null 2>&1
redis-cli -p "$port" shutdown nosave >/dev/null || true
wait "$pid" || true
if [ -n "${CALLGRIND_KEEP:-}" ]; then cp "$out.1" "$CALLGRIND_KEEP"; fi
total=$(awk '/^summary/ { print $2 }' "$out.1")
echo "saturation: $(( total / admissions )) instructions per admission in redis-server ($admissions admissions)"
