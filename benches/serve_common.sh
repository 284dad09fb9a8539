# Shared by the serving benchmarks (sourced, not run): builds guidebot and the load generator,
# makes a signing key and a work folder cleaned up on exit, starts `guidebot serve --http` with its
# default configuration, and waits for a port to accept connections.
#
#   SEED=<64 hex digits> source benches/serve_common.sh   (from the repository root)
#   start_guidebot PORT        # starts the server; its log is $WORK/guidebot.log
#   wait_for PORT              # until the port accepts connections (30 s at most)
#   server_pid PORT            # the pid of `guidebot serve` listening on PORT

cargo build --release --quiet --bin guidebot --example signed_load
BIN=target/release/guidebot
LOAD=target/release/examples/signed_load
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
# SQLite store in the work folder.
start_guidebot() {
  (cd "$WORK" && DISCORD_PUBLIC_KEY=$PUBLIC_KEY exec "$OLDPWD/$BIN" --corpus "$OLDPWD/corpus" \
    --index "$WORK/index" serve --http "127.0.0.1:$1" >"$WORK/guidebot.log" 2>&1) &
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
