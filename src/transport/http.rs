//! The HTTP interactions endpoint ("Interactions Endpoint URL" mode): stateless, so any number of
//! replicas can serve one application behind a load balancer.
//!
//! `POST /interactions` checks the Ed25519 signature (`X-Signature-Ed25519` over
//! `X-Signature-Timestamp` ++ raw body) before it parses anything, rejects timestamps outside the
//! replay window, answers PING with PONG and hands commands, autocomplete and button presses to the
//! shared [`Dispatcher`]. Quick replies go back in the HTTP response; LLM answers go back as a
//! deferred response (type 5) at once and are then edited through
//! `PATCH {api_base}/api/v10/webhooks/{application_id}/{token}/messages/@original`, addressed by
//! the application id and token of the payload, so no bot token is needed.
//!
//! A correctly signed interaction whose id was seen before (by any replica sharing the store, or
//! by this process when no store could vouch: [`RecentIds`]) is a replay: it gets 401 and is not run
//! again. Discord sends each interaction once and never
//! retries it, so a repeated id is never a legitimate second delivery.
//!
//! Also served: `GET /healthz` (the process is up), `GET /readyz` (an index with passages is loaded,
//! the database is connected and its calls succeed, and the server is not shutting down) and `GET /metrics` (Prometheus / OpenMetrics text).
//!
//! Handler tasks are tracked with [`InFlight`]: shutdown waits for deferred answers still being
//! edited, and a handler that fails or panics is answered with a short notice.

use super::replay::{RecentIds, Sighting, DEFAULT_REMEMBERED_IDS};
use super::InFlight;
use crate::bot::dispatch::ResponderError;
use crate::bot::render::{self, Rendered, Reply};
use crate::bot::{request, Dispatcher, ReplayCheck, Responder};
use crate::metrics::Metrics;
use crate::store::StoreReadiness;
use crate::util::clock::now_unix;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serenity::all::{
    CommandInteraction, ComponentInteraction, CreateInteractionResponse, EditInteractionResponse,
};
use serenity::interactions_endpoint::Verifier;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::Instrument;

/// Default request body limit: interactions are a few KiB; 64 KiB leaves room for big resolved data.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default replay window: requests signed more than this far from now (either way) are refused.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Discord invalidates an interaction that gets no initial response within 3 s; the endpoint gives
/// up a little earlier so it can still say why.
const FIRST_RESPONSE_TIMEOUT: Duration = Duration::from_millis(2_800);
/// After shutdown, how long deferred answers still being written may take to finish their edits.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The content type of the OpenMetrics text exposition.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// What a user sees when their interaction failed on our side.
const FAILURE_NOTICE: &str =
    "Sorry, something went wrong while answering. Please try again in a moment.";

/// Configuration of the HTTP endpoint; built from the configuration (`crate::config::parts`), or
/// by hand in tests.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The application's Ed25519 public key, 64 hex digits (`DISCORD_PUBLIC_KEY`).
    pub public_key_hex: String,
    /// Base URL of Discord's REST API, without `/api/v10` (`DISCORD_API_BASE`, default
    /// discord.com); tests point it at a fake.
    pub api_base: String,
    /// Larger request bodies get 413 (`GUIDEBOT_HTTP_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Requests whose `X-Signature-Timestamp` is further than this from now get 401
    /// (`GUIDEBOT_HTTP_REPLAY_WINDOW_SECS`).
    pub replay_window: Duration,
    /// Most connections open at once; more wait in the listen backlog
    /// (`GUIDEBOT_HTTP_MAX_CONNECTIONS`). Keep it under the process's file limit.
    pub max_connections: usize,
    /// Also serve `/metrics` on the public interactions port (`GUIDEBOT_HTTP_PUBLIC_METRICS`);
    /// off by default: metrics go to their own address (`metrics.addr`).
    pub metrics_on_public_port: bool,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle before its next request (`GUIDEBOT_HTTP_HEADER_TIMEOUT_SECS`): a
    /// stalled or idle connection is closed after this, so it cannot hold a slot for long.
    pub header_timeout: Duration,
    /// How long a client may take to send a whole request body once its headers arrived
    /// (`GUIDEBOT_HTTP_BODY_TIMEOUT_SECS`): one deadline for the whole body, not per chunk, so a
    /// body sent a byte at a time cannot hold the connection; past it the answer is 408.
    pub body_timeout: Duration,
    /// Interaction ids this process remembers at most against replays ([`RecentIds`]), with or
    /// without a store. Not a configuration setting: `guidebot serve` always uses
    /// [`DEFAULT_REMEMBERED_IDS`]; 0 (no memory) is for load generators that re-send pre-signed
    /// requests.
    pub remembered_ids: usize,
}

