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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

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

/// REST routes the fake knows, as (method, OpenAPI path template).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/gateway"),
    ("GET", "/gateway/bot"),
    ("GET", "/users/@me"),
    ("GET", "/oauth2/applications/@me"),
    ("GET", "/applications/@me"),
    ("GET", "/applications/{application_id}/commands"),
    ("PUT", "/applications/{application_id}/commands"),
    ("POST", "/applications/{application_id}/commands"),
    (
        "GET",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    ),
    (
        "PUT",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    ),
    (
        "POST",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    ),
    (
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
    ),
    (
        "GET",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
    ),
    (
        "PATCH",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
    ),
    (
        "DELETE",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
    ),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"),
    (
        "GET",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    ),
    (
        "PATCH",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    ),
    (
        "DELETE",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    ),
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    (
        "POST",
        "/channels/{channel_id}/messages/{message_id}/threads",
    ),
    ("POST", "/channels/{channel_id}/typing"),
    (
        "PUT",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
    ),
];

/// Matches `path` (after `/api/v10`) against the known routes; literal segments win over params.
fn match_route(method: &str, path: &str) -> Option<(&'static str, HashMap<String, String>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut best: Option<(usize, &'static str, HashMap<String, String>)> = None;
    for &(m, template) in ROUTES {
        if m != method {
            continue;
        }
        let tsegs: Vec<&str> = template.trim_matches('/').split('/').collect();
        if tsegs.len() != segs.len() {
            continue;
        }
        let mut params = HashMap::new();
        let mut literals = 0;
        let ok = tsegs.iter().zip(&segs).all(|(t, s)| {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                params.insert(name.to_string(), (*s).to_string());
                !s.is_empty()
            } else {
                literals += 1;
                t == s
            }
        });
        if ok && best.as_ref().is_none_or(|(l, _, _)| literals > *l) {
            best = Some((literals, template, params));
        }
    }
    best.map(|(_, t, p)| (t, p))
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
            next_id: AtomicU64::new(1_300_000_000_000_000_000),
            next_conn: AtomicU64::new(0),
            changed,
            gateway_log: Mutex::default(),
        });
        let app = Router::new()
            .route("/gw", get(gateway_upgrade))
            .fallback(rest)
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
                let hits: Vec<_> = log
                    .iter()
                    .filter(|r| predicate(r))
                    .take(count)
                    .cloned()
                    .collect();
                (hits.len() == count).then_some(hits)
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

// ----- REST ------------------------------------------------------------------------------

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Pulls the `payload_json` part out of a multipart body (what serenity sends with files).
fn multipart_payload(content_type: &str, raw: &[u8]) -> Option<Value> {
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let text = String::from_utf8_lossy(raw);
    let delimiter = format!("--{boundary}");
    text.split(delimiter.as_str())
        .filter(|part| part.contains("name=\"payload_json\""))
        .find_map(|part| {
            let body = part.split_once("\r\n\r\n")?.1;
            serde_json::from_str(body.trim_end_matches("\r\n")).ok()
        })
}

async fn rest(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let json_body: Option<Value> = if content_type.starts_with("multipart/") {
        multipart_payload(&content_type, &body)
    } else if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let matched = path
        .strip_prefix("/api/v10")
        .and_then(|p| match_route(method.as_str(), p));
    let (route, params) = match matched {
        Some((r, p)) => (Some(r), p),
        None => (None, HashMap::new()),
    };

    // Compiling a validator the first time takes a moment: keep it off the async workers.
    let (spec_checked, spec_errors) = {
        let (method, json_body, non_empty) = (method.clone(), json_body.clone(), !body.is_empty());
        tokio::task::spawn_blocking(move || {
            check_body(method.as_str(), route, json_body.as_ref(), non_empty)
        })
        .await
        .expect("spec validation task")
    };

    let failure = route.and_then(|route| {
        let mut failures = shared.failures.lock().unwrap();
        let f = failures
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method.as_str() && f.route == route)?;
        f.times -= 1;
        Some((f.status, f.body.clone()))
    });

    let response = match (failure, route) {
        (Some((status, body)), _) => {
            let mut resp = json_response(status, body);
            if status == 429 {
                let h = resp.headers_mut();
                h.insert("retry-after", "1".parse().unwrap());
                h.insert("x-ratelimit-limit", "5".parse().unwrap());
                h.insert("x-ratelimit-remaining", "0".parse().unwrap());
                h.insert("x-ratelimit-reset-after", "0.050".parse().unwrap());
                h.insert("x-ratelimit-bucket", "fake".parse().unwrap());
                h.insert("x-ratelimit-scope", "user".parse().unwrap());
            }
            resp
        }
        (None, Some(route)) => answer(&shared, method.as_str(), route, &params, json_body.as_ref()),
        (None, None) => json_response(404, json!({"message": "404: Not Found", "code": 0})),
    };

    let record = RecordedRequest {
        index: 0,
        method: method.as_str().to_string(),
        path,
        route,
        params,
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: json_body,
        raw_body: body,
        status: response.status().as_u16(),
        spec_checked,
        spec_errors,
    };
    {
        let mut log = shared.requests.lock().unwrap();
        let index = log.len();
        log.push(RecordedRequest { index, ..record });
    }
    shared.bump();
    response
}

