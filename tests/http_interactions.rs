//! The HTTP interactions endpoint end to end: signed requests with a test Ed25519 key over a real
//! socket (and a few through `tower::ServiceExt::oneshot`), every command, autocomplete, every
//! rejection, deferred LLM answers edited on a fake Discord REST server, health and metrics.
//! Every body the endpoint returns is validated against Discord's OpenAPI spec.

mod support;

use axum::body::Body;
use ed25519_dalek::{Signer, SigningKey};
use guidebot::bot::{BotSettings, Dispatcher};
use guidebot::engine::EngineHandle;
use guidebot::llm::LlmSettings;
use guidebot::metrics::Metrics;
use guidebot::store::{
    BudgetScope, PostgresStore, Report, SqliteStore, Storage, StorageOptions, Store, StoreError,
    Usage,
};
use guidebot::transport::http::{app, run, AppState, HttpSettings};
use guidebot::util::secret::Secret;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::discord_spec::validate_request_body;
use support::fake_discord::{self as fd, FakeDiscord, DEFAULT_TIMEOUT};
use support::fake_llm::{openai_chunk, openai_sse, openai_usage_chunk, sse_response, FakeLlm};
use tokio::sync::oneshot;
use tower::ServiceExt;

const APP_ID: u64 = 800_000_000_000_000_002;
const USER: u64 = 700_000_000_000_000_001;
const CALLBACK: &str = "/interactions/{interaction_id}/{interaction_token}/callback";
const EDIT_ORIGINAL: &str = "/webhooks/{webhook_id}/{webhook_token}/messages/@original";

fn test_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `(X-Signature-Ed25519, X-Signature-Timestamp)` for `body` signed by `key` at `timestamp`.
fn sign(key: &SigningKey, body: &[u8], timestamp: i64) -> (String, String) {
    let timestamp = timestamp.to_string();
    let message = [timestamp.as_bytes(), body].concat();
    (hex::encode(key.sign(&message).to_bytes()), timestamp)
}

use support::setup::bundled_engine as engine;

fn state(
    llm: Option<LlmSettings>,
    api_base: &str,
    store: Option<Arc<dyn Store>>,
) -> (AppState, Arc<EngineHandle>) {
    let (state, engines, _) = state_tuned(llm, api_base, store, |_| {});
    (state, engines)
}

/// [`state`] with its HTTP settings changed by `tune` first.
fn state_tuned(
    llm: Option<LlmSettings>,
    api_base: &str,
    store: Option<Arc<dyn Store>>,
    tune: impl FnOnce(&mut HttpSettings),
) -> (AppState, Arc<EngineHandle>, Option<Arc<Storage>>) {
    let engines = Arc::new(EngineHandle::new(engine(llm)));
    let metrics = Arc::new(Metrics::new());
    let bot = BotSettings {
        edit_interval: Duration::from_millis(10),
        ..BotSettings::default()
    };
    let mut dispatcher = Dispatcher::new(Arc::clone(&engines), bot, metrics.clone());
    // As `guidebot serve` does: the storage's figures in /metrics.
    let storage = store.map(|store| Storage::start(store, StorageOptions::default(), true));
    if let Some(storage) = &storage {
        dispatcher = dispatcher.with_storage(Arc::clone(storage));
        let storage = Arc::clone(storage);
        metrics.follow_storage(move || storage.figures());
    }
    let dispatcher = Arc::new(dispatcher);
    let mut settings = HttpSettings::new(hex::encode(test_key().verifying_key().to_bytes()));
    settings.api_base = api_base.to_string();
    settings.max_body_bytes = 64 * 1024;
    settings.metrics_on_public_port = true;
    tune(&mut settings);
    (
        AppState::new(dispatcher, metrics, settings).unwrap(),
        engines,
        storage,
    )
}

/// A running endpoint on 127.0.0.1 with a client for it.
struct Server {
    base: String,
    client: reqwest::Client,
    state: AppState,
    engines: Arc<EngineHandle>,
    /// The dispatcher's storage, when it has a store.
    storage: Option<Arc<Storage>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(llm: Option<LlmSettings>, api_base: &str) -> Server {
        Server::start_with(llm, api_base, None).await
    }

    async fn start_with(
        llm: Option<LlmSettings>,
        api_base: &str,
        store: Option<Arc<dyn Store>>,
    ) -> Server {
        Server::start_tuned(llm, api_base, store, |_| {}).await
    }

