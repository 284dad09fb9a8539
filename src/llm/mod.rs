//! LLM provider clients: turn a question plus numbered guide passages into an answer with `[n]`
//! citation markers, over Anthropic's Messages API or any OpenAI-compatible Chat Completions server.
//!
//! One small hand-written client on the shared reqwest 0.12 (no SDK crates): bounded retries with
//! exponential backoff, a per-request timeout, SSE streaming, and an API key that never reaches logs,
//! errors or `Debug` output.

#![warn(missing_docs)]

mod anthropic;
pub mod config;
mod openai;
mod sse;

pub use config::{LlmConfigError, LlmSettings, ProviderKind};

use crate::util::secret::Secret;

use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// First retry delay; doubled on each further retry.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest computed backoff between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(4);
/// Longest `retry-after` we are willing to wait inside one user request; a longer one fails fast
/// with [`LlmError::RateLimited`] instead of leaving the user staring at "thinking…".
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
/// Longest provider error message kept in [`LlmError::Status`].
const MAX_ERROR_MESSAGE_CHARS: usize = 300;

/// One retrieved guide passage as shown to the model; `number` is what the model cites as `[n]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptPassage {
    /// 1-based number shown to the model and used in `[n]` markers.
    pub number: usize,
    /// Stable locator, e.g. `mid-level-ds-mle-2026#compensation-the-real-bands-at-mid`.
    pub source: String,
    /// Section heading.
    pub title: String,
    /// Passage text as read (its lines joined by line breaks): what OpenAI-compatible servers get.
    pub text: String,
    /// The citable pieces of `text` in order (a sentence, list item or table row each), so that a
    /// citation can point at exactly the words it relies on: Anthropic gets one text block per
    /// piece and cites block ranges. Empty means one block holding `text`.
    pub blocks: Vec<String>,
}

impl PromptPassage {
    /// The blocks as sent: `blocks`, or `text` alone when there are none.
    pub fn sent_blocks(&self) -> Vec<&str> {
        if self.blocks.is_empty() {
            vec![self.text.as_str()]
        } else {
            self.blocks.iter().map(String::as_str).collect()
        }
    }
}

/// Everything the model sees for one question: instructions, the user's question, the passages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmRequest {
    /// Instructions (system prompt); never mixed with user text.
    pub system_prompt: String,
    /// The user's question, sent only in the user turn.
    pub question: String,
    /// Passages in the order they are numbered.
    pub passages: Vec<PromptPassage>,
    /// Earlier turns of the conversation, oldest first, sent before the question so a follow-up
    /// ("and at Meta?") reads in context. Never cited: only `passages` can be.
    pub history: Vec<HistoryTurn>,
    /// The passages are the whole corpus, the same for every question: send them as a stable,
    /// cacheable prefix (Anthropic: `cache_control` on the last search result; OpenAI-compatible:
    /// numbered in the system message, before anything that changes).
    pub cache_passages: bool,
}

/// One earlier exchange: what the user asked and the answer they were shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTurn {
    /// The user's message.
    pub question: String,
    /// The answer's text as shown.
    pub answer: String,
}

impl HistoryTurn {
    /// The turn as chat messages (user, then assistant) in the shape both providers take.
    pub(crate) fn messages(turns: &[HistoryTurn]) -> Vec<serde_json::Value> {
        turns
            .iter()
            .flat_map(|turn| {
                [
                    serde_json::json!({"role": "user", "content": turn.question}),
                    serde_json::json!({"role": "assistant", "content": turn.answer}),
                ]
            })
            .collect()
    }
}

/// One citation in an answer, mapped back to the passage number of the request. What it claims
/// to quote is unchecked: the answer layer checks it against the passage that was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmCitation {
    /// 1-based passage number (the `number` of a [`PromptPassage`] of the request).
    pub passage_number: usize,
    /// The quoted text when the provider reports it (Anthropic); `None` for `[n]` markers.
    pub cited_text: Option<String>,
    /// The cited blocks of the passage (0-based, end-exclusive) when the provider reports them
    /// (Anthropic's `start_block_index` / `end_block_index`); `None` for `[n]` markers.
    pub blocks: Option<std::ops::Range<usize>>,
}

impl LlmCitation {
    /// A `[n]` marker's citation: a passage number and nothing else.
    pub fn marker(passage_number: usize) -> Self {
        LlmCitation {
            passage_number,
            cited_text: None,
            blocks: None,
        }
    }
}

