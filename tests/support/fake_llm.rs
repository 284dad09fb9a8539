//! Fake Anthropic and OpenAI-compatible servers on 127.0.0.1 (wiremock) that record every request's
//! path, headers and JSON body, plus builders for realistic responses and SSE streams, for one
//! provider or for whichever a fake speaks (so one table of cases runs against both), scripted
//! grounding scenarios (`scenarios`) and the rules requests must follow (`request_rules`).
#![allow(dead_code)]

pub mod request_rules;
pub mod scenarios;

use guidebot::llm::{LlmClient, LlmRequest, LlmSettings, PromptPassage, ProviderKind};
use guidebot::util::secret::Secret;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The fake key every test client uses; tests assert it never shows up in errors or Debug output.
pub const TEST_KEY: &str = "sk-test-SECRET-0123456789abcdef";

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lowercase header name => value.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// A fake provider endpoint: responses are scripted with [`FakeLlm::always`] and [`FakeLlm::first`].
pub struct FakeLlm {
    pub server: MockServer,
    pub kind: ProviderKind,
}

impl FakeLlm {
    /// A fake of `kind`'s endpoint.
    pub async fn new(kind: ProviderKind) -> Self {
        FakeLlm {
            server: MockServer::start().await,
            kind,
        }
    }

    /// A fake `POST /v1/messages`.
    pub async fn anthropic() -> Self {
        FakeLlm {
            server: MockServer::start().await,
            kind: ProviderKind::Anthropic,
        }
    }

    /// A fake `POST /v1/chat/completions`.
    pub async fn openai() -> Self {
        FakeLlm {
            server: MockServer::start().await,
            kind: ProviderKind::OpenAi,
        }
    }

    /// An OpenAI-compatible fake that always streams one correct, cited Google L4 answer and
    /// reports 800 + 50 tokens: the LLM answer the budget, store and replica tests count.
    pub async fn openai_google_l4_answer() -> Self {
        let fake = FakeLlm::openai().await;
        fake.always(sse_response(openai_sse(
            &[
                openai_chunk(
                    Some("Google L4 MLE total comp is $300k–$430k [1]."),
                    Some("stop"),
                ),
                openai_usage_chunk(800, 50),
            ],
            true,
        )))
        .await;
        fake
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.uri()
    }

    fn endpoint(&self) -> &'static str {
        match self.kind {
            ProviderKind::Anthropic => "/v1/messages",
            ProviderKind::OpenAi => "/v1/chat/completions",
        }
    }

    /// Answer every request (after any [`FakeLlm::first`] scripts are used up) with `response`.
    /// `response` may be a [`ResponseTemplate`] or a [`scenarios::Script`].
    pub async fn always(&self, response: impl wiremock::Respond + 'static) {
        Mock::given(method("POST"))
            .and(path(self.endpoint()))
            .respond_with(response)
            .with_priority(10)
            .mount(&self.server)
            .await;
    }

    /// Answer the next `times` requests with `response`; scripts run in the order they are added.
    pub async fn first(&self, times: u64, response: impl wiremock::Respond + 'static) {
        Mock::given(method("POST"))
            .and(path(self.endpoint()))
            .respond_with(response)
            .up_to_n_times(times)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// Every request received so far, in order.
    pub async fn requests(&self) -> Vec<Recorded> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| Recorded {
                method: r.method.to_string(),
                path: r.url.path().to_string(),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            v.to_str().unwrap_or("<binary>").to_string(),
                        )
                    })
                    .collect(),
                body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            })
            .collect()
    }

    /// Settings pointing at this server: test key, 2 s timeout, 2 retries.
    pub fn settings(&self) -> LlmSettings {
        let mut s = LlmSettings::new(self.kind, "test-model");
        s.base_url = self.base_url();
        s.api_key = Some(Secret::new(TEST_KEY));
        s.timeout = Duration::from_secs(2);
        s.max_tokens = 256;
        s.temperature = Some(0.2);
        s.max_retries = 2;
        s
    }

    /// A client for [`FakeLlm::settings`].
    pub fn client(&self) -> LlmClient {
        LlmClient::new(self.settings(), reqwest::Client::new())
    }

    /// A whole answer without citations, in this provider's format (usage 321 in, 12 out).
    pub fn plain_answer(&self, text: &str) -> ResponseTemplate {
        json_response(
            200,
            match self.kind {
                ProviderKind::Anthropic => {
                    anthropic_message(json!([{"type": "text", "text": text}]), "end_turn", 321, 12)
                }
                ProviderKind::OpenAi => openai_completion(text, "stop", 321, 12),
            },
        )
    }

    /// An error response with this provider's body shape; `message` is what it says.
    pub fn error(&self, status: u16, message: &str) -> ResponseTemplate {
        let kind = error_kind(status);
        json_response(
            status,
            match self.kind {
                ProviderKind::Anthropic => anthropic_error(kind, message),
                ProviderKind::OpenAi => openai_error(message, kind),
            },
        )
    }

    /// The message an error response built by [`FakeLlm::error`] is reported with.
    pub fn error_message(&self, status: u16, message: &str) -> String {
        let kind = error_kind(status);
        format!("{kind}: {message}")
    }

    /// A streamed answer (SSE body) made of these text deltas, then `ending`.
    pub fn stream_body(&self, deltas: &[&str], ending: StreamEnd) -> String {
        stream_body(self.kind, deltas, ending)
    }

    /// How a stream ending with [`StreamEnd::Error`] reports `message`.
    pub fn stream_error_message(&self, message: &str) -> String {
        match self.kind {
            ProviderKind::Anthropic => format!("overloaded_error: {message}"),
            ProviderKind::OpenAi => message.to_string(),
        }
    }
}