/// Default cap on open connections: under systemd's default soft file limit of 1,024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// The HTTP endpoint's configuration is missing or wrong; the message says which variable and how
/// to fix it.
#[derive(Debug, thiserror::Error)]
pub enum HttpConfigError {
    /// `DISCORD_PUBLIC_KEY` is absent or empty.
    #[error("DISCORD_PUBLIC_KEY is not set: copy the Public Key from your application's General Information page")]
    MissingPublicKey,
    /// `DISCORD_PUBLIC_KEY` is not 64 hex digits or not a valid Ed25519 point.
    #[error("DISCORD_PUBLIC_KEY is not a valid public key ({0}): it must be the 64 hex digits of the Public Key on your application's General Information page")]
    BadPublicKey(String),
    /// Another variable has a value that cannot be used.
    #[error("{name} is not valid: {reason}")]
    Invalid {
        /// The environment variable.
        name: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

impl HttpSettings {
    /// Settings with the given key and every other value at its default.
    pub fn new(public_key_hex: impl Into<String>) -> Self {
        HttpSettings {
            public_key_hex: public_key_hex.into(),
            api_base: super::DISCORD_API_BASE.to_string(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            replay_window: DEFAULT_REPLAY_WINDOW,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            metrics_on_public_port: false,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            remembered_ids: DEFAULT_REMEMBERED_IDS,
        }
    }

    /// The public key as bytes, checked to be a valid Ed25519 key.
    pub fn public_key(&self) -> Result<[u8; 32], HttpConfigError> {
        let bytes = hex::decode(self.public_key_hex.trim())
            .map_err(|error| HttpConfigError::BadPublicKey(error.to_string()))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            HttpConfigError::BadPublicKey(format!("{} bytes instead of 32", bytes.len()))
        })?;
        Verifier::try_new(bytes)
            .map_err(|error| HttpConfigError::BadPublicKey(error.to_string()))?;
        Ok(bytes)
    }
}

/// Everything the endpoint's handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    dispatcher: Arc<Dispatcher>,
    verifier: Verifier,
    metrics: Arc<Metrics>,
    settings: HttpSettings,
    rest: WebhookClient,
    /// False once shutdown starts, so `/readyz` takes the replica out of rotation.
    ready: AtomicBool,
    /// Interactions whose dispatcher task is still running (deferred answers being edited).
    in_flight: InFlight,
    /// The interaction ids this process accepted, against replays (store or none).
    recent_ids: RecentIds,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.inner.settings)
            .field("ready", &self.inner.ready)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The endpoint's state. `metrics` should also be the dispatcher's observer
    /// (`Dispatcher::new(engines, settings, metrics.clone())`) so handled interactions are counted;
    /// its index fingerprint follows the dispatcher's engine handle.
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        metrics: Arc<Metrics>,
        settings: HttpSettings,
    ) -> Result<AppState, HttpConfigError> {
        let verifier = Verifier::try_new(settings.public_key()?)
            .map_err(|error| HttpConfigError::BadPublicKey(error.to_string()))?;
        let rest = WebhookClient::new(&settings.api_base)?;
        let engines = Arc::clone(dispatcher.engines());
        metrics.follow_fingerprint(move || engines.current().fingerprint().to_string());
        Ok(AppState {
            inner: Arc::new(Inner {
                dispatcher,
                verifier,
                metrics,
                rest,
                ready: AtomicBool::new(true),
                in_flight: InFlight::default(),
                recent_ids: RecentIds::new(settings.remembered_ids, settings.replay_window),
                settings,
            }),
        })
    }

    /// The metrics this endpoint updates and serves.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The settings in use.
    pub fn settings(&self) -> &HttpSettings {
        &self.inner.settings
    }

    /// Marks the replica ready or not for `/readyz` (e.g. `false` while draining).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// Interactions still being handled in the background (deferred answers).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.len()
    }
}

