#!/usr/bin/env bash
# Five-minute soak of `guidebot serve --http` with its default configuration (INFO logs to a file,
# the SQLite store on): examples/signed_load drives signed interactions from its own process in
# back-to-back slices, alternating /search and extractive /ask, and the server's RSS is read after
# each slice. RSS must stay flat (issue 15: ≤ 30 MB).
#
#   benches/soak.sh [SLICES] [SECONDS_PER_SLICE] [CONNECTIONS]     (defaults: 10 × 30 s, 32)
#   QUESTIONS=tests/eval/dev3.toml (any eval set or a one-question-a-line file)
#
# Prints one RESULT line per slice (rps, latency, errors, rss_kib), then the RSS range and the
# store and log sizes at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SLICES=${1:-10}
SECONDS_PER_SLICE=${2:-30}
CONNECTIONS=${3:-32}
QUESTIONS=${QUESTIONS:-tests/eval/dev3.toml}
PORT=${GUIDEBOT_PORT:-18090}

cargo build --release --quiet --bin guidebot --example signed_load
BIN=target/release/guidebot
LOAD=target/release/examples/signed_load
SEED=2222222222222222222222222222222222222222222222222222222222222222
PUBLIC_KEY=$($LOAD --seed $SEED --print-public-key)
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$WORK" && DISCORD_PUBLIC_KEY=$PUBLIC_KEY exec "$OLDPWD/$BIN" --corpus "$OLDPWD/corpus" \
  --index "$WORK/index" serve --http 127.0.0.1:$PORT >"$WORK/guidebot.log" 2>&1) &
SERVER=$!
for _ in $(seq 1 300); do
  if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then break; fi
  sleep 0.1
done
PID=$(pgrep -f "serve --http 127.0.0.1:$PORT" | head -1)
echo "start: rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)"
for slice in $(seq 1 "$SLICES"); do
  if [ $((slice % 2)) -eq 1 ]; then COMMAND=search; else COMMAND=ask; fi
  line=$($LOAD --target "http://127.0.0.1:$PORT" --seed $SEED --questions "$QUESTIONS" \
    --command $COMMAND --connections "$CONNECTIONS" --seconds "$SECONDS_PER_SLICE" --warmup 0 \
    --server-pid "$PID" | grep '^RESULT')
  echo "slice $slice ($COMMAND, $((slice * SECONDS_PER_SLICE)) s): $line"
  echo "$line" | sed -E 's/.*rss_kib=([0-9]+).*/\1/' >>"$WORK/rss"
done
echo "RSS over the soak: $(sort -n "$WORK/rss" | head -1)–$(sort -n "$WORK/rss" | tail -1) KiB;" \
  "log $(stat -c %s "$WORK/guidebot.log") bytes; store $(du -k "$WORK"/*.sqlite* 2>/dev/null | awk '{s+=$1} END {print s}') KiB"
