//! A fake Discord on 127.0.0.1 for driving the real serenity 0.12.5 client in tests: REST under
//! `/api/v10` (recorded and validated against Discord's OpenAPI spec) and a gateway websocket at
//! `/gw` (HELLO, IDENTIFY, READY, heartbeats, dispatches pushed by the test).
//!
//! Point serenity at it with [`FakeDiscord::http`] (or by hand:
//! `HttpBuilder::new(token).proxy(fake.base_url()).ratelimiter_disabled(true).build()`), build the
//! client with `ClientBuilder::new_with_http(http, intents)`, start it in a task, then
//! `fake.wait_for_ready(..)`, `fake.dispatch("INTERACTION_CREATE", payload)` and
//! `fake.wait_for_request(..)`.

#![allow(dead_code)]

//!
//! The REST side is in `fake_discord/rest.rs`, the gateway in `fake_discord/gateway.rs`, and the
//! payload builders (re-exported here) in `fake_discord/payloads.rs`.

mod gateway;
mod payloads;
mod rest;

pub use payloads::*;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::discord_spec;

/// Default bound used by the `wait_*` helpers when a test passes none of its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Guild id used by the payload builders.
pub const GUILD_ID: u64 = 900_000_000_000_000_001;
/// Channel id used by the payload builders.
pub const CHANNEL_ID: u64 = 900_000_000_000_000_002;
/// A fixed ISO-8601 timestamp used in payloads.
pub const TIMESTAMP: &str = "2026-01-01T00:00:00.000000+00:00";

/// Settings of a [`FakeDiscord`].
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// The bot user's id (READY `user.id`, `GET /users/@me`, author of messages the bot sends).
    pub bot_user_id: u64,
    /// The bot user's name.
    pub bot_username: String,
    /// The application id (READY `application.id`, `GET /oauth2/applications/@me`).
    pub application_id: u64,
    /// `shards` answered by `GET /gateway/bot` (what `start_autosharded` uses).
    pub recommended_shards: u64,
    /// The gateway's `heartbeat_interval` in HELLO, in milliseconds.
    pub heartbeat_interval_ms: u64,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            bot_user_id: 800_000_000_000_000_001,
            bot_username: "guidebot".into(),
            application_id: 800_000_000_000_000_002,
            recommended_shards: 1,
            heartbeat_interval_ms: 41_250,
        }
    }
}

/// One HTTP request the fake received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Position in the log, from 0 (use it to look only at requests after a point).
    pub index: usize,
    /// HTTP method, upper case (`"POST"`).
    pub method: String,
    /// Full path as sent, e.g. `/api/v10/interactions/1/tok/callback`.
    pub path: String,
    /// The OpenAPI path template it matched, e.g.
    /// `/interactions/{interaction_id}/{interaction_token}/callback`, or `None` for unknown routes.
    pub route: Option<&'static str>,
    /// Values of the template's `{params}`, e.g. `interaction_token`.
    pub params: HashMap<String, String>,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Request headers, names lower case.
    pub headers: Vec<(String, String)>,
    /// The JSON body (for multipart requests: the `payload_json` part), if any.
    pub body: Option<Value>,
    /// The raw body bytes.
    pub raw_body: Bytes,
    /// Status the fake answered with.
    pub status: u16,
    /// Whether the body was checked against the spec (the spec describes a JSON body there).
    pub spec_checked: bool,
    /// Spec violations of the body (empty when valid or not checked).
    pub spec_errors: Vec<String>,
    /// When the fake received it (ack latency in the burst test).
    pub received_at: std::time::Instant,
    /// The JSON the fake answered with, if any (e.g. the posted message with its id).
    pub response: Option<Value>,
}

impl RecordedRequest {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// True if this is `method` on the OpenAPI route template `route`.
    pub fn is(&self, method: &str, route: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.route == Some(route)
    }

    /// The route parameter `name` (e.g. `"interaction_token"`); panics if absent.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .get(name)
            .unwrap_or_else(|| panic!("request {} {} has no param {name}", self.method, self.path))
    }

    /// The JSON body; panics if there is none.
    pub fn json(&self) -> &Value {
        self.body
            .as_ref()
            .unwrap_or_else(|| panic!("request {} {} has no JSON body", self.method, self.path))
    }
}

/// One gateway IDENTIFY (op 2) the fake received.
#[derive(Clone, Debug)]
pub struct RecordedIdentify {
    /// Token exactly as sent: serenity 0.12.5 sends `"Bot <token>"` (its `Http::token()`).
    pub token: String,
    /// Gateway intents bit set.
    pub intents: u64,
    /// `[shard_id, shard_count]`, if sent.
    pub shard: Option<[u64; 2]>,
    /// The whole `d` object.
    pub raw: Value,
}