/// The endpoint's routes: `POST /interactions`, `GET /healthz`, `GET /readyz`, and `GET /metrics`
/// only when `metrics_on_public_port` says so (metrics can reveal traffic and usage; by default
/// they have their own address). Usable without a socket, e.g. with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    // The interactions handler reads its body itself, bounded in size and time.
    let router = Router::new()
        .route("/interactions", post(interactions))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let router = if state.inner.settings.metrics_on_public_port {
        router.route("/metrics", get(metrics))
    } else {
        router
    };
    router.with_state(state)
}

/// Default [`HttpSettings::header_timeout`]: headers, or the next request on a kept-alive
/// connection, within 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`HttpSettings::body_timeout`]: a whole body within 10 s of its headers.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between two attempts after `accept` fails (out of file descriptors, ...).
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Accept failures are logged at most this often: out of file descriptors with clients queueing,
/// every freed descriptor is taken at once and the next `accept` fails again, hundreds of times a
/// second.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Logs `accept` failures at most once per [`ACCEPT_LOG_INTERVAL`], each line saying how many
/// failed since the previous one (`/metrics` counts every one).
#[derive(Default)]
struct AcceptFailures {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptFailures {
    fn record(&mut self, error: &std::io::Error, retry_in: Duration) {
        self.unlogged += 1;
        if self
            .last_logged
            .is_some_and(|at| at.elapsed() < ACCEPT_LOG_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            %error,
            failures = self.unlogged,
            retry_in_ms = retry_in.as_millis() as u64,
            "accept failed (logged at most once a second; failures = how many since the last line)"
        );
        self.unlogged = 0;
        self.last_logged = Some(Instant::now());
    }
}

/// Serves [`app`] on `listener` until `shutdown` completes, then stops accepting, marks the replica
/// not ready, lets requests in progress finish and waits (up to 30 s) for deferred answers still
/// being edited.
///
/// Hostile or stalled clients cannot hold it: headers must arrive within
/// [`HttpSettings::header_timeout`] (which also bounds an idle keep-alive connection), a whole body
/// within [`HttpSettings::body_timeout`] (else 408 and the connection is closed), and at
/// most `settings.max_connections` connections are open at once — past that, new ones wait in the
/// listen backlog until a slot frees (a stalled one frees its slot within the timeouts). Accept
/// errors (out of file descriptors) are retried with back-off, not in a busy loop.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP interactions endpoint listening");
    }
    let router = app(state.clone());
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.inner.settings.max_connections.max(1),
    ));
    let open = OpenConnections::default();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.inner.settings.header_timeout)
        .keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);
    let mut accept_failures = AcceptFailures::default();
    loop {
        // At the cap, the oldest connection that never completed a request's headers (a stalled
        // or idle client) makes room, so stalled clients cannot lock real ones out.
        if slots.available_permits() == 0 && open.evict_oldest_unused() {
            state.inner.metrics.reject("connection_evicted");
        }
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failures.record(&error, backoff);
                    state.inner.metrics.reject("accept_error");
                    drop(permit);
                    // Out of file descriptors: make room too.
                    open.evict_oldest_unused();
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            },
        };
        backoff = Duration::from_millis(5);
        let _ = stream.set_nodelay(true);
        let (id, used, evicted) = open.register();
        let connection_router = router.clone();
        let connection_state = state.clone();
        let service =
            tower::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
                used.store(true, Ordering::Release);
                let router = connection_router.clone();
                let state = connection_state.clone();
                async move {
                    use tower::ServiceExt;
                    // The one hot route skips the router: the same handler, called directly,
                    // with the request's own headers (axum's `HeaderMap` extractor clones them).
                    // Everything else, and every other method on this path, goes through
                    // `app`'s routes as before.
                    if request.method() == axum::http::Method::POST
                        && request.uri().path() == "/interactions"
                    {
                        let (parts, body) = request.into_parts();
                        return Ok(interactions(State(state), parts.headers, Body::new(body)).await);
                    }
                    router.oneshot(request.map(axum::body::Body::new)).await
                }
            });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let open = open.clone();
        tokio::spawn(async move {
            // A timed-out, reset or evicted connection is the client's problem, not ours.
            tokio::select! {
                _ = connection => {}
                () = evicted.cancelled() => {}
            }
            open.remove(id);
            drop(permit);
        });
    }
    state.set_ready(false);
    tracing::info!("shutting down: no new connections, finishing requests in progress");
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open at the shutdown deadline; closing them");
    }
    state.inner.in_flight.drain(DRAIN_TIMEOUT).await;
    Ok(())
}

