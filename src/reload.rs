//! Live corpus reload: rebuild the index in the background when the guides change and swap the
//! serving engine atomically, so maintainers update the guides without downtime.
//!
//! Triggers: a file watcher on the corpus folder (debounced), SIGHUP (`systemctl reload`,
//! `kill -HUP`), and [`ReloadTrigger::request`] (for an admin-only `/reload`, and tests). Reloads
//! run one at a time; requests queued during a reload are answered by the next one.
//!
//! Invariants: the new engine is built completely (`Engine::open` on a blocking thread, index
//! generation renamed into place) before [`EngineHandle::replace`] swaps it in; requests in flight
//! keep the snapshot they took. A failed reload (a broken guide) changes nothing that serves: the
//! old engine stays, and the error is logged, recorded in [`ReloadStatus`] (for metrics) and
//! returned to whoever asked. Shutdown never waits for a rebuild: the reloader stops at once and
//! the rebuild is abandoned: it is never swapped in. Its thread may still finish before the
//! process exits and publish a complete generation in the index folder (the next start opens it),
//! or be cut off, leaving its build folder like a killed build's.

use crate::engine::{Engine, EngineConfig, EngineHandle};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// What started a reload; shown in logs, the status and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// [`ReloadTrigger::request`] (an admin command, a test).
    Request,
    /// The process received SIGHUP.
    Signal,
    /// The corpus folder changed.
    Watcher,
}

impl TriggerKind {
    /// Stable lowercase name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Request => "request",
            TriggerKind::Signal => "sighup",
            TriggerKind::Watcher => "watcher",
        }
    }
}

/// The outcome of a successful reload, for the admin who asked and for logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadReport {
    /// What started it.
    pub trigger: TriggerKind,
    /// Fingerprint served before the swap.
    pub previous_fingerprint: String,
    /// Fingerprint served now.
    pub fingerprint: String,
    /// False when the corpus had not changed (the same content was reloaded).
    pub changed: bool,
    /// Passages in the new index.
    pub passages: u64,
    /// Guides in the new corpus.
    pub guides: usize,
    /// Time to load the corpus and build or open the index.
    pub elapsed_ms: f64,
}

/// The reloader's state, published on a `watch` channel: metrics export it, `/readyz` may read it,
/// tests await it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReloadStatus {
    /// Fingerprint of the engine serving now.
    pub fingerprint: String,
    /// Successful reloads (engine swapped).
    pub successes: u64,
    /// Failed reloads (old engine kept).
    pub failures: u64,
    /// Unix time (seconds) of the last successful reload.
    pub last_success_unix: Option<u64>,
    /// The error of the last reload if it failed; cleared by the next success.
    pub last_error: Option<String>,
    /// Unix time (seconds) of the last failure.
    pub last_failure_unix: Option<u64>,
    /// True while a rebuild runs.
    pub in_progress: bool,
    /// The triggers armed so far (`request`, `sighup`, `watcher`); a test waits for these
    /// before editing a file or sending a signal.
    pub listening: Vec<&'static str>,
}

type Reply = oneshot::Sender<Result<ReloadReport, String>>;

/// Asks for reloads; cheap to clone. Exists so an admin-only `/reload`, tests, or other code can
/// trigger a rebuild and learn its result.
#[derive(Debug, Clone)]
pub struct ReloadTrigger {
    requests: mpsc::UnboundedSender<Reply>,
    status: watch::Receiver<ReloadStatus>,
}

/// The receiving end of [`ReloadTrigger`]: give it to [`watch_and_reload`].
#[derive(Debug)]
pub struct ReloadRequests {
    requests: mpsc::UnboundedReceiver<Reply>,
    status: watch::Sender<ReloadStatus>,
}

/// Creates a trigger and the requests end for [`watch_and_reload`]; `handle` gives the status its
/// initial fingerprint.
pub fn reload_channel(handle: &EngineHandle) -> (ReloadTrigger, ReloadRequests) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (status_tx, status_rx) = watch::channel(ReloadStatus {
        fingerprint: handle.current().fingerprint().to_string(),
        ..ReloadStatus::default()
    });
    (
        ReloadTrigger {
            requests: tx,
            status: status_rx,
        },
        ReloadRequests {
            requests: rx,
            status: status_tx,
        },
    )
}