/// A programmed failure for a REST route: the next `times` matching calls get `status` + `body`.
#[derive(Clone, Debug)]
struct Failure {
    method: String,
    route: String,
    times: usize,
    status: u16,
    body: Value,
}

struct Session {
    shard: [u64; 2],
    ready: bool,
    seq: u64,
    tx: mpsc::UnboundedSender<String>,
}

struct Shared {
    cfg: FakeConfig,
    base_url: String,
    requests: Mutex<Vec<RecordedRequest>>,
    identifies: Mutex<Vec<RecordedIdentify>>,
    /// Sessions by connection number; removed when the socket closes.
    sessions: Mutex<HashMap<u64, Session>>,
    failures: Mutex<Vec<Failure>>,
    /// Interaction token -> channel id, learnt from dispatched interactions.
    token_channels: Mutex<HashMap<String, u64>>,
    /// Channels `GET /channels/{id}` answers with (added by tests; others are 404).
    channels: Mutex<HashMap<u64, Value>>,
    next_id: AtomicU64,
    next_conn: AtomicU64,
    /// Bumped on every recorded event; waiters re-check their condition when it changes.
    changed: watch::Sender<u64>,
    /// Gateway frames the bot sent, in order (op + d), for debugging.
    gateway_log: Mutex<Vec<Value>>,
}

impl Shared {
    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn snowflake(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn ws_url(&self) -> String {
        format!("{}/gw", self.base_url.replacen("http://", "ws://", 1))
    }

    fn bot_user(&self) -> Value {
        user_json(self.cfg.bot_user_id, &self.cfg.bot_username, true)
    }
}

/// The fake Discord server. Dropping it stops the server.
pub struct FakeDiscord {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeDiscord {
    /// Starts a fake Discord with default settings on 127.0.0.1 (random port).
    pub async fn start() -> Self {
        Self::start_with(FakeConfig::default()).await
    }

