#!/usr/bin/env bash
# Server CPU per request of `guidebot serve --http` with its default configuration (INFO logs to a
# file, the SQLite store on), optionally alternating with an older build in the same run: for each
# round and build, a fresh server (a new SQLite file), examples/signed_load driving signed
# interactions from its own process, and `perf stat -e task-clock -p PID` on the server for
# SECONDS after a second and a half of warm-up (and the server's context switches). Requests are counted from guidebot_requests_total
# in /metrics just before and after perf, so the CPU is divided by the requests served in the
# same interval.
#
#   benches/cpu_per_request.sh [ROUNDS] [SECONDS] [COMMAND] [CONNECTIONS]   (3, 10, search, 32)
#   OLD_BIN=/path/to/older/guidebot    also measure this build, alternating (old first)
#   QUESTIONS=tests/eval/dev3.toml     (any eval set or a one-question-a-line file)
#
# Prints one line per run (µs of server CPU per request, req/s, p99, RSS), then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-10}
COMMAND=${3:-search}
CONNECTIONS=${4:-32}
QUESTIONS=${QUESTIONS:-tests/eval/dev3.toml}
PORT=${GUIDEBOT_PORT:-18100}
METRICS_PORT=$((PORT + 1))

SEED=3333333333333333333333333333333333333333333333333333333333333333
source benches/serve_common.sh
NAMES=(new)
declare -A BINS=([new]=$BIN)
if [ -n "${OLD_BIN:-}" ]; then
  NAMES=(old new)
  BINS[old]=$(realpath "$OLD_BIN")
fi

requests() {
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^guidebot_requests_total/ {s += $2} END {printf "%d", s}'
}

measure() { # name
  rm -f "$WORK"/guidebot.sqlite*
  BIN_PATH=${BINS[$1]} start_guidebot "$PORT" --metrics-addr "127.0.0.1:$METRICS_PORT"
  wait_for "$PORT"
  wait_for "$METRICS_PORT"
  local pid
  pid=$(server_pid "$PORT")
  $LOAD --target "http://127.0.0.1:$PORT" --seed $SEED --questions "$QUESTIONS" \
    --command "$COMMAND" --connections "$CONNECTIONS" --seconds $((SECONDS_PER_RUN + 2)) \
    --warmup 1 --server-pid "$pid" >"$WORK/load.out" &
  local load=$!
  sleep 1.5
  local before after clock_ms switches
  before=$(requests)
  perf stat -x, -e task-clock,context-switches -p "$pid" -o "$WORK/perf.out" -- \
    sleep "$SECONDS_PER_RUN"
  after=$(requests)
  clock_ms=$(awk -F, '$3 == "task-clock" {print $1}' "$WORK/perf.out")
  switches=$(awk -F, '$3 == "context-switches" {print $1}' "$WORK/perf.out")
  wait "$load"
  kill "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  local served=$((after - before))
  local micros
  micros=$(awk -v ms="$clock_ms" -v n="$served" 'BEGIN {printf "%.1f", ms * 1000 / n}')
  echo "$micros" >>"$WORK/$1.micros"
  echo "$1 round $round: ${micros} µs of server CPU per request ($served requests," \
    "${clock_ms} ms task-clock, $(awk -v s="$switches" -v n="$served" 'BEGIN {printf "%.2f", s / n}')" \
    "context switches per request); $(grep '^RESULT' "$WORK/load.out")"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for name in "${NAMES[@]}"; do measure "$name"; done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for name in "${NAMES[@]}"; do
  echo "median µs of server CPU per $COMMAND request, $name: $(median "$WORK/$name.micros")"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
