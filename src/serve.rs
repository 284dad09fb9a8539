//! `guidebot serve`: wires one engine, one dispatcher and the configured transports (gateway, HTTP
//! endpoint, metrics port), live reload and storage housekeeping, and stops them all on SIGTERM or
//! ctrl-c. Only wiring lives here; every piece is built and tested on its own.

use crate::bot::{Dispatcher, InteractionObserver};
use crate::config::{Config, LogFormat};
use crate::engine::{Engine, EngineHandle};
use crate::metrics::Metrics;
use crate::reload::{reload_channel, watch_and_reload, ReloadOptions};
use crate::store::{now_unix, SqliteStore, Store};
use crate::transport::{gateway, http};
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What `serve` was asked for on the command line (the rest comes from the config).
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub config_file: Option<PathBuf>,
    /// Run the HTTP interactions endpoint on this address (overrides `http.addr`).
    pub http_addr: Option<SocketAddr>,
    /// Run the gateway even if the token is only given through a file setting.
    pub gateway: bool,
    /// Serve `/metrics` on this address (overrides `metrics.addr`).
    pub metrics_addr: Option<SocketAddr>,
}

/// Runs until SIGTERM / ctrl-c. Startup errors name the setting and the fix.
pub async fn serve(options: ServeOptions, env: &HashMap<String, String>) -> anyhow::Result<()> {
    let config =
        Config::load(options.config_file.as_deref(), env).context("invalid configuration")?;
    crate::telemetry::init_for_server(config.log.format == LogFormat::Json);
    let vars = config.to_env_vars();

    let http_addr = options.http_addr.or(config.http.addr);
    let run_gateway = options.gateway || config.secrets.discord_token.is_some();
    if http_addr.is_none() && !run_gateway {
        bail!(
            "nothing to serve: set DISCORD_TOKEN to connect to Discord's gateway, or pass --http ADDR \
             (with DISCORD_PUBLIC_KEY) to run the interactions endpoint"
        );
    }
    // Validate transport settings before the (slower) engine load, so a typo fails fast.
    let gateway_settings = if run_gateway {
        Some(gateway::GatewaySettings::from_env_vars(&vars)?)
    } else {
        None
    };
    let http_settings = match http_addr {
        Some(_) => Some(http::HttpSettings::from_env_vars(&vars)?),
        None => None,
    };

    let engine_config = config.engine_config();
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
    metrics.watch_engine(Arc::clone(&engines));
    let observer: Arc<dyn InteractionObserver> = metrics.clone();
    let mut dispatcher = Dispatcher::new(Arc::clone(&engines), config.bot_settings(), observer);
    let store: Option<Arc<dyn Store>> = match config.store_path() {
        Some(path) => match SqliteStore::open(&path) {
            Ok(store) => Some(Arc::new(store)),
            Err(error) => {
                // Storage is an extra: without it the bot still answers (no feedback or budgets).
                tracing::error!(%error, "storage disabled: feedback, budgets and the answer cache are off");
                None
            }
        },
        None => None,
    };
    if let Some(store) = &store {
        dispatcher = dispatcher.with_store(Arc::clone(store));
    }
    let dispatcher = Arc::new(dispatcher);

    let (stop_sender, stop_receiver) = watch::channel(false);
    let stopped = move || {
        let mut receiver = stop_receiver.clone();
        async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    };
    let mut tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)> = Vec::new();

    // Live reload: file watcher, SIGHUP, and the programmatic trigger.
    let (_trigger, requests) = reload_channel(&engines);
    {
        let engines = Arc::clone(&engines);
        let reload_options = ReloadOptions::from_config(&config);
        let stop = stopped();
        tasks.push((
            "reload",
            tokio::spawn(async move {
                watch_and_reload(engines, engine_config, reload_options, requests, stop).await;
                Ok(())
            }),
        ));
    }

    if let Some(store) = store {
        let retention_days = config.bot.retention_days.min(u64::from(u32::MAX)) as u32;
        let stop = stopped();
        tasks.push((
            "retention",
            tokio::spawn(retention(store, retention_days, stop)),
        ));
    }

    if let (Some(addr), Some(settings)) = (http_addr, http_settings) {
        let state = http::AppState::new(Arc::clone(&dispatcher), Arc::clone(&metrics), settings)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (http.addr / --http)"))?;
        let stop = stopped();
        tasks.push((
            "http",
            tokio::spawn(async move { http::run(listener, state, stop).await.map_err(Into::into) }),
        ));
    }

    if let Some(settings) = gateway_settings {
        let dispatcher = Arc::clone(&dispatcher);
        let stop = stopped();
        tasks.push((
            "gateway",
            tokio::spawn(gateway::run(settings, dispatcher, stop)),
        ));
        // The HTTP endpoint serves /metrics itself; the gateway mode gets its own port when asked.
        if let Some(addr) = options.metrics_addr.or(config.metrics.addr) {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} (metrics.addr / --metrics-addr)")
            })?;
            let router = crate::metrics::metrics_router(Arc::clone(&metrics));
            let stop = stopped();
            tasks.push((
                "metrics",
                tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(stop)
                        .await
                        .map_err(Into::into)
                }),
            ));
        }
    }

    // Stop on SIGTERM or ctrl-c, or when any task ends (an error there is fatal for the process).
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut first_error = None;
    let (names, handles): (Vec<_>, Vec<_>) = tasks.into_iter().unzip();
    let mut handles: Vec<Option<tokio::task::JoinHandle<anyhow::Result<()>>>> =
        handles.into_iter().map(Some).collect();
    let any_finished = futures::future::select_all(handles.iter_mut().filter_map(Option::as_mut));
    tokio::select! {
        _ = &mut signal => tracing::info!("shutdown requested"),
        (result, index, _) = any_finished => {
            handles[index] = None;
            match result {
                Ok(Ok(())) => tracing::warn!(task = names[index], "a service stopped; shutting down"),
                Ok(Err(error)) => {
                    tracing::error!(task = names[index], error = %format!("{error:#}"), "a service failed; shutting down");
                    first_error = Some(error.context(format!("{} failed", names[index])));
                }
                Err(error) => first_error = Some(anyhow::anyhow!("{} panicked: {error}", names[index])),
            }
        }
    }
    let _ = stop_sender.send(true);
    for (name, handle) in names.iter().zip(handles) {
        if let Some(handle) = handle {
            match tokio::time::timeout(Duration::from_secs(40), handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => {
                    tracing::warn!(task = name, error = %format!("{error:#}"), "stopped with an error")
                }
                Ok(Err(error)) => tracing::warn!(task = name, %error, "stopped abnormally"),
                Err(_) => tracing::warn!(task = name, "did not stop within 40 s"),
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

async fn retention(
    store: Arc<dyn Store>,
    days: u32,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    loop {
        match store.purge_older_than(days, now_unix()) {
            Ok(deleted) if deleted > 0 => {
                tracing::info!(deleted, days, "retention: old rows deleted")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "retention purge failed"),
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(6 * 3600)) => {}
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
