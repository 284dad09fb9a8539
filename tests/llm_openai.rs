//! The OpenAI-compatible client against a fake Chat Completions server on 127.0.0.1: exact request
//! bodies (validated against OpenAI's published schema), `[n]` citations, streaming, retries, errors.

mod support;

use futures::StreamExt;
use guidebot::llm::{
    LlmCitation, LlmClient, LlmCompletion, LlmError, LlmEvent, ProviderKind, TokenUsage,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::fake_llm::*;
use support::openai_spec::{
    assert_valid_chunk, assert_valid_request, assert_valid_response,
    assert_validators_reject_garbage,
};
use wiremock::ResponseTemplate;

const USER_TURN: &str = "[1] Compensation: the real bands at mid (mid-level-ds-mle-2026#compensation-the-real-bands-at-mid)\n\
Mid-level base salaries cluster between $150k and $190k.\n\n\
[2] Equity (mid-level-ds-mle-2026#equity)\n\
Equity adds 10-30% at public companies.\n\n\
[3] Negotiation (mid-level-ds-mle-2026#negotiation)\n\
Always negotiate the first offer.\n\n\
Question: What do mid-level data scientists earn?";

fn expected_body(stream: bool) -> Value {
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

/// Checks method, path, bearer header and the exact body, and validates the body against the spec.
fn assert_openai_request(r: &Recorded, stream: bool) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(
        r.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {TEST_KEY}").as_str())
    );
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert!(!r.headers.contains_key("x-api-key"));
    assert_valid_request(&r.body);
    assert_eq!(r.body, expected_body(stream));
}

/// A schema-checked JSON response.
fn completion_response(content: &str) -> ResponseTemplate {
    let body = openai_completion(content, "stop", 420, 21);
    assert_valid_response(&body);
    json_response(200, body)
}

/// A schema-checked SSE response (every chunk validated), ending with `[DONE]` when `done`.
fn stream_response(chunks: &[Value], done: bool) -> ResponseTemplate {
    for chunk in chunks.iter().filter(|c| c.get("error").is_none()) {
        assert_valid_chunk(chunk);
    }
    sse_response(openai_sse(chunks, done))
}

fn streamed_chunks() -> Vec<Value> {
    vec![
        openai_chunk(Some(""), None),
        openai_chunk(Some("Base salaries are "), None),
        openai_chunk(Some("$150k-$190k [1]"), None),
        openai_chunk(Some(", plus equity [2, 3]."), None),
        openai_chunk(None, Some("stop")),
        openai_usage_chunk(400, 19),
    ]
}

async fn collect(client: &LlmClient) -> Vec<Result<LlmEvent, LlmError>> {
    client.stream(&sample_request()).collect().await
}

fn cites(numbers: &[usize]) -> Vec<LlmCitation> {
    numbers
        .iter()
        .map(|&n| LlmCitation {
            passage_number: n,
            cited_text: None,
        })
        .collect()
}

#[test]
fn the_spec_validators_are_strict() {
    assert_validators_reject_garbage();
    // The fakes' hand-written documents are valid.
    assert_valid_response(&openai_completion("x", "stop", 1, 1));
    for chunk in streamed_chunks() {
        assert_valid_chunk(&chunk);
    }
}

#[tokio::test]
async fn plain_answer_sends_the_exact_body_and_bearer() {
    let fake = FakeLlm::openai().await;
    fake.always(completion_response("The guide does not say."))
        .await;
    let client = fake.client();
    assert_eq!(client.kind(), ProviderKind::OpenAi);

    let completion = client.complete(&sample_request()).await.unwrap();

    assert_eq!(
        completion,
        LlmCompletion {
            text: "The guide does not say.".into(),
            citations: vec![],
            usage: TokenUsage {
                input_tokens: 420,
                output_tokens: 21
            },
            stop_reason: Some("stop".into()),
        }
    );
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 1);
    assert_openai_request(&requests[0], false);
}