    /// Starts a fake Discord with `cfg` on 127.0.0.1 (random port).
    pub async fn start_with(cfg: FakeConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake discord");
        let addr = listener.local_addr().unwrap();
        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            cfg,
            base_url: format!("http://{addr}"),
            requests: Mutex::default(),
            identifies: Mutex::default(),
            sessions: Mutex::default(),
            failures: Mutex::default(),
            token_channels: Mutex::default(),
            channels: Mutex::default(),
            next_id: AtomicU64::new(1_300_000_000_000_000_000),
            next_conn: AtomicU64::new(0),
            changed,
            gateway_log: Mutex::default(),
        });
        let app = Router::new()
            .route("/gw", get(gateway::gateway_upgrade))
            .fallback(rest::rest)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake discord server");
        });
        Self {
            shared,
            addr,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`: what to pass to `HttpBuilder::proxy`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `ws://127.0.0.1:PORT/gw`: the gateway URL the fake hands out.
    pub fn gateway_url(&self) -> String {
        self.shared.ws_url()
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The settings this fake runs with.
    pub fn config(&self) -> &FakeConfig {
        &self.shared.cfg
    }

    /// The application id (READY and every interaction built with this fake's builders).
    pub fn application_id(&self) -> u64 {
        self.shared.cfg.application_id
    }

    /// The bot user's id.
    pub fn bot_user_id(&self) -> u64 {
        self.shared.cfg.bot_user_id
    }

    /// A serenity `Http` pointed at this fake: `proxy(base_url)` + `ratelimiter_disabled(true)`
    /// (without the latter serenity ignores the proxy and talks to discord.com).
    pub fn http(&self, token: &str) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(token)
            .proxy(self.base_url())
            .ratelimiter_disabled(true)
            .build()
    }

    /// Makes `GET /channels/{id}` answer with `channel` (its `id` field names it).
    pub fn add_channel(&self, channel: Value) {
        let id = channel["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("a channel with a string id");
        self.shared.channels.lock().unwrap().insert(id, channel);
    }

    /// A fresh snowflake (unique within this fake).
    pub fn snowflake(&self) -> u64 {
        self.shared.snowflake()
    }

    // ----- recorded requests -------------------------------------------------------------

    /// A snapshot of every REST request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests that hit no known route (answered 404).
    pub fn unknown_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.route.is_none())
            .collect()
    }

    /// The number of requests recorded so far: pass it to a predicate (`r.index >= mark`) to wait
    /// only for requests made after this point.
    pub fn mark(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Waits until a recorded request satisfies `predicate` and returns the first such one.
    /// Panics after `timeout`, listing what was recorded.
    pub async fn wait_for_request(
        &self,
        predicate: impl Fn(&RecordedRequest) -> bool,
        timeout: Duration,
    ) -> RecordedRequest {
        self.wait_for_requests(predicate, 1, timeout)
            .await
            .remove(0)
    }

    /// Waits until `count` recorded requests satisfy `predicate` and returns the first `count`.
    /// Panics after `timeout`, listing what was recorded.
    pub async fn wait_for_requests(
        &self,
        predicate: impl Fn(&RecordedRequest) -> bool,
        count: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        let found = self
            .wait_until(timeout, || {
                let log = self.shared.requests.lock().unwrap();
                // Count first: cloning every match on every wake-up is quadratic in a burst.
                let matches = log.iter().filter(|r| predicate(r)).take(count).count();
                (matches == count).then(|| {
                    log.iter()
                        .filter(|r| predicate(r))
                        .take(count)
                        .cloned()
                        .collect()
                })
            })
            .await;
        match found {
            Some(hits) => hits,
            None => panic!(
                "timed out after {timeout:?} waiting for {count} matching request(s); recorded:\n{}",
                self.describe_requests()
            ),
        }
    }

    /// Waits for `method` on OpenAPI route template `route` (first such request).
    pub async fn wait_for_route(
        &self,
        method: &str,
        route: &str,
        timeout: Duration,
    ) -> RecordedRequest {
        self.wait_for_request(|r| r.is(method, route), timeout)
            .await
    }

    /// One line per recorded request (for failure messages).
    pub fn describe_requests(&self) -> String {
        self.shared
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "  #{} {} {} -> {} {}{}",
                    r.index,
                    r.method,
                    r.path,
                    r.status,
                    r.body.as_ref().map(|b| b.to_string()).unwrap_or_default(),
                    if r.spec_errors.is_empty() {
                        String::new()
                    } else {
                        format!(" SPEC ERRORS: {:?}", r.spec_errors)
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Panics if any recorded request body violates Discord's spec, or hit an unknown route.
    pub fn assert_all_valid(&self) {
        let log = self.requests();
        let bad: Vec<String> = log
            .iter()
            .filter(|r| !r.spec_errors.is_empty() || r.route.is_none())
            .map(|r| {
                if r.route.is_none() {
                    format!(
                        "#{} {} {}: unknown route (fake answered 404)",
                        r.index, r.method, r.path
                    )
                } else {
                    format!(
                        "#{} {} {}:\n    {}",
                        r.index,
                        r.method,
                        r.path,
                        r.spec_errors.join("\n    ")
                    )
                }
            })
            .collect();
        assert!(
            bad.is_empty(),
            "requests violating Discord's API:\n{}",
            bad.join("\n")
        );
    }

    /// Polls `check` each time the fake records something, until it yields `Some` or `timeout`.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(v) = check() {
                return Some(v);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return check(),
            }
        }
    }

    // ----- programmable failures ---------------------------------------------------------

    /// Makes the next `times` calls of `method route` (OpenAPI template, e.g.
    /// `"/interactions/{interaction_id}/{interaction_token}/callback"`) answer `status` with JSON
    /// `body`. The requests are still recorded and validated.
    pub fn fail_next(&self, method: &str, route: &str, times: usize, status: u16, body: Value) {
        self.shared.failures.lock().unwrap().push(Failure {
            method: method.to_ascii_uppercase(),
            route: route.to_string(),
            times,
            status,
            body,
        });
    }

    /// Makes the next `times` calls of `method route` answer 500 Internal Server Error.
    pub fn fail_next_500(&self, method: &str, route: &str, times: usize) {
        self.fail_next(
            method,
            route,
            times,
            500,
            json!({"message": "500: Internal Server Error", "code": 0}),
        );
    }

    /// Makes the next `times` calls of `method route` answer 429 Too Many Requests
    /// (`retry_after` 0.05 s, with the usual rate-limit headers).
    pub fn fail_next_429(&self, method: &str, route: &str, times: usize) {
        self.fail_next(
            method,
            route,
            times,
            429,
            json!({"message": "You are being rate limited.", "retry_after": 0.05, "global": false}),
        );
    }

    // ----- gateway ---------------------------------------------------------------------

    /// Every IDENTIFY received so far, in order.
    pub fn identifies(&self) -> Vec<RecordedIdentify> {
        self.shared.identifies.lock().unwrap().clone()
    }

    /// Every gateway frame the bot sent (parsed JSON), in order.
    pub fn gateway_frames(&self) -> Vec<Value> {
        self.shared.gateway_log.lock().unwrap().clone()
    }

    /// Waits for the `n`-th IDENTIFY (1-based count) and returns it.
    pub async fn wait_for_identify(&self, n: usize, timeout: Duration) -> RecordedIdentify {
        let found = self
            .wait_until(timeout, || {
                self.shared.identifies.lock().unwrap().get(n - 1).cloned()
            })
            .await;
        found.unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for IDENTIFY #{n}; got {:?}; REST:\n{}",
                self.identifies(),
                self.describe_requests()
            )
        })
    }

    /// Waits until `shards` gateway sessions have been sent READY (i.e. the bot is connected).
    pub async fn wait_for_ready(&self, shards: usize, timeout: Duration) {
        let ok = self
            .wait_until(timeout, || {
                let n = self
                    .shared
                    .sessions
                    .lock()
                    .unwrap()
                    .values()
                    .filter(|s| s.ready)
                    .count();
                (n >= shards).then_some(())
            })
            .await;
        if ok.is_none() {
            panic!(
                "timed out after {timeout:?} waiting for {shards} READY session(s); identifies {:?}; REST:\n{}",
                self.identifies(),
                self.describe_requests()
            );
        }
    }

    /// Number of open gateway sessions that got READY.
    pub fn ready_sessions(&self) -> usize {
        self.shared
            .sessions
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.ready)
            .count()
    }

    /// Waits until no gateway session is open (e.g. after `shard_manager.shutdown_all()`).
    pub async fn wait_for_gateway_closed(&self, timeout: Duration) {
        let ok = self
            .wait_until(timeout, || {
                self.shared
                    .sessions
                    .lock()
                    .unwrap()
                    .is_empty()
                    .then_some(())
            })
            .await;
        assert!(
            ok.is_some(),
            "gateway sessions still open after {timeout:?}"
        );
    }

    /// Sends a dispatch (op 0) `event` with data `d` to the shard Discord would route it to
    /// (by `d.guild_id`: `(guild_id >> 22) % shard_count`, shard 0 without a guild), with the
    /// session's next sequence number. Waits (bounded by [`DEFAULT_TIMEOUT`]) for that shard to be
    /// READY. Interaction tokens are remembered so follow-up messages get the right channel.
    pub async fn dispatch(&self, event: &str, d: Value) {
        let guild = d.get("guild_id").and_then(|g| {
            g.as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .or(g.as_u64())
        });
        self.dispatch_with(event, d, move |shard| match guild {
            Some(g) => (g >> 22) % shard[1].max(1) == shard[0],
            None => shard[0] == 0,
        })
        .await;
    }

    /// Sends a dispatch to shard `shard_id` explicitly.
    pub async fn dispatch_to_shard(&self, shard_id: u64, event: &str, d: Value) {
        self.dispatch_with(event, d, move |shard| shard[0] == shard_id)
            .await;
    }

    async fn dispatch_with(&self, event: &str, d: Value, pick: impl Fn([u64; 2]) -> bool) {
        if event == "INTERACTION_CREATE" {
            if let (Some(tok), Some(ch)) = (
                d.get("token").and_then(Value::as_str),
                d.get("channel_id")
                    .and_then(Value::as_str)
                    .and_then(|c| c.parse().ok()),
            ) {
                self.shared
                    .token_channels
                    .lock()
                    .unwrap()
                    .insert(tok.to_string(), ch);
            }
        }
        let sent = self
            .wait_until(DEFAULT_TIMEOUT, || {
                let mut sessions = self.shared.sessions.lock().unwrap();
                let session = sessions.values_mut().find(|s| s.ready && pick(s.shard))?;
                session.seq += 1;
                let frame = json!({"op": 0, "t": event, "s": session.seq, "d": d}).to_string();
                session.tx.send(frame).ok()
            })
            .await;
        if sent.is_none() {
            panic!("no READY gateway session for dispatch {event} within {DEFAULT_TIMEOUT:?}");
        }
    }

    /// Asks every open gateway session to reconnect (op 7 RECONNECT), as Discord does. The fake
    /// answers the RESUME with RESUMED; not yet exercised by the probe tests.
    pub fn request_reconnect(&self) {
        for s in self.shared.sessions.lock().unwrap().values() {
            let _ = s.tx.send(json!({"op": 7, "d": null}).to_string());
        }
    }
}
