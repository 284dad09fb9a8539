//! The LLM client against fake Anthropic and OpenAI-compatible servers on 127.0.0.1. One table of
//! cases runs against both fakes (retries, rate limits, timeouts, malformed bodies, broken streams,
//! the key never leaking); the cases that are about one wire format check its exact request bodies
//! and headers (OpenAI's validated against the published schema, Anthropic's against its
//! documented rules) and how its citations come back.

mod support;

use futures::StreamExt;
use guidebot::llm::{
    AnswerPiece, LlmCitation, LlmClient, LlmCompletion, LlmError, LlmEvent, LlmSettings,
    ProviderKind, TokenUsage,
};
use guidebot::util::secret::Secret;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::fake_llm::request_rules::assert_valid_anthropic_request;
use support::fake_llm::*;
use support::openai_spec::{
    assert_valid_chunk, assert_valid_request, assert_valid_response,
    assert_validators_reject_garbage,
};
use wiremock::ResponseTemplate;

const BOTH: [ProviderKind; 2] = [ProviderKind::Anthropic, ProviderKind::OpenAi];

async fn collect(client: &LlmClient) -> Vec<Result<LlmEvent, LlmError>> {
    client.stream(&sample_request()).collect().await
}

/// Every event of a stream that must not fail.
async fn collect_ok(client: &LlmClient) -> Vec<LlmEvent> {
    let events = collect(client).await;
    events.into_iter().map(Result::unwrap).collect()
}

/// A 429 with `Retry-After: seconds`.
fn rate_limited(fake: &FakeLlm, seconds: &str) -> ResponseTemplate {
    fake.error(429, "slow down")
        .insert_header("retry-after", seconds)
}

/// A completion of the sample request that must succeed, and how long it took.
async fn timed_completion(fake: &FakeLlm) -> (LlmCompletion, Duration) {
    let started = Instant::now();
    let completion = fake.client().complete(&sample_request()).await.unwrap();
    (completion, started.elapsed())
}

/// Asserts the fake received `count` requests, each a valid `stream` (or not) request of `kind`.
async fn assert_requests(fake: &FakeLlm, kind: ProviderKind, count: usize, stream: bool) {
    let requests = fake.requests().await;
    assert_eq!(requests.len(), count);
    for r in &requests {
        assert_request(kind, r, stream);
    }
}

fn client_with(fake: &FakeLlm, change: impl FnOnce(&mut LlmSettings)) -> LlmClient {
    let mut settings = fake.settings();
    change(&mut settings);
    LlmClient::new(settings, reqwest::Client::new())
}

/// The stop reason each provider reports for a finished answer.
fn end_reason(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Anthropic => "end_turn",
        ProviderKind::OpenAi => "stop",
    }
}

// ---------------------------------------------------------------- exact requests

/// The Anthropic body for [`sample_request`]: one search_result per passage, its blocks as text.
fn anthropic_body(stream: bool) -> Value {
    let mut body = json!({
        "model": "test-model",
        "max_tokens": 256,
        "temperature": 0.2,
        "system": "Answer only from the passages. Cite them as [n].",
        "messages": [{
            "role": "user",
            "content": [
                {"type": "search_result", "source": "mid-level-ds-mle-2026#compensation-the-real-bands-at-mid",
                 "title": "Compensation: the real bands at mid",
                 "content": [{"type": "text", "text": "Mid-level base salaries cluster between $150k and $190k."}],
                 "citations": {"enabled": true}},
                {"type": "search_result", "source": "mid-level-ds-mle-2026#equity", "title": "Equity",
                 "content": [{"type": "text", "text": "Equity adds 10-30% at public companies."}],
                 "citations": {"enabled": true}},
                {"type": "search_result", "source": "mid-level-ds-mle-2026#negotiation", "title": "Negotiation",
                 "content": [{"type": "text", "text": "Always negotiate the first offer."}],
                 "citations": {"enabled": true}},
                {"type": "text", "text": "What do mid-level data scientists earn?"}
            ]
        }]
    });
    if stream {
        body["stream"] = json!(true);
    }
    body
}