/// Validates a request body against the spec: (whether the spec describes a JSON body, errors).
fn check_body(
    method: &str,
    route: Option<&str>,
    json_body: Option<&Value>,
    non_empty: bool,
) -> (bool, Vec<String>) {
    let Some(route) = route else {
        return (false, Vec::new());
    };
    if discord_spec::request_body_validator(method, route).is_none() {
        return (false, Vec::new());
    }
    let errors = match json_body {
        Some(b) => discord_spec::validate_request_body(method, route, b).unwrap_or_default(),
        None if non_empty => vec![format!("{method} {route}: body is not JSON")],
        None => vec![format!("{method} {route}: missing JSON body")],
    };
    (true, errors)
}

/// The normal (non-failing) answer of a known route.
fn answer(
    shared: &Shared,
    method: &str,
    route: &'static str,
    params: &HashMap<String, String>,
    body: Option<&Value>,
) -> Response {
    let cfg = &shared.cfg;
    let empty = json!({});
    let body = body.unwrap_or(&empty);
    let channel_for_token = |token: &str| {
        shared
            .token_channels
            .lock()
            .unwrap()
            .get(token)
            .copied()
            .unwrap_or(CHANNEL_ID)
    };
    match (method, route) {
        ("GET", "/gateway") => json_response(200, json!({"url": shared.ws_url()})),
        ("GET", "/gateway/bot") => json_response(
            200,
            json!({
                "url": shared.ws_url(),
                "shards": cfg.recommended_shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            }),
        ),
        ("GET", "/users/@me") => json_response(200, shared.bot_user()),
        ("GET", "/oauth2/applications/@me") | ("GET", "/applications/@me") => {
            json_response(200, application_json(cfg))
        }
        ("GET", _) if route.ends_with("/commands") => json_response(200, json!([])),
        ("PUT", _) | ("POST", _) if route.ends_with("/commands") => {
            let guild_id = params.get("guild_id").cloned();
            let one = |c: &Value| command_json(shared, c, guild_id.as_deref());
            match body {
                Value::Array(cmds) => {
                    json_response(200, Value::Array(cmds.iter().map(one).collect()))
                }
                other => json_response(if method == "POST" { 201 } else { 200 }, one(other)),
            }
        }
        ("POST", "/interactions/{interaction_id}/{interaction_token}/callback") => {
            StatusCode::NO_CONTENT.into_response()
        }
        (_, r) if r.starts_with("/webhooks/") => {
            if method == "DELETE" {
                return StatusCode::NO_CONTENT.into_response();
            }
            let token = params
                .get("webhook_token")
                .map(String::as_str)
                .unwrap_or("");
            let channel = channel_for_token(token);
            let id = params
                .get("message_id")
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| shared.snowflake());
            let mut msg = message_json(id, channel, shared.bot_user(), body);
            msg["webhook_id"] = json!(cfg.application_id.to_string());
            msg["application_id"] = json!(cfg.application_id.to_string());
            json_response(200, msg)
        }
        ("POST", "/channels/{channel_id}/messages")
        | ("PATCH", "/channels/{channel_id}/messages/{message_id}") => {
            let channel = params["channel_id"].parse().unwrap_or(CHANNEL_ID);
            let id = params
                .get("message_id")
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| shared.snowflake());
            json_response(200, message_json(id, channel, shared.bot_user(), body))
        }
        ("POST", "/channels/{channel_id}/messages/{message_id}/threads") => {
            let parent: u64 = params["channel_id"].parse().unwrap_or(CHANNEL_ID);
            // A thread started from a message has the message's id.
            let id = params["message_id"].clone();
            json_response(
                201,
                json!({
                    "id": id,
                    "type": 11,
                    "guild_id": GUILD_ID.to_string(),
                    "parent_id": parent.to_string(),
                    "owner_id": cfg.bot_user_id.to_string(),
                    "name": body.get("name").cloned().unwrap_or(json!("thread")),
                    "last_message_id": null,
                    "rate_limit_per_user": body.get("rate_limit_per_user").cloned().unwrap_or(json!(0)),
                    "message_count": 0,
                    "member_count": 1,
                    "flags": 0,
                    "thread_metadata": {
                        "archived": false,
                        "auto_archive_duration": body.get("auto_archive_duration").cloned().unwrap_or(json!(1440)),
                        "archive_timestamp": TIMESTAMP,
                        "locked": false
                    }
                }),
            )
        }
        ("POST", "/channels/{channel_id}/typing") => StatusCode::NO_CONTENT.into_response(),
        ("PUT", _) if route.contains("/reactions/") => StatusCode::NO_CONTENT.into_response(),
        _ => json_response(404, json!({"message": "404: Not Found", "code": 0})),
    }
}

