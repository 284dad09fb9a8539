//! Logging setup: human-readable logs on stderr for the CLI, JSON when configured for servers.

use serde::Serialize;
use tracing_subscriber::EnvFilter;

/// Log output format of the server modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// Reads `text` or `json`, or says what to write instead.
    pub fn parse(raw: &str) -> Result<LogFormat, String> {
        match raw.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("use \"text\" or \"json\"".into()),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Checks a log filter (`info`, `guidebot=debug,info`), or says what to write instead.
pub fn parse_level(raw: &str) -> Result<String, String> {
    EnvFilter::try_new(raw)
        .map(|_| raw.to_string())
        .map_err(|error| {
            format!("not a log filter ({error}); use e.g. \"info\" or \"guidebot=debug,info\"")
        })
}

/// Logs for CLI commands: warnings by default (stdout stays clean for answers and JSON), more with
/// `RUST_LOG=info`.
pub fn init_for_cli() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Lines the log writer buffers before it drops new ones: a burst of logs never delays an answer.
const LOG_BUFFER_LINES: usize = 16_384;

/// Bytes of log lines the writer thread gathers into one write call.
const LOG_WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Keeps the background log writer alive; dropping it flushes what is buffered.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Logs for the long-running server modes: `level` (the configured `log.level`; `RUST_LOG`
/// overrides), one JSON object per line on stdout when `json` (for log shippers), human-readable
/// otherwise, with colours only when stdout is a terminal. Lines are written by a background
/// thread (`tracing-appender`); when it falls behind, new lines are dropped rather than making a
/// request wait. Each interaction runs in an `interaction` span (id, kind, command); user text and
/// tokens are never logged at info level. Keep the returned guard until exit (it flushes the
/// buffer); `None` when logging was already set up.
pub fn init_for_server(format: LogFormat, level: &str) -> Option<LogGuard> {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::stdout().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .lossy(true)
        // The writer thread flushes after each batch of lines it takes from the queue: buffered,
        // a burst of lines goes out in one write call instead of one each (stdout alone flushes
        // at every newline).
        .finish(std::io::BufWriter::with_capacity(
            LOG_WRITE_BUFFER_BYTES,
            std::io::stdout(),
        ));
    let installed = if format == LogFormat::Json {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init()
    } else {
        tracing_subscriber::fmt()
            .with_ansi(ansi)
            .with_env_filter(filter)
            .with_writer(writer)
            .try_init()
    };
    installed.ok().map(|()| guard)
}