const USER_TURN: &str = "[1] Compensation: the real bands at mid (mid-level-ds-mle-2026#compensation-the-real-bands-at-mid)\n\
Mid-level base salaries cluster between $150k and $190k.\n\n\
[2] Equity (mid-level-ds-mle-2026#equity)\n\
Equity adds 10-30% at public companies.\n\n\
[3] Negotiation (mid-level-ds-mle-2026#negotiation)\n\
Always negotiate the first offer.\n\n\
Question: What do mid-level data scientists earn?";

fn openai_body(stream: bool) -> Value {
    let mut body = json!({
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Answer only from the passages. Cite them as [n]."},
            {"role": "user", "content": USER_TURN}
        ],
        "max_tokens": 256,
        "temperature": 0.2
    });
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// Method, path, the provider's auth and version headers, and the exact body, which must also
/// satisfy the provider's published rules.
fn assert_request(kind: ProviderKind, r: &Recorded, stream: bool) {
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    if stream {
        assert_eq!(
            r.headers.get("accept").map(String::as_str),
            Some("text/event-stream")
        );
    }
    match kind {
        ProviderKind::Anthropic => {
            assert_eq!(r.path, "/v1/messages");
            assert_eq!(
                r.headers.get("x-api-key").map(String::as_str),
                Some(TEST_KEY)
            );
            assert_eq!(
                r.headers.get("anthropic-version").map(String::as_str),
                Some("2023-06-01")
            );
            assert!(!r.headers.contains_key("authorization"));
            assert_valid_anthropic_request(&r.body);
            assert_eq!(r.body, anthropic_body(stream));
        }
        ProviderKind::OpenAi => {
            assert_eq!(r.path, "/v1/chat/completions");
            assert_eq!(
                r.headers.get("authorization").map(String::as_str),
                Some(format!("Bearer {TEST_KEY}").as_str())
            );
            assert!(!r.headers.contains_key("x-api-key"));
            assert_valid_request(&r.body);
            assert_eq!(r.body, openai_body(stream));
        }
    }
}

// ---------------------------------------------------------------- one table, both fakes

#[tokio::test]
async fn a_plain_answer_sends_the_exact_request() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(fake.plain_answer("Mid-level pay is covered in the guide."))
            .await;
        let client = fake.client();
        assert_eq!(client.kind(), kind);
        assert_eq!(client.model(), "test-model");

        let completion = client.complete(&sample_request()).await.unwrap();

        assert_eq!(
            completion,
            uncited_completion(kind, "Mid-level pay is covered in the guide.", 321, 12),
            "{kind}"
        );
        assert_requests(&fake, kind, 1, false).await;
    }
}

/// A completed answer with no citations, as `kind` reports it, with this usage.
fn uncited_completion(kind: ProviderKind, text: &str, input: u64, output: u64) -> LlmCompletion {
    LlmCompletion {
        text: text.into(),
        citations: vec![],
        pieces: vec![AnswerPiece::Text(text.into())],
        unknown_citations: 0,
        usage: TokenUsage {
            cached_input_tokens: 0,
            input_tokens: input,
            output_tokens: output,
        },
        stop_reason: Some(end_reason(kind).into()),
    }
}

#[tokio::test]
async fn a_streamed_answer_is_deltas_then_one_done_with_usage() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        let body = fake.stream_body(&["Base salaries ", "are $150k-$190k."], StreamEnd::Complete);
        fake.always(sse_response(body)).await;

        let events = collect_ok(&fake.client()).await;

        assert_eq!(
            events,
            vec![
                LlmEvent::TextDelta("Base salaries ".into()),
                LlmEvent::TextDelta("are $150k-$190k.".into()),
                LlmEvent::Done(uncited_completion(
                    kind,
                    "Base salaries are $150k-$190k.",
                    410,
                    17
                )),
            ],
            "{kind}"
        );
        assert_requests(&fake, kind, 1, true).await;
    }
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.first(1, rate_limited(&fake, "1")).await;
        fake.always(fake.plain_answer("ok")).await;

        let (completion, took) = timed_completion(&fake).await;

        assert_eq!(completion.text, "ok");
        assert!(
            took >= Duration::from_millis(950),
            "{kind}: waited {took:?}"
        );
        assert_requests(&fake, kind, 2, false).await;
    }
}

