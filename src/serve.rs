//! `guidebot serve`: wires one engine, one dispatcher and the configured transports (gateway, HTTP
//! endpoint, metrics port), live reload and storage housekeeping, and stops them all on SIGTERM or
//! ctrl-c. Only wiring lives here; every piece is built and tested on its own.
//!
//! The services run on one `TaskTracker` and stop on one `CancellationToken`: shutdown cancels the
//! token and waits for the tracker, so it waits for real work, not a poll loop.

use crate::bot::admin::FileChannelSettings;
use crate::bot::{Dispatcher, InteractionObserver};
use crate::config::Config;
use crate::engine::{Engine, EngineConfig, EngineHandle};
use crate::metrics::Metrics;
use crate::reload::{reload_channel, watch_and_reload, ReloadOptions};
use crate::store::{Backend, Storage, StorageOptions, Store};
use crate::transport::gateway::{self, GatewaySettings};
use crate::transport::http::{self, HttpSettings};
use crate::util::clock::now_unix;
use anyhow::{bail, Context};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for the services (and their work in flight: deferred answers being
/// edited) to stop. A rebuild in progress is not waited for (`reload::watch_and_reload`).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for the storage writer to commit what is queued.
const STORAGE_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the runtime waits, once `serve` has returned, for blocking work still running (an
/// abandoned rebuild) before the process exits anyway (`main.rs`).
pub const BLOCKING_WORK_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest time from SIGTERM to exit: every wait above, added up, stays under it. Exists so
/// the deploy files can grant it (systemd's `TimeoutStopSec`, Kubernetes'
/// `terminationGracePeriodSeconds`, Compose's `stop_grace_period`; `tests/deploy_artifacts.rs`
/// checks them) and the process is never killed half-way through its shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(40);
const _: () = assert!(
    STOP_TIMEOUT.as_secs() + STORAGE_DRAIN_TIMEOUT.as_secs() + BLOCKING_WORK_TIMEOUT.as_secs()
        < SHUTDOWN_GRACE.as_secs()
);
/// How often old rows (and replay ids, cooldowns) are purged.
const RETENTION_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Longest wait between two attempts to reach the database at start-up.
const CONNECT_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs until SIGTERM / ctrl-c. `gateway` asks for the gateway explicitly (it also runs whenever
/// a token is set). Startup errors name the setting and the fix.
pub async fn serve(config: Config, gateway: bool) -> anyhow::Result<()> {
    // Held until `serve` returns: dropping it flushes the buffered log lines.
    let _log_guard = crate::telemetry::init_for_server(config.log.format, &config.log.level);
    for var in &config.unknown_vars {
        tracing::warn!(%var, "unknown GUIDEBOT_* variable ignored; see deploy/guidebot.example.toml");
    }
    let http_addr = config.http.addr;
    let run_gateway = gateway || config.secrets.discord_token.is_some();
    if http_addr.is_none() && !run_gateway {
        bail!(
            "nothing to serve: set DISCORD_TOKEN to connect to Discord's gateway, or pass --http ADDR \
             (with DISCORD_PUBLIC_KEY) to run the interactions endpoint"
        );
    }
    // Transport settings before the (slower) engine load, so a typo fails fast.
    let gateway_settings = run_gateway
        .then(|| GatewaySettings::try_from(&config))
        .transpose()?;
    let http_settings = http_addr
        .map(|_| HttpSettings::try_from(&config))
        .transpose()?;

    let engine_config = EngineConfig::from(&config);
    let corpus_dir = engine_config.corpus_dir.clone();
    let engine = {
        let engine_config = engine_config.clone();
        tokio::task::spawn_blocking(move || Engine::open(&engine_config))
            .await
            .context("the engine loader stopped")?
            .with_context(|| format!("cannot load the guides from {}", corpus_dir.display()))?
    };
    tracing::info!(
        fingerprint = engine.fingerprint(),
        passages = engine.index().passage_count(),
        mode = engine.answer_mode().as_str(),
        "engine ready"
    );
    let engines = Arc::new(EngineHandle::new(engine));
    let metrics = Arc::new(Metrics::new());
    {
        let engines = Arc::clone(&engines);
        metrics.follow_fingerprint(move || engines.current().fingerprint().to_string());
    }
    let observer: Arc<dyn InteractionObserver> = metrics.clone();
    let mut dispatcher = Dispatcher::new(Arc::clone(&engines), (&config).into(), observer);
    let storage: Option<Arc<Storage>> = match config.store_target() {
        Some(target) => match target.open() {
            Ok(store) => {
                tracing::info!(backend = target.backend().as_str(), database = %target.describe(), "storage opened");
                // SQLite is migrated when opened; PostgreSQL connects (and migrates) below.
                let ready = target.backend() == Backend::Sqlite;
                Some(Storage::start(store, StorageOptions::default(), ready))
            }
            Err(error) if target.backend() == Backend::Postgres => {
                bail!("cannot use the PostgreSQL store ({error}); fix bot.store_url / GUIDEBOT_STORE_URL")
            }
            Err(error) => {
                // Storage is an extra: without it the bot still answers. Configured LLM budgets
                // cannot be counted, so the dispatcher refuses LLM answers rather than let them lapse.
                tracing::error!(%error, "storage disabled: feedback and the answer cache are off; with LLM budgets configured, LLM answers are refused (extractive answers go on)");
                metrics.set_store_unavailable(true);
                dispatcher = dispatcher.without_store_because(format!(
                    "the {} store {} could not be opened at start ({error}): serving without it; \
                     LLM answers are refused while LLM budgets are configured",
                    target.backend().as_str(),
                    target.describe()
                ));
                None
            }
        },
        None => None,
    };
    if let Some(storage) = &storage {
        dispatcher = dispatcher.with_storage(Arc::clone(storage));
        let storage = Arc::clone(storage);
        metrics.follow_storage(move || storage.figures());
    }
    let channels = match config.channels_path() {
        Some(path) => FileChannelSettings::open(path),
        None => FileChannelSettings::in_memory(),
    };
    dispatcher = dispatcher.with_channel_settings(Arc::new(channels));
    // Live reload: file watcher, SIGHUP, and the programmatic trigger (`/guidebot reload`).
    let (trigger, requests) = reload_channel(&engines);
    let dispatcher = Arc::new(dispatcher.with_reload(trigger.clone()));

    let services = Services::new();

    let reload_status = trigger.status();
    metrics.follow_reloads(move || {
        let status = reload_status.borrow();
        (status.successes, status.failures)
    });
    {
        let engines = Arc::clone(&engines);
        let options = ReloadOptions::from(&config);
        services.start("reload", |stop| async move {
            watch_and_reload(engines, engine_config, options, requests, stop).await;
            Ok(())
        });
    }
    if let Some(storage) = &storage {
        if storage.connected().is_err() {
            let storage = Arc::clone(storage);
            services.start("store-connect", |stop| connect_store(storage, stop));
        }
        let store = Arc::clone(storage.store());
        let days = config.bot.retention_days.min(u64::from(u32::MAX)) as u32;
        services.start("retention", |stop| retention(store, days, stop));
    }
    if let (Some(addr), Some(settings)) = (http_addr, http_settings) {
        let state = http::AppState::new(Arc::clone(&dispatcher), Arc::clone(&metrics), settings)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (http.addr / --http)"))?;
        services.start("http", |stop| async move {
            http::run(listener, state, stop).await.map_err(Into::into)
        });
    }
    if let Some(settings) = gateway_settings {
        let dispatcher = Arc::clone(&dispatcher);
        services.start("gateway", |stop| gateway::run(settings, dispatcher, stop));
    }
    // Metrics have their own address in both modes (the interactions port is public).
    if let Some(addr) = config.metrics.addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (metrics.addr / --metrics-addr)"))?;
        let router = http::metrics_router(Arc::clone(&metrics));
        services.start("metrics", |stop| async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
                .map_err(Into::into)
        });
    }
    let result = services.run_until(shutdown_signal()).await;
    // Every answer has been sent: commit what is still queued (analytics, feedback, tokens).
    if let Some(storage) = storage {
        if storage.flush(STORAGE_DRAIN_TIMEOUT).await {
            tracing::info!("storage writes drained");
        } else {
            tracing::warn!(
                timeout_secs = STORAGE_DRAIN_TIMEOUT.as_secs(),
                "storage writes not drained in time (the database is unreachable); queued writes are lost"
            );
        }
    }
    result
}

/// Connects to the database and applies the migrations, retrying with back-off until it works;
/// until then `/readyz` says not ready and why. Then waits for shutdown (a service that returns
/// stops the process).
async fn connect_store(
    storage: Arc<Storage>,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(250);
    loop {
        match storage.store().migrate().await {
            Ok(applied) => {
                tracing::info!(
                    applied,
                    "database ready (migrations applied by this replica: {applied})"
                );
                storage.set_ready(true, None);
                break;
            }
            Err(error) => {
                let reason = format!("the database is unreachable or failing: {error}");
                tracing::error!(error = %error, retry_in_ms = backoff.as_millis() as u64, "database not ready; /readyz reports not ready");
                storage.set_ready(false, Some(reason));
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(CONNECT_MAX_BACKOFF);
    }
    stop.await;
    Ok(())
}

/// A service that ended: its name and how.
type Ended = (&'static str, anyhow::Result<()>);

/// The long-running services of `serve`: tracked, stopped together, first failure reported.
struct Services {
    tracker: TaskTracker,
    stop: CancellationToken,
    ended: mpsc::UnboundedSender<Ended>,
    ends: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Ended>>>,
}

impl Services {
    fn new() -> Self {
        let (ended, ends) = mpsc::unbounded_channel();
        Services {
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
            ended,
            ends: std::sync::Mutex::new(Some(ends)),
        }
    }

    /// Starts a service; it gets a future that completes when everything should stop.
    fn start<F, Fut>(&self, name: &'static str, service: F)
    where
        F: FnOnce(tokio_util::sync::WaitForCancellationFutureOwned) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let work = service(self.stop.clone().cancelled_owned());
        let ended = self.ended.clone();
        self.tracker.spawn(async move {
            let _ = ended.send((name, work.await));
        });
    }

    /// Runs until `signal` completes or a service ends (an error there is fatal), then stops
    /// every service and waits for them.
    async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Some(mut ends) = self.ends.lock().ok().and_then(|mut ends| ends.take()) else {
            bail!("the services were already run");
        };
        let mut first_error = None;
        tokio::select! {
            () = signal => tracing::info!("shutdown requested"),
            Some((name, result)) = ends.recv() => match result {
                Ok(()) => tracing::warn!(task = name, "a service stopped; shutting down"),
                Err(error) => {
                    tracing::error!(task = name, error = %format!("{error:#}"), "a service failed; shutting down");
                    first_error = Some(error.context(format!("{name} failed")));
                }
            },
        }
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(STOP_TIMEOUT, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pending = self.tracker.len(),
                timeout_secs = STOP_TIMEOUT.as_secs(),
                "services did not stop in time; exiting anyway"
            );
        }
        while let Ok((name, result)) = ends.try_recv() {
            if let Err(error) = result {
                tracing::warn!(task = name, error = %format!("{error:#}"), "stopped with an error");
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

async fn retention(
    store: Arc<dyn Store>,
    days: u32,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    loop {
        match store.purge_older_than(days, now_unix()).await {
            Ok(deleted) if deleted > 0 => {
                tracing::info!(deleted, days, "retention: old rows deleted")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention purge failed"),
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(RETENTION_INTERVAL) => {}
        }
    }
}

/// Completes on SIGTERM (Unix) or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; ctrl-c still works");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
