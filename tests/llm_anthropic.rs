//! The Anthropic client against a fake Messages API on 127.0.0.1: exact request bodies and headers,
//! native citations, streaming, retries, timeouts and error mapping.

mod support;

use futures::StreamExt;
use guidebot::llm::{LlmCitation, LlmClient, LlmError, LlmEvent, ProviderKind, TokenUsage};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::fake_llm::*;
use wiremock::ResponseTemplate;

/// The body the client must send for [`sample_request`], with `stream` when streaming.
fn expected_body(stream: bool) -> Value {
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

fn assert_anthropic_request(r: &Recorded, stream: bool) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(
        r.headers.get("x-api-key").map(String::as_str),
        Some(TEST_KEY)
    );
    assert_eq!(
        r.headers.get("anthropic-version").map(String::as_str),
        Some("2023-06-01")
    );
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert!(
        !r.headers.contains_key("authorization"),
        "no bearer header for Anthropic"
    );
    assert_eq!(r.body, expected_body(stream));
}

fn plain_message() -> Value {
    anthropic_message(
        json!([{"type": "text", "text": "Mid-level pay is covered in the guide."}]),
        "end_turn",
        321,
        12,
    )
}

fn cited_message() -> Value {
    anthropic_message(
        json!([
            {"type": "text", "text": "According to the guide, "},
            {"type": "text", "text": "base salaries sit between $150k and $190k",
             "citations": [anthropic_citation(0, "Mid-level base salaries cluster between $150k and $190k.")]},
            {"type": "text", "text": ", and "},
            {"type": "text", "text": "equity adds 10-30% at public companies",
             "citations": [anthropic_citation(1, "Equity adds 10-30% at public companies."),
                           anthropic_citation(1, "Equity adds 10-30% at public companies."),
                           anthropic_citation(0, "Mid-level base salaries cluster between $150k and $190k.")]},
            {"type": "text", "text": "."}
        ]),
        "end_turn",
        500,
        40,
    )
}

async fn collect(client: &LlmClient) -> Vec<Result<LlmEvent, LlmError>> {
    client.stream(&sample_request()).collect().await
}

#[tokio::test]
async fn plain_answer_sends_the_exact_body_and_headers() {
    let fake = FakeLlm::anthropic().await;
    fake.always(json_response(200, plain_message())).await;
    let client = fake.client();
    assert_eq!(client.kind(), ProviderKind::Anthropic);
    assert_eq!(client.model(), "test-model");

    let completion = client.complete(&sample_request()).await.unwrap();

    assert_eq!(completion.text, "Mid-level pay is covered in the guide.");
    assert!(completion.citations.is_empty());
    assert_eq!(
        completion.usage,
        TokenUsage {
            input_tokens: 321,
            output_tokens: 12
        }
    );
    assert_eq!(completion.stop_reason.as_deref(), Some("end_turn"));
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 1);
    assert_anthropic_request(&requests[0], false);
}

#[tokio::test]
async fn optional_fields_are_omitted() {
    let fake = FakeLlm::anthropic().await;
    fake.always(json_response(200, plain_message())).await;
    let mut settings = fake.settings();
    settings.temperature = None;
    let client = LlmClient::new(settings, reqwest::Client::new());
    let mut request = sample_request();
    request.system_prompt.clear();
    request.passages.clear();
    client.complete(&request).await.unwrap();
    let body = &fake.requests().await[0].body;
    assert_eq!(
        body,
        &json!({"model": "test-model", "max_tokens": 256,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "What do mid-level data scientists earn?"}]}]})
    );
}

#[tokio::test]
async fn cited_answer_maps_search_result_index_to_passage_numbers() {
    let fake = FakeLlm::anthropic().await;
    fake.always(json_response(200, cited_message())).await;

    let completion = fake.client().complete(&sample_request()).await.unwrap();

    assert_eq!(
        completion.text,
        "According to the guide, base salaries sit between $150k and $190k [1], and equity adds 10-30% at public companies [2][1]."
    );
    assert_eq!(
        completion.citations,
        vec![
            LlmCitation {
                passage_number: 1,
                cited_text: Some("Mid-level base salaries cluster between $150k and $190k.".into())
            },
            LlmCitation {
                passage_number: 2,
                cited_text: Some("Equity adds 10-30% at public companies.".into())
            },
        ]
    );
    assert_eq!(
        completion.usage,
        TokenUsage {
            input_tokens: 500,
            output_tokens: 40
        }
    );
}

fn streamed_answer() -> String {
    anthropic_sse(&[
        a_message_start(410),
        a_block_start(0),
        a_ping(),
        a_text(0, "Base salaries "),
        a_text(0, "are $150k-$190k"),
        a_cite(
            0,
            anthropic_citation(
                0,
                "Mid-level base salaries cluster between $150k and $190k.",
            ),
        ),
        a_block_stop(0),
        a_block_start(1),
        a_text(1, "."),
        a_block_stop(1),
        a_message_delta("end_turn", 17),
        a_ping(),
        a_message_stop(),
    ])
}