#[tokio::test]
async fn rate_limited_beyond_the_cap_fails_fast_with_the_hint() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(rate_limited(&fake, "120")).await;

        let started = Instant::now();
        let err = fake.client().complete(&sample_request()).await.unwrap_err();

        assert_eq!(
            err,
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(120))
            }
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(fake.requests().await.len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn rate_limited_forever_reports_the_hint_after_the_retries() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(rate_limited(&fake, "0")).await;

        let err = client_with(&fake, |s| s.max_retries = 1)
            .complete(&sample_request())
            .await
            .unwrap_err();

        assert_eq!(
            err,
            LlmError::RateLimited {
                retry_after: Some(Duration::ZERO)
            }
        );
        assert_eq!(fake.requests().await.len(), 2, "{kind}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.first(1, fake.error(500, "Internal server error"))
            .await;
        fake.first(1, fake.error(529, "Overloaded")).await;
        fake.always(fake.plain_answer("ok")).await;

        let (completion, took) = timed_completion(&fake).await;

        assert_eq!(completion.text, "ok");
        assert!(
            took >= Duration::from_millis(700),
            "{kind}: 250 ms then 500 ms of backoff"
        );
        assert_eq!(fake.requests().await.len(), 3);
    }
}

#[tokio::test]
async fn server_errors_forever_are_a_status_error_after_max_retries_plus_one_attempts() {
    // max_retries = 2
    assert_status_error_after_attempts(529, "Overloaded", 3).await;
}

/// Both providers, always answering `status`: the client reports that status with the provider's
/// message after exactly `attempts` requests.
async fn assert_status_error_after_attempts(status: u16, message: &str, attempts: usize) {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(fake.error(status, message)).await;

        let err = fake.client().complete(&sample_request()).await.unwrap_err();

        assert_eq!(
            err,
            LlmError::Status {
                status,
                message: fake.error_message(status, message)
            }
        );
        assert_eq!(fake.requests().await.len(), attempts, "{kind}");
    }
}

#[tokio::test]
async fn client_errors_other_than_429_are_not_retried() {
    assert_status_error_after_attempts(400, "messages: too long", 1).await;
}

#[tokio::test]
async fn a_slow_server_is_a_timeout_and_timeouts_are_retried() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(fake.plain_answer("late").set_delay(Duration::from_secs(2)))
            .await;
        let client = client_with(&fake, |s| {
            s.timeout = Duration::from_millis(200);
            s.max_retries = 1;
        });

        let started = Instant::now();
        let err = client.complete(&sample_request()).await.unwrap_err();

        assert_eq!(err, LlmError::Timeout);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{kind}: took {:?}",
            started.elapsed()
        );
        assert_eq!(fake.requests().await.len(), 2);
    }
}

#[tokio::test]
async fn slow_stream_headers_are_a_timeout() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        let body = fake.stream_body(&["Base"], StreamEnd::Complete);
        fake.always(sse_response(body).set_delay(Duration::from_secs(2)))
            .await;
        let client = client_with(&fake, |s| {
            s.timeout = Duration::from_millis(200);
            s.max_retries = 0;
        });

        assert_eq!(
            collect(&client).await,
            vec![Err(LlmError::Timeout)],
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_stream_that_stalls_after_starting_is_a_timeout() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        let base = stalling_sse_server(fake.stream_body(&["Base"], StreamEnd::Cut)).await;
        let mut settings = LlmSettings::new(kind, "test-model");
        settings.base_url = base;
        settings.api_key = Some(Secret::new(TEST_KEY));
        settings.timeout = Duration::from_millis(300);
        let client = LlmClient::new(settings, reqwest::Client::new());

        let started = Instant::now();
        let events = collect(&client).await;

        assert_eq!(
            events,
            vec![
                Ok(LlmEvent::TextDelta("Base".into())),
                Err(LlmError::Timeout)
            ],
            "{kind}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[tokio::test]
async fn a_malformed_body_is_malformed_and_not_retried() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(ResponseTemplate::new(200).set_body_raw("<html>gateway", "text/html"))
            .await;

        let err = fake.client().complete(&sample_request()).await.unwrap_err();

        assert!(matches!(err, LlmError::Malformed(_)), "{kind}: {err:?}");
        assert_eq!(fake.requests().await.len(), 1);
    }
}