fn application_json(cfg: &FakeConfig) -> Value {
    json!({
        "id": cfg.application_id.to_string(),
        "name": cfg.bot_username,
        "icon": null,
        "description": "fake application",
        "bot_public": true,
        "bot_require_code_grant": false,
        "verify_key": "0".repeat(64),
        "flags": 0,
        "owner": user_json(700_000_000_000_000_001, "owner", false),
        "team": null,
        "bot": user_json(cfg.bot_user_id, &cfg.bot_username, true),
        "summary": "",
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": null
    })
}

/// The command object Discord answers for a registered command body `c`.
fn command_json(shared: &Shared, c: &Value, guild_id: Option<&str>) -> Value {
    let mut out = c.clone();
    let Some(obj) = out.as_object_mut() else {
        return out;
    };
    obj.insert("id".into(), json!(shared.snowflake().to_string()));
    obj.insert(
        "application_id".into(),
        json!(shared.cfg.application_id.to_string()),
    );
    obj.insert("version".into(), json!(shared.snowflake().to_string()));
    obj.entry("type").or_insert(json!(1));
    obj.entry("description").or_insert(json!(""));
    obj.entry("default_member_permissions")
        .or_insert(Value::Null);
    obj.entry("nsfw").or_insert(json!(false));
    if let Some(g) = guild_id {
        obj.insert("guild_id".into(), json!(g));
    }
    if obj.get("options").is_some_and(Value::is_null) {
        obj.insert("options".into(), json!([]));
    }
    out
}

// ----- gateway ---------------------------------------------------------------------------

async fn gateway_upgrade(State(shared): State<Arc<Shared>>, mut req: Request) -> Response {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return (StatusCode::BAD_REQUEST, "expected a websocket upgrade").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        run_session(shared, ws).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-accept", accept)
        .body(Body::empty())
        .unwrap()
}