/// A piece of an answer with what it cites, so each claim can be checked against its own
/// citations. The pieces' texts, concatenated, are the answer without citation markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerPiece {
    /// Text that cites nothing.
    Text(String),
    /// Text the provider ties to these citations (an Anthropic text block with citations).
    Cited {
        /// The text as written.
        text: String,
        /// Its citations to sent passages, in order.
        citations: Vec<LlmCitation>,
    },
    /// A `[n]` marker written by the model: it cites for the sentence it ends. Citations of
    /// passages that were not sent are already removed, so it may be empty.
    Marker(Vec<LlmCitation>),
}

/// Token accounting of one completion, for cost metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Prompt tokens (all of them, read from the provider's cache or not).
    pub input_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// A finished answer, the same shape for both providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmCompletion {
    /// Answer text with `[n]` markers (Anthropic's native citations are rendered as ` [n]` after
    /// each cited block).
    pub text: String,
    /// Citations that map to a passage of the request, in order of appearance, duplicates removed.
    pub citations: Vec<LlmCitation>,
    /// The answer as pieces tied to their citations (what grounding checks).
    pub pieces: Vec<AnswerPiece>,
    /// Citations dropped because they named a passage that was not sent.
    pub unknown_citations: usize,
    /// Token usage as reported by the provider (0 when not reported).
    pub usage: TokenUsage,
    /// Provider's stop reason (`end_turn`, `max_tokens`, `stop`, `length`, …).
    pub stop_reason: Option<String>,
}

/// One item of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmEvent {
    /// More answer text, to show progressively; the concatenation equals the final `text`.
    TextDelta(String),
    /// The complete answer; always the last item of a successful stream.
    Done(LlmCompletion),
}

/// Why an LLM call failed. Messages are safe to log: they never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// No (complete) answer within the configured timeout.
    #[error("the LLM provider did not answer within the timeout")]
    Timeout,
    /// The provider kept answering 429; `retry_after` is its hint when given.
    #[error("the LLM provider is rate limiting us{}", .retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
    /// A non-success HTTP status (after retries when retryable).
    #[error("the LLM provider answered HTTP {status}: {message}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The provider's error message, shortened.
        message: String,
    },
    /// The request could not be sent or the connection failed.
    #[error("could not reach the LLM provider: {0}")]
    Transport(String),
    /// The provider answered something we cannot parse.
    #[error("the LLM provider sent a malformed response: {0}")]
    Malformed(String),
    /// A stream broke off or reported an error after it started.
    #[error("the LLM answer stream failed: {0}")]
    Stream(String),
}

/// A client for one configured provider and model. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: LlmSettings,
    http: reqwest::Client,
    endpoint: String,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("provider", &self.inner.settings.provider)
            .field("model", &self.inner.settings.model)
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// Builds a client; `http` is the process-wide reqwest client (connection pool shared with serenity).
    pub fn new(settings: LlmSettings, http: reqwest::Client) -> Self {
        let path = match settings.provider {
            ProviderKind::Anthropic => "messages",
            ProviderKind::OpenAi => "chat/completions",
        };
        let endpoint = endpoint_url(&settings.base_url, path);
        LlmClient {
            inner: Arc::new(Inner {
                settings,
                http,
                endpoint,
            }),
        }
    }

    /// Which provider this client talks to.
    pub fn kind(&self) -> ProviderKind {
        self.inner.settings.provider
    }

    /// The configured model name.
    pub fn model(&self) -> &str {
        &self.inner.settings.model
    }

    /// Asks for a whole answer at once (no streaming), retrying transient failures.
    pub async fn complete(&self, request: &LlmRequest) -> Result<LlmCompletion, LlmError> {
        let inner = &self.inner;
        let body = &inner.body(request, false);
        let started = Instant::now();
        let text = inner
            .with_retries(move || async move {
                let response = inner.send(body, false).await?;
                response
                    .text()
                    .await
                    .map_err(|e| classify_reqwest(&e, inner.key()))
            })
            .await?;
        let completion = match inner.settings.provider {
            ProviderKind::Anthropic => anthropic::parse_response(&text, &request.passages),
            ProviderKind::OpenAi => openai::parse_response(&text, &request.passages),
        }?;
        tracing::debug!(
            provider = inner.settings.provider.as_str(),
            model = %inner.settings.model,
            elapsed_ms = started.elapsed().as_millis() as u64,
            input_tokens = completion.usage.input_tokens,
            output_tokens = completion.usage.output_tokens,
            citations = completion.citations.len(),
            "llm completion"
        );
        Ok(completion)
    }

    /// Streams the answer: `TextDelta`s as text arrives, then exactly one `Done` on success (or one
    /// `Err`, after which the stream ends). Retries happen only before the first body byte; the
    /// timeout applies to the response headers and to each gap between chunks.
    pub fn stream(&self, request: &LlmRequest) -> BoxStream<'static, Result<LlmEvent, LlmError>> {
        let inner = Arc::clone(&self.inner);
        let body = inner.body(request, true);
        let numbers: Vec<usize> = request.passages.iter().map(|p| p.number).collect();
        let parser = match inner.settings.provider {
            ProviderKind::Anthropic => Parser::Anthropic(anthropic::StreamState::new(numbers)),
            ProviderKind::OpenAi => Parser::OpenAi(openai::StreamState::new(numbers)),
        };
        let state = StreamState::Start {
            inner,
            body,
            parser,
        };
        stream::unfold(state, |state| async move { state.next().await }).boxed()
    }
}