/// The endpoint's open connections, oldest first, with whether each has sent a whole request.
#[derive(Clone, Default)]
struct OpenConnections {
    inner: Arc<Mutex<OpenInner>>,
}

#[derive(Default)]
struct OpenInner {
    next_id: u64,
    connections:
        std::collections::VecDeque<(u64, Arc<AtomicBool>, tokio_util::sync::CancellationToken)>,
}

impl OpenConnections {
    /// A new connection: its id, the flag its service sets on its first request, and the token
    /// that closes it when it is evicted.
    fn register(&self) -> (u64, Arc<AtomicBool>, tokio_util::sync::CancellationToken) {
        let used = Arc::new(AtomicBool::new(false));
        let evicted = tokio_util::sync::CancellationToken::new();
        let Ok(mut inner) = self.inner.lock() else {
            return (u64::MAX, used, evicted);
        };
        let id = inner.next_id;
        inner.next_id += 1;
        inner
            .connections
            .push_back((id, Arc::clone(&used), evicted.clone()));
        (id, used, evicted)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.connections.retain(|(open, _, _)| *open != id);
        }
    }

    /// Closes the oldest connection that has not sent a whole request; false when every open
    /// connection is in use.
    fn evict_oldest_unused(&self) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        let Some(position) = inner
            .connections
            .iter()
            .position(|(_, used, _)| !used.load(Ordering::Acquire))
        else {
            return false;
        };
        if let Some((_, _, evicted)) = inner.connections.remove(position) {
            evicted.cancel();
        }
        true
    }
}

// ---------------------------------------------------------------- handlers

async fn healthz() -> Response {
    json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

async fn readyz(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    let engine = inner.dispatcher.engines().current();
    let passages = engine.index().passage_count();
    let (status, body) = if !inner.ready.load(Ordering::Acquire) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not_ready", "reason": "shutting down"}),
        )
    } else if passages == 0 {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not_ready", "reason": "the index has no passages"}),
        )
    } else {
        let store = match inner.dispatcher.storage() {
            Some(storage) => storage.check_readiness().await,
            // A store configured but not opened at start: answers go on without it, degraded.
            None => match inner.dispatcher.store_unavailable() {
                Some(reason) => StoreReadiness::Degraded(reason.to_string()),
                None => StoreReadiness::Ready,
            },
        };
        let ready = |status: &str| {
            serde_json::json!({
                "status": status,
                "fingerprint": engine.fingerprint(),
                "passages": passages,
                "answer_mode": engine.answer_mode().as_str(),
            })
        };
        match store {
            StoreReadiness::NotReady(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"status": "not_ready", "reason": reason}),
            ),
            StoreReadiness::Degraded(reason) => {
                let mut body = ready("degraded");
                body["store"] = serde_json::Value::String(reason);
                (StatusCode::OK, body)
            }
            StoreReadiness::Ready => (StatusCode::OK, ready("ready")),
        }
    };
    json_response(status, body.to_string().into_bytes())
}