impl ReloadTrigger {
    /// Asks for a reload and waits for its result: the report, or the error text (naming the file
    /// and line of a broken guide). The old engine keeps serving on error. An error also comes back
    /// when the reloader is not running.
    pub fn request(&self) -> impl Future<Output = Result<ReloadReport, String>> + Send + 'static {
        let (reply, result) = oneshot::channel();
        let sent = self.requests.send(reply).is_ok();
        async move {
            if !sent {
                return Err("the reloader is not running".to_string());
            }
            result
                .await
                .unwrap_or_else(|_| Err("the reloader stopped before answering".to_string()))
        }
    }

    /// A receiver of the reload status (clone it freely).
    pub fn status(&self) -> watch::Receiver<ReloadStatus> {
        self.status.clone()
    }
}

/// Which triggers [`watch_and_reload`] arms besides programmatic requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOptions {
    /// Watch the corpus folder and rebuild after this quiet time (`None`: no watcher).
    pub watch_debounce: Option<Duration>,
    /// Reload on SIGHUP (Unix only; ignored elsewhere).
    pub sighup: bool,
}

/// Runs the reloader until `shutdown` completes: waits for triggers and swaps in a freshly built
/// engine on each. Never returns early on a failed reload or a watcher that cannot start (both are
/// logged and recorded in the status).
pub async fn watch_and_reload(
    handle: Arc<EngineHandle>,
    config: EngineConfig,
    options: ReloadOptions,
    requests: ReloadRequests,
    shutdown: impl Future<Output = ()>,
) {
    let ReloadRequests {
        requests: mut request_rx,
        status,
    } = requests;
    let mut listening = vec![TriggerKind::Request.as_str()];

    let (fs_tx, mut fs_rx) = mpsc::unbounded_channel::<()>();
    let _watcher = match options.watch_debounce {
        Some(_) => match start_watcher(&config, fs_tx) {
            Ok(watcher) => {
                listening.push(TriggerKind::Watcher.as_str());
                Some(watcher)
            }
            Err(error) => {
                tracing::error!(corpus = %config.corpus_dir.display(), %error, "cannot watch the corpus folder; reload with SIGHUP instead");
                status.send_modify(|status| {
                    status.last_error = Some(format!(
                        "cannot watch {}: {error}",
                        config.corpus_dir.display()
                    ))
                });
                None
            }
        },
        None => {
            drop(fs_tx);
            None
        }
    };
    let debounce = options.watch_debounce.unwrap_or_default();

    let mut hangups = if options.sighup {
        match hangup_stream() {
            Ok(stream) => {
                listening.push(TriggerKind::Signal.as_str());
                Some(stream)
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP");
                None
            }
        }
    } else {
        None
    };
    tracing::info!(triggers = ?listening, "live reload listening");
    status.send_modify(|status| status.listening = listening.clone());

    tokio::pin!(shutdown);
    let mut requests_open = true;
    let mut fs_open = options.watch_debounce.is_some();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let trigger = tokio::select! {
            () = &mut shutdown => break,
            request = request_rx.recv(), if requests_open => match request {
                Some(reply) => {
                    let mut replies = vec![reply];
                    while let Ok(more) = request_rx.try_recv() {
                        replies.push(more);
                    }
                    let reload = reload_once(&handle, &config, &status, TriggerKind::Request);
                    let Some(result) = until_shutdown(reload, &mut shutdown).await else {
                        break;
                    };
                    for reply in replies {
                        let _ = reply.send(result.clone());
                    }
                    continue;
                }
                // Every trigger was dropped; keep serving the other triggers.
                None => {
                    requests_open = false;
                    continue;
                }
            },
            event = fs_rx.recv(), if fs_open => {
                match event {
                    Some(()) => deadline = Some(tokio::time::Instant::now() + debounce),
                    None => fs_open = false,
                }
                continue;
            },
            () = sleep_until_deadline(deadline) => {
                deadline = None;
                // Drop events that arrived during the quiet time; the rebuild reads them all.
                while fs_rx.try_recv().is_ok() {}
                TriggerKind::Watcher
            },
            () = next_hangup(&mut hangups) => TriggerKind::Signal,
        };
        let reload = reload_once(&handle, &config, &status, trigger);
        if until_shutdown(reload, &mut shutdown).await.is_none() {
            break;
        }
    }
    tracing::debug!("reloader stopped");
}