impl Inner {
    fn key(&self) -> Option<&str> {
        self.settings.api_key.as_ref().map(Secret::expose)
    }

    fn body(&self, request: &LlmRequest, stream: bool) -> Value {
        match self.settings.provider {
            ProviderKind::Anthropic => anthropic::request_body(&self.settings, request, stream),
            ProviderKind::OpenAi => openai::request_body(&self.settings, request, stream),
        }
    }

    /// One HTTP attempt; returns the response only for a 2xx status, otherwise classifies the failure.
    async fn send(&self, body: &Value, streaming: bool) -> Result<reqwest::Response, Failure> {
        let mut builder = self.http.post(&self.endpoint).json(body);
        if let Some(key) = self.key() {
            // Marked sensitive so HTTP-level debug output never shows it.
            let value = match self.settings.provider {
                ProviderKind::Anthropic => reqwest::header::HeaderValue::from_str(key),
                ProviderKind::OpenAi => {
                    reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                }
            };
            let mut value = value.map_err(|_| {
                Failure::fatal(LlmError::Transport(
                    "the API key contains characters that cannot be sent in an HTTP header"
                        .to_string(),
                ))
            })?;
            value.set_sensitive(true);
            let name = match self.settings.provider {
                ProviderKind::Anthropic => "x-api-key",
                ProviderKind::OpenAi => "authorization",
            };
            builder = builder.header(name, value);
        }
        if self.settings.provider == ProviderKind::Anthropic {
            builder = builder.header("anthropic-version", anthropic::API_VERSION);
        }
        if streaming {
            builder = builder.header(reqwest::header::ACCEPT, "text/event-stream");
        } else {
            // Whole request, body included; streams use a header timeout plus an idle timeout instead.
            builder = builder.timeout(self.settings.timeout);
        }

        let sent = if streaming {
            match tokio::time::timeout(self.settings.timeout, builder.send()).await {
                Ok(result) => result,
                Err(_) => return Err(Failure::retryable(LlmError::Timeout)),
            }
        } else {
            builder.send().await
        };
        let response = sent.map_err(|e| classify_reqwest(&e, self.key()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }

        let retry_after = parse_retry_after(response.headers());
        let text = match tokio::time::timeout(self.settings.timeout, response.text()).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        };
        let message = redact(&error_message(&text, status), self.key());
        let code = status.as_u16();
        if code == 429 {
            let err = LlmError::RateLimited { retry_after };
            return Err(match retry_after {
                Some(wait) if wait > RETRY_AFTER_CAP => Failure::fatal(err),
                Some(wait) => Failure {
                    error: err,
                    retryable: true,
                    wait: Some(wait),
                },
                None => Failure::retryable(err),
            });
        }
        let err = LlmError::Status {
            status: code,
            message,
        };
        if status.is_server_error() {
            Err(Failure::retryable(err))
        } else {
            Err(Failure::fatal(err))
        }
    }

    /// Runs `attempt` up to `max_retries + 1` times with exponential backoff between retryable failures.
    async fn with_retries<T, F, Fut>(&self, mut attempt: F) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut retry = 0u32;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) => {
                    if !failure.retryable || retry >= self.settings.max_retries {
                        tracing::warn!(
                            provider = self.settings.provider.as_str(),
                            attempts = retry + 1,
                            error = %failure.error,
                            "llm request failed"
                        );
                        return Err(failure.error);
                    }
                    let wait = failure.wait.unwrap_or_else(|| backoff(retry));
                    tracing::info!(
                        provider = self.settings.provider.as_str(),
                        attempt = retry + 1,
                        wait_ms = wait.as_millis() as u64,
                        error = %failure.error,
                        "llm request failed, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
            }
        }
    }
}

/// A failed attempt: the error to report, whether another attempt may help, and how long to wait.
struct Failure {
    error: LlmError,
    retryable: bool,
    wait: Option<Duration>,
}