async fn metrics(State(state): State<AppState>) -> Response {
    metrics_response(&state.inner.metrics)
}

/// `200` with the exposition and its content type.
fn metrics_response(metrics: &Metrics) -> Response {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        metrics.encode(),
    )
        .into_response()
}

/// A router serving `GET /metrics` from `metrics`, for the gateway mode's metrics port (the
/// interactions endpoint serves it already).
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move { metrics_response(&metrics) }
        }),
    )
}

/// Just the interaction type, read before the full (and slower) deserialization: it says which
/// of serenity's interaction types the body is read into, and a PING needs nothing more.
#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    kind: u64,
    /// The interaction's snowflake, remembered to drop replays.
    #[serde(default)]
    id: Option<String>,
}

/// Why a request body could not be read.
enum BodyError {
    /// Longer than `max_body_bytes` (declared or sent).
    TooLarge,
    /// Not all there within `body_timeout`.
    TimedOut,
    /// The connection failed while reading it.
    Unreadable,
}

/// Reads a whole request body, at most `limit` bytes, within `deadline` of the call: one deadline
/// for the whole body, so a client trickling bytes cannot hold the connection.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, BodyError> {
    use futures::StreamExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut chunks = body.into_data_stream();
        let mut whole: Option<Bytes> = None;
        let mut joined: Vec<u8> = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
            let so_far = whole.as_ref().map_or(joined.len(), Bytes::len);
            if so_far + chunk.len() > limit {
                return Err(BodyError::TooLarge);
            }
            // Most bodies arrive in one chunk: keep it without copying.
            match whole.take() {
                None if joined.is_empty() => whole = Some(chunk),
                first => {
                    if let Some(first) = first {
                        joined.extend_from_slice(&first);
                    }
                    joined.extend_from_slice(&chunk);
                }
            }
        }
        Ok(whole.unwrap_or_else(|| Bytes::from(joined)))
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

