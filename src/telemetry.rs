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

/// Bytes of log lines held for the writer thread before new lines are dropped: a burst of logs, or
/// a stalled stdout, never delays an answer (about 16,000 lines of 250 bytes).
const LOG_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// The writer thread writes what has gathered at most this long after the first line of a batch:
/// at thousands of lines a second it wakes about twenty times a second, not once per line.
const LOG_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Once this many bytes are waiting, the writer thread is woken before the interval is up.
const LOG_FLUSH_BYTES: usize = 64 * 1024;

/// Keeps the background log writer alive; dropping it writes what is buffered and stops the thread.
pub struct LogGuard {
    shared: std::sync::Arc<LogShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Ok(mut buffer) = self.shared.buffer.lock() {
            buffer.closed = true;
        }
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Log lines waiting for the writer thread.
#[derive(Default)]
struct LogBuffer {
    lines: Vec<u8>,
    /// Lines dropped since the last write because the buffer was full.
    dropped: u64,
    /// A warning or an error is waiting: write it without waiting for the interval.
    urgent: bool,
    /// The guard was dropped: write everything and stop.
    closed: bool,
}

struct LogShared {
    buffer: std::sync::Mutex<LogBuffer>,
    wake: std::sync::Condvar,
}

/// The `MakeWriter` of the server logs: each formatted line is appended to a shared buffer (no
/// allocation, no system call, no thread wake-up per line); one thread writes the buffer to
/// stdout in one call per batch. (`tracing-appender`, used before, sent every line as its own
/// allocation through a channel and woke its thread for most of them.)
#[derive(Clone)]
struct BatchedStdout {
    shared: std::sync::Arc<LogShared>,
}

/// Writes one formatted event into the shared buffer.
struct LineSink<'a> {
    shared: &'a LogShared,
    urgent: bool,
}