impl Failure {
    fn retryable(error: LlmError) -> Self {
        Failure {
            error,
            retryable: true,
            wait: None,
        }
    }

    fn fatal(error: LlmError) -> Self {
        Failure {
            error,
            retryable: false,
            wait: None,
        }
    }
}

/// Exponential backoff: 250 ms, 500 ms, 1 s, … capped at 4 s.
fn backoff(retry: u32) -> Duration {
    BACKOFF_BASE
        .checked_mul(1u32 << retry.min(16))
        .unwrap_or(BACKOFF_CAP)
        .min(BACKOFF_CAP)
}

/// `retry-after` as whole (or fractional) seconds; HTTP-date forms are ignored (backoff applies).
fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let secs: f64 = raw.parse().ok()?;
    if secs.is_finite() && secs >= 0.0 {
        Some(Duration::from_secs_f64(secs.min(86_400.0)))
    } else {
        None
    }
}

/// Maps a reqwest error to a failure: timeouts and connect errors are retryable, the rest are not.
fn classify_reqwest(e: &reqwest::Error, key: Option<&str>) -> Failure {
    if e.is_timeout() {
        return Failure::retryable(LlmError::Timeout);
    }
    let message = redact(&error_chain(e), key);
    if e.is_connect() {
        Failure::retryable(LlmError::Transport(message))
    } else if e.is_decode() || e.is_body() {
        Failure::fatal(LlmError::Stream(message))
    } else {
        Failure::fatal(LlmError::Transport(message))
    }
}

/// An error and its sources, joined, e.g. "error sending request: tcp connect error: refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The provider's error message from a JSON error body (`{"error":{"message":..}}` for both
/// providers, `{"error":"..."}` for Ollama), else the shortened raw body, else the status reason.
fn error_message(body: &str, status: reqwest::StatusCode) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let error = v.get("error")?;
        match error {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => {
                let message = o.get("message").and_then(Value::as_str)?;
                Some(match o.get("type").and_then(Value::as_str) {
                    Some(kind) => format!("{kind}: {message}"),
                    None => message.to_string(),
                })
            }
            _ => None,
        }
    });
    let message = from_json.unwrap_or_else(|| body.trim().to_string());
    let message = if message.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no details")
            .to_string()
    } else {
        message
    };
    // The limit counts the kept characters; the ellipsis comes on top.
    crate::util::text::truncate(&message, MAX_ERROR_MESSAGE_CHARS + 1)
}

/// Replaces any occurrence of the key (servers sometimes echo it) with `***`.
fn redact(text: &str, key: Option<&str>) -> String {
    match key {
        Some(k) if !k.is_empty() => text.replace(k, "***"),
        _ => text.to_string(),
    }
}

/// `{base}/v1/{path}`; a base that already ends in `/v1` (common for OpenAI-compatible servers) is
/// not doubled.
fn endpoint_url(base: &str, path: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/{path}")
    } else {
        format!("{base}/v1/{path}")
    }
}

/// `text` read as JSON; `what` names it in the error when it is not.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: impl std::fmt::Display,
) -> Result<T, LlmError> {
    serde_json::from_str(text).map_err(|error| LlmError::Malformed(format!("{what}: {error}")))
}

/// What both providers' stream parsers keep besides the answer itself: the passages' numbers
/// (in request order), the usage and stop reason reported so far, and whether `Done` was emitted.
pub(crate) struct StreamProgress {
    pub(crate) numbers: Vec<usize>,
    pub(crate) usage: TokenUsage,
    pub(crate) stop_reason: Option<String>,
    pub(crate) done: bool,
}

impl StreamProgress {
    /// Nothing received yet for a request whose passages have these numbers.
    pub(crate) fn new(numbers: Vec<usize>) -> Self {
        let (usage, stop_reason, done) = (TokenUsage::default(), None, false);
        StreamProgress {
            numbers,
            usage,
            stop_reason,
            done,
        }
    }
}

/// Provider-specific SSE parser: turns SSE events into [`LlmEvent`]s. Once `Done` was emitted
/// the rest of the body is ignored, for both providers.
enum Parser {
    Anthropic(anthropic::StreamState),
    OpenAi(openai::StreamState),
}

impl Parser {
    /// Handles one SSE event, pushing any resulting events onto `out`.
    fn on_event(
        &mut self,
        event: &sse::SseEvent,
        out: &mut VecDeque<LlmEvent>,
    ) -> Result<(), LlmError> {
        if self.is_done() {
            return Ok(());
        }
        match self {
            Parser::Anthropic(s) => s.on_event(event, out),
            Parser::OpenAi(s) => s.on_event(event, out),
        }
    }