#[tokio::test]
async fn a_malformed_stream_event_is_malformed() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(sse_response(
            "event: message_start\ndata: {\"choices\": [\n\n".to_string(),
        ))
        .await;

        let events = collect(&fake.client()).await;

        assert_eq!(events.len(), 1, "{kind}");
        assert!(
            matches!(&events[0], Err(LlmError::Malformed(_))),
            "{kind}: {events:?}"
        );
    }
}

#[tokio::test]
async fn an_error_mid_stream_is_a_stream_error_after_the_deltas() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        let body = fake.stream_body(&["Base ", "salaries"], StreamEnd::Error("Overloaded"));
        fake.always(sse_response(body)).await;

        let events = collect(&fake.client()).await;

        assert_eq!(
            events,
            vec![
                Ok(LlmEvent::TextDelta("Base ".into())),
                Ok(LlmEvent::TextDelta("salaries".into())),
                Err(LlmError::Stream(fake.stream_error_message("Overloaded"))),
            ],
            "{kind}"
        );
        assert_eq!(
            fake.requests().await.len(),
            1,
            "no retry once the body started"
        );
    }
}

#[tokio::test]
async fn a_stream_cut_before_its_end_is_a_stream_error() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(sse_response(fake.stream_body(&["Base"], StreamEnd::Cut)))
            .await;

        let events = collect(&fake.client()).await;

        assert_eq!(events.len(), 2, "{kind}");
        assert_eq!(events[0], Ok(LlmEvent::TextDelta("Base".into())));
        assert!(matches!(&events[1], Err(LlmError::Stream(_))), "{events:?}");
    }
}

#[tokio::test]
async fn a_stream_retries_before_the_first_byte() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.first(2, fake.error(503, "unavailable")).await;
        let body = fake.stream_body(&["Base salaries."], StreamEnd::Complete);
        fake.always(sse_response(body)).await;

        let events = collect(&fake.client()).await;

        assert!(events.iter().all(Result::is_ok), "{kind}: {events:?}");
        assert!(matches!(events.last(), Some(Ok(LlmEvent::Done(c))) if c.text == "Base salaries."));
        assert_requests(&fake, kind, 3, true).await;
    }
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    for kind in BOTH {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut settings = LlmSettings::new(kind, "test-model");
        settings.base_url = format!("http://127.0.0.1:{port}");
        settings.api_key = Some(Secret::new(TEST_KEY));
        settings.max_retries = 0;

        let err = LlmClient::new(settings, reqwest::Client::new())
            .complete(&sample_request())
            .await
            .unwrap_err();

        assert!(matches!(err, LlmError::Transport(_)), "{kind}: {err:?}");
        assert!(!err.to_string().contains(TEST_KEY));
    }
}

#[tokio::test]
async fn the_key_never_appears_in_debug_or_error_messages() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        // A server that echoes the key back in its error message.
        fake.always(fake.error(401, &format!("invalid key {TEST_KEY}.")))
            .await;
        let client = fake.client();
        let err = client.complete(&sample_request()).await.unwrap_err();
        assert_eq!(
            err,
            LlmError::Status {
                status: 401,
                message: fake.error_message(401, "invalid key ***.")
            },
            "{kind}: not retried, key hidden"
        );
        assert_eq!(fake.requests().await.len(), 1);
        let stream_err = collect(&client).await;

        let mut texts = vec![
            format!("{:?}", fake.settings()),
            format!("{:?}", fake.settings().api_key),
            format!("{client:?}"),
            err.to_string(),
            format!("{err:?}"),
            format!("{stream_err:?}"),
        ];
        for e in [
            LlmError::Timeout,
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
            LlmError::RateLimited { retry_after: None },
            LlmError::Status {
                status: 500,
                message: "boom".into(),
            },
            LlmError::Transport("refused".into()),
            LlmError::Malformed("eof".into()),
            LlmError::Stream("cut".into()),
        ] {
            texts.push(e.to_string());
            texts.push(format!("{e:?}"));
        }
        for text in texts {
            assert!(!text.contains(TEST_KEY), "{kind}: key leaked: {text}");
        }
    }
}