async fn interactions(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let inner = &state.inner;
    let settings = &inner.settings;
    let body = match read_body(
        &headers,
        body,
        settings.max_body_bytes,
        settings.body_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return reject(
                inner,
                "too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body larger than {} bytes", settings.max_body_bytes),
            );
        }
        Err(BodyError::TimedOut) => {
            return reject(
                inner,
                "body_timeout",
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the request body did not arrive within {} ms",
                    settings.body_timeout.as_millis()
                ),
            );
        }
        Err(BodyError::Unreadable) => {
            return reject(
                inner,
                "malformed",
                StatusCode::BAD_REQUEST,
                "could not read the request body",
            );
        }
    };

    // 1. The signature, before anything in the body is looked at.
    let header_text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header_text("x-signature-ed25519"),
        header_text("x-signature-timestamp"),
    ) else {
        return reject(
            inner,
            "bad_signature",
            StatusCode::UNAUTHORIZED,
            "missing X-Signature-Ed25519 or X-Signature-Timestamp header",
        );
    };
    let started = Instant::now();
    let verified = inner.verifier.verify(signature, timestamp, &body).is_ok();
    inner.metrics.observe_verify(started.elapsed());
    if !verified {
        return reject(
            inner,
            "bad_signature",
            StatusCode::UNAUTHORIZED,
            "invalid request signature",
        );
    }
    // 2. A correctly signed but old (or future) request is a replay.
    if !within_window(timestamp, inner.settings.replay_window) {
        return reject(
            inner,
            "stale",
            StatusCode::UNAUTHORIZED,
            "request timestamp outside the replay window",
        );
    }

    // 3. What kind of interaction it is.
    let (kind, id) = match serde_json::from_slice::<Peek>(&body) {
        Ok(peek) => (peek.kind, peek.id),
        Err(error) => {
            return reject(
                inner,
                "malformed",
                StatusCode::BAD_REQUEST,
                &format!("malformed interaction JSON: {error}"),
            );
        }
    };
    match kind {
        1 => {
            inner.metrics.count_request("ping", "pong");
            json_response(StatusCode::OK, br#"{"type":1}"#.to_vec())
        }
        2..=4 => {
            // 4. A replay of an interaction already handled here or on another replica: the
            // store's durable check when there is a store that can be read, else this process's
            // memory (which then holds only the ids the store could not vouch for, so a store
            // that works costs no second copy of its ids).
            if let Some(id) = id.as_deref() {
                let sighting = match inner.dispatcher.first_sighting(id).await {
                    ReplayCheck::FirstSighting => Sighting::New,
                    ReplayCheck::Replay => Sighting::Replay,
                    ReplayCheck::NotChecked => {
                        // The timestamp was read above: the window check refuses one that is no
                        // number.
                        let signed_at = timestamp.trim().parse::<i64>().unwrap_or(i64::MIN);
                        let sighting = inner.recent_ids.check(id, signed_at, now_unix());
                        inner.metrics.set_http_replay_ids(inner.recent_ids.held());
                        sighting
                    }
                };
                match sighting {
                    Sighting::New => {}
                    Sighting::Replay => {
                        return reject(
                            inner,
                            "replayed",
                            StatusCode::UNAUTHORIZED,
                            "interaction already handled (replayed request)",
                        );
                    }
                    Sighting::Forgotten => {
                        return reject(
                            inner,
                            "stale",
                            StatusCode::UNAUTHORIZED,
                            "request signed too long ago for the replay check to vouch for it",
                        );
                    }
                }
            }
            dispatch(&state, kind, &body).await
        }
        5 => reject(
            inner,
            "unknown_type",
            StatusCode::BAD_REQUEST,
            "modal submissions are not supported: guidebot opens no modals",
        ),
        other => reject(
            inner,
            "unknown_type",
            StatusCode::BAD_REQUEST,
            &format!("unknown interaction type {other}"),
        ),
    }
}

/// Runs a command (`kind` 2), button (3) or autocomplete (4) interaction on the dispatcher in its
/// own task and answers with its first response as soon as there is one.
///
/// The body is read straight into the serenity type its `kind` names. (serenity's own
/// `Interaction` enum reads the body into a `serde_json::Value` first and then converts that
/// value: two passes and a tree of allocations for every request.)
async fn dispatch(state: &AppState, kind: u64, body: &[u8]) -> Response {
    let inner = &state.inner;
    let unreadable = |error: serde_json::Error| {
        reject(
            inner,
            "malformed",
            StatusCode::BAD_REQUEST,
            &format!("cannot read the interaction: {error}"),
        )
    };
    let (invocation, id, application_id, token, kind, command) = match kind {
        2 | 4 => {
            let command = match serde_json::from_slice::<CommandInteraction>(body) {
                Ok(command) => command,
                Err(error) => return unreadable(error),
            };
            let (invocation, kind) = if kind == 2 {
                (request::from_command(&command), "command")
            } else {
                (request::from_autocomplete(&command), "autocomplete")
            };
            (
                invocation,
                command.id.get(),
                command.application_id.get(),
                command.token,
                kind,
                command.data.name,
            )
        }
        3 => {
            let component = match serde_json::from_slice::<ComponentInteraction>(body) {
                Ok(component) => component,
                Err(error) => return unreadable(error),
            };
            (
                request::from_component(&component),
                component.id.get(),
                component.application_id.get(),
                component.token,
                "component",
                String::from("button"),
            )
        }
        _ => {
            return reject(
                inner,
                "unknown_type",
                StatusCode::BAD_REQUEST,
                "unexpected interaction type",
            );
        }
    };
    let span = tracing::info_span!("interaction", id, kind, command = %command);
    let (first_tx, first_rx) = oneshot::channel();
    let responder = HttpResponder {
        first: Mutex::new(Some(first_tx)),
        rest: inner.rest.clone(),
        application_id,
        token,
    };
    let dispatcher = Arc::clone(&inner.dispatcher);
    let autocomplete = kind == "autocomplete";
    inner.in_flight.spawn(
        async move {
            let started = Instant::now();
            let result = dispatcher.run_interaction(invocation, &responder).await;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            match result {
                Ok(report) => tracing::info!(
                    outcome = report.outcome.as_str(),
                    deferred = report.deferred,
                    mode = report.mode.map(|mode| mode.as_str()),
                    fallback = report.fallback.as_ref().map(|reason| reason.label()),
                    edits = report.edits,
                    elapsed_ms,
                    "interaction handled"
                ),
                Err(error) => {
                    tracing::warn!(%error, elapsed_ms, "interaction failed");
                    responder.tell_it_failed(autocomplete).await;
                }
            }
        }
        .instrument(span),
    );
    match tokio::time::timeout(FIRST_RESPONSE_TIMEOUT, first_rx).await {
        Ok(Ok(response)) => match serde_json::to_vec(&response) {
            Ok(bytes) => json_response(StatusCode::OK, bytes),
            Err(error) => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("cannot serialize the response: {error}"),
            ),
        },
        Ok(Err(_)) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the interaction failed before it was answered",
        ),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "no response within Discord's 3 second limit",
        ),
    }
}