async fn run_session<S>(shared: Arc<Shared>, ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": shared.cfg.heartbeat_interval_ms}, "s": null, "t": null});
    if sink.send(WsMessage::Text(hello.to_string())).await.is_err() {
        return;
    }
    shared.sessions.lock().unwrap().insert(
        conn,
        Session {
            shard: [0, 1],
            ready: false,
            seq: 0,
            tx,
        },
    );
    shared.bump();
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(frame) = out else { break };
                if sink.send(WsMessage::Text(frame)).await.is_err() {
                    break;
                }
            }
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(WsMessage::Ping(p))) => {
                        let _ = sink.send(WsMessage::Pong(p)).await;
                        continue;
                    }
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                shared.gateway_log.lock().unwrap().push(frame.clone());
                match frame.get("op").and_then(Value::as_u64) {
                    Some(1) => {
                        let _ = sink.send(WsMessage::Text(json!({"op": 11, "d": null, "s": null, "t": null}).to_string())).await;
                    }
                    Some(2) => {
                        let d = frame["d"].clone();
                        let shard = d["shard"].as_array().and_then(|a| Some([a.first()?.as_u64()?, a.get(1)?.as_u64()?]));
                        shared.identifies.lock().unwrap().push(RecordedIdentify {
                            token: d["token"].as_str().unwrap_or_default().to_string(),
                            intents: d["intents"].as_u64().unwrap_or_default(),
                            shard,
                            raw: d,
                        });
                        let shard = shard.unwrap_or([0, 1]);
                        let ready = json!({
                            "op": 0, "t": "READY", "s": 1,
                            "d": {
                                "v": 10,
                                "user": shared.bot_user(),
                                "guilds": [],
                                "session_id": format!("fake-session-{conn}"),
                                "resume_gateway_url": shared.ws_url(),
                                "shard": shard,
                                "application": {"id": shared.cfg.application_id.to_string(), "flags": 0}
                            }
                        });
                        if sink.send(WsMessage::Text(ready.to_string())).await.is_err() {
                            break;
                        }
                        if let Some(s) = shared.sessions.lock().unwrap().get_mut(&conn) {
                            s.shard = shard;
                            s.ready = true;
                            s.seq = 1;
                        }
                    }
                    Some(6) => {
                        // RESUME: accept it and carry on with the same numbering.
                        let resumed = json!({"op": 0, "t": "RESUMED", "s": frame["d"]["seq"].as_u64().unwrap_or(0) + 1, "d": {}});
                        let _ = sink.send(WsMessage::Text(resumed.to_string())).await;
                        if let Some(s) = shared.sessions.lock().unwrap().get_mut(&conn) {
                            s.ready = true;
                            s.seq = frame["d"]["seq"].as_u64().unwrap_or(0) + 1;
                        }
                    }
                    _ => {}
                }
                shared.bump();
            }
        }
    }
    shared.sessions.lock().unwrap().remove(&conn);
    shared.bump();
}

// ----- payload builders ------------------------------------------------------------------

static BUILDER_IDS: AtomicU64 = AtomicU64::new(1_100_000_000_000_000_000);

/// A fresh snowflake for payload builders (unique within the test binary).
pub fn next_snowflake() -> u64 {
    BUILDER_IDS.fetch_add(1, Ordering::Relaxed)
}

/// A Discord user object.
pub fn user_json(id: u64, username: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": username,
        "discriminator": "0",
        "global_name": username,
        "avatar": null,
        "bot": bot,
        "public_flags": 0
    })
}

/// A guild member object wrapping `user`.
pub fn member_json(user: &Value) -> Value {
    json!({
        "user": user,
        "nick": null,
        "avatar": null,
        "roles": [],
        "joined_at": TIMESTAMP,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "permissions": "2248473465835073"
    })
}

/// A message object: `id` in `channel_id` by `author`, content/embeds/flags/components taken
/// from `body` (a message create/edit request body).
pub fn message_json(id: u64, channel_id: u64, author: Value, body: &Value) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": author,
        "content": body.get("content").and_then(Value::as_str).unwrap_or(""),
        "timestamp": TIMESTAMP,
        "edited_timestamp": null,
        "tts": body.get("tts").and_then(Value::as_bool).unwrap_or(false),
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": body.get("embeds").filter(|e| e.is_array()).cloned().unwrap_or(json!([])),
        "components": body.get("components").filter(|e| e.is_array()).cloned().unwrap_or(json!([])),
        "pinned": false,
        "type": 0,
        "flags": body.get("flags").and_then(Value::as_u64).unwrap_or(0)
    })
}

/// The common part of an interaction in [`GUILD_ID`]/[`CHANNEL_ID`] from user `user_id`.
fn interaction_base(kind: u8, application_id: u64, user_id: u64) -> Value {
    let id = next_snowflake();
    let user = user_json(user_id, &format!("user{user_id}"), false);
    json!({
        "id": id.to_string(),
        "application_id": application_id.to_string(),
        "type": kind,
        "token": format!("fake-token-{id}"),
        "version": 1,
        "guild_id": GUILD_ID.to_string(),
        "channel_id": CHANNEL_ID.to_string(),
        "channel": {"id": CHANNEL_ID.to_string(), "type": 0, "name": "general", "guild_id": GUILD_ID.to_string()},
        "member": member_json(&user),
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID.to_string()},
        "context": 0,
        "attachment_size_limit": 26_214_400
    })
}