#[tokio::test]
async fn a_key_that_cannot_be_a_header_fails_without_leaking_or_sending() {
    for kind in BOTH {
        let fake = FakeLlm::new(kind).await;
        fake.always(fake.plain_answer("ok")).await;

        let err = client_with(&fake, |s| s.api_key = Some(Secret::new("sk-\u{1}SECRET")))
            .complete(&sample_request())
            .await
            .unwrap_err();

        assert!(matches!(err, LlmError::Transport(_)), "{kind}: {err:?}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
        assert!(fake.requests().await.is_empty());
    }
}

// ---------------------------------------------------------------- Anthropic's wire format

#[tokio::test]
async fn anthropic_optional_fields_are_omitted() {
    let fake = FakeLlm::anthropic().await;
    fake.always(fake.plain_answer("ok")).await;
    let mut request = sample_request();
    request.system_prompt.clear();
    request.passages.clear();

    client_with(&fake, |s| s.temperature = None)
        .complete(&request)
        .await
        .unwrap();

    let body = &fake.requests().await[0].body;
    assert_valid_anthropic_request(body);
    assert_eq!(
        body,
        &json!({"model": "test-model", "max_tokens": 256,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "What do mid-level data scientists earn?"}]}]})
    );
}

#[tokio::test]
async fn anthropic_passages_go_as_one_text_block_per_citable_piece() {
    let fake = FakeLlm::anthropic().await;
    fake.always(fake.plain_answer("ok")).await;
    let mut request = sample_request();
    request.passages[0].text = "Base is $150k. Equity adds more.".into();
    request.passages[0].blocks = vec!["Base is $150k.".into(), "Equity adds more.".into()];

    fake.client().complete(&request).await.unwrap();

    let body = &fake.requests().await[0].body;
    assert_valid_anthropic_request(body);
    assert_eq!(
        body["messages"][0]["content"][0]["content"],
        json!([{"type": "text", "text": "Base is $150k."}, {"type": "text", "text": "Equity adds more."}])
    );
}

fn cited(index: usize, cited_text: &str, blocks: std::ops::Range<usize>) -> LlmCitation {
    LlmCitation {
        passage_number: index + 1,
        cited_text: Some(cited_text.into()),
        blocks: Some(blocks),
    }
}

const BASE: &str = "Mid-level base salaries cluster between $150k and $190k.";
const EQUITY: &str = "Equity adds 10-30% at public companies.";

#[tokio::test]
async fn anthropic_citations_keep_their_text_and_block_range_per_block() {
    let fake = FakeLlm::anthropic().await;
    fake.always(json_response(
        200,
        anthropic_message(
            json!([
                {"type": "text", "text": "According to the guide, "},
                {"type": "text", "text": "base salaries sit between $150k and $190k",
                 "citations": [anthropic_citation(0, BASE)]},
                {"type": "text", "text": ", and "},
                {"type": "text", "text": "equity adds 10-30% at public companies",
                 "citations": [anthropic_citation(1, EQUITY), anthropic_citation(1, EQUITY),
                               anthropic_citation(0, BASE)]},
                {"type": "text", "text": " per a source", "citations": [{
                    "type": "search_result_location", "source": "x", "title": "x",
                    "cited_text": "never sent", "search_result_index": 7,
                    "start_block_index": 0, "end_block_index": 1}]},
                {"type": "text", "text": "."}
            ]),
            "end_turn",
            500,
            40,
        ),
    ))
    .await;

    let completion = fake.client().complete(&sample_request()).await.unwrap();

    assert_eq!(
        completion.text,
        "According to the guide, base salaries sit between $150k and $190k [1], and equity adds 10-30% at public companies [2][1] per a source."
    );
    assert_eq!(
        completion.citations,
        vec![cited(0, BASE, 0..1), cited(1, EQUITY, 0..1)]
    );
    assert_eq!(
        completion.pieces,
        vec![
            AnswerPiece::Text("According to the guide, ".into()),
            AnswerPiece::Cited {
                text: "base salaries sit between $150k and $190k".into(),
                citations: vec![cited(0, BASE, 0..1)]
            },
            AnswerPiece::Text(", and ".into()),
            AnswerPiece::Cited {
                text: "equity adds 10-30% at public companies".into(),
                citations: vec![
                    cited(1, EQUITY, 0..1),
                    cited(1, EQUITY, 0..1),
                    cited(0, BASE, 0..1)
                ]
            },
            AnswerPiece::Text(" per a source".into()),
            AnswerPiece::Text(".".into()),
        ]
    );
    assert_eq!(completion.unknown_citations, 1, "index 7 was never sent");
}