impl std::io::Write for LineSink<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let Ok(mut buffer) = self.shared.buffer.lock() else {
            return Ok(line.len());
        };
        if buffer.lines.len() + line.len() > LOG_BUFFER_BYTES {
            buffer.dropped += 1;
            return Ok(line.len());
        }
        let was_empty = buffer.lines.is_empty();
        let before = buffer.lines.len();
        buffer.lines.extend_from_slice(line);
        let crossed = before < LOG_FLUSH_BYTES && buffer.lines.len() >= LOG_FLUSH_BYTES;
        let urgent = self.urgent && !buffer.urgent;
        buffer.urgent |= self.urgent;
        drop(buffer);
        // The writer sleeps until a batch starts, and then until the interval is up: wake it
        // only at those moments (a notify is a system call).
        if was_empty || crossed || urgent {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStdout {
    type Writer = LineSink<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineSink {
            shared: &self.shared,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LineSink {
            shared: &self.shared,
            urgent: *meta.level() <= tracing::Level::WARN,
        }
    }
}

/// Starts the writer thread: it waits for a first line, gathers lines for up to
/// [`LOG_FLUSH_INTERVAL`] (less when a warning arrives or [`LOG_FLUSH_BYTES`] are waiting), then
/// writes them to `out` in one call. `None` when the thread cannot be started.
fn start_log_writer(
    mut out: impl std::io::Write + Send + 'static,
) -> Option<(BatchedStdout, LogGuard)> {
    let shared = std::sync::Arc::new(LogShared {
        buffer: std::sync::Mutex::new(LogBuffer::default()),
        wake: std::sync::Condvar::new(),
    });
    let thread = {
        let shared = std::sync::Arc::clone(&shared);
        std::thread::Builder::new()
            .name("guidebot-log".into())
            .spawn(move || {
                let mut spare = Vec::new();
                loop {
                    let Ok(mut buffer) = shared.buffer.lock() else {
                        return;
                    };
                    while buffer.lines.is_empty() && buffer.dropped == 0 && !buffer.closed {
                        buffer = match shared.wake.wait(buffer) {
                            Ok(buffer) => buffer,
                            Err(_) => return,
                        };
                    }
                    let deadline = std::time::Instant::now() + LOG_FLUSH_INTERVAL;
                    while !buffer.closed && !buffer.urgent && buffer.lines.len() < LOG_FLUSH_BYTES {
                        let now = std::time::Instant::now();
                        if now >= deadline {
                            break;
                        }
                        buffer = match shared.wake.wait_timeout(buffer, deadline - now) {
                            Ok((buffer, _)) => buffer,
                            Err(_) => return,
                        };
                    }
                    std::mem::swap(&mut buffer.lines, &mut spare);
                    let dropped = std::mem::take(&mut buffer.dropped);
                    let closed = buffer.closed;
                    buffer.urgent = false;
                    drop(buffer);
                    // Write errors (a closed pipe) are ignored: logging must not stop the server.
                    let _ = out.write_all(&spare);
                    if dropped > 0 {
                        let _ = writeln!(
                            out,
                            "guidebot: {dropped} log lines dropped (the log writer fell behind)"
                        );
                    }
                    let _ = out.flush();
                    // Keep the spare's capacity for the next batch, unless a burst made it big.
                    spare.clear();
                    if spare.capacity() > 4 * LOG_FLUSH_BYTES {
                        spare = Vec::new();
                    }
                    if closed {
                        return;
                    }
                }
            })
            .ok()?
    };
    Some((
        BatchedStdout {
            shared: std::sync::Arc::clone(&shared),
        },
        LogGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// Logs for the long-running server modes: `level` (the configured `log.level`; `RUST_LOG`
/// overrides), one JSON object per line on stdout when `json` (for log shippers), human-readable
/// otherwise, with colours only when stdout is a terminal. Lines are written by a background
/// thread in batches; when it falls behind, new lines are dropped (and the drop is logged) rather
/// than making a request wait. Each interaction runs in an `interaction` span (id, kind, command);
/// user text and tokens are never logged at info level. Keep the returned guard until exit (it
/// writes what is buffered); `None` when logging was already set up.
pub fn init_for_server(format: LogFormat, level: &str) -> Option<LogGuard> {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::stdout().is_terminal();
    match start_log_writer(std::io::stdout()) {
        Some((writer, guard)) => install(format, ansi, filter, writer).map(|()| guard),
        None => {
            // No thread for the writer (the process is out of threads): log straight to stdout.
            let _ = install(format, ansi, filter, std::io::stdout);
            None
        }
    }
}

/// Installs the server's subscriber writing through `writer`; `None` when one was already set.
fn install<W>(format: LogFormat, ansi: bool, filter: EnvFilter, writer: W) -> Option<()>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
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
    installed.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A `Write` into memory that the test can read while the writer thread holds it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(captured: &Captured) -> String {
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_are_written_within_the_interval_and_all_of_them_on_drop() {
        use tracing_subscriber::fmt::MakeWriter;
        let captured = Captured::default();
        let (writer, guard) = start_log_writer(captured.clone()).unwrap();
        writer.make_writer().write_all(b"first\n").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !text(&captured).contains("first") {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was never written"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for n in 0..1_000 {
            writer
                .make_writer()
                .write_all(format!("line {n}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let written = text(&captured);
        assert_eq!(written.lines().count(), 1_001, "{written}");
        assert!(written.ends_with("line 999\n"));
    }

    #[test]
    fn a_full_buffer_drops_lines_and_says_how_many() {
        use tracing_subscriber::fmt::MakeWriter;
        // A writer that blocks until released, so the buffer fills up.
        struct Stalled(Arc<Mutex<()>>, Captured);
        impl Write for Stalled {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                let _wait = self.0.lock().unwrap();
                self.1.write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new(Mutex::new(()));
        let captured = Captured::default();
        let held = gate.lock().unwrap();
        let (writer, guard) =
            start_log_writer(Stalled(Arc::clone(&gate), captured.clone())).unwrap();
        // The first batch takes the writer into the stalled write; everything after queues.
        writer.make_writer().write_all(b"start\n").unwrap();
        std::thread::sleep(LOG_FLUSH_INTERVAL * 3);
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        let fits = LOG_BUFFER_BYTES / line.len();
        for _ in 0..fits + 10 {
            writer.make_writer().write_all(&line).unwrap();
        }
        drop(held);
        drop(guard);
        let written = text(&captured);
        assert!(written.starts_with("start\n"));
        assert!(
            written.contains("guidebot: 10 log lines dropped"),
            "{}",
            &written[written.len().saturating_sub(200)..]
        );
        assert_eq!(written.lines().filter(|l| l.starts_with('x')).count(), fits);
    }
}