#[tokio::test]
async fn streamed_answer_emits_deltas_markers_and_one_done() {
    let fake = FakeLlm::anthropic().await;
    fake.always(sse_response(streamed_answer())).await;

    let events = collect(&fake.client()).await;

    let events: Vec<LlmEvent> = events.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        events,
        vec![
            LlmEvent::TextDelta("Base salaries ".into()),
            LlmEvent::TextDelta("are $150k-$190k".into()),
            LlmEvent::TextDelta(" [1]".into()),
            LlmEvent::TextDelta(".".into()),
            LlmEvent::Done(guidebot::llm::LlmCompletion {
                text: "Base salaries are $150k-$190k [1].".into(),
                citations: vec![LlmCitation {
                    passage_number: 1,
                    cited_text: Some(
                        "Mid-level base salaries cluster between $150k and $190k.".into()
                    )
                }],
                usage: TokenUsage {
                    input_tokens: 410,
                    output_tokens: 17
                },
                stop_reason: Some("end_turn".into()),
            }),
        ]
    );
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 1);
    assert_anthropic_request(&requests[0], true);
    assert_eq!(
        requests[0].headers.get("accept").map(String::as_str),
        Some("text/event-stream")
    );
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success() {
    let fake = FakeLlm::anthropic().await;
    fake.first(
        1,
        json_response(429, anthropic_error("rate_limit_error", "slow down"))
            .insert_header("retry-after", "1"),
    )
    .await;
    fake.always(json_response(200, plain_message())).await;

    let started = Instant::now();
    let completion = fake.client().complete(&sample_request()).await.unwrap();

    assert_eq!(completion.text, "Mid-level pay is covered in the guide.");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn rate_limited_beyond_the_cap_fails_fast_with_the_hint() {
    let fake = FakeLlm::anthropic().await;
    fake.always(
        json_response(429, anthropic_error("rate_limit_error", "slow down"))
            .insert_header("retry-after", "120"),
    )
    .await;

    let started = Instant::now();
    let err = fake.client().complete(&sample_request()).await.unwrap_err();

    assert_eq!(
        err,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(fake.requests().await.len(), 1);
}

#[tokio::test]
async fn server_error_then_success() {
    let fake = FakeLlm::anthropic().await;
    fake.first(
        1,
        json_response(500, anthropic_error("api_error", "Internal server error")),
    )
    .await;
    fake.first(
        1,
        json_response(529, anthropic_error("overloaded_error", "Overloaded")),
    )
    .await;
    fake.always(json_response(200, plain_message())).await;

    let completion = fake.client().complete(&sample_request()).await.unwrap();

    assert_eq!(completion.text, "Mid-level pay is covered in the guide.");
    assert_eq!(fake.requests().await.len(), 3);
}

#[tokio::test]
async fn server_error_forever_is_a_status_error_after_max_retries_plus_one_attempts() {
    let fake = FakeLlm::anthropic().await;
    fake.always(json_response(
        529,
        anthropic_error("overloaded_error", "Overloaded"),
    ))
    .await;

    let err = fake.client().complete(&sample_request()).await.unwrap_err();

    assert_eq!(
        err,
        LlmError::Status {
            status: 529,
            message: "overloaded_error: Overloaded".into()
        }
    );
    assert_eq!(
        fake.requests().await.len(),
        3,
        "max_retries = 2 means 3 attempts"
    );
}

#[tokio::test]
async fn client_errors_other_than_429_are_not_retried() {
    let fake = FakeLlm::anthropic().await;
    fake.always(json_response(
        400,
        anthropic_error("invalid_request_error", "messages: too long"),
    ))
    .await;

    let err = fake.client().complete(&sample_request()).await.unwrap_err();

    assert_eq!(
        err,
        LlmError::Status {
            status: 400,
            message: "invalid_request_error: messages: too long".into()
        }
    );
    assert_eq!(fake.requests().await.len(), 1);
}

#[tokio::test]
async fn slow_server_is_a_timeout() {
    let fake = FakeLlm::anthropic().await;
    fake.always(json_response(200, plain_message()).set_delay(Duration::from_secs(2)))
        .await;
    let mut settings = fake.settings();
    settings.timeout = Duration::from_millis(200);
    settings.max_retries = 1;
    let client = LlmClient::new(settings, reqwest::Client::new());

    let started = Instant::now();
    let err = client.complete(&sample_request()).await.unwrap_err();

    assert_eq!(err, LlmError::Timeout);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().await.len(), 2, "timeouts are retried");
}

#[tokio::test]
async fn slow_stream_headers_are_a_timeout() {
    let fake = FakeLlm::anthropic().await;
    fake.always(sse_response(streamed_answer()).set_delay(Duration::from_secs(2)))
        .await;
    let mut settings = fake.settings();
    settings.timeout = Duration::from_millis(200);
    settings.max_retries = 0;
    let client = LlmClient::new(settings, reqwest::Client::new());

    let events = collect(&client).await;

    assert_eq!(events, vec![Err(LlmError::Timeout)]);
}

#[tokio::test]
async fn malformed_json_is_malformed() {
    let fake = FakeLlm::anthropic().await;
    fake.always(ResponseTemplate::new(200).set_body_raw("{\"content\": [", "application/json"))
        .await;

    let err = fake.client().complete(&sample_request()).await.unwrap_err();

    assert!(matches!(err, LlmError::Malformed(_)), "{err:?}");
    assert_eq!(
        fake.requests().await.len(),
        1,
        "a malformed body is not retried"
    );
}

#[tokio::test]
async fn error_event_mid_stream_is_a_stream_error_after_the_deltas() {
    let fake = FakeLlm::anthropic().await;
    fake.always(sse_response(anthropic_sse(&[
        a_message_start(10),
        a_block_start(0),
        a_text(0, "Base "),
        a_text(0, "salaries"),
        a_error("overloaded_error", "Overloaded"),
        a_message_stop(),
    ])))
    .await;

    let events = collect(&fake.client()).await;

    assert_eq!(
        events,
        vec![
            Ok(LlmEvent::TextDelta("Base ".into())),
            Ok(LlmEvent::TextDelta("salaries".into())),
            Err(LlmError::Stream("overloaded_error: Overloaded".into())),
        ]
    );
    assert_eq!(
        fake.requests().await.len(),
        1,
        "no retry once the body started"
    );
}

#[tokio::test]
async fn stream_cut_before_message_stop_is_a_stream_error() {
    let fake = FakeLlm::anthropic().await;
    fake.always(sse_response(anthropic_sse(&[
        a_message_start(10),
        a_block_start(0),
        a_text(0, "Base"),
    ])))
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
async fn stream_retries_before_the_first_byte() {
    let fake = FakeLlm::anthropic().await;
    fake.first(
        1,
        json_response(503, anthropic_error("api_error", "unavailable")),
    )
    .await;
    fake.always(sse_response(streamed_answer())).await;

    let events = collect(&fake.client()).await;

    assert!(
        matches!(events.last(), Some(Ok(LlmEvent::Done(c))) if c.text == "Base salaries are $150k-$190k [1].")
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Ok(LlmEvent::Done(_))))
            .count(),
        1
    );
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 2);
    assert_anthropic_request(&requests[1], true);
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut settings = guidebot::llm::LlmSettings::new(ProviderKind::Anthropic, "test-model");
    settings.base_url = format!("http://127.0.0.1:{port}");
    settings.api_key = Some(guidebot::util::secret::Secret::new(TEST_KEY));
    settings.max_retries = 0;
    let client = LlmClient::new(settings, reqwest::Client::new());

    let err = client.complete(&sample_request()).await.unwrap_err();

    assert!(matches!(err, LlmError::Transport(_)), "{err:?}");
    assert!(!err.to_string().contains(TEST_KEY));
}