/// Runs `reload` unless `shutdown` completes first; `None` then. Shutdown never waits for a
/// rebuild (a big corpus can take minutes): the rebuild is abandoned on its blocking thread and
/// goes nowhere, since only a finished reload swaps the engine and `CURRENT`, and a half-written
/// build folder is what a killed build leaves too (a later build removes it).
async fn until_shutdown<T>(
    reload: impl Future<Output = T>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<T> {
    tokio::select! {
        () = shutdown.as_mut() => {
            tracing::info!("shutdown during a reload: the rebuild is abandoned, the previous index stays live");
            None
        }
        result = reload => Some(result),
    }
}

async fn sleep_until_deadline(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Rebuilds once and swaps on success; records the outcome in the status either way.
async fn reload_once(
    handle: &EngineHandle,
    config: &EngineConfig,
    status: &watch::Sender<ReloadStatus>,
    trigger: TriggerKind,
) -> Result<ReloadReport, String> {
    status.send_modify(|status| status.in_progress = true);
    let started = Instant::now();
    let previous_fingerprint = handle.current().fingerprint().to_string();
    let build_config = config.clone();
    let built = tokio::task::spawn_blocking(move || Engine::open(&build_config)).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let now = unix_now();
    match built {
        Ok(Ok(engine)) => {
            let report = ReloadReport {
                trigger,
                fingerprint: engine.fingerprint().to_string(),
                changed: engine.fingerprint() != previous_fingerprint,
                passages: engine.index().passage_count(),
                guides: engine.corpus().guides.len(),
                previous_fingerprint,
                elapsed_ms,
            };
            handle.replace(engine);
            tracing::info!(
                trigger = trigger.as_str(),
                fingerprint = %report.fingerprint,
                changed = report.changed,
                passages = report.passages,
                elapsed_ms = report.elapsed_ms,
                "reloaded the corpus"
            );
            status.send_modify(|status| {
                status.fingerprint = report.fingerprint.clone();
                status.successes += 1;
                status.last_success_unix = Some(now);
                status.last_error = None;
                status.in_progress = false;
            });
            Ok(report)
        }
        Ok(Err(error)) => Err(record_failure(status, trigger, format!("{error}"), now)),
        Err(join_error) => Err(record_failure(
            status,
            trigger,
            format!("the rebuild panicked: {join_error}"),
            now,
        )),
    }
}

fn record_failure(
    status: &watch::Sender<ReloadStatus>,
    trigger: TriggerKind,
    error: String,
    now: u64,
) -> String {
    let message = format!("reload failed, still serving the previous guides: {error}");
    tracing::error!(trigger = trigger.as_str(), error = %error, "reload failed; still serving the previous guides");
    status.send_modify(|status| {
        status.failures += 1;
        status.last_error = Some(message.clone());
        status.last_failure_unix = Some(now);
        status.in_progress = false;
    });
    message
}

fn unix_now() -> u64 {
    crate::util::clock::now_unix().max(0) as u64
}

/// Watches the corpus folder recursively; content events (not reads) are forwarded. Files in the
/// index folder are ignored in case it lives inside the corpus folder.
fn start_watcher(
    config: &EngineConfig,
    events: mpsc::UnboundedSender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::event::ModifyKind;
    use notify::{EventKind, RecursiveMode, Watcher};
    let index_dir = std::fs::canonicalize(&config.index_dir).unwrap_or(config.index_dir.clone());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) => {
                // Reads (the rebuild itself opens every guide) and metadata-only changes (atime)
                // must not trigger a reload, or a reload would trigger the next one.
                let relevant = matches!(
                    event.kind,
                    EventKind::Create(_)
                        | EventKind::Modify(
                            ModifyKind::Data(_)
                                | ModifyKind::Name(_)
                                | ModifyKind::Any
                                | ModifyKind::Other
                        )
                        | EventKind::Remove(_)
                        | EventKind::Any
                ) && !event.paths.iter().all(|path| path.starts_with(&index_dir));
                if relevant {
                    let _ = events.send(());
                }
            }
            Err(error) => tracing::warn!(%error, "corpus watcher error"),
        }
    })?;
    watcher.watch(&config.corpus_dir, RecursiveMode::Recursive)?;
    Ok(watcher)
}

#[cfg(unix)]
type Hangups = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangup_stream() -> std::io::Result<Hangups> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

#[cfg(not(unix))]
fn hangup_stream() -> std::io::Result<Hangups> {
    Err(std::io::Error::other("SIGHUP exists on Unix only"))
}

#[cfg(unix)]
async fn next_hangup(hangups: &mut Option<Hangups>) {
    match hangups {
        Some(stream) => {
            if stream.recv().await.is_none() {
                *hangups = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Option<Hangups>) {
    std::future::pending().await
}