/// Whether the signed unix `timestamp` is within `window` of now (both directions).
fn within_window(timestamp: &str, window: Duration) -> bool {
    let Ok(signed_at) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    now_unix().abs_diff(signed_at) <= window.as_secs()
}

fn reject(inner: &Inner, reason: &'static str, status: StatusCode, message: &str) -> Response {
    inner.metrics.reject(reason);
    tracing::debug!(reason, %status, message, "interaction request rejected");
    error_response(status, reason, message)
}

fn error_response(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": message, "reason": reason});
    json_response(status, body.to_string().into_bytes())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------- responder and REST

/// The dispatcher's [`Responder`] for one HTTP interaction: the first response goes back to the
/// waiting HTTP handler; edits go to the interaction's webhook.
struct HttpResponder {
    first: Mutex<Option<oneshot::Sender<CreateInteractionResponse>>>,
    rest: WebhookClient,
    application_id: u64,
    token: String,
}

impl HttpResponder {
    /// Best effort after a failure or a panic: the notice as the HTTP response if none went out
    /// yet, else as an edit. Autocomplete can only take choices, so it gets an empty list.
    async fn tell_it_failed(&self, autocomplete: bool) {
        let answered = self.first.lock().map_or(true, |first| first.is_none());
        let notice = render::render_notice(FAILURE_NOTICE, true);
        let result = match (answered, autocomplete) {
            (false, true) => self.respond(Reply::Choices(Vec::new())).await,
            (false, false) => self.respond(Reply::Message(notice)).await,
            (true, false) => self.edit(notice).await,
            (true, true) => Ok(()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not tell the user the interaction failed");
        }
    }
}

impl Responder for HttpResponder {
    async fn respond(&self, reply: Reply) -> Result<(), ResponderError> {
        let sender = self.first.lock().ok().and_then(|mut first| first.take());
        match sender {
            Some(sender) => sender.send(reply.to_interaction_response()).map_err(|_| {
                ResponderError("the HTTP request ended before the response was ready".to_string())
            }),
            None => Err(ResponderError(
                "an interaction can be answered only once over HTTP".to_string(),
            )),
        }
    }

    async fn edit(&self, rendered: Rendered) -> Result<(), ResponderError> {
        self.rest
            .edit_original(self.application_id, &self.token, &rendered.to_edit())
            .await
    }
}

/// Edits interaction responses through Discord's webhook routes. These routes are authorized by
/// the interaction token in the path, so no bot token is sent (serenity's `Http` always sends an
/// `Authorization: Bot …` header, which would be invalid without `DISCORD_TOKEN`).
#[derive(Clone)]
struct WebhookClient {
    http: reqwest::Client,
    api_base: Arc<str>,
}

/// Attempts per edit (the first try plus retries on 429 and 5xx).
const EDIT_ATTEMPTS: usize = 3;
/// Longest `retry_after` the client waits for; longer limits fail the edit.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

impl WebhookClient {
    fn new(api_base: &str) -> Result<Self, HttpConfigError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "DiscordBot (https://github.com/guidebot/guidebot, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| HttpConfigError::Invalid {
                name: "DISCORD_API_BASE",
                reason: format!("cannot create the HTTP client: {error}"),
            })?;
        Ok(WebhookClient {
            http,
            api_base: Arc::from(api_base.trim_end_matches('/')),
        })
    }

    /// `PATCH /api/v10/webhooks/{application_id}/{token}/messages/@original`, retrying rate limits
    /// (honouring `retry_after` up to 5 s) and server errors. Errors never contain the token.
    async fn edit_original(
        &self,
        application_id: u64,
        token: &str,
        edit: &EditInteractionResponse,
    ) -> Result<(), ResponderError> {
        let url = format!(
            "{}/api/v10/webhooks/{application_id}/{token}/messages/@original",
            self.api_base
        );
        let body = serde_json::to_vec(edit)
            .map_err(|error| ResponderError(format!("cannot serialize the edit: {error}")))?;
        let mut last_error = String::new();
        for attempt in 1..=EDIT_ATTEMPTS {
            let sent = self
                .http
                .patch(&url)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    last_error = format!("edit request failed: {}", error.without_url());
                    if attempt < EDIT_ATTEMPTS {
                        tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
                    }
                    continue;
                }
            };
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(response).await;
                last_error = format!("edit rate-limited (retry after {wait:?})");
                if wait > MAX_RETRY_AFTER {
                    break;
                }
                if attempt < EDIT_ATTEMPTS {
                    tokio::time::sleep(wait).await;
                }
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            last_error = format!(
                "edit failed: HTTP {status}: {}",
                crate::util::text::truncate(&text, 300)
            );
            if !status.is_server_error() {
                break;
            }
            if attempt < EDIT_ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            }
        }
        Err(ResponderError(last_error))
    }
}