/// A streamed answer of `kind` (SSE body) made of these text deltas, then `ending`.
pub fn stream_body(kind: ProviderKind, deltas: &[&str], ending: StreamEnd) -> String {
    {
        match kind {
            ProviderKind::Anthropic => {
                let mut events = vec![a_message_start(410), a_block_start(0), a_ping()];
                events.extend(deltas.iter().map(|delta| a_text(0, delta)));
                match ending {
                    StreamEnd::Complete => events.extend([
                        a_block_stop(0),
                        a_message_delta("end_turn", 17),
                        a_message_stop(),
                    ]),
                    StreamEnd::Cut => {}
                    StreamEnd::Error(message) => {
                        events.push(a_error("overloaded_error", message));
                        events.push(a_message_stop());
                    }
                }
                anthropic_sse(&events)
            }
            ProviderKind::OpenAi => {
                let mut chunks: Vec<Value> = deltas
                    .iter()
                    .map(|delta| openai_chunk(Some(delta), None))
                    .collect();
                match ending {
                    StreamEnd::Complete => {
                        chunks.push(openai_chunk(None, Some("stop")));
                        chunks.push(openai_usage_chunk(410, 17));
                        openai_sse(&chunks, true)
                    }
                    StreamEnd::Cut => openai_sse(&chunks, false),
                    StreamEnd::Error(message) => {
                        chunks.push(json!({"error": {"message": message, "type": "server_error"}}));
                        chunks.push(openai_chunk(Some(" never shown"), None));
                        openai_sse(&chunks, true)
                    }
                }
            }
        }
    }
}

/// How a scripted stream ends.
#[derive(Debug, Clone, Copy)]
pub enum StreamEnd<'a> {
    /// With the provider's end-of-message events.
    Complete,
    /// Broken off after the deltas.
    Cut,
    /// With an error event carrying this message.
    Error(&'a str),
}