#[tokio::test]
async fn no_key_no_authorization_header_and_v1_base_is_not_doubled() {
    let fake = FakeLlm::openai().await;
    fake.always(completion_response("ok")).await;
    let mut settings = fake.settings();
    settings.api_key = None;
    settings.temperature = None;
    settings.base_url = format!("{}/v1/", fake.base_url());
    let client = LlmClient::new(settings, reqwest::Client::new());
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
async fn markers_become_citations() {
    let fake = FakeLlm::openai().await;
    fake.always(completion_response(
        "Base pay is $150k-$190k [1][2]; equity varies [2, 3]. Ignore [7] and [note].",
    ))
    .await;

    let completion = fake.client().complete(&sample_request()).await.unwrap();

    assert_eq!(
        completion.text,
        "Base pay is $150k-$190k [1][2]; equity varies [2, 3]. Ignore [7] and [note]."
    );
    assert_eq!(completion.citations, cites(&[1, 2, 3]));
}

#[tokio::test]
async fn streamed_answer_emits_deltas_and_one_done_with_usage() {
    let fake = FakeLlm::openai().await;
    fake.always(stream_response(&streamed_chunks(), true)).await;

    let events: Vec<LlmEvent> = collect(&fake.client())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    assert_eq!(
        events,
        vec![
            LlmEvent::TextDelta("Base salaries are ".into()),
            LlmEvent::TextDelta("$150k-$190k [1]".into()),
            LlmEvent::TextDelta(", plus equity [2, 3].".into()),
            LlmEvent::Done(LlmCompletion {
                text: "Base salaries are $150k-$190k [1], plus equity [2, 3].".into(),
                citations: cites(&[1, 2, 3]),
                usage: TokenUsage {
                    input_tokens: 400,
                    output_tokens: 19
                },
                stop_reason: Some("stop".into()),
            }),
        ]
    );
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 1);
    assert_openai_request(&requests[0], true);
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success() {
    let fake = FakeLlm::openai().await;
    fake.first(
        1,
        json_response(429, openai_error("Rate limit reached", "requests"))
            .insert_header("retry-after", "0"),
    )
    .await;
    fake.always(completion_response("ok [1]")).await;

    let completion = fake.client().complete(&sample_request()).await.unwrap();

    assert_eq!(completion.citations, cites(&[1]));
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_openai_request(r, false);
    }
}

#[tokio::test]
async fn rate_limited_forever_reports_the_hint() {
    let fake = FakeLlm::openai().await;
    fake.always(
        json_response(429, openai_error("Rate limit reached", "requests"))
            .insert_header("retry-after", "0"),
    )
    .await;
    let mut settings = fake.settings();
    settings.max_retries = 1;

    let err = LlmClient::new(settings, reqwest::Client::new())
        .complete(&sample_request())
        .await
        .unwrap_err();

    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(Duration::ZERO)
        }
    );
    assert_eq!(fake.requests().await.len(), 2);
}

#[tokio::test]
async fn server_error_then_success() {
    let fake = FakeLlm::openai().await;
    fake.first(
        1,
        json_response(500, openai_error("The server had an error", "server_error")),
    )
    .await;
    fake.always(completion_response("ok")).await;

    let started = Instant::now();
    let completion = fake.client().complete(&sample_request()).await.unwrap();

    assert_eq!(completion.text, "ok");
    assert!(
        started.elapsed() >= Duration::from_millis(240),
        "backoff before the retry"
    );
    assert_eq!(fake.requests().await.len(), 2);
}

#[tokio::test]
async fn server_error_forever_is_a_status_error_after_max_retries_plus_one_attempts() {
    let fake = FakeLlm::openai().await;
    fake.always(json_response(
        500,
        openai_error("The server had an error", "server_error"),
    ))
    .await;

    let err = fake.client().complete(&sample_request()).await.unwrap_err();

    assert_eq!(
        err,
        LlmError::Status {
            status: 500,
            message: "server_error: The server had an error".into()
        }
    );
    assert_eq!(fake.requests().await.len(), 3);
}

#[tokio::test]
async fn unauthorized_is_not_retried_and_hides_an_echoed_key() {
    let fake = FakeLlm::openai().await;
    fake.always(json_response(
        401,
        openai_error(
            &format!("Incorrect API key provided: {TEST_KEY}."),
            "invalid_request_error",
        ),
    ))
    .await;

    let err = fake.client().complete(&sample_request()).await.unwrap_err();

    assert_eq!(
        err,
        LlmError::Status {
            status: 401,
            message: "invalid_request_error: Incorrect API key provided: ***.".into()
        }
    );
    assert_eq!(fake.requests().await.len(), 1);
}

#[tokio::test]
async fn slow_server_is_a_timeout() {
    let fake = FakeLlm::openai().await;
    fake.always(completion_response("late").set_delay(Duration::from_secs(2)))
        .await;
    let mut settings = fake.settings();
    settings.timeout = Duration::from_millis(200);
    settings.max_retries = 0;

    let started = Instant::now();
    let err = LlmClient::new(settings, reqwest::Client::new())
        .complete(&sample_request())
        .await
        .unwrap_err();

    assert_eq!(err, LlmError::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().await.len(), 1);
}