#[tokio::test]
async fn anthropic_streamed_citations_come_back_as_markers_and_pieces() {
    let fake = FakeLlm::anthropic().await;
    fake.always(sse_response(anthropic_sse(&[
        a_message_start(410),
        a_block_start(0),
        a_ping(),
        a_text(0, "Base salaries "),
        a_text(0, "are $150k-$190k"),
        a_cite(0, anthropic_citation(0, BASE)),
        a_block_stop(0),
        a_block_start(1),
        a_text(1, "."),
        a_block_stop(1),
        a_message_delta("end_turn", 17),
        a_ping(),
        a_message_stop(),
    ])))
    .await;

    let events = collect_ok(&fake.client()).await;

    assert_eq!(
        events,
        vec![
            LlmEvent::TextDelta("Base salaries ".into()),
            LlmEvent::TextDelta("are $150k-$190k".into()),
            LlmEvent::TextDelta(" [1]".into()),
            LlmEvent::TextDelta(".".into()),
            LlmEvent::Done(LlmCompletion {
                text: "Base salaries are $150k-$190k [1].".into(),
                citations: vec![cited(0, BASE, 0..1)],
                pieces: vec![
                    AnswerPiece::Cited {
                        text: "Base salaries are $150k-$190k".into(),
                        citations: vec![cited(0, BASE, 0..1)]
                    },
                    AnswerPiece::Text(".".into()),
                ],
                unknown_citations: 0,
                usage: TokenUsage {
                    cached_input_tokens: 0,
                    input_tokens: 410,
                    output_tokens: 17
                },
                stop_reason: Some("end_turn".into()),
            }),
        ]
    );
}

// ---------------------------------------------------------------- OpenAI's wire format

#[test]
fn the_openai_spec_validators_are_strict() {
    assert_validators_reject_garbage();
    // The fakes' hand-written documents are valid.
    assert_valid_response(&openai_completion("x", "stop", 1, 1));
    let body = stream_body(ProviderKind::OpenAi, &["a", "b"], StreamEnd::Complete);
    for line in body.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line != "[DONE]" {
            assert_valid_chunk(&serde_json::from_str(line).unwrap());
        }
    }
}

