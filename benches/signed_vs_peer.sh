#!/usr/bin/env bash
# Signed /search (or /ask) throughput of `guidebot serve --http` against the Python peer in
# ../shared/peers, alternating the two servers in one run so both see the same machine. Each
# server runs as its own process with its default configuration (guidebot: INFO logs, the SQLite
# store on); the load comes from examples/signed_load in a third process.
#
#   benches/signed_vs_peer.sh [ROUNDS] [SECONDS] [COMMAND] [CONNECTIONS]
#   PEER_VENV=/path/to/venv (bm25s PyStemmer starlette uvicorn pynacl; see ../shared/peers/README.md)
#   QUESTIONS=tests/eval/dev3.toml (any eval set or a one-question-a-line file)
#
# Prints one RESULT line per server and round, then the median req/s of each and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-15}
COMMAND=${3:-search}
CONNECTIONS=${4:-32}
QUESTIONS=${QUESTIONS:-tests/eval/dev3.toml}
PEER_DIR=${PEER_DIR:-../shared/peers}
PEER_VENV=${PEER_VENV:?set PEER_VENV to a virtualenv with the peer installed (see ../shared/peers/README.md)}

SEED=1111111111111111111111111111111111111111111111111111111111111111
source benches/serve_common.sh
GUIDEBOT_PORT=${GUIDEBOT_PORT:-18080}
PEER_PORT=${PEER_PORT:-18711}

start_guidebot $GUIDEBOT_PORT
DISCORD_PUBLIC_KEY=$PUBLIC_KEY "$PEER_VENV/bin/uvicorn" --app-dir "$PEER_DIR" python_endpoint:app \
  --port $PEER_PORT --log-level warning >"$WORK/peer.log" 2>&1 &
PIDS+=($!)
wait_for $GUIDEBOT_PORT
wait_for $PEER_PORT
GUIDEBOT_PID=$(server_pid $GUIDEBOT_PORT)
PEER_PID=$(pgrep -f "python_endpoint:app --port $PEER_PORT" | head -1)

run() { # name port pid
  local line
  line=$($LOAD --target "http://127.0.0.1:$2" --seed $SEED --questions "$QUESTIONS" \
    --command "$COMMAND" --connections "$CONNECTIONS" --seconds "$SECONDS_PER_RUN" \
    --server-pid "$3" | grep '^RESULT')
  echo "$1 round $round: $line"
  echo "$line" | sed -E 's/.*rps=([0-9.]+).*/\1/' >>"$WORK/$1.rps"
}
for round in $(seq 1 "$ROUNDS"); do
  run guidebot $GUIDEBOT_PORT "$GUIDEBOT_PID"
  # The peer answers /search only; /ask runs are compared with its /search.
  COMMAND_SAVED=$COMMAND; COMMAND=search
  run peer $PEER_PORT "$PEER_PID"
  COMMAND=$COMMAND_SAVED
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
G=$(median "$WORK/guidebot.rps")
P=$(median "$WORK/peer.rps")
LOG_BYTES=$(stat -c %s "$WORK/guidebot.log")
HANDLED=$(grep -c "interaction handled" "$WORK/guidebot.log" || true)
echo "median req/s: guidebot $G, peer $P, ratio $(awk -v g="$G" -v p="$P" 'BEGIN {printf "%.2f", g/p}')"
echo "guidebot log: $LOG_BYTES bytes for $HANDLED interactions logged ($(awk -v b="$LOG_BYTES" -v n="$HANDLED" 'BEGIN {if (n > 0) printf "%.0f", b * 1000 / n; else print "n/a"}') bytes per 1,000)"