/// Moves an interaction built by the builders here out of the guild into a DM with its user
/// (`user` instead of `member`, no `guild_id`).
pub fn in_dm(mut interaction: Value) -> Value {
    let obj = interaction.as_object_mut().expect("interaction object");
    if let Some(member) = obj.remove("member") {
        obj.insert("user".into(), member["user"].clone());
    }
    obj.remove("guild_id");
    obj.remove("guild_locale");
    obj.insert("context".into(), json!(1));
    obj.insert(
        "channel".into(),
        json!({"id": obj["channel_id"].clone(), "type": 1}),
    );
    interaction
}

/// A command option value for [`interaction_command`]: `type` from the JSON value (string 3,
/// integer 4, boolean 5, number 10).
pub fn opt(name: &str, value: impl Into<Value>) -> Value {
    let value = value.into();
    let kind = match &value {
        Value::String(_) => 3,
        Value::Bool(_) => 5,
        Value::Number(n) if n.is_i64() || n.is_u64() => 4,
        Value::Number(_) => 10,
        other => panic!("unsupported option value {other}"),
    };
    json!({"name": name, "type": kind, "value": value})
}

/// A focused (being typed) string option for [`interaction_autocomplete`].
pub fn opt_focused(name: &str, partial: &str) -> Value {
    json!({"name": name, "type": 3, "value": partial, "focused": true})
}

/// An INTERACTION_CREATE payload for slash command `/name` with `options` (a JSON array of
/// [`opt`] values) from `user_id`, in [`GUILD_ID`]/[`CHANNEL_ID`]. The token is in `["token"]`.
pub fn interaction_command(application_id: u64, name: &str, options: Value, user_id: u64) -> Value {
    let mut i = interaction_base(2, application_id, user_id);
    i["data"] = json!({
        "id": next_snowflake().to_string(),
        "name": name,
        "type": 1,
        "options": options,
        "guild_id": GUILD_ID.to_string()
    });
    i
}

/// An autocomplete interaction (type 4) for `/name`; `options` should contain one
/// [`opt_focused`] value.
pub fn interaction_autocomplete(
    application_id: u64,
    name: &str,
    options: Value,
    user_id: u64,
) -> Value {
    let mut i = interaction_command(application_id, name, options, user_id);
    i["type"] = json!(4);
    i
}

/// A button press (type 3, component type 2) on `custom_id`, attached to a message the bot sent
/// (`message_id`, with a row holding that button; its author is a bot user whose id is the
/// application id, as for bots created after 2019).
pub fn interaction_component(
    application_id: u64,
    custom_id: &str,
    user_id: u64,
    message_id: u64,
) -> Value {
    let mut i = interaction_base(3, application_id, user_id);
    let bot = user_json(application_id, "guidebot", true);
    let mut message = message_json(
        message_id,
        CHANNEL_ID,
        bot,
        &json!({
            "content": "an earlier answer",
            "components": [{"type": 1, "components": [{"type": 2, "style": 2, "label": "button", "custom_id": custom_id}]}]
        }),
    );
    message["application_id"] = json!(application_id.to_string());
    i["message"] = message;
    i["data"] = json!({"custom_id": custom_id, "component_type": 2});
    i
}

/// A PING interaction (type 1), as Discord sends to an HTTP interactions endpoint.
pub fn ping_interaction(application_id: u64) -> Value {
    let id = next_snowflake();
    json!({
        "id": id.to_string(),
        "application_id": application_id.to_string(),
        "type": 1,
        "token": format!("fake-token-{id}"),
        "version": 1,
        "user": null,
        "entitlements": [],
        "authorizing_integration_owners": {},
        "attachment_size_limit": 26_214_400
    })
}

/// A MESSAGE_CREATE payload: `content` by `author` (see [`user_json`]) in
/// [`GUILD_ID`]/[`CHANNEL_ID`], mentioning `mentions` (user objects; to mention the bot, include
/// `<@BOT_ID>` in `content` and the bot's [`user_json`] here).
pub fn message_create(content: &str, author: Value, mentions: &[Value]) -> Value {
    let mut m = message_json(
        next_snowflake(),
        CHANNEL_ID,
        author.clone(),
        &json!({"content": content}),
    );
    m["guild_id"] = json!(GUILD_ID.to_string());
    let mut member = member_json(&author);
    member.as_object_mut().unwrap().remove("user");
    m["member"] = member;
    m["mentions"] = Value::Array(mentions.to_vec());
    m
}