    /// A server whose HTTP settings `tune` changes (short timeouts, ...).
    async fn start_tuned(
        llm: Option<LlmSettings>,
        api_base: &str,
        store: Option<Arc<dyn Store>>,
        tune: impl FnOnce(&mut HttpSettings),
    ) -> Server {
        let (state, engines, storage) = state_tuned(llm, api_base, store, tune);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            base,
            client: reqwest::Client::new(),
            state,
            engines,
            storage,
            stop: Some(stop),
            task,
        }
    }

    /// POSTs `body` to /interactions with the given headers.
    async fn post_raw(&self, body: Vec<u8>, headers: &[(&str, String)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/interactions", self.base))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    /// POSTs `body` correctly signed with the test key, now.
    async fn post(&self, body: &Value) -> reqwest::Response {
        let raw = body.to_string().into_bytes();
        let (signature, timestamp) = sign(&test_key(), &raw, now());
        self.post_raw(
            raw,
            &[
                ("x-signature-ed25519", signature),
                ("x-signature-timestamp", timestamp),
            ],
        )
        .await
    }

    /// POSTs a signed interaction and returns its 200 JSON body, checked against the spec.
    async fn interaction(&self, body: &Value) -> Value {
        let response = self.post(body).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let value: Value = response.json().await.unwrap();
        assert_valid_callback(&value);
        value
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn metrics(&self) -> String {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
        // As `guidebot serve` does once every answer is sent: commit what is queued.
        if let Some(storage) = &self.storage {
            assert!(
                storage.flush(Duration::from_secs(10)).await,
                "storage drained"
            );
        }
    }

    /// Waits until the replay check answers fresh ids from memory (SQLite: the recent ids are
    /// loaded), so the counts below say who answered.
    async fn replay_memory_loaded(&self) {
        self.storage
            .as_ref()
            .expect("a server with a store")
            .replay_memory_loaded()
            .await;
    }
}

/// The endpoint's response body is what Discord's callback route accepts.
fn assert_valid_callback(body: &Value) {
    let errors = validate_request_body("POST", CALLBACK, body).expect("callback schema");
    assert!(
        errors.is_empty(),
        "invalid callback body {body}: {errors:?}"
    );
}

/// The value of the sample `name` (exact labels) in a Prometheus exposition, 0 when absent.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

fn command(name: &str, options: Value) -> Value {
    fd::interaction_command(APP_ID, name, options, USER)
}

fn assert_no_pings(data: &Value) {
    assert_eq!(
        data["allowed_mentions"]["parse"],
        json!([]),
        "allowed_mentions must ping no one: {data}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_pong_with_a_json_content_type() {
    let server = Server::start(None, "http://127.0.0.1:9").await;
    let body = server.interaction(&fd::ping_interaction(APP_ID)).await;
    assert_eq!(body, json!({"type": 1}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_commands_answer_in_the_http_response() {
    let server = Server::start(None, "http://127.0.0.1:9").await;

    // /ask without an LLM: the extractive answer, with citations, in the response itself.
    let ask = server
        .interaction(&command(
            "ask",
            json!([fd::opt("question", "whats the TC for a google L4 MLE?")]),
        ))
        .await;
    assert_eq!(ask["type"], 4, "{ask}");
    let data = &ask["data"];
    assert_no_pings(data);
    let text = data.to_string();
    assert!(
        text.contains("$300k"),
        "the answer quotes the guide: {text}"
    );
    assert!(data["embeds"].as_array().is_some_and(|e| !e.is_empty()));

    let search = server
        .interaction(&command(
            "search",
            json!([fd::opt("query", "system design interview")]),
        ))
        .await;
    assert_eq!(search["type"], 4);
    assert_no_pings(&search["data"]);
    assert!(!search["data"]["embeds"].as_array().unwrap().is_empty());

    let comp = server
        .interaction(&command("comp", json!([fd::opt("company", "Google")])))
        .await;
    assert_eq!(comp["type"], 4);
    assert_no_pings(&comp["data"]);
    assert!(comp["data"].to_string().contains("Google"), "{comp}");

    let section = server.engines.current().section_choices("")[0]
        .value
        .clone();
    let source = server
        .interaction(&command("source", json!([fd::opt("section", section)])))
        .await;
    assert_eq!(source["type"], 4);
    assert_eq!(
        source["data"]["flags"].as_u64().unwrap_or(0) & 64,
        0,
        "a found section is public: {source}"
    );

    let about = server.interaction(&command("about", json!([]))).await;
    assert_eq!(about["type"], 4);
    let fingerprint = server.engines.current().fingerprint().to_string();
    assert!(about.to_string().contains(&fingerprint[..8]), "{about}");

    // An unknown command gets an ephemeral notice, not an error.
    let unknown = server.interaction(&command("dance", json!([]))).await;
    assert_eq!(unknown["type"], 4);
    assert_eq!(unknown["data"]["flags"], 64, "{unknown}");
    assert!(unknown.to_string().contains("dance"));

    // A feedback button press.
    let button = server
        .interaction(&fd::interaction_component(
            APP_ID,
            "feedback:up:0123456789abcdef0123",
            USER,
            fd::next_snowflake(),
        ))
        .await;
    assert_eq!(button["type"], 4);
    assert_eq!(button["data"]["flags"], 64);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heading_with_no_text_lists_its_subsections_and_each_opens() {
    let server = Server::start(None, "http://127.0.0.1:9").await;
    // "Frequently asked questions" and the guide's title have no text of their own. Each answer
    // is checked against Discord's spec by `interaction` (an empty message would be rejected).
    let faq = server
        .interaction(&command(
            "source",
            json!([fd::opt("section", "Frequently asked questions")]),
        ))
        .await;
    assert_eq!(faq["type"], 4, "{faq}");
    let description = faq["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("Should I learn Rust or C++ at mid for ML?"),
        "{faq}"
    );
    let buttons: Vec<&serde_json::Value> = faq["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(buttons.len(), 7, "{faq}");
    let custom_id = buttons[0]["custom_id"].as_str().unwrap_or_default();
    assert!(custom_id.starts_with("source:"), "{custom_id}");

    // Pressing a subsection's button opens it.
    let opened = server
        .interaction(&fd::interaction_component(
            APP_ID,
            custom_id,
            USER,
            fd::next_snowflake(),
        ))
        .await;
    assert_eq!(opened["type"], 4);
    assert!(
        opened.to_string().contains("specialization"),
        "the first FAQ's text: {opened}"
    );

    // The guide's title (its H1) has no text of its own either: it lists the guide's sections.
    let title = server
        .interaction(&command(
            "source",
            json!([fd::opt(
                "section",
                "Mid-Level Data Scientist / ML Engineer Guide (2026): What Senior Promotion Actually Looks Like"
            )]),
        ))
        .await;
    assert_eq!(title["type"], 4, "{title}");
    let listed = title["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        listed.contains("In short") && listed.contains("Key takeaways"),
        "{title}"
    );
    let buttons = title["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .count();
    assert!((1..=25).contains(&buttons), "{buttons} buttons: {title}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocomplete_returns_at_most_25_choices() {
    let server = Server::start(None, "http://127.0.0.1:9").await;
    let comp = server
        .interaction(&fd::interaction_autocomplete(
            APP_ID,
            "comp",
            json!([fd::opt_focused("company", "goo")]),
            USER,
        ))
        .await;
    assert_eq!(comp["type"], 8, "{comp}");
    let choices = comp["data"]["choices"].as_array().unwrap();
    assert!(!choices.is_empty() && choices.len() <= 25);
    assert!(choices.iter().any(|c| c["value"] == "Google"), "{comp}");

    let source = server
        .interaction(&fd::interaction_autocomplete(
            APP_ID,
            "source",
            json!([fd::opt_focused("section", "")]),
            USER,
        ))
        .await;
    assert_eq!(source["type"], 8);
    let choices = source["data"]["choices"].as_array().unwrap();
    assert!(!choices.is_empty() && choices.len() <= 25, "{source}");

    // An autocomplete interaction with no option marked focused is still answered with type 8.
    let unfocused = server
        .interaction(&fd::interaction_autocomplete(
            APP_ID,
            "comp",
            json!([fd::opt("company", "goo")]),
            USER,
        ))
        .await;
    assert_eq!(unfocused["type"], 8, "{unfocused}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthentic_stale_malformed_and_oversized_requests_are_rejected() {
    let server = Server::start(None, "http://127.0.0.1:9").await;
    let body = command("comp", json!([fd::opt("company", "Google")]))
        .to_string()
        .into_bytes();
    let (signature, timestamp) = sign(&test_key(), &body, now());
    let headers = |signature: &str, timestamp: &str| {
        vec![
            ("x-signature-ed25519", signature.to_string()),
            ("x-signature-timestamp", timestamp.to_string()),
        ]
    };
    let expect = |status: u16, reason: &'static str| {
        move |response: reqwest::Response| async move {
            assert_eq!(response.status(), status);
            assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "application/json"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["reason"], reason, "{body}");
            assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        }
    };

    // A signature over another body (tampering), and a signature that is not hex.
    let (other, _) = sign(&test_key(), b"{\"type\":1}", now());
    expect(401, "bad_signature")(
        server
            .post_raw(body.clone(), &headers(&other, &timestamp))
            .await,
    )
    .await;
    expect(401, "bad_signature")(
        server
            .post_raw(body.clone(), &headers("not-hex", &timestamp))
            .await,
    )
    .await;
    // Same signature, another timestamp.
    let later = (now() + 1).to_string();
    expect(401, "bad_signature")(
        server
            .post_raw(body.clone(), &headers(&signature, &later))
            .await,
    )
    .await;
    // The wrong key.
    let wrong = SigningKey::from_bytes(&[8u8; 32]);
    let (wrong_signature, wrong_timestamp) = sign(&wrong, &body, now());
    expect(401, "bad_signature")(
        server
            .post_raw(body.clone(), &headers(&wrong_signature, &wrong_timestamp))
            .await,
    )
    .await;
    // Missing headers, one or both.
    expect(401, "bad_signature")(server.post_raw(body.clone(), &[]).await).await;
    expect(401, "bad_signature")(
        server
            .post_raw(body.clone(), &[("x-signature-ed25519", signature.clone())])
            .await,
    )
    .await;
    expect(401, "bad_signature")(
        server
            .post_raw(
                body.clone(),
                &[("x-signature-timestamp", timestamp.clone())],
            )
            .await,
    )
    .await;
    // Correctly signed, but outside the replay window (past and future).
    for at in [now() - 600, now() + 600] {
        let (signature, timestamp) = sign(&test_key(), &body, at);
        expect(401, "stale")(
            server
                .post_raw(body.clone(), &headers(&signature, &timestamp))
                .await,
        )
        .await;
    }
    // Signed garbage: 400, not a panic.
    for garbage in [
        &b"{not json"[..],
        b"",
        b"[]",
        b"{\"type\":\"two\"}",
        b"{\"type\":2}",
        b"{\"type\":2,\"data\":{\"name\":[]}}",
    ] {
        let (signature, timestamp) = sign(&test_key(), garbage, now());
        expect(400, "malformed")(
            server
                .post_raw(garbage.to_vec(), &headers(&signature, &timestamp))
                .await,
        )
        .await;
    }
    for unknown in [&b"{\"type\":42}"[..], b"{\"type\":5}"] {
        let (signature, timestamp) = sign(&test_key(), unknown, now());
        expect(400, "unknown_type")(
            server
                .post_raw(unknown.to_vec(), &headers(&signature, &timestamp))
                .await,
        )
        .await;
    }
    // Over the body limit: 413 before anything else.
    let mut huge = command("ask", json!([fd::opt("question", "x".repeat(70 * 1024))]))
        .to_string()
        .into_bytes();
    let (signature, timestamp) = sign(&test_key(), &huge, now());
    expect(413, "too_large")(
        server
            .post_raw(huge.clone(), &headers(&signature, &timestamp))
            .await,
    )
    .await;
    huge.truncate(65 * 1024);
    expect(413, "too_large")(server.post_raw(huge, &[]).await).await;

    // The server is still fine, and the rejections were counted.
    assert_eq!(
        server.interaction(&fd::ping_interaction(APP_ID)).await,
        json!({"type": 1})
    );
    let metrics = server.metrics().await;
    let rejections = |reason: &str| {
        sample(
            &metrics,
            &format!("guidebot_http_rejections_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(rejections("bad_signature"), 7.0, "{metrics}");
    assert_eq!(rejections("stale"), 2.0);
    assert_eq!(rejections("malformed"), 6.0);
    assert_eq!(rejections("unknown_type"), 2.0);
    assert_eq!(rejections("too_large"), 2.0);
    assert!(sample(&metrics, "guidebot_verify_seconds_count") >= 15.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_answers_are_deferred_then_edited_through_the_webhook() {
    let fake = FakeDiscord::start().await;
    let llm = FakeLlm::openai().await;
    let text = "A Google L4 MLE earns $300k–$430k in total compensation [1]. ";
    llm.always(sse_response(openai_sse(
        &[
            openai_chunk(Some(&text[..20]), None),
            openai_chunk(Some(&text[20..]), None),
            openai_chunk(None, Some("stop")),
            openai_usage_chunk(900, 40),
        ],
        true,
    )))
    .await;
    let server = Server::start(Some(llm.settings()), &fake.base_url()).await;
    let interaction = fd::interaction_command(
        fake.application_id(),
        "ask",
        json!([fd::opt(
            "question",
            "whats the TC for a google L4 MLE? @everyone"
        )]),
        USER,
    );
    let token = interaction["token"].as_str().unwrap().to_string();
    let deferred = server.interaction(&interaction).await;
    assert_eq!(deferred["type"], 5, "{deferred}");

    // The final edit carries the cited answer; every edit pings no one and fits the spec.
    let edits = fake
        .wait_for_requests(
            |r| {
                r.is("PATCH", EDIT_ORIGINAL)
                    && r.body
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains("answer: openai"))
            },
            1,
            DEFAULT_TIMEOUT,
        )
        .await;
    let last = &edits[0];
    assert_eq!(last.param("webhook_id"), fake.application_id().to_string());
    assert_eq!(last.param("webhook_token"), token);
    assert_eq!(last.header("authorization"), None, "no bot token is sent");
    let body = last.json();
    assert_no_pings(body);
    assert!(body.to_string().contains("$300k–$430k"), "{body}");
    assert!(
        body.to_string().contains("[1]"),
        "citations are shown: {body}"
    );
    for request in fake.requests() {
        assert!(request.is("PATCH", EDIT_ORIGINAL), "{request:?}");
        assert_no_pings(request.json());
    }
    fake.assert_all_valid();

    // The answer was counted with its tokens once the task ended.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = server.metrics().await;
        if sample(&metrics, "guidebot_llm_seconds_count") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        sample(
            &metrics,
            "guidebot_requests_total{command=\"ask\",outcome=\"answered\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "guidebot_llm_tokens_total{direction=\"input\"}"),
        900.0
    );
    assert_eq!(
        sample(&metrics, "guidebot_llm_tokens_total{direction=\"output\"}"),
        40.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_llm_answers_fall_back_and_are_counted_as_llm_errors() {
    let fake = FakeDiscord::start().await;
    let llm = FakeLlm::openai().await;
    llm.always(support::fake_llm::json_response(
        400,
        support::fake_llm::openai_error("bad request", "invalid_request_error"),
    ))
    .await;
    let server = Server::start(Some(llm.settings()), &fake.base_url()).await;
    let interaction = fd::interaction_command(
        fake.application_id(),
        "ask",
        json!([fd::opt("question", "meta E4 DS total comp?")]),
        USER,
    );
    assert_eq!(server.interaction(&interaction).await["type"], 5);
    let edit = fake
        .wait_for_route("PATCH", EDIT_ORIGINAL, DEFAULT_TIMEOUT)
        .await;
    assert!(
        edit.json().to_string().contains("$300k–$420k"),
        "{:?}",
        edit.body
    );
    fake.assert_all_valid();
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = server.metrics().await;
        if sample(&metrics, "guidebot_llm_errors_total{reason=\"llm_failed\"}") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        sample(&metrics, "guidebot_llm_errors_total{reason=\"llm_failed\"}"),
        1.0,
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_health_endpoints_answer() {
    let server = Server::start(None, "http://127.0.0.1:9").await;
    assert_eq!(server.get("/healthz").await.status(), 200);
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["passages"].as_u64().unwrap() > 0);

    let before = server.metrics().await;
    assert!(
        before.contains("# TYPE guidebot_requests counter"),
        "{before}"
    );
    let fingerprint = server.engines.current().fingerprint().to_string();
    assert_eq!(
        sample(
            &before,
            &format!("guidebot_index_info{{fingerprint=\"{fingerprint}\"}}")
        ),
        1.0,
        "{before}"
    );
    let comp = "guidebot_requests_total{command=\"comp\",outcome=\"answered\"}";
    let refused = "guidebot_refusals_total{command=\"search\"}";
    assert_eq!(sample(&before, comp), 0.0);

    for _ in 0..3 {
        server
            .interaction(&command("comp", json!([fd::opt("company", "Meta")])))
            .await;
    }
    server
        .interaction(&command(
            "search",
            json!([fd::opt("query", "best sourdough bread recipe")]),
        ))
        .await;
    server.interaction(&fd::ping_interaction(APP_ID)).await;
    let after = server.metrics().await;
    assert_eq!(sample(&after, comp), 3.0, "{after}");
    assert_eq!(sample(&after, refused), 1.0, "{after}");
    assert_eq!(
        sample(
            &after,
            "guidebot_requests_total{command=\"ping\",outcome=\"pong\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&after, "guidebot_request_seconds_count{command=\"comp\"}"),
        3.0
    );
    assert!(sample(&after, "guidebot_verify_seconds_count") >= 5.0);

    // Draining: not ready any more, still alive.
    server.state.set_ready(false);
    assert_eq!(server.get("/readyz").await.status(), 503);
    assert_eq!(server.get("/healthz").await.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn the_router_works_without_a_socket() {
    let (state, _engines) = state(None, "http://127.0.0.1:9", None);
    let router = app(state);
    let body = fd::ping_interaction(APP_ID).to_string();
    let (signature, timestamp) = sign(&test_key(), body.as_bytes(), now());
    let request = axum::http::Request::post("/interactions")
        .header("x-signature-ed25519", &signature)
        .header("x-signature-timestamp", &timestamp)
        .body(Body::from(body.clone()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&bytes[..], br#"{"type":1}"#);

    let request = axum::http::Request::post("/interactions")
        .header("x-signature-ed25519", "00".repeat(64))
        .header("x-signature-timestamp", &timestamp)
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 401);

    let response = router
        .oneshot(
            axum::http::Request::get("/nowhere")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests_are_all_answered() {
    let server = Arc::new(Server::start(None, "http://127.0.0.1:9").await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let server = Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            let body = if i % 2 == 0 {
                command("comp", json!([fd::opt("company", "Google")]))
            } else {
                command("search", json!([fd::opt("query", "promotion to senior")]))
            };
            server.interaction(&body).await["type"].as_u64()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Some(4));
    }
    let server = Arc::into_inner(server).expect("all requests done");
    server.stop().await;
}

/// A store whose every call on a request's path panics, as a bug deep in a handler would (the
/// replay check answers, so the request reaches the dispatcher).
struct PanickingStore;

#[async_trait::async_trait]
impl Store for PanickingStore {
    fn backend(&self) -> guidebot::store::Backend {
        guidebot::store::Backend::Sqlite
    }
    async fn migrate(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
    async fn write_batch(&self, _: &[guidebot::store::Write]) -> Result<(), StoreError> {
        panic!("injected panic: write_batch")
    }
    async fn claim_llm(
        &self,
        _: &guidebot::store::LlmClaim,
    ) -> Result<guidebot::store::ClaimOutcome, StoreError> {
        panic!("injected panic: claim_llm")
    }
    async fn usage(&self, _: &BudgetScope, _: &str) -> Result<Usage, StoreError> {
        panic!("injected panic: usage")
    }
    async fn cached_answer_json(
        &self,
        _: &str,
        _: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        panic!("injected panic: cached_answer_json")
    }
    async fn first_sighting(&self, _: &str, _: i64) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn interaction_ids_between(&self, _: u64, _: u64) -> Result<Vec<u64>, StoreError> {
        Ok(Vec::new())
    }
    async fn purge_older_than(&self, _: u32, _: i64) -> Result<usize, StoreError> {
        panic!("injected panic: purge_older_than")
    }
    async fn report(&self, _: u32, _: i64) -> Result<Report, StoreError> {
        panic!("injected panic: report")
    }
    async fn guild_stats(
        &self,
        _: &str,
        _: u32,
        _: i64,
    ) -> Result<guidebot::store::GuildStats, StoreError> {
        panic!("injected panic: guild_stats")
    }
    async fn dump(&self) -> Result<guidebot::store::Dump, StoreError> {
        panic!("injected panic: dump")
    }
    async fn import(&self, _: &guidebot::store::Dump) -> Result<(), StoreError> {
        panic!("injected panic: import")
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn conversation_turns(
        &self,
        _: &str,
        _: usize,
        _: i64,
    ) -> Result<Vec<guidebot::engine::PriorTurn>, StoreError> {
        panic!("injected panic: conversation_turns")
    }
    async fn record_turn(
        &self,
        _: &str,
        _: &guidebot::engine::PriorTurn,
        _: i64,
        _: usize,
    ) -> Result<(), StoreError> {
        panic!("injected panic: record_turn")
    }
    async fn conversation_active_since(&self, _: &str, _: i64) -> Result<bool, StoreError> {
        panic!("injected panic: conversation_active_since")
    }
    async fn link_message(
        &self,
        _: &str,
        _: guidebot::store::ConversationKey,
        _: i64,
    ) -> Result<(), StoreError> {
        panic!("injected panic: link_message")
    }
    async fn linked_conversation(
        &self,
        _: &str,
        _: i64,
    ) -> Result<Option<guidebot::store::ConversationKey>, StoreError> {
        panic!("injected panic: linked_conversation")
    }
}

/// Issue 13: a handler that panics is answered with a short message, counted, and neither stops
/// the endpoint nor holds up its shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_answered_counted_and_shutdown_stays_prompt() {
    // With an LLM, the answer cache is read before anything is sent: the store panics there.
    let llm = FakeLlm::openai().await;
    let server = Server::start_with(
        Some(llm.settings()),
        "http://127.0.0.1:9",
        Some(Arc::new(PanickingStore)),
    )
    .await;
    let reply = server
        .interaction(&command(
            "ask",
            json!([fd::opt("question", "whats the TC for a google L4 MLE?")]),
        ))
        .await;
    assert_eq!(reply["type"], 4, "{reply}");
    assert_eq!(reply["data"]["flags"], 64, "{reply}");
    assert!(
        reply.to_string().contains("something went wrong"),
        "{reply}"
    );
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "guidebot_handler_panics_total{command=\"ask\"}"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "guidebot_requests_total{command=\"ask\",outcome=\"panicked\"}"
        ),
        1.0
    );
    // Still serving.
    let about = server.interaction(&command("about", json!([]))).await;
    assert_eq!(about["type"], 4);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while server.state.in_flight() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.state.in_flight(), 0, "no task is left behind");
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
}

/// Issue 18 over the HTTP endpoint: edits while the model writes are marked "writing…"; the last
/// edit holds only the checked sentence, its verbatim row, and the note that one was removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_webhook_edit_keeps_only_checked_sentences_and_says_what_was_removed() {
    use guidebot::llm::ProviderKind;
    use support::fake_llm::scenarios::{one_unsupported_sentence, CHECKED_TEXT, GOOGLE_ROW};
    for kind in [ProviderKind::Anthropic, ProviderKind::OpenAi] {
        let fake = FakeDiscord::start().await;
        let llm = FakeLlm::new(kind).await;
        llm.always(one_unsupported_sentence()).await;
        let server = Server::start(Some(llm.settings()), &fake.base_url()).await;
        let interaction = fd::interaction_command(
            fake.application_id(),
            "ask",
            json!([fd::opt("question", "whats the TC for a google L4 MLE?")]),
            USER,
        );
        assert_eq!(server.interaction(&interaction).await["type"], 5);

        let checked = fake
            .wait_for_requests(
                |r| {
                    r.is("PATCH", EDIT_ORIGINAL)
                        && r.body.as_ref().is_some_and(|b| {
                            b["embeds"][0]["fields"]
                                .as_array()
                                .is_some_and(|f| !f.is_empty())
                        })
                },
                1,
                DEFAULT_TIMEOUT,
            )
            .await;
        let edits = fake.requests();
        let (last, partials) = edits.split_last().unwrap();
        assert_eq!(
            last.json(),
            checked[0].json(),
            "{kind}: the checked edit is the last"
        );
        assert!(!partials.is_empty(), "{kind}: the answer streamed");
        for partial in partials {
            assert!(partial.is("PATCH", EDIT_ORIGINAL));
            assert_eq!(
                partial.json()["embeds"][0]["footer"]["text"],
                guidebot::bot::render::PARTIAL_FOOTER
            );
        }
        let embed = &last.json()["embeds"][0];
        assert_eq!(
            embed["description"],
            format!("{CHECKED_TEXT}\n\n*{}*", guidebot::answer::trimmed_note(1)),
            "{kind}"
        );
        assert!(embed["fields"][0]["value"]
            .as_str()
            .unwrap()
            .starts_with(&format!("> {GOOGLE_ROW}")));
        assert!(!last.json().to_string().contains("$900k"), "{kind}");
        assert_no_pings(last.json());
        fake.assert_all_valid();
        server.stop().await;
    }
}

/// Issue 17: with a store, a correctly signed interaction whose id was already handled is a
/// replay: 401, counted as `replayed`, and not run again (one question in the analytics).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_interaction_id_is_refused_and_not_run_twice() {
    let store: Arc<dyn Store> = Arc::new(guidebot::store::SqliteStore::in_memory().unwrap());
    let server = Server::start_with(None, "http://127.0.0.1:9", Some(store.clone())).await;
    let search = command(
        "search",
        json!([fd::opt("query", "system design interview")]),
    );
    let first = server.post(&search).await;
    assert_eq!(first.status(), 200);
    let replay = server.post(&search).await;
    assert_eq!(replay.status(), 401);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["reason"], "replayed", "{body}");
    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "guidebot_http_rejections_total{reason=\"replayed\"}"
        ),
        1.0,
        "{metrics}"
    );
    // A new id for the same question is a new interaction.
    let again = command(
        "search",
        json!([fd::opt("query", "system design interview")]),
    );
    assert_eq!(server.post(&again).await.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let questions = store
            .report(1, guidebot::util::clock::now_unix())
            .await
            .unwrap()
            .questions;
        if questions == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{questions} questions stored, not 2"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

/// `command(name, options)` with interaction id `id`.
fn command_with_id(name: &str, options: Value, id: u64) -> Value {
    let mut body = command(name, options);
    body["id"] = json!(id.to_string());
    body
}

/// With SQLite, a fresh interaction id (a snowflake of now, as Discord sends) is checked in
/// memory: its replay is refused with 401, counted as `replayed`, answered from memory (the
/// store was not asked), and the id is written to the file by the batching writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_fresh_interaction_id_is_refused_from_memory_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("g.sqlite")).unwrap());
    let server = Server::start_with(None, "http://127.0.0.1:9", Some(store.clone())).await;
    server.replay_memory_loaded().await;
    let id = fd::snowflake_at(now() * 1000, 12);
    let search = command_with_id("search", json!([fd::opt("query", "google l4 tc")]), id);
    assert_eq!(server.post(&search).await.status(), 200);
    let replay = server.post(&search).await;
    assert_eq!(replay.status(), 401);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["reason"], "replayed", "{body}");
    let metrics = server.metrics().await;
    for (name, value) in [
        ("guidebot_http_rejections_total{reason=\"replayed\"}", 1.0),
        ("guidebot_replay_checks_total{answered_by=\"memory\"}", 2.0),
        ("guidebot_replay_checks_total{answered_by=\"store\"}", 0.0),
        ("guidebot_replay_ids_in_memory", 1.0),
    ] {
        assert_eq!(sample(&metrics, name), value, "{name}: {metrics}");
    }
    server.stop().await;
    assert!(
        !store.first_sighting(&id.to_string(), now()).await.unwrap(),
        "the id is in the file"
    );
}

/// With SQLite, a replay sent after a restart (a new endpoint on the same file, the very same
/// signed request) is refused: the new process loaded the recent ids from the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_a_restart_with_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guidebot.sqlite");
    let open = || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&path).unwrap()) };
    let id = fd::snowflake_at(now() * 1000, 34);
    let raw = command_with_id("search", json!([fd::opt("query", "google l4 tc")]), id)
        .to_string()
        .into_bytes();
    let (signature, timestamp) = sign(&test_key(), &raw, now());
    let headers = [
        ("x-signature-ed25519", signature),
        ("x-signature-timestamp", timestamp),
    ];
    let before = Server::start_with(None, "http://127.0.0.1:9", Some(open())).await;
    before.replay_memory_loaded().await;
    assert_eq!(before.post_raw(raw.clone(), &headers).await.status(), 200);
    before.stop().await;

    let after = Server::start_with(None, "http://127.0.0.1:9", Some(open())).await;
    after.replay_memory_loaded().await;
    let replay = after.post_raw(raw, &headers).await;
    assert_eq!(replay.status(), 401);
    let metrics = after.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "guidebot_replay_checks_total{answered_by=\"memory\"}"
        ),
        1.0,
        "{metrics}"
    );
    after.stop().await;
}

/// Interaction ids whose time is at the edges of the signature window (five minutes before and
/// after now) or beyond it, in a request signed now: each is accepted once and refused when
/// replayed, by the store, since memory answers only for ids of the last 10 s and the next minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interaction_ids_at_the_replay_windows_edges_are_refused_when_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("g.sqlite")).unwrap());
    let server = Server::start_with(None, "http://127.0.0.1:9", Some(store)).await;
    server.replay_memory_loaded().await;
    let window = 300;
    let seconds = [-window - 1, -window, window, window + 1];
    for (n, offset) in seconds.into_iter().enumerate() {
        let id = fd::snowflake_at((now() + offset) * 1000, 100 + n as u64);
        let body = command_with_id("comp", json!([fd::opt("company", "Google")]), id);
        assert_eq!(server.post(&body).await.status(), 200, "now{offset:+}");
        assert_eq!(server.post(&body).await.status(), 401, "now{offset:+}");
    }
    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "guidebot_http_rejections_total{reason=\"replayed\"}"
        ),
        4.0,
        "{metrics}"
    );
    // The past ids' checks and the future ids' first checks went to the store; the future ids'
    // replays were answered by memory, which remembered them.
    for (name, value) in [
        ("guidebot_replay_checks_total{answered_by=\"store\"}", 6.0),
        ("guidebot_replay_checks_total{answered_by=\"memory\"}", 2.0),
    ] {
        assert_eq!(sample(&metrics, name), value, "{name}: {metrics}");
    }
    server.stop().await;
}

/// `/ask` with `question` from inside thread `thread_id` (the interaction names the channel's type).
fn ask_in_thread(question: &str, thread_id: u64) -> Value {
    fd::in_thread(
        command("ask", json!([fd::opt("question", question)])),
        thread_id,
        "a thread",
    )
}

/// Asks about Anthropic's mid-level pay in a new thread on `server`; returns the thread.
async fn ask_first_in_a_thread(server: &Server) -> u64 {
    let thread = fd::next_snowflake();
    let first = server
        .interaction(&ask_in_thread(
            "what's anthropic's mid level total comp",
            thread,
        ))
        .await;
    assert!(
        first["data"].to_string().contains("$450k–$700k+"),
        "{first}"
    );
    thread
}

/// "how about openai?" in `thread` on `server` must be read with the thread's first question:
/// OpenAI's row of the pay table, cited (asked alone, or in another thread, it is not found).
async fn assert_follow_up_in(server: &Server, thread: u64) {
    let follow_up = server
        .interaction(&ask_in_thread("how about openai?", thread))
        .await;
    let data = &follow_up["data"];
    assert_no_pings(data);
    assert!(data.to_string().contains("$500k–$900k+"), "{data}");
    let sources = data["embeds"].as_array().unwrap().last().unwrap()["fields"].to_string();
    assert!(
        sources.contains("Compensation: the real bands at mid"),
        "{sources}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_follow_ups_in_a_thread_read_the_threads_earlier_asks() {
    let server = Server::start(None, "http://127.0.0.1:9").await;
    let thread = ask_first_in_a_thread(&server).await;
    // The endpoint sees no messages: it kept its own /ask turns for this thread.
    assert_follow_up_in(&server, thread).await;

    // Another thread has no history: the same words alone do not find OpenAI's pay.
    let elsewhere = server
        .interaction(&ask_in_thread("how about openai?", fd::next_snowflake()))
        .await;
    assert!(!elsewhere["data"].to_string().contains("$500k–$900k+"));
    // Outside threads /ask is a one-off question too.
    let plain = server
        .interaction(&command(
            "ask",
            json!([fd::opt("question", "how about openai?")]),
        ))
        .await;
    assert!(!plain["data"].to_string().contains("$500k–$900k+"));
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "guidebot_follow_ups_total{command=\"ask\"}"),
        1.0,
        "{metrics}"
    );
    server.stop().await;
}

/// Issue 16: the endpoint sees no messages, so `/ask` history lives in the store: a follow-up
/// answered by another replica (another dispatcher on its own handle of one SQLite file, and of
/// one PostgreSQL database when `GUIDEBOT_TEST_POSTGRES_URL` is set) reads the first question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_follow_ups_in_a_thread_reach_another_replica_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guidebot.sqlite");
    let open = || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&path).unwrap()) };
    let first = Server::start_with(None, "http://127.0.0.1:9", Some(open())).await;
    let second = Server::start_with(None, "http://127.0.0.1:9", Some(open())).await;
    let thread = ask_first_in_a_thread(&first).await;
    assert_follow_up_in(&second, thread).await;
    first.stop().await;
    second.stop().await;

    let test = "ask_follow_ups_in_a_thread_reach_another_replica_through_the_store";
    let Some(url) = support::postgres::fresh_database_for(test).await else {
        return;
    };
    let open = || async {
        let store: Arc<dyn Store> =
            Arc::new(PostgresStore::connect(&Secret::new(url.as_str()), None).unwrap());
        store.migrate().await.expect("migrations");
        store
    };
    let first = Server::start_with(None, "http://127.0.0.1:9", Some(open().await)).await;
    let second = Server::start_with(None, "http://127.0.0.1:9", Some(open().await)).await;
    let thread = ask_first_in_a_thread(&first).await;
    assert_follow_up_in(&second, thread).await;
    first.stop().await;
    second.stop().await;
}