    /// Called when the body ends; emits `Done` if the provider's stream was complete.
    fn on_end(&mut self, out: &mut VecDeque<LlmEvent>) -> Result<(), LlmError> {
        if self.is_done() {
            return Ok(());
        }
        match self {
            Parser::Anthropic(s) => s.on_end(out),
            Parser::OpenAi(s) => s.on_end(out),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Parser::Anthropic(s) => s.progress.done,
            Parser::OpenAi(s) => s.progress.done,
        }
    }
}

/// State machine behind [`LlmClient::stream`].
enum StreamState {
    Start {
        inner: Arc<Inner>,
        body: Value,
        parser: Parser,
    },
    Streaming {
        events: sse::SseStream,
        parser: Parser,
        pending: VecDeque<LlmEvent>,
        idle_timeout: Duration,
        key: Option<Secret>,
    },
    Finished,
}

impl StreamState {
    async fn next(self) -> Option<(Result<LlmEvent, LlmError>, StreamState)> {
        let mut state = self;
        loop {
            match state {
                StreamState::Finished => return None,
                StreamState::Start {
                    inner,
                    body,
                    parser,
                } => {
                    let response = inner.with_retries(|| inner.send(&body, true)).await;
                    match response {
                        Ok(response) => {
                            state = StreamState::Streaming {
                                events: sse::events(response),
                                parser,
                                pending: VecDeque::new(),
                                idle_timeout: inner.settings.timeout,
                                key: inner.settings.api_key.clone(),
                            };
                        }
                        Err(e) => return Some((Err(e), StreamState::Finished)),
                    }
                }
                StreamState::Streaming {
                    mut events,
                    mut parser,
                    mut pending,
                    idle_timeout,
                    key,
                } => {
                    if let Some(event) = pending.pop_front() {
                        let next = if pending.is_empty() && parser.is_done() {
                            StreamState::Finished
                        } else {
                            StreamState::Streaming {
                                events,
                                parser,
                                pending,
                                idle_timeout,
                                key,
                            }
                        };
                        return Some((Ok(event), next));
                    }
                    let step = match tokio::time::timeout(idle_timeout, events.next()).await {
                        Err(_) => Err(LlmError::Timeout),
                        Ok(Some(Ok(event))) => parser.on_event(&event, &mut pending),
                        Ok(Some(Err(e))) => Err(match e {
                            LlmError::Stream(m) => {
                                LlmError::Stream(redact(&m, key.as_ref().map(Secret::expose)))
                            }
                            other => other,
                        }),
                        Ok(None) => {
                            let r = parser.on_end(&mut pending);
                            if r.is_ok() && pending.is_empty() {
                                return None;
                            }
                            r
                        }
                    };
                    if let Err(e) = step {
                        return Some((Err(e), StreamState::Finished));
                    }
                    state = StreamState::Streaming {
                        events,
                        parser,
                        pending,
                        idle_timeout,
                        key,
                    };
                }
            }
        }
    }
}

/// A temperature as JSON with its shortest decimal form (`0.2`, not `0.20000000298023224`).
fn temperature_json(t: f32) -> Value {
    t.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Removes exact duplicate citations, keeping first appearances in order.
fn dedupe_citations(citations: Vec<LlmCitation>) -> Vec<LlmCitation> {
    let mut out: Vec<LlmCitation> = Vec::with_capacity(citations.len());
    for c in citations {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_not_doubled() {
        assert_eq!(
            endpoint_url("https://api.openai.com", "chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            endpoint_url("http://localhost:11434/v1/", "chat/completions"),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            endpoint_url("https://api.anthropic.com/", "messages"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            endpoint_url("http://gw.local/proxy", "messages"),
            "http://gw.local/proxy/v1/messages"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(5), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(4));
    }

    #[test]
    fn error_messages_from_provider_bodies() {
        let s = reqwest::StatusCode::INTERNAL_SERVER_ERROR;
        assert_eq!(
            error_message(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                s
            ),
            "overloaded_error: Overloaded"
        );
        assert_eq!(
            error_message(r#"{"error":"model \"x\" not found"}"#, s),
            "model \"x\" not found"
        );
        assert_eq!(error_message("", s), "Internal Server Error");
        assert_eq!(
            error_message(&"x".repeat(1000), s).chars().count(),
            MAX_ERROR_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn redact_hides_echoed_keys() {
        assert_eq!(
            redact("Incorrect API key provided: sk-123", Some("sk-123")),
            "Incorrect API key provided: ***"
        );
        assert_eq!(redact("nothing", None), "nothing");
    }
}