#[tokio::test]
async fn openai_without_a_key_sends_no_authorization_and_a_v1_base_is_not_doubled() {
    let fake = FakeLlm::openai().await;
    fake.always(fake.plain_answer("ok")).await;
    let client = client_with(&fake, |s| {
        s.api_key = None;
        s.temperature = None;
        s.base_url = format!("{}/v1/", fake.base_url());
    });
    let mut request = sample_request();
    request.system_prompt.clear();

    client.complete(&request).await.unwrap();

    let r = &fake.requests().await[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert!(!r.headers.contains_key("authorization"));
    assert_valid_request(&r.body);
    assert_eq!(
        r.body,
        json!({"model": "test-model", "messages": [{"role": "user", "content": USER_TURN}], "max_tokens": 256})
    );
}

#[tokio::test]
async fn openai_reasoning_models_get_max_completion_tokens_and_no_temperature() {
    for stream in [false, true] {
        let fake = FakeLlm::openai().await;
        fake.always(if stream {
            sse_response(fake.stream_body(&["ok"], StreamEnd::Complete))
        } else {
            fake.plain_answer("ok")
        })
        .await;
        let client = client_with(&fake, |s| s.reasoning_model = true);

        if stream {
            assert!(collect(&client).await.iter().all(Result::is_ok));
        } else {
            client.complete(&sample_request()).await.unwrap();
        }

        let body = &fake.requests().await[0].body;
        assert_valid_request(body);
        let mut expected = openai_body(stream);
        let object = expected.as_object_mut().unwrap();
        object.remove("max_tokens");
        object.remove("temperature");
        object.insert("max_completion_tokens".into(), json!(256));
        assert_eq!(body, &expected);
    }
}

#[tokio::test]
async fn openai_markers_become_citations_and_pieces() {
    let fake = FakeLlm::openai().await;
    fake.always(json_response(
        200,
        openai_completion(
            "Base pay is $150k-$190k [1][2]; equity varies [2, 3]. Ignore [7] and [note].",
            "stop",
            420,
            21,
        ),
    ))
    .await;

    let completion = fake.client().complete(&sample_request()).await.unwrap();

    let marker = |numbers: &[usize]| {
        AnswerPiece::Marker(numbers.iter().map(|&n| LlmCitation::marker(n)).collect())
    };
    assert_eq!(
        completion.citations,
        [1, 2, 3].map(LlmCitation::marker).to_vec()
    );
    assert_eq!(
        completion.pieces,
        vec![
            AnswerPiece::Text("Base pay is $150k-$190k ".into()),
            marker(&[1]),
            marker(&[2]),
            AnswerPiece::Text("; equity varies ".into()),
            marker(&[2, 3]),
            AnswerPiece::Text(". Ignore ".into()),
            marker(&[]),
            AnswerPiece::Text(" and [note].".into()),
        ]
    );
    assert_eq!(completion.unknown_citations, 1);
}

#[tokio::test]
async fn an_openai_stream_without_done_but_finished_completes() {
    let fake = FakeLlm::openai().await;
    let chunks = vec![
        openai_chunk(Some("All [2]"), None),
        openai_chunk(None, Some("length")),
    ];
    for chunk in &chunks {
        assert_valid_chunk(chunk);
    }
    fake.always(sse_response(openai_sse(&chunks, false))).await;

    let events = collect(&fake.client()).await;

    assert_eq!(
        events.last(),
        Some(&Ok(LlmEvent::Done(LlmCompletion {
            text: "All [2]".into(),
            citations: vec![LlmCitation::marker(2)],
            pieces: vec![
                AnswerPiece::Text("All ".into()),
                AnswerPiece::Marker(vec![LlmCitation::marker(2)])
            ],
            unknown_citations: 0,
            usage: TokenUsage::default(),
            stop_reason: Some("length".into()),
        })))
    );
}

// ---------------------------------------------------------------- settings

#[test]
fn the_reasoning_model_switch_is_a_setting_for_openai_only() {
    use guidebot::config::Config;
    use std::path::Path;
    let env = support::setup::vars(&[("GUIDEBOT_LLM_REASONING_MODEL", "true")]);
    let config = Config::from_toml_str(
        "[llm]\nprovider = \"openai\"\nmodel = \"o4-mini\"\n",
        Path::new("test.toml"),
        &env,
    )
    .unwrap();
    let settings = config.llm_settings().unwrap();
    assert!(settings.reasoning_model);
    assert!(!LlmSettings::new(ProviderKind::OpenAi, "m").reasoning_model);

    let error = Config::from_toml_str(
        "[llm]\nprovider = \"anthropic\"\nmodel = \"claude\"\nreasoning_model = true\n",
        Path::new("test.toml"),
        &support::setup::vars(&[("GUIDEBOT_LLM_API_KEY", "sk")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("test.toml:4: llm.reasoning_model") && error.contains("only applies"),
        "{error}"
    );
}