/// Issue 16: `/ask` history in an SQLite file survives a restart: the endpoint is stopped and a
/// new one opens the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_history_survives_a_restart_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guidebot.sqlite");
    let open = || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&path).unwrap()) };
    let before = Server::start_with(None, "http://127.0.0.1:9", Some(open())).await;
    let thread = ask_first_in_a_thread(&before).await;
    before.stop().await;
    let after = Server::start_with(None, "http://127.0.0.1:9", Some(open())).await;
    assert_follow_up_in(&after, thread).await;
    after.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_over_http_are_checked_against_the_members_permissions() {
    let server = Server::start(None, "http://127.0.0.1:9").await;
    let admin = |sub: &str, options: Value, permissions: &str| {
        let mut interaction = command(
            "guidebot",
            json!([{"name": sub, "type": 1, "options": options}]),
        );
        interaction["member"]["permissions"] = json!(permissions);
        interaction
    };
    let refused = server.interaction(&admin("stats", json!([]), "0")).await;
    assert_eq!(refused["data"]["flags"], 64);
    assert!(refused.to_string().contains("Manage Server"), "{refused}");
    // Administrator implies Manage Server.
    let stats = server.interaction(&admin("stats", json!([]), "8")).await;
    assert!(stats.to_string().contains("Questions: 0"), "{stats}");
    let set = server
        .interaction(&admin(
            "channel",
            json!([fd::opt("mode", "auto-answer")]),
            "32",
        ))
        .await;
    assert!(set.to_string().contains("auto-answer"), "{set}");
    // Without a reloader in this process, reload says so instead of pretending.
    let reload = server.interaction(&admin("reload", json!([]), "32")).await;
    assert!(reload.to_string().contains("not running"), "{reload}");
    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "guidebot_requests_total{command=\"guidebot\",outcome=\"forbidden\"}"
        ),
        1.0,
        "{metrics}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------- read timeouts over raw sockets