/// JSON response with `status`.
pub fn json_response(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// `text/event-stream` response with this exact body.
pub fn sse_response(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

/// The question and three passages used throughout the tests.
pub fn sample_request() -> LlmRequest {
    LlmRequest {
        system_prompt: "Answer only from the passages. Cite them as [n].".to_string(),
        question: "What do mid-level data scientists earn?".to_string(),
        passages: vec![
            PromptPassage {
                number: 1,
                source: "mid-level-ds-mle-2026#compensation-the-real-bands-at-mid".to_string(),
                title: "Compensation: the real bands at mid".to_string(),
                text: "Mid-level base salaries cluster between $150k and $190k.".to_string(),
                blocks: vec!["Mid-level base salaries cluster between $150k and $190k.".to_string()],
            },
            PromptPassage {
                number: 2,
                source: "mid-level-ds-mle-2026#equity".to_string(),
                title: "Equity".to_string(),
                text: "Equity adds 10-30% at public companies.".to_string(),
                blocks: vec!["Equity adds 10-30% at public companies.".to_string()],
            },
            PromptPassage {
                number: 3,
                source: "mid-level-ds-mle-2026#negotiation".to_string(),
                title: "Negotiation".to_string(),
                text: "Always negotiate the first offer.".to_string(),
                blocks: vec!["Always negotiate the first offer.".to_string()],
            },
        ],
        history: Vec::new(),
        cache_passages: false,
    }
}

// ---------------------------------------------------------------- Anthropic

/// A Messages API response with these content blocks.
pub fn anthropic_message(
    content: Value,
    stop_reason: &str,
    input_tokens: u64,
    output_tokens: u64,
) -> Value {
    json!({
        "id": "msg_01Test",
        "type": "message",
        "role": "assistant",
        "model": "test-model",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
    })
}

/// A `search_result_location` citation of passage `index` (0-based) of [`sample_request`].
pub fn anthropic_citation(index: usize, cited_text: &str) -> Value {
    let p = &sample_request().passages[index];
    json!({
        "type": "search_result_location",
        "source": p.source,
        "title": p.title,
        "cited_text": cited_text,
        "search_result_index": index,
        "start_block_index": 0,
        "end_block_index": 1
    })
}

/// `event: <type>\ndata: <json>\n\n` for each event.
pub fn anthropic_sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "event: {}\ndata: {}\n\n",
                e["type"].as_str().unwrap_or("message"),
                e
            )
        })
        .collect()
}

pub fn a_message_start(input_tokens: u64) -> Value {
    json!({"type": "message_start", "message": {"id": "msg_01Test", "type": "message", "role": "assistant",
        "model": "test-model", "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1}}})
}

pub fn a_block_start(index: usize) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
}

pub fn a_text(index: usize, text: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
}

pub fn a_cite(index: usize, citation: Value) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "citations_delta", "citation": citation}})
}

pub fn a_block_stop(index: usize) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

pub fn a_message_delta(stop_reason: &str, output_tokens: u64) -> Value {
    json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": output_tokens}})
}

pub fn a_message_stop() -> Value {
    json!({"type": "message_stop"})
}

pub fn a_ping() -> Value {
    json!({"type": "ping"})
}

pub fn a_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Anthropic's error body shape.
pub fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

// ---------------------------------------------------------------- OpenAI

/// A chat completion response with one choice.
pub fn openai_completion(
    content: &str,
    finish_reason: &str,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
    })
}

/// A streamed chunk carrying `content` (and `finish_reason` on the last content chunk).
pub fn openai_chunk(content: Option<&str>, finish_reason: Option<&str>) -> Value {
    let delta = match content {
        Some(c) => json!({"role": "assistant", "content": c}),
        None => json!({}),
    };
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_767_225_600,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "usage": null
    })
}

/// The final `include_usage` chunk: empty choices and the usage.
pub fn openai_usage_chunk(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_767_225_600,
        "model": "test-model",
        "choices": [],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
    })
}

/// `data: <json>\n\n` per chunk, then `data: [DONE]\n\n` when `done`.
pub fn openai_sse(chunks: &[Value], done: bool) -> String {
    let mut out: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out
}

/// A whole streamed OpenAI answer in one chunk: `text`, finish reason "stop", then `[DONE]`.
pub fn openai_answer_stream(text: &str) -> ResponseTemplate {
    sse_response(openai_sse(&[openai_chunk(Some(text), Some("stop"))], true))
}

/// OpenAI's error body shape.
pub fn openai_error(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

// ---------------------------------------------------------------- stalling server

/// An axum server on 127.0.0.1 that answers every POST with `200 text/event-stream`, sends `first`
/// and then never sends another byte (nor closes): exercises the idle timeout of a started stream.
/// Returns the base URL; the server lives until the test's runtime shuts down.
pub async fn stalling_sse_server(first: String) -> String {
    use axum::body::Body;
    use axum::response::Response;
    use futures::{stream, StreamExt};

    let app = axum::Router::new().fallback(move || {
        let first = first.clone();
        async move {
            let chunks = stream::once(async move { Ok::<_, std::convert::Infallible>(first) })
                .chain(stream::pending());
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(chunks))
                .expect("static response parts are valid")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// The error type both providers name for an HTTP status.
fn error_kind(status: u16) -> &'static str {
    match status {
        429 => "rate_limit_error",
        400 => "invalid_request_error",
        401 => "authentication_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}