#[tokio::test]
async fn malformed_json_is_malformed() {
    let fake = FakeLlm::openai().await;
    fake.always(ResponseTemplate::new(200).set_body_raw("<html>gateway</html>", "text/html"))
        .await;

    let err = fake.client().complete(&sample_request()).await.unwrap_err();

    assert!(matches!(err, LlmError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn malformed_chunk_is_malformed() {
    let fake = FakeLlm::openai().await;
    fake.always(sse_response("data: {\"choices\": [\n\n".to_string()))
        .await;

    let events = collect(&fake.client()).await;

    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], Err(LlmError::Malformed(_))),
        "{events:?}"
    );
}

#[tokio::test]
async fn error_mid_stream_is_a_stream_error_after_the_deltas() {
    let fake = FakeLlm::openai().await;
    let chunks = vec![
        openai_chunk(Some("Base "), None),
        openai_chunk(Some("salaries"), None),
        json!({"error": {"message": "upstream model crashed", "type": "server_error"}}),
        openai_chunk(Some(" never shown"), None),
    ];
    fake.always(stream_response(&chunks, true)).await;

    let events = collect(&fake.client()).await;

    assert_eq!(
        events,
        vec![
            Ok(LlmEvent::TextDelta("Base ".into())),
            Ok(LlmEvent::TextDelta("salaries".into())),
            Err(LlmError::Stream("upstream model crashed".into())),
        ]
    );
    assert_eq!(
        fake.requests().await.len(),
        1,
        "no retry once the body started"
    );
}

#[tokio::test]
async fn stream_cut_before_done_is_a_stream_error() {
    let fake = FakeLlm::openai().await;
    fake.always(stream_response(&[openai_chunk(Some("Base"), None)], false))
        .await;

    let events = collect(&fake.client()).await;

    assert_eq!(events.len(), 2);
    assert_eq!(events[0], Ok(LlmEvent::TextDelta("Base".into())));
    assert!(
        matches!(&events[1], Err(LlmError::Stream(_))),
        "{:?}",
        events[1]
    );
}

#[tokio::test]
async fn stream_without_done_but_finished_completes() {
    let fake = FakeLlm::openai().await;
    let chunks = vec![
        openai_chunk(Some("All [2]"), None),
        openai_chunk(None, Some("length")),
    ];
    fake.always(stream_response(&chunks, false)).await;

    let events = collect(&fake.client()).await;

    assert_eq!(
        events.last(),
        Some(&Ok(LlmEvent::Done(LlmCompletion {
            text: "All [2]".into(),
            citations: cites(&[2]),
            usage: TokenUsage::default(),
            stop_reason: Some("length".into()),
        })))
    );
}

#[tokio::test]
async fn stream_retries_server_errors_before_the_first_byte() {
    let fake = FakeLlm::openai().await;
    fake.first(
        2,
        json_response(502, openai_error("bad gateway", "server_error")),
    )
    .await;
    fake.always(stream_response(&streamed_chunks(), true)).await;

    let events = collect(&fake.client()).await;

    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Ok(LlmEvent::Done(_))))
            .count(),
        1
    );
    assert!(events.iter().all(Result::is_ok));
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_openai_request(r, true);
    }
}

#[tokio::test]
async fn stream_that_stalls_after_starting_is_a_timeout() {
    let base = stalling_sse_server(openai_sse(&[openai_chunk(Some("Base"), None)], false)).await;
    let mut settings = guidebot::llm::LlmSettings::new(ProviderKind::OpenAi, "test-model");
    settings.base_url = base;
    settings.timeout = Duration::from_millis(300);
    let client = LlmClient::new(settings, reqwest::Client::new());

    let events = collect(&client).await;

    assert_eq!(
        events,
        vec![
            Ok(LlmEvent::TextDelta("Base".into())),
            Err(LlmError::Timeout)
        ]
    );
}

#[tokio::test]
async fn a_key_that_cannot_be_a_header_fails_without_leaking_or_sending() {
    let fake = FakeLlm::openai().await;
    fake.always(completion_response("ok")).await;
    let mut settings = fake.settings();
    settings.api_key = Some(guidebot::util::secret::Secret::new("sk-\u{1}SECRET"));

    let err = LlmClient::new(settings, reqwest::Client::new())
        .complete(&sample_request())
        .await
        .unwrap_err();

    assert!(matches!(err, LlmError::Transport(_)), "{err:?}");
    assert!(!err.to_string().contains("SECRET"), "{err}");
    assert!(fake.requests().await.is_empty());
}