/// How long a 429 asks to wait: `retry_after` (seconds) in the JSON body, else the `Retry-After`
/// header, else 1 s.
async fn retry_after(response: reqwest::Response) -> Duration {
    let header_secs = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<f64>().ok());
    let body_secs = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|body| body.get("retry_after").and_then(serde_json::Value::as_f64));
    let secs = body_secs.or(header_secs).unwrap_or(1.0);
    if secs.is_finite() && secs >= 0.0 {
        Duration::from_secs_f64(secs.min(3600.0))
    } else {
        Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "67c6bd767ca099e79efac9fcce4d2022a63bf7dea780e7f3d813f694c1597089";

    #[test]
    fn settings_need_a_valid_public_key() {
        for bad in ["xyz", "abcd", &KEY[..62]] {
            let error = HttpSettings::new(bad).public_key().unwrap_err().to_string();
            assert!(error.starts_with("DISCORD_PUBLIC_KEY"), "{error}");
            assert!(error.contains("General Information"), "{error}");
        }
        let settings = HttpSettings::new(KEY);
        assert!(settings.public_key().is_ok());
        assert_eq!(settings.api_base, crate::transport::DISCORD_API_BASE);
        assert_eq!(settings.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(settings.replay_window, DEFAULT_REPLAY_WINDOW);
    }

    #[test]
    fn the_replay_window_applies_both_ways() {
        let now = now_unix();
        let window = Duration::from_secs(300);
        assert!(within_window(&now.to_string(), window));
        assert!(within_window(&(now - 290).to_string(), window));
        assert!(!within_window(&(now - 400).to_string(), window));
        assert!(!within_window(&(now + 400).to_string(), window));
        assert!(!within_window("yesterday", window));
    }
}