#[tokio::test]
async fn the_key_never_appears_in_debug_or_error_messages() {
    let fake = FakeLlm::anthropic().await;
    // A server that echoes the key back in its error message.
    fake.always(json_response(
        401,
        anthropic_error(
            "authentication_error",
            &format!("invalid x-api-key {TEST_KEY}"),
        ),
    ))
    .await;
    let client = fake.client();
    let err = client.complete(&sample_request()).await.unwrap_err();
    assert!(
        matches!(err, LlmError::Status { status: 401, .. }),
        "{err:?}"
    );
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
        assert!(!text.contains(TEST_KEY), "key leaked: {text}");
    }
    assert!(err.to_string().contains("***"), "{err}");
}

#[tokio::test]
async fn stream_that_stalls_after_starting_is_a_timeout() {
    let base = stalling_sse_server(anthropic_sse(&[
        a_message_start(10),
        a_block_start(0),
        a_text(0, "Base"),
    ]))
    .await;
    let mut settings = guidebot::llm::LlmSettings::new(ProviderKind::Anthropic, "test-model");
    settings.base_url = base;
    settings.api_key = Some(guidebot::util::secret::Secret::new(TEST_KEY));
    settings.timeout = Duration::from_millis(300);
    let client = LlmClient::new(settings, reqwest::Client::new());

    let started = Instant::now();
    let events = collect(&client).await;

    assert_eq!(
        events,
        vec![
            Ok(LlmEvent::TextDelta("Base".into())),
            Err(LlmError::Timeout)
        ]
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}
