#!/usr/bin/env bash
# Five-minute soak of `guidebot serve --http` with its default configuration (INFO logs to a file,
# the SQLite store on): examples/signed_load drives signed interactions from its own process in
# back-to-back slices, alternating /search and extractive /ask, and the server's RSS is read after
# each slice. RSS must stay flat (issue 15: ≤ 30 MB).
#
#   benches/soak.sh [SLICES] [SECONDS_PER_SLICE] [CONNECTIONS]     (defaults: 10 × 30 s, 32)
#   QUESTIONS=tests/eval/dev3.toml (any eval set or a one-question-a-line file)
#
# Prints one RESULT line per slice (rps, latency, errors, rss_kib, and the interaction ids the
# in-memory replay check holds), then the RSS range and the store and log sizes at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SLICES=${1:-10}
SECONDS_PER_SLICE=${2:-30}
CONNECTIONS=${3:-32}
QUESTIONS=${QUESTIONS:-tests/eval/dev3.toml}
PORT=${GUIDEBOT_PORT:-18090}
METRICS_PORT=$((PORT + 1))

SEED=2222222222222222222222222222222222222222222222222222222222222222
source benches/serve_common.sh
start_guidebot $PORT --metrics-addr "127.0.0.1:$METRICS_PORT"
wait_for $PORT
wait_for $METRICS_PORT
PID=$(server_pid $PORT)
echo "start: rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)"
for slice in $(seq 1 "$SLICES"); do
  if [ $((slice % 2)) -eq 1 ]; then COMMAND=search; else COMMAND=ask; fi
  line=$($LOAD --target "http://127.0.0.1:$PORT" --seed $SEED --questions "$QUESTIONS" \
    --command $COMMAND --connections "$CONNECTIONS" --seconds "$SECONDS_PER_SLICE" --warmup 0 \
    --server-pid "$PID" | grep '^RESULT')
  held=$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk '/^guidebot_replay_ids_in_memory / {print $2}')
  echo "slice $slice ($COMMAND, $((slice * SECONDS_PER_SLICE)) s): $line replay_ids_in_memory=${held:-?}"
  echo "$line" | sed -E 's/.*rss_kib=([0-9]+).*/\1/' >>"$WORK/rss"
done
echo "RSS over the soak: $(sort -n "$WORK/rss" | head -1)–$(sort -n "$WORK/rss" | tail -1) KiB;" \
  "log $(stat -c %s "$WORK/guidebot.log") bytes; store $(du -k "$WORK"/*.sqlite* 2>/dev/null | awk '{s+=$1} END {print s}') KiB"
