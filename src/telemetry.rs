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

/// Logs for the long-running server modes: `info` by default (`RUST_LOG` overrides), one JSON object
/// per line on stdout when `json` (for log shippers), human-readable otherwise. Each interaction
/// runs in an `interaction` span (id, kind, command); user text and tokens are never logged at
/// info level. Safe to call more than once (later calls do nothing).
pub fn init_for_server(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if json {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stdout)
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stdout)
            .try_init();
    }
}