/// Short read timeouts, so the tests below wait fractions of a second instead of the defaults' 10 s.
const HEADER_TIMEOUT: Duration = Duration::from_millis(600);
const BODY_TIMEOUT: Duration = Duration::from_millis(600);
/// How long past its timeout a connection may stay open: the timer fires, then the connection's
/// task runs. Generous for a loaded two-core machine, and still far below the 10 s defaults.
const CLOSE_SLACK: Duration = Duration::from_secs(3);

async fn server_with_short_timeouts() -> Server {
    Server::start_tuned(None, "http://127.0.0.1:9", None, |settings| {
        settings.header_timeout = HEADER_TIMEOUT;
        settings.body_timeout = BODY_TIMEOUT;
    })
    .await
}

/// A bare TCP connection to `server`.
async fn connect(server: &Server) -> tokio::net::TcpStream {
    let addr = server.base.trim_start_matches("http://");
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

/// What a connection received until the server closed it.
struct Closed {
    /// Everything the server sent.
    text: String,
    /// When its first byte arrived, if any did.
    first_byte: Option<std::time::Instant>,
    /// When the server closed the connection (end of stream or reset).
    at: std::time::Instant,
}

/// Reads from `reader` until the server closes the connection; fails the test when it is still
/// open after `limit`. `got_bytes` is set once anything arrived.
async fn read_until_closed(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: Duration,
    got_bytes: Option<&std::sync::atomic::AtomicBool>,
) -> Closed {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let (mut received, mut first_byte) = (Vec::new(), None);
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Closed {
                    text: String::from_utf8_lossy(&received).into_owned(),
                    first_byte,
                    at: std::time::Instant::now(),
                }
            }
            Ok(Ok(read)) => {
                first_byte.get_or_insert_with(std::time::Instant::now);
                if let Some(flag) = got_bytes {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                received.extend_from_slice(&buffer[..read]);
            }
            Err(_) => panic!(
                "the connection was still open after {limit:?}; the server sent {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

/// A connection that sends half its headers and then nothing is closed once the header timeout
/// has passed (with at most a 408 sent), and not before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_are_cut_off_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let server = server_with_short_timeouts().await;
    let mut stream = connect(&server).await;
    let started = std::time::Instant::now();
    stream
        .write_all(b"POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    let closed = read_until_closed(&mut stream, HEADER_TIMEOUT + CLOSE_SLACK, None).await;
    let open_for = closed.at - started;
    assert!(
        open_for >= HEADER_TIMEOUT * 8 / 10,
        "closed after {open_for:?}, before the header timeout: {:?}",
        closed.text
    );
    assert!(
        closed.text.is_empty() || closed.text.starts_with("HTTP/1.1 408"),
        "{:?}",
        closed.text
    );
    // Other clients are served meanwhile.
    server.interaction(&fd::ping_interaction(APP_ID)).await;
    server.stop().await;
}

/// A kept-alive connection that answered one request and then sits idle is closed once the
/// header timeout has passed since its response, and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let server = server_with_short_timeouts().await;
    let mut stream = connect(&server).await;
    let body = fd::ping_interaction(APP_ID).to_string();
    let (signature, timestamp) = sign(&test_key(), body.as_bytes(), now());
    // HTTP/1.1 keeps the connection alive unless told otherwise.
    let request = format!(
        "POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Signature-Ed25519: {signature}\r\nX-Signature-Timestamp: {timestamp}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let closed = read_until_closed(&mut stream, HEADER_TIMEOUT + CLOSE_SLACK, None).await;
    assert!(closed.text.starts_with("HTTP/1.1 200"), "{:?}", closed.text);
    assert!(closed.text.ends_with(r#"{"type":1}"#), "{:?}", closed.text);
    let answered = closed.first_byte.expect("the response arrived");
    let idle_for = closed.at - answered;
    assert!(
        idle_for >= HEADER_TIMEOUT * 8 / 10,
        "the kept-alive connection was closed {idle_for:?} after its response, before the idle timeout"
    );
    server.stop().await;
}

/// Headers and part of a body, then nothing: once the body timeout has passed the client gets
/// 408 and the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_half_way_gets_408_after_the_body_timeout() {
    use tokio::io::AsyncWriteExt;
    let server = server_with_short_timeouts().await;
    let mut stream = connect(&server).await;
    let started = std::time::Instant::now();
    stream
        .write_all(
            b"POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"type\":",
        )
        .await
        .unwrap();
    let closed = read_until_closed(&mut stream, BODY_TIMEOUT + CLOSE_SLACK, None).await;
    assert!(closed.text.starts_with("HTTP/1.1 408"), "{:?}", closed.text);
    let answered_after = closed.first_byte.expect("a response") - started;
    assert!(
        answered_after >= BODY_TIMEOUT * 8 / 10,
        "answered after {answered_after:?}, before the body timeout"
    );
    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            r#"guidebot_http_rejections_total{reason="body_timeout"}"#
        ),
        1.0,
        "{metrics}"
    );
    server.stop().await;
}

/// A body sent a byte at a time, each byte well within the body timeout, is still cut off once
/// the whole body has taken longer than the timeout: the deadline is for the body, not per chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_at_a_time_gets_408_after_the_body_timeout() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncWriteExt;
    let server = server_with_short_timeouts().await;
    let (mut reader, mut writer) = connect(&server).await.into_split();
    // 200 bytes, one every 150 ms: 30 s for the whole body.
    writer
        .write_all(
            b"POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n",
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let answered = Arc::new(AtomicBool::new(false));
    let trickle = {
        let answered = Arc::clone(&answered);
        tokio::spawn(async move {
            for _ in 0..200 {
                // Stop once answered: more bytes on a closed connection would reset it.
                if answered.load(Ordering::SeqCst) || writer.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    let closed = read_until_closed(&mut reader, BODY_TIMEOUT + CLOSE_SLACK, Some(&answered)).await;
    trickle.abort();
    assert!(closed.text.starts_with("HTTP/1.1 408"), "{:?}", closed.text);
    let answered_after = closed.first_byte.expect("a response") - started;
    assert!(
        answered_after >= BODY_TIMEOUT * 8 / 10,
        "answered after {answered_after:?}, before the body timeout"
    );
    server.stop().await;
}
