# Shared by the serving benchmarks (sourced, not run): builds guidebot and the load generator,
# makes a signing key and a work folder cleaned up on exit, starts `guidebot serve --http` with its
# default configuration, and waits for a port to accept connections.
#
#   SEED=<64 hex digits> source benches/serve_common.sh   (from the repository root)
#   start_guidebot PORT [ARGS...]  # starts the server ($BIN, or BIN_PATH given); log $WORK/guidebot.log
#   wait_for PORT              # until the port accepts connections (30 s at most)
#   server_pid PORT            # the pid of `guidebot serve` listening on PORT
#
# Honours CARGO_TARGET_DIR; GUIDEBOT_BIN=/path/to/guidebot serves another build (an older commit's).

TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin guidebot --example signed_load
BIN=$(realpath "${GUIDEBOT_BIN:-$TARGET_DIR/release/guidebot}")
LOAD=$(realpath "$TARGET_DIR/release/examples/signed_load")
PUBLIC_KEY=$($LOAD --seed "$SEED" --print-public-key)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# guidebot with its defaults: logs to a file (as a service manager would collect them), the
# SQLite store in the work folder. BIN_PATH (a binary) overrides $BIN for this start; extra
# arguments go to `serve` (e.g. --metrics-addr).
start_guidebot() {
  local port=$1 bin=${BIN_PATH:-$BIN}
  shift
  (cd "$WORK" && DISCORD_PUBLIC_KEY=$PUBLIC_KEY exec "$bin" --corpus "$OLDPWD/corpus" \
    --index "$WORK/index" serve --http "127.0.0.1:$port" "$@" >"$WORK/guidebot.log" 2>&1) &
  PIDS+=($!)
}

wait_for() {
  for _ in $(seq 1 300); do
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not start; see $WORK" >&2
  exit 1
}

server_pid() {
  pgrep -f "serve --http 127.0.0.1:$1" | head -1
}
