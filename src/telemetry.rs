//! Logging setup: human-readable logs on stderr for the CLI, JSON when configured for servers.

use tracing_subscriber::EnvFilter;

/// Logs for CLI commands: warnings by default (stdout stays clean for answers and JSON), more with
/// `RUST_LOG=info`.
pub fn init_for_cli() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
